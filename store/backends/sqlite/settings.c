/* Settings kept with the data set (the backend's setting() slot): rows
 * "<name>:<table>" of the snapstore_meta table, beside the "encrypted:<table>"
 * flag, so that every process opening the table agrees on them. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Reads the setting on `db`: 1 found (into `*value`), 0 absent, or an error. */
static int read_setting(sql_backend *b, sqlite3 *db, const char *key, int64_t *value) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(db, "SELECT value FROM snapstore_meta WHERE name = ?1", -1, &s, NULL);
  if (rc != SQLITE_OK)
    return snap__sqlite_error(b, db, rc, "read a setting");
  sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
  int found = 0;
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *value = sqlite3_column_int64(s, 0);
    found = 1;
  } else if (rc != SQLITE_DONE) {
    found = snap__sqlite_error(b, db, rc, "read a setting");
  }
  sqlite3_finalize(s);
  return found;
}

static int exec(sql_backend *b, sqlite3 *db, const char *sql) {
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? SNAP_OK : snap__sqlite_error(b, db, rc, sql);
}

/* INIT or SET in one write transaction, so that two first openers agree. */
static int write_setting(sql_backend *b, const char *key, int mode, int64_t *value) {
  sqlite3 *db;
  int e = snap__sqlite_writer(b, &db);
  if (e == SNAP_OK)
    e = exec(b, db, "BEGIN IMMEDIATE");
  if (e != SNAP_OK) {
    snap__sqlite_writer_release(b);
    return e;
  }
  int64_t stored = 0;
  int found = read_setting(b, db, key, &stored);
  e = found < 0 ? found : SNAP_OK;
  if (e == SNAP_OK && (mode == SNAP_SETTING_SET || !found)) {
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(
        db, "INSERT OR REPLACE INTO snapstore_meta (name, value) VALUES (?1, ?2)", -1, &s, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
      sqlite3_bind_int64(s, 2, *value);
      rc = sqlite3_step(s);
      sqlite3_finalize(s);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
      e = snap__sqlite_error(b, db, rc, "store a setting");
  }
  if (e == SNAP_OK)
    e = exec(b, db, "COMMIT");
  if (e != SNAP_OK && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  snap__sqlite_writer_release(b);
  if (e != SNAP_OK)
    return e;
  if (found && mode == SNAP_SETTING_INIT)
    *value = stored;
  return found;
}

int snap__sqlite_setting(void *self, const char *name, int mode, int64_t *value) {
  sql_backend *b = self;
  const snap_host *h = snap__sqlite_host(b);
  char key[160];
  if (name == NULL || strchr(name, ':') != NULL ||
      (size_t)snprintf(key, sizeof key, "%s:%s", name, snap__sqlite_table(b)) >= sizeof key)
    return h->error(SNAP_EINVAL, "sqlite backend: setting name '%s' is not usable",
                    name ? name : "(null)");
  if (mode == SNAP_SETTING_GET) {
    sqlite3 *db;
    int token;
    int e = snap__sqlite_reader(b, &db, &token);
    if (e != SNAP_OK)
      return e;
    int found = read_setting(b, db, key, value);
    snap__sqlite_reader_release(b, token);
    return found;
  }
  if (mode != SNAP_SETTING_INIT && mode != SNAP_SETTING_SET)
    return h->error(SNAP_EINVAL, "sqlite backend: unknown setting mode %d", mode);
  return write_setting(b, key, mode, value);
}
