/*
 * Save and load workloads, each in a snapstore form and a raw-SQLite form
 * that store the same bytes under the same pids and sequence numbers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cases.h"
#ifdef SNAP_WITH_POSTGRES
#include "pg.h"
#endif
#include "snap/executor.h"

const char *opt_label(int opt) {
  static const char *const labels[OPT_COUNT] = {
      "plain", "zlib-1", "enc", "zlib-1+enc", "plain", "zlib-1", "envelope", "zlib-1+envelope"};
  return labels[opt & (OPT_COUNT - 1)];
}

void store_config(char *buf, size_t cap, const char *path, int sync_full, uint32_t keep) {
  /* The path is ours (cfg->dir plus a fixed name) and holds no quote. */
  snprintf(buf, cap, "{\"path\": \"%s\", \"synchronous\": \"%s\", \"keep\": %u}", path,
           sync_full ? "full" : "normal", (unsigned)keep);
}

static int snap_fail(char *err, size_t errcap, const char *what, int rc) {
  snprintf(err, errcap, "%s: %s: %s", what, snap_strerror(rc), snap_error_message());
  return -1;
}

static int open_store(const char *path, int sync_full, uint32_t keep, snap_store **st, char *err,
                      size_t errcap) {
  char cfg[4400];
  store_config(cfg, sizeof cfg, path, sync_full, keep);
  int rc = snap_store_open(st, "sqlite", cfg);
  return rc == SNAP_OK ? 0 : snap_fail(err, errcap, "snap_store_open", rc);
}

/* Warm-up saves per pid before the clock starts: they open the database
 * lazily, prepare statements and, with keep > 0, fill every pid beyond `keep`
 * so that the timed saves prune. */
static int warm_saves(const save_case *sc) { return sc->keep > 0 ? (int)sc->keep + 1 : 1; }

/* ------------------------------------------------------------------------ */
/* Synchronous snap_save()                                                   */
/* ------------------------------------------------------------------------ */

static int save_snap_sync(const bench_ctx *bx, const save_case *sc, snap_store *st, char **pids,
                          double *rate, char *err, size_t errcap) {
  const snap_options *o = bx->opts[sc->opt];
  int64_t seq = 0;
  for (int w = 0; w < warm_saves(sc); w++, seq++) {
    for (int p = 0; p < sc->npids; p++) {
      int rc = snap_save(st, pids[p], seq, sc->fmt, sc->state, sc->len, o, NULL);
      if (rc != SNAP_OK) {
        return snap_fail(err, errcap, "snap_save (warm-up)", rc);
      }
    }
  }
  long n = 0;
  long long io0 = bench_io_written();
  double t0 = bench_now(), el = 0;
  do {
    int rc = snap_save(st, pids[n % sc->npids], seq + n / sc->npids, sc->fmt, sc->state, sc->len, o,
                       NULL);
    if (rc != SNAP_OK) {
      return snap_fail(err, errcap, "snap_save", rc);
    }
    n++;
    el = bench_now() - t0;
  } while (el < bx->cfg->save_seconds);
  *rate = (double)n / el;
  if (sc->written) {
    *sc->written = (double)(bench_io_written() - io0) / (double)n;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The executor, driven by N submitter threads, each an actor with its own   */
/* pid and increasing seqs, in one of two models:                            */
/*                                                                           */
/*  - closed loop: the submitter awaits its save's callback before saving    */
/*    again, so at most N saves are ever in flight and a transaction carries */
/*    at most N of them;                                                     */
/*  - pipelined: the submitter keeps submitting without awaiting callbacks   */
/*    (as an actor whose snapshot saves complete asynchronously, e.g. Akka's */
/*    saveSnapshot, keeps processing messages); it blocks only while the     */
/*    executor's bounded queue is full (snap_executor_submit() with timeout  */
/*    -1), and acknowledgements are counted as callbacks with SNAP_OK.       */
/*                                                                           */
/* Pipelined timing: the clock starts before the first submission; at        */
/* cfg->save_seconds the submitters stop submitting, and the clock stops     */
/* only once every accepted save has been acknowledged (the queue drained).  */
/* The rate is acknowledged saves / that elapsed time: every save counted    */
/* was durable inside the measured interval, and none that was still queued  */
/* is credited to it.                                                        */
/* ------------------------------------------------------------------------ */

/** What the submitters of one executor run share. */
typedef struct exec_shared {
  atomic_int stop;            /* set by the timekeeper: submit no more */
  atomic_int draining;        /* set once the submitters have stopped: wake the drain wait */
  atomic_llong completed;     /* pipelined: callbacks run (any status) */
  atomic_llong in_flight;     /* pipelined: submitted (or being submitted) minus completed */
  atomic_llong max_in_flight; /* pipelined: the peak of in_flight */
  pthread_mutex_t mu;         /* guards nothing but the drain wait */
  pthread_cond_t cv;
} exec_shared;

typedef struct submitter {
  const bench_ctx *bx;
  const save_case *sc;
  snap_executor *ex;
  exec_shared *sh;
  const char *pid;
  int64_t seq;
  pthread_t thread;
  /* Closed loop: the one save in flight. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int status;
  long count; /* closed loop: saves acknowledged with SNAP_OK */
  /* Pipelined: written by the worker's callbacks, read after the drain. */
  long submitted;    /* accepted by snap_executor_submit() (this thread only) */
  atomic_long acked; /* callbacks with SNAP_OK */
  atomic_int failed; /* set by the first callback with another status */
  char err[160];     /* the first failure (a callback's or submit's) */
} submitter;

static void fill_request(submitter *s, snap_request *req, snap_executor_cb cb) {
  memset(req, 0, sizeof *req);
  req->kind = SNAP_REQUEST_SAVE;
  req->save.pid = s->pid;
  req->save.seq = s->seq++;
  req->save.timestamp = SNAP_TIMESTAMP_AUTO;
  req->save.format = s->sc->fmt;
  req->save.state = s->sc->state;
  req->save.len = s->sc->len;
  req->save.options = s->bx->opts[s->sc->opt];
  req->callback = cb;
  req->ud = s;
}

static void on_saved(void *ud, snap_result *res) {
  submitter *s = ud;
  pthread_mutex_lock(&s->mu);
  s->status = res->status;
  if (res->status != SNAP_OK) {
    snprintf(s->err, sizeof s->err, "executor save of %s: %s: %s", res->pid,
             snap_strerror(res->status), res->message ? res->message : "");
  }
  s->done = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void *submitter_closed_loop(void *arg) {
  submitter *s = arg;
  while (!atomic_load(&s->sh->stop)) {
    snap_request req;
    fill_request(s, &req, on_saved);
    s->done = 0;
    int rc = snap_executor_submit(s->ex, &req, -1);
    if (rc != SNAP_OK) {
      snprintf(s->err, sizeof s->err, "snap_executor_submit: %s: %s", snap_strerror(rc),
               snap_error_message());
      s->status = rc;
      break;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->done) {
      pthread_cond_wait(&s->cv, &s->mu);
    }
    int st = s->status;
    pthread_mutex_unlock(&s->mu);
    if (st != SNAP_OK) {
      break;
    }
    s->count++;
  }
  return NULL;
}

static void on_saved_pipelined(void *ud, snap_result *res) {
  submitter *s = ud;
  exec_shared *sh = s->sh;
  if (res->status == SNAP_OK) {
    atomic_fetch_add(&s->acked, 1);
  } else if (atomic_exchange(&s->failed, 1) == 0) {
    /* Only the worker runs callbacks, and the submitter reads err only after
     * the drain: the first failure's message is written once, unraced. */
    snprintf(s->err, sizeof s->err, "executor save of %s seq %lld: %s: %s", res->pid,
             (long long)res->seq, snap_strerror(res->status), res->message ? res->message : "");
  }
  atomic_fetch_sub(&sh->in_flight, 1);
  atomic_fetch_add(&sh->completed, 1);
  /* The drain wait checks `completed` under mu after setting `draining`, so
   * a completion that follows that check sees `draining` and wakes it. */
  if (atomic_load(&sh->draining)) {
    pthread_mutex_lock(&sh->mu);
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
  }
}

static void *submitter_pipelined(void *arg) {
  submitter *s = arg;
  exec_shared *sh = s->sh;
  while (!atomic_load(&sh->stop) && !atomic_load(&s->failed)) {
    snap_request req;
    fill_request(s, &req, on_saved_pipelined);
    /* Counted before the call: the callback may run before submit returns. */
    long long now = atomic_fetch_add(&sh->in_flight, 1) + 1;
    long long peak = atomic_load(&sh->max_in_flight);
    while (now > peak && !atomic_compare_exchange_weak(&sh->max_in_flight, &peak, now)) {
    }
    int rc = snap_executor_submit(s->ex, &req, -1);
    if (rc != SNAP_OK) {
      atomic_fetch_sub(&sh->in_flight, 1);
      if (atomic_exchange(&s->failed, 1) == 0) {
        snprintf(s->err, sizeof s->err, "snap_executor_submit: %s: %s", snap_strerror(rc),
                 snap_error_message());
      }
      break;
    }
    s->submitted++;
  }
  return NULL;
}

/* Waits until `total` callbacks have run. */
static void drain(exec_shared *sh, long long total) {
  atomic_store(&sh->draining, 1);
  pthread_mutex_lock(&sh->mu);
  while (atomic_load(&sh->completed) < total) {
    pthread_cond_wait(&sh->cv, &sh->mu);
  }
  pthread_mutex_unlock(&sh->mu);
}

static int save_snap_executor(const bench_ctx *bx, const save_case *sc, snap_store *st, char **pids,
                              double *rate, char *err, size_t errcap) {
  snap_executor *ex = NULL;
  snap_executor_config ecfg = SNAP_EXECUTOR_CONFIG_INIT;
  int rc = snap_executor_new(&ex, st, &ecfg);
  if (rc != SNAP_OK) {
    return snap_fail(err, errcap, "snap_executor_new", rc);
  }
  /* Open the database lazily before the clock starts (direct saves: the
   * executor's counters see only the timed saves). With retention, every
   * submitter's pid is filled beyond `keep` first, so that the timed saves
   * prune, as in the synchronous rows. */
  int warm_pids = sc->keep > 0 ? sc->submitters : 1;
  for (int w = 0; w < warm_saves(sc); w++) {
    for (int p = 0; p < warm_pids; p++) {
      rc = snap_save(st, pids[p % sc->npids], w + (int64_t)p * 1000000000LL, sc->fmt, sc->state,
                     sc->len, bx->opts[sc->opt], NULL);
      if (rc != SNAP_OK) {
        snap_executor_free(ex);
        return snap_fail(err, errcap, "snap_save (warm-up)", rc);
      }
    }
  }
  int n = sc->submitters;
  submitter *subs = calloc((size_t)n, sizeof *subs);
  exec_shared sh;
  if (!subs) {
    snap_executor_free(ex);
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  memset(&sh, 0, sizeof sh);
  atomic_init(&sh.stop, 0);
  atomic_init(&sh.draining, 0);
  atomic_init(&sh.completed, 0);
  atomic_init(&sh.in_flight, 0);
  atomic_init(&sh.max_in_flight, 0);
  pthread_mutex_init(&sh.mu, NULL);
  pthread_cond_init(&sh.cv, NULL);
  int started = 0, failed = 0;
  long long io0 = bench_io_written();
  double t0 = bench_now();
  for (int i = 0; i < n; i++) {
    submitter *s = &subs[i];
    s->bx = bx;
    s->sc = sc;
    s->ex = ex;
    s->sh = &sh;
    s->pid = pids[i % sc->npids];
    /* Submitters sharing a pid (never in the standard rows) use disjoint seqs. */
    s->seq = warm_saves(sc) + (int64_t)i * 1000000000LL;
    atomic_init(&s->acked, 0);
    atomic_init(&s->failed, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL,
                       sc->pipelined ? submitter_pipelined : submitter_closed_loop, s) != 0) {
      failed = 1;
      break;
    }
    started++;
  }
  /* The main thread only keeps time. */
  while (!failed && bench_now() - t0 < bx->cfg->save_seconds) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  atomic_store(&sh.stop, 1);
  long long submitted = 0;
  for (int i = 0; i < started; i++) {
    pthread_join(subs[i].thread, NULL);
    submitted += subs[i].submitted;
  }
  if (sc->pipelined) {
    drain(&sh, submitted);
  }
  double el = bench_now() - t0;
  long long io1 = bench_io_written();
  long long total = 0;
  for (int i = 0; i < started; i++) {
    submitter *s = &subs[i];
    total += sc->pipelined ? atomic_load(&s->acked) : s->count;
    int bad = sc->pipelined ? atomic_load(&s->failed) : s->status != SNAP_OK;
    if (bad && !failed) {
      snprintf(err, errcap, "%s", s->err);
      failed = 1;
    }
  }
  if (!failed && sc->pipelined && total != submitted) {
    snprintf(err, errcap, "%lld saves submitted but %lld acknowledged", submitted, total);
    failed = 1;
  }
  for (int i = 0; i < started; i++) {
    pthread_mutex_destroy(&subs[i].mu);
    pthread_cond_destroy(&subs[i].cv);
  }
  free(subs);
  snap_executor_stats stats;
  snap_executor_stats_get(ex, &stats);
  if (sc->tally) {
    sc->tally->saves += stats.saves;
    sc->tally->commits += stats.commits;
    if (stats.largest_batch > sc->tally->largest_batch) {
      sc->tally->largest_batch = stats.largest_batch;
    }
    if (atomic_load(&sh.max_in_flight) > sc->tally->max_in_flight) {
      sc->tally->max_in_flight = atomic_load(&sh.max_in_flight);
    }
  }
  snap_executor_free(ex);
  pthread_mutex_destroy(&sh.mu);
  pthread_cond_destroy(&sh.cv);
  if (failed) {
    if (!err[0]) {
      snprintf(err, errcap, "could not start the submitter threads");
    }
    return -1;
  }
  *rate = (double)total / el;
  if (sc->written) {
    *sc->written = total > 0 ? (double)(io1 - io0) / (double)total : 0;
  }
  return 0;
}

/* Set by save_snap_unobserved() around its save_snap(). */
static _Thread_local int unobserved;

int save_snap(const bench_ctx *bx, const save_case *sc, double *rate, char *err, size_t errcap) {
  char path[4096];
  snap_store *st = NULL;
  bench_path(path, sizeof path, bx->cfg, "save-snap.db");
  bench_db_remove(path);
  char **pids = bench_pids_make(sc->npids > sc->submitters ? sc->npids : sc->submitters);
  if (!pids) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
#ifdef SNAP_WITH_POSTGRES
  int rc = sc->pg ? bench_pg_open_store(sc->pg, sc->keep, &st, err, errcap)
                  : open_store(path, sc->sync_full, sc->keep, &st, err, errcap);
#else
  /* Built without the postgres backend: no case names a cluster. */
  int rc = open_store(path, sc->sync_full, sc->keep, &st, err, errcap);
#endif
  if (rc == 0 && unobserved) {
    snap_store_set_metrics(st, 0);
    snap_store_set_log(st, SNAP_LOG_OFF, NULL, NULL);
  }
  if (rc == 0) {
    rc = sc->submitters > 0 ? save_snap_executor(bx, sc, st, pids, rate, err, errcap)
                            : save_snap_sync(bx, sc, st, pids, rate, err, errcap);
  }
  snap_store_close(st);
  bench_pids_free(pids, sc->npids > sc->submitters ? sc->npids : sc->submitters);
  bench_db_remove(path);
  return rc;
}

int save_snap_new_units(const bench_ctx *bx, const save_case *sc, double *rate, char *err,
                        size_t errcap) {
  char path[4096];
  bench_path(path, sizeof path, bx->cfg, "save-new.db");
  bench_db_remove(path);
  snap_store *st = NULL;
  if (open_store(path, sc->sync_full, sc->keep, &st, err, errcap) != 0)
    return -1;
  const snap_options *o = bx->opts[sc->opt];
  char pid[32];
  int rc = snap_save(st, "warm-up", 0, sc->fmt, sc->state, sc->len, o, NULL);
  long n = 0;
  double t0 = bench_now(), el = 0;
  while (rc == SNAP_OK && el < bx->cfg->save_seconds) {
    snprintf(pid, sizeof pid, "new-%09ld", n++);
    rc = snap_save(st, pid, 1, sc->fmt, sc->state, sc->len, o, NULL);
    el = bench_now() - t0;
  }
  if (rc != SNAP_OK)
    snap_fail(err, errcap, "snap_save (new units)", rc);
  else
    *rate = (double)n / el;
  snap_store_close(st);
  bench_db_remove(path);
  return rc == SNAP_OK ? 0 : -1;
}

int save_snap_unobserved(const bench_ctx *bx, const save_case *sc, double *rate, char *err,
                         size_t errcap) {
  unobserved = 1;
  int rc = save_snap(bx, sc, rate, err, errcap);
  unobserved = 0;
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The baseline                                                              */
/* ------------------------------------------------------------------------ */

int save_raw(const bench_ctx *bx, const save_case *sc, double *rate, char *err, size_t errcap) {
  char path[4096];
  raw_db r;
  bench_path(path, sizeof path, bx->cfg, "save-raw.db");
  bench_db_remove(path);
  int npids = sc->npids > sc->submitters ? sc->npids : sc->submitters;
  char **pids = bench_pids_make(npids);
  bench_db_opts o = {sc->sync_full, (sc->opt & OPT_ENC) != 0};
  int rc = -1;
  if (!pids) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  if (raw_open(&r, path, &o) != 0) {
    snprintf(err, errcap, "baseline open: %s", raw_error(&r));
    goto done;
  }
  int warm = warm_saves(sc);
  if (raw_insert(&r, pids, npids, 0, 0, (long)warm * npids, sc->batch, sc->state, sc->len,
                 sc->keep) != 0) {
    snprintf(err, errcap, "baseline insert (warm-up): %s", raw_error(&r));
    goto done;
  }
  long n = 0;
  long long io0 = bench_io_written();
  double t0 = bench_now(), el = 0;
  do {
    /* Whole transactions of `batch` rows; row n is (pids[n % npids],
     * warm + n / npids), as on the snapstore side. */
    long k = sc->batch > 1 ? sc->batch : 1;
    if (raw_insert(&r, pids, npids, warm, n, k, (int)k, sc->state, sc->len, sc->keep) != 0) {
      snprintf(err, errcap, "baseline insert: %s", raw_error(&r));
      goto done;
    }
    n += k;
    el = bench_now() - t0;
  } while (el < bx->cfg->save_seconds);
  *rate = (double)n / el;
  if (sc->written) {
    *sc->written = (double)(bench_io_written() - io0) / (double)n;
  }
  rc = 0;
done:
  raw_close(&r);
  bench_pids_free(pids, npids);
  bench_db_remove(path);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Loads: 3 snapshots per pid, the newest read back with its body copied     */
/* ------------------------------------------------------------------------ */

/* Visits the pids in a scattered order so that consecutive loads do not hit
 * neighbouring pages (7919 is prime, so every pid is visited). */
int load_pid_index(long i, int npids) { return (int)((i * 7919L) % npids); }

#define LOAD_CHUNK 500

int load_fill_store(const bench_ctx *bx, load_case *lc, char *err, size_t errcap) {
  snap_save_req *reqs = calloc(LOAD_CHUNK, sizeof *reqs);
  int *status = calloc(LOAD_CHUNK, sizeof *status);
  int rc = SNAP_OK;
  if (!reqs || !status) {
    free(reqs);
    free(status);
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  long total = (long)LOAD_SNAPSHOTS * lc->npids;
  for (long first = 0; first < total && rc == SNAP_OK; first += LOAD_CHUNK) {
    size_t n = 0;
    for (long i = first; i < total && n < LOAD_CHUNK; i++, n++) {
      reqs[n].pid = lc->pids[i % lc->npids];
      reqs[n].seq = i / lc->npids;
      reqs[n].timestamp = SNAP_TIMESTAMP_AUTO;
      reqs[n].format = lc->fmt;
      reqs[n].state = lc->state;
      reqs[n].len = lc->len;
      reqs[n].options = bx->opts[lc->opt];
    }
    rc = snap_save_batch(lc->st, reqs, n, status, NULL);
  }
  free(reqs);
  free(status);
  return rc == SNAP_OK ? 0 : snap_fail(err, errcap, "snap_save_batch (load setup)", rc);
}

int load_setup(const bench_ctx *bx, load_case *lc, char *err, size_t errcap) {
  bench_db_opts o = {1, (lc->opt & OPT_ENC) != 0};
  char snap_name[64], raw_name[64];
  snprintf(snap_name, sizeof snap_name, "load-snap%s%s.db", lc->tag ? "-" : "",
           lc->tag ? lc->tag : "");
  snprintf(raw_name, sizeof raw_name, "load-raw%s%s.db", lc->tag ? "-" : "",
           lc->tag ? lc->tag : "");
  bench_path(lc->snap_path, sizeof lc->snap_path, bx->cfg, snap_name);
  bench_path(lc->raw_path, sizeof lc->raw_path, bx->cfg, raw_name);
  bench_db_remove(lc->snap_path);
  bench_db_remove(lc->raw_path);
  lc->pids = bench_pids_make(lc->npids);
  if (!lc->pids) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  if (open_store(lc->snap_path, 1, 0, &lc->st, err, errcap) != 0 ||
      load_fill_store(bx, lc, err, errcap) != 0) {
    return -1;
  }
  if (raw_open(&lc->raw, lc->raw_path, &o) != 0 ||
      raw_insert(&lc->raw, lc->pids, lc->npids, 0, 0, (long)LOAD_SNAPSHOTS * lc->npids, 1000,
                 lc->state, lc->len, 0) != 0) {
    snprintf(err, errcap, "baseline setup: %s", raw_error(&lc->raw));
    return -1;
  }
  /* One pass over every pid on both sides (a timed loop of zero seconds still
   * visits every pid once): the warm cache the rows promise. */
  bench_cfg warm;
  bench_ctx wx;
  double rate;
  bench_warm_ctx(bx, &warm, &wx);
  if (load_snap(&wx, lc, &rate, err, errcap) != 0 || load_raw(&wx, lc, &rate, err, errcap) != 0) {
    return -1;
  }
  return 0;
}

int load_snap(const bench_ctx *bx, load_case *lc, double *rate, char *err, size_t errcap) {
  const snap_options *o = bx->opts[lc->opt];
  long n = 0;
  double t0 = bench_now(), el = 0;
  do {
    snap_snapshot *s = NULL;
    const char *pid = lc->pids[load_pid_index(n, lc->npids)];
    int rc = snap_load_latest(lc->st, pid, o, &s);
    if (rc != SNAP_OK) {
      return snap_fail(err, errcap, "snap_load_latest", rc);
    }
    if (!s || s->len != lc->len || s->seq != LOAD_SNAPSHOTS - 1) {
      snprintf(err, errcap, "snap_load_latest(%s) returned %s", pid,
               s ? "the wrong snapshot" : "nothing");
      snap_snapshot_free(s);
      return -1;
    }
    snap_snapshot_free(s);
    n++;
    el = bench_now() - t0;
  } while (el < bx->cfg->load_seconds || n < lc->npids);
  *rate = (double)n / el;
  return 0;
}

int load_raw(const bench_ctx *bx, load_case *lc, double *rate, char *err, size_t errcap) {
  long n = 0;
  double t0 = bench_now(), el = 0;
  do {
    uint8_t *body = NULL;
    size_t len = 0;
    const char *pid = lc->pids[load_pid_index(n, lc->npids)];
    if (raw_load_latest(&lc->raw, pid, &body, &len) != 0 || len != lc->len) {
      free(body);
      snprintf(err, errcap, "baseline load of %s: %s", pid, raw_error(&lc->raw));
      return -1;
    }
    free(body);
    n++;
    el = bench_now() - t0;
  } while (el < bx->cfg->load_seconds || n < lc->npids);
  *rate = (double)n / el;
  return 0;
}

void load_teardown(load_case *lc) {
  snap_store_close(lc->st);
  lc->st = NULL;
  raw_close(&lc->raw);
  lc->snap_bytes = bench_db_bytes(lc->snap_path);
  lc->raw_bytes = bench_db_bytes(lc->raw_path);
  bench_db_remove(lc->snap_path);
  bench_db_remove(lc->raw_path);
  bench_pids_free(lc->pids, lc->npids);
  lc->pids = NULL;
}

void bench_warm_ctx(const bench_ctx *bx, bench_cfg *warm, bench_ctx *wx) {
  *warm = *bx->cfg;
  warm->load_seconds = 0;
  *wx = *bx;
  wx->cfg = warm;
}
