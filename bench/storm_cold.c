/*
 * The recovery storm as a restarted service sees it: a fresh process opens
 * the store and loads every pid once. Each side runs in a child of its own (a
 * fork followed by an exec of this program), so neither starts with the
 * parent's SQLite caches, connections, prepared statements or heap; the
 * files may be in the OS page cache, as after a restart of the process alone.
 * The bench's random key goes to the child through a pipe on its stdin.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "cases.h"

/* Options of set `opt` under `kr`, as the parent's context builds them. */
static int child_options(snap_keyring *kr, int opt, snap_options **out) {
  int rc = snap_options_new(out);
  if (rc == SNAP_OK)
    rc = snap_options_set_compression(
        *out, (opt & OPT_ZLIB) ? SNAP_COMPRESSION_ZLIB : SNAP_COMPRESSION_NONE,
        (opt & OPT_ZLIB) ? 1 : 0);
  if (rc == SNAP_OK)
    rc = snap_options_set_encryption(*out, (opt & OPT_ENC) ? kr : NULL, BENCH_CONTEXT);
  return rc;
}

/* Reads the 32-byte key from stdin into guarded memory, then the keyring. */
static int child_keyring(snap_keyring **kr) {
  uint8_t *key = sodium_malloc(32);
  size_t got = 0;
  ssize_t r;
  while (key && got < 32 && (r = read(STDIN_FILENO, key + got, 32 - got)) > 0)
    got += (size_t)r;
  int rc = key && got == 32 ? snap_keyring_new(kr) : SNAP_EINVAL;
  if (rc == SNAP_OK)
    rc = snap_keyring_add(*kr, 1, key, 32);
  sodium_free(key);
  return rc;
}

/* The storm in this fresh process; prints loads per second. */
static int child_storm(const char *mode, int opt, const char *path, int npids, snap_keyring *kr) {
  bench_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  bench_ctx bx;
  memset(&bx, 0, sizeof bx);
  bx.cfg = &cfg;
  bx.kr = kr;
  load_case lc;
  memset(&lc, 0, sizeof lc);
  lc.opt = opt;
  lc.npids = npids;
  char conf[4400], err[200] = "";
  store_config(conf, sizeof conf, path, 0, 0);
  int rc = child_options(kr, opt, &bx.opts[opt]);
  if (rc == SNAP_OK)
    rc = snap_store_open(&lc.st, "sqlite", conf);
  lc.pids = rc == SNAP_OK ? bench_pids_make(npids) : NULL;
  if (!lc.pids) {
    fprintf(stderr, "storm child: setup: %s\n", rc ? snap_error_message() : "out of memory");
    snap_store_close(lc.st);
    snap_options_free(bx.opts[opt]);
    return 1;
  }
  /* The states' length is checked against the first one loaded. */
  snap_snapshot *first = NULL;
  rc = snap_load_latest(lc.st, lc.pids[0], bx.opts[opt], &first);
  lc.len = first ? first->len : 0;
  snap_snapshot_free(first);
  double rate = 0;
  int bad = rc != SNAP_OK || lc.len == 0;
  if (!bad)
    bad = strcmp(mode, "exec") == 0 ? storm_executor(&bx, &lc, 0, &rate, err, sizeof err)
                                    : storm_direct(&bx, &lc, 2, &rate, err, sizeof err);
  if (bad)
    fprintf(stderr, "storm child: %s\n", err[0] ? err : snap_error_message());
  else
    printf("%.3f\n", rate);
  bench_pids_free(lc.pids, npids);
  snap_store_close(lc.st);
  snap_options_free(bx.opts[opt]);
  return bad ? 1 : 0;
}

int storm_child_main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: snap_bench --storm-child exec|direct OPT DB_PATH NPIDS\n");
    return 2;
  }
  snap_keyring *kr = NULL;
  if (sodium_init() < 0 || child_keyring(&kr) != SNAP_OK) {
    fprintf(stderr, "storm child: no key on stdin\n");
    return 1;
  }
  int rc = child_storm(argv[0], atoi(argv[1]) & 3, argv[2], atoi(argv[3]), kr);
  snap_keyring_free(kr);
  return rc;
}

/* Runs one side in a child; its loads per second. */
static int storm_in_child(const bench_ctx *bx, const load_case *lc, const char *mode,
                          double *rate, char *err, size_t errcap) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) {
    snprintf(err, errcap, "pipe: %s", strerror(errno));
    return -1;
  }
  char optbuf[8], nbuf[16];
  snprintf(optbuf, sizeof optbuf, "%d", lc->opt);
  snprintf(nbuf, sizeof nbuf, "%d", lc->npids);
  fflush(stdout);
  fflush(stderr);
  pid_t child = fork();
  if (child == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    char *args[] = {"snap_bench", "--storm-child", (char *)mode, optbuf, (char *)lc->snap_path,
                    nbuf, NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (child > 0 && write(in[1], bx->key, sizeof bx->key) != (ssize_t)sizeof bx->key)
    kill(child, SIGKILL);
  close(in[1]);
  char buf[64] = {0};
  size_t got = 0;
  ssize_t r;
  while (got < sizeof buf - 1 && (r = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
    got += (size_t)r;
  close(out[0]);
  int status = -1;
  if (child > 0)
    waitpid(child, &status, 0);
  if (child < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got == 0) {
    snprintf(err, errcap, "the %s storm child failed (status %d)", mode, status);
    return -1;
  }
  *rate = atof(buf);
  return 0;
}

int storm_cold_executor(const bench_ctx *bx, void *lc, double *rate, char *err, size_t errcap) {
  return storm_in_child(bx, lc, "exec", rate, err, errcap);
}

int storm_cold_direct(const bench_ctx *bx, void *lc, double *rate, char *err, size_t errcap) {
  return storm_in_child(bx, lc, "direct", rate, err, errcap);
}
