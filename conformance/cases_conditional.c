/* Conditional saves (SNAP_SAVE_IF_LATEST, backend ABI version 4): a save is
 * stored only over the newest seq its caller read, alone, in batches, as a
 * prepared save, and under eight threads racing for every seq. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/store.h"
#include "store_util.h"

/* Whether the backend can make a save conditional; skips the case when not
 * (the store then refuses such saves with SNAP_EUNSUPPORTED). */
static bool has_put4(const cf_backend *bc) {
  if (!cf_needs_abi(bc, 4, "conditional saves (put4)"))
    return false;
  if (bc->backend()->put4 != NULL)
    return true;
  cf_skip(bc, "the backend leaves put4 (ABI version 4) NULL: no conditional saves");
  return false;
}

/* A conditional save of `state` at `seq` over `expected`; its status, and
 * the seq it reports in `*current`. */
static int save_if(fx *f, const char *pid, int64_t seq, int64_t expected, const char *state,
                   int64_t *current) {
  snap_save_req r = {pid, seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state, strlen(state), NULL};
  snap_save_ext x = {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = expected};
  snap_meta m;
  memset(&m, 0x5a, sizeof m);
  int rc = snap_save_ex(f->st, &r, &x, &m);
  *current = m.current_seq;
  return rc;
}

static void expect_latest(fx *f, const char *pid, int64_t seq, const char *state) {
  char why[512];
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load_latest(f->st, pid, NULL, &s), SNAP_OK, "[%s] %s", f->bc->name,
               snap_error_message());
  cf_assert_not_null(s, "[%s] %s", f->bc->name, pid);
  snprintf(why, sizeof why, "[%s] %s: seq %" PRId64 " '%s', expected seq %" PRId64 " '%s'",
           f->bc->name, pid, s->seq, (const char *)s->data, seq, state);
  cf_assert(s->seq == seq && strcmp((const char *)s->data, state) == 0, "%s", why);
  snap_snapshot_free(s);
}

void cf_case_conditional_saves_store_only_over_the_newest_seq_read(const cf_backend *bc) {
  if (!has_put4(bc))
    return;
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  int64_t cur = 0;
  const char *n = bc->name;
  cf_assert_eq(save_if(&f, "p", 1, SNAP_SEQ_NONE, "[1]", &cur), SNAP_OK, "[%s] %s", n,
               snap_error_message());
  cf_assert_eq(cur, 1, "[%s] a stored conditional save reports its seq", n);
  /* A second writer that also read "nothing" loses, and learns the seq. */
  cf_assert_eq(save_if(&f, "p", 1, SNAP_SEQ_NONE, "[2]", &cur), SNAP_ECONFLICT, "[%s]", n);
  cf_assert_eq(cur, 1, "[%s]", n);
  cf_assert(strstr(snap_error_message(), "newest stored seq is 1"), "[%s] %s", n,
            snap_error_message());
  expect_latest(&f, "p", 1, "[1]");
  cf_assert_eq(save_if(&f, "p", 2, 1, "[3]", &cur), SNAP_OK, "[%s] %s", n, snap_error_message());
  cf_assert_eq(save_if(&f, "p", 3, 1, "[4]", &cur), SNAP_ECONFLICT, "[%s]", n);
  cf_assert_eq(cur, 2, "[%s]", n);
  /* Durable state: the same seq again over itself replaces it. */
  cf_assert_eq(save_if(&f, "p", 2, 2, "[5]", &cur), SNAP_OK, "[%s] %s", n, snap_error_message());
  expect_latest(&f, "p", 2, "[5]");
  /* An unconditional save is never held back, and moves the newest seq. */
  cf_assert_eq(snap_save(f.st, "p", 9, SNAP_FORMAT_JSON, "[6]", 3, NULL, NULL), SNAP_OK, "[%s]",
               n);
  cf_assert_eq(save_if(&f, "p", 10, 2, "[7]", &cur), SNAP_ECONFLICT, "[%s]", n);
  cf_assert_eq(cur, 9, "[%s]", n);
  expect_latest(&f, "p", 9, "[6]");
  /* Other pids are other conditions. */
  cf_assert_eq(save_if(&f, "q", 0, SNAP_SEQ_NONE, "[8]", &cur), SNAP_OK, "[%s]", n);
  /* Bad conditions change nothing. */
  snap_save_req r = {"p", 11, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[9]", 3, NULL};
  snap_save_ext bad = {.flags = 0x8u};
  cf_assert_eq(snap_save_ex(f.st, &r, &bad, NULL), SNAP_EINVAL, "[%s] unknown flag", n);
  bad = (snap_save_ext){.flags = SNAP_SAVE_IF_LATEST, .expected_seq = -2};
  cf_assert_eq(snap_save_ex(f.st, &r, &bad, NULL), SNAP_EINVAL, "[%s] expected -2", n);
  expect_latest(&f, "p", 9, "[6]");
  fx_close(&f);
}

void cf_case_conditional_batches_check_in_order_and_conflicts_fail_alone(const cf_backend *bc) {
  if (!has_put4(bc))
    return;
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  const char *n = bc->name;
  cf_assert_eq(snap_save(f.st, "b", 4, SNAP_FORMAT_JSON, "[0]", 3, NULL, NULL), SNAP_OK, "[%s]",
               n);
  snap_save_req reqs[5] = {
      {"a", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[1]", 3, NULL},
      {"a", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[2]", 3, NULL},
      {"b", 5, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[3]", 3, NULL},
      {"c", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[4]", 3, NULL},
      {"a", 3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[5]", 3, NULL},
  };
  /* a: over nothing, then over the batch's own first row; b: over a seq
   * that is not its newest; c: unconditional; a again: over a stale seq. */
  snap_save_ext ext[5] = {
      {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = SNAP_SEQ_NONE},
      {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = 1},
      {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = 3},
      {0},
      {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = 1},
  };
  int status[5];
  snap_meta meta[5];
  int rc = snap_save_batch_ex(f.st, reqs, ext, 5, status, meta);
  cf_assert_eq(rc, SNAP_ECONFLICT, "[%s] the first failure", n);
  int want[5] = {SNAP_OK, SNAP_OK, SNAP_ECONFLICT, SNAP_OK, SNAP_ECONFLICT};
  for (int i = 0; i < 5; i++)
    cf_assert_eq(status[i], want[i], "[%s] row %d", n, i);
  cf_assert_eq(meta[2].current_seq, 4, "[%s]", n);
  cf_assert_eq(meta[4].current_seq, 2, "[%s]", n);
  expect_latest(&f, "a", 2, "[2]");
  expect_latest(&f, "b", 4, "[0]");
  expect_latest(&f, "c", 1, "[4]");
  /* The prepared path (the executor's) checks at commit. */
  snap_prepared *p[2] = {NULL, NULL};
  snap_save_ext x = {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = 2};
  cf_assert_eq(snap_save_prepare_ex(f.st, &reqs[4], &x, &p[0]), SNAP_OK, "[%s]", n);
  cf_assert_eq(snap_save_prepare_ex(f.st, &reqs[4], &x, &p[1]), SNAP_OK, "[%s]", n);
  cf_assert_eq(snap_save_commit(f.st, p, 1, status, meta), SNAP_OK, "[%s] %s", n,
               snap_error_message());
  cf_assert_eq(snap_save_commit(f.st, p + 1, 1, status, meta), SNAP_ECONFLICT, "[%s]", n);
  cf_assert_eq(meta[0].current_seq, 3, "[%s]", n);
  snap_prepared_free(p[0]);
  snap_prepared_free(p[1]);
  fx_close(&f);
}

void cf_case_eight_threads_racing_conditionally_leave_one_winner_per_seq(const cf_backend *bc) {
  if (!has_put4(bc))
    return;
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  enum { UPTO = 40 };
  int won_by[UPTO + 1] = {0};
  char why[512] = "";
  cf_assert(st_race_conditional(f.st, "race", 8, UPTO, 1, won_by, why, sizeof why), "[%s] %s",
            bc->name, why);
  cf_assert(st_race_check(f.st, "race", UPTO, won_by, why, sizeof why), "[%s] %s", bc->name, why);
  fx_close(&f);
}
