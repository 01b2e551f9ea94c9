/**
 * @file runner.h
 * @brief Internal to snap_bench (not installed): running a row, the states the
 *        rows measure, and the groups of rows each file of the program adds.
 *
 * main.c runs the groups in order; runner.c runs one row (the snapstore side
 * then the baseline, once each per repetition); rows_*.c hold the groups;
 * targets.c reads the report against the goals of docs/PERFORMANCE.md.
 */
#ifndef SNAP_BENCH_RUNNER_H
#define SNAP_BENCH_RUNNER_H

#include <stddef.h>
#include <stdio.h>

#include "bench.h"
#include "cases.h"

/** One side of a row: its figure for one repetition in `*v`. */
typedef int (*side_fn)(const bench_ctx *bx, void *c, double *v, char *err, size_t errcap);

typedef struct runner {
  bench_ctx *bx;
  bench_report *report;
  const char *only;
  int failures;
} runner;

/* The generated states every row draws its payload from. */
typedef struct states {
  bench_state ledger[SIZE_COUNT];
  uint8_t *random4k;
  size_t random4k_len;
} states;

/* A row's payload: a ledger size in one format, or the random bytes. */
typedef struct payload {
  const char *label; /* "4 KiB JSON" */
  snap_format fmt;
  const uint8_t *data;
  size_t len;
} payload;

/* ---- runner.c --------------------------------------------------------- */

/* "--only TEXT" selects the rows whose group or case contains TEXT;
 * "--only =TEXT" the rows whose case is exactly TEXT. */
int wanted(const runner *rn, const char *group, const char *name);
/* The row's figures on stderr as it ends. */
void progress(const bench_row *row);
/* Runs side a (snapstore) then side b (baseline) once per repetition. */
void run_row(runner *rn, const char *group, const char *name, const char *baseline, const char *unit, bench_kind kind, side_fn a, void *ca, side_fn b, void *cb);
int states_make(states *s);
void states_free(states *s);
/* A ledger size in one format, or the random bytes. */
payload ledger_json(const states *s, bench_size z);
payload ledger_msgpack(const states *s, bench_size z);
payload random_4k(const states *s);
/* load_setup() for a row of `group` named `name`: 0, or -1 once the row is
 * reported failed with the reason and `lc` torn down. */
int load_setup_row(runner *rn, const char *group, const char *name, load_case *lc);
/* The sides of cases.h as side_fn. */
int side_save_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_save_new(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_save_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_load_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_load_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_enc_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_enc_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_val_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_val_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_dec_snap(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);
int side_dec_raw(const bench_ctx *bx, void *c, double *v, char *err, size_t cap);

/* ---- the groups of rows, in the order main.c runs them ----------------- */

/* rows_save.c: saves, the executor, pruning, the metrics' cost, loads. */
void save_rows(runner *rn, const states *s);
void executor_rows(runner *rn, const states *s);
void executor_ceiling_row(runner *rn, const states *s);
void executor_keep_rows(runner *rn, const states *s);
void prune_rows(runner *rn, const states *s);
void metrics_rows(runner *rn, const states *s);
void envelope_load_row(runner *rn, const states *s);
void load_rows(runner *rn, const states *s);
/* rows_manifest.c: what a manifest costs a save. */
void manifest_rows(runner *rn, const states *s);
/* rows_storm.c: the recovery storm. */
void storm_rows(runner *rn, const states *s);
/* rows_pg.c: PostgreSQL, on a throw-away cluster; `about` says what ran. */
#define PG_SYNC_ROW "4 KiB JSON, plain, sync save, keep=3"
#define PG_EXEC_ROW "16 submitters, pipelined, 4 KiB JSON, plain, keep=3"
#define PG_LOAD_ROW "load_latest, 4 KiB JSON, plain"
#define PG_GROUPS_ROW "16 submitters, pipelined, keep=3, vs raw pipelined groups"
void pg_rows(runner *rn, const states *s, char *about, size_t about_cap);
/* rows_codec.c: DEFLATE implementations, dictionaries, the codec alone, peak RSS. */
void deflate_rows(runner *rn, const states *s);
void dict_rows(runner *rn);
void codec_rows(runner *rn, const states *s);
void rss_rows(runner *rn, double *state_kib);
/* rows_stream.c: streamed saves and loads against the disk, and their peak
 * RSS; `about` says what size ran and how loads met the page cache. */
void stream_rows(runner *rn, char *about, size_t cap);
/* The child process of a stream rss row (snap_bench --stream-child ...). */
int stream_child_main(int argc, char **argv);

/* ---- targets.c ---------------------------------------------------------- */

/* The goals of docs/PERFORMANCE.md against the report. */
void print_targets(const bench_report *r, double state_kib, FILE *out);
void print_baseline_check(const bench_report *r, FILE *out);

#endif /* SNAP_BENCH_RUNNER_H */
