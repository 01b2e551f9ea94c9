/* The sqlite backend's schema: its versions and the numbered steps that
 * bring a data set from any earlier version to the one this code writes.
 *
 * Two numbers describe a database (docs/STORE.md, "Schema"):
 *   - PRAGMA user_version: the highest version any snapstore wrote to this
 *     file. Releases before the steps below check only this number, so
 *     raising it is what makes them refuse a file they would misread.
 *   - snapstore_meta 'schema_version:<table>': the version of one data set
 *     (a file may hold several tables). A version 1 database did not record
 *     it: a data set whose table and snapstore_meta exist without the row is
 *     at version 1; one missing either is at 0 (nothing, or something to
 *     recreate: every step is idempotent, so running them all again repairs
 *     it without touching a row).
 * A step runs only through the writer, in the one BEGIN IMMEDIATE transaction
 * that also checks the versions and records the new ones, so two processes
 * opening an old file together upgrade it once and a failing step leaves
 * the file as it was. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "internal.h"
#include "snap/sys/backend.h"

/* ------------------------------------------------------------------------ */
/* The steps                                                                 */
/* ------------------------------------------------------------------------ */

/* Version 1: the data table and snapstore_meta. */
static int step_tables(const sql_backend *b, sqlite3 *db) {
  char ddl[512];
  snprintf(ddl, sizeof ddl,
           "CREATE TABLE IF NOT EXISTS \"%s\" (pid TEXT NOT NULL, seq INTEGER NOT NULL, "
           "ts INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (pid, seq));"
           "CREATE TABLE IF NOT EXISTS snapstore_meta (name TEXT PRIMARY KEY, "
           "value INTEGER NOT NULL);",
           b->table);
  return sqlite3_exec(db, ddl, NULL, NULL, NULL);
}

/* Adds a column to the data table unless it is there. SQLite has no ADD
 * COLUMN IF NOT EXISTS: the column is looked up first. */
static int add_column(const sql_backend *b, sqlite3 *db, const char *name, const char *type) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
           b->table, name);
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  int have = 0;
  if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    have = sqlite3_column_int(s, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_OK || have)
    return rc;
  snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN %s %s", b->table, name, type);
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Version 2: the manifest column (docs/STORE.md), NULL in older rows. */
static int step_manifest(const sql_backend *b, sqlite3 *db) {
  return add_column(b, db, "manifest", "TEXT");
}

/* Version 3: the key table of envelope encryption (keys.c): one row per
 * shred unit, its wrapped data key or, once forgotten, a tombstone. WITHOUT
 * ROWID: rows are small and always found by unit, so the primary key is the
 * table (a rewrap updates a million of them one lookup each). */
static int step_keys(const sql_backend *b, sqlite3 *db) {
  char ddl[512];
  snprintf(ddl, sizeof ddl,
           "CREATE TABLE IF NOT EXISTS \"%s_keys\" (unit TEXT PRIMARY KEY, generation INTEGER "
           "NOT NULL, master_version INTEGER NOT NULL, wrapped BLOB) WITHOUT ROWID",
           b->table);
  return sqlite3_exec(db, ddl, NULL, NULL, NULL);
}

/* Version 4: the dictionary table of zstd compression (dicts.c): one row per
 * trained dictionary, its bytes sealed like a body. */
static int step_dicts(const sql_backend *b, sqlite3 *db) {
  char ddl[512];
  snprintf(ddl, sizeof ddl,
           "CREATE TABLE IF NOT EXISTS \"%s_dicts\" (id INTEGER PRIMARY KEY, name TEXT NOT NULL "
           "UNIQUE, created INTEGER NOT NULL, body BLOB NOT NULL)",
           b->table);
  return sqlite3_exec(db, ddl, NULL, NULL, NULL);
}

/* Version 5: manifests stored once each (manifests.c), and the column rows
 * name them by. Rows written before keep their text column, which a
 * selection by manifest still reads. */
static int step_manifest_ids(const sql_backend *b, sqlite3 *db) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "CREATE TABLE IF NOT EXISTS \"%s_manifests\" (id INTEGER PRIMARY KEY, name TEXT NOT "
           "NULL UNIQUE)",
           b->table);
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? add_column(b, db, "manifest_id", "INTEGER") : rc;
}

/* Version 6: streamed snapshots (streams.c). A streamed row names its chunk
 * file in the stream column (NULL for every other row); the partial index
 * finds a file's row for the orphan sweep. Whenever a streamed row goes (a
 * delete, a prune, a replace of the same (pid, seq)), the triggers record its
 * file in the "<table>_dead" table in the same transaction; the backend
 * unlinks the files listed there once the transaction committed, so an
 * interrupted removal is finished by the next write or sweep. */
static int step_streams(const sql_backend *b, sqlite3 *db) {
  int rc = add_column(b, db, "stream", "TEXT");
  if (rc != SQLITE_OK)
    return rc;
  char sql[512];
  const char *t = b->table;
  snprintf(sql, sizeof sql,
           "CREATE INDEX IF NOT EXISTS \"%s_stream\" ON \"%s\" (stream) WHERE stream IS NOT "
           "NULL;"
           "CREATE TABLE IF NOT EXISTS \"%s_dead\" (name TEXT PRIMARY KEY) WITHOUT ROWID;",
           t, t, t);
  rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? snap__sqlite_stream_triggers(b, db) : rc;
}

int snap__sqlite_stream_triggers(const sql_backend *b, sqlite3 *db) {
  char sql[1536];
  const char *t = b->table;
  snprintf(sql, sizeof sql,
           "CREATE TRIGGER IF NOT EXISTS \"%s_stream_delete\" AFTER DELETE ON \"%s\" "
           "WHEN old.stream IS NOT NULL BEGIN INSERT OR IGNORE INTO \"%s_dead\" (name) "
           "VALUES (old.stream); END;"
           "CREATE TRIGGER IF NOT EXISTS \"%s_stream_update\" AFTER UPDATE OF stream ON "
           "\"%s\" WHEN old.stream IS NOT NULL AND new.stream IS NOT old.stream BEGIN "
           "INSERT OR IGNORE INTO \"%s_dead\" (name) VALUES (old.stream); END;"
           "CREATE TRIGGER IF NOT EXISTS \"%s_stream_replace\" BEFORE INSERT ON \"%s\" "
           "BEGIN INSERT OR IGNORE INTO \"%s_dead\" (name) SELECT stream FROM \"%s\" "
           "WHERE pid = new.pid AND seq = new.seq AND stream IS NOT NULL; END;",
           t, t, t, t, t, t, t, t, t, t);
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Version 7: the triggers of step 6 only while the data set holds a streamed
 * row. They cost every save, streamed or not: the replace trigger a lookup
 * of (pid, seq) before each insert, the delete trigger a read of each pruned
 * row's stream column, which lies past the body in its overflow pages (about
 * 1.5 us of a 4 KiB save's 3 us in SQLite, insert and prune). While no row
 * is streamed they have nothing to record, so they go; the first streamed
 * row creates them again, in its own transaction before its insert
 * (write.c), and nothing drops them after that. */
static int step_stream_triggers_lazy(const sql_backend *b, sqlite3 *db) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT 1 FROM \"%s\" WHERE stream IS NOT NULL LIMIT 1", b->table);
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc == SQLITE_ROW)
    return SQLITE_OK; /* streamed rows: their removals must still be recorded */
  if (rc != SQLITE_DONE)
    return rc;
  const char *t = b->table;
  snprintf(sql, sizeof sql,
           "DROP TRIGGER IF EXISTS \"%s_stream_delete\";"
           "DROP TRIGGER IF EXISTS \"%s_stream_update\";"
           "DROP TRIGGER IF EXISTS \"%s_stream_replace\";",
           t, t, t);
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One upgrade step: run to bring a data set from `version - 1` to `version`.
 * A step must be idempotent (it may meet its own work done: a data set that
 * lost its snapstore_meta row is at version 0 again) and must not commit.
 * It returns SQLite's result code; the runner names the step in the error. */
typedef struct schema_step {
  int version;
  const char *what;
  int (*run)(const sql_backend *b, sqlite3 *db);
} schema_step;

/* Append a step here, numbered one more than the last (docs/STORE.md). */
static const schema_step steps[] = {
    {1, "create the snapshot table and snapstore_meta", step_tables},
    {2, "add the manifest column", step_manifest},
    {3, "create the key table of envelope encryption", step_keys},
    {4, "create the dictionary table of zstd compression", step_dicts},
    {5, "store each manifest once and name it by id in the rows", step_manifest_ids},
    {6, "add the stream column and the chunk-file bookkeeping of streamed snapshots",
     step_streams},
    {7, "keep the stream triggers only while the data set holds a streamed row",
     step_stream_triggers_lazy},
};

#define STEP_COUNT ((int)(sizeof steps / sizeof steps[0]))

int snap__sqlite_schema_version(void) { return steps[STEP_COUNT - 1].version; }

/* ------------------------------------------------------------------------ */
/* Reading the versions                                                      */
/* ------------------------------------------------------------------------ */

/* Runs `sql` (one row expected) and reads up to three integer columns. */
static int query_ints(const sql_backend *b, sqlite3 *db, const char *sql, int *v, int n,
                      bool *found) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    for (int i = 0; rc == SQLITE_ROW && i < n; i++)
      v[i] = sqlite3_column_int(s, i);
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
  }
  int e = rc == SQLITE_OK ? SNAP_OK : snap__sqlite_error(b, db, rc, "read the schema version");
  sqlite3_finalize(s);
  return e;
}

int snap__sqlite_schema_read(const sql_backend *b, sqlite3 *db, snap_sqlite_versions *out) {
  char q[512];
  snprintf(q, sizeof q,
           "SELECT (SELECT user_version FROM pragma_user_version), EXISTS (SELECT 1 FROM "
           "sqlite_master WHERE type = 'table' AND name = '%s'), EXISTS (SELECT 1 FROM "
           "sqlite_master WHERE type = 'table' AND name = 'snapstore_meta')",
           b->table);
  int v[3] = {0, 0, 0};
  bool found = false;
  int e = query_ints(b, db, q, v, 3, &found);
  if (e != SNAP_OK)
    return e;
  out->database = v[0];
  out->has_table = v[1] != 0;
  out->table = 0;
  out->recorded = false;
  if (!out->has_table || v[2] == 0)
    return SNAP_OK;
  snprintf(q, sizeof q, "SELECT value FROM snapstore_meta WHERE name = 'schema_version:%s'",
           b->table);
  int row = 0;
  e = query_ints(b, db, q, &row, 1, &found);
  out->table = found ? row : 1; /* version 1 recorded no row */
  out->recorded = found;
  return e;
}

bool snap__sqlite_schema_behind(const snap_sqlite_versions *v) {
  int ours = snap__sqlite_schema_version();
  return !v->recorded || v->table < ours || v->database < ours;
}

int snap__sqlite_schema_newer(const sql_backend *b, const snap_sqlite_versions *v) {
  int ours = snap__sqlite_schema_version();
  if (v->database <= ours && v->table <= ours)
    return SNAP_OK;
  if (v->database > ours)
    return b->host->error(SNAP_EFORMAT,
                          "sqlite '%s': database schema version %d is newer than the version %d "
                          "this snapstore understands; upgrade snapstore to open it",
                          b->path, v->database, ours);
  return b->host->error(SNAP_EFORMAT,
                        "sqlite '%s' table '%s': schema version %d is newer than the version %d "
                        "this snapstore understands; upgrade snapstore to open it",
                        b->path, b->table, v->table, ours);
}

int snap__sqlite_schema_stale(const sql_backend *b, const snap_sqlite_versions *v) {
  if (!v->has_table)
    return b->host->error(SNAP_EIO,
                          "sqlite '%s': no snapstore table '%s' (schema version %d) and the "
                          "store is read-only, so it is not created",
                          b->path, b->table, v->database);
  return b->host->error(SNAP_EFORMAT,
                        "sqlite '%s' table '%s': schema version %d needs an upgrade to version "
                        "%d, which only a store that may write does (open it once without "
                        "\"read_only\"); a read-only store never changes the file",
                        b->path, b->table, v->table, snap__sqlite_schema_version());
}

/* ------------------------------------------------------------------------ */
/* Upgrading                                                                 */
/* ------------------------------------------------------------------------ */

/* Runs the steps the data set lacks and records the versions. In the
 * transaction. */
static int upgrade(sql_backend *b, sqlite3 *db, const snap_sqlite_versions *v) {
  int ours = snap__sqlite_schema_version();
  int e = SNAP_OK;
  for (int i = 0; i < STEP_COUNT && e == SNAP_OK; i++) {
    if (steps[i].version <= v->table)
      continue;
    int rc = steps[i].run(b, db);
    if (rc != SQLITE_OK) {
      char what[160];
      snprintf(what, sizeof what, "schema upgrade step %d (%s)", steps[i].version, steps[i].what);
      e = snap__sqlite_error(b, db, rc, what);
    }
  }
  char sql[256];
  if (e == SNAP_OK && (v->table < ours || !v->recorded)) {
    snprintf(sql, sizeof sql,
             "INSERT OR REPLACE INTO snapstore_meta (name, value) VALUES ('schema_version:%s', "
             "%d)",
             b->table, ours);
    e = snap__sqlite_exec(b, db, sql);
  }
  if (e == SNAP_OK && v->database < ours) {
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", ours);
    e = snap__sqlite_exec(b, db, sql);
  }
  return e;
}

/* Reads whether the table holds encrypted bodies. In the transaction. */
static int read_encrypted(sql_backend *b, sqlite3 *db) {
  char q[160];
  snprintf(q, sizeof q, "SELECT value FROM snapstore_meta WHERE name = 'encrypted:%s'", b->table);
  int v = 0;
  bool found = false;
  int e = query_ints(b, db, q, &v, 1, &found);
  if (e == SNAP_OK && found)
    b->encrypted = v != 0;
  return e;
}

int snap__sqlite_schema_init(sql_backend *b) {
  sqlite3 *db = b->writer.db;
  int e = snap__sqlite_exec(b, db, "BEGIN IMMEDIATE");
  if (e != SNAP_OK)
    return e;
  snap_sqlite_versions v;
  e = snap__sqlite_schema_read(b, db, &v);
  if (e == SNAP_OK)
    e = snap__sqlite_schema_newer(b, &v);
  if (e == SNAP_OK && snap__sqlite_schema_behind(&v))
    e = upgrade(b, db, &v);
  if (e == SNAP_OK)
    e = read_encrypted(b, db);
  if (e == SNAP_OK)
    e = snap__sqlite_exec(b, db, "COMMIT");
  if (e != SNAP_OK && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return e;
}
