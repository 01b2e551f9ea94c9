/* The sqlite backend's batches with retention: a row that later rows of the
 * same batch push out of the pid's newest `keep` is not inserted at all, and
 * what every batch leaves stored (and reports as pruned) is what inserting
 * and pruning each row in turn leaves. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "snap/observe.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "sqlite_asserts.h"
#include "store_util.h"

#define MAXROWS 64

/* A store with keep 3 in a fresh directory, and its file opened beside it. */
typedef struct fixture {
  char *dir;
  snap_store *st;
  sqlite3 *db;
} fixture;

static fixture open_keep3(void) {
  fixture f = {st_tmpdir(), NULL, NULL};
  cr_assert_not_null(f.dir);
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\", \"keep\": 3}", f.dir);
  cr_assert_eq(snap_store_open_backend(&f.st, snap_backend_sqlite(), cfg), SNAP_OK, "open %s: %s",
               cfg, snap_error_message());
  return f;
}

/* Opens the store's file beside it. */
static void look_beside(fixture *f) { f->db = st_sqlite_beside(f->dir, "t.db"); }

static void close_fixture(fixture *f) {
  sqlite3_close(f->db);
  snap_store_close(f->st);
  st_rmtree(f->dir);
  free(f->dir);
}

static int64_t raw_count(sqlite3 *db, const char *sql) {
  sqlite3_stmt *q;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sql);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "%s", sql);
  int64_t v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return v;
}

/* Asserts that the stored seqs of `pid`, ascending, are `want` ("1,2,3"). */
static void assert_seqs(sqlite3 *db, const char *pid, const char *want, const char *why) {
  sqlite3_stmt *q;
  const char *sql = "SELECT seq FROM snapshots WHERE pid = ?1 ORDER BY seq";
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
  sqlite3_bind_text(q, 1, pid, -1, SQLITE_STATIC);
  char out[256] = "";
  size_t used = 0;
  while (sqlite3_step(q) == SQLITE_ROW)
    used += (size_t)snprintf(out + used, sizeof out - used, "%s%" PRId64, used ? "," : "",
                             (int64_t)sqlite3_column_int64(q, 0));
  sqlite3_finalize(q);
  cr_assert_str_eq(out, want, "pid %s: %s", pid, why);
}

/* Counts every row the backend inserts into the table, from now on. */
static void count_inserts(sqlite3 *db) {
  st_sqlite_run(db, "CREATE TABLE inserted (n INTEGER NOT NULL)");
  st_sqlite_run(db, "INSERT INTO inserted VALUES (0)");
  st_sqlite_run(db, "CREATE TRIGGER count_inserts AFTER INSERT ON snapshots "
                    "BEGIN UPDATE inserted SET n = n + 1; END");
}

typedef struct batch {
  snap_save_req req[MAXROWS];
  snap_save_ext ext[MAXROWS];
  char state[MAXROWS][64];
  int status[MAXROWS];
  size_t n;
} batch;

static void add(batch *b, const char *pid, int64_t seq) {
  cr_assert_lt(b->n, (size_t)MAXROWS);
  size_t i = b->n++;
  snprintf(b->state[i], sizeof b->state[i], "{\"pid\":\"%s\",\"seq\":%" PRId64 "}", pid, seq);
  b->req[i] = (snap_save_req){
      pid, seq, 1000 + seq, SNAP_FORMAT_JSON, b->state[i], strlen(b->state[i]), NULL};
  b->ext[i] = (snap_save_ext){0};
}

static int run(snap_store *st, batch *b) {
  return snap_save_batch_ex(st, b->req, b->ext, b->n, b->status, NULL);
}

static uint64_t pruned(snap_store *st) {
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  return m.pruned;
}

Test(sqlite_elide, a_batch_inserts_only_the_rows_retention_keeps) {
  fixture f = open_keep3();
  /* The pids' first rows exist before the batch: its prunes remove them too. */
  cr_assert_eq(snap_save(f.st, "a", 0, SNAP_FORMAT_JSON, "0", 1, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_save(f.st, "b", 0, SNAP_FORMAT_JSON, "0", 1, NULL, NULL), SNAP_OK);
  look_beside(&f);
  count_inserts(f.db);
  batch b = {0};
  for (int64_t seq = 1; seq <= 10; seq++) { /* interleaved, as an executor's group */
    add(&b, "a", seq);
    add(&b, "b", seq);
    if (seq <= 2)
      add(&b, "c", seq);
  }
  cr_assert_eq(run(f.st, &b), SNAP_OK, "%s", snap_error_message());
  for (size_t i = 0; i < b.n; i++)
    cr_assert_eq(b.status[i], SNAP_OK, "row %zu", i);
  assert_seqs(f.db, "a", "8,9,10", "the newest three");
  assert_seqs(f.db, "b", "8,9,10", "the newest three");
  assert_seqs(f.db, "c", "1,2", "a pid with no more rows than keep is inserted whole");
  cr_assert_eq(raw_count(f.db, "SELECT n FROM inserted"), 3 + 3 + 2,
               "rows that later rows of the batch push out are never inserted");
  /* 7 of each of a and b never inserted, plus each one's seq 0. */
  cr_assert_eq(pruned(f.st), 2 * 8, "removed by retention: %" PRIu64, pruned(f.st));
  char why[256];
  cr_assert(st_latest_is(f.st, "a", 10, 1010, "{\"pid\":\"a\",\"seq\":10}", why, sizeof why), "%s",
            why);
  close_fixture(&f);
}

Test(sqlite_elide, a_later_row_that_fails_brings_back_the_rows_it_would_have_pushed_out) {
  fixture f = open_keep3();
  cr_assert_eq(snap_save(f.st, "p", 0, SNAP_FORMAT_JSON, "0", 1, NULL, NULL), SNAP_OK);
  look_beside(&f);
  /* A statement-level failure: SQLite undoes that insert alone and the
   * transaction goes on, as for a row too big to store. */
  st_sqlite_run(f.db, "CREATE TRIGGER refuse_9 BEFORE INSERT ON snapshots WHEN NEW.seq = 9 "
                      "BEGIN SELECT RAISE(ABORT, 'seq 9 refused by test'); END");
  batch b = {0};
  for (int64_t seq = 1; seq <= 10; seq++)
    add(&b, "p", seq);
  cr_assert_neq(run(f.st, &b), SNAP_OK);
  for (size_t i = 0; i < b.n; i++)
    cr_assert_eq(b.status[i] == SNAP_OK, b.req[i].seq != 9, "seq %" PRId64 ": status %d",
                 b.req[i].seq, b.status[i]);
  assert_seqs(f.db, "p", "7,8,10", "the newest three of the rows that were stored");
  cr_assert_eq(pruned(f.st), 7, "seqs 0-6 removed: %" PRIu64, pruned(f.st));
  close_fixture(&f);
}

Test(sqlite_elide, rows_out_of_order_are_each_inserted_and_pruned) {
  fixture f = open_keep3();
  look_beside(&f);
  batch b = {0};
  const int64_t order[] = {5, 1, 2, 3, 4, 9, 9, 6};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    add(&b, "p", order[i]);
  cr_assert_eq(run(f.st, &b), SNAP_OK, "%s", snap_error_message());
  assert_seqs(f.db, "p", "5,6,9", "the three greatest seqs");
  close_fixture(&f);
}

Test(sqlite_elide, a_conditional_row_sees_the_rows_before_it_stored) {
  fixture f = open_keep3();
  look_beside(&f);
  batch b = {0};
  for (int64_t seq = 1; seq <= 7; seq++)
    add(&b, "p", seq);
  /* seq 5 expects 4, which has three later rows (5, 6, 7). */
  b.ext[4] = (snap_save_ext){.flags = SNAP_SAVE_IF_LATEST, .expected_seq = 4};
  cr_assert_eq(run(f.st, &b), SNAP_OK, "%s", snap_error_message());
  for (size_t i = 0; i < b.n; i++)
    cr_assert_eq(b.status[i], SNAP_OK, "seq %" PRId64 ": %d", b.req[i].seq, b.status[i]);
  assert_seqs(f.db, "p", "5,6,7", "the newest three");
  close_fixture(&f);
}
