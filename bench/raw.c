/*
 * The raw-SQLite baseline: the same bytes written and read with SQLite's C
 * API directly, with the schema and pragmas of snapstore's sqlite backend
 * (docs/STORE.md), prepared statements reused, one BEGIN IMMEDIATE ...
 * COMMIT per save (or per batch). It is what an application would write by
 * hand, so the ratio to it is the price of everything snapstore adds.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The sqlite backend's schema and statements (store/backends/sqlite/sqlite.c):
 * a rowid table with a UNIQUE (pid, seq) index, INSERT OR REPLACE, and the
 * prune of a pid's rows below its keep-th newest seq in the same transaction. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS snapshots (pid TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (pid, seq));";

static const char insert_sql[] =
    "INSERT OR REPLACE INTO snapshots (pid, seq, ts, body) VALUES (?1, ?2, ?3, ?4)";
static const char select_sql[] =
    "SELECT body FROM snapshots WHERE pid = ?1 ORDER BY seq DESC LIMIT 1";
static const char prune_sql[] =
    "DELETE FROM snapshots WHERE pid = ?1 AND seq < (SELECT seq FROM snapshots WHERE pid = ?1 "
    "ORDER BY seq DESC LIMIT 1 OFFSET ?2)";

static int exec(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int raw_open(raw_db *r, const char *path, const bench_db_opts *o) {
  memset(r, 0, sizeof *r);
  if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
      SQLITE_OK) {
    return -1;
  }
  /* Same order as the backend: the busy timeout before any statement that may
   * take a lock, then the journal, durability and deletion settings. */
  sqlite3_busy_timeout(r->db, 5000);
  if (exec(r->db, "PRAGMA journal_mode=WAL") != 0 ||
      exec(r->db, o->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") != 0 ||
      exec(r->db, o->secure_delete ? "PRAGMA secure_delete=ON" : "PRAGMA secure_delete=FAST") !=
          0 ||
      exec(r->db, schema_sql) != 0) {
    return -1;
  }
  if (sqlite3_prepare_v3(r->db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &r->begin,
                         NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(r->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &r->commit, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v3(r->db, "ROLLBACK", -1, SQLITE_PREPARE_PERSISTENT, &r->rollback, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v3(r->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &r->insert, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v3(r->db, select_sql, -1, SQLITE_PREPARE_PERSISTENT, &r->select, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v3(r->db, prune_sql, -1, SQLITE_PREPARE_PERSISTENT, &r->prune, NULL) !=
          SQLITE_OK) {
    return -1;
  }
  return 0;
}

void raw_close(raw_db *r) {
  sqlite3_finalize(r->begin);
  sqlite3_finalize(r->commit);
  sqlite3_finalize(r->rollback);
  sqlite3_finalize(r->insert);
  sqlite3_finalize(r->select);
  sqlite3_finalize(r->prune);
  sqlite3_close(r->db);
  memset(r, 0, sizeof *r);
}

const char *raw_error(const raw_db *r) { return r->db ? sqlite3_errmsg(r->db) : "no database"; }

static int step_reset(sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : -1;
}

int raw_insert(raw_db *r, char *const *pids, int npids, int64_t seq0, long first, long n, int batch,
               const void *data, size_t len, uint32_t keep) {
  long done = 0;
  if (batch < 1) {
    batch = 1;
  }
  while (done < n) {
    if (step_reset(r->begin) != 0) {
      return -1;
    }
    for (int b = 0; b < batch && done < n; b++, done++) {
      long row = first + done;
      const char *pid = pids[row % npids];
      /* The store stamps each save with the current time; so does the baseline. */
      sqlite3_int64 ts = (sqlite3_int64)(bench_now() * 1000.0);
      sqlite3_bind_text(r->insert, 1, pid, -1, SQLITE_STATIC);
      sqlite3_bind_int64(r->insert, 2, seq0 + row / npids);
      sqlite3_bind_int64(r->insert, 3, ts);
      sqlite3_bind_blob(r->insert, 4, data, (int)len, SQLITE_STATIC);
      if (step_reset(r->insert) != 0) {
        step_reset(r->rollback);
        return -1;
      }
      if (keep > 0) {
        sqlite3_bind_text(r->prune, 1, pid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(r->prune, 2, (sqlite3_int64)keep - 1);
        if (step_reset(r->prune) != 0) {
          step_reset(r->rollback);
          return -1;
        }
      }
    }
    if (step_reset(r->commit) != 0) {
      step_reset(r->rollback);
      return -1;
    }
  }
  return 0;
}

int raw_load_latest(raw_db *r, const char *pid, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  sqlite3_bind_text(r->select, 1, pid, -1, SQLITE_STATIC);
  int rc = sqlite3_step(r->select);
  if (rc == SQLITE_ROW) {
    const void *blob = sqlite3_column_blob(r->select, 0);
    int n = sqlite3_column_bytes(r->select, 0);
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (!*out) {
      sqlite3_reset(r->select);
      return -1;
    }
    memcpy(*out, blob, (size_t)n);
    *len = (size_t)n;
    rc = SQLITE_DONE;
  }
  sqlite3_reset(r->select);
  return rc == SQLITE_DONE ? 0 : -1;
}
