/* The sqlite backend's stream files in a backup (docs/STREAMS.md,
 * "Backups"): each file a backed-up row names, linked or copied beside the
 * backup. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ---- backups ------------------------------------------------------------ */

/* `from` to the new file `to`: a hard link (published files never change),
 * or a copy in bounded memory where a link cannot be made. */
static int copy_out(const sql_backend *b, const char *from, const char *to) {
  if (link(from, to) == 0)
    return SNAP_OK;
  if (errno == ENOENT)
    return SNAP_ENOTFOUND;
  int in = open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return errno == ENOENT ? SNAP_ENOTFOUND : snap__sqlite_stream_io_error(b, errno, "read", from);
  int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  int e = out < 0 ? snap__sqlite_stream_io_error(b, errno, "create", to) : SNAP_OK;
  uint8_t *buf = e == SNAP_OK ? b->host->malloc(1u << 20) : NULL;
  if (e == SNAP_OK && buf == NULL)
    e = b->host->error(SNAP_ENOMEM, "sqlite backend: out of memory");
  for (ssize_t n; e == SNAP_OK && (n = read(in, buf, 1u << 20)) != 0;) {
    if (n < 0 || write(out, buf, (size_t)n) != n)
      e = snap__sqlite_stream_io_error(b, errno ? errno : EIO, "copy", from);
  }
  if (e == SNAP_OK && fdatasync(out) != 0)
    e = snap__sqlite_stream_io_error(b, errno, "sync", to);
  b->host->free(buf);
  close(in);
  if (out >= 0)
    close(out);
  return e;
}

/* The stream files of one table of the copy `dst`: a row whose file the
 * source no longer has was deleted after the copy's instant and goes. */
static int backup_table(const sql_backend *b, sqlite3 *dst, const char *table,
                        const char *path) {
  char sql[256], from[PATH_MAX], to[PATH_MAX];
  snprintf(sql, sizeof sql, "SELECT rowid, stream FROM \"%s\" WHERE stream IS NOT NULL", table);
  sqlite3_stmt *q = NULL, *del = NULL;
  int rc = sqlite3_prepare_v2(dst, sql, -1, &q, NULL);
  int e = rc == SQLITE_OK ? SNAP_OK : snap__sqlite_error(b, dst, rc, "backup: list streams");
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE rowid = ?1", table);
  if (e == SNAP_OK && (rc = sqlite3_prepare_v2(dst, sql, -1, &del, NULL)) != SQLITE_OK)
    e = snap__sqlite_error(b, dst, rc, "backup: prepare");
  while (e == SNAP_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(q, 1);
    if (name == NULL || strchr(name, '/') != NULL ||
        (size_t)snprintf(from, sizeof from, "%s.streams/%s", b->path, name) >= sizeof from ||
        (size_t)snprintf(to, sizeof to, "%s.streams/%s", path, name) >= sizeof to)
      continue;
    e = copy_out(b, from, to);
    if (e == SNAP_ENOTFOUND) {
      sqlite3_bind_int64(del, 1, sqlite3_column_int64(q, 0));
      e = sqlite3_step(del) == SQLITE_DONE ? SNAP_OK
                                            : snap__sqlite_error(b, dst, rc, "backup: delete");
      sqlite3_reset(del);
    }
  }
  if (e == SNAP_OK && rc != SQLITE_DONE)
    e = snap__sqlite_error(b, dst, rc, "backup: list streams");
  sqlite3_finalize(q);
  sqlite3_finalize(del);
  return e;
}

int snap__sqlite_streams_backup(const sql_backend *b, sqlite3 *dst, const char *path) {
  sqlite3_stmt *t = NULL;
  int rc = sqlite3_prepare_v2(dst,
                              "SELECT m.name FROM sqlite_master m WHERE m.type = 'table' AND "
                              "EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.name = "
                              "'stream')",
                              -1, &t, NULL);
  if (rc != SQLITE_OK)
    return snap__sqlite_error(b, dst, rc, "backup: find streamed tables");
  char dir[PATH_MAX];
  int e = SNAP_OK;
  bool made = false;
  while (e == SNAP_OK && (rc = sqlite3_step(t)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(t, 0);
    if (name == NULL || strchr(name, '"') != NULL || strlen(name) > TABLE_MAX)
      continue;
    if (!made) {
      snprintf(dir, sizeof dir, "%s.streams", path);
      if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        e = snap__sqlite_stream_io_error(b, errno, "create the streams folder", dir);
      made = true;
    }
    if (e == SNAP_OK)
      e = backup_table(b, dst, name, path);
  }
  if (e == SNAP_OK && rc != SQLITE_DONE)
    e = snap__sqlite_error(b, dst, rc, "backup: find streamed tables");
  sqlite3_finalize(t);
  return e;
}

void snap__sqlite_streams_backup_undo(const char *path) {
  char dir[PATH_MAX], f[PATH_MAX];
  if ((size_t)snprintf(dir, sizeof dir, "%s.streams", path) >= sizeof dir)
    return;
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.' &&
        (size_t)snprintf(f, sizeof f, "%s/%s", dir, de->d_name) < sizeof f)
      unlink(f);
  closedir(d);
  rmdir(dir);
}
