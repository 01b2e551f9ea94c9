/* The conformance cases of the Akka persistence snapshot-store TCK, and
 * those it leaves out: lower bounds, sequence 0, odd pids, retention,
 * persistence across reopen and the fallback past damaged bodies. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/admin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

/* ------------------------------------------------------------------------ */
/* The TCK                                                                   */
/* ------------------------------------------------------------------------ */

void cf_case_unknown_pid_loads_none(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  fx_expect_none(&f, fx_load(&f, "other", SNAP_CRITERIA_LATEST), "unknown pid");
  fx_close(&f);
}

void cf_case_timestamp_bound_below_every_snapshot_loads_none(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, INT64_MAX, 0, 100)), "max_ts 100");
  fx_close(&f);
}

void cf_case_seq_bound_below_every_snapshot_loads_none(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, 7, ANY_TS)), "max_seq 7");
  snap_snapshot *s = (snap_snapshot *)1;
  cf_assert_eq(snap_load_before(f.st, "p", 8, NULL, &s), SNAP_OK, "[%s]", bc->name);
  fx_expect_none(&f, s, "load_before 8");
  fx_close(&f);
}

void cf_case_latest_is_the_youngest_snapshot(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load_latest(f.st, "p", NULL, &s), SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(s->skipped, 0u, "[%s]", bc->name);
  cf_assert_eq(s->skip_reason, SNAP_OK, "[%s]", bc->name);
  cf_assert_str_eq(s->pid, "p", "[%s]", bc->name);
  fx_expect_md(&f, s, 4, "latest");
  fx_close(&f);
}

void cf_case_max_seq_selects_the_youngest_at_or_below_it(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 13, ANY_TS)), 2, "max_seq 13");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 13, 0, f.md[2].timestamp)), 2,
               "max_seq 13 + max_ts");
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load_before(f.st, "p", 13, NULL, &s), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, s, 1, "load_before 13");
  fx_close(&f);
}

void cf_case_delete_one_removes_exactly_that_snapshot(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  cf_assert_eq(snap_delete_one(f.st, "p", 13), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 13, ANY_TS)), 1, "after delete_one 13");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 14, ANY_TS)), 3, "seq 14 untouched");
  fx_close(&f);
}

void cf_case_delete_matching_removes_everything_matching_both_bounds(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  snap_criteria c = fx_crit(0, 13, 0, f.md[2].timestamp);
  cf_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, 13, ANY_TS)), "max_seq 13 after delete");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 14, ANY_TS)), 3, "max_seq 14 after delete");
  fx_close(&f);
}

void cf_case_delete_matching_by_timestamp_keeps_younger_snapshots(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  snap_criteria c = fx_crit(0, INT64_MAX, 0, f.md[3].timestamp - 1);
  cf_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 14, ANY_TS)), 3, "seq 14 left");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, 13, ANY_TS)), "seq 11..13 gone");
  fx_close(&f);
}

void cf_case_saving_the_same_seq_again_replaces_the_payload(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  const char *st2 = "{\"replaced\":true}";
  snap_meta m;
  cf_assert_eq(snap_save_at(f.st, "p", 15, 200000, SNAP_FORMAT_JSON, st2, strlen(st2), NULL, &m),
               SNAP_OK, "[%s]", bc->name);
  snap_snapshot *s = fx_load(&f, "p", SNAP_CRITERIA_LATEST);
  cf_assert_not_null(s, "[%s]", bc->name);
  cf_assert_eq(s->seq, 15, "[%s]", bc->name);
  cf_assert_eq(s->timestamp, 200000, "[%s]", bc->name);
  cf_assert_str_eq((const char *)s->data, st2, "[%s]", bc->name);
  snap_snapshot_free(s);
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 14, ANY_TS)), 3, "seq 14 untouched");
  fx_close(&f);
}

void cf_case_ten_megabyte_state_round_trips_byte_for_byte(const cf_backend *bc) {
  size_t n = 10u * 1000 * 1000;
  char *big = malloc(n);
  cf_assert_not_null(big);
  big[0] = '"';
  for (size_t i = 1; i < n - 1; i++)
    big[i] = (char)('a' + (i * 7919 % 26));
  big[n - 1] = '"';

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  snap_meta m;
  cf_assert_eq(snap_save(f.st, "big", 1, SNAP_FORMAT_JSON, big, n, NULL, &m), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert_eq(m.state_len, n, "[%s]", bc->name);
  snap_snapshot *s = fx_load(&f, "big", SNAP_CRITERIA_LATEST);
  cf_assert_not_null(s, "[%s]", bc->name);
  cf_assert_eq(s->len, n, "[%s]", bc->name);
  cf_assert(memcmp(s->data, big, n) == 0, "[%s] the state differs", bc->name);
  cf_assert_eq(s->data[n], 0, "[%s] the state is NUL-terminated", bc->name);
  snap_snapshot_free(s);
  fx_close(&f);
  free(big);
}

/* ------------------------------------------------------------------------ */
/* Beyond the TCK                                                            */
/* ------------------------------------------------------------------------ */

void cf_case_lower_bounds_limit_loads(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(12, 13, ANY_TS)), 2, "seq 12..13");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(12, 12, ANY_TS)), 1, "seq 12..12");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(16, INT64_MAX, ANY_TS)), "min_seq 16");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, INT64_MAX, f.md[3].timestamp, INT64_MAX)), 4,
               "min_ts of seq 14");
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 14, f.md[3].timestamp, INT64_MAX)), 3,
               "min_ts of seq 14, max_seq 14");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, 13, f.md[3].timestamp, INT64_MAX)),
                 "min_ts above every match");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, INT64_MAX, f.md[4].timestamp + 1, INT64_MAX)),
                 "min_ts above all");
  /* Inverted bounds match nothing: documented as "none", not an error. */
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(14, 13, ANY_TS)), "min_seq > max_seq");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, INT64_MAX, 5, 4)), "min_ts > max_ts");
  /* The newest by seq may be older by timestamp: a lower timestamp bound then
   * skips it for the youngest snapshot that does match. */
  cf_assert_eq(snap_save_at(f.st, "p", 16, 50000, SNAP_FORMAT_JSON, "\"s-6\"", 5, NULL, NULL),
               SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, INT64_MAX, f.md[3].timestamp, INT64_MAX)), 4,
               "min_ts above the newest seq's timestamp");
  fx_close(&f);
}

void cf_case_lower_bounds_limit_deletes(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  snap_criteria c = fx_crit(12, 14, f.md[3].timestamp, INT64_MAX);
  cf_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 14, ANY_TS)), 2, "14 deleted, 13 kept");
  fx_expect_md(&f, fx_load(&f, "p", SNAP_CRITERIA_LATEST), 4, "15 kept");
  c = fx_crit(12, INT64_MAX, 0, f.md[2].timestamp);
  cf_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 14, ANY_TS)), 0, "12..13 deleted, 11 kept");
  /* Inverted criteria delete nothing. */
  c = fx_crit(20, 10, ANY_TS);
  cf_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, fx_load(&f, "p", SNAP_CRITERIA_LATEST), 4, "inverted criteria");
  cf_assert_eq(snap_delete(f.st, "p", 14), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, fx_load(&f, "p", SNAP_CRITERIA_LATEST), 4, "delete to 14 keeps 15");
  fx_expect_none(&f, fx_load(&f, "p", fx_crit(0, 14, ANY_TS)), "delete to 14");
  fx_close(&f);
}

void cf_case_seq_zero_is_a_valid_sequence_number(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  cf_assert_eq(snap_save(f.st, "z", 0, SNAP_FORMAT_JSON, "0", 1, NULL, NULL), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  snap_snapshot *s = fx_load(&f, "z", SNAP_CRITERIA_LATEST);
  cf_assert_not_null(s, "[%s]", bc->name);
  cf_assert_eq(s->seq, 0, "[%s]", bc->name);
  snap_snapshot_free(s);
  s = (snap_snapshot *)1;
  cf_assert_eq(snap_load_before(f.st, "z", 0, NULL, &s), SNAP_OK, "[%s]", bc->name);
  fx_expect_none(&f, s, "before 0");
  cf_assert_eq(snap_load_before(f.st, "z", 1, NULL, &s), SNAP_OK, "[%s]", bc->name);
  cf_assert_not_null(s, "[%s] before 1", bc->name);
  cf_assert_eq(s->seq, 0, "[%s]", bc->name);
  snap_snapshot_free(s);
  cf_assert_eq(snap_delete_one(f.st, "z", 0), SNAP_OK, "[%s]", bc->name);
  fx_expect_none(&f, fx_load(&f, "z", SNAP_CRITERIA_LATEST), "deleted seq 0");
  fx_close(&f);
}

void cf_case_empty_states_are_refused_and_one_byte_states_round_trip(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  /* 0 bytes are neither JSON nor msgpack: every save refuses them, storing nothing. */
  snap_meta m;
  cf_assert_eq(snap_save(f.st, "e", 1, SNAP_FORMAT_JSON, "", 0, NULL, &m), SNAP_EFORMAT,
               "[%s] empty JSON state", bc->name);
  cf_assert_eq(snap_save(f.st, "e", 4, SNAP_FORMAT_MSGPACK, NULL, 0, NULL, NULL), SNAP_EFORMAT,
               "[%s] NULL with length 0", bc->name);
  fx_expect_none(&f, fx_load(&f, "e", SNAP_CRITERIA_LATEST), "refused empty saves stored nothing");
  snap_save_req reqs[2] = {{"e", 5, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "5", 1, NULL},
                           {"e", 6, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "", 0, NULL}};
  int status[2] = {1, 1};
  cf_assert_eq(snap_save_batch(f.st, reqs, 2, status, NULL), SNAP_EFORMAT, "[%s] batch", bc->name);
  cf_assert_eq(status[0], SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(status[1], SNAP_EFORMAT, "[%s]", bc->name);
  snap_snapshot *s = fx_load(&f, "e", SNAP_CRITERIA_LATEST);
  cf_assert_not_null(s, "[%s]", bc->name);
  cf_assert_eq(s->seq, 5, "[%s] only the valid row of the batch was stored", bc->name);
  snap_snapshot_free(s);
  cf_assert_eq(snap_delete_one(f.st, "e", 5), SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(snap_save(f.st, "e", 2, SNAP_FORMAT_JSON, "7", 1, NULL, NULL), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  const uint8_t nil = 0xc0; /* msgpack nil */
  cf_assert_eq(snap_save(f.st, "e", 3, SNAP_FORMAT_MSGPACK, &nil, 1, NULL, NULL), SNAP_OK,
               "[%s] %s", bc->name, snap_error_message());
  s = fx_load(&f, "e", fx_crit(0, 2, ANY_TS));
  cf_assert_eq(s->len, 1u, "[%s]", bc->name);
  cf_assert_eq(s->data[0], '7', "[%s]", bc->name);
  snap_snapshot_free(s);
  s = fx_load(&f, "e", SNAP_CRITERIA_LATEST);
  cf_assert_eq(s->format, SNAP_FORMAT_MSGPACK, "[%s]", bc->name);
  cf_assert_eq(s->len, 1u, "[%s]", bc->name);
  cf_assert_eq(s->data[0], 0xc0, "[%s]", bc->name);
  snap_snapshot_free(s);
  fx_close(&f);
}

void cf_case_unusual_pids_are_kept_apart(const cf_backend *bc) {
  char long_pid[1001];
  for (int i = 0; i < 1000; i++)
    long_pid[i] = (char)('a' + i % 26);
  long_pid[1000] = '\0';
  const char *pids[] = {"актор-☃-🎉", long_pid, "it's", "100%", "a/b",
                        "a'b",       "a%b",    "%s%n", "a b",  "'; DROP TABLE snapshots; --"};
  size_t np = sizeof pids / sizeof pids[0];

  fx f;
  fx_open(&f, bc, "");
  for (size_t i = 0; i < np; i++) {
    char state[32];
    snprintf(state, sizeof state, "%zu", i);
    cf_assert_eq(snap_save(f.st, pids[i], 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
                 SNAP_OK, "[%s] pid #%zu: %s", bc->name, i, snap_error_message());
  }
  for (size_t i = 0; i < np; i++) {
    char state[32];
    snprintf(state, sizeof state, "%zu", i);
    snap_snapshot *s = fx_load(&f, pids[i], SNAP_CRITERIA_LATEST);
    cf_assert_not_null(s, "[%s] pid #%zu", bc->name, i);
    cf_assert_str_eq(s->pid, pids[i], "[%s]", bc->name);
    cf_assert_str_eq((const char *)s->data, state, "[%s] pid #%zu", bc->name, i);
    snap_snapshot_free(s);
  }
  fx_expect_none(&f, fx_load(&f, "a", SNAP_CRITERIA_LATEST), "prefix of a pid");
  fx_close(&f);
}

void cf_case_deleting_a_missing_snapshot_succeeds(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "");
  cf_assert_eq(snap_delete_one(f.st, "nobody", 5), SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(snap_delete(f.st, "nobody", 5), SNAP_OK, "[%s]", bc->name);
  snap_criteria c = SNAP_CRITERIA_LATEST;
  cf_assert_eq(snap_delete_matching(f.st, "nobody", &c), SNAP_OK, "[%s]", bc->name);
  fx_fill(&f, "p");
  cf_assert_eq(snap_delete_one(f.st, "p", 99), SNAP_OK, "[%s]", bc->name);
  fx_expect_md(&f, fx_load(&f, "p", SNAP_CRITERIA_LATEST), 4, "untouched");
  fx_close(&f);
}

void cf_case_persistent_backends_keep_everything_across_reopen(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  fx_fill(&f, "p");
  fx_reopen(&f, "\"keep\": 0");
  snap_snapshot *s = fx_load(&f, "p", SNAP_CRITERIA_LATEST);
  if (bc->persistent) {
    fx_expect_md(&f, s, 4, "after reopen");
    fx_expect_md(&f, fx_load(&f, "p", fx_crit(0, 11, ANY_TS)), 0, "oldest after reopen");
  } else {
    fx_expect_none(&f, s, "a non-persistent backend starts empty");
  }
  fx_close(&f);
}

void cf_case_keep_n_holds_after_many_saves(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 3");
  for (int i = 1; i <= 25; i++) {
    char state[16];
    snprintf(state, sizeof state, "%d", i);
    cf_assert_eq(snap_save(f.st, "k", i, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
                 SNAP_OK, "[%s]", bc->name);
    cf_assert_eq(snap_save(f.st, "other", i, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
                 SNAP_OK, "[%s]", bc->name);
  }
  for (int seq = 23; seq <= 25; seq++) {
    snap_snapshot *s = fx_load(&f, "k", fx_crit(seq, seq, ANY_TS));
    cf_assert_not_null(s, "[%s] seq %d kept", bc->name, seq);
    snap_snapshot_free(s);
  }
  fx_expect_none(&f, fx_load(&f, "k", fx_crit(0, 22, ANY_TS)), "older than the newest 3");
  fx_expect_none(&f, fx_load(&f, "other", fx_crit(0, 22, ANY_TS)), "other pid pruned too");
  /* Saving an older seq below the window is pruned straight away. */
  cf_assert_eq(snap_save(f.st, "k", 2, SNAP_FORMAT_JSON, "2", 1, NULL, NULL), SNAP_OK);
  fx_expect_none(&f, fx_load(&f, "k", fx_crit(0, 22, ANY_TS)), "old seq saved then pruned");
  fx_close(&f);
}

/* Opens a store with `store_keys`, saves the TCK fixture for "p" and damages
 * the bodies of seq `from`..15; false (the case skipped) when this backend's
 * bodies cannot be damaged. */
static bool open_damaged(fx *f, const cf_backend *bc, const char *store_keys, int64_t from) {
  if (bc->corrupt == NULL) {
    cf_skip(bc, "bodies of this backend cannot be damaged");
    return false;
  }
  fx_open(f, bc, store_keys);
  fx_fill(f, "p");
  for (int64_t seq = 15; seq >= from; seq--)
    bc->corrupt(bc, f->st, f->dir, "p", seq);
  return true;
}

void cf_case_corrupt_newest_body_falls_back_and_reports_the_skip(const cf_backend *bc) {
  fx f;
  if (!open_damaged(&f, bc, "\"keep\": 0", 15))
    return;
  snap_snapshot *s = fx_load(&f, "p", SNAP_CRITERIA_LATEST);
  cf_assert_not_null(s, "[%s]", bc->name);
  cf_assert_eq(s->skipped, 1u, "[%s]", bc->name);
  cf_assert(s->skip_reason == SNAP_ECORRUPT || s->skip_reason == SNAP_EFORMAT, "[%s] %d", bc->name,
            s->skip_reason);
  fx_expect_md(&f, s, 3, "fallback to 14");
  /* A bound below the damaged row never sees it. */
  s = fx_load(&f, "p", fx_crit(0, 14, ANY_TS));
  cf_assert_eq(s->skipped, 0u, "[%s]", bc->name);
  fx_expect_md(&f, s, 3, "max_seq 14");
  fx_close(&f);
}

void cf_case_too_many_corrupt_bodies_is_an_error_not_none(const cf_backend *bc) {
  fx f;
  if (!open_damaged(&f, bc, "\"keep\": 0", 14))
    return;
  snap_snapshot *s = fx_load(&f, "p", SNAP_CRITERIA_LATEST);
  cf_assert_eq(s->skipped, 2u, "[%s]", bc->name);
  fx_expect_md(&f, s, 2, "third attempt");
  bc->corrupt(bc, f.st, f.dir, "p", 13);
  s = (snap_snapshot *)1;
  int rc = snap_load_latest(f.st, "p", NULL, &s);
  cf_assert_eq(rc, SNAP_ECORRUPT, "[%s] three corrupt bodies: %d", bc->name, rc);
  cf_assert_null(s, "[%s]", bc->name);
  cf_assert(strstr(snap_error_message(), "skipped") != NULL, "[%s] %s", bc->name,
            snap_error_message());
  /* Every match corrupt, and fewer than the attempts: still an error. */
  snap_criteria c = fx_crit(13, 15, ANY_TS);
  if (bc->persistent) {
    fx_reopen(&f, "\"keep\": 0, \"max_load_attempts\": 5");
  } else { /* what was stored went with the store: the same rows in a new one */
    fx_close(&f);
    open_damaged(&f, bc, "\"keep\": 0, \"max_load_attempts\": 5", 13);
  }
  cf_assert_eq(snap_load(f.st, "p", &c, NULL, &s), SNAP_ECORRUPT, "[%s]", bc->name);
  c = fx_crit(0, INT64_MAX, ANY_TS);
  cf_assert_eq(snap_load(f.st, "p", &c, NULL, &s), SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(s->skipped, 3u, "[%s]", bc->name);
  fx_expect_md(&f, s, 1, "five attempts reach seq 12");
  fx_close(&f);
}
