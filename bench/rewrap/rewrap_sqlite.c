/* snap_bench_rewrap_sqlite: rewrapping N data keys (default 1,000,000) in a
 * sqlite store (docs/PERFORMANCE.md, "Rewrap on SQLite").
 *
 *   snap_bench_rewrap_sqlite [UNITS] [normal|full]
 *
 * Makes UNITS wrapped keys under master key version 1 through the public API
 * (rewrap_common.c: saves into several sqlite files side by side), gathers
 * them into the key table of one store (its snapshots are not needed: a
 * rewrap never reads a body), then times snap_rewrap() to master key version
 * 2 with the given "synchronous" setting (default normal), and a rerun that
 * finds every key current. Only the rewraps are timed. Prints one line per
 * figure. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rewrap_common.h"
#include "snap/sys/backend.h"
#include "store_util.h"

const char *rw_prog = "snap_bench_rewrap_sqlite";

/* Copies the makers' key tables into the key table of the store at `path`. */
static int gather(const char *path, const rw_maker *m) {
  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK)
    return rw_fail("open the store's file", sqlite3_errmsg(db));
  char sql[1024];
  int bad = 0;
  for (int i = 0; i < RW_MAKERS && !bad; i++) {
    snprintf(sql, sizeof sql,
             "ATTACH '%s' AS part; INSERT INTO snapshots_keys (unit, generation, master_version, "
             "wrapped) SELECT unit, generation, master_version, wrapped FROM part.snapshots_keys; "
             "DETACH part",
             m[i].path);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
      bad = rw_fail("gather the keys", sqlite3_errmsg(db));
  }
  if (!bad && sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
    bad = rw_fail("checkpoint", sqlite3_errmsg(db));
  sqlite3_close(db);
  return bad;
}

static long long count_v2(const char *path) {
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  long long n = -1;
  if (sqlite3_open(path, &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM snapshots_keys WHERE master_version = 2", -1,
                         &q, NULL) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW)
    n = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

int main(int argc, char **argv) {
  long units = argc > 1 ? atol(argv[1]) : 1000000;
  const char *sync = argc > 2 ? argv[2] : "normal";
  if (units < 1 || units > 9999999 || (strcmp(sync, "normal") != 0 && strcmp(sync, "full") != 0))
    return rw_fail("usage", "snap_bench_rewrap_sqlite [UNITS: 1 to 9999999] [normal|full]");
  char *dir = st_tmpdir();
  char *path = st_join(dir, "store.db");
  char cfg[1024];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"synchronous\": \"%s\"}", path, sync);
  rw_maker m[RW_MAKERS];
  int bad = rw_make_all(dir, units, m);
  snap_keyring *kr = NULL;
  snap_options *o = rw_envelope(0x52, &kr);
  snap_store *st = NULL;
  snap_rewrap_progress pr;
  /* The first open and rewrap create the schema (nothing to do yet). */
  if (!bad && snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK)
    bad = rw_fail("open the store", snap_error_message());
  if (!bad && snap_rewrap(st, o, NULL, NULL, NULL, &pr) != SNAP_OK)
    bad = rw_fail("create the schema", snap_error_message());
  snap_store_close(st);
  st = NULL;
  if (!bad)
    bad = gather(path, m);
  if (!bad && snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK)
    bad = rw_fail("open the store", snap_error_message());
  if (!bad)
    snap_store_set_default_options(st, o);
  if (!bad)
    bad = rw_rewrap_timed(st, "rewrap to master key 2", &pr);
  if (!bad && (pr.rewrapped != (uint64_t)units || count_v2(path) != units))
    bad = rw_fail("check", "not every key is under master key 2");
  if (!bad)
    bad = rw_rewrap_timed(st, "rerun, every key current", &pr);
  printf("units %ld, synchronous=%s, %s\n", units, sync, bad ? "FAILED" : "ok");
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(path);
  free(dir);
  return bad;
}
