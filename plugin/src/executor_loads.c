/* The executor's load threads: each takes the loads the dispatcher handed
 * out, reads and decodes them side by side with the others, and delivers
 * what is finished (in submission order per pid). A byte budget bounds the snapshots read and
 * waiting for an earlier callback. */
#include "executor_internal.h"
#include "snap/envelope.h"
#include "snap/store_layer.h"

/* Runs a load, a delete or a forget on the calling thread. */
void snap__exec_run_one(snap_executor *ex, snap__req *r) {
  snap_error_clear();
  int rc;
  if (r->kind == SNAP_REQUEST_LOAD)
    rc = snap_load_as(ex->st, r->pid, &r->crit, r->target[0] ? r->target : NULL, r->opts,
                      &r->res.snapshot);
  else if (r->kind == SNAP_REQUEST_FORGET)
    rc = snap_forget(ex->st, r->pid, NULL);
  else
    rc = snap_delete_matching(ex->st, r->pid, &r->crit);
  if (rc != SNAP_OK)
    snap__exec_set_failure(r, rc, snap_error_message());
}

/* The load at the head of the list, taken off it. Caller holds ex->mu. */
static snap__req *take_load_locked(snap_executor *ex) {
  snap__req *r = ex->lhead;
  ex->lhead = r->next;
  if (!ex->lhead)
    ex->ltail = NULL;
  r->next = NULL;
  return r;
}

/* A load has been read: its bookkeeping. Caller holds ex->mu. */
static void load_read_locked(snap_executor *ex, snap__req *r) {
  /* Its read is over: a later write of this pid may go ahead. */
  ex->reading[r->bucket]--;
  if (ex->disp_wants_readers)
    pthread_cond_signal(&ex->work);
  if (r->res.snapshot) {
    r->held = r->res.snapshot->len;
    ex->held += r->held;
  }
  snap__exec_done_locked(ex, r);
}

/*
 * Reads the load at the head of the list and, while more are waiting, the
 * ones behind it, up to SNAP__EXEC_LOAD_RUN of them or until they reach
 * SNAP__EXEC_LOAD_RUN_BYTES, in one read scope of the store.
 * Only loads dispatched before the scope began join it (`horizon`): each was
 * dispatched after every earlier write of its pid had committed, so the
 * scope sees those writes, and a write dispatched after it waits until it
 * has been read, so the scope cannot miss what it must not see either. The
 * loads are still taken one at a time from the shared list, so a slow load
 * never holds back another that an idle thread could read. No callback runs
 * inside the scope (a callback may load, and must see what was saved before
 * it): what was read is delivered after it. Called and returns with ex->mu
 * held and the list not empty.
 */
static void read_loads_locked(snap_executor *ex) {
  snap__req *r = take_load_locked(ex);
  bool more = ex->lhead != NULL;
  uint64_t horizon = ex->dispatched;
  pthread_mutex_unlock(&ex->mu);
  bool scoped = more && snap__store_read_scope_begin(ex->st);
  size_t bytes = 0;
  for (size_t n = 1;; n++) {
    snap__exec_run_one(ex, r);
    pthread_mutex_lock(&ex->mu);
    load_read_locked(ex, r);
    bytes += r->held;
    if (!scoped || n >= SNAP__EXEC_LOAD_RUN || bytes >= SNAP__EXEC_LOAD_RUN_BYTES || !ex->lhead ||
        ex->lhead->epoch > horizon || ex->held >= ex->max_held)
      break;
    r = take_load_locked(ex);
    pthread_mutex_unlock(&ex->mu);
  }
  if (scoped) {
    pthread_mutex_unlock(&ex->mu);
    snap__store_read_scope_end(ex->st);
    pthread_mutex_lock(&ex->mu);
  }
}

void *snap__exec_loader_main(void *arg) {
  snap_executor *ex = arg;
  snap__exec_current = ex;
  pthread_mutex_lock(&ex->mu);
  for (;;) {
    /* A load thread takes no load while the snapshots waiting for an earlier
     * callback fill the budget. That wait always ends: the loads in the list
     * come after every load taken, so what the waiting snapshots wait for is
     * being read or written now, and its delivery frees the budget. */
    while (!ex->handoff &&
           ((!ex->lhead && !ex->loads_stop) || (ex->lhead && ex->held >= ex->max_held))) {
      ex->loaders_want_budget |= ex->lhead != NULL;
      ex->loaders_idle++;
      pthread_cond_wait(&ex->loads, &ex->mu);
      ex->loaders_idle--;
    }
    if (ex->handoff) {
      ex->handoff = false;
      snap__exec_drain_locked(ex);
      continue;
    }
    if (!ex->lhead)
      break;
    read_loads_locked(ex);
    snap__exec_drain_locked(ex);
  }
  pthread_mutex_unlock(&ex->mu);
  return NULL;
}

/* After the last request: lets the load threads finish what they hold, stops
 * them, and delivers what is left. Called and returns with ex->mu held. */
void snap__exec_stop_loaders_locked(snap_executor *ex) {
  ex->loads_stop = true;
  pthread_cond_broadcast(&ex->loads);
  pthread_mutex_unlock(&ex->mu);
  for (size_t i = 0; i < ex->loaders_started; i++)
    pthread_join(ex->loaders[i], NULL);
  /* Each load thread delivered what it finished, unless a callback was running
   * elsewhere; whatever is left is finished and goes out here. */
  pthread_mutex_lock(&ex->mu);
  snap__exec_drain_locked(ex);
}
