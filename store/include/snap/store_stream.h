/**
 * @file snap/store_stream.h
 * @brief Streamed saves and loads: states of any size, in memory bounded by
 *        the chunk size (docs/STREAMS.md).
 *
 * A streamed save writes the state piece by piece through the same options
 * pipeline as snap_save() (payload validation, compression, encryption or
 * MAC, the same per-pid resolution), as sealed chunk records staged by the
 * backend, then publishes the snapshot in one small commit: it becomes
 * visible, and retention applies, only when snap_save_stream_commit()
 * returns SNAP_OK. A writer that fails, is aborted or whose process dies
 * leaves nothing visible; its staged chunks are reclaimed.
 *
 * A stream reader selects like snap_load() (criteria, fallback over
 * undecodable snapshots) and reads the state piece by piece: a byte reaches
 * the caller only once its chunk is authenticated. It reads ordinary
 * (non-streamed) snapshots too. snap_load() and its siblings load a streamed
 * snapshot whose state fits the reader's limit (snap_options_set_limits(),
 * 1 GiB by default) into one buffer, and refuse a larger one with
 * SNAP_ETOOBIG naming the stream reader.
 */
#ifndef SNAP_STORE_STREAM_H
#define SNAP_STORE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/store.h"
#include "snap/stream.h"

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A streamed save in progress. */
typedef struct snap_save_stream snap_save_stream;

/**
 * Begins a streamed save of (pid, seq) in format `fmt` at `timestamp` (ms, or
 * SNAP_TIMESTAMP_AUTO: the time of the commit), with the options resolved as
 * for snap_save() from `opts` (may be NULL) and what `ext` asks (may be NULL:
 * manifest, metadata, SNAP_SAVE_IF_LATEST, checked at the commit).
 * `chunk_size` is the payload bytes per chunk record (0:
 * SNAP_STREAM_CHUNK_DEFAULT, 1 MiB). Errors: those of snap_save() for the
 * arguments, SNAP_EUNSUPPORTED when the backend stores no streams (backend
 * ABI version 6), the backend's own. `*out` is NULL on failure.
 */
SNAP_API int snap_save_stream_begin(snap_store *st, const char *pid, int64_t seq,
                                    int64_t timestamp, snap_format fmt, const snap_options *opts,
                                    const snap_save_ext *ext, size_t chunk_size,
                                    snap_save_stream **out);

/**
 * The next `len` bytes of the state (any split). Validated, compressed and
 * sealed incrementally; complete chunk records go to the backend's staging.
 * Errors: SNAP_EFORMAT (the bytes cannot be a valid state), SNAP_EFULL /
 * SNAP_EIO (the staging could not be written), SNAP_ENOMEM. A failure is
 * sticky: the save can then only be aborted.
 */
SNAP_API int snap_save_stream_write(snap_save_stream *w, const void *data, size_t len);

/**
 * Ends the state (SNAP_EFORMAT unless it is one complete value; a 0-byte
 * state is refused as by snap_save()), makes the chunks durable and
 * publishes the snapshot with retention applied, as snap_save() does. `meta`
 * (may be NULL) receives what was stored (stored_len: the head and all
 * records). Frees `w` whatever the outcome; on failure nothing is visible.
 */
SNAP_API int snap_save_stream_commit(snap_save_stream *w, snap_meta *meta);

/** Abandons a streamed save: nothing becomes visible, its staged chunks are
 *  discarded. Frees `w`. NULL is a no-op. */
SNAP_API void snap_save_stream_abort(snap_save_stream *w);

/** Bytes of state written so far. */
SNAP_API uint64_t snap_save_stream_written(const snap_save_stream *w);

/** snap_load_stream_open() flag: authenticate every chunk before handing
 *  out the first byte (a second read of the stream). A verification failure
 *  then skips to an older snapshot as snap_load() does for a damaged body,
 *  instead of failing after bytes were delivered. */
#define SNAP_LOAD_STREAM_VERIFY_FIRST 0x1u

/** What a stream reader opened. */
typedef struct snap_stream_meta {
  int64_t seq;
  int64_t timestamp;
  snap_format format;
  unsigned stages;   /**< SNAP_STAGE_* bits of the stored body or chunks */
  uint64_t length;   /**< the state's length in bytes */
  bool streamed;     /**< stored as chunk records (false: an ordinary body) */
  unsigned skipped;  /**< newer matching snapshots skipped as undecodable */
  int skip_reason;   /**< the first skip's status, or SNAP_OK */
} snap_stream_meta;

/** A stream reader. */
typedef struct snap_load_stream snap_load_stream;

/**
 * Opens the youngest snapshot of `pid` matching `c` for reading, with the
 * options resolved as for snap_load(). `*out` is NULL when none matches (not
 * an error). A snapshot whose head or body does not decode as damage
 * (SNAP_ECORRUPT, SNAP_EFORMAT) is skipped for an older one, up to the
 * store's max_load_attempts, as snap_load() does; with
 * SNAP_LOAD_STREAM_VERIFY_FIRST so is one whose chunks fail to verify.
 * `meta` (may be NULL) receives what was opened. Flags other than
 * SNAP_LOAD_STREAM_VERIFY_FIRST are SNAP_EINVAL.
 */
SNAP_API int snap_load_stream_open(snap_store *st, const char *pid, const snap_criteria *c,
                                   const snap_options *opts, unsigned flags,
                                   snap_load_stream **out, snap_stream_meta *meta);

/**
 * Reads up to `cap` bytes of the state into `buf`; `*got` = 0 at its end,
 * which is only reported once the whole stream was authenticated and had
 * its declared length. Without SNAP_LOAD_STREAM_VERIFY_FIRST a chunk found
 * altered, missing or out of order after bytes were delivered fails the read
 * (SNAP_EAUTH for keyed streams, SNAP_ECORRUPT otherwise): the caller must
 * discard what it read. A failure is sticky.
 */
SNAP_API int snap_load_stream_read(snap_load_stream *r, void *buf, size_t cap, size_t *got);

/** Closes a reader. NULL is a no-op. */
SNAP_API void snap_load_stream_close(snap_load_stream *r);

/**
 * Reclaims at most `max` orphans of streamed saves (the staged chunks of
 * writers that died, the chunks of snapshots whose removal was interrupted),
 * never a live writer's; `*reclaimed` (may be NULL) receives how many. A
 * backend also reclaims on open. SNAP_EUNSUPPORTED without streams.
 */
SNAP_API int snap_store_stream_sweep(snap_store *st, uint64_t max, uint64_t *reclaimed);

/**
 * Stores in `to` the streamed snapshot (pid, seq) of `from` whose head is
 * `head` (the body snap_store_list() returned), byte for byte: the same head
 * and chunk records, read and written one record at a time, at `timestamp`
 * and without retention, like snap_store_put_raw() for an ordinary body (the
 * target reads it only with the source's keys). Visible in `to` only once
 * every record is there; it replaces what `to` has at (pid, seq). Errors:
 * SNAP_EINVAL (not a head), SNAP_ENOTFOUND (the source's row is gone or was
 * replaced since it was listed), SNAP_EUNSUPPORTED (a backend without
 * streams), the backends' own.
 */
SNAP_API int snap_store_copy_stream(snap_store *from, snap_store *to, const char *pid,
                                    int64_t seq, int64_t timestamp, const void *head,
                                    size_t head_len);

/** Whether the backend stores streamed snapshots (backend ABI version 6). */
SNAP_API bool snap_store_streams(const snap_store *st);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_STORE_STREAM_H */
