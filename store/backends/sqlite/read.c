/* Read-only connections of the sqlite backend. Loads never need the writer:
 * a connection opened with SQLITE_OPEN_READONLY reads a WAL database without
 * taking a write lock or switching the journal mode, so it works on a full
 * disk and beside a process holding the write lock. On read-only media,
 * SQLite can still open such a connection when the -wal and -shm files exist
 * or can be created; when neither is possible, and there is no -wal content
 * that reading without the log would miss, the database is opened as
 * immutable (docs/STORE.md, "Reading without writing"). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* Reads page 1 (and opens the WAL, where the failures below show up). */
static int probe(sqlite3 *db) {
  return sqlite3_exec(db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
}

/* Whether reading `path` without its write-ahead log could miss committed
 * transactions: a -wal that exists and is not empty, or one we cannot stat. */
static bool wal_may_hold_content(const char *path) {
  char wal[4200];
  if ((size_t)snprintf(wal, sizeof wal, "%s-wal", path) >= sizeof wal)
    return true;
  struct stat st;
  if (stat(wal, &st) != 0)
    return errno != ENOENT;
  return !S_ISREG(st.st_mode) || st.st_size > 0;
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

int snap__sqlite_open_read(const char *path, int busy_ms, sqlite3 **out) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, busy_ms);
    rc = probe(db);
  }
  int primary = rc & 0xff;
  if (rc == SQLITE_OK || db == NULL ||
      (primary != SQLITE_CANTOPEN && primary != SQLITE_READONLY && primary != SQLITE_IOERR) ||
      wal_may_hold_content(path)) {
    *out = db;
    return rc;
  }
  /* The -wal or -shm cannot be created (read-only directory or media, or a
   * full disk) and no log content exists: nothing but the file itself holds
   * committed data, and no writer can be active without those files. */
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
