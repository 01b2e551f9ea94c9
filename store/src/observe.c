/* Observability of a store: turns operation outcomes and incidents into
 * observer events, metrics updates and the warnings that must not be silent. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "observe_internal.h"

/* Warnings given once per store (snap__obs.warned). */
#define WARNED_ENCRYPTION 0x1u
#define WARNED_INTEGRITY 0x2u
#define WARNED_CORRUPT 0x4u

static const char *const kind_names[SNAP_EVENT_KIND_END] = {
    [SNAP_EVENT_SAVE] = "save",
    [SNAP_EVENT_BATCH] = "batch",
    [SNAP_EVENT_LOAD] = "load",
    [SNAP_EVENT_DELETE] = "delete",
    [SNAP_EVENT_PRUNE] = "prune",
    [SNAP_EVENT_CORRUPT_SKIPPED] = "corrupt_skipped",
    [SNAP_EVENT_OPTION_IGNORED] = "option_ignored",
    [SNAP_EVENT_OPTION_REFUSED] = "option_refused",
    [SNAP_EVENT_PRUNE_FAILED] = "prune_failed",
    [SNAP_EVENT_BUSY_RETRY] = "busy_retry",
    [SNAP_EVENT_AUTH_FAILED] = "auth_failed",
    [SNAP_EVENT_KEY_MISSING] = "key_missing",
};

const char *snap_event_kind_name(int kind) {
  if (kind <= 0 || kind >= SNAP_EVENT_KIND_END)
    return "unknown";
  return kind_names[kind];
}

uint64_t snap__obs_clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void update_active(snap__obs *o) {
  o->timed = o->fn != NULL || o->metrics_on;
  o->active = o->timed || o->log_threshold != SNAP_LOG_OFF;
}

int snap__obs_init(snap__obs *o, const char *backend) {
  memset(o, 0, sizeof *o);
  o->backend = backend;
  o->log_threshold = SNAP_LOG_WARNING;
  o->metrics_on = 1;
  atomic_init(&o->warned, 0u);
  update_active(o);
  return snap__metrics_new(&o->m);
}

void snap__obs_dispose(snap__obs *o) {
  snap__metrics_free(o->m);
  o->m = NULL;
}

/* ------------------------------------------------------------------------ */
/* Public settings (store.c hands over its snap__obs)                        */
/* ------------------------------------------------------------------------ */

int snap_store_set_observer(snap_store *st, snap_observer_fn fn, void *ud) {
  snap__obs *o = snap__store_obs(st);
  if (o == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_set_observer: store is NULL");
  o->fn = fn;
  o->ud = fn ? ud : NULL;
  update_active(o);
  return SNAP_OK;
}

int snap_store_set_log(snap_store *st, snap_log_level threshold, snap_log_fn fn, void *ud) {
  snap__obs *o = snap__store_obs(st);
  if (o == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_set_log: store is NULL");
  if ((int)threshold < SNAP_LOG_OFF || (int)threshold > SNAP_LOG_INFO)
    return snap_error_set(SNAP_EINVAL, "snap_store_set_log: unknown level %d", (int)threshold);
  o->log_threshold = threshold;
  o->log = fn;
  o->log_ud = fn ? ud : NULL;
  update_active(o);
  return SNAP_OK;
}

int snap_store_set_metrics(snap_store *st, int enabled) {
  snap__obs *o = snap__store_obs(st);
  if (o == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_set_metrics: store is NULL");
  o->metrics_on = enabled != 0;
  update_active(o);
  return SNAP_OK;
}

int snap_store_metrics(const snap_store *st, snap_metrics *out) {
  const snap__obs *o = snap__store_obs(st);
  if (o == NULL || out == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_metrics: store or out is NULL");
  snap__metrics_read(o->m, out);
  snap__envelope_metrics(st, out);
  return SNAP_OK;
}

int snap_store_series_register(snap_store *st, const char *name, const char *help,
                               snap_series_type type, int *id) {
  snap__obs *o = snap__store_obs(st);
  if (o == NULL || name == NULL || help == NULL || id == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_series_register: NULL argument");
  *id = -1;
  return snap__metrics_register(o->m, name, help, type, id);
}

int snap_store_gauge_set(snap_store *st, int id, int64_t value) {
  snap__obs *o = snap__store_obs(st);
  if (o == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_gauge_set: store is NULL");
  return o->metrics_on ? snap__metrics_gauge(o->m, id, value, false) : SNAP_OK;
}

int snap_store_gauge_raise(snap_store *st, int id, int64_t value) {
  snap__obs *o = snap__store_obs(st);
  if (o == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_gauge_raise: store is NULL");
  return o->metrics_on ? snap__metrics_gauge(o->m, id, value, true) : SNAP_OK;
}

int snap_store_histogram_observe(snap_store *st, int id, uint64_t value) {
  snap__obs *o = snap__store_obs(st);
  if (o == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_histogram_observe: store is NULL");
  return o->metrics_on ? snap__metrics_observe(o->m, id, value) : SNAP_OK;
}

int snap_metrics_series(const snap_metrics *m, const char *name, const snap_series **out) {
  if (out != NULL)
    *out = NULL;
  if (m == NULL || name == NULL || out == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_metrics_series: NULL argument");
  for (size_t i = 0; i < m->nseries && i < SNAP_METRICS_SERIES_MAX; i++) {
    if (strcmp(m->series[i].name, name) == 0) {
      *out = &m->series[i];
      return SNAP_OK;
    }
  }
  return snap_error_set(SNAP_ENOTFOUND, "no series '%s' in the metrics", name);
}

/* ------------------------------------------------------------------------ */
/* Delivery                                                                  */
/* ------------------------------------------------------------------------ */

static void log_msg(const snap__obs *o, snap_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_msg(const snap__obs *o, snap_log_level level, const char *fmt, ...) {
  if (level > o->log_threshold)
    return;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
    msg[0] = '\0';
  va_end(ap);
  if (o->log != NULL) {
    o->log(o->log_ud, level, msg);
    return;
  }
  static const char *const names[] = {"", "error", "warning", "info"};
  fprintf(stderr, "snapstore: %s: %s\n", names[level], msg);
}

/* Whether this is the first time the store gives the warning `bit`. */
static bool first_time(snap__obs *o, unsigned bit) {
  return (atomic_fetch_or_explicit(&o->warned, bit, memory_order_relaxed) & bit) == 0;
}

static void incident(snap__obs *o, snap_event *ev) {
  if (o->metrics_on)
    snap__metrics_incident(o->m, ev->kind);
  if (o->fn != NULL)
    o->fn(o->ud, ev);
}

static snap_event event_init(const snap__obs *o, snap_event_kind kind, int status, const char *pid,
                             int64_t seq) {
  snap_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.status = status;
  ev.backend = o->backend;
  ev.pid = pid;
  ev.seq = seq;
  return ev;
}

static const char *group_names(unsigned groups, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s%s%s%s", groups & SNAP_OPT_COMPRESSION ? "compression" : "",
           (groups & SNAP_OPT_COMPRESSION) && (groups & ~SNAP_OPT_COMPRESSION) ? ", " : "",
           groups & SNAP_OPT_ENCRYPTION ? "encryption" : "",
           (groups & SNAP_OPT_ENCRYPTION) && (groups & SNAP_OPT_INTEGRITY) ? ", " : "",
           groups & SNAP_OPT_INTEGRITY ? "integrity" : "");
  return buf;
}

static void ignored_options(snap__obs *o, const snap__op *op) {
  char groups[64], detail[256];
  group_names(op->ignored, groups, sizeof groups);
  snprintf(detail, sizeof detail,
           "backend '%s' cannot apply %s: the snapshot is %s without it (the call succeeds)",
           o->backend, groups, op->kind == SNAP_EVENT_LOAD ? "read" : "stored");
  snap_event ev = event_init(o, SNAP_EVENT_OPTION_IGNORED, SNAP_OK, op->pid, op->seq);
  ev.groups = op->ignored;
  ev.detail = detail;
  incident(o, &ev);
  static const struct {
    unsigned group, bit;
    const char *name;
  } loud[] = {{SNAP_OPT_ENCRYPTION, WARNED_ENCRYPTION, "encryption"},
              {SNAP_OPT_INTEGRITY, WARNED_INTEGRITY, "integrity"}};
  for (size_t i = 0; i < sizeof loud / sizeof *loud; i++) {
    if ((op->ignored & loud[i].group) && o->log_threshold >= SNAP_LOG_WARNING &&
        first_time(o, loud[i].bit))
      log_msg(o, SNAP_LOG_WARNING,
              "%s was requested but backend '%s' does not support it: snapshots of this store "
              "are %s without %s (first seen for pid '%s'; warned once per store)",
              loud[i].name, o->backend, op->kind == SNAP_EVENT_LOAD ? "read" : "stored",
              loud[i].name, op->pid ? op->pid : "");
  }
}

void snap__obs_op_slow(snap__obs *o, uint64_t t0, const snap__op *op) {
  uint64_t ns = t0 ? snap__obs_clock_ns() - t0 : 0;
  if (o->metrics_on)
    snap__metrics_op(o->m, op->kind - SNAP_EVENT_SAVE, op->status, ns, op->state_bytes,
                     op->body_bytes);
  if (o->fn != NULL) {
    snap_event ev = event_init(o, op->kind, op->status, op->pid, op->seq);
    ev.duration_ns = ns;
    ev.state_bytes = op->state_bytes;
    ev.body_bytes = op->body_bytes;
    ev.stages = op->stages;
    ev.groups = op->ignored;
    ev.count = op->count;
    o->fn(o->ud, &ev);
  }
  if (op->ignored != 0)
    ignored_options(o, op);
  int kind = op->status == SNAP_EUNSUPPORTED ? SNAP_EVENT_OPTION_REFUSED
             : op->status == SNAP_EAUTH      ? SNAP_EVENT_AUTH_FAILED
             : op->status == SNAP_ENOKEY     ? SNAP_EVENT_KEY_MISSING
                                             : 0;
  if (kind != 0 && op->kind != SNAP_EVENT_BATCH) {
    /* The thread's message still describes this call's failure. */
    snap_event ev = event_init(o, kind, op->status, op->pid, op->seq);
    ev.detail = snap_error_message();
    incident(o, &ev);
  }
}

void snap__obs_skip_slow(snap__obs *o, const char *pid, int64_t seq, int status, const char *why) {
  char detail[512];
  snprintf(detail, sizeof detail, "%s", why ? why : "");
  snap_event ev = event_init(o, SNAP_EVENT_CORRUPT_SKIPPED, status, pid, seq);
  ev.detail = detail;
  incident(o, &ev);
  if (o->log_threshold >= SNAP_LOG_WARNING && first_time(o, WARNED_CORRUPT))
    log_msg(o, SNAP_LOG_WARNING,
            "backend '%s': load of pid '%s' skipped the undecodable snapshot seq %" PRId64
            " (%s) for an older one: %s (warned once per store; the incident metrics count "
            "every skip)",
            o->backend, pid, seq, snap_strerror(status), detail);
}

void snap__obs_host_report(const snap_host *host, const snap_backend_report *r) {
  if (host == NULL || r == NULL)
    return;
  snap__obs *o = ((const snap__host *)host)->obs;
  if (o == NULL || !o->active)
    return;
  const char *detail = r->detail ? r->detail : "";
  switch (r->kind) {
  case SNAP_EVENT_PRUNE: {
    if (o->metrics_on) {
      snap__metrics_op(o->m, SNAP_OP_PRUNE, r->status, 0, 0, 0);
      snap__metrics_pruned(o->m, r->count);
    }
    if (o->fn != NULL) {
      snap_event ev = event_init(o, SNAP_EVENT_PRUNE, r->status, r->pid, r->seq);
      ev.count = r->count;
      o->fn(o->ud, &ev);
    }
    break;
  }
  case SNAP_EVENT_PRUNE_FAILED: {
    if (o->metrics_on)
      snap__metrics_op(o->m, SNAP_OP_PRUNE, r->status, 0, 0, 0);
    snap_event ev = event_init(o, SNAP_EVENT_PRUNE_FAILED, r->status, r->pid, r->seq);
    ev.detail = detail;
    incident(o, &ev);
    log_msg(o, SNAP_LOG_WARNING,
            "backend '%s': retention failed for pid '%s' (%s): older snapshots stay until a later "
            "save prunes them; the save itself succeeded: %s",
            o->backend, r->pid ? r->pid : "", snap_strerror(r->status), detail);
    break;
  }
  case SNAP_EVENT_BUSY_RETRY: {
    snap_event ev = event_init(o, SNAP_EVENT_BUSY_RETRY, r->status, r->pid, r->seq);
    ev.count = r->count;
    ev.detail = detail;
    incident(o, &ev);
    break;
  }
  default:
    break; /* a kind this host does not know: nothing to count */
  }
}
