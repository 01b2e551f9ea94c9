/* The helpers of pg_stream_util.h as Criterion assertions, for the test files
 * of the PostgreSQL streams (each includes this header once): the shared
 * cluster, a store on it, SQL summed over its shards, its chunk and staging
 * rows, and a pid's latest seq; the hooks of the cluster. */
#ifndef SNAP_TEST_PG_STREAM_ASSERTS_H
#define SNAP_TEST_PG_STREAM_ASSERTS_H

#include <unistd.h>

#include <criterion/criterion.h>

#include "pg_stream_util.h"
#include "snap/store_stream.h"

/** The hooks that start one throw-away cluster of `ndb` databases for the
 *  whole binary before its first test (published to the tests' processes
 *  by pgfx_export()) and remove it after the last: PGS_CLUSTER_START(n) and
 *  PGS_CLUSTER_STOP on lines of their own, once per test file. */
static pgfx pgs_cluster;
#define PGS_CLUSTER_START(ndb)                                                                     \
  ReportHook(PRE_ALL)(struct criterion_test_set * set) {                                           \
    (void)set;                                                                                     \
    char err[512];                                                                                 \
    if (pgfx_start(&pgs_cluster, (ndb), err, sizeof err) == 0)                                     \
      pgfx_export(&pgs_cluster);                                                                   \
    else                                                                                           \
      pgfx_export_failure(err);                                                                    \
  }
#define PGS_CLUSTER_STOP                                                                           \
  ReportHook(POST_ALL)(struct criterion_global_stats * stats) {                                    \
    (void)stats;                                                                                   \
    pgfx_destroy(&pgs_cluster);                                                                    \
  }

/** The cluster the binary's PRE_ALL hook started (pgfx_export()). */
static inline pgfx pgs_shared(void) {
  pgfx f;
  char err[512];
  cr_assert_eq(pgfx_import(&f, err, sizeof err), 0, "%s", err);
  return f;
}

static inline snap_store *pgs_open_ok(pgs_store *p, const pgfx *f, int nshards,
                                      const char *extra) {
  snap_store *st = pgs_open(p, f, nshards, extra);
  cr_assert_not_null(st, "%s: %s", p->cfg, snap_error_message());
  return st;
}

static inline snap_store *pgs_reopen_ok(const pgs_store *p) {
  snap_store *st = pgs_reopen(p);
  cr_assert_not_null(st, "%s", snap_error_message());
  return st;
}

static inline long long pgs_on_shards(const pgs_store *p, const char *tpl) {
  char err[1024];
  long long n = pgs_sum(p, tpl, err, sizeof err);
  cr_assert_geq(n, 0, "%s", err);
  return n;
}

/** The chunk rows of every stream of the store, on all its shards. */
static inline long long pgs_chunk_rows(const pgs_store *p) {
  return pgs_on_shards(p, "SELECT count(*) FROM \"{T}_chunks\"");
}

/** The streams being staged (listed in the staging tables). */
static inline long long pgs_staged(const pgs_store *p) {
  return pgs_on_shards(p, "SELECT count(*) FROM \"{T}_staging\"");
}

/** The latest seq of `pid` (-1: none). */
static inline int64_t pgs_latest_seq(snap_store *st, const char *pid) {
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, pid, NULL, &s), SNAP_OK, "%s", snap_error_message());
  int64_t seq = s ? s->seq : -1;
  snap_snapshot_free(s);
  return seq;
}

/** Sweeps until `want` orphans were reclaimed (the server notices a killed
 *  client's session gone within moments), at most ~10 s: how many were. */
static inline uint64_t pgs_sweep_until(snap_store *st, uint64_t want) {
  uint64_t total = 0;
  for (int i = 0; i < 100 && total < want; i++) {
    uint64_t n = 0;
    cr_assert_eq(snap_store_stream_sweep(st, 1000, &n), SNAP_OK, "%s", snap_error_message());
    total += n;
    if (total < want)
      usleep(100 * 1000);
  }
  return total;
}

#endif /* SNAP_TEST_PG_STREAM_ASSERTS_H */
