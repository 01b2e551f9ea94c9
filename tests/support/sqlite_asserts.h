/* Criterion assertions for the tests that open, beside a store, the SQLite
 * file it wrote, to look at or tamper with its rows (each test file
 * includes this header once). */
#ifndef SNAP_TEST_SQLITE_ASSERTS_H
#define SNAP_TEST_SQLITE_ASSERTS_H

#include <stdlib.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "store_util.h"

/** Opens `dir`/`name` with a 5 s busy timeout; asserts that it opens. */
static inline sqlite3 *st_sqlite_beside(const char *dir, const char *name) {
  char *path = st_join(dir, name);
  cr_assert_not_null(path);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK, "open %s", path);
  sqlite3_busy_timeout(db, 5000);
  free(path);
  return db;
}

/** Runs `sql` on `db`; asserts that it succeeds, naming SQLite's message. */
static inline void st_sqlite_run(sqlite3 *db, const char *sql) {
  char *err = NULL;
  cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s: %s", sql, err ? err : "");
}

#endif
