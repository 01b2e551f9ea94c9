/* The corpus rows' workloads (dict.c, dict_io.c), as run_row sides. */
#ifndef SNAP_BENCH_DICT_H
#define SNAP_BENCH_DICT_H

#include "cases.h"
#include "corpus.h"

/* Encode or decode every measured state of `c` with options `o` (no store):
 * µs per state. */
typedef struct corpus_cpu {
  const corpus *c;
  const snap_options *o;
  int decode;
  double seconds; /* at least this long, the whole corpus at least once */
} corpus_cpu;
int corpus_cpu_side(const bench_ctx *bx, void *c, double *us, char *err, size_t errcap);

/* Saves and loads of the measured states: snapstore with zstd-3, the
 * corpus's dictionary stored in the store, and encryption, against raw
 * SQLite storing the states uncompressed. Saves: round-robin over `npids`
 * pids into a fresh database, synchronous=full. Loads: both databases filled
 * once (LOAD_SNAPSHOTS per pid) by corpus_io_load_setup(). */
typedef struct corpus_io {
  const corpus *c;
  int npids;
  char **pids;
  snap_store *st;
  snap_options *o;
  raw_db raw;
  int raw_open;
  char snap_path[4096], raw_path[4096];
} corpus_io;
int corpus_save_snap(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap);
int corpus_save_raw(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap);
int corpus_io_load_setup(const bench_ctx *bx, corpus_io *io, char *err, size_t errcap);
int corpus_load_snap(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap);
int corpus_load_raw(const bench_ctx *bx, void *c, double *rate, char *err, size_t errcap);
void corpus_io_teardown(corpus_io *io);

#endif
