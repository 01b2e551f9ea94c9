/* The sqlite backend's streamed snapshots (backend ABI version 6): chunk
 * records go to a file of their own beside the database, published by the
 * row that names it.
 *
 * Why files: SQLite's WAL writes every byte twice (the log, then the
 * checkpoint), so chunks in a side table (or a side database) cannot come
 * near a raw sequential write; docs/STREAMS.md has the measurement. A file
 * is written once, sequentially, and fdatasync'd once.
 *
 * Layout: "<path>.streams/<table>.<32 hex digits>.chunks", holding the
 * 8-byte magic "SNPCHNK1" then each record as u32le(length) || record. The
 * row's stream column names the file (the basename); the file's name is
 * random, so a name never returns once its row is gone.
 *
 * Leases: the writer holds an exclusive flock() on its staging file from the
 * moment it exists until its row committed (or the staging was discarded).
 * The sweep reclaims a file only when it gets that lock without waiting and
 * no row names the file, reading the rows after it got the lock: a live
 * writer is never reclaimed, and a writer that died (kill -9 included) lost
 * its lock with its process. A writer that finds its new file unlinked after
 * locking it (a sweep took it in between) starts over with another name.
 * flock() is per open file, so two stores in one process exclude each other
 * too; it needs a local file system (not NFS).
 *
 * Removal: a deleted, pruned or replaced streamed row is recorded in
 * "<table>_dead" by the triggers of schema step 5, in the transaction that
 * removes it; after that transaction commits, drain() unlinks the files
 * listed and empties the list. Readers that opened a file keep reading it
 * after it is unlinked (POSIX), so a load never sees half a stream. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define MAGIC "SNPCHNK1"
#define MAGIC_LEN 8u
#define SUFFIX ".chunks"
/* Write-back is started every this many bytes (sync_file_range), so the disk
 * writes while the encoder works instead of all at the commit's fdatasync. */
#define KICK_BYTES ((uint64_t)8 << 20)
/* What lies more than this far behind the end of the file is dropped from
 * the page cache, so a state of many GiB neither evicts the rest of the cache
 * nor makes the kernel reclaim memory under the writer (docs/STREAMS.md,
 * "Write-behind"). */
#define BEHIND_BYTES ((uint64_t)128 << 20)
/* The most orphans one open reclaims before the first write returns. */
#define OPEN_SWEEP_MAX 256u

struct snap_backend_stream {
  int fd;
  char name[TABLE_MAX + 48]; /* <table>.<hex>.chunks */
  char *pid;
  int64_t seq;
  uint64_t bytes;
  uint64_t kicked;  /* bytes whose write-back was started */
  uint64_t dropped; /* bytes advised out of the page cache */
  bool failed;
};

/* "<path>.streams" into `out`. */
static int dir_of(const sql_backend *b, char *out, size_t n) {
  if ((size_t)snprintf(out, n, "%s.streams", b->path) >= n)
    return b->host->error(SNAP_EINVAL, "sqlite '%s': the path is too long for its streams folder",
                          b->path);
  return SNAP_OK;
}

static int file_of(const sql_backend *b, const char *name, char *out, size_t n) {
  if ((size_t)snprintf(out, n, "%s.streams/%s", b->path, name) >= n)
    return b->host->error(SNAP_EINVAL, "sqlite '%s': the path is too long for a stream file",
                          b->path);
  return SNAP_OK;
}

int snap__sqlite_stream_io_error(const sql_backend *b, int err, const char *what, const char *file) {
  int code = (err == ENOSPC || err == EDQUOT || err == EFBIG) ? SNAP_EFULL : SNAP_EIO;
  return b->host->error(code, "sqlite '%s' table '%s': %s '%s': %s", b->path, b->table, what,
                        file, strerror(err));
}

/* fsync of the streams folder: a new or removed name is durable. */
static int sync_dir(const sql_backend *b) {
  char dir[PATH_MAX];
  int e = dir_of(b, dir, sizeof dir);
  if (e != SNAP_OK)
    return e;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    int err = errno;
    if (fd >= 0)
      close(fd);
    return snap__sqlite_stream_io_error(b, err, "sync the folder", dir);
  }
  close(fd);
  return SNAP_OK;
}

/* A new staging file, created, locked and checked still linked. */
static int create_file(sql_backend *b, snap_backend_stream *s) {
  char dir[PATH_MAX], path[PATH_MAX];
  int e = dir_of(b, dir, sizeof dir);
  if (e != SNAP_OK)
    return e;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return snap__sqlite_stream_io_error(b, errno, "create the streams folder", dir);
  for (int attempt = 0; attempt < 8; attempt++) {
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
      return snap__sqlite_stream_io_error(b, errno, "draw a stream file name for", dir);
    int k = snprintf(s->name, sizeof s->name, "%s.", b->table);
    for (size_t i = 0; i < sizeof rnd; i++)
      k += snprintf(s->name + k, sizeof s->name - (size_t)k, "%02x", rnd[i]);
    snprintf(s->name + k, sizeof s->name - (size_t)k, SUFFIX);
    if ((e = file_of(b, s->name, path, sizeof path)) != SNAP_OK)
      return e;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      if (errno == EEXIST)
        continue;
      return snap__sqlite_stream_io_error(b, errno, "create the stream file", path);
    }
    struct stat st;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 || st.st_nlink == 0) {
      close(fd); /* a sweep took it before we locked it: another name */
      continue;
    }
    if (write(fd, MAGIC, MAGIC_LEN) != (ssize_t)MAGIC_LEN) {
      int err = errno ? errno : EIO;
      unlink(path);
      close(fd);
      return snap__sqlite_stream_io_error(b, err, "write the stream file", path);
    }
    s->fd = fd;
    return SNAP_OK;
  }
  return b->host->error(SNAP_EIO, "sqlite '%s': no free stream file name in '%s'", b->path, dir);
}

int snap__sqlite_stream_begin(void *self, const char *pid, int64_t seq,
                              snap_backend_stream **out) {
  sql_backend *b = self;
  *out = NULL;
  if (b->read_only)
    return b->host->error(SNAP_EUNSUPPORTED,
                          "sqlite '%s' table '%s': the store is read-only (\"read_only\": true): "
                          "saves are refused",
                          b->path, b->table);
  /* The schema (step 5) and the reclaim of a previous run's orphans first. */
  pthread_mutex_lock(&b->wlock);
  int e = snap__sqlite_writer_ready(b);
  pthread_mutex_unlock(&b->wlock);
  if (e != SNAP_OK)
    return e;
  snap_backend_stream *s = b->host->malloc(sizeof *s);
  size_t pl = strlen(pid) + 1;
  char *p = b->host->malloc(pl);
  if (s == NULL || p == NULL) {
    b->host->free(s);
    b->host->free(p);
    return b->host->error(SNAP_ENOMEM, "sqlite backend: out of memory");
  }
  memset(s, 0, sizeof *s);
  memcpy(p, pid, pl);
  s->pid = p;
  s->seq = seq;
  s->fd = -1;
  if ((e = create_file(b, s)) != SNAP_OK) {
    b->host->free(p);
    b->host->free(s);
    return e;
  }
  *out = s;
  return SNAP_OK;
}

/* Starts the write-back of each KICK_BYTES written, and drops from the page
 * cache what is more than BEHIND_BYTES behind (written back by then, mostly:
 * a page still dirty or under write-back stays, nothing waits). Advice only:
 * the commit's fdatasync() makes everything durable, so failures are
 * ignored. */
static void write_behind(snap_backend_stream *s) {
#ifdef SYNC_FILE_RANGE_WRITE
  if (s->bytes - s->kicked < KICK_BYTES)
    return;
  (void)sync_file_range(s->fd, (off64_t)(MAGIC_LEN + s->kicked), (off64_t)(s->bytes - s->kicked),
                        SYNC_FILE_RANGE_WRITE);
  s->kicked = s->bytes;
  if (s->kicked - s->dropped < BEHIND_BYTES + KICK_BYTES)
    return;
  const uint64_t upto = s->kicked - BEHIND_BYTES;
  const off64_t from = s->dropped ? (off64_t)(MAGIC_LEN + s->dropped) : 0;
  (void)posix_fadvise(s->fd, from, (off64_t)(MAGIC_LEN + upto) - from, POSIX_FADV_DONTNEED);
  s->dropped = upto;
#endif
}

int snap__sqlite_stream_write(void *self, snap_backend_stream *s, const void *record, size_t len) {
  sql_backend *b = self;
  if (s->failed)
    return b->host->error(SNAP_EINVAL, "sqlite '%s': the stream of pid '%s' seq %lld failed "
                          "earlier: abort it", b->path, s->pid, (long long)s->seq);
  if (len == 0 || len > SNAP_BACKEND_CHUNK_MAX)
    return b->host->error(len ? SNAP_ETOOBIG : SNAP_EINVAL,
                          "sqlite '%s': a chunk record of %zu bytes (1 to %u allowed)", b->path,
                          len, SNAP_BACKEND_CHUNK_MAX);
  uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 24)};
  struct iovec v[2] = {{hdr, sizeof hdr}, {(void *)record, len}};
  size_t want = sizeof hdr + len, done = 0;
  while (done < want) {
    ssize_t w = writev(s->fd, v, 2);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      s->failed = true;
      return snap__sqlite_stream_io_error(b, w < 0 ? errno : ENOSPC, "write the stream file", s->name);
    }
    done += (size_t)w;
    /* A short write: advance the vectors past what went. */
    size_t skip = (size_t)w;
    for (int i = 0; i < 2; i++) {
      size_t t = skip < v[i].iov_len ? skip : v[i].iov_len;
      v[i].iov_base = (uint8_t *)v[i].iov_base + t;
      v[i].iov_len -= t;
      skip -= t;
    }
  }
  s->bytes += want;
  write_behind(s);
  return SNAP_OK;
}

/* Closes and unlinks the staging file and frees `s`. */
static void discard(sql_backend *b, snap_backend_stream *s, bool unlink_file) {
  char path[PATH_MAX];
  if (unlink_file && file_of(b, s->name, path, sizeof path) == SNAP_OK)
    unlink(path); /* before the lock goes: no sweep races us for it */
  if (s->fd >= 0)
    close(s->fd);
  b->host->free(s->pid);
  b->host->free(s);
}

void snap__sqlite_stream_abort(void *self, snap_backend_stream *s) {
  if (s != NULL)
    discard(self, s, true);
}

/* Checks that the staging is published as what it was begun for, then makes
 * its chunks durable: they are before the row that publishes them commits. */
static int make_durable(sql_backend *b, snap_backend_stream *s, const char *pid, int64_t seq) {
  int e = SNAP_OK;
  if (s->failed)
    e = b->host->error(SNAP_EINVAL, "sqlite '%s': the stream of pid '%s' seq %lld failed "
                       "earlier and is not published", b->path, s->pid, (long long)s->seq);
  else if (strcmp(pid, s->pid) != 0 || seq != s->seq)
    e = b->host->error(SNAP_EINVAL, "sqlite '%s': a stream staged for pid '%s' seq %lld "
                       "published as pid '%s' seq %lld", b->path, s->pid, (long long)s->seq,
                       pid, (long long)seq);
  if (e == SNAP_OK && fdatasync(s->fd) != 0)
    e = snap__sqlite_stream_io_error(b, errno, "sync the stream file", s->name);
  if (e == SNAP_OK)
    e = sync_dir(b);
  return e;
}

int snap__sqlite_stream_publish(void *self, snap_backend_stream *s, snap_backend_row4 *row,
                                uint32_t keep) {
  sql_backend *b = self;
  int e = make_durable(b, s, row->row.pid, row->row.seq);
  if (e == SNAP_OK)
    e = snap__sqlite_put_stream(b, row, keep, s->name);
  if (e != SNAP_OK)
    row->row.status = e;
  /* Stored: the row owns the file, and the lock goes with the descriptor. */
  discard(b, s, e != SNAP_OK);
  return e;
}

int snap__sqlite_stream_replace(void *self, snap_backend_stream *s, snap_backend_swap *w,
                                const char *manifest) {
  sql_backend *b = self;
  w->outcome = SNAP_SWAP_GONE;
  int e = make_durable(b, s, w->pid, w->seq);
  if (e == SNAP_OK)
    e = snap__sqlite_swap_stream(b, w, manifest, s->name);
  w->status = e;
  /* Swapped in: the row owns the file. Left alone or failed: it goes, and
   * it is unlinked before its lock is released, so no sweep races for it. */
  discard(b, s, e != SNAP_OK || w->outcome != SNAP_SWAP_DONE);
  return e;
}

/* ---- reading ------------------------------------------------------------ */

/* The file the row (pid, seq) names, if its body is still `head`. */
static int row_file(sql_backend *b, const char *pid, int64_t seq, const void *head,
                    size_t head_len, char *name, size_t n) {
  sqlite3 *db;
  int token;
  int e = snap__sqlite_reader(b, &db, &token);
  if (e != SNAP_OK)
    return e;
  sqlite3_stmt *q;
  e = snap__sqlite_prepare_tpl(b, db, "SELECT stream, body FROM \"%s\" WHERE pid = ?1 AND "
                               "seq = ?2", &q, "find a stream");
  bool found = false;
  if (e == SNAP_OK) {
    sqlite3_bind_text(q, 1, pid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, seq);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
      const char *f = (const char *)sqlite3_column_text(q, 0);
      const void *body = sqlite3_column_blob(q, 1);
      size_t bl = (size_t)sqlite3_column_bytes(q, 1);
      if (f != NULL && bl == head_len && (bl == 0 || memcmp(body, head, bl) == 0) &&
          strlen(f) < n && strchr(f, '/') == NULL) {
        strcpy(name, f);
        found = true;
      }
    } else if (rc != SQLITE_DONE) {
      e = snap__sqlite_error(b, db, rc, "find a stream");
    }
    sqlite3_finalize(q);
  }
  snap__sqlite_reader_release(b, token);
  if (e == SNAP_OK && !found)
    e = b->host->error(SNAP_ENOTFOUND,
                       "sqlite '%s' table '%s': pid '%s' seq %lld: no streamed snapshot with "
                       "that head (deleted or replaced since it was read)",
                       b->path, b->table, pid, (long long)seq);
  return e;
}

/* Reads exactly `n` bytes: 1 read, 0 a clean end (with `eof_ok`), -1 an I/O
 * error (errno), -2 a short file. */
static int read_full(int fd, void *buf, size_t n, bool eof_ok) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      return (got == 0 && eof_ok) ? 0 : -2;
    got += (size_t)r;
  }
  return 1;
}

struct snap_backend_reader {
  int fd;
  uint8_t *buf;
  size_t cap;
  bool done;
  char name[TABLE_MAX + 64];
};

static int damaged(const sql_backend *b, const char *name, const char *what) {
  return b->host->error(SNAP_ECORRUPT, "sqlite '%s': stream file '%s' %s", b->path, name, what);
}

int snap__sqlite_stream_open(void *self, const char *pid, int64_t seq, const void *head,
                             size_t head_len, snap_backend_reader **out) {
  sql_backend *b = self;
  *out = NULL;
  char path[PATH_MAX];
  snap_backend_reader *r = b->host->malloc(sizeof *r);
  if (r == NULL)
    return b->host->error(SNAP_ENOMEM, "sqlite backend: out of memory");
  memset(r, 0, sizeof *r);
  r->fd = -1;
  int e = snap__sqlite_read_ready(b);
  if (e == SNAP_OK)
    e = row_file(b, pid, seq, head, head_len, r->name, sizeof r->name);
  if (e == SNAP_OK)
    e = file_of(b, r->name, path, sizeof path);
  if (e == SNAP_OK && (r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    e = errno == ENOENT ? b->host->error(SNAP_ENOTFOUND,
                                         "sqlite '%s' table '%s': pid '%s' seq %lld: the "
                                         "streamed snapshot was deleted while it was read",
                                         b->path, b->table, pid, (long long)seq)
                        : snap__sqlite_stream_io_error(b, errno, "open the stream file", path);
  uint8_t magic[MAGIC_LEN];
  if (e == SNAP_OK && (read_full(r->fd, magic, MAGIC_LEN, false) != 1 ||
                       memcmp(magic, MAGIC, MAGIC_LEN) != 0))
    e = damaged(b, r->name, "has no chunk-file header");
  if (e != SNAP_OK) {
    snap__sqlite_stream_close(b, r);
    return e;
  }
  (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  *out = r;
  return SNAP_OK;
}

int snap__sqlite_stream_next(void *self, snap_backend_reader *r, const void **record,
                             size_t *len) {
  sql_backend *b = self;
  *record = NULL;
  *len = 0;
  if (r->done)
    return SNAP_OK;
  uint8_t hdr[4];
  int got = read_full(r->fd, hdr, sizeof hdr, true);
  if (got == 0) {
    r->done = true;
    return SNAP_OK;
  }
  size_t n = got == 1 ? (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 |
                            (size_t)hdr[3] << 24
                      : 0;
  if (got == 1 && (n == 0 || n > SNAP_BACKEND_CHUNK_MAX))
    return damaged(b, r->name, "states a chunk record of an impossible length");
  if (got == 1 && n > r->cap) {
    uint8_t *nb = b->host->realloc(r->buf, n);
    if (nb == NULL)
      return b->host->error(SNAP_ENOMEM, "sqlite backend: out of memory for a chunk");
    r->buf = nb;
    r->cap = n;
  }
  if (got == 1)
    got = read_full(r->fd, r->buf, n, false);
  if (got == -1)
    return snap__sqlite_stream_io_error(b, errno, "read the stream file", r->name);
  if (got != 1)
    return damaged(b, r->name, "is truncated");
  *record = r->buf;
  *len = n;
  return SNAP_OK;
}

void snap__sqlite_stream_close(void *self, snap_backend_reader *r) {
  sql_backend *b = self;
  if (r == NULL)
    return;
  if (r->fd >= 0)
    close(r->fd);
  b->host->free(r->buf);
  b->host->free(r);
}

/* ---- reclaiming --------------------------------------------------------- */

/* Unlinks the files of removed rows ("<table>_dead") and empties the list.
 * On the writer, after a commit; writer lock held. Failures are left for
 * the next drain or sweep. */
void snap__sqlite_streams_drain(sql_backend *b, sqlite3 *db) {
  sqlite3_stmt *q = NULL, *d = NULL;
  if (snap__sqlite_prepare_tpl(b, db, "SELECT name FROM \"%s_dead\" LIMIT 256", &q,
                               "list removed streams") != SNAP_OK)
    return;
  bool any = false;
  while (sqlite3_step(q) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(q, 0);
    char path[PATH_MAX];
    if (name == NULL || strchr(name, '/') != NULL ||
        file_of(b, name, path, sizeof path) != SNAP_OK)
      continue;
    if (unlink(path) == 0 || errno == ENOENT)
      any = true;
  }
  sqlite3_finalize(q);
  if (!any)
    return;
  /* Names whose file is gone leave the list; one small transaction. The
   * statement names the table twice, so it is not one of the one-name
   * templates of snap__sqlite_prepare_tpl(). */
  char sql[256];
  const char *t = snap__sqlite_table(b);
  snprintf(sql, sizeof sql,
           "DELETE FROM \"%s_dead\" WHERE name IN (SELECT name FROM \"%s_dead\" LIMIT 256)", t,
           t);
  if (sqlite3_prepare_v2(db, sql, -1, &d, NULL) == SQLITE_OK)
    (void)sqlite3_step(d);
  sqlite3_finalize(d);
  (void)sync_dir(b);
}

/* Whether a row names `name`. */
static int referenced(sql_backend *b, sqlite3 *db, const char *name, bool *yes) {
  sqlite3_stmt *q;
  int e = snap__sqlite_prepare_tpl(b, db, "SELECT 1 FROM \"%s\" WHERE stream = ?1", &q,
                                   "look up a stream file");
  if (e != SNAP_OK)
    return e;
  sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(q);
  *yes = rc == SQLITE_ROW;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    e = snap__sqlite_error(b, db, rc, "look up a stream file");
  sqlite3_finalize(q);
  return e;
}

/* One candidate: reclaimed when unlocked and unreferenced. 1 reclaimed. */
static int sweep_one(sql_backend *b, sqlite3 *db, const char *name) {
  char path[PATH_MAX];
  if (file_of(b, name, path, sizeof path) != SNAP_OK)
    return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  int got = 0;
  bool yes = true;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0 && referenced(b, db, name, &yes) == SNAP_OK && !yes)
    got = unlink(path) == 0;
  close(fd);
  return got;
}

/* Writer lock held, writer ready, outside a transaction. */
static int sweep_locked(sql_backend *b, uint64_t max, uint64_t *reclaimed) {
  sqlite3 *db = b->writer.db;
  snap__sqlite_streams_drain(b, db);
  char dir[PATH_MAX];
  int e = dir_of(b, dir, sizeof dir);
  if (e != SNAP_OK)
    return e;
  DIR *d = opendir(dir);
  if (d == NULL)
    return errno == ENOENT ? SNAP_OK : snap__sqlite_stream_io_error(b, errno, "list the streams folder", dir);
  size_t tl = strlen(b->table), sl = strlen(SUFFIX);
  struct dirent *de;
  uint64_t n = 0;
  while (n < max && (de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l <= tl + 1 + sl || strncmp(de->d_name, b->table, tl) != 0 || de->d_name[tl] != '.' ||
        strcmp(de->d_name + l - sl, SUFFIX) != 0)
      continue; /* another data set's, or not ours at all */
    n += (uint64_t)sweep_one(b, db, de->d_name);
  }
  closedir(d);
  if (n > 0)
    (void)sync_dir(b);
  if (reclaimed != NULL)
    *reclaimed = n;
  return SNAP_OK;
}

int snap__sqlite_stream_sweep(void *self, uint64_t max, uint64_t *reclaimed) {
  sql_backend *b = self;
  if (reclaimed != NULL)
    *reclaimed = 0;
  pthread_mutex_lock(&b->wlock);
  int e = snap__sqlite_writer_ready(b);
  if (e == SNAP_OK)
    e = sweep_locked(b, max, reclaimed);
  pthread_mutex_unlock(&b->wlock);
  return e;
}

void snap__sqlite_streams_open_sweep(sql_backend *b) {
  (void)sweep_locked(b, OPEN_SWEEP_MAX, NULL);
}
