/**
 * @file snap/executor.h
 * @brief An asynchronous front for a store: requests are queued and completed
 *        through callbacks; saves that wait together are committed in one
 *        transaction (group commit) and loads are read and decoded on several
 *        threads at once.
 *
 * Guarantees (docs/PLUGIN.md has the reasoning):
 *  - Order: requests are dispatched in submission order, and the callbacks
 *    of each pid run in submission order; callbacks of different pids may run
 *    out of submission order (a finished load does not wait for a slower load
 *    of another pid). Writes are grouped only in runs of consecutive saves; a
 *    load submitted after a save of the same pid sees that save, and a load
 *    submitted before a save or delete of its pid does not see it.
 *  - Durability: a save whose callback reports SNAP_OK is exactly as durable
 *    as a synchronous snap_save() that returned SNAP_OK.
 *  - Encoding: a save is validated, compressed and encrypted on the
 *    submitting thread (snap_save_prepare()), so bad input is reported by the
 *    submit call itself and the worker only writes.
 *  - Shutdown: snap_executor_free() completes every queued request; an
 *    acknowledged save is never lost.
 */
#ifndef SNAP_EXECUTOR_H
#define SNAP_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "snap/store.h"

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An executor over one store. */
typedef struct snap_executor snap_executor;

/** Executor settings. Zero fields take the defaults of SNAP_EXECUTOR_CONFIG_INIT. */
typedef struct snap_executor_config {
  size_t queue_capacity; /**< requests queued or being submitted at most (default 1024) */
  size_t max_batch;      /**< saves committed in one transaction at most (default 512); a
                              group also ends once its states reach 64 MiB */
  size_t load_threads;   /**< threads that read and decode loads, 1..64 (default 0: one per
                              online core, at most 16) */
} snap_executor_config;

/** The defaults. */
#define SNAP_EXECUTOR_CONFIG_INIT                                                                  \
  { 1024u, 512u, 0u }

/** The kind of a request. */
typedef enum snap_request_kind {
  SNAP_REQUEST_SAVE = 1,
  SNAP_REQUEST_LOAD = 2,
  SNAP_REQUEST_DELETE = 3,
  SNAP_REQUEST_FORGET = 4 /**< snap_forget() of the shred unit in `pid` */
} snap_request_kind;

/**
 * The outcome of a request, passed to its callback. Everything in it is valid
 * only during the callback, except `snapshot`, which belongs to the callback:
 * free it with snap_snapshot_free() or keep it.
 */
typedef struct snap_result {
  snap_request_kind kind;
  int status;          /**< SNAP_OK or the request's SNAP_E* code */
  const char *message; /**< the detailed message of a failure ("" on success) */
  const char *pid;     /**< the request's persistence id */
  int64_t seq;         /**< save: the sequence number saved */
  snap_meta meta;      /**< save: what was stored (valid when status is SNAP_OK) */
  snap_snapshot
      *snapshot; /**< load: the snapshot, or NULL when none matched; owned by the callback */
} snap_result;

/**
 * A completion callback. It runs on one of the executor's threads, one
 * callback at a time and, for each pid, in submission order, never with an
 * executor lock held; it may submit new requests (a submission from a callback never
 * blocks: it fails with SNAP_EAGAIN instead of waiting for room it would have
 * to make itself). A slow callback delays every later callback.
 */
typedef void (*snap_executor_cb)(void *ud, snap_result *result);

/** One request for snap_executor_submit(). */
typedef struct snap_request {
  snap_request_kind kind;
  /** save: the snapshot to save (copied or encoded before submit returns;
   *  `save.options` is used during the submit call only). */
  snap_save_req save;
  /** load, delete: the persistence id; forget: the shred unit (copied). */
  const char *pid;
  /** load, delete: the bounds (copied; NULL means every snapshot). */
  const snap_criteria *criteria;
  /** load: options for decoding (borrowed until the callback has run; may be NULL). */
  const snap_options *options;
  snap_executor_cb callback; /**< may be NULL to ignore the result */
  void *ud;
  /** save: what the save asks beyond `save` (snap_save_ext: a condition), used
   *  during the submit call only; NULL: nothing. A conditional save that
   *  conflicts completes with SNAP_ECONFLICT and `meta.current_seq`. */
  const snap_save_ext *save_ext;
  /** load: the manifest to bring the state to (snap_load_as(): the store's
   *  upcasters run on the load thread), copied; NULL: the state as stored. An
   *  invalid manifest fails the submit with SNAP_EINVAL. */
  const char *target;
} snap_request;

/**
 * Starts an executor over `st` (borrowed: it must outlive the executor): one
 * dispatcher thread that writes, and `cfg->load_threads` threads that load.
 * `cfg` may be NULL for the defaults. Errors: SNAP_EINVAL (also more than 64
 * load threads), SNAP_ENOMEM, SNAP_EIO (a thread could not be started).
 * Free with snap_executor_free().
 */
SNAP_API int snap_executor_new(snap_executor **out, snap_store *st,
                               const snap_executor_config *cfg);

/**
 * Queues a request. A save is encoded here, on the calling thread, so an
 * invalid state fails this call (SNAP_EINVAL, SNAP_EFORMAT, SNAP_ETOOBIG,
 * SNAP_ENOKEY, SNAP_EUNSUPPORTED) and no callback follows. When the queue is
 * full the call waits up to `timeout_ms` milliseconds for room (0: not at
 * all, negative: without limit) and then fails with SNAP_EAGAIN, having
 * queued nothing. While a full group of saves is already queued, a save
 * submitted with a non-zero timeout may also wait, within that timeout, for
 * its turn to encode (one thread per core but one encodes at a time then;
 * docs/PLUGIN.md); that wait never fails the call. After shutdown has begun
 * it fails with SNAP_ECLOSED. When
 * it returns SNAP_OK the callback will be called exactly once. Thread-safe.
 */
SNAP_API int snap_executor_submit(snap_executor *ex, const snap_request *req, int timeout_ms);

/** Queues a save without waiting for room: snap_executor_submit() with timeout 0. */
SNAP_API int snap_executor_save(snap_executor *ex, const snap_save_req *req, snap_executor_cb cb,
                                void *ud);

/** Queues a load of the youngest snapshot of `pid` matching `c` (NULL: the latest);
 *  `opts` is borrowed until the callback has run. Never waits for room. */
SNAP_API int snap_executor_load(snap_executor *ex, const char *pid, const snap_criteria *c,
                                const snap_options *opts, snap_executor_cb cb, void *ud);

/** Queues a deletion of the snapshots of `pid` matching `c` (NULL: all of them).
 *  Never waits for room. */
SNAP_API int snap_executor_delete(snap_executor *ex, const char *pid, const snap_criteria *c,
                                  snap_executor_cb cb, void *ud);

/** Queues snap_forget() of the shred unit `unit`: its data key and its
 *  snapshots. Runs on the writing thread, after every request submitted
 *  before it for the pid `unit` (a prefix unit's other pids are not ordered
 *  with it). Never waits for room. */
SNAP_API int snap_executor_forget(snap_executor *ex, const char *unit, snap_executor_cb cb,
                                  void *ud);

/** Shutdown modes (snap_executor_shutdown()). */
#define SNAP_SHUTDOWN_DRAIN 0x1u  /**< complete every queued request */
#define SNAP_SHUTDOWN_CANCEL 0x2u /**< complete requests not yet started with SNAP_ECLOSED */

/**
 * Stops accepting requests (later submissions fail with SNAP_ECLOSED), then
 * either completes every queued request (SNAP_SHUTDOWN_DRAIN) or completes
 * those not yet started with status SNAP_ECLOSED (SNAP_SHUTDOWN_CANCEL; a
 * batch already being written finishes normally, so nothing acknowledged is
 * lost), and waits for the worker to stop. Every accepted request's callback
 * has run when it returns. Calling it again is harmless. Must not be called
 * from a callback. SNAP_EINVAL for an unknown mode.
 */
SNAP_API int snap_executor_shutdown(snap_executor *ex, unsigned mode);

/** Shuts down with SNAP_SHUTDOWN_DRAIN (unless already shut down) and frees. NULL is a no-op. */
SNAP_API void snap_executor_free(snap_executor *ex);

/** Counters, for monitoring and tests. */
typedef struct snap_executor_stats {
  uint64_t submitted; /**< requests accepted */
  uint64_t completed; /**< callbacks started: a callback's own request is counted when it runs */
  uint64_t commits;   /**< snap_save_commit() calls (transactions) */
  uint64_t saves;     /**< saves committed through them */
  size_t largest_batch;
} snap_executor_stats;

/**
 * Copies the counters. Thread-safe; may be called from a callback. Exact when
 * read from a callback (it counts the request being completed) or once the
 * last callback has run. Queue depth, batch sizes and times are in
 * snap_executor_metrics_get().
 */
SNAP_API void snap_executor_stats_get(snap_executor *ex, snap_executor_stats *out);

/**
 * The executor's figures. They live in the store's metrics as the series the
 * executor registers when it starts (snap_store_series_register():
 * `snapstore_executor_queue_depth`, `_queue_depth_max`, `_batch_saves`,
 * `_request_duration_seconds`, `_queue_wait_seconds`, `_commit_seconds`), so
 * one snap_store_metrics() and one Prometheus page cover the store and its
 * executor. Executors over the same store share those series. All zero while
 * the store's metrics are off. (They replace the `exec_*` fields that
 * snap_metrics had before 0.x's generic series.)
 */
typedef struct snap_executor_metrics {
  uint64_t queue_depth;      /**< requests queued now */
  uint64_t queue_depth_max;  /**< most requests queued at once */
  snap_histogram batch;      /**< saves per transaction (group commit) */
  snap_histogram latency;    /**< ns, submission to the start of the callback, all kinds */
  snap_histogram queue_wait; /**< ns, submission until taken off the queue, all kinds */
  snap_histogram commit;     /**< ns, one transaction of saves; one value per transaction */
} snap_executor_metrics;

/**
 * Copies the executor's figures into `*out` (zeros for a series the store
 * could not register). Thread-safe, as snap_store_metrics(); may be called
 * from a callback. SNAP_EINVAL for a NULL argument, SNAP_ENOMEM.
 */
SNAP_API int snap_executor_metrics_get(snap_executor *ex, snap_executor_metrics *out);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_EXECUTOR_H */
