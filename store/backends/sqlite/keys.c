/* The sqlite backend's key table (backend ABI version 4): the wrapped data
 * keys of envelope encryption, one row per shred unit in "<table>_keys"
 * beside the snapshots (or in a separate key store file: the same backend
 * opened on another path). Rows are written on the writer connection in
 * their own BEGIN IMMEDIATE transaction, so a key is durable before any body
 * sealed with it can commit. A forgotten key's bytes are overwritten
 * (secure_delete) and the WAL is checkpointed, so the file keeps no copy.
 * The table is schema step 2 (schema.c, docs/STORE.md "Key table"). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Every statement names the table through this template's %s. */
#define KEYS "\"%s_keys\""

int snap__sqlite_prepare_tpl(sql_backend *b, sqlite3 *db, const char *tpl, sqlite3_stmt **s,
                             const char *what) {
  char sql[512];
  snprintf(sql, sizeof sql, tpl, snap__sqlite_table(b));
  int rc = sqlite3_prepare_v2(db, sql, -1, s, NULL);
  if (rc != SQLITE_OK) {
    *s = NULL;
    return snap__sqlite_error(b, db, rc, what);
  }
  return SNAP_OK;
}

static int prepare(sql_backend *b, sqlite3 *db, const char *tpl, sqlite3_stmt **s) {
  return snap__sqlite_prepare_tpl(b, db, tpl, s, "key table: prepare");
}

/* Emits the current row of a SELECT unit, generation, master_version, wrapped. */
static int emit_row(sqlite3_stmt *s, snap_backend_key_emit emit, void *ctx) {
  snap_backend_key k = {(const char *)sqlite3_column_text(s, 0),
                        (uint32_t)sqlite3_column_int64(s, 1), (uint32_t)sqlite3_column_int64(s, 2),
                        NULL, 0};
  if (sqlite3_column_type(s, 3) != SQLITE_NULL) {
    k.wrapped = sqlite3_column_blob(s, 3);
    k.wrapped_len = (size_t)sqlite3_column_bytes(s, 3);
    if (k.wrapped == NULL) /* a zero-length blob: still a record, not a tombstone */
      k.wrapped = (const uint8_t *)"";
  }
  return emit(ctx, &k);
}

/* Runs a SELECT of key rows on `db`, emitting each. */
static int select_rows(sql_backend *b, sqlite3 *db, sqlite3_stmt *s, snap_backend_key_emit emit,
                       void *ctx) {
  int rc, e = SNAP_OK;
  while (e == SNAP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
    e = emit_row(s, emit, ctx);
  if (e == SNAP_OK && rc != SQLITE_DONE)
    e = snap__sqlite_error(b, db, rc, "key table: read");
  return e;
}

/* ---- reads ----------------------------------------------------------------- */

/* Reads on a pooled reader: `tpl` bound by `bind`, rows emitted. */
static int read_keys(sql_backend *b, const char *tpl, const char *text, int64_t limit,
                     snap_backend_key_emit emit, void *ctx) {
  sqlite3 *db;
  int token;
  int e = snap__sqlite_reader(b, &db, &token);
  if (e != SNAP_OK)
    return e;
  sqlite3_stmt *s = NULL;
  if ((e = prepare(b, db, tpl, &s)) == SNAP_OK) {
    if (text)
      sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, limit);
    e = select_rows(b, db, s, emit, ctx);
  }
  sqlite3_finalize(s);
  snap__sqlite_reader_release(b, token);
  return e;
}

int snap__sqlite_key_get(void *self, const char *unit, snap_backend_key_emit emit, void *ctx) {
  return read_keys(self,
                   "SELECT unit, generation, master_version, wrapped FROM " KEYS
                   " WHERE unit = ?1 AND ?2 > 0",
                   unit, 1, emit, ctx);
}

int snap__sqlite_key_list(void *self, const char *after, size_t limit, snap_backend_key_emit emit,
                          void *ctx) {
  int64_t lim = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
  if (after)
    return read_keys(self,
                     "SELECT unit, generation, master_version, wrapped FROM " KEYS
                     " WHERE unit > ?1 ORDER BY unit LIMIT ?2",
                     after, lim, emit, ctx);
  return read_keys(self,
                   "SELECT unit, generation, master_version, wrapped FROM " KEYS
                   " ORDER BY unit LIMIT ?2",
                   NULL, lim, emit, ctx);
}

/* ---- writes ---------------------------------------------------------------- */

/* Opens a write transaction on the writer (whose schema check made the key
 * table). On success the caller ends it with txn_end(); on failure nothing
 * is held. */
int snap__sqlite_txn_begin(sql_backend *b, sqlite3 **db) {
  int e = snap__sqlite_writer(b, db);
  if (e == SNAP_OK)
    e = snap__sqlite_exec(b, *db, "BEGIN IMMEDIATE");
  if (e != SNAP_OK)
    snap__sqlite_writer_release(b);
  return e;
}

/* Commits (e == SNAP_OK) or rolls back, and releases the writer. */
int snap__sqlite_txn_end(sql_backend *b, sqlite3 *db, int e) {
  if (e == SNAP_OK)
    e = snap__sqlite_exec(b, db, "COMMIT");
  if (e != SNAP_OK && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  snap__sqlite_writer_release(b);
  return e;
}

/* Reads the unit's row inside the writer's transaction into the emit. */
static int row_of(sql_backend *b, sqlite3 *db, const char *unit, snap_backend_key_emit emit,
                  void *ctx) {
  sqlite3_stmt *s;
  int e = prepare(b, db,
                  "SELECT unit, generation, master_version, wrapped FROM " KEYS " WHERE unit = ?1",
                  &s);
  if (e == SNAP_OK) {
    sqlite3_bind_text(s, 1, unit, -1, SQLITE_STATIC);
    e = select_rows(b, db, s, emit, ctx);
  }
  sqlite3_finalize(s);
  return e;
}

/* A step that changes rows, with `e` the running status. */
static int step_done(sql_backend *b, sqlite3 *db, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  return rc == SQLITE_DONE ? SNAP_OK : snap__sqlite_error(b, db, rc, what);
}

int snap__sqlite_key_create(void *self, const snap_backend_key *k, snap_backend_key_emit emit,
                            void *ctx) {
  sql_backend *b = self;
  if (k->wrapped == NULL || k->generation == 0)
    return snap__sqlite_host(b)->error(SNAP_EINVAL,
                                       "sqlite backend: a new key needs a record and a generation");
  sqlite3 *db;
  int e = snap__sqlite_txn_begin(b, &db);
  if (e != SNAP_OK)
    return e;
  sqlite3_stmt *s;
  /* Insert, or revive a tombstone of an older generation; a live key or a
   * newer record stays (the host then uses what row_of() emits). */
  e = prepare(b, db,
              "INSERT INTO " KEYS " (unit, generation, master_version, wrapped) "
              "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (unit) DO UPDATE SET "
              "generation = excluded.generation, master_version = excluded.master_version, "
              "wrapped = excluded.wrapped WHERE wrapped IS NULL AND generation < excluded.generation",
              &s);
  if (e == SNAP_OK) {
    sqlite3_bind_text(s, 1, k->unit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, k->generation);
    sqlite3_bind_int64(s, 3, k->master_version);
    sqlite3_bind_blob64(s, 4, k->wrapped, k->wrapped_len, SQLITE_STATIC);
    e = step_done(b, db, s, "key table: store a key");
  }
  sqlite3_finalize(s);
  e = snap__sqlite_txn_end(b, db, e);
  /* Read back what stands now: committed, so another writer's key is final too. */
  return e == SNAP_OK ? snap__sqlite_key_get(b, k->unit, emit, ctx) : e;
}

/* Receives the generation of the row as it was. */
typedef struct before {
  int found, live;
  uint32_t generation;
} before;

static int note_before(void *ctx, const snap_backend_key *k) {
  before *bf = ctx;
  bf->found = 1;
  bf->live = k->wrapped != NULL;
  bf->generation = k->generation;
  return SNAP_OK;
}

int snap__sqlite_key_forget(void *self, const char *unit, uint32_t *generation) {
  sql_backend *b = self;
  sqlite3 *db;
  int e = snap__sqlite_txn_begin(b, &db);
  if (e != SNAP_OK)
    return e;
  /* Overwrite the freed bytes, whatever the data set's setting. */
  (void)snap__sqlite_exec(b, db, "PRAGMA secure_delete = ON");
  before bf = {0, 0, 0};
  e = row_of(b, db, unit, note_before, &bf);
  sqlite3_stmt *s = NULL;
  if (e == SNAP_OK)
    e = prepare(b, db,
                bf.found ? "UPDATE " KEYS " SET wrapped = NULL, master_version = 0 WHERE unit = ?1"
                         : "INSERT INTO " KEYS " (unit, generation, master_version, wrapped) "
                           "VALUES (?1, 0, 0, NULL)",
                &s);
  if (e == SNAP_OK) {
    sqlite3_bind_text(s, 1, unit, -1, SQLITE_STATIC);
    e = step_done(b, db, s, "key table: forget a key");
  }
  sqlite3_finalize(s);
  e = snap__sqlite_txn_end(b, db, e);
  if (e != SNAP_OK)
    return e;
  /* The old page may still sit in the WAL: fold it into the database (where
   * secure_delete overwrote it) and truncate the log. Best effort: a reader
   * holding an old snapshot delays it, and the next checkpoint finishes. */
  sqlite3 *w;
  if (snap__sqlite_writer(b, &w) == SNAP_OK)
    sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  snap__sqlite_writer_release(b);
  if (generation)
    *generation = bf.generation;
  return bf.live ? 1 : 0;
}

int snap__sqlite_key_rewrap(void *self, snap_backend_key_swap *sw, size_t n) {
  sql_backend *b = self;
  sqlite3 *db;
  int e = snap__sqlite_txn_begin(b, &db);
  if (e != SNAP_OK)
    return e;
  sqlite3_stmt *up = NULL, *ex = NULL;
  if ((e = prepare(b, db,
                   "UPDATE " KEYS " SET wrapped = ?1, master_version = ?2 WHERE unit = ?3 AND "
                   "generation = ?4 AND master_version = ?5 AND wrapped IS NOT NULL",
                   &up)) == SNAP_OK)
    e = prepare(b, db, "SELECT 1 FROM " KEYS " WHERE unit = ?1", &ex);
  for (size_t i = 0; i < n && e == SNAP_OK; i++) {
    sqlite3_bind_blob64(up, 1, sw[i].wrapped, sw[i].wrapped_len, SQLITE_STATIC);
    sqlite3_bind_int64(up, 2, sw[i].master_version);
    sqlite3_bind_text(up, 3, sw[i].unit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 4, sw[i].generation);
    sqlite3_bind_int64(up, 5, sw[i].expected_master);
    e = step_done(b, db, up, "key table: rewrap");
    sqlite3_reset(up);
    if (e != SNAP_OK)
      break;
    if (sqlite3_changes(db) == 1) {
      sw[i].outcome = SNAP_SWAP_DONE;
      continue;
    }
    sqlite3_bind_text(ex, 1, sw[i].unit, -1, SQLITE_STATIC);
    int rc = sqlite3_step(ex);
    sw[i].outcome = rc == SQLITE_ROW ? SNAP_SWAP_CHANGED : SNAP_SWAP_GONE;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      e = snap__sqlite_error(b, db, rc, "key table: rewrap");
    sqlite3_reset(ex);
  }
  sqlite3_finalize(up);
  sqlite3_finalize(ex);
  return snap__sqlite_txn_end(b, db, e);
}

const char *snap__sqlite_dataset(void *self) { return snap__sqlite_table(self); }

int snap__sqlite_key_replace(void *self, const snap_backend_key_change *c) {
  sql_backend *b = self;
  if (c->wrapped == NULL || c->generation == 0)
    return snap__sqlite_host(b)->error(SNAP_EINVAL,
                                       "sqlite backend: a key replace needs a record and a "
                                       "generation");
  sqlite3 *db;
  int e = snap__sqlite_txn_begin(b, &db);
  if (e != SNAP_OK)
    return e;
  /* The bytes replaced (an older generation a renewal drops) are overwritten. */
  (void)snap__sqlite_exec(b, db, "PRAGMA secure_delete = ON");
  sqlite3_stmt *up = NULL, *ex = NULL;
  int outcome = SNAP_SWAP_DONE;
  if ((e = prepare(b, db,
                   "UPDATE " KEYS " SET generation = ?1, master_version = ?2, wrapped = ?3 "
                   "WHERE unit = ?4 AND wrapped IS NOT NULL AND wrapped = ?5",
                   &up)) == SNAP_OK) {
    sqlite3_bind_int64(up, 1, c->generation);
    sqlite3_bind_int64(up, 2, c->master_version);
    sqlite3_bind_blob64(up, 3, c->wrapped, c->wrapped_len, SQLITE_STATIC);
    sqlite3_bind_text(up, 4, c->unit, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(up, 5, c->expected ? (const void *)c->expected : "", c->expected_len,
                        SQLITE_STATIC);
    e = step_done(b, db, up, "key table: replace a key");
  }
  if (e == SNAP_OK && sqlite3_changes(db) != 1 &&
      (e = prepare(b, db, "SELECT 1 FROM " KEYS " WHERE unit = ?1", &ex)) == SNAP_OK) {
    sqlite3_bind_text(ex, 1, c->unit, -1, SQLITE_STATIC);
    int rc = sqlite3_step(ex);
    outcome = rc == SQLITE_ROW ? SNAP_SWAP_CHANGED : SNAP_SWAP_GONE;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      e = snap__sqlite_error(b, db, rc, "key table: replace a key");
  }
  sqlite3_finalize(up);
  sqlite3_finalize(ex);
  e = snap__sqlite_txn_end(b, db, e);
  if (e != SNAP_OK)
    return e;
  if (outcome == SNAP_SWAP_DONE) {
    /* As for a forget: the replaced bytes leave the WAL too (best effort). */
    sqlite3 *w;
    if (snap__sqlite_writer(b, &w) == SNAP_OK)
      sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    snap__sqlite_writer_release(b);
  }
  return outcome;
}
