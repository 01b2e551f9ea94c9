/**
 * @file cases.h
 * @brief The measured workloads of snap_bench: each has a snapstore side and
 *        a baseline side that do the same work (internal, not installed).
 */
#ifndef SNAP_BENCH_CASES_H
#define SNAP_BENCH_CASES_H

#include "bench.h"

/** Persistence options of a row: bit OPT_ZLIB (zlib level 1), bit OPT_ENC (encryption). */
#define OPT_PLAIN 0
#define OPT_ZLIB 1
#define OPT_ENC 2
#define OPT_ZLIB_ENC (OPT_ZLIB | OPT_ENC)
/** Bit OPT_ENVELOPE: encryption in envelope mode (a data key per pid's unit). */
#define OPT_ENVELOPE 4
#define OPT_ZLIB_ENV (OPT_ZLIB | OPT_ENC | OPT_ENVELOPE)
/** The rows of direct key mode iterate over the first OPT_DIRECT_COUNT sets. */
#define OPT_DIRECT_COUNT 4
#define OPT_COUNT 8

/** The encryption context of every encrypted row. */
#define BENCH_CONTEXT "bench/local/snapshots/v1"

/** What every case shares: the configuration, the key and the four option sets. */
typedef struct bench_ctx {
  const bench_cfg *cfg;
  snap_keyring *kr;
  uint8_t key[32];
  snap_options *opts[OPT_COUNT];
} bench_ctx;

/** The label of an option set ("plain", "zlib-1", "enc", "zlib-1+enc"). */
const char *opt_label(int opt);

/* ------------------------------------------------------------------------ */
/* The pipeline alone                                                        */
/* ------------------------------------------------------------------------ */

/** One encode or decode row. */
typedef struct codec_case {
  snap_format fmt;
  const uint8_t *state;
  size_t len;
  int opt;
} codec_case;

/** The baseline codec's buffers. */
typedef struct raw_codec {
  uint8_t key[32];
  const char *context;
  uint8_t *out, *tmp, *dec;
  size_t out_cap, tmp_cap, dec_cap, out_len, orig_len;
  int stored_compressed;
} raw_codec;

/** The baseline encoder: validate, compress2 level 1, BLAKE2b subkey, XChaCha20-Poly1305. */
int raw_encode(raw_codec *c, const char *pid, int64_t seq, snap_format fmt, const uint8_t *state,
               size_t len, int opt);
/** The baseline decoder: the reverse of raw_encode() (into c->dec). */
int raw_decode(raw_codec *c, const char *pid, int64_t seq, const uint8_t *body, size_t body_len,
               int opt);
void raw_codec_dispose(raw_codec *c);

/** Timed loops over one codec: µs per operation in `*us`. 0, or -1 with `err` filled. */
int codec_snap_encode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                      size_t errcap);
int codec_snap_decode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                      size_t errcap);
/** Validation alone: GB/s of state in `*v` (snap_payload_validate(), or cJSON / msgpack-c). */
int codec_snap_validate(const bench_ctx *bx, const codec_case *cc, double *v, char *err,
                        size_t errcap);
int codec_raw_validate(const bench_ctx *bx, const codec_case *cc, double *v, char *err,
                       size_t errcap);
int codec_raw_encode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                     size_t errcap);
int codec_raw_decode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                     size_t errcap);

/* ------------------------------------------------------------------------ */
/* Saves                                                                     */
/* ------------------------------------------------------------------------ */

/** One save row. */
typedef struct save_case {
  snap_format fmt;
  const uint8_t *state;
  size_t len;
  int opt;
  int sync_full;
  uint32_t keep;  /**< retention: 0 keeps all */
  int npids;      /**< saves go round-robin over this many pids */
  int batch;      /**< baseline: rows per transaction */
  int submitters; /**< snapstore: 0 = synchronous snap_save(), else the executor */
  struct exec_tally
      *tally;      /**< executor: out, its counters summed over repetitions (may be NULL) */
  int pipelined;   /**< executor: submit without awaiting each callback (see cases.c) */
  double *written; /**< out, may be NULL: bytes written to storage per timed save */
  const struct bench_pg *pg; /**< non-NULL: save to a postgres store of this cluster (pg.h) */
} save_case;

/**
 * The executor's own counters (snap_executor_stats_get()) summed over the
 * repetitions of a row, so that a row can report the mean number of saves its
 * transactions carried over all its repetitions, not just the last one.
 */
typedef struct exec_tally {
  unsigned long long saves;   /**< saves committed by the executor */
  unsigned long long commits; /**< transactions (snap_save_commit() calls) */
  size_t largest_batch;       /**< the largest transaction seen */
  long long max_in_flight;    /**< pipelined: the most saves submitted but not yet acknowledged */
} exec_tally;

/** Saves for cfg->save_seconds into a fresh database: saves per second in `*rate`. */
int save_snap(const bench_ctx *bx, const save_case *sc, double *rate, char *err, size_t errcap);
/** save_snap() on a store with its metrics and warnings switched off (the metrics rows). */
int save_snap_unobserved(const bench_ctx *bx, const save_case *sc, double *rate, char *err,
                         size_t errcap);
int save_raw(const bench_ctx *bx, const save_case *sc, double *rate, char *err, size_t errcap);
/** Saves for cfg->save_seconds, each of a pid never saved before (in envelope
 *  mode: each the first save of its unit, which creates the unit's data key). */
int save_snap_new_units(const bench_ctx *bx, const save_case *sc, double *rate, char *err,
                        size_t errcap);

/* ------------------------------------------------------------------------ */
/* Loads                                                                     */
/* ------------------------------------------------------------------------ */

/** One load row: both databases stay open across its repetitions. */
typedef struct load_case {
  snap_format fmt;
  const uint8_t *state;
  size_t len;
  int opt;
  int npids; /**< each with 3 snapshots */
  char **pids;
  snap_store *st;
  raw_db raw;
  char snap_path[4096], raw_path[4096];
  long long snap_bytes, raw_bytes; /**< on disk, measured at teardown */
  const char *tag; /**< NULL, or a suffix of the file names: two cases open at once */
} load_case;

/** The snapshots of every pid in a load database (seqs 0 .. LOAD_SNAPSHOTS - 1). */
#define LOAD_SNAPSHOTS 3

/** The pid index of the i-th load: a scattered order that visits every pid. */
int load_pid_index(long i, int npids);

/** Saves LOAD_SNAPSHOTS snapshots of every pid into lc->st with snap_save_batch(). */
int load_fill_store(const bench_ctx *bx, load_case *lc, char *err, size_t errcap);

/** Creates and fills both databases and reads every pid once (a warm cache). */
int load_setup(const bench_ctx *bx, load_case *lc, char *err, size_t errcap);
/** `bx` with timed loops of zero seconds, in `*warm`/`*wx`: a "timed" pass
 *  that visits every pid once, to warm the caches before the repetitions. */
void bench_warm_ctx(const bench_ctx *bx, bench_cfg *warm, bench_ctx *wx);

/** Loads the newest snapshot of pids in a scattered order for cfg->load_seconds. */
int load_snap(const bench_ctx *bx, load_case *lc, double *rate, char *err, size_t errcap);
int load_raw(const bench_ctx *bx, load_case *lc, double *rate, char *err, size_t errcap);
/** Closes both databases, measures their size on disk, and removes them. */
void load_teardown(load_case *lc);

/* ------------------------------------------------------------------------ */
/* Recovery storm: every pid of a load database loaded once                  */
/* ------------------------------------------------------------------------ */

/** Every pid's newest snapshot through an executor with `threads` load
 *  threads (0: its default), submitted by one thread: loads per second. */
int storm_executor(const bench_ctx *bx, load_case *lc, int threads, double *rate, char *err,
                   size_t errcap);
/** Every pid's newest snapshot by snap_load_latest() from one thread. */
int storm_sync(const bench_ctx *bx, load_case *lc, double *rate, char *err, size_t errcap);
/** The same pids split over `threads` threads that call snap_load_latest() on
 *  the one store: what the store itself does with several cores. */
int storm_direct(const bench_ctx *bx, load_case *lc, int threads, double *rate, char *err,
                 size_t errcap);
/** The executor's storm and two threads calling snap_load_latest(), each in
 *  a fresh process on lc->snap_path (a cold start; `lc` is a load_case). */
int storm_cold_executor(const bench_ctx *bx, void *lc, double *rate, char *err, size_t errcap);
int storm_cold_direct(const bench_ctx *bx, void *lc, double *rate, char *err, size_t errcap);
/** The child side of the cold storm: argv = MODE OPT DB_PATH NPIDS, key on stdin. */
int storm_child_main(int argc, char **argv);

/* ------------------------------------------------------------------------ */
/* DEFLATE implementations                                                   */
/* ------------------------------------------------------------------------ */

/** One comparison: compress (at `level`) or decompress `state`. */
typedef struct deflate_case deflate_case;
deflate_case *deflate_case_new(const uint8_t *state, size_t len, int level, int decompress);
/** The compressed size the last timed loop of that side produced. */
size_t deflate_case_size(const deflate_case *c, int libdeflate);
/** µs per operation with libdeflate / with zlib (run_row sides). */
int deflate_libdeflate(const bench_ctx *bx, void *c, double *us, char *err, size_t errcap);
int deflate_zlib(const bench_ctx *bx, void *c, double *us, char *err, size_t errcap);

/* ------------------------------------------------------------------------ */
/* Peak RSS                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * Measures, in a fresh child process, the peak RSS of saving then loading the
 * state in the file `state_path` (snapstore with option set `opt`, or the
 * baseline when `raw`). `*kib` receives the child's peak resident set (VmHWM).
 */
int rss_measure(const bench_ctx *bx, const char *self_exe, const char *state_path, int raw, int opt,
                long *kib, char *err, size_t errcap);

/** The child side of rss_measure(): argv = MODE OPT STATE_PATH DB_PATH. Returns the exit code. */
int rss_child_main(int argc, char **argv);

/** The sqlite store configuration of a row (JSON, into `buf`). */
void store_config(char *buf, size_t cap, const char *path, int sync_full, uint32_t keep);

#endif /* SNAP_BENCH_CASES_H */
