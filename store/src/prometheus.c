/* Renders snap_metrics in the Prometheus text exposition format, version
 * 0.0.4 (the names are listed in docs/OBSERVABILITY.md): the built-in
 * families, then the registered series in registration order. */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "observe_internal.h"

typedef struct out {
  snap_buf b;
  int rc;             /* the first failure; later writes do nothing */
  const char *labels; /* the caller's labels, "" for none */
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...) {
  if (o->rc != SNAP_OK)
    return;
  for (int pass = 0; pass < 2; pass++) {
    size_t room = o->b.cap - o->b.len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)o->b.data + o->b.len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
      o->rc = snap_error_set(SNAP_EINVAL, "prometheus: formatting failed");
      return;
    }
    if ((size_t)n < room) {
      o->b.len += (size_t)n;
      return;
    }
    size_t want = o->b.len + (size_t)n + 1;
    if (want < 2 * o->b.cap)
      want = 2 * o->b.cap;
    if ((o->rc = snap_buf_reserve(&o->b, want)) != SNAP_OK)
      return;
  }
}

static void header(out *o, const char *name, const char *type, const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `{labels}` for a sample: the caller's labels first, then `extra` (may be ""). */
static void sample(out *o, const char *name, const char *extra, const char *value) {
  const char *sep = o->labels[0] && extra[0] ? "," : "";
  if (o->labels[0] || extra[0])
    put(o, "%s{%s%s%s} %s\n", name, o->labels, sep, extra, value);
  else
    put(o, "%s %s\n", name, value);
}

static void sample_u64(out *o, const char *name, const char *extra, uint64_t v) {
  char value[32];
  snprintf(value, sizeof value, "%" PRIu64, v);
  sample(o, name, extra, value);
}

/* A histogram's samples; bucket i's bound is 2^i * `scale` (µs to s: 1e-6). */
static void histogram(out *o, const char *name, const char *extra, const snap_histogram *h,
                      double scale, double sum_scale) {
  char series[128], labels[256], value[48];
  snprintf(series, sizeof series, "%s_bucket", name);
  uint64_t cum = 0;
  for (int i = 0; i < SNAP_METRICS_BUCKETS; i++) {
    cum += h->buckets[i];
    if (i == SNAP_METRICS_BUCKETS - 1)
      snprintf(labels, sizeof labels, "%s%sle=\"+Inf\"", extra, extra[0] ? "," : "");
    else
      snprintf(labels, sizeof labels, "%s%sle=\"%.9g\"", extra, extra[0] ? "," : "",
               (double)(1ull << i) * scale);
    sample_u64(o, series, labels, cum);
  }
  snprintf(series, sizeof series, "%s_sum", name);
  snprintf(value, sizeof value, "%.9g", (double)h->sum * sum_scale);
  sample(o, series, extra, value);
  snprintf(series, sizeof series, "%s_count", name);
  sample_u64(o, series, extra, h->count);
}

/* A series registered by a layer above the store (snap_store_series_register()). */
static void registered(out *o, const snap_series *s) {
  char value[32];
  switch (s->type) {
  case SNAP_SERIES_GAUGE:
    header(o, s->name, "gauge", s->help);
    snprintf(value, sizeof value, "%" PRId64, s->gauge);
    sample(o, s->name, "", value);
    break;
  case SNAP_SERIES_HISTOGRAM:
    header(o, s->name, "histogram", s->help);
    histogram(o, s->name, "", &s->hist, 1.0, 1.0);
    break;
  case SNAP_SERIES_DURATION:
    header(o, s->name, "histogram", s->help);
    histogram(o, s->name, "", &s->hist, 1e-6, 1e-9);
    break;
  }
}

static const char *const op_names[SNAP_OP_COUNT] = {"save", "batch", "load", "delete", "prune"};

/* The label value of status slot i: "ok", the code's name in lower case ("ebusy"), or "other". */
static void status_name(int i, char *buf, size_t cap) {
  static const char *const names[] = {
#define SNAP__ERR_NAME(name, value, text) [-(value)] = #name,
      SNAP_ERRNO_MAP(SNAP__ERR_NAME)
#undef SNAP__ERR_NAME
  };
  const char *n = "other"; /* the last slot, and codes without a name */
  if (i == 0)
    n = "ok";
  else if (i < SNAP_METRICS_STATUSES - 1 && i < (int)(sizeof names / sizeof *names) && names[i])
    n = names[i];
  size_t k = 0;
  for (; n[k] && k + 1 < cap; k++)
    buf[k] = (char)tolower((unsigned char)n[k]);
  buf[k] = '\0';
}

/* name="value" pairs separated by commas; names [a-zA-Z_][a-zA-Z0-9_]*, not
 * starting with "__"; values without quote, backslash or newline. */
static bool labels_valid(const char *s) {
  if (*s == '\0')
    return true;
  for (;;) {
    if (!(isalpha((unsigned char)*s) || *s == '_') || (s[0] == '_' && s[1] == '_'))
      return false;
    while (isalnum((unsigned char)*s) || *s == '_')
      s++;
    if (*s++ != '=' || *s++ != '"')
      return false;
    while (*s && *s != '"' && *s != '\\' && *s != '\n')
      s++;
    if (*s++ != '"')
      return false;
    if (*s == '\0')
      return true;
    if (*s++ != ',')
      return false;
  }
}

int snap_metrics_prometheus(const snap_metrics *m, const char *labels, char **text, size_t *len) {
  if (text != NULL)
    *text = NULL;
  if (len != NULL)
    *len = 0;
  if (m == NULL || text == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_metrics_prometheus: metrics or text is NULL");
  if (labels == NULL)
    labels = "";
  if (!labels_valid(labels))
    return snap_error_set(SNAP_EINVAL,
                          "snap_metrics_prometheus: labels '%s' are not a comma-separated list "
                          "of name=\"value\"",
                          labels);
  out o = {SNAP_BUF_INIT, SNAP_OK, labels};
  o.rc = snap_buf_reserve(&o.b, 16384);
  char extra[128], st[32];

  header(&o, "snapstore_operations_total", "counter",
         "Store operations by kind and outcome (status \"ok\" or the error code).");
  for (int op = 0; op < SNAP_OP_COUNT; op++) {
    for (int i = 0; i < SNAP_METRICS_STATUSES; i++) {
      if (i != 0 && m->ops[op][i] == 0)
        continue;
      status_name(i, st, sizeof st);
      snprintf(extra, sizeof extra, "op=\"%s\",status=\"%s\"", op_names[op], st);
      sample_u64(&o, "snapstore_operations_total", extra, m->ops[op][i]);
    }
  }
  header(&o, "snapstore_operation_duration_seconds", "histogram",
         "Wall time of store operations, from the call to its return.");
  for (int op = 0; op < SNAP_OP_COUNT; op++) {
    if (op == SNAP_OP_PRUNE)
      continue; /* prunes run inside saves */
    snprintf(extra, sizeof extra, "op=\"%s\"", op_names[op]);
    histogram(&o, "snapstore_operation_duration_seconds", extra, &m->latency[op], 1e-6, 1e-9);
  }
  header(&o, "snapstore_state_bytes_total", "counter",
         "Bytes of state: given to saves, returned by loads.");
  sample_u64(&o, "snapstore_state_bytes_total", "op=\"save\"", m->state_bytes[SNAP_OP_SAVE]);
  sample_u64(&o, "snapstore_state_bytes_total", "op=\"load\"", m->state_bytes[SNAP_OP_LOAD]);
  header(&o, "snapstore_body_bytes_total", "counter",
         "Bytes of stored bodies (after compression and encryption): written by saves, read by "
         "loads.");
  sample_u64(&o, "snapstore_body_bytes_total", "op=\"save\"", m->body_bytes[SNAP_OP_SAVE]);
  sample_u64(&o, "snapstore_body_bytes_total", "op=\"load\"", m->body_bytes[SNAP_OP_LOAD]);
  header(&o, "snapstore_pruned_snapshots_total", "counter",
         "Snapshots removed by retention (keep).");
  sample_u64(&o, "snapstore_pruned_snapshots_total", "", m->pruned);
  header(&o, "snapstore_incidents_total", "counter",
         "Incidents: skipped corrupt bodies, ignored or refused options, failed prunes, busy "
         "waits, authentication failures, missing keys.");
  for (int k = SNAP_EVENT_FIRST_INCIDENT; k < SNAP_EVENT_KIND_END; k++) {
    snprintf(extra, sizeof extra, "kind=\"%s\"", snap_event_kind_name(k));
    sample_u64(&o, "snapstore_incidents_total", extra, m->incidents[k - SNAP_EVENT_FIRST_INCIDENT]);
  }
  header(&o, "snapstore_envelope_keys_total", "counter",
         "Envelope data keys: created (a unit's first save), unwrapped from the key table, "
         "forgotten (snap_forget), rewrapped under the active master key.");
  sample_u64(&o, "snapstore_envelope_keys_total", "event=\"created\"", m->keys_created);
  sample_u64(&o, "snapstore_envelope_keys_total", "event=\"unwrapped\"", m->keys_unwrapped);
  sample_u64(&o, "snapstore_envelope_keys_total", "event=\"forgotten\"", m->units_forgotten);
  sample_u64(&o, "snapstore_envelope_keys_total", "event=\"rewrapped\"", m->keys_rewrapped);
  header(&o, "snapstore_envelope_key_cache_misses_total", "counter",
         "Data key lookups the cache of unwrapped keys could not answer.");
  sample_u64(&o, "snapstore_envelope_key_cache_misses_total", "", m->key_cache_misses);
  for (size_t i = 0; i < m->nseries && i < SNAP_METRICS_SERIES_MAX; i++)
    registered(&o, &m->series[i]);

  if (o.rc != SNAP_OK) {
    snap_buf_dispose(&o.b);
    return o.rc;
  }
  size_t n = o.b.len;
  *text = (char *)snap_buf_detach(&o.b, NULL);
  if (len != NULL)
    *len = n;
  return SNAP_OK;
}
