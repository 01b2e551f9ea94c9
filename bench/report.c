/*
 * The harness around the measurements: the clock, the statistics of the
 * repetitions, the report rows and their Markdown and CSV forms, and small
 * file helpers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void bench_stats(const double *v, int n, double *med, double *min, double *max) {
  double s[BENCH_MAX_REPS];
  if (n <= 0) {
    *med = *min = *max = 0;
    return;
  }
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  *min = s[0];
  *max = s[n - 1];
  *med = (n % 2) ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
}

/* VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve(), so a child
 * forked from a large parent would report the parent's pages as its own peak;
 * the high-water mark of /proc/self/status belongs to this image alone. */
long bench_peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
      break;
  }
  if (f != NULL)
    fclose(f);
  if (kib >= 0)
    return kib;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) {
    return -1;
  }
  return ru.ru_maxrss; /* KiB on Linux */
}

/* ------------------------------------------------------------------------ */

bench_row *bench_row_add(bench_report *r, const char *group, const char *name, const char *baseline,
                         const char *unit, bench_kind kind) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    bench_row *rows = realloc(r->rows, cap * sizeof *rows);
    if (!rows) {
      return NULL;
    }
    r->rows = rows;
    r->cap = cap;
  }
  bench_row *row = &r->rows[r->n++];
  memset(row, 0, sizeof *row);
  snprintf(row->group, sizeof row->group, "%s", group);
  snprintf(row->name, sizeof row->name, "%s", name);
  snprintf(row->baseline, sizeof row->baseline, "%s", baseline);
  snprintf(row->unit, sizeof row->unit, "%s", unit);
  row->kind = kind;
  return row;
}

void bench_row_record(bench_row *row, double snap, double raw) {
  if (row->n >= BENCH_MAX_REPS) {
    return;
  }
  double ratio = 0;
  if (row->kind == KIND_TIME) {
    ratio = snap > 0 ? raw / snap : 0;
  } else {
    ratio = raw > 0 ? snap / raw : 0;
  }
  row->snap[row->n] = snap;
  row->raw[row->n] = raw;
  row->ratio[row->n] = ratio;
  row->n++;
}

void bench_row_fail(bench_row *row, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(row->error, sizeof row->error, fmt, ap);
  va_end(ap);
  row->failed = 1;
  fprintf(stderr, "snap_bench: %s / %s: %s\n", row->group, row->name, row->error);
}

double bench_row_ratio(const bench_row *row) {
  double med, min, max;
  if (row->failed || row->n == 0) {
    return 0;
  }
  bench_stats(row->ratio, row->n, &med, &min, &max);
  return med;
}

const bench_row *bench_row_find(const bench_report *r, const char *group, const char *name) {
  for (size_t i = 0; i < r->n; i++) {
    const bench_row *row = &r->rows[i];
    if (!row->failed && row->n > 0 && strcmp(row->group, group) == 0 &&
        strcmp(row->name, name) == 0) {
      return row;
    }
  }
  return NULL;
}

/* Formats a figure with a precision that suits its magnitude. */
static void fmt_num(char *buf, size_t cap, double v) {
  if (v >= 10000) {
    snprintf(buf, cap, "%.0f", v);
  } else if (v >= 100) {
    snprintf(buf, cap, "%.0f", v);
  } else if (v >= 10) {
    snprintf(buf, cap, "%.1f", v);
  } else {
    snprintf(buf, cap, "%.2f", v);
  }
}

static void fmt_spread(char *buf, size_t cap, const double *v, int n) {
  double med, min, max;
  char a[24], b[24], c[24];
  bench_stats(v, n, &med, &min, &max);
  fmt_num(a, sizeof a, med);
  fmt_num(b, sizeof b, min);
  fmt_num(c, sizeof c, max);
  snprintf(buf, cap, "%s (%s–%s)", a, b, c);
}

static const char *kind_hint(bench_kind k) {
  switch (k) {
  case KIND_RATE:
    return "snap/raw, higher is better";
  case KIND_TIME:
    return "raw/snap time, higher is better";
  case KIND_SIZE:
    return "snap/raw, lower is better";
  }
  return "";
}

static void markdown_row(const bench_row *row, FILE *out) {
  if (row->failed || row->n == 0) {
    fprintf(out, "| %s | %s | failed: %s | %s | | |\n", row->name, row->unit,
            row->failed ? row->error : "not run", row->baseline);
    return;
  }
  char s[96], b[96]; /* three figures of at most 23 characters each */
  fmt_spread(s, sizeof s, row->snap, row->n);
  fmt_spread(b, sizeof b, row->raw, row->n);
  fprintf(out, "| %s%s%s | %s | %s | %s | %s | %.2f |\n", row->name, row->note[0] ? " — " : "",
          row->note, row->unit, s, row->baseline, b, bench_row_ratio(row));
}

void bench_report_markdown(const bench_report *r, FILE *out) {
  /* One table per group, in the order the groups first appear (load and disk
   * rows are measured interleaved). */
  for (size_t i = 0; i < r->n; i++) {
    const char *group = r->rows[i].group;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) {
      seen = strcmp(r->rows[j].group, group) == 0;
    }
    if (seen) {
      continue;
    }
    fprintf(out, "\n### %s\n\n", group);
    fprintf(out,
            "| case | unit | snapstore median (min–max) | baseline | baseline median "
            "(min–max) | ratio (%s) |\n",
            kind_hint(r->rows[i].kind));
    fprintf(out, "|---|---|---:|---|---:|---:|\n");
    for (size_t j = i; j < r->n; j++) {
      if (strcmp(r->rows[j].group, group) == 0) {
        markdown_row(&r->rows[j], out);
      }
    }
  }
}

/* CSV fields are quoted when they hold a comma or a quote. */
static void csv_field(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') {
      fputc('"', f);
    }
    fputc(*s, f);
  }
  fputc('"', f);
}

int bench_report_csv(const bench_report *r, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) {
    return -1;
  }
  fprintf(f, "group,case,baseline,unit,reps,snap_median,snap_min,snap_max,raw_median,raw_min,"
             "raw_max,ratio,ratio_meaning,note,error\n");
  for (size_t i = 0; i < r->n; i++) {
    const bench_row *row = &r->rows[i];
    double sm = 0, smin = 0, smax = 0, rm = 0, rmin = 0, rmax = 0;
    if (!row->failed && row->n > 0) {
      bench_stats(row->snap, row->n, &sm, &smin, &smax);
      bench_stats(row->raw, row->n, &rm, &rmin, &rmax);
    }
    csv_field(f, row->group);
    fputc(',', f);
    csv_field(f, row->name);
    fputc(',', f);
    csv_field(f, row->baseline);
    fputc(',', f);
    csv_field(f, row->unit);
    fprintf(f, ",%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,", row->n, sm, smin, smax, rm, rmin, rmax,
            bench_row_ratio(row));
    csv_field(f, kind_hint(row->kind));
    fputc(',', f);
    csv_field(f, row->note);
    fputc(',', f);
    csv_field(f, row->error);
    fputc('\n', f);
  }
  int err = ferror(f);
  if (fclose(f) != 0 || err) {
    return -1;
  }
  return 0;
}

void bench_report_free(bench_report *r) {
  free(r->rows);
  memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------------ */

void bench_db_remove(const char *path) {
  char p[4096];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-journal", path);
  unlink(p);
}

long long bench_db_bytes(const char *path) {
  char p[4096];
  struct stat sb;
  long long total = 0;
  if (stat(path, &sb) == 0) {
    total += (long long)sb.st_size;
  }
  snprintf(p, sizeof p, "%s-wal", path);
  if (stat(p, &sb) == 0) {
    total += (long long)sb.st_size;
  }
  return total;
}

void bench_path(char *buf, size_t cap, const bench_cfg *cfg, const char *name) {
  snprintf(buf, cap, "%s/%s", cfg->dir, name);
}

char **bench_pids_make(int n) {
  char **p = calloc((size_t)n, sizeof *p);
  if (!p) {
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    p[i] = malloc(24);
    if (!p[i]) {
      bench_pids_free(p, i);
      return NULL;
    }
    snprintf(p[i], 24, "account-%06d", i);
  }
  return p;
}

void bench_pids_free(char **pids, int n) {
  if (!pids) {
    return;
  }
  for (int i = 0; i < n; i++) {
    free(pids[i]);
  }
  free(pids);
}
