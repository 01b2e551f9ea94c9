/* One store handle shared by many threads: saves and loads of 100 pids from 8
 * threads at once never return a snapshot that was not saved. Run under
 * ThreadSanitizer by `make tsan` (ctest label "threads"). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#define check(cond, ...) cr_assert(cond, "" __VA_ARGS__)

#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

enum { THREADS = 8, PIDS = 100, OPS = 150 };

typedef struct worker {
  snap_store *st;
  int id;
  int saves, loads, found;
  int bad; /* loads that returned something never saved */
  char why[256];
} worker;

static void state_for(char *buf, size_t cap, int pid, int64_t seq) {
  snprintf(buf, cap, "{\"pid\":\"p-%d\",\"seq\":%" PRId64 "}", pid, seq);
}

static void *run(void *arg) {
  worker *w = arg;
  uint32_t x = 2463534242u + (uint32_t)w->id * 977u; /* xorshift: no shared rand() state */
  for (int i = 0; i < OPS; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    int p = (int)(x % PIDS);
    char pid[16], state[96];
    snprintf(pid, sizeof pid, "p-%d", p);
    /* Sequence numbers are unique per thread, payloads a function of (pid, seq). */
    int64_t seq = (int64_t)i * THREADS + w->id;
    if ((x >> 16) & 1) {
      state_for(state, sizeof state, p, seq);
      int rc = snap_save(w->st, pid, seq, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL);
      if (rc != SNAP_OK && !w->bad++)
        snprintf(w->why, sizeof w->why, "save %s/%" PRId64 ": %s", pid, seq, snap_error_message());
      w->saves++;
    } else {
      snap_snapshot *s = NULL;
      int rc = snap_load_latest(w->st, pid, NULL, &s);
      w->loads++;
      if (rc != SNAP_OK) {
        if (!w->bad++)
          snprintf(w->why, sizeof w->why, "load %s: %s", pid, snap_error_message());
        continue;
      }
      if (s == NULL)
        continue;
      w->found++;
      state_for(state, sizeof state, p, s->seq);
      if ((strcmp(s->pid, pid) != 0 || strcmp((const char *)s->data, state) != 0) && !w->bad++)
        snprintf(w->why, sizeof w->why, "load %s gave seq %" PRId64 " with '%s'", pid, s->seq,
                 (const char *)s->data);
      snap_snapshot_free(s);
    }
  }
  return NULL;
}

static void hammer(const snap_backend *be, const char *config) {
  snap_store *st = NULL;
  check(snap_store_open_backend(&st, be, config) == SNAP_OK, "%s", snap_error_message());
  pthread_t t[THREADS];
  worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].st = st;
    w[i].id = i;
    check(pthread_create(&t[i], NULL, run, &w[i]) == 0, "pthread_create");
  }
  int saves = 0, found = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    check(w[i].bad == 0, "[%s] thread %d: %s", be->name, i, w[i].why);
    saves += w[i].saves;
    found += w[i].found;
  }
  check(saves > 0, "[%s] no save", be->name);
  check(found > 0, "[%s] no load ever found a snapshot", be->name);
  /* Afterwards every pid's latest is one of the saved states. */
  for (int p = 0; p < PIDS; p++) {
    char pid[16], state[96];
    snprintf(pid, sizeof pid, "p-%d", p);
    snap_snapshot *s = NULL;
    check(snap_load_latest(st, pid, NULL, &s) == SNAP_OK, "%s", snap_error_message());
    if (s != NULL) {
      state_for(state, sizeof state, p, s->seq);
      check(strcmp((const char *)s->data, state) == 0, "[%s] %s", be->name, (const char *)s->data);
      snap_snapshot_free(s);
    }
  }
  snap_store_close(st);
}

static void memory_case(void) { hammer(snap_backend_memory(), "{\"keep\": 2}"); }

static void sqlite_case(void) {
  char *dir = st_tmpdir();
  check(dir != NULL, "cannot create a temp directory");
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/c.db\", \"keep\": 2, \"synchronous\": \"normal\"}",
           dir);
  hammer(snap_backend_sqlite(), cfg);
  st_rmtree(dir);
  free(dir);
}

Test(concurrency, eight_threads_share_a_memory_store) { memory_case(); }

Test(concurrency, eight_threads_share_a_sqlite_store) { sqlite_case(); }
