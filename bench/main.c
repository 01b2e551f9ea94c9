/*
 * snap_bench: snapstore against raw SQLite on the same disk, and against raw
 * libpq on a throw-away PostgreSQL server, in one process and one run. Every
 * row runs the snapstore side then the baseline, once each per repetition,
 * and reports the median and range of each and the median of their
 * per-repetition ratios. docs/PERFORMANCE.md explains every row.
 *
 *   snap_bench [--quick] [--csv FILE] [--reps N] [--dir DIR] [--only TEXT]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "bench.h"
#include "dict_corpus.h"
#include "cases.h"
#ifdef SNAP_WITH_POSTGRES
#include "pg.h"
#endif

/* ------------------------------------------------------------------------ */
/* Running a row                                                             */
/* ------------------------------------------------------------------------ */

/** One side of a row: its figure for one repetition in `*v`. */
typedef int (*side_fn)(const bench_ctx *bx, void *c, double *v, char *err, size_t errcap);

static int side_save_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return save_snap(bx, c, v, err, cap);
}
static int side_save_new(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return save_snap_new_units(bx, c, v, err, cap);
}
static int side_save_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return save_raw(bx, c, v, err, cap);
}
static int side_load_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return load_snap(bx, c, v, err, cap);
}
static int side_load_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return load_raw(bx, c, v, err, cap);
}
static int side_enc_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_snap_encode(bx, c, v, err, cap);
}
static int side_enc_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_raw_encode(bx, c, v, err, cap);
}
static int side_val_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_snap_validate(bx, c, v, err, cap);
}
static int side_val_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_raw_validate(bx, c, v, err, cap);
}
static int side_dec_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_snap_decode(bx, c, v, err, cap);
}
static int side_dec_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_raw_decode(bx, c, v, err, cap);
}

typedef struct runner {
  bench_ctx *bx;
  bench_report *report;
  const char *only;
  int failures;
} runner;

/* "--only TEXT" selects the rows whose group or case contains TEXT;
 * "--only =TEXT" the rows whose case is exactly TEXT ("4 KiB JSON, plain,
 * sync=full" alone, without "64 KiB JSON, plain, sync=full"), for profiling. */
static int wanted(const runner *rn, const char *group, const char *name) {
  if (!rn->only) {
    return 1;
  }
  if (rn->only[0] == '=') {
    return strcmp(name, rn->only + 1) == 0;
  }
  return strstr(group, rn->only) || strstr(name, rn->only);
}

static void progress(const bench_row *row) {
  double sm, smin, smax, rm, rmin, rmax;
  if (row->failed) {
    return;
  }
  bench_stats(row->snap, row->n, &sm, &smin, &smax);
  bench_stats(row->raw, row->n, &rm, &rmin, &rmax);
  fprintf(stderr, "  %-9s %-52s %12.2f vs %12.2f %-10s ratio %.2f\n", row->group, row->name, sm, rm,
          row->unit, bench_row_ratio(row));
}

/* Runs side a (snapstore) then side b (baseline) once per repetition. */
static void run_row(runner *rn, const char *group, const char *name, const char *baseline,
                    const char *unit, bench_kind kind, side_fn a, void *ca, side_fn b, void *cb) {
  if (!wanted(rn, group, name)) {
    return;
  }
  bench_row *row = bench_row_add(rn->report, group, name, baseline, unit, kind);
  if (!row) {
    rn->failures++;
    return;
  }
  for (int rep = 0; rep < rn->bx->cfg->reps; rep++) {
    double va = 0, vb = 0;
    char err[160] = "";
    if (a(rn->bx, ca, &va, err, sizeof err) != 0) {
      bench_row_fail(row, "snapstore: %s", err);
      rn->failures++;
      return;
    }
    if (b(rn->bx, cb, &vb, err, sizeof err) != 0) {
      bench_row_fail(row, "baseline: %s", err);
      rn->failures++;
      return;
    }
    bench_row_record(row, va, vb);
  }
  progress(row);
}

/* ------------------------------------------------------------------------ */
/* The states                                                                */
/* ------------------------------------------------------------------------ */

typedef struct states {
  bench_state ledger[SIZE_COUNT];
  uint8_t *random4k;
  size_t random4k_len;
} states;

static int states_make(states *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < SIZE_COUNT; i++) {
    if (bench_state_make(&s->ledger[i], bench_size_bytes((bench_size)i)) != 0) {
      return -1;
    }
  }
  s->random4k_len = 4096;
  s->random4k = bench_random_msgpack(s->random4k_len);
  return s->random4k ? 0 : -1;
}

static void states_free(states *s) {
  for (int i = 0; i < SIZE_COUNT; i++) {
    bench_state_free(&s->ledger[i]);
  }
  free(s->random4k);
}

/* A row's payload: a ledger size in one format, or the random bytes. */
typedef struct payload {
  const char *label; /* "4 KiB JSON" */
  snap_format fmt;
  const uint8_t *data;
  size_t len;
} payload;

static payload ledger_json(const states *s, bench_size z) {
  static char labels[SIZE_COUNT][32];
  snprintf(labels[z], sizeof labels[z], "%s JSON", bench_size_label(z));
  payload p = {labels[z], SNAP_FORMAT_JSON, s->ledger[z].json, s->ledger[z].json_len};
  return p;
}

static payload ledger_msgpack(const states *s, bench_size z) {
  static char labels[SIZE_COUNT][32];
  snprintf(labels[z], sizeof labels[z], "%s msgpack", bench_size_label(z));
  payload p = {labels[z], SNAP_FORMAT_MSGPACK, s->ledger[z].msgpack, s->ledger[z].msgpack_len};
  return p;
}

static payload random_4k(const states *s) {
  payload p = {"4 KiB random", SNAP_FORMAT_MSGPACK, s->random4k, s->random4k_len};
  return p;
}

/* ------------------------------------------------------------------------ */
/* The groups of rows                                                        */
/* ------------------------------------------------------------------------ */

static void save_rows(runner *rn, const states *s) {
  const bench_cfg *cfg = rn->bx->cfg;
  int npids = cfg->quick ? 4 : 100;
  char name[96];
  /* 4 KiB JSON: every option set, both durability levels (the targets). */
  for (int sync = 1; sync >= 0; sync--) {
    for (int opt = 0; opt < OPT_DIRECT_COUNT; opt++) {
      payload p = ledger_json(s, SIZE_4K);
      save_case sc = {p.fmt, p.data, p.len, opt, sync, 0, npids, 1, 0, NULL, 0, NULL, NULL};
      snprintf(name, sizeof name, "%s, %s, sync=%s", p.label, opt_label(opt),
               sync ? "full" : "normal");
      run_row(rn, "save", name, "raw INSERT, 1 per transaction", "saves/s", KIND_RATE,
              side_save_snap, &sc, side_save_raw, &sc);
    }
  }
  /* Envelope keys against direct keys, same pipeline: the unit's data key
   * comes from the cache (a steady state), then the first save of new units,
   * each creating its data key (one more transaction). */
  for (int sync = 1; sync >= 0; sync--) {
    payload p = ledger_json(s, SIZE_4K);
    save_case env = {p.fmt, p.data, p.len, OPT_ZLIB_ENV, sync, 0, npids, 1, 0, NULL, 0, NULL, NULL};
    save_case dir = env;
    dir.opt = OPT_ZLIB_ENC;
    snprintf(name, sizeof name, "%s, %s, sync=%s", p.label, opt_label(OPT_ZLIB_ENV),
             sync ? "full" : "normal");
    run_row(rn, "save", name, "direct keys (zlib-1+enc)", "saves/s", KIND_RATE, side_save_snap,
            &env, side_save_snap, &dir);
    snprintf(name, sizeof name, "%s, %s, sync=%s, new unit each save", p.label,
             opt_label(OPT_ZLIB_ENV), sync ? "full" : "normal");
    run_row(rn, "save", name, "direct keys, new pid each save", "saves/s", KIND_RATE,
            side_save_new, &env, side_save_new, &dir);
  }
  /* Other sizes and encodings: plain and the full pipeline, synchronous=full. */
  payload others[6] = {ledger_msgpack(s, SIZE_4K),
                       ledger_json(s, SIZE_256B),
                       ledger_json(s, SIZE_64K),
                       ledger_json(s, SIZE_1M),
                       random_4k(s),
                       ledger_msgpack(s, SIZE_1M)};
  for (int i = 0; i < 5; i++) {
    for (int opt = 0; opt < OPT_DIRECT_COUNT; opt += OPT_ZLIB_ENC) {
      payload p = others[i];
      save_case sc = {p.fmt, p.data, p.len, opt, 1, 0, npids, 1, 0, NULL, 0, NULL, NULL};
      snprintf(name, sizeof name, "%s, %s, sync=full", p.label, opt_label(opt));
      run_row(rn, "save", name, "raw INSERT, 1 per transaction", "saves/s", KIND_RATE,
              side_save_snap, &sc, side_save_raw, &sc);
    }
  }
  /* The large compressed and encrypted states under synchronous=normal too. */
  for (int z = SIZE_64K; z <= SIZE_1M; z++) {
    payload p = ledger_json(s, (bench_size)z);
    save_case sc = {p.fmt, p.data, p.len, OPT_ZLIB_ENC, 0, 0, npids, 1, 0, NULL, 0, NULL, NULL};
    snprintf(name, sizeof name, "%s, %s, sync=normal", p.label, opt_label(OPT_ZLIB_ENC));
    run_row(rn, "save", name, "raw INSERT, 1 per transaction", "saves/s", KIND_RATE, side_save_snap,
            &sc, side_save_raw, &sc);
  }
}

/* Notes beside the last row added (when it is the executor row just run) the
 * mean number of saves per transaction over all its repetitions. */
static void executor_note(runner *rn, const char *name, const exec_tally *t, int pipelined) {
  if (rn->report->n == 0 || t->commits == 0) {
    return;
  }
  bench_row *row = &rn->report->rows[rn->report->n - 1];
  if (strcmp(row->group, "executor") != 0 || strcmp(row->name, name) != 0) {
    return;
  }
  if (pipelined) {
    snprintf(row->note, sizeof row->note,
             "%.1f saves per transaction (mean of %d reps, largest %zu), up to %lld in flight",
             (double)t->saves / (double)t->commits, row->n, t->largest_batch, t->max_in_flight);
  } else {
    snprintf(row->note, sizeof row->note,
             "%.1f saves per transaction (mean of %d reps, largest %zu)",
             (double)t->saves / (double)t->commits, row->n, t->largest_batch);
  }
  fprintf(stderr, "            %s\n", row->note);
}

/* The executor rows' names: the targets and the baseline check find them by name. */
static void executor_name(char *buf, size_t cap, int submitters, int pipelined, const char *label,
                          const char *suffix) {
  snprintf(buf, cap, "%d submitter%s, %s, %s, plain, sync=full%s", submitters,
           submitters > 1 ? "s" : "",
           pipelined ? "pipelined" : "closed loop (1 in flight per submitter)", label, suffix);
}

static void executor_rows(runner *rn, const states *s) {
  static const int submitters[] = {1, 4, 16};
  char name[128];
  /* Pipelined first (the targets are judged on them), then the closed loop. */
  for (int pipelined = 1; pipelined >= 0; pipelined--) {
    for (int z = 0; z < 2; z++) {
      payload p = ledger_json(s, z == 0 ? SIZE_256B : SIZE_4K);
      /* The small state is compared with what it replaces (one transaction per
       * save); the 4 KiB one with the best raw SQLite can do (1,000 per transaction). */
      int batch = z == 0 ? 1 : 1000;
      for (size_t i = 0; i < sizeof submitters / sizeof submitters[0]; i++) {
        exec_tally tally = {0, 0, 0, 0};
        save_case sc = {p.fmt, p.data,        p.len,  OPT_PLAIN, 1,    0,   submitters[i],
                        1,     submitters[i], &tally, pipelined, NULL, NULL};
        save_case rc = sc;
        rc.tally = NULL;
        rc.batch = batch;
        executor_name(name, sizeof name, submitters[i], pipelined, p.label, "");
        run_row(rn, "executor", name,
                batch > 1 ? "raw INSERT, 1,000 per transaction" : "raw INSERT, 1 per transaction",
                "saves/s", KIND_RATE, side_save_snap, &sc, side_save_raw, &rc);
        executor_note(rn, name, &tally, pipelined);
      }
    }
  }
}

/* The ceiling of group commit in the closed loop: 16 actors that each wait
 * for their save can at best fill transactions of 16. */
static void executor_ceiling_row(runner *rn, const states *s) {
  payload p = ledger_json(s, SIZE_4K);
  exec_tally tally = {0, 0, 0, 0};
  char name[128];
  save_case sc = {p.fmt, p.data, p.len, OPT_PLAIN, 1, 0, 16, 1, 16, &tally, 0, NULL, NULL};
  save_case rc = sc;
  rc.batch = 16;
  rc.tally = NULL;
  executor_name(name, sizeof name, 16, 0, p.label, " (vs 16 per transaction)");
  run_row(rn, "executor", name, "raw INSERT, 16 per transaction", "saves/s", KIND_RATE,
          side_save_snap, &sc, side_save_raw, &rc);
  executor_note(rn, name, &tally, 0);
}

/* Retention through the executor: 16 pipelined submitters with keep = 3,
 * against raw transactions of 1,000 inserts each followed by its prune; and
 * the bytes a save writes to storage there, against a single save's. */
static int side_written(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  save_case *sc = c;
  double rate = 0;
  sc->written = v;
  int rc = save_snap(bx, sc, &rate, err, cap);
  sc->written = NULL;
  return rc;
}

static int side_written_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  save_case *sc = c;
  double rate = 0;
  sc->written = v;
  int rc = save_raw(bx, sc, &rate, err, cap);
  sc->written = NULL;
  return rc;
}

static void executor_keep_rows(runner *rn, const states *s) {
  payload p = ledger_json(s, SIZE_4K);
  exec_tally tally = {0, 0, 0, 0};
  char name[128];
  save_case sc = {p.fmt, p.data, p.len, OPT_PLAIN, 1, 3, 16, 1, 16, &tally, 1, NULL, NULL};
  save_case rc = sc;
  rc.tally = NULL;
  rc.batch = 1000;
  executor_name(name, sizeof name, 16, 1, p.label, ", keep=3");
  run_row(rn, "executor", name, "raw INSERT + its prune, 1,000 per transaction", "saves/s",
          KIND_RATE, side_save_snap, &sc, side_save_raw, &rc);
  executor_note(rn, name, &tally, 1);
  int npids = rn->bx->cfg->quick ? 4 : 100;
  save_case one = {p.fmt, p.data, p.len, OPT_PLAIN, 1, 3, npids, 1, 0, NULL, 0, NULL, NULL};
  save_case many = sc;
  many.tally = NULL;
  run_row(rn, "written", "executor, 16 pipelined submitters, 4 KiB JSON, plain, keep=3",
          "snap_save() one at a time, keep=3", "B/save", KIND_SIZE, side_written, &many,
          side_written, &one);
  save_case raw = rc;
  run_row(rn, "written", "executor, 16 pipelined submitters, 4 KiB JSON, plain, keep=3 (vs raw)",
          "raw INSERT + its prune, 1,000 per transaction", "B/save", KIND_SIZE, side_written, &many,
          side_written_raw, &raw);
}

static void prune_rows(runner *rn, const states *s) {
  int npids = rn->bx->cfg->quick ? 4 : 100;
  payload p = ledger_json(s, SIZE_4K);
  save_case keep3 = {p.fmt, p.data, p.len, OPT_PLAIN, 1, 3, npids, 1, 0, NULL, 0, NULL, NULL};
  save_case keep0 = keep3;
  keep0.keep = 0;
  run_row(rn, "prune", "4 KiB JSON, plain, sync=full, keep=3",
          "raw INSERT + DELETE beyond 3, 1 per transaction", "saves/s", KIND_RATE, side_save_snap,
          &keep3, side_save_raw, &keep3);
  run_row(rn, "prune", "4 KiB JSON, plain, sync=full, keep=3 vs keep=0", "snapstore with keep=0",
          "saves/s", KIND_RATE, side_save_snap, &keep3, side_save_snap, &keep0);
}

/* The cost of the store's built-in metrics (on by default): the same work
 * with them on, against the same store with metrics and warnings off (one
 * branch per call left). Loads alternate on one store and database. */
static int side_save_unobserved(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return save_snap_unobserved(bx, c, v, err, cap);
}
static int side_load_observed(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  load_case *lc = c;
  snap_store_set_metrics(lc->st, 1);
  snap_store_set_log(lc->st, SNAP_LOG_WARNING, NULL, NULL);
  return load_snap(bx, lc, v, err, cap);
}
static int side_load_unobserved(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  load_case *lc = c;
  snap_store_set_metrics(lc->st, 0);
  snap_store_set_log(lc->st, SNAP_LOG_OFF, NULL, NULL);
  return load_snap(bx, lc, v, err, cap);
}

static void metrics_rows(runner *rn, const states *s) {
  const bench_cfg *cfg = rn->bx->cfg;
  payload p = ledger_json(s, SIZE_4K);
  save_case on = {p.fmt, p.data, p.len, OPT_PLAIN, 1,    0,   cfg->quick ? 4 : 100,
                  1,     0,      NULL,  0,         NULL, NULL};
  run_row(rn, "metrics", "4 KiB JSON, plain, sync=full, metrics on", "metrics and warnings off",
          "saves/s", KIND_RATE, side_save_snap, &on, side_save_unobserved, &on);
  const char *name = "4 KiB JSON, plain, load, metrics on";
  if (!wanted(rn, "metrics", name)) {
    return;
  }
  load_case lc;
  memset(&lc, 0, sizeof lc);
  lc.fmt = p.fmt;
  lc.state = p.data;
  lc.len = p.len;
  lc.opt = OPT_PLAIN;
  lc.npids = cfg->load_pids;
  char err[160] = "";
  if (load_setup(rn->bx, &lc, err, sizeof err) != 0) {
    bench_row *row = bench_row_add(rn->report, "metrics", name, "", "loads/s", KIND_RATE);
    if (row) {
      bench_row_fail(row, "setup: %s", err);
    }
    rn->failures++;
  } else {
    run_row(rn, "metrics", name, "metrics and warnings off", "loads/s", KIND_RATE,
            side_load_observed, &lc, side_load_unobserved, &lc);
  }
  load_teardown(&lc);
}

/* load_latest of envelope bodies against the same bodies sealed with direct
 * keys, both stores open at once; warm (every unit's key cached), as the
 * other load rows are. */
static void envelope_load_row(runner *rn, const states *s) {
  payload p = ledger_json(s, SIZE_4K);
  char name[96];
  snprintf(name, sizeof name, "%s, %s", p.label, opt_label(OPT_ZLIB_ENV));
  if (!wanted(rn, "load", name))
    return;
  load_case lc[2];
  memset(lc, 0, sizeof lc);
  const int opts[2] = {OPT_ZLIB_ENV, OPT_ZLIB_ENC};
  char err[160] = "";
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++) {
    lc[i].fmt = p.fmt;
    lc[i].state = p.data;
    lc[i].len = p.len;
    lc[i].opt = opts[i];
    lc[i].npids = rn->bx->cfg->load_pids;
    lc[i].tag = i == 0 ? "envelope" : "direct";
    rc = load_setup(rn->bx, &lc[i], err, sizeof err);
  }
  if (rc != 0) {
    bench_row *row = bench_row_add(rn->report, "load", name, "", "loads/s", KIND_RATE);
    if (row)
      bench_row_fail(row, "setup: %s", err);
    rn->failures++;
  } else {
    run_row(rn, "load", name, "direct keys (zlib-1+enc)", "loads/s", KIND_RATE, side_load_snap,
            &lc[0], side_load_snap, &lc[1]);
  }
  load_teardown(&lc[0]);
  load_teardown(&lc[1]);
}

static void load_rows(runner *rn, const states *s) {
  const bench_cfg *cfg = rn->bx->cfg;
  struct {
    payload p;
    int opt;
    int pid_div;
  } rows[] = {
      {ledger_json(s, SIZE_4K), OPT_PLAIN, 1},
      {ledger_json(s, SIZE_4K), OPT_ZLIB, 1},
      {ledger_json(s, SIZE_4K), OPT_ENC, 1},
      {ledger_json(s, SIZE_4K), OPT_ZLIB_ENC, 1},
      {ledger_msgpack(s, SIZE_4K), OPT_PLAIN, 1},
      {ledger_json(s, SIZE_256B), OPT_PLAIN, 1},
      {ledger_json(s, SIZE_64K), OPT_PLAIN, 10},
      {ledger_json(s, SIZE_64K), OPT_ZLIB_ENC, 10},
      {random_4k(s), OPT_ZLIB_ENC, 1},
  };
  char name[96], base[64];
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    load_case lc;
    memset(&lc, 0, sizeof lc);
    lc.fmt = rows[i].p.fmt;
    lc.state = rows[i].p.data;
    lc.len = rows[i].p.len;
    lc.opt = rows[i].opt;
    lc.npids = cfg->load_pids / rows[i].pid_div;
    snprintf(name, sizeof name, "%s, %s", rows[i].p.label, opt_label(rows[i].opt));
    if (!wanted(rn, "load", name) && !wanted(rn, "disk", name)) {
      continue;
    }
    char err[160] = "";
    if (load_setup(rn->bx, &lc, err, sizeof err) != 0) {
      bench_row *row = bench_row_add(rn->report, "load", name, "", "loads/s", KIND_RATE);
      if (row) {
        bench_row_fail(row, "setup: %s", err);
      }
      rn->failures++;
      load_teardown(&lc);
      continue;
    }
    snprintf(base, sizeof base, "raw SELECT newest + copy (%d pids × 3)", lc.npids);
    run_row(rn, "load", name, base, "loads/s", KIND_RATE, side_load_snap, &lc, side_load_raw, &lc);
    load_teardown(&lc);
    bench_row *row = bench_row_add(rn->report, "disk", name, "raw rows of the same state",
                                   "B/snapshot", KIND_SIZE);
    if (row) {
      double n = 3.0 * lc.npids;
      bench_row_record(row, (double)lc.snap_bytes / n, (double)lc.raw_bytes / n);
    }
  }
}

/* The recovery storm: every pid of a 10,000-pid database loaded once through
 * the executor (its default load threads), against one thread loading them
 * with snap_load_latest(). */
typedef struct storm_side {
  load_case *lc;
  int threads; /* the direct row's threads */
} storm_side;

static int side_storm_exec(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return storm_executor(bx, ((storm_side *)c)->lc, 0, v, err, cap);
}
static int side_storm_sync(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return storm_sync(bx, ((storm_side *)c)->lc, v, err, cap);
}
static int side_storm_direct(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return storm_direct(bx, ((storm_side *)c)->lc, ((storm_side *)c)->threads, v, err, cap);
}

static int side_storm_direct2(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return storm_direct(bx, ((storm_side *)c)->lc, 2, v, err, cap);
}
static int side_storm_cold_exec(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return storm_cold_executor(bx, ((storm_side *)c)->lc, v, err, cap);
}
static int side_storm_cold_direct(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return storm_cold_direct(bx, ((storm_side *)c)->lc, v, err, cap);
}

/* The executor against the machine's real ceiling, two threads calling
 * snap_load_latest() (a 2-core machine's), in the same run: cold, each side
 * in a fresh process; warm, in this one after its warm-up pass. */
static const char *const storm_ceiling[2] = {
    "10,000 pids 4 KiB JSON, zlib-1+enc, executor, cold",
    "10,000 pids 4 KiB JSON, zlib-1+enc, executor, warm"};

static void storm_ceiling_rows(runner *rn, storm_side *side) {
  run_row(rn, "storm", storm_ceiling[0], "2 threads direct", "loads/s", KIND_RATE,
          side_storm_cold_exec, side, side_storm_cold_direct, side);
  run_row(rn, "storm", storm_ceiling[1], "2 threads direct", "loads/s", KIND_RATE,
          side_storm_exec, side, side_storm_direct2, side);
}

static void storm_rows(runner *rn, const states *s) {
  const bench_cfg *cfg = rn->bx->cfg;
  static const int opts[] = {OPT_PLAIN, OPT_ZLIB_ENC};
  char name[128];
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    payload p = ledger_json(s, SIZE_4K);
    snprintf(name, sizeof name, "%s, %s, executor, default load threads", p.label,
             opt_label(opts[i]));
    const bool ceiling = opts[i] == OPT_ZLIB_ENC && (wanted(rn, "storm", storm_ceiling[0]) ||
                                                     wanted(rn, "storm", storm_ceiling[1]));
    if (!wanted(rn, "storm", name) && !ceiling) {
      continue;
    }
    load_case lc;
    memset(&lc, 0, sizeof lc);
    lc.fmt = p.fmt;
    lc.state = p.data;
    lc.len = p.len;
    lc.opt = opts[i];
    lc.npids = cfg->load_pids;
    char err[160] = "";
    if (load_setup(rn->bx, &lc, err, sizeof err) != 0) {
      bench_row *row = bench_row_add(rn->report, "storm", name, "", "loads/s", KIND_RATE);
      if (row) {
        bench_row_fail(row, "setup: %s", err);
      }
      rn->failures++;
      load_teardown(&lc);
      continue;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN) > 16 ? 16L : sysconf(_SC_NPROCESSORS_ONLN);
    storm_side side = {&lc, (int)(cores < 1 ? 1 : cores)};
    run_row(rn, "storm", name, "snap_load_latest() from 1 thread", "loads/s", KIND_RATE,
            side_storm_exec, &side, side_storm_sync, &side);
    bench_row *row = rn->report->n ? &rn->report->rows[rn->report->n - 1] : NULL;
    if (row && strcmp(row->name, name) == 0) {
      snprintf(row->note, sizeof row->note, "%d distinct pids each loaded once, %ld load threads",
               lc.npids, cores);
    }
    /* What the store itself gives the same number of threads, without the
     * executor: the ceiling the executor's row is to be read against. */
    char direct[160];
    snprintf(direct, sizeof direct, "%s, %s, %d threads calling snap_load_latest()", p.label,
             opt_label(opts[i]), side.threads);
    run_row(rn, "storm", direct, "snap_load_latest() from 1 thread", "loads/s", KIND_RATE,
            side_storm_direct, &side, side_storm_sync, &side);
    if (ceiling) {
      storm_ceiling_rows(rn, &side);
    }
    load_teardown(&lc);
  }
}

/* The PostgreSQL rows, on a throw-away cluster started here (pg.c): a
 * synchronous save against raw libpq, the executor against that synchronous
 * save, and load_latest against raw libpq. Every save prunes (keep = 3): a
 * save is its insert and its prune in one transaction. */
#define PG_SYNC_ROW "4 KiB JSON, plain, sync save, keep=3"
#define PG_EXEC_ROW "16 submitters, pipelined, 4 KiB JSON, plain, keep=3"
#define PG_LOAD_ROW "load_latest, 4 KiB JSON, plain"
#define PG_GROUPS_ROW "16 submitters, pipelined, keep=3, vs raw pipelined groups"

#ifndef SNAP_WITH_POSTGRES
/* Built with -DSNAP_WITH_POSTGRES=OFF: the rows are skipped, as on a machine
 * without PostgreSQL, and the report says why. */
static void pg_rows(runner *rn, const states *s, char *about, size_t about_cap) {
  (void)s;
  if (wanted(rn, "postgres", PG_SYNC_ROW) || wanted(rn, "postgres", PG_EXEC_ROW) ||
      wanted(rn, "postgres", PG_LOAD_ROW) || wanted(rn, "postgres", PG_GROUPS_ROW)) {
    snprintf(about, about_cap,
             "skipped: built without the postgres backend (SNAP_WITH_POSTGRES=OFF)");
    fprintf(stderr, "  postgres  %s\n", about);
  }
}
#else
static int side_pg_save_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return pg_save_raw(bx, c, v, err, cap);
}
static int side_pg_load_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return pg_load_raw(bx, c, v, err, cap);
}

/* Raw libpq doing the work the executor did just before in the same
 * repetition: transactions of its mean group size (saves per commit so far),
 * each one pipeline of BEGIN, every row's insert and prune, COMMIT, over the
 * same 16 pids. */
static int side_pg_raw_groups(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  save_case sc = *(const save_case *)c;
  const exec_tally *t = ((const save_case *)c)->tally;
  sc.tally = NULL;
  sc.batch = t && t->commits ? (int)((t->saves + t->commits / 2) / t->commits) : 1;
  if (sc.batch < 1) {
    sc.batch = 1;
  }
  return pg_save_raw(bx, &sc, v, err, cap);
}

/* The executor's figure against the same work done by raw libpq. */
static void pg_groups_row(runner *rn, const payload *p, const bench_pg *pg) {
  exec_tally tally = {0, 0, 0, 0};
  save_case ex = {p->fmt, p->data, p->len, OPT_PLAIN, 1, 3, 16, 1, 16, &tally, 1, NULL, pg};
  run_row(rn, "postgres", PG_GROUPS_ROW, "raw libpq, the executor's group size, pipelined",
          "saves/s", KIND_RATE, side_save_snap, &ex, side_pg_raw_groups, &ex);
  if (tally.commits > 0 && rn->report->n > 0 &&
      strcmp(rn->report->rows[rn->report->n - 1].name, PG_GROUPS_ROW) == 0) {
    bench_row *row = &rn->report->rows[rn->report->n - 1];
    snprintf(row->note, sizeof row->note, "groups of %.1f saves (mean), largest %zu",
             (double)tally.saves / (double)tally.commits, tally.largest_batch);
    fprintf(stderr, "            %s\n", row->note);
  }
}

static void pg_rows(runner *rn, const states *s, char *about, size_t about_cap) {
  const bench_cfg *cfg = rn->bx->cfg;
  if (!wanted(rn, "postgres", PG_SYNC_ROW) && !wanted(rn, "postgres", PG_EXEC_ROW) &&
      !wanted(rn, "postgres", PG_LOAD_ROW) && !wanted(rn, "postgres", PG_GROUPS_ROW)) {
    return;
  }
  bench_pg pg;
  char why[512] = "";
  int st = bench_pg_start(&pg, why, sizeof why);
  if (st != 0) {
    snprintf(about, about_cap, "%s: %s", st > 0 ? "skipped" : "failed", why);
    fprintf(stderr, "  postgres  %s\n", about);
    if (st < 0) {
      bench_row *row = bench_row_add(rn->report, "postgres", "server", "", "", KIND_RATE);
      if (row) {
        bench_row_fail(row, "the cluster could not be started: %.100s", why);
      }
      rn->failures++;
    }
    return;
  }
  snprintf(about, about_cap, "%s", pg.about);
  fprintf(stderr, "  postgres  %s\n", pg.about);
  payload p = ledger_json(s, SIZE_4K);
  int npids = cfg->quick ? 4 : 100;
  save_case sync = {p.fmt, p.data, p.len, OPT_PLAIN, 1, 3, npids, 1, 0, NULL, 0, NULL, &pg};
  run_row(rn, "postgres", PG_SYNC_ROW, "raw libpq INSERT + prune, 1 per transaction", "saves/s",
          KIND_RATE, side_save_snap, &sync, side_pg_save_raw, &sync);
  exec_tally tally = {0, 0, 0, 0};
  save_case ex = {p.fmt, p.data, p.len, OPT_PLAIN, 1, 3, 16, 1, 16, &tally, 1, NULL, &pg};
  run_row(rn, "postgres", PG_EXEC_ROW, "snapstore sync save, 1 thread", "saves/s", KIND_RATE,
          side_save_snap, &ex, side_save_snap, &sync);
  if (tally.commits > 0 && rn->report->n > 0 &&
      strcmp(rn->report->rows[rn->report->n - 1].name, PG_EXEC_ROW) == 0) {
    bench_row *row = &rn->report->rows[rn->report->n - 1];
    snprintf(row->note, sizeof row->note,
             "%.1f saves per transaction (mean of %d reps, largest %zu), up to %lld in flight",
             (double)tally.saves / (double)tally.commits, row->n, tally.largest_batch,
             tally.max_in_flight);
    fprintf(stderr, "            %s\n", row->note);
  }
  pg_groups_row(rn, &p, &pg);
  if (wanted(rn, "postgres", PG_LOAD_ROW)) {
    pg_load_case lc;
    char err[160] = "", base[64];
    memset(&lc, 0, sizeof lc);
    lc.lc.fmt = p.fmt;
    lc.lc.state = p.data;
    lc.lc.len = p.len;
    lc.lc.opt = OPT_PLAIN;
    lc.lc.npids = cfg->load_pids;
    if (pg_load_setup(rn->bx, &pg, &lc, err, sizeof err) != 0) {
      bench_row *row = bench_row_add(rn->report, "postgres", PG_LOAD_ROW, "", "loads/s", KIND_RATE);
      if (row) {
        bench_row_fail(row, "setup: %s", err);
      }
      rn->failures++;
    } else {
      snprintf(base, sizeof base, "raw libpq SELECT newest + copy (%d pids × 3)", lc.lc.npids);
      run_row(rn, "postgres", PG_LOAD_ROW, base, "loads/s", KIND_RATE, side_load_snap, &lc.lc,
              side_pg_load_raw, &lc);
    }
    pg_load_teardown(&lc);
  }
  bench_pg_stop(&pg);
}
#endif

/* libdeflate against zlib on the JSON states: compression at levels 1 and 6
 * (µs, and the compressed size) and decompression of each one's stream. */
static void deflate_rows(runner *rn, const states *s) {
  char name[128];
  for (int z = 0; z < SIZE_COUNT; z++) {
    payload p = ledger_json(s, (bench_size)z);
    for (int level = 1; level <= 6; level += 5) {
      for (int dec = 0; dec < 2; dec++) {
        deflate_case *c = deflate_case_new(p.data, p.len, level, dec);
        if (!c) {
          rn->failures++;
          return;
        }
        snprintf(name, sizeof name, "%s, level %d, %s: libdeflate", p.label, level,
                 dec ? "decompress" : "compress");
        run_row(rn, "deflate", name, dec ? "zlib inflate (raw, no Adler-32)" : "zlib deflate",
                "µs/op", KIND_TIME, deflate_libdeflate, c, deflate_zlib, c);
        if (!dec && wanted(rn, "deflate", name)) {
          bench_row *row;
          snprintf(name, sizeof name, "%s, level %d, compressed size: libdeflate", p.label, level);
          if ((row = bench_row_add(rn->report, "deflate", name, "zlib", "bytes", KIND_SIZE))) {
            bench_row_record(row, (double)deflate_case_size(c, 1), (double)deflate_case_size(c, 0));
          }
        }
        free(c);
      }
    }
  }
}

/* Group "dict": compression ratio (state bytes / body bytes) with zstd-3 and
 * a dictionary trained on 1,000 states, against zlib-1, on 9,000 others.
 * The ratio column is zlib-1's body bytes over zstd+dict's. Deterministic:
 * one repetition. */
static void dict_rows(runner *rn) {
  static const struct {
    size_t target;
    const char *name;
  } cases[] = {{256, "256 B JSON corpus, zstd-3+dict"},
               {1024, "1 KiB JSON corpus, zstd-3+dict"},
               {4096, "4 KiB JSON corpus, zstd-3+dict"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (!wanted(rn, "dict", cases[i].name))
      continue;
    bench_row *row = bench_row_add(rn->report, "dict", cases[i].name, "zlib-1", "state/body",
                                   KIND_RATE);
    bench_dict_result r;
    char err[160] = "";
    if (!row || bench_dict_corpus(cases[i].target, &r, err, sizeof err) != 0) {
      if (row)
        bench_row_fail(row, "%s", err);
      rn->failures++;
      continue;
    }
    bench_row_record(row, (double)r.state_bytes / (double)r.dict_bytes,
                     (double)r.state_bytes / (double)r.zlib_bytes);
    snprintf(row->note, sizeof row->note, "mean state %.0f B, dictionary %zu B", r.mean_state,
             r.dict_len);
    progress(row);
  }
}

static void codec_rows(runner *rn, const states *s) {
  char name[96];
  payload list[SIZE_COUNT + 3];
  int opts_all[SIZE_COUNT + 3];
  int n = 0;
  for (int z = 0; z < SIZE_COUNT; z++) {
    opts_all[n] = 1;
    list[n++] = ledger_json(s, (bench_size)z);
  }
  opts_all[n] = 0;
  list[n++] = ledger_msgpack(s, SIZE_4K);
  opts_all[n] = 0;
  list[n++] = ledger_msgpack(s, SIZE_1M);
  opts_all[n] = 0;
  list[n++] = random_4k(s);
  for (int i = 0; i < n; i++) {
    codec_case cc = {list[i].fmt, list[i].data, list[i].len, OPT_PLAIN};
    run_row(rn, "validate", list[i].label,
            list[i].fmt == SNAP_FORMAT_JSON ? "cJSON_ParseWithLengthOpts + cJSON_Delete"
                                            : "msgpack_unpack_next",
            "GB/s", KIND_RATE, side_val_snap, &cc, side_val_raw, &cc);
  }
  for (int dir = 0; dir < 2; dir++) {
    for (int i = 0; i < n; i++) {
      for (int opt = 0; opt < OPT_DIRECT_COUNT; opt += opts_all[i] ? 1 : OPT_ZLIB_ENC) {
        codec_case cc = {list[i].fmt, list[i].data, list[i].len, opt};
        snprintf(name, sizeof name, "%s, %s", list[i].label, opt_label(opt));
        if (dir == 0) {
          run_row(rn, "encode", name, "cJSON/msgpack-c + zlib + libsodium directly", "µs/op",
                  KIND_TIME, side_enc_snap, &cc, side_enc_raw, &cc);
        } else {
          run_row(rn, "decode", name, "libsodium + zlib directly", "µs/op", KIND_TIME,
                  side_dec_snap, &cc, side_dec_raw, &cc);
        }
      }
    }
  }
}

/* Writes the large state in a short-lived child so that its generation (the
 * cJSON tree of a 64 MiB ledger is several times its size) does not raise
 * this process's own peak. */
static int write_big_state(const char *path, size_t size) {
  fflush(stdout);
  fflush(stderr);
  pid_t child = fork();
  if (child < 0) {
    return -1;
  }
  if (child == 0) {
    bench_state st;
    if (bench_state_make(&st, size) != 0) {
      _exit(1);
    }
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(st.json, 1, st.json_len, f) == st.json_len;
    if (f && fclose(f) != 0) {
      ok = 0;
    }
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void rss_rows(runner *rn, double *state_kib) {
  const bench_cfg *cfg = rn->bx->cfg;
  char path[4096], name[96], err[160] = "";
  if (!wanted(rn, "rss", "")) {
    return;
  }
  bench_path(path, sizeof path, cfg, "rss-state.json");
  struct stat sb;
  if (write_big_state(path, cfg->rss_state) != 0 || stat(path, &sb) != 0) {
    bench_row *row = bench_row_add(rn->report, "rss", "state generation", "", "KiB", KIND_SIZE);
    if (row) {
      bench_row_fail(row, "could not write %s", path);
    }
    rn->failures++;
    return;
  }
  *state_kib = (double)sb.st_size / 1024.0;
  for (int opt = 0; opt < OPT_COUNT; opt += OPT_ZLIB_ENC) {
    snprintf(name, sizeof name, "%.0f MiB JSON, %s, save then load", *state_kib / 1024.0,
             opt_label(opt));
    bench_row *row = bench_row_add(rn->report, "rss", name, "raw INSERT then SELECT + copy",
                                   "KiB peak", KIND_SIZE);
    if (!row) {
      rn->failures++;
      break;
    }
    int reps = cfg->quick ? 1 : 3;
    for (int rep = 0; rep < reps; rep++) {
      long a = 0, b = 0;
      if (rss_measure(rn->bx, "/proc/self/exe", path, 0, opt, &a, err, sizeof err) != 0 ||
          rss_measure(rn->bx, "/proc/self/exe", path, 1, opt, &b, err, sizeof err) != 0) {
        bench_row_fail(row, "%s", err);
        rn->failures++;
        break;
      }
      bench_row_record(row, (double)a, (double)b);
    }
    progress(row);
  }
  unlink(path);
}

/* ------------------------------------------------------------------------ */
/* Targets                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct target {
  const char *label;
  const char *group;
  const char *name;
  double min_ratio; /* the ratio must be at least this (0: see max_state) */
  double max_state; /* rss rows: the snapstore peak at most this many times the state */
  double max_ratio; /* size rows: the ratio must be at most this (0: unused) */
  double min_snap;  /* the snapstore median must be at least this, in the row's unit (0: unused) */
} target;

static const target targets[] = {
    {"sync save, 4 KiB JSON, plain, synchronous=full", "save", "4 KiB JSON, plain, sync=full", 0.95,
     0, 0, 0},
    {"sync save, 4 KiB JSON, zlib-1 + encryption, synchronous=full", "save",
     "4 KiB JSON, zlib-1+enc, sync=full", 0.85, 0, 0, 0},
    {"sync save, 4 KiB JSON, zlib-1 + encryption, synchronous=normal", "save",
     "4 KiB JSON, zlib-1+enc, sync=normal", 0.85, 0, 0, 0},
    {"executor, 16 pipelined submitters, 4 KiB, synchronous=full, vs raw batched 1,000 per "
     "transaction",
     "executor", "16 submitters, pipelined, 4 KiB JSON, plain, sync=full", 0.70, 0, 0, 0},
    {"executor, 16 pipelined submitters, 256 B, synchronous=full, vs raw one insert per "
     "transaction",
     "executor", "16 submitters, pipelined, 256 B JSON, plain, sync=full", 10.0, 0, 0, 0},
    {"load_latest, 4 KiB plain, vs raw SELECT newest + copy", "load", "4 KiB JSON, plain", 0.90, 0,
     0, 0},
    {"load_latest, 4 KiB zlib-1 + encryption", "load", "4 KiB JSON, zlib-1+enc", 0.70, 0, 0, 0},
    {"sync save, 4 KiB zlib-1, envelope keys vs direct keys, synchronous=full", "save",
     "4 KiB JSON, zlib-1+envelope, sync=full", 0.95, 0, 0, 0},
    {"load_latest, 4 KiB zlib-1, envelope keys vs direct keys", "load",
     "4 KiB JSON, zlib-1+envelope", 0.95, 0, 0, 0},
    {"sync save, 64 KiB JSON, zlib-1 + encryption, synchronous=full", "save",
     "64 KiB JSON, zlib-1+enc, sync=full", 0.80, 0, 0, 0},
    {"sync save, 1 MiB JSON, zlib-1 + encryption, synchronous=full", "save",
     "1 MiB JSON, zlib-1+enc, sync=full", 0.70, 0, 0, 0},
    {"executor, 16 pipelined submitters, keep 3, vs raw 1,000 per transaction with prune",
     "executor", "16 submitters, pipelined, 4 KiB JSON, plain, sync=full, keep=3", 0.80, 0, 0, 0},
    {"recovery storm, 10,000 pids, zlib-1 + encryption, executor vs 2 threads direct, cold",
     "storm", "10,000 pids 4 KiB JSON, zlib-1+enc, executor, cold", 0.95, 0, 0, 0},
    {"recovery storm, 10,000 pids, zlib-1 + encryption, executor vs 2 threads direct, warm",
     "storm", "10,000 pids 4 KiB JSON, zlib-1+enc, executor, warm", 0.95, 0, 0, 0},
    {"bytes written per save, executor keep 3, vs a single save's", "written",
     "executor, 16 pipelined submitters, 4 KiB JSON, plain, keep=3", 0, 0, 1.5, 0},
    {"JSON validation, 1 MiB ledger, GB/s", "validate", "1 MiB JSON", 0, 0, 0, 1.0},
    {"JSON validation, 64 KiB ledger, GB/s", "validate", "64 KiB JSON", 0, 0, 0, 1.0},
    {"postgres: sync save, 4 KiB plain, keep 3, vs raw libpq", "postgres", PG_SYNC_ROW, 0.90, 0, 0,
     0},
    {"postgres: executor, 16 pipelined submitters, keep 3, vs raw libpq in the same pipelined "
     "groups",
     "postgres", PG_GROUPS_ROW, 0.85, 0, 0, 0},
    {"postgres: load_latest, 4 KiB plain, vs raw libpq", "postgres", PG_LOAD_ROW, 0.80, 0, 0, 0},
    {"peak RSS saving then loading one large state (plain)", "rss", "plain", 0, 4.0, 0, 0},
    {"peak RSS saving then loading one large state (zlib-1 + encryption)", "rss", "zlib-1+enc", 0,
     4.0, 0, 0},
};

static const bench_row *find_rss(const bench_report *r, const char *opt) {
  char suffix[64];
  snprintf(suffix, sizeof suffix, ", %s, save then load", opt);
  for (size_t i = 0; i < r->n; i++) {
    const bench_row *row = &r->rows[i];
    size_t nl = strlen(row->name), sl = strlen(suffix);
    if (!row->failed && row->n > 0 && strcmp(row->group, "rss") == 0 && nl > sl &&
        strcmp(row->name + nl - sl, suffix) == 0) {
      return row;
    }
  }
  return NULL;
}

static void print_targets(const bench_report *r, double state_kib, FILE *out) {
  fprintf(out, "\n## targets\n\n| target | required | measured (median) | met |\n"
               "|---|---:|---:|---|\n");
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    const target *t = &targets[i];
    if (t->max_state > 0) {
      const bench_row *row = find_rss(r, t->name);
      if (!row || state_kib <= 0) {
        fprintf(out, "| %s | ≤ %.0f × state | not measured | — |\n", t->label, t->max_state);
        continue;
      }
      double med, min, max;
      bench_stats(row->snap, row->n, &med, &min, &max);
      double times = med / state_kib;
      fprintf(out, "| %s | ≤ %.0f × state | %.2f × state (%.0f KiB for %.0f KiB) | %s |\n",
              t->label, t->max_state, times, med, state_kib, times <= t->max_state ? "yes" : "NO");
      continue;
    }
    const bench_row *row = bench_row_find(r, t->group, t->name);
    if (t->min_snap > 0) {
      if (!row || row->n == 0) {
        fprintf(out, "| %s | ≥ %.2f | not measured | — |\n", t->label, t->min_snap);
      } else {
        double med, min, max;
        bench_stats(row->snap, row->n, &med, &min, &max);
        fprintf(out, "| %s | ≥ %.2f | %.2f | %s |\n", t->label, t->min_snap, med,
                med >= t->min_snap ? "yes" : "NO");
      }
      continue;
    }
    if (t->max_ratio > 0) {
      if (!row) {
        fprintf(out, "| %s | ≤ %.2f | not measured | — |\n", t->label, t->max_ratio);
      } else {
        double ratio = bench_row_ratio(row);
        fprintf(out, "| %s | ≤ %.2f | %.2f | %s |\n", t->label, t->max_ratio, ratio,
                ratio <= t->max_ratio ? "yes" : "NO");
      }
      continue;
    }
    if (!row) {
      fprintf(out, "| %s | ≥ %.2f | not measured | — |\n", t->label, t->min_ratio);
      continue;
    }
    double ratio = bench_row_ratio(row);
    fprintf(out, "| %s | ≥ %.2f | %.2f | %s |\n", t->label, t->min_ratio, ratio,
            ratio >= t->min_ratio ? "yes" : "NO");
  }
  fprintf(out, "\nThe executor targets are judged on the pipelined rows: an actor's snapshot save "
               "is asynchronous (it keeps processing messages while the save completes), so it can "
               "have several saves in flight. In the closed loop each of 16 submitters awaits its "
               "callback before saving again, so a transaction can never carry more than 16 saves "
               "and the ratio to 1,000-row raw transactions is bounded by that model, not by the "
               "executor; the closed-loop rows are reported beside them.\n");
}

/* The baseline's figures measured on this kind of machine with the plain C
 * APIs (docs/MACHINE.md). A baseline far from them means a
 * busy disk or CPU — or a wrong baseline — so the report shows both. */
typedef struct reference {
  const char *group;
  const char *name;
  double value;
  const char *what;
} reference;

static const reference references[] = {
    {"save", "4 KiB JSON, plain, sync=full", 4400, "4 KiB insert, 1 per transaction, full"},
    {"save", "4 KiB JSON, plain, sync=normal", 17700, "4 KiB insert, 1 per transaction, normal"},
    {"save", "256 B JSON, plain, sync=full", 5600, "256 B insert, 1 per transaction, full"},
    {"save", "1 MiB JSON, plain, sync=full", 250, "1 MiB insert, 1 per transaction, full"},
    {"executor", "16 submitters, pipelined, 4 KiB JSON, plain, sync=full", 34000,
     "4 KiB inserts, 1,000 per transaction"},
    {"load", "4 KiB JSON, plain", 75000, "load newest 4 KiB row (10,000 pids × 3)"},
    {"load", "256 B JSON, plain", 140000, "load newest 256 B row (10,000 pids × 3)"},
};

static void print_baseline_check(const bench_report *r, FILE *out) {
  fprintf(out, "\n## baseline check\n\nThe baseline against reference figures for this kind of "
               "machine (±30 %% is disk noise; far below means a busy machine).\n\n"
               "| baseline | reference | measured median | measured / reference |\n"
               "|---|---:|---:|---:|\n");
  for (size_t i = 0; i < sizeof references / sizeof references[0]; i++) {
    const reference *ref = &references[i];
    const bench_row *row = bench_row_find(r, ref->group, ref->name);
    if (!row) {
      continue;
    }
    double med, min, max;
    bench_stats(row->raw, row->n, &med, &min, &max);
    fprintf(out, "| %s | %.0f/s | %.0f/s | %.2f |\n", ref->what, ref->value, med, med / ref->value);
  }
}

/* ------------------------------------------------------------------------ */
/* Setup and the command line                                                */
/* ------------------------------------------------------------------------ */

static int ctx_init(bench_ctx *bx, const bench_cfg *cfg) {
  memset(bx, 0, sizeof *bx);
  bx->cfg = cfg;
  randombytes_buf(bx->key, sizeof bx->key);
  if (snap_keyring_new(&bx->kr) != SNAP_OK ||
      snap_keyring_add(bx->kr, 1, bx->key, sizeof bx->key) != SNAP_OK) {
    return -1;
  }
  for (int opt = 0; opt < OPT_COUNT; opt++) {
    snap_options *o = NULL;
    if (snap_options_new(&o) != SNAP_OK) {
      return -1;
    }
    bx->opts[opt] = o;
    int zlib = (opt & OPT_ZLIB) != 0;
    if (snap_options_set_compression(o, zlib ? SNAP_COMPRESSION_ZLIB : SNAP_COMPRESSION_NONE,
                                     zlib ? 1 : 0) != SNAP_OK ||
        snap_options_set_encryption(o, (opt & OPT_ENC) ? bx->kr : NULL, BENCH_CONTEXT) != SNAP_OK ||
        snap_options_set_key_mode(o, (opt & OPT_ENVELOPE) ? SNAP_KEYS_ENVELOPE
                                                          : SNAP_KEYS_DIRECT) != SNAP_OK) {
      return -1;
    }
  }
  return 0;
}

static void ctx_dispose(bench_ctx *bx) {
  for (int opt = 0; opt < OPT_COUNT; opt++) {
    snap_options_free(bx->opts[opt]);
  }
  snap_keyring_free(bx->kr);
  sodium_memzero(bx->key, sizeof bx->key);
}

static void usage(FILE *f) {
  fprintf(f, "usage: snap_bench [--quick] [--csv FILE] [--reps N] [--dir DIR] [--only TEXT]\n"
             "  --quick     a few seconds in all: tiny counts, every row once (CI)\n"
             "  --csv FILE  also write every row as CSV\n"
             "  --reps N    repetitions per row (default 5; quick: 1)\n"
             "  --dir DIR   where the databases go (default: a new directory under .)\n"
             "  --only TEXT run only the rows whose group or case contains TEXT\n"
             "              (=TEXT: only the row whose case is exactly TEXT)\n");
}

static void print_header(const bench_cfg *cfg, int argc, char **argv, FILE *out) {
  struct utsname u;
  time_t now = time(NULL);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  fprintf(out, "# snap_bench%s\n\n", cfg->quick ? " (quick mode: figures are not meaningful)" : "");
  fprintf(out, "- command:");
  for (int i = 0; i < argc; i++) {
    fprintf(out, " %s", argv[i]);
  }
  fprintf(out, "\n- date: %s\n", when);
  if (uname(&u) == 0) {
    fprintf(out, "- machine: %s %s %s, %ld CPUs\n", u.sysname, u.release, u.machine,
            sysconf(_SC_NPROCESSORS_ONLN));
  }
  fprintf(out, "- SQLite %s, libsodium %s, directory %s\n", sqlite3_libversion(),
          sodium_version_string(), cfg->dir);
  fprintf(out,
          "- %d repetitions per row, snapstore and baseline alternating; figures are medians "
          "(min–max); the ratio is the median of the per-repetition ratios\n",
          cfg->reps);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--rss-child") == 0) {
    return rss_child_main(argc - 2, argv + 2);
  }
  if (argc >= 2 && strcmp(argv[1], "--storm-child") == 0) {
    return storm_child_main(argc - 2, argv + 2);
  }
  bench_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.reps = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--quick") == 0) {
      cfg.quick = 1;
    } else if (strcmp(a, "--csv") == 0 && i + 1 < argc) {
      cfg.csv = argv[++i];
    } else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
      cfg.reps = atoi(argv[++i]);
      if (cfg.reps < 1 || cfg.reps > BENCH_MAX_REPS) {
        fprintf(stderr, "snap_bench: --reps must be 1..%d\n", BENCH_MAX_REPS);
        return 2;
      }
    } else if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
      cfg.dir = argv[++i];
    } else if (strcmp(a, "--only") == 0 && i + 1 < argc) {
      cfg.only = argv[++i];
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (cfg.quick) {
    cfg.reps = cfg.reps > 0 ? cfg.reps : 1;
    cfg.save_seconds = 0.015;
    cfg.load_seconds = 0.01;
    cfg.codec_seconds = 0.002;
    cfg.load_pids = 100;
    cfg.rss_state = 4u << 20;
  } else {
    cfg.reps = cfg.reps > 0 ? cfg.reps : 5;
    cfg.save_seconds = 0.8;
    cfg.load_seconds = 0.4;
    cfg.codec_seconds = 0.1;
    cfg.load_pids = 10000;
    cfg.rss_state = 64u << 20;
  }

  /* The databases go to a directory of our own on the disk being measured
   * (not /tmp, which may be memory-backed and would make fsync free). */
  char made[64] = "";
  if (!cfg.dir) {
    snprintf(made, sizeof made, "snap-bench-XXXXXX");
    if (!mkdtemp(made)) {
      fprintf(stderr, "snap_bench: cannot create a directory here: %s\n", strerror(errno));
      return 1;
    }
    cfg.dir = made;
  } else if (mkdir(cfg.dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "snap_bench: cannot create %s: %s\n", cfg.dir, strerror(errno));
    return 1;
  }

  if (sodium_init() < 0) {
    fprintf(stderr, "snap_bench: libsodium failed to initialise\n");
    return 1;
  }
  bench_ctx bx;
  states s;
  bench_report report = {0};
  int rc = 0;
  double state_kib = 0;
  if (ctx_init(&bx, &cfg) != 0 || states_make(&s) != 0) {
    fprintf(stderr, "snap_bench: setup failed: %s\n", snap_error_message());
    return 1;
  }
  print_header(&cfg, argc, argv, stdout);
  printf("- states: ");
  for (int z = 0; z < SIZE_COUNT; z++) {
    printf("%s%s = %zu B JSON / %zu B msgpack (%d account%s)", z ? ", " : "",
           bench_size_label((bench_size)z), s.ledger[z].json_len, s.ledger[z].msgpack_len,
           s.ledger[z].accounts, s.ledger[z].accounts == 1 ? "" : "s");
  }
  printf(", 4 KiB random = %zu B msgpack bin\n", s.random4k_len);

  runner rn = {&bx, &report, cfg.only, 0};
  double t0 = bench_now();
  fprintf(stderr, "snap_bench: %d repetitions per row, databases in %s\n", cfg.reps, cfg.dir);
  save_rows(&rn, &s);
  executor_rows(&rn, &s);
  executor_ceiling_row(&rn, &s);
  executor_keep_rows(&rn, &s);
  prune_rows(&rn, &s);
  load_rows(&rn, &s);
  envelope_load_row(&rn, &s);
  metrics_rows(&rn, &s);
  storm_rows(&rn, &s);
  char pg_about[1024] = "";
  pg_rows(&rn, &s, pg_about, sizeof pg_about);
  codec_rows(&rn, &s);
  deflate_rows(&rn, &s);
  dict_rows(&rn);
  rss_rows(&rn, &state_kib);

  bench_report_markdown(&report, stdout);
  if (pg_about[0]) {
    printf("\n- postgres rows: %s\n", pg_about);
  }
  print_targets(&report, state_kib, stdout);
  print_baseline_check(&report, stdout);
  printf("\n- total time %.1f s; peak RSS of this process %ld KiB (the large-state rows ran in "
         "child processes)\n",
         bench_now() - t0, bench_peak_rss_kib());
  if (cfg.csv && bench_report_csv(&report, cfg.csv) != 0) {
    fprintf(stderr, "snap_bench: cannot write %s: %s\n", cfg.csv, strerror(errno));
    rc = 1;
  }
  if (rn.failures) {
    fprintf(stderr, "snap_bench: %d row(s) failed\n", rn.failures);
    rc = 1;
  }
  bench_report_free(&report);
  states_free(&s);
  ctx_dispose(&bx);
  if (made[0]) {
    rmdir(made);
  }
  return rc;
}
