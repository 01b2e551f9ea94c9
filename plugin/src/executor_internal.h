/* The executor's shared state, between its files (never installed):
 * executor.c (lifecycle), executor_submit.c (the queue's producer side),
 * executor_dispatch.c (the dispatcher thread and the in-order delivery),
 * executor_loads.c (the load threads), executor_metrics.c (its figures). */
#ifndef SNAP_EXECUTOR_INTERNAL_H
#define SNAP_EXECUTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "snap/executor.h"

/* Per load thread: the loads dispatched and not yet delivered, and the bytes
 * of loaded snapshots waiting for an earlier callback. The count bounds the
 * dispatch; the bytes bound the memory, whatever the states' size: at the
 * budget no load is dispatched or started until a delivery frees some. A
 * window wide enough to keep every load thread busy while the in-order
 * delivery waits for a slow load is what lets a recovery storm scale. */
#define SNAP__EXEC_LOADS_PER_THREAD 256
#define SNAP__EXEC_HELD_BYTES_PER_THREAD ((size_t)8 << 20)
/* A load thread reads up to this many loads in a row in one read scope of
 * the store while more are waiting (executor_loads.c): beginning and ending
 * a read transaction is about a third of an indexed read of a small row in
 * SQLite, and 16 reads in one transaction save most of it, while the
 * deliveries of those loads wait at most for the 16 reads. A scope also
 * ends once its states reach SNAP__EXEC_LOAD_RUN_BYTES: large states gain
 * nothing from sharing a transaction, and an open read transaction keeps
 * SQLite from checkpointing past it while writers go on. */
#define SNAP__EXEC_LOAD_RUN 16
#define SNAP__EXEC_LOAD_RUN_BYTES ((size_t)1 << 20)
/* A load thread takes runs of more than one load only while its last run
 * read no state of this size or more: a run is read to its end whatever the
 * budget, so with large states it adds at most one state to it. */
#define SNAP__EXEC_RUN_SMALL ((size_t)64 << 10)
/* A group commit ends at max_batch saves or once its states reach this many
 * bytes, whichever comes first (a single larger save still goes alone): with
 * large states a count alone would let one transaction grow to gigabytes of
 * WAL, while beyond a few megabytes a bigger group no longer amortises
 * anything. */
#define SNAP__EXEC_BATCH_BYTES ((size_t)64 << 20)
/* Buckets of the pid hashes of loads still reading (see executor_dispatch.c). */
#define SNAP__EXEC_READING_BUCKETS 256
#define SNAP__EXEC_LOAD_THREADS_MAX 64
/* Delivered requests are kept for reuse, with the buffers of their encoded
 * saves: a submitter then encodes into memory the dispatcher is done with
 * instead of allocating while the dispatcher frees into the submitter's heap
 * (each free of a buffer another thread allocated returned memory that the
 * next save faulted in again). The pool holds up to SNAP__EXEC_POOL_BYTES or
 * SNAP__EXEC_POOL_SLOT_BYTES for each request that can be in flight at once
 * (the queue's capacity and the two groups finished and not yet delivered),
 * whichever is more: with a pool smaller than that, a pipelined stream of
 * saves freed part of its requests at every delivery and allocated them anew
 * at the next submissions. A request whose buffers are larger than
 * SNAP__EXEC_POOL_ITEM_MAX is freed. */
#define SNAP__EXEC_POOL_BYTES ((size_t)8 << 20)
#define SNAP__EXEC_POOL_SLOT_BYTES ((size_t)8 << 10)
#define SNAP__EXEC_POOL_ITEM_MAX ((size_t)256 << 10)

/* The executor's series in the store's metrics (executor_metrics.c). */
enum {
  SNAP__EXEC_DEPTH,
  SNAP__EXEC_DEPTH_MAX,
  SNAP__EXEC_BATCH,
  SNAP__EXEC_LATENCY,
  SNAP__EXEC_QUEUE_WAIT,
  SNAP__EXEC_COMMIT,
  SNAP__EXEC_SERIES
};

typedef struct snap__req {
  struct snap__req *next;  /* the queue, then the load threads' list */
  struct snap__req *dnext; /* its pid bucket's delivery list (submission order) */
  struct snap__req *rnext; /* the ready list: done and first of its bucket */
  snap_request_kind kind;
  char *pid;
  size_t pid_cap;  /* bytes allocated for `pid`, its NUL included */
  size_t pooled;   /* bytes this request holds while in the pool */
  unsigned bucket; /* hash of the pid mod SNAP__EXEC_READING_BUCKETS */
  int64_t seq;
  snap_prepared *prep;      /* save: encoded on the submitting thread; kept for reuse */
  snap_criteria crit;       /* load, delete */
  const snap_options *opts; /* load: borrowed until the callback ran */
  char target[SNAP_MANIFEST_MAX + 1]; /* load: snap_load_as()'s target; "": none */
  snap_executor_cb cb;
  void *ud;
  uint64_t submitted_ns; /* monotonic time of the submit call, for the store's metrics */
  /* The outcome, filled by whichever thread did the work. */
  bool done;
  snap_result res;
  char *msg;    /* owned message of a failure, or NULL */
  size_t held;  /* load: the bytes of its snapshot counted in ex->held */
  size_t bytes; /* save: the state's length, counted against SNAP__EXEC_BATCH_BYTES */
} snap__req;

struct snap_executor {
  snap_store *st;
  size_t cap, max_batch, load_threads, max_loads_out;
  int series[SNAP__EXEC_SERIES]; /* handles of the store's series, -1 when unregistered */

  pthread_mutex_t mu;
  pthread_cond_t work;      /* the dispatcher waits for requests, load slots or readers to end */
  pthread_cond_t room;      /* submitters wait for room; shutdown callers wait for the join */
  pthread_cond_t loads;     /* load threads wait for loads */
  snap__req *head, *tail;   /* the queue */
  size_t queued;            /* requests in the queue */
  size_t reserved;          /* slots held by submitters still encoding their save */
  snap__req *lhead, *ltail; /* loads dispatched, waiting for a load thread */
  size_t lcount;            /* how many */
  size_t loads_out;         /* loads dispatched and not yet delivered */
  size_t held, max_held;    /* bytes of the snapshots loaded and not yet delivered */
  unsigned reading[SNAP__EXEC_READING_BUCKETS]; /* loads not yet read, by pid bucket */
  /* Dispatched and not yet delivered, per pid bucket in submission order:
   * only the first of a bucket may be delivered, so each pid's callbacks run
   * in submission order while a finished load never waits for a slower load
   * of another pid. */
  snap__req *dhead[SNAP__EXEC_READING_BUCKETS], *dtail[SNAP__EXEC_READING_BUCKETS];
  snap__req *rhead, *rtail; /* done and first of their bucket: deliverable now */
  bool delivering;                              /* a thread is running callbacks */
  /* What the dispatcher waits for, so that the threads that could end the
   * wait wake it only then: every wake-up costs a context switch, and on a
   * small machine those switches were the price of a parallel load. */
  bool disp_wants_requests; /* a request to be queued (or reservations to end) */
  bool disp_wants_slots;    /* loads_out to fall to the low-water mark */
  bool disp_wants_readers;  /* a conflicting load to finish reading */
  bool disp_wants_delivery; /* the callbacks handed off to end */
  bool loaders_want_budget; /* ex->held to fall below ex->max_held */
  /* The dispatcher hands the delivery of a committed group to an idle load
   * thread and starts the next group at once, so that the callbacks of one
   * group run while the next one is written. */
  size_t loaders_idle; /* load threads waiting on ex->loads */
  size_t room_waiters; /* submitters waiting on ex->room for a slot or their turn */
  /* Saves being encoded on their submitting threads, and how many may be
   * while a full group waits in the queue (executor_submit.c: the pacing of
   * the encoders). */
  size_t encoding, encoders_max;
  size_t paced_waiters; /* those of room_waiters that are saves waiting for room or a turn */
  bool handoff;        /* a load thread is asked to deliver what is ready */
  bool closing, cancel, join_started, joined, loads_stop;
  pthread_t worker;
  pthread_t *loaders;
  size_t loaders_started;
  snap_executor_stats stats; /* its `completed` is `started`'s */
  /* Callbacks started: counted right before each callback, without ex->mu,
   * since callbacks run in chains delivered without the lock. */
  atomic_uint_least64_t started;
  snap__req *pool;     /* delivered requests kept for reuse (linked by next) */
  size_t pool_bytes;   /* what the pool holds allocated */
  size_t pool_max;     /* the most it may hold */

  /* Dispatcher-only scratch, sized max_batch. */
  snap__req **batch;
  snap_prepared **items;
  int *status;
  snap_meta *meta;
};

/* The executor whose thread this is (dispatcher or load thread), or NULL: a
 * callback runs on one of them, and must neither wait for room nor shut down. */
extern _Thread_local snap_executor *snap__exec_current;

/* executor_submit.c */
void snap__exec_req_free(snap__req *r);
/* Frees what a delivered request owns for its outcome alone (an untaken
 * snapshot, a failure's message); no lock needed. */
void snap__exec_req_clear(snap__req *r);
/* A cleared request into the pool for reuse, or freed when the pool is
 * full. Caller holds ex->mu. */
void snap__exec_req_recycle_locked(snap_executor *ex, snap__req *r);
/* Frees the pool. */
void snap__exec_pool_free(snap_executor *ex);
/* Records a failure's message in the request (a copy). */
void snap__exec_set_failure(snap__req *r, int status, const char *msg);

/* executor_dispatch.c: the dispatcher thread; delivery, called and
 * returning with ex->mu held. */
void *snap__exec_worker_main(void *arg);
/* Marks a dispatched request finished (its outcome recorded). */
void snap__exec_done_locked(snap_executor *ex, snap__req *r);
void snap__exec_drain_locked(snap_executor *ex);

/* executor_loads.c */
void *snap__exec_loader_main(void *arg);
/* Runs a load or a delete on the calling thread, recording its outcome. */
void snap__exec_run_one(snap_executor *ex, snap__req *r);
/* After the last request: stops the load threads; with ex->mu held. */
void snap__exec_stop_loaders_locked(snap_executor *ex);

/* executor_metrics.c */
uint64_t snap__exec_now_ns(void);
/* Registers the executor's series on its store (a failure only leaves a
 * series out: the executor works without it). */
void snap__exec_metrics_start(snap_executor *ex);
/* The queue depth into the store's metrics. Caller holds ex->mu. */
void snap__exec_depth_locked(snap_executor *ex);
/* One value (ns or saves) into one of the executor's histograms. */
void snap__exec_observe(snap_executor *ex, int series, uint64_t value);

#endif /* SNAP_EXECUTOR_INTERNAL_H */
