/**
 * @file bench.h
 * @brief Internal declarations shared by the files of snap_bench (not installed).
 *
 * snap_bench measures snapstore and a raw-SQLite baseline side by side in one
 * process: every row of the report runs the snapstore side and the baseline
 * alternately, once each per repetition, so that disk and CPU drift hit both.
 */
#ifndef SNAP_BENCH_H
#define SNAP_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "snapstore.h"

/* ------------------------------------------------------------------------ */
/* Run configuration                                                         */
/* ------------------------------------------------------------------------ */

/** The most repetitions a row can hold. */
#define BENCH_MAX_REPS 32

/** What the command line asked for, and the counts derived from it. */
typedef struct bench_cfg {
  int quick;            /**< --quick: tiny counts, every code path once */
  int reps;             /**< repetitions per row (each runs snapstore then the baseline) */
  const char *dir;      /**< where the database files go */
  const char *csv;      /**< CSV output path, or NULL */
  const char *only;     /**< run only the rows whose group or name contains this */
  double save_seconds;  /**< length of one timed save loop */
  double load_seconds;  /**< length of one timed load loop */
  double codec_seconds; /**< length of one timed encode/decode loop */
  int load_pids;        /**< persistence ids in the load databases (3 snapshots each) */
  size_t rss_state;     /**< size of the state of the peak-RSS case */
  int stream_gib;       /**< --stream-gib: the stream rows' size in GiB (0: 16, shrunk to the disk) */
} bench_cfg;

/* ------------------------------------------------------------------------ */
/* States                                                                    */
/* ------------------------------------------------------------------------ */

/** The sizes of the generated ledger states. */
typedef enum bench_size { SIZE_256B, SIZE_4K, SIZE_64K, SIZE_1M, SIZE_COUNT } bench_size;

/** A generated state: the same ledger in JSON and in msgpack. */
typedef struct bench_state {
  uint8_t *json;
  size_t json_len;
  uint8_t *msgpack;
  size_t msgpack_len;
  int accounts;
} bench_state;

/** The target size in bytes of each bench_size, and its label ("4 KiB"). */
size_t bench_size_bytes(bench_size s);
const char *bench_size_label(bench_size s);

/**
 * Generates a bank ledger of about `target` bytes of JSON from a fixed seed
 * (the same bytes on every run) and its msgpack encoding. Returns 0, or -1
 * when out of memory. Free with bench_state_free().
 */
int bench_state_make(bench_state *st, size_t target);

/** Frees a state's buffers. */
void bench_state_free(bench_state *st);

/**
 * Makes `len` bytes of a valid msgpack payload holding incompressible random
 * bytes (one bin object, header included). The caller frees it with free().
 */
uint8_t *bench_random_msgpack(size_t len);

/* ------------------------------------------------------------------------ */
/* Clock and statistics                                                      */
/* ------------------------------------------------------------------------ */

/** Monotonic time in seconds. */
double bench_now(void);

/** The median, minimum and maximum of `n` values (n >= 1). */
void bench_stats(const double *v, int n, double *med, double *min, double *max);

/** The peak resident set of this process image in KiB (VmHWM; ru_maxrss where
 *  /proc is missing). */
long bench_peak_rss_kib(void);

/* ------------------------------------------------------------------------ */
/* Report rows                                                               */
/* ------------------------------------------------------------------------ */

/** How to read a row's figure. */
typedef enum bench_kind {
  KIND_RATE, /**< operations per second: higher is better, ratio = snap / raw */
  KIND_TIME, /**< microseconds per operation: lower is better, ratio = raw / snap (a speed ratio) */
  KIND_SIZE  /**< bytes or KiB: lower is better, ratio = snap / raw */
} bench_kind;

/** One line of the report: a snapstore figure beside its baseline figure. */
typedef struct bench_row {
  char group[24];    /**< save, executor, prune, load, encode, decode, disk, rss */
  char name[128];    /**< what snapstore did */
  char baseline[64]; /**< what the baseline did */
  char unit[16];
  bench_kind kind;
  int n;                       /**< repetitions recorded */
  double snap[BENCH_MAX_REPS]; /**< per-repetition figures */
  double raw[BENCH_MAX_REPS];
  double ratio[BENCH_MAX_REPS]; /**< per-repetition ratio (see bench_kind) */
  int failed;                   /**< a side failed: the row has no figures */
  char note[128];               /**< shown beside the case (e.g. the executor's mean batch) */
  char error[160];
} bench_row;

/** The report: every row measured so far. */
typedef struct bench_report {
  bench_row *rows;
  size_t n, cap;
} bench_report;

/** Adds an empty row and returns it (NULL when out of memory). */
bench_row *bench_row_add(bench_report *r, const char *group, const char *name, const char *baseline,
                         const char *unit, bench_kind kind);

/** Records one repetition of a row. */
void bench_row_record(bench_row *row, double snap, double raw);

/** Marks a row failed with a message (printed on stderr too). */
void bench_row_fail(bench_row *row, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** The median per-repetition ratio of a row (0 when it has no figures). */
double bench_row_ratio(const bench_row *row);

/** Finds a row by group and name (NULL when absent or not measured). */
const bench_row *bench_row_find(const bench_report *r, const char *group, const char *name);

/** Prints the report as Markdown tables. */
void bench_report_markdown(const bench_report *r, FILE *out);

/** Writes the report as CSV. Returns 0 or -1 (with errno) when the file cannot be written. */
int bench_report_csv(const bench_report *r, const char *path);

/** Frees the report's rows. */
void bench_report_free(bench_report *r);

/* ------------------------------------------------------------------------ */
/* The raw-SQLite baseline                                                   */
/* ------------------------------------------------------------------------ */

/** The durability settings a database is opened with. */
typedef struct bench_db_opts {
  int sync_full;     /**< synchronous=FULL, else NORMAL */
  int secure_delete; /**< secure_delete=ON (encrypted bodies), else FAST */
} bench_db_opts;

/** A raw SQLite connection with the sqlite backend's schema and pragmas. */
typedef struct raw_db {
  sqlite3 *db;
  sqlite3_stmt *begin, *commit, *rollback, *insert, *select, *prune;
} raw_db;

/** Opens (creating) `path` with the sqlite backend's schema and pragmas. 0 or -1. */
int raw_open(raw_db *r, const char *path, const bench_db_opts *o);

/** Finalizes the statements and closes the connection. */
void raw_close(raw_db *r);

/**
 * Inserts rows first .. first+n-1, row i being (pids[i % npids], seq0 + i / npids)
 * with `len` bytes of `data`, `batch` rows per BEGIN IMMEDIATE ... COMMIT. With
 * keep > 0 each insert is followed, in the same transaction, by the prune of
 * that pid's rows beyond the newest `keep`. 0 or -1.
 */
int raw_insert(raw_db *r, char *const *pids, int npids, int64_t seq0, long first, long n, int batch,
               const void *data, size_t len, uint32_t keep);

/** Loads the newest row of `pid` and copies its blob into `*out` (malloc'd, caller frees). */
int raw_load_latest(raw_db *r, const char *pid, uint8_t **out, size_t *len);

/** Last error message of the raw connection. */
const char *raw_error(const raw_db *r);

/* ------------------------------------------------------------------------ */
/* Files                                                                     */
/* ------------------------------------------------------------------------ */

/** Removes a database file and its -wal and -shm companions. */
void bench_db_remove(const char *path);

/** The bytes a database occupies on disk: the main file plus its WAL. */
long long bench_db_bytes(const char *path);

/** The bytes this process caused to be written to storage so far
 *  (`write_bytes` of /proc/self/io), or -1 when the kernel does not say. */
long long bench_io_written(void);

/** Builds "<dir>/<name>" into `buf`. */
void bench_path(char *buf, size_t cap, const bench_cfg *cfg, const char *name);

/* ------------------------------------------------------------------------ */
/* Persistence ids                                                           */
/* ------------------------------------------------------------------------ */

/** `n` persistence ids "account-000000" ...; free with bench_pids_free(). NULL on OOM. */
char **bench_pids_make(int n);
void bench_pids_free(char **pids, int n);

#endif /* SNAP_BENCH_H */
