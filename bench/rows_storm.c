/*
 * snap_bench rows: the recovery storm, against one thread, against the
 * store called directly from as many threads, and cold and warm against two.
 */
#include <string.h>
#include <unistd.h>

#include "runner.h"

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

void storm_rows(runner *rn, const states *s) {
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
    if (load_setup_row(rn, "storm", name, &lc) != 0) {
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

