/*
 * The recovery storm: after a restart every actor loads its newest snapshot
 * at once. One thread submits a load for every pid of a load database to an
 * executor and waits for every callback; the baseline loads the same pids
 * with snap_load_latest() from one thread. Both sides are snapstore: the row
 * measures what the executor's load threads add.
 */
#include <limits.h>
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
  atomic_long target; /* the callbacks to wait for, once all are submitted */
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
  /* Only the last callback wakes the waiting thread, as an application that
   * awaits the whole recovery would: a wake-up per load is a context switch
   * per load that the direct side, which joins its threads, does not pay. */
  if (atomic_fetch_add(&s->done, 1) + 1 >= atomic_load(&s->target)) {
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
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
  atomic_init(&s.target, LONG_MAX);
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
  /* Set before the check below: a callback either sees the target or has
   * counted itself before the check reads `done`. */
  atomic_store(&s.target, submitted);
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

/* Loads every `step`-th pid from `first` with snap_load_latest(). */
typedef struct direct {
  const bench_ctx *bx;
  load_case *lc;
  long first, step;
  int failed;
  char err[160];
} direct;

static void *load_direct(void *arg) {
  direct *d = arg;
  for (long i = d->first; i < d->lc->npids; i += d->step) {
    snap_snapshot *snap = NULL;
    int rc = snap_load_latest(d->lc->st, nth_pid(d->lc, i), d->bx->opts[d->lc->opt], &snap);
    int ok = rc == SNAP_OK && snap && snap->len == d->lc->len && snap->seq == 2;
    snap_snapshot_free(snap);
    if (!ok) {
      snprintf(d->err, sizeof d->err, "snap_load_latest(%s): %s", nth_pid(d->lc, i),
               rc ? snap_error_message() : "wrong or no snapshot");
      d->failed = 1;
      return NULL;
    }
  }
  return NULL;
}

#define STORM_THREADS_MAX 16

int storm_direct(const bench_ctx *bx, load_case *lc, int threads, double *rate, char *err,
                 size_t errcap) {
  if (threads < 1 || threads > STORM_THREADS_MAX) {
    snprintf(err, errcap, "%d threads: 1 to %d", threads, STORM_THREADS_MAX);
    return -1;
  }
  direct d[STORM_THREADS_MAX];
  pthread_t t[STORM_THREADS_MAX];
  int started = 0;
  double t0 = bench_now();
  for (int i = 0; i < threads; i++) {
    d[i] = (direct){bx, lc, i, threads, 0, ""};
    if (threads == 1) {
      load_direct(&d[i]);
    } else if (pthread_create(&t[i], NULL, load_direct, &d[i]) != 0) {
      d[i].failed = 1;
      snprintf(d[i].err, sizeof d[i].err, "pthread_create failed");
      break;
    } else {
      started++;
    }
  }
  for (int i = 0; i < started; i++) {
    pthread_join(t[i], NULL);
  }
  double el = bench_now() - t0;
  for (int i = 0; i < threads; i++) {
    if (d[i].failed) {
      snprintf(err, errcap, "%s", d[i].err);
      return -1;
    }
  }
  *rate = (double)lc->npids / el;
  return 0;
}

int storm_sync(const bench_ctx *bx, load_case *lc, double *rate, char *err, size_t errcap) {
  return storm_direct(bx, lc, 1, rate, err, errcap);
}
