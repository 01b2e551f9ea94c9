/*
 * snap_bench: running a row (each repetition runs the snapstore side, then
 * the baseline) and the generated states every row draws from.
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"

/* ------------------------------------------------------------------------ */
/* Running a row                                                             */
/* ------------------------------------------------------------------------ */

int side_save_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return save_snap(bx, c, v, err, cap);
}
int side_save_new(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return save_snap_new_units(bx, c, v, err, cap);
}
int side_save_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return save_raw(bx, c, v, err, cap);
}
int side_load_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return load_snap(bx, c, v, err, cap);
}
int side_load_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return load_raw(bx, c, v, err, cap);
}
int side_enc_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_snap_encode(bx, c, v, err, cap);
}
int side_enc_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_raw_encode(bx, c, v, err, cap);
}
int side_val_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_snap_validate(bx, c, v, err, cap);
}
int side_val_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_raw_validate(bx, c, v, err, cap);
}
int side_dec_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_snap_decode(bx, c, v, err, cap);
}
int side_dec_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap) {
  return codec_raw_decode(bx, c, v, err, cap);
}

/* "--only TEXT" selects the rows whose group or case contains TEXT;
 * "--only =TEXT" the rows whose case is exactly TEXT ("4 KiB JSON, plain,
 * sync=full" alone, without "64 KiB JSON, plain, sync=full"), for profiling. */
int wanted(const runner *rn, const char *group, const char *name) {
  if (!rn->only) {
    return 1;
  }
  if (rn->only[0] == '=') {
    return strcmp(name, rn->only + 1) == 0;
  }
  return strstr(group, rn->only) || strstr(name, rn->only);
}

void progress(const bench_row *row) {
  double sm, smin, smax, rm, rmin, rmax;
  if (row->failed) {
    return;
  }
  bench_stats(row->snap, row->n, &sm, &smin, &smax);
  bench_stats(row->raw, row->n, &rm, &rmin, &rmax);
  fprintf(stderr, "  %-9s %-52s %12.2f vs %12.2f %-10s ratio %.2f\n", row->group, row->name, sm, rm,
          row->unit, bench_row_ratio(row));
  /* Each repetition's ratio in the order run: a slow mode shows as a run
   * of low ratios, which a median hides. */
  if (row->n > 1) {
    fprintf(stderr, "            ratio by repetition:");
    for (int i = 0; i < row->n; i++)
      fprintf(stderr, " %.2f", row->ratio[i]);
    fprintf(stderr, "\n");
  }
}

/* Runs side a (snapstore) then side b (baseline) once per repetition. */
void run_row(runner *rn, const char *group, const char *name, const char *baseline,
                    const char *unit, bench_kind kind, side_fn a, void *ca, side_fn b, void *cb) {
  if (!wanted(rn, group, name)) {
    return;
  }
  bench_row *row = bench_row_add(rn->report, group, name, baseline, unit, kind);
  if (!row) {
    rn->failures++;
    return;
  }
  for (int rep = 0; rep < rn->bx->cfg->reps; rep++) {
    double va = 0, vb = 0;
    char err[160] = "";
    if (a(rn->bx, ca, &va, err, sizeof err) != 0) {
      bench_row_fail(row, "snapstore: %s", err);
      rn->failures++;
      return;
    }
    if (b(rn->bx, cb, &vb, err, sizeof err) != 0) {
      bench_row_fail(row, "baseline: %s", err);
      rn->failures++;
      return;
    }
    bench_row_record(row, va, vb);
  }
  progress(row);
}

/* ------------------------------------------------------------------------ */
/* The states                                                                */
/* ------------------------------------------------------------------------ */

int states_make(states *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < SIZE_COUNT; i++) {
    if (bench_state_make(&s->ledger[i], bench_size_bytes((bench_size)i)) != 0) {
      return -1;
    }
  }
  s->random4k_len = 4096;
  s->random4k = bench_random_msgpack(s->random4k_len);
  return s->random4k ? 0 : -1;
}

void states_free(states *s) {
  for (int i = 0; i < SIZE_COUNT; i++) {
    bench_state_free(&s->ledger[i]);
  }
  free(s->random4k);
}

payload ledger_json(const states *s, bench_size z) {
  static char labels[SIZE_COUNT][32];
  snprintf(labels[z], sizeof labels[z], "%s JSON", bench_size_label(z));
  payload p = {labels[z], SNAP_FORMAT_JSON, s->ledger[z].json, s->ledger[z].json_len};
  return p;
}

payload ledger_msgpack(const states *s, bench_size z) {
  static char labels[SIZE_COUNT][32];
  snprintf(labels[z], sizeof labels[z], "%s msgpack", bench_size_label(z));
  payload p = {labels[z], SNAP_FORMAT_MSGPACK, s->ledger[z].msgpack, s->ledger[z].msgpack_len};
  return p;
}

payload random_4k(const states *s) {
  payload p = {"4 KiB random", SNAP_FORMAT_MSGPACK, s->random4k, s->random4k_len};
  return p;
}

int load_setup_row(runner *rn, const char *group, const char *name, load_case *lc) {
  char err[160] = "";
  if (load_setup(rn->bx, lc, err, sizeof err) == 0) {
    return 0;
  }
  bench_row *row = bench_row_add(rn->report, group, name, "", "loads/s", KIND_RATE);
  if (row) {
    bench_row_fail(row, "setup: %s", err);
  }
  rn->failures++;
  load_teardown(lc);
  return -1;
}
