/* The "sqlite" backend: one table of (pid, seq, ts, body) rows in a WAL
 * database. The schema, pragmas and durability promises are in docs/STORE.md.
 *
 * Threads: writes go through one connection under a process-local mutex
 * (threads of one process never meet in SQLite's sleeping busy handler);
 * reads use a small pool of connections, which WAL lets run alongside the
 * writer. Every connection keeps its prepared statements for its lifetime.
 * Other processes are kept apart by SQLite's locks and the busy timeout.
 *
 * This file: errors, configuration, open and close, loads, and the
 * operations table. Connections and the schema are in conn.c, the write
 * path (put, prune, delete) in write.c. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"
#include "../sql_ident.h"
#include "snap/sys/backend.h"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

int snap__sqlite_error(const sql_backend *b, sqlite3 *db, int rc, const char *what) {
  int code, primary = rc & 0xff;
  switch (primary) {
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
   * of a database nobody has open fails as an I/O error. The OS says why;
   * only for a failure of the OS, since SQLite keeps the errno of the last
   * one and would otherwise lend it to a later, unrelated error. */
  if ((primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN) && db != NULL &&
      (sqlite3_system_errno(db) == ENOSPC || sqlite3_system_errno(db) == EDQUOT))
    code = SNAP_EFULL;
  return b->host->error(code, "sqlite '%s' table '%s': %s: %s", b->path, b->table, what,
                        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Tells the host's observer and metrics (hosts of ABI version 2 and later). */
void snap__sqlite_report(const sql_backend *b, int kind, int status, const char *pid, int64_t seq,
                         uint64_t count, const char *detail) {
  if (b->host->abi_version < 2 || b->host->report == NULL)
    return;
  snap_backend_report r = {kind, status, pid, seq, count, detail};
  b->host->report(b->host, &r);
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

/* Whether `path` is a regular file or nothing yet. Anything else (a FIFO, a
 * device, a directory) is refused before SQLite opens it: opening a FIFO
 * blocks until a writer appears, so a store would hang instead of failing. */
bool snap__sqlite_regular_or_absent(const char *path) {
  struct stat sb;
  return stat(path, &sb) != 0 || S_ISREG(sb.st_mode);
}

/* Reads the backend's keys from its section of the host's reader (the
 * store took its own keys already). */
static int parse_config(sql_backend *b, snap_conf *c) {
  const snap_host *h = b->host;
  static const char *const syncs[] = {"full", "normal", NULL};
  static const char *const secure[] = {"auto", "on", "off", "fast", NULL};
  const char *path = NULL, *table = NULL;
  int sync = 0, sec = SECURE_AUTO;
  int64_t busy = b->busy_ms, pages = 0;
  if (h->conf_string(c, "path", SNAP_CONF_REQUIRED | SNAP_CONF_NONEMPTY, &path) > 0 &&
      !snap__sqlite_regular_or_absent(path))
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
      /* The manifest goes in by id (manifests.c); the text column is for
       * rows written before schema step 5. */
      [S_INSERT] = "INSERT OR REPLACE INTO \"%s\" (pid, seq, ts, body, manifest_id) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
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
      /* A conditional row's check, inside the put's BEGIN IMMEDIATE. */
      [S_NEWEST_SEQ] = "SELECT max(seq) FROM \"%s\" WHERE pid = ?1",
      [S_LOAD_MANIFEST] = "SELECT seq, ts, body FROM \"%s\" WHERE pid = ?1 AND seq BETWEEN ?2 "
                          "AND ?3 AND ts BETWEEN ?4 AND ?5 AND (manifest_id = (SELECT id FROM "
                          "\"%s_manifests\" WHERE name = ?6) OR manifest = ?6) ORDER BY seq DESC "
                          "LIMIT 1",
      [S_MANIFEST_ADD] = "INSERT OR IGNORE INTO \"%s_manifests\" (name) VALUES (?1)",
      [S_MANIFEST_ID] = "SELECT id FROM \"%s_manifests\" WHERE name = ?1",
      [S_INSERT_STREAM] = "INSERT OR REPLACE INTO \"%s\" (pid, seq, ts, body, manifest_id, stream) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      /* Whether a commit removed streamed rows whose files are to go. */
      [S_DEAD_LIST] = "SELECT 1 FROM \"%s_dead\" LIMIT 1",
      /* A read scope's transaction (scope.c): deferred, so it reads. */
      [S_BEGIN_READ] = "BEGIN",
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
      snap__sqlite_conn_close(&b->readers[i]);
  if (b->writer.db)
    snap__sqlite_conn_close(&b->writer);
  for (int i = 0; i < S_COUNT; i++)
    b->host->free(b->sql[i]);
  b->host->free(b->path);
  pthread_cond_destroy(&b->pcond);
  pthread_mutex_destroy(&b->plock);
  pthread_mutex_destroy(&b->wlock);
  b->host->free(b);
}

/* Binds ?1 = pid and ?2..?5 = the criteria of the load and remove statements. */
void snap__sqlite_bind_selection(sqlite3_stmt *s, const char *pid, const snap_criteria *cr) {
  sqlite3_bind_text(s, 1, pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, cr->min_seq);
  sqlite3_bind_int64(s, 3, cr->max_seq);
  sqlite3_bind_int64(s, 4, cr->min_ts);
  sqlite3_bind_int64(s, 5, cr->max_ts);
}

static int sql_load4(void *self, const char *pid, const snap_criteria *cr, const char *manifest,
                     snap_backend_emit emit, void *ctx) {
  sql_backend *b = self;
  int e = snap__sqlite_read_ready(b);
  if (e != SNAP_OK)
    return e;
  /* Inside the thread's read scope its reader and transaction serve. */
  conn *c = snap__sqlite_scoped(b);
  bool scoped = c != NULL;
  if (!scoped && (e = snap__sqlite_pool_take(b, &c)) != SNAP_OK)
    return e;
  /* The common load, the newest snapshot under no upper bound, uses a
   * statement with no range to bind or test; its row is checked against the
   * lower bounds here, and when it falls below them (a negative seq or
   * timestamp) the general statement answers. */
  bool newest = cr->max_seq == INT64_MAX && cr->max_ts == INT64_MAX && manifest == NULL;
  for (int pass = newest ? 0 : 1; pass < 2; pass++) {
    sqlite3_stmt *s;
    enum stmt_id id = pass == 0 ? S_LOAD_NEWEST : manifest ? S_LOAD_MANIFEST : S_LOAD;
    if ((e = snap__sqlite_stmt(b, c, id, &s)) != SNAP_OK)
      break;
    if (pass == 0)
      sqlite3_bind_text(s, 1, pid, -1, SQLITE_STATIC);
    else
      snap__sqlite_bind_selection(s, pid, cr);
    if (manifest != NULL)
      sqlite3_bind_text(s, 6, manifest, -1, SQLITE_STATIC);
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
      e = snap__sqlite_error(b, c->db, rc, "load");
    }
    sqlite3_reset(s);
    if (!retry)
      break;
  }
  if (!scoped)
    snap__sqlite_pool_give(b, c);
  return e;
}

static int sql_load(void *self, const char *pid, const snap_criteria *cr, snap_backend_emit emit,
                    void *ctx) {
  return sql_load4(self, pid, cr, NULL, emit, ctx);
}

/* ------------------------------------------------------------------------ */
/* For the other files of the backend (internal.h)                         */
/* ------------------------------------------------------------------------ */

const snap_host *snap__sqlite_host(const sql_backend *b) { return b->host; }
const char *snap__sqlite_table(const sql_backend *b) { return b->table; }
const char *snap__sqlite_path(const sql_backend *b) { return b->path; }

int snap__sqlite_reader(sql_backend *b, sqlite3 **db, int *token) {
  *db = NULL;
  int e = snap__sqlite_read_ready(b);
  conn *c;
  if (e == SNAP_OK && (e = snap__sqlite_pool_take(b, &c)) == SNAP_OK) {
    *db = c->db;
    *token = (int)(c - b->readers);
  }
  return e;
}

void snap__sqlite_reader_release(sql_backend *b, int token) {
  snap__sqlite_pool_give(b, &b->readers[token]);
}

int snap__sqlite_writer(sql_backend *b, sqlite3 **db) {
  pthread_mutex_lock(&b->wlock);
  int e = snap__sqlite_writer_ready(b);
  *db = e == SNAP_OK ? b->writer.db : NULL;
  return e;
}

void snap__sqlite_writer_release(sql_backend *b) { pthread_mutex_unlock(&b->wlock); }

bool snap__sqlite_mark_encrypted(sql_backend *b) {
  if (b->encrypted)
    return false;
  bool flagged = snap__sqlite_run(b, &b->writer, S_MARK, "mark encrypted") == SNAP_OK;
  if (flagged && b->secure == SECURE_AUTO)
    (void)snap__sqlite_exec(b, b->writer.db, "PRAGMA secure_delete = ON");
  return flagged;
}

void snap__sqlite_encrypted_done(sql_backend *b, bool newly, bool committed) {
  if (!newly)
    return;
  if (committed)
    b->encrypted = true;
  else if (b->secure == SECURE_AUTO)
    (void)snap__sqlite_exec(b, b->writer.db, "PRAGMA secure_delete = FAST");
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
    .put = snap__sqlite_put,
    .load = sql_load,
    .remove = snap__sqlite_remove,
    /* ABI 2 */
    .list_pids = snap__sqlite_list_pids,
    .list_rows = snap__sqlite_list_rows,
    .replace = snap__sqlite_replace,
    .backup = snap__sqlite_backup,
    .setting = snap__sqlite_setting,
    /* ABI 3 */
    .open_conf = sql_open,
    /* ABI 4 */
    .put4 = snap__sqlite_put4,
    .load4 = sql_load4,
    .dataset = snap__sqlite_dataset,
    .key_get = snap__sqlite_key_get,
    .key_create = snap__sqlite_key_create,
    .key_forget = snap__sqlite_key_forget,
    .key_list = snap__sqlite_key_list,
    .key_rewrap = snap__sqlite_key_rewrap,
    .dict_put = snap__sqlite_dict_put,
    .dict_get = snap__sqlite_dict_get,
    .dict_remove = snap__sqlite_dict_remove,
    /* ABI 5 */
    .replace_typed = snap__sqlite_replace_typed,
    /* ABI 6 */
    .stream_begin = snap__sqlite_stream_begin,
    .stream_write = snap__sqlite_stream_write,
    .stream_publish = snap__sqlite_stream_publish,
    .stream_abort = snap__sqlite_stream_abort,
    .stream_open = snap__sqlite_stream_open,
    .stream_next = snap__sqlite_stream_next,
    .stream_close = snap__sqlite_stream_close,
    .stream_sweep = snap__sqlite_stream_sweep,
    .key_replace = snap__sqlite_key_replace,
    /* ABI 7 */
    .stream_replace = snap__sqlite_stream_replace,
    /* ABI 8 */
    .read_scope_begin = snap__sqlite_scope_begin,
    .read_scope_end = snap__sqlite_scope_end,
};

const snap_backend *snap_backend_sqlite(void) { return &sqlite_backend; }
