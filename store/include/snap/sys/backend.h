/**
 * @file snap/sys/backend.h
 * @brief For backend authors: the versioned table of operations a storage
 *        backend implements. Users of snapstore do not need this header.
 *
 * A backend stores opaque bodies with the columns it needs to select and
 * prune (pid, seq, timestamp); it never sees keys or plaintext. The built-in
 * "memory", "sqlite" and "postgres" backends implement exactly this interface.
 *
 * ABI rules: the first field is the ABI version the table was written for;
 * fields are only ever appended (each version's first field is marked below);
 * optional operations may be NULL and the host checks before calling. The host
 * copies the table when it is registered, so it may live in read-only memory.
 * Backends never link against snapstore: everything they need from the host
 * arrives in the snap_host table given to open().
 */
#ifndef SNAP_SYS_BACKEND_H
#define SNAP_SYS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/observe.h"
#include "snap/store.h"

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. */
#define SNAP_BACKEND_ABI_VERSION 8u

/**
 * snap_backend.open_conf() flag (ABI version 3): open an existing data set
 * only. Never create a file, directory, table or schema; a data set that does
 * not exist fails with SNAP_ENOTFOUND naming where it was looked for. The
 * host asks for it when an operator only reads (snap_plugin_open_ex() with
 * SNAP_PLUGIN_NO_CREATE). A backend with nothing to create ignores it.
 * Backends of ABI version 1 and 2 never see it: the host opens them as
 * always.
 */
#define SNAP_BACKEND_NO_CREATE 0x1u

/**
 * Something a backend saw that the store's observer, metrics and log should
 * know (snap_host.report, ABI version 2). Pointers are valid during the call.
 */
typedef struct snap_backend_report {
  int kind;        /**< SNAP_EVENT_PRUNE, SNAP_EVENT_PRUNE_FAILED or SNAP_EVENT_BUSY_RETRY */
  int status;      /**< SNAP_OK, or the failure's SNAP_E* code (PRUNE_FAILED, BUSY: SNAP_EBUSY) */
  const char *pid; /**< the persistence id concerned, or NULL */
  int64_t seq;     /**< the save that triggered a prune, or -1 */
  uint64_t count;  /**< PRUNE: snapshots removed; BUSY_RETRY: waits so far for this call */
  const char *detail; /**< a readable reason, or NULL */
} snap_backend_report;

/**
 * A reader over a backend's configuration object, created by
 * `snap_host.conf_open` and freed by `snap_host.conf_finish` (ABI version 2).
 */
typedef struct snap_conf snap_conf;

/** conf_* flag: an absent key is an error ("missing"). */
#define SNAP_CONF_REQUIRED 0x1u
/** conf_string / conf_strings flag: an empty string is an error. */
#define SNAP_CONF_NONEMPTY 0x2u

/**
 * Services the host offers a backend (valid from open() until close()).
 * `abi_version` is the host's SNAP_BACKEND_ABI_VERSION: a backend checks it
 * before using a slot of a later version than 1.
 */
typedef struct snap_host {
  /* ---- ABI version 1 ---- */
  uint32_t abi_version;
  /** Records a detailed message for the calling thread and returns `code`. */
  int (*error)(int code, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;
  void *(*malloc)(size_t size);
  void *(*realloc)(void *ptr, size_t size);
  void (*free)(void *ptr);

  /* ---- ABI version 2: check host->abi_version >= 2 before using these ---- */

  /**
   * Reports a prune (after its transaction committed), a failed prune, or a
   * wait on a locked database. Quick; safe from any thread and with the
   * backend's own locks held. Never calls back into the backend.
   */
  void (*report)(const struct snap_host *host, const snap_backend_report *r);

  /* ---- ABI version 2, continued: the configuration reader (docs/PLUGIN.md) ---- */
  /**
   * Parses `config_json` (the string open() received; NULL reads as `{}`)
   * with the host's strict rules into `*out`. Refusals are SNAP_ECONFIG
   * naming the full key path (for a store opened from a plugin document,
   * `config.<key>`). On failure `*out` is NULL and nothing needs freeing.
   */
  int (*conf_open)(snap_conf **out, const char *config_json);
  /**
   * Getters. Each returns 1 when `key` is present and `*out` was set, 0 when
   * it is absent (`*out` untouched), or SNAP_ECONFIG naming the key (wrong
   * type, out of range, or absent with SNAP_CONF_REQUIRED). The first error
   * sticks: every later call returns it and does nothing, and conf_finish()
   * returns it. Strings stay valid until conf_finish(): copy what you keep.
   */
  int (*conf_string)(snap_conf *c, const char *key, unsigned flags, const char **out);
  /** An integer in [min, max], written exactly (2.5, 1e30, -0 are refused). */
  int (*conf_int)(snap_conf *c, const char *key, unsigned flags, int64_t min, int64_t max,
                  int64_t *out);
  /** `true` or `false`. */
  int (*conf_bool)(snap_conf *c, const char *key, unsigned flags, bool *out);
  /** A string among `names` (NULL-terminated): `*out` is its index. */
  int (*conf_enum)(snap_conf *c, const char *key, unsigned flags, const char *const *names,
                   int *out);
  /** An array of strings: `*out` has `*n` entries (then a NULL). */
  int (*conf_strings)(snap_conf *c, const char *key, unsigned flags, const char *const **out,
                      size_t *n);
  /**
   * Refuses `key`'s value with SNAP_ECONFIG "<full path>: <message>" (a value
   * the backend checks itself) and returns the code; it becomes the error
   * conf_finish() returns.
   */
  int (*conf_error)(snap_conf *c, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 3, 4)))
#endif
      ;
  /**
   * Refuses every key no getter asked for ("<path>: unknown key"), frees the
   * reader (always; NULL is a no-op) and returns SNAP_OK or the first error.
   */
  int (*conf_finish)(snap_conf *c);

  /* ---- ABI version 3: check host->abi_version >= 3 before using these ---- */

  /**
   * Refuses every key of `c` no getter asked for ("<path>: unknown key") and
   * returns SNAP_OK or the first error, like conf_finish() but without
   * freeing `c`: an open_conf() calls it on the reader it was given once it
   * has read its keys, before it acquires anything.
   */
  int (*conf_check)(snap_conf *c);
} snap_host;

/** One row to store (an element of the array passed to put()). */
typedef struct snap_backend_row {
  const char *pid;
  int64_t seq;
  int64_t timestamp;
  const uint8_t *body;
  size_t body_len;
  unsigned stages; /**< SNAP_STAGE_* bits of the body: an encrypted one asks for secure deletion */
  int status;      /**< out: SNAP_OK, or why this row was not stored */
} snap_backend_row;

/** Receives the row a load found; the host copies the body before returning. */
typedef int (*snap_backend_emit)(void *ctx, int64_t seq, int64_t timestamp, const void *body,
                                 size_t body_len);

/** Receives one row of an enumeration (ABI 2); the host copies what it keeps
 *  before returning, and never calls back into the backend from it. */
typedef int (*snap_backend_row_emit)(void *ctx, const char *pid, int64_t seq, int64_t timestamp,
                                     const void *body, size_t body_len);

/** Receives one pid of an enumeration (ABI 2); the host copies it. */
typedef int (*snap_backend_pid_emit)(void *ctx, const char *pid);

/** Outcome of one conditional replace (snap_backend_swap.outcome). */
typedef enum snap_swap_outcome {
  SNAP_SWAP_DONE = 0,    /**< the body was replaced */
  SNAP_SWAP_CHANGED = 1, /**< the stored body is no longer the expected one: left alone */
  SNAP_SWAP_GONE = 2     /**< no row (pid, seq) any more: nothing stored */
} snap_swap_outcome;

/** One conditional replace (an element of the array passed to replace()). */
typedef struct snap_backend_swap {
  const char *pid;
  int64_t seq;
  const uint8_t *expected; /**< the body that was read */
  size_t expected_len;
  const uint8_t *body; /**< the body to store in its place */
  size_t body_len;
  unsigned stages; /**< SNAP_STAGE_* bits of `body`, as for snap_backend_row */
  int outcome;     /**< out: a snap_swap_outcome (meaningful when status is SNAP_OK) */
  int status;      /**< out: SNAP_OK, or why this swap failed */
} snap_backend_swap;

/** snap_backend_row4.expect_seq: no condition (ABI 4). */
#define SNAP_BACKEND_ANY_SEQ INT64_MIN

/**
 * One row of put4() (ABI version 4): a row of put() and what version 4 adds.
 * The host fills `row` exactly as for put() (`row.status` is the row's out
 * status).
 */
typedef struct snap_backend_row4 {
  snap_backend_row row;
  /** The manifest the body binds (snap_save_ext), mirrored in a column that
   *  load4() selects by; NULL for none. The host checked it: UTF-8, no NUL,
   *  at most SNAP_MANIFEST_MAX bytes. */
  const char *manifest;
  /** SNAP_BACKEND_ANY_SEQ: store the row unconditionally, as put() does.
   *  Otherwise store it only if the pid's newest stored seq is this value at
   *  the moment of the write (-1: the pid has no row), checked and written
   *  atomically with respect to every other put4() on the data set, from any
   *  connection or process; rows earlier in the same call count as stored.
   *  When it is not, nothing of the row is written and `row.status` is
   *  SNAP_ECONFLICT (a conflict fails that row only). */
  int64_t expect_seq;
  /** out: with SNAP_ECONFLICT, the pid's newest stored seq (-1: none). */
  int64_t current_seq;
} snap_backend_row4;

/**
 * One record of a data set's key table (ABI version 4): the wrapped data key
 * of a shred unit, or its tombstone. The host seals and opens the record;
 * the backend stores it as opaque bytes (docs/PLUGIN.md, "Key tables").
 */
typedef struct snap_backend_key {
  const char *unit;        /**< the shred unit (UTF-8, no NUL), the table's key */
  uint32_t generation;     /**< the unit's key generation (>= 1; a tombstone may say 0) */
  uint32_t master_version; /**< master key version of `wrapped` (0 for a tombstone) */
  const uint8_t *wrapped;  /**< the wrapped-key record, or NULL: a tombstone (forgotten) */
  size_t wrapped_len;
} snap_backend_key;

/** Receives one key record (ABI 4); pointers are valid during the call only. */
typedef int (*snap_backend_key_emit)(void *ctx, const snap_backend_key *k);

/** One conditional rewrap (an element of the array passed to key_rewrap()). */
typedef struct snap_backend_key_swap {
  const char *unit;
  uint32_t generation;      /**< the generation that was read */
  uint32_t expected_master; /**< the master key version that was read */
  uint32_t master_version;  /**< the new record's master key version */
  const uint8_t *wrapped;   /**< the new record */
  size_t wrapped_len;
  int outcome; /**< out: SNAP_SWAP_DONE, SNAP_SWAP_CHANGED (another generation or version,
                    or a tombstone, is stored now) or SNAP_SWAP_GONE (no record) */
} snap_backend_key_swap;

/**
 * One conditional replace of a unit's key record (key_replace(), ABI version
 * 6): the record is replaced only while it is still, byte for byte, the live
 * record that was read.
 */
typedef struct snap_backend_key_change {
  const char *unit;
  const uint8_t *expected;  /**< the live record as read (compared byte for byte) */
  size_t expected_len;
  uint32_t generation;      /**< the new record's generation (>= 1) */
  uint32_t master_version;  /**< the new record's master key version */
  const uint8_t *wrapped;   /**< the new record (never NULL) */
  size_t wrapped_len;
} snap_backend_key_change;

/**
 * One trained zstd dictionary of a data set (ABI version 4): its id (derived
 * from its bytes, docs/FORMAT.md "Dictionaries"), its unique name, when it
 * was stored, and its bytes sealed by the host like a body (encrypted under
 * the store's keyring when the store encrypts).
 */
typedef struct snap_backend_dict {
  uint32_t id;         /**< non-zero; the table's key */
  const char *name;    /**< UTF-8, 1-255 bytes, unique in the data set */
  int64_t created;     /**< microseconds since the epoch */
  const uint8_t *body; /**< the sealed bytes */
  size_t body_len;
} snap_backend_dict;

/** Receives one dictionary (ABI 4); pointers are valid during the call only. */
typedef int (*snap_backend_dict_emit)(void *ctx, const snap_backend_dict *d);

/**
 * A stream being staged (ABI version 6): the backend's own state of one
 * stream_begin() until its stream_publish() or stream_abort().
 */
typedef struct snap_backend_stream snap_backend_stream;

/** The longest chunk record a backend stores (stream_write() refuses longer
 *  ones with SNAP_ETOOBIG; a longer one read back is SNAP_ECORRUPT). */
#define SNAP_BACKEND_CHUNK_MAX (64u << 20)

/** A reader of a streamed row's chunk records (ABI version 6), from
 *  stream_open() to stream_close(). */
typedef struct snap_backend_reader snap_backend_reader;

/** A backend's table of operations. */
typedef struct snap_backend {
  /* ---- ABI version 1 ---- */
  uint32_t abi_version;  /**< SNAP_BACKEND_ABI_VERSION the table was written for */
  const char *name;      /**< registry name: [A-Za-z0-9_.-]{1,64} */
  unsigned capabilities; /**< SNAP_CAP_* bits */

  /**
   * Validates `config_json` (a JSON object of the backend's own keys, or NULL
   * for defaults) and creates an instance in `*self`. Read it through the
   * host's reader (host->conf_open() ... host->conf_finish()) rather than a
   * JSON library of your own: unknown keys, duplicates, wrong types and bad
   * values then fail with SNAP_ECONFIG naming the key's full path, as every
   * other document does. Resources (files, connections) may be opened lazily
   * on first use.
   */
  int (*open)(void **self, const char *config_json, const snap_host *host);

  /** Releases the instance. */
  void (*close)(void *self);

  /**
   * Stores `n` rows, replacing any row with the same (pid, seq), then prunes
   * each pid saved to its newest `keep` rows (keep == 0: prune nothing).
   * Durable on return. A backend with SNAP_CAP_BATCH commits all rows in one
   * transaction; each row reports its own status, and a row's failure does
   * not fail the others. A failing prune never fails a row. Returns SNAP_OK
   * when every row was stored, otherwise the first failure's code.
   * A row that the same call's prunes would delete before the call commits
   * (at least `keep` later rows of its pid, of greater seqs, stored by the
   * call) may be reported stored without being written: what is stored when
   * the call returns is exactly what storing and pruning each row in turn
   * leaves. Must be safe to call from several threads at once.
   */
  int (*put)(void *self, snap_backend_row *rows, size_t n, uint32_t keep);

  /**
   * Finds the youngest row of `pid` (largest seq) matching all four inclusive
   * bounds of `c` and passes it to `emit` (not at all when none matches).
   * Returns SNAP_OK, emit's failure, or the backend's error.
   */
  int (*load)(void *self, const char *pid, const snap_criteria *c, snap_backend_emit emit,
              void *ctx);

  /** Deletes every row of `pid` matching all four inclusive bounds of `c`. */
  int (*remove)(void *self, const char *pid, const snap_criteria *c);

  /* ---- ABI version 2: optional operations (each may be NULL) ---- */

  /**
   * Emits up to `limit` distinct pids greater than `after` (NULL: from the
   * first), in ascending byte order (memcmp of the UTF-8 bytes, which is
   * strcmp order). The host pages with the last pid as the next `after`.
   */
  int (*list_pids)(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                   void *ctx);

  /**
   * Emits up to `limit` rows ordered by (pid, seq), each strictly after
   * (after_pid, after_seq) in that order (after_pid NULL: from the first row);
   * only rows of `pid` when `pid` is not NULL. The body passed to `emit` is
   * valid during the call only.
   */
  int (*list_rows)(void *self, const char *pid, const char *after_pid, int64_t after_seq,
                   size_t limit, snap_backend_row_emit emit, void *ctx);

  /**
   * Conditional replace of `n` rows, committed together when the backend has
   * SNAP_CAP_BATCH: each row (pid, seq) whose stored body is still byte for
   * byte `expected` gets `body`, keeping its timestamp (outcome
   * SNAP_SWAP_DONE); a row whose body differs is left alone (SNAP_SWAP_CHANGED)
   * and a missing row is never created (SNAP_SWAP_GONE). The comparison and
   * the write are atomic with respect to put() and remove(). Durable on
   * return. Returns SNAP_OK when no swap failed, otherwise the first failure.
   */
  int (*replace)(void *self, snap_backend_swap *swaps, size_t n);

  /**
   * Writes a consistent copy of the whole store, taken while it stays in use,
   * to the new file `path` (which must not exist), in the backend's own file
   * format so that the backend opens it with `path` as its location.
   */
  int (*backup)(void *self, const char *path);

  /**
   * A named integer kept with the data set, so that every process opening it
   * agrees on it (the store keeps its retention there, under "keep"). `mode`
   * is one of SNAP_SETTING_*. Returns 1 when the setting existed before the
   * call (`*value` then holds the stored value: for INIT, the one that stays),
   * 0 when it did not (for GET, `*value` is left untouched), or an error.
   * Leave it NULL when the data set lives and dies with the instance (as the
   * "memory" backend does): the store then uses what its opener says.
   */
  int (*setting)(void *self, const char *name, int mode, int64_t *value);

  /* ---- ABI version 3 ---- */

  /**
   * open() without a second parse: `config` is the host's reader positioned
   * at the backend's section of the caller's document (the document was
   * parsed once; key paths in messages are the document's, such as
   * "config.path" or "config.shards[1]"). The store's own keys in the same
   * section were already read. Read yours with host->conf_* getters, then
   * call host->conf_check(config) before acquiring anything; never
   * conf_finish() it: the host owns the reader, and its strings are valid
   * during the call only (copy what you keep). After a successful return the
   * host checks the section once more and closes the instance when a key was
   * left unread. `flags` are SNAP_BACKEND_* bits (SNAP_BACKEND_NO_CREATE);
   * ignore bits you do not know.
   * When a table of ABI version 3 sets this slot, the host calls it and never
   * open(), which such a table may leave NULL; without it the host calls
   * open() with the section as JSON text, as for versions 1 and 2.
   */
  int (*open_conf)(void **self, snap_conf *config, unsigned flags, const snap_host *host);

  /* ---- ABI version 4 ---- */

  /**
   * put() with a manifest column and conditional rows (snap_backend_row4).
   * Everything else is as for put(): one transaction with SNAP_CAP_BATCH,
   * each row its own status, prunes after each stored row, durable on
   * return, returns SNAP_OK or the first failure (SNAP_ECONFLICT included).
   * The host calls it instead of put() when the table sets it.
   */
  int (*put4)(void *self, snap_backend_row4 *rows, size_t n, uint32_t keep);

  /**
   * load() restricted to rows whose manifest column equals `manifest`
   * (byte for byte; NULL: every row, exactly as load()).
   */
  int (*load4)(void *self, const char *pid, const snap_criteria *c, const char *manifest,
               snap_backend_emit emit, void *ctx);

  /* ---- ABI version 4, continued: the key table of envelope encryption (each
   *      may be NULL; a backend sets all six or none) ---- */

  /**
   * The data set's name (the configured table), which wrapped keys are bound
   * to: a wrapped key copied to another data set does not unwrap. Constant for
   * the instance; never NULL when the key slots are set.
   */
  const char *(*dataset)(void *self);

  /** Emits the key record of `unit` (live or tombstone), or nothing when it has none. */
  int (*key_get)(void *self, const char *unit, snap_backend_key_emit emit, void *ctx);

  /**
   * Stores `k` (live, generation >= 1) as the unit's record unless the unit
   * already has a live key or a record of generation >= k->generation; then
   * emits the unit's record as it stands (`k` itself when stored). Atomic
   * with respect to every other key slot and durable on return (committed
   * before any body sealed with the key can be: the host saves after it).
   */
  int (*key_create)(void *self, const snap_backend_key *k, snap_backend_key_emit emit, void *ctx);

  /**
   * Turns the unit's record into a tombstone: the wrapped key is deleted
   * (securely where the backend can), the generation kept. A unit without a
   * record gets a tombstone of generation 0. `*generation` receives the
   * generation forgotten. Returns 1 when a live key was deleted, 0 when
   * there was none. Durable on return.
   */
  int (*key_forget)(void *self, const char *unit, uint32_t *generation);

  /** Emits up to `limit` records with a unit greater than `after` (NULL: from
   *  the first), in ascending byte order of the unit (as list_pids). */
  int (*key_list)(void *self, const char *after, size_t limit, snap_backend_key_emit emit,
                  void *ctx);

  /**
   * Conditional rewrap of `n` records, committed together: each unit whose
   * live record still has (generation, expected_master) gets the new record
   * (outcome SNAP_SWAP_DONE); anything else is left alone. Durable on return.
   */
  int (*key_rewrap)(void *self, snap_backend_key_swap *swaps, size_t n);

  /* ---- ABI version 4, continued: the dictionary table of zstd compression
   *      (each may be NULL; a backend sets all three or none). A data set's
   *      dictionaries live beside its snapshots (on every shard of a sharded
   *      backend), immutable once stored. ---- */

  /**
   * Stores `d` unless a dictionary with its id or its name exists: then
   * nothing is written and SNAP_ECONFLICT is returned (naming which). Durable
   * on return.
   */
  int (*dict_put)(void *self, const snap_backend_dict *d);

  /**
   * Emits the dictionary with id `id`, or the one named `name` when `id` is
   * 0, or (both 0 / NULL) every dictionary in ascending id order. Emitting
   * nothing for an absent one is not an error.
   */
  int (*dict_get)(void *self, uint32_t id, const char *name, snap_backend_dict_emit emit,
                  void *ctx);

  /** Deletes dictionary `id`: 1 when it existed, 0 when not. Durable on return. */
  int (*dict_remove)(void *self, uint32_t id);

  /* ---- ABI version 5 ---- */

  /**
   * replace() that also sets the manifest column (the one put4() fills and
   * load4() selects by) of each replaced row to `manifests[i]` (NULL: none),
   * for a rewrite that changes what a body states (snap_store_migrate()).
   * The same atomicity, outcomes and durability as replace(); a row left
   * alone (SNAP_SWAP_CHANGED, SNAP_SWAP_GONE) keeps its column. Optional:
   * without it a migration fails with SNAP_EUNSUPPORTED.
   */
  int (*replace_typed)(void *self, snap_backend_swap *swaps, const char *const *manifests,
                       size_t n);

  /* ---- ABI version 6: streamed snapshots (docs/STREAMS.md). A streamed
   *      snapshot is a row whose body is the stream's head, plus the chunk
   *      records staged for it. Each slot may be NULL; a backend sets all eight
   *      or none (without them streamed saves fail with SNAP_EUNSUPPORTED). ---- */

  /**
   * Starts staging the chunks of a stream for (pid, seq) in `*out`. Nothing
   * is visible to loads, enumeration or retention until stream_publish().
   * The staging is leased to the calling process: a sweep (stream_sweep(),
   * or the reclaim a backend does when it opens) never reclaims the staging
   * of a live writer, and reclaims that of a writer that died.
   */
  int (*stream_begin)(void *self, const char *pid, int64_t seq, snap_backend_stream **out);

  /**
   * Appends one opaque chunk record (1 to SNAP_BACKEND_CHUNK_MAX bytes) to
   * the staging, in bounded memory (the backend keeps no more than a bounded
   * amount of it in memory and never grows one transaction with the
   * stream). Not durable before stream_publish(). On failure the staging
   * stays usable only for stream_abort().
   */
  int (*stream_write)(void *self, snap_backend_stream *s, const void *record, size_t len);

  /**
   * Makes the staged chunks durable, then stores `row` (its body is the
   * stream's head) exactly as put4() stores one row (condition, manifest,
   * replace of the same (pid, seq), then the prune to `keep`), the row and
   * its chunks becoming visible together in one small commit. Consumes `s`
   * whatever the outcome: on failure nothing is visible and the staging is
   * discarded. Returns the row's status (also in `row->row.status`).
   */
  int (*stream_publish)(void *self, snap_backend_stream *s, snap_backend_row4 *row,
                        uint32_t keep);

  /** Discards a staging and frees `s` (NULL: no-op). Never fails. */
  void (*stream_abort)(void *self, snap_backend_stream *s);

  /**
   * Opens the chunk records of the streamed row (pid, seq) for reading, if
   * its body is still byte for byte `head` (the body a load or enumeration
   * read): SNAP_ENOTFOUND naming the pid and seq when the row is gone, was
   * replaced, or has no chunks. A row deleted after the open still reads to
   * its end: the reader holds what it reads.
   */
  int (*stream_open)(void *self, const char *pid, int64_t seq, const void *head, size_t head_len,
                     snap_backend_reader **out);

  /**
   * The next chunk record, in order: `*record` and `*len` (valid until the
   * next call or stream_close()); `*len` = 0 and `*record` = NULL after the
   * last one. In bounded memory: one record at a time.
   */
  int (*stream_next)(void *self, snap_backend_reader *r, const void **record, size_t *len);

  /** Closes a reader and frees `r` (NULL: no-op). */
  void (*stream_close)(void *self, snap_backend_reader *r);

  /**
   * Reclaims at most `max` orphans (the stagings of writers that died, the
   * chunks of rows that were deleted when their removal was interrupted);
   * `*reclaimed` (may be NULL) receives how many. Never touches the staging
   * of a live writer nor the chunks of a stored row.
   */
  int (*stream_sweep)(void *self, uint64_t max, uint64_t *reclaimed);

  /* ---- ABI version 6, continued: the key table (optional) ---- */

  /**
   * Conditional replace of one key record: when the unit's record is live
   * and its stored bytes equal `c->expected`, its generation, master key
   * version and bytes become `c`'s. Returns SNAP_SWAP_DONE, SNAP_SWAP_CHANGED
   * (another record, or a tombstone, is stored now: left alone) or
   * SNAP_SWAP_GONE (no record), or a negative status. Atomic with respect to
   * every other key slot and durable on return. It is how a unit's key set
   * changes generation (snap_renew_keys(), docs/STORE.md "Key generations").
   * Optional: without it the store cannot give a unit new data keys
   * (SNAP_EUNSUPPORTED).
   */
  int (*key_replace)(void *self, const snap_backend_key_change *c);

  /* ---- ABI version 7: check the table's abi_version >= 7 before using these ---- */

  /**
   * Publishes the staged stream `s` in place of the row (pid, seq) of `w`
   * (the pid and seq `s` was begun for) if that row's body is still, byte for
   * byte, `w->expected` (a head or an ordinary body): the staged chunks are
   * made durable first, then in one small commit the row gets `w->body` (the
   * new stream's head), `w->stages`, the manifest column `manifest` (NULL:
   * none) and the staged chunks, and keeps its timestamp; its old chunks go
   * as a deleted row's do. No prune. `w->outcome` as for replace():
   * SNAP_SWAP_CHANGED or SNAP_SWAP_GONE leave the row as it is. Consumes `s`
   * whatever the outcome (a staging not published is discarded). Returns
   * `w->status`. It is how a streamed snapshot is re-encoded chunk by chunk
   * beside live writers (snap_store_rewrite(), snap_store_migrate(),
   * docs/STREAMS.md). Optional: without it those refuse streamed snapshots
   * with SNAP_EUNSUPPORTED; everything else works.
   */
  int (*stream_replace)(void *self, snap_backend_stream *s, snap_backend_swap *w,
                        const char *manifest);

  /* ---- ABI version 8: check the table's abi_version >= 8 before using these ---- */

  /**
   * Begins a read scope on the calling thread: the load() and load4() calls
   * this thread makes until read_scope_end() may share one read transaction,
   * so that what a transaction costs to begin and end (SQLite: the WAL read
   * lock's system calls) is paid once for them all. They then all see the
   * data set as it was at the first of them. The host begins a scope only
   * around loads that were all submitted before it began (the executor's
   * batches of loads), runs no callback inside it and never nests one.
   * SNAP_OK when a scope was begun; any other status means none was (the
   * loads then run as usual, each alone) and is not an error. Optional.
   */
  int (*read_scope_begin)(void *self);

  /** Ends the calling thread's read scope, if read_scope_begin() began one. */
  void (*read_scope_end)(void *self);
} snap_backend;

/** setting() modes. */
enum {
  SNAP_SETTING_GET = 0,  /**< read only (no write: works on read-only data) */
  SNAP_SETTING_INIT = 1, /**< store `*value` unless the setting exists, atomically */
  SNAP_SETTING_SET = 2   /**< store `*value` whatever was there */
};

/** Initializer for backend authors: `static const snap_backend b = SNAP_BACKEND_INIT;` then fill.
 */
#define SNAP_BACKEND_INIT                                                                          \
  { SNAP_BACKEND_ABI_VERSION, NULL, 0u, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,     \
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,     \
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/** Function form of SNAP_BACKEND_INIT. */
static inline void snap_backend_init(snap_backend *b) {
  const snap_backend init = SNAP_BACKEND_INIT;
  *b = init;
}

/**
 * The bytes of a table written for ABI `version` (0 for a version this header
 * does not know): a host copies only these, so that the slots a table written
 * for an older version lacks stay NULL.
 */
static inline size_t snap_backend_table_size(uint32_t version) {
  switch (version) {
  case 1:
    return offsetof(snap_backend, remove) + sizeof(((snap_backend *)0)->remove);
  case 2:
    return offsetof(snap_backend, setting) + sizeof(((snap_backend *)0)->setting);
  case 3:
    return offsetof(snap_backend, open_conf) + sizeof(((snap_backend *)0)->open_conf);
  case 4:
    return offsetof(snap_backend, dict_remove) + sizeof(((snap_backend *)0)->dict_remove);
  case 5:
    return offsetof(snap_backend, replace_typed) + sizeof(((snap_backend *)0)->replace_typed);
  case 6:
    return offsetof(snap_backend, key_replace) + sizeof(((snap_backend *)0)->key_replace);
  case 7:
    return offsetof(snap_backend, stream_replace) + sizeof(((snap_backend *)0)->stream_replace);
  case 8:
    return offsetof(snap_backend, read_scope_end) + sizeof(((snap_backend *)0)->read_scope_end);
  default:
    return 0;
  }
}

/** The built-in backends (defined by the store layer). "sqlite" and
 *  "postgres" return NULL from a library built without them
 *  (-DSNAP_WITH_SQLITE=OFF, -DSNAP_WITH_POSTGRES=OFF). */
SNAP_API const snap_backend *snap_backend_memory(void);
SNAP_API const snap_backend *snap_backend_sqlite(void);
/** The built-in "postgres" backend (libpq; docs/POSTGRES.md). */
SNAP_API const snap_backend *snap_backend_postgres(void);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_SYS_BACKEND_H */
