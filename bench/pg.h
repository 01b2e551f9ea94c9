/**
 * @file pg.h
 * @brief snap_bench's PostgreSQL rows: a throw-away PostgreSQL 15 cluster
 *        (tests/support/pg_fixture.h), the `postgres` backend on one of its
 *        databases and a raw-libpq baseline with the backend's schema on
 *        another (internal, not installed).
 */
#ifndef SNAP_BENCH_PG_H
#define SNAP_BENCH_PG_H

#include <libpq-fe.h>

#include "cases.h"
#include "pg_fixture.h"

/** The cluster of a run: database 0 holds snapstore's table, database 1 the baseline's. */
typedef struct bench_pg {
  pgfx fx;
  int started;
  char snap_ci[512]; /**< conninfo of snapstore's database */
  char raw_ci[512];  /**< conninfo of the baseline's database */
  char about[1024];  /**< server version and durability settings, for the report */
} bench_pg;

/**
 * Starts the cluster. Returns 0 when it runs, 1 when this machine has no
 * PostgreSQL server programs (`why` says so: the rows are skipped), or -1
 * when they are there but the cluster could not be started (`why` says why).
 */
int bench_pg_start(bench_pg *pg, char *why, size_t cap);

/** Stops the cluster and removes its files. */
void bench_pg_stop(bench_pg *pg);

/**
 * Empties snapstore's database (drops its tables) and opens a `postgres`
 * store on it with retention `keep`. 0, or -1 with `err` filled.
 */
int bench_pg_open_store(const bench_pg *pg, uint32_t keep, snap_store **st, char *err,
                        size_t errcap);

/** The baseline save: what save_raw() is for SQLite, over libpq (`sc->pg` set). */
int pg_save_raw(const bench_ctx *bx, const save_case *sc, double *rate, char *err, size_t errcap);

/** A raw libpq connection with the backend's table and its prepared statements. */
typedef struct pg_raw {
  PGconn *conn;
  char err[256];
} pg_raw;

/** One PostgreSQL load row: the snapstore side in `lc` (load_snap() reads it), the baseline in
 * `raw`. */
typedef struct pg_load_case {
  load_case lc;
  pg_raw raw;
} pg_load_case;

/** Seeds both databases (3 snapshots per pid, 500 per transaction) and reads every pid once. */
int pg_load_setup(const bench_ctx *bx, const bench_pg *pg, pg_load_case *c, char *err,
                  size_t errcap);
/** The baseline load: the newest row of pids in the scattered order, body copied. */
int pg_load_raw(const bench_ctx *bx, pg_load_case *c, double *rate, char *err, size_t errcap);
/** Closes both sides (the cluster goes with bench_pg_stop()). */
void pg_load_teardown(pg_load_case *c);

#endif /* SNAP_BENCH_PG_H */
