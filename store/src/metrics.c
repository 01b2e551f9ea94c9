/* Built-in metrics: counters and log-scaled histograms kept in per-thread
 * shards of relaxed atomics, so threads updating the same store do not fight
 * over one cache line; a read sums the shards. */
#include <stdalign.h>
#include <stdatomic.h>
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
  hist exec_batch, exec_lat, exec_wait, exec_commit;
} shard;

struct snap__metrics {
  shard shards[SHARDS];
  atomic_int_least64_t depth;
  atomic_int_least64_t depth_max;
  void *raw; /* the allocation, before alignment */
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
  *out = m;
  return SNAP_OK;
}

void snap__metrics_free(snap__metrics *m) {
  if (m != NULL)
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

void snap__metrics_exec_depth(snap__metrics *m, uint64_t depth) {
  int64_t now = depth > INT64_MAX ? INT64_MAX : (int64_t)depth;
  atomic_store_explicit(&m->depth, now, memory_order_relaxed);
  int64_t max = atomic_load_explicit(&m->depth_max, memory_order_relaxed);
  while (now > max && !atomic_compare_exchange_weak_explicit(
                          &m->depth_max, &max, now, memory_order_relaxed, memory_order_relaxed))
    ;
}

void snap__metrics_exec_batch(snap__metrics *m, uint64_t saves) {
  observe_hist(&mine(m)->exec_batch, saves, saves);
}

void snap__metrics_exec_time(snap__metrics *m, int what, uint64_t ns) {
  shard *s = mine(m);
  hist *h = what == SNAP_EXEC_QUEUE_WAIT ? &s->exec_wait
            : what == SNAP_EXEC_COMMIT   ? &s->exec_commit
                                         : &s->exec_lat;
  observe_hist(h, (ns + 999) / 1000, ns);
}

static void read_hist(snap_histogram *out, const hist *h) {
  out->sum += get(&h->sum);
  for (int i = 0; i < SNAP_METRICS_BUCKETS; i++) {
    uint64_t v = get(&h->b[i]);
    out->buckets[i] += v;
    out->count += v;
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
    read_hist(&out->exec_batch, &s->exec_batch);
    read_hist(&out->exec_latency, &s->exec_lat);
    read_hist(&out->exec_queue_wait, &s->exec_wait);
    read_hist(&out->exec_commit, &s->exec_commit);
  }
  int64_t d = atomic_load_explicit((atomic_int_least64_t *)&m->depth, memory_order_relaxed);
  int64_t dm = atomic_load_explicit((atomic_int_least64_t *)&m->depth_max, memory_order_relaxed);
  out->exec_queue_depth = d > 0 ? (uint64_t)d : 0;
  out->exec_queue_depth_max = dm > 0 ? (uint64_t)dm : 0;
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
