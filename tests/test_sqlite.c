/* The SQLite backend's own promises: crash durability, secure deletion,
 * prune failures that never fail a save, schema versioning, lazy opening,
 * configuration and several processes on one file. */
#define _GNU_SOURCE /* unshare() */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "snap/admin.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"
#include "sqlite_asserts.h"
#include "store_util.h"

static snap_store *open_sqlite(const char *dir, const char *extra) {
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\"%s%s}", dir, extra[0] ? ", " : "", extra);
  snap_store *st = NULL;
  int rc = snap_store_open_backend(&st, snap_backend_sqlite(), cfg);
  cr_assert_eq(rc, SNAP_OK, "open %s: %s", cfg, snap_error_message());
  return st;
}


static void state_for(char *buf, size_t cap, int pid, int64_t seq) {
  snprintf(buf, cap, "{\"pid\":%d,\"seq\":%" PRId64 ",\"pad\":\"%0200d\"}", pid, seq, pid);
}

/* ------------------------------------------------------------------------ */
/* Crash durability                                                          */
/* ------------------------------------------------------------------------ */

typedef struct ack {
  int32_t pid;
  int32_t round;
  int64_t seq;
} ack;

/* Saves forever (until killed), acknowledging each save on `fd` after it returned OK. */
static void crash_child(const char *dir, int fd, int round) {
  snap_store *st = NULL;
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\", \"keep\": 0, \"synchronous\": \"full\"}", dir);
  if (snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK)
    _exit(2);
  for (int64_t i = 0; i < 1000000; i++) {
    char pid[32], state[512];
    ack a = {(int32_t)(i % 8), round, (int64_t)round * 1000000 + i};
    snprintf(pid, sizeof pid, "crash-%d", a.pid);
    state_for(state, sizeof state, a.pid, a.seq);
    if (snap_save(st, pid, a.seq, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL) != SNAP_OK)
      _exit(3);
    /* Records are smaller than PIPE_BUF: each write is all or nothing. */
    if (write(fd, &a, sizeof a) != (ssize_t)sizeof a)
      _exit(4);
  }
  _exit(0);
}

Test(sqlite, every_acknowledged_save_survives_sigkill) {
  char *dir = st_tmpdir();
  srand(20261124);
  size_t nacks = 0, cap = 1 << 14;
  ack *acks = malloc(cap * sizeof *acks);
  int rounds = 24;
  for (int round = 0; round < rounds; round++) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
      close(fds[0]);
      crash_child(dir, fds[1], round);
    }
    close(fds[1]);
    /* Let it run 20..150 ms, reading acknowledgements meanwhile. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long budget_ms = 20 + rand() % 130;
    for (;;) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      if (elapsed >= budget_ms)
        break;
      usleep(2000);
    }
    kill(child, SIGKILL);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status), "the child stopped by itself (status %d)", status);
    ack a;
    ssize_t got;
    while ((got = read(fds[0], &a, sizeof a)) == (ssize_t)sizeof a) {
      if (nacks == cap)
        acks = realloc(acks, (cap *= 2) * sizeof *acks);
      acks[nacks++] = a;
    }
    cr_assert_eq(got, 0, "a partial acknowledgement");
    close(fds[0]);
  }
  cr_assert_gt(nacks, 0u, "no save was acknowledged at all");

  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  for (size_t i = 0; i < nacks; i++) {
    char pid[32], state[512];
    snprintf(pid, sizeof pid, "crash-%d", acks[i].pid);
    state_for(state, sizeof state, acks[i].pid, acks[i].seq);
    snap_criteria c = {acks[i].seq, acks[i].seq, 0, INT64_MAX};
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load(st, pid, &c, NULL, &s), SNAP_OK, "%s", snap_error_message());
    cr_assert_not_null(s, "acknowledged save %s/%" PRId64 " (round %d) is lost", pid, acks[i].seq,
                       acks[i].round);
    cr_assert_str_eq((const char *)s->data, state);
    snap_snapshot_free(s);
  }
  snap_store_close(st);

  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  sqlite3_stmt *q;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok");
  sqlite3_finalize(q);
  sqlite3_close(db);
  cr_log_info("%zu acknowledged saves over %d SIGKILLs all present", nacks, rounds);
  free(acks);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Secure deletion                                                           */
/* ------------------------------------------------------------------------ */

/* A state of about 12 KiB (so it spills to overflow pages) full of distinctive markers. */
static char *marked_state(const char *tag, int n) {
  char *s = malloc(13000);
  size_t len = (size_t)sprintf(s, "[");
  for (int i = 0; len < 12000; i++)
    len += (size_t)sprintf(s + len, "%s\"%s-marker-%05d-%d\"", i ? "," : "", tag, i, n);
  strcpy(s + len, "]");
  return s;
}

/* Whether any 16-byte window of `state` occurs in the database or its WAL. */
static bool leaks(const char *dir, const char *state) {
  const char *names[] = {"t.db", "t.db-wal"};
  bool found = false;
  for (int f = 0; f < 2 && !found; f++) {
    char *path = st_join(dir, names[f]);
    uint8_t *data;
    size_t len;
    cr_assert(st_read_file(path, &data, &len), "cannot read %s", path);
    size_t n = strlen(state);
    for (size_t i = 0; i + 16 <= n && !found; i += 8)
      found = st_contains(data, len, state + i, 16);
    free(data);
    free(path);
  }
  return found;
}

/* An encrypting options object over a one-key keyring, for the secure-delete cases. */
typedef struct enc_setup {
  snap_keyring *kr;
  snap_options *o;
} enc_setup;

static enc_setup enc_setup_new(uint8_t key_byte) {
  enc_setup e;
  cr_assert_eq(snap_keyring_new(&e.kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, key_byte, sizeof key);
  cr_assert_eq(snap_keyring_add(e.kr, 1, key, sizeof key), SNAP_OK);
  cr_assert_eq(snap_options_new(&e.o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(e.o, e.kr, "test/sqlite/v1"), SNAP_OK);
  return e;
}

static void enc_setup_free(enc_setup *e) {
  snap_options_free(e->o);
  snap_keyring_free(e->kr);
}

Test(sqlite, encrypted_states_leave_no_plaintext_in_the_files) {
  char *dir = st_tmpdir();
  enc_setup e = enc_setup_new(0x7e);
  snap_options *o = e.o;

  snap_store *st = open_sqlite(dir, "\"keep\": 1");
  char *states[6];
  for (int i = 0; i < 6; i++) {
    states[i] = marked_state("secret", i);
    snap_meta m;
    cr_assert_eq(
        snap_save(st, "vault", i + 1, SNAP_FORMAT_JSON, states[i], strlen(states[i]), o, &m),
        SNAP_OK, "%s", snap_error_message());
    cr_assert(m.stages & SNAP_STAGE_ENCRYPTED);
  }
  for (int i = 0; i < 6; i++)
    cr_assert(!leaks(dir, states[i]), "plaintext of state %d found on disk", i);
  snap_store_close(st);
  for (int i = 0; i < 6; i++) {
    cr_assert(!leaks(dir, states[i]), "plaintext of state %d found after close", i);
    free(states[i]);
  }
  enc_setup_free(&e);
  st_rmtree(dir);
  free(dir);
}

/* Saves three plaintext marked states as seq first..first+2 of `pid`. */
static void save_marked(snap_store *st, const char *pid, const char *tag, int64_t first,
                        char *plain[3]) {
  for (int i = 0; i < 3; i++) {
    plain[i] = marked_state(tag, i);
    cr_assert_eq(
        snap_save(st, pid, first + i, SNAP_FORMAT_JSON, plain[i], strlen(plain[i]), NULL, NULL),
        SNAP_OK);
  }
}

/* Whether any of the three states is still in the files; frees them. */
static bool any_leaks(const char *dir, char *plain[3]) {
  bool remains = false;
  for (int i = 0; i < 3; i++) {
    remains |= leaks(dir, plain[i]);
    free(plain[i]);
  }
  return remains;
}

/* Saves plaintext states, then one encrypted state that prunes them with keep=1,
 * and reports whether the pruned plaintext is still in the closed database. */
static bool pruned_plaintext_remains(const char *secure_delete) {
  char *dir = st_tmpdir();
  enc_setup e = enc_setup_new(0x3c);
  snap_options *o = e.o;
  char extra[128];
  snprintf(extra, sizeof extra, "\"keep\": 0, \"secure_delete\": \"%s\"", secure_delete);
  snap_store *st = open_sqlite(dir, extra);
  char *plain[3];
  save_marked(st, "mig", "plain", 1, plain);
  snap_store_close(st);
  snprintf(extra, sizeof extra, "\"keep\": 1, \"keep_change\": true, \"secure_delete\": \"%s\"",
           secure_delete);
  st = open_sqlite(dir, extra);
  char *enc = marked_state("enc", 9);
  cr_assert_eq(snap_save(st, "mig", 4, SNAP_FORMAT_JSON, enc, strlen(enc), o, NULL), SNAP_OK);
  snap_snapshot *s = NULL;
  snap_criteria c = {0, 3, 0, INT64_MAX};
  cr_assert_eq(snap_load(st, "mig", &c, o, &s), SNAP_OK);
  cr_assert_null(s, "the plaintext states were pruned");
  snap_store_close(st); /* checkpoints the WAL into the database */
  bool remains = any_leaks(dir, plain);
  free(enc);
  enc_setup_free(&e);
  st_rmtree(dir);
  free(dir);
  return remains;
}

Test(sqlite, auto_secure_delete_wipes_once_the_table_holds_encrypted_bodies) {
  cr_assert(!pruned_plaintext_remains("auto"),
            "plaintext pruned in the first encrypted save's transaction is still on disk");
  cr_assert(!pruned_plaintext_remains("on"));
  /* The control: without secure deletion the freed pages keep the bytes,
   * so the checks above do look at the right place. */
  cr_assert(pruned_plaintext_remains("off"));
}

/* Phase 1 (its own store handle) stores one encrypted state; phase 2 plaintext
 * states; phase 3 a plaintext save that prunes them all. Reports whether the pruned plaintext
 * is still in the closed database. */
static bool later_prune_leaves_plaintext(const char *secure_delete) {
  char *dir = st_tmpdir();
  enc_setup e = enc_setup_new(7);
  snap_options *o = e.o;
  char extra[128];
  snprintf(extra, sizeof extra, "\"keep\": 0, \"secure_delete\": \"%s\"", secure_delete);
  snap_store *st = open_sqlite(dir, extra);
  cr_assert_eq(snap_save(st, "later", 1, SNAP_FORMAT_JSON, "1", 1, o, NULL), SNAP_OK);
  snap_store_close(st);
  st = open_sqlite(dir, extra);
  char *plain[3];
  save_marked(st, "later", "later", 2, plain);
  snap_store_close(st);
  snprintf(extra, sizeof extra, "\"keep\": 1, \"keep_change\": true, \"secure_delete\": \"%s\"",
           secure_delete);
  st = open_sqlite(dir, extra);
  cr_assert_eq(snap_save(st, "later", 9, SNAP_FORMAT_JSON, "9", 1, NULL, NULL), SNAP_OK);
  snap_store_close(st);
  bool remains = any_leaks(dir, plain);
  enc_setup_free(&e);
  st_rmtree(dir);
  free(dir);
  return remains;
}

Test(sqlite, a_later_process_deletes_securely_once_the_table_held_encrypted_bodies) {
  cr_assert(!later_prune_leaves_plaintext("auto"),
            "a new process pruned with secure_delete off although the table held encrypted bodies");
  /* The control: "fast" leaves freed overflow pages as they were. */
  cr_assert(later_prune_leaves_plaintext("fast"));
}

Test(sqlite, the_encrypted_fact_is_persisted_for_later_processes) {
  char *dir = st_tmpdir();
  enc_setup e = enc_setup_new(1);
  snap_options *o = e.o;
  snap_store *st = open_sqlite(dir, "");
  cr_assert_eq(snap_save(st, "a", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  sqlite3_stmt *q;
  const char *sql = "SELECT count(*) FROM snapstore_meta WHERE name = 'encrypted:snapshots'";
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  cr_assert_eq(sqlite3_column_int(q, 0), 0, "plaintext saves do not mark the table");
  sqlite3_reset(q);
  cr_assert_eq(snap_save(st, "a", 2, SNAP_FORMAT_JSON, "2", 1, o, NULL), SNAP_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  cr_assert_eq(sqlite3_column_int(q, 0), 1, "the first encrypted save marks the table");
  sqlite3_finalize(q);
  sqlite3_close(db);
  snap_store_close(st);
  enc_setup_free(&e);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Retention failures, schema, lazy open, configuration                      */
/* ------------------------------------------------------------------------ */

Test(sqlite, a_failing_prune_never_fails_the_save) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 1");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "CREATE TRIGGER no_prune BEFORE DELETE ON snapshots "
               "BEGIN SELECT RAISE(ABORT, 'prune blocked by test'); END");
  snap_meta m;
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, "2", 1, NULL, &m), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "3", 1, NULL, &m), SNAP_OK, "%s",
               snap_error_message());
  for (int seq = 1; seq <= 3; seq++) {
    snap_criteria c = {seq, seq, 0, INT64_MAX};
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load(st, "p", &c, NULL, &s), SNAP_OK);
    cr_assert_not_null(s, "seq %d is still there", seq);
    snap_snapshot_free(s);
  }
  st_sqlite_run(db, "DROP TRIGGER no_prune");
  cr_assert_eq(snap_save(st, "p", 4, SNAP_FORMAT_JSON, "4", 1, NULL, NULL), SNAP_OK);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_before(st, "p", 4, NULL, &s), SNAP_OK);
  cr_assert_null(s, "the next prune catches up");
  sqlite3_close(db);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, a_row_with_a_negative_seq_written_behind_the_store_is_never_returned) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  cr_assert_eq(snap_save(st, "p", 0, SNAP_FORMAT_JSON, "0", 1, NULL, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "INSERT INTO snapshots (pid, seq, ts, body) "
               "SELECT pid, -5, ts, body FROM snapshots WHERE pid = 'p'");
  snap_criteria all = {INT64_MIN, INT64_MAX, 0, INT64_MAX};
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load(st, "p", &all, NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, 0);
  snap_snapshot_free(s);
  /* With the real snapshot gone, the stray row is the youngest "match". */
  cr_assert_eq(snap_delete_one(st, "p", 0), SNAP_OK);
  s = NULL;
  cr_assert_eq(snap_load(st, "p", &all, NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_null(s, "no snapshot has a negative seq");
  sqlite3_close(db);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, a_newer_schema_version_is_refused) {
  char *dir = st_tmpdir();
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "PRAGMA user_version = 8");
  sqlite3_close(db);
  snap_store *st = open_sqlite(dir, "");
  int rc = snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL);
  cr_assert_eq(rc, SNAP_EFORMAT, "%d %s", rc, snap_error_message());
  cr_assert(strstr(snap_error_message(), "version 8") && strstr(snap_error_message(), "version 7"),
            "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_EFORMAT);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, the_schema_is_versioned) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"table\": \"Actor_Snaps2\"");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  snap_store_close(st);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  sqlite3_stmt *q;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  cr_assert_eq(sqlite3_column_int(q, 0), 7, "schema version 7: stream triggers while needed");
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM Actor_Snaps2_keys", -1, &q, NULL),
               SQLITE_OK, "the data set's key table exists");
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM Actor_Snaps2_dicts", -1, &q, NULL),
               SQLITE_OK, "the data set's dictionary table exists");
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM Actor_Snaps2_manifests", -1, &q, NULL),
               SQLITE_OK, "the data set's manifest table exists");
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM Actor_Snaps2", -1, &q, NULL),
               SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  cr_assert_eq(sqlite3_column_int(q, 0), 1);
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "wal");
  sqlite3_finalize(q);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, files_open_lazily_and_a_bad_path_fails_the_first_use) {
  char *dir = st_tmpdir();
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/missing/dir/t.db\"}", dir);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK, "%s",
               snap_error_message());
  int rc = snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL);
  cr_assert_eq(rc, SNAP_EIO, "%d", rc);
  cr_assert(strstr(snap_error_message(), "missing/dir/t.db") != NULL, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_EIO);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, bad_configuration_names_the_key) {
  struct {
    const char *cfg, *named;
  } bad[] = {
      {"{\"path\": \"t.db\", \"tabel\": \"x\"}", "tabel"},
      {"{\"table\": \"x\"}", "path"},
      {"{\"path\": \"t.db\", \"table\": \"x; DROP TABLE y\"}", "table"},
      {"{\"path\": \"t.db\", \"table\": \"1abc\"}", "table"},
      {"{\"path\": \"t.db\", \"table\": "
       "\"a1234567890123456789012345678901234567890123456789012345678901234\"}",
       "table"},
      {"{\"path\": \"t.db\", \"synchronous\": \"off\"}", "synchronous"},
      {"{\"path\": \"t.db\", \"busy_timeout_ms\": -1}", "busy_timeout_ms"},
      {"{\"path\": \"t.db\", \"secure_delete\": true}", "secure_delete"},
      {"{\"path\": 5}", "path"},
      {"{\"path\": \"\"}", "path"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snap_store *st = (snap_store *)1;
    cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), bad[i].cfg), SNAP_ECONFIG,
                 "%s", bad[i].cfg);
    cr_assert_null(st);
    cr_assert(strstr(snap_error_message(), bad[i].named) != NULL, "%s: %s", bad[i].cfg,
              snap_error_message());
  }
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"table\": \"a123456789012345678901234567890123456789012345"
                                    "6789012345678901\", \"synchronous\": \"normal\", "
                                    "\"busy_timeout_ms\": 100, \"secure_delete\": \"fast\"");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Two processes                                                             */
/* ------------------------------------------------------------------------ */

Test(sqlite, two_processes_share_one_file) {
  char *dir = st_tmpdir();
  enum { PER_CHILD = 150 };
  pid_t kids[2];
  for (int k = 0; k < 2; k++) {
    kids[k] = fork();
    cr_assert_neq(kids[k], -1);
    if (kids[k] == 0) {
      snap_store *st = NULL;
      char cfg[4096];
      snprintf(cfg, sizeof cfg,
               "{\"path\": \"%s/t.db\", \"keep\": 2, \"synchronous\": \"normal\", "
               "\"busy_timeout_ms\": 20000}",
               dir);
      if (snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK)
        _exit(10);
      for (int i = 0; i < PER_CHILD; i++) {
        char pid[32], state[512];
        snprintf(pid, sizeof pid, "proc-%d-%d", k, i % 10);
        state_for(state, sizeof state, k, i);
        if (snap_save(st, pid, i, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL) != SNAP_OK) {
          fprintf(stderr, "child %d save %d: %s\n", k, i, snap_error_message());
          _exit(11);
        }
        snap_snapshot *s = NULL;
        if (snap_load_latest(st, pid, NULL, &s) != SNAP_OK || s == NULL || s->seq != i)
          _exit(12);
        snap_snapshot_free(s);
      }
      snap_store_close(st);
      _exit(0);
    }
  }
  for (int k = 0; k < 2; k++) {
    int status;
    cr_assert_eq(waitpid(kids[k], &status, 0), kids[k]);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed (status %d)", k,
              status);
  }
  snap_store *st = open_sqlite(dir, "");
  for (int k = 0; k < 2; k++)
    for (int p = 0; p < 10; p++) {
      char pid[32];
      snprintf(pid, sizeof pid, "proc-%d-%d", k, p);
      snap_snapshot *s = NULL;
      cr_assert_eq(snap_load_latest(st, pid, NULL, &s), SNAP_OK);
      cr_assert_not_null(s);
      cr_assert_eq(s->seq, PER_CHILD - 10 + p);
      snap_snapshot_free(s);
    }
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, a_full_database_fails_the_save_with_efull_and_keeps_older_snapshots) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0, \"max_page_count\": 40");
  int rc = SNAP_OK, saved = 0;
  for (int i = 1; i <= 100 && rc == SNAP_OK; i++) {
    char *state = marked_state("full", i);
    rc = snap_save(st, "f", i, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL);
    if (rc == SNAP_OK)
      saved = i;
    free(state);
  }
  cr_assert_eq(rc, SNAP_EFULL, "%d %s", rc, snap_error_message());
  cr_assert_gt(saved, 0);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "f", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, saved, "the failed save left nothing behind");
  snap_snapshot_free(s);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* Reads PRAGMA page_count through a separate connection (the WAL included). */
static long page_count(const char *dir) {
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &q, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  long n = (long)sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

Test(sqlite, a_batch_reuses_the_pages_its_prunes_free) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 3");
  /* Two pids, each saved 60 times in one batch, in runs of 20 (as a
   * submitter that outpaces the others puts them in the queue), each state
   * larger than a page. A single save at a time keeps 3 rows per pid: a
   * batch must end with the same file, not one grown by all 120 rows. */
  enum { N = 120, LEN = 6000 };
  char *state = malloc(LEN + 1);
  memset(state, 'x', LEN);
  state[0] = '"';
  state[LEN - 1] = '"';
  state[LEN] = 0;
  snap_save_req reqs[N];
  int status[N];
  for (int i = 0; i < N; i++) {
    int run = i / 20;
    reqs[i] = (snap_save_req){
        run % 2 ? "b" : "a", i, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state, LEN, NULL};
  }
  cr_assert_eq(snap_save_batch(st, reqs, N, status, NULL), SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  long pages = page_count(dir);
  /* 6 surviving rows of two pages each, the tables and their indexes: a
   * few dozen pages at most; 120 rows written before pruning take 240+. */
  cr_assert_lt(pages, 60, "the batch grew the file to %ld pages", pages);
  free(state);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, a_body_written_with_an_empty_state_still_loads) {
  /* Saves refuse 0-byte states now, but bodies stored before with one must
   * keep loading: write such a body (the codec still encodes and decodes it)
   * behind the store's back, as an older version stored it. */
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  snap_buf body = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 2, SNAP_FORMAT_JSON, NULL, 0, NULL, &body, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  sqlite3_stmt *ins = NULL;
  cr_assert_eq(
      sqlite3_prepare_v2(db,
                         "INSERT INTO snapshots (pid, seq, ts, body) "
                         "SELECT pid, 2, ts, ?1 FROM snapshots WHERE pid = 'p' AND seq = 1",
                         -1, &ins, NULL),
      SQLITE_OK, "%s", sqlite3_errmsg(db));
  sqlite3_bind_blob(ins, 1, body.data, (int)body.len, SQLITE_STATIC);
  cr_assert_eq(sqlite3_step(ins), SQLITE_DONE, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(ins);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, 2);
  cr_assert_eq(s->len, 0u, "the empty state decodes as 0 bytes");
  cr_assert_eq(s->skipped, 0u);
  snap_snapshot_free(s);
  snap_buf_dispose(&body);
  sqlite3_close(db);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* A store resolves a caller's options object once and reuses the result: the
 * reuse must follow every change of the object and of the store's layers. */
Test(sqlite, a_changed_options_object_is_resolved_again) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  snap_keyring *kr;
  uint8_t k[SNAP_KEY_BYTES] = {7};
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  snap_meta m;
  const char *state = "{\"a\":1}";
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, state, 7, o, &m), SNAP_OK);
  cr_assert_eq(m.stages, 0u, "plain with empty options");
  /* The same object, now encrypting: the next save must see it. */
  cr_assert_eq(snap_options_set_encryption(o, kr, "tests/cache/v1"), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, state, 7, o, &m), SNAP_OK);
  cr_assert_eq(m.stages, (unsigned)SNAP_STAGE_ENCRYPTED, "stages 0x%x", m.stages);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", o, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s && s->seq == 2);
  snap_snapshot_free(s);
  /* Encryption off again on the same object: the load has no key now. */
  cr_assert_eq(snap_options_set_encryption(o, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_load_latest(st, "p", o, &s), SNAP_ENOKEY);
  /* A freed object and a new one (perhaps at the same address). */
  snap_options_free(o);
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  cr_assert_eq(snap_load_latest(st, "p", o, &s), SNAP_ENOKEY);
  /* The store's defaults change under the same call object. */
  snap_options *d;
  cr_assert_eq(snap_options_new(&d), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(d, kr, "tests/cache/v1"), SNAP_OK);
  cr_assert_eq(snap_store_set_default_options(st, d), SNAP_OK);
  cr_assert_eq(snap_load_latest(st, "p", o, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s && s->seq == 2);
  snap_snapshot_free(s);
  cr_assert_neq(snap_options_generation(o), 0u);
  uint64_t g = snap_options_generation(o);
  cr_assert_eq(snap_options_set_compression_min_size(o, 10), SNAP_OK);
  cr_assert_neq(snap_options_generation(o), g, "a setter changes the generation");
  snap_options_free(d);
  snap_options_free(o);
  snap_store_close(st);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Retention belongs to the data set                                         */
/* ------------------------------------------------------------------------ */

static int rows_of(const char *dir, const char *pid) {
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  sqlite3_stmt *q;
  cr_assert_eq(
      sqlite3_prepare_v2(db, "SELECT count(*) FROM snapshots WHERE pid = ?1", -1, &q, NULL),
      SQLITE_OK);
  sqlite3_bind_text(q, 1, pid, -1, SQLITE_STATIC);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  int n = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

static void save_n(snap_store *st, const char *pid, int64_t first, int n) {
  for (int64_t seq = first; seq < first + n; seq++)
    cr_assert_eq(snap_save(st, pid, seq, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK, "%s",
                 snap_error_message());
}

Test(sqlite, an_opener_without_keep_adopts_the_data_sets_retention) {
  /* An application kept everything; a maintenance program opened the same
   * file with the default configuration and saved once: it used to prune the
   * history to 3 rows. */
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  save_n(st, "acct", 1, 5);
  snap_store_close(st);
  cr_assert_eq(rows_of(dir, "acct"), 5);
  st = open_sqlite(dir, "");
  cr_assert_eq(snap_store_check(st), SNAP_OK, "%s", snap_error_message());
  save_n(st, "acct", 6, 1);
  snap_store_close(st);
  cr_assert_eq(rows_of(dir, "acct"), 6, "the default opener kept the data set's keep 0");
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, a_different_explicit_keep_is_refused_naming_both_values) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  save_n(st, "acct", 1, 5);
  snap_store_close(st);
  st = open_sqlite(dir, "\"keep\": 2");
  cr_assert_eq(snap_store_check(st), SNAP_ECONFIG);
  const char *msg = snap_error_message();
  cr_assert(strstr(msg, "keep") && strstr(msg, "2") && strstr(msg, "0 (keep all)") &&
                strstr(msg, "keep_change"),
            "names the key, both values and the way out: %s", msg);
  /* Without the check, the first save is refused the same way and stores nothing. */
  cr_assert_eq(snap_save(st, "acct", 6, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_ECONFIG);
  snap_store_close(st);
  cr_assert_eq(rows_of(dir, "acct"), 5);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, keep_change_changes_the_data_sets_retention_for_every_later_opener) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  save_n(st, "acct", 1, 5);
  snap_store_close(st);
  st = open_sqlite(dir, "\"keep\": 2, \"keep_change\": true");
  save_n(st, "acct", 6, 1);
  snap_store_close(st);
  cr_assert_eq(rows_of(dir, "acct"), 2);
  /* A later opener without "keep" now adopts 2; one that says 0 is refused. */
  st = open_sqlite(dir, "");
  save_n(st, "acct", 7, 3);
  snap_store_close(st);
  cr_assert_eq(rows_of(dir, "acct"), 2);
  st = open_sqlite(dir, "\"keep\": 0");
  cr_assert_eq(snap_store_check(st), SNAP_ECONFIG);
  snap_store_close(st);
  /* The same value is no change, and keep_change needs a keep. */
  st = open_sqlite(dir, "\"keep\": 2");
  cr_assert_eq(snap_store_check(st), SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  char cfg[1024];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\", \"keep_change\": true}", dir);
  snap_store *bad = (snap_store *)1;
  cr_assert_eq(snap_store_open_backend(&bad, snap_backend_sqlite(), cfg), SNAP_ECONFIG);
  cr_assert(strstr(snap_error_message(), "keep_change"), "%s", snap_error_message());
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, the_first_opener_sets_the_retention_even_by_default) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "");
  save_n(st, "acct", 1, 5);
  snap_store_close(st);
  cr_assert_eq(rows_of(dir, "acct"), 3);
  st = open_sqlite(dir, "\"keep\": 0");
  cr_assert_eq(snap_save(st, "acct", 6, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_ECONFIG);
  cr_assert(strstr(snap_error_message(), "keeps 3"), "%s", snap_error_message());
  snap_store_close(st);
  /* Tables of one file keep their own retention. */
  st = open_sqlite(dir, "\"table\": \"other\", \"keep\": 1");
  save_n(st, "acct", 1, 3);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(sqlite, check_finds_a_missing_directory_and_a_file_that_is_not_a_database) {
  char *dir = st_tmpdir();
  char cfg[1024];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/missing/t.db\"}", dir);
  snap_store *st;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK);
  cr_assert_eq(snap_store_check(st), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "missing/t.db"), "%s", snap_error_message());
  snap_store_close(st);
  char *junk = st_join(dir, "junk.db");
  cr_assert(st_write_not_a_database(junk));
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\"}", junk);
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK);
  cr_assert_eq(snap_store_check(st), SNAP_EFORMAT, "%s", snap_error_message());
  cr_assert(strstr(snap_error_message(), "junk.db"), "%s", snap_error_message());
  snap_store_close(st);
  free(junk);
  st = open_sqlite(dir, "");
  cr_assert_eq(snap_store_check(st), SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* Runs `fn(arg)` in a child process; its wait status. */
static int in_child(int (*fn)(const char *), const char *arg) {
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0)
    _exit(fn(arg));
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  return status;
}

/* A path that is a FIFO: a read-only open of it (a load's) blocks until a
 * writer appears, so the store must refuse it at open. The child has 10 s
 * before SIGALRM, so a store that blocks fails the test instead of hanging it. */
static int open_path(const char *path, snap_store **st) {
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\"}", path);
  *st = NULL;
  return snap_store_open_backend(st, snap_backend_sqlite(), cfg);
}

static int fifo_child(const char *path) {
  alarm(10);
  snap_store *st;
  int rc = open_path(path, &st);
  if (rc == SNAP_OK) {
    rc = snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL);
    snap_store_close(st);
    return rc == SNAP_OK ? 3 : 2;
  }
  if (rc != SNAP_ECONFIG || strstr(snap_error_message(), "path") == NULL ||
      strstr(snap_error_message(), "not a regular file") == NULL) {
    fprintf(stderr, "fifo: %d %s\n", rc, snap_error_message());
    return 4;
  }
  return 0;
}

/* The exit code of a FIFO child, which must neither block nor die. */
static int fifo_exit(int status) {
  cr_assert(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM,
            "the store blocked on the FIFO for 10 s");
  cr_assert(WIFEXITED(status), "the child died (status %d)", status);
  return WEXITSTATUS(status);
}

Test(sqlite, a_path_that_is_a_fifo_is_refused_at_open_without_blocking) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
  int code = fifo_exit(in_child(fifo_child, path));
  cr_assert_eq(code, 0,
               "exit %d (2: open accepted the FIFO, save failed; 3: it saved; 4: wrong refusal)",
               code);
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* Files are opened on first use, so the path may turn into a FIFO after the
 * open: the first load (a read-only open of a FIFO blocks) and save must then
 * fail, not block. */
static bool fifo_refused(int rc, const char *what) {
  bool refused = rc == SNAP_EIO && strstr(snap_error_message(), "not a regular file") != NULL;
  if (!refused)
    fprintf(stderr, "fifo after open, %s: %d %s\n", what, rc, snap_error_message());
  return refused;
}

static int fifo_after_open_child(const char *path) {
  alarm(10);
  snap_store *st;
  if (open_path(path, &st) != SNAP_OK || mkfifo(path, 0600))
    return 5;
  snap_snapshot *s = NULL;
  bool refused = fifo_refused(snap_load_latest(st, "p", NULL, &s), "load");
  refused &= fifo_refused(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), "save");
  snap_snapshot_free(s);
  snap_store_close(st);
  return refused ? 0 : 4;
}

Test(sqlite, a_path_that_becomes_a_fifo_after_open_fails_the_save_without_blocking) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  int code = fifo_exit(in_child(fifo_after_open_child, path));
  cr_assert_eq(code, 0, "exit %d (4: not refused as not a regular file; 5: set-up)", code);
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* Table names of the store's own tables or SQLite's are refused with the
 * configuration, naming the key, not at the first save with an I/O error;
 * through snap_plugin_open, the refused document leaves no file behind. */
Test(sqlite, a_table_named_after_the_stores_or_sqlites_own_is_refused_at_open) {
  static const char *const names[] = {"sqlite_master",     "sqlite_sequence", "SQLITE_stat1",
                                      "sqlite_anything",   "snapstore_meta",  "SnapStore_Meta",
                                      "snapstore_settings"};
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"table\": \"%s\"}", path, names[i]);
    snap_store *st = NULL;
    int rc = snap_store_open_backend(&st, snap_backend_sqlite(), cfg);
    if (rc == SNAP_OK) {
      rc = snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL);
      snap_store_close(st);
      cr_assert_fail("table '%s' was accepted at open (the save then gave %d: %s)", names[i], rc,
                     snap_error_message());
    }
    cr_assert_eq(rc, SNAP_ECONFIG, "'%s': %d %s", names[i], rc, snap_error_message());
    cr_assert(strstr(snap_error_message(), "table") && strstr(snap_error_message(), names[i]), "%s",
              snap_error_message());
    char doc[4400];
    snprintf(doc, sizeof doc,
             "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\", \"table\": \"%s\"}}", path,
             names[i]);
    snap_plugin *p = NULL;
    cr_assert_eq(snap_plugin_open(&p, doc, NULL), SNAP_ECONFIG, "'%s' through the plugin",
                 names[i]);
    cr_assert(strstr(snap_error_message(), "config.table"), "%s", snap_error_message());
    cr_assert(access(path, F_OK) != 0, "the refused document left '%s' behind", path);
  }
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* A full disk: a tmpfs of 1 MiB in a private mount namespace of a child
 * (root: CAP_SYS_ADMIN), filled after a store was written and closed
 * cleanly. A handle opened afterwards (as a fresh process would) must report
 * the save as SNAP_EFULL, as a handle that had the store open already does. */
static int full_disk_child(const char *dir) {
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0)
    return 10;
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\"}", dir);
  snap_store *st = NULL;
  if (snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK ||
      snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL) != SNAP_OK)
    return 11;
  snap_store_close(st);
  char *fill = st_join(dir, "fill");
  FILE *f = fopen(fill, "wb");
  free(fill);
  if (f == NULL)
    return 12;
  static char chunk[4096];
  while (fwrite(chunk, 1, sizeof chunk, f) == sizeof chunk && fflush(f) == 0)
    ;
  fclose(f);
  if (snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK)
    return 13;
  int rc = snap_save(st, "p", 2, SNAP_FORMAT_JSON, "2", 1, NULL, NULL);
  if (rc != SNAP_EFULL)
    fprintf(stderr, "save on a full disk: %d %s\n", rc, snap_error_message());
  snap_store_close(st);
  return rc == SNAP_EFULL ? 0 : rc == SNAP_EIO ? 20 : 21;
}

Test(sqlite, a_save_from_a_fresh_handle_on_a_full_disk_is_efull) {
  char *dir = st_tmpdir();
  int status = in_child(full_disk_child, dir);
  cr_assert(WIFEXITED(status), "the child died (status %d)", status);
  int code = WEXITSTATUS(status);
  if (code == 10 && geteuid() != 0) {
    st_rmtree(dir);
    free(dir);
    cr_skip_test("a full disk needs a private tmpfs mount, which needs root (CAP_SYS_ADMIN); "
                 "this test runs as root in CI");
  }
  cr_assert(code != 10, "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)");
  cr_assert_eq(code, 0, "exit %d (11-13: set-up, 20: SNAP_EIO, 21: another code)", code);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Schema upgrades                                                           */
/* ------------------------------------------------------------------------ */

/* The schema version this code writes (store/backends/sqlite/schema.c). */
#define SCHEMA_NOW 7

/* tests/data/schema/sqlite-v1.db (its README says how it was written):
 * schema version 1, data sets "snapshots" (keep 3; account-2 compressed)
 * and "carts". Copied to `dir`/t.db. */
static void copy_fixture_of(const char *fixture, const char *dir, const char *name) {
  uint8_t *data = NULL;
  size_t len = 0;
  char src[1024];
  snprintf(src, sizeof src, "%s/schema/%s", SNAP_TEST_DATA_DIR, fixture);
  cr_assert(st_read_file(src, &data, &len), "%s", src);
  char *path = st_join(dir, name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s", path);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
  free(path);
  free(data);
}

static void copy_fixture(const char *dir, const char *name) {
  copy_fixture_of("sqlite-v1.db", dir, name);
}

/* An integer the query returns; -1 when it returns no row. */
static int raw_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql,
               sqlite3_errmsg(db));
  int rc = sqlite3_step(q);
  cr_assert(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
  int v = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
  sqlite3_finalize(q);
  return v;
}

static void expect_state(snap_store *st, const char *pid, int64_t seq, int64_t ts,
                         const char *state) {
  char why[512];
  cr_assert(st_latest_is(st, pid, seq, ts, state, why, sizeof why), "%s", why);
}

static const char account_2[] = "{\"owner\":\"bob\",\"balance\":3,\"history\":[1,2,3,4,5,6,7,8,9,"
                                "10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28]}";

Test(sqlite, a_version_1_database_is_upgraded_at_open_and_its_snapshots_load) {
  char *dir = st_tmpdir();
  copy_fixture(dir, "t.db");
  snap_store *st = open_sqlite(dir, "");
  expect_state(st, "account-1", 2, 1700000001000, "{\"owner\":\"ada\",\"balance\":25}");
  expect_state(st, "account-2", 7, 1700000002000, account_2);
  /* The data set's retention (3) survived: a fourth save prunes the first. */
  save_n(st, "account-1", 3, 2);
  cr_assert_eq(rows_of(dir, "account-1"), 3);
  snap_store_close(st);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  cr_assert_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_NOW);
  cr_assert_eq(raw_int(db, "SELECT value FROM snapstore_meta WHERE name = "
                           "'schema_version:snapshots'"),
               SCHEMA_NOW);
  /* The other data set of the file is upgraded when it is opened, not before. */
  cr_assert_eq(
      raw_int(db, "SELECT value FROM snapstore_meta WHERE name = 'schema_version:carts'"), -1);
  st = open_sqlite(dir, "\"table\": \"carts\"");
  expect_state(st, "cart-9", 1, 1700000003000, "{\"items\":[\"tea\"]}");
  snap_store_close(st);
  cr_assert_eq(
      raw_int(db, "SELECT value FROM snapstore_meta WHERE name = 'schema_version:carts'"),
      SCHEMA_NOW);
  /* Step 2 added the manifest column to both; older rows have none. */
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE manifest IS NULL"), 4);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM carts WHERE manifest IS NULL"), 1);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* A read-only store reads the current layout only: the version 1 fixture is
 * refused, saying what to do, and left byte for byte as it was. */
Test(sqlite, a_read_only_store_refuses_a_version_1_database_and_leaves_it_unchanged) {
  char *dir = st_tmpdir();
  copy_fixture(dir, "t.db");
  char *path = st_join(dir, "t.db");
  uint8_t *before = NULL, *after = NULL;
  size_t nb = 0, na = 0;
  cr_assert(st_read_file(path, &before, &nb));
  snap_store *st = open_sqlite(dir, "\"read_only\": true");
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, "account-1", NULL, &s);
  cr_assert_eq(rc, SNAP_EFORMAT, "%d: %s", rc, snap_error_message());
  char want[96];
  snprintf(want, sizeof want, "schema version 1 needs an upgrade to version %d", SCHEMA_NOW);
  cr_assert(strstr(snap_error_message(), want), "%s", snap_error_message());
  snap_store_close(st);
  cr_assert(st_read_file(path, &after, &na));
  cr_assert(na == nb && memcmp(before, after, nb) == 0, "the file changed");
  free(before);
  free(after);
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* A data set that lost its snapstore_meta is at version 0: a read-only store
 * refuses it, saying a writer must upgrade it, and changes nothing; the
 * writer runs every step again (each is idempotent) and no row is lost. */
Test(sqlite, a_read_only_store_never_upgrades_and_the_steps_run_again_harmlessly) {
  char *dir = st_tmpdir();
  copy_fixture(dir, "t.db");
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "DROP TABLE snapstore_meta");
  snap_store *st = open_sqlite(dir, "\"read_only\": true");
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, "account-1", NULL, &s);
  cr_assert_eq(rc, SNAP_EFORMAT, "%d: %s", rc, snap_error_message());
  cr_assert(strstr(snap_error_message(), "schema version 0 needs an upgrade") &&
                strstr(snap_error_message(), "only a store that may write"),
            "%s", snap_error_message());
  snap_store_close(st);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'snapstore_meta'"),
               0, "the read-only store created nothing");
  st = open_sqlite(dir, "");
  expect_state(st, "account-1", 2, 1700000001000, "{\"owner\":\"ada\",\"balance\":25}");
  snap_store_close(st);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots"), 3);
  cr_assert_eq(raw_int(db, "SELECT value FROM snapstore_meta WHERE name = "
                           "'schema_version:snapshots'"),
               SCHEMA_NOW);
  st = open_sqlite(dir, "\"read_only\": true");
  expect_state(st, "account-2", 7, 1700000002000, account_2);
  snap_store_close(st);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* A data set a newer release upgraded is refused, by writers and readers,
 * naming both versions, and the file is left as it was. */
Test(sqlite, a_data_set_of_a_newer_schema_version_is_refused_naming_both_versions) {
  char *dir = st_tmpdir();
  copy_fixture(dir, "t.db");
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "INSERT INTO snapstore_meta VALUES ('schema_version:carts', 42)");
  const char *configs[] = {"\"table\": \"carts\"", "\"table\": \"carts\", \"read_only\": true"};
  for (int i = 0; i < 2; i++) {
    snap_store *st = open_sqlite(dir, configs[i]);
    snap_snapshot *s = NULL;
    int rc = snap_load_latest(st, "cart-9", NULL, &s);
    cr_assert_eq(rc, SNAP_EFORMAT, "%s: %d", configs[i], rc);
    char want[128];
    snprintf(want, sizeof want, "table 'carts': schema version 42 is newer than the version %d",
             SCHEMA_NOW);
    cr_assert(strstr(snap_error_message(), want), "%s", snap_error_message());
    if (i == 0)
      cr_assert_eq(snap_save(st, "cart-9", 2, SNAP_FORMAT_JSON, "1", 1, NULL, NULL),
                   SNAP_EFORMAT);
    snap_store_close(st);
  }
  cr_assert_eq(raw_int(db, "PRAGMA user_version"), 1, "the file is unchanged");
  /* The other data set of the file still opens. */
  snap_store *st = open_sqlite(dir, "");
  expect_state(st, "account-1", 2, 1700000001000, "{\"owner\":\"ada\",\"balance\":25}");
  snap_store_close(st);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Conditional saves across processes                                        */
/* ------------------------------------------------------------------------ */

/* Two processes of eight threads each save conditionally over the newest seq
 * they read: one BEGIN IMMEDIATE transaction holds the check and the insert,
 * so every seq has exactly one winner and no save is lost. */
Test(sqlite, conditional_saves_of_two_processes_of_eight_threads_have_one_winner_per_seq) {
  char *dir = st_tmpdir();
  char cfg[4096], why[512] = "";
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\", \"keep\": 0}", dir);
  cr_assert(st_race_two_processes(snap_backend_sqlite(), cfg, "contended", 8, 60, why, sizeof why),
            "%s", why);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Manifests: the column against the bound value                             */
/* ------------------------------------------------------------------------ */

static void save_manifest(snap_store *st, const char *pid, int64_t seq, const char *manifest,
                          const snap_options *o) {
  snap_save_req r = {pid, seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "{\"v\":1}", 7, o};
  snap_save_ext x = {.manifest = manifest};
  cr_assert_eq(snap_save_ex(st, &r, &x, NULL), SNAP_OK, "%s", snap_error_message());
}

/* The manifest column is only a copy for selection: the body binds the
 * manifest. A column altered behind the store (no key needed) never changes
 * what a load returns, and a selection that finds a row by an altered column
 * fails naming both values, instead of returning a snapshot of another type
 * or falling back to an older one. */
Test(sqlite, an_altered_manifest_column_never_wins_over_the_bound_manifest) {
  char *dir = st_tmpdir();
  enc_setup e = enc_setup_new(7);
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  save_manifest(st, "acct", 1, "bank.Account/2", e.o);
  save_manifest(st, "acct", 2, "bank.Account/3", e.o);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "UPDATE snapshots SET manifest_id = (SELECT id FROM snapshots_manifests WHERE "
               "name = 'bank.Account/2') WHERE seq = 2");
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "acct", e.o, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_str_eq(s->manifest, "bank.Account/3", "the bound manifest is returned");
  snap_snapshot_free(s);
  snap_criteria all = SNAP_CRITERIA_LATEST;
  int rc = snap_load_manifest(st, "acct", &all, "bank.Account/2", e.o, &s);
  cr_assert_eq(rc, SNAP_ECORRUPT, "%d %s", rc, snap_error_message());
  cr_assert_null(s);
  cr_assert(strstr(snap_error_message(), "column says 'bank.Account/2'") &&
                strstr(snap_error_message(), "body states 'bank.Account/3'"),
            "%s", snap_error_message());
  /* Altering the bound manifest itself needs the key: the body fails to authenticate. */
  sqlite3_stmt *q;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT body FROM snapshots WHERE seq = 1", -1, &q, NULL),
               SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  size_t n = (size_t)sqlite3_column_bytes(q, 0);
  uint8_t *body = malloc(n);
  memcpy(body, sqlite3_column_blob(q, 0), n);
  sqlite3_finalize(q);
  uint8_t *at = memmem(body, n, "Account/2", 9);
  cr_assert_not_null(at, "the manifest is in the header, in clear");
  at[8] = '3';
  cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE snapshots SET body = ?1 WHERE seq = 1", -1, &q, NULL),
               SQLITE_OK);
  sqlite3_bind_blob(q, 1, body, (int)n, SQLITE_STATIC);
  cr_assert_eq(sqlite3_step(q), SQLITE_DONE);
  sqlite3_finalize(q);
  free(body);
  snap_criteria first = {1, 1, 0, INT64_MAX};
  cr_assert_eq(snap_load(st, "acct", &first, e.o, &s), SNAP_EAUTH, "%s", snap_error_message());
  sqlite3_close(db);
  snap_store_close(st);
  enc_setup_free(&e);
  st_rmtree(dir);
  free(dir);
}

/* The youngest snapshot of `pid` stating `manifest` is seq `seq`. */
static void expect_manifest_seq(snap_store *st, const char *pid, const char *manifest,
                                int64_t seq) {
  snap_criteria all = SNAP_CRITERIA_LATEST;
  snap_snapshot *got = NULL;
  cr_assert_eq(snap_load_manifest(st, pid, &all, manifest, NULL, &got), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_not_null(got, "no snapshot of '%s' states '%s'", pid, manifest);
  cr_assert_eq(got->seq, seq);
  snap_snapshot_free(got);
}

/* A manifest is stored once: rows name it by id, so that it costs a row a
 * byte or two rather than its name. */
Test(sqlite, a_manifest_is_stored_once_and_rows_name_it_by_id) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 0");
  for (int64_t seq = 1; seq <= 40; seq++)
    save_manifest(st, seq % 2 ? "a" : "b", seq, seq <= 30 ? "bank.Account/3" : "bank.Account/4",
                  NULL);
  save_manifest(st, "c", 1, NULL, NULL);
  snap_store_close(st);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots_manifests"), 2);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE manifest IS NOT NULL"), 0,
               "no row carries the name itself");
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots s JOIN snapshots_manifests m ON "
                           "m.id = s.manifest_id WHERE m.name = 'bank.Account/3'"),
               30);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE manifest_id IS NULL"), 1);
  cr_assert_eq(raw_int(db, "SELECT max(length(CAST(manifest_id AS BLOB))) FROM snapshots"), 1);
  sqlite3_close(db);
  st = open_sqlite(dir, "");
  snap_criteria all = SNAP_CRITERIA_LATEST;
  snap_snapshot *got = NULL;
  expect_manifest_seq(st, "a", "bank.Account/3", 29);
  expect_manifest_seq(st, "b", "bank.Account/4", 40);
  cr_assert_eq(snap_load_manifest(st, "c", &all, "bank.Account/3", NULL, &got), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_null(got, "a row without a manifest is never selected by one");
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

/* tests/data/schema/sqlite-v4.db (its README says how it was written):
 * schema version 4, where rows carried their manifest as text. Upgraded at
 * open, its rows are still selected by manifest, beside new rows that name
 * theirs by id. */
Test(sqlite, a_version_4_database_keeps_its_manifests_selectable_after_the_upgrade) {
  char *dir = st_tmpdir();
  copy_fixture_of("sqlite-v4.db", dir, "t.db");
  snap_store *st = open_sqlite(dir, "");
  expect_state(st, "account-1", 2, 1700000001000, "{\"owner\":\"ada\",\"balance\":25}");
  expect_state(st, "account-2", 7, 1700000002000, account_2);
  snap_criteria all = SNAP_CRITERIA_LATEST;
  snap_snapshot *got = NULL;
  cr_assert_eq(snap_load_manifest(st, "account-3", &all, "bank.Account/1", NULL, &got), SNAP_OK,
               "%s", snap_error_message());
  cr_assert_eq(got->seq, 1);
  cr_assert_str_eq(got->manifest, "bank.Account/1");
  snap_snapshot_free(got);
  save_manifest(st, "account-4", 1, "bank.Account/1", NULL);
  expect_manifest_seq(st, "account-4", "bank.Account/1", 1);
  snap_store_close(st);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  cr_assert_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_NOW);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE manifest IS NOT NULL"), 2,
               "the rows of version 4 keep their text");
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE manifest_id IS NOT NULL"), 1);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* tests/data/schema/sqlite-v5.db (its README says how it was written):
 * schema version 5, manifests named by id. Step 6 adds the stream column and
 * the bookkeeping of chunk files: every row keeps loading (and selecting by
 * manifest), has no stream, and the data set takes streamed saves. */
Test(sqlite, a_version_5_database_gets_the_stream_bookkeeping_and_its_snapshots_load) {
  char *dir = st_tmpdir();
  copy_fixture_of("sqlite-v5.db", dir, "t.db");
  snap_store *st = open_sqlite(dir, "");
  expect_state(st, "account-1", 2, 1700000001000, "{\"owner\":\"ada\",\"balance\":25}");
  expect_state(st, "account-2", 7, 1700000002000, account_2);
  expect_manifest_seq(st, "account-3", "bank.Account/1", 1);
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "account-1", 3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON,
                                      NULL, NULL, 0, &w),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save_stream_write(w, "[3]", 3), SNAP_OK);
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  cr_assert_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_NOW);
  cr_assert_eq(raw_int(db, "SELECT value FROM snapstore_meta WHERE name = "
                           "'schema_version:snapshots'"),
               SCHEMA_NOW);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE stream IS NULL"), 5);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE stream IS NOT NULL"), 1);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
                           "('snapshots_dead', 'snapshots_stream', 'snapshots_stream_delete', "
                           "'snapshots_stream_update', 'snapshots_stream_replace')"),
               5);
  /* The other data set of the file is upgraded when it is opened. */
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'carts_dead'"), 0);
  st = open_sqlite(dir, "\"table\": \"carts\"");
  expect_state(st, "cart-9", 1, 1700000003000, "{\"items\":[\"tea\"]}");
  snap_store_close(st);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'carts_dead'"), 1);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* The files in the data sets' streams folder of the store in `dir`. */
static int stream_files(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/t.db.streams", dir);
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  return n;
}

/* The triggers that record a removed streamed row's file, by data set. */
static int stream_triggers_of(sqlite3 *db, const char *table) {
  char q[256];
  snprintf(q, sizeof q,
           "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '%s'",
           table);
  return raw_int(db, q);
}

/* Step 7: the stream triggers cost every save a lookup and every pruned row
 * a read past its body, so a data set has them only once a row is streamed;
 * that row's own transaction creates them, and removals of streamed rows
 * are recorded from then on (tests/test_streams.c checks the files go). */
Test(sqlite, a_data_set_has_the_stream_triggers_only_once_a_row_is_streamed) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 2");
  for (int64_t seq = 1; seq <= 3; seq++)
    cr_assert_eq(snap_save(st, "p", seq, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  cr_assert_eq(stream_triggers_of(db, "snapshots"), 0, "no streamed row, no trigger");
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "p", 4, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                      NULL, 0, &w),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save_stream_write(w, "[4]", 3), SNAP_OK);
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(stream_triggers_of(db, "snapshots"), 3);
  /* A replace of the streamed (pid, seq) takes its file along. */
  cr_assert_eq(snap_save_at(st, "p", 4, 5000, SNAP_FORMAT_JSON, "[5]", 3, NULL, NULL), SNAP_OK);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots WHERE stream IS NOT NULL"), 0);
  cr_assert_eq(stream_files(dir), 0);
  expect_state(st, "p", 4, 5000, "[5]");
  snap_store_close(st);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* The list of removed streams' files ("<table>_dead") empties once their
 * files are unlinked after the commit. Its delete named the table twice
 * through a one-name template: it never ran, so the list only grew and every
 * later commit unlinked its names again and synced the folder. */
Test(sqlite, the_files_of_removed_streams_leave_the_list_once_unlinked) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"keep\": 1");
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  for (int64_t seq = 1; seq <= 3; seq++) {
    snap_save_stream *w = NULL;
    cr_assert_eq(snap_save_stream_begin(st, "p", seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, NULL,
                                        NULL, 0, &w),
                 SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(snap_save_stream_write(w, "[1]", 3), SNAP_OK);
    cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(stream_files(dir), 1, "retention keeps one stream and its file");
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots_dead"), 0,
                 "the pruned stream's name left the list");
  }
  cr_assert_eq(snap_delete(st, "p", INT64_MAX), SNAP_OK);
  cr_assert_eq(stream_files(dir), 0);
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM snapshots_dead"), 0);
  snap_store_close(st);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* tests/data/schema/sqlite-v6.db (its README says how it was written):
 * schema version 6, every data set with its three stream triggers and no
 * streamed row. Step 7 drops the triggers of a data set without a streamed
 * row and keeps those of one with (here a row marked streamed by hand before
 * the upgrade: its removal must still be recorded). */
Test(sqlite, a_version_6_database_keeps_the_stream_triggers_only_where_a_row_is_streamed) {
  char *dir = st_tmpdir();
  copy_fixture_of("sqlite-v6.db", dir, "t.db");
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  cr_assert_eq(stream_triggers_of(db, "snapshots"), 3);
  cr_assert_eq(stream_triggers_of(db, "carts"), 3);
  st_sqlite_run(db, "UPDATE carts SET stream = 'gone.chunks' WHERE pid = 'cart-9'");
  snap_store *st = open_sqlite(dir, "");
  expect_state(st, "account-1", 2, 1700000001000, "{\"owner\":\"ada\",\"balance\":25}");
  expect_state(st, "account-2", 7, 1700000002000, account_2);
  expect_manifest_seq(st, "account-3", "bank.Account/1", 1);
  snap_store_close(st);
  cr_assert_eq(raw_int(db, "SELECT value FROM snapstore_meta WHERE name = "
                           "'schema_version:snapshots'"),
               SCHEMA_NOW);
  cr_assert_eq(stream_triggers_of(db, "snapshots"), 0);
  st = open_sqlite(dir, "\"table\": \"carts\"");
  cr_assert_eq(snap_save(st, "cart-10", 1, SNAP_FORMAT_JSON, "[]", 2, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  snap_store_close(st);
  cr_assert_eq(raw_int(db, "SELECT value FROM snapstore_meta WHERE name = 'schema_version:carts'"),
               SCHEMA_NOW);
  cr_assert_eq(stream_triggers_of(db, "carts"), 3, "a streamed row keeps them");
  st_sqlite_run(db, "DELETE FROM carts WHERE pid = 'cart-9'");
  cr_assert_eq(raw_int(db, "SELECT count(*) FROM carts_dead WHERE name = 'gone.chunks'"), 1);
  sqlite3_close(db);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Dictionaries                                                              */
/* ------------------------------------------------------------------------ */

/* An encrypting store keeps its dictionaries encrypted: the row in
 * "<table>_dicts" is an AEAD body bound to the dictionary's id, and none of
 * the dictionary's bytes appear in the file. */
Test(sqlite, an_encrypting_store_keeps_its_dictionaries_encrypted) {
  char *dir = st_tmpdir();
  snap_store *st = open_sqlite(dir, "\"compression\": \"zstd\", \"dictionary\": \"orders\"");
  snap_keyring *kr;
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, 0x42, sizeof key);
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "tests/sqlite/dicts/v1"), SNAP_OK);
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  static const char dict[] = "ORDER-SECRET-DICTIONARY {\"order\":\"\",\"lines\":[{\"sku\":\"\"}]}";
  uint32_t id;
  cr_assert_eq(snap_store_dict_add(st, "orders", dict, strlen(dict), &id), SNAP_OK, "%s",
               snap_error_message());
  static const char state[] = "{\"order\":\"o-1\",\"lines\":[{\"sku\":\"a\"},{\"sku\":\"b\"},"
                              "{\"sku\":\"c\"}],\"note\":\"ORDER-SECRET-DICTIONARY\"}";
  snap_meta m;
  cr_assert_eq(snap_save(st, "o-1", 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m), SNAP_OK,
               "%s", snap_error_message());
  cr_assert(m.stages & SNAP_STAGE_ENCRYPTED);
  snap_store_close(st);

  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  sqlite3_stmt *q;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT id, body FROM snapshots_dicts", -1, &q, NULL),
               SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  cr_assert_eq((uint32_t)sqlite3_column_int64(q, 0), id);
  const uint8_t *b = sqlite3_column_blob(q, 1);
  int n = sqlite3_column_bytes(q, 1);
  unsigned stages = 0;
  cr_assert_eq(snap_body_inspect(b, (size_t)n, NULL, &stages, NULL, NULL), SNAP_OK);
  cr_assert_eq(stages, SNAP_STAGE_ENCRYPTED);
  cr_assert_null(memmem(b, (size_t)n, "ORDER-SECRET", 12), "the dictionary is stored in clear");
  sqlite3_finalize(q);
  sqlite3_close(db);

  /* Reopened with the key: the dictionary opens and the state loads. */
  st = open_sqlite(dir, "");
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "o-1", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s->len == strlen(state) && memcmp(s->data, state, s->len) == 0);
  snap_snapshot_free(s);
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}
