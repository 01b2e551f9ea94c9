/* Envelope keys on PostgreSQL under SIGKILL, for both places a key table can
 * live (beside the data in the same database, and in a separate key store
 * database): a process saving new shred units is killed right after a
 * chosen unit's key committed and before its body could (the backend is
 * wrapped so that the process kills itself there), or at a random moment.
 * After every kill each acknowledged save loads, every stored body has its
 * key, and what may be left over is unused keys only, never a body without
 * its key. One throw-away cluster serves every test. SNAP_KEY_KILLS sets
 * the rounds per placement (default 8). */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "pg_fixture.h"
#include "snap/envelope.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

static pgfx cluster;

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  char err[512];
  if (pgfx_start(&cluster, 1, err, sizeof err) == 0)
    pgfx_export(&cluster);
  else
    pgfx_export_failure(err);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  pgfx_destroy(&cluster);
}

/* A fresh database of the cluster: its conninfo into `ci`. */
static void fresh_db(const pgfx *f, const char *prefix, char *ci, size_t cap) {
  static atomic_int seq;
  char name[64], sql[256], err[1024];
  snprintf(name, sizeof name, "%s_%ld_%d", prefix, (long)getpid(), atomic_fetch_add(&seq, 1));
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
  cr_assert_eq(pgfx_exec(f, -1, sql, err, sizeof err), 0, "%s", err);
  snprintf(ci, cap, "host=%s port=5432 user=snapstore dbname=%s", f->sock, name);
}

/* The first column of the first row of `sql` on `ci` as a number. */
static long long scalar(const char *ci, const char *sql, int nparams, const char *const *params) {
  PGconn *c = PQconnectdb(ci);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
  long long v = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return v;
}

/* Whether the store made its table `name` yet (a saver killed before its
 * first save reached the data database leaves none). */
static bool has_table(const char *ci, const char *name) {
  const char *p[1] = {name};
  return scalar(ci, "SELECT count(*) FROM pg_tables WHERE tablename = $1", 1, p) > 0;
}

/* The pids of the stored bodies as a text[] literal (pids here are plain). */
static char *stored_pids(const char *ci) {
  if (!has_table(ci, "snapshots"))
    return strdup("{}");
  PGconn *c = PQconnectdb(ci);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  PGresult *r = PQexec(c, "SELECT '{' || coalesce(string_agg(DISTINCT persistence_id, ','), '') "
                          "|| '}' FROM snapshots");
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
  char *v = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return v;
}

static snap_options *envelope_under(snap_keyring **kr) {
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, 0x71, sizeof key);
  snap_options *o = NULL;
  bool ok = snap_keyring_new(kr) == SNAP_OK &&
            snap_keyring_add(*kr, 1, key, sizeof key) == SNAP_OK &&
            snap_options_new(&o) == SNAP_OK &&
            snap_options_set_encryption(o, *kr, "test/postgres-kill/v1") == SNAP_OK &&
            snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE) == SNAP_OK;
  return ok ? o : NULL;
}

static size_t state_of(char *out, size_t cap, const char *pid) {
  return (size_t)snprintf(out, cap, "{\"pid\":\"%s\"}", pid);
}

/* The postgres backend, but the process kills itself right after its
 * `die_at`-th key creation committed (0: never). */
static snap_backend killing;
static long die_at, keys_made;

static int key_create_then_die(void *self, const snap_backend_key *k, snap_backend_key_emit emit,
                               void *ctx) {
  int rc = snap_backend_postgres()->key_create(self, k, emit, ctx);
  if (rc == SNAP_OK && die_at > 0 && ++keys_made == die_at)
    raise(SIGKILL);
  return rc;
}

/* Saves a new unit after another, acknowledging each on `fd`, until killed. */
static void saver(const char *cfg, int fd, unsigned round) {
  killing = *snap_backend_postgres();
  killing.key_create = key_create_then_die;
  snap_keyring *kr = NULL;
  snap_options *o = envelope_under(&kr);
  snap_store *st = NULL;
  if (o == NULL || snap_store_open_backend(&st, &killing, cfg) != SNAP_OK ||
      snap_store_set_default_options(st, o) != SNAP_OK)
    _exit(2);
  char pid[24], state[64];
  for (int i = 0; i < 100000; i++) {
    snprintf(pid, sizeof pid, "r%02u-u%05d", round, i);
    size_t n = state_of(state, sizeof state, pid);
    if (snap_save(st, pid, 1, SNAP_FORMAT_JSON, state, n, NULL, NULL) != SNAP_OK)
      _exit(3);
    if (write(fd, pid, sizeof pid) != (ssize_t)sizeof pid)
      _exit(4);
  }
  _exit(0);
}

/* Runs one round: forks the saver, kills it (or lets it kill itself), and
 * appends the pids it acknowledged to `acked` (`*n` of them). */
static void round_run(const char *cfg, unsigned round, long chosen, char (**acked)[24],
                      size_t *n) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  die_at = chosen;
  keys_made = 0;
  pid_t child = fork();
  cr_assert_neq(child, -1);
  if (child == 0) {
    close(fds[0]);
    saver(cfg, fds[1], round);
  }
  close(fds[1]);
  if (chosen == 0) {
    struct timespec ts = {0, (150 + (long)(round * 37 % 300)) * 1000000L};
    nanosleep(&ts, NULL);
    kill(child, SIGKILL);
  }
  char pid[24];
  while (read(fds[0], pid, sizeof pid) == (ssize_t)sizeof pid) {
    *acked = realloc(*acked, (*n + 1) * sizeof **acked);
    cr_assert_not_null(*acked);
    memcpy((*acked)[(*n)++], pid, sizeof pid);
  }
  close(fds[0]);
  int status;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
            "round %u: the saver was not killed (status %d)", round, status);
}

static unsigned rounds(void) {
  const char *e = getenv("SNAP_KEY_KILLS");
  long v = e ? strtol(e, NULL, 10) : 0;
  return v > 0 && v < 10000 ? (unsigned)v : 8;
}

static void kill_between_key_and_body(bool apart) {
  pgfx f;
  char err[512], data[512], keys[512], cfg[2048];
  cr_assert_eq(pgfx_import(&f, err, sizeof err), 0, "%s", err);
  fresh_db(&f, "kill_data", data, sizeof data);
  if (apart)
    fresh_db(&f, "kill_keys", keys, sizeof keys);
  else
    snprintf(keys, sizeof keys, "%s", data);
  /* With a key store: its table "unit", so its key table is "unit_keys". */
  const char *key_table = apart ? "unit_keys" : "snapshots_keys";
  int len = snprintf(cfg, sizeof cfg, "{\"conninfo\": \"%s\", \"keep\": 0", data);
  if (apart)
    len += snprintf(cfg + len, sizeof cfg - (size_t)len,
                    ", \"envelope\": {\"keystore\": {\"conninfo\": \"%s\", \"table\": \"unit\"}}",
                    keys);
  snprintf(cfg + len, sizeof cfg - (size_t)len, "}");
  snap_keyring *kr = NULL;
  snap_options *o = envelope_under(&kr);
  cr_assert_not_null(o);
  char(*acked)[24] = NULL;
  size_t nacked = 0;
  unsigned chosen = 0;
  char sql[512];
  for (unsigned round = 0; round < rounds(); round++) {
    /* Even rounds die right after a chosen key's commit, odd ones at a random moment. */
    long at = round % 2 == 0 ? 1 + (long)(round * 7 % 9) : 0;
    round_run(cfg, round, at, &acked, &nacked);
    if (at > 0) {
      char unit[24];
      snprintf(unit, sizeof unit, "r%02u-u%05ld", round, at - 1);
      const char *p[1] = {unit};
      snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE unit = $1 AND wrapped IS NOT NULL",
               key_table);
      cr_assert_eq(scalar(keys, sql, 1, p), 1, "round %u: the key of %s is not stored", round,
                   unit);
      if (has_table(data, "snapshots"))
        cr_assert_eq(scalar(data, "SELECT count(*) FROM snapshots WHERE persistence_id = $1", 1,
                            p),
                     0, "round %u: the killed save of %s committed", round, unit);
      chosen++;
    }
    /* No body without its key, wherever the key table is. */
    char *pids = stored_pids(data);
    const char *p[1] = {pids};
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM unnest($1::text[]) AS b(pid) WHERE NOT EXISTS (SELECT 1 FROM "
             "%s k WHERE k.unit = b.pid AND k.wrapped IS NOT NULL)",
             key_table);
    cr_assert_eq(scalar(keys, sql, 1, p), 0, "round %u: a body without its key", round);
    free(pids);
    /* Every acknowledged save loads. */
    snap_store *st = NULL;
    cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_OK, "%s",
                 snap_error_message());
    cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
    for (size_t i = 0; i < nacked; i++) {
      snap_snapshot *s = NULL;
      char state[64];
      size_t n = state_of(state, sizeof state, acked[i]);
      cr_assert_eq(snap_load_latest(st, acked[i], NULL, &s), SNAP_OK, "%s: %s", acked[i],
                   snap_error_message());
      cr_assert(s != NULL && s->len == n && memcmp(s->data, state, n) == 0, "%s", acked[i]);
      cr_assert(s->stages & SNAP_STAGE_ENCRYPTED);
      snap_snapshot_free(s);
    }
    snap_store_close(st);
  }
  cr_assert_gt(nacked, 0u, "no save was acknowledged");
  cr_assert_eq(chosen, (rounds() + 1) / 2);
  if (apart && has_table(data, "snapshots_keys"))
    cr_assert_eq(scalar(data, "SELECT count(*) FROM snapshots_keys", 0, NULL), 0,
                 "the data database holds no key");
  cr_log_info("%s: %u kills (%u between a key's commit and its body's), %zu acknowledged saves "
              "all loaded",
              apart ? "separate key store" : "key table beside the data", rounds(), chosen,
              nacked);
  free(acked);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(postgres_kill, a_save_killed_between_key_and_body_leaves_no_body_without_its_key,
     .timeout = 300) {
  kill_between_key_and_body(false);
}

Test(postgres_kill, the_same_with_a_separate_key_store, .timeout = 300) {
  kill_between_key_and_body(true);
}
