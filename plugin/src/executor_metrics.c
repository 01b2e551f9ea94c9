/* The executor's figures: series it registers on its store when it starts,
 * updated lock-free through their handles (no name is looked up on the hot
 * path), and read back for snap_executor_metrics_get(). The names, HELP
 * texts and units are those the store rendered itself before the series
 * were generic, so the Prometheus page reads the same. */
#include <string.h>
#include <time.h>

#include "executor_internal.h"

static const struct {
  const char *name;
  snap_series_type type;
  const char *help;
} series_def[SNAP__EXEC_SERIES] = {
    [SNAP__EXEC_DEPTH] = {"snapstore_executor_queue_depth", SNAP_SERIES_GAUGE,
                          "Requests queued in the executor now."},
    [SNAP__EXEC_DEPTH_MAX] = {"snapstore_executor_queue_depth_max", SNAP_SERIES_GAUGE,
                              "The most requests the executor has had queued at once."},
    [SNAP__EXEC_BATCH] = {"snapstore_executor_batch_saves", SNAP_SERIES_HISTOGRAM,
                          "Saves committed per executor transaction (group commit)."},
    [SNAP__EXEC_LATENCY] = {"snapstore_executor_request_duration_seconds", SNAP_SERIES_DURATION,
                            "Executor requests from submission to the start of their callback, "
                            "time waiting in the queue included (its sum adds up the waits of "
                            "requests queued together)."},
    [SNAP__EXEC_QUEUE_WAIT] = {"snapstore_executor_queue_wait_seconds", SNAP_SERIES_DURATION,
                               "Executor requests from submission until the executor took them "
                               "off its queue."},
    [SNAP__EXEC_COMMIT] = {"snapstore_executor_commit_seconds", SNAP_SERIES_DURATION,
                           "Executor transactions of saves (group commits), from their start to "
                           "their commit; one value per transaction, no queue wait."},
};

uint64_t snap__exec_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void snap__exec_metrics_start(snap_executor *ex) {
  for (int i = 0; i < SNAP__EXEC_SERIES; i++)
    if (snap_store_series_register(ex->st, series_def[i].name, series_def[i].help,
                                   series_def[i].type, &ex->series[i]) != SNAP_OK)
      ex->series[i] = -1;
  snap_error_clear();
}

void snap__exec_depth_locked(snap_executor *ex) {
  int64_t depth = (int64_t)ex->queued;
  (void)snap_store_gauge_set(ex->st, ex->series[SNAP__EXEC_DEPTH], depth);
  (void)snap_store_gauge_raise(ex->st, ex->series[SNAP__EXEC_DEPTH_MAX], depth);
}

void snap__exec_observe(snap_executor *ex, int series, uint64_t value) {
  (void)snap_store_histogram_observe(ex->st, ex->series[series], value);
}

/* A gauge of `m` as a count (0 when unregistered or negative). */
static uint64_t gauge_of(const snap_executor *ex, const snap_metrics *m, int series) {
  int id = ex->series[series];
  if (id < 0 || (size_t)id >= m->nseries || m->series[id].gauge < 0)
    return 0;
  return (uint64_t)m->series[id].gauge;
}

static void hist_of(const snap_executor *ex, const snap_metrics *m, int series,
                    snap_histogram *out) {
  int id = ex->series[series];
  if (id >= 0 && (size_t)id < m->nseries)
    *out = m->series[id].hist;
}

int snap_executor_metrics_get(snap_executor *ex, snap_executor_metrics *out) {
  if (!ex || !out)
    return snap_error_set(SNAP_EINVAL, "snap_executor_metrics_get: NULL argument");
  memset(out, 0, sizeof *out);
  snap_metrics *m = snap_malloc(sizeof *m); /* some kilobytes: not on a callback's stack */
  if (!m)
    return snap_error_set(SNAP_ENOMEM, "out of memory reading the executor's metrics");
  int rc = snap_store_metrics(ex->st, m);
  if (rc == SNAP_OK) {
    out->queue_depth = gauge_of(ex, m, SNAP__EXEC_DEPTH);
    out->queue_depth_max = gauge_of(ex, m, SNAP__EXEC_DEPTH_MAX);
    hist_of(ex, m, SNAP__EXEC_BATCH, &out->batch);
    hist_of(ex, m, SNAP__EXEC_LATENCY, &out->latency);
    hist_of(ex, m, SNAP__EXEC_QUEUE_WAIT, &out->queue_wait);
    hist_of(ex, m, SNAP__EXEC_COMMIT, &out->commit);
  }
  snap_free(m);
  return rc;
}
