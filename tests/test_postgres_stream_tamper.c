/* Chunk rows of the postgres backend tampered with in the database
 * ("<table>_chunks", store/backends/postgres/streams_read.c), on one server
 * and on three shards: a record altered, a snapshot's rows replaced by
 * another's, a row deleted (in the middle, the last), two rows' order
 * exchanged, a row repeated (inside the stream, after its last record), a
 * row of another pid's stream moved in. Each is detected in every stage
 * combination: a plain stream (CRC chain) fails with SNAP_ECORRUPT and a
 * whole load falls back to the older snapshot, as does a stream reader with
 * SNAP_LOAD_STREAM_VERIFY_FIRST (docs/STREAMS.md); a keyed one (AEAD, MAC)
 * fails with SNAP_EAUTH and never falls back. Whatever a reader handed out
 * before the failure is a prefix of the true state: never an unverified
 * byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_stream_asserts.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "stream_util.h"

PGS_CLUSTER_START(3)
PGS_CLUSTER_STOP

/* The damage done to the chunk rows of seq 2 of the tampered pid (63
 * records, n = 0..62). {S} is that stream's token, {O} the token of seq 2
 * of the other pid. */
typedef enum damage {
  ALTERED,
  REPLACED_BY_SEQ_1,
  DELETED_MIDDLE,
  DELETED_LAST,
  REORDERED,
  REPEATED_INSIDE,
  REPEATED_AFTER_LAST,
  FROM_ANOTHER_PID,
} damage;

static const char *const damage_sql[] = {
    [ALTERED] = "UPDATE \"{T}_chunks\" SET record = overlay(record placing '\\x5a'::bytea from "
                "20) WHERE n = 0 AND stream = {S}",
    [REPLACED_BY_SEQ_1] = "DELETE FROM \"{T}_chunks\" WHERE stream = {S}; INSERT INTO "
                          "\"{T}_chunks\" SELECT {S}, n, record FROM \"{T}_chunks\" WHERE "
                          "stream = (SELECT stream FROM \"{T}\" WHERE persistence_id = "
                          "'{P}' AND seq = 1)",
    [DELETED_MIDDLE] = "DELETE FROM \"{T}_chunks\" WHERE stream = {S} AND n = 30",
    [DELETED_LAST] = "DELETE FROM \"{T}_chunks\" WHERE stream = {S} AND n = 62",
    /* n is the primary key's: through -1 */
    [REORDERED] = "UPDATE \"{T}_chunks\" SET n = -1 WHERE stream = {S} AND n = 10; UPDATE "
                  "\"{T}_chunks\" SET n = 10 WHERE stream = {S} AND n = 11; UPDATE "
                  "\"{T}_chunks\" SET n = 11 WHERE stream = {S} AND n = -1",
    /* every record to n = 2i, then record 10 once more at n = 21 */
    [REPEATED_INSIDE] = "UPDATE \"{T}_chunks\" SET n = -n - 1 WHERE stream = {S}; UPDATE "
                        "\"{T}_chunks\" SET n = (-n - 1) * 2 WHERE stream = {S}; INSERT INTO "
                        "\"{T}_chunks\" SELECT stream, 21, record FROM \"{T}_chunks\" WHERE "
                        "stream = {S} AND n = 20",
    [REPEATED_AFTER_LAST] = "INSERT INTO \"{T}_chunks\" SELECT stream, 63, record FROM "
                            "\"{T}_chunks\" WHERE stream = {S} AND n = 62",
    [FROM_ANOTHER_PID] = "DELETE FROM \"{T}_chunks\" WHERE stream = {S} AND n = 5; UPDATE "
                         "\"{T}_chunks\" SET stream = {S} WHERE stream = {O} AND n = 5",
};

/* `tpl` with {S} and {O} replaced by the subqueries of the two tokens, {P}
 * by the tampered pid. */
static void expand(const char *tpl, const char *pid, const char *other, char *out, size_t cap) {
  char s[160], o[160];
  snprintf(s, sizeof s, "(SELECT stream FROM \"{T}\" WHERE persistence_id = '%s' AND seq = 2)",
           pid);
  snprintf(o, sizeof o, "(SELECT stream FROM \"{T}\" WHERE persistence_id = '%s' AND seq = 2)",
           other);
  size_t at = 0;
  for (const char *t = tpl; *t != '\0'; t++) {
    const char *put = strncmp(t, "{S}", 3) == 0   ? s
                      : strncmp(t, "{O}", 3) == 0 ? o
                      : strncmp(t, "{P}", 3) == 0 ? pid
                                                  : NULL;
    size_t n = put ? strlen(put) : 1;
    cr_assert_lt(at + n, cap);
    memcpy(out + at, put ? put : t, n);
    at += n;
    t += put ? 2 : 0;
  }
  out[at] = '\0';
}

/* The stage combinations: su_combo()'s 0 (plain), 2 (zlib-1 + AEAD) and 3
 * (MAC), and AEAD alone (AEAD_ONLY), whose records stay one per 64 bytes of
 * state as the plain and MAC ones do (zlib shrinks the test's state to a
 * few). */
#define AEAD_ONLY 4

static snap_options *options_of(int c, snap_keyring *kr) {
  snap_options *o = su_combo(c == AEAD_ONLY ? 0 : c, kr);
  cr_assert_not_null(o);
  if (c == AEAD_ONLY)
    cr_assert_eq(snap_options_set_encryption(o, kr, "streams"), SNAP_OK);
  return o;
}

/* Pairs of pids on the last of three shards (slices 965, 956, 771, 738,
 * 705 and 741 of 1024): the first is tampered with, a row of the second's
 * stream moved into it. On one server any pid shares the shard. */
static const char *const pairs[3][2] = {
    {"account-42", "account-7"}, {"account-2", "account-5"}, {"account-8", "account-11"}};

/* Seq 1 and 2 of pid `pair[0]` (and seq 2 of `pair[1]`) streamed into `st`
 * with the same length and the options of combination `c` (options_of());
 * then the first's seq 2 rows are damaged as `d` says, and every way of
 * loading it is checked. */
static void damage_one(snap_store *st, const pgs_store *p, int c, damage d,
                       const char *const pair[2]) {
  snap_keyring *kr = su_keyring(0x17);
  snap_options *o = options_of(c, kr);
  const char *pid = pair[0], *other = pair[1];
  char *one = su_state_of(4000, 'a'), *two = su_state_of(4000, 'b');
  char *three = su_state_of(4000, 'c');
  cr_assert_eq(su_stream_save(st, pid, 1, one, 4000, o, 4000, NULL), SNAP_OK);
  cr_assert_eq(su_stream_save(st, pid, 2, two, 4000, o, 4000, NULL), SNAP_OK);
  cr_assert_eq(su_stream_save(st, other, 2, three, 4000, o, 4000, NULL), SNAP_OK);
  char sql[1500];
  expand(damage_sql[d], pid, other, sql, sizeof sql);
  long long before = pgs_chunk_rows(p);
  pgs_on_shards(p, sql);
  long long delta = pgs_chunk_rows(p) - before;
  cr_assert_eq(delta, d == DELETED_MIDDLE || d == DELETED_LAST ? -1
                      : d == REPEATED_INSIDE || d == REPEATED_AFTER_LAST ? 1
                      : d == FROM_ANOTHER_PID ? -1 : 0,
               "the damage was done (%lld rows)", delta);
  bool keyed = c != 0;
  int want = keyed ? SNAP_EAUTH : SNAP_ECORRUPT;
  /* A whole load: a keyed stream fails; a plain one falls back to seq 1. */
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, pid, o, &s);
  if (keyed) {
    cr_assert_eq(rc, SNAP_EAUTH, "combo %d damage %d: %d %s", c, d, rc, snap_error_message());
    cr_assert_null(s);
  } else {
    cr_assert_eq(rc, SNAP_OK, "damage %d: %s", d, snap_error_message());
    cr_assert(s != NULL && s->skipped == 1 && s->seq == 1 && s->len == 4000 &&
                  memcmp(s->data, one, 4000) == 0,
              "damage %d: the damaged snapshot was skipped for seq 1", d);
  }
  snap_snapshot_free(s);
  /* A stream reader fails; what it handed out is true state. */
  char *back = NULL;
  size_t len = 0;
  snap_stream_meta m;
  rc = su_stream_load(st, pid, o, 0, &back, &len, &m);
  cr_assert_eq(rc, want, "combo %d damage %d: %d %s", c, d, rc, snap_error_message());
  cr_assert(len <= 4000 && (len == 0 || memcmp(back, two, len) == 0),
            "combo %d damage %d: %zu bytes handed out, not all of them true", c, d, len);
  free(back);
  /* Verify-first: a plain stream falls back at the open; a keyed one fails
   * there, handing out nothing. */
  rc = su_stream_load(st, pid, o, SNAP_LOAD_STREAM_VERIFY_FIRST, &back, &len, &m);
  if (keyed) {
    cr_assert_eq(rc, SNAP_EAUTH, "combo %d damage %d: %d %s", c, d, rc, snap_error_message());
    cr_assert_eq(len, 0);
  } else {
    cr_assert_eq(rc, SNAP_OK, "damage %d: %s", d, snap_error_message());
    cr_assert(m.seq == 1 && len == 4000 && memcmp(back, one, 4000) == 0);
  }
  free(back);
  free(one);
  free(two);
  free(three);
  snap_options_free(o);
  snap_keyring_free(kr);
}

static void damaged_rows(int c, damage d, int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 0");
  damage_one(st, &p, c, d, pairs[0]);
  snap_store_close(st);
}

/* Every way a stream is sealed: plain (a CRC chain), AEAD, MAC. */
static void every_combo(damage d, int nshards) {
  static const int combos[3] = {0, AEAD_ONLY, 3};
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 0");
  for (int i = 0; i < 3; i++)
    damage_one(st, &p, combos[i], d, pairs[i]);
  snap_store_close(st);
}

Test(pgtamper, chunk_rows_swapped_between_snapshots_are_detected_plain) {
  damaged_rows(0, REPLACED_BY_SEQ_1, 1);
}
Test(pgtamper, chunk_rows_swapped_between_snapshots_are_detected_aead_on_three_shards) {
  damaged_rows(2, REPLACED_BY_SEQ_1, 3);
}
Test(pgtamper, chunk_rows_swapped_between_snapshots_are_detected_mac) {
  damaged_rows(3, REPLACED_BY_SEQ_1, 1);
}
Test(pgtamper, an_altered_chunk_row_is_detected_plain_on_three_shards) {
  damaged_rows(0, ALTERED, 3);
}
Test(pgtamper, an_altered_chunk_row_is_detected_zlib_aead) { damaged_rows(2, ALTERED, 1); }

Test(pgtamper, a_chunk_row_deleted_in_the_middle_is_detected) { every_combo(DELETED_MIDDLE, 1); }

Test(pgtamper, the_last_chunk_row_deleted_is_detected_on_three_shards) {
  every_combo(DELETED_LAST, 3);
}

Test(pgtamper, two_chunk_rows_exchanged_are_detected) { every_combo(REORDERED, 1); }

Test(pgtamper, a_chunk_row_repeated_inside_the_stream_is_detected_on_three_shards) {
  every_combo(REPEATED_INSIDE, 3);
}

Test(pgtamper, a_chunk_row_repeated_after_the_last_is_detected) {
  every_combo(REPEATED_AFTER_LAST, 1);
}

Test(pgtamper, a_chunk_row_of_another_pids_stream_moved_in_is_detected_on_three_shards) {
  every_combo(FROM_ANOTHER_PID, 3);
}
