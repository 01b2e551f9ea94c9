/*
 * Streamed saves and loads (docs/STREAMS.md) against the disk itself: a
 * streamed save of a JSON state (sqlite, sync=full) against a raw sequential
 * write + fdatasync of the same bytes to a file in the same directory, a
 * streamed load against a raw sequential read of that file, and the peak
 * resident set of a stream save then load (each in a child process of its
 * own, like the other rss rows), on sqlite and on PostgreSQL (a throw-away
 * cluster; rows named "..., postgres"). --quick runs them on 64 MiB; the
 * 16 GiB rows are opt-in (--only stream) and shrink to the largest size the
 * disk has room for, which the report states (--stream-gib N runs them on
 * N GiB, for A/B pairs that take seconds instead of minutes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "runner.h"
#include "snap/store_stream.h"
#ifdef SNAP_WITH_POSTGRES
#include "pg_fixture.h"
#endif

#define PIECE ((size_t)1 << 20)
#define QUICK_SIZE ((uint64_t)64 << 20)
#define FULL_SIZE ((uint64_t)16 << 30)

/* One piece of the state: whole JSON items, repeated. */
static const char item[] = "{\"id\":123456,\"owner\":\"account-000042\",\"balance\":98765.25,"
                           "\"tags\":[\"a\",\"b\"]},";

typedef struct stream_case {
  uint64_t size; /* bytes of state */
  int opt;       /* OPT_PLAIN, OPT_ZLIB, OPT_ZLIB_ENC or STREAM_MAC */
  snap_store *st;
  snap_options *o;
  snap_keyring *kr;
  char db[4096], raw[4096];
  uint8_t *piece;
  size_t piece_len;
  uint64_t pieces; /* "[" + pieces * piece + "0]" */
  int64_t seq;
  int drop; /* the page cache could be dropped before each load side */
} stream_case;

/* The stage combinations of the rss rows: every one item 2 of the streams
 * goal names (plain, zlib, zlib + AEAD, MAC). STREAM_MAC is this file's own
 * option bit: a MAC over the plain chunks. */
#define STREAM_MAC 8
#define STREAM_OPT_MASK (OPT_ZLIB | OPT_ENC | STREAM_MAC)
static const int rss_opts[] = {OPT_PLAIN, OPT_ZLIB_ENC, OPT_ZLIB, STREAM_MAC};
#define RSS_OPTS (sizeof rss_opts / sizeof rss_opts[0])

static const char *stream_label(int opt) { return opt == STREAM_MAC ? "MAC" : opt_label(opt); }

static uint64_t state_len(const stream_case *c) { return 1 + c->pieces * c->piece_len + 2; }

static double mib_per_s(uint64_t bytes, double seconds) {
  return seconds > 0 ? (double)bytes / (1024.0 * 1024.0) / seconds : 0;
}

/* Writes the page cache back and drops it, where this process may. */
static int drop_caches(void) {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0)
    return 0;
  int ok = write(fd, "3", 1) == 1;
  close(fd);
  return ok;
}

static int save_side(const bench_ctx *bx, void *vc, double *v, char *err, size_t cap) {
  (void)bx;
  stream_case *c = vc;
  double t0 = bench_now();
  snap_save_stream *w = NULL;
  int rc = snap_save_stream_begin(c->st, "account-000001", ++c->seq, SNAP_TIMESTAMP_AUTO,
                                  SNAP_FORMAT_JSON, c->o, NULL, 0, &w);
  if (rc == SNAP_OK)
    rc = snap_save_stream_write(w, "[", 1);
  for (uint64_t i = 0; rc == SNAP_OK && i < c->pieces; i++)
    rc = snap_save_stream_write(w, c->piece, c->piece_len);
  if (rc == SNAP_OK)
    rc = snap_save_stream_write(w, "0]", 2);
  if (rc == SNAP_OK)
    rc = snap_save_stream_commit(w, NULL);
  else
    snap_save_stream_abort(w);
  if (rc != SNAP_OK) {
    snprintf(err, cap, "stream save: %s", snap_error_message());
    return -1;
  }
  *v = mib_per_s(state_len(c), bench_now() - t0);
  return 0;
}

static int write_all(int fd, const void *p, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, (const uint8_t *)p + done, n - done);
    if (w <= 0)
      return -1;
    done += (size_t)w;
  }
  return 0;
}

static int raw_write_side(const bench_ctx *bx, void *vc, double *v, char *err, size_t cap) {
  (void)bx;
  stream_case *c = vc;
  double t0 = bench_now();
  int fd = open(c->raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int rc = fd < 0 ? -1 : write_all(fd, "[", 1);
  for (uint64_t i = 0; rc == 0 && i < c->pieces; i++)
    rc = write_all(fd, c->piece, c->piece_len);
  if (rc == 0)
    rc = write_all(fd, "0]", 2);
  if (rc == 0)
    rc = fdatasync(fd);
  if (fd >= 0)
    close(fd);
  if (rc != 0) {
    snprintf(err, cap, "raw write %s: %s", c->raw, strerror(errno));
    return -1;
  }
  *v = mib_per_s(state_len(c), bench_now() - t0);
  return 0;
}

static int load_side(const bench_ctx *bx, void *vc, double *v, char *err, size_t cap) {
  (void)bx;
  stream_case *c = vc;
  if (c->drop)
    drop_caches();
  uint8_t *buf = malloc(PIECE);
  double t0 = bench_now();
  snap_load_stream *r = NULL;
  int rc = buf ? snap_load_stream_open(c->st, "account-000001", &SNAP_CRITERIA_LATEST, c->o, 0,
                                       &r, NULL)
               : SNAP_ENOMEM;
  uint64_t total = 0;
  size_t got = 1;
  while (rc == SNAP_OK && r != NULL && got > 0) {
    rc = snap_load_stream_read(r, buf, PIECE, &got);
    total += got;
  }
  snap_load_stream_close(r);
  free(buf);
  if (rc != SNAP_OK || total != state_len(c)) {
    snprintf(err, cap, "stream load: %s", rc ? snap_error_message() : "short state");
    return -1;
  }
  *v = mib_per_s(total, bench_now() - t0);
  return 0;
}

static int raw_read_side(const bench_ctx *bx, void *vc, double *v, char *err, size_t cap) {
  (void)bx;
  stream_case *c = vc;
  if (c->drop)
    drop_caches();
  uint8_t *buf = malloc(PIECE);
  double t0 = bench_now();
  int fd = open(c->raw, O_RDONLY);
  uint64_t total = 0;
  ssize_t n = 1;
  while (fd >= 0 && buf && (n = read(fd, buf, PIECE)) > 0)
    total += (uint64_t)n;
  if (fd >= 0)
    close(fd);
  free(buf);
  if (fd < 0 || n < 0 || total != state_len(c)) {
    snprintf(err, cap, "raw read %s: %s", c->raw, fd < 0 || n < 0 ? strerror(errno) : "short");
    return -1;
  }
  *v = mib_per_s(total, bench_now() - t0);
  return 0;
}

/* The options of a row: plain, or zlib-1 + AEAD under a random key. */
static int case_options(stream_case *c) {
  uint8_t key[32];
  randombytes_buf(key, sizeof key);
  int rc = snap_keyring_new(&c->kr);
  if (rc == SNAP_OK)
    rc = snap_keyring_add(c->kr, 1, key, sizeof key);
  if (rc == SNAP_OK)
    rc = snap_options_new(&c->o);
  if (rc == SNAP_OK && (c->opt & OPT_ZLIB))
    rc = snap_options_set_compression(c->o, SNAP_COMPRESSION_ZLIB, 1);
  if (rc == SNAP_OK && (c->opt & OPT_ENC))
    rc = snap_options_set_encryption(c->o, c->kr, BENCH_CONTEXT);
  if (rc == SNAP_OK && (c->opt & STREAM_MAC))
    rc = snap_options_set_integrity(c->o, c->kr, BENCH_CONTEXT);
  sodium_memzero(key, sizeof key);
  return rc;
}

/* A row's store: sqlite in the bench directory, or postgres over
 * `conninfo` (not NULL) with no statement timeout (a 16 GiB segment of
 * staging can take longer than the default). Retention 1 either way. */
static int case_open(stream_case *c, const bench_ctx *bx, uint64_t size, int opt,
                     const char *conninfo) {
  memset(c, 0, sizeof *c);
  c->opt = opt;
  c->drop = drop_caches();
  c->piece_len = (PIECE / (sizeof item - 1)) * (sizeof item - 1);
  c->pieces = (size - 3) / c->piece_len;
  c->piece = malloc(c->piece_len);
  if (c->piece == NULL)
    return -1;
  for (size_t i = 0; i < c->piece_len; i += sizeof item - 1)
    memcpy(c->piece + i, item, sizeof item - 1);
  bench_path(c->db, sizeof c->db, bx->cfg, "stream.db");
  bench_path(c->raw, sizeof c->raw, bx->cfg, "stream-raw.json");
  bench_db_remove(c->db);
  char cfg[4400];
  if (conninfo != NULL)
    snprintf(cfg, sizeof cfg, "{\"conninfo\": \"%s\", \"keep\": 1, \"statement_timeout_ms\": 0}",
             conninfo);
  else
    store_config(cfg, sizeof cfg, c->db, 1, 1);
  if (case_options(c) != SNAP_OK ||
      snap_store_open(&c->st, conninfo ? "postgres" : "sqlite", cfg) != SNAP_OK)
    return -1;
  return 0;
}

static void case_close(stream_case *c) {
  /* Deleted through the store, so the chunks go too: removing the database
   * alone left the chunk files of its streamed rows (16 GiB a row). */
  if (c->st != NULL)
    (void)snap_delete(c->st, "account-000001", INT64_MAX);
  snap_store_close(c->st);
  snap_options_free(c->o);
  snap_keyring_free(c->kr);
  free(c->piece);
  bench_db_remove(c->db);
  char side[4200];
  snprintf(side, sizeof side, "%s.streams", c->db);
  rmdir(side);
  unlink(c->raw);
}

/* The size the rows run at: 64 MiB quick; 16 GiB when asked for, or the
 * largest whole GiB that the disk holds three times over (the raw file, the
 * stream, and the next stream before retention drops the previous one). */
static uint64_t rows_size(const runner *rn, char *about, size_t cap) {
  if (rn->bx->cfg->quick)
    return QUICK_SIZE;
  if (rn->bx->cfg->stream_gib == 0 && (rn->only == NULL || strstr(rn->only, "stream") == NULL)) {
    snprintf(about, cap, "not run: the 16 GiB stream rows are opt-in (--only stream or "
             "--stream-gib N)");
    return 0;
  }
  struct statvfs vs;
  uint64_t size = rn->bx->cfg->stream_gib > 0 ? (uint64_t)rn->bx->cfg->stream_gib << 30 : FULL_SIZE;
  if (statvfs(rn->bx->cfg->dir, &vs) == 0) {
    uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
    while (size > ((uint64_t)1 << 30) && size * 3 + ((uint64_t)1 << 30) > avail)
      size -= (uint64_t)1 << 30;
  }
  return size;
}

static void throughput_rows(runner *rn, uint64_t size) {
  static const int opts[] = {OPT_PLAIN, OPT_ZLIB_ENC};
  for (int i = 0; i < 2; i++) {
    char save_name[96], load_name[96];
    snprintf(save_name, sizeof save_name, "16 GiB JSON, %s, sync=full", opt_label(opts[i]));
    snprintf(load_name, sizeof load_name, "16 GiB JSON, %s, load", opt_label(opts[i]));
    if (!wanted(rn, "stream", save_name) && !wanted(rn, "stream", load_name))
      continue;
    stream_case c;
    if (case_open(&c, rn->bx, size, opts[i], NULL) != 0) {
      bench_row *row = bench_row_add(rn->report, "stream", save_name, "", "MiB/s", KIND_RATE);
      if (row)
        bench_row_fail(row, "setup: %s", snap_error_message());
      rn->failures++;
      case_close(&c);
      continue;
    }
    run_row(rn, "stream", save_name, "raw sequential write + fdatasync", "MiB/s", KIND_RATE,
            save_side, &c, raw_write_side, &c);
    /* A load row run alone (--only "=...load") reads what an untimed save
     * of the same case wrote. */
    double unused;
    char serr[256] = "";
    if (!wanted(rn, "stream", save_name) && wanted(rn, "stream", load_name) &&
        (save_side(rn->bx, &c, &unused, serr, sizeof serr) != 0 ||
         raw_write_side(rn->bx, &c, &unused, serr, sizeof serr) != 0))
      fprintf(stderr, "snap_bench: the save before %s: %s\n", load_name, serr);
    run_row(rn, "stream", load_name, "raw sequential read", "MiB/s", KIND_RATE, load_side, &c,
            raw_read_side, &c);
    case_close(&c);
  }
}

/* ---- peak RSS, in a child process each -------------------------------------- */

/* The child: "snap OPT SIZE DIR" streams a save then a load (sqlite in
 * DIR; "snap OPT SIZE DIR CONNINFO": postgres); "raw OPT SIZE DIR" writes
 * then reads a file. Prints its peak RSS in KiB. */
int stream_child_main(int argc, char **argv) {
  if (argc != 4 && argc != 5)
    return 2;
  if (sodium_init() < 0)
    return 1;
  bench_cfg cfg = {0};
  bench_ctx bx = {0};
  bx.cfg = &cfg;
  stream_case c;
  uint64_t size = strtoull(argv[2], NULL, 10);
  int raw = strcmp(argv[0], "raw") == 0;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", argv[3]);
  cfg.dir = dir;
  double v = 0;
  char err[256] = "";
  int rc = case_open(&c, &bx, size, atoi(argv[1]) & STREAM_OPT_MASK, argc == 5 ? argv[4] : NULL);
  if (rc == 0)
    rc = raw ? raw_write_side(&bx, &c, &v, err, sizeof err) : save_side(&bx, &c, &v, err, sizeof err);
  if (rc == 0)
    rc = raw ? raw_read_side(&bx, &c, &v, err, sizeof err) : load_side(&bx, &c, &v, err, sizeof err);
  case_close(&c);
  if (rc != 0) {
    fprintf(stderr, "stream child: %s\n", err);
    return 1;
  }
  printf("%ld\n", bench_peak_rss_kib());
  return 0;
}

static int child_rss(const runner *rn, int raw, int opt, uint64_t size, const char *conninfo,
                     long *kib, char *err, size_t cap) {
  int fds[2];
  char optbuf[8], sizebuf[32], dir[4096];
  snprintf(optbuf, sizeof optbuf, "%d", opt);
  snprintf(sizebuf, sizeof sizebuf, "%llu", (unsigned long long)size);
  snprintf(dir, sizeof dir, "%s", rn->bx->cfg->dir);
  if (pipe(fds) != 0) {
    snprintf(err, cap, "pipe: %s", strerror(errno));
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t child = fork();
  if (child == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    char *args[] = {"snap_bench", "--stream-child", raw ? "raw" : "snap", optbuf, sizebuf, dir,
                    raw ? NULL : (char *)conninfo, NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  close(fds[1]);
  char out[64] = {0};
  size_t got = 0;
  ssize_t r;
  while (child > 0 && got < sizeof out - 1 && (r = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
    got += (size_t)r;
  close(fds[0]);
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0 || got == 0) {
    snprintf(err, cap, "the %s child failed (status %d)", raw ? "baseline" : "snapstore", status);
    return -1;
  }
  *kib = atol(out);
  return 0;
}

/* The rss rows of one backend: sqlite (`conninfo` NULL) or postgres, whose
 * case names end in ", postgres". */
static void rss_rows_on(runner *rn, uint64_t size, const char *conninfo) {
  for (size_t i = 0; i < RSS_OPTS; i++) {
    char name[96], err[256] = "";
    snprintf(name, sizeof name, "16 GiB JSON, %s, stream save then load%s",
             stream_label(rss_opts[i]), conninfo ? ", postgres" : "");
    if (!wanted(rn, "rss", name))
      continue;
    bench_row *row = bench_row_add(rn->report, "rss", name,
                                   "raw write + read through a 1 MiB buffer", "KiB peak",
                                   KIND_SIZE);
    if (row == NULL) {
      rn->failures++;
      return;
    }
    long a = 0, b = 0;
    if (child_rss(rn, 0, rss_opts[i], size, conninfo, &a, err, sizeof err) != 0 ||
        child_rss(rn, 1, rss_opts[i], size, NULL, &b, err, sizeof err) != 0) {
      bench_row_fail(row, "%s", err);
      rn->failures++;
      continue;
    }
    bench_row_record(row, (double)a, (double)b);
    progress(row);
  }
}

/* Whether an rss row of the backend is wanted (`postgres`: its rows). */
static bool rss_wanted(const runner *rn, bool postgres) {
  bool any = false;
  for (size_t i = 0; i < RSS_OPTS; i++) {
    char name[96];
    snprintf(name, sizeof name, "16 GiB JSON, %s, stream save then load%s",
             stream_label(rss_opts[i]), postgres ? ", postgres" : "");
    any |= wanted(rn, "rss", name) != 0;
  }
  return any;
}

static void rss_stream_rows(runner *rn, uint64_t size) {
  rss_rows_on(rn, size, NULL);
#ifdef SNAP_WITH_POSTGRES
  if (!rss_wanted(rn, true))
    return;
  pgfx fx;
  char why[512], ci[512];
  if (pgfx_start(&fx, 1, why, sizeof why) != 0) {
    bench_row *row = bench_row_add(rn->report, "rss",
                                   "16 GiB JSON, plain, stream save then load, postgres", "",
                                   "KiB peak", KIND_SIZE);
    if (row != NULL)
      bench_row_fail(row, "no PostgreSQL cluster: %s", why);
    rn->failures++;
    return;
  }
  pgfx_conninfo(&fx, 0, ci, sizeof ci);
  rss_rows_on(rn, size, ci);
  pgfx_destroy(&fx);
#endif
}

void stream_rows(runner *rn, char *about, size_t cap) {
  about[0] = 0;
  static const char *const rows[] = {"16 GiB JSON, plain, sync=full", "16 GiB JSON, plain, load",
                                     "16 GiB JSON, zlib-1+enc, sync=full",
                                     "16 GiB JSON, zlib-1+enc, load"};
  bool any = rss_wanted(rn, false) || rss_wanted(rn, true);
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    any |= wanted(rn, "stream", rows[i]) != 0;
  if (!any)
    return;
  uint64_t size = rows_size(rn, about, cap);
  if (size == 0)
    return;
  int dropped = drop_caches();
  snprintf(about, cap,
           "the \"16 GiB\" rows ran on %.0f MiB of JSON%s; load sides %s",
           (double)size / (1024.0 * 1024.0),
           size == FULL_SIZE            ? ""
           : rn->bx->cfg->quick         ? " (--quick)"
           : rn->bx->cfg->stream_gib    ? " (--stream-gib)"
                                        : " (what the disk had room for)",
           dropped ? "read with the page cache dropped before each side"
                   : "read warm (the page cache could not be dropped)");
  fprintf(stderr, "snap_bench: stream rows: %s\n", about);
  throughput_rows(rn, size);
  rss_stream_rows(rn, size);
}
