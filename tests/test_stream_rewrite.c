/* Re-encoding streamed snapshots in place (store/src/stream_rewrite.c,
 * backend ABI version 7's stream_replace()) on the memory and sqlite
 * backends: snap_store_rewrite() and snap_store_migrate() rewrite a stream
 * chunk by chunk, keep its timestamp, manifest and metadata, take the old
 * chunks away, leave it alone when a live writer replaced or deleted it,
 * refuse it on a backend without the slot, and a run killed midway leaves
 * the old snapshot loadable and an orphan that the sweep reclaims. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap/admin.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"
#include "store_util.h"
#include "stream_util.h"
#include "upcast_util.h"

#define CHUNK 4096u

static snap_store *open_on(const snap_backend *be, const char *dir) {
  snap_store *st = su_store(be, dir, "\"keep\": 0");
  cr_assert_not_null(st);
  return st;
}

static snap_keyring *keyring(uint8_t fill) {
  snap_keyring *kr = su_keyring(fill);
  cr_assert_not_null(kr);
  return kr;
}

/* A JSON string state of exactly `n` bytes (n >= 2). */
static char *state_of(size_t n, char fill) {
  char *s = malloc(n + 1);
  cr_assert_not_null(s);
  s[0] = '"';
  for (size_t i = 1; i + 1 < n; i++)
    s[i] = (char)('a' + (fill + i) % 26);
  s[n - 1] = '"';
  s[n] = 0;
  return s;
}

static void save_stream(snap_store *st, const char *pid, int64_t seq, int64_t ts,
                        const char *data, size_t n, const snap_options *o,
                        const snap_save_ext *x) {
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, pid, seq, ts, SNAP_FORMAT_JSON, o, x, CHUNK, &w),
               SNAP_OK, "%s", snap_error_message());
  for (size_t at = 0; at < n; at += 10000)
    cr_assert_eq(snap_save_stream_write(w, data + at, n - at < 10000 ? n - at : 10000), SNAP_OK,
                 "%s", snap_error_message());
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
}

/* The state of (pid, seq) through a stream reader with `o`; NULL-terminated. */
static char *read_back(snap_store *st, const char *pid, int64_t seq, const snap_options *o,
                       size_t *len, snap_stream_meta *m) {
  snap_criteria c = {seq, seq, INT64_MIN, INT64_MAX};
  snap_load_stream *r = NULL;
  int rc = snap_load_stream_open(st, pid, &c, o, 0, &r, m);
  cr_assert_eq(rc, SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(r, "pid %s seq %lld is there", pid, (long long)seq);
  size_t cap = 1 << 16, n = 0, got = 1;
  char *b = malloc(cap + 1);
  while (rc == SNAP_OK && got > 0) {
    if (cap - n < 8192)
      b = realloc(b, (cap *= 2) + 1);
    rc = snap_load_stream_read(r, b + n, 8192, &got);
    n += got;
  }
  cr_assert_eq(rc, SNAP_OK, "%s", snap_error_message());
  snap_load_stream_close(r);
  b[n] = 0;
  *len = n;
  return b;
}

/* The row (pid, seq) as listed: its head, copied into `*out` (free()). */
static size_t listed(snap_store *st, const char *pid, int64_t seq, uint8_t **out,
                     int64_t *timestamp) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, pid, NULL, -1, 100, true, &page), SNAP_OK);
  size_t i = 0;
  while (i < page.n && page.entries[i].seq != seq)
    i++;
  cr_assert(i < page.n, "pid %s seq %lld listed", pid, (long long)seq);
  size_t n = page.entries[i].stored_len;
  *out = malloc(n);
  memcpy(*out, page.entries[i].body, n);
  if (timestamp != NULL)
    *timestamp = page.entries[i].timestamp;
  snap_entry_page_dispose(&page);
  return n;
}

static snap_options *sealed(snap_keyring *kr) {
  snap_options *o = su_sealed(kr);
  cr_assert_not_null(o);
  return o;
}

/* ---- rekey and recompression -------------------------------------------- */

/* A sealed stream recompressed to no compression, keeping its key. */
static void recompress_back(snap_store *st, snap_keyring *kr, const snap_options *o,
                            const char *dir, const uint8_t *head2, size_t hl2,
                            const char *state, size_t n) {
  snap_rewrite again;
  size_t len = 0;
  snap_stream_meta m;
  char *back;
  /* Recompression back to no compression, keeping the key. */
  snap_options *plain_codec = sealed(kr);
  cr_assert_eq(snap_options_set_compression(plain_codec, SNAP_COMPRESSION_NONE, 0), SNAP_OK);
  again = (snap_rewrite){"p", 5, head2, hl2, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_rewrite_ex(st, &again, 1, plain_codec, SNAP_REWRITE_RECOMPRESS),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(again.outcome, SNAP_REWRITE_DONE);
  cr_assert_eq(again.stages & SNAP_STAGE_COMPRESSED, 0u, "stages 0x%x", again.stages);
  back = read_back(st, "p", 5, o, &len, &m);
  cr_assert(len == n && memcmp(back, state, n) == 0);
  free(back);
  cr_assert_eq(su_chunk_files(dir), 1);
  snap_options_free(plain_codec);
}

static void rekey_on(const snap_backend *be) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(be, dir);
  snap_keyring *kr = keyring(0x21);
  snap_options *o = sealed(kr);
  const size_t n = 300000;
  char *state = state_of(n, 'a');
  const uint8_t md[3] = {1, 2, 3};
  snap_save_ext x = {.manifest = "T/1", .metadata = md, .metadata_len = 3};
  save_stream(st, "p", 5, 1234, state, n, NULL, &x);
  uint8_t *head = NULL;
  size_t hl = listed(st, "p", 5, &head, NULL);
  /* Plain to zlib + AEAD, chunk by chunk. The memory backend has neither
   * stage (its capabilities): there the rewrite is forced, and the state is
   * sealed as before, in a new stream. */
  const bool stages = be != snap_backend_memory();
  snap_rewrite it = {"p", 5, head, hl, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_rewrite(st, &it, 1, o, !stages), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it.outcome, SNAP_REWRITE_DONE);
  cr_assert(!stages || (it.stages & SNAP_STAGE_ENCRYPTED), "stages 0x%x", it.stages);
  cr_assert_eq(it.key_version, stages ? 1u : 0u);
  uint8_t *head2 = NULL;
  int64_t ts = 0;
  size_t hl2 = listed(st, "p", 5, &head2, &ts);
  cr_assert_eq(ts, 1234, "the timestamp is kept");
  snap_stream_info info;
  cr_assert_eq(snap_body_inspect_stream(head2, hl2, &info), SNAP_OK);
  cr_assert(info.chunked && info.plain_len == n && info.chunk_size == CHUNK,
            "still a stream of the same chunk size");
  cr_assert(hl2 != hl || memcmp(head, head2, hl) != 0, "a new head");
  const char *man = NULL;
  const uint8_t *md2 = NULL;
  size_t ml = 0, mdl = 0;
  cr_assert_eq(snap_body_typing(head2, hl2, &man, &ml, &md2, &mdl), SNAP_OK);
  cr_assert(ml == 3 && memcmp(man, "T/1", 3) == 0 && mdl == 3 && memcmp(md2, md, 3) == 0,
            "manifest and metadata are kept");
  size_t len = 0;
  snap_stream_meta m;
  char *back = read_back(st, "p", 5, o, &len, &m);
  cr_assert(m.streamed && len == n && memcmp(back, state, n) == 0);
  free(back);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_manifest(st, "p", &SNAP_CRITERIA_LATEST, "T/1", o, &s), SNAP_OK,
               "the manifest column follows: %s", snap_error_message());
  cr_assert(s != NULL && s->len == n);
  snap_snapshot_free(s);
  if (be == snap_backend_sqlite())
    cr_assert_eq(su_chunk_files(dir), 1, "the old chunk file went with the old head");
  /* Now current: left alone; forced: rewritten again. */
  snap_rewrite again = {"p", 5, head2, hl2, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_rewrite(st, &again, 1, o, false), SNAP_OK);
  cr_assert_eq(again.outcome, SNAP_REWRITE_CURRENT);
  if (stages)
    recompress_back(st, kr, o, dir, head2, hl2, state, n);
  free(head);
  free(head2);
  free(state);
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(stream_rewrite, a_stream_is_rekeyed_and_recompressed_chunk_by_chunk_on_memory) {
  rekey_on(snap_backend_memory());
}

Test(stream_rewrite, a_stream_is_rekeyed_and_recompressed_chunk_by_chunk_on_sqlite) {
  rekey_on(snap_backend_sqlite());
}

/* ---- live writers win ---------------------------------------------------- */

static void live_writer_on(const snap_backend *be) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(be, dir);
  snap_keyring *kr = keyring(0x22);
  snap_options *o = sealed(kr);
  char *a = state_of(50000, 'a'), *b = state_of(40000, 'k');
  save_stream(st, "p", 1, 10, a, 50000, NULL, NULL);
  save_stream(st, "p", 2, 20, a, 50000, NULL, NULL);
  uint8_t *h1 = NULL, *h2 = NULL;
  size_t l1 = listed(st, "p", 1, &h1, NULL), l2 = listed(st, "p", 2, &h2, NULL);
  /* A writer saves seq 1 again and deletes seq 2 after they were listed. */
  save_stream(st, "p", 1, 30, b, 40000, NULL, NULL);
  cr_assert_eq(snap_delete_one(st, "p", 2), SNAP_OK);
  int files = be == snap_backend_sqlite() ? su_chunk_files(dir) : 0;
  snap_rewrite it[2] = {{"p", 1, h1, l1, SNAP_OK, 0, 0, 0}, {"p", 2, h2, l2, SNAP_OK, 0, 0, 0}};
  cr_assert_eq(snap_store_rewrite(st, it, 2, o, true), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it[0].outcome, SNAP_REWRITE_CHANGED);
  cr_assert_eq(it[1].outcome, SNAP_REWRITE_GONE);
  size_t len = 0;
  snap_stream_meta m;
  char *back = read_back(st, "p", 1, NULL, &len, &m);
  cr_assert(len == 40000 && memcmp(back, b, len) == 0, "the writer's save stands");
  cr_assert_eq(m.stages & SNAP_STAGE_ENCRYPTED, 0u);
  cr_assert_eq(m.timestamp, 30);
  free(back);
  snap_criteria c2 = {2, 2, INT64_MIN, INT64_MAX};
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load(st, "p", &c2, NULL, &s), SNAP_OK);
  cr_assert_null(s, "a deleted stream is not brought back");
  if (be == snap_backend_sqlite())
    cr_assert_eq(su_chunk_files(dir), files, "nothing staged is left behind");
  free(h1);
  free(h2);
  free(a);
  free(b);
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(stream_rewrite, a_live_writers_save_or_delete_wins_on_memory) {
  live_writer_on(snap_backend_memory());
}

Test(stream_rewrite, a_live_writers_save_or_delete_wins_on_sqlite) {
  live_writer_on(snap_backend_sqlite());
}

/* ---- migration ------------------------------------------------------------- */

/* A sqlite store in `dir` with the upcaster T/1 -> T/2 (counting its calls
 * in `*calls`) and the 20000-byte state `a` streamed as ("p", 3) of manifest
 * T/1, timestamp 99; its head copied into `*h`. */
static snap_store *t1_stream(const char *dir, int *calls, const char *a, uint8_t **h,
                             size_t *hl) {
  snap_store *st = open_on(snap_backend_sqlite(), dir);
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/2", st_upcast_wrap, calls), SNAP_OK);
  snap_save_ext x = {.manifest = "T/1"};
  save_stream(st, "p", 3, 99, a, 20000, NULL, &x);
  *hl = listed(st, "p", 3, h, NULL);
  return st;
}

Test(stream_rewrite, a_stream_is_migrated_to_its_target_manifest) {
  char *dir = st_tmpdir();
  int calls = 0;
  uint8_t *h = NULL;
  size_t hl = 0;
  char *a = state_of(20000, 'm');
  snap_store *st = t1_stream(dir, &calls, a, &h, &hl);
  snap_rewrite it = {"p", 3, h, hl, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_migrate(st, &it, 1, "T/2", NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it.outcome, SNAP_REWRITE_DONE);
  cr_assert_eq(calls, 1);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_manifest(st, "p", &SNAP_CRITERIA_LATEST, "T/2", NULL, &s), SNAP_OK,
               "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->timestamp, 99);
  cr_assert(s->len == 20000 + 7 && memcmp(s->data, "{\"v2\":", 6) == 0 &&
            memcmp(s->data + 6, a, 20000) == 0,
            "the state went through the upcaster");
  snap_snapshot_free(s);
  uint8_t *h2 = NULL;
  size_t hl2 = listed(st, "p", 3, &h2, NULL);
  snap_stream_info info;
  cr_assert_eq(snap_body_inspect_stream(h2, hl2, &info), SNAP_OK);
  cr_assert(info.chunked, "still a stream");
  cr_assert_eq(su_chunk_files(dir), 1);
  free(h);
  free(h2);
  free(a);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* A streamed state over the reader's limit is not migrated: the upcasters
 * take a whole state. The item fails with SNAP_ETOOBIG naming the pid and
 * seq and the limit to raise, from the head alone (no upcaster runs), and
 * the stream is left as it is; within a raised limit it migrates. */
Test(stream_rewrite, a_stream_over_the_readers_limit_is_refused_by_migrate_and_left_alone) {
  char *dir = st_tmpdir();
  int calls = 0;
  uint8_t *h = NULL;
  size_t hl = 0;
  char *a = state_of(20000, 'l');
  snap_store *st = t1_stream(dir, &calls, a, &h, &hl);
  snap_options *small = NULL;
  cr_assert_eq(snap_options_new(&small), SNAP_OK);
  cr_assert_eq(snap_options_set_limits(small, 0, 8192), SNAP_OK);
  snap_rewrite it = {"p", 3, h, hl, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_migrate(st, &it, 1, "T/2", small), SNAP_ETOOBIG);
  cr_assert_eq(it.status, SNAP_ETOOBIG);
  const char *msg = snap_error_message();
  cr_assert(strstr(msg, "pid 'p' seq 3") && strstr(msg, "max_decoded_size") &&
                strstr(msg, "left as it is"),
            "%s", msg);
  cr_assert_eq(calls, 0, "no upcaster ran");
  uint8_t *same = NULL;
  size_t sl = listed(st, "p", 3, &same, NULL);
  cr_assert(sl == hl && memcmp(same, h, hl) == 0, "the stream is left as it is");
  cr_assert_eq(su_chunk_files(dir), 1);
  cr_assert_eq(snap_options_set_limits(small, 0, 1 << 20), SNAP_OK);
  it = (snap_rewrite){"p", 3, h, hl, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_migrate(st, &it, 1, "T/2", small), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it.outcome, SNAP_REWRITE_DONE);
  cr_assert_eq(calls, 1);
  free(same);
  free(h);
  free(a);
  snap_options_free(small);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* ---- a backend without the slot ----------------------------------------- */

/* A table of ABI version 6 (the memory backend's, declared older) still
 * loads; a rewrite of a stream on it is refused and changes nothing. */
Test(stream_rewrite, a_backend_of_abi_version_6_refuses_and_changes_nothing) {
  snap_backend v6 = *snap_backend_memory();
  v6.abi_version = 6;
  v6.name = "memory-v6";
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, &v6, "{}"), SNAP_OK, "%s", snap_error_message());
  char *a = state_of(9000, 'q');
  save_stream(st, "p", 1, 5, a, 9000, NULL, NULL);
  uint8_t *h = NULL;
  size_t hl = listed(st, "p", 1, &h, NULL);
  snap_keyring *kr = keyring(0x23);
  snap_options *o = sealed(kr);
  snap_rewrite it = {"p", 1, h, hl, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_rewrite(st, &it, 1, o, true), SNAP_EUNSUPPORTED);
  cr_assert(strstr(snap_error_message(), "stream_replace"), "%s", snap_error_message());
  uint8_t *same = NULL;
  size_t sl = listed(st, "p", 1, &same, NULL);
  cr_assert(sl == hl && memcmp(same, h, hl) == 0, "left as it is");
  free(same);
  free(h);
  free(a);
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
}

/* ---- a run killed midway --------------------------------------------------- */

/* A child rewrites a stream of 64 MiB and is killed with SIGKILL once its new
 * staging file exists: the old snapshot still loads, the sweep reclaims the
 * staging, and a rerun finishes. */
Test(stream_rewrite, a_rewrite_killed_midway_leaves_the_old_stream_and_a_rerun_finishes,
     .timeout = 120) {
  char *dir = st_tmpdir();
  snap_store *st = open_on(snap_backend_sqlite(), dir);
  const size_t n = 64u << 20;
  char *a = state_of(n, 'z');
  save_stream(st, "p", 1, 7, a, n, NULL, NULL);
  uint8_t *h = NULL;
  size_t hl = listed(st, "p", 1, &h, NULL);
  snap_store_close(st);
  cr_assert_eq(su_chunk_files(dir), 1);
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0) {
    snap_store *cs = open_on(snap_backend_sqlite(), dir);
    snap_keyring *kr = keyring(0x24);
    snap_options *o = sealed(kr);
    snap_rewrite it = {"p", 1, h, hl, SNAP_OK, 0, 0, 0};
    (void)snap_store_rewrite(cs, &it, 1, o, false);
    _exit(3); /* too late: the test wanted it killed before the publish */
  }
  for (int i = 0; i < 20000 && su_chunk_files(dir) < 2; i++)
    usleep(500);
  usleep(20000);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  cr_assert(WIFSIGNALED(status), "the child was killed midway (status %d)", status);
  st = open_on(snap_backend_sqlite(), dir);
  size_t len = 0;
  snap_stream_meta m;
  char *back = read_back(st, "p", 1, NULL, &len, &m);
  cr_assert(len == n && memcmp(back, a, n) == 0, "the old stream still loads");
  cr_assert_eq(m.stages & SNAP_STAGE_ENCRYPTED, 0u);
  free(back);
  uint64_t reclaimed = 0;
  cr_assert_eq(snap_store_stream_sweep(st, 100, &reclaimed), SNAP_OK);
  cr_assert_eq(su_chunk_files(dir), 1, "the staging is reclaimed (%llu now, %llu by the sweep)",
               (unsigned long long)su_chunk_files(dir), (unsigned long long)reclaimed);
  snap_keyring *kr = keyring(0x24);
  snap_options *o = sealed(kr);
  snap_rewrite it = {"p", 1, h, hl, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_rewrite(st, &it, 1, o, false), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it.outcome, SNAP_REWRITE_DONE);
  back = read_back(st, "p", 1, o, &len, &m);
  cr_assert(len == n && memcmp(back, a, n) == 0 && (m.stages & SNAP_STAGE_ENCRYPTED));
  free(back);
  cr_assert_eq(su_chunk_files(dir), 1);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(h);
  free(a);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}
