/* Opening and changing an SQLite file beside the store that wrote it. */
#include "sqlite_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "store_util.h"

sqlite3 *st_sqlite_open(const char *dir, const char *name) {
  char *path = st_join(dir, name);
  sqlite3 *db = NULL;
  int rc = path ? sqlite3_open(path, &db) : SQLITE_NOMEM;
  free(path);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

bool st_sqlite_exec(sqlite3 *db, const char *sql, char *why, size_t cap) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK)
    snprintf(why, cap, "%s: %s", sql, err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return rc == SQLITE_OK;
}
