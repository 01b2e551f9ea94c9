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
  ex->lcount--;
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

/* How many loads a load thread takes off the list at once: an even share of
 * what is waiting among the load threads (so that no thread idles while
 * another holds loads it has not begun), at most `cap`. */
static size_t share_locked(const snap_executor *ex, size_t cap) {
  size_t share = (ex->lcount + ex->load_threads - 1) / ex->load_threads;
  return share > cap ? cap : share;
}

/*
 * Takes the load at the head of the list and, while more are waiting, the
 * ones behind it, up to the thread's share, and reads them in read scopes of
 * the store: a scope ends once its states reach SNAP__EXEC_LOAD_RUN_BYTES,
 * and the rest of the run goes on in a new one. The run is taken whole before
 * its first scope begins and marked read only after its last one ended,
 * under the lock once rather than once per load. So each load of it was
 * dispatched after every earlier write of its pid had committed, and its
 * scope sees those writes; a write of one of its pids dispatched later waits
 * until the whole run has been read, so no scope sees it either. A run is
 * read to its end whatever the budget (the loads still in the list all come
 * after it, so it never waits for them): `*cap` bounds what it may add, one
 * load after a run that read a state of SNAP__EXEC_RUN_SMALL bytes or more,
 * else SNAP__EXEC_LOAD_RUN. No callback runs inside a scope (a callback may
 * load, and must see what was saved before it): what was read is delivered
 * after the run. Called and returns with ex->mu held and the list not empty.
 */
static void read_loads_locked(snap_executor *ex, size_t *cap) {
  size_t want = share_locked(ex, *cap), taken = 0;
  snap__req *run[SNAP__EXEC_LOAD_RUN];
  do
    run[taken++] = take_load_locked(ex);
  while (taken < want && ex->lhead);
  pthread_mutex_unlock(&ex->mu);
  size_t bytes = 0, largest = 0;
  bool scoped = false;
  for (size_t i = 0; i < taken; i++) {
    if (!scoped && taken - i > 1)
      scoped = snap__store_read_scope_begin(ex->st);
    snap__exec_run_one(ex, run[i]);
    size_t len = run[i]->res.snapshot ? run[i]->res.snapshot->len : 0;
    largest = len > largest ? len : largest;
    bytes += len;
    if (scoped && bytes >= SNAP__EXEC_LOAD_RUN_BYTES) {
      snap__store_read_scope_end(ex->st);
      scoped = false;
      bytes = 0;
    }
  }
  if (scoped)
    snap__store_read_scope_end(ex->st);
  *cap = largest < SNAP__EXEC_RUN_SMALL ? SNAP__EXEC_LOAD_RUN : 1;
  pthread_mutex_lock(&ex->mu);
  for (size_t i = 0; i < taken; i++)
    load_read_locked(ex, run[i]);
}

void *snap__exec_loader_main(void *arg) {
  snap_executor *ex = arg;
  snap__exec_current = ex;
  size_t cap = 1; /* until a run showed small states */
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
    read_loads_locked(ex, &cap);
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
