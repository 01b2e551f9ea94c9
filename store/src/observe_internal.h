/* The store's observability state and the hooks store.c calls (never installed).
 *
 * Each hook is one inline test of `active` (set when an observer, the metrics
 * or the log want anything) in front of an out-of-line function, so a store
 * with everything switched off pays one well-predicted branch per call. */
#ifndef SNAP_OBSERVE_INTERNAL_H
#define SNAP_OBSERVE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/observe.h"
#include "snap/sys/backend.h"

typedef struct snap__metrics snap__metrics; /* metrics.c */

typedef struct snap__obs {
  int active; /* fn != NULL || metrics_on || log_threshold != SNAP_LOG_OFF */
  int timed;  /* fn != NULL || metrics_on: durations are wanted */
  snap_observer_fn fn;
  void *ud;
  snap_log_fn log;
  void *log_ud;
  snap_log_level log_threshold;
  int metrics_on;
  snap__metrics *m; /* allocated at open, kept when switched off */
  const char *backend;
  atomic_uint warned; /* SNAP__WARNED_* bits: the warnings given once */
} snap__obs;

/* The host table a store gives its backend: the public table first, so a
 * backend's report through it finds the store's observability state. */
typedef struct snap__host {
  snap_host host;
  snap__obs *obs;
} snap__host;

/* The store's state (store.c), NULL for a NULL store. */
snap__obs *snap__store_obs(const snap_store *st);

/* Sets the defaults (metrics on, stderr at warning level). SNAP_ENOMEM. */
int snap__obs_init(snap__obs *o, const char *backend);
void snap__obs_dispose(snap__obs *o);

/* The host's report slot (snap_host.report). */
void snap__obs_host_report(const snap_host *host, const snap_backend_report *r);

uint64_t snap__obs_clock_ns(void);

/* The start time of an operation, or 0 when nothing observes. */
static inline uint64_t snap__obs_start(const snap__obs *o) {
  return __builtin_expect(o->timed, 1) ? snap__obs_clock_ns() : 0;
}

/* The outcome of one operation (kind SNAP_EVENT_SAVE .. SNAP_EVENT_DELETE), and
 * the incidents it implies (ignored or refused options, auth, missing key). */
typedef struct snap__op {
  snap_event_kind kind;
  int status;
  const char *pid;
  int64_t seq;
  size_t state_bytes, body_bytes;
  unsigned stages, ignored;
  uint64_t count;
} snap__op;

void snap__obs_op_slow(snap__obs *o, uint64_t t0, const snap__op *op);

static inline void snap__obs_op(snap__obs *o, uint64_t t0, const snap__op *op) {
  if (__builtin_expect(o->active, 1))
    snap__obs_op_slow(o, t0, op);
}

/* A load skipped an undecodable body (status, and the decoder's message). */
void snap__obs_skip_slow(snap__obs *o, const char *pid, int64_t seq, int status, const char *why);

static inline void snap__obs_skip(snap__obs *o, const char *pid, int64_t seq, int status,
                                  const char *why) {
  if (o->active)
    snap__obs_skip_slow(o, pid, seq, status, why);
}

/* Metrics (metrics.c). */
int snap__metrics_new(snap__metrics **out);
void snap__metrics_free(snap__metrics *m);
void snap__metrics_op(snap__metrics *m, int op, int status, uint64_t ns, size_t state_bytes,
                      size_t body_bytes);
void snap__metrics_pruned(snap__metrics *m, uint64_t n);
void snap__metrics_incident(snap__metrics *m, int kind);
void snap__metrics_read(const snap__metrics *m, snap_metrics *out);
/* Registered series (snap_store_series_register() and the updates). */
int snap__metrics_register(snap__metrics *m, const char *name, const char *help,
                           snap_series_type type, int *id);
/* Sets the gauge, or with `raise` lifts it to `value` if lower. */
int snap__metrics_gauge(snap__metrics *m, int id, int64_t value, bool raise);
int snap__metrics_observe(snap__metrics *m, int id, uint64_t value);

/* The envelope key counters of the store into `m` (envelope.c). */
void snap__envelope_metrics(const snap_store *st, snap_metrics *m);

#endif /* SNAP_OBSERVE_INTERNAL_H */
