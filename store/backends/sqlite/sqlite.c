/* The "sqlite" backend: one table of (pid, seq, ts, body) rows in a WAL
 * database. The schema, pragmas and durability promises are in docs/STORE.md.
 *
 * Threads: writes go through one connection under a process-local mutex
 * (threads of one process never meet in SQLite's sleeping busy handler);
 * reads use a small pool of connections, which WAL lets run alongside the
 * writer. Every connection keeps its prepared statements for its lifetime.
 * Other processes are kept apart by SQLite's locks and the busy timeout. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"
#include "../sql_ident.h"
#include "snap/sys/backend.h"

/* The schema version this code writes (PRAGMA user_version). */
#define SCHEMA_VERSION 1
#define TABLE_MAX 64
#define READERS 4

enum secure_mode { SECURE_AUTO, SECURE_ON, SECURE_OFF, SECURE_FAST };

enum stmt_id {
  S_BEGIN,
  S_COMMIT,
  S_ROLLBACK,
  S_INSERT,
  S_PRUNE,
  S_MARK,
  S_LOAD,
  S_LOAD_NEWEST,
  S_REMOVE,
  S_COUNT
};

typedef struct conn {
  sqlite3 *db;
  sqlite3_stmt *stmt[S_COUNT];
} conn;

struct sql_backend {
  const snap_host *host;
  char *path;
  char table[TABLE_MAX + 1];
  bool sync_full;
  bool read_only; /* "read_only": no writer, ever */
  int busy_ms;
  unsigned long max_pages; /* PRAGMA max_page_count on every connection; 0 = SQLite's */
  enum secure_mode secure;
  char *sql[S_COUNT];

  /* The writer: its connection, the schema check and the encrypted flag. */
  pthread_mutex_t wlock;
  conn writer;
  bool encrypted;     /* the table holds (or held) encrypted bodies: secure_delete on */
  atomic_int ready;   /* schema checked by the writer */
  atomic_int read_ok; /* schema checked by a reader: loads need no writer */

  /* Reader pool. */
  pthread_mutex_t plock;
  pthread_cond_t pcond;
  conn readers[READERS];
  bool busy[READERS];
};

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static int map_err(const sql_backend *b, sqlite3 *db, int rc, const char *what) {
  int code;
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    code = SNAP_EBUSY;
    break;
  case SQLITE_FULL:
    code = SNAP_EFULL;
    break;
  case SQLITE_CORRUPT:
    code = SNAP_ECORRUPT;
    break;
  case SQLITE_NOTADB:
    code = SNAP_EFORMAT;
    break;
  case SQLITE_NOMEM:
    code = SNAP_ENOMEM;
    break;
  default:
    code = SNAP_EIO;
    break;
  }
  /* A full disk does not always read SQLITE_FULL: creating the -wal or -shm
   * of a database nobody has open fails as an I/O error. The OS says why. */
  if (code == SNAP_EIO && db != NULL &&
      (sqlite3_system_errno(db) == ENOSPC || sqlite3_system_errno(db) == EDQUOT))
    code = SNAP_EFULL;
  return b->host->error(code, "sqlite '%s' table '%s': %s: %s", b->path, b->table, what,
                        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Tells the host's observer and metrics (hosts of ABI version 2 and later). */
static void report(const sql_backend *b, int kind, int status, const char *pid, int64_t seq,
                   uint64_t count, const char *detail) {
  if (b->host->abi_version < 2 || b->host->report == NULL)
    return;
  snap_backend_report r = {kind, status, pid, seq, count, detail};
  b->host->report(b->host, &r);
}

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
  report(b, SNAP_EVENT_BUSY_RETRY, SNAP_EBUSY, NULL, -1, (uint64_t)count + 1,
         "the database is locked by another connection; waiting");
  sqlite3_sleep(delay);
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

static bool valid_table(const char *t) { return snap__sql_ident_ok(t, TABLE_MAX); }

static char *dup_str(const snap_host *h, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = h->malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

/* Reads the backend's keys from its section of the host's reader (the
 * store took its own keys already). */
/* Whether `path` is a regular file or nothing yet. Anything else (a FIFO, a
 * device, a directory) is refused before SQLite opens it: opening a FIFO
 * blocks until a writer appears, so a store would hang instead of failing. */
static bool regular_or_absent(const char *path) {
  struct stat sb;
  return stat(path, &sb) != 0 || S_ISREG(sb.st_mode);
}

static int parse_config(sql_backend *b, snap_conf *c) {
  const snap_host *h = b->host;
  static const char *const syncs[] = {"full", "normal", NULL};
  static const char *const secure[] = {"auto", "on", "off", "fast", NULL};
  const char *path = NULL, *table = NULL;
  int sync = 0, sec = SECURE_AUTO;
  int64_t busy = b->busy_ms, pages = 0;
  if (h->conf_string(c, "path", SNAP_CONF_REQUIRED | SNAP_CONF_NONEMPTY, &path) > 0 &&
      !regular_or_absent(path))
    h->conf_error(c, "path",
                  "'%s' is not a regular file (a FIFO, device or directory cannot hold "
                  "a store)",
                  path);
  if (h->conf_string(c, "table", 0, &table) > 0 && !valid_table(table))
    h->conf_error(c, "table", "'%s' does not match [A-Za-z_][A-Za-z0-9_]* of at most %d characters",
                  table, TABLE_MAX);
  else if (table != NULL && snap__sql_reserved_table(table, "sqlite_", true))
    h->conf_error(c, "table", "'%s' is a table of the store's or of SQLite's own", table);
  if (h->conf_enum(c, "synchronous", 0, syncs, &sync) > 0)
    b->sync_full = sync == 0;
  h->conf_int(c, "busy_timeout_ms", 0, 0, INT_MAX, &busy);
  /* Operators cap the database's size; the pragma is per connection, so
   * only the backend can apply it to every connection it opens (0: no cap). */
  h->conf_int(c, "max_page_count", 0, 0, 4294967294, &pages);
  h->conf_enum(c, "secure_delete", 0, secure, &sec);
  h->conf_bool(c, "read_only", 0, &b->read_only);
  /* Copy: the reader's strings are the host's. */
  bool oom = path != NULL && (b->path = dup_str(h, path)) == NULL;
  if (table != NULL && valid_table(table))
    strcpy(b->table, table);
  int e = h->conf_check(c);
  if (e != SNAP_OK)
    return e;
  if (oom)
    return h->error(SNAP_ENOMEM, "sqlite backend: out of memory");
  b->busy_ms = (int)busy;
  b->max_pages = (unsigned long)pages;
  b->secure = (enum secure_mode)sec;
  return SNAP_OK;
}

static int build_sql(sql_backend *b) {
  const char *tpl[S_COUNT] = {
      [S_BEGIN] = "BEGIN IMMEDIATE",
      [S_COMMIT] = "COMMIT",
      [S_ROLLBACK] = "ROLLBACK",
      [S_INSERT] = "INSERT OR REPLACE INTO \"%s\" (pid, seq, ts, body) VALUES (?1, ?2, ?3, ?4)",
      /* Keep the newest ?2 + 1 rows: everything below the (?2 + 1)-th newest
       * seq goes; with fewer rows the subquery is NULL and nothing matches. */
      [S_PRUNE] = "DELETE FROM \"%s\" WHERE pid = ?1 AND seq < (SELECT seq FROM \"%s\" "
                  "WHERE pid = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
      [S_MARK] = "INSERT OR REPLACE INTO snapstore_meta (name, value) VALUES ('encrypted:' || "
                 "'%s', 1)",
      [S_LOAD_NEWEST] = "SELECT seq, ts, body FROM \"%s\" WHERE pid = ?1 ORDER BY seq DESC LIMIT 1",
      [S_LOAD] = "SELECT seq, ts, body FROM \"%s\" WHERE pid = ?1 AND seq BETWEEN ?2 AND ?3 "
                 "AND ts BETWEEN ?4 AND ?5 ORDER BY seq DESC LIMIT 1",
      [S_REMOVE] = "DELETE FROM \"%s\" WHERE pid = ?1 AND seq BETWEEN ?2 AND ?3 "
                   "AND ts BETWEEN ?4 AND ?5",
  };
  for (int i = 0; i < S_COUNT; i++) {
    /* The table name is checked against [A-Za-z_][A-Za-z0-9_]*, so quoting
     * it is enough; pids and values are always bound parameters. */
    size_t n = strlen(tpl[i]) + 2 * TABLE_MAX + 1;
    b->sql[i] = b->host->malloc(n);
    if (b->sql[i] == NULL)
      return b->host->error(SNAP_ENOMEM, "sqlite backend: out of memory");
    snprintf(b->sql[i], n, tpl[i], b->table, b->table);
  }
  return SNAP_OK;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

static void conn_close(conn *c) {
  for (int i = 0; i < S_COUNT; i++) {
    sqlite3_finalize(c->stmt[i]);
    c->stmt[i] = NULL;
  }
  sqlite3_close(c->db);
  c->db = NULL;
}

static int exec(const sql_backend *b, sqlite3 *db, const char *sql) {
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? SNAP_OK : map_err(b, db, rc, sql);
}

/*
 * exec() for a statement that needs an exclusive lock outside a write
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
      return map_err(b, db, rc, sql);
    report(b, SNAP_EVENT_BUSY_RETRY, SNAP_EBUSY, NULL, -1, (uint64_t)waited_ms + 1, sql);
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
  if (!regular_or_absent(b->path))
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
    int e = map_err(b, c->db, rc, "read");
    conn_close(c);
    return e;
  }
  if (rc != SQLITE_OK) {
    int e = map_err(b, c->db, rc, "open");
    if (e == SNAP_EBUSY || e == SNAP_ENOMEM || e == SNAP_EFULL)
      ; /* keep the precise code */
    else
      e = b->host->error(SNAP_EIO, "sqlite '%s': cannot open the database: %s", b->path,
                         c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    conn_close(c);
    return e;
  }
  /* The busy timeout comes first: even the pragmas below may need a lock. */
  sqlite3_busy_handler(c->db, busy_wait, b);
  int e = SNAP_OK;
  if (b->max_pages > 0) {
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA max_page_count = %lu", b->max_pages);
    e = exec(b, c->db, pragma);
  }
  if (e == SNAP_OK && writer)
    e = exec_waiting(b, c->db, "PRAGMA journal_mode = WAL");
  if (e == SNAP_OK)
    e = exec(b, c->db, b->sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  if (e == SNAP_OK && writer)
    e = exec(b, c->db, secure_pragma(b));
  if (e != SNAP_OK)
    conn_close(c);
  return e;
}

static int stmt(const sql_backend *b, conn *c, enum stmt_id id, sqlite3_stmt **out) {
  if (c->stmt[id] == NULL) {
    int rc =
        sqlite3_prepare_v3(c->db, b->sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id], NULL);
    if (rc != SQLITE_OK) {
      c->stmt[id] = NULL;
      *out = NULL;
      return map_err(b, c->db, rc, "prepare");
    }
  }
  *out = c->stmt[id];
  return SNAP_OK;
}

/* Runs a prepared statement without results; maps a failure (message taken
 * before the reset, which keeps the statement reusable). */
static int run(const sql_backend *b, conn *c, enum stmt_id id, const char *what) {
  sqlite3_stmt *s;
  int e = stmt(b, c, id, &s);
  if (e != SNAP_OK)
    return e;
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    e = map_err(b, c->db, rc, what);
  sqlite3_reset(s);
  return e;
}

static int newer_schema(const sql_backend *b, int version) {
  return b->host->error(SNAP_EFORMAT,
                        "sqlite '%s': database schema version %d is newer than the version %d "
                        "this snapstore understands; upgrade snapstore to open it",
                        b->path, version, SCHEMA_VERSION);
}

/* Creates or checks the schema and reads the encrypted flag. Writer lock held. */
static int schema_init(sql_backend *b) {
  sqlite3 *db = b->writer.db;
  int e = exec(b, db, "BEGIN IMMEDIATE");
  if (e != SNAP_OK)
    return e;
  sqlite3_stmt *s = NULL;
  int version = 0;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    version = sqlite3_column_int(s, 0);
    rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK)
    e = map_err(b, db, rc, "read the schema version");
  sqlite3_finalize(s);
  if (e == SNAP_OK && version > SCHEMA_VERSION)
    e = newer_schema(b, version);
  if (e == SNAP_OK) {
    char ddl[512];
    snprintf(ddl, sizeof ddl,
             "CREATE TABLE IF NOT EXISTS \"%s\" (pid TEXT NOT NULL, seq INTEGER NOT NULL, "
             "ts INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (pid, seq));"
             "CREATE TABLE IF NOT EXISTS snapstore_meta (name TEXT PRIMARY KEY, "
             "value INTEGER NOT NULL);",
             b->table);
    e = exec(b, db, ddl);
  }
  if (e == SNAP_OK && version < SCHEMA_VERSION) {
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", SCHEMA_VERSION);
    e = exec(b, db, pragma);
  }
  if (e == SNAP_OK) {
    char q[160];
    snprintf(q, sizeof q, "SELECT value FROM snapstore_meta WHERE name = 'encrypted:%s'", b->table);
    rc = sqlite3_prepare_v2(db, q, -1, &s, NULL);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(s);
      if (rc == SQLITE_ROW)
        b->encrypted = sqlite3_column_int(s, 0) != 0;
      rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK)
      e = map_err(b, db, rc, "read the metadata");
    sqlite3_finalize(s);
  }
  if (e == SNAP_OK)
    e = exec(b, db, "COMMIT");
  if (e != SNAP_OK && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  if (e == SNAP_OK && b->secure == SECURE_AUTO && b->encrypted)
    e = exec(b, db, secure_pragma(b));
  return e;
}

/* Opens the writer and checks the schema on first use. Writer lock held. */
static int writer_ready(sql_backend *b) {
  if (atomic_load_explicit(&b->ready, memory_order_acquire))
    return SNAP_OK;
  if (b->read_only)
    return b->host->error(SNAP_EUNSUPPORTED,
                          "sqlite '%s' table '%s': the store is read-only (\"read_only\": true): "
                          "saves, deletes and rewrites are refused",
                          b->path, b->table);
  int e = conn_open(b, &b->writer, true);
  if (e == SNAP_OK && (e = schema_init(b)) != SNAP_OK)
    conn_close(&b->writer);
  if (e == SNAP_OK)
    atomic_store_explicit(&b->ready, 1, memory_order_release);
  return e;
}

static int ensure_ready(sql_backend *b) {
  if (atomic_load_explicit(&b->ready, memory_order_acquire))
    return SNAP_OK;
  pthread_mutex_lock(&b->wlock);
  int e = writer_ready(b);
  pthread_mutex_unlock(&b->wlock);
  return e;
}

static int reader_acquire(sql_backend *b, conn **out) {
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

static void reader_release(sql_backend *b, conn *c) {
  pthread_mutex_lock(&b->plock);
  b->busy[c - b->readers] = false;
  pthread_cond_signal(&b->pcond);
  pthread_mutex_unlock(&b->plock);
}

/* Reads the schema version and whether the table exists, on a reader. */
static int reader_schema(sql_backend *b, sqlite3 *db, int *version, bool *has_table) {
  char q[200];
  snprintf(q, sizeof q,
           "SELECT (SELECT user_version FROM pragma_user_version), EXISTS (SELECT 1 FROM "
           "sqlite_master WHERE type = 'table' AND name = '%s')",
           b->table);
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, q, -1, &s, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    *version = sqlite3_column_int(s, 0);
    *has_table = sqlite3_column_int(s, 1) != 0;
    rc = SQLITE_OK;
  }
  int e = rc == SQLITE_OK ? SNAP_OK : map_err(b, db, rc, "read the schema");
  sqlite3_finalize(s);
  return e;
}

/*
 * What loads and enumeration need before their first read: a database with
 * our schema. A reader checks it, so reading never opens the writer (which
 * takes the write lock, switches the journal mode and needs free space).
 * Only a store that may write creates a missing file or schema, through the
 * writer, as a save would.
 */
static int read_ready(sql_backend *b) {
  if (atomic_load_explicit(&b->ready, memory_order_acquire) ||
      atomic_load_explicit(&b->read_ok, memory_order_acquire))
    return SNAP_OK;
  struct stat sb;
  if (!b->read_only && stat(b->path, &sb) != 0)
    return ensure_ready(b); /* a new store: create it */
  conn *c;
  int e = reader_acquire(b, &c);
  int version = 0;
  bool has_table = false;
  if (e == SNAP_OK) {
    e = reader_schema(b, c->db, &version, &has_table);
    reader_release(b, c);
  }
  if (e != SNAP_OK)
    return e;
  if (version > SCHEMA_VERSION)
    return newer_schema(b, version);
  if (!has_table || version < SCHEMA_VERSION) {
    if (!b->read_only)
      return ensure_ready(b);
    return b->host->error(SNAP_EIO,
                          "sqlite '%s': no snapstore table '%s' (schema version %d) and the "
                          "store is read-only, so it is not created",
                          b->path, b->table, version);
  }
  atomic_store_explicit(&b->read_ok, 1, memory_order_release);
  return SNAP_OK;
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */
/* ------------------------------------------------------------------------ */

static void sql_close(void *self);

/* SNAP_BACKEND_NO_CREATE: the file must exist already. A relative path is
 * shown resolved too, since "where am I running" is the usual surprise. */
static int require_file(const sql_backend *b) {
  struct stat sb;
  if (stat(b->path, &sb) == 0)
    return SNAP_OK;
  char cwd[PATH_MAX] = "";
  if (b->path[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
    snprintf(cwd, sizeof cwd, ".");
  return b->host->error(SNAP_ENOTFOUND, "no store at '%s' (resolved to '%s%s%s')", b->path, cwd,
                        cwd[0] ? "/" : "", b->path);
}

static int sql_open(void **self, snap_conf *config, unsigned flags, const snap_host *host) {
  *self = NULL;
  if (host->abi_version < 3)
    return host->error(SNAP_EABI, "sqlite backend: the host has no configuration reader");
  sql_backend *b = host->malloc(sizeof *b);
  if (b == NULL)
    return host->error(SNAP_ENOMEM, "sqlite backend: out of memory");
  memset(b, 0, sizeof *b);
  b->host = host;
  strcpy(b->table, "snapshots");
  b->sync_full = true;
  b->busy_ms = 5000;
  b->secure = SECURE_AUTO;
  atomic_init(&b->ready, 0);
  atomic_init(&b->read_ok, 0);
  pthread_mutex_init(&b->wlock, NULL);
  pthread_mutex_init(&b->plock, NULL);
  pthread_cond_init(&b->pcond, NULL);
  int e = parse_config(b, config);
  if (e == SNAP_OK && (flags & SNAP_BACKEND_NO_CREATE)) {
    /* Read an existing store, never make one: the read-only machinery. */
    b->read_only = true;
    e = require_file(b);
  }
  if (e == SNAP_OK)
    e = build_sql(b);
  if (e != SNAP_OK) {
    sql_close(b);
    return e;
  }
  /* Files are opened on first use, so a store can be configured before its
   * directory exists; the first operation reports an unusable path. */
  *self = b;
  return SNAP_OK;
}

static void sql_close(void *self) {
  sql_backend *b = self;
  if (b == NULL)
    return;
  for (int i = 0; i < READERS; i++)
    if (b->readers[i].db)
      conn_close(&b->readers[i]);
  if (b->writer.db)
    conn_close(&b->writer);
  for (int i = 0; i < S_COUNT; i++)
    b->host->free(b->sql[i]);
  b->host->free(b->path);
  pthread_cond_destroy(&b->pcond);
  pthread_mutex_destroy(&b->plock);
  pthread_mutex_destroy(&b->wlock);
  b->host->free(b);
}

/* Inserts one row; `*sqlite_rc` receives SQLite's extended result code. */
static int insert_row(sql_backend *b, conn *c, const snap_backend_row *r, int *sqlite_rc) {
  sqlite3_stmt *s;
  int e = stmt(b, c, S_INSERT, &s);
  if (e != SNAP_OK)
    return e;
  /* The pid and body outlive the step: no copies. */
  sqlite3_bind_text(s, 1, r->pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, r->seq);
  sqlite3_bind_int64(s, 3, r->timestamp);
  sqlite3_bind_blob64(s, 4, r->body, r->body_len, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    *sqlite_rc = sqlite3_extended_errcode(c->db);
    e = map_err(b, c->db, rc, "insert");
  }
  sqlite3_reset(s);
  return e;
}

/* Prunes `pid` to its `keep` newest rows; `*removed` receives the rows it
 * deleted. One statement: SQLite undoes a failing one by itself, so a
 * failure leaves the saves (and the earlier prunes) of the transaction
 * untouched; it is reported for `seq`, the save that triggered it. */
static int prune_pid(sql_backend *b, conn *c, const char *pid, int64_t seq, uint32_t keep,
                     uint64_t *removed) {
  *removed = 0;
  sqlite3_stmt *s;
  int e = stmt(b, c, S_PRUNE, &s);
  if (e != SNAP_OK)
    return e;
  sqlite3_bind_text(s, 1, pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)keep - 1);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    e = map_err(b, c->db, rc, "prune");
    report(b, SNAP_EVENT_PRUNE_FAILED, e, pid, seq, 0, sqlite3_errmsg(c->db));
  } else {
    *removed = (uint64_t)sqlite3_changes(c->db);
  }
  sqlite3_reset(s);
  return e;
}

/* Marks every stored row of `rows` failed with `e` (the transaction is gone). */
static int fail_all(snap_backend_row *rows, size_t n, int e) {
  for (size_t i = 0; i < n; i++)
    rows[i].status = e;
  return e;
}

/*
 * Writes a batch in one transaction. Every insert is followed by the prune of
 * its pid, as a single save is, rather than pruning once after the whole
 * batch (or after a run of one pid's rows, which a submitter that saves
 * faster than the others makes long): the pages a prune frees are then reused
 * by the very next insert of the same transaction, and rows that a later row
 * of the batch makes obsolete never reach the disk at all. A failing prune
 * never fails a save: pruning stops for the batch, and the next save of the
 * pid catches up.
 */
/* One put's transaction: what its statements did, for its conclusion. */
typedef struct put_txn {
  size_t stored;     /* rows inserted */
  int first;         /* the first row's failure, or SNAP_OK */
  int fatal;         /* a failure after which the transaction is lost, or SNAP_OK */
  bool flagged;      /* the "encrypted" mark was written in it */
  uint64_t *removed; /* by row: what the prune after it removed (NULL: not counted) */
} put_txn;

/* Inserts (and prunes after) each row inside the open transaction and
 * classifies each statement's result. No savepoint per row: SQLite undoes a
 * failing statement by itself and keeps the transaction, so a refused row
 * (too big, say) leaves the rows beside it intact. The errors after which
 * SQLite may have rolled back the whole transaction, or advises to (full
 * disk, I/O, memory, busy), end the batch (t->fatal). */
static void put_rows(sql_backend *b, conn *c, snap_backend_row *rows, size_t n, uint32_t keep,
                     put_txn *t) {
  bool pruning = keep > 0;
  for (size_t i = 0; i < n; i++) {
    int rc = SQLITE_OK;
    int e = insert_row(b, c, &rows[i], &rc);
    rows[i].status = e;
    if (e == SNAP_OK) {
      t->stored++;
      if ((rows[i].stages & SNAP_STAGE_ENCRYPTED) && !b->encrypted && !t->flagged) {
        /* Remember in the same transaction that this table now holds
         * encrypted bodies, so that every later process deletes them securely. */
        t->flagged = run(b, c, S_MARK, "mark encrypted") == SNAP_OK;
      }
    } else {
      if (t->first == SNAP_OK)
        t->first = e;
      int primary = rc & 0xff;
      if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_NOMEM ||
          primary == SQLITE_BUSY || sqlite3_get_autocommit(c->db)) {
        t->fatal = e;
        return;
      }
    }
    if (pruning && rows[i].status == SNAP_OK) {
      uint64_t gone = 0;
      pruning = prune_pid(b, c, rows[i].pid, rows[i].seq, keep, &gone) == SNAP_OK;
      if (t->removed != NULL)
        t->removed[i] = gone;
      if (sqlite3_get_autocommit(c->db))
        return; /* the prune's failure took the transaction with it */
    }
  }
}

/* Concludes the batch from what put_rows() found: a lost transaction fails
 * every row; no row stored rolls back; otherwise COMMIT, and only then are
 * the prunes reported and the encrypted mark believed. The put's status. */
static int put_conclude(sql_backend *b, conn *c, snap_backend_row *rows, size_t n, put_txn *t) {
  if (t->fatal != SNAP_OK || sqlite3_get_autocommit(c->db)) {
    /* The transaction is lost: nothing of it is stored. */
    int why = t->fatal != SNAP_OK ? t->fatal : t->first != SNAP_OK ? t->first : SNAP_EIO;
    if (!sqlite3_get_autocommit(c->db))
      (void)run(b, c, S_ROLLBACK, "rollback");
    return fail_all(rows, n, why);
  }
  if (t->stored == 0) {
    (void)run(b, c, S_ROLLBACK, "rollback");
    return t->first;
  }
  int e = run(b, c, S_COMMIT, "commit");
  if (e != SNAP_OK) {
    if (!sqlite3_get_autocommit(c->db))
      (void)run(b, c, S_ROLLBACK, "rollback");
    return fail_all(rows, n, e);
  }
  for (size_t i = 0; t->removed != NULL && i < n; i++)
    if (t->removed[i] > 0)
      report(b, SNAP_EVENT_PRUNE, SNAP_OK, rows[i].pid, rows[i].seq, t->removed[i], NULL);
  if (t->flagged)
    b->encrypted = true;
  return t->first;
}

static int put_locked(sql_backend *b, snap_backend_row *rows, size_t n, uint32_t keep) {
  int e = writer_ready(b);
  if (e != SNAP_OK)
    return fail_all(rows, n, e);
  conn *c = &b->writer;
  /* A table that is about to hold encrypted bodies deletes securely from the
   * first prune of this very transaction on. */
  bool any_encrypted = false;
  for (size_t i = 0; i < n; i++)
    any_encrypted |= (rows[i].stages & SNAP_STAGE_ENCRYPTED) != 0;
  bool secure_raised = any_encrypted && !b->encrypted && b->secure == SECURE_AUTO;
  if (secure_raised)
    (void)exec(b, c->db, "PRAGMA secure_delete = ON");
  put_txn t = {0, SNAP_OK, SNAP_OK, false, NULL};
  uint64_t removed_stack[16];
  if (keep > 0) {
    t.removed = n <= 16 ? removed_stack : b->host->malloc(n * sizeof *t.removed);
    if (t.removed != NULL)
      memset(t.removed, 0, n * sizeof *t.removed);
  }
  if ((e = run(b, c, S_BEGIN, "begin")) != SNAP_OK) {
    fail_all(rows, n, e);
  } else {
    put_rows(b, c, rows, n, keep, &t);
    e = put_conclude(b, c, rows, n, &t);
  }
  if (t.removed != removed_stack)
    b->host->free(t.removed);
  if (secure_raised && !b->encrypted)
    (void)exec(b, c->db, "PRAGMA secure_delete = FAST");
  return e;
}

static int sql_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  sql_backend *b = self;
  if (n == 0)
    return SNAP_OK;
  pthread_mutex_lock(&b->wlock);
  int e = put_locked(b, rows, n, keep);
  pthread_mutex_unlock(&b->wlock);
  return e;
}

/* Binds ?1 = pid and ?2..?5 = the criteria of the load and remove statements. */
static void bind_selection(sqlite3_stmt *s, const char *pid, const snap_criteria *cr) {
  sqlite3_bind_text(s, 1, pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, cr->min_seq);
  sqlite3_bind_int64(s, 3, cr->max_seq);
  sqlite3_bind_int64(s, 4, cr->min_ts);
  sqlite3_bind_int64(s, 5, cr->max_ts);
}

static int sql_load(void *self, const char *pid, const snap_criteria *cr, snap_backend_emit emit,
                    void *ctx) {
  sql_backend *b = self;
  int e = read_ready(b);
  if (e != SNAP_OK)
    return e;
  conn *c;
  if ((e = reader_acquire(b, &c)) != SNAP_OK)
    return e;
  /* The common load, the newest snapshot under no upper bound, uses a
   * statement with no range to bind or test; its row is checked against the
   * lower bounds here, and when it falls below them (a negative seq or
   * timestamp) the general statement answers. */
  bool newest = cr->max_seq == INT64_MAX && cr->max_ts == INT64_MAX;
  for (int pass = newest ? 0 : 1; pass < 2; pass++) {
    sqlite3_stmt *s;
    if ((e = stmt(b, c, pass == 0 ? S_LOAD_NEWEST : S_LOAD, &s)) != SNAP_OK)
      break;
    if (pass == 0)
      sqlite3_bind_text(s, 1, pid, -1, SQLITE_STATIC);
    else
      bind_selection(s, pid, cr);
    bool retry = false;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      int64_t seq = sqlite3_column_int64(s, 0), ts = sqlite3_column_int64(s, 1);
      if (pass == 0 && (seq < cr->min_seq || ts < cr->min_ts)) {
        retry = true;
      } else {
        /* The blob stays valid until the reset: emit decodes straight from it. */
        const void *body = sqlite3_column_blob(s, 2);
        size_t len = (size_t)sqlite3_column_bytes(s, 2);
        e = emit(ctx, seq, ts, body, len);
      }
    } else if (rc != SQLITE_DONE) {
      e = map_err(b, c->db, rc, "load");
    }
    sqlite3_reset(s);
    if (!retry)
      break;
  }
  reader_release(b, c);
  return e;
}

static int sql_remove(void *self, const char *pid, const snap_criteria *cr) {
  sql_backend *b = self;
  pthread_mutex_lock(&b->wlock);
  int e = writer_ready(b);
  conn *c = &b->writer;
  if (e == SNAP_OK)
    e = run(b, c, S_BEGIN, "begin");
  if (e == SNAP_OK) {
    sqlite3_stmt *s;
    if ((e = stmt(b, c, S_REMOVE, &s)) == SNAP_OK) {
      bind_selection(s, pid, cr);
      int rc = sqlite3_step(s);
      if (rc != SQLITE_DONE)
        e = map_err(b, c->db, rc, "delete");
      sqlite3_reset(s);
    }
    if (e == SNAP_OK)
      e = run(b, c, S_COMMIT, "commit");
    if (e != SNAP_OK && !sqlite3_get_autocommit(c->db))
      (void)run(b, c, S_ROLLBACK, "rollback");
  }
  pthread_mutex_unlock(&b->wlock);
  return e;
}

/* ------------------------------------------------------------------------ */
/* For the other files of the backend (internal.h)                         */
/* ------------------------------------------------------------------------ */

const snap_host *snap__sqlite_host(const sql_backend *b) { return b->host; }
const char *snap__sqlite_table(const sql_backend *b) { return b->table; }
const char *snap__sqlite_path(const sql_backend *b) { return b->path; }

int snap__sqlite_error(const sql_backend *b, sqlite3 *db, int rc, const char *what) {
  return map_err(b, db, rc, what);
}

int snap__sqlite_reader(sql_backend *b, sqlite3 **db, int *token) {
  *db = NULL;
  int e = read_ready(b);
  conn *c;
  if (e == SNAP_OK && (e = reader_acquire(b, &c)) == SNAP_OK) {
    *db = c->db;
    *token = (int)(c - b->readers);
  }
  return e;
}

void snap__sqlite_reader_release(sql_backend *b, int token) {
  reader_release(b, &b->readers[token]);
}

int snap__sqlite_writer(sql_backend *b, sqlite3 **db) {
  pthread_mutex_lock(&b->wlock);
  int e = writer_ready(b);
  *db = e == SNAP_OK ? b->writer.db : NULL;
  return e;
}

void snap__sqlite_writer_release(sql_backend *b) { pthread_mutex_unlock(&b->wlock); }

bool snap__sqlite_mark_encrypted(sql_backend *b) {
  if (b->encrypted)
    return false;
  bool flagged = run(b, &b->writer, S_MARK, "mark encrypted") == SNAP_OK;
  if (flagged && b->secure == SECURE_AUTO)
    (void)exec(b, b->writer.db, "PRAGMA secure_delete = ON");
  return flagged;
}

void snap__sqlite_encrypted_done(sql_backend *b, bool newly, bool committed) {
  if (!newly)
    return;
  if (committed)
    b->encrypted = true;
  else if (b->secure == SECURE_AUTO)
    (void)exec(b, b->writer.db, "PRAGMA secure_delete = FAST");
}

/* The operations table; each slot's ABI version is in snap/sys/backend.h. */
static const snap_backend sqlite_backend = {
    .abi_version = SNAP_BACKEND_ABI_VERSION,
    .name = "sqlite",
    .capabilities = SNAP_CAP_COMPRESSION | SNAP_CAP_ENCRYPTION | SNAP_CAP_INTEGRITY |
                    SNAP_CAP_DURABLE | SNAP_CAP_BATCH,
    /* ABI 1 */
    .open = NULL, /* open_conf reads the section */
    .close = sql_close,
    .put = sql_put,
    .load = sql_load,
    .remove = sql_remove,
    /* ABI 2 */
    .list_pids = snap__sqlite_list_pids,
    .list_rows = snap__sqlite_list_rows,
    .replace = snap__sqlite_replace,
    .backup = snap__sqlite_backup,
    .setting = snap__sqlite_setting,
    /* ABI 3 */
    .open_conf = sql_open,
};

const snap_backend *snap_backend_sqlite(void) { return &sqlite_backend; }
