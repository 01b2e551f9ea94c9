/*
 * snap_bench rows: what a manifest costs a save (group "save"). The same
 * saves with snap_save_ex() stating a manifest, against the same saves
 * without one, alternating in one run: on the memory backend (the whole save
 * path without storage I/O, plain) and on sqlite with synchronous=normal
 * (zlib-1 + encryption, the manifest bound in the frame and copied into the
 * column).
 */
#include <stdio.h>
#include <string.h>

#include "runner.h"

typedef struct manifest_case {
  const char *backend; /* "memory" or "sqlite" */
  payload p;
  int opt;
  const char *manifest; /* NULL: the baseline */
} manifest_case;

static int open_case_store(const bench_ctx *bx, const manifest_case *mc, snap_store **st,
                           char *path, size_t cap) {
  char cfg[4400] = "{}";
  if (strcmp(mc->backend, "sqlite") == 0) {
    bench_path(path, cap, bx->cfg, mc->manifest ? "save-manifest.db" : "save-no-manifest.db");
    bench_db_remove(path);
    store_config(cfg, sizeof cfg, path, 0, 0);
  } else {
    path[0] = 0;
  }
  return snap_store_open(st, mc->backend, cfg);
}

/* Saves round-robin over 100 pids for cfg->save_seconds: saves per second. */
static int side_manifest(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap) {
  const manifest_case *mc = c;
  char path[4096];
  snap_store *st = NULL;
  int rc = open_case_store(bx, mc, &st, path, sizeof path);
  enum { NPIDS = 100 };
  char **pids = rc == SNAP_OK ? bench_pids_make(NPIDS) : NULL;
  if (rc == SNAP_OK && !pids)
    rc = SNAP_ENOMEM;
  snap_save_ext ext;
  memset(&ext, 0, sizeof ext);
  ext.manifest = mc->manifest;
  long n = 0;
  double t0 = 0, el = 0;
  for (long i = -NPIDS; rc == SNAP_OK && (i < 0 || el < bx->cfg->save_seconds); i++) {
    if (i == 0)
      t0 = bench_now(); /* the first save of each pid, untimed, opened everything */
    snap_save_req req = {pids[(i + NPIDS) % NPIDS], (i + NPIDS) / NPIDS, SNAP_TIMESTAMP_AUTO,
                         mc->p.fmt, mc->p.data, mc->p.len, bx->opts[mc->opt]};
    rc = snap_save_ex(st, &req, &ext, NULL);
    if (i >= 0) {
      n++;
      el = bench_now() - t0;
    }
  }
  if (rc != SNAP_OK)
    snprintf(err, errcap, "snap_save_ex: %s: %s", snap_strerror(rc), snap_error_message());
  else
    *rate = (double)n / el;
  if (pids)
    bench_pids_free(pids, NPIDS);
  snap_store_close(st);
  if (path[0])
    bench_db_remove(path);
  return rc == SNAP_OK ? 0 : -1;
}

void manifest_rows(runner *rn, const states *s) {
  static const struct {
    const char *backend;
    int opt;
    const char *suffix;
  } rows[] = {{"memory", OPT_PLAIN, "memory store"}, {"sqlite", OPT_ZLIB_ENC, "sync=normal"}};
  char name[128];
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    payload p = ledger_json(s, SIZE_4K);
    manifest_case with = {rows[i].backend, p, rows[i].opt, "bank.Account/3"};
    manifest_case without = with;
    without.manifest = NULL;
    snprintf(name, sizeof name, "%s, %s, manifest, %s", p.label, opt_label(rows[i].opt),
             rows[i].suffix);
    run_row(rn, "save", name, "the same saves without a manifest", "saves/s", KIND_RATE,
            side_manifest, &with, side_manifest, &without);
  }
}
