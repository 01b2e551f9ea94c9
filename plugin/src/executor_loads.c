/* The executor's load threads: each takes the loads the dispatcher handed
 * out, reads and decodes them side by side with the others, and delivers
 * what is finished (in submission order per pid). A byte budget bounds the snapshots read and
 * waiting for an earlier callback. */
#include "executor_internal.h"
#include "snap/envelope.h"

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
    snap__req *r = ex->lhead;
    ex->lhead = r->next;
    if (!ex->lhead)
      ex->ltail = NULL;
    pthread_mutex_unlock(&ex->mu);
    snap__exec_run_one(ex, r);
    pthread_mutex_lock(&ex->mu);
    /* Its read is over: a later write of this pid may go ahead. */
    ex->reading[r->bucket]--;
    if (ex->disp_wants_readers)
      pthread_cond_signal(&ex->work);
    if (r->res.snapshot) {
      r->held = r->res.snapshot->len;
      ex->held += r->held;
    }
    snap__exec_done_locked(ex, r);
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
