/* Built-in metrics: counters and log-scaled histograms kept in per-thread
 * shards of relaxed atomics, so threads updating the same store do not fight
 * over one cache line; a read sums the shards. The series registered by the
 * layers above (gauges and histograms with a name) live here too: a handle
 * is an index, so an update is an atomic on the caller's shard. */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "observe_internal.h"

/* Threads are spread over this many shards round-robin; more threads than
 * shards share them, which the atomics keep correct. */
#define SHARDS 16
#define INCIDENTS (SNAP_EVENT_KIND_END - SNAP_EVENT_FIRST_INCIDENT)

typedef atomic_uint_least64_t counter;

typedef struct hist {
  counter sum;
  counter b[SNAP_METRICS_BUCKETS];
} hist;

typedef struct shard {
  alignas(64) counter ops[SNAP_OP_COUNT][SNAP_METRICS_STATUSES];
  hist lat[SNAP_OP_COUNT];
  counter state[SNAP_OP_COUNT], body[SNAP_OP_COUNT];
  counter pruned;
  counter incidents[INCIDENTS];
  hist series[SNAP_METRICS_SERIES_MAX]; /* the registered histograms */
} shard;

/* A registered series: immutable once counted in `nseries`. */
typedef struct series_desc {
  char name[SNAP_SERIES_NAME_MAX];
  char help[SNAP_SERIES_HELP_MAX];
  snap_series_type type;
} series_desc;

struct snap__metrics {
  shard shards[SHARDS];
  atomic_int_least64_t gauge[SNAP_METRICS_SERIES_MAX]; /* the registered gauges */
  series_desc desc[SNAP_METRICS_SERIES_MAX];
  atomic_int nseries;  /* published with release after its descriptor */
  pthread_mutex_t reg; /* serializes registrations */
  void *raw;           /* the allocation, before alignment */
};

static atomic_uint next_shard;
static _Thread_local unsigned my_shard; /* 0: not yet assigned, else index + 1 */

static shard *mine(snap__metrics *m) {
  unsigned s = my_shard;
  if (__builtin_expect(s == 0, 0)) {
    s = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % SHARDS + 1;
    my_shard = s;
  }
  return &m->shards[s - 1];
}

static void add(counter *c, uint64_t v) { atomic_fetch_add_explicit(c, v, memory_order_relaxed); }

static uint64_t get(const counter *c) {
  return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

/* Bucket i counts values <= 2^i (the last bucket: everything larger). */
static unsigned bucket(uint64_t v) {
  if (v <= 1)
    return 0;
  unsigned i = 64u - (unsigned)__builtin_clzll(v - 1);
  return i < SNAP_METRICS_BUCKETS - 1 ? i : SNAP_METRICS_BUCKETS - 1;
}

static void observe_hist(hist *h, uint64_t bucket_value, uint64_t sum) {
  add(&h->sum, sum);
  add(&h->b[bucket(bucket_value)], 1);
}

int snap__metrics_new(snap__metrics **out) {
  void *raw = snap_calloc(1, sizeof(snap__metrics) + 64);
  if (raw == NULL)
    return snap_error_set(SNAP_ENOMEM, "out of memory for a store's metrics");
  uintptr_t p = ((uintptr_t)raw + 63) & ~(uintptr_t)63;
  snap__metrics *m = (snap__metrics *)p;
  m->raw = raw;
  pthread_mutex_init(&m->reg, NULL);
  *out = m;
  return SNAP_OK;
}

void snap__metrics_free(snap__metrics *m) {
  if (m == NULL)
    return;
  pthread_mutex_destroy(&m->reg);
  snap_free(m->raw);
}

static unsigned status_slot(int status) {
  if (status > 0 || status < -(SNAP_METRICS_STATUSES - 2))
    return SNAP_METRICS_STATUSES - 1;
  return (unsigned)-status;
}

int snap_metrics_status_code(int i) {
  if (i <= 0 || i >= SNAP_METRICS_STATUSES - 1)
    return i == 0 ? SNAP_OK : 1; /* the last slot: "other" */
  return -i;
}

void snap__metrics_op(snap__metrics *m, int op, int status, uint64_t ns, size_t state_bytes,
                      size_t body_bytes) {
  shard *s = mine(m);
  add(&s->ops[op][status_slot(status)], 1);
  if (op != SNAP_OP_PRUNE) /* prunes run inside a save: they have no duration of their own */
    observe_hist(&s->lat[op], (ns + 999) / 1000, ns);
  if (status != SNAP_OK)
    return; /* bytes count what was stored or returned */
  if (state_bytes)
    add(&s->state[op], state_bytes);
  if (body_bytes)
    add(&s->body[op], body_bytes);
}

void snap__metrics_pruned(snap__metrics *m, uint64_t n) { add(&mine(m)->pruned, n); }

void snap__metrics_incident(snap__metrics *m, int kind) {
  if (kind >= SNAP_EVENT_FIRST_INCIDENT && kind < SNAP_EVENT_KIND_END)
    add(&mine(m)->incidents[kind - SNAP_EVENT_FIRST_INCIDENT], 1);
}

/* The families the store renders itself: no series may take their names. */
static bool builtin_name(const char *name) {
  static const char *const names[] = {
      "snapstore_operations_total",       "snapstore_operation_duration_seconds",
      "snapstore_state_bytes_total",      "snapstore_body_bytes_total",
      "snapstore_pruned_snapshots_total", "snapstore_incidents_total"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(name, names[i]) == 0)
      return true;
  return false;
}

/* A Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*, shorter than the maximum. */
static bool name_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= SNAP_SERIES_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == ':'))
      return false;
  }
  return true;
}

static int check_series(const char *name, const char *help, snap_series_type type) {
  if (!name_valid(name) || builtin_name(name))
    return snap_error_set(SNAP_EINVAL,
                          "snap_store_series_register: '%s' is not a free metric "
                          "name",
                          name);
  if (strlen(help) >= SNAP_SERIES_HELP_MAX || strpbrk(help, "\\\n"))
    return snap_error_set(SNAP_EINVAL,
                          "snap_store_series_register: the help of '%s' is longer "
                          "than %d bytes or holds a newline or backslash",
                          name, SNAP_SERIES_HELP_MAX - 1);
  if (type < SNAP_SERIES_GAUGE || type > SNAP_SERIES_DURATION)
    return snap_error_set(SNAP_EINVAL, "snap_store_series_register: unknown type %d", (int)type);
  return SNAP_OK;
}

/* Finds `name` among the registered series or adds it. Caller holds m->reg. */
static int register_locked(snap__metrics *m, const char *name, const char *help,
                           snap_series_type type, int *id) {
  int n = atomic_load_explicit(&m->nseries, memory_order_relaxed);
  for (int i = 0; i < n; i++) {
    if (strcmp(m->desc[i].name, name) != 0)
      continue;
    if (m->desc[i].type != type)
      return snap_error_set(SNAP_EINVAL, "series '%s' is registered with another type", name);
    *id = i;
    return SNAP_OK;
  }
  if (n == SNAP_METRICS_SERIES_MAX)
    return snap_error_set(SNAP_EFULL, "no room for series '%s': %d are registered", name, n);
  series_desc *d = &m->desc[n];
  snprintf(d->name, sizeof d->name, "%s", name);
  snprintf(d->help, sizeof d->help, "%s", help);
  d->type = type;
  atomic_store_explicit(&m->nseries, n + 1, memory_order_release);
  *id = n;
  return SNAP_OK;
}

int snap__metrics_register(snap__metrics *m, const char *name, const char *help,
                           snap_series_type type, int *id) {
  int rc = check_series(name, help, type);
  if (rc != SNAP_OK)
    return rc;
  pthread_mutex_lock(&m->reg);
  rc = register_locked(m, name, help, type, id);
  pthread_mutex_unlock(&m->reg);
  return rc;
}

/* The type of series `id`, or 0 when it is not registered. */
static snap_series_type series_type(const snap__metrics *m, int id) {
  if (id < 0 || id >= atomic_load_explicit((atomic_int *)&m->nseries, memory_order_acquire))
    return 0;
  return m->desc[id].type;
}

int snap__metrics_gauge(snap__metrics *m, int id, int64_t value, bool raise) {
  if (series_type(m, id) != SNAP_SERIES_GAUGE)
    return snap_error_set(SNAP_EINVAL, "metrics: %d is not a registered gauge", id);
  atomic_int_least64_t *g = &m->gauge[id];
  if (!raise) {
    atomic_store_explicit(g, value, memory_order_relaxed);
    return SNAP_OK;
  }
  int64_t cur = atomic_load_explicit(g, memory_order_relaxed);
  while (value > cur && !atomic_compare_exchange_weak_explicit(g, &cur, value, memory_order_relaxed,
                                                               memory_order_relaxed))
    ;
  return SNAP_OK;
}

int snap__metrics_observe(snap__metrics *m, int id, uint64_t value) {
  snap_series_type t = series_type(m, id);
  if (t == SNAP_SERIES_DURATION)
    observe_hist(&mine(m)->series[id], (value + 999) / 1000, value);
  else if (t == SNAP_SERIES_HISTOGRAM)
    observe_hist(&mine(m)->series[id], value, value);
  else
    return snap_error_set(SNAP_EINVAL, "metrics: %d is not a registered histogram", id);
  return SNAP_OK;
}

static void read_hist(snap_histogram *out, const hist *h) {
  out->sum += get(&h->sum);
  for (int i = 0; i < SNAP_METRICS_BUCKETS; i++) {
    uint64_t v = get(&h->b[i]);
    out->buckets[i] += v;
    out->count += v;
  }
}

/* The registered series into `out`: descriptors, gauges, and histograms
 * summed over the shards. */
static void read_series(const snap__metrics *m, snap_metrics *out) {
  int n = atomic_load_explicit((atomic_int *)&m->nseries, memory_order_acquire);
  out->nseries = (size_t)n;
  for (int i = 0; i < n; i++) {
    snap_series *s = &out->series[i];
    memcpy(s->name, m->desc[i].name, sizeof s->name);
    memcpy(s->help, m->desc[i].help, sizeof s->help);
    s->type = m->desc[i].type;
    s->gauge = atomic_load_explicit((atomic_int_least64_t *)&m->gauge[i], memory_order_relaxed);
    for (int k = 0; k < SHARDS; k++)
      read_hist(&s->hist, &m->shards[k].series[i]);
  }
}

void snap__metrics_read(const snap__metrics *m, snap_metrics *out) {
  memset(out, 0, sizeof *out);
  if (m == NULL)
    return;
  for (int k = 0; k < SHARDS; k++) {
    const shard *s = &m->shards[k];
    for (int op = 0; op < SNAP_OP_COUNT; op++) {
      for (int i = 0; i < SNAP_METRICS_STATUSES; i++)
        out->ops[op][i] += get(&s->ops[op][i]);
      read_hist(&out->latency[op], &s->lat[op]);
      out->state_bytes[op] += get(&s->state[op]);
      out->body_bytes[op] += get(&s->body[op]);
    }
    out->pruned += get(&s->pruned);
    for (int i = 0; i < INCIDENTS; i++)
      out->incidents[i] += get(&s->incidents[i]);
  }
  read_series(m, out);
}

double snap_histogram_quantile(const snap_histogram *h, double q) {
  if (h == NULL || h->count == 0)
    return 0.0;
  if (q < 0)
    q = 0;
  if (q > 1)
    q = 1;
  double rank = q * (double)h->count;
  uint64_t cum = 0;
  for (int i = 0; i < SNAP_METRICS_BUCKETS; i++) {
    uint64_t c = h->buckets[i];
    double lo = i == 0 ? 0.0 : (double)(1ull << (i - 1));
    if (c > 0 && (double)(cum + c) >= rank) {
      if (i == SNAP_METRICS_BUCKETS - 1)
        return lo;
      double hi = (double)(1ull << i);
      double frac = (rank - (double)cum) / (double)c;
      return lo + (hi - lo) * (frac < 0 ? 0 : frac);
    }
    cum += c;
  }
  return (double)(1ull << (SNAP_METRICS_BUCKETS - 2));
}
