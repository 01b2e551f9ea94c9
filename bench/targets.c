/*
 * snap_bench: the report read against the goals of docs/PERFORMANCE.md and
 * the baselines against reference figures for this kind of machine.
 */
#include <string.h>

#include "runner.h"

/* Targets                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct target {
  const char *label;
  const char *group;
  const char *name;
  double min_ratio; /* the ratio must be at least this (0: see max_state) */
  double max_state; /* rss rows: the snapstore peak at most this many times the state */
  double max_ratio; /* size rows: the ratio must be at most this (0: unused) */
  double min_snap;  /* the snapstore median must be at least this, in the row's unit (0: unused) */
} target;

static const target targets[] = {
    {"sync save, 4 KiB JSON, plain, synchronous=full", "save", "4 KiB JSON, plain, sync=full", 0.95,
     0, 0, 0},
    {"sync save, 4 KiB JSON, zlib-1 + encryption, synchronous=full", "save",
     "4 KiB JSON, zlib-1+enc, sync=full", 0.85, 0, 0, 0},
    {"sync save, 4 KiB JSON, zlib-1 + encryption, synchronous=normal", "save",
     "4 KiB JSON, zlib-1+enc, sync=normal", 0.85, 0, 0, 0},
    {"executor, 16 pipelined submitters, 4 KiB, synchronous=full, vs raw batched 1,000 per "
     "transaction",
     "executor", "16 submitters, pipelined, 4 KiB JSON, plain, sync=full", 0.70, 0, 0, 0},
    {"executor, 16 pipelined submitters, 256 B, synchronous=full, vs raw one insert per "
     "transaction",
     "executor", "16 submitters, pipelined, 256 B JSON, plain, sync=full", 10.0, 0, 0, 0},
    {"load_latest, 4 KiB plain, vs raw SELECT newest + copy", "load", "4 KiB JSON, plain", 0.90, 0,
     0, 0},
    {"load_latest, 4 KiB zlib-1 + encryption", "load", "4 KiB JSON, zlib-1+enc", 0.70, 0, 0, 0},
    {"sync save, 4 KiB zlib-1, envelope keys vs direct keys, synchronous=full", "save",
     "4 KiB JSON, zlib-1+envelope, sync=full", 0.95, 0, 0, 0},
    {"load_latest, 4 KiB zlib-1, envelope keys vs direct keys", "load",
     "4 KiB JSON, zlib-1+envelope", 0.95, 0, 0, 0},
    {"sync save, 64 KiB JSON, zlib-1 + encryption, synchronous=full", "save",
     "64 KiB JSON, zlib-1+enc, sync=full", 0.80, 0, 0, 0},
    {"sync save, 1 MiB JSON, zlib-1 + encryption, synchronous=full", "save",
     "1 MiB JSON, zlib-1+enc, sync=full", 0.70, 0, 0, 0},
    {"executor, 16 pipelined submitters, keep 3, vs raw 1,000 per transaction with prune",
     "executor", "16 submitters, pipelined, 4 KiB JSON, plain, sync=full, keep=3", 0.80, 0, 0, 0},
    {"recovery storm, 10,000 pids, zlib-1 + encryption, executor vs 2 threads direct, cold",
     "storm", "10,000 pids 4 KiB JSON, zlib-1+enc, executor, cold", 0.95, 0, 0, 0},
    {"recovery storm, 10,000 pids, zlib-1 + encryption, executor vs 2 threads direct, warm",
     "storm", "10,000 pids 4 KiB JSON, zlib-1+enc, executor, warm", 0.95, 0, 0, 0},
    {"bytes written per save, executor keep 3, vs a single save's", "written",
     "executor, 16 pipelined submitters, 4 KiB JSON, plain, keep=3", 0, 0, 1.5, 0},
    {"JSON validation, 1 MiB ledger, GB/s", "validate", "1 MiB JSON", 0, 0, 0, 1.0},
    {"JSON validation, 64 KiB ledger, GB/s", "validate", "64 KiB JSON", 0, 0, 0, 1.0},
    {"postgres: sync save, 4 KiB plain, keep 3, vs raw libpq", "postgres", PG_SYNC_ROW, 0.90, 0, 0,
     0},
    {"postgres: executor, 16 pipelined submitters, keep 3, vs raw libpq in the same pipelined "
     "groups",
     "postgres", PG_GROUPS_ROW, 0.85, 0, 0, 0},
    {"postgres: load_latest, 4 KiB plain, vs raw libpq", "postgres", PG_LOAD_ROW, 0.80, 0, 0, 0},
    {"compression, 256 B JSON corpus, zstd-3 + dictionary vs zlib-1 (body bytes)", "dict",
     "256 B JSON corpus, zstd-3+dict", 2.0, 0, 0, 0},
    {"compression, 1 KiB JSON corpus, zstd-3 + dictionary vs zlib-1 (body bytes)", "dict",
     "1 KiB JSON corpus, zstd-3+dict", 2.0, 0, 0, 0},
    {"compression, 4 KiB JSON corpus, zstd-3 + dictionary vs zlib-1 (body bytes)", "dict",
     "4 KiB JSON corpus, zstd-3+dict", 1.5, 0, 0, 0},
    {"compression, 1 KiB JSON corpus, zstd-3 without dictionary vs zlib-1", "dict",
     "1 KiB JSON corpus, zstd-3", 1.0, 0, 0, 0},
    {"encode, 1 KiB JSON corpus, zstd-3 + dictionary vs zlib-1 (time)", "encode",
     "1 KiB JSON corpus, zstd-3+dict", 2.0, 0, 0, 0},
    {"decode, 1 KiB JSON corpus, zstd-3 + dictionary vs zlib-1 (time)", "decode",
     "1 KiB JSON corpus, zstd-3+dict", 2.0, 0, 0, 0},
    {"sync save, 1 KiB JSON corpus, zstd-3 + dictionary + encryption, vs raw uncompressed",
     "save", "1 KiB JSON corpus, zstd-3+dict+enc, sync=full", 1.0, 0, 0, 0},
    {"load_latest, 1 KiB JSON corpus, zstd-3 + dictionary + encryption, vs raw uncompressed",
     "load", "1 KiB JSON corpus, zstd-3+dict+enc", 0.85, 0, 0, 0},
    {"save with a manifest vs without, memory store (the save path's CPU)", "save",
     "4 KiB JSON, plain, manifest, memory store", 0.98, 0, 0, 0},
    {"save with a manifest vs without, sqlite, zlib-1 + encryption, synchronous=normal", "save",
     "4 KiB JSON, zlib-1+enc, manifest, sync=normal", 0.98, 0, 0, 0},
    {"peak RSS saving then loading one large state (plain)", "rss", "plain", 0, 4.0, 0, 0},
    {"peak RSS saving then loading one large state (zlib-1 + encryption)", "rss", "zlib-1+enc", 0,
     4.0, 0, 0},
};

static const bench_row *find_rss(const bench_report *r, const char *opt) {
  char suffix[64];
  snprintf(suffix, sizeof suffix, ", %s, save then load", opt);
  for (size_t i = 0; i < r->n; i++) {
    const bench_row *row = &r->rows[i];
    size_t nl = strlen(row->name), sl = strlen(suffix);
    if (!row->failed && row->n > 0 && strcmp(row->group, "rss") == 0 && nl > sl &&
        strcmp(row->name + nl - sl, suffix) == 0) {
      return row;
    }
  }
  return NULL;
}

void print_targets(const bench_report *r, double state_kib, FILE *out) {
  fprintf(out, "\n## targets\n\n| target | required | measured (median) | met |\n"
               "|---|---:|---:|---|\n");
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    const target *t = &targets[i];
    if (t->max_state > 0) {
      const bench_row *row = find_rss(r, t->name);
      if (!row || state_kib <= 0) {
        fprintf(out, "| %s | ≤ %.0f × state | not measured | — |\n", t->label, t->max_state);
        continue;
      }
      double med, min, max;
      bench_stats(row->snap, row->n, &med, &min, &max);
      double times = med / state_kib;
      fprintf(out, "| %s | ≤ %.0f × state | %.2f × state (%.0f KiB for %.0f KiB) | %s |\n",
              t->label, t->max_state, times, med, state_kib, times <= t->max_state ? "yes" : "NO");
      continue;
    }
    const bench_row *row = bench_row_find(r, t->group, t->name);
    if (t->min_snap > 0) {
      if (!row || row->n == 0) {
        fprintf(out, "| %s | ≥ %.2f | not measured | — |\n", t->label, t->min_snap);
      } else {
        double med, min, max;
        bench_stats(row->snap, row->n, &med, &min, &max);
        fprintf(out, "| %s | ≥ %.2f | %.2f | %s |\n", t->label, t->min_snap, med,
                med >= t->min_snap ? "yes" : "NO");
      }
      continue;
    }
    if (t->max_ratio > 0) {
      if (!row) {
        fprintf(out, "| %s | ≤ %.2f | not measured | — |\n", t->label, t->max_ratio);
      } else {
        double ratio = bench_row_ratio(row);
        fprintf(out, "| %s | ≤ %.2f | %.2f | %s |\n", t->label, t->max_ratio, ratio,
                ratio <= t->max_ratio ? "yes" : "NO");
      }
      continue;
    }
    if (!row) {
      fprintf(out, "| %s | ≥ %.2f | not measured | — |\n", t->label, t->min_ratio);
      continue;
    }
    double ratio = bench_row_ratio(row);
    fprintf(out, "| %s | ≥ %.2f | %.2f | %s |\n", t->label, t->min_ratio, ratio,
            ratio >= t->min_ratio ? "yes" : "NO");
  }
  fprintf(out, "\nThe executor targets are judged on the pipelined rows: an actor's snapshot save "
               "is asynchronous (it keeps processing messages while the save completes), so it can "
               "have several saves in flight. In the closed loop each of 16 submitters awaits its "
               "callback before saving again, so a transaction can never carry more than 16 saves "
               "and the ratio to 1,000-row raw transactions is bounded by that model, not by the "
               "executor; the closed-loop rows are reported beside them.\n");
}

/* The baseline's figures measured on this kind of machine with the plain C
 * APIs (docs/MACHINE.md). A baseline far from them means a
 * busy disk or CPU — or a wrong baseline — so the report shows both. */
typedef struct reference {
  const char *group;
  const char *name;
  double value;
  const char *what;
} reference;

static const reference references[] = {
    {"save", "4 KiB JSON, plain, sync=full", 4400, "4 KiB insert, 1 per transaction, full"},
    {"save", "4 KiB JSON, plain, sync=normal", 17700, "4 KiB insert, 1 per transaction, normal"},
    {"save", "256 B JSON, plain, sync=full", 5600, "256 B insert, 1 per transaction, full"},
    {"save", "1 MiB JSON, plain, sync=full", 250, "1 MiB insert, 1 per transaction, full"},
    {"executor", "16 submitters, pipelined, 4 KiB JSON, plain, sync=full", 34000,
     "4 KiB inserts, 1,000 per transaction"},
    {"load", "4 KiB JSON, plain", 75000, "load newest 4 KiB row (10,000 pids × 3)"},
    {"load", "256 B JSON, plain", 140000, "load newest 256 B row (10,000 pids × 3)"},
};

void print_baseline_check(const bench_report *r, FILE *out) {
  fprintf(out, "\n## baseline check\n\nThe baseline against reference figures for this kind of "
               "machine (±30 %% is disk noise; far below means a busy machine).\n\n"
               "| baseline | reference | measured median | measured / reference |\n"
               "|---|---:|---:|---:|\n");
  for (size_t i = 0; i < sizeof references / sizeof references[0]; i++) {
    const reference *ref = &references[i];
    const bench_row *row = bench_row_find(r, ref->group, ref->name);
    if (!row) {
      continue;
    }
    double med, min, max;
    bench_stats(row->raw, row->n, &med, &min, &max);
    fprintf(out, "| %s | %.0f/s | %.0f/s | %.2f |\n", ref->what, ref->value, med, med / ref->value);
  }
}

/* ------------------------------------------------------------------------ */
