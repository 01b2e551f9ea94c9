/*
 * snap_bench rows: synchronous saves, the executor, pruning, the cost of the
 * metrics, and loads (docs/PERFORMANCE.md, "What each row means").
 */
#include <string.h>

#include "runner.h"

void save_rows(runner *rn, const states *s) {
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
  /* The disk's own spread at the smallest synchronous save: the baseline
   * against itself, each repetition's two runs back to back as in every row.
   * A slow repetition of the row above that shows here too is the disk's. */
  payload small = ledger_json(s, SIZE_256B);
  save_case rr = {small.fmt, small.data, small.len, OPT_PLAIN, 1, 0, npids, 1, 0, NULL, 0, NULL, NULL};
  run_row(rn, "save", "256 B JSON, plain, sync=full, raw vs raw", "raw INSERT, 1 per transaction",
          "saves/s", KIND_RATE, side_save_raw, &rr, side_save_raw, &rr);
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

void executor_rows(runner *rn, const states *s) {
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
void executor_ceiling_row(runner *rn, const states *s) {
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

void executor_keep_rows(runner *rn, const states *s) {
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

void prune_rows(runner *rn, const states *s) {
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

void metrics_rows(runner *rn, const states *s) {
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
void envelope_load_row(runner *rn, const states *s) {
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

void load_rows(runner *rn, const states *s) {
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
    if (load_setup_row(rn, "load", name, &lc) != 0) {
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

