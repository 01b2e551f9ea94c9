/* Read-only connections of the sqlite backend. Loads never need the writer:
 * a connection opened with SQLITE_OPEN_READONLY reads a WAL database without
 * taking a write lock or switching the journal mode, so it works on a full
 * disk and beside a process holding the write lock. On read-only media,
 * SQLite can still open such a connection when the -wal and -shm files exist
 * or can be created; when neither is possible, and there is no -wal content
 * that reading without the log would miss, the database is opened as
 * immutable (docs/STORE.md, "Reading without writing").
 *
 * An immutable connection never sees a later change, so it is used only
 * where none can come from this store: read-only media, or a store opened
 * "read_only". Never for a hot journal (a transaction a crash or a power cut
 * left behind): reading past it would read half a transaction. A store that
 * may write lets a read-write connection roll the journal back first. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "internal.h"

/* Reads page 1 (and opens the WAL, where the failures below show up).
 * Returns the extended code: SQLITE_READONLY_ROLLBACK (a hot journal) must be
 * told apart from read-only media. */
static int probe(sqlite3 *db) {
  int rc = sqlite3_exec(db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
  return rc == SQLITE_OK ? rc : sqlite3_extended_errcode(db);
}

/* Whether `path` + `suffix` (a -wal, or a rollback -journal) may hold content
 * that reading the database without it would miss: it exists and is not
 * empty, or we cannot stat it. */
static bool log_may_hold_content(const char *path, const char *suffix) {
  char log[4200];
  if ((size_t)snprintf(log, sizeof log, "%s%s", path, suffix) >= sizeof log)
    return true;
  struct stat st;
  if (stat(log, &st) != 0)
    return errno != ENOENT;
  return !S_ISREG(st.st_mode) || st.st_size > 0;
}

/* Whether the file system holding `path` is mounted read-only. */
static bool on_read_only_media(const char *path) {
  struct statvfs sv;
  return statvfs(path, &sv) == 0 && (sv.f_flag & ST_RDONLY) != 0;
}

/* "file:<path>?immutable=1", percent-encoding what a URI path cannot hold. */
static bool immutable_uri(const char *path, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  const char *pre = "file:";
  for (const char *p = pre; *p; p++)
    out[n++] = *p;
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if (n + 4 >= cap)
      return false;
    if (*p == '%' || *p == '?' || *p == '#' || *p < 0x21 || *p >= 0x7f) {
      out[n++] = '%';
      out[n++] = hex[*p >> 4];
      out[n++] = hex[*p & 15];
    } else {
      out[n++] = (char)*p;
    }
  }
  const char *post = "?immutable=1";
  if (n + strlen(post) + 1 > cap)
    return false;
  strcpy(out + n, post);
  return true;
}

/* A read-only connection to `path`, its first read done: SQLite's code. */
static int open_probed(const char *path, int busy_ms, sqlite3 **db) {
  *db = NULL;
  int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(*db, busy_ms);
    rc = probe(*db);
  }
  return rc;
}

/* SQLITE_READONLY_ROLLBACK: a hot journal, which only a connection that may
 * write rolls back. Opening one (never creating the file) and reading page 1
 * does it, under SQLite's own locks; a failure shows on the reader again. */
static void roll_back_hot_journal(const char *path, int busy_ms) {
  sqlite3 *rw = NULL;
  if (sqlite3_open_v2(path, &rw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(rw, busy_ms);
    (void)probe(rw);
  }
  sqlite3_close(rw);
}

/* Whether a reader that failed with `rc` may read the file as immutable. */
static bool immutable_allowed(const char *path, int rc, bool may_write) {
  int primary = rc & 0xff;
  if (primary != SQLITE_CANTOPEN && primary != SQLITE_READONLY && primary != SQLITE_IOERR)
    return false;
  if (rc == SQLITE_READONLY_ROLLBACK || log_may_hold_content(path, "-journal") ||
      log_may_hold_content(path, "-wal"))
    return false;
  return !may_write || on_read_only_media(path);
}

int snap__sqlite_open_read(const char *path, int busy_ms, bool may_write, sqlite3 **out) {
  sqlite3 *db = NULL;
  int rc = open_probed(path, busy_ms, &db);
  if (rc == SQLITE_READONLY_ROLLBACK && may_write) {
    sqlite3_close(db);
    roll_back_hot_journal(path, busy_ms);
    rc = open_probed(path, busy_ms, &db);
  }
  if (rc == SQLITE_OK || db == NULL || !immutable_allowed(path, rc, may_write)) {
    *out = db;
    return rc;
  }
  /* The -wal or -shm cannot be created (read-only media, or a full disk
   * under a read-only store) and no log content exists: nothing but the file
   * itself holds committed data, and no writer can be active without those
   * files. */
  char uri[4200];
  sqlite3 *imm = NULL;
  if (!immutable_uri(path, uri, sizeof uri) ||
      sqlite3_open_v2(uri, &imm, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK ||
      probe(imm) != SQLITE_OK) {
    sqlite3_close(imm);
    *out = db; /* report the first failure */
    return rc;
  }
  sqlite3_close(db);
  *out = imm;
  return SQLITE_OK;
}
