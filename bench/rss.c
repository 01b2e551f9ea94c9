/*
 * Peak memory of saving then loading one large state. The peak (VmHWM) is a
 * lifetime peak, so each measurement runs in a child process of its own: a
 * fork followed by an exec of this program, so the child starts with none of
 * the parent's pages (the generated states, the SQLite caches of earlier rows).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "cases.h"

static uint8_t *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  struct stat sb;
  uint8_t *buf = NULL;
  if (fd < 0) {
    return NULL;
  }
  if (fstat(fd, &sb) == 0 && sb.st_size > 0 && (buf = malloc((size_t)sb.st_size))) {
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
      ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
      if (r <= 0) {
        free(buf);
        buf = NULL;
        break;
      }
      got += (size_t)r;
    }
    *len = got;
  }
  close(fd);
  return buf;
}

static int child_raw(const uint8_t *state, size_t len, const char *db_path) {
  raw_db r;
  char *pid = "account-000001";
  bench_db_opts o = {1, 0};
  uint8_t *back = NULL;
  size_t back_len = 0;
  int rc = raw_open(&r, db_path, &o);
  if (rc == 0) {
    rc = raw_insert(&r, &pid, 1, 1, 0, 1, 1, state, len, 0);
  }
  if (rc == 0) {
    rc = raw_load_latest(&r, pid, &back, &back_len);
  }
  if (rc != 0) {
    fprintf(stderr, "rss child (baseline): %s\n", raw_error(&r));
  } else if (back_len != len || memcmp(back, state, len) != 0) {
    fprintf(stderr, "rss child (baseline): the loaded state differs\n");
    rc = -1;
  }
  free(back);
  raw_close(&r);
  return rc;
}

static int child_snap(const uint8_t *state, size_t len, const char *db_path, int opt) {
  snap_keyring *kr = NULL;
  snap_options *o = NULL;
  snap_store *st = NULL;
  snap_snapshot *s = NULL;
  uint8_t key[32];
  char cfg[4400];
  const char *what = "setup";
  randombytes_buf(key, sizeof key);
  int rc = snap_keyring_new(&kr);
  if (rc == SNAP_OK) {
    rc = snap_keyring_add(kr, 1, key, sizeof key);
  }
  if (rc == SNAP_OK) {
    rc = snap_options_new(&o);
  }
  if (rc == SNAP_OK) {
    rc = snap_options_set_compression(
        o, (opt & OPT_ZLIB) ? SNAP_COMPRESSION_ZLIB : SNAP_COMPRESSION_NONE,
        (opt & OPT_ZLIB) ? 1 : 0);
  }
  if (rc == SNAP_OK) {
    rc = snap_options_set_encryption(o, (opt & OPT_ENC) ? kr : NULL, BENCH_CONTEXT);
  }
  if (rc == SNAP_OK) {
    store_config(cfg, sizeof cfg, db_path, 1, 0);
    what = "snap_store_open";
    rc = snap_store_open(&st, "sqlite", cfg);
  }
  if (rc == SNAP_OK) {
    what = "snap_save";
    rc = snap_save(st, "account-000001", 1, SNAP_FORMAT_JSON, state, len, o, NULL);
  }
  if (rc == SNAP_OK) {
    what = "snap_load_latest";
    rc = snap_load_latest(st, "account-000001", o, &s);
  }
  if (rc != SNAP_OK) {
    fprintf(stderr, "rss child: %s: %s: %s\n", what, snap_strerror(rc), snap_error_message());
  } else if (!s || s->len != len || memcmp(s->data, state, len) != 0) {
    fprintf(stderr, "rss child: the loaded state differs\n");
    rc = -1;
  }
  snap_snapshot_free(s);
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  return rc == SNAP_OK ? 0 : -1;
}

int rss_child_main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: snap_bench --rss-child snap|raw OPT STATE_PATH DB_PATH\n");
    return 2;
  }
  int raw = strcmp(argv[0], "raw") == 0;
  int opt = atoi(argv[1]) & 3;
  size_t len = 0;
  if (sodium_init() < 0) {
    return 1;
  }
  uint8_t *state = read_file(argv[2], &len);
  if (!state) {
    fprintf(stderr, "rss child: cannot read %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  bench_db_remove(argv[3]);
  int rc = raw ? child_raw(state, len, argv[3]) : child_snap(state, len, argv[3], opt);
  free(state);
  bench_db_remove(argv[3]);
  if (rc != 0) {
    return 1;
  }
  printf("%ld\n", bench_peak_rss_kib());
  return 0;
}

int rss_measure(const bench_ctx *bx, const char *self_exe, const char *state_path, int raw, int opt,
                long *kib, char *err, size_t errcap) {
  int fds[2];
  char optbuf[8], db_path[4096];
  snprintf(optbuf, sizeof optbuf, "%d", opt);
  bench_path(db_path, sizeof db_path, bx->cfg, raw ? "rss-raw.db" : "rss-snap.db");
  if (pipe(fds) != 0) {
    snprintf(err, errcap, "pipe: %s", strerror(errno));
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t child = fork();
  if (child < 0) {
    snprintf(err, errcap, "fork: %s", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (child == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    char *args[] = {"snap_bench", "--rss-child", raw ? "raw" : "snap", optbuf, (char *)state_path,
                    db_path,      NULL};
    execv(self_exe, args);
    fprintf(stderr, "exec %s: %s\n", self_exe, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  char out[64] = {0};
  size_t got = 0;
  ssize_t r;
  while (got < sizeof out - 1 && (r = read(fds[0], out + got, sizeof out - 1 - got)) > 0) {
    got += (size_t)r;
  }
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got == 0) {
    snprintf(err, errcap, "the %s child failed (status %d)", raw ? "baseline" : "snapstore",
             status);
    return -1;
  }
  *kib = atol(out);
  return 0;
}
