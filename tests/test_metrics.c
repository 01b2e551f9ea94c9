/* The built-in metrics: exact totals from many threads at once, the switch,
 * the quantiles, the executor's queue wait apart from its commits, and the
 * Prometheus text checked by a small parser of the exposition format. Run
 * under ThreadSanitizer by `make tsan` (label "threads"). */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */

#include "snap/executor.h"
#include "snap/observe.h"
#include "snap/store.h"
#include "snap/sys/backend.h"

enum { THREADS = 8, OPS = 10000, KEEP = 3 };

typedef struct worker {
  snap_store *st;
  int id;
  int failures;
  uint64_t state_saved, state_loaded;
} worker;

static atomic_ulong observed[SNAP_EVENT_KIND_END];

static void count_events(void *ud, const snap_event *ev) {
  (void)ud;
  atomic_fetch_add(&observed[ev->kind], 1);
}

/* Half saves, half loads of the thread's own pid: every load finds a snapshot. */
static void *run(void *arg) {
  worker *w = arg;
  char pid[16], state[64];
  snprintf(pid, sizeof pid, "t-%d", w->id);
  for (int i = 0; i < OPS; i++) {
    if (i % 2 == 0) {
      int n = snprintf(state, sizeof state, "{\"t\":%d,\"i\":%d}", w->id, i);
      if (snap_save(w->st, pid, i, SNAP_FORMAT_JSON, state, (size_t)n, NULL, NULL) != SNAP_OK)
        w->failures++;
      w->state_saved += (uint64_t)n;
    } else {
      snap_snapshot *s = NULL;
      if (snap_load_latest(w->st, pid, NULL, &s) != SNAP_OK || s == NULL)
        w->failures++;
      else
        w->state_loaded += s->len;
      snap_snapshot_free(s);
    }
  }
  return NULL;
}

Test(metrics, eight_threads_of_ten_thousand_operations_add_up_exactly) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), "{\"keep\": 3}"), SNAP_OK);
  cr_assert_eq(snap_store_set_observer(st, count_events, NULL), SNAP_OK);
  worker w[THREADS];
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){st, i, 0, 0, 0};
    cr_assert_eq(pthread_create(&t[i], NULL, run, &w[i]), 0);
  }
  uint64_t saved = 0, loaded = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(w[i].failures, 0, "thread %d", i);
    saved += w[i].state_saved;
    loaded += w[i].state_loaded;
  }
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  const uint64_t saves = THREADS * OPS / 2, loads = THREADS * OPS / 2;
  cr_assert_eq(m.ops[SNAP_OP_SAVE][0], saves);
  cr_assert_eq(m.ops[SNAP_OP_LOAD][0], loads);
  for (int i = 1; i < SNAP_METRICS_STATUSES; i++)
    cr_assert_eq(m.ops[SNAP_OP_SAVE][i] + m.ops[SNAP_OP_LOAD][i], 0u, "no failures (slot %d)", i);
  cr_assert_eq(m.latency[SNAP_OP_SAVE].count, saves);
  cr_assert_eq(m.latency[SNAP_OP_LOAD].count, loads);
  uint64_t in_buckets = 0;
  for (int i = 0; i < SNAP_METRICS_BUCKETS; i++)
    in_buckets += m.latency[SNAP_OP_LOAD].buckets[i];
  cr_assert_eq(in_buckets, loads);
  cr_assert_eq(m.state_bytes[SNAP_OP_SAVE], saved);
  cr_assert_eq(m.state_bytes[SNAP_OP_LOAD], loaded);
  cr_assert_gt(m.body_bytes[SNAP_OP_SAVE], saved, "plain bodies carry a frame");
  /* Every save past the third of a pid prunes exactly one snapshot. */
  const uint64_t prunes = THREADS * (OPS / 2 - KEEP);
  cr_assert_eq(m.pruned, prunes);
  cr_assert_eq(m.ops[SNAP_OP_PRUNE][0], prunes);
  cr_assert_eq(atomic_load(&observed[SNAP_EVENT_SAVE]), saves);
  cr_assert_eq(atomic_load(&observed[SNAP_EVENT_LOAD]), loads);
  cr_assert_eq(atomic_load(&observed[SNAP_EVENT_PRUNE]), prunes);
  snap_store_close(st);
}

Test(metrics, switching_them_off_stops_counting_and_keeps_the_counts) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), NULL), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_store_set_metrics(st, 0), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  cr_assert_eq(m.ops[SNAP_OP_SAVE][0], 1u);
  cr_assert_eq(snap_store_set_metrics(st, 1), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  cr_assert_eq(m.ops[SNAP_OP_SAVE][0], 2u);
  cr_assert_eq(snap_store_metrics(NULL, &m), SNAP_EINVAL);
  cr_assert_eq(snap_store_metrics(st, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_store_set_metrics(NULL, 1), SNAP_EINVAL);
  snap_store_close(st);
}

Test(metrics, errors_are_counted_by_code) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), NULL), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "{", 1, NULL, NULL), SNAP_EFORMAT);
  cr_assert_eq(snap_save(st, "p", -1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_save(st, "p", -2, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL);
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  cr_assert_eq(m.ops[SNAP_OP_SAVE][-SNAP_EFORMAT], 1u);
  cr_assert_eq(m.ops[SNAP_OP_SAVE][-SNAP_EINVAL], 2u);
  cr_assert_eq(m.ops[SNAP_OP_SAVE][0], 0u);
  cr_assert_eq(snap_metrics_status_code(-SNAP_EFORMAT), SNAP_EFORMAT);
  cr_assert_eq(snap_metrics_status_code(0), SNAP_OK);
  snap_store_close(st);
}

Test(metrics, quantiles_interpolate_inside_the_log_buckets) {
  snap_histogram h;
  memset(&h, 0, sizeof h);
  cr_assert_eq(snap_histogram_quantile(&h, 0.5), 0.0);
  h.buckets[3] = 100; /* (4, 8] µs */
  h.count = 100;
  double p50 = snap_histogram_quantile(&h, 0.5);
  cr_assert(p50 > 5.99 && p50 < 6.01, "p50 %g", p50);
  h.buckets[10] = 100; /* (512, 1024] µs */
  h.count = 200;
  double p99 = snap_histogram_quantile(&h, 0.99);
  cr_assert(p99 > 1000 && p99 <= 1024, "p99 %g", p99);
  cr_assert(snap_histogram_quantile(&h, 0.25) <= 8.0);
}

/* ------------------------------------------------------------------------ */
/* A small parser of the Prometheus text format (version 0.0.4)              */
/* ------------------------------------------------------------------------ */

#define MAX_FAMILIES 32

typedef struct family {
  char name[96];
  char type[16];
  int helped, samples;
} family;

typedef struct parsed {
  family f[MAX_FAMILIES];
  int nf;
  char error[640];
} parsed;

static family *family_of(parsed *p, const char *name, bool create) {
  for (int i = 0; i < p->nf; i++)
    if (strcmp(p->f[i].name, name) == 0)
      return &p->f[i];
  if (!create || p->nf == MAX_FAMILIES)
    return NULL;
  family *f = &p->f[p->nf++];
  memset(f, 0, sizeof *f);
  snprintf(f->name, sizeof f->name, "%s", name);
  return f;
}

static const char *metric_name(const char *s, char *out, size_t cap) {
  size_t n = 0;
  if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
    return NULL;
  while ((isalnum((unsigned char)*s) || *s == '_' || *s == ':') && n + 1 < cap)
    out[n++] = *s++;
  out[n] = '\0';
  return s;
}

/* The family a sample belongs to: histograms' _bucket/_sum/_count series included. */
static family *sample_family(parsed *p, const char *name) {
  family *f = family_of(p, name, false);
  if (f)
    return f;
  static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(name), k = strlen(suffixes[i]);
    if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
      char base[96];
      snprintf(base, sizeof base, "%.*s", (int)(n - k), name);
      f = family_of(p, base, false);
      if (f && strcmp(f->type, "histogram") == 0)
        return f;
    }
  }
  return NULL;
}

/* Parses the whole text; false with p->error on the first problem. */
static bool parse(const char *text, parsed *p) {
  memset(p, 0, sizeof *p);
  const char *line = text;
  int lineno = 0;
  while (*line) {
    lineno++;
    const char *end = strchr(line, '\n');
    if (!end) {
      snprintf(p->error, sizeof p->error, "line %d: no final newline", lineno);
      return false;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)(end - line), line);
    line = end + 1;
    char name[96];
    if (strncmp(buf, "# HELP ", 7) == 0 || strncmp(buf, "# TYPE ", 7) == 0) {
      const char *r = metric_name(buf + 7, name, sizeof name);
      if (!r || *r != ' ') {
        snprintf(p->error, sizeof p->error, "line %d: bad comment '%s'", lineno, buf);
        return false;
      }
      family *f = family_of(p, name, true);
      if (buf[2] == 'H') {
        f->helped++;
      } else {
        snprintf(f->type, sizeof f->type, "%s", r + 1);
        if (strcmp(f->type, "counter") && strcmp(f->type, "gauge") &&
            strcmp(f->type, "histogram")) {
          snprintf(p->error, sizeof p->error, "line %d: bad type '%s'", lineno, f->type);
          return false;
        }
      }
      continue;
    }
    const char *r = metric_name(buf, name, sizeof name);
    if (!r) {
      snprintf(p->error, sizeof p->error, "line %d: bad sample '%s'", lineno, buf);
      return false;
    }
    if (*r == '{') {
      r++;
      while (*r != '}') {
        char label[96];
        r = metric_name(r, label, sizeof label);
        if (!r || *r++ != '=' || *r++ != '"') {
          snprintf(p->error, sizeof p->error, "line %d: bad label in '%s'", lineno, buf);
          return false;
        }
        while (*r && *r != '"')
          r += *r == '\\' ? 2 : 1;
        if (*r++ != '"' || (*r != ',' && *r != '}')) {
          snprintf(p->error, sizeof p->error, "line %d: bad label value in '%s'", lineno, buf);
          return false;
        }
        if (*r == ',')
          r++;
      }
      r++;
    }
    char *vend = NULL;
    if (*r++ != ' ') {
      snprintf(p->error, sizeof p->error, "line %d: no value in '%s'", lineno, buf);
      return false;
    }
    (void)strtod(r, &vend);
    if (vend == r || *vend != '\0') {
      snprintf(p->error, sizeof p->error, "line %d: bad value in '%s'", lineno, buf);
      return false;
    }
    family *f = sample_family(p, name);
    if (!f || !f->type[0]) {
      snprintf(p->error, sizeof p->error, "line %d: '%s' has no TYPE before it", lineno, name);
      return false;
    }
    f->samples++;
  }
  return true;
}

/* The value of the sample whose line starts with `series` followed by a space. */
static double value_of(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    if (strncmp(l, series, n) == 0 && l[n] == ' ')
      return strtod(l + n + 1, NULL);
  return -1;
}

Test(metrics, the_prometheus_text_parses_and_has_the_documented_names) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), "{\"keep\": 1}"), SNAP_OK);
  /* The executor's series are there once an executor has run over the store. */
  snap_executor *ex = NULL;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK, "%s", snap_error_message());
  snap_executor_free(ex);
  for (int64_t seq = 1; seq <= 3; seq++)
    cr_assert_eq(snap_save(st, "p", seq, SNAP_FORMAT_JSON, "[1,2]", 5, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 4, SNAP_FORMAT_JSON, "{", 1, NULL, NULL), SNAP_EFORMAT);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK);
  snap_snapshot_free(s);
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  char *text = NULL;
  size_t len = 0;
  cr_assert_eq(snap_metrics_prometheus(&m, "store=\"orders\"", &text, &len), SNAP_OK);
  cr_assert_eq(strlen(text), len);
  parsed p;
  cr_assert(parse(text, &p), "%s", p.error);
  static const struct {
    const char *name, *type;
  } documented[] = {
      {"snapstore_operations_total", "counter"},
      {"snapstore_operation_duration_seconds", "histogram"},
      {"snapstore_state_bytes_total", "counter"},
      {"snapstore_body_bytes_total", "counter"},
      {"snapstore_pruned_snapshots_total", "counter"},
      {"snapstore_incidents_total", "counter"},
      {"snapstore_envelope_keys_total", "counter"},
      {"snapstore_envelope_key_cache_misses_total", "counter"},
      {"snapstore_executor_queue_depth", "gauge"},
      {"snapstore_executor_queue_depth_max", "gauge"},
      {"snapstore_executor_batch_saves", "histogram"},
      {"snapstore_executor_request_duration_seconds", "histogram"},
      {"snapstore_executor_queue_wait_seconds", "histogram"},
      {"snapstore_executor_commit_seconds", "histogram"},
  };
  cr_assert_eq(p.nf, (int)(sizeof documented / sizeof *documented), "families: %d", p.nf);
  for (size_t i = 0; i < sizeof documented / sizeof *documented; i++) {
    family *f = family_of(&p, documented[i].name, false);
    cr_assert_not_null(f, "%s", documented[i].name);
    cr_assert_str_eq(f->type, documented[i].type, "%s", documented[i].name);
    cr_assert_eq(f->helped, 1, "%s", documented[i].name);
    cr_assert_gt(f->samples, 0, "%s", documented[i].name);
  }
  cr_assert_eq(
      value_of(text, "snapstore_operations_total{store=\"orders\",op=\"save\",status=\"ok\"}"),
      3.0);
  cr_assert_eq(
      value_of(text, "snapstore_operations_total{store=\"orders\",op=\"save\",status=\"eformat\"}"),
      1.0);
  cr_assert_eq(
      value_of(text, "snapstore_operations_total{store=\"orders\",op=\"load\",status=\"ok\"}"),
      1.0);
  cr_assert_eq(value_of(text, "snapstore_pruned_snapshots_total{store=\"orders\"}"), 2.0);
  cr_assert_eq(value_of(text, "snapstore_state_bytes_total{store=\"orders\",op=\"save\"}"), 15.0);
  /* The histogram is cumulative and its +Inf bucket is its count. */
  cr_assert_eq(value_of(text, "snapstore_operation_duration_seconds_bucket{store=\"orders\",op="
                              "\"save\",le=\"+Inf\"}"),
               4.0);
  cr_assert_eq(
      value_of(text, "snapstore_operation_duration_seconds_count{store=\"orders\",op=\"save\"}"),
      4.0);
  cr_assert_eq(value_of(text, "snapstore_operation_duration_seconds_bucket{store=\"orders\",op="
                              "\"load\",le=\"1e-06\"}") <= 1.0,
               true);
  snap_free(text);

  /* Without labels, and refused labels. */
  cr_assert_eq(snap_metrics_prometheus(&m, NULL, &text, NULL), SNAP_OK);
  cr_assert(parse(text, &p), "%s", p.error);
  cr_assert_eq(value_of(text, "snapstore_pruned_snapshots_total"), 2.0);
  snap_free(text);
  const char *bad[] = {"store",      "store=orders", "1x=\"a\"",  "a=\"b\",",
                       "a=\"q\"q\"", "__a=\"b\"",    "a=\"x\ny\""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    text = (char *)1;
    cr_assert_eq(snap_metrics_prometheus(&m, bad[i], &text, NULL), SNAP_EINVAL, "%s", bad[i]);
    cr_assert_null(text);
  }
  cr_assert_eq(snap_metrics_prometheus(NULL, NULL, &text, NULL), SNAP_EINVAL);
  snap_store_close(st);
}

/* ---- the executor's time: waiting in the queue, then committing ---------- */

enum { HELD_MS = 200, QUEUED_SAVES = 50 };

typedef struct hold {
  atomic_bool entered, released;
} hold;

/* A callback that keeps the executor's worker until released. */
static void hold_cb(void *ud, snap_result *r) {
  hold *h = ud;
  (void)r;
  atomic_store(&h->entered, true);
  struct timespec tick = {0, 1000000};
  while (!atomic_load(&h->released))
    nanosleep(&tick, NULL);
}

static double sum_of(const char *text, const char *series) {
  char name[128];
  snprintf(name, sizeof name, "%s_sum", series);
  return value_of(text, name);
}

/* Saves that wait 200 ms in the queue behind a held worker and then commit in
 * a transaction or two: the queue wait histogram holds the 200 ms waits, the
 * commit histogram only the transactions. Before, one histogram mixed both
 * and its sum (50 x 200 ms) read as commit time. */
Test(metrics, executor_queue_wait_and_commit_are_apart) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), "{\"keep\": 1}"), SNAP_OK);
  snap_executor *ex = NULL;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK, "%s", snap_error_message());
  hold h;
  atomic_init(&h.entered, false);
  atomic_init(&h.released, false);
  cr_assert_eq(snap_executor_delete(ex, "holder", NULL, hold_cb, &h), SNAP_OK);
  struct timespec tick = {0, 1000000};
  while (!atomic_load(&h.entered))
    nanosleep(&tick, NULL);
  for (int i = 0; i < QUEUED_SAVES; i++) {
    snap_save_req r = {"queued", i + 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[1]", 3, NULL};
    cr_assert_eq(snap_executor_save(ex, &r, NULL, NULL), SNAP_OK, "%s", snap_error_message());
  }
  struct timespec held = {0, HELD_MS * 1000000L};
  nanosleep(&held, NULL);
  atomic_store(&h.released, true);
  cr_assert_eq(snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN), SNAP_OK);
  snap_executor_stats es;
  snap_executor_stats_get(ex, &es);

  snap_executor_metrics em;
  cr_assert_eq(snap_executor_metrics_get(ex, &em), SNAP_OK);
  snap_executor_free(ex);

  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  const uint64_t held_ns = (uint64_t)HELD_MS * 1000000u;
  cr_assert_eq(em.queue_wait.count, (uint64_t)QUEUED_SAVES + 1, "the holder and the saves");
  cr_assert_geq(em.queue_wait.sum, QUEUED_SAVES * held_ns, "waits: %" PRIu64 " ns",
                em.queue_wait.sum);
  cr_assert_eq(em.commit.count, es.commits, "one value per transaction of saves");
  cr_assert_geq(es.commits, 1);
  cr_assert_lt(em.commit.sum, held_ns, "commits took %" PRIu64 " ns in all, no queue wait",
               em.commit.sum);
  cr_assert_geq(em.latency.sum, em.queue_wait.sum - held_ns,
                "submit to completion includes the wait");

  char *text = NULL;
  cr_assert_eq(snap_metrics_prometheus(&m, NULL, &text, NULL), SNAP_OK);
  cr_assert(strstr(text, "# HELP snapstore_executor_queue_wait_seconds Executor requests from "
                         "submission until the executor took them off its queue."),
            "%s", text);
  cr_assert(strstr(text, "# HELP snapstore_executor_commit_seconds Executor transactions of saves"),
            "%s", text);
  double wait = sum_of(text, "snapstore_executor_queue_wait_seconds");
  double commit = sum_of(text, "snapstore_executor_commit_seconds");
  cr_assert(wait >= QUEUED_SAVES * HELD_MS / 1000.0 && commit >= 0 && commit < HELD_MS / 1000.0,
            "queue wait %.3f s, commit %.3f s", wait, commit);
  snap_free(text);
  snap_store_close(st);
}

/* ---- series registered by a layer above the store ------------------------ */

Test(metrics, a_registered_series_appears_in_the_prometheus_text) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), "{}"), SNAP_OK);
  int widgets = -1, sizes = -1, waits = -1, again = -1;
  cr_assert_eq(
      snap_store_series_register(st, "app_widgets", "Widgets now.", SNAP_SERIES_GAUGE, &widgets),
      SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(
      snap_store_series_register(st, "app_sizes", "Sizes seen.", SNAP_SERIES_HISTOGRAM, &sizes),
      SNAP_OK);
  cr_assert_eq(
      snap_store_series_register(st, "app_wait_seconds", "Waits.", SNAP_SERIES_DURATION, &waits),
      SNAP_OK);
  cr_assert_eq(
      snap_store_series_register(st, "app_widgets", "Widgets now.", SNAP_SERIES_GAUGE, &again),
      SNAP_OK);
  cr_assert_eq(again, widgets, "the same name and type give the same handle");
  cr_assert_eq(snap_store_gauge_set(st, widgets, 40), SNAP_OK);
  cr_assert_eq(snap_store_gauge_raise(st, widgets, 42), SNAP_OK);
  cr_assert_eq(snap_store_gauge_raise(st, widgets, 7), SNAP_OK, "lower: no change");
  cr_assert_eq(snap_store_histogram_observe(st, sizes, 3), SNAP_OK);
  cr_assert_eq(snap_store_histogram_observe(st, sizes, 100), SNAP_OK);
  cr_assert_eq(snap_store_histogram_observe(st, waits, 1500), SNAP_OK);
  cr_assert_eq(snap_store_histogram_observe(st, widgets, 1), SNAP_EINVAL, "a gauge");
  cr_assert_eq(snap_store_gauge_set(st, sizes, 1), SNAP_EINVAL, "a histogram");
  cr_assert_eq(snap_store_gauge_set(st, 99, 1), SNAP_EINVAL, "never registered");

  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  const snap_series *s = NULL;
  cr_assert_eq(snap_metrics_series(&m, "app_widgets", &s), SNAP_OK);
  cr_assert_eq(s->gauge, 42);
  cr_assert_eq(snap_metrics_series(&m, "app_nothing", &s), SNAP_ENOTFOUND);
  char *text = NULL;
  cr_assert_eq(snap_metrics_prometheus(&m, "store=\"x\"", &text, NULL), SNAP_OK);
  parsed p;
  cr_assert(parse(text, &p), "%s", p.error);
  cr_assert(strstr(text, "# HELP app_widgets Widgets now.\n# TYPE app_widgets gauge\n"
                         "app_widgets{store=\"x\"} 42\n"),
            "%s", text);
  cr_assert(strstr(text, "# HELP app_sizes Sizes seen.\n# TYPE app_sizes histogram\n"), "%s", text);
  cr_assert_eq(value_of(text, "app_sizes_bucket{store=\"x\",le=\"4\"}"), 1.0);
  cr_assert_eq(value_of(text, "app_sizes_bucket{store=\"x\",le=\"+Inf\"}"), 2.0);
  cr_assert_eq(value_of(text, "app_sizes_sum{store=\"x\"}"), 103.0);
  cr_assert(strstr(text, "# TYPE app_wait_seconds histogram\n"), "%s", text);
  cr_assert_eq(value_of(text, "app_wait_seconds_bucket{store=\"x\",le=\"2e-06\"}"), 1.0);
  cr_assert_eq(value_of(text, "app_wait_seconds_bucket{store=\"x\",le=\"1e-06\"}"), 0.0);
  cr_assert_eq(value_of(text, "app_wait_seconds_sum{store=\"x\"}"), 1.5e-06);
  snap_free(text);
  snap_store_close(st);
}

Test(metrics, series_registration_refuses_what_prometheus_could_not_read) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), "{}"), SNAP_OK);
  int id = 0;
  cr_assert_eq(snap_store_series_register(st, "9lives", "h", SNAP_SERIES_GAUGE, &id), SNAP_EINVAL);
  cr_assert_eq(id, -1);
  cr_assert_eq(snap_store_series_register(st, "a-b", "h", SNAP_SERIES_GAUGE, &id), SNAP_EINVAL);
  cr_assert_eq(
      snap_store_series_register(st, "snapstore_operations_total", "h", SNAP_SERIES_GAUGE, &id),
      SNAP_EINVAL, "a built-in family");
  cr_assert_eq(snap_store_series_register(st, "ok_name", "two\nlines", SNAP_SERIES_GAUGE, &id),
               SNAP_EINVAL);
  cr_assert_eq(snap_store_series_register(st, "ok_name", "h", (snap_series_type)9, &id),
               SNAP_EINVAL);
  cr_assert_eq(snap_store_series_register(st, "ok_name", "h", SNAP_SERIES_GAUGE, &id), SNAP_OK);
  cr_assert_eq(snap_store_series_register(st, "ok_name", "h", SNAP_SERIES_DURATION, &id),
               SNAP_EINVAL, "registered with another type");
  char name[32];
  for (int i = 1; i < SNAP_METRICS_SERIES_MAX; i++) {
    snprintf(name, sizeof name, "filler_%d", i);
    cr_assert_eq(snap_store_series_register(st, name, "h", SNAP_SERIES_GAUGE, &id), SNAP_OK);
  }
  cr_assert_eq(snap_store_series_register(st, "one_too_many", "h", SNAP_SERIES_GAUGE, &id),
               SNAP_EFULL, "%s", snap_error_message());
  /* Metrics off: updates do nothing. */
  cr_assert_eq(snap_store_series_register(st, "ok_name", "h", SNAP_SERIES_GAUGE, &id), SNAP_OK);
  cr_assert_eq(snap_store_set_metrics(st, 0), SNAP_OK);
  cr_assert_eq(snap_store_gauge_set(st, id, 5), SNAP_OK);
  snap_metrics m;
  snap_store_metrics(st, &m);
  cr_assert_eq(m.series[id].gauge, 0);
  snap_store_close(st);
}
