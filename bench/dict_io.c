/*
 * Synchronous saves and loads of the small-state corpus (dict.h): snapstore
 * storing zstd-3 + dictionary + encryption bodies against raw SQLite storing
 * the same states uncompressed, the i-th save of each side writing the same
 * state to the same pid and seq.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"

static int io_fail(char *err, size_t errcap, const char *what, int rc) {
  snprintf(err, errcap, "%s: %s: %s", what, snap_strerror(rc), snap_error_message());
  return -1;
}

/* Measured state number k (cycling). */
static unsigned state_of(long k) { return CORPUS_TRAIN + (unsigned)(k % (CORPUS_N - CORPUS_TRAIN)); }

/* Opens a store on `path` holding the corpus's dictionary, with the options
 * of the rows (zstd-3, that dictionary by id, encryption). */
static int open_dict_store(const bench_ctx *bx, corpus_io *io, const char *path, char *err,
                           size_t errcap) {
  char cfg[4400];
  store_config(cfg, sizeof cfg, path, 1, 0);
  int rc = snap_store_open(&io->st, "sqlite", cfg);
  if (rc != SNAP_OK)
    return io_fail(err, errcap, "snap_store_open", rc);
  size_t dlen = 0;
  const void *d = snap_dict_bytes(io->c->dict, &dlen);
  uint32_t id = 0;
  if ((rc = snap_store_dict_add(io->st, "accounts", d, dlen, &id)) != SNAP_OK)
    return io_fail(err, errcap, "snap_store_dict_add", rc);
  if ((rc = snap_options_new(&io->o)) != SNAP_OK ||
      (rc = snap_options_set_compression(io->o, SNAP_COMPRESSION_ZSTD, 3)) != SNAP_OK ||
      (rc = snap_options_set_dictionary(io->o, id, NULL)) != SNAP_OK ||
      (rc = snap_options_set_encryption(io->o, bx->kr, BENCH_CONTEXT)) != SNAP_OK)
    return io_fail(err, errcap, "options", rc);
  return 0;
}

static void close_dict_store(corpus_io *io) {
  snap_store_close(io->st);
  snap_options_free(io->o);
  io->st = NULL;
  io->o = NULL;
}

static int ensure_pids(corpus_io *io, char *err, size_t errcap) {
  if (!io->pids && !(io->pids = bench_pids_make(io->npids))) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  return 0;
}

int corpus_save_snap(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap) {
  corpus_io *io = c;
  char path[4096];
  bench_path(path, sizeof path, bx->cfg, "save-corpus.db");
  bench_db_remove(path);
  int rc = ensure_pids(io, err, errcap) || open_dict_store(bx, io, path, err, errcap) ? -1 : 0;
  long n = 0;
  for (int p = 0; rc == 0 && p < io->npids; p++, n++) {
    unsigned s = state_of(n);
    int r = snap_save(io->st, io->pids[p], 0, io->c->fmt, io->c->buf + io->c->off[s], io->c->len[s],
                      io->o, NULL);
    if (r != SNAP_OK)
      rc = io_fail(err, errcap, "snap_save (warm-up)", r);
  }
  long k = 0;
  double t0 = bench_now(), el = 0;
  while (rc == 0 && (k == 0 || el < bx->cfg->save_seconds)) {
    unsigned s = state_of(n + k);
    int r = snap_save(io->st, io->pids[k % io->npids], 1 + k / io->npids, io->c->fmt,
                      io->c->buf + io->c->off[s], io->c->len[s], io->o, NULL);
    if (r != SNAP_OK)
      rc = io_fail(err, errcap, "snap_save", r);
    k++;
    el = bench_now() - t0;
  }
  if (rc == 0)
    *rate = (double)k / el;
  close_dict_store(io);
  bench_db_remove(path);
  return rc;
}

int corpus_save_raw(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap) {
  corpus_io *io = c;
  char path[4096];
  raw_db r;
  bench_path(path, sizeof path, bx->cfg, "save-corpus-raw.db");
  bench_db_remove(path);
  bench_db_opts o = {1, 1};
  int rc = ensure_pids(io, err, errcap);
  if (rc == 0 && raw_open(&r, path, &o) != 0) {
    snprintf(err, errcap, "baseline open: %s", raw_error(&r));
    raw_close(&r);
    rc = -1;
  }
  if (rc != 0)
    return -1;
  long n = 0;
  for (; rc == 0 && n < io->npids; n++) {
    unsigned s = state_of(n);
    rc = raw_insert(&r, io->pids, io->npids, 0, n, 1, 1, io->c->buf + io->c->off[s], io->c->len[s], 0);
  }
  long k = 0;
  double t0 = bench_now(), el = 0;
  while (rc == 0 && (k == 0 || el < bx->cfg->save_seconds)) {
    unsigned s = state_of(n + k);
    rc = raw_insert(&r, io->pids, io->npids, 1, k, 1, 1, io->c->buf + io->c->off[s], io->c->len[s], 0);
    k++;
    el = bench_now() - t0;
  }
  if (rc != 0)
    snprintf(err, errcap, "baseline insert: %s", raw_error(&r));
  else
    *rate = (double)k / el;
  raw_close(&r);
  bench_db_remove(path);
  return rc;
}

/* The state of snapshot `seq` of pid number p in the load databases. */
static unsigned load_state(int p, int64_t seq, int npids) { return state_of((long)seq * npids + p); }

static int fill_snap(corpus_io *io, char *err, size_t errcap) {
  enum { CHUNK = 500 };
  snap_save_req reqs[CHUNK];
  int status[CHUNK];
  long total = (long)LOAD_SNAPSHOTS * io->npids;
  for (long first = 0; first < total; first += CHUNK) {
    size_t n = 0;
    memset(reqs, 0, sizeof reqs);
    for (long i = first; i < total && n < CHUNK; i++, n++) {
      unsigned s = load_state((int)(i % io->npids), i / io->npids, io->npids);
      reqs[n].pid = io->pids[i % io->npids];
      reqs[n].seq = i / io->npids;
      reqs[n].timestamp = SNAP_TIMESTAMP_AUTO;
      reqs[n].format = io->c->fmt;
      reqs[n].state = io->c->buf + io->c->off[s];
      reqs[n].len = io->c->len[s];
      reqs[n].options = io->o;
    }
    int rc = snap_save_batch(io->st, reqs, n, status, NULL);
    if (rc != SNAP_OK)
      return io_fail(err, errcap, "snap_save_batch (load setup)", rc);
  }
  return 0;
}

int corpus_io_load_setup(const bench_ctx *bx, corpus_io *io, char *err, size_t errcap) {
  bench_path(io->snap_path, sizeof io->snap_path, bx->cfg, "load-corpus.db");
  bench_path(io->raw_path, sizeof io->raw_path, bx->cfg, "load-corpus-raw.db");
  bench_db_remove(io->snap_path);
  bench_db_remove(io->raw_path);
  bench_db_opts o = {0, 1};
  if (ensure_pids(io, err, errcap) || open_dict_store(bx, io, io->snap_path, err, errcap) ||
      fill_snap(io, err, errcap))
    return -1;
  io->raw_open = 1;
  if (raw_open(&io->raw, io->raw_path, &o) != 0) {
    snprintf(err, errcap, "baseline open: %s", raw_error(&io->raw));
    return -1;
  }
  for (long i = 0; i < (long)LOAD_SNAPSHOTS * io->npids; i++) {
    unsigned s = load_state((int)(i % io->npids), i / io->npids, io->npids);
    if (raw_insert(&io->raw, io->pids, io->npids, 0, i, 1, 1, io->c->buf + io->c->off[s],
                   io->c->len[s], 0) != 0) {
      snprintf(err, errcap, "baseline setup: %s", raw_error(&io->raw));
      return -1;
    }
  }
  /* One pass over every pid on both sides: the warm cache of the load rows. */
  bench_cfg warm;
  bench_ctx wx;
  double rate;
  bench_warm_ctx(bx, &warm, &wx);
  return corpus_load_snap(&wx, io, &rate, err, errcap) || corpus_load_raw(&wx, io, &rate, err, errcap)
             ? -1
             : 0;
}

int corpus_load_snap(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap) {
  corpus_io *io = c;
  long n = 0;
  double t0 = bench_now(), el = 0;
  do {
    int p = load_pid_index(n, io->npids);
    unsigned s = load_state(p, LOAD_SNAPSHOTS - 1, io->npids);
    snap_snapshot *snap = NULL;
    int rc = snap_load_latest(io->st, io->pids[p], io->o, &snap);
    if (rc != SNAP_OK)
      return io_fail(err, errcap, "snap_load_latest", rc);
    int same = snap && snap->len == io->c->len[s] &&
               memcmp(snap->data, io->c->buf + io->c->off[s], snap->len) == 0;
    snap_snapshot_free(snap);
    if (!same) {
      snprintf(err, errcap, "snap_load_latest(%s) returned another state", io->pids[p]);
      return -1;
    }
    n++;
    el = bench_now() - t0;
  } while (el < bx->cfg->load_seconds || n < io->npids);
  *rate = (double)n / el;
  return 0;
}

int corpus_load_raw(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap) {
  corpus_io *io = c;
  long n = 0;
  double t0 = bench_now(), el = 0;
  do {
    int p = load_pid_index(n, io->npids);
    unsigned s = load_state(p, LOAD_SNAPSHOTS - 1, io->npids);
    uint8_t *out = NULL;
    size_t len = 0;
    if (raw_load_latest(&io->raw, io->pids[p], &out, &len) != 0) {
      snprintf(err, errcap, "baseline load: %s", raw_error(&io->raw));
      return -1;
    }
    /* The same check as the snapstore side: each side pays for reading the
     * expected state back from the corpus. */
    int same = out && len == io->c->len[s] && memcmp(out, io->c->buf + io->c->off[s], len) == 0;
    free(out);
    if (!same) {
      snprintf(err, errcap, "baseline load of %s returned another state", io->pids[p]);
      return -1;
    }
    n++;
    el = bench_now() - t0;
  } while (el < bx->cfg->load_seconds || n < io->npids);
  *rate = (double)n / el;
  return 0;
}

void corpus_io_teardown(corpus_io *io) {
  close_dict_store(io);
  if (io->raw_open)
    raw_close(&io->raw);
  io->raw_open = 0;
  if (io->pids)
    bench_pids_free(io->pids, io->npids);
  io->pids = NULL;
  if (io->snap_path[0])
    bench_db_remove(io->snap_path);
  if (io->raw_path[0])
    bench_db_remove(io->raw_path);
}
