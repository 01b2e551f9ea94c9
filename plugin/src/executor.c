/* The asynchronous executor: a bounded FIFO queue; one dispatcher thread that
 * takes requests in order, commits runs of consecutive saves together (group
 * commit) and runs deletes; a pool of load threads that read and decode loads
 * side by side; and an in-order delivery of the callbacks, one at a time.
 *
 * Ordering (docs/PLUGIN.md): every request is dispatched in submission order.
 * A write runs on the dispatcher itself, so a load dispatched after it sees
 * it. A write waits until no load of its pids dispatched before it is still
 * reading, so an earlier load never sees a later write. Callbacks are delivered
 * in submission order whatever thread finished the work. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snap/executor.h"

/* Per load thread: the loads dispatched and not yet delivered, and the bytes
 * of loaded snapshots waiting for an earlier callback. The count bounds the
 * dispatch; the bytes bound the memory, whatever the states' size: at the
 * budget no load is dispatched or started until a delivery frees some. A
 * window wide enough to keep every load thread busy while the in-order
 * delivery waits for a slow load is what lets a recovery storm scale. */
#define LOADS_PER_THREAD 256
#define HELD_BYTES_PER_THREAD ((size_t)8 << 20)
/* A group commit ends at max_batch saves or once its states reach this many
 * bytes, whichever comes first (a single larger save still goes alone): with
 * large states a count alone would let one transaction grow to gigabytes of
 * WAL, while beyond a few megabytes a bigger group no longer amortises
 * anything. */
#define BATCH_BYTES ((size_t)64 << 20)
/* Buckets of the pid hashes of loads still reading (see conflict_locked). */
#define READING_BUCKETS 256
#define LOAD_THREADS_MAX 64

typedef struct req {
  struct req *next;  /* the queue, then the load threads' list */
  struct req *dnext; /* the delivery list (submission order) */
  snap_request_kind kind;
  char *pid;
  unsigned bucket; /* hash of the pid mod READING_BUCKETS */
  int64_t seq;
  snap_prepared *prep;      /* save: encoded on the submitting thread */
  snap_criteria crit;       /* load, delete */
  const snap_options *opts; /* load: borrowed until the callback ran */
  snap_executor_cb cb;
  void *ud;
  uint64_t submitted_ns; /* monotonic time of the submit call, for the store's metrics */
  /* The outcome, filled by whichever thread did the work. */
  bool done;
  snap_result res;
  char *msg; /* owned message of a failure, or NULL */
  size_t held; /* load: the bytes of its snapshot counted in ex->held */
  size_t bytes; /* save: the state's length, counted against BATCH_BYTES */
} req;

struct snap_executor {
  snap_store *st;
  size_t cap, max_batch, load_threads, max_loads_out;

  pthread_mutex_t mu;
  pthread_cond_t work;  /* the dispatcher waits for requests, load slots or readers to end */
  pthread_cond_t room;  /* submitters wait for room; shutdown callers wait for the join */
  pthread_cond_t loads; /* load threads wait for loads */
  req *head, *tail;     /* the queue */
  size_t queued;        /* requests in the queue */
  size_t reserved;      /* slots held by submitters still encoding their save */
  req *lhead, *ltail;   /* loads dispatched, waiting for a load thread */
  size_t loads_out;     /* loads dispatched and not yet delivered */
  size_t held, max_held; /* bytes of the snapshots loaded and not yet delivered */
  unsigned reading[READING_BUCKETS]; /* loads dispatched and not yet read, by pid bucket */
  req *dhead, *dtail;                /* dispatched, waiting for delivery in order */
  bool delivering;                   /* a thread is running callbacks */
  /* What the dispatcher waits for, so that the threads that could end the
   * wait wake it only then: every wake-up costs a context switch, and on a
   * small machine those switches were the price of a parallel load. */
  bool disp_wants_requests; /* a request to be queued (or reservations to end) */
  bool disp_wants_slots;    /* loads_out to fall to the low-water mark */
  bool disp_wants_readers;  /* a conflicting load to finish reading */
  bool loaders_want_budget; /* ex->held to fall below ex->max_held */
  bool closing, cancel, join_started, joined, loads_stop;
  pthread_t worker;
  pthread_t *loaders;
  size_t loaders_started;
  snap_executor_stats stats;

  /* Dispatcher-only scratch, sized max_batch. */
  req **batch;
  snap_prepared **items;
  int *status;
  snap_meta *meta;
};

/* The executor whose thread this is (dispatcher or load thread), or NULL: a
 * callback runs on one of them, and must neither wait for room nor shut down. */
static _Thread_local snap_executor *tl_executor;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The queue depth into the store's metrics. Caller holds ex->mu. */
static void depth_locked(snap_executor *ex) {
  (void)snap_store_metrics_executor(ex->st, SNAP_EXEC_QUEUE_DEPTH, ex->queued);
}

static void req_free(req *r) {
  if (!r)
    return;
  snap_prepared_free(r->prep);
  snap_snapshot_free(r->res.snapshot);
  snap_free(r->msg);
  snap_free(r->pid);
  snap_free(r);
}

static unsigned pid_bucket(const char *pid) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)pid; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h % READING_BUCKETS;
}

/* Records a failure's message in the request (a copy: the thread-local one
 * is overwritten by the next call on this thread). */
static void set_failure(req *r, int status, const char *msg) {
  r->res.status = status;
  if (msg && msg[0])
    r->msg = snap_strdup(msg); /* NULL on ENOMEM: the code's name is used instead */
}

/* Runs the callback of a finished request (no lock held). */
static void deliver(req *r) {
  snap_result *res = &r->res;
  res->kind = r->kind;
  res->pid = r->pid;
  res->seq = r->seq;
  if (res->status != SNAP_OK)
    res->message = r->msg ? r->msg : snap_strerror(res->status);
  else
    res->message = "";
  if (r->cb) {
    snap_snapshot *s = res->snapshot;
    res->snapshot = NULL; /* it belongs to the callback now */
    snap_result copy = *res;
    copy.snapshot = s;
    r->cb(r->ud, &copy);
  }
}

/* Once the dispatcher found every load slot taken, it is woken when this many
 * (or fewer) remain taken, and then hands out loads in one go rather than one
 * per delivered load. */
static size_t slots_low_water(const snap_executor *ex) {
  return ex->max_loads_out - (ex->max_loads_out + 3) / 4;
}

/* No load may be dispatched now. Caller holds ex->mu. */
static bool loads_full_locked(const snap_executor *ex) {
  return ex->loads_out >= ex->max_loads_out || ex->held >= ex->max_held;
}

/* The dispatcher, once it found the loads full, is woken here. */
static bool loads_drained_locked(const snap_executor *ex) {
  return ex->loads_out <= slots_low_water(ex) && ex->held <= ex->max_held - ex->max_held / 4;
}

/* Appends dispatched requests to the delivery list. Caller holds ex->mu.
 * Dispatch ends the request's wait in the queue: that time is a figure of
 * its own (SNAP_EXEC_QUEUE_WAIT), apart from the work that follows. */
static void to_delivery_locked(snap_executor *ex, req *r) {
  (void)snap_store_metrics_executor(ex->st, SNAP_EXEC_QUEUE_WAIT, now_ns() - r->submitted_ns);
  r->dnext = NULL;
  if (ex->dtail)
    ex->dtail->dnext = r;
  else
    ex->dhead = r;
  ex->dtail = r;
}

/* Delivers every finished request at the head of the delivery list, in order,
 * unless another thread is already doing so (it will deliver these too).
 * Called and returns with ex->mu held; callbacks run without it. */
static void drain_locked(snap_executor *ex) {
  if (ex->delivering)
    return;
  ex->delivering = true;
  while (ex->dhead && ex->dhead->done) {
    req *r = ex->dhead;
    ex->dhead = r->dnext;
    if (!ex->dhead)
      ex->dtail = NULL;
    /* Counted before its callback runs, so that a callback, and whoever it
     * wakes, reads counters that include it. */
    ex->stats.completed++;
    pthread_mutex_unlock(&ex->mu);
    (void)snap_store_metrics_executor(ex->st, SNAP_EXEC_LATENCY, now_ns() - r->submitted_ns);
    bool load = r->kind == SNAP_REQUEST_LOAD;
    size_t held = r->held;
    deliver(r);
    req_free(r);
    pthread_mutex_lock(&ex->mu);
    if (load) {
      ex->loads_out--;
      ex->held -= held;
      if (ex->loaders_want_budget && ex->held < ex->max_held) {
        ex->loaders_want_budget = false;
        pthread_cond_broadcast(&ex->loads);
      }
      if (ex->disp_wants_slots && loads_drained_locked(ex)) {
        ex->disp_wants_slots = false;
        pthread_cond_signal(&ex->work);
      }
    }
  }
  ex->delivering = false;
}

/* Commits a run of saves in one snap_save_commit() and records each outcome. */
static void run_saves(snap_executor *ex, size_t n) {
  for (size_t i = 0; i < n; i++) {
    ex->items[i] = ex->batch[i]->prep;
    ex->status[i] = SNAP_EIO;
    memset(&ex->meta[i], 0, sizeof ex->meta[i]);
  }
  snap_error_clear();
  uint64_t t0 = now_ns();
  int rc = snap_save_commit(ex->st, ex->items, n, ex->status, ex->meta);
  (void)snap_store_metrics_executor(ex->st, SNAP_EXEC_COMMIT, now_ns() - t0);
  /* The store keeps one message per thread: it describes the batch's failure. */
  const char *msg = rc != SNAP_OK ? snap_error_message() : "";
  for (size_t i = 0; i < n; i++) {
    req *r = ex->batch[i];
    if (ex->status[i] == SNAP_OK)
      r->res.meta = ex->meta[i];
    else
      set_failure(r, ex->status[i], msg);
    snap_prepared_free(r->prep);
    r->prep = NULL;
  }
}

static void run_one(snap_executor *ex, req *r) {
  snap_error_clear();
  int rc;
  if (r->kind == SNAP_REQUEST_LOAD)
    rc = snap_load(ex->st, r->pid, &r->crit, r->opts, &r->res.snapshot);
  else
    rc = snap_delete_matching(ex->st, r->pid, &r->crit);
  if (rc != SNAP_OK)
    set_failure(r, rc, snap_error_message());
}

static void *loader_main(void *arg) {
  snap_executor *ex = arg;
  tl_executor = ex;
  pthread_mutex_lock(&ex->mu);
  for (;;) {
    /* A load thread takes no load while the snapshots waiting for an earlier
     * callback fill the budget. That wait always ends: the loads in the list
     * come after every load taken, so what the waiting snapshots wait for is
     * being read or written now, and its delivery frees the budget. */
    while ((!ex->lhead && !ex->loads_stop) || (ex->lhead && ex->held >= ex->max_held)) {
      ex->loaders_want_budget |= ex->lhead != NULL;
      pthread_cond_wait(&ex->loads, &ex->mu);
    }
    if (!ex->lhead)
      break;
    req *r = ex->lhead;
    ex->lhead = r->next;
    if (!ex->lhead)
      ex->ltail = NULL;
    pthread_mutex_unlock(&ex->mu);
    run_one(ex, r);
    pthread_mutex_lock(&ex->mu);
    /* Its read is over: a later write of this pid may go ahead. */
    ex->reading[r->bucket]--;
    if (ex->disp_wants_readers)
      pthread_cond_signal(&ex->work);
    if (r->res.snapshot) {
      r->held = r->res.snapshot->len;
      ex->held += r->held;
    }
    r->done = true;
    drain_locked(ex);
  }
  pthread_mutex_unlock(&ex->mu);
  return NULL;
}

/* True when a load dispatched earlier may still be reading one of the pids
 * of the n requests in ex->batch (a shared bucket counts: it only waits). */
static bool conflict_locked(const snap_executor *ex, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ex->reading[ex->batch[i]->bucket])
      return true;
  return false;
}

/* Completes every queued request with SNAP_ECLOSED. Caller holds ex->mu. */
static void cancel_queue_locked(snap_executor *ex) {
  req *list = ex->head;
  ex->head = ex->tail = NULL;
  ex->queued = 0;
  depth_locked(ex);
  pthread_cond_broadcast(&ex->room);
  for (req *r = list; r;) {
    req *next = r->next;
    char msg[160];
    snprintf(msg, sizeof msg, "pid '%s': executor shut down before the request started", r->pid);
    set_failure(r, SNAP_ECLOSED, msg);
    r->done = true;
    to_delivery_locked(ex, r);
    r = next;
  }
  drain_locked(ex);
}

/* Hands the loads at the head of the queue to the load threads, as many as
 * there are free slots of the bounded number out; with no free slot, waits
 * for one (the caller then looks at the queue again: shutdown may have
 * begun). Caller holds ex->mu. */
static void dispatch_loads_locked(snap_executor *ex) {
  if (loads_full_locked(ex)) {
    ex->disp_wants_slots = true;
    pthread_cond_wait(&ex->work, &ex->mu);
    return;
  }
  size_t moved = 0;
  do {
    req *r = ex->head;
    ex->head = r->next;
    r->next = NULL;
    ex->loads_out++;
    ex->reading[r->bucket]++;
    to_delivery_locked(ex, r);
    if (ex->ltail)
      ex->ltail->next = r;
    else
      ex->lhead = r;
    ex->ltail = r;
    moved++;
  } while (ex->head && ex->head->kind == SNAP_REQUEST_LOAD && !loads_full_locked(ex));
  if (!ex->head)
    ex->tail = NULL;
  ex->queued -= moved;
  depth_locked(ex);
  pthread_cond_broadcast(&ex->room);
  if (moved > 1)
    pthread_cond_broadcast(&ex->loads);
  else
    pthread_cond_signal(&ex->loads);
}

/* Takes the write at the head into ex->batch and, when it is a save, the
 * saves right behind it; returns how many. Grouping never reorders, so
 * per-pid order and read-your-writes hold. Caller holds ex->mu. */
static size_t take_writes_locked(snap_executor *ex, bool *saves) {
  size_t n = 0, bytes = 0;
  *saves = ex->head->kind == SNAP_REQUEST_SAVE;
  do {
    req *r = ex->head;
    ex->head = r->next;
    r->next = NULL;
    ex->batch[n++] = r;
    bytes += r->bytes;
    to_delivery_locked(ex, r);
  } while (*saves && ex->head && ex->head->kind == SNAP_REQUEST_SAVE && n < ex->max_batch &&
           bytes + ex->head->bytes <= BATCH_BYTES);
  if (!ex->head)
    ex->tail = NULL;
  ex->queued -= n;
  depth_locked(ex);
  pthread_cond_broadcast(&ex->room);
  /* An earlier load of one of these pids must not see this write. */
  while (conflict_locked(ex, n)) {
    ex->disp_wants_readers = true;
    pthread_cond_wait(&ex->work, &ex->mu);
  }
  ex->disp_wants_readers = false;
  return n;
}

/* Concludes a write batch whose requests each carry their own outcome
 * (run_saves() or run_one() classified them): all are done, a group commit
 * is counted, and what is finished is delivered. Caller holds ex->mu. */
static void conclude_writes_locked(snap_executor *ex, size_t n, bool saves) {
  for (size_t i = 0; i < n; i++)
    ex->batch[i]->done = true;
  if (saves) {
    ex->stats.commits++;
    ex->stats.saves += n;
    if (n > ex->stats.largest_batch)
      ex->stats.largest_batch = n;
    (void)snap_store_metrics_executor(ex->st, SNAP_EXEC_BATCH, n);
  }
  drain_locked(ex);
}

/* After the last request: lets the load threads finish what they hold, stops
 * them, and delivers what is left. Called and returns with ex->mu held. */
static void stop_loaders_locked(snap_executor *ex) {
  ex->loads_stop = true;
  pthread_cond_broadcast(&ex->loads);
  pthread_mutex_unlock(&ex->mu);
  for (size_t i = 0; i < ex->loaders_started; i++)
    pthread_join(ex->loaders[i], NULL);
  /* Each load thread delivered what it finished, unless a callback was running
   * elsewhere; whatever is left is finished and goes out here. */
  pthread_mutex_lock(&ex->mu);
  drain_locked(ex);
}

static void *worker_main(void *arg) {
  snap_executor *ex = arg;
  tl_executor = ex;
  pthread_mutex_lock(&ex->mu);
  for (;;) {
    while (ex->queued == 0 && !(ex->closing && ex->reserved == 0)) {
      ex->disp_wants_requests = true;
      pthread_cond_wait(&ex->work, &ex->mu);
    }
    ex->disp_wants_requests = false;
    if (ex->queued == 0)
      break; /* closing, and nobody is still submitting */
    if (ex->cancel) {
      cancel_queue_locked(ex);
      continue;
    }
    if (ex->head->kind == SNAP_REQUEST_LOAD) {
      dispatch_loads_locked(ex);
      continue;
    }
    bool saves;
    size_t n = take_writes_locked(ex, &saves);
    pthread_mutex_unlock(&ex->mu);
    if (saves)
      run_saves(ex, n);
    else
      run_one(ex, ex->batch[0]);
    pthread_mutex_lock(&ex->mu);
    conclude_writes_locked(ex, n, saves);
  }
  stop_loaders_locked(ex);
  pthread_mutex_unlock(&ex->mu);
  return NULL;
}

/* Load threads when the configuration leaves it to us: one per online core. */
static size_t default_load_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    n = 1;
  if (n > 16)
    n = 16;
  return (size_t)n;
}

static void executor_dispose(snap_executor *ex) {
  snap_free(ex->loaders);
  snap_free(ex->batch);
  snap_free(ex->items);
  snap_free(ex->status);
  snap_free(ex->meta);
  snap_free(ex);
}

int snap_executor_new(snap_executor **out, snap_store *st, const snap_executor_config *cfg) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_executor_new: NULL output");
  *out = NULL;
  if (!st)
    return snap_error_set(SNAP_EINVAL, "snap_executor_new: NULL store");
  snap_executor_config c = SNAP_EXECUTOR_CONFIG_INIT;
  if (cfg && cfg->queue_capacity)
    c.queue_capacity = cfg->queue_capacity;
  if (cfg && cfg->max_batch)
    c.max_batch = cfg->max_batch;
  if (cfg && cfg->load_threads)
    c.load_threads = cfg->load_threads;
  if (c.load_threads == 0)
    c.load_threads = default_load_threads();
  if (c.load_threads > LOAD_THREADS_MAX)
    return snap_error_set(SNAP_EINVAL, "snap_executor_new: %zu load threads (at most %d)",
                          c.load_threads, LOAD_THREADS_MAX);
  snap_executor *ex = snap_calloc(1, sizeof *ex);
  if (!ex)
    return snap_error_set(SNAP_ENOMEM, "out of memory creating an executor");
  ex->st = st;
  ex->cap = c.queue_capacity;
  ex->max_batch = c.max_batch;
  ex->load_threads = c.load_threads;
  ex->max_loads_out = c.load_threads * LOADS_PER_THREAD;
  ex->max_held = c.load_threads * HELD_BYTES_PER_THREAD;
  ex->batch = snap_calloc(c.max_batch, sizeof *ex->batch);
  ex->items = snap_calloc(c.max_batch, sizeof *ex->items);
  ex->status = snap_calloc(c.max_batch, sizeof *ex->status);
  ex->meta = snap_calloc(c.max_batch, sizeof *ex->meta);
  ex->loaders = snap_calloc(c.load_threads, sizeof *ex->loaders);
  if (!ex->batch || !ex->items || !ex->status || !ex->meta || !ex->loaders) {
    executor_dispose(ex);
    return snap_error_set(SNAP_ENOMEM, "out of memory for a batch of %zu saves", c.max_batch);
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&ex->mu, NULL);
  pthread_cond_init(&ex->work, &ca);
  pthread_cond_init(&ex->room, &ca);
  pthread_cond_init(&ex->loads, &ca);
  pthread_condattr_destroy(&ca);
  int err = 0;
  for (size_t i = 0; i < c.load_threads && !err; i++) {
    err = pthread_create(&ex->loaders[i], NULL, loader_main, ex);
    if (!err)
      ex->loaders_started++;
  }
  if (!err)
    err = pthread_create(&ex->worker, NULL, worker_main, ex);
  if (err) {
    pthread_mutex_lock(&ex->mu);
    ex->loads_stop = true;
    pthread_cond_broadcast(&ex->loads);
    pthread_mutex_unlock(&ex->mu);
    for (size_t i = 0; i < ex->loaders_started; i++)
      pthread_join(ex->loaders[i], NULL);
    pthread_cond_destroy(&ex->loads);
    pthread_cond_destroy(&ex->room);
    pthread_cond_destroy(&ex->work);
    pthread_mutex_destroy(&ex->mu);
    executor_dispose(ex);
    return snap_error_set(SNAP_EIO, "cannot start the executor's threads: %s", strerror(err));
  }
  *out = ex;
  return SNAP_OK;
}

/* Waits for room in the queue and reserves a slot; the caller holds ex->mu. */
static int reserve_locked(snap_executor *ex, int timeout_ms) {
  struct timespec deadline;
  if (timeout_ms > 0) {
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  /* The executor's threads make the room; waiting for it on one of them (in a
   * callback) could never end. */
  bool on_worker = tl_executor == ex;
  for (;;) {
    if (ex->closing)
      return snap_error_set(SNAP_ECLOSED, "the executor is shutting down");
    if (ex->queued + ex->reserved < ex->cap)
      break;
    if (timeout_ms == 0 || on_worker)
      return snap_error_set(SNAP_EAGAIN, "executor queue is full (%zu requests)", ex->cap);
    if (timeout_ms < 0) {
      pthread_cond_wait(&ex->room, &ex->mu);
    } else if (pthread_cond_timedwait(&ex->room, &ex->mu, &deadline) == ETIMEDOUT) {
      if (ex->closing)
        return snap_error_set(SNAP_ECLOSED, "the executor is shutting down");
      if (ex->queued + ex->reserved < ex->cap)
        break;
      return snap_error_set(SNAP_EAGAIN, "executor queue still full (%zu requests) after %d ms",
                            ex->cap, timeout_ms);
    }
  }
  ex->reserved++;
  return SNAP_OK;
}

/* Builds a queue node outside the lock: copies, and for a save the encoding. */
static int build(snap_executor *ex, const snap_request *rq, req **out) {
  req *r = snap_calloc(1, sizeof *r);
  if (!r)
    return snap_error_set(SNAP_ENOMEM, "out of memory queuing a request");
  r->kind = rq->kind;
  r->cb = rq->callback;
  r->ud = rq->ud;
  r->submitted_ns = now_ns();
  int rc;
  const char *pid;
  if (rq->kind == SNAP_REQUEST_SAVE) {
    rc = snap_save_prepare(ex->st, &rq->save, &r->prep);
    r->bytes = rq->save.len;
    pid = rq->save.pid;
    r->seq = rq->save.seq;
  } else {
    pid = rq->pid;
    rc = snap_pid_check(pid);
    r->crit = rq->criteria ? *rq->criteria : SNAP_CRITERIA_LATEST;
    r->opts = rq->options;
  }
  if (rc == SNAP_OK && !(r->pid = snap_strdup(pid)))
    rc = snap_error_set(SNAP_ENOMEM, "out of memory queuing a request");
  if (rc) {
    req_free(r);
    return rc;
  }
  r->bucket = pid_bucket(r->pid);
  *out = r;
  return SNAP_OK;
}

int snap_executor_submit(snap_executor *ex, const snap_request *rq, int timeout_ms) {
  if (!ex || !rq)
    return snap_error_set(SNAP_EINVAL, "snap_executor_submit: NULL argument");
  if (rq->kind != SNAP_REQUEST_SAVE && rq->kind != SNAP_REQUEST_LOAD &&
      rq->kind != SNAP_REQUEST_DELETE)
    return snap_error_set(SNAP_EINVAL, "snap_executor_submit: unknown request kind %d",
                          (int)rq->kind);
  pthread_mutex_lock(&ex->mu);
  int rc = reserve_locked(ex, timeout_ms);
  pthread_mutex_unlock(&ex->mu);
  if (rc)
    return rc;

  req *r = NULL;
  rc = build(ex, rq, &r);
  char msg[512];
  if (rc)
    snprintf(msg, sizeof msg, "%s", snap_error_message());

  pthread_mutex_lock(&ex->mu);
  ex->reserved--;
  if (rc == SNAP_OK && ex->closing)
    rc = SNAP_ECLOSED;
  if (rc == SNAP_OK) {
    if (ex->tail)
      ex->tail->next = r;
    else
      ex->head = r;
    ex->tail = r;
    ex->queued++;
    depth_locked(ex);
    ex->stats.submitted++;
  } else {
    pthread_cond_broadcast(&ex->room);
  }
  /* Also wakes a closing worker that waits for reservations to end. */
  if (ex->disp_wants_requests)
    pthread_cond_signal(&ex->work);
  pthread_mutex_unlock(&ex->mu);

  if (rc == SNAP_ECLOSED && r) {
    req_free(r);
    return snap_error_set(SNAP_ECLOSED, "the executor is shutting down");
  }
  if (rc)
    return snap_error_set(rc, "%s", msg);
  return SNAP_OK;
}

int snap_executor_save(snap_executor *ex, const snap_save_req *sr, snap_executor_cb cb, void *ud) {
  if (!sr)
    return snap_error_set(SNAP_EINVAL, "snap_executor_save: NULL request");
  snap_request rq = {.kind = SNAP_REQUEST_SAVE, .save = *sr, .callback = cb, .ud = ud};
  return snap_executor_submit(ex, &rq, 0);
}

int snap_executor_load(snap_executor *ex, const char *pid, const snap_criteria *c,
                       const snap_options *opts, snap_executor_cb cb, void *ud) {
  snap_request rq = {.kind = SNAP_REQUEST_LOAD,
                     .pid = pid,
                     .criteria = c,
                     .options = opts,
                     .callback = cb,
                     .ud = ud};
  return snap_executor_submit(ex, &rq, 0);
}

int snap_executor_delete(snap_executor *ex, const char *pid, const snap_criteria *c,
                         snap_executor_cb cb, void *ud) {
  snap_request rq = {
      .kind = SNAP_REQUEST_DELETE, .pid = pid, .criteria = c, .callback = cb, .ud = ud};
  return snap_executor_submit(ex, &rq, 0);
}

int snap_executor_shutdown(snap_executor *ex, unsigned mode) {
  if (!ex)
    return snap_error_set(SNAP_EINVAL, "snap_executor_shutdown: NULL executor");
  if (mode == 0 || (mode & ~(SNAP_SHUTDOWN_DRAIN | SNAP_SHUTDOWN_CANCEL)))
    return snap_error_set(SNAP_EINVAL, "snap_executor_shutdown: unknown mode 0x%x", mode);
  if (tl_executor == ex)
    return snap_error_set(SNAP_EINVAL, "snap_executor_shutdown called from a completion callback");
  pthread_mutex_lock(&ex->mu);
  ex->closing = true;
  if (mode & SNAP_SHUTDOWN_CANCEL)
    ex->cancel = true;
  pthread_cond_broadcast(&ex->work);
  pthread_cond_broadcast(&ex->room);
  bool join = !ex->join_started;
  ex->join_started = true;
  if (!join) {
    while (!ex->joined)
      pthread_cond_wait(&ex->room, &ex->mu);
  }
  pthread_mutex_unlock(&ex->mu);
  if (join) {
    pthread_join(ex->worker, NULL);
    pthread_mutex_lock(&ex->mu);
    ex->joined = true;
    pthread_cond_broadcast(&ex->room);
    pthread_mutex_unlock(&ex->mu);
  }
  return SNAP_OK;
}

void snap_executor_free(snap_executor *ex) {
  if (!ex)
    return;
  snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN);
  pthread_cond_destroy(&ex->loads);
  pthread_cond_destroy(&ex->room);
  pthread_cond_destroy(&ex->work);
  pthread_mutex_destroy(&ex->mu);
  executor_dispose(ex);
}

void snap_executor_stats_get(snap_executor *ex, snap_executor_stats *out) {
  if (!ex || !out)
    return;
  pthread_mutex_lock(&ex->mu);
  *out = ex->stats;
  pthread_mutex_unlock(&ex->mu);
}
