/*
 * Entry points of the pipeline for the layers above it (store, plugin) and
 * nothing else: not part of the public API, not exported, not installed.
 *
 * The public snap_body_encode()/snap_body_decode() check the persistence id
 * (snap_pid_check()) on every call. The store checks it once when a call
 * enters the store, then encodes or decodes one or more bodies for the same
 * id; these variants skip the second check. The caller must have checked
 * `pid` with snap_pid_check() in the same call.
 */
#ifndef SNAP_PIPELINE_LAYER_H
#define SNAP_PIPELINE_LAYER_H

#include "snap/pipeline.h"

/** snap_body_encode() for a pid already checked by snap_pid_check(). */
int snap__body_encode_checked(const char *pid, int64_t seq, snap_format fmt, const void *state,
                              size_t len, const snap_options *o, snap_buf *out, unsigned *stages);

/** snap_body_decode() for a pid already checked by snap_pid_check(). */
int snap__body_decode_checked(const char *pid, int64_t seq, const void *body, size_t body_len,
                              const snap_options *o, snap_buf *out, snap_format *fmt,
                              unsigned *stages);

/** The levels `alg` accepts and its default level (zlib 0-9, default 6;
 * zstd its negative fast levels to 22, default 3). SNAP_EINVAL for NONE or an
 * unknown algorithm. */
int snap__compression_levels(snap_compression alg, int *min, int *max, int *dflt);

/* ---- envelope keys (dek.c, dek_cache.c) ----------------------------------- */

/** The data key an envelope body is sealed with, and what its frame names. */
typedef struct snap__envelope_key {
  uint8_t dek[SNAP_DEK_BYTES];
  const char *unit; /**< the shred unit's bytes (need not be NUL-terminated) */
  size_t unit_len;
  uint32_t generation; /**< >= 1 */
} snap__envelope_key;

/** snap__body_encode_checked() sealed with the unit's data key `k`
 *  (envelope mode): the frame carries the envelope key reference. */
int snap__body_encode_envelope(const char *pid, int64_t seq, snap_format fmt, const void *state,
                               size_t len, const snap_options *o, const snap__envelope_key *k,
                               snap_buf *out, unsigned *stages);

/** snap__body_decode_checked() with the unit's data key for an envelope
 *  body (ignored for any other body). */
int snap__body_decode_envelope(const char *pid, int64_t seq, const void *body, size_t body_len,
                               const snap_options *o, const uint8_t dek[SNAP_DEK_BYTES],
                               snap_buf *out, snap_format *fmt, unsigned *stages);

/** The envelope key reference of a body's frame. */
typedef struct snap__envelope_ref {
  const char *unit; /**< into the body, or the pid: `unit_len` bytes, no NUL */
  size_t unit_len;
  uint32_t generation;
} snap__envelope_ref;

/** 1 when the body's frame names an envelope key (`*ref` set), 0 when it
 *  does not or its header does not parse (the decoder then says why). */
int snap__body_envelope_ref(const char *pid, int64_t seq, const void *body, size_t len,
                            snap__envelope_ref *ref);

/** Longest data set name a wrapped key binds (the backend's table name). */
#define SNAP__DATASET_MAX 128u

/** Fills `dek` with a fresh random data key (libsodium's randombytes). The
 *  caller keeps it in guarded memory or wipes it after use. */
void snap__dek_generate(uint8_t dek[SNAP_DEK_BYTES]);

/**
 * Wraps `dek` for `unit` (unit_len bytes) of data set `dataset`, generation
 * `generation` (>= 1), under the active master key of `kr` and `context`
 * (docs/FORMAT.md, "Envelope keys"). `nonce_fn` NULL draws a random nonce.
 * `*master_version` (may be NULL) receives the version used. SNAP_EINVAL,
 * SNAP_ENOKEY (empty keyring); the message names the unit.
 */
int snap__dek_wrap(const snap_keyring *kr, const char *context, const char *dataset,
                   const char *unit, size_t unit_len, uint32_t generation,
                   const uint8_t dek[SNAP_DEK_BYTES], snap_nonce_fn nonce_fn, void *nonce_ud,
                   uint8_t out[SNAP_WRAPPED_KEY_BYTES], uint32_t *master_version);

/**
 * Unwraps a record written by snap__dek_wrap() for the same context, data
 * set and unit into `dek` (wiped on failure); `*generation` (may be NULL)
 * receives the record's generation. SNAP_EFORMAT / SNAP_ECORRUPT (not a
 * record), SNAP_ENOKEY (its master key version is not in `kr`), SNAP_EAUTH
 * (wrong key or context, another unit or data set, an altered record).
 */
int snap__dek_unwrap(const snap_keyring *kr, const char *context, const char *dataset,
                     const char *unit, size_t unit_len, const uint8_t *rec, size_t rec_len,
                     uint8_t dek[SNAP_DEK_BYTES], uint32_t *generation);

/** The key-encryption key of master key `version` (0: the active one, whose
 *  version `*used` receives; may be NULL) for `context` and `dataset`: what
 *  a caller wrapping or unwrapping many records derives once. SNAP_ENOKEY
 *  when the version is absent; no message set. The caller wipes `kek`. */
int snap__dek_kek(const snap_keyring *kr, uint32_t version, const char *context,
                  const char *dataset, uint8_t kek[32], uint32_t *used);
/** snap__dek_wrap() under a derived `kek` of `master_version` (arguments
 *  already checked by the caller). */
void snap__dek_wrap_kek(const uint8_t kek[32], uint32_t master_version, const char *dataset,
                        const char *unit, size_t unit_len, uint32_t generation,
                        const uint8_t dek[SNAP_DEK_BYTES], snap_nonce_fn nonce_fn, void *nonce_ud,
                        uint8_t out[SNAP_WRAPPED_KEY_BYTES]);
/** snap__dek_unwrap() of a record whose header snap__dek_record() read,
 *  under the `kek` of its master key version. SNAP_EAUTH (message set). */
int snap__dek_unwrap_kek(const uint8_t kek[32], const char *dataset, const char *unit,
                         size_t unit_len, const uint8_t *rec, uint8_t dek[SNAP_DEK_BYTES]);
/** The header of a wrapped-key record (snap_wrapped_key_inspect()). */
int snap__dek_record(const uint8_t *rec, size_t len, uint32_t *master_version,
                     uint32_t *generation);

/** The most entries a data key cache may hold. */
#define SNAP__DEK_CACHE_MAX (1u << 24)

/** A bounded LRU of unwrapped data keys in one guarded slab; thread-safe. */
typedef struct snap__dek_cache snap__dek_cache;

typedef struct snap__dek_cache_counts {
  uint64_t hits, misses, evictions;
  uint32_t entries, capacity;
} snap__dek_cache_counts;

/** A cache of `capacity` keys (1 .. SNAP__DEK_CACHE_MAX); SNAP_EINVAL, SNAP_ENOMEM. */
int snap__dek_cache_new(snap__dek_cache **out, size_t capacity);
/** Wipes every key and frees the cache. NULL is a no-op. */
void snap__dek_cache_free(snap__dek_cache *c);
/** Copies the key of `unit` into `dek` when cached with generation `gen`
 *  (0: any; `*gen_out`, may be NULL, receives it). Counts a hit or a miss. */
bool snap__dek_cache_get(snap__dek_cache *c, const char *unit, size_t len, uint32_t gen,
                         uint8_t dek[SNAP_DEK_BYTES], uint32_t *gen_out);
/** The cache's epoch: it moves on with every drop and clear. A key read
 *  from the key table after taking the epoch is put with it, and is then
 *  not cached when a drop came between (it may be the key dropped). */
uint64_t snap__dek_cache_epoch(snap__dek_cache *c);
/** snap__dek_cache_put() epoch that always caches (a key just created). */
#define SNAP__DEK_CACHE_ANY_EPOCH UINT64_MAX
/** Caches a copy of `dek` for `unit`, evicting the least recently used key
 *  when full; an older generation never replaces a newer one, and nothing
 *  is cached when the cache's epoch is no longer `epoch`. SNAP_ENOMEM. */
int snap__dek_cache_put(snap__dek_cache *c, const char *unit, size_t len, uint32_t gen,
                        const uint8_t dek[SNAP_DEK_BYTES], uint64_t epoch);
/** Wipes and removes the key of `unit`, if cached. */
void snap__dek_cache_drop(snap__dek_cache *c, const char *unit, size_t len);
/** Wipes and removes every key. */
void snap__dek_cache_clear(snap__dek_cache *c);
void snap__dek_cache_stats(snap__dek_cache *c, snap__dek_cache_counts *out);

/**
 * Whether `o` encrypts in envelope mode (snap_options_set_key_mode()):
 * then `*kr` and `*context` receive its encryption keyring and context.
 */
bool snap__options_envelope(const snap_options *o, snap_keyring **kr, const char **context);

/** Whether `o` sets an encryption keyring (either key mode): then `*kr` and
 *  `*context` receive it and its context. */
bool snap__options_encryption(const snap_options *o, snap_keyring **kr, const char **context);

/** The largest decoded state `o` accepts (snap_options_set_limits(); the
 *  built-in 1 GiB when unset): a streamed state larger than this loads only
 *  through a stream reader, never into one buffer. */
size_t snap__options_max_decoded(const snap_options *o);

/** What a body states about its state's type (frame fields 4 and 5,
 *  docs/FORMAT.md), bound like the rest of the header. Lengths of 0: absent. */
typedef struct snap__typing {
  const char *manifest; /**< not NUL-terminated when read from a body */
  size_t manifest_len;
  const uint8_t *metadata;
  size_t metadata_len;
} snap__typing;

/** snap__body_encode_envelope() (`k` NULL: snap__body_encode_checked()) of a
 *  body that also states `t` (NULL or all absent: nothing). The caller checked
 *  the manifest (snap_manifest_check()) and the metadata's length. */
int snap__body_encode_typed(const char *pid, int64_t seq, snap_format fmt, const void *state,
                            size_t len, const snap_options *o, const snap__envelope_key *k,
                            const snap__typing *t, snap_buf *out, unsigned *stages);

/** What a body's header states, without keys and without decoding (`t`'s
 *  pointers point into `body`): after a successful decode of the same body,
 *  authenticated values. SNAP_EFORMAT/SNAP_ECORRUPT for a header that does
 *  not parse. */
int snap__body_typing(const void *body, size_t body_len, snap__typing *t);

/* ---- streamed states (stream_encode.c, stream_decode.c) -------------------- */

#include "snap/stream.h"

/** snap_stream_encoder_new() sealed with the unit's data key `k` (envelope
 *  mode; NULL: the options' keys) and stating `t` in its head (NULL or all
 *  absent: nothing). The caller checked the manifest and metadata. */
int snap__stream_encoder_new_typed(snap_stream_encoder **out, const char *pid, int64_t seq,
                                   snap_format fmt, const snap_options *o, size_t chunk_size,
                                   const snap__envelope_key *k, const snap__typing *t,
                                   snap_chunk_sink sink, void *ud);

/** snap_stream_decoder_open() with the unit's data key for an envelope head
 *  (ignored for any other head). */
int snap__stream_decoder_open_envelope(snap_stream_decoder **out, const char *pid, int64_t seq,
                                       const void *head, size_t head_len, const snap_options *o,
                                       const uint8_t dek[SNAP_DEK_BYTES], uint64_t max_plain,
                                       snap_stream_info *info);

#endif
