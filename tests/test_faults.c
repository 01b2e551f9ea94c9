/*
 * Hostile conditions through the public API: every allocation failing in
 * turn, a full disk, a lock held by another process, unusable directories and
 * files. Each must end in a clear error, never a crash, a leak or lost data.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snapstore.h"
#include "snap/sys/backend.h"

/* ------------------------------------------------------------------------ */
/* A test allocator that fails the n-th allocation and counts live blocks    */
/* ------------------------------------------------------------------------ */

static struct {
  long attempts; /* allocations asked for since the last reset */
  long fail_at;  /* the attempt that fails (0: none) */
  long failures; /* how many were failed */
  long live;     /* blocks handed out and not yet freed */
  long secure;   /* secure allocations asked for, over all runs */
} fa;

static int fail_now(void) {
  if (++fa.attempts == fa.fail_at) {
    fa.failures++;
    return 1;
  }
  return 0;
}

static void *fa_malloc(size_t n, void *ud) {
  (void)ud;
  if (fail_now())
    return NULL;
  void *p = malloc(n);
  if (p)
    fa.live++;
  return p;
}

static void *fa_realloc(void *p, size_t n, void *ud) {
  if (p == NULL)
    return fa_malloc(n, ud);
  if (fail_now())
    return NULL;
  return realloc(p, n);
}

static void fa_free(void *p, void *ud) {
  (void)ud;
  if (p) {
    fa.live--;
    free(p);
  }
}

/* Key material: counted and failed like the rest (guarding is not the point here). */
static void *fa_secure_malloc(size_t n, void *ud) {
  fa.secure++;
  return fa_malloc(n, ud);
}
static void fa_secure_free(void *p, void *ud) { fa_free(p, ud); }

static const snap_allocator fa_allocator = {fa_malloc,        fa_realloc,     fa_free,
                                            fa_secure_malloc, fa_secure_free, NULL};

static void fa_reset(long fail_at) {
  fa.attempts = 0;
  fa.fail_at = fail_at;
  fa.failures = 0;
}

/*
 * Runs `scenario` with the first, second, third ... allocation failing until a
 * run completes without reaching the failing allocation. Every run must
 * return SNAP_OK or SNAP_ENOMEM and free everything it allocated; the run
 * without a failure must succeed. Returns how many runs there were.
 */
typedef int (*scenario_fn)(void *ctx);

static long run_failing_each_allocation(const char *name, scenario_fn scenario, void *ctx) {
  snap_allocator_set(&fa_allocator);
  long n;
  for (n = 1;; n++) {
    fa.live = 0;
    fa_reset(n);
    int rc = scenario(ctx);
    cr_assert(rc == SNAP_OK || rc == SNAP_ENOMEM,
              "%s, allocation %ld failing: returned %d (%s): %s", name, n, rc, snap_strerror(rc),
              snap_error_message());
    cr_assert_eq(fa.live, 0, "%s, allocation %ld failing: %ld blocks leaked", name, n, fa.live);
    if (fa.failures == 0) {
      cr_assert_eq(rc, SNAP_OK, "%s without any failure: %d (%s)", name, rc, snap_error_message());
      break;
    }
    cr_assert(n < 100000, "%s never completes", name);
  }
  snap_allocator_set(NULL);
  cr_log_info("%s: %ld runs, each failing one more allocation", name, n);
  return n;
}

/* ---- scenarios ---------------------------------------------------------- */

static const char ledger[] = "{\"account\":\"account-42\",\"entries\":[{\"id\":1,\"amount\":100},"
                             "{\"id\":2,\"amount\":-40},{\"id\":3,\"amount\":250},"
                             "{\"id\":4,\"amount\":100},{\"id\":5,\"amount\":100}],"
                             "\"balance\":510}";
static const char ledger2[] = "{\"account\":\"account-42\",\"entries\":[],\"balance\":0}";

static const uint8_t master_key[SNAP_KEY_BYTES] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                   12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                   23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* A keyring and options with zlib and encryption; cleaned up by the caller
 * whatever failed. */
static int make_options(snap_keyring **kr, snap_options **o) {
  *kr = NULL;
  *o = NULL;
  int rc;
  if ((rc = snap_keyring_new(kr)) != SNAP_OK)
    return rc;
  if ((rc = snap_keyring_add(*kr, 1, master_key, sizeof master_key)) != SNAP_OK)
    return rc;
  if ((rc = snap_options_new(o)) != SNAP_OK)
    return rc;
  if ((rc = snap_options_set_compression(*o, SNAP_COMPRESSION_ZLIB, 6)) != SNAP_OK)
    return rc;
  return snap_options_set_encryption(*o, *kr, "acme/test/snapshots/v1");
}

static int scenario_codec(void *ctx) {
  (void)ctx;
  snap_keyring *kr;
  snap_options *o;
  snap_buf body = SNAP_BUF_INIT, state = SNAP_BUF_INIT;
  int rc = make_options(&kr, &o);
  unsigned stages = 0;
  snap_format fmt = 0;
  if (rc == SNAP_OK)
    rc = snap_body_encode("account-42", 7, SNAP_FORMAT_JSON, ledger, sizeof ledger - 1, o, &body,
                          &stages);
  if (rc == SNAP_OK) {
    cr_assert_eq(stages, SNAP_STAGE_COMPRESSED | SNAP_STAGE_ENCRYPTED);
    rc = snap_body_decode("account-42", 7, body.data, body.len, o, &state, &fmt, NULL);
  }
  if (rc == SNAP_OK) {
    cr_assert_eq(state.len, sizeof ledger - 1);
    cr_assert_eq(memcmp(state.data, ledger, state.len), 0);
  } else {
    /* No partial output on failure. */
    cr_assert_eq(state.len, 0);
  }
  snap_buf_dispose(&body);
  snap_buf_dispose(&state);
  snap_options_free(o);
  snap_keyring_free(kr);
  return rc;
}

/* Saves two snapshots then loads the latest; a load that succeeds must give
 * exactly the newest saved state, never an older one or none. */
static int save_and_load(snap_store *st) {
  snap_keyring *kr;
  snap_options *o;
  snap_snapshot *snap = NULL;
  int saved = 0;
  int rc = make_options(&kr, &o);
  if (rc == SNAP_OK)
    rc = snap_save(st, "account-42", 1, SNAP_FORMAT_JSON, ledger2, sizeof ledger2 - 1, o, NULL);
  if (rc == SNAP_OK) {
    saved = 1;
    rc = snap_save(st, "account-42", 2, SNAP_FORMAT_JSON, ledger, sizeof ledger - 1, o, NULL);
  }
  if (rc == SNAP_OK) {
    saved = 2;
    rc = snap_load_latest(st, "account-42", o, &snap);
  }
  if (rc == SNAP_OK) {
    cr_assert_not_null(snap, "a saved snapshot was not found");
    cr_assert_eq(snap->seq, 2, "loaded seq %lld, not the newest", (long long)snap->seq);
    cr_assert_eq(snap->len, sizeof ledger - 1);
    cr_assert_eq(memcmp(snap->data, ledger, snap->len), 0);
    cr_assert_eq(snap->skipped, 0);
  } else if (saved == 2) {
    cr_assert_null(snap);
    /* Out of memory while loading is not a reason to lose the snapshot: it
     * loads once memory is back. */
    fa.fail_at = 0;
    snap_snapshot *again = NULL;
    cr_assert_eq(snap_load_latest(st, "account-42", o, &again), SNAP_OK, "%s",
                 snap_error_message());
    cr_assert(again != NULL && again->seq == 2);
    snap_snapshot_free(again);
  }
  snap_snapshot_free(snap);
  snap_options_free(o);
  snap_keyring_free(kr);
  return rc;
}

static int scenario_store(void *ctx) {
  const char *const *cfg = ctx; /* {backend name, config} */
  const snap_backend *b =
      strcmp(cfg[0], "sqlite") == 0 ? snap_backend_sqlite() : snap_backend_memory();
  snap_store *st = NULL;
  int rc = snap_store_open_backend(&st, b, cfg[1]);
  if (rc == SNAP_OK)
    rc = save_and_load(st);
  snap_store_close(st);
  return rc;
}

Test(faults, every_allocation_failure_in_encode_and_decode_is_reported_without_a_leak) {
  fa.secure = 0;
  long runs = run_failing_each_allocation("encode+decode", scenario_codec, NULL);
  cr_assert_gt(runs, 3, "the codec made only %ld allocations", runs - 1);
  /* The key went through the secure hooks, so those were failed in turn too. */
  cr_assert_gt(fa.secure, 0);
}

Test(faults, every_allocation_failure_in_a_memory_store_save_and_load_is_reported_without_a_leak) {
  const char *cfg[] = {"memory", "{\"keep\": 2}"};
  long runs = run_failing_each_allocation("memory store", scenario_store, cfg);
  cr_assert_gt(runs, 3);
}

/* ------------------------------------------------------------------------ */
/* Temporary databases                                                       */
/* ------------------------------------------------------------------------ */

typedef struct tmpdb {
  char dir[512];
  char path[600];
  char config[900];
} tmpdb;

static void tmpdb_make(tmpdb *t, const char *extra_config) {
  const char *base = getenv("SNAP_TEST_TMP");
  if (!base || !*base)
    base = "/tmp";
  mkdir(base, 0755); /* the build's tmp dir may not exist yet */
  snprintf(t->dir, sizeof t->dir, "%s/faults-XXXXXX", base);
  cr_assert_not_null(mkdtemp(t->dir), "mkdtemp in %s: %s", base, strerror(errno));
  snprintf(t->path, sizeof t->path, "%s/state.db", t->dir);
  snprintf(t->config, sizeof t->config, "{\"path\": \"%s\"%s%s}", t->path, extra_config ? ", " : "",
           extra_config ? extra_config : "");
}

static void tmpdb_remove_files(const tmpdb *t) {
  static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
  char f[700];
  for (int i = 0; i < 4; i++) {
    snprintf(f, sizeof f, "%s%s", t->path, suffix[i]);
    unlink(f);
  }
}

static void tmpdb_destroy(const tmpdb *t) {
  tmpdb_remove_files(t);
  rmdir(t->dir);
}

static int scenario_sqlite(void *ctx) {
  const tmpdb *t = ctx;
  /* A fresh file each run, so every run goes through schema creation too. */
  tmpdb_remove_files(t);
  const char *cfg[] = {"sqlite", t->config};
  return scenario_store(cfg);
}

Test(faults, every_allocation_failure_in_a_sqlite_store_save_and_load_is_reported_without_a_leak) {
  tmpdb t;
  tmpdb_make(&t, "\"keep\": 2, \"synchronous\": \"normal\"");
  long runs = run_failing_each_allocation("sqlite store", scenario_sqlite, &t);
  cr_assert_gt(runs, 3);
  tmpdb_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* Disk full                                                                 */
/* ------------------------------------------------------------------------ */

/* A JSON string of `n` characters that zlib could not shrink much either. */
static char *noise_json(size_t n, unsigned seed) {
  char *s = malloc(n + 3);
  cr_assert_not_null(s);
  s[0] = '"';
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 1; i <= n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[x % 62];
  }
  s[n + 1] = '"';
  s[n + 2] = '\0';
  return s;
}

static void assert_integrity_ok(const char *path) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *s = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
  cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

Test(faults, a_full_database_fails_the_save_with_efull_and_keeps_older_snapshots) {
  tmpdb t;
  /* 48 pages of 4 KiB: room for a few 16 KiB snapshots, then full. */
  tmpdb_make(&t, "\"max_page_count\": 48, \"keep\": 0, \"synchronous\": \"normal\"");
  snap_store *st;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), t.config), SNAP_OK, "%s",
               snap_error_message());
  int rc = SNAP_OK;
  int64_t seq;
  for (seq = 1; seq <= 100; seq++) {
    char *state = noise_json(16 * 1024, (unsigned)seq);
    rc = snap_save(st, "account-42", seq, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL);
    free(state);
    if (rc != SNAP_OK)
      break;
  }
  cr_assert(seq > 2 && seq <= 100, "the cap was hit at seq %lld", (long long)seq);
  cr_assert_eq(rc, SNAP_EFULL, "save at seq %lld: %d (%s): %s", (long long)seq, rc,
               snap_strerror(rc), snap_error_message());
  cr_assert(strstr(snap_error_message(), "full") != NULL, "message: %s", snap_error_message());

  /* Every save that returned OK is still there, byte for byte. */
  for (int64_t k = 1; k < seq; k++) {
    snap_snapshot *s = NULL;
    snap_criteria c = {k, k, INT64_MIN, INT64_MAX};
    cr_assert_eq(snap_load(st, "account-42", &c, NULL, &s), SNAP_OK, "%s", snap_error_message());
    cr_assert_not_null(s, "seq %lld lost", (long long)k);
    char *want = noise_json(16 * 1024, (unsigned)k);
    cr_assert_eq(s->len, strlen(want));
    cr_assert_eq(memcmp(s->data, want, s->len), 0, "seq %lld changed", (long long)k);
    free(want);
    snap_snapshot_free(s);
  }
  snap_snapshot *latest = NULL;
  cr_assert_eq(snap_load_latest(st, "account-42", NULL, &latest), SNAP_OK);
  cr_assert(latest != NULL && latest->seq == seq - 1);
  snap_snapshot_free(latest);

  /* Freeing room makes saves work again. */
  cr_assert_eq(snap_delete(st, "account-42", seq - 2), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(
      snap_save(st, "account-42", seq, SNAP_FORMAT_JSON, "{\"small\":true}", 14, NULL, NULL),
      SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  assert_integrity_ok(t.path);
  tmpdb_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* Lock held by another process                                              */
/* ------------------------------------------------------------------------ */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

Test(faults, a_write_lock_held_by_another_process_fails_the_save_with_ebusy_after_the_timeout) {
  const int timeout_ms = 300;
  tmpdb t;
  char extra[64];
  snprintf(extra, sizeof extra, "\"busy_timeout_ms\": %d, \"keep\": 0", timeout_ms);
  tmpdb_make(&t, extra);
  snap_store *st;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), t.config), SNAP_OK);
  cr_assert_eq(snap_save(st, "account-42", 1, SNAP_FORMAT_JSON, "{\"v\":1}", 7, NULL, NULL),
               SNAP_OK, "%s", snap_error_message());

  int locked[2], release[2];
  cr_assert_eq(pipe(locked), 0);
  cr_assert_eq(pipe(release), 0);
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0) {
    /* Hold the write lock until the parent says so. */
    sqlite3 *db = NULL;
    char c = 'x';
    int ok = sqlite3_open(t.path, &db) == SQLITE_OK &&
             sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    c = ok ? 'L' : 'E';
    if (write(locked[1], &c, 1) != 1 || read(release[0], &c, 1) != 1)
      _exit(2);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    _exit(ok ? 0 : 1);
  }
  char c = 0;
  cr_assert_eq(read(locked[0], &c, 1), 1);
  cr_assert_eq(c, 'L', "the other process could not take the lock");

  double t0 = now_ms();
  int rc = snap_save(st, "account-42", 2, SNAP_FORMAT_JSON, "{\"v\":2}", 7, NULL, NULL);
  double waited = now_ms() - t0;
  cr_assert_eq(rc, SNAP_EBUSY, "save under a held lock: %d (%s): %s", rc, snap_strerror(rc),
               snap_error_message());
  cr_assert(strstr(snap_error_message(), "locked") != NULL ||
                strstr(snap_error_message(), "busy") != NULL,
            "message: %s", snap_error_message());
  /* It waited for the lock rather than failing at once (no upper bound: a
   * slow machine may take longer). */
  cr_assert_geq(waited, 0.8 * timeout_ms, "gave up after %.0f ms", waited);

  c = 'R';
  cr_assert_eq(write(release[1], &c, 1), 1);
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  cr_assert_eq(snap_save(st, "account-42", 2, SNAP_FORMAT_JSON, "{\"v\":2}", 7, NULL, NULL),
               SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "account-42", NULL, &s), SNAP_OK);
  cr_assert(s != NULL && s->seq == 2);
  snap_snapshot_free(s);
  snap_store_close(st);
  close(locked[0]);
  close(locked[1]);
  close(release[0]);
  close(release[1]);
  tmpdb_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* Unusable places and files                                                 */
/* ------------------------------------------------------------------------ */

/* Opening is lazy: the store opens, and the first save and load report the
 * problem with `code` and a message containing `words`. */
static void assert_first_use_fails(const char *config, int code, const char *words) {
  snap_store *st;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), config), SNAP_OK, "%s",
               snap_error_message());
  int rc = snap_save(st, "account-42", 1, SNAP_FORMAT_JSON, "{}", 2, NULL, NULL);
  cr_assert_eq(rc, code, "save: %d (%s): %s", rc, snap_strerror(rc), snap_error_message());
  cr_assert(strstr(snap_error_message(), words) != NULL, "save message: %s", snap_error_message());
  snap_snapshot *s = NULL;
  rc = snap_load_latest(st, "account-42", NULL, &s);
  cr_assert_eq(rc, code, "load: %d (%s): %s", rc, snap_strerror(rc), snap_error_message());
  cr_assert_null(s);
  cr_assert(strstr(snap_error_message(), words) != NULL, "load message: %s", snap_error_message());
  snap_store_close(st);
}

Test(faults, a_missing_directory_is_an_io_error_naming_the_path) {
  tmpdb t;
  tmpdb_make(&t, NULL);
  char config[800];
  snprintf(config, sizeof config, "{\"path\": \"%s/no/such/dir/state.db\"}", t.dir);
  assert_first_use_fails(config, SNAP_EIO, "/no/such/dir/state.db");
  assert_first_use_fails(config, SNAP_EIO, "cannot open");
  tmpdb_destroy(&t);
}

Test(faults, a_read_only_directory_is_an_io_error_naming_the_path) {
  if (geteuid() == 0) {
    /* Permission bits do not stop root: use a file system that refuses new
     * files to everybody instead. */
    assert_first_use_fails("{\"path\": \"/proc/snapstore-faults.db\"}", SNAP_EIO,
                           "/proc/snapstore-faults.db");
    return;
  }
  tmpdb t;
  tmpdb_make(&t, NULL);
  cr_assert_eq(chmod(t.dir, 0555), 0);
  assert_first_use_fails(t.config, SNAP_EIO, "cannot open");
  chmod(t.dir, 0755);
  tmpdb_destroy(&t);
}

Test(faults, a_file_that_is_not_a_database_is_a_format_error) {
  tmpdb t;
  tmpdb_make(&t, NULL);
  FILE *f = fopen(t.path, "wb");
  cr_assert_not_null(f);
  for (int i = 0; i < 200; i++)
    fputs("this is a text file, not an SQLite database\n", f);
  fclose(f);
  assert_first_use_fails(t.config, SNAP_EFORMAT, "not a database");
  /* And the file is left as it was. */
  struct stat sb;
  cr_assert_eq(stat(t.path, &sb), 0);
  cr_assert_eq(sb.st_size, 200 * 44);
  tmpdb_destroy(&t);
}

Test(faults, a_database_from_a_newer_schema_version_is_refused_with_a_clear_message) {
  tmpdb t;
  tmpdb_make(&t, NULL);
  snap_store *st;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), t.config), SNAP_OK);
  cr_assert_eq(snap_save(st, "account-42", 1, SNAP_FORMAT_JSON, "{}", 2, NULL, NULL), SNAP_OK);
  snap_store_close(st);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(t.path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_first_use_fails(t.config, SNAP_EFORMAT, "schema version 99 is newer");
  /* Refusing it changed nothing. */
  cr_assert_eq(sqlite3_open(t.path, &db), SQLITE_OK);
  sqlite3_stmt *s = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
  cr_assert_eq(sqlite3_column_int(s, 0), 99);
  sqlite3_finalize(s);
  sqlite3_close(db);
  assert_integrity_ok(t.path);
  tmpdb_destroy(&t);
}
