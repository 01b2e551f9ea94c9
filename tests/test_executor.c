/* The async executor: callbacks, group commit, ordering, a failing save inside
 * a batch, backpressure, shutdown (drain and cancel) under load, and
 * durability of every acknowledged save across a reopen. */
#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap/executor.h"
#include "snap/plugin.h"
#include "store_util.h"

/* ---- a gate that holds the worker inside a callback ---------------------- */

typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool entered, released;
  int status;
} gate;

static void gate_init(gate *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->entered = g->released = false;
  g->status = 1;
}

static void gate_cb(void *ud, snap_result *r) {
  gate *g = ud;
  snap_snapshot_free(r->snapshot); /* a gated load's: the callback owns it */
  pthread_mutex_lock(&g->mu);
  g->status = r->status;
  g->entered = true;
  pthread_cond_broadcast(&g->cv);
  while (!g->released)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

/* Queues a request whose callback blocks the worker, and waits until it does:
 * everything submitted afterwards waits in the queue until gate_open(). */
static void gate_close(snap_executor *ex, gate *g) {
  gate_init(g);
  cr_assert_eq(snap_executor_delete(ex, "gate", NULL, gate_cb, g), SNAP_OK, "%s",
               snap_error_message());
  pthread_mutex_lock(&g->mu);
  while (!g->entered)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g) {
  pthread_mutex_lock(&g->mu);
  g->released = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* ---- a log of completions -------------------------------------------------- */

#define LOG_MAX 20000

typedef struct entry {
  snap_request_kind kind;
  int status;
  char pid[32];
  int64_t seq; /* save: the seq saved; load: the seq found (-1: none) */
  int tag;     /* submission index */
  char message[160];
} entry;

typedef struct logbook {
  pthread_mutex_t mu;
  entry e[LOG_MAX];
  size_t n;
} logbook;

static logbook *book;

typedef struct tagged {
  int tag;
} tagged;

static tagged tags[LOG_MAX];

static void log_cb(void *ud, snap_result *r) {
  tagged *t = ud;
  pthread_mutex_lock(&book->mu);
  entry *e = &book->e[book->n++];
  e->kind = r->kind;
  e->status = r->status;
  snprintf(e->pid, sizeof e->pid, "%s", r->pid);
  e->seq = r->kind == SNAP_REQUEST_LOAD ? (r->snapshot ? r->snapshot->seq : -1) : r->seq;
  e->tag = t ? t->tag : -1;
  snprintf(e->message, sizeof e->message, "%s", r->message);
  pthread_mutex_unlock(&book->mu);
  snap_snapshot_free(r->snapshot);
}

/* Every one of the n submissions completed exactly once, and each pid's
 * completions came in submission order (docs/PLUGIN.md: callbacks of
 * different pids may be delivered out of submission order). */
static void assert_per_pid_order(size_t n) {
  cr_assert_eq(book->n, n);
  static bool seen[LOG_MAX];
  memset(seen, 0, sizeof seen);
  for (size_t i = 0; i < n; i++) {
    entry *e = &book->e[i];
    cr_assert(e->tag >= 0 && (size_t)e->tag < n && !seen[e->tag], "completion %zu: tag %d", i,
              e->tag);
    seen[e->tag] = true;
    for (size_t j = 0; j < i; j++)
      if (strcmp(book->e[j].pid, e->pid) == 0)
        cr_assert_lt(book->e[j].tag, e->tag, "pid %s: submission %d completed after %d",
                     e->pid, book->e[j].tag, e->tag);
  }
}

static void book_setup(void) {
  book = calloc(1, sizeof *book);
  pthread_mutex_init(&book->mu, NULL);
  for (int i = 0; i < LOG_MAX; i++)
    tags[i].tag = i;
}

static void book_teardown(void) { free(book); }

static const char *STATE = "{\"owner\":\"Grace\",\"balance\":100}";

static snap_save_req save_req(const char *pid, int64_t seq) {
  return (snap_save_req){pid,           seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, STATE,
                         strlen(STATE), NULL};
}

TestSuite(executor, .init = book_setup, .fini = book_teardown);

Test(executor, completes_saves_and_loads_through_callbacks) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK, "%s", snap_error_message());
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  snap_save_req r = save_req("acct-1", 5);
  cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[0]), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_executor_load(ex, "acct-1", NULL, NULL, log_cb, &tags[1]), SNAP_OK);
  cr_assert_eq(snap_executor_load(ex, "nobody", NULL, NULL, log_cb, &tags[2]), SNAP_OK);
  snap_executor_free(ex);
  cr_assert_eq(book->n, 3, "every callback ran before free returned");
  assert_per_pid_order(3);
  /* "nobody"'s load may complete before acct-1's: another pid. */
  const entry *e[3];
  for (int i = 0; i < 3; i++)
    e[book->e[i].tag] = &book->e[i];
  cr_assert_eq(e[0]->kind, SNAP_REQUEST_SAVE);
  cr_assert_eq(e[0]->status, SNAP_OK);
  cr_assert_eq(e[0]->seq, 5);
  cr_assert_eq(e[1]->kind, SNAP_REQUEST_LOAD);
  cr_assert_eq(e[1]->seq, 5, "the load saw the save submitted before it");
  cr_assert_eq(e[2]->status, SNAP_OK, "nothing found is not an error");
  cr_assert_eq(e[2]->seq, -1);
  snap_store_close(st);
}

Test(executor, commits_waiting_saves_in_one_transaction) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 0}"), SNAP_OK, "%s",
               snap_error_message());
  snap_executor *ex;
  snap_executor_config cfg = {.queue_capacity = 256, .max_batch = 64};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  gate g;
  gate_close(ex, &g);
  char pids[100][16];
  for (int i = 0; i < 100; i++) {
    snprintf(pids[i], sizeof pids[i], "a-%d", i % 10);
    snap_save_req r = save_req(pids[i], i);
    cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[i]), SNAP_OK, "%s", snap_error_message());
  }
  gate_open(&g);
  snap_executor_free(ex);
  assert_per_pid_order(100);
  for (int i = 0; i < 100; i++)
    cr_assert_eq(book->e[i].status, SNAP_OK, "%s", book->e[i].message);
  (void)pids;
  snap_store_close(st);
}

/* `n` saves of `state` queued behind a closed gate on an executor with `cfg`
 * (NULL: the defaults), then released and drained; returns its counters. */
static snap_executor_stats batch_saves(snap_store *st, const snap_executor_config *cfg,
                                       const char *state, size_t len, int n) {
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, cfg), SNAP_OK, "%s", snap_error_message());
  gate g;
  gate_close(ex, &g);
  for (int i = 0; i < n; i++) {
    snap_save_req r = save_req("grouped", i);
    r.state = state;
    r.len = len;
    cr_assert_eq(snap_executor_save(ex, &r, NULL, NULL), SNAP_OK, "%s", snap_error_message());
  }
  gate_open(&g);
  cr_assert_eq(snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN), SNAP_OK);
  snap_executor_stats s;
  snap_executor_stats_get(ex, &s);
  snap_executor_free(ex);
  cr_assert_eq(s.saves, (unsigned long long)n);
  return s;
}

/* A JSON string state of exactly `len` bytes (len >= 2), to free(). */
static char *string_state(size_t len) {
  char *state = malloc(len);
  cr_assert_not_null(state);
  memset(state, 'a', len);
  state[0] = state[len - 1] = '"';
  return state;
}

Test(executor, groups_saves_up_to_max_batch_and_counts_commits) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_executor_config cfg = {.queue_capacity = 256, .max_batch = 40};
  snap_executor_stats s = batch_saves(st, &cfg, STATE, strlen(STATE), 100);
  cr_assert_eq(s.commits, 3, "100 waiting saves in batches of at most 40: %llu commits",
               (unsigned long long)s.commits);
  cr_assert_eq(s.largest_batch, 40);
  cr_assert_eq(s.completed, 101, "the gate and the saves");
  snap_store_close(st);
}

Test(executor, groups_up_to_512_saves_or_64_MiB_of_states_by_default) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 1}"), SNAP_OK, "%s",
               snap_error_message());
  /* Small states: the count ends a group (docs/PLUGIN.md, "Group commit"). */
  snap_executor_stats s = batch_saves(st, NULL, STATE, strlen(STATE), 600);
  cr_assert_eq(s.largest_batch, 512, "largest group %llu", (unsigned long long)s.largest_batch);
  cr_assert_eq(s.commits, 2, "600 waiting saves: %llu commits", (unsigned long long)s.commits);
  /* 1 MiB states: 64 of them make 64 MiB, and the bytes end the group. */
  enum { MIB = 1 << 20 };
  char *big = string_state(MIB);
  s = batch_saves(st, NULL, big, MIB, 70);
  free(big);
  cr_assert_eq(s.largest_batch, 64, "largest group of 1 MiB states %llu",
               (unsigned long long)s.largest_batch);
  cr_assert_eq(s.commits, 2, "70 waiting 1 MiB saves: %llu commits",
               (unsigned long long)s.commits);
  snap_store_close(st);
}

Test(executor, keeps_per_pid_order_and_loads_see_earlier_saves) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 0}"), SNAP_OK);
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  gate g;
  gate_close(ex, &g);
  /* Saves and loads of three pids interleaved; a load's expected answer is
   * the last seq saved for that pid before it in submission order. */
  const char *pids[] = {"x", "y", "z"};
  int64_t last[3] = {-1, -1, -1};
  int64_t expect[600];
  int n = 0;
  for (int i = 0; i < 200; i++) {
    int p = (i * 7) % 3;
    if (i % 5 == 4) {
      expect[n] = last[p];
      cr_assert_eq(snap_executor_load(ex, pids[p], NULL, NULL, log_cb, &tags[n]), SNAP_OK);
    } else {
      snap_save_req r = save_req(pids[p], i);
      expect[n] = i;
      last[p] = i;
      cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[n]), SNAP_OK);
    }
    n++;
  }
  gate_open(&g);
  snap_executor_free(ex);
  cr_assert_eq(book->n, (size_t)n);
  for (int i = 0; i < n; i++) {
    cr_assert_eq(book->e[i].tag, i, "completion %d is submission %d", i, book->e[i].tag);
    cr_assert_eq(book->e[i].status, SNAP_OK);
    cr_assert_eq(book->e[i].seq, expect[i], "request %d: seq %lld, expected %lld", i,
                 (long long)book->e[i].seq, (long long)expect[i]);
  }
  snap_store_close(st);
}

Test(executor, a_refused_save_fails_alone_inside_its_batch) {
  cr_assert_eq(snap_registry_load(SNAP_TESTMEM_SO, NULL), SNAP_OK, "%s", snap_error_message());
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "testmem", NULL), SNAP_OK, "%s", snap_error_message());
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  gate g;
  gate_close(ex, &g);
  const char *pids[] = {"ok-1", "ok-2", "refuse-3", "ok-4", "ok-5"};
  for (int i = 0; i < 5; i++) {
    snap_save_req r = save_req(pids[i], 10 + i);
    cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[i]), SNAP_OK, "%s", snap_error_message());
  }
  /* An invalid payload is refused by the submit call itself: no callback. */
  snap_save_req bad = save_req("ok-6", 1);
  bad.state = "{not json";
  bad.len = 9;
  cr_assert_eq(snap_executor_save(ex, &bad, log_cb, &tags[99]), SNAP_EFORMAT);
  gate_open(&g);
  snap_executor_free(ex);

  cr_assert_eq(book->n, 5);
  snap_executor_stats s = {0};
  (void)s;
  for (int i = 0; i < 5; i++) {
    if (i == 2) {
      cr_assert_eq(book->e[i].status, SNAP_EIO);
      cr_assert(strstr(book->e[i].message, "refuse-3"), "message names the pid: %s",
                book->e[i].message);
    } else {
      cr_assert_eq(book->e[i].status, SNAP_OK, "%s: %s", pids[i], book->e[i].message);
    }
  }
  for (int i = 0; i < 5; i++) {
    snap_snapshot *snap = NULL;
    cr_assert_eq(snap_load_latest(st, pids[i], NULL, &snap), SNAP_OK);
    if (i == 2)
      cr_assert_null(snap);
    else
      cr_assert(snap && snap->seq == 10 + i);
    snap_snapshot_free(snap);
  }
  snap_store_close(st);
}

/* An executor over a new memory store in `*st`, its dispatcher held by `g`. */
static snap_executor *held_executor(snap_store **st, size_t cap, size_t max_batch, gate *g) {
  cr_assert_eq(snap_store_open(st, "memory", NULL), SNAP_OK);
  snap_executor *ex;
  snap_executor_config cfg = {.queue_capacity = cap, .max_batch = max_batch};
  cr_assert_eq(snap_executor_new(&ex, *st, &cfg), SNAP_OK);
  gate_close(ex, g);
  return ex;
}

Test(executor, answers_eagain_when_full_and_queues_nothing) {
  snap_store *st;
  gate g;
  snap_executor *ex = held_executor(&st, 4, 8, &g);
  for (int i = 0; i < 4; i++) {
    snap_save_req r = save_req("bp", i);
    cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[i]), SNAP_OK);
  }
  snap_save_req r = save_req("bp", 4);
  cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[4]), SNAP_EAGAIN);
  cr_assert_eq(snap_executor_load(ex, "bp", NULL, NULL, log_cb, &tags[5]), SNAP_EAGAIN);
  snap_request rq = {.kind = SNAP_REQUEST_SAVE, .save = r, .callback = log_cb, .ud = &tags[6]};
  cr_assert_eq(snap_executor_submit(ex, &rq, 20), SNAP_EAGAIN, "a bounded wait gives up");
  snap_executor_stats s;
  snap_executor_stats_get(ex, &s);
  cr_assert_eq(s.submitted, 5, "the gate and four saves; the refused ones were not queued");
  gate_open(&g);
  /* Once the worker makes room, an unbounded wait succeeds. */
  cr_assert_eq(snap_executor_submit(ex, &rq, -1), SNAP_OK);
  snap_executor_free(ex);
  cr_assert_eq(book->n, 5);
  for (size_t i = 0; i < 4; i++)
    cr_assert_eq(book->e[i].tag, (int)i);
  cr_assert_eq(book->e[4].tag, 6);
  snap_store_close(st);
}

/* While a full group waits in the queue, blocking submissions of saves are
 * paced (a few encode at once; docs/PLUGIN.md), but pacing never holds a save
 * while the queue has room and nobody else encodes, whatever the wait asked,
 * and never refuses one: with the dispatcher held, a full group queued and
 * room left, blocking, timed and non-blocking saves all go in at once. */
Test(executor, a_full_group_queued_never_holds_a_lone_submitter) {
  snap_store *st;
  gate g;
  snap_executor *ex = held_executor(&st, 16, 2, &g);
  int timeouts[] = {0, 0, -1, 1000, -1, 0, 1000, -1, -1, -1};
  int n = (int)(sizeof timeouts / sizeof timeouts[0]);
  for (int i = 0; i < n; i++) {
    snap_request rq = {.kind = SNAP_REQUEST_SAVE,
                       .save = save_req("paced", i),
                       .callback = log_cb,
                       .ud = &tags[i]};
    cr_assert_eq(snap_executor_submit(ex, &rq, timeouts[i]), SNAP_OK, "save %d: %s", i,
                 snap_error_message());
  }
  snap_executor_stats s;
  snap_executor_stats_get(ex, &s);
  cr_assert_eq(s.submitted, (unsigned long long)n + 1, "the gate and every save, queued");
  cr_assert_eq(s.completed, 1, "the dispatcher is still held in the gate's callback");
  gate_open(&g);
  snap_executor_free(ex);
  assert_per_pid_order((size_t)n);
  for (int i = 0; i < n; i++)
    cr_assert_eq(book->e[i].status, SNAP_OK);
  snap_store_close(st);
}

/* Many pipelined submitters against a queue that holds a few groups: the
 * dispatcher is the bottleneck, so the submitters take turns to encode and
 * hand them on: every submission returns, every save is acknowledged once
 * and each pid's in order. */
#define PACED_THREADS 8
#define PACED_SAVES 400

typedef struct paced {
  snap_executor *ex;
  int id;
  char pid[16];
  atomic_int acked;
  atomic_int in_order; /* 0 once a callback came out of seq order */
  int next;            /* the seq the next callback must carry (callback threads only) */
} paced;

static void paced_cb(void *ud, snap_result *r) {
  paced *p = ud;
  if (r->status != SNAP_OK || r->seq != p->next)
    atomic_store(&p->in_order, 0);
  p->next++;
  atomic_fetch_add(&p->acked, 1);
}

static void *paced_loop(void *arg) {
  paced *p = arg;
  for (int q = 0; q < PACED_SAVES; q++) {
    snap_request rq = {
        .kind = SNAP_REQUEST_SAVE, .save = save_req(p->pid, q), .callback = paced_cb, .ud = p};
    if (snap_executor_submit(p->ex, &rq, -1) != SNAP_OK)
      return (void *)1;
  }
  return NULL;
}

Test(executor, pipelined_submitters_take_turns_and_none_is_starved, .timeout = 120) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_executor *ex;
  snap_executor_config cfg = {.queue_capacity = 64, .max_batch = 16};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  static paced ps[PACED_THREADS];
  pthread_t t[PACED_THREADS];
  for (int i = 0; i < PACED_THREADS; i++) {
    ps[i] = (paced){.ex = ex, .id = i};
    snprintf(ps[i].pid, sizeof ps[i].pid, "paced-%d", i);
    atomic_init(&ps[i].acked, 0);
    atomic_init(&ps[i].in_order, 1);
    cr_assert_eq(pthread_create(&t[i], NULL, paced_loop, &ps[i]), 0);
  }
  for (int i = 0; i < PACED_THREADS; i++) {
    void *res;
    pthread_join(t[i], &res);
    cr_assert_null(res, "submitter %d failed: %s", i, snap_error_message());
  }
  snap_executor_free(ex);
  for (int i = 0; i < PACED_THREADS; i++) {
    cr_assert_eq(atomic_load(&ps[i].acked), PACED_SAVES, "submitter %d", i);
    cr_assert(atomic_load(&ps[i].in_order), "submitter %d: callbacks in seq order", i);
  }
  snap_store_close(st);
}

typedef struct cancel_ctx {
  snap_executor *ex;
} cancel_ctx;

static void *cancel_thread(void *arg) {
  cancel_ctx *c = arg;
  snap_executor_shutdown(c->ex, SNAP_SHUTDOWN_CANCEL);
  return NULL;
}

Test(executor, cancel_completes_unstarted_requests_with_eclosed) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  gate g;
  gate_close(ex, &g);
  for (int i = 0; i < 10; i++) {
    snap_save_req r = save_req("c", i);
    cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[i]), SNAP_OK);
  }
  cancel_ctx c = {ex};
  pthread_t t;
  pthread_create(&t, NULL, cancel_thread, &c);
  /* Shutdown has begun once submissions are refused. */
  snap_save_req late = save_req("c", 100);
  while (snap_executor_save(ex, &late, log_cb, &tags[100]) != SNAP_ECLOSED)
    ;
  gate_open(&g);
  pthread_join(t, NULL);
  cr_assert_eq(g.status, SNAP_OK, "the request already started finished normally");
  snap_executor_stats s;
  snap_executor_stats_get(ex, &s);
  size_t accepted = s.submitted - 1;
  cr_assert_eq(book->n, accepted, "every accepted request completed exactly once");
  for (size_t i = 0; i < book->n; i++)
    cr_assert_eq(book->e[i].status, SNAP_ECLOSED, "request %zu: %d", i, book->e[i].status);
  cr_assert_eq(snap_executor_save(ex, &late, log_cb, &tags[101]), SNAP_ECLOSED);
  snap_executor_free(ex);
  snap_snapshot *snap;
  cr_assert_eq(snap_load_latest(st, "c", NULL, &snap), SNAP_OK);
  cr_assert_null(snap, "cancelled saves were not written");
  snap_store_close(st);
}

/* ---- shutdown under load, then reopen: every acknowledged save is there ---- */

#define SUBMITTERS 6
#define PER_THREAD 400

typedef struct ack {
  atomic_int status[PER_THREAD];
  atomic_int calls[PER_THREAD];
} ack;

typedef struct submitter {
  snap_executor *ex;
  int id;
  int accepted; /* submissions that returned SNAP_OK, in seq order 0..accepted-1 */
  ack *acks;
  char pid[16];
} submitter;

typedef struct slot {
  submitter *s;
  int seq;
} slot;

static slot slots[SUBMITTERS][PER_THREAD];

static void ack_cb(void *ud, snap_result *r) {
  slot *sl = ud;
  atomic_store(&sl->s->acks->status[sl->seq], r->status);
  atomic_fetch_add(&sl->s->acks->calls[sl->seq], 1);
}

static atomic_int started;

static void *submit_loop(void *arg) {
  submitter *s = arg;
  snprintf(s->pid, sizeof s->pid, "load-%d", s->id);
  atomic_fetch_add(&started, 1);
  for (int i = 0; i < PER_THREAD; i++) {
    slots[s->id][i] = (slot){s, i};
    snap_save_req r = save_req(s->pid, i);
    snap_request rq = {
        .kind = SNAP_REQUEST_SAVE, .save = r, .callback = ack_cb, .ud = &slots[s->id][i]};
    int rc = snap_executor_submit(s->ex, &rq, -1);
    if (rc == SNAP_ECLOSED)
      break;
    if (rc != SNAP_OK)
      return (void *)(intptr_t)rc;
    s->accepted = i + 1;
  }
  return NULL;
}

Test(executor, shutdown_under_load_loses_no_acknowledged_save, .timeout = 300) {
  char *dir = st_tmpdir();
  cr_assert_not_null(dir);
  char *path = st_join(dir, "load.db");
  char config[700];
  snprintf(config, sizeof config, "{\"path\": \"%s\", \"keep\": 0}", path);
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "sqlite", config), SNAP_OK, "%s", snap_error_message());
  snap_executor *ex;
  snap_executor_config cfg = {.queue_capacity = 64, .max_batch = 32};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);

  submitter subs[SUBMITTERS];
  pthread_t t[SUBMITTERS];
  for (int i = 0; i < SUBMITTERS; i++) {
    subs[i] = (submitter){.ex = ex, .id = i, .acks = calloc(1, sizeof(ack))};
    pthread_create(&t[i], NULL, submit_loop, &subs[i]);
  }
  /* Shut down while the submitters are (most likely) still submitting; the
   * assertions below hold whatever the interleaving. */
  while (atomic_load(&started) < SUBMITTERS)
    ;
  snap_executor_stats s;
  do
    snap_executor_stats_get(ex, &s);
  while (s.completed < 50);
  snap_executor_free(ex);
  for (int i = 0; i < SUBMITTERS; i++) {
    void *res;
    pthread_join(t[i], &res);
    cr_assert_null(res, "submitter %d failed with %d", i, (int)(intptr_t)res);
  }
  snap_store_close(st);

  cr_assert_eq(snap_store_open(&st, "sqlite", config), SNAP_OK, "%s", snap_error_message());
  int total = 0;
  for (int i = 0; i < SUBMITTERS; i++) {
    for (int q = 0; q < PER_THREAD; q++) {
      int calls = atomic_load(&subs[i].acks->calls[q]);
      if (q < subs[i].accepted) {
        cr_assert_eq(calls, 1, "accepted save %s/%d completed once (%d)", subs[i].pid, q, calls);
        cr_assert_eq(atomic_load(&subs[i].acks->status[q]), SNAP_OK);
        snap_criteria c = {q, q, 0, INT64_MAX};
        snap_snapshot *snap = NULL;
        cr_assert_eq(snap_load(st, subs[i].pid, &c, NULL, &snap), SNAP_OK, "%s",
                     snap_error_message());
        cr_assert_not_null(snap, "acknowledged save %s/%d is durable", subs[i].pid, q);
        snap_snapshot_free(snap);
        total++;
      } else {
        cr_assert_eq(calls, 0, "a refused submission has no callback");
      }
    }
    free(subs[i].acks);
  }
  cr_assert_gt(total, 0);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
  free(path);
}

Test(executor, refuses_bad_arguments) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  snap_request rq = {.kind = 42};
  cr_assert_eq(snap_executor_submit(ex, &rq, 0), SNAP_EINVAL);
  cr_assert_eq(snap_executor_load(ex, "", NULL, NULL, NULL, NULL), SNAP_EINVAL, "empty pid");
  cr_assert_eq(snap_executor_shutdown(ex, 0), SNAP_EINVAL);
  cr_assert_eq(snap_executor_shutdown(ex, 0x80), SNAP_EINVAL);
  cr_assert_eq(snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN), SNAP_OK);
  cr_assert_eq(snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN), SNAP_OK, "idempotent");
  snap_save_req r = save_req("late", 1);
  cr_assert_eq(snap_executor_save(ex, &r, NULL, NULL), SNAP_ECLOSED);
  snap_executor_free(ex);
  snap_store_close(st);
}

/* ---- parallel loads -------------------------------------------------------- */

/* A resolver that holds every load until `want` of them are inside it at
 * once: it only returns when loads really run side by side. */
typedef struct rendezvous {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inside, want, peak;
} rendezvous;

static int meet_resolver(void *ud, const char *pid, const snap_options **out) {
  rendezvous *rv = ud;
  *out = NULL;
  pthread_mutex_lock(&rv->mu);
  rv->inside++;
  if (rv->inside > rv->peak)
    rv->peak = rv->inside;
  pthread_cond_broadcast(&rv->cv);
  while (rv->peak < rv->want)
    pthread_cond_wait(&rv->cv, &rv->mu);
  rv->inside--;
  pthread_mutex_unlock(&rv->mu);
  return SNAP_OK;
}

Test(executor, loads_run_on_several_threads_at_once, .timeout = 60) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 0}"), SNAP_OK);
  for (int i = 0; i < 4; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "m-%d", i);
    cr_assert_eq(snap_save(st, pid, i, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL),
                 SNAP_OK);
  }
  rendezvous rv = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 3, 0};
  cr_assert_eq(snap_store_set_resolver(st, meet_resolver, &rv), SNAP_OK);
  snap_executor *ex;
  snap_executor_config cfg = {.load_threads = 3};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  /* With fewer than three loads in flight at once this never completes. */
  for (int i = 0; i < 4; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "m-%d", i);
    cr_assert_eq(snap_executor_load(ex, pid, NULL, NULL, log_cb, &tags[i]), SNAP_OK);
  }
  snap_executor_free(ex);
  cr_assert_eq(rv.peak, 3);
  assert_per_pid_order(4);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(book->e[i].seq, book->e[i].tag, "load %d found seq %lld", book->e[i].tag,
                 (long long)book->e[i].seq);
  snap_store_set_resolver(st, NULL, NULL);
  snap_store_close(st);
}

/* The load of "slow" cannot finish its read before the callback of the load
 * of "fast", submitted after it, has run (or 10 s have passed). */
typedef struct overtake {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool fast_delivered, slow_waited_out;
} overtake;

static int slow_resolver(void *ud, const char *pid, const snap_options **out) {
  overtake *o = ud;
  *out = NULL;
  if (strcmp(pid, "slow") != 0)
    return SNAP_OK;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&o->mu);
  while (!o->fast_delivered && !o->slow_waited_out)
    o->slow_waited_out = pthread_cond_timedwait(&o->cv, &o->mu, &until) != 0;
  pthread_mutex_unlock(&o->mu);
  return SNAP_OK;
}

static void fast_cb(void *ud, snap_result *r) {
  overtake *o = ud;
  snap_snapshot_free(r->snapshot);
  pthread_mutex_lock(&o->mu);
  o->fast_delivered = r->status == SNAP_OK;
  pthread_cond_broadcast(&o->cv);
  pthread_mutex_unlock(&o->mu);
}

Test(executor, a_slow_load_does_not_hold_back_the_callbacks_of_other_pids, .timeout = 60) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 0}"), SNAP_OK);
  cr_assert_eq(snap_save(st, "slow", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL),
               SNAP_OK);
  cr_assert_eq(snap_save(st, "fast", 2, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL),
               SNAP_OK);
  overtake o = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};
  cr_assert_eq(snap_store_set_resolver(st, slow_resolver, &o), SNAP_OK);
  snap_executor *ex;
  snap_executor_config cfg = {.load_threads = 2};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  cr_assert_eq(snap_executor_load(ex, "slow", NULL, NULL, log_cb, &tags[0]), SNAP_OK);
  cr_assert_eq(snap_executor_load(ex, "fast", NULL, NULL, fast_cb, &o), SNAP_OK);
  /* The same pid keeps its order behind the slow load. */
  snap_save_req r = save_req("slow", 3);
  cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[1]), SNAP_OK);
  snap_executor_free(ex);
  cr_assert(o.fast_delivered, "the load of another pid was delivered");
  cr_assert_not(o.slow_waited_out,
                "the callback of \"fast\" waited for the earlier load of \"slow\"");
  assert_per_pid_order(2);
  cr_assert_eq(book->e[0].seq, 1, "the slow load did not see the later save");
  snap_store_set_resolver(st, NULL, NULL);
  snap_store_close(st);
}

Test(executor, parallel_loads_keep_read_your_writes_on_sqlite, .timeout = 120) {
  char *dir = st_tmpdir();
  cr_assert_not_null(dir);
  char *path = st_join(dir, "order.db");
  char config[700];
  snprintf(config, sizeof config, "{\"path\": \"%s\", \"keep\": 0, \"synchronous\": \"normal\"}",
           path);
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "sqlite", config), SNAP_OK, "%s", snap_error_message());
  snap_executor *ex;
  snap_executor_config cfg = {.load_threads = 4, .max_batch = 16};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  /* Six pids; saves, loads and deletes interleaved in an order fixed by a
   * seed. A load expects exactly the last seq saved for its pid before it in
   * submission order (-1 after a delete or before any save): it must see
   * every earlier write and none submitted after it. */
  enum { N = 3000, PIDS = 6 };
  static int64_t expect[N];
  const char *pids[PIDS] = {"o-0", "o-1", "o-2", "o-3", "o-4", "o-5"};
  int64_t last[PIDS] = {-1, -1, -1, -1, -1, -1};
  unsigned x = 12345;
  for (int i = 0; i < N; i++) {
    x = x * 1103515245u + 12345u;
    int p = (int)((x >> 16) % PIDS);
    int what = (int)((x >> 8) % 10);
    int rc;
    if (what < 5) {
      expect[i] = last[p];
      snap_request rq = {
          .kind = SNAP_REQUEST_LOAD, .pid = pids[p], .callback = log_cb, .ud = &tags[i]};
      rc = snap_executor_submit(ex, &rq, -1);
    } else if (what < 9) {
      snap_save_req r = save_req(pids[p], i);
      expect[i] = i;
      last[p] = i;
      snap_request rq = {.kind = SNAP_REQUEST_SAVE, .save = r, .callback = log_cb, .ud = &tags[i]};
      rc = snap_executor_submit(ex, &rq, -1);
    } else {
      expect[i] = -2; /* a delete reports no seq */
      last[p] = -1;
      snap_request rq = {
          .kind = SNAP_REQUEST_DELETE, .pid = pids[p], .callback = log_cb, .ud = &tags[i]};
      rc = snap_executor_submit(ex, &rq, -1);
    }
    cr_assert_eq(rc, SNAP_OK, "%s", snap_error_message());
  }
  snap_executor_free(ex);
  assert_per_pid_order(N);
  for (int i = 0; i < N; i++) {
    entry *e = &book->e[i];
    int t = e->tag;
    cr_assert_eq(e->status, SNAP_OK, "%d: %s", t, e->message);
    if (expect[t] != -2)
      cr_assert_eq(e->seq, expect[t], "request %d (%s): seq %lld, expected %lld", t, e->pid,
                   (long long)e->seq, (long long)expect[t]);
  }
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
  free(path);
}

Test(executor, refuses_too_many_load_threads) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_executor *ex = NULL;
  snap_executor_config cfg = {.load_threads = 65};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_EINVAL);
  cr_assert_null(ex);
  cr_assert(strstr(snap_error_message(), "load threads"), "%s", snap_error_message());
  snap_store_close(st);
}

/* ---- counters seen from callbacks ----------------------------------------- */

typedef struct counted {
  snap_executor *ex;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int delivered;
  uint64_t completed_seen[64]; /* `completed` as read by callback i */
} counted;

static void counting_cb(void *ud, snap_result *r) {
  counted *c = ud;
  snap_executor_stats s;
  snap_executor_stats_get(c->ex, &s);
  snap_snapshot_free(r->snapshot);
  pthread_mutex_lock(&c->mu);
  c->completed_seen[c->delivered++] = s.completed;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

Test(executor, counters_include_the_callback_that_reads_them) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  counted c = {.delivered = 0};
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  cr_assert_eq(snap_executor_new(&c.ex, st, NULL), SNAP_OK);
  enum { N = 40 };
  for (int i = 0; i < N; i++) {
    int rc;
    if (i % 4 == 3) {
      rc = snap_executor_load(c.ex, "p", NULL, NULL, counting_cb, &c);
    } else {
      snap_save_req r = save_req("p", i);
      rc = snap_executor_submit(
          c.ex,
          &(snap_request){.kind = SNAP_REQUEST_SAVE, .save = r, .callback = counting_cb, .ud = &c},
          -1);
    }
    cr_assert_eq(rc, SNAP_OK, "%s", snap_error_message());
  }
  pthread_mutex_lock(&c.mu);
  while (c.delivered < N)
    pthread_cond_wait(&c.cv, &c.mu);
  pthread_mutex_unlock(&c.mu);
  /* Callbacks run in submission order: the i-th one counts itself. */
  for (int i = 0; i < N; i++)
    cr_assert_eq(c.completed_seen[i], (uint64_t)i + 1, "callback %d saw completed = %llu", i,
                 (unsigned long long)c.completed_seen[i]);
  snap_executor_stats s;
  snap_executor_stats_get(c.ex, &s);
  cr_assert_eq(s.completed, (uint64_t)N, "right after the last callback");
  cr_assert_eq(s.submitted, (uint64_t)N);

  /* The same work, in the store's metrics. */
  snap_executor_metrics em;
  cr_assert_eq(snap_executor_metrics_get(c.ex, &em), SNAP_OK);
  cr_assert_eq(em.latency.count, (uint64_t)N);
  cr_assert_eq(em.batch.count, s.commits);
  cr_assert_eq(em.batch.sum, s.saves);
  cr_assert_eq(em.queue_depth_max >= 1, true);
  snap_executor_free(c.ex);
  snap_metrics m;
  snap_store_metrics(st, &m);
  const snap_series *depth = NULL;
  cr_assert_eq(snap_metrics_series(&m, "snapstore_executor_queue_depth", &depth), SNAP_OK);
  cr_assert_eq(depth->gauge, 0, "nothing left queued");
  cr_assert_eq(m.ops[SNAP_OP_SAVE][0], s.saves);
  snap_store_close(st);
  pthread_cond_destroy(&c.cv);
  pthread_mutex_destroy(&c.mu);
}

Test(executor, refuses_an_empty_state_at_submit_and_stores_nothing) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK, "%s", snap_error_message());
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  snap_save_req r = save_req("acct-empty", 3);
  r.state = "";
  r.len = 0;
  cr_assert_eq(snap_executor_save(ex, &r, log_cb, &tags[0]), SNAP_EFORMAT, "0 bytes are no state");
  snap_executor_free(ex);
  cr_assert_eq(book->n, 0, "a refused submit has no callback");
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "acct-empty", NULL, &s), SNAP_OK);
  cr_assert_null(s, "nothing was stored");
  snap_store_close(st);
}

/* ---- the memory a storm of large states holds -------------------------- */

typedef struct starts {
  atomic_int n;
} starts;

static int count_starts(void *ud, const char *pid, const snap_options **out) {
  (void)pid;
  *out = NULL;
  atomic_fetch_add(&((starts *)ud)->n, 1);
  return SNAP_OK;
}

typedef struct sized {
  pthread_mutex_t mu;
  int delivered, wrong;
  size_t len;
} sized;

static void sized_cb(void *ud, snap_result *r) {
  sized *z = ud;
  pthread_mutex_lock(&z->mu);
  z->delivered++;
  z->wrong += r->status != SNAP_OK || !r->snapshot || r->snapshot->len != z->len;
  pthread_mutex_unlock(&z->mu);
  snap_snapshot_free(r->snapshot);
}

Test(executor, loaded_snapshots_waiting_for_a_callback_stay_within_the_budget) {
  /* 1 MiB states; two load threads may hold 2 x 8 MiB of loaded snapshots
   * waiting for an earlier callback (docs/PLUGIN.md). */
  enum { N = 48, MIB = 1 << 20, BOUND = 1 + 16 + 2 };
  size_t len = MIB + 2;
  char *state = string_state(len);
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 0}"), SNAP_OK);
  cr_assert_eq(snap_save(st, "big", 1, SNAP_FORMAT_JSON, state, len, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  free(state);
  starts s;
  atomic_init(&s.n, 0);
  cr_assert_eq(snap_store_set_resolver(st, count_starts, &s), SNAP_OK);
  snap_executor *ex;
  snap_executor_config cfg = {.load_threads = 2};
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK);
  /* The first load's callback blocks the delivery of every later load of
   * the same pid (and, callbacks running one at a time, of every other). */
  gate g;
  gate_init(&g);
  cr_assert_eq(snap_executor_load(ex, "big", NULL, NULL, gate_cb, &g), SNAP_OK);
  sized z = {.mu = PTHREAD_MUTEX_INITIALIZER, .len = len};
  for (int i = 1; i < N; i++)
    cr_assert_eq(snap_executor_load(ex, "big", NULL, NULL, sized_cb, &z), SNAP_OK);
  pthread_mutex_lock(&g.mu);
  while (!g.entered)
    pthread_cond_wait(&g.cv, &g.mu);
  pthread_mutex_unlock(&g.mu);
  /* Give the other load thread every chance to run past the budget: it may
   * start the loads up to it and no more, however long it is left. */
  for (int ms = 0; ms < 1500 && atomic_load(&s.n) < N; ms += 10)
    nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
  int begun = atomic_load(&s.n);
  gate_open(&g);
  snap_executor_free(ex);
  cr_assert_leq(begun, BOUND, "%d loads of 1 MiB ran while the first callback waited",
                begun);
  cr_assert_eq(g.status, SNAP_OK);
  cr_assert_eq(z.delivered, N - 1);
  cr_assert_eq(z.wrong, 0);
  cr_assert_eq(atomic_load(&s.n), N, "every load ran once the callback returned");
  snap_store_set_resolver(st, NULL, NULL);
  snap_store_close(st);
}

/* ---- conditional saves ------------------------------------------------------ */

typedef struct cond_seen {
  int status;
  int64_t current_seq;
} cond_seen;

static void cond_cb(void *ud, snap_result *r) {
  cond_seen *c = ud;
  c->status = r->status;
  c->current_seq = r->meta.current_seq;
}

/* Conditional saves queued together commit in one group, checked in order:
 * the second sees the first as stored, the third (over the same seq as the
 * second) conflicts and its callback says which seq it found. */
Test(executor, conditional_saves_in_one_group_commit_are_checked_in_order) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  gate g;
  gate_close(ex, &g);
  const int64_t expected[3] = {SNAP_SEQ_NONE, 0, 0};
  const int64_t seqs[3] = {0, 1, 1};
  snap_save_ext ext[3];
  cond_seen seen[3];
  for (int i = 0; i < 3; i++) {
    ext[i] = (snap_save_ext){.flags = SNAP_SAVE_IF_LATEST, .expected_seq = expected[i]};
    seen[i] = (cond_seen){1, -9};
    snap_request rq = {.kind = SNAP_REQUEST_SAVE,
                       .save = save_req("c", seqs[i]),
                       .save_ext = &ext[i],
                       .callback = cond_cb,
                       .ud = &seen[i]};
    cr_assert_eq(snap_executor_submit(ex, &rq, -1), SNAP_OK, "%s", snap_error_message());
  }
  gate_open(&g);
  snap_executor_free(ex);
  cr_assert_eq(seen[0].status, SNAP_OK);
  cr_assert_eq(seen[1].status, SNAP_OK);
  cr_assert_eq(seen[2].status, SNAP_ECONFLICT);
  cr_assert_eq(seen[1].current_seq, 1);
  cr_assert_eq(seen[2].current_seq, 1);
  snap_store_close(st);
}

/* ---- forget ------------------------------------------------------------------ */

typedef struct forget_seen {
  int kind, status;
} forget_seen;

static void forget_cb(void *ud, snap_result *r) {
  forget_seen *f = ud;
  f->kind = r->kind;
  f->status = r->status;
}

Test(executor, a_forget_runs_after_the_saves_of_its_unit_before_it) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_executor *ex = NULL;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  snap_save_req req = {"customer-7", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "{}", 2, NULL};
  cr_assert_eq(snap_executor_save(ex, &req, NULL, NULL), SNAP_OK);
  forget_seen seen = {0, 1};
  cr_assert_eq(snap_executor_forget(ex, "customer-7", forget_cb, &seen), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(snap_executor_forget(ex, "bad\xff", forget_cb, &seen), SNAP_EINVAL,
               "an invalid unit is refused at submit");
  cr_assert_eq(snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN), SNAP_OK);
  cr_assert_eq(seen.kind, SNAP_REQUEST_FORGET);
  cr_assert_eq(seen.status, SNAP_OK);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "customer-7", NULL, &s), SNAP_OK);
  cr_assert_null(s, "the save before the forget was forgotten with its unit");
  snap_executor_free(ex);
  snap_store_close(st);
}

/* ---- loads brought to a target manifest ------------------------------------- */

/* An upcaster from Acct/1 to Acct/2: {"owner":...} becomes {"holder":...}. */
static int rename_owner(void *ud, const char *from, const char *to, snap_format fmt,
                        const uint8_t *state, size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)ud, (void)from, (void)to, (void)fmt, (void)state, (void)len;
  *out_fmt = SNAP_FORMAT_JSON;
  static const char v2[] = "{\"holder\":\"Grace\",\"balance\":100}";
  return snap_buf_set(out, v2, sizeof v2 - 1);
}

typedef struct target_seen {
  int status;
  char text[64], manifest[32], stored[32], message[256];
} target_seen;

static void target_cb(void *ud, snap_result *r) {
  target_seen *t = ud;
  t->status = r->status;
  snprintf(t->message, sizeof t->message, "%s", r->message);
  if (r->snapshot) {
    snprintf(t->text, sizeof t->text, "%s", (const char *)r->snapshot->data);
    snprintf(t->manifest, sizeof t->manifest, "%s", r->snapshot->manifest);
    snprintf(t->stored, sizeof t->stored, "%s", r->snapshot->stored_manifest);
  }
  snap_snapshot_free(r->snapshot);
}

/* A load with a target runs the store's upcasters on the load thread, as
 * snap_load_as() does; a missing step fails that load with its message; an
 * invalid target is refused by the submit itself. */
Test(executor, a_load_with_a_target_manifest_runs_the_upcasters) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK);
  snap_save_req r = save_req("acct", 3);
  snap_save_ext x = {.manifest = "Acct/1"};
  cr_assert_eq(snap_save_ex(st, &r, &x, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_store_add_upcaster(st, "Acct/1", "Acct/2", rename_owner, NULL), SNAP_OK);
  snap_executor *ex;
  cr_assert_eq(snap_executor_new(&ex, st, NULL), SNAP_OK);
  target_seen up = {1, "", "", "", ""}, missing = up, plain = up;
  snap_request rq = {.kind = SNAP_REQUEST_LOAD, .pid = "acct", .callback = target_cb};
  rq.target = "Acct/2", rq.ud = &up;
  cr_assert_eq(snap_executor_submit(ex, &rq, -1), SNAP_OK, "%s", snap_error_message());
  rq.target = "Acct/3", rq.ud = &missing;
  cr_assert_eq(snap_executor_submit(ex, &rq, -1), SNAP_OK, "%s", snap_error_message());
  rq.target = NULL, rq.ud = &plain;
  cr_assert_eq(snap_executor_submit(ex, &rq, -1), SNAP_OK, "%s", snap_error_message());
  rq.target = "";
  cr_assert_eq(snap_executor_submit(ex, &rq, -1), SNAP_EINVAL, "an empty manifest is invalid");
  cr_assert(strstr(snap_error_message(), "load target") != NULL, "%s", snap_error_message());
  snap_executor_free(ex);

  cr_assert_eq(up.status, SNAP_OK, "%s", up.message);
  cr_assert_str_eq(up.text, "{\"holder\":\"Grace\",\"balance\":100}");
  cr_assert_str_eq(up.manifest, "Acct/2");
  cr_assert_str_eq(up.stored, "Acct/1");
  cr_assert_eq(missing.status, SNAP_ENOTFOUND);
  cr_assert(strstr(missing.message, "no upcaster from 'Acct/2'") != NULL, "%s", missing.message);
  cr_assert_eq(plain.status, SNAP_OK);
  cr_assert_str_eq(plain.text, STATE, "no target: the state as stored");
  cr_assert_str_eq(plain.manifest, "Acct/1");
  snap_store_close(st);
}
