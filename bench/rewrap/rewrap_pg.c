/* snap_bench_rewrap_pg: rewrapping N data keys (default 1,000,000) on a
 * postgres store of 3 shards (docs/PERFORMANCE.md, "Rewrap on PostgreSQL").
 *
 *   snap_bench_rewrap_pg [UNITS]
 *
 * Starts a throw-away cluster of 3 databases (tests/support/pg_fixture.c),
 * makes UNITS wrapped keys under master key version 1 through the public API
 * (saves of sqlite stores of the same data set name, "snapshots", four files
 * written side by side, whose key tables are then copied row by row to the
 * unit's shard: wrapped keys bind the data set name, not the backend), then times snap_rewrap() to master key
 * version 2 on the postgres store, and a rerun that finds every key current.
 * Only the rewraps are timed. Prints one line per figure. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "pg_fixture.h"
#include "rewrap_common.h"
#include "snap/envelope.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

#define SHARDS 3

const char *rw_prog = "snap_bench_rewrap_pg";

/* The shard of a unit: as of a pid, FNV-1a 32 mod 1024 slices spread evenly
 * (docs/POSTGRES.md, section 3). */
static int shard_of(const char *unit) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)unit; *p; p++)
    h = (h ^ *p) * 16777619u;
  return (int)((h % 1024u) * SHARDS / 1024u);
}

/* Sends the rows of one sqlite key table to the COPY of their shard. */
static int copy_file(const char *path, PGconn **pg) {
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT unit, generation, master_version, wrapped FROM "
                             "snapshots_keys", -1, &q, NULL) != SQLITE_OK)
    return rw_fail("read the sqlite key table", sqlite3_errmsg(db));
  char line[512];
  while (sqlite3_step(q) == SQLITE_ROW) {
    const char *unit = (const char *)sqlite3_column_text(q, 0);
    const uint8_t *w = sqlite3_column_blob(q, 3);
    int len = snprintf(line, sizeof line, "%s\t%lld\t%lld\t\\\\x", unit,
                       (long long)sqlite3_column_int64(q, 1),
                       (long long)sqlite3_column_int64(q, 2));
    for (int i = 0; i < sqlite3_column_bytes(q, 3); i++)
      len += snprintf(line + len, sizeof line - (size_t)len, "%02x", w[i]);
    line[len++] = '\n';
    if (PQputCopyData(pg[shard_of(unit)], line, len) != 1)
      return rw_fail("COPY", PQerrorMessage(pg[shard_of(unit)]));
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return 0;
}

/* Copies the sqlite key tables to the shards' key tables (COPY, text format). */
static int copy_keys(const rw_maker *m, PGconn **pg) {
  for (int s = 0; s < SHARDS; s++) {
    PGresult *r = PQexec(pg[s], "COPY snapshots_keys (unit, generation, master_version, wrapped) "
                                "FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
      return rw_fail("COPY", PQresultErrorMessage(r));
    PQclear(r);
  }
  for (int i = 0; i < RW_MAKERS; i++)
    if (copy_file(m[i].path, pg))
      return 1;
  for (int s = 0; s < SHARDS; s++) {
    PGresult *r;
    if (PQputCopyEnd(pg[s], NULL) != 1 || (r = PQgetResult(pg[s])) == NULL ||
        PQresultStatus(r) != PGRES_COMMAND_OK)
      return rw_fail("COPY end", PQerrorMessage(pg[s]));
    PQclear(r);
    PQclear(PQexec(pg[s], "VACUUM ANALYZE snapshots_keys"));
  }
  return 0;
}

static long long count_v2(PGconn **pg) {
  long long n = 0;
  for (int s = 0; s < SHARDS; s++) {
    PGresult *r = PQexec(pg[s], "SELECT count(*) FROM snapshots_keys WHERE master_version = 2");
    n += PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1000000000LL;
    PQclear(r);
  }
  return n;
}

int main(int argc, char **argv) {
  long units = argc > 1 ? atol(argv[1]) : 1000000;
  if (units < 1 || units > 9999999)
    return rw_fail("usage", "snap_bench_rewrap_pg [UNITS: 1 to 9999999]");
  pgfx f;
  char err[512], cfg[4096], ci[SHARDS][512];
  if (pgfx_start(&f, SHARDS, err, sizeof err) != 0)
    return rw_fail("start the cluster", err);
  char *dir = st_tmpdir();
  rw_maker m[RW_MAKERS];
  int bad = rw_make_all(dir, units, m);
  PGconn *pg[SHARDS] = {NULL};
  size_t len = (size_t)snprintf(cfg, sizeof cfg, "{\"table\": \"snapshots\", \"shards\": [");
  for (int s = 0; s < SHARDS; s++) {
    pgfx_conninfo(&f, s, ci[s], sizeof ci[s]);
    len += (size_t)snprintf(cfg + len, sizeof cfg - len, "%s\"%s\"", s ? ", " : "", ci[s]);
    pg[s] = PQconnectdb(ci[s]);
  }
  snprintf(cfg + len, sizeof cfg - len, "]}");
  snap_keyring *kr = NULL;
  snap_options *o = rw_envelope(0x52, &kr);
  snap_store *st = NULL;
  if (!bad && snap_store_open_backend(&st, snap_backend_postgres(), cfg) != SNAP_OK)
    bad = rw_fail("open the postgres store", snap_error_message());
  snap_rewrap_progress pr;
  /* The first rewrap creates the schema (nothing to do yet); then the keys. */
  if (!bad && snap_rewrap(st, o, NULL, NULL, NULL, &pr) != SNAP_OK)
    bad = rw_fail("create the schema", snap_error_message());
  if (!bad)
    bad = copy_keys(m, pg);
  if (!bad)
    snap_store_set_default_options(st, o);
  if (!bad)
    bad = rw_rewrap_timed(st, "rewrap to master key 2", &pr);
  if (!bad && (pr.rewrapped != (uint64_t)units || count_v2(pg) != units))
    bad = rw_fail("check", "not every key is under master key 2");
  if (!bad)
    bad = rw_rewrap_timed(st, "rerun, every key current", &pr);
  printf("units %ld, shards %d, %s\n", units, SHARDS, bad ? "FAILED" : "ok");
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  for (int s = 0; s < SHARDS; s++)
    PQfinish(pg[s]);
  pgfx_destroy(&f);
  st_rmtree(dir);
  free(dir);
  return bad;
}
