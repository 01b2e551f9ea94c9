/* Streamed saves and loads (snap/store_stream.h, docs/STREAMS.md) on every
 * backend: round trips at each chunk boundary, visibility only after the
 * commit, aborts and failures changing nothing, retention and deletes taking
 * streamed snapshots along, and a damaged head never delivered. A backend
 * without the stream slots of ABI version 6 must refuse a streamed save with
 * SNAP_EUNSUPPORTED and store nothing; the cases then skip, saying so. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "stream_util.h"

/* The chunk size of su_stream_save(): small, so that states span many. */
#define CHUNK SU_CHUNK

/* A JSON state of exactly `n` bytes (su_state_of()). */
static char *state_of(size_t n, char fill) {
  char *s = su_state_of(n, fill);
  cf_assert_not_null(s);
  return s;
}

/* Whether the store takes streamed saves. When it does not, a streamed save
 * must be refused with SNAP_EUNSUPPORTED and leave nothing: checked, then
 * the case skips. */
static bool streams_or_skip(fx *f) {
  if (snap_store_streams(f->st))
    return true;
  snap_save_stream *w = (snap_save_stream *)f;
  cf_assert_eq(snap_save_stream_begin(f->st, "unsupported", 1, SNAP_TIMESTAMP_AUTO,
                                      SNAP_FORMAT_JSON, NULL, NULL, 0, &w),
               SNAP_EUNSUPPORTED, "[%s] a streamed save without stream slots", f->bc->name);
  cf_assert_null(w, "[%s] no writer on failure", f->bc->name);
  snap_snapshot *s = (snap_snapshot *)f;
  cf_assert_eq(snap_load_latest(f->st, "unsupported", NULL, &s), SNAP_OK);
  cf_assert_null(s, "[%s] the refused streamed save stored nothing", f->bc->name);
  cf_skip(f->bc, "the backend has no stream slots (backend ABI version 6): streamed saves are "
                 "refused with SNAP_EUNSUPPORTED, as checked");
  return false;
}

/* A streamed save of `n` bytes of `data` in pieces of `piece`; its status. */
static int stream_save(fx *f, const char *pid, int64_t seq, const char *data, size_t n,
                       const snap_options *o, size_t piece) {
  return su_stream_save(f->st, pid, seq, data, n, o, piece, NULL);
}

/* Reads pid's snapshot matching `c` through a stream reader, in odd pieces,
 * and checks it is seq `seq` holding exactly `want` (NULL: none matches). */
static void expect_stream(fx *f, const char *pid, snap_criteria c, const snap_options *o,
                          int64_t seq, const char *want, const char *what) {
  snap_load_stream *r = NULL;
  snap_stream_meta m;
  cf_assert_eq(snap_load_stream_open(f->st, pid, &c, o, 0, &r, &m), SNAP_OK, "[%s] %s: %s",
               f->bc->name, what, snap_error_message());
  if (want == NULL) {
    cf_assert_null(r, "[%s] %s: no snapshot", f->bc->name, what);
    return;
  }
  cf_assert_not_null(r, "[%s] %s: a snapshot", f->bc->name, what);
  cf_assert_eq(m.seq, seq, "[%s] %s: seq %" PRId64, f->bc->name, what, m.seq);
  size_t n = strlen(want), got = 1, have = 0;
  char *b = malloc(n + 333);
  cf_assert_not_null(b);
  int rc = SNAP_OK;
  while (rc == SNAP_OK && got > 0 && have <= n) {
    rc = snap_load_stream_read(r, b + have, 333, &got);
    have += got;
  }
  snap_load_stream_close(r);
  cf_assert_eq(rc, SNAP_OK, "[%s] %s: %s", f->bc->name, what, snap_error_message());
  cf_assert(have == n && memcmp(b, want, n) == 0, "[%s] %s: %zu bytes read, %zu saved",
            f->bc->name, what, have, n);
  free(b);
}

/* Loads pid's newest snapshot whole and checks it is (seq, want). */
static void expect_whole(fx *f, const char *pid, const snap_options *o, int64_t seq,
                         const char *want, const char *what) {
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load_latest(f->st, pid, o, &s), SNAP_OK, "[%s] %s: %s", f->bc->name, what,
               snap_error_message());
  cf_assert_not_null(s, "[%s] %s: a snapshot", f->bc->name, what);
  cf_assert_eq(s->seq, seq, "[%s] %s: seq %" PRId64, f->bc->name, what, s->seq);
  cf_assert(s->len == strlen(want) && memcmp(s->data, want, s->len) == 0,
            "[%s] %s: %zu bytes loaded", f->bc->name, what, s->len);
  snap_snapshot_free(s);
}

static const snap_criteria LATEST = {0, INT64_MAX, ANY_TS};

void cf_case_streamed_states_round_trip_at_every_chunk_boundary(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  if (!streams_or_skip(&f)) {
    fx_close(&f);
    return;
  }
  snap_keyring *kr = fx_keyring(0x33);
  snap_options *opts[2] = {fx_options(0, NULL), fx_options(1, kr)};
  /* 1 byte, exactly one chunk, one byte over, many chunks. */
  const size_t sizes[] = {1, CHUNK, CHUNK + 1, CHUNK * 40 + 7};
  int64_t seq = 1;
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++, seq++) {
      char *state = state_of(sizes[i], (char)('a' + i));
      char what[96];
      snprintf(what, sizeof what, "%s, %zu bytes", k ? "zlib-1+enc" : "plain", sizes[i]);
      cf_assert_eq(stream_save(&f, "p", seq, state, sizes[i], opts[k], i % 2 ? 7 : 4096),
                   SNAP_OK, "[%s] %s: %s", bc->name, what, snap_error_message());
      expect_whole(&f, "p", opts[k], seq, state, what);
      expect_stream(&f, "p", LATEST, opts[k], seq, state, what);
      free(state);
    }
  }
  /* A state of 0 bytes is refused at the commit, as snap_save() refuses it. */
  snap_save_stream *w = NULL;
  cf_assert_eq(snap_save_stream_begin(f.st, "p", seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON,
                                      NULL, NULL, CHUNK, &w),
               SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  cf_assert_eq(snap_save_stream_commit(w, NULL), SNAP_EFORMAT, "[%s] an empty stream",
               bc->name);
  char *last = state_of(sizes[3], 'd');
  expect_whole(&f, "p", opts[1], seq - 1, last, "after the refused empty stream");
  free(last);
  snap_options_free(opts[0]);
  snap_options_free(opts[1]);
  snap_keyring_free(kr);
  fx_close(&f);
}

void cf_case_a_streamed_snapshot_is_visible_only_after_its_commit(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  if (!streams_or_skip(&f)) {
    fx_close(&f);
    return;
  }
  cf_assert_eq(snap_save(f.st, "v", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  char *state = state_of(CHUNK * 5 + 3, 'e');
  size_t n = strlen(state);
  snap_save_stream *w = NULL;
  cf_assert_eq(snap_save_stream_begin(f.st, "v", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, CHUNK, &w),
               SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  cf_assert_eq(snap_save_stream_write(w, state, n - 10), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  /* Chunks staged, not committed: loads, stream readers and bounds see seq 1. */
  expect_whole(&f, "v", NULL, 1, "[1]", "while the stream is open");
  expect_stream(&f, "v", LATEST, NULL, 1, "[1]", "while the stream is open");
  expect_stream(&f, "v", fx_crit(2, INT64_MAX, ANY_TS), NULL, 0, NULL,
                "seq 2 while its stream is open");
  cf_assert_eq(snap_save_stream_write(w, state + n - 10, 10), SNAP_OK);
  expect_whole(&f, "v", NULL, 1, "[1]", "with every byte written, before the commit");
  snap_meta m;
  cf_assert_eq(snap_save_stream_commit(w, &m), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_eq(m.seq, 2);
  cf_assert_eq(m.state_len, n);
  expect_whole(&f, "v", NULL, 2, state, "after the commit");
  expect_stream(&f, "v", LATEST, NULL, 2, state, "after the commit");
  if (bc->persistent) {
    fx_reopen(&f, "\"keep\": 0");
    expect_stream(&f, "v", LATEST, NULL, 2, state, "after reopening");
  }
  free(state);
  fx_close(&f);
}

void cf_case_aborted_and_failed_streamed_saves_change_nothing(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  if (!streams_or_skip(&f)) {
    fx_close(&f);
    return;
  }
  char *old = state_of(CHUNK * 3, 'o'), *other = state_of(CHUNK * 7 + 1, 'n');
  cf_assert_eq(stream_save(&f, "a", 2, old, strlen(old), NULL, 4096), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  /* Aborted: a new seq, and a replacement of seq 2. */
  for (int64_t seq = 3; seq >= 2; seq--) {
    snap_save_stream *w = NULL;
    cf_assert_eq(snap_save_stream_begin(f.st, "a", seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON,
                                        NULL, NULL, CHUNK, &w),
                 SNAP_OK);
    cf_assert_eq(snap_save_stream_write(w, other, strlen(other)), SNAP_OK);
    snap_save_stream_abort(w);
    expect_whole(&f, "a", NULL, 2, old, "after an aborted stream");
  }
  /* Failed: bytes that cannot be JSON fail the write, stickily, and the commit. */
  snap_save_stream *w = NULL;
  cf_assert_eq(snap_save_stream_begin(f.st, "a", 4, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, CHUNK, &w),
               SNAP_OK);
  cf_assert_eq(snap_save_stream_write(w, other, CHUNK * 2), SNAP_OK);
  cf_assert_eq(snap_save_stream_write(w, "\x01", 1), SNAP_EFORMAT, "[%s] a control byte",
               bc->name);
  cf_assert_eq(snap_save_stream_write(w, "\"", 1), SNAP_EFORMAT, "[%s] a failure sticks",
               bc->name);
  cf_assert(snap_save_stream_commit(w, NULL) != SNAP_OK, "[%s] a failed stream commits",
            bc->name);
  /* Truncated: the commit refuses a state that does not end. */
  cf_assert_eq(snap_save_stream_begin(f.st, "a", 5, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, CHUNK, &w),
               SNAP_OK);
  cf_assert_eq(snap_save_stream_write(w, other, strlen(other) - 1), SNAP_OK);
  cf_assert_eq(snap_save_stream_commit(w, NULL), SNAP_EFORMAT, "[%s] a truncated state",
               bc->name);
  expect_whole(&f, "a", NULL, 2, old, "after failed streams");
  expect_stream(&f, "a", fx_crit(3, INT64_MAX, ANY_TS), NULL, 0, NULL, "seq 3 and above");
  /* The store goes on: a stream and an ordinary save after them. */
  cf_assert_eq(stream_save(&f, "a", 6, other, strlen(other), NULL, 999), SNAP_OK);
  expect_stream(&f, "a", LATEST, NULL, 6, other, "a stream after the failures");
  cf_assert_eq(snap_save(f.st, "a", 7, SNAP_FORMAT_JSON, "[7]", 3, NULL, NULL), SNAP_OK);
  expect_whole(&f, "a", NULL, 7, "[7]", "an ordinary save after them");
  free(old);
  free(other);
  fx_close(&f);
}

void cf_case_retention_and_deletes_remove_streamed_snapshots(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 2");
  if (!streams_or_skip(&f)) {
    fx_close(&f);
    return;
  }
  char *states[5];
  for (int i = 1; i <= 4; i++) {
    states[i] = state_of(CHUNK * (size_t)(i + 1) + 1, (char)('a' + i));
    cf_assert_eq(stream_save(&f, "k", i, states[i], strlen(states[i]), NULL, 4096), SNAP_OK,
                 "[%s] seq %d: %s", bc->name, i, snap_error_message());
  }
  /* keep = 2: seq 3 and 4 stay, 1 and 2 are gone, chunks and all. */
  expect_stream(&f, "k", fx_crit(0, 2, ANY_TS), NULL, 0, NULL, "seq 1 and 2 after retention");
  expect_stream(&f, "k", fx_crit(0, 3, ANY_TS), NULL, 3, states[3], "seq 3 after retention");
  expect_stream(&f, "k", LATEST, NULL, 4, states[4], "seq 4 after retention");
  /* A delete takes a streamed snapshot; the older one reads in full. */
  cf_assert_eq(snap_delete_one(f.st, "k", 4), SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  expect_stream(&f, "k", LATEST, NULL, 3, states[3], "after deleting seq 4");
  /* A replacement of the same seq by an ordinary save. */
  cf_assert_eq(snap_save(f.st, "k", 3, SNAP_FORMAT_JSON, "[3]", 3, NULL, NULL), SNAP_OK);
  expect_stream(&f, "k", LATEST, NULL, 3, "[3]", "seq 3 replaced by an ordinary save");
  uint64_t reclaimed = 0;
  cf_assert_eq(snap_store_stream_sweep(f.st, 1000, &reclaimed), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  expect_stream(&f, "k", LATEST, NULL, 3, "[3]", "after a sweep");
  if (bc->persistent) {
    fx_reopen(&f, "\"keep\": 2");
    expect_stream(&f, "k", fx_crit(0, 2, ANY_TS), NULL, 0, NULL, "seq 1 and 2 after reopening");
    expect_stream(&f, "k", LATEST, NULL, 3, "[3]", "seq 3 after reopening");
  }
  for (int i = 1; i <= 4; i++)
    free(states[i]);
  fx_close(&f);
}

void cf_case_a_damaged_streamed_head_is_never_delivered(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  if (!streams_or_skip(&f)) {
    fx_close(&f);
    return;
  }
  if (bc->corrupt == NULL) {
    cf_skip(bc, "the kit cannot damage a stored body of this backend (no corrupt hook)");
    fx_close(&f);
    return;
  }
  char *older = state_of(CHUNK * 3 + 2, 'o'), *newer = state_of(CHUNK * 4 + 5, 'n');
  cf_assert_eq(stream_save(&f, "d", 1, older, strlen(older), NULL, 4096), SNAP_OK);
  cf_assert_eq(stream_save(&f, "d", 2, newer, strlen(newer), NULL, 4096), SNAP_OK);
  /* The test suite damages the head at rest; the installed kit, through the
   * store, puts a damaged ordinary body over the streamed row: either way
   * the newest row must not be delivered. */
  bc->corrupt(bc, f.st, f.dir, "d", 2);
  /* The damaged head is skipped for the older snapshot, which reads in full. */
  snap_load_stream *r = NULL;
  snap_stream_meta m;
  cf_assert_eq(snap_load_stream_open(f.st, "d", &LATEST, NULL, 0, &r, &m), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert_not_null(r);
  snap_load_stream_close(r);
  cf_assert_eq(m.seq, 1, "[%s] the damaged seq 2 was opened", bc->name);
  cf_assert(m.skipped >= 1 && m.skip_reason != SNAP_OK, "[%s] the skip is reported", bc->name);
  expect_stream(&f, "d", LATEST, NULL, 1, older, "past the damaged head");
  expect_whole(&f, "d", NULL, 1, older, "loaded whole past the damaged head");
  free(older);
  free(newer);
  fx_close(&f);
}
