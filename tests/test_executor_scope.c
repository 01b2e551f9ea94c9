/* The executor's read scopes: a load thread reads the loads waiting in a row
 * in one read scope of the store (backend ABI version 8), with no callback
 * inside it and no load that was dispatched after it began; on sqlite a
 * scope holds a reader, and the loads inside it that need another one (a
 * streamed state's chunks) still get it. The backend here is the sqlite
 * backend with its scope slots and loads wrapped, to watch them. */
#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap/executor.h"
#include "snap/observe.h"
#include "snap/plugin.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"
#include "store_util.h"

static const char *STATE = "{\"owner\":\"Grace\",\"balance\":100}";

/* What the wrapped backend saw. */
static _Thread_local bool in_scope;
static atomic_int scopes, loads_in_scope, callbacks_in_scope;
static snap_backend real, watched;
static snap_executor *watched_ex;

/* The load of "gate" waits until the test opens it; the load of `hold_pid`
 * waits until the executor's queue is empty, at most 2 s (a save that may
 * go ahead commits in far less). */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_entered, gate_open;
static const char *hold_pid;
static atomic_int hold_timed_out;

static int scope_begin(void *self) {
  int rc = real.read_scope_begin(self);
  if (rc == SNAP_OK) {
    in_scope = true;
    atomic_fetch_add(&scopes, 1);
  }
  return rc;
}

static void scope_end(void *self) {
  in_scope = false;
  real.read_scope_end(self);
}

static uint64_t queue_depth(void) {
  snap_executor_metrics m;
  if (snap_executor_metrics_get(watched_ex, &m) != SNAP_OK)
    return UINT64_MAX;
  return m.queue_depth;
}

/* Polls until the executor's queue holds `depth` requests; false after
 * `limit_ms` milliseconds. */
static bool wait_for_depth_ms(uint64_t depth, int limit_ms) {
  for (int i = 0; i < limit_ms; i++) {
    if (queue_depth() == depth)
      return true;
    struct timespec ms = {0, 1000000L};
    nanosleep(&ms, NULL);
  }
  return false;
}

static bool wait_for_depth(uint64_t depth) { return wait_for_depth_ms(depth, 10000); }

static int watched_load4(void *self, const char *pid, const snap_criteria *c, const char *manifest,
                         snap_backend_emit emit, void *ctx) {
  if (strcmp(pid, "gate") == 0) {
    pthread_mutex_lock(&gate_mu);
    gate_entered = true;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
      pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
  }
  if (hold_pid != NULL && strcmp(pid, hold_pid) == 0 && !wait_for_depth_ms(0, 2000))
    atomic_store(&hold_timed_out, 1);
  if (in_scope)
    atomic_fetch_add(&loads_in_scope, 1);
  return manifest ? real.load4(self, pid, c, manifest, emit, ctx)
                  : real.load(self, pid, c, emit, ctx);
}

static int watched_load(void *self, const char *pid, const snap_criteria *c,
                        snap_backend_emit emit, void *ctx) {
  return watched_load4(self, pid, c, NULL, emit, ctx);
}

typedef struct seen {
  int status;
  int64_t seq; /* a load's: -1 for none */
  size_t len;  /* a load's state bytes */
} seen;

static void record_cb(void *ud, snap_result *r) {
  seen *s = ud;
  if (in_scope)
    atomic_fetch_add(&callbacks_in_scope, 1);
  s->status = r->status;
  s->seq = r->kind == SNAP_REQUEST_LOAD && r->snapshot ? r->snapshot->seq : -1;
  s->len = r->kind == SNAP_REQUEST_LOAD && r->snapshot ? r->snapshot->len : 0;
}

/* The watched backend, its table marked as written for ABI `version`. */
static snap_store *open_watched_as(char **dir, uint32_t version) {
  real = *snap_backend_sqlite();
  watched = real;
  watched.abi_version = version;
  watched.read_scope_begin = scope_begin;
  watched.read_scope_end = scope_end;
  watched.load = watched_load;
  watched.load4 = watched_load4;
  atomic_store(&scopes, 0);
  atomic_store(&loads_in_scope, 0);
  atomic_store(&callbacks_in_scope, 0);
  atomic_store(&hold_timed_out, 0);
  gate_entered = gate_open = false;
  hold_pid = NULL;
  *dir = st_tmpdir();
  cr_assert_not_null(*dir);
  char *path = st_join(*dir, "scope.db");
  char config[700];
  snprintf(config, sizeof config, "{\"path\": \"%s\", \"keep\": 0, \"synchronous\": \"normal\"}",
           path);
  free(path);
  snap_store *st;
  cr_assert_eq(snap_store_open_backend(&st, &watched, config), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(snap_store_set_metrics(st, 1), SNAP_OK);
  return st;
}

static snap_store *open_watched(char **dir) {
  return open_watched_as(dir, SNAP_BACKEND_ABI_VERSION);
}

/* Loads the gate with one load thread and waits until that thread is inside
 * it: what is submitted next queues behind it. */
static snap_executor *start_gated(snap_store *st, seen *gate_seen) {
  cr_assert_eq(snap_save(st, "gate", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL),
               SNAP_OK);
  snap_executor *ex;
  snap_executor_config cfg = {.load_threads = 1};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  watched_ex = ex;
  cr_assert_eq(snap_executor_load(ex, "gate", NULL, NULL, record_cb, gate_seen), SNAP_OK);
  pthread_mutex_lock(&gate_mu);
  while (!gate_entered)
    pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
  return ex;
}

static void open_gate(void) {
  pthread_mutex_lock(&gate_mu);
  gate_open = true;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

/* Loads p-0 .. p-(n-1) queued behind the gate, all dispatched to the one
 * load thread before it leaves the gate; returns once every callback ran. */
static void load_all_gated(snap_store *st, int n, seen *s) {
  seen gate_seen = {-1, -1, 0};
  snap_executor *ex = start_gated(st, &gate_seen);
  for (int i = 0; i < n; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "p-%d", i);
    s[i] = (seen){-1, -1, 0};
    cr_assert_eq(snap_executor_load(ex, pid, NULL, NULL, record_cb, &s[i]), SNAP_OK);
  }
  cr_assert(wait_for_depth(0), "the loads were not dispatched");
  open_gate();
  snap_executor_free(ex);
  cr_assert_eq(gate_seen.status, SNAP_OK);
}

/* Saves p-0 .. p-(n-1), p-i at seq i + 1. */
static void save_numbered(snap_store *st, int n) {
  for (int i = 0; i < n; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "p-%d", i);
    cr_assert_eq(snap_save(st, pid, i + 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL),
                 SNAP_OK);
  }
}

Test(executor_scope, queued_loads_are_read_sixteen_to_a_scope_and_delivered_after_it,
     .timeout = 60) {
  char *dir;
  snap_store *st = open_watched(&dir);
  enum { N = 40 };
  save_numbered(st, N);
  seen s[N];
  load_all_gated(st, N, s);
  for (int i = 0; i < N; i++) {
    cr_assert_eq(s[i].status, SNAP_OK, "load %d: %d", i, s[i].status);
    cr_assert_eq(s[i].seq, i + 1, "load %d found seq %lld", i, (long long)s[i].seq);
  }
  /* The gate alone (nothing was waiting when it was taken), then 16 + 16 + 8. */
  cr_assert_eq(atomic_load(&scopes), 3);
  cr_assert_eq(atomic_load(&loads_in_scope), N);
  cr_assert_eq(atomic_load(&callbacks_in_scope), 0, "a callback ran inside a read scope");
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* A backend table written for ABI version 7 knows no scope slots: the host
 * never calls what lies past its version, and its loads run alone. */
Test(executor_scope, a_table_of_abi_version_7_reads_each_load_alone, .timeout = 60) {
  char *dir;
  snap_store *st = open_watched_as(&dir, 7);
  enum { N = 20 };
  save_numbered(st, N);
  seen s[N];
  load_all_gated(st, N, s);
  for (int i = 0; i < N; i++)
    cr_assert_eq(s[i].seq, i + 1, "load %d: status %d", i, s[i].status);
  cr_assert_eq(atomic_load(&scopes), 0);
  cr_assert_eq(atomic_load(&loads_in_scope), 0);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* Large states end a scope at a mebibyte: four of 700 KB go two to a scope. */
Test(executor_scope, a_scope_ends_once_its_states_reach_a_mebibyte, .timeout = 60) {
  char *dir;
  snap_store *st = open_watched(&dir);
  enum { BIG = 700 * 1000 };
  char *state = malloc(BIG + 16);
  cr_assert_not_null(state);
  int n = snprintf(state, 16, "{\"pad\":\"");
  memset(state + n, 'x', BIG);
  n += BIG;
  memcpy(state + n, "\"}", 2);
  n += 2;
  for (int i = 0; i < 4; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "p-%d", i);
    cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, state, (size_t)n, NULL, NULL), SNAP_OK,
                 "%s", snap_error_message());
  }
  free(state);
  seen s[4];
  load_all_gated(st, 4, s);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(s[i].seq, 1, "load %d: status %d", i, s[i].status);
  cr_assert_eq(atomic_load(&scopes), 2);
  cr_assert_eq(atomic_load(&loads_in_scope), 4);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/*
 * A save of p-0 queued behind a run of loads that reads p-0 (and p-3, whose
 * load finds the save still waiting: it holds until the queue is empty or
 * 2 s pass) does not commit while the run is read, so the run's scope
 * cannot see it; the load of p-0 submitted after the save is not part of
 * that run and sees it.
 */
Test(executor_scope, a_write_behind_a_run_of_loads_waits_for_the_whole_run, .timeout = 60) {
  char *dir;
  snap_store *st = open_watched(&dir);
  for (int i = 0; i < 4; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "p-%d", i);
    cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL),
                 SNAP_OK);
  }
  seen gate_seen = {-1, -1, 0}, first[4], saved = {-1, -1, 0}, again = {-1, -1, 0};
  snap_executor *ex = start_gated(st, &gate_seen);
  hold_pid = "p-3";
  for (int i = 0; i < 4; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "p-%d", i);
    first[i] = (seen){-1, -1, 0};
    cr_assert_eq(snap_executor_load(ex, pid, NULL, NULL, record_cb, &first[i]), SNAP_OK);
  }
  snap_save_req r = {"p-0", 100, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL};
  cr_assert_eq(snap_executor_save(ex, &r, record_cb, &saved), SNAP_OK);
  cr_assert_eq(snap_executor_load(ex, "p-0", NULL, NULL, record_cb, &again), SNAP_OK);
  /* The four loads dispatched, the save taken and waiting for the load of
   * p-0 to be read: the second load of p-0 is what stays queued. */
  cr_assert(wait_for_depth(1), "the loads and the save were not dispatched");
  open_gate();
  snap_executor_free(ex);
  cr_assert(atomic_load(&hold_timed_out), "the save of p-0 went through while its run was read");
  for (int i = 0; i < 4; i++)
    cr_assert_eq(first[i].seq, 1, "the first load of p-%d found seq %lld", i,
                 (long long)first[i].seq);
  cr_assert_eq(saved.status, SNAP_OK);
  cr_assert_eq(again.status, SNAP_OK);
  cr_assert_eq(again.seq, 100, "the load submitted after the save found seq %lld",
               (long long)again.seq);
  cr_assert_eq(atomic_load(&scopes), 1, "the four loads shared one scope");
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* Eight load threads, more than the readers a scope may hold (all but one of
 * the pool's four), each streamed state needing a second reader for its
 * chunks while its thread holds a scope: every load completes. */
Test(executor_scope, scopes_leave_a_reader_for_the_loads_inside_them, .timeout = 120) {
  char *dir;
  snap_store *st = open_watched(&dir);
  char state[5000];
  int n = snprintf(state, sizeof state, "{\"pad\":\"");
  memset(state + n, 'x', 4500);
  n += 4500;
  n += snprintf(state + n, sizeof state - (size_t)n, "\"}");
  enum { PIDS = 24, ROUNDS = 8 };
  for (int i = 0; i < PIDS; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "s-%d", i);
    snap_save_stream *w;
    cr_assert_eq(snap_save_stream_begin(st, pid, 1, 0, SNAP_FORMAT_JSON, NULL, NULL, 1024, &w),
                 SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(snap_save_stream_write(w, state, (size_t)n), SNAP_OK);
    cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
  }
  snap_executor *ex;
  snap_executor_config cfg = {.load_threads = 8};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  static seen s[ROUNDS * PIDS];
  for (int k = 0; k < ROUNDS * PIDS; k++) {
    char pid[16];
    snprintf(pid, sizeof pid, "s-%d", k % PIDS);
    s[k] = (seen){-1, -1, 0};
    cr_assert_eq(snap_executor_load(ex, pid, NULL, NULL, record_cb, &s[k]), SNAP_OK);
  }
  snap_executor_free(ex);
  for (int k = 0; k < ROUNDS * PIDS; k++) {
    cr_assert_eq(s[k].status, SNAP_OK, "streamed load %d failed: %d", k, s[k].status);
    cr_assert_geq(s[k].len, 4096, "streamed load %d read %zu bytes", k, s[k].len);
  }
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}
