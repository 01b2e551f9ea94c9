/*
 * snap_bench rows over the small-state corpus (corpus.h): compression ratio
 * with zstd-3 and a trained dictionary against zlib-1 (group "dict"), the
 * pipeline's encode and decode time against zlib-1 (groups "encode" and
 * "decode"), and synchronous saves and loads of zstd+dict+enc bodies against
 * raw SQLite storing the states uncompressed (groups "save" and "load").
 */
#include <stdio.h>
#include <string.h>

#include "dict.h"
#include "runner.h"

static const struct {
  size_t target;
  const char *label;
} SIZES[] = {{256, "256 B"}, {1024, "1 KiB"}, {4096, "4 KiB"}};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

/* One "dict" row: whole-corpus state bytes over body bytes with `o`, against
 * zlib-1's (the ratio column is zlib-1's body bytes over `o`'s). */
static void ratio_row(runner *rn, const corpus *c, const char *name, const snap_options *o,
                      const snap_options *zlib) {
  if (!wanted(rn, "dict", name))
    return;
  bench_row *row = bench_row_add(rn->report, "dict", name, "zlib-1", "state/body", KIND_RATE);
  uint64_t state = 0, ours = 0, base = 0;
  for (unsigned i = CORPUS_TRAIN; i < CORPUS_N; i++)
    state += c->len[i];
  if (!row || corpus_body_bytes(c, o, &ours) || corpus_body_bytes(c, zlib, &base)) {
    if (row)
      bench_row_fail(row, "encode: %s", snap_error_message());
    rn->failures++;
    return;
  }
  bench_row_record(row, (double)state / (double)ours, (double)state / (double)base);
  size_t dlen = 0;
  snap_dict_bytes(c->dict, &dlen);
  snprintf(row->note, sizeof row->note, "mean state %.0f B, dictionary %zu B, 9,000 states",
           c->mean, dlen);
  progress(row);
}

static snap_options *zlib1(void) {
  snap_options *o = NULL;
  if (snap_options_new(&o) == SNAP_OK &&
      snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1) != SNAP_OK) {
    snap_options_free(o);
    o = NULL;
  }
  return o;
}

/* The ratio rows of one corpus: with and without the dictionary. */
static void ratio_rows(runner *rn, const corpus *c, const char *what, const snap_options *zlib) {
  char name[128];
  snap_options *dict = corpus_zstd_options(c, 1), *plain = corpus_zstd_options(c, 0);
  snprintf(name, sizeof name, "%s, zstd-3+dict", what);
  ratio_row(rn, c, name, dict, zlib);
  if (!strstr(what, "epoch")) {
    snprintf(name, sizeof name, "%s, zstd-3", what);
    ratio_row(rn, c, name, plain, zlib);
  }
  snap_options_free(dict);
  snap_options_free(plain);
}

/* Encode and decode of each measured state: zstd-3+dict against zlib-1. */
static void cpu_rows(runner *rn, const corpus *c, const char *what, const snap_options *zlib) {
  char name[128];
  snap_options *dict = corpus_zstd_options(c, 1);
  for (int dec = 0; dec < 2; dec++) {
    corpus_cpu ours = {c, dict, dec, rn->bx->cfg->codec_seconds};
    corpus_cpu base = {c, zlib, dec, rn->bx->cfg->codec_seconds};
    snprintf(name, sizeof name, "%s, zstd-3+dict", what);
    run_row(rn, dec ? "decode" : "encode", name, "zlib-1 (libdeflate), the same states", "µs/op",
            KIND_TIME, corpus_cpu_side, &ours, corpus_cpu_side, &base);
  }
  snap_options_free(dict);
}

/* Saves and loads of the 1 KiB corpus with zstd-3+dict+enc against raw. */
static void io_rows(runner *rn, const corpus *c, const char *what) {
  char name[128];
  corpus_io io;
  memset(&io, 0, sizeof io);
  io.c = c;
  io.npids = rn->bx->cfg->quick ? 4 : 100;
  snprintf(name, sizeof name, "%s, zstd-3+dict+enc, sync=full", what);
  run_row(rn, "save", name, "raw INSERT of the uncompressed state, 1 per transaction", "saves/s",
          KIND_RATE, corpus_save_snap, &io, corpus_save_raw, &io);
  corpus_io_teardown(&io);
  snprintf(name, sizeof name, "%s, zstd-3+dict+enc", what);
  if (!wanted(rn, "load", name))
    return;
  memset(&io, 0, sizeof io);
  io.c = c;
  io.npids = rn->bx->cfg->load_pids;
  char err[200] = "";
  if (corpus_io_load_setup(rn->bx, &io, err, sizeof err) != 0) {
    bench_row *row = bench_row_add(rn->report, "load", name, "", "loads/s", KIND_RATE);
    if (row)
      bench_row_fail(row, "setup: %s", err);
    rn->failures++;
  } else {
    run_row(rn, "load", name, "raw SELECT newest + copy of the uncompressed state", "loads/s",
            KIND_RATE, corpus_load_snap, &io, corpus_load_raw, &io);
  }
  corpus_io_teardown(&io);
}

static int corpus_wanted(runner *rn, const char *what) {
  static const char *const groups[] = {"dict", "encode", "decode", "save", "load"};
  static const char *const suffixes[] = {"", ", zstd-3", ", zstd-3+dict", ", zstd-3+dict+enc",
                                         ", zstd-3+dict+enc, sync=full"};
  char name[160];
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
    for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
      snprintf(name, sizeof name, "%s%s", what, suffixes[k]);
      if (wanted(rn, groups[g], name))
        return 1;
    }
  return 0;
}

void dict_rows(runner *rn) {
  snap_options *zlib = zlib1();
  char what[96], err[200] = "";
  static const struct {
    snap_format fmt;
    corpus_style style;
    const char *kind;
  } KINDS[] = {{SNAP_FORMAT_JSON, CORPUS_ACCOUNT, "JSON corpus"},
               {SNAP_FORMAT_MSGPACK, CORPUS_ACCOUNT, "msgpack corpus"},
               {SNAP_FORMAT_JSON, CORPUS_ACCOUNT_EPOCH, "JSON corpus (epoch integers)"}};
  for (size_t k = 0; zlib && k < sizeof KINDS / sizeof KINDS[0]; k++) {
    for (size_t z = 0; z < NSIZES; z++) {
      snprintf(what, sizeof what, "%s %s", SIZES[z].label, KINDS[k].kind);
      if (!corpus_wanted(rn, what))
        continue;
      corpus c;
      if (corpus_make(&c, SIZES[z].target, KINDS[k].style, KINDS[k].fmt, err, sizeof err) != 0) {
        bench_row *row = bench_row_add(rn->report, "dict", what, "", "state/body", KIND_RATE);
        if (row)
          bench_row_fail(row, "%s", err);
        rn->failures++;
        continue;
      }
      ratio_rows(rn, &c, what, zlib);
      if (k == 0)
        cpu_rows(rn, &c, what, zlib);
      if (k == 0 && SIZES[z].target == 1024)
        io_rows(rn, &c, what);
      corpus_free(&c);
    }
  }
  if (!zlib)
    rn->failures++;
  snap_options_free(zlib);
}
