/* Envelope keys under SIGKILL, for both places a key table can live (in the
 * data's database, and in a separate key store):
 *
 *  - a process saving new shred units is killed between a unit's key commit
 *    and its body's commit (at a chosen key creation: the backend is wrapped
 *    so that the process kills itself right after the key table committed),
 *    and at random moments; after every kill each stored body loads, every
 *    acknowledged save is there, and what may be left over is unused keys
 *    only (at most one per kill), never a body without its key;
 *  - a rewrap (snap_rewrap(), what `snapctl rekey --wrap-only` runs) is
 *    killed after its first committed page and at a random moment while
 *    another process keeps saving new and existing units, then run again to
 *    completion; the old master key is retired and every body loads, no
 *    acknowledged save lost.
 *
 * Correctness does not depend on timing: the chosen kill points hit the
 * window on every round (asserted), and the writer's progress is awaited by
 * counting its acknowledgements, not by sleeping. SNAP_KEY_KILLS sets the
 * rounds per placement (default 24). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "snapstore.h"
#include "snap/envelope.h"
#include "snap/sys/backend.h"
#include "store_util.h"

#define CTX "acme/test/snapshots/v1"
#define OLD_FILL 0x31
#define NEW_FILL 0x32

/* ---- helpers ----------------------------------------------------------- */

static snap_keyring *ring(bool old_key, bool new_key) {
  snap_keyring *kr = NULL;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  if (old_key) {
    memset(key, OLD_FILL, sizeof key);
    cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  }
  if (new_key) {
    memset(key, NEW_FILL, sizeof key);
    cr_assert_eq(snap_keyring_add(kr, 2, key, sizeof key), SNAP_OK);
    cr_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
  }
  return kr;
}

static snap_options *envelope_opts(snap_keyring *kr) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, CTX), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  return o;
}

/* The sqlite section: data in dir/data.db, keys there or in dir/keys.db. */
static void config(char *out, size_t cap, const char *dir, bool keystore, const char *sync) {
  char ks[1200] = "";
  if (keystore)
    snprintf(ks, sizeof ks,
             ", \"envelope\": {\"keystore\": {\"path\": \"%s/keys.db\", \"synchronous\": \"%s\"}}",
             dir, sync);
  snprintf(out, cap, "{\"path\": \"%s/data.db\", \"keep\": 0, \"synchronous\": \"%s\"%s}", dir,
           sync, ks);
}

/* Opens in a child: failures exit with a code instead of asserting. */
static snap_store *child_open(const snap_backend *be, const char *cfg, snap_options *o) {
  snap_store *st = NULL;
  if (snap_store_open_backend(&st, be, cfg) != SNAP_OK ||
      snap_store_set_default_options(st, o) != SNAP_OK)
    _exit(2);
  return st;
}

static snap_store *open_store(const char *cfg, snap_options *o) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK, "%s: %s", cfg,
               snap_error_message());
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  return st;
}

static size_t state_for(char *out, size_t cap, const char *pid, int64_t seq) {
  return (size_t)snprintf(out, cap, "{\"pid\":\"%s\",\"seq\":%" PRId64 ",\"pad\":\"%0*d\"}", pid,
                          seq, (int)(seq % 97), 0);
}

/* An acknowledged save: pid and seq (records under PIPE_BUF: atomic writes). */
typedef struct ack {
  char pid[24];
  int64_t seq;
} ack;

static void save_and_ack(snap_store *st, const char *pid, int64_t seq, int fd) {
  char state[256];
  size_t n = state_for(state, sizeof state, pid, seq);
  if (snap_save(st, pid, seq, SNAP_FORMAT_JSON, state, n, NULL, NULL) != SNAP_OK)
    _exit(3);
  ack a = {{0}, seq};
  snprintf(a.pid, sizeof a.pid, "%s", pid);
  if (fd >= 0 && write(fd, &a, sizeof a) != (ssize_t)sizeof a)
    _exit(4);
}

typedef struct acks {
  ack *v;
  size_t n, cap;
} acks;

/* Reads the acknowledgements waiting on `fd`: with `block`, waits for one
 * first. Returns false at the end of the pipe. */
static bool acks_drain(acks *as, int fd, bool block) {
  for (;;) {
    if (!block) {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(fd, &r);
      struct timeval tv = {0, 0};
      if (select(fd + 1, &r, NULL, NULL, &tv) <= 0)
        return true;
    }
    ack a;
    ssize_t got = read(fd, &a, sizeof a);
    if (got == 0)
      return false;
    cr_assert_eq(got, (ssize_t)sizeof a, "a partial acknowledgement");
    if (as->n == as->cap) {
      as->cap = as->cap ? 2 * as->cap : 1024;
      as->v = realloc(as->v, as->cap * sizeof *as->v);
      cr_assert_not_null(as->v);
    }
    as->v[as->n++] = a;
    block = false;
  }
}

static int64_t raw_int(const char *path, const char *attach, const char *sql) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  if (attach) {
    char att[1200];
    snprintf(att, sizeof att, "ATTACH '%s' AS k", attach);
    cr_assert_eq(sqlite3_exec(db, att, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  }
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "%s", sql);
  int64_t v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return v;
}

/* Where the key table is: "main" (data.db) or "k" (keys.db attached). */
typedef struct place {
  char *data, *keys; /* keys NULL: in data.db */
} place;

static place place_of(const char *dir, bool keystore) {
  place p = {st_join(dir, "data.db"), keystore ? st_join(dir, "keys.db") : NULL};
  return p;
}

static void place_free(place *p) {
  free(p->data);
  free(p->keys);
}

static int64_t keys_sql(const place *p, const char *fmt) {
  char sql[600];
  snprintf(sql, sizeof sql, fmt, p->keys ? "k" : "main");
  return raw_int(p->data, p->keys, sql);
}

static int load_row(void *ud, const char *pid, int64_t seq);

/* Every stored body loads to its state; returns how many rows there are. */
static int64_t every_body_loads(snap_store *st, const char *data_path) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(data_path, &db), SQLITE_OK);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT pid, seq FROM snapshots ORDER BY pid, seq", -1, &q,
                                  NULL),
               SQLITE_OK);
  int64_t rows = 0;
  while (sqlite3_step(q) == SQLITE_ROW) {
    load_row(st, (const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1));
    rows++;
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return rows;
}

static int load_row(void *ud, const char *pid, int64_t seq) {
  snap_store *st = ud;
  snap_criteria c = {seq, seq, 0, INT64_MAX};
  snap_snapshot *s = NULL;
  int rc = snap_load(st, pid, &c, NULL, &s);
  cr_assert_eq(rc, SNAP_OK, "%s/%" PRId64 " does not load: %s", pid, seq, snap_error_message());
  cr_assert_not_null(s, "%s/%" PRId64 " is missing", pid, seq);
  char state[256];
  size_t n = state_for(state, sizeof state, pid, seq);
  cr_assert_eq(s->seq, seq);
  cr_assert_eq(s->len, n, "%s/%" PRId64 ": %zu bytes", pid, seq, s->len);
  cr_assert_eq(memcmp(s->data, state, n), 0, "%s/%" PRId64 " loads other bytes", pid, seq);
  cr_assert(s->stages & SNAP_STAGE_ENCRYPTED);
  snap_snapshot_free(s);
  return SNAP_OK;
}

static unsigned rounds_from_env(void) {
  const char *e = getenv("SNAP_KEY_KILLS");
  long v = e ? strtol(e, NULL, 10) : 0;
  return v > 0 && v < 100000 ? (unsigned)v : 24;
}

static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- kill -9 between a data key's commit and its body's commit ------------ */

/* The sqlite backend, but a process kills itself right after its
 * `kill_at`-th key creation committed (0: never). */
static snap_backend killing_sqlite;
static long kill_at, keys_made;

static int key_create_then_die(void *self, const snap_backend_key *k, snap_backend_key_emit emit,
                               void *ctx) {
  int rc = snap_backend_sqlite()->key_create(self, k, emit, ctx);
  if (rc == SNAP_OK && kill_at > 0 && ++keys_made == kill_at)
    raise(SIGKILL);
  return rc;
}

/* Saves new units of this round (one body each), and every third save a
 * second body of the unit before: until killed. */
static void key_child(const char *cfg, int fd, unsigned round, long die_at) {
  killing_sqlite = *snap_backend_sqlite();
  killing_sqlite.key_create = key_create_then_die;
  kill_at = die_at;
  keys_made = 0;
  snap_keyring *kr = ring(true, false);
  snap_options *o = envelope_opts(kr);
  snap_store *st = child_open(&killing_sqlite, cfg, o);
  char pid[24];
  for (int i = 0; i < 100000; i++) {
    snprintf(pid, sizeof pid, "r%03u-u%05d", round, i);
    save_and_ack(st, pid, 1, fd);
    if (i % 3 == 2) {
      snprintf(pid, sizeof pid, "r%03u-u%05d", round, i - 1);
      save_and_ack(st, pid, 2, fd);
    }
  }
  _exit(0);
}

static void kill_during_key_creation(bool keystore) {
  char *dir = st_tmpdir();
  char cfg[2048];
  config(cfg, sizeof cfg, dir, keystore, "full");
  place pl = place_of(dir, keystore);
  snap_keyring *kr = ring(true, false);
  snap_options *o = envelope_opts(kr);
  rng_state = keystore ? 25025 : 25026;
  const unsigned rounds = rounds_from_env();
  acks as = {0};
  unsigned chosen = 0;
  for (unsigned round = 0; round < rounds; round++) {
    /* Even rounds die right after a chosen key's commit, odd ones at a random moment. */
    const long die_at = round % 2 == 0 ? 1 + (long)(rnd() % 12) : 0;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
      close(fds[0]);
      key_child(cfg, fds[1], round, die_at);
    }
    close(fds[1]);
    if (die_at == 0) {
      sleep_ms(5 + (long)(rnd() % 80));
      kill(child, SIGKILL);
    }
    while (acks_drain(&as, fds[0], true))
      ; /* to the end: the child's death closes the pipe */
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "round %u: the saver was not killed (status %d)", round, status);

    if (die_at > 0) {
      /* The die_at-th new unit's key committed; its body never did. */
      char sql[400];
      snprintf(sql, sizeof sql,
               "SELECT count(*) FROM %%s.snapshots_keys WHERE unit = 'r%03u-u%05ld'", round,
               die_at - 1);
      cr_assert_eq(keys_sql(&pl, sql), 1, "round %u: the key of unit %ld is not stored", round,
                   die_at - 1);
      snprintf(sql, sizeof sql, "SELECT count(*) FROM snapshots WHERE pid = 'r%03u-u%05ld'", round,
               die_at - 1);
      cr_assert_eq(raw_int(pl.data, NULL, sql), 0, "round %u: the killed save committed", round);
      chosen++;
    }
    /* No body without its key; unused keys at most one per kill so far. */
    cr_assert_eq(keys_sql(&pl, "SELECT count(*) FROM main.snapshots WHERE pid NOT IN "
                               "(SELECT unit FROM %s.snapshots_keys WHERE wrapped IS NOT NULL)"),
                 0, "round %u: a body without its key", round);
    int64_t unused = keys_sql(&pl, "SELECT count(*) FROM %s.snapshots_keys WHERE unit NOT IN "
                                   "(SELECT pid FROM main.snapshots)");
    cr_assert_leq(unused, (int64_t)round + 1, "round %u: %" PRId64 " unused keys", round, unused);
    snap_store *st = open_store(cfg, o);
    every_body_loads(st, pl.data);
    for (size_t i = 0; i < as.n; i++)
      load_row(st, as.v[i].pid, as.v[i].seq);
    snap_store_close(st);
  }
  if (keystore)
    cr_assert_eq(raw_int(pl.data, NULL, "SELECT count(*) FROM snapshots_keys"), 0,
                 "the data file holds no key");
  int64_t unused = keys_sql(&pl, "SELECT count(*) FROM %s.snapshots_keys WHERE unit NOT IN "
                                 "(SELECT pid FROM main.snapshots)");
  cr_assert_geq(unused, (int64_t)chosen, "every chosen kill left its unused key");
  cr_assert_gt(as.n, 0u, "no save was acknowledged at all");
  cr_log_info("%s: %u kills (%u between a key's commit and its body's), %zu acknowledged "
              "saves all loaded, %" PRId64 " unused keys",
              keystore ? "separate key store" : "key table beside the data", rounds, chosen, as.n,
              unused);
  free(as.v);
  place_free(&pl);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

Test(envelope_kill, a_save_killed_between_key_and_body_leaves_no_body_without_its_key,
     .timeout = 300) {
  kill_during_key_creation(false);
}

Test(envelope_kill, the_same_with_a_separate_key_store, .timeout = 300) {
  kill_during_key_creation(true);
}

/* ---- rewrap killed and resumed beside a live writer ------------------------ */

#define PRE_UNITS 9000 /* three pages of 4,096 key records */

/* Saves forever with both master keys (the new one active): a new unit, then
 * a new body of an existing unit, in turn. */
static void writer_child(const char *cfg, int fd) {
  snap_keyring *kr = ring(true, true);
  snap_options *o = envelope_opts(kr);
  snap_store *st = child_open(snap_backend_sqlite(), cfg, o);
  char pid[24];
  for (int64_t i = 0; i < 10000000; i++) {
    if (i % 2 == 0)
      snprintf(pid, sizeof pid, "w-%07" PRId64, i / 2);
    else
      snprintf(pid, sizeof pid, "pre-%05" PRId64, (i * 7919) % PRE_UNITS);
    save_and_ack(st, pid, i % 2 == 0 ? 1 : 2 + i, fd);
  }
  _exit(0);
}

static int die_after_first_page(void *ud, const snap_rewrap_progress *p) {
  (void)ud;
  (void)p;
  raise(SIGKILL);
  return SNAP_OK;
}

/* A rewrap in a child: killed by itself after its first page, or (`page_kill`
 * false) by the caller at a random moment. */
static pid_t rewrap_child(const char *cfg, bool page_kill) {
  pid_t child = fork();
  cr_assert_neq(child, -1);
  if (child != 0)
    return child;
  snap_keyring *kr = ring(true, true);
  snap_options *o = envelope_opts(kr);
  snap_store *st = child_open(snap_backend_sqlite(), cfg, o);
  int rc = snap_rewrap(st, NULL, NULL, page_kill ? die_after_first_page : NULL, NULL, NULL);
  _exit(rc == SNAP_OK ? 0 : 5);
}

/* Waits for `child` while collecting the writer's acknowledgements. */
static int wait_draining(pid_t child, acks *as, int fd) {
  int status = 0;
  for (;;) {
    pid_t w = waitpid(child, &status, WNOHANG);
    cr_assert_neq(w, -1);
    if (w == child)
      return status;
    acks_drain(as, fd, false);
    sleep_ms(1);
  }
}

/* Blocks until the writer acknowledged `more` further saves. */
static void await_writer(acks *as, int fd, size_t more) {
  size_t want = as->n + more;
  while (as->n < want)
    cr_assert(acks_drain(as, fd, true), "the writer died");
}

static void rewrap_beside_a_writer(bool keystore) {
  char *dir = st_tmpdir();
  char cfg[2048];
  config(cfg, sizeof cfg, dir, keystore, "normal");
  place pl = place_of(dir, keystore);
  rng_state = keystore ? 2504 : 2505;

  /* PRE_UNITS units under master key 1. */
  snap_keyring *old_only = ring(true, false);
  snap_options *o = envelope_opts(old_only);
  snap_store *st = open_store(cfg, o);
  char pid[24], state[256];
  for (int i = 0; i < PRE_UNITS; i++) {
    snprintf(pid, sizeof pid, "pre-%05d", i);
    size_t n = state_for(state, sizeof state, pid, 1);
    cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, state, n, NULL, NULL), SNAP_OK, "%s",
                 snap_error_message());
  }
  snap_store_close(st);
  snap_options_free(o);

  /* The writer starts with both keys, the new one active. */
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  pid_t writer = fork();
  cr_assert_neq(writer, -1);
  if (writer == 0) {
    close(fds[0]);
    writer_child(cfg, fds[1]);
  }
  close(fds[1]);
  acks as = {0};
  await_writer(&as, fds[0], 50);

  /* 1: killed right after its first page committed. */
  int status = wait_draining(rewrap_child(cfg, true), &as, fds[0]);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
  int64_t moved = keys_sql(&pl, "SELECT count(*) FROM %s.snapshots_keys WHERE unit LIKE 'pre-%%' "
                                "AND master_version = 2");
  cr_assert_geq(moved, 4096, "the first page is committed (%" PRId64 ")", moved);
  cr_assert_lt(moved, PRE_UNITS, "killed half way (%" PRId64 " rewrapped)", moved);
  await_writer(&as, fds[0], 50);

  /* 2: killed at a random moment (it may also finish first). */
  pid_t r2 = rewrap_child(cfg, false);
  sleep_ms(1 + (long)(rnd() % 40));
  kill(r2, SIGKILL);
  status = wait_draining(r2, &as, fds[0]);
  cr_assert((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
                (WIFEXITED(status) && WEXITSTATUS(status) == 0),
            "status %d", status);
  await_writer(&as, fds[0], 50);

  /* 3: run to completion, the writer still saving. */
  snap_keyring *both = ring(true, true);
  o = envelope_opts(both);
  st = open_store(cfg, o);
  snap_rewrap_progress tot;
  cr_assert_eq(snap_rewrap(st, NULL, NULL, NULL, NULL, &tot), SNAP_OK, "%s",
               snap_error_message());
  size_t before = as.n;
  await_writer(&as, fds[0], 50);
  cr_assert_eq(snap_rewrap(st, NULL, NULL, NULL, NULL, &tot), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(tot.rewrapped, 0, "nothing is left under master key 1 (%" PRIu64 ")",
               tot.rewrapped);
  snap_store_close(st);
  snap_options_free(o);
  kill(writer, SIGKILL);
  while (acks_drain(&as, fds[0], true))
    ;
  close(fds[0]);
  cr_assert_eq(waitpid(writer, &status, 0), writer);
  cr_assert(WIFSIGNALED(status), "the writer stopped by itself (status %d)", status);
  cr_assert_gt(as.n, before, "the writer saved beside the last rewrap");

  /* Master key 1 retired: every body loads, no acknowledged save is lost. */
  cr_assert_eq(keys_sql(&pl, "SELECT count(*) FROM %s.snapshots_keys WHERE master_version <> 2"),
               0);
  snap_keyring *new_only = ring(false, true);
  o = envelope_opts(new_only);
  st = open_store(cfg, o);
  int64_t rows = every_body_loads(st, pl.data);
  for (size_t i = 0; i < as.n; i++)
    load_row(st, as.v[i].pid, as.v[i].seq);
  snap_store_close(st);
  cr_assert_geq(rows, (int64_t)(PRE_UNITS + as.n));
  cr_log_info("%s: %" PRId64 " bodies load under master key 2 alone; %zu saves beside the "
              "rewraps, none lost",
              keystore ? "separate key store" : "key table beside the data", rows, as.n);
  free(as.v);
  place_free(&pl);
  snap_options_free(o);
  snap_keyring_free(old_only);
  snap_keyring_free(both);
  snap_keyring_free(new_only);
  st_rmtree(dir);
  free(dir);
}

Test(envelope_kill, a_rewrap_killed_and_resumed_beside_a_live_writer_loses_nothing,
     .timeout = 300) {
  rewrap_beside_a_writer(false);
}

Test(envelope_kill, the_same_with_a_separate_key_store_rewrap, .timeout = 300) {
  rewrap_beside_a_writer(true);
}
