/* The sqlite backend's dictionary table (backend ABI version 4): the trained
 * zstd dictionaries of a data set in "<table>_dicts" beside its snapshots,
 * one row per dictionary, immutable once written (schema step 4, schema.c;
 * docs/STORE.md "Dictionaries"). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define DICTS "\"%s_dicts\""

static int prepare(sql_backend *b, sqlite3 *db, const char *tpl, sqlite3_stmt **s) {
  return snap__sqlite_prepare_tpl(b, db, tpl, s, "dictionary table: prepare");
}

/* Runs one write statement (bound by `bind`) in its own transaction; the
 * rows it changed in `*changes`. */
static int write_one(sql_backend *b, const char *tpl, void (*bind)(sqlite3_stmt *, const void *),
                     const void *arg, const snap_backend_dict *d, int *changes) {
  sqlite3 *db;
  int e = snap__sqlite_txn_begin(b, &db);
  if (e != SNAP_OK)
    return e;
  sqlite3_stmt *s;
  if ((e = prepare(b, db, tpl, &s)) == SNAP_OK) {
    bind(s, arg);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT && d)
      e = snap__sqlite_host(b)->error(SNAP_ECONFLICT,
                                      "sqlite backend: a dictionary with id %u or name '%s' exists",
                                      (unsigned)d->id, d->name);
    else if (rc != SQLITE_DONE)
      e = snap__sqlite_error(b, db, rc, "dictionary table: write");
    *changes = sqlite3_changes(db);
  }
  sqlite3_finalize(s);
  return snap__sqlite_txn_end(b, db, e);
}

static void bind_row(sqlite3_stmt *s, const void *arg) {
  const snap_backend_dict *d = arg;
  sqlite3_bind_int64(s, 1, d->id);
  sqlite3_bind_text(s, 2, d->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 3, d->created);
  sqlite3_bind_blob64(s, 4, d->body, d->body_len, SQLITE_STATIC);
}

static void bind_id(sqlite3_stmt *s, const void *arg) {
  sqlite3_bind_int64(s, 1, *(const uint32_t *)arg);
}

int snap__sqlite_dict_put(void *self, const snap_backend_dict *d) {
  int changes = 0;
  return write_one(self,
                   "INSERT INTO " DICTS " (id, name, created, body) VALUES (?1, ?2, ?3, ?4)",
                   bind_row, d, d, &changes);
}

int snap__sqlite_dict_get(void *self, uint32_t id, const char *name, snap_backend_dict_emit emit,
                          void *ctx) {
  sql_backend *b = self;
  sqlite3 *db;
  int token;
  int e = snap__sqlite_reader(b, &db, &token);
  if (e != SNAP_OK)
    return e;
  sqlite3_stmt *s = NULL;
  e = prepare(b, db,
              "SELECT id, name, created, body FROM " DICTS
              " WHERE (?1 = 0 OR id = ?1) AND (?1 <> 0 OR ?2 IS NULL OR name = ?2) ORDER BY id",
              &s);
  int rc = SQLITE_DONE;
  if (e == SNAP_OK) {
    sqlite3_bind_int64(s, 1, id);
    if (name)
      sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    while (e == SNAP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
      const void *body = sqlite3_column_blob(s, 3);
      snap_backend_dict d = {(uint32_t)sqlite3_column_int64(s, 0),
                             (const char *)sqlite3_column_text(s, 1), sqlite3_column_int64(s, 2),
                             body ? body : "", (size_t)sqlite3_column_bytes(s, 3)};
      e = emit(ctx, &d);
    }
    if (e == SNAP_OK && rc != SQLITE_DONE)
      e = snap__sqlite_error(b, db, rc, "dictionary table: read");
  }
  sqlite3_finalize(s);
  snap__sqlite_reader_release(b, token);
  return e;
}

int snap__sqlite_dict_remove(void *self, uint32_t id) {
  int changes = 0;
  int e = write_one(self, "DELETE FROM " DICTS " WHERE id = ?1", bind_id, &id, NULL, &changes);
  return e != SNAP_OK ? e : changes > 0;
}
