/*
 * snap_bench rows: PostgreSQL, on a throw-away cluster started here.
 */
#include <string.h>

#include "runner.h"
#ifdef SNAP_WITH_POSTGRES
#include "pg.h"
#endif

/* The PostgreSQL rows, on a throw-away cluster started here (pg.c): a
 * synchronous save against raw libpq, the executor against that synchronous
 * save, and load_latest against raw libpq. Every save prunes (keep = 3): a
 * save is its insert and its prune in one transaction. */

#ifndef SNAP_WITH_POSTGRES
/* Built with -DSNAP_WITH_POSTGRES=OFF: the rows are skipped, as on a machine
 * without PostgreSQL, and the report says why. */
void pg_rows(runner *rn, const states *s, char *about, size_t about_cap) {
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

void pg_rows(runner *rn, const states *s, char *about, size_t about_cap) {
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

