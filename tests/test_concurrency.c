/* One store handle shared by many threads: saves and loads of 100 pids from 8
 * threads at once never return a snapshot that was not saved. Run under
 * ThreadSanitizer by `make tsan` (ctest label "threads"). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#define check(cond, ...) cr_assert(cond, "" __VA_ARGS__)

#include "snap/admin.h"
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

/* ------------------------------------------------------------------------ */
/* Re-encryption beside a live writer                                        */
/* ------------------------------------------------------------------------ */

/* After a key rotation a sweep re-encrypts the old bodies (what `snapctl
 * rekey` does) while the application keeps saving under the new key: it saves
 * every (pid, seq) again, several rounds over, and deletes some. The sweep
 * forces a rewrite of every body it lists, pass after pass while the writer
 * runs, so that its conditional replaces meet the writer's saves on the same
 * rows. Whatever the interleaving, a sweep never overwrites a newer save and
 * never brings a deleted snapshot back, and afterwards every body is under the
 * new key. */
enum { RK_PIDS = 4, RK_SEQS = 120, RK_ROUNDS = 4 };

typedef struct rekey_run {
  snap_store *st;
  const snap_options *now; /* the new key's options */
  bool force;
  atomic_int *writing; /* 1 while the writer runs */
  int failed;
  char why[256];
  long rewritten, changed, gone;
} rekey_run;

static void rk_state(char *buf, size_t cap, int round, int p, int64_t seq) {
  snprintf(buf, cap, "{\"round\":%d,\"pid\":%d,\"seq\":%" PRId64 "}", round, p, seq);
}

static bool rk_deleted(int64_t seq) { return seq % 7 == 0; }

static void *rk_writer(void *arg) {
  rekey_run *r = arg;
  for (int round = 1; round <= RK_ROUNDS && !r->failed; round++) {
    /* Downwards, against the sweep's direction: they cross mid-way. */
    for (int64_t seq = RK_SEQS; seq >= 1 && !r->failed; seq--) {
      for (int p = 0; p < RK_PIDS; p++) {
        char pid[16], state[96];
        snprintf(pid, sizeof pid, "rk-%d", p);
        int rc = SNAP_OK;
        if (rk_deleted(seq)) {
          if (round == 1)
            rc = snap_delete_one(r->st, pid, seq);
        } else {
          rk_state(state, sizeof state, round, p, seq);
          rc = snap_save(r->st, pid, seq, SNAP_FORMAT_JSON, state, strlen(state), r->now, NULL);
        }
        if (rc != SNAP_OK && !r->failed++)
          snprintf(r->why, sizeof r->why, "writer %s/%" PRId64 ": %s", pid, seq,
                   snap_error_message());
      }
    }
  }
  atomic_store(r->writing, 0);
  return NULL;
}

/* One pass over every stored body; returns how many were not current. */
static long rk_pass(rekey_run *r) {
  char after[16] = "";
  int64_t after_seq = 0;
  long todo = 0;
  for (;;) {
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    int rc = snap_store_list(r->st, NULL, after[0] ? after : NULL, after_seq, 32, true, &page);
    if (rc != SNAP_OK) {
      if (!r->failed++)
        snprintf(r->why, sizeof r->why, "list: %s", snap_error_message());
      return 0;
    }
    snap_rewrite items[32];
    for (size_t i = 0; i < page.n; i++) {
      snap_entry *e = &page.entries[i];
      items[i] = (snap_rewrite){e->pid, e->seq, e->body, e->stored_len, -1, -1, 0, 0};
    }
    if (page.n && (rc = snap_store_rewrite(r->st, items, page.n, r->now, r->force)) != SNAP_OK &&
        !r->failed++)
      snprintf(r->why, sizeof r->why, "rewrite: %s", snap_error_message());
    for (size_t i = 0; i < page.n; i++) {
      todo += items[i].outcome != SNAP_REWRITE_CURRENT;
      r->rewritten += items[i].outcome == SNAP_REWRITE_DONE;
      r->changed += items[i].outcome == SNAP_REWRITE_CHANGED;
      r->gone += items[i].outcome == SNAP_REWRITE_GONE;
    }
    size_t n = page.n;
    if (n) {
      snprintf(after, sizeof after, "%s", page.entries[n - 1].pid);
      after_seq = page.entries[n - 1].seq;
    }
    snap_entry_page_dispose(&page);
    if (n < 32 || r->failed)
      return todo;
  }
}

/* Forced passes for as long as the writer runs (at least one). */
static void *rk_sweeper(void *arg) {
  rekey_run *r = arg;
  do
    rk_pass(r);
  while (atomic_load(r->writing) && !r->failed);
  return NULL;
}

static void rekey_case(void) {
  char *dir = st_tmpdir();
  check(dir != NULL, "cannot create a temp directory");
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/rk.db\", \"keep\": 0, \"synchronous\": \"normal\"}",
           dir);
  snap_store *st = NULL;
  check(snap_store_open_backend(&st, snap_backend_sqlite(), cfg) == SNAP_OK, "%s",
        snap_error_message());
  uint8_t k1[SNAP_KEY_BYTES], k2[SNAP_KEY_BYTES];
  memset(k1, 0x61, sizeof k1);
  memset(k2, 0x62, sizeof k2);
  snap_keyring *old = NULL, *rotated = NULL;
  check(snap_keyring_new(&old) == SNAP_OK && snap_keyring_add(old, 1, k1, sizeof k1) == SNAP_OK);
  check(snap_keyring_new(&rotated) == SNAP_OK &&
        snap_keyring_add(rotated, 1, k1, sizeof k1) == SNAP_OK &&
        snap_keyring_add(rotated, 2, k2, sizeof k2) == SNAP_OK &&
        snap_keyring_set_active(rotated, 2) == SNAP_OK);
  snap_options *before = NULL, *now = NULL;
  check(snap_options_new(&before) == SNAP_OK &&
        snap_options_set_encryption(before, old, "rekey/test") == SNAP_OK);
  check(snap_options_new(&now) == SNAP_OK &&
        snap_options_set_encryption(now, rotated, "rekey/test") == SNAP_OK);
  /* Before the rotation: every (pid, seq) under key 1. */
  for (int p = 0; p < RK_PIDS; p++) {
    for (int64_t seq = 1; seq <= RK_SEQS; seq++) {
      char pid[16], state[96];
      snprintf(pid, sizeof pid, "rk-%d", p);
      rk_state(state, sizeof state, 0, p, seq);
      check(snap_save(st, pid, seq, SNAP_FORMAT_JSON, state, strlen(state), before, NULL) ==
                SNAP_OK,
            "%s", snap_error_message());
    }
  }
  atomic_int writing = 1;
  rekey_run r = {st, now, true, &writing, 0, "", 0, 0, 0};
  rekey_run w = {st, now, false, &writing, 0, "", 0, 0, 0};
  pthread_t tw, ts;
  check(pthread_create(&ts, NULL, rk_sweeper, &r) == 0 &&
        pthread_create(&tw, NULL, rk_writer, &w) == 0);
  pthread_join(tw, NULL);
  pthread_join(ts, NULL);
  check(!w.failed, "%s", w.why);
  check(!r.failed, "%s", r.why);
  /* What an operator's sweep does afterwards: re-encrypt what is not current. */
  r.force = false;
  rk_pass(&r);
  check(!r.failed, "%s", r.why);
  check(rk_pass(&r) == 0, "a second sweep still found bodies to re-encrypt");
  for (int p = 0; p < RK_PIDS; p++) {
    char pid[16], state[96];
    snprintf(pid, sizeof pid, "rk-%d", p);
    for (int64_t seq = 1; seq <= RK_SEQS; seq++) {
      snap_snapshot *s = NULL;
      snap_criteria c = SNAP_CRITERIA_LATEST_INIT;
      c.min_seq = c.max_seq = seq;
      check(snap_load(st, pid, &c, now, &s) == SNAP_OK, "%s/%" PRId64 ": %s", pid, seq,
            snap_error_message());
      if (rk_deleted(seq)) {
        check(s == NULL, "%s/%" PRId64 " was deleted and came back", pid, seq);
        continue;
      }
      check(s != NULL, "%s/%" PRId64 " is missing", pid, seq);
      rk_state(state, sizeof state, RK_ROUNDS, p, seq);
      check(s->len == strlen(state) && memcmp(s->data, state, s->len) == 0,
            "%s/%" PRId64 ": the newer save was overwritten: %.*s", pid, seq, (int)s->len,
            (const char *)s->data);
      snap_snapshot_free(s);
    }
  }
  /* Every stored body is under key 2 now. */
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  check(snap_store_list(st, NULL, NULL, 0, RK_PIDS * RK_SEQS, false, &page) == SNAP_OK);
  for (size_t i = 0; i < page.n; i++)
    check(page.entries[i].key_version == 2, "%s/%" PRId64 " still under key %u",
          page.entries[i].pid, page.entries[i].seq, page.entries[i].key_version);
  snap_entry_page_dispose(&page);
  fprintf(stderr, "rekey beside a writer: %ld re-encrypted, %ld changed and %ld deleted under it\n",
          r.rewritten, r.changed, r.gone);
  snap_options_free(before);
  snap_options_free(now);
  snap_keyring_free(old);
  snap_keyring_free(rotated);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(concurrency, rekey_beside_a_live_writer_never_overwrites_a_newer_save) { rekey_case(); }
