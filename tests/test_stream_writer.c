/* The writer thread of a streamed save (store/src/stream_pump.c): the
 * backend writes chunk record N on a thread of its own while the caller
 * encodes record N + 1. Its records arrive whole and in order in every stage
 * combination, a write that fails on that thread reaches the caller as a
 * status with its message, and an abort with a record in flight leaves no
 * file, no snapshot and no thread behind. Small and quick: these cases also
 * run under ThreadSanitizer (ctest label "threads"). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"
#include "store_util.h"
#include "stream_util.h"

#ifdef UNDER_TSAN
#define skip_test(why)                                                                             \
  do {                                                                                             \
    fprintf(stderr, "skipped: %s\n", why);                                                        \
    return;                                                                                        \
  } while (0)
#else
#define skip_test(why) cr_skip_test(why)
#endif

/* Chunks of 4 KiB: a state of a few hundred KiB is a hundred records. */
#define SMALL_CHUNK ((size_t)4096)

/* The threads of this process. */
static int threads_now(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  if (d == NULL)
    return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void *nothing(void *arg) { return arg; }

/* The threads of this process once a thread has come and gone: a runtime
 * that starts a helper thread with the first one (ThreadSanitizer's) has. */
static int threads_before(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, nothing, NULL) == 0)
    pthread_join(t, NULL);
  return threads_now();
}

/* Streams `n` bytes of `data` as (pid, seq) in pieces of `piece`, chunks of
 * `chunk`: the first failing call's status, or the commit's. */
static int save_in(snap_store *st, const char *pid, int64_t seq, const char *data, size_t n,
                   const snap_options *o, size_t piece, size_t chunk) {
  snap_save_stream *w = NULL;
  int rc = snap_save_stream_begin(st, pid, seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, o, NULL,
                                  chunk, &w);
  for (size_t at = 0; rc == SNAP_OK && at < n; at += piece)
    rc = snap_save_stream_write(w, data + at, n - at < piece ? n - at : piece);
  if (rc != SNAP_OK) {
    snap_save_stream_abort(w);
    return rc;
  }
  return snap_save_stream_commit(w, NULL);
}

static void round_trips_on(const snap_backend *be) {
  char *dir = st_tmpdir();
  snap_store *st = su_store(be, dir, "");
  cr_assert_not_null(st);
  snap_keyring *kr = su_keyring(7);
  size_t n = 300000;
  char *state = su_state_of(n, 'w');
  int before = threads_before();
  for (int c = 0; c < 4; c++) {
    snap_options *o = su_combo(c, kr);
    cr_assert_eq(save_in(st, "p", c + 1, state, n, o, 7001, SMALL_CHUNK), SNAP_OK,
                 "combination %d: %s", c, snap_error_message());
    char *back = NULL;
    size_t len = 0;
    cr_assert_eq(su_stream_load(st, "p", o, 0, &back, &len, NULL), SNAP_OK, "%s",
                 snap_error_message());
    cr_assert(len == n && memcmp(back, state, n) == 0, "combination %d reads back", c);
    free(back);
    snap_options_free(o);
  }
  cr_assert_eq(threads_now(), before, "every writer thread ended with its save");
  free(state);
  snap_keyring_free(kr);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(stream_writer, records_written_behind_the_encoder_read_back_whole_on_sqlite) {
  round_trips_on(snap_backend_sqlite());
}

Test(stream_writer, records_written_behind_the_encoder_read_back_whole_on_memory) {
  round_trips_on(snap_backend_memory());
}

Test(stream_writer, an_abort_with_a_record_in_flight_leaves_nothing_behind) {
  char *dir = st_tmpdir();
  snap_store *st = su_store(snap_backend_sqlite(), dir, "");
  cr_assert_not_null(st);
  size_t n = 2u << 20;
  char *state = su_state_of(n, 'a');
  int before = threads_before();
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "p", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, SMALL_CHUNK, &w),
               SNAP_OK);
  for (size_t at = 0; at < n / 2; at += 65536)
    cr_assert_eq(snap_save_stream_write(w, state + at, 65536), SNAP_OK, "%s",
                 snap_error_message());
  cr_assert_gt(threads_now(), before, "the records are written on a thread of their own");
  snap_save_stream_abort(w);
  cr_assert_eq(threads_now(), before, "the abort ended the writer thread");
  cr_assert_eq(su_chunk_files(dir), 0, "the aborted staging is gone");
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_null(s, "no snapshot is visible");
  free(state);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* A private tmpfs of `kib` KiB on `dir` (root, or a user namespace). */
static bool mount_tmpfs(const char *dir, unsigned kib) {
  if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
    return false;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    return false;
  char opt[64];
  snprintf(opt, sizeof opt, "size=%uk", kib);
  return mount("tmpfs", dir, "tmpfs", 0, opt) == 0;
}

/* The disk fills on a record the writer thread writes (not the first one,
 * which is written on the caller's thread): the caller's next write or the
 * commit returns SNAP_EFULL naming the stream file, and nothing is visible. */
Test(stream_writer, a_write_failing_on_the_writer_thread_reaches_the_caller) {
  char *dir = st_tmpdir();
  if (!mount_tmpfs(dir, 512)) {
    st_rmtree(dir);
    free(dir);
    skip_test("a full disk needs a private tmpfs mount (root or a user namespace)");
  }
  snap_store *st = su_store(snap_backend_sqlite(), dir, "");
  cr_assert_not_null(st);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  size_t n = 2u << 20;
  char *state = su_state_of(n, 'f');
  int before = threads_before();
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "p", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, SMALL_CHUNK, &w),
               SNAP_OK);
  int rc = SNAP_OK;
  for (size_t at = 0; at < n && rc == SNAP_OK; at += 65536)
    rc = snap_save_stream_write(w, state + at, 65536);
  bool at_commit = rc == SNAP_OK; /* the last records failed: the commit says so */
  if (at_commit)
    rc = snap_save_stream_commit(w, NULL);
  char why[512];
  snprintf(why, sizeof why, "%s", snap_error_message());
  cr_assert_eq(rc, SNAP_EFULL, "%d: %s", rc, why);
  cr_assert_not_null(strstr(why, "write the stream file"), "%s", why);
  if (!at_commit)
    cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_EFULL, "the commit repeats the failure");
  cr_assert_eq(threads_now(), before, "the writer thread ended with the save");
  cr_assert_eq(su_chunk_files(dir), 0, "the failed staging is gone");
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s != NULL && s->seq == 1, "the previous snapshot is the latest");
  snap_snapshot_free(s);
  free(state);
  snap_store_close(st);
  cr_assert_eq(umount(dir), 0);
  st_rmtree(dir);
  free(dir);
}
