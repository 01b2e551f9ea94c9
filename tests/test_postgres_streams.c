/* Streamed saves and loads on the postgres backend (store/backends/postgres/
 * streams.c), on one server and on three shards: round trips of every size
 * class and stage combination, visibility only after the commit, aborts,
 * conditions, retention, deletes and replaces taking the chunk rows along,
 * a client killed mid-stream (kill -9, its
 * staging reclaimed by the sweep), a live writer's staging left alone, the
 * server killed mid-stream, and 1 GiB in bounded memory. One throw-away
 * cluster serves the binary (and one of its own for the test that kills
 * it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_fixture.h"
#include "pg_stream_asserts.h"
#include "snap/admin.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"
#include "store_util.h"
#include "stream_util.h"

PGS_CLUSTER_START(3)
PGS_CLUSTER_STOP

/* ---- round trips ----------------------------------------------------------- */

static void round_trips_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 0");
  snap_keyring *kr = su_keyring(0x42);
  const size_t sizes[] = {1, SU_CHUNK, SU_CHUNK + 1, SU_CHUNK * 37 + 5, 70000};
  int64_t seq = 1;
  for (int c = 0; c < 4; c++) {
    snap_options *o = su_combo(c, kr);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++, seq++) {
      const char *pid = pgs_pids[(size_t)seq % 3];
      char *state = su_state_of(sizes[k], (char)('a' + k));
      snap_meta m;
      int rc = su_stream_save(st, pid, seq, state, sizes[k], o, k % 2 ? 13 : 4096, &m);
      cr_assert_eq(rc, SNAP_OK, "combo %d size %zu: %s", c, sizes[k], snap_error_message());
      cr_assert_eq(m.state_len, sizes[k]);
      snap_snapshot *s = NULL;
      cr_assert_eq(snap_load_latest(st, pid, o, &s), SNAP_OK, "%s", snap_error_message());
      cr_assert(s != NULL && s->seq == seq && s->len == sizes[k]);
      cr_assert(memcmp(s->data, state, sizes[k]) == 0);
      snap_snapshot_free(s);
      char *back = NULL;
      size_t len = 0;
      snap_stream_meta sm;
      cr_assert_eq(su_stream_load(st, pid, o, 0, &back, &len, &sm), SNAP_OK, "%s",
                   snap_error_message());
      cr_assert(sm.streamed && sm.seq == seq && sm.length == sizes[k]);
      cr_assert(len == sizes[k] && memcmp(back, state, len) == 0, "combo %d size %zu", c,
                sizes[k]);
      free(back);
      free(state);
    }
    snap_options_free(o);
  }
  /* One chunk row per record, never the state in one value. */
  cr_assert(pgs_chunk_rows(&p) > 1000, "%lld chunk rows", pgs_chunk_rows(&p));
  cr_assert_eq(pgs_staged(&p), 0);
  snap_store_close(st);
  snap_keyring_free(kr);
}

Test(pgstreams, round_trips_of_every_size_class_and_stage_combination_on_one_server) {
  round_trips_on(1);
}

Test(pgstreams, round_trips_of_every_size_class_and_stage_combination_on_three_shards) {
  round_trips_on(3);
}

/* ---- visibility, aborts, conditions ------------------------------------------ */

static void visibility_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 0");
  for (int i = 0; i < 3; i++) {
    const char *pid = pgs_pids[i];
    cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
    char *state = su_state_of(5000, 'k');
    snap_save_stream *w = NULL;
    cr_assert_eq(snap_save_stream_begin(st, pid, 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                        NULL, SU_CHUNK, &w),
                 SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(snap_save_stream_write(w, state, 5000), SNAP_OK, "%s", snap_error_message());
    /* Staged (committed in its own transactions), not published. */
    cr_assert_eq(pgs_latest_seq(st, pid), 1);
    cr_assert_eq(pgs_staged(&p), 1);
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(st, pid, NULL, -1, 10, false, &page), SNAP_OK);
    cr_assert_eq(page.n, 1);
    snap_entry_page_dispose(&page);
    cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(pgs_latest_seq(st, pid), 2);
    cr_assert_eq(pgs_staged(&p), 0);
    long long published = pgs_chunk_rows(&p);
    /* An aborted save changes nothing visible and leaves no rows. */
    cr_assert_eq(snap_save_stream_begin(st, pid, 3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                        NULL, SU_CHUNK, &w),
                 SNAP_OK);
    cr_assert_eq(snap_save_stream_write(w, state, 5000), SNAP_OK);
    snap_save_stream_abort(w);
    cr_assert_eq(pgs_latest_seq(st, pid), 2);
    /* Nor a malformed one, nor an empty one, nor one failed mid-way. */
    cr_assert_eq(su_stream_save(st, pid, 4, state, 4999, NULL, 512, NULL), SNAP_EFORMAT);
    cr_assert_eq(su_stream_save(st, pid, 5, state, 0, NULL, 512, NULL), SNAP_EFORMAT);
    cr_assert_eq(snap_save_stream_begin(st, pid, 6, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                        NULL, SU_CHUNK, &w),
                 SNAP_OK);
    cr_assert_eq(snap_save_stream_write(w, "{]", 2), SNAP_EFORMAT);
    cr_assert_neq(snap_save_stream_commit(w, NULL), SNAP_OK);
    cr_assert_eq(pgs_latest_seq(st, pid), 2);
    cr_assert_eq(pgs_chunk_rows(&p), published, "only the published stream's rows are left");
    cr_assert_eq(pgs_staged(&p), 0);
    free(state);
  }
  snap_store_close(st);
}

Test(pgstreams, a_stream_is_visible_only_after_its_commit_and_aborts_change_nothing) {
  visibility_on(1);
}

Test(pgstreams, a_stream_is_visible_only_after_its_commit_on_three_shards) { visibility_on(3); }

static void conditions_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 0");
  for (int i = 0; i < 3; i++) {
    const char *pid = pgs_pids[i];
    cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
    snap_save_ext x = {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = 0, .manifest = "T/2",
                       .metadata = "md", .metadata_len = 2};
    snap_save_stream *w = NULL;
    cr_assert_eq(snap_save_stream_begin(st, pid, 2, 1234, SNAP_FORMAT_JSON, NULL, &x, SU_CHUNK,
                                        &w),
                 SNAP_OK);
    static const char many[] = "[2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
                               "25,26,27,28,29,30,31]";
    cr_assert_eq(snap_save_stream_write(w, many, strlen(many)), SNAP_OK);
    snap_meta m;
    cr_assert_eq(snap_save_stream_commit(w, &m), SNAP_ECONFLICT, "%s", snap_error_message());
    cr_assert_eq(m.current_seq, 1);
    cr_assert_eq(pgs_chunk_rows(&p), 0, "a conflicting stream leaves no rows");
    cr_assert_eq(pgs_staged(&p), 0);
    x.expected_seq = 1;
    cr_assert_eq(snap_save_stream_begin(st, pid, 2, 1234, SNAP_FORMAT_JSON, NULL, &x, SU_CHUNK,
                                        &w),
                 SNAP_OK);
    cr_assert_eq(snap_save_stream_write(w, "[2]", 3), SNAP_OK);
    cr_assert_eq(snap_save_stream_commit(w, &m), SNAP_OK, "%s", snap_error_message());
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_manifest(st, pid, &SNAP_CRITERIA_LATEST, "T/2", NULL, &s), SNAP_OK,
                 "%s", snap_error_message());
    cr_assert_not_null(s);
    cr_assert_eq(s->timestamp, 1234);
    cr_assert(s->metadata_len == 2 && memcmp(s->metadata, "md", 2) == 0);
    cr_assert_str_eq((const char *)s->data, "[2]");
    snap_snapshot_free(s);
    cr_assert_eq(snap_delete(st, pid, INT64_MAX), SNAP_OK);
  }
  snap_store_close(st);
}

Test(pgstreams, conditions_manifests_and_metadata_apply_to_streams) { conditions_on(1); }

Test(pgstreams, conditions_apply_to_streams_on_three_shards) { conditions_on(3); }

/* ---- retention, delete, replace ------------------------------------------ */

static void retention_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 2");
  char *state = su_state_of(3000, 'r');
  for (int i = 0; i < 3; i++) {
    const char *pid = pgs_pids[i];
    for (int64_t seq = 1; seq <= 4; seq++)
      cr_assert_eq(su_stream_save(st, pid, seq, state, 3000, NULL, 1000, NULL), SNAP_OK, "%s",
                   snap_error_message());
  }
  long long per = pgs_chunk_rows(&p) / 6;
  cr_assert(per > 10 && pgs_chunk_rows(&p) == 6 * per, "retention keeps 2 streams per pid: %lld",
            pgs_chunk_rows(&p));
  /* An ordinary save over a streamed (pid, seq) deletes that stream's rows. */
  cr_assert_eq(snap_save(st, pgs_pids[0], 4, SNAP_FORMAT_JSON, "[4]", 3, NULL, NULL), SNAP_OK);
  cr_assert_eq(pgs_chunk_rows(&p), 5 * per);
  /* A stream over a streamed (pid, seq) replaces its rows. */
  cr_assert_eq(su_stream_save(st, pgs_pids[1], 4, state, 3000, NULL, 1000, NULL), SNAP_OK);
  cr_assert_eq(pgs_chunk_rows(&p), 5 * per);
  cr_assert_eq(snap_delete(st, pgs_pids[1], INT64_MAX), SNAP_OK);
  cr_assert_eq(pgs_chunk_rows(&p), 3 * per);
  cr_assert_eq(snap_delete_one(st, pgs_pids[2], 4), SNAP_OK);
  cr_assert_eq(pgs_chunk_rows(&p), 2 * per);
  cr_assert_eq(pgs_latest_seq(st, pgs_pids[1]), -1);
  cr_assert_eq(pgs_latest_seq(st, pgs_pids[2]), 3);
  free(state);
  snap_store_close(st);
}

Test(pgstreams, retention_deletes_and_replaces_take_the_chunk_rows_along) { retention_on(1); }

Test(pgstreams, retention_deletes_and_replaces_on_three_shards) { retention_on(3); }

/* A restore of the tables alone (pg_dump -t never dumps functions) brings
 * them back without the trigger function and its two triggers, which take a
 * deleted or pruned streamed row's chunk rows along. A read-only open still
 * reads such a store; the next open that may write puts them back. */
static void lost_triggers_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "");
  char *state = su_state_of(3000, 'g');
  for (int i = 0; i < nshards; i++)
    cr_assert_eq(su_stream_save(st, pgs_pids[i], 1, state, 3000, NULL, 1000, NULL), SNAP_OK, "%s",
                 snap_error_message());
  snap_store_close(st);
  const char *triggers = "SELECT count(*) FROM pg_trigger WHERE tgrelid = '\"{T}\"'::regclass "
                         "AND NOT tgisinternal";
  cr_assert_eq(pgs_on_shards(&p, triggers), 2 * nshards);
  cr_assert_eq(pgs_on_shards(&p, "DROP FUNCTION \"{T}_unchunk\"() CASCADE"), 0);
  cr_assert_eq(pgs_on_shards(&p, triggers), 0);

  char doc[4400];
  snprintf(doc, sizeof doc, "{\"backend\": \"postgres\", \"config\": %s}", p.cfg);
  snap_plugin *ro = NULL;
  cr_assert_eq(snap_plugin_open_ex(&ro, doc, NULL, SNAP_PLUGIN_NO_CREATE | SNAP_PLUGIN_NO_EXECUTOR),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(pgs_latest_seq(snap_plugin_store(ro), pgs_pids[0]), 1, "read-only: it reads");
  snap_plugin_close(ro);
  cr_assert_eq(pgs_on_shards(&p, triggers), 0, "read-only: nothing created");

  st = pgs_reopen_ok(&p);
  for (int i = 0; i < nshards; i++) /* a shard is opened by its first use */
    cr_assert_eq(pgs_latest_seq(st, pgs_pids[i]), 1);
  cr_assert_eq(pgs_on_shards(&p, triggers), 2 * nshards, "the open put the triggers back");
  cr_assert_gt(pgs_chunk_rows(&p), 0);
  for (int i = 0; i < nshards; i++)
    cr_assert_eq(snap_delete(st, pgs_pids[i], INT64_MAX), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(pgs_chunk_rows(&p), 0, "the chunk rows went with their rows");
  free(state);
  snap_store_close(st);
}

Test(pgstreams, lost_stream_triggers_are_put_back_by_the_next_open_on_one_server) {
  lost_triggers_on(1);
}

Test(pgstreams, lost_stream_triggers_are_put_back_by_the_next_open_on_three_shards) {
  lost_triggers_on(3);
}

/* ---- refusals and limits ------------------------------------------------------ */

/* On three shards: a raw put refuses a head and a migration not on its way
 * leaves it alone, changing nothing; a load beyond the reader's limit names the stream
 * reader, which reads it; a body decode reads the chunks. */
Test(pgstreams, refusals_and_the_readers_limit_on_three_shards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, 3, "");
  char *state = su_state_of(5000, 'o');
  for (int i = 0; i < 3; i++) {
    const char *pid = pgs_pids[i];
    cr_assert_eq(su_stream_save(st, pid, 1, state, 5000, NULL, 5000, NULL), SNAP_OK);
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(st, pid, NULL, -1, 10, true, &page), SNAP_OK);
    cr_assert_eq(page.n, 1);
    const snap_entry *e = &page.entries[0];
    snap_raw_row raw = {"q", 1, 5, e->body, e->stored_len, SNAP_OK};
    cr_assert_eq(snap_store_put_raw(st, &raw, 1), SNAP_EUNSUPPORTED);
    cr_assert_eq(pgs_latest_seq(st, "q"), -1);
    snap_rewrite mig = {pid, 1, e->body, e->stored_len, SNAP_OK, 0, 0, 0};
    /* A head stating no manifest is not on the way to T/2: left alone, as a
     * body would be. (Rewrites of streams: test_postgres_stream_rewrite.c.) */
    (void)snap_store_migrate(st, &mig, 1, "T/2", NULL);
    cr_assert_eq(mig.status, SNAP_OK, "%d", mig.status);
    cr_assert_eq(mig.outcome, SNAP_REWRITE_SKIPPED, "%d", mig.outcome);
    snap_buf out = SNAP_BUF_INIT;
    snap_format fmt;
    cr_assert_eq(snap_store_decode(st, pid, 1, e->body, e->stored_len, NULL, &out, &fmt, NULL),
                 SNAP_OK, "%s", snap_error_message());
    cr_assert(out.len == 5000 && memcmp(out.data, state, 5000) == 0);
    snap_buf_dispose(&out);
    snap_entry_page_dispose(&page);
    snap_options *small = NULL;
    cr_assert_eq(snap_options_new(&small), SNAP_OK);
    cr_assert_eq(snap_options_set_limits(small, 0, 4096), SNAP_OK);
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_latest(st, pid, small, &s), SNAP_ETOOBIG);
    cr_assert(strstr(snap_error_message(), "snap_load_stream_open"), "%s", snap_error_message());
    char *back = NULL;
    size_t len = 0;
    cr_assert_eq(su_stream_load(st, pid, small, 0, &back, &len, NULL), SNAP_OK, "%s",
                 snap_error_message());
    cr_assert(len == 5000 && memcmp(back, state, len) == 0, "the stream is as it was");
    free(back);
    snap_options_free(small);
  }
  free(state);
  snap_store_close(st);
}

/* ---- copies ---------------------------------------------------------------- */

/* A streamed snapshot copied record by record from one server to three
 * shards, then to a memory store: each copy loads as the original. */
Test(pgstreams, copies_take_the_chunk_rows_along) {
  pgfx f = pgs_shared();
  pgs_store one, three;
  snap_store *src = pgs_open_ok(&one, &f, 1, "");
  snap_store *dst = pgs_open_ok(&three, &f, 3, "");
  snap_store *mem = NULL;
  cr_assert_eq(snap_store_open_backend(&mem, snap_backend_memory(), "{}"), SNAP_OK);
  char *state = su_state_of(9000, 'c');
  for (int i = 0; i < 3; i++) {
    snap_save_ext x = {.manifest = "T/1"};
    snap_save_stream *w = NULL;
    cr_assert_eq(snap_save_stream_begin(src, pgs_pids[i], 4, 77, SNAP_FORMAT_JSON, NULL, &x,
                                        SU_CHUNK, &w),
                 SNAP_OK);
    cr_assert_eq(snap_save_stream_write(w, state, 9000), SNAP_OK);
    cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(src, pgs_pids[i], NULL, -1, 1, true, &page), SNAP_OK);
    cr_assert_eq(page.n, 1);
    const snap_entry *e = &page.entries[0];
    cr_assert_eq(snap_store_copy_stream(src, dst, pgs_pids[i], 4, e->timestamp, e->body,
                                        e->stored_len),
                 SNAP_OK, "%s", snap_error_message());
    snap_entry_page_dispose(&page);
    cr_assert_eq(snap_store_list(dst, pgs_pids[i], NULL, -1, 1, true, &page), SNAP_OK);
    e = &page.entries[0];
    cr_assert_eq(snap_store_copy_stream(dst, mem, pgs_pids[i], 4, e->timestamp, e->body,
                                        e->stored_len),
                 SNAP_OK, "%s", snap_error_message());
    snap_entry_page_dispose(&page);
    snap_store *both[2] = {dst, mem};
    for (int k = 0; k < 2; k++) {
      snap_snapshot *s = NULL;
      cr_assert_eq(snap_load_manifest(both[k], pgs_pids[i], &SNAP_CRITERIA_LATEST, "T/1", NULL, &s),
                   SNAP_OK, "%s", snap_error_message());
      cr_assert(s != NULL && s->seq == 4 && s->timestamp == 77 && s->len == 9000 &&
                memcmp(s->data, state, 9000) == 0);
      snap_snapshot_free(s);
    }
  }
  cr_assert_eq(pgs_chunk_rows(&three), pgs_chunk_rows(&one));
  free(state);
  snap_store_close(mem);
  snap_store_close(dst);
  snap_store_close(src);
}

/* ---- crashes and leases ------------------------------------------------------ */

/* Writes a JSON array of `pieces` pieces of 4 KiB into `w` (left open). */
static int write_array(snap_save_stream *w, int pieces) {
  char piece[4096];
  for (size_t j = 0; j < sizeof piece; j += 2) {
    piece[j] = ',';
    piece[j + 1] = '2';
  }
  int rc = snap_save_stream_write(w, "[1", 2);
  for (int i = 0; i < pieces && rc == SNAP_OK; i++)
    rc = snap_save_stream_write(w, piece, sizeof piece);
  return rc;
}

/* A child streams into the store and is killed with SIGKILL mid-stream: no
 * snapshot appears, its staging stays listed until a sweep (`by_open`
 * false) or the first connection of a store opened later reclaims it,
 * chunks included. */
static void client_killed_on(int nshards, bool by_open) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "");
  const char *pid = pgs_pids[nshards - 1];
  cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  int ready[2];
  cr_assert_eq(pipe(ready), 0);
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0) {
    close(ready[0]);
    snap_store *cs = pgs_reopen_ok(&p);
    snap_save_stream *w = NULL;
    if (snap_save_stream_begin(cs, pid, 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL, NULL,
                               0, &w) != SNAP_OK)
      _exit(2);
    /* 68 MiB: the first staging transactions committed and acknowledged */
    if (write_array(w, 17000) != SNAP_OK)
      _exit(3);
    if (write(ready[1], "x", 1) != 1)
      _exit(4);
    for (;;)
      pause(); /* killed here, mid-stream */
  }
  close(ready[1]);
  char b;
  cr_assert_eq(read(ready[0], &b, 1), 1, "the child reached mid-stream");
  close(ready[0]);
  cr_assert_eq(kill(child, SIGKILL), 0);
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFSIGNALED(status));
  cr_assert_eq(pgs_staged(&p), 1, "the killed writer's staging is listed");
  cr_assert(pgs_chunk_rows(&p) > 0, "and some of its chunks committed");
  cr_assert_eq(pgs_latest_seq(st, pid), 1, "no snapshot of the killed stream");
  if (by_open) {
    /* A store's first connection to a shard reclaims its orphans (a fresh
     * handle per try: the server notices the dead session within moments). */
    for (int i = 0; i < 100 && pgs_staged(&p) > 0; i++) {
      snap_store *again = pgs_reopen_ok(&p);
      cr_assert_eq(pgs_latest_seq(again, pid), 1);
      snap_store_close(again);
      if (pgs_staged(&p) > 0)
        usleep(100 * 1000);
    }
  } else {
    cr_assert_eq(pgs_sweep_until(st, 1), 1, "the orphan was reclaimed");
  }
  cr_assert_eq(pgs_staged(&p), 0);
  cr_assert_eq(pgs_chunk_rows(&p), 0);
  cr_assert_eq(pgs_latest_seq(st, pid), 1);
  cr_assert_eq(su_stream_save(st, pid, 3, "[3]", 3, NULL, 3, NULL), SNAP_OK);
  cr_assert_eq(pgs_latest_seq(st, pid), 3);
  snap_store_close(st);
}

Test(pgstreams, a_client_killed_mid_stream_leaves_nothing_and_the_next_open_reclaims_it,
     .timeout = 120) {
  client_killed_on(1, true);
}

Test(pgstreams, a_client_killed_mid_stream_on_three_shards_is_reclaimed_by_the_sweep,
     .timeout = 120) {
  client_killed_on(3, false);
}

/* Two stores: one writes a stream, the other sweeps meanwhile and must leave
 * the live staging alone; the stream then commits. A store opened later
 * reclaims a killed writer's staging on its first connection. */
Test(pgstreams, a_sweep_never_reclaims_a_live_writers_staging) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *a = pgs_open_ok(&p, &f, 1, "");
  snap_store *b = pgs_reopen_ok(&p);
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(a, "p", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, SU_CHUNK, &w),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(write_array(w, 8), SNAP_OK);
  uint64_t n = 9;
  cr_assert_eq(snap_store_stream_sweep(b, 1000, &n), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(n, 0);
  cr_assert_eq(snap_store_stream_sweep(a, 1000, &n), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(n, 0, "not even the writer's own store takes it");
  cr_assert_eq(snap_save_stream_write(w, "]", 1), SNAP_OK);
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(pgs_latest_seq(b, "p"), 1);
  cr_assert_eq(pgs_staged(&p), 0);
  snap_store_close(a);
  snap_store_close(b);
}

/* The server of a store killed mid-stream (its own cluster): the stream
 * fails, nothing is visible, the snapshot before still loads, the store
 * works after the restart on the same handle, and the staging left over is
 * reclaimed (the restart ended the session that held its lease). */
static pgfx own;

static void remove_own(void) { pgfx_destroy(&own); }

Test(pgstreams, a_server_killed_mid_stream_leaves_nothing_visible_and_the_store_recovers,
     .timeout = 300, .fini = remove_own) {
  char err[512];
  cr_assert_eq(pgfx_start(&own, 1, err, sizeof err), 0, "%s", err);
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &own, 1, "\"connect_timeout_ms\": 2000");
  char *state = su_state_of(100000, 'q');
  cr_assert_eq(su_stream_save(st, "p", 1, state, 100000, NULL, 4096, NULL), SNAP_OK, "%s",
               snap_error_message());
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "p", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, 0, &w),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(write_array(w, 4096), SNAP_OK, "%s", snap_error_message());
  int crash = pgfx_stop(&own, true, err, sizeof err);
  cr_assert_eq(crash, 0, "%s", err);
  int rc = write_array(w, 4096);
  if (rc == SNAP_OK)
    rc = snap_save_stream_write(w, "]", 1);
  if (rc == SNAP_OK)
    rc = snap_save_stream_commit(w, NULL);
  else
    snap_save_stream_abort(w);
  cr_assert_neq(rc, SNAP_OK, "a stream whose server died cannot commit");
  cr_assert_eq(pgfx_restart(&own, err, sizeof err), 0, "%s", err);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s != NULL && s->seq == 1 && s->len == 100000 && memcmp(s->data, state, 100000) == 0);
  snap_snapshot_free(s);
  cr_assert_eq(pgs_staged(&p), 1, "the staging survived the crash, invisible");
  cr_assert_eq(pgs_sweep_until(st, 1), 1);
  cr_assert_eq(pgs_staged(&p), 0);
  cr_assert_eq(su_stream_save(st, "p", 3, state, 100000, NULL, 4096, NULL), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(pgs_latest_seq(st, "p"), 3);
  free(state);
  snap_store_close(st);
}

/* ---- bounded memory --------------------------------------------------------- */

/* 1 GiB of JSON streamed into PostgreSQL and read back: the process's peak
 * resident set grows by no more than 64 MiB. */
Test(pgstreams, a_gibibyte_streams_in_and_out_with_bounded_memory) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, 1, "\"statement_timeout_ms\": 0");
  uint64_t written = 0;
  long growth = 0;
  char why[512];
  cr_assert_eq(su_big_round_trip(st, "big", (uint64_t)1 << 30, &written, &growth, why, sizeof why),
               SNAP_OK, "%s", why);
  cr_log_info("1 GiB stream save + load on postgres: peak RSS growth %ld KiB, %lld chunk rows "
              "for %llu KiB of state",
              growth, pgs_chunk_rows(&p), (unsigned long long)written / 1024);
  cr_assert(growth <= 64 * 1024, "peak RSS grew by %ld KiB", growth);
  snap_store_close(st);
}
