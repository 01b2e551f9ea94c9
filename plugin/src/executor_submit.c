/* The executor's producer side: a submitter reserves a slot in the bounded
 * queue, builds its request outside the lock (a save is encoded here, on the
 * submitting thread), then appends it and wakes the dispatcher. */
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "executor_internal.h"
#include "snap/store_layer.h"

void snap__exec_req_free(snap__req *r) {
  if (!r)
    return;
  snap_prepared_free(r->prep);
  snap_snapshot_free(r->res.snapshot);
  snap_free(r->msg);
  snap_free(r->pid);
  snap_free(r);
}

void snap__exec_req_clear(snap__req *r) {
  snap_snapshot_free(r->res.snapshot);
  r->res.snapshot = NULL;
  snap_free(r->msg);
  r->msg = NULL;
}

void snap__exec_req_recycle_locked(snap_executor *ex, snap__req *r) {
  size_t bytes = sizeof *r + r->pid_cap + snap__prepared_bytes(r->prep);
  if (bytes > SNAP__EXEC_POOL_ITEM_MAX || ex->pool_bytes + bytes > ex->pool_max) {
    snap__exec_req_free(r);
    return;
  }
  r->pooled = bytes;
  ex->pool_bytes += bytes;
  r->next = ex->pool;
  ex->pool = r;
}

void snap__exec_pool_free(snap_executor *ex) {
  while (ex->pool) {
    snap__req *r = ex->pool;
    ex->pool = r->next;
    snap__exec_req_free(r);
  }
  ex->pool_bytes = 0;
}

/* A request from the pool, or NULL when it is empty. Caller holds ex->mu. */
static snap__req *pool_take_locked(snap_executor *ex) {
  snap__req *r = ex->pool;
  if (r) {
    ex->pool = r->next;
    ex->pool_bytes -= r->pooled;
  }
  return r;
}

static unsigned pid_bucket(const char *pid) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)pid; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h % SNAP__EXEC_READING_BUCKETS;
}

/* Records a failure's message in the request (a copy: the thread-local one
 * is overwritten by the next call on this thread). */
void snap__exec_set_failure(snap__req *r, int status, const char *msg) {
  r->res.status = status;
  if (msg && msg[0])
    r->msg = snap_strdup(msg); /* NULL on ENOMEM: the code's name is used instead */
}

/* The pacing of the encoders. While a full group waits in the queue, the
 * dispatcher is the bottleneck: a save encoded sooner is not written sooner,
 * and every submitter encoding at once takes a share of the cores the
 * dispatcher needs (on two cores, sixteen runnable submitters left the
 * dispatcher a fraction of one until they had refilled the queue, after
 * which it ran alone beside an idle core). Then at most ex->encoders_max
 * saves are encoded at once, and the other submitters wait for their turn.
 * A submitter that keeps encoding while others wait hands its turn on after
 * TURN_SAVES saves: waiting stays fair and costs one wake-up per TURN_SAVES
 * saves rather than one per save. Only blocking submissions of saves are
 * paced; a turn is never worth a failure, so a timed wait that ends proceeds
 * whenever the queue has room. */
#define TURN_SAVES 64

/* Saves this thread encoded in a row while other submitters waited. */
static _Thread_local unsigned turn_run;

static bool full_group_queued(const snap_executor *ex) { return ex->queued >= ex->max_batch; }

/* A paced save must wait for its turn to encode. Caller holds ex->mu. */
static bool must_wait_turn(const snap_executor *ex) {
  if (!full_group_queued(ex))
    return false;
  return ex->encoding >= ex->encoders_max || (ex->paced_waiters > 0 && turn_run >= TURN_SAVES);
}

/* Waits on ex->room until `deadline` (timeout_ms > 0) or without end. */
static int wait_room(snap_executor *ex, int timeout_ms, const struct timespec *deadline,
                     bool paced) {
  ex->room_waiters++;
  ex->paced_waiters += paced;
  int waited = timeout_ms < 0 ? pthread_cond_wait(&ex->room, &ex->mu)
                              : pthread_cond_timedwait(&ex->room, &ex->mu, deadline);
  ex->paced_waiters -= paced;
  ex->room_waiters--;
  return waited;
}

/* Waits for room in the queue (and a save for its turn) and reserves a
 * slot; the caller holds ex->mu. */
static int reserve_locked(snap_executor *ex, int timeout_ms, bool save) {
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
  bool on_worker = snap__exec_current == ex;
  bool paced = save && timeout_ms != 0 && !on_worker;
  for (;;) {
    if (ex->closing)
      return snap_error_set(SNAP_ECLOSED, "the executor is shutting down");
    bool room = ex->queued + ex->reserved < ex->cap;
    if (room && !(paced && must_wait_turn(ex)))
      break;
    if (timeout_ms == 0 || on_worker)
      return snap_error_set(SNAP_EAGAIN, "executor queue is full (%zu requests)", ex->cap);
    if (room && turn_run >= TURN_SAVES) {
      turn_run = 0; /* handed on: the next turn is someone else's */
      pthread_cond_signal(&ex->room);
    }
    if (wait_room(ex, timeout_ms, &deadline, paced) == ETIMEDOUT) {
      if (ex->closing)
        return snap_error_set(SNAP_ECLOSED, "the executor is shutting down");
      if (ex->queued + ex->reserved < ex->cap)
        break;
      return snap_error_set(SNAP_EAGAIN, "executor queue still full (%zu requests) after %d ms",
                            ex->cap, timeout_ms);
    }
  }
  ex->reserved++;
  if (save) {
    ex->encoding++;
    turn_run = paced && full_group_queued(ex) && ex->paced_waiters > 0 ? turn_run + 1 : 0;
  }
  return SNAP_OK;
}

/* Copies `pid` into the request's own buffer, grown when it is too short. */
static int set_pid(snap__req *r, const char *pid) {
  size_t len = strlen(pid) + 1;
  if (len > r->pid_cap) {
    char *p = snap_realloc(r->pid, len);
    if (!p)
      return snap_error_set(SNAP_ENOMEM, "out of memory queuing a request");
    r->pid = p;
    r->pid_cap = len;
  }
  memcpy(r->pid, pid, len);
  return SNAP_OK;
}

/* A load's target manifest, checked and copied. */
static int set_target(snap__req *r, const char *target) {
  if (snap_manifest_check(target) != SNAP_OK)
    return snap_error_set(SNAP_EINVAL, "load target: %s", snap_error_message());
  snprintf(r->target, sizeof r->target, "%s", target);
  return SNAP_OK;
}

/* Builds a queue node outside the lock, in `*out` (a pooled request, reset
 * here, or NULL for a new one): copies, and for a save the encoding. */
static int build(snap_executor *ex, const snap_request *rq, snap__req **out) {
  snap__req *r = *out;
  *out = NULL;
  if (r) {
    /* Keep the buffers; everything else starts again. */
    snap__req keep = {.pid = r->pid, .pid_cap = r->pid_cap, .prep = r->prep};
    *r = keep;
  } else if (!(r = snap_calloc(1, sizeof *r))) {
    return snap_error_set(SNAP_ENOMEM, "out of memory queuing a request");
  }
  r->kind = rq->kind;
  r->cb = rq->callback;
  r->ud = rq->ud;
  r->submitted_ns = snap__exec_now_ns();
  int rc;
  const char *pid;
  if (rq->kind == SNAP_REQUEST_SAVE) {
    rc = snap__save_prepare_reuse(ex->st, &rq->save, rq->save_ext, &r->prep);
    r->bytes = rq->save.len;
    pid = rq->save.pid;
    r->seq = rq->save.seq;
  } else {
    pid = rq->pid;
    rc = snap_pid_check(pid);
    r->crit = rq->criteria ? *rq->criteria : SNAP_CRITERIA_LATEST;
    r->opts = rq->options;
    if (rc == SNAP_OK && rq->kind == SNAP_REQUEST_LOAD && rq->target != NULL)
      rc = set_target(r, rq->target);
  }
  if (rc == SNAP_OK)
    rc = set_pid(r, pid);
  if (rc) {
    snap__exec_req_free(r);
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
      rq->kind != SNAP_REQUEST_DELETE && rq->kind != SNAP_REQUEST_FORGET)
    return snap_error_set(SNAP_EINVAL, "snap_executor_submit: unknown request kind %d",
                          (int)rq->kind);
  pthread_mutex_lock(&ex->mu);
  bool save = rq->kind == SNAP_REQUEST_SAVE;
  int rc = reserve_locked(ex, timeout_ms, save);
  snap__req *r = rc == SNAP_OK ? pool_take_locked(ex) : NULL;
  pthread_mutex_unlock(&ex->mu);
  if (rc)
    return rc;

  rc = build(ex, rq, &r);
  char msg[512];
  if (rc)
    snprintf(msg, sizeof msg, "%s", snap_error_message());

  pthread_mutex_lock(&ex->mu);
  ex->reserved--;
  ex->encoding -= save;
  if (rc == SNAP_OK && ex->closing)
    rc = SNAP_ECLOSED;
  if (rc == SNAP_OK) {
    if (ex->tail)
      ex->tail->next = r;
    else
      ex->head = r;
    ex->tail = r;
    ex->queued++;
    snap__exec_depth_locked(ex);
    ex->stats.submitted++;
  } else {
    pthread_cond_broadcast(&ex->room);
  }
  /* Also wakes a closing worker that waits for reservations to end. */
  if (ex->disp_wants_requests)
    pthread_cond_signal(&ex->work);
  pthread_mutex_unlock(&ex->mu);

  if (rc == SNAP_ECLOSED && r) {
    snap__exec_req_free(r);
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

int snap_executor_forget(snap_executor *ex, const char *unit, snap_executor_cb cb, void *ud) {
  snap_request rq = {.kind = SNAP_REQUEST_FORGET, .pid = unit, .callback = cb, .ud = ud};
  return snap_executor_submit(ex, &rq, 0);
}
