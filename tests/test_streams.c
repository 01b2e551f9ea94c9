/* Streamed saves and loads through the store (snap/store_stream.h) on the
 * memory and sqlite backends: round trips of every size class and stage
 * combination, visibility only after the commit, aborts, retention and
 * deletes taking the chunks along, the reader's limit, fallback rules,
 * damaged chunk files, kill -9 mid-stream with orphan reclamation, a live
 * writer's staging left alone, and ENOSPC on a tmpfs. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <sqlite3.h>

#include "snap/admin.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"
#include "store_util.h"
#include "stream_util.h"

#define CHUNK SU_CHUNK

/* ---- helpers ------------------------------------------------------------- */

static snap_store *open_on(const snap_backend *be, const char *dir, const char *extra) {
  snap_store *st = su_store(be, dir, extra);
  cr_assert_not_null(st);
  return st;
}

static int64_t latest_seq(snap_store *st, const char *pid) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, pid, NULL, &s);
  cr_assert_eq(rc, SNAP_OK, "%s", snap_error_message());
  int64_t seq = s ? s->seq : -1;
  snap_snapshot_free(s);
  return seq;
}

/* ---- round trips ----------------------------------------------------------- */

static void round_trips_on(const snap_backend *be) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(be, dir, "\"keep\": 0");
  snap_keyring *kr = su_keyring(0x42);
  /* 1 byte, exactly one chunk, one byte over, many chunks. */
  const size_t sizes[] = {1, CHUNK, CHUNK + 1, CHUNK * 37 + 5, 70000};
  int64_t seq = 1;
  for (int c = 0; c < 4; c++) {
    snap_options *o = su_combo(c, kr);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++, seq++) {
      char *state = su_state_of(sizes[k], (char)('a' + k));
      snap_meta m;
      int rc = su_stream_save(st, "p", seq, state, sizes[k], o, k % 2 ? 13 : 4096, &m);
      cr_assert_eq(rc, SNAP_OK, "%s combo %d size %zu: %s", be->name, c, sizes[k],
                   snap_error_message());
      cr_assert_eq(m.seq, seq);
      cr_assert_eq(m.state_len, sizes[k]);
      /* snap_load_latest() reads it whole... */
      snap_snapshot *s = NULL;
      cr_assert_eq(snap_load_latest(st, "p", o, &s), SNAP_OK, "%s", snap_error_message());
      cr_assert_not_null(s);
      cr_assert_eq(s->seq, seq);
      cr_assert_eq(s->len, sizes[k], "%s combo %d: %zu != %zu", be->name, c, s->len, sizes[k]);
      cr_assert(memcmp(s->data, state, sizes[k]) == 0);
      cr_assert_eq(s->stages, m.stages);
      snap_snapshot_free(s);
      /* ... and so does a stream reader, in pieces. */
      char *back = NULL;
      size_t len = 0;
      snap_stream_meta sm;
      cr_assert_eq(su_stream_load(st, "p", o, 0, &back, &len, &sm), SNAP_OK, "%s",
                   snap_error_message());
      cr_assert(sm.streamed && sm.seq == seq && sm.length == sizes[k]);
      cr_assert(len == sizes[k] && memcmp(back, state, len) == 0, "%s combo %d size %zu",
                be->name, c, sizes[k]);
      free(back);
      free(state);
    }
    snap_options_free(o);
  }
  snap_store_close(st);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

Test(streams, round_trips_of_every_size_class_and_stage_combination_on_memory) {
  round_trips_on(snap_backend_memory());
}

Test(streams, round_trips_of_every_size_class_and_stage_combination_on_sqlite) {
  round_trips_on(snap_backend_sqlite());
}

/* ---- visibility ---------------------------------------------------------- */

static void visibility_on(const snap_backend *be) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(be, dir, "\"keep\": 0");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  char *state = su_state_of(5000, 'k');
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "p", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, CHUNK, &w),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save_stream_write(w, state, 5000), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save_stream_written(w), 5000);
  /* Staged, not published: loads and enumeration see the old state. */
  cr_assert_eq(latest_seq(st, "p"), 1);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, "p", NULL, -1, 10, false, &page), SNAP_OK);
  cr_assert_eq(page.n, 1);
  snap_entry_page_dispose(&page);
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(latest_seq(st, "p"), 2);

  /* An aborted save changes nothing visible. */
  cr_assert_eq(snap_save_stream_begin(st, "p", 3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, CHUNK, &w),
               SNAP_OK);
  cr_assert_eq(snap_save_stream_write(w, state, 5000), SNAP_OK);
  snap_save_stream_abort(w);
  cr_assert_eq(latest_seq(st, "p"), 2);
  /* Nor a malformed one (the state stops mid-string), nor an empty one. */
  cr_assert_eq(su_stream_save(st, "p", 4, state, 4999, NULL, 512, NULL), SNAP_EFORMAT);
  cr_assert_eq(su_stream_save(st, "p", 5, state, 0, NULL, 512, NULL), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "empty"), "%s", snap_error_message());
  cr_assert_eq(latest_seq(st, "p"), 2);
  /* Invalid JSON fails at the write that shows it, and stays failed. */
  cr_assert_eq(snap_save_stream_begin(st, "p", 6, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, CHUNK, &w),
               SNAP_OK);
  cr_assert_eq(snap_save_stream_write(w, "{]", 2), SNAP_EFORMAT);
  cr_assert_eq(snap_save_stream_write(w, "1", 1), SNAP_EFORMAT);
  cr_assert_neq(snap_save_stream_commit(w, NULL), SNAP_OK);
  cr_assert_eq(latest_seq(st, "p"), 2);
  if (be == snap_backend_sqlite())
    cr_assert_eq(su_chunk_files(dir), 1, "only the published stream's file is left");
  free(state);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(streams, a_stream_is_visible_only_after_its_commit_and_aborts_change_nothing_on_memory) {
  visibility_on(snap_backend_memory());
}

Test(streams, a_stream_is_visible_only_after_its_commit_and_aborts_change_nothing_on_sqlite) {
  visibility_on(snap_backend_sqlite());
}

/* Conditional streamed saves follow SNAP_SAVE_IF_LATEST; manifests and
 * metadata travel in the head. */
Test(streams, conditions_manifests_and_metadata_apply_to_streams) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(snap_backend_sqlite(), dir, "\"keep\": 0");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  snap_save_ext x = {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = 0, .manifest = "T/2",
                     .metadata = "md", .metadata_len = 2};
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "p", 2, 1234, SNAP_FORMAT_JSON, NULL, &x, CHUNK, &w),
               SNAP_OK);
  cr_assert_eq(snap_save_stream_write(w, "[2]", 3), SNAP_OK);
  snap_meta m;
  cr_assert_eq(snap_save_stream_commit(w, &m), SNAP_ECONFLICT);
  cr_assert_eq(m.current_seq, 1);
  cr_assert_eq(su_chunk_files(dir), 0, "a conflicting stream leaves no file");
  x.expected_seq = 1;
  cr_assert_eq(snap_save_stream_begin(st, "p", 2, 1234, SNAP_FORMAT_JSON, NULL, &x, CHUNK, &w),
               SNAP_OK);
  cr_assert_eq(snap_save_stream_write(w, "[2]", 3), SNAP_OK);
  cr_assert_eq(snap_save_stream_commit(w, &m), SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_manifest(st, "p", &SNAP_CRITERIA_LATEST, "T/2", NULL, &s), SNAP_OK,
               "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->timestamp, 1234);
  cr_assert_str_eq(s->manifest, "T/2");
  cr_assert(s->metadata_len == 2 && memcmp(s->metadata, "md", 2) == 0);
  cr_assert_str_eq((const char *)s->data, "[2]");
  snap_snapshot_free(s);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* ---- retention, delete, replace ------------------------------------------ */

Test(streams, retention_deletes_and_replaces_take_the_chunk_files_along) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(snap_backend_sqlite(), dir, "\"keep\": 2");
  char *state = su_state_of(3000, 'r');
  for (int64_t seq = 1; seq <= 4; seq++)
    cr_assert_eq(su_stream_save(st, "p", seq, state, 3000, NULL, 1000, NULL), SNAP_OK, "%s",
                 snap_error_message());
  cr_assert_eq(su_chunk_files(dir), 2, "retention keeps 2 streams and their files");
  /* An ordinary save over a streamed (pid, seq) drops that stream's file. */
  cr_assert_eq(snap_save(st, "p", 4, SNAP_FORMAT_JSON, "[4]", 3, NULL, NULL), SNAP_OK);
  cr_assert_eq(su_chunk_files(dir), 1);
  cr_assert_eq(su_stream_save(st, "q", 1, state, 3000, NULL, 1000, NULL), SNAP_OK);
  cr_assert_eq(snap_delete(st, "p", INT64_MAX), SNAP_OK);
  cr_assert_eq(su_chunk_files(dir), 1, "q's stream stays");
  cr_assert_eq(snap_delete_one(st, "q", 1), SNAP_OK);
  cr_assert_eq(su_chunk_files(dir), 0);
  cr_assert_eq(latest_seq(st, "p"), -1);
  free(state);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(streams, retention_applies_to_streams_on_memory) {
  snap_store *st = open_on(snap_backend_memory(), NULL, "\"keep\": 1");
  char *state = su_state_of(3000, 'r');
  for (int64_t seq = 1; seq <= 3; seq++)
    cr_assert_eq(su_stream_save(st, "p", seq, state, 3000, NULL, 1000, NULL), SNAP_OK);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, "p", NULL, -1, 10, false, &page), SNAP_OK);
  cr_assert_eq(page.n, 1);
  cr_assert_eq(page.entries[0].seq, 3);
  snap_entry_page_dispose(&page);
  free(state);
  snap_store_close(st);
}

/* ---- limits and fallback --------------------------------------------------- */

Test(streams, load_reads_a_stream_within_its_limit_and_names_the_reader_beyond_it) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(snap_backend_sqlite(), dir, "");
  char *state = su_state_of(5000, 'l');
  cr_assert_eq(su_stream_save(st, "p", 1, state, 5000, NULL, 5000, NULL), SNAP_OK);
  snap_options *small = NULL;
  cr_assert_eq(snap_options_new(&small), SNAP_OK);
  cr_assert_eq(snap_options_set_limits(small, 0, 4096), SNAP_OK);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", small, &s), SNAP_ETOOBIG);
  cr_assert_null(s);
  cr_assert(strstr(snap_error_message(), "snap_load_stream_open"), "%s", snap_error_message());
  /* The stream reader is not bound by it: it never holds the state. */
  char *back = NULL;
  size_t len = 0;
  cr_assert_eq(su_stream_load(st, "p", small, 0, &back, &len, NULL), SNAP_OK, "%s",
               snap_error_message());
  cr_assert(len == 5000 && memcmp(back, state, len) == 0);
  free(back);
  snap_options_free(small);
  free(state);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(streams, a_stream_reader_reads_ordinary_bodies_and_none_is_not_an_error) {
  snap_store *st = open_on(snap_backend_memory(), NULL, "");
  char *back = NULL;
  size_t len = 0;
  snap_stream_meta m;
  cr_assert_eq(su_stream_load(st, "p", NULL, 0, &back, &len, &m), SNAP_OK);
  cr_assert_null(back);
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "{\"a\":[1,2,3]}", 13, NULL, NULL),
               SNAP_OK);
  cr_assert_eq(su_stream_load(st, "p", NULL, SNAP_LOAD_STREAM_VERIFY_FIRST, &back, &len, &m),
               SNAP_OK);
  cr_assert(!m.streamed && m.seq == 3 && m.length == 13);
  cr_assert(len == 13 && memcmp(back, "{\"a\":[1,2,3]}", 13) == 0);
  free(back);
  snap_load_stream *r = NULL;
  cr_assert_eq(snap_load_stream_open(st, "p", &SNAP_CRITERIA_LATEST, NULL, 0x80, &r, NULL),
               SNAP_EINVAL);
  cr_assert_null(r);
  snap_store_close(st);
}

/* The path of the chunk file of (pid, seq), read from its row. */
static char *file_of_row(const char *dir, const char *pid, int64_t seq) {
  char *db_path = st_join(dir, "t.db");
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT stream FROM snapshots WHERE pid = ?1 AND seq = ?2",
                                  -1, &q, NULL),
               SQLITE_OK);
  sqlite3_bind_text(q, 1, pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, seq);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  char path[2048];
  snprintf(path, sizeof path, "%s/t.db.streams/%s", dir, (const char *)sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(db);
  free(db_path);
  return strdup(path);
}

static void copy_file(const char *from, const char *to) {
  uint8_t *data = NULL;
  size_t len = 0;
  cr_assert(st_read_file(from, &data, &len));
  FILE *f = fopen(to, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
  free(data);
}

/* Seq 1 and 2 streamed with the same length; then seq 2's chunk file is
 * replaced by seq 1's (a swap between snapshots) or truncated. */
static void damaged_stream_rules(int c, bool truncate_it) {
  char *dir = st_tmpdir();
  snap_keyring *kr = su_keyring(0x17);
  snap_options *o = su_combo(c, kr);
  char cfg[64];
  snprintf(cfg, sizeof cfg, "\"keep\": 0");
  snap_store *st = open_on(snap_backend_sqlite(), dir, cfg);
  char *one = su_state_of(4000, 'a'), *two = su_state_of(4000, 'b');
  cr_assert_eq(su_stream_save(st, "p", 1, one, 4000, o, 4000, NULL), SNAP_OK);
  cr_assert_eq(su_stream_save(st, "p", 2, two, 4000, o, 4000, NULL), SNAP_OK);
  char *f1 = file_of_row(dir, "p", 1), *f2 = file_of_row(dir, "p", 2);
  if (truncate_it)
    cr_assert_eq(truncate(f2, 200), 0);
  else
    copy_file(f1, f2);
  bool keyed = c == 2 || c == 3;
  int want = keyed ? SNAP_EAUTH : SNAP_ECORRUPT;
  /* snap_load() assembles the whole state before returning: damage is
   * caught before any byte is delivered, so an unkeyed reader falls back to
   * seq 1 as for any damaged body, and a keyed one fails (never a fallback
   * on an authentication failure). */
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, "p", o, &s);
  if (keyed) {
    cr_assert_eq(rc, SNAP_EAUTH, "combo %d: %d %s", c, rc, snap_error_message());
    cr_assert_null(s);
  } else {
    cr_assert_eq(rc, SNAP_OK, "%s", snap_error_message());
    cr_assert(s != NULL && s->seq == 1 && s->skipped == 1);
    snap_snapshot_free(s);
  }
  /* A plain stream reader has delivered bytes before it finds the damage:
   * the read fails, and the caller must discard what it read. */
  char *back = NULL;
  size_t len = 0;
  snap_stream_meta m;
  rc = su_stream_load(st, "p", o, 0, &back, &len, &m);
  cr_assert_eq(rc, want, "combo %d: %d %s", c, rc, snap_error_message());
  cr_assert_eq(m.seq, 2);
  free(back);
  /* Verify-first checks every chunk before the first byte: damage then
   * falls back like a damaged body (unkeyed), or fails before delivering
   * anything (keyed). */
  rc = su_stream_load(st, "p", o, SNAP_LOAD_STREAM_VERIFY_FIRST, &back, &len, &m);
  if (keyed) {
    cr_assert_eq(rc, SNAP_EAUTH, "combo %d: %s", c, snap_error_message());
    cr_assert_null(back);
  } else {
    cr_assert_eq(rc, SNAP_OK, "%s", snap_error_message());
    cr_assert(m.seq == 1 && m.skipped == 1 && m.skip_reason == SNAP_ECORRUPT);
    cr_assert(len == 4000 && memcmp(back, one, len) == 0);
  }
  free(back);
  free(f1);
  free(f2);
  free(one);
  free(two);
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(streams, a_chunk_file_swapped_between_snapshots_is_detected_plain) {
  damaged_stream_rules(0, false);
}
Test(streams, a_chunk_file_swapped_between_snapshots_is_detected_aead) {
  damaged_stream_rules(2, false);
}
Test(streams, a_chunk_file_swapped_between_snapshots_is_detected_mac) {
  damaged_stream_rules(3, false);
}
Test(streams, a_truncated_chunk_file_is_detected_plain) { damaged_stream_rules(0, true); }
Test(streams, a_truncated_chunk_file_is_detected_zlib_aead) { damaged_stream_rules(2, true); }

/* ---- the other operations ---------------------------------------------------- */

/* The head of the newest snapshot of `pid`, as snap_store_list() gives it. */
static snap_entry_page head_of(snap_store *st, const char *pid) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, pid, NULL, -1, 100, true, &page), SNAP_OK);
  cr_assert(page.n > 0);
  return page;
}

/* A listing states a stream's chunk records and their bytes from its head,
 * without reading a chunk (snap_entry.streamed, chunk_count, stream_bytes),
 * listed with or without bodies; an ordinary body states none. */
Test(streams, a_listing_states_a_streams_chunks_and_their_bytes) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(snap_backend_sqlite(), dir, "\"keep\": 0");
  char *state = su_state_of(SU_CHUNK * 5 + 3, 'l');
  snap_meta m;
  cr_assert_eq(su_stream_save(st, "p", 1, state, SU_CHUNK * 5 + 3, NULL, 100, &m), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, "{}", 2, NULL, NULL), SNAP_OK);
  for (int bodies = 0; bodies < 2; bodies++) {
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(st, "p", NULL, -1, 10, bodies, &page), SNAP_OK);
    cr_assert_eq(page.n, 2u);
    const snap_entry *e = &page.entries[0], *o = &page.entries[1];
    cr_assert(e->streamed && e->chunk_count == 6, "chunks %llu",
              (unsigned long long)e->chunk_count);
    cr_assert_eq(e->orig_len, SU_CHUNK * 5 + 3);
    /* The head and the records are what the commit said it stored. */
    cr_assert_eq(e->stored_len + e->stream_bytes, m.stored_len, "%zu + %llu != %zu",
                 e->stored_len, (unsigned long long)e->stream_bytes, m.stored_len);
    cr_assert(!o->streamed && o->chunk_count == 0 && o->stream_bytes == 0);
    snap_entry_page_dispose(&page);
  }
  free(state);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* Rewrites and migrations of a stream: tests/test_stream_rewrite.c. */
Test(streams, raw_puts_refuse_a_head_and_change_nothing) {
  snap_store *st = open_on(snap_backend_memory(), NULL, "");
  char *state = su_state_of(1000, 'o');
  cr_assert_eq(su_stream_save(st, "p", 1, state, 1000, NULL, 1000, NULL), SNAP_OK);
  snap_entry_page page = head_of(st, "p");
  const snap_entry *e = &page.entries[0];
  /* A raw put would store a head without its chunks. */
  snap_raw_row raw = {"q", 1, 5, e->body, e->stored_len, SNAP_OK};
  cr_assert_eq(snap_store_put_raw(st, &raw, 1), SNAP_EUNSUPPORTED);
  cr_assert_eq(raw.status, SNAP_EUNSUPPORTED);
  cr_assert(strstr(snap_error_message(), "streamed snapshot"), "%s", snap_error_message());
  cr_assert_eq(latest_seq(st, "q"), -1);
  /* What a body decode of it gives is the state, read with its chunks. */
  snap_buf out = SNAP_BUF_INIT;
  snap_format fmt;
  cr_assert_eq(snap_store_decode(st, "p", 1, e->body, e->stored_len, NULL, &out, &fmt, NULL),
               SNAP_OK, "%s", snap_error_message());
  cr_assert(out.len == 1000 && memcmp(out.data, state, 1000) == 0);
  snap_buf_dispose(&out);
  char *back = NULL;
  size_t len = 0;
  cr_assert_eq(su_stream_load(st, "p", NULL, 0, &back, &len, NULL), SNAP_OK);
  cr_assert(len == 1000 && memcmp(back, state, len) == 0, "the stream is as it was");
  free(back);
  snap_entry_page_dispose(&page);
  free(state);
  snap_store_close(st);
}

/* A stream copied to another store record by record, then a backup that
 * takes its chunk file along. */
Test(streams, copies_and_backups_take_the_chunks_along) {
  char *dir = st_tmpdir(), *dir2 = st_tmpdir();
  snap_store *src = open_on(snap_backend_memory(), NULL, "");
  snap_store *dst = open_on(snap_backend_sqlite(), dir, "");
  char *state = su_state_of(9000, 'c');
  snap_save_ext x = {.manifest = "T/1"};
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(src, "p", 4, 77, SNAP_FORMAT_JSON, NULL, &x, CHUNK, &w),
               SNAP_OK);
  cr_assert_eq(snap_save_stream_write(w, state, 9000), SNAP_OK);
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK);
  snap_entry_page page = head_of(src, "p");
  const snap_entry *e = &page.entries[0];
  cr_assert_eq(snap_store_copy_stream(src, dst, "p", 4, e->timestamp, e->body, e->stored_len),
               SNAP_OK, "%s", snap_error_message());
  /* An ordinary body is not a head. */
  cr_assert_eq(snap_store_copy_stream(src, dst, "p", 4, 1, "{}", 2), SNAP_EINVAL);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_manifest(dst, "p", &SNAP_CRITERIA_LATEST, "T/1", NULL, &s), SNAP_OK,
               "%s", snap_error_message());
  cr_assert(s != NULL && s->seq == 4 && s->timestamp == 77 && s->len == 9000 &&
            memcmp(s->data, state, 9000) == 0);
  snap_snapshot_free(s);
  char *bk = st_join(dir2, "backup.db");
  cr_assert_eq(snap_store_backup(dst, bk), SNAP_OK, "%s", snap_error_message());
  snap_store_close(dst);
  /* The source's files go; the backup still loads its stream. */
  st_rmtree(dir);
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\"}", bk);
  snap_store *b = NULL;
  cr_assert_eq(snap_store_open_backend(&b, snap_backend_sqlite(), cfg), SNAP_OK);
  char *back = NULL;
  size_t len = 0;
  cr_assert_eq(su_stream_load(b, "p", NULL, SNAP_LOAD_STREAM_VERIFY_FIRST, &back, &len, NULL),
               SNAP_OK, "%s", snap_error_message());
  cr_assert(len == 9000 && memcmp(back, state, len) == 0);
  free(back);
  snap_store_close(b);
  free(bk);
  snap_entry_page_dispose(&page);
  free(state);
  snap_store_close(src);
  st_rmtree(dir2);
  free(dir);
  free(dir2);
}

/* ---- crashes, leases, full disks ------------------------------------------ */

/* A child streams into the store and is killed with SIGKILL mid-stream: no
 * snapshot appears, and the next open reclaims its staged file. */
Test(streams, a_writer_killed_mid_stream_leaves_nothing_visible_and_its_chunks_are_reclaimed) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(snap_backend_sqlite(), dir, "");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  snap_store_close(st);
  int ready[2];
  cr_assert_eq(pipe(ready), 0);
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0) {
    close(ready[0]);
    snap_store *cs = open_on(snap_backend_sqlite(), dir, "");
    snap_save_stream *w = NULL;
    if (snap_save_stream_begin(cs, "p", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL, NULL,
                               CHUNK, &w) != SNAP_OK)
      _exit(2);
    char piece[4096];
    memset(piece, '1', sizeof piece);
    piece[0] = '[';
    for (size_t i = 1; i < sizeof piece; i += 2)
      piece[i] = ',';
    piece[1] = '1';
    (void)snap_save_stream_write(w, "[1", 2);
    for (int i = 0; i < 64; i++) {
      memset(piece, ',', sizeof piece);
      for (size_t j = 1; j < sizeof piece; j += 2)
        piece[j] = '2';
      if (snap_save_stream_write(w, piece, sizeof piece) != SNAP_OK)
        _exit(3);
    }
    if (write(ready[1], "x", 1) != 1)
      _exit(4);
    for (;;)
      pause(); /* killed here, mid-stream */
  }
  close(ready[1]);
  char b;
  cr_assert_eq(read(ready[0], &b, 1), 1, "the child reached mid-stream");
  cr_assert_eq(su_chunk_files(dir), 1, "the child's staging exists");
  cr_assert_eq(kill(child, SIGKILL), 0);
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFSIGNALED(status));
  close(ready[0]);
  cr_assert_eq(su_chunk_files(dir), 1, "the orphan is there until someone opens the store");
  st = open_on(snap_backend_sqlite(), dir, "");
  cr_assert_eq(latest_seq(st, "p"), 1, "no snapshot of the killed stream");
  /* The first write opens the writer, which reclaims the orphan. */
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "[3]", 3, NULL, NULL), SNAP_OK);
  cr_assert_eq(su_chunk_files(dir), 0, "the orphan was reclaimed on open");
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* Two stores on one file: one writes a stream, the other sweeps meanwhile
 * and must leave the live staging alone; the stream then commits. */
Test(streams, a_sweep_never_reclaims_a_live_writers_staging) {
  char *dir = st_tmpdir();
  snap_store *a = open_on(snap_backend_sqlite(), dir, "");
  snap_store *b = open_on(snap_backend_sqlite(), dir, "");
  char *state = su_state_of(10000, 's');
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(a, "p", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, CHUNK, &w),
               SNAP_OK);
  cr_assert_eq(snap_save_stream_write(w, state, 5000), SNAP_OK);
  uint64_t n = 99;
  cr_assert_eq(snap_store_stream_sweep(b, 100, &n), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(n, 0);
  cr_assert_eq(su_chunk_files(dir), 1);
  cr_assert_eq(snap_save_stream_write(w, state + 5000, 5000), SNAP_OK);
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
  /* A published stream is not an orphan either. */
  cr_assert_eq(snap_store_stream_sweep(b, 100, &n), SNAP_OK);
  cr_assert_eq(n, 0);
  char *back = NULL;
  size_t len = 0;
  cr_assert_eq(su_stream_load(b, "p", NULL, 0, &back, &len, NULL), SNAP_OK);
  cr_assert(len == 10000 && memcmp(back, state, len) == 0);
  free(back);
  /* A file no writer holds and no row names is. */
  char *orphan = st_join(dir, "t.db.streams/snapshots.0123456789abcdef0123456789abcdef.chunks");
  copy_file(SNAP_TEST_DATA_DIR "/schema/README.md", orphan);
  cr_assert_eq(snap_store_stream_sweep(b, 100, &n), SNAP_OK);
  cr_assert_eq(n, 1);
  cr_assert_eq(access(orphan, F_OK), -1);
  cr_assert_eq(su_chunk_files(dir), 1);
  free(orphan);
  free(state);
  snap_store_close(a);
  snap_store_close(b);
  st_rmtree(dir);
  free(dir);
}

/* A private tmpfs of `kib` KiB on `dir` (a mount namespace of this test's
 * own process, so nothing outside sees it). False when this process can
 * have no mount namespace: an ordinary user where user namespaces are
 * refused (a chroot, or unprivileged_userns_clone off). */
static bool mount_tmpfs(const char *dir, unsigned kib) {
  if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    cr_assert_neq(geteuid(), 0, "root without a mount namespace: %s", strerror(errno));
    return false;
  }
  cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
  char opt[64];
  snprintf(opt, sizeof opt, "size=%uk", kib);
  cr_assert_eq(mount("tmpfs", dir, "tmpfs", 0, opt), 0, "mount tmpfs: %s", strerror(errno));
  return true;
}

Test(streams, a_full_disk_mid_stream_leaves_the_previous_snapshot_loadable) {
  char *dir = st_tmpdir();
  if (!mount_tmpfs(dir, 1024)) {
    st_rmtree(dir);
    free(dir);
    cr_skip_test("a full disk needs a private tmpfs mount, and this ordinary user may have no "
                 "mount namespace here; this test runs as root in CI");
  }
  snap_store *st = open_on(snap_backend_sqlite(), dir, "");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  size_t n = 4u << 20;
  char *state = su_state_of(n, 'f');
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "p", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, 0, &w),
               SNAP_OK);
  int rc = SNAP_OK;
  for (size_t at = 0; at < n && rc == SNAP_OK; at += 65536)
    rc = snap_save_stream_write(w, state + at, 65536);
  cr_assert_eq(rc, SNAP_EFULL, "%d: %s", rc, snap_error_message());
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_EFULL);
  cr_assert_eq(su_chunk_files(dir), 0, "the failed staging is gone");
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s != NULL && s->seq == 1 && strcmp((const char *)s->data, "[1]") == 0);
  snap_snapshot_free(s);
  /* With the space back, the store works on. */
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "[3]", 3, NULL, NULL), SNAP_OK);
  free(state);
  snap_store_close(st);
  cr_assert_eq(umount(dir), 0);
  st_rmtree(dir);
  free(dir);
}

/* ---- bounded memory --------------------------------------------------------- */

/* 1 GiB of JSON streamed in and out of sqlite: the process's peak resident
 * set grows by no more than 64 MiB (the state never sits in memory). */
Test(streams, a_gibibyte_streams_in_and_out_with_bounded_memory, .timeout = 300) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(snap_backend_sqlite(), dir, "");
  uint64_t written = 0;
  long growth = 0;
  char why[512];
  cr_assert_eq(su_big_round_trip(st, "big", (uint64_t)1 << 30, &written, &growth, why, sizeof why),
               SNAP_OK, "%s", why);
  /* The state went to its chunk file once, not through the WAL: the WAL
   * holds the head's row and stays small; the file holds the state and the
   * records' framing. */
  struct stat wal, chunks;
  char *wal_path = st_join(dir, "t.db-wal"), *file = file_of_row(dir, "big", 1);
  cr_assert_eq(stat(wal_path, &wal), 0);
  cr_assert_eq(stat(file, &chunks), 0);
  cr_log_info("1 GiB stream save + load: peak RSS growth %ld KiB, WAL %lld KiB, chunk file %lld "
              "KiB for %llu KiB of state",
              growth, (long long)wal.st_size / 1024, (long long)chunks.st_size / 1024,
              (unsigned long long)written / 1024);
  cr_assert(wal.st_size < (4 << 20), "the WAL grew to %lld bytes", (long long)wal.st_size);
  free(wal_path);
  free(file);
  cr_assert(growth <= 64 * 1024, "peak RSS grew by %ld KiB", growth);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}
