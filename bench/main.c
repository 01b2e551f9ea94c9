/*
 * snap_bench: snapstore against raw SQLite on the same disk, and against raw
 * libpq on a throw-away PostgreSQL server, in one process and one run. Every
 * row runs the snapstore side then the baseline, once each per repetition,
 * and reports the median and range of each and the median of their
 * per-repetition ratios. docs/PERFORMANCE.md explains every row.
 *
 *   snap_bench [--quick] [--csv FILE] [--reps N] [--dir DIR] [--only TEXT]
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "cases.h"
#include "runner.h"

/* ------------------------------------------------------------------------ */
/* Setup and the command line                                                */
/* ------------------------------------------------------------------------ */

static int ctx_init(bench_ctx *bx, const bench_cfg *cfg) {
  memset(bx, 0, sizeof *bx);
  bx->cfg = cfg;
  randombytes_buf(bx->key, sizeof bx->key);
  if (snap_keyring_new(&bx->kr) != SNAP_OK ||
      snap_keyring_add(bx->kr, 1, bx->key, sizeof bx->key) != SNAP_OK) {
    return -1;
  }
  for (int opt = 0; opt < OPT_COUNT; opt++) {
    snap_options *o = NULL;
    if (snap_options_new(&o) != SNAP_OK) {
      return -1;
    }
    bx->opts[opt] = o;
    int zlib = (opt & OPT_ZLIB) != 0;
    if (snap_options_set_compression(o, zlib ? SNAP_COMPRESSION_ZLIB : SNAP_COMPRESSION_NONE,
                                     zlib ? 1 : 0) != SNAP_OK ||
        snap_options_set_encryption(o, (opt & OPT_ENC) ? bx->kr : NULL, BENCH_CONTEXT) != SNAP_OK ||
        snap_options_set_key_mode(o, (opt & OPT_ENVELOPE) ? SNAP_KEYS_ENVELOPE
                                                          : SNAP_KEYS_DIRECT) != SNAP_OK) {
      return -1;
    }
  }
  return 0;
}

static void ctx_dispose(bench_ctx *bx) {
  for (int opt = 0; opt < OPT_COUNT; opt++) {
    snap_options_free(bx->opts[opt]);
  }
  snap_keyring_free(bx->kr);
  sodium_memzero(bx->key, sizeof bx->key);
}

static void usage(FILE *f) {
  fprintf(f, "usage: snap_bench [--quick] [--csv FILE] [--reps N] [--dir DIR] [--only TEXT]\n"
             "                  [--stream-gib N]\n"
             "  --quick     a few seconds in all: tiny counts, every row once (CI)\n"
             "  --csv FILE  also write every row as CSV\n"
             "  --reps N    repetitions per row (default 5; quick: 1)\n"
             "  --dir DIR   where the databases go (default: a new directory under .)\n"
             "  --only TEXT run only the rows whose group or case contains TEXT\n"
             "              (=TEXT: only the row whose case is exactly TEXT)\n"
             "  --stream-gib N  run the opt-in \"16 GiB\" stream rows on N GiB (1..16)\n");
}

static void print_header(const bench_cfg *cfg, int argc, char **argv, FILE *out) {
  struct utsname u;
  time_t now = time(NULL);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  fprintf(out, "# snap_bench%s\n\n", cfg->quick ? " (quick mode: figures are not meaningful)" : "");
  fprintf(out, "- command:");
  for (int i = 0; i < argc; i++) {
    fprintf(out, " %s", argv[i]);
  }
  fprintf(out, "\n- date: %s\n", when);
  if (uname(&u) == 0) {
    fprintf(out, "- machine: %s %s %s, %ld CPUs\n", u.sysname, u.release, u.machine,
            sysconf(_SC_NPROCESSORS_ONLN));
  }
  fprintf(out, "- SQLite %s, libsodium %s, directory %s\n", sqlite3_libversion(),
          sodium_version_string(), cfg->dir);
  fprintf(out,
          "- %d repetitions per row, snapstore and baseline alternating; figures are medians "
          "(min–max); the ratio is the median of the per-repetition ratios\n",
          cfg->reps);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--stream-child") == 0) {
    return stream_child_main(argc - 2, argv + 2);
  }
  if (argc >= 2 && strcmp(argv[1], "--rss-child") == 0) {
    return rss_child_main(argc - 2, argv + 2);
  }
  if (argc >= 2 && strcmp(argv[1], "--storm-child") == 0) {
    return storm_child_main(argc - 2, argv + 2);
  }
  bench_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.reps = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--quick") == 0) {
      cfg.quick = 1;
    } else if (strcmp(a, "--csv") == 0 && i + 1 < argc) {
      cfg.csv = argv[++i];
    } else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
      cfg.reps = atoi(argv[++i]);
      if (cfg.reps < 1 || cfg.reps > BENCH_MAX_REPS) {
        fprintf(stderr, "snap_bench: --reps must be 1..%d\n", BENCH_MAX_REPS);
        return 2;
      }
    } else if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
      cfg.dir = argv[++i];
    } else if (strcmp(a, "--only") == 0 && i + 1 < argc) {
      cfg.only = argv[++i];
    } else if (strcmp(a, "--stream-gib") == 0 && i + 1 < argc) {
      cfg.stream_gib = atoi(argv[++i]);
      if (cfg.stream_gib < 1 || cfg.stream_gib > 16) {
        fprintf(stderr, "snap_bench: --stream-gib must be 1..16\n");
        return 2;
      }
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (cfg.quick) {
    cfg.reps = cfg.reps > 0 ? cfg.reps : 1;
    cfg.save_seconds = 0.015;
    cfg.load_seconds = 0.01;
    cfg.codec_seconds = 0.002;
    cfg.load_pids = 100;
    cfg.rss_state = 4u << 20;
  } else {
    cfg.reps = cfg.reps > 0 ? cfg.reps : 5;
    cfg.save_seconds = 0.8;
    cfg.load_seconds = 0.4;
    cfg.codec_seconds = 0.1;
    cfg.load_pids = 10000;
    cfg.rss_state = 64u << 20;
  }

  /* The databases go to a directory of our own on the disk being measured
   * (not /tmp, which may be memory-backed and would make fsync free). */
  char made[64] = "";
  if (!cfg.dir) {
    snprintf(made, sizeof made, "snap-bench-XXXXXX");
    if (!mkdtemp(made)) {
      fprintf(stderr, "snap_bench: cannot create a directory here: %s\n", strerror(errno));
      return 1;
    }
    cfg.dir = made;
  } else if (mkdir(cfg.dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "snap_bench: cannot create %s: %s\n", cfg.dir, strerror(errno));
    return 1;
  }

  if (sodium_init() < 0) {
    fprintf(stderr, "snap_bench: libsodium failed to initialise\n");
    return 1;
  }
  bench_ctx bx;
  states s;
  bench_report report = {0};
  int rc = 0;
  double state_kib = 0;
  if (ctx_init(&bx, &cfg) != 0 || states_make(&s) != 0) {
    fprintf(stderr, "snap_bench: setup failed: %s\n", snap_error_message());
    return 1;
  }
  print_header(&cfg, argc, argv, stdout);
  printf("- states: ");
  for (int z = 0; z < SIZE_COUNT; z++) {
    printf("%s%s = %zu B JSON / %zu B msgpack (%d account%s)", z ? ", " : "",
           bench_size_label((bench_size)z), s.ledger[z].json_len, s.ledger[z].msgpack_len,
           s.ledger[z].accounts, s.ledger[z].accounts == 1 ? "" : "s");
  }
  printf(", 4 KiB random = %zu B msgpack bin\n", s.random4k_len);

  runner rn = {&bx, &report, cfg.only, 0};
  double t0 = bench_now();
  fprintf(stderr, "snap_bench: %d repetitions per row, databases in %s\n", cfg.reps, cfg.dir);
  save_rows(&rn, &s);
  executor_rows(&rn, &s);
  executor_ceiling_row(&rn, &s);
  executor_keep_rows(&rn, &s);
  prune_rows(&rn, &s);
  load_rows(&rn, &s);
  envelope_load_row(&rn, &s);
  manifest_rows(&rn, &s);
  metrics_rows(&rn, &s);
  storm_rows(&rn, &s);
  char pg_about[1024] = "";
  pg_rows(&rn, &s, pg_about, sizeof pg_about);
  codec_rows(&rn, &s);
  deflate_rows(&rn, &s);
  dict_rows(&rn);
  rss_rows(&rn, &state_kib);
  char stream_about[512] = "";
  stream_rows(&rn, stream_about, sizeof stream_about);

  bench_report_markdown(&report, stdout);
  if (pg_about[0]) {
    printf("\n- postgres rows: %s\n", pg_about);
  }
  if (stream_about[0]) {
    printf("\n- stream rows: %s\n", stream_about);
  }
  print_targets(&report, state_kib, stdout);
  print_baseline_check(&report, stdout);
  printf("\n- total time %.1f s; peak RSS of this process %ld KiB (the large-state rows ran in "
         "child processes)\n",
         bench_now() - t0, bench_peak_rss_kib());
  if (cfg.csv && bench_report_csv(&report, cfg.csv) != 0) {
    fprintf(stderr, "snap_bench: cannot write %s: %s\n", cfg.csv, strerror(errno));
    rc = 1;
  }
  if (rn.failures) {
    fprintf(stderr, "snap_bench: %d row(s) failed\n", rn.failures);
    rc = 1;
  }
  bench_report_free(&report);
  states_free(&s);
  ctx_dispose(&bx);
  if (made[0]) {
    rmdir(made);
  }
  return rc;
}

