/* The executor's delivery of callbacks: a committed group's callbacks may run
 * on a load thread while the dispatcher writes the next group, in runs taken
 * under one lock, and submitters blocked on a full queue are woken once it
 * has fallen to three quarters of its capacity. None of that may let
 * finished requests pile up beyond the queue's bound, reorder a pid's
 * callbacks, or leave a waiting submitter asleep. */
#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "snap/executor.h"
#include "snap/plugin.h"

static const char *STATE = "{\"owner\":\"Grace\",\"balance\":100}";

enum { PIDS = 8 };

typedef struct slow {
  atomic_long delivered;
  atomic_int order_broken;
  int64_t last_seq[PIDS]; /* written by callbacks only, one at a time */
  long sleep_us;
} slow;

static void slow_cb(void *ud, snap_result *r) {
  slow *s = ud;
  int p = r->pid[1] - '0';
  if (r->status != SNAP_OK || r->seq <= s->last_seq[p])
    atomic_store(&s->order_broken, 1);
  s->last_seq[p] = r->seq;
  struct timespec ts = {0, s->sleep_us * 1000L};
  nanosleep(&ts, NULL);
  atomic_fetch_add(&s->delivered, 1);
}

/* Callbacks far slower than the commits (a memory store commits at once):
 * before the dispatcher waited for the callbacks it had handed off, it ran
 * ahead, and the requests finished but not yet delivered grew without bound
 * although the queue stayed within its capacity. */
Test(executor_delivery, finished_requests_stay_within_two_groups_of_the_queue, .timeout = 120) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 0}"), SNAP_OK, "%s",
               snap_error_message());
  snap_executor_config cfg = SNAP_EXECUTOR_CONFIG_INIT;
  cfg.queue_capacity = 64;
  cfg.max_batch = 16;
  cfg.load_threads = 2;
  snap_executor *ex = NULL;
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK, "%s", snap_error_message());
  static slow s;
  memset(&s, 0, sizeof s);
  for (int p = 0; p < PIDS; p++)
    s.last_seq[p] = -1;
  s.sleep_us = 100;
  enum { N = 1500 };
  long most = 0;
  char pids[PIDS][3];
  for (int p = 0; p < PIDS; p++)
    snprintf(pids[p], sizeof pids[p], "p%d", p);
  for (long i = 0; i < N; i++) {
    snap_save_req r = {pids[i % PIDS], i / PIDS, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, STATE,
                       strlen(STATE), NULL};
    snap_request rq = {.kind = SNAP_REQUEST_SAVE, .save = r, .callback = slow_cb, .ud = &s};
    cr_assert_eq(snap_executor_submit(ex, &rq, -1), SNAP_OK, "%s", snap_error_message());
    long in_flight = i + 1 - atomic_load(&s.delivered);
    if (in_flight > most)
      most = in_flight;
  }
  snap_executor_free(ex);
  cr_assert_eq(atomic_load(&s.delivered), N);
  cr_assert_eq(atomic_load(&s.order_broken), 0, "a pid's callbacks ran out of seq order");
  /* Queued (at most the capacity), one group whose callbacks are running
   * and one group committed behind it. */
  long bound = (long)cfg.queue_capacity + 2 * (long)cfg.max_batch;
  cr_assert_leq(most, bound, "%ld requests submitted and not yet delivered (bound %ld)", most,
                bound);
  snap_store_close(st);
}

typedef struct submitter {
  snap_executor *ex;
  int index;
  atomic_long *acked;
} submitter;

static void ack_cb(void *ud, snap_result *r) {
  atomic_long *acked = ud;
  if (r->status == SNAP_OK)
    atomic_fetch_add(acked, 1);
}

enum { SUBMITTERS = 6, PER_SUBMITTER = 400 };

static void *submit_all(void *arg) {
  submitter *sb = arg;
  char pid[16];
  snprintf(pid, sizeof pid, "s%d", sb->index);
  for (int i = 0; i < PER_SUBMITTER; i++) {
    snap_save_req r = {pid, i, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL};
    snap_request rq = {.kind = SNAP_REQUEST_SAVE, .save = r, .callback = ack_cb, .ud = sb->acked};
    /* Unbounded and bounded waits both; a bounded one that times out is retried. */
    int rc;
    do
      rc = snap_executor_submit(sb->ex, &rq, (i % 2) ? -1 : 5);
    while (rc == SNAP_EAGAIN);
    if (rc != SNAP_OK)
      return (void *)1;
  }
  return NULL;
}

/* A queue of 3 slots, so small that its quarter is one: submitters keep
 * blocking on it, unboundedly and with timeouts, and every one is woken. */
Test(executor_delivery, submitters_blocked_on_a_tiny_queue_are_all_woken, .timeout = 120) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 0}"), SNAP_OK);
  snap_executor_config cfg = SNAP_EXECUTOR_CONFIG_INIT;
  cfg.queue_capacity = 3;
  cfg.max_batch = 2;
  snap_executor *ex = NULL;
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK, "%s", snap_error_message());
  atomic_long acked = 0;
  submitter sb[SUBMITTERS];
  pthread_t th[SUBMITTERS];
  for (int i = 0; i < SUBMITTERS; i++) {
    sb[i] = (submitter){ex, i, &acked};
    cr_assert_eq(pthread_create(&th[i], NULL, submit_all, &sb[i]), 0);
  }
  for (int i = 0; i < SUBMITTERS; i++) {
    void *ret = NULL;
    pthread_join(th[i], &ret);
    cr_assert_null(ret, "submitter %d failed: %s", i, snap_error_message());
  }
  snap_executor_free(ex);
  cr_assert_eq(atomic_load(&acked), SUBMITTERS * PER_SUBMITTER);
  snap_store_close(st);
}
