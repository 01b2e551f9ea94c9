/*
 * Where the sqlite backend keeps the chunks of streamed snapshots, decided by
 * measurement (docs/STREAMS.md, "Why files, measured").
 *
 * Writes SIZE MiB (default 1024) of 1 MiB chunks durably, four ways, on the
 * disk of DIR, and prints each one's time against a raw sequential write +
 * fdatasync of the same bytes:
 *   - a file beside the database, published by a row (what the backend does);
 *   - a side table in a WAL database, synchronous=FULL, 16 and 64 chunks per
 *     transaction, then the checkpoint that copies them into the database
 *     (the WAL writes every byte twice);
 *   - a side database with journal_mode=OFF, synchronous=FULL, 16 chunks per
 *     transaction;
 * then reads the raw file and a side table back with the page cache dropped
 * (when this process may drop it; warm otherwise, and it says which).
 *
 * usage: snap_stream_storage [SIZE_MIB] [DIR]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#define CHUNK (1u << 20)

static long mib = 1024;
static const char *dir = "stream-storage.tmp";
static uint8_t *chunk;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "stream_storage: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void path_of(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
}

static void write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      die("write");
    b += w;
    n -= (size_t)w;
  }
}

static bool drop_caches(void) {
  sync();
  FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
  if (!f)
    return false;
  bool ok = fputs("3", f) >= 0;
  return fclose(f) == 0 && ok;
}

static void exec_sql(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "stream_storage: %s: %s\n", sql, msg ? msg : "?");
    exit(1);
  }
}

static sqlite3 *open_db(const char *name, const char *journal) {
  char path[4096], sql[96];
  path_of(path, sizeof path, name);
  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    fprintf(stderr, "stream_storage: open %s: %s\n", path, sqlite3_errmsg(db));
    exit(1);
  }
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal);
  exec_sql(db, sql);
  exec_sql(db, "PRAGMA synchronous=FULL");
  return db;
}

static long long size_of(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

static double raw_write(void) {
  char path[4096];
  path_of(path, sizeof path, "raw");
  double t = now();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    die("open raw");
  for (long i = 0; i < mib; i++)
    write_all(fd, chunk, CHUNK);
  if (fdatasync(fd) != 0)
    die("fdatasync raw");
  close(fd);
  return now() - t;
}

/* The chunks framed by a length in a file, made durable with its directory
 * entry, then the row that publishes it. The WAL's size after it. */
static double file_beside(long long *wal) {
  sqlite3 *db = open_db("f.db", "wal");
  exec_sql(db, "CREATE TABLE IF NOT EXISTS s(pid TEXT, seq INT, stream TEXT, body BLOB)");
  char side[4096], file[4200], walp[4096];
  path_of(side, sizeof side, "f.db.streams");
  if (mkdir(side, 0755) != 0 && errno != EEXIST)
    die("mkdir");
  snprintf(file, sizeof file, "%s/x", side);
  double t = now();
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    die("open chunk file");
  uint8_t len[4] = {0, 0, 0x10, 0}; /* 1 MiB, little-endian */
  for (long i = 0; i < mib; i++) {
    write_all(fd, len, sizeof len);
    write_all(fd, chunk, CHUNK);
  }
  if (fdatasync(fd) != 0)
    die("fdatasync chunk file");
  close(fd);
  int dfd = open(side, O_RDONLY | O_DIRECTORY);
  if (dfd < 0 || fsync(dfd) != 0)
    die("fsync directory");
  close(dfd);
  exec_sql(db, "INSERT INTO s VALUES('p', 1, 'x', x'00')");
  double el = now() - t;
  path_of(walp, sizeof walp, "f.db-wal");
  *wal = size_of(walp);
  sqlite3_close(db);
  return el;
}

/* The chunks as rows of a side table, `per_txn` to a transaction. The WAL's
 * largest size after a commit. */
static double side_table(const char *name, int per_txn, const char *journal, long long *peak) {
  sqlite3 *db = open_db(name, journal);
  exec_sql(db, "CREATE TABLE c(pid TEXT, seq INT, n INT, data BLOB, PRIMARY KEY(pid, seq, n))");
  sqlite3_stmt *ins = NULL;
  if (sqlite3_prepare_v2(db, "INSERT INTO c VALUES('p', 1, ?1, ?2)", -1, &ins, NULL) != SQLITE_OK)
    die("prepare");
  char walp[4096], wname[256];
  snprintf(wname, sizeof wname, "%s-wal", name);
  path_of(walp, sizeof walp, wname);
  *peak = 0;
  double t = now();
  for (long i = 0; i < mib; i++) {
    if (i % per_txn == 0)
      exec_sql(db, "BEGIN");
    sqlite3_bind_int64(ins, 1, i);
    sqlite3_bind_blob(ins, 2, chunk, CHUNK, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) {
      fprintf(stderr, "stream_storage: insert: %s\n", sqlite3_errmsg(db));
      exit(1);
    }
    sqlite3_reset(ins);
    if (i % per_txn == per_txn - 1) {
      exec_sql(db, "COMMIT");
      long long w = size_of(walp);
      *peak = w > *peak ? w : *peak;
    }
  }
  if (!sqlite3_get_autocommit(db))
    exec_sql(db, "COMMIT");
  if (strcmp(journal, "wal") == 0)
    exec_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  double el = now() - t;
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return el;
}

static double read_raw(void) {
  char path[4096];
  path_of(path, sizeof path, "raw");
  double t = now();
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    die("open raw");
  ssize_t n;
  while ((n = read(fd, chunk, CHUNK)) > 0)
    ;
  if (n < 0)
    die("read raw");
  close(fd);
  return now() - t;
}

static double read_side_table(void) {
  char path[4096];
  path_of(path, sizeof path, "wal16.db");
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  double t = now();
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT data FROM c WHERE pid = 'p' AND seq = 1 ORDER BY n", -1, &q,
                         NULL) != SQLITE_OK) {
    fprintf(stderr, "stream_storage: read back: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
  while (sqlite3_step(q) == SQLITE_ROW)
    (void)sqlite3_column_blob(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return now() - t;
}

static void remove_dir(void) {
  static const char *names[] = {"raw",      "f.db",      "f.db-wal",   "f.db-shm",
                                "wal16.db", "wal16.db-wal", "wal16.db-shm", "wal64.db",
                                "wal64.db-wal", "wal64.db-shm", "off.db", "f.db.streams/x"};
  char path[4096];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    path_of(path, sizeof path, names[i]);
    unlink(path);
  }
  path_of(path, sizeof path, "f.db.streams");
  rmdir(path);
  rmdir(dir);
}

int main(int argc, char **argv) {
  if (argc > 1 && (mib = strtol(argv[1], NULL, 10)) <= 0) {
    fprintf(stderr, "usage: snap_stream_storage [SIZE_MIB] [DIR]\n");
    return 2;
  }
  if (argc > 2)
    dir = argv[2];
  if (sodium_init() < 0 || !(chunk = malloc(CHUNK)))
    die("init");
  randombytes_buf(chunk, CHUNK);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    die("mkdir");
  double raw = raw_write();
  printf("raw write + fdatasync, %ld MiB: %.2f s (%.0f MiB/s)\n", mib, raw, (double)mib / raw);
  long long wal = 0, peak = 0;
  double el = file_beside(&wal);
  printf("file beside the database: %.2f s, ratio %.2f, WAL %lld bytes\n", el, raw / el, wal);
  static const int per[] = {16, 64};
  for (int i = 0; i < 2; i++) {
    char name[32];
    snprintf(name, sizeof name, "wal%d.db", per[i]);
    el = side_table(name, per[i], "wal", &peak);
    printf("side table, WAL, %d chunks per transaction, with the checkpoint: %.2f s, ratio "
           "%.2f, peak WAL %lld MiB\n",
           per[i], el, raw / el, peak >> 20);
  }
  el = side_table("off.db", 16, "off", &peak);
  printf("side database, journal_mode=OFF, 16 chunks per transaction: %.2f s, ratio %.2f\n", el,
         raw / el);
  bool dropped = drop_caches();
  double rr = read_raw();
  drop_caches();
  double rs = read_side_table();
  printf("read back (%s): raw %.2f s, side table %.2f s, ratio %.2f\n",
         dropped ? "page cache dropped" : "warm", rr, rs, rr / rs);
  remove_dir();
  free(chunk);
  return 0;
}
