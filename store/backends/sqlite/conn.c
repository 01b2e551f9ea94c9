/* Connections of the sqlite backend: opening one (pragmas, the busy
 * handler that reports each wait), its prepared statements, when the schema
 * is checked (schema.c checks and upgrades it), and the pool of reader
 * connections. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "internal.h"
#include "snap/sys/backend.h"

/*
 * SQLite's own busy-timeout schedule (sqlite3_busy_timeout()), with each wait
 * reported to the host, so that an operator sees lock contention before it
 * turns into SNAP_EBUSY failures.
 */
static int busy_wait(void *arg, int count) {
  static const int delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
  static const int totals[] = {0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228};
  const int n = (int)(sizeof delays / sizeof *delays);
  const sql_backend *b = arg;
  int delay = count < n ? delays[count] : delays[n - 1];
  long prior = count < n ? totals[count] : totals[n - 1] + (long)delays[n - 1] * (count - (n - 1));
  if (prior + delay > b->busy_ms) {
    delay = (int)(b->busy_ms - prior);
    if (delay <= 0)
      return 0;
  }
  snap__sqlite_report(b, SNAP_EVENT_BUSY_RETRY, SNAP_EBUSY, NULL, -1, (uint64_t)count + 1,
                      "the database is locked by another connection; waiting");
  sqlite3_sleep(delay);
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

void snap__sqlite_conn_close(conn *c) {
  for (int i = 0; i < S_COUNT; i++) {
    sqlite3_finalize(c->stmt[i]);
    c->stmt[i] = NULL;
  }
  sqlite3_close(c->db);
  c->db = NULL;
}

int snap__sqlite_exec(const sql_backend *b, sqlite3 *db, const char *sql) {
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? SNAP_OK : snap__sqlite_error(b, db, rc, sql);
}

/*
 * snap__sqlite_exec() for a statement that needs an exclusive lock outside a write
 * transaction (switching to WAL). When two connections race for that lock
 * while holding shared ones, SQLite answers SQLITE_BUSY at once instead of
 * calling the busy handler (waiting could deadlock), so two processes opening
 * a new file together would fail. Retry until the busy timeout has passed.
 */
static int exec_waiting(const sql_backend *b, sqlite3 *db, const char *sql) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      return SNAP_OK;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long waited_ms = (long)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= (long)b->busy_ms)
      return snap__sqlite_error(b, db, rc, sql);
    snap__sqlite_report(b, SNAP_EVENT_BUSY_RETRY, SNAP_EBUSY, NULL, -1, (uint64_t)waited_ms + 1,
                        sql);
    sqlite3_sleep(1);
  }
}

static const char *secure_pragma(const sql_backend *b) {
  switch (b->secure) {
  case SECURE_ON:
    return "PRAGMA secure_delete = ON";
  case SECURE_OFF:
    return "PRAGMA secure_delete = OFF";
  case SECURE_FAST:
    return "PRAGMA secure_delete = FAST";
  default:
    return b->encrypted ? "PRAGMA secure_delete = ON" : "PRAGMA secure_delete = FAST";
  }
}

static int conn_open(sql_backend *b, conn *c, bool writer) {
  memset(c, 0, sizeof *c);
  /* Checked at open too; again here, since files are opened lazily. */
  if (!snap__sqlite_regular_or_absent(b->path))
    return b->host->error(SNAP_EIO,
                          "sqlite '%s': not a regular file (a FIFO, device or directory "
                          "cannot hold a store)",
                          b->path);
  /* Readers never write: a read-only connection needs no write lock, no
   * journal-mode switch and no free space (read.c). */
  int rc =
      writer
          ? sqlite3_open_v2(b->path, &c->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)
          : snap__sqlite_open_read(b->path, b->busy_ms, !b->read_only, &c->db);
  if (rc != SQLITE_OK && !writer && c->db != NULL && (rc & 0xff) != SQLITE_CANTOPEN) {
    /* Opened, but the first read failed: not a database, a newer format... */
    int e = snap__sqlite_error(b, c->db, rc, "read");
    snap__sqlite_conn_close(c);
    return e;
  }
  if (rc != SQLITE_OK) {
    int e = snap__sqlite_error(b, c->db, rc, "open");
    if (e == SNAP_EBUSY || e == SNAP_ENOMEM || e == SNAP_EFULL)
      ; /* keep the precise code */
    else
      e = b->host->error(SNAP_EIO, "sqlite '%s': cannot open the database: %s", b->path,
                         c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    snap__sqlite_conn_close(c);
    return e;
  }
  /* The busy timeout comes first: even the pragmas below may need a lock. */
  sqlite3_busy_handler(c->db, busy_wait, b);
  int e = SNAP_OK;
  if (b->max_pages > 0) {
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA max_page_count = %lu", b->max_pages);
    e = snap__sqlite_exec(b, c->db, pragma);
  }
  if (e == SNAP_OK && writer)
    e = exec_waiting(b, c->db, "PRAGMA journal_mode = WAL");
  if (e == SNAP_OK)
    e = snap__sqlite_exec(
        b, c->db, b->sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  if (e == SNAP_OK && writer)
    e = snap__sqlite_exec(b, c->db, secure_pragma(b));
  if (e != SNAP_OK)
    snap__sqlite_conn_close(c);
  return e;
}

int snap__sqlite_stmt(const sql_backend *b, conn *c, enum stmt_id id, sqlite3_stmt **out) {
  if (c->stmt[id] == NULL) {
    int rc =
        sqlite3_prepare_v3(c->db, b->sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id], NULL);
    if (rc != SQLITE_OK) {
      c->stmt[id] = NULL;
      *out = NULL;
      return snap__sqlite_error(b, c->db, rc, "prepare");
    }
  }
  *out = c->stmt[id];
  return SNAP_OK;
}

/* Runs a prepared statement without results; maps a failure (message taken
 * before the reset, which keeps the statement reusable). */
int snap__sqlite_run(const sql_backend *b, conn *c, enum stmt_id id, const char *what) {
  sqlite3_stmt *s;
  int e = snap__sqlite_stmt(b, c, id, &s);
  if (e != SNAP_OK)
    return e;
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    e = snap__sqlite_error(b, c->db, rc, what);
  sqlite3_reset(s);
  return e;
}

/* Creates or upgrades the schema (schema.c), then, the encrypted flag being
 * known, secure deletion. Writer lock held. */
static int schema_init(sql_backend *b) {
  int e = snap__sqlite_schema_init(b);
  if (e == SNAP_OK && b->secure == SECURE_AUTO && b->encrypted)
    e = snap__sqlite_exec(b, b->writer.db, secure_pragma(b));
  return e;
}

/* Opens the writer and checks the schema on first use. Writer lock held. */
int snap__sqlite_writer_ready(sql_backend *b) {
  if (atomic_load_explicit(&b->ready, memory_order_acquire))
    return SNAP_OK;
  if (b->read_only)
    return b->host->error(SNAP_EUNSUPPORTED,
                          "sqlite '%s' table '%s': the store is read-only (\"read_only\": true): "
                          "saves, deletes and rewrites are refused",
                          b->path, b->table);
  int e = conn_open(b, &b->writer, true);
  if (e == SNAP_OK && (e = schema_init(b)) != SNAP_OK)
    snap__sqlite_conn_close(&b->writer);
  if (e == SNAP_OK) {
    /* Streams of writers that died before their row committed, and files of
     * removed rows whose unlink was interrupted: reclaimed on open. */
    snap__sqlite_streams_open_sweep(b);
    atomic_store_explicit(&b->ready, 1, memory_order_release);
  }
  return e;
}

static int ensure_ready(sql_backend *b) {
  if (atomic_load_explicit(&b->ready, memory_order_acquire))
    return SNAP_OK;
  pthread_mutex_lock(&b->wlock);
  int e = snap__sqlite_writer_ready(b);
  pthread_mutex_unlock(&b->wlock);
  return e;
}

int snap__sqlite_pool_take(sql_backend *b, conn **out) {
  pthread_mutex_lock(&b->plock);
  for (;;) {
    int open_free = -1, closed_free = -1;
    for (int i = 0; i < READERS; i++) {
      if (b->busy[i])
        continue;
      if (b->readers[i].db != NULL) {
        open_free = i;
        break;
      }
      if (closed_free < 0)
        closed_free = i;
    }
    int i = open_free >= 0 ? open_free : closed_free;
    if (i >= 0) {
      b->busy[i] = true;
      pthread_mutex_unlock(&b->plock);
      if (b->readers[i].db == NULL) {
        int e = conn_open(b, &b->readers[i], false);
        if (e != SNAP_OK) {
          pthread_mutex_lock(&b->plock);
          b->busy[i] = false;
          pthread_cond_signal(&b->pcond);
          pthread_mutex_unlock(&b->plock);
          return e;
        }
      }
      *out = &b->readers[i];
      return SNAP_OK;
    }
    pthread_cond_wait(&b->pcond, &b->plock);
  }
}

void snap__sqlite_pool_give(sql_backend *b, conn *c) {
  pthread_mutex_lock(&b->plock);
  b->busy[c - b->readers] = false;
  pthread_cond_signal(&b->pcond);
  pthread_mutex_unlock(&b->plock);
}

/*
 * What loads and enumeration need before their first read: a database with
 * our schema. A reader checks it, so reading never opens the writer (which
 * takes the write lock, switches the journal mode and needs free space).
 * Only a store that may write creates a missing file or schema, through the
 * writer, as a save would.
 */
int snap__sqlite_read_ready(sql_backend *b) {
  if (atomic_load_explicit(&b->ready, memory_order_acquire) ||
      atomic_load_explicit(&b->read_ok, memory_order_acquire))
    return SNAP_OK;
  struct stat sb;
  if (!b->read_only && stat(b->path, &sb) != 0)
    return ensure_ready(b); /* a new store: create it */
  conn *c;
  int e = snap__sqlite_pool_take(b, &c);
  snap_sqlite_versions v = {0, 0, false, false};
  if (e == SNAP_OK) {
    e = snap__sqlite_schema_read(b, c->db, &v);
    snap__sqlite_pool_give(b, c);
  }
  if (e == SNAP_OK)
    e = snap__sqlite_schema_newer(b, &v);
  if (e != SNAP_OK)
    return e;
  /* An older data set is upgraded by a store that may write; a read-only one
   * refuses it, since it reads only the current layout. */
  int ours = snap__sqlite_schema_version();
  if (!b->read_only && snap__sqlite_schema_behind(&v))
    return ensure_ready(b);
  if (v.table < ours)
    return snap__sqlite_schema_stale(b, &v);
  atomic_store_explicit(&b->read_ok, 1, memory_order_release);
  return SNAP_OK;
}
