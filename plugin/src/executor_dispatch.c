/* The executor's dispatcher: one thread that takes requests in queue order,
 * hands runs of loads to the load threads, commits runs of consecutive saves
 * together (group commit) and runs deletes itself; and the in-order delivery
 * of the callbacks, one at a time, whatever thread finished the work.
 *
 * Ordering (docs/PLUGIN.md): a write runs on the dispatcher itself, so a
 * load dispatched after it sees it. A write waits until no load of its pids
 * dispatched before it is still reading, so an earlier load never sees a
 * later write. */
#include <stdio.h>
#include <string.h>

#include "executor_internal.h"

/* Runs the callback of a finished request (no lock held). */
static void deliver(snap__req *r) {
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

/* Requests left the queue: submitters waiting for room are woken once it
 * has fallen to three quarters of its capacity, so that each wake-up finds
 * room for many submissions rather than one (a full queue of loads drains a
 * few at a time, as load slots free up). While a full group is still queued
 * and every waiter is a paced save (executor_submit.c), only as many are
 * woken as there are free turns to encode. A timed wait that ends finds
 * whatever room there is. Caller holds ex->mu. */
static void room_made_locked(snap_executor *ex) {
  if (ex->room_waiters == 0 || ex->queued + ex->reserved > ex->cap - (ex->cap + 3) / 4)
    return;
  if (ex->queued < ex->max_batch || ex->paced_waiters < ex->room_waiters) {
    pthread_cond_broadcast(&ex->room);
    return;
  }
  for (size_t turns = ex->encoding; turns < ex->encoders_max; turns++)
    pthread_cond_signal(&ex->room);
}

/* Appends dispatched requests to the delivery list. Caller holds ex->mu.
 * Dispatch ends the request's wait in the queue: that time is a figure of
 * its own (snapstore_executor_queue_wait_seconds), apart from the work that follows. */
static void to_delivery_locked(snap_executor *ex, snap__req *r, uint64_t now) {
  snap__exec_observe(ex, SNAP__EXEC_QUEUE_WAIT, now - r->submitted_ns);
  r->dnext = NULL;
  unsigned b = r->bucket;
  if (ex->dtail[b])
    ex->dtail[b]->dnext = r;
  else
    ex->dhead[b] = r;
  ex->dtail[b] = r;
}

/* Appends a request that may be delivered now to the ready list. */
static void to_ready_locked(snap_executor *ex, snap__req *r) {
  r->rnext = NULL;
  if (ex->rtail)
    ex->rtail->rnext = r;
  else
    ex->rhead = r;
  ex->rtail = r;
}

void snap__exec_done_locked(snap_executor *ex, snap__req *r) {
  r->done = true;
  if (ex->dhead[r->bucket] == r)
    to_ready_locked(ex, r);
}

/* Takes the next deliverable request off the ready list and its bucket's
 * delivery list; the request behind it in that bucket becomes deliverable if
 * it is already done. Caller holds ex->mu; the ready list is not empty. */
static snap__req *take_ready_locked(snap_executor *ex) {
  snap__req *r = ex->rhead;
  ex->rhead = r->rnext;
  if (!ex->rhead)
    ex->rtail = NULL;
  unsigned b = r->bucket;
  ex->dhead[b] = r->dnext;
  if (!ex->dhead[b])
    ex->dtail[b] = NULL;
  else if (ex->dhead[b]->done)
    to_ready_locked(ex, ex->dhead[b]);
  return r;
}

/* Requests delivered per taking of ex->mu: a group commit finishes hundreds
 * at once, and taking the lock around each callback made the dispatcher
 * contend with every submitter for it hundreds of times per group. */
#define DELIVERY_CHAIN 64

/* A finished load's slot and budget are free again. Caller holds ex->mu. */
static void load_delivered_locked(snap_executor *ex, size_t held) {
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

/* Runs the callbacks of a chain taken off the ready list (linked by rnext),
 * in its order, without ex->mu. */
static void deliver_chain(snap_executor *ex, snap__req *chain) {
  for (snap__req *r = chain; r; r = r->rnext) {
    /* Counted before its callback runs, so that a callback, and whoever it
     * wakes, reads counters that include it. */
    atomic_fetch_add(&ex->started, 1);
    snap__exec_observe(ex, SNAP__EXEC_LATENCY, snap__exec_now_ns() - r->submitted_ns);
    deliver(r);
    snap__exec_req_clear(r);
  }
}

/* Delivers every request that may be delivered: finished, and the first of
 * its pid bucket still undelivered (so each pid's callbacks keep submission
 * order; pids of different buckets do not wait for each other). Unless
 * another thread is already doing so (it will deliver these too). Called and
 * returns with ex->mu held; callbacks run without it, one at a time, in
 * chains of up to DELIVERY_CHAIN taken in ready-list order. */
void snap__exec_drain_locked(snap_executor *ex) {
  if (ex->delivering)
    return;
  ex->delivering = true;
  while (ex->rhead) {
    snap__req *chain = NULL, **link = &chain;
    for (size_t k = 0; k < DELIVERY_CHAIN && ex->rhead; k++) {
      snap__req *r = take_ready_locked(ex);
      r->rnext = NULL;
      *link = r;
      link = &r->rnext;
    }
    ex->stats.completed = atomic_load(&ex->started);
    pthread_mutex_unlock(&ex->mu);
    deliver_chain(ex, chain);
    pthread_mutex_lock(&ex->mu);
    for (snap__req *r = chain, *next; r; r = next) {
      next = r->rnext;
      bool load = r->kind == SNAP_REQUEST_LOAD;
      size_t held = r->held;
      snap__exec_req_recycle_locked(ex, r);
      if (load)
        load_delivered_locked(ex, held);
    }
  }
  ex->stats.completed = atomic_load(&ex->started);
  ex->delivering = false;
  if (ex->disp_wants_delivery) {
    ex->disp_wants_delivery = false;
    pthread_cond_signal(&ex->work);
  }
}

/* Commits a run of saves in one snap_save_commit() and records each outcome. */
static void run_saves(snap_executor *ex, size_t n) {
  for (size_t i = 0; i < n; i++) {
    ex->items[i] = ex->batch[i]->prep;
    ex->status[i] = SNAP_EIO;
    memset(&ex->meta[i], 0, sizeof ex->meta[i]);
  }
  snap_error_clear();
  uint64_t t0 = snap__exec_now_ns();
  int rc = snap_save_commit(ex->st, ex->items, n, ex->status, ex->meta);
  snap__exec_observe(ex, SNAP__EXEC_COMMIT, snap__exec_now_ns() - t0);
  /* The store keeps one message per thread: it describes the batch's failure. */
  const char *msg = rc != SNAP_OK ? snap_error_message() : "";
  for (size_t i = 0; i < n; i++) {
    snap__req *r = ex->batch[i];
    /* A conflict's meta says which seq it found. */
    if (ex->status[i] == SNAP_OK || ex->status[i] == SNAP_ECONFLICT)
      r->res.meta = ex->meta[i];
    if (ex->status[i] != SNAP_OK)
      snap__exec_set_failure(r, ex->status[i], msg);
  }
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
  snap__req *list = ex->head;
  ex->head = ex->tail = NULL;
  ex->queued = 0;
  snap__exec_depth_locked(ex);
  room_made_locked(ex);
  for (snap__req *r = list; r;) {
    snap__req *next = r->next;
    char msg[160];
    snprintf(msg, sizeof msg, "pid '%s': executor shut down before the request started", r->pid);
    snap__exec_set_failure(r, SNAP_ECLOSED, msg);
    to_delivery_locked(ex, r, snap__exec_now_ns());
    snap__exec_done_locked(ex, r);
    r = next;
  }
  snap__exec_drain_locked(ex);
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
  uint64_t now = snap__exec_now_ns(); /* all leave the queue now */
  do {
    snap__req *r = ex->head;
    ex->head = r->next;
    r->next = NULL;
    ex->loads_out++;
    ex->reading[r->bucket]++;
    to_delivery_locked(ex, r, now);
    if (ex->ltail)
      ex->ltail->next = r;
    else
      ex->lhead = r;
    ex->ltail = r;
    ex->lcount++;
    moved++;
  } while (ex->head && ex->head->kind == SNAP_REQUEST_LOAD && !loads_full_locked(ex));
  if (!ex->head)
    ex->tail = NULL;
  ex->queued -= moved;
  snap__exec_depth_locked(ex);
  room_made_locked(ex);
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
  uint64_t now = snap__exec_now_ns(); /* all leave the queue now */
  *saves = ex->head->kind == SNAP_REQUEST_SAVE;
  do {
    snap__req *r = ex->head;
    ex->head = r->next;
    r->next = NULL;
    ex->batch[n++] = r;
    bytes += r->bytes;
    to_delivery_locked(ex, r, now);
  } while (*saves && ex->head && ex->head->kind == SNAP_REQUEST_SAVE && n < ex->max_batch &&
           bytes + ex->head->bytes <= SNAP__EXEC_BATCH_BYTES);
  if (!ex->head)
    ex->tail = NULL;
  ex->queued -= n;
  snap__exec_depth_locked(ex);
  room_made_locked(ex);
  /* An earlier load of one of these pids must not see this write. */
  while (conflict_locked(ex, n)) {
    ex->disp_wants_readers = true;
    pthread_cond_wait(&ex->work, &ex->mu);
  }
  ex->disp_wants_readers = false;
  return n;
}

/* Concludes a write batch whose requests each carry their own outcome
 * (run_saves() or snap__exec_run_one() classified them): all are done, a group commit
 * is counted, and what is finished is delivered. Caller holds ex->mu. */
static void conclude_writes_locked(snap_executor *ex, size_t n, bool saves) {
  for (size_t i = 0; i < n; i++)
    snap__exec_done_locked(ex, ex->batch[i]);
  if (saves) {
    ex->stats.commits++;
    ex->stats.saves += n;
    if (n > ex->stats.largest_batch)
      ex->stats.largest_batch = n;
    snap__exec_observe(ex, SNAP__EXEC_BATCH, n);
  }
  /* With another group queued and a load thread idle, that thread runs the
   * callbacks while this one writes the next group. Callbacks handed off
   * before must have run first: the requests finished and not yet delivered
   * stay within two groups (the queue's capacity does not count them). */
  while (ex->handoff || ex->delivering) {
    ex->disp_wants_delivery = true;
    pthread_cond_wait(&ex->work, &ex->mu);
  }
  if (ex->head && ex->head->kind == SNAP_REQUEST_SAVE && ex->loaders_idle > 0 && !ex->loads_stop) {
    ex->handoff = true;
    pthread_cond_signal(&ex->loads);
    return;
  }
  snap__exec_drain_locked(ex);
}

void *snap__exec_worker_main(void *arg) {
  snap_executor *ex = arg;
  snap__exec_current = ex;
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
      snap__exec_run_one(ex, ex->batch[0]);
    pthread_mutex_lock(&ex->mu);
    conclude_writes_locked(ex, n, saves);
  }
  snap__exec_stop_loaders_locked(ex);
  pthread_mutex_unlock(&ex->mu);
  return NULL;
}
