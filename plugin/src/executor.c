/* The asynchronous executor's lifecycle: creating it (its threads and its
 * series in the store's metrics), shutting it down, freeing it, and its
 * counters. The queue's two sides are executor_submit.c and
 * executor_dispatch.c, the load threads executor_loads.c, the figures
 * executor_metrics.c; executor_internal.h holds what they share. */
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "executor_internal.h"

_Thread_local snap_executor *snap__exec_current;

/* Load threads when the configuration leaves it to us: one per online core. */
static size_t default_load_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    n = 1;
  if (n > 16)
    n = 16;
  return (size_t)n;
}

/* Saves encoded at once while the dispatcher has a full group queued: every
 * online core but the one the dispatcher writes on, at least one. */
static size_t default_encoders(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 2 ? (size_t)n - 1 : 1;
}

static void executor_dispose(snap_executor *ex) {
  snap__exec_pool_free(ex);
  snap_free(ex->loaders);
  snap_free(ex->batch);
  snap_free(ex->items);
  snap_free(ex->status);
  snap_free(ex->meta);
  snap_free(ex);
}

/* executor_dispose() of an executor whose lock and conditions were made. */
static void executor_destroy(snap_executor *ex) {
  pthread_cond_destroy(&ex->loads);
  pthread_cond_destroy(&ex->room);
  pthread_cond_destroy(&ex->work);
  pthread_mutex_destroy(&ex->mu);
  executor_dispose(ex);
}

/* Initialises the lock and conditions and starts the load threads and the
 * dispatcher; on failure stops what started and frees the executor. */
static int start_threads(snap_executor *ex) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&ex->mu, NULL);
  pthread_cond_init(&ex->work, &ca);
  pthread_cond_init(&ex->room, &ca);
  pthread_cond_init(&ex->loads, &ca);
  pthread_condattr_destroy(&ca);
  int err = 0;
  for (size_t i = 0; i < ex->load_threads && !err; i++) {
    err = pthread_create(&ex->loaders[i], NULL, snap__exec_loader_main, ex);
    if (!err)
      ex->loaders_started++;
  }
  if (!err)
    err = pthread_create(&ex->worker, NULL, snap__exec_worker_main, ex);
  if (err) {
    pthread_mutex_lock(&ex->mu);
    snap__exec_stop_loaders_locked(ex); /* nothing was queued: nothing to deliver */
    pthread_mutex_unlock(&ex->mu);
    executor_destroy(ex);
    return snap_error_set(SNAP_EIO, "cannot start the executor's threads: %s", strerror(err));
  }
  return SNAP_OK;
}

/* The bytes the pool of delivered requests may hold: a slot's worth for
 * each request a pipelined stream of saves can have in flight (queued, and
 * two groups finished and not yet delivered), saturating. */
static size_t pool_max_for(size_t cap, size_t max_batch) {
  const size_t slots = SIZE_MAX / SNAP__EXEC_POOL_SLOT_BYTES;
  if (max_batch >= slots / 2 || cap >= slots - 2 * max_batch)
    return SIZE_MAX;
  size_t bytes = (cap + 2 * max_batch) * SNAP__EXEC_POOL_SLOT_BYTES;
  return bytes > SNAP__EXEC_POOL_BYTES ? bytes : SNAP__EXEC_POOL_BYTES;
}

int snap_executor_new(snap_executor **out, snap_store *st, const snap_executor_config *cfg) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_executor_new: NULL output");
  *out = NULL;
  if (!st)
    return snap_error_set(SNAP_EINVAL, "snap_executor_new: NULL store");
  snap_executor_config c = SNAP_EXECUTOR_CONFIG_INIT;
  if (cfg && cfg->queue_capacity)
    c.queue_capacity = cfg->queue_capacity;
  if (cfg && cfg->max_batch)
    c.max_batch = cfg->max_batch;
  if (cfg && cfg->load_threads)
    c.load_threads = cfg->load_threads;
  if (c.load_threads == 0)
    c.load_threads = default_load_threads();
  if (c.load_threads > SNAP__EXEC_LOAD_THREADS_MAX)
    return snap_error_set(SNAP_EINVAL, "snap_executor_new: %zu load threads (at most %d)",
                          c.load_threads, SNAP__EXEC_LOAD_THREADS_MAX);
  snap_executor *ex = snap_calloc(1, sizeof *ex);
  if (!ex)
    return snap_error_set(SNAP_ENOMEM, "out of memory creating an executor");
  ex->st = st;
  ex->cap = c.queue_capacity;
  ex->max_batch = c.max_batch;
  ex->encoders_max = default_encoders();
  ex->load_threads = c.load_threads;
  ex->max_loads_out = c.load_threads * SNAP__EXEC_LOADS_PER_THREAD;
  ex->max_held = c.load_threads * SNAP__EXEC_HELD_BYTES_PER_THREAD;
  ex->pool_max = pool_max_for(c.queue_capacity, c.max_batch);
  ex->batch = snap_calloc(c.max_batch, sizeof *ex->batch);
  ex->items = snap_calloc(c.max_batch, sizeof *ex->items);
  ex->status = snap_calloc(c.max_batch, sizeof *ex->status);
  ex->meta = snap_calloc(c.max_batch, sizeof *ex->meta);
  ex->loaders = snap_calloc(c.load_threads, sizeof *ex->loaders);
  if (!ex->batch || !ex->items || !ex->status || !ex->meta || !ex->loaders) {
    executor_dispose(ex);
    return snap_error_set(SNAP_ENOMEM, "out of memory for a batch of %zu saves", c.max_batch);
  }
  snap__exec_metrics_start(ex);
  int rc = start_threads(ex);
  if (rc != SNAP_OK)
    return rc;
  *out = ex;
  return SNAP_OK;
}

int snap_executor_shutdown(snap_executor *ex, unsigned mode) {
  if (!ex)
    return snap_error_set(SNAP_EINVAL, "snap_executor_shutdown: NULL executor");
  if (mode == 0 || (mode & ~(SNAP_SHUTDOWN_DRAIN | SNAP_SHUTDOWN_CANCEL)))
    return snap_error_set(SNAP_EINVAL, "snap_executor_shutdown: unknown mode 0x%x", mode);
  if (snap__exec_current == ex)
    return snap_error_set(SNAP_EINVAL, "snap_executor_shutdown called from a completion callback");
  pthread_mutex_lock(&ex->mu);
  ex->closing = true;
  if (mode & SNAP_SHUTDOWN_CANCEL)
    ex->cancel = true;
  pthread_cond_broadcast(&ex->work);
  pthread_cond_broadcast(&ex->room);
  bool join = !ex->join_started;
  ex->join_started = true;
  if (!join) {
    while (!ex->joined)
      pthread_cond_wait(&ex->room, &ex->mu);
  }
  pthread_mutex_unlock(&ex->mu);
  if (join) {
    pthread_join(ex->worker, NULL);
    pthread_mutex_lock(&ex->mu);
    ex->joined = true;
    pthread_cond_broadcast(&ex->room);
    pthread_mutex_unlock(&ex->mu);
  }
  return SNAP_OK;
}

void snap_executor_free(snap_executor *ex) {
  if (!ex)
    return;
  snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN);
  executor_destroy(ex);
}

void snap_executor_stats_get(snap_executor *ex, snap_executor_stats *out) {
  if (!ex || !out)
    return;
  pthread_mutex_lock(&ex->mu);
  *out = ex->stats;
  out->completed = atomic_load(&ex->started);
  pthread_mutex_unlock(&ex->mu);
}
