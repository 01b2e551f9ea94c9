/*
 * The recovery storm: after a restart every actor loads its newest snapshot
 * at once. One thread submits a load for every pid of a load database to an
 * executor and waits for every callback; the baseline loads the same pids
 * with snap_load_latest() from one thread. Both sides are snapstore: the row
 * measures what the executor's load threads add.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cases.h"
#include "snap/executor.h"

typedef struct storm {
  const load_case *lc;
  atomic_long done, bad;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char err[160];
} storm;

static void on_loaded(void *ud, snap_result *r) {
  storm *s = ud;
  int ok = r->status == SNAP_OK && r->snapshot && r->snapshot->len == s->lc->len &&
           r->snapshot->seq == 2;
  if (!ok && atomic_fetch_add(&s->bad, 1) == 0) {
    /* Callbacks run one at a time: the first failure is written once. */
    snprintf(s->err, sizeof s->err, "executor load of %s: %s: %s", r->pid, snap_strerror(r->status),
             r->status ? r->message : "wrong or no snapshot");
  }
  snap_snapshot_free(r->snapshot);
  pthread_mutex_lock(&s->mu);
  atomic_fetch_add(&s->done, 1);
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* The pids in a scattered order (7919 is prime: every pid once). */
static const char *nth_pid(const load_case *lc, long i) {
  return lc->pids[(i * 7919L) % lc->npids];
}

int storm_executor(const bench_ctx *bx, load_case *lc, int threads, double *rate, char *err,
                   size_t errcap) {
  snap_executor *ex = NULL;
  snap_executor_config cfg = SNAP_EXECUTOR_CONFIG_INIT;
  cfg.load_threads = (size_t)threads;
  int rc = snap_executor_new(&ex, lc->st, &cfg);
  if (rc != SNAP_OK) {
    snprintf(err, errcap, "snap_executor_new: %s", snap_error_message());
    return -1;
  }
  storm s;
  memset(&s, 0, sizeof s);
  s.lc = lc;
  atomic_init(&s.done, 0);
  atomic_init(&s.bad, 0);
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  long submitted = 0;
  double t0 = bench_now();
  for (long i = 0; i < lc->npids; i++) {
    snap_request rq = {.kind = SNAP_REQUEST_LOAD,
                       .pid = nth_pid(lc, i),
                       .options = bx->opts[lc->opt],
                       .callback = on_loaded,
                       .ud = &s};
    if ((rc = snap_executor_submit(ex, &rq, -1)) != SNAP_OK) {
      snprintf(err, errcap, "snap_executor_submit: %s", snap_error_message());
      break;
    }
    submitted++;
  }
  pthread_mutex_lock(&s.mu);
  while (atomic_load(&s.done) < submitted) {
    pthread_cond_wait(&s.cv, &s.mu);
  }
  pthread_mutex_unlock(&s.mu);
  double el = bench_now() - t0;
  snap_executor_free(ex);
  pthread_mutex_destroy(&s.mu);
  pthread_cond_destroy(&s.cv);
  if (rc != SNAP_OK) {
    return -1;
  }
  if (atomic_load(&s.bad)) {
    snprintf(err, errcap, "%s", s.err);
    return -1;
  }
  *rate = (double)submitted / el;
  return 0;
}

int storm_sync(const bench_ctx *bx, load_case *lc, double *rate, char *err, size_t errcap) {
  double t0 = bench_now();
  for (long i = 0; i < lc->npids; i++) {
    snap_snapshot *snap = NULL;
    int rc = snap_load_latest(lc->st, nth_pid(lc, i), bx->opts[lc->opt], &snap);
    int ok = rc == SNAP_OK && snap && snap->len == lc->len && snap->seq == 2;
    snap_snapshot_free(snap);
    if (!ok) {
      snprintf(err, errcap, "snap_load_latest(%s): %s", nth_pid(lc, i),
               rc ? snap_error_message() : "wrong or no snapshot");
      return -1;
    }
  }
  *rate = (double)lc->npids / (bench_now() - t0);
  return 0;
}
