/* Shared helpers for the tests that look at an SQLite file a store wrote. */
#ifndef SNAP_TEST_SQLITE_UTIL_H
#define SNAP_TEST_SQLITE_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

/** Opens the SQLite file `dir`/`name` directly (a 5 s busy timeout), to look
 *  at or tamper with what a store wrote. NULL when it cannot be opened. */
sqlite3 *st_sqlite_open(const char *dir, const char *name);

/** Runs `sql` on `db`; false with SQLite's message in `why` when it fails. */
bool st_sqlite_exec(sqlite3 *db, const char *sql, char *why, size_t cap);

#endif
