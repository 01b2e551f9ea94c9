/**
 * @file snap/pipeline.h
 * @brief The body pipeline: keyrings, persistence options and the body codec.
 *
 * Encode: validate the payload in its declared format -> compress (zlib) ->
 * encrypt (XChaCha20-Poly1305) or MAC -> frame. Decode reverses it reading
 * only the frame and the keys, never the compression options of the call.
 * The frame is documented byte by byte in docs/FORMAT.md.
 */
#ifndef SNAP_PIPELINE_H
#define SNAP_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/alloc.h"
#include "snap/error.h"

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Payload formats, stages, option bits                                      */
/* ------------------------------------------------------------------------ */

/** The declared format of a state. The values are stored in the frame. */
typedef enum snap_format { SNAP_FORMAT_JSON = 1, SNAP_FORMAT_MSGPACK = 2 } snap_format;

/** Compression algorithms. */
typedef enum snap_compression {
  SNAP_COMPRESSION_NONE = 0,
  SNAP_COMPRESSION_ZLIB = 1,
  SNAP_COMPRESSION_ZSTD = 2 /**< bodies in frame version 2 (docs/FORMAT.md) */
} snap_compression;

/** Stages actually applied to a stored body (a bit set, reported on save and load). */
#define SNAP_STAGE_COMPRESSED 0x01u /**< compressed (zlib, or the codec the frame names) */
#define SNAP_STAGE_ENCRYPTED 0x02u  /**< XChaCha20-Poly1305 AEAD */
#define SNAP_STAGE_MAC 0x04u        /**< keyed MAC over a plaintext body */

/** Option groups, used for capabilities and for the `required` set. */
#define SNAP_OPT_COMPRESSION 0x01u
#define SNAP_OPT_ENCRYPTION 0x02u
#define SNAP_OPT_INTEGRITY 0x04u

/** Size of a master key in bytes. */
#define SNAP_KEY_BYTES 32u

/** Longest persistence id accepted, in bytes (UTF-8, no NUL). */
#define SNAP_PID_MAX 4096u

/** Longest manifest accepted, in bytes (a type name and version such as
 *  "bank.Account/3": UTF-8, no NUL; frame field 4, docs/FORMAT.md). */
#define SNAP_MANIFEST_MAX 255u

/** Longest metadata accepted, in bytes (opaque; frame field 5). */
#define SNAP_METADATA_MAX 2048u

/** Validates a manifest: non-empty, at most SNAP_MANIFEST_MAX bytes, valid
 *  UTF-8. Returns SNAP_OK or SNAP_EINVAL (with a message). */
SNAP_API int snap_manifest_check(const char *manifest);

/** Validates a persistence id: non-empty, at most SNAP_PID_MAX bytes, valid UTF-8.
 *  Returns SNAP_OK or SNAP_EINVAL (with a message). */
SNAP_API int snap_pid_check(const char *pid);

/* ------------------------------------------------------------------------ */
/* Growable byte buffer (caller-allocated struct)                            */
/* ------------------------------------------------------------------------ */

/** A byte buffer owned by the caller. Reuse one across calls to avoid
 *  reallocating; release it with snap_buf_dispose(). */
typedef struct snap_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
} snap_buf;

#define SNAP_BUF_INIT                                                                              \
  { NULL, 0, 0 }

/** Frees the buffer's memory and resets it to empty. */
SNAP_API void snap_buf_dispose(snap_buf *b);

/** Ensures room for `cap` bytes. SNAP_OK or SNAP_ENOMEM. */
SNAP_API int snap_buf_reserve(snap_buf *b, size_t cap);

/** Replaces the content with a copy of `len` bytes. SNAP_OK or SNAP_ENOMEM. */
SNAP_API int snap_buf_set(snap_buf *b, const void *data, size_t len);

/** Takes the data out of the buffer (the caller frees it with snap_free()) and
 *  resets the buffer to empty. */
SNAP_API uint8_t *snap_buf_detach(snap_buf *b, size_t *len);

/* ------------------------------------------------------------------------ */
/* Keyring                                                                   */
/* ------------------------------------------------------------------------ */

/** A set of versioned 32-byte master keys, one of them active for writing.
 *  Keys live in guarded memory (sodium_malloc) and are wiped when freed.
 *  A keyring is thread-safe: keys may be added and the active version changed
 *  while other threads encode and decode with it. */
typedef struct snap_keyring snap_keyring;

/** Creates an empty keyring. Free with snap_keyring_free(). */
SNAP_API int snap_keyring_new(snap_keyring **out);

/** Wipes every key and frees the keyring. NULL is a no-op. */
SNAP_API void snap_keyring_free(snap_keyring *kr);

/**
 * Adds a copy of a master key under `version` (>= 1). The first key added
 * becomes active. Errors: SNAP_EINVAL (version 0, key_len != 32, duplicate
 * version), SNAP_ENOMEM.
 */
SNAP_API int snap_keyring_add(snap_keyring *kr, uint32_t version, const uint8_t *key,
                              size_t key_len);

/**
 * Reads a key file and adds it under `version`. The file holds the key as 32
 * raw bytes or 64 hex digits (surrounding whitespace allowed). It is refused
 * (SNAP_EAUTH) when group- or world-accessible, SNAP_EIO when unreadable,
 * SNAP_EFORMAT when it is neither form.
 * Symbolic links are followed; the target must be a regular file (SNAP_EIO
 * otherwise). The file's bytes are read into guarded memory and wiped.
 * A duplicate version is SNAP_EINVAL, as for snap_keyring_add().
 */
SNAP_API int snap_keyring_add_file(snap_keyring *kr, uint32_t version, const char *path);

/** Makes `version` the key new bodies are written with. SNAP_ENOKEY if absent. */
SNAP_API int snap_keyring_set_active(snap_keyring *kr, uint32_t version);

/** The active version, or 0 when the keyring is empty. */
SNAP_API uint32_t snap_keyring_active(const snap_keyring *kr);

/** Whether the keyring holds `version`. */
SNAP_API bool snap_keyring_has(const snap_keyring *kr, uint32_t version);

/* ------------------------------------------------------------------------ */
/* Persistence options                                                       */
/* ------------------------------------------------------------------------ */

/**
 * Per-call persistence options. Every field starts *unset*; when a store
 * resolves options, each field is taken from the first layer that set it
 * (per call, then per pid, then the store's defaults), see snap_options_resolve().
 * Options borrow keyrings: a keyring must outlive every options object that
 * refers to it. An options object may be shared by threads once configured.
 */
typedef struct snap_options snap_options;

/** Nonce source for tests: fills `n` bytes. The default is randombytes_buf(). */
typedef void (*snap_nonce_fn)(uint8_t *nonce, size_t n, void *ud);

/** Creates options with every field unset. Free with snap_options_free(). */
SNAP_API int snap_options_new(snap_options **out);

/** Frees options (the keyrings they refer to are not freed). NULL is a no-op. */
SNAP_API void snap_options_free(snap_options *o);

/** Copies `src` (its set fields and borrowed keyrings) into a new object. */
SNAP_API int snap_options_copy(snap_options **out, const snap_options *src);

/**
 * A number that identifies the current settings of `o`: every setter gives
 * the object a new one, and no two objects (alive or freed) ever share one in
 * a process. A store uses it to resolve a caller's options once and reuse the
 * result while they do not change. 0 for NULL. Thread-safe with respect to
 * other objects; like any read, not while another thread sets `o`.
 */
SNAP_API uint64_t snap_options_generation(const snap_options *o);

/**
 * Compression: SNAP_COMPRESSION_NONE, SNAP_COMPRESSION_ZLIB with level 0-9,
 * or SNAP_COMPRESSION_ZSTD with a level in zstd's range (negative fast levels
 * down to ZSTD_minCLevel(), -131072 with libzstd 1.5, up to 22; 0 = zstd's
 * default, 3). Either is kept only when it makes the body shorter.
 * Errors: SNAP_EINVAL for an unknown algorithm or level out of range.
 */
SNAP_API int snap_options_set_compression(snap_options *o, snap_compression alg, int level);

/** States shorter than `min_size` bytes are stored uncompressed (default 0). */
SNAP_API int snap_options_set_compression_min_size(snap_options *o, size_t min_size);

/**
 * Encryption with the keyring's active key, bound to `context` (a non-empty
 * string naming deployment, purpose and version, e.g. "acme/prod/snapshots/v1").
 * kr == NULL turns encryption off (explicitly, overriding lower layers).
 * Errors: SNAP_EINVAL for an empty or missing context with a keyring.
 */
SNAP_API int snap_options_set_encryption(snap_options *o, snap_keyring *kr, const char *context);

/**
 * How encrypted bodies are keyed (docs/FORMAT.md, "Envelope keys").
 * DIRECT: a subkey derived from the master key for each pid (the default).
 * ENVELOPE: a random data key per shred unit, stored wrapped by the master
 * key; forgetting the unit (snap_forget()) deletes that key, and a master key
 * rotation rewraps data keys instead of rewriting bodies. Envelope mode needs
 * a store (it keeps the wrapped keys): snap_body_encode() refuses it.
 */
typedef enum snap_key_mode { SNAP_KEYS_DIRECT = 0, SNAP_KEYS_ENVELOPE = 1 } snap_key_mode;

/**
 * Sets the key mode used when encryption is on (ignored while it is off).
 * Resolved like every other field. Errors: SNAP_EINVAL (NULL, unknown mode).
 */
SNAP_API int snap_options_set_key_mode(snap_options *o, snap_key_mode mode);

/**
 * Integrity for unencrypted bodies: a keyed MAC with the keyring's active key
 * bound to `context`. Ignored for bodies that are encrypted (already
 * authenticated). kr == NULL turns it off explicitly.
 */
SNAP_API int snap_options_set_integrity(snap_options *o, snap_keyring *kr, const char *context);

/**
 * Limits: the largest stored body and the largest decoded state accepted, in
 * bytes (0 = the built-in default of 1 GiB). A body whose frame declares more
 * is refused with SNAP_ETOOBIG before anything is allocated for it.
 * Each limit is its own field for snap_options_resolve(): a non-zero value
 * sets it, 0 leaves it unset (so a lower layer's value, or the default, applies).
 */
SNAP_API int snap_options_set_limits(snap_options *o, size_t max_stored, size_t max_decoded);

/**
 * Migration switch: whether a reader configured with a key accepts bodies that
 * are neither encrypted nor MAC'd. Off by default: such bodies are refused
 * with SNAP_EAUTH, so that whoever can write the database cannot downgrade it.
 */
SNAP_API int snap_options_set_accept_unauthenticated(snap_options *o, bool accept);

/**
 * The option groups (SNAP_OPT_* bits) the caller requires: a store that cannot
 * honour one fails the call with SNAP_EUNSUPPORTED instead of ignoring it.
 * snap_body_encode() also fails (SNAP_EINVAL) when a required group is not
 * configured: encryption needs an encryption keyring, integrity an encryption
 * or integrity keyring, compression an algorithm other than NONE.
 * Unknown bits: SNAP_EINVAL.
 */
SNAP_API int snap_options_set_required(snap_options *o, unsigned required);

/** Replaces the nonce source (tests only: fixed nonces give golden vectors).
 *  fn == NULL unsets it (randombytes_buf() unless a lower layer sets one). */
SNAP_API int snap_options_set_nonce_source(snap_options *o, snap_nonce_fn fn, void *ud);

/* ------------------------------------------------------------------------ */
/* Trained zstd dictionaries                                                 */
/* ------------------------------------------------------------------------ */

/**
 * A trained zstd dictionary (docs/FORMAT.md, "Dictionaries"): immutable,
 * reference-counted, safe to share between threads. Its 32-bit id is derived
 * from its bytes (the first four bytes of their BLAKE2b-256, little-endian),
 * so one id always names the same bytes; bodies compressed with it carry the
 * id in their frame.
 */
typedef struct snap_dict snap_dict;

/** Sizes a dictionary may have, in bytes. */
#define SNAP_DICT_MIN 8u
#define SNAP_DICT_MAX (1u << 20)

/** A dictionary of a copy of `bytes`. SNAP_EINVAL for a size outside
 *  SNAP_DICT_MIN..SNAP_DICT_MAX or bytes whose id would be 0; SNAP_ENOMEM. */
SNAP_API int snap_dict_new(snap_dict **out, const void *bytes, size_t len);
/** The id `bytes` would have as a dictionary (0 is never a dictionary's). */
SNAP_API int snap_dict_id_of(const void *bytes, size_t len, uint32_t *id);
/** Another reference to `d` (returned); each is released by snap_dict_free(). */
SNAP_API snap_dict *snap_dict_ref(snap_dict *d);
/** Releases one reference; the last frees it (its bytes wiped). NULL is a no-op. */
SNAP_API void snap_dict_free(snap_dict *d);
/** The dictionary's id (0 for NULL). */
SNAP_API uint32_t snap_dict_id(const snap_dict *d);
/** The dictionary's bytes, valid while a reference is held; `*len` gets their length. */
SNAP_API const void *snap_dict_bytes(const snap_dict *d, size_t *len);

/**
 * Finds a dictionary: by `id`, or by `name` when `id` is 0. On success `*out`
 * holds a reference the caller releases. SNAP_ENOTFOUND (with a message)
 * when there is none. Called from any thread that encodes or decodes.
 */
typedef int (*snap_dict_source)(void *ud, uint32_t id, const char *name, snap_dict **out);

/**
 * The dictionary zstd compresses with: by `id`, or by `name` (looked up
 * through the dictionary source) when `id` is 0; both 0 / NULL: none (which
 * also overrides a lower layer's choice). Applies with SNAP_COMPRESSION_ZSTD
 * only: encoding with a dictionary and another algorithm is SNAP_EINVAL.
 */
SNAP_API int snap_options_set_dictionary(snap_options *o, uint32_t id, const char *name);

/**
 * Where encode finds the dictionary it compresses with and decode the one a
 * body names (a store sets its own under every call's options). fn == NULL
 * unsets it: a body naming a dictionary is then SNAP_ENOTFOUND.
 */
SNAP_API int snap_options_set_dictionary_source(snap_options *o, snap_dict_source fn, void *ud);

/**
 * Resolves layered options: for each field, the value of the first layer in
 * `layers[0..n)` that set it (NULL layers are skipped). The result has every
 * field that any layer set. Free with snap_options_free().
 */
SNAP_API int snap_options_resolve(snap_options **out, const snap_options *const *layers, size_t n);

/**
 * Removes option groups (SNAP_OPT_* bits) a store cannot honour and reports
 * them: `*dropped` receives the groups that were requested but removed.
 * Fails with SNAP_EUNSUPPORTED (naming the option) when a removed group is
 * also in the required set. `o` is modified in place.
 * A required group outside `supported` fails even when `o` does not turn it
 * on; on failure `o` is left unchanged and `*dropped` is 0. A removed group is
 * set to "off" explicitly, so a lower layer cannot turn it back on when `o` is
 * later used as a layer.
 */
SNAP_API int snap_options_restrict(snap_options *o, unsigned supported, unsigned *dropped);

/** The option groups (SNAP_OPT_* bits) that `o` turns on. */
SNAP_API unsigned snap_options_requested(const snap_options *o);

/**
 * What a body encoded now with `o` (may be NULL) would be authenticated with:
 * `*stage` receives SNAP_STAGE_ENCRYPTED, SNAP_STAGE_MAC or 0, and
 * `*key_version` the keyring's active version (0 when unauthenticated). Either
 * output may be NULL. Compare with snap_body_inspect() to find the bodies a
 * key rotation has not reached. SNAP_ENOKEY when the keyring is empty.
 */
SNAP_API int snap_options_auth_target(const snap_options *o, unsigned *stage,
                                      uint32_t *key_version);

/**
 * The codec (SNAP_COMPRESSION_*) and dictionary id (0: none) a body encoded
 * now with `o` (may be NULL) would name when compression applies to it. A
 * dictionary chosen by name is looked up through the dictionary source
 * (SNAP_ENOTFOUND naming it when there is none). Either output may be NULL.
 * Compare with snap_body_inspect_codec() to find the bodies a change of
 * codec or dictionary has not reached.
 */
SNAP_API int snap_options_codec_target(const snap_options *o, snap_compression *codec,
                                       uint32_t *dict_id);

/* ------------------------------------------------------------------------ */
/* Body codec                                                                */
/* ------------------------------------------------------------------------ */

/**
 * Checks that `len` bytes are one well-formed value in `fmt` (JSON per
 * RFC 8259, msgpack as msgpack-c reads it), with nothing after it. Exactly `len` bytes are read;
 * no NUL terminator is needed or allowed.
 *
 * An empty state (len == 0) is accepted in both formats: it is the "empty
 * state" and round-trips through the codec as 0 bytes (docs/FORMAT.md).
 *
 * JSON: UTF-8 text, only JSON whitespace around the value, no control bytes
 * anywhere (they are invalid even inside strings), no byte order mark, the
 * RFC 8259 grammar checked without allocating (nesting limit 512, numbers of
 * at most 63 characters, no lone UTF-16 surrogates in \u escapes): a strict
 * subset of what cJSON reads, so snap_snapshot_to_json() reads every state. msgpack: exactly one
 * value whose every length fits in the bytes given; nesting deeper than 32 containers is refused
 * (msgpack-c's limit, so that what is stored can be unpacked again). Neither check allocates, so
 * the verdict never depends on the memory left, and it is the verdict of the incremental
 * validator (snap/stream.h) on the same bytes, however they are split. Returns SNAP_OK, SNAP_EINVAL
 * (unknown format, NULL state with len > 0) or SNAP_EFORMAT (with the byte offset where known).
 */
SNAP_API int snap_payload_validate(snap_format fmt, const void *state, size_t len);

/**
 * Encodes a state into a self-describing body bound to (pid, seq).
 * `o` may be NULL (no compression, no encryption). The body replaces the
 * content of `out`. `*stages` (may be NULL) receives the SNAP_STAGE_* bits
 * applied. Errors: SNAP_EINVAL (bad pid, seq < 0, bad format), SNAP_EFORMAT
 * (malformed payload), SNAP_ETOOBIG (over the limits), SNAP_ENOKEY (encryption
 * with an empty keyring), SNAP_ENOMEM.
 * Also SNAP_EINVAL for a state that overlaps `out`'s memory and for a required
 * option group that `o` does not configure. When the arguments are invalid
 * `out` is untouched; on any other failure it is left empty (len 0).
 * Thread-safe: options and keyrings may be shared by concurrent calls.
 */
SNAP_API int snap_body_encode(const char *pid, int64_t seq, snap_format fmt, const void *state,
                              size_t len, const snap_options *o, snap_buf *out, unsigned *stages);

/**
 * Decodes a body written for (pid, seq). Reads only the frame and the keys in
 * `o` (may be NULL): the state replaces the content of `out`, `*fmt` and
 * `*stages` (may be NULL) receive its format and the stages it went through.
 * On success `out->data[out->len]` is 0 (one byte is reserved past the state),
 * so a JSON state can be used as a C string. `out`'s capacity is reused: one
 * allocation at most, of the declared length + 1 (+ the body length for a
 * compressed and encrypted body, decrypted in the same buffer). The body must
 * not overlap `out`'s memory (SNAP_EINVAL).
 * Errors: SNAP_EFORMAT (not a body, unknown frame version, reserved bits),
 * SNAP_ECORRUPT (impossible lengths, inconsistent flags, checksum, bad
 * compressed data), SNAP_EAUTH (wrong key, context, pid or seq; tampering;
 * unauthenticated body refused; and for a reader holding a key, every
 * EFORMAT / ECORRUPT failure of a body that declares AEAD or MAC, or of any
 * body when accept_unauthenticated is off: such damage cannot be told from
 * tampering), SNAP_ENOKEY (key version not in the keyring, or an encrypted
 * body and no keyring), SNAP_ETOOBIG, SNAP_ENOMEM.
 * On failure `out` is left empty: no partial or unverified bytes are returned.
 */
SNAP_API int snap_body_decode(const char *pid, int64_t seq, const void *body, size_t body_len,
                              const snap_options *o, snap_buf *out, snap_format *fmt,
                              unsigned *stages);

/**
 * Reads a body's frame header without keys: format, stages, key version and
 * declared original length. Any output may be NULL. SNAP_EFORMAT/SNAP_ECORRUPT
 * for a malformed header.
 */
/**
 * What a body's header states besides its format (frame fields 4 and 5,
 * docs/FORMAT.md): its manifest (`*manifest_len` bytes, not NUL-terminated)
 * and metadata, pointing into `body`; NULL and 0 for those it does not state.
 * Read without keys: authenticated only once the body decoded. Errors as for
 * snap_body_inspect().
 */
SNAP_API int snap_body_typing(const void *body, size_t body_len, const char **manifest,
                              size_t *manifest_len, const uint8_t **metadata,
                              size_t *metadata_len);

SNAP_API int snap_body_inspect(const void *body, size_t body_len, snap_format *fmt,
                               unsigned *stages, uint32_t *key_version, uint64_t *orig_len);

/**
 * The codec (SNAP_COMPRESSION_*) and dictionary id (0: none) a body's header
 * names, without keys; either output may be NULL. Errors as
 * snap_body_inspect().
 */
SNAP_API int snap_body_inspect_codec(const void *body, size_t body_len, snap_compression *codec,
                                     uint32_t *dict_id);

/* ------------------------------------------------------------------------ */
/* Wrapped data keys (envelope mode)                                         */
/* ------------------------------------------------------------------------ */

/** Size of a data key in bytes. */
#define SNAP_DEK_BYTES 32u
/** Size of a wrapped-key record (docs/FORMAT.md, "The wrapped-key record"). */
#define SNAP_WRAPPED_KEY_BYTES 85u

/**
 * Reads a wrapped-key record's header without keys: the master key version
 * it is wrapped under and the unit key's generation (either may be NULL).
 * SNAP_EINVAL (NULL record), SNAP_EFORMAT (no "SNPK" magic, unknown record
 * version), SNAP_ECORRUPT (wrong length, a reserved zero version).
 */
SNAP_API int snap_wrapped_key_inspect(const void *record, size_t len, uint32_t *master_version,
                                      uint32_t *generation);

/**
 * Checks that a wrapped-key record unwraps under `kr` for `context`, data set
 * `dataset` and shred unit `unit` (the key itself is wiped, never returned).
 * SNAP_OK, SNAP_EINVAL, SNAP_EFORMAT / SNAP_ECORRUPT (as for inspect),
 * SNAP_ENOKEY (its master key version is not in `kr`), SNAP_EAUTH (wrong key
 * or context, another unit or data set, or an altered record). Thread-safe.
 */
SNAP_API int snap_wrapped_key_verify(const snap_keyring *kr, const char *context,
                                     const char *dataset, const char *unit, const void *record,
                                     size_t len);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_PIPELINE_H */
