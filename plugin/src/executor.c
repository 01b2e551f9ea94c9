/* The asynchronous executor: a bounded FIFO queue, one worker thread, and
 * group commit of runs of consecutive saves. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "snap/executor.h"

typedef struct req {
  struct req *next;
  snap_request_kind kind;
  char *pid;
  int64_t seq;
  snap_prepared *prep;      /* save: encoded on the submitting thread */
  snap_criteria crit;       /* load, delete */
  const snap_options *opts; /* load: borrowed until the callback ran */
  snap_executor_cb cb;
  void *ud;
} req;

struct snap_executor {
  snap_store *st;
  size_t cap, max_batch;

  pthread_mutex_t mu;
  pthread_cond_t work; /* the worker waits for requests or for shutdown */
  pthread_cond_t room; /* submitters wait for room; shutdown callers wait for the join */
  req *head, *tail;
  size_t queued;   /* requests in the queue */
  size_t reserved; /* slots held by submitters still encoding their save */
  bool closing, cancel, join_started, joined;
  pthread_t worker;
  snap_executor_stats stats;

  /* Worker-only scratch, sized max_batch. */
  req **batch;
  snap_prepared **items;
  int *status;
  snap_meta *meta;
};

static void req_free(req *r) {
  if (!r)
    return;
  snap_prepared_free(r->prep);
  snap_free(r->pid);
  snap_free(r);
}

static void complete(req *r, snap_result *res) {
  res->kind = r->kind;
  res->pid = r->pid;
  res->seq = r->seq;
  if (!res->message)
    res->message = "";
  if (r->cb) {
    r->cb(r->ud, res);
  } else {
    snap_snapshot_free(res->snapshot);
  }
}

static void complete_closed(req *r) {
  snap_result res = {0};
  char msg[160];
  snprintf(msg, sizeof msg, "pid '%s': executor shut down before the request started", r->pid);
  res.status = SNAP_ECLOSED;
  res.message = msg;
  complete(r, &res);
}

/* Commits a run of saves in one snap_save_commit() and completes them in order. */
static void run_saves(snap_executor *ex, size_t n) {
  for (size_t i = 0; i < n; i++) {
    ex->items[i] = ex->batch[i]->prep;
    ex->status[i] = SNAP_EIO;
    memset(&ex->meta[i], 0, sizeof ex->meta[i]);
  }
  snap_error_clear();
  int rc = snap_save_commit(ex->st, ex->items, n, ex->status, ex->meta);
  /* The store keeps one message per thread: it describes the batch's failure. */
  char msg[512] = "";
  if (rc != SNAP_OK)
    snprintf(msg, sizeof msg, "%s", snap_error_message());
  for (size_t i = 0; i < n; i++) {
    snap_result res = {0};
    res.status = ex->status[i];
    if (res.status == SNAP_OK)
      res.meta = ex->meta[i];
    else
      res.message = msg[0] ? msg : snap_strerror(res.status);
    complete(ex->batch[i], &res);
  }
}

static void run_one(snap_executor *ex, req *r) {
  snap_result res = {0};
  char msg[512] = "";
  snap_error_clear();
  if (r->kind == SNAP_REQUEST_LOAD)
    res.status = snap_load(ex->st, r->pid, &r->crit, r->opts, &res.snapshot);
  else
    res.status = snap_delete_matching(ex->st, r->pid, &r->crit);
  if (res.status != SNAP_OK) {
    snprintf(msg, sizeof msg, "%s", snap_error_message());
    res.message = msg;
  }
  complete(r, &res);
}

static void *worker_main(void *arg) {
  snap_executor *ex = arg;
  pthread_mutex_lock(&ex->mu);
  for (;;) {
    while (ex->queued == 0 && !(ex->closing && ex->reserved == 0))
      pthread_cond_wait(&ex->work, &ex->mu);
    if (ex->queued == 0)
      break; /* closing, and nobody is still submitting */

    if (ex->cancel) {
      req *list = ex->head;
      size_t n = ex->queued;
      ex->head = ex->tail = NULL;
      ex->queued = 0;
      pthread_cond_broadcast(&ex->room);
      pthread_mutex_unlock(&ex->mu);
      while (list) {
        req *next = list->next;
        complete_closed(list);
        req_free(list);
        list = next;
      }
      pthread_mutex_lock(&ex->mu);
      ex->stats.completed += n;
      continue;
    }

    /* FIFO: take the head; if it is a save, also the saves right behind it.
     * Grouping never reorders, so per-pid order and read-your-writes hold. */
    size_t n = 0;
    bool saves = ex->head->kind == SNAP_REQUEST_SAVE;
    do {
      req *r = ex->head;
      ex->head = r->next;
      r->next = NULL;
      ex->batch[n++] = r;
    } while (saves && ex->head && ex->head->kind == SNAP_REQUEST_SAVE && n < ex->max_batch);
    if (!ex->head)
      ex->tail = NULL;
    ex->queued -= n;
    pthread_cond_broadcast(&ex->room);
    pthread_mutex_unlock(&ex->mu);

    if (saves)
      run_saves(ex, n);
    else
      run_one(ex, ex->batch[0]);
    for (size_t i = 0; i < n; i++)
      req_free(ex->batch[i]);

    pthread_mutex_lock(&ex->mu);
    ex->stats.completed += n;
    if (saves) {
      ex->stats.commits++;
      ex->stats.saves += n;
      if (n > ex->stats.largest_batch)
        ex->stats.largest_batch = n;
    }
  }
  pthread_mutex_unlock(&ex->mu);
  return NULL;
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
  snap_executor *ex = snap_calloc(1, sizeof *ex);
  if (!ex)
    return snap_error_set(SNAP_ENOMEM, "out of memory creating an executor");
  ex->st = st;
  ex->cap = c.queue_capacity;
  ex->max_batch = c.max_batch;
  ex->batch = snap_calloc(c.max_batch, sizeof *ex->batch);
  ex->items = snap_calloc(c.max_batch, sizeof *ex->items);
  ex->status = snap_calloc(c.max_batch, sizeof *ex->status);
  ex->meta = snap_calloc(c.max_batch, sizeof *ex->meta);
  int rc = SNAP_OK;
  if (!ex->batch || !ex->items || !ex->status || !ex->meta) {
    rc = snap_error_set(SNAP_ENOMEM, "out of memory for a batch of %zu saves", c.max_batch);
    goto fail;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&ex->mu, NULL);
  pthread_cond_init(&ex->work, &ca);
  pthread_cond_init(&ex->room, &ca);
  pthread_condattr_destroy(&ca);
  int err = pthread_create(&ex->worker, NULL, worker_main, ex);
  if (err) {
    pthread_cond_destroy(&ex->room);
    pthread_cond_destroy(&ex->work);
    pthread_mutex_destroy(&ex->mu);
    rc = snap_error_set(SNAP_EIO, "cannot start the executor's worker thread: %s", strerror(err));
    goto fail;
  }
  *out = ex;
  return SNAP_OK;
fail:
  snap_free(ex->batch);
  snap_free(ex->items);
  snap_free(ex->status);
  snap_free(ex->meta);
  snap_free(ex);
  return rc;
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
  /* The worker makes the room; waiting for it on the worker itself would never end. */
  bool on_worker = pthread_equal(pthread_self(), ex->worker);
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
  int rc;
  const char *pid;
  if (rq->kind == SNAP_REQUEST_SAVE) {
    rc = snap_save_prepare(ex->st, &rq->save, &r->prep);
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
    ex->stats.submitted++;
  } else {
    pthread_cond_broadcast(&ex->room);
  }
  /* Also wakes a closing worker that waits for reservations to end. */
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
  if (pthread_equal(pthread_self(), ex->worker))
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
  pthread_cond_destroy(&ex->room);
  pthread_cond_destroy(&ex->work);
  pthread_mutex_destroy(&ex->mu);
  snap_free(ex->batch);
  snap_free(ex->items);
  snap_free(ex->status);
  snap_free(ex->meta);
  snap_free(ex);
}

void snap_executor_stats_get(snap_executor *ex, snap_executor_stats *out) {
  if (!ex || !out)
    return;
  pthread_mutex_lock(&ex->mu);
  *out = ex->stats;
  pthread_mutex_unlock(&ex->mu);
}
