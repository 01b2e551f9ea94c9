/**
 * @file snap/store.h
 * @brief The backend-neutral snapshot store API.
 *
 * A snapshot is {persistence id, sequence number (>= 0), timestamp (ms since
 * the epoch), format, state bytes}. Every body is encoded and decoded through
 * the pipeline (snap/pipeline.h); a backend stores opaque bodies plus the
 * columns it needs to select and prune.
 *
 * Stores are opened by backend name through the registry (snap_store_open(),
 * declared in snap/plugin.h) or directly from a backend table with
 * snap_store_open_backend(). One handle is safe to use from many threads.
 */
#ifndef SNAP_STORE_H
#define SNAP_STORE_H

#include <stdint.h>

#include "snap/observe.h"
#include "snap/pipeline.h"

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct snap_store snap_store;
struct snap_backend; /* snap/sys/backend.h */
struct cJSON;

/** Pass as a timestamp to let the store assign the current time (ms since epoch). */
#define SNAP_TIMESTAMP_AUTO INT64_MIN

/** Selection criteria: all four bounds inclusive. */
typedef struct snap_criteria {
  int64_t min_seq;
  int64_t max_seq;
  int64_t min_ts;
  int64_t max_ts;
} snap_criteria;

/** Initializer of criteria matching every snapshot (usable for static data too). */
#define SNAP_CRITERIA_LATEST_INIT                                                                  \
  { 0, INT64_MAX, 0, INT64_MAX }

/** Matches every snapshot: load with it gives the latest. A value expression in
 *  C (a compound literal) and in C++ (a braced temporary). */
#ifdef __cplusplus
#define SNAP_CRITERIA_LATEST (snap_criteria SNAP_CRITERIA_LATEST_INIT)
#else
#define SNAP_CRITERIA_LATEST ((snap_criteria)SNAP_CRITERIA_LATEST_INIT)
#endif

/** What a save stored. */
typedef struct snap_meta {
  int64_t seq;
  int64_t timestamp; /**< ms since the epoch */
  snap_format format;
  unsigned stages;   /**< SNAP_STAGE_* bits applied */
  unsigned ignored;  /**< SNAP_OPT_* groups requested but not supported, so ignored */
  size_t state_len;  /**< bytes of state given */
  size_t stored_len; /**< bytes of body stored */
  /** A conditional save (SNAP_SAVE_IF_LATEST): the pid's newest stored seq,
   *  the saved one on success, the one found on SNAP_ECONFLICT (SNAP_SEQ_NONE:
   *  the pid has none). Otherwise SNAP_SEQ_NONE. */
  int64_t current_seq;
} snap_meta;

/** A loaded snapshot. Free with snap_snapshot_free(). */
typedef struct snap_snapshot {
  char *pid;
  int64_t seq;
  int64_t timestamp;
  snap_format format;
  uint8_t *data; /**< the state, `len` bytes (NUL-terminated for convenience) */
  size_t len;
  unsigned stages;  /**< SNAP_STAGE_* bits the stored body went through */
  unsigned skipped; /**< newer matching snapshots skipped as undecodable */
  int skip_reason;  /**< status of the first skip (SNAP_ECORRUPT/SNAP_EFORMAT), or SNAP_OK */
  /** The manifest the body states (snap_save_ext.manifest; frame field 4,
   *  bound like the rest of the header), NUL-terminated; NULL: none. */
  char *manifest;
  /** The metadata the body states (frame field 5); NULL and 0: none. */
  uint8_t *metadata;
  size_t metadata_len;
  /** The manifest the body states when the state was upcast to `manifest`
   *  (snap_load_as()); otherwise the same as `manifest`. */
  char *stored_manifest;
} snap_snapshot;

/** Frees a snapshot. NULL is a no-op. */
SNAP_API void snap_snapshot_free(snap_snapshot *s);

/**
 * Parses the snapshot's state into a new cJSON tree, whichever format it was
 * stored in (msgpack maps, arrays, strings, numbers, booleans and nil map to
 * their JSON counterparts; binary and ext values are refused). The caller
 * frees the tree with cJSON_Delete(). SNAP_EFORMAT, SNAP_ENOMEM.
 */
SNAP_API int snap_snapshot_to_json(const snap_snapshot *s, struct cJSON **out);

/** Capability bits of a backend (snap_store_capabilities()). */
#define SNAP_CAP_COMPRESSION SNAP_OPT_COMPRESSION
#define SNAP_CAP_ENCRYPTION SNAP_OPT_ENCRYPTION
#define SNAP_CAP_INTEGRITY SNAP_OPT_INTEGRITY
#define SNAP_CAP_DURABLE 0x100u /**< saves survive a process crash */
#define SNAP_CAP_BATCH 0x200u   /**< several saves commit in one transaction */

/**
 * Opens a store on a backend table. `config_json` (may be NULL for defaults)
 * holds the store keys and the backend's own keys in one JSON object:
 *  - store keys: "keep" (0 keeps all; stored with the data set, see
 *    docs/STORE.md "Retention"), "keep_change" (true: change the data set's
 *    stored "keep"), "max_load_attempts" (default 3), "compression" ("none" |
 *    "zlib" | "zstd"), "compression_level" (zlib 0-9, zstd -131072 to 22),
 *    "compression_min_size" (bytes),
 *    "max_stored_size", "max_decoded_size";
 *  - every other key goes to the backend, which refuses those it does not know.
 * The document is read strictly: unknown or duplicate keys, wrong types,
 * inexact integers, NUL inside strings and bytes after the object fail with
 * SNAP_ECONFIG naming the key's path. Configuration is validated here; the
 * backend may open its resources lazily on first use (snap_store_check()
 * opens them now). Close with snap_store_close().
 */
SNAP_API int snap_store_open_backend(snap_store **out, const struct snap_backend *backend,
                                     const char *config_json);

/**
 * Checks now what would otherwise fail at first use: the options the store
 * was given (configuration keys and defaults) require no group the backend
 * cannot honour (SNAP_EUNSUPPORTED naming it); the backend's data can be
 * opened and has a schema this version understands (a missing directory is
 * SNAP_EIO, a file that is not a database SNAP_EFORMAT, both naming the path);
 * and the configuration's "keep" agrees with the data set's stored retention
 * (SNAP_ECONFIG naming both values). Reads only; a store that fails a check
 * is left as it was. snap_plugin_open() calls it unless the document says
 * "check": false.
 */
SNAP_API int snap_store_check(snap_store *st);

/** Closes the store and frees it. NULL is a no-op. Not concurrent with other calls on it. */
SNAP_API void snap_store_close(snap_store *st);

/** The backend's capability bits (SNAP_CAP_*). */
SNAP_API unsigned snap_store_capabilities(const snap_store *st);

/** The backend's name ("sqlite", "memory", ...). */
SNAP_API const char *snap_store_backend_name(const snap_store *st);

/**
 * Replaces the store's default options (the last layer of resolution) with a
 * copy of `o` (NULL clears them, leaving only the configured defaults).
 * Keyrings are borrowed and must outlive the store.
 */
SNAP_API int snap_store_set_default_options(snap_store *st, const snap_options *o);

/** Per-pid options: return the options for `pid` in `*out` (borrowed; NULL for none). */
typedef int (*snap_options_resolver)(void *ud, const char *pid, const snap_options **out);

/** Installs (or with fn == NULL removes) the per-pid options resolver. */
SNAP_API int snap_store_set_resolver(snap_store *st, snap_options_resolver fn, void *ud);

/**
 * Saves a snapshot; durable when it returns SNAP_OK (per the backend's
 * capabilities). Saving the same (pid, seq) again replaces it. The timestamp
 * is assigned by the store. After the save commits, older snapshots of the pid
 * beyond `keep` are pruned; a failing prune never fails the save.
 * `opts` may be NULL; `meta` (may be NULL) receives what was stored.
 * Errors: SNAP_EINVAL, SNAP_EFORMAT (a malformed state, or an empty one:
 * 0 bytes are neither JSON nor msgpack, so every save, batched and
 * asynchronous ones included, refuses them and stores nothing; bodies stored
 * with an empty state by earlier versions still load), SNAP_ETOOBIG,
 * SNAP_EUNSUPPORTED (a required option the backend cannot honour),
 * SNAP_ENOKEY, SNAP_EIO, SNAP_EBUSY, SNAP_EFULL, SNAP_ENOMEM.
 */
SNAP_API int snap_save(snap_store *st, const char *pid, int64_t seq, snap_format fmt,
                       const void *state, size_t len, const snap_options *opts, snap_meta *meta);

/** snap_save() with an explicit timestamp (ms since epoch, or SNAP_TIMESTAMP_AUTO). */
SNAP_API int snap_save_at(snap_store *st, const char *pid, int64_t seq, int64_t timestamp,
                          snap_format fmt, const void *state, size_t len, const snap_options *opts,
                          snap_meta *meta);

/** snap_save() of a cJSON tree, stored as compact JSON. */
SNAP_API int snap_save_json(snap_store *st, const char *pid, int64_t seq, const struct cJSON *state,
                            const snap_options *opts, snap_meta *meta);

/** One save of a batch (snap_save_batch()). */
typedef struct snap_save_req {
  const char *pid;
  int64_t seq;
  int64_t timestamp; /**< SNAP_TIMESTAMP_AUTO to let the store assign it */
  snap_format format;
  const void *state;
  size_t len;
  const snap_options *options; /**< may be NULL */
} snap_save_req;

/**
 * Saves several snapshots, committed together in as few transactions as the
 * backend allows (one, for backends with SNAP_CAP_BATCH), each as durable on
 * return as a single snap_save(). Each request succeeds or fails on its own:
 * `status[i]` and `meta[i]` (arrays of n; meta may be NULL) receive its
 * result. Returns SNAP_OK when every request succeeded, otherwise the first
 * failure's code.
 */
SNAP_API int snap_save_batch(snap_store *st, const snap_save_req *reqs, size_t n, int *status,
                             snap_meta *meta);

/** snap_save_ext.flags: store the save only if the pid's newest stored seq is
 *  still `expected_seq` (optimistic concurrency: an ETag that is the seq). */
#define SNAP_SAVE_IF_LATEST 0x1u

/** snap_save_ext.expected_seq and snap_meta.current_seq: the pid has no snapshot. */
#define SNAP_SEQ_NONE INT64_C(-1)

/**
 * What a save may ask beyond snap_save_req (snap_save_ex(), snap_save_batch_ex(),
 * snap_save_prepare_ex(), the executor's snap_request.save_ext). Zero-initialise
 * it (`snap_save_ext x = {0};` or designated initialisers): fields are only
 * ever appended, and zero means "not asked".
 */
typedef struct snap_save_ext {
  /** SNAP_SAVE_IF_LATEST, or 0. */
  unsigned flags;
  /**
   * With SNAP_SAVE_IF_LATEST: the seq of the pid's newest snapshot as the
   * caller read it (SNAP_SEQ_NONE: it read none). The save is stored only if
   * that is still the newest stored seq when it is written, checked and
   * written atomically against every other conditional save of the data set,
   * from any thread, connection or process. Otherwise nothing is stored and
   * the save fails with SNAP_ECONFLICT, its message and snap_meta.current_seq
   * giving the seq found: read again, decide again, save again. Unconditional
   * saves are not held back by it (the last writer wins, as always).
   */
  int64_t expected_seq;
  /**
   * The state's type and version, e.g. "bank.Account/3" (NULL: none): UTF-8,
   * no NUL, at most SNAP_MANIFEST_MAX bytes. Stored in the body's frame
   * (field 4, docs/FORMAT.md), so that AEAD or MAC binds it, returned by
   * loads in snap_snapshot.manifest, and copied into a column the backend
   * selects by (snap_load_manifest()).
   */
  const char *manifest;
  /** Opaque bytes stored with the state in the frame (field 5) and returned
   *  in snap_snapshot.metadata; at most SNAP_METADATA_MAX (NULL/0: none). */
  const void *metadata;
  size_t metadata_len;
} snap_save_ext;

/**
 * snap_save() of a request with what `ext` asks (NULL: as snap_save_batch()
 * of one). Errors: those of snap_save(), SNAP_EINVAL for unknown flags or an
 * expected_seq below SNAP_SEQ_NONE, SNAP_EUNSUPPORTED when the backend cannot
 * make a save conditional (ABI version 4's put4), SNAP_ECONFLICT.
 */
SNAP_API int snap_save_ex(snap_store *st, const snap_save_req *req, const snap_save_ext *ext,
                          snap_meta *meta);

/**
 * snap_save_batch() where request `i` asks what `ext[i]` says (`ext` may be
 * NULL: nothing). The conditions are checked in the batch's one transaction,
 * in order: a request sees the earlier requests of the batch as stored, and a
 * conflict fails that request only (its status SNAP_ECONFLICT).
 */
SNAP_API int snap_save_batch_ex(snap_store *st, const snap_save_req *reqs,
                                const snap_save_ext *ext, size_t n, int *status, snap_meta *meta);

/**
 * A save encoded ahead of its commit. snap_save_prepare() does all the CPU
 * work of a save (validation, option resolution, compression, encryption) and
 * snap_save_commit() only writes, so an executor can encode on one thread and
 * commit many prepared saves in one transaction on another.
 */
typedef struct snap_prepared snap_prepared;

/**
 * Validates and encodes one save; `*out` receives the prepared save (free it
 * with snap_prepared_free() whether or not it was committed). Same errors as
 * snap_save() apart from the backend's. Thread-safe.
 */
SNAP_API int snap_save_prepare(snap_store *st, const snap_save_req *req, snap_prepared **out);

/** snap_save_prepare() with what `ext` asks (NULL: nothing); the condition is
 *  checked when the save is committed. */
SNAP_API int snap_save_prepare_ex(snap_store *st, const snap_save_req *req,
                                  const snap_save_ext *ext, snap_prepared **out);

/**
 * Commits `n` prepared saves of this store together (one backend put), each
 * as durable on return as a single snap_save(); retention is applied after.
 * `status[i]` and `meta[i]` (meta may be NULL) receive each result. Returns
 * SNAP_OK when all were stored, otherwise the first failure's code. The
 * prepared saves are not freed.
 */
SNAP_API int snap_save_commit(snap_store *st, snap_prepared *const *items, size_t n, int *status,
                              snap_meta *meta);

/** Frees a prepared save. NULL is a no-op. */
SNAP_API void snap_prepared_free(snap_prepared *p);

/**
 * Loads the youngest snapshot of `pid` matching all four bounds of `c`.
 * `*out` receives it, or NULL when none matches (not an error). A newest
 * match that cannot be decoded (corrupt, unknown frame version) is skipped for
 * the next older one, up to max_load_attempts bodies in all; the snapshot
 * reports the skips. Authentication and key failures are returned as errors
 * (SNAP_EAUTH, SNAP_ENOKEY), never skipped. When every attempt was corrupt the
 * call fails with SNAP_ECORRUPT.
 */
SNAP_API int snap_load(snap_store *st, const char *pid, const snap_criteria *c,
                       const snap_options *opts, snap_snapshot **out);

/**
 * snap_load() of the snapshots whose manifest is `manifest` (byte for byte;
 * NULL: every snapshot, as snap_load()),
 * selected by the backend's manifest column (backend ABI version 4's load4;
 * SNAP_EUNSUPPORTED without it). The manifest the body binds wins over the
 * column: a row whose column says `manifest` but whose body states another
 * (or none) was altered without the key, and fails the load with
 * SNAP_ECORRUPT naming both, never skipped to an older one.
 */
SNAP_API int snap_load_manifest(snap_store *st, const char *pid, const snap_criteria *c,
                                const char *manifest, const snap_options *opts,
                                snap_snapshot **out);

/**
 * An upcaster: turns a state of manifest `from` (format `fmt`, `len` bytes)
 * into the state of manifest `to`, written into `out` (a buffer owned by the
 * store: fill it with snap_buf_set() or snap_buf_reserve()) in the format it
 * sets in `*out_fmt`. Returns SNAP_OK, or a negative SNAP_E* code (with
 * snap_error_set() for the message) to stop the load. Called from the loading
 * thread, with no store lock held; it must not call back into the store.
 */
typedef int (*snap_upcaster_fn)(void *ud, const char *from, const char *to, snap_format fmt,
                                const uint8_t *state, size_t len, snap_buf *out,
                                snap_format *out_fmt);

/**
 * Registers an upcaster from manifest `from` to manifest `to` (both valid
 * manifests, different). A manifest has at most one upcaster from it (a
 * second is SNAP_EINVAL naming the first's target), so a chain is a path:
 * T/1 -> T/2 -> T/3, or any other shape whose steps the registrations name
 * (docs/STORE.md "Upcasters"). Not concurrent with loads of this store.
 */
SNAP_API int snap_store_add_upcaster(snap_store *st, const char *from, const char *to,
                                     snap_upcaster_fn fn, void *ud);

/**
 * snap_load() that brings the state to manifest `target`: from the manifest
 * the body states, it runs the registered upcasters one after another until
 * `target` is reached (none when the body states `target`). Each step's
 * output is validated like a saved state (snap_payload_validate()); the
 * snapshot reports `stored_manifest` and `manifest` = `target`. Errors, each
 * naming the step: SNAP_ENOTFOUND when no upcaster leads on from a manifest
 * of the chain (or the body states none), SNAP_EINVAL for a chain that loops
 * or exceeds 64 steps, the upcaster's own code when it fails, SNAP_EFORMAT
 * when its output is not valid in its format. Never returns the old shape.
 */
SNAP_API int snap_load_as(snap_store *st, const char *pid, const snap_criteria *c,
                          const char *target, const snap_options *opts, snap_snapshot **out);

/** The newest snapshot of `pid`. */
SNAP_API int snap_load_latest(snap_store *st, const char *pid, const snap_options *opts,
                              snap_snapshot **out);

/** The newest snapshot of `pid` with sequence number < `seq`. */
SNAP_API int snap_load_before(snap_store *st, const char *pid, int64_t seq,
                              const snap_options *opts, snap_snapshot **out);

/** Deletes every snapshot of `pid` with sequence number <= `to_seq`. Deleting nothing succeeds. */
SNAP_API int snap_delete(snap_store *st, const char *pid, int64_t to_seq);

/** Deletes the snapshot (pid, seq) if present. */
SNAP_API int snap_delete_one(snap_store *st, const char *pid, int64_t seq);

/** Deletes every snapshot of `pid` matching all four bounds of `c`. */
SNAP_API int snap_delete_matching(snap_store *st, const char *pid, const snap_criteria *c);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_STORE_H */
