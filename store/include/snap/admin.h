/**
 * @file snap/admin.h
 * @brief Operator functions of the store: enumeration without decoding,
 *        re-encoding in place beside live writers, raw copies and online
 *        backups. They are what `snapctl` is built on.
 *
 * Each needs an optional operation of the backend (ABI version 2, see
 * snap/sys/backend.h); on a backend that lacks it the function fails with
 * SNAP_EUNSUPPORTED, naming the backend and the operation. Every function is
 * thread-safe and may run while other threads and processes save, load and
 * delete on the same store.
 */
#ifndef SNAP_ADMIN_H
#define SNAP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/export.h"
#include "snap/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Enumeration                                                               */
/* ------------------------------------------------------------------------ */

/** A page of persistence ids (snap_store_list_pids()). */
typedef struct snap_pid_page {
  char **pids; /**< `n` NUL-terminated pids in ascending byte order */
  size_t n;
} snap_pid_page;

/** Initializer of an empty snap_pid_page. */
#define SNAP_PID_PAGE_INIT                                                                         \
  { NULL, 0 }

/**
 * Lists up to `limit` (>= 1) distinct pids greater than `after` (NULL: from
 * the first) in ascending byte order (strcmp order). `out`'s previous content
 * is disposed of and replaced. To resume a sweep, pass the last pid of a page
 * as the next `after`; a page shorter than `limit` is the last one.
 * Release with snap_pid_page_dispose().
 * Errors: SNAP_EINVAL, SNAP_EUNSUPPORTED (backend without list_pids),
 * SNAP_ENOMEM, the backend's errors.
 */
SNAP_API int snap_store_list_pids(snap_store *st, const char *after, size_t limit,
                                  snap_pid_page *out);

/** Frees a page's pids and resets it to empty. NULL is a no-op. */
SNAP_API void snap_pid_page_dispose(snap_pid_page *page);

/** One stored snapshot as found by an enumeration, with its frame header read. */
typedef struct snap_entry {
  char *pid; /**< owned by the page */
  int64_t seq;
  int64_t timestamp;    /**< ms since the epoch */
  size_t stored_len;    /**< bytes of the stored body */
  int header_status;    /**< SNAP_OK, or why the frame header is unreadable (SNAP_EFORMAT,
                             SNAP_ECORRUPT); the four fields below are then 0 */
  snap_format format;   /**< declared payload format */
  unsigned stages;      /**< SNAP_STAGE_* bits the body went through */
  uint32_t key_version; /**< 0 for a body neither encrypted nor MAC'd */
  uint64_t orig_len;    /**< length of the state before compression */
  uint8_t *body;        /**< the stored body (`stored_len` bytes) when asked for, else NULL */
  /** The manifest the header states (frame field 4), owned by the page; NULL:
   *  none. Read without keys, so not yet authenticated: a load checks it. */
  char *manifest;
  /** The codec of a compressed body (SNAP_COMPRESSION_ZLIB or _ZSTD; NONE
   *  for an uncompressed one) and the trained dictionary it names (0: none),
   *  from the header like the fields above. */
  snap_compression codec;
  uint32_t dict_id;
  /** A streamed snapshot (docs/STREAMS.md): its body is the stream's head
   *  and its state lies in `chunk_count` chunk records of `stream_bytes`
   *  bytes in all beside the row, as the head's chunking field (frame field
   *  6) states, read without keys like the fields above. `stored_len` stays
   *  the head's (the bytes of `body`): the snapshot takes stored_len +
   *  stream_bytes. false and 0 for an ordinary body. */
  bool streamed;
  uint64_t chunk_count;
  uint64_t stream_bytes;
} snap_entry;

/** A page of snapshots (snap_store_list()). */
typedef struct snap_entry_page {
  snap_entry *entries;
  size_t n;
} snap_entry_page;

/** Initializer of an empty snap_entry_page. */
#define SNAP_ENTRY_PAGE_INIT                                                                       \
  { NULL, 0 }

/**
 * Lists up to `limit` (>= 1) stored snapshots ordered by (pid, seq), each
 * strictly after the cursor (after_pid, after_seq); after_pid NULL starts at
 * the first (after_seq is then ignored). With `pid` non-NULL only that pid's
 * snapshots are listed. Nothing is decoded: the metadata come from the row
 * and the body's frame header (snap_body_inspect()), and a body whose header
 * is unreadable is still listed, with its header_status. With `bodies` each
 * entry also holds a copy of its stored body. To resume, pass the last
 * entry's pid and seq as the next cursor; a page shorter than `limit` is the
 * last. `out`'s previous content is disposed of and replaced. Release with
 * snap_entry_page_dispose().
 * Errors: SNAP_EINVAL, SNAP_EUNSUPPORTED (backend without list_rows),
 * SNAP_ENOMEM, the backend's errors.
 */
SNAP_API int snap_store_list(snap_store *st, const char *pid, const char *after_pid,
                             int64_t after_seq, size_t limit, bool bodies, snap_entry_page *out);

/** Frees a page's entries and resets it to empty. NULL is a no-op. */
SNAP_API void snap_entry_page_dispose(snap_entry_page *page);

/**
 * Decodes a body found by snap_store_list() for (pid, seq) exactly as a load
 * of it would: with the call's `opts` (may be NULL) over the per-pid resolver,
 * the store's defaults and configuration, restricted to what the backend
 * supports. The state replaces `out`'s content; `*fmt` and `*stages` (may be
 * NULL) receive its format and stages. No fallback: this one body.
 * Errors: those of snap_body_decode() (SNAP_ECORRUPT, SNAP_EFORMAT, SNAP_EAUTH,
 * SNAP_ENOKEY, SNAP_ETOOBIG, ...), SNAP_EINVAL.
 */
SNAP_API int snap_store_decode(snap_store *st, const char *pid, int64_t seq, const void *body,
                               size_t body_len, const snap_options *opts, snap_buf *out,
                               snap_format *fmt, unsigned *stages);

/* ------------------------------------------------------------------------ */
/* Re-encoding in place                                                      */
/* ------------------------------------------------------------------------ */

/** What snap_store_rewrite() did with one body (snap_rewrite.outcome). */
typedef enum snap_rewrite_outcome {
  SNAP_REWRITE_DONE = 0,    /**< re-encoded and replaced */
  SNAP_REWRITE_CURRENT = 1, /**< already authenticated as the options write: left alone */
  SNAP_REWRITE_CHANGED = 2, /**< a newer save replaced the body since it was read: left alone */
  SNAP_REWRITE_GONE = 3,    /**< deleted since it was read: not brought back */
  SNAP_REWRITE_SKIPPED = 4  /**< snap_store_migrate(): not on the way to the target: left alone */
} snap_rewrite_outcome;

/** One body to re-encode (an element of the array given to snap_store_rewrite()). */
typedef struct snap_rewrite {
  const char *pid;
  int64_t seq;
  const void *body; /**< the stored body as it was read (e.g. snap_entry.body) */
  size_t body_len;
  int status;           /**< out: SNAP_OK, or why this body was not rewritten */
  int outcome;          /**< out: a snap_rewrite_outcome, when status is SNAP_OK */
  unsigned stages;      /**< out: the stages of the body now stored (new or current) */
  uint32_t key_version; /**< out: its key version */
} snap_rewrite;

/**
 * Re-encodes stored bodies with the options a save would use now (the call's
 * `opts` over the per-pid resolver, the store's defaults and configuration),
 * e.g. under the keyring's new active key, keeping state, format, pid, seq and
 * timestamp. A body already encrypted (or, when only integrity is configured,
 * MAC'd) under the active key version is left alone (SNAP_REWRITE_CURRENT)
 * unless `force`. Each other body is decoded with the same options (so a
 * plaintext body is read only when the options accept unauthenticated
 * bodies), re-encoded, and all are then replaced in one conditional backend
 * write: a body is replaced only if the stored one is still byte for byte the
 * body that was read, so a concurrent newer save is never overwritten and a
 * deleted snapshot never comes back. A streamed snapshot (its body is a
 * stream head) is rewritten on its own, chunk by chunk in bounded memory, and
 * published by the same rule (docs/STREAMS.md, "Rewriting a stream"); on a
 * backend without stream_replace (ABI version 7) its item is
 * SNAP_EUNSUPPORTED and it is left as it is.
 * Each item gets its own status (a decoding failure: SNAP_EAUTH, SNAP_ENOKEY,
 * SNAP_ECORRUPT, SNAP_EFORMAT, ...) and outcome. Returns SNAP_OK when no item
 * failed, otherwise the first failure's code.
 * Errors beyond the items': SNAP_EINVAL, SNAP_EUNSUPPORTED (backend without
 * replace), SNAP_ENOMEM.
 */
SNAP_API int snap_store_rewrite(snap_store *st, snap_rewrite *items, size_t n,
                                const snap_options *opts, bool force);

/** snap_store_rewrite_ex() flags. */
/** Rewrite every body, current or not (snap_store_rewrite()'s `force`). */
#define SNAP_REWRITE_FORCE 1u
/** A body is current only if it also names the codec and dictionary a save
 *  writes now (snap_options_codec_target()): rewriting moves bodies to a new
 *  codec or dictionary. An uncompressed body that the save would leave
 *  uncompressed (under the minimum size, or not made smaller) stays as it
 *  is and counts as current. */
#define SNAP_REWRITE_RECOMPRESS 2u

/**
 * snap_store_rewrite() with flags (SNAP_REWRITE_*): the same conditional
 * replace, resumable and safe beside live writers. Unknown flag bits are
 * SNAP_EINVAL.
 */
SNAP_API int snap_store_rewrite_ex(snap_store *st, snap_rewrite *items, size_t n,
                                   const snap_options *opts, unsigned flags);

/**
 * The codec and dictionary id a save of `pid` with `opts` would write now
 * (snap_options_codec_target() over the store's resolved options, its
 * dictionaries found by name). Compare with snap_body_inspect_codec().
 */
SNAP_API int snap_store_codec_target(snap_store *st, const char *pid, const snap_options *opts,
                                     snap_compression *codec, uint32_t *dict_id);

/* ------------------------------------------------------------------------ */
/* Migration to a manifest (docs/STORE.md, "Migration")                      */
/* ------------------------------------------------------------------------ */

/** Where a stored manifest stands with respect to a migration's target. */
typedef enum snap_migrate_kind {
  SNAP_MIGRATE_CURRENT = 0, /**< the target itself */
  SNAP_MIGRATE_OLDER = 1,   /**< to migrate: `T/m` with m < n for the target `T/n`, or a
                                 manifest from which registered upcasters lead to the target */
  SNAP_MIGRATE_NEWER = 2,   /**< `T/m` with m > n: left alone */
  SNAP_MIGRATE_OTHER = 3    /**< another type, or no manifest: left alone */
} snap_migrate_kind;

/**
 * Classifies `manifest` (NULL: a body that states none) for a migration to
 * `target` into `*kind` (a snap_migrate_kind). A manifest `T/n` is a type
 * name, a slash and a decimal version; one not of that form is OTHER unless
 * registered upcasters lead from it to the target. Reads the store's
 * upcasters only. Errors: SNAP_EINVAL (NULL store or kind, invalid target).
 * Thread-safe.
 */
SNAP_API int snap_store_migrate_kind(snap_store *st, const char *manifest, const char *target,
                                     int *kind);

/**
 * Brings stored bodies to manifest `target`: each body whose header states an
 * OLDER manifest (snap_store_migrate_kind()) is decoded, its state run
 * through the registered upcasters to `target` (as snap_load_as() does) and
 * encoded again with the options a save would use now (the call's `opts` over
 * the per-pid resolver, the store's defaults and configuration), stating
 * `target` and the metadata the old body stated, keeping pid, seq and
 * timestamp; the manifest column follows. All are then replaced in one
 * conditional backend write, exactly as snap_store_rewrite() does: a body is
 * replaced only if the stored one is still byte for byte the body that was
 * read, so a newer save is never overwritten and a deleted snapshot never
 * comes back. A body already at the target is SNAP_REWRITE_CURRENT, a NEWER
 * or OTHER one SNAP_REWRITE_SKIPPED; neither is decoded. A streamed
 * snapshot is read whole within the reader's limit (the upcasters take a
 * whole state; SNAP_ETOOBIG beyond it) and written back chunk by chunk as
 * snap_store_rewrite() does.
 * Each item gets its own status: a decoding failure, SNAP_ENOTFOUND naming a
 * missing step, an upcaster's own code, SNAP_EFORMAT for an upcaster's invalid
 * output; such a body is left as it was. Returns SNAP_OK when no item failed,
 * otherwise the first failure's code. Errors beyond the items': SNAP_EINVAL,
 * SNAP_EUNSUPPORTED (a backend without replace_typed, ABI version 5),
 * SNAP_ENOMEM. Thread-safe; safe beside live writers and other processes.
 */
SNAP_API int snap_store_migrate(snap_store *st, snap_rewrite *items, size_t n, const char *target,
                                const snap_options *opts);

/* ------------------------------------------------------------------------ */
/* Raw copies and backups                                                    */
/* ------------------------------------------------------------------------ */

/** One body stored as it is (an element of the array given to snap_store_put_raw()). */
typedef struct snap_raw_row {
  const char *pid;
  int64_t seq;
  int64_t timestamp; /**< ms since the epoch, >= 0 */
  const void *body;  /**< a framed body, e.g. snap_entry.body of another store */
  size_t body_len;
  int status; /**< out: SNAP_OK, or why this row was not stored */
} snap_raw_row;

/**
 * Stores bodies exactly as given, with their pid, seq and timestamp, in one
 * backend write (replacing rows with the same (pid, seq)); retention is not
 * applied, so a copy keeps every snapshot, but it is agreed with the data set
 * as by a first save (the configuration's "keep" is stored with a data set
 * that has none; a conflicting one fails every row with SNAP_ECONFIG, see
 * docs/STORE.md "Retention"). Nothing is decoded, but each body's
 * frame header must be readable (SNAP_EFORMAT/SNAP_ECORRUPT otherwise) and the
 * pid, seq and timestamp valid (SNAP_EINVAL); such rows are not stored. Each
 * row gets its own status; returns SNAP_OK when all were stored, otherwise the
 * first failure's code. Works on every backend.
 */
SNAP_API int snap_store_put_raw(snap_store *st, snap_raw_row *rows, size_t n);

/**
 * Writes a consistent copy of the whole store, taken while it stays in use, to
 * the new file `path`, which the same backend opens as a store. `path` must
 * not exist (SNAP_EINVAL). Errors: SNAP_EUNSUPPORTED (backend without backup),
 * SNAP_EIO, SNAP_EBUSY, SNAP_ENOMEM. On failure no file is left at `path`.
 */
SNAP_API int snap_store_backup(snap_store *st, const char *path);

/**
 * Writes a consistent copy of the store's separate key store (the
 * "envelope": {"keystore": ...} section, docs/STORE.md) to the new file
 * `path`, as snap_store_backup() does for the data. Take it after the data's
 * backup: keys are created before the bodies sealed with them, so the later
 * copy holds the key of every body in the earlier one (but those of units
 * forgotten in between). Keep such copies short-lived: forgetting a unit
 * reaches its bodies in data backups only once no key-store copy holds its
 * key. Errors: SNAP_EINVAL (NULL, empty or existing path), SNAP_ENOTFOUND
 * (no separate key store: the key table is in the data, and its backup holds
 * it), SNAP_EUNSUPPORTED, SNAP_EIO, SNAP_EBUSY, SNAP_ENOMEM. On failure no
 * file is left at `path`.
 */
SNAP_API int snap_store_backup_keys(snap_store *st, const char *path);

/** Whether the store keeps its envelope key table in a separate key store
 *  (`*apart` true) or in its data. SNAP_EINVAL for a NULL argument. */
SNAP_API int snap_store_keys_apart(const snap_store *st, bool *apart);

/* ------------------------------------------------------------------------ */
/* Trained zstd dictionaries (docs/STORE.md, "Dictionaries")                 */
/* ------------------------------------------------------------------------ */

/** One stored dictionary, as listed. */
typedef struct snap_dict_info {
  uint32_t id;       /**< derived from its bytes (docs/FORMAT.md, "Dictionaries") */
  char name[256];    /**< unique in the data set */
  int64_t created;   /**< microseconds since the epoch */
  uint64_t size;     /**< bytes of the dictionary */
  size_t stored_len; /**< bytes stored (sealed like a body) */
  unsigned stages;   /**< SNAP_STAGE_* bits it is sealed with */
} snap_dict_info;

/**
 * Stores a dictionary (zstd's trainer's output, or raw content) under `name`
 * in the data set, sealed like a body with the store's own options (encrypted
 * when the store encrypts); `*id` (may be NULL) receives its id. Immutable:
 * an existing id or name is SNAP_ECONFLICT. Saves choose it with
 * snap_options_set_dictionary() or the document's "dictionary" key.
 * Errors: SNAP_EINVAL, SNAP_ECONFLICT, SNAP_EUNSUPPORTED (a backend without a
 * dictionary table), the backend's errors.
 */
SNAP_API int snap_store_dict_add(snap_store *st, const char *name, const void *bytes, size_t len,
                                 uint32_t *id);

/**
 * The dictionary with `id` (or named `name` when `id` is 0), loaded on first
 * use and cached for the store's lifetime; `*out` holds a reference released
 * with snap_dict_free(). SNAP_ENOTFOUND naming it when the store lacks it;
 * a sealed dictionary that does not open gives the decoder's error.
 */
SNAP_API int snap_store_dict_get(snap_store *st, uint32_t id, const char *name, snap_dict **out);

/** Every stored dictionary in ascending id order: `*out` (free with
 *  snap_free()) holds `*n` entries. */
SNAP_API int snap_store_dict_list(snap_store *st, snap_dict_info **out, size_t *n);

/** Counts the stored snapshots whose body names dictionary `id` (reads the
 *  frame header of every body: an administrative scan). */
SNAP_API int snap_store_dict_uses(snap_store *st, uint32_t id, uint64_t *count);

/**
 * Removes dictionary `id`. Without `force` it refuses with SNAP_EBUSY while
 * any stored snapshot uses it (the bodies would become unreadable);
 * SNAP_ENOTFOUND when there is no such dictionary.
 */
SNAP_API int snap_store_dict_remove(snap_store *st, uint32_t id, bool force);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_ADMIN_H */
