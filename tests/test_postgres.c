/* The "postgres" backend beyond the conformance suite: the slice function's
 * golden values and spread, the schema's version and creation race, many
 * threads and two processes on one store, the executor's group commit, and
 * faults: a connection lost during COMMIT, a server killed while threads
 * save, a shard down, a server that is not there. Every test runs against a
 * real server: one throw-away cluster for the binary, started before the
 * first test (and one of its own for the test that kills it). */
#include <inttypes.h>
#include <pthread.h>
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
#include "store_util.h"
#include "snap/admin.h"
#include "snap/executor.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"

static pgfx cluster;

/* The schema version this code writes (store/backends/postgres/schema.c). */
#define SCHEMA_NOW 6

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  char err[512];
  if (pgfx_start(&cluster, 4, err, sizeof err) == 0)
    pgfx_export(&cluster);
  else
    pgfx_export_failure(err); /* every test then fails with it */
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  pgfx_destroy(&cluster);
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static pgfx shared(void) {
  pgfx f;
  char err[512];
  cr_assert_eq(pgfx_import(&f, err, sizeof err), 0, "%s", err);
  return f;
}

/* A table name of its own for each test (tests run in parallel). */
static void unique_table(char *buf, size_t cap, const char *prefix) {
  static atomic_int n;
  snprintf(buf, cap, "%s_%ld_%d", prefix, (long)getpid(), atomic_fetch_add(&n, 1));
}

/* The backend keys of a store over databases `dbs` (-1 ends the list) of `f`. */
static void keys_for(const pgfx *f, const int *dbs, const char *table, const char *extra,
                     char *buf, size_t cap) {
  int n = 0;
  while (dbs[n] >= 0)
    n++;
  size_t len = (size_t)snprintf(buf, cap, "{\"table\": \"%s\"%s%s, \"shards\": [", table,
                                extra[0] ? ", " : "", extra);
  for (int i = 0; i < n && len < cap; i++) {
    char ci[512];
    pgfx_conninfo(f, dbs[i], ci, sizeof ci);
    len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\"", i ? ", " : "", ci);
  }
  if (len < cap)
    snprintf(buf + len, cap - len, "]}");
}

static snap_store *open_on(const pgfx *f, const int *dbs, const char *table, const char *extra) {
  char cfg[4096];
  keys_for(f, dbs, table, extra, cfg, sizeof cfg);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_OK, "%s: %s", cfg,
               snap_error_message());
  return st;
}

static const int three[] = {0, 1, 2, -1};
static const int one[] = {0, -1};

/* Runs a query returning one integer on database `db`; -1 when it has no row. */
static long long query_int(const pgfx *f, int db, const char *sql) {
  char ci[512];
  pgfx_conninfo(f, db, ci, sizeof ci);
  PGconn *c = PQconnectdb(ci);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
  long long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  PQfinish(c);
  return v;
}

static void exec_sql(const pgfx *f, int db, const char *sql) {
  char err[1024];
  cr_assert_eq(pgfx_exec(f, db, sql, err, sizeof err), 0, "%s", err);
}

/* The retention stored for `table` in database `db`; -1 when none is. */
static long long stored_keep(const pgfx *f, int db, const char *table) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT value FROM snapstore_settings WHERE table_name = '%s' AND name = 'keep'", table);
  return query_int(f, db, sql);
}

static void save_ok(snap_store *st, const char *pid, int64_t seq) {
  char state[64];
  snprintf(state, sizeof state, "{\"seq\":%" PRId64 "}", seq);
  cr_assert_eq(snap_save(st, pid, seq, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
               SNAP_OK, "save %s/%" PRId64 ": %s", pid, seq, snap_error_message());
}

static int64_t latest_seq(snap_store *st, const char *pid) {
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, pid, NULL, &s), SNAP_OK, "load %s: %s", pid,
               snap_error_message());
  int64_t seq = s ? s->seq : -1;
  snap_snapshot_free(s);
  return seq;
}

/* ------------------------------------------------------------------------ */
/* Sharding                                                                  */
/* ------------------------------------------------------------------------ */

/* The slice of a pid decides where its snapshots live: these values are
 * frozen (FNV-1a 32 of the pid's bytes mod 1024, docs/POSTGRES.md). */
static const struct {
  const char *pid;
  int slice;
  int shard_of_3;
} golden[] = {
    {"a", 300, 0},           {"\xc3\xa9t\xc3\xa9", 23, 0}, {"p-0", 354, 1},
    {"p-9999", 434, 1},      {"account-42", 965, 2},       {"user:1", 715, 2},
    {"order/2026/0001", 924, 2},
};

Test(postgres, slices_and_shards_of_fixed_pids_are_golden) {
  pgfx f = shared();
  char table[64], sql[256];
  unique_table(table, sizeof table, "golden");
  snap_store *st = open_on(&f, three, table, "");
  size_t n = sizeof golden / sizeof golden[0];
  for (size_t i = 0; i < n; i++)
    save_ok(st, golden[i].pid, 1);
  for (size_t i = 0; i < n; i++) {
    for (int db = 0; db < 3; db++) {
      char esc[64];
      /* The pids hold no quote; bytes beyond ASCII go through as UTF-8. */
      snprintf(esc, sizeof esc, "%s", golden[i].pid);
      snprintf(sql, sizeof sql, "SELECT slice FROM \"%s\" WHERE persistence_id = '%s'", table,
               esc);
      long long slice = query_int(&f, db, sql);
      if (db == golden[i].shard_of_3)
        cr_assert_eq(slice, golden[i].slice, "slice of '%s'", golden[i].pid);
      else
        cr_assert_eq(slice, -1, "'%s' also stored in database %d", golden[i].pid, db);
    }
  }
  snap_store_close(st);
}

Test(postgres, ten_thousand_pids_spread_evenly_over_three_shards) {
  pgfx f = shared();
  char table[64];
  unique_table(table, sizeof table, "spread");
  snap_store *st = open_on(&f, three, table, "\"keep\": 0");
  enum { PIDS = 10000, BATCH = 1000 };
  static char pids[PIDS][16];
  snap_save_req reqs[BATCH];
  int status[BATCH];
  for (int b = 0; b < PIDS / BATCH; b++) {
    for (int i = 0; i < BATCH; i++) {
      int p = b * BATCH + i;
      snprintf(pids[p], sizeof pids[p], "pid-%d", p);
      reqs[i] = (snap_save_req){pids[p], 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "1", 1, NULL};
    }
    cr_assert_eq(snap_save_batch(st, reqs, BATCH, status, NULL), SNAP_OK, "%s",
                 snap_error_message());
  }
  long long total = 0;
  for (int db = 0; db < 3; db++) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table);
    long long n = query_int(&f, db, sql);
    cr_assert(n >= 3000 && n <= 3667, "shard %d holds %lld of 10000 pids (even: 3333 +- 10 %%)",
              db, n);
    total += n;
  }
  cr_assert_eq(total, PIDS);
  cr_assert_eq(latest_seq(st, "pid-4242"), 1);
  snap_store_close(st);
}

/* ------------------------------------------------------------------------ */
/* Schema                                                                    */
/* ------------------------------------------------------------------------ */

Test(postgres, schema_version_is_recorded_and_a_newer_one_refused) {
  pgfx f = shared();
  char table[64], sql[256];
  unique_table(table, sizeof table, "schema");
  snap_store *st = open_on(&f, one, table, "");
  save_ok(st, "s", 1);
  snap_store_close(st);
  snprintf(sql, sizeof sql, "SELECT value FROM snapstore_meta WHERE name = 'schema_version:%s'",
           table);
  cr_assert_eq(query_int(&f, 0, sql), SCHEMA_NOW);
  snprintf(sql, sizeof sql,
           "UPDATE snapstore_meta SET value = %d WHERE name = 'schema_version:%s'",
           SCHEMA_NOW + 1, table);
  exec_sql(&f, 0, sql);
  st = open_on(&f, one, table, "");
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "s", NULL, &s), SNAP_EFORMAT);
  char newer[64];
  snprintf(newer, sizeof newer, "schema version %d is newer", SCHEMA_NOW + 1);
  cr_assert(strstr(snap_error_message(), newer) != NULL, "%s", snap_error_message());
  cr_assert_eq(snap_save(st, "s", 2, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EFORMAT);
  snap_store_close(st);
}

typedef struct racer {
  const pgfx *f;
  const char *table;
  int id;
  int rc;
  char why[512];
} racer;

static void *race(void *arg) {
  racer *r = arg;
  char cfg[4096];
  keys_for(r->f, three, r->table, "", cfg, sizeof cfg);
  snap_store *st = NULL;
  r->rc = snap_store_open_backend(&st, snap_backend_postgres(), cfg);
  char pid[16];
  snprintf(pid, sizeof pid, "racer-%d", r->id);
  if (r->rc == SNAP_OK)
    r->rc = snap_save(st, pid, 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL);
  if (r->rc != SNAP_OK)
    snprintf(r->why, sizeof r->why, "%s", snap_error_message());
  snap_store_close(st);
  return NULL;
}

Test(postgres, stores_starting_together_create_the_schema_once) {
  /* Eight stores (as on eight nodes) use a new table at the same moment. */
  pgfx f = shared();
  char table[64];
  unique_table(table, sizeof table, "race");
  racer r[8];
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    r[i] = (racer){&f, table, i, SNAP_OK, ""};
    pthread_create(&t[i], NULL, race, &r[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(r[i].rc, SNAP_OK, "store %d: %s", i, r[i].why);
  }
  /* They agreed on one retention, stored on every shard. */
  for (int db = 0; db < 3; db++)
    cr_assert_eq(stored_keep(&f, db, table), 3, "database %d", db);
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

static void config_refused(const char *cfg, const char *named) {
  snap_store *st = (snap_store *)1;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_ECONFIG, "%s",
               cfg);
  cr_assert_null(st);
  cr_assert(strstr(snap_error_message(), named) != NULL, "%s: '%s' does not name '%s'", cfg,
            snap_error_message(), named);
  cr_assert(strstr(snap_error_message(), "hunter2") == NULL, "password shown: %s",
            snap_error_message());
}

Test(postgres, bad_configuration_is_refused_naming_the_key) {
  config_refused("{}", "conninfo");
  config_refused("{\"conninfo\": \"host=x\", \"shards\": [\"host=y\"]}", "shards");
  config_refused("{\"conninfo\": \"\"}", "conninfo");
  config_refused("{\"conninfo\": 5}", "conninfo");
  config_refused("{\"shards\": []}", "shards");
  config_refused("{\"shards\": [\"host=a\", 3]}", "shards[1]");
  config_refused("{\"conninfo\": \"host=x\", \"table\": \"a-b\"}", "table");
  config_refused("{\"conninfo\": \"host=x\", \"pool_size\": 0}", "pool_size");
  config_refused("{\"conninfo\": \"host=x\", \"pool_size\": 2.5}", "pool_size");
  config_refused("{\"conninfo\": \"host=x\", \"connect_timeout_ms\": 0}", "connect_timeout_ms");
  config_refused("{\"conninfo\": \"host=x\", \"statement_timeout_ms\": -1}",
                 "statement_timeout_ms");
  config_refused("{\"conninfo\": \"host=x\", \"path\": \"a.db\"}", "path");
  /* A malformed connection string is named by its place, never quoted. */
  config_refused("{\"conninfo\": \"password=hunter2 host\"}", "conninfo");
  config_refused("{\"shards\": [\"host=a\", \"password=hunter2 bogus=1\"]}", "shard 1");
}

/* The store's own tables cannot be a data set's: refused with the
 * configuration, before any server is asked. */
Test(postgres, a_table_named_after_the_stores_own_is_refused_at_open) {
  config_refused("{\"conninfo\": \"host=x\", \"table\": \"snapstore_meta\"}", "table");
  config_refused("{\"conninfo\": \"host=x\", \"table\": \"snapstore_settings\"}", "table");
}

Test(postgres, a_server_that_is_not_there_fails_clearly_and_quickly) {
  /* A socket directory with no server in it, and a password never shown. */
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(),
                                       "{\"conninfo\": \"host=/nonexistent/dir port=5432 "
                                       "password=hunter2 dbname=x\", \"connect_timeout_ms\": 500}"),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EIO);
  const char *m = snap_error_message();
  cr_assert(strstr(m, "shard 0/1 (host=/nonexistent/dir port=5432 dbname=x)") != NULL, "%s", m);
  cr_assert(strstr(m, "cannot connect") != NULL, "%s", m);
  cr_assert(strstr(m, "hunter2") == NULL, "password shown: %s", m);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_EIO);
  snap_store_close(st);
}

/* ------------------------------------------------------------------------ */
/* Faults inside a transaction                                               */
/* ------------------------------------------------------------------------ */

/* Installs on `table` a PL/pgSQL trigger function with body `body`, called
 * by the trigger `when` ("TRIGGER t BEFORE INSERT") with `timing` after the
 * table ("DEFERRABLE INITIALLY DEFERRED", or ""). */
static void with_trigger(const pgfx *f, const char *table, const char *body, const char *when,
                         const char *timing) {
  char sql[2048];
  snprintf(sql, sizeof sql,
           "CREATE FUNCTION \"%s_fn\"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN %s END $$; "
           "CREATE %s ON \"%s\" %s FOR EACH ROW EXECUTE FUNCTION \"%s_fn\"()",
           table, body, when, table, timing, table);
  exec_sql(f, 0, sql);
}

Test(postgres, a_connection_lost_during_commit_is_an_unknown_outcome_then_recovers) {
  /* A deferred constraint trigger runs inside COMMIT; this one ends its own
   * connection there, which is exactly a connection lost during COMMIT. */
  pgfx f = shared();
  char table[64];
  unique_table(table, sizeof table, "commitloss");
  snap_store *st = open_on(&f, one, table, "");
  save_ok(st, "before", 1);
  with_trigger(&f, table,
               "IF NEW.persistence_id = 'doomed' THEN "
               "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF; "
               "RETURN NULL;",
               "CONSTRAINT TRIGGER die AFTER INSERT", "DEFERRABLE INITIALLY DEFERRED");
  cr_assert_eq(snap_save(st, "doomed", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "outcome is unknown") != NULL, "%s",
            snap_error_message());
  /* The lost connection is replaced: the same store goes on working. */
  save_ok(st, "after", 1);
  cr_assert_eq(latest_seq(st, "before"), 1);
  cr_assert_eq(latest_seq(st, "after"), 1);
  snap_store_close(st);
}

Test(postgres, a_row_refused_by_the_server_fails_alone_and_a_failing_prune_fails_nothing) {
  pgfx f = shared();
  char table[64];
  unique_table(table, sizeof table, "rowfail");
  snap_store *st = open_on(&f, one, table, "\"keep\": 1");
  save_ok(st, "kept", 1);
  /* Rows of pids starting with 'refuse' raise a data exception; deleting
   * rows of 'kept' raises one too, so its prune fails. */
  with_trigger(&f, table,
               "IF TG_OP = 'INSERT' AND NEW.persistence_id LIKE 'refuse%' THEN "
               "RAISE EXCEPTION 'refused' USING ERRCODE = '22000'; END IF; "
               "IF TG_OP = 'DELETE' AND OLD.persistence_id = 'kept' THEN "
               "RAISE EXCEPTION 'no prune' USING ERRCODE = 'P0001'; END IF; "
               "RETURN COALESCE(NEW, OLD);",
               "TRIGGER chk BEFORE INSERT OR DELETE", "");
  snap_save_req reqs[4] = {
      {"ok-1", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "1", 1, NULL},
      {"refuse-1", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "2", 1, NULL},
      {"kept", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "3", 1, NULL},
      {"ok-2", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "4", 1, NULL},
  };
  int status[4];
  cr_assert_eq(snap_save_batch(st, reqs, 4, status, NULL), SNAP_EINVAL);
  cr_assert_eq(status[0], SNAP_OK);
  cr_assert_eq(status[1], SNAP_EINVAL);
  cr_assert_eq(status[2], SNAP_OK, "a failing prune failed the save");
  cr_assert_eq(status[3], SNAP_OK);
  cr_assert_eq(latest_seq(st, "ok-1"), 1);
  cr_assert_eq(latest_seq(st, "ok-2"), 1);
  cr_assert_eq(latest_seq(st, "refuse-1"), -1);
  cr_assert_eq(latest_seq(st, "kept"), 2);
  /* The prune was given up: seq 1 of 'kept' is still there. */
  snap_criteria c = {1, 1, 0, INT64_MAX};
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load(st, "kept", &c, NULL, &s), SNAP_OK);
  cr_assert_not_null(s);
  snap_snapshot_free(s);
  snap_store_close(st);
}

/* ------------------------------------------------------------------------ */
/* Many threads, two processes, the executor                                 */
/* ------------------------------------------------------------------------ */

enum { THREADS = 8, PIDS = 40, OPS = 60 };

typedef struct worker {
  snap_store *st;
  int id;
  int bad;
  char why[256];
} worker;

static void state_for(char *buf, size_t cap, const char *pid, int64_t seq) {
  snprintf(buf, cap, "{\"pid\":\"%s\",\"seq\":%" PRId64 "}", pid, seq);
}

static void *hammer(void *arg) {
  worker *w = arg;
  uint32_t x = 2463534242u + (uint32_t)w->id * 977u;
  for (int i = 0; i < OPS && !w->bad; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    char pid[16], state[96];
    snprintf(pid, sizeof pid, "h-%u", x % PIDS);
    int64_t seq = (int64_t)i * 64 + w->id; /* unique per writer */
    if ((x >> 16) & 1) {
      state_for(state, sizeof state, pid, seq);
      if (snap_save(w->st, pid, seq, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL) !=
          SNAP_OK) {
        w->bad++;
        snprintf(w->why, sizeof w->why, "save %s: %s", pid, snap_error_message());
      }
    } else {
      snap_snapshot *s = NULL;
      if (snap_load_latest(w->st, pid, NULL, &s) != SNAP_OK) {
        w->bad++;
        snprintf(w->why, sizeof w->why, "load %s: %s", pid, snap_error_message());
      } else if (s != NULL) {
        state_for(state, sizeof state, pid, s->seq);
        if (strcmp((const char *)s->data, state) != 0) {
          w->bad++;
          snprintf(w->why, sizeof w->why, "load %s gave '%s'", pid, (const char *)s->data);
        }
        snap_snapshot_free(s);
      }
    }
  }
  return NULL;
}

/* Runs THREADS hammering threads (ids from `base`) on a new store; 0 when all were clean. */
static int run_threads(const pgfx *f, const char *table, int base, char *why, size_t cap) {
  char cfg[4096];
  keys_for(f, three, table, "\"keep\": 2, \"pool_size\": 3", cfg, sizeof cfg);
  snap_store *st = NULL;
  if (snap_store_open_backend(&st, snap_backend_postgres(), cfg) != SNAP_OK) {
    snprintf(why, cap, "open: %s", snap_error_message());
    return -1;
  }
  worker w[THREADS];
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){st, base + i, 0, ""};
    pthread_create(&t[i], NULL, hammer, &w[i]);
  }
  int bad = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    if (w[i].bad && !bad++)
      snprintf(why, cap, "thread %d: %s", base + i, w[i].why);
  }
  snap_store_close(st);
  return bad ? -1 : 0;
}

Test(postgres, two_processes_of_eight_threads_share_one_store) {
  pgfx f = shared();
  char table[64], why[512] = "";
  unique_table(table, sizeof table, "procs");
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0) {
    char w[512];
    _exit(run_threads(&f, table, 32, w, sizeof w) == 0 ? 0 : (fprintf(stderr, "%s\n", w), 1));
  }
  int mine = run_threads(&f, table, 0, why, sizeof why);
  int status = 0;
  waitpid(child, &status, 0);
  cr_assert_eq(mine, 0, "%s", why);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the other process failed");
  /* Retention held under contention: at most keep = 2 rows per pid. */
  long long most = 0;
  for (int db = 0; db < 3; db++) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM \"%s\" GROUP BY "
             "persistence_id) c",
             table);
    long long n = query_int(&f, db, sql);
    most = n > most ? n : most;
  }
  cr_assert(most >= 1 && most <= 2, "a pid kept %lld rows", most);
}

static atomic_int acked, failed;

static void on_saved(void *ud, snap_result *r) {
  (void)ud;
  atomic_fetch_add(r->status == SNAP_OK ? &acked : &failed, 1);
}

Test(postgres, the_executor_group_commits_over_three_shards) {
  pgfx f = shared();
  char table[64], sql[256];
  unique_table(table, sizeof table, "exec");
  snap_store *st = open_on(&f, three, table, "\"keep\": 2");
  for (int i = 0; i < 3; i++)
    save_ok(st, golden[i == 0 ? 0 : i == 1 ? 2 : 4].pid, 0); /* the table on every shard */
  /* Other sessions hold the tables locked, so the first save's transaction
   * waits in the server while every other save queues behind it: when the
   * locks go, the queue is committed in batches, whatever the timing. */
  PGconn *lock[3];
  snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE \"%s\" IN EXCLUSIVE MODE", table);
  for (int db = 0; db < 3; db++) {
    char ci[512];
    pgfx_conninfo(&f, db, ci, sizeof ci);
    lock[db] = PQconnectdb(ci);
    PGresult *r = PQexec(lock[db], sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
  }
  snap_executor *ex = NULL;
  snap_executor_config cfg = SNAP_EXECUTOR_CONFIG_INIT;
  cr_assert_eq(snap_executor_new(&ex, st, &cfg), SNAP_OK, "%s", snap_error_message());
  enum { N = 200 };
  static char pids[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(pids[i], sizeof pids[i], "e-%d", i % 50);
    snap_save_req r = {pids[i], i / 50, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[1]", 3, NULL};
    cr_assert_eq(snap_executor_save(ex, &r, on_saved, NULL), SNAP_OK, "%s", snap_error_message());
  }
  for (int db = 0; db < 3; db++) {
    PGresult *r = PQexec(lock[db], "COMMIT");
    PQclear(r);
    PQfinish(lock[db]);
  }
  cr_assert_eq(snap_executor_shutdown(ex, SNAP_SHUTDOWN_DRAIN), SNAP_OK);
  snap_executor_stats stats;
  snap_executor_stats_get(ex, &stats);
  snap_executor_free(ex);
  cr_assert_eq(atomic_load(&acked), N, "%d failed", atomic_load(&failed));
  cr_assert(stats.largest_batch > 1, "no save shared a transaction");
  cr_assert(stats.commits < N, "%llu transactions for %d saves", (unsigned long long)stats.commits,
            N);
  for (int p = 0; p < 50; p++) {
    char pid[16];
    snprintf(pid, sizeof pid, "e-%d", p);
    cr_assert_eq(latest_seq(st, pid), 3);
  }
  snap_store_close(st);
}

/* ------------------------------------------------------------------------ */
/* A shard down, a server killed                                             */
/* ------------------------------------------------------------------------ */

Test(postgres, a_shard_down_leaves_the_other_shards_working) {
  /* Shard 2 is database snap3 (no other test uses it). It goes down as a
   * server does for its clients: connections cut, new ones refused. */
  pgfx f = shared();
  char table[64], cfg[4096], ci[3][512];
  unique_table(table, sizeof table, "down");
  pgfx_conninfo(&f, 0, ci[0], sizeof ci[0]);
  pgfx_conninfo(&f, 1, ci[1], sizeof ci[1]);
  pgfx_conninfo(&f, 3, ci[2], sizeof ci[2]);
  snprintf(cfg, sizeof cfg,
           "{\"table\": \"%s\", \"shards\": [\"%s\", \"%s\", \"%s password=hunter2\"], "
           "\"connect_timeout_ms\": 2000}",
           table, ci[0], ci[1], ci[2]);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_OK, "%s",
               snap_error_message());
  save_ok(st, "a", 1);          /* shard 0 */
  save_ok(st, "p-0", 1);        /* shard 1 */
  save_ok(st, "account-42", 1); /* shard 2 */
  exec_sql(&f, -1, "ALTER DATABASE snap3 ALLOW_CONNECTIONS false");
  exec_sql(&f, -1,
           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'snap3'");
  snap_save_req reqs[3] = {
      {"a", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "2", 1, NULL},
      {"account-42", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "2", 1, NULL},
      {"p-0", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "2", 1, NULL},
  };
  int status[3];
  cr_assert_eq(snap_save_batch(st, reqs, 3, status, NULL), SNAP_EIO);
  const char *m = snap_error_message();
  cr_assert(strstr(m, "shard 2/3") != NULL, "%s", m);
  cr_assert(strstr(m, "hunter2") == NULL, "password shown: %s", m);
  cr_assert_eq(status[0], SNAP_OK);
  cr_assert_eq(status[1], SNAP_EIO);
  cr_assert_eq(status[2], SNAP_OK);
  cr_assert_eq(latest_seq(st, "a"), 2);
  cr_assert_eq(latest_seq(st, "p-0"), 2);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "account-42", NULL, &s), SNAP_EIO);
  /* A store opened now (a node starting while the shard is down) learns the
   * retention from the shards that answer and works on them. */
  snap_store *late = NULL;
  cr_assert_eq(snap_store_open_backend(&late, snap_backend_postgres(), cfg), SNAP_OK);
  cr_assert_eq(snap_store_check(late), SNAP_OK, "%s", snap_error_message());
  reqs[0].seq = reqs[1].seq = reqs[2].seq = 3;
  cr_assert_eq(snap_save_batch(late, reqs, 3, status, NULL), SNAP_EIO);
  cr_assert_eq(status[0], SNAP_OK, "a shard down stopped the others");
  cr_assert_eq(status[1], SNAP_EIO);
  cr_assert_eq(status[2], SNAP_OK);
  snap_store_close(late);
  /* Changing the retention needs every shard: refused, naming the one down,
   * and nothing written. */
  char change[4200];
  snprintf(change, sizeof change, "%.*s, \"keep\": 1, \"keep_change\": true}",
           (int)strlen(cfg) - 1, cfg);
  cr_assert_eq(snap_store_open_backend(&late, snap_backend_postgres(), change), SNAP_OK);
  cr_assert_eq(snap_save(late, "a", 4, SNAP_FORMAT_JSON, "4", 1, NULL, NULL), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "shard 2/3") &&
                strstr(snap_error_message(), "cannot connect"),
            "%s", snap_error_message());
  snap_store_close(late);
  cr_assert_eq(stored_keep(&f, 0, table), 3);
  cr_assert_eq(stored_keep(&f, 1, table), 3);
  /* The shard comes back: the same store reaches it again. */
  exec_sql(&f, -1, "ALTER DATABASE snap3 ALLOW_CONNECTIONS true");
  cr_assert_eq(latest_seq(st, "account-42"), 1);
  save_ok(st, "account-42", 3);
  snap_store_close(st);
}

enum { KILLERS = 4, MAX_ACKS = 4096 };

typedef struct saver {
  snap_store *st;
  int id;
  atomic_int *phase; /* 0: up, 1: down, 2: up again, 3: stop */
  atomic_int ok[4], failed[4];
  int64_t acked[MAX_ACKS];
  int nacked;
  int unclear; /* failures whose message does not say what happened */
  char unclear_msg[512];
} saver;

static void *keep_saving(void *arg) {
  saver *s = arg;
  char pid[16];
  snprintf(pid, sizeof pid, "k-%d", s->id);
  for (int64_t seq = 1;; seq++) {
    int ph = atomic_load(s->phase);
    if (ph == 3 || s->nacked == MAX_ACKS)
      break;
    char state[32];
    snprintf(state, sizeof state, "%" PRId64, seq);
    int rc = snap_save(s->st, pid, seq, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL);
    if (rc == SNAP_OK) {
      s->acked[s->nacked++] = seq;
      atomic_fetch_add(&s->ok[ph], 1);
    } else {
      const char *m = snap_error_message();
      if (rc != SNAP_EIO || strstr(m, "postgres shard 0/1") == NULL ||
          (strstr(m, "cannot connect") == NULL && strstr(m, "connection lost") == NULL &&
           strstr(m, "outcome is unknown") == NULL && strstr(m, "connection was lost") == NULL)) {
        if (!s->unclear++)
          snprintf(s->unclear_msg, sizeof s->unclear_msg, "%d: %s", rc, m);
      }
      atomic_fetch_add(&s->failed[ph], 1);
      if (ph == 1) {
        struct timespec ts = {0, 2000000}; /* do not spin while the server is down */
        nanosleep(&ts, NULL);
      }
    }
  }
  return NULL;
}

/* Waits until every saver counted at least `n` in counter `which` of phase `ph`. */
static void wait_all(saver *sv, int ph, bool failures, int n) {
  for (;;) {
    bool all = true;
    for (int i = 0; i < KILLERS; i++)
      all &= atomic_load(failures ? &sv[i].failed[ph] : &sv[i].ok[ph]) >= n;
    if (all)
      return;
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
}

/* The crash test's own cluster, removed even when an assertion ends the test. */
static pgfx own;

static void remove_own(void) { pgfx_destroy(&own); }

Test(postgres, a_server_killed_while_four_threads_save_loses_no_acknowledged_save,
     .timeout = 300, .fini = remove_own) {
  /* A cluster of its own: the shared one serves the other tests meanwhile. */
  char err[512];
  cr_assert_eq(pgfx_start(&own, 1, err, sizeof err), 0, "%s", err);
  char cfg[1024], ci[512];
  pgfx_conninfo(&own, 0, ci, sizeof ci);
  snprintf(cfg, sizeof cfg,
           "{\"conninfo\": \"%s\", \"keep\": 0, \"pool_size\": 4, \"connect_timeout_ms\": 2000}",
           ci);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_OK, "%s",
               snap_error_message());
  atomic_int phase = 0;
  static saver sv[KILLERS];
  pthread_t t[KILLERS];
  for (int i = 0; i < KILLERS; i++) {
    memset(&sv[i], 0, sizeof sv[i]);
    sv[i].st = st;
    sv[i].id = i;
    sv[i].phase = &phase;
    pthread_create(&t[i], NULL, keep_saving, &sv[i]);
  }
  wait_all(sv, 0, false, 20); /* every thread saved while the server was up */
  int crash = pgfx_stop(&own, true, err, sizeof err);
  atomic_store(&phase, 1);
  if (crash == 0)
    wait_all(sv, 1, true, 3); /* every thread failed while it was down */
  int back = crash == 0 ? pgfx_restart(&own, err, sizeof err) : -1;
  atomic_store(&phase, 2);
  if (back == 0)
    wait_all(sv, 2, false, 20); /* and saved again after, on the same store */
  atomic_store(&phase, 3);
  for (int i = 0; i < KILLERS; i++)
    pthread_join(t[i], NULL);
  cr_assert_eq(crash, 0, "%s", err);
  cr_assert_eq(back, 0, "%s", err);
  for (int i = 0; i < KILLERS; i++) {
    cr_assert_eq(sv[i].unclear, 0, "thread %d: unclear failure %s", i, sv[i].unclear_msg);
    char pid[16];
    snprintf(pid, sizeof pid, "k-%d", i);
    for (int a = 0; a < sv[i].nacked; a++) {
      snap_criteria c = {sv[i].acked[a], sv[i].acked[a], 0, INT64_MAX};
      snap_snapshot *s = NULL;
      cr_assert_eq(snap_load(st, pid, &c, NULL, &s), SNAP_OK, "%s", snap_error_message());
      cr_assert_not_null(s, "acknowledged save %s/%" PRId64 " is missing", pid, sv[i].acked[a]);
      snap_snapshot_free(s);
    }
  }
  snap_store_close(st);
}

/* ------------------------------------------------------------------------ */
/* Retention kept with the data set                                          */
/* ------------------------------------------------------------------------ */

/* The rows of `pid` in `table`, over every database of `dbs`. */
static long long rows_of(const pgfx *f, const int *dbs, const char *table, const char *pid) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE persistence_id = '%s'", table, pid);
  long long n = 0;
  for (int i = 0; dbs[i] >= 0; i++)
    n += query_int(f, dbs[i], sql);
  return n;
}

static void save_n(snap_store *st, const char *pid, int64_t first, int n) {
  for (int64_t seq = first; seq < first + n; seq++)
    save_ok(st, pid, seq);
}

/* The retention rules of docs/STORE.md ("Retention") on the stores over `dbs`. */
static void retention_is_kept_with_the_data_set(const int *dbs) {
  pgfx f = shared();
  char table[64];
  unique_table(table, sizeof table, "keep");
  /* The first opener stores its keep (0: keep all). */
  snap_store *st = open_on(&f, dbs, table, "\"keep\": 0");
  save_n(st, "acct", 1, 5);
  snap_store_close(st);
  cr_assert_eq(rows_of(&f, dbs, table, "acct"), 5);
  /* An opener without keep adopts it (instead of pruning to the default 3). */
  st = open_on(&f, dbs, table, "");
  cr_assert_eq(snap_store_check(st), SNAP_OK, "%s", snap_error_message());
  save_n(st, "acct", 6, 1);
  snap_store_close(st);
  cr_assert_eq(rows_of(&f, dbs, table, "acct"), 6, "the default opener did not adopt keep 0");
  /* One that says another value is refused, naming both, and stores nothing. */
  st = open_on(&f, dbs, table, "\"keep\": 2");
  cr_assert_eq(snap_store_check(st), SNAP_ECONFIG);
  const char *msg = snap_error_message();
  cr_assert(strstr(msg, "keep") && strstr(msg, "keeps 2") && strstr(msg, "0 (keep all)") &&
                strstr(msg, "keep_change"),
            "names the key, both values and the way out: %s", msg);
  cr_assert_eq(snap_save(st, "acct", 7, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_ECONFIG);
  snap_store_close(st);
  cr_assert_eq(rows_of(&f, dbs, table, "acct"), 6);
  /* keep_change changes it, for every later opener. */
  st = open_on(&f, dbs, table, "\"keep\": 2, \"keep_change\": true");
  save_n(st, "acct", 7, 1);
  snap_store_close(st);
  cr_assert_eq(rows_of(&f, dbs, table, "acct"), 2);
  st = open_on(&f, dbs, table, "");
  save_n(st, "acct", 8, 3);
  snap_store_close(st);
  cr_assert_eq(rows_of(&f, dbs, table, "acct"), 2, "the change was not persisted");
  st = open_on(&f, dbs, table, "\"keep\": 0");
  cr_assert_eq(snap_store_check(st), SNAP_ECONFIG);
  cr_assert(strstr(snap_error_message(), "keeps 2"), "%s", snap_error_message());
  snap_store_close(st);
  /* Every shard holds the same value. */
  for (int i = 0; dbs[i] >= 0; i++)
    cr_assert_eq(stored_keep(&f, dbs[i], table), 2, "database %d", dbs[i]);
  /* Another table of the same databases has its own retention. */
  char other[64];
  unique_table(other, sizeof other, "keep_other");
  st = open_on(&f, dbs, other, "\"keep\": 1");
  save_n(st, "acct", 1, 3);
  snap_store_close(st);
  cr_assert_eq(rows_of(&f, dbs, other, "acct"), 1);
  st = open_on(&f, dbs, table, "\"keep\": 2");
  cr_assert_eq(snap_store_check(st), SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
}

Test(postgres, retention_is_kept_with_the_data_set_on_one_server) {
  retention_is_kept_with_the_data_set(one);
}

Test(postgres, retention_is_kept_with_the_data_set_on_three_shards) {
  retention_is_kept_with_the_data_set(three);
}

Test(postgres, shards_that_disagree_on_the_retention_are_refused_naming_them) {
  pgfx f = shared();
  char table[64], sql[256];
  unique_table(table, sizeof table, "keepsplit");
  snap_store *st = open_on(&f, three, table, "\"keep\": 4");
  save_n(st, "acct", 1, 2);
  snap_store_close(st);
  /* A shard restored on its own holds another value. */
  snprintf(sql, sizeof sql,
           "UPDATE snapstore_settings SET value = 7 WHERE table_name = '%s' AND name = 'keep'",
           table);
  exec_sql(&f, 1, sql);
  const char *configs[] = {"", "\"keep\": 4"};
  for (int i = 0; i < 2; i++) {
    st = open_on(&f, three, table, configs[i]);
    cr_assert_eq(snap_store_check(st), SNAP_ECONFIG, "check with {%s}", configs[i]);
    const char *m = snap_error_message();
    cr_assert(strstr(m, "not the same on every shard") && strstr(m, "dbname=snap0): 4") &&
                  strstr(m, "dbname=snap1): 7") && strstr(m, "dbname=snap2): 4") &&
                  strstr(m, "keep_change"),
              "names every shard and its value: %s", m);
    cr_assert_eq(snap_save(st, "acct", 9, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_ECONFIG);
    snap_store_close(st);
  }
  /* Missing on one shard while present on the others is refused too. */
  snprintf(sql, sizeof sql, "DELETE FROM snapstore_settings WHERE table_name = '%s'", table);
  exec_sql(&f, 2, sql);
  st = open_on(&f, three, table, "");
  cr_assert_eq(snap_save(st, "acct", 9, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_ECONFIG);
  cr_assert(strstr(snap_error_message(), "dbname=snap2): (none)"), "%s", snap_error_message());
  snap_store_close(st);
  /* keep_change writes one value to every shard. */
  st = open_on(&f, three, table, "\"keep\": 1, \"keep_change\": true");
  save_n(st, "acct", 10, 1);
  snap_store_close(st);
  cr_assert_eq(rows_of(&f, three, table, "acct"), 1);
  for (int db = 0; db < 3; db++)
    cr_assert_eq(stored_keep(&f, db, table), 1, "database %d", db);
  st = open_on(&f, three, table, "");
  cr_assert_eq(snap_store_check(st), SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
}

Test(postgres, a_database_of_schema_version_1_opens_and_is_upgraded_to_the_current_version) {
  pgfx f = shared();
  char db[64], table[64], sql[1024], ci[512], cfg[1024];
  /* A database of its own: version 1 had no snapstore_settings table. */
  unique_table(db, sizeof db, "v1db");
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
  exec_sql(&f, -1, sql);
  snprintf(ci, sizeof ci, "host=%s port=5432 user=snapstore dbname=%s", f.sock, db);
  PGconn *c = PQconnectdb(ci);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  unique_table(table, sizeof table, "v1");
  /* The tables exactly as version 1 created them, with snapshots in them. */
  snprintf(sql, sizeof sql,
           "CREATE TABLE snapstore_meta (name text PRIMARY KEY, value bigint NOT NULL); "
           "CREATE TABLE \"%s\" (persistence_id text COLLATE \"C\" NOT NULL, seq bigint NOT NULL, "
           "ts bigint NOT NULL, slice integer NOT NULL, body bytea NOT NULL, PRIMARY KEY "
           "(persistence_id, seq)); INSERT INTO snapstore_meta VALUES ('schema_version:%s', 1)",
           table, table);
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
  PQclear(r);
  snprintf(cfg, sizeof cfg, "{\"conninfo\": \"%s\", \"table\": \"%s\", \"keep\": 2}", ci, table);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_OK, "%s",
               snap_error_message());
  save_n(st, "old", 1, 4);
  cr_assert_eq(latest_seq(st, "old"), 4);
  snap_store_close(st);
  const char *checks[][2] = {
      {"SELECT value FROM snapstore_meta WHERE name = 'schema_version:%s'", "6"},
      {"SELECT value FROM snapstore_settings WHERE table_name = '%s' AND name = 'keep'", "2"},
      {"SELECT count(*) FROM \"%s\"", "2"},
  };
  for (size_t i = 0; i < 3; i++) {
    snprintf(sql, sizeof sql, checks[i][0], table);
    r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_assert_eq(PQntuples(r), 1, "%s", sql);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), checks[i][1], "%s", sql);
    PQclear(r);
  }
  PQfinish(c);
  snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db);
  exec_sql(&f, -1, sql);
}

/* ------------------------------------------------------------------------ */
/* Prunes reported to the host                                               */
/* ------------------------------------------------------------------------ */

typedef struct prunes {
  pthread_mutex_t lock;
  int events, failed;
  uint64_t removed;
  char pid[32];
  int64_t seq;
  char detail[256];
} prunes;

static void watch_prunes(void *ud, const snap_event *ev) {
  prunes *p = ud;
  if (ev->kind != SNAP_EVENT_PRUNE && ev->kind != SNAP_EVENT_PRUNE_FAILED)
    return;
  pthread_mutex_lock(&p->lock);
  if (ev->kind == SNAP_EVENT_PRUNE) {
    p->events++;
    p->removed += ev->count;
  } else {
    p->failed++;
    snprintf(p->detail, sizeof p->detail, "%s", ev->detail ? ev->detail : "");
  }
  snprintf(p->pid, sizeof p->pid, "%s", ev->pid ? ev->pid : "");
  p->seq = ev->seq;
  pthread_mutex_unlock(&p->lock);
}

static void prunes_are_reported(const int *dbs) {
  pgfx f = shared();
  char table[64];
  unique_table(table, sizeof table, "prunes");
  snap_store *st = open_on(&f, dbs, table, "\"keep\": 2");
  prunes p = {.lock = PTHREAD_MUTEX_INITIALIZER};
  cr_assert_eq(snap_store_set_observer(st, watch_prunes, &p), SNAP_OK);
  /* A single save: the third one removes the first. */
  save_n(st, "single", 1, 2);
  cr_assert_eq(p.events, 0, "a prune that removed nothing was reported");
  save_ok(st, "single", 3);
  cr_assert_eq(p.events, 1);
  cr_assert_eq(p.removed, 1);
  cr_assert_str_eq(p.pid, "single");
  cr_assert_eq(p.seq, 3);
  cr_assert_eq(rows_of(&f, dbs, table, "single"), 2);
  /* Through a batch: three pids (one per shard of three) of three saves each,
   * the third of each in one batch. */
  const char *pids[3] = {golden[0].pid, golden[2].pid, golden[4].pid};
  for (int i = 0; i < 3; i++)
    save_n(st, pids[i], 1, 2);
  snap_save_req reqs[3];
  int status[3];
  for (int i = 0; i < 3; i++)
    reqs[i] = (snap_save_req){pids[i], 3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[1]", 3, NULL};
  memset(&p, 0, sizeof p);
  pthread_mutex_init(&p.lock, NULL);
  cr_assert_eq(snap_save_batch(st, reqs, 3, status, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(p.events, 3, "%d prune events for a batch of three saves", p.events);
  cr_assert_eq(p.removed, 3);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(rows_of(&f, dbs, table, pids[i]), 2);
  /* Two saves of one pid in one batch: one prune, reported for the later save. */
  snap_save_req two[2] = {
      {"twice", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[1]", 3, NULL},
      {"twice", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[1]", 3, NULL},
  };
  save_n(st, "twice", 0, 1);
  memset(&p, 0, sizeof p);
  pthread_mutex_init(&p.lock, NULL);
  cr_assert_eq(snap_save_batch(st, two, 2, status, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(p.events, 1);
  cr_assert_eq(p.removed, 1);
  cr_assert_eq(p.seq, 2);
  snap_store_close(st);
}

Test(postgres, prunes_are_reported_to_the_observer_on_one_server) { prunes_are_reported(one); }

Test(postgres, prunes_are_reported_to_the_observer_on_three_shards) { prunes_are_reported(three); }

Test(postgres, a_batch_prunes_each_pid_once_however_its_saves_are_interleaved) {
  pgfx f = shared();
  char table[64], sql[1024];
  unique_table(table, sizeof table, "prunedup");
  snap_store *st = open_on(&f, one, table, "\"keep\": 2");
  save_n(st, "a", 1, 2);
  save_n(st, "b", 1, 2);
  /* Counts the DELETE statements the server runs (a statement trigger fires
   * whether or not a row goes). */
  snprintf(sql, sizeof sql,
           "CREATE TABLE \"%s_deletes\" (n int NOT NULL); "
           "INSERT INTO \"%s_deletes\" VALUES (0); "
           "CREATE FUNCTION \"%s_count\"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "UPDATE \"%s_deletes\" SET n = n + 1; RETURN NULL; END $$; "
           "CREATE TRIGGER counted AFTER DELETE ON \"%s\" FOR EACH STATEMENT "
           "EXECUTE FUNCTION \"%s_count\"()",
           table, table, table, table, table, table);
  exec_sql(&f, 0, sql);
  prunes p = {.lock = PTHREAD_MUTEX_INITIALIZER};
  cr_assert_eq(snap_store_set_observer(st, watch_prunes, &p), SNAP_OK);
  /* Six saves of two pids, alternating, as concurrent submitters batch them. */
  snap_save_req reqs[6];
  int status[6];
  for (int i = 0; i < 6; i++)
    reqs[i] = (snap_save_req){i % 2 ? "b" : "a", 3 + i / 2, SNAP_TIMESTAMP_AUTO,
                              SNAP_FORMAT_JSON, "[1]", 3, NULL};
  cr_assert_eq(snap_save_batch(st, reqs, 6, status, NULL), SNAP_OK, "%s", snap_error_message());
  for (int i = 0; i < 6; i++)
    cr_assert_eq(status[i], SNAP_OK);
  snprintf(sql, sizeof sql, "SELECT n FROM \"%s_deletes\"", table);
  cr_assert_eq(query_int(&f, 0, sql), 2, "%lld prunes for two pids", query_int(&f, 0, sql));
  /* Each pid keeps its two newest; each prune is reported for its pid's last save. */
  cr_assert_eq(rows_of(&f, one, table, "a"), 2);
  cr_assert_eq(rows_of(&f, one, table, "b"), 2);
  cr_assert_eq(latest_seq(st, "a"), 5);
  cr_assert_eq(latest_seq(st, "b"), 5);
  cr_assert_eq(p.events, 2);
  cr_assert_eq(p.removed, 6);
  cr_assert_str_eq(p.pid, "b");
  cr_assert_eq(p.seq, 5);
  snap_store_close(st);
}

Test(postgres, a_failing_prune_is_reported_and_fails_no_save) {
  pgfx f = shared();
  char table[64];
  unique_table(table, sizeof table, "prunefail");
  snap_store *st = open_on(&f, one, table, "\"keep\": 1");
  save_ok(st, "kept", 1);
  with_trigger(&f, table,
               "IF TG_OP = 'DELETE' THEN RAISE EXCEPTION 'no prune here' USING ERRCODE = "
               "'P0001'; END IF; RETURN OLD;",
               "TRIGGER chk BEFORE DELETE", "");
  prunes p = {.lock = PTHREAD_MUTEX_INITIALIZER};
  cr_assert_eq(snap_store_set_observer(st, watch_prunes, &p), SNAP_OK);
  save_ok(st, "kept", 2);
  cr_assert_eq(p.failed, 1);
  cr_assert_eq(p.events, 0);
  cr_assert_str_eq(p.pid, "kept");
  cr_assert_eq(p.seq, 2);
  cr_assert(strstr(p.detail, "no prune here"), "%s", p.detail);
  cr_assert_eq(rows_of(&f, one, table, "kept"), 2);
  snap_store_close(st);
}

/* ------------------------------------------------------------------------ */
/* Schema upgrades from earlier databases                                    */
/* ------------------------------------------------------------------------ */

/* A database of its own, `*c` connected to it and `ci` its conninfo. */
static void own_database(const pgfx *f, const char *prefix, char *db, char *ci, size_t cap,
                         PGconn **c) {
  char sql[128];
  unique_table(db, 64, prefix);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
  exec_sql(f, -1, sql);
  snprintf(ci, cap, "host=%s port=5432 user=snapstore dbname=%s", f->sock, db);
  *c = PQconnectdb(ci);
  cr_assert_eq(PQstatus(*c), CONNECTION_OK, "%s", PQerrorMessage(*c));
}

static void drop_database(const pgfx *f, PGconn *c, const char *db) {
  char sql[128];
  PQfinish(c);
  snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db);
  exec_sql(f, -1, sql);
}

static long long conn_int(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
  long long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  return v;
}

static void expect_state(snap_store *st, const char *pid, int64_t seq, int64_t ts,
                         const char *state) {
  char why[512];
  cr_assert(st_latest_is(st, pid, seq, ts, state, why, sizeof why), "%s", why);
}

static snap_store *open_ci(const char *ci, const char *table) {
  char cfg[1024];
  snprintf(cfg, sizeof cfg, "{\"conninfo\": \"%s\", \"table\": \"%s\"}", ci, table);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_OK, "%s",
               snap_error_message());
  return st;
}

/* A dump of tests/data/schema/ (its README says how each was written),
 * restored into a database of its own and opened: every data set is brought
 * to the current version, its snapshots load, its retention came with it,
 * and the key and dictionary tables of the current version work. */
static void dump_restores_and_upgrades(const char *file, const char *prefix) {
  pgfx f = shared();
  char db[64], ci[512], path[512];
  PGconn *c = NULL;
  own_database(&f, prefix, db, ci, sizeof ci, &c);
  snprintf(path, sizeof path, "%s/schema/%s", SNAP_TEST_DATA_DIR, file);
  FILE *in = fopen(path, "rb");
  cr_assert_not_null(in, "%s", path);
  static char dump[64 * 1024];
  size_t n = fread(dump, 1, sizeof dump - 1, in);
  cr_assert(n > 0 && feof(in), "the dump fits the buffer");
  fclose(in);
  dump[n] = '\0';
  PGresult *r = PQexec(c, dump);
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
  PQclear(r);
  r = PQexec(c, "RESET search_path"); /* the dump emptied it */
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
  PQclear(r);
  snap_store *st = open_ci(ci, "snapshots");
  expect_state(st, "account-1", 2, 1700000001000, "{\"owner\":\"ada\",\"balance\":25}");
  expect_state(st, "account-2", 7, 1700000002000,
               "{\"owner\":\"bob\",\"balance\":3,\"history\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,"
               "15,16,17,18,19,20,21,22,23,24,25,26,27,28]}");
  /* The data set's retention (3) came with it: two more saves prune one. */
  save_n(st, "account-1", 3, 2);
  /* The tables the upgrade created hold dictionaries (and keys, below). */
  uint32_t id = 0;
  const char *dict = "{\"owner\":\"\",\"balance\":}";
  cr_assert_eq(snap_store_dict_add(st, "accounts", dict, strlen(dict), &id),
               SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  cr_assert_eq(conn_int(c, "SELECT count(*) FROM snapshots WHERE persistence_id = 'account-1'"),
               3);
  cr_assert_eq(conn_int(c, "SELECT count(*) FROM snapshots_dicts WHERE name = 'accounts'"), 1);
  cr_assert_eq(conn_int(c, "SELECT count(*) FROM snapshots_keys"), 0);
  st = open_ci(ci, "carts");
  expect_state(st, "cart-9", 1, 1700000003000, "{\"items\":[\"tea\"]}");
  snap_store_close(st);
  cr_assert_eq(conn_int(c, "SELECT min(value) FROM snapstore_meta WHERE name LIKE "
                           "'schema_version:%'"),
               SCHEMA_NOW);
  cr_assert_eq(conn_int(c, "SELECT count(*) FROM snapstore_meta"), 2);
  cr_assert_eq(conn_int(c, "SELECT count(*) FROM pg_class WHERE relname IN ('carts_keys', "
                           "'carts_dicts', 'snapshots_keys', 'snapshots_dicts')"),
               4);
  /* Step 6: the chunk and staging tables, and streamed saves work. */
  cr_assert_eq(conn_int(c, "SELECT count(*) FROM pg_class WHERE relname IN ('carts_chunks', "
                           "'carts_staging', 'snapshots_chunks', 'snapshots_staging')"),
               4);
  st = open_ci(ci, "snapshots");
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, "account-1", 9, 1700000009000, SNAP_FORMAT_JSON,
                                      NULL, NULL, 64, &w),
               SNAP_OK, "%s", snap_error_message());
  const char *big = "{\"owner\":\"ada\",\"note\":\"a state in several chunks of 64 bytes, "
                    "streamed into an upgraded store\"}";
  cr_assert_eq(snap_save_stream_write(w, big, strlen(big)), SNAP_OK);
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
  expect_state(st, "account-1", 9, 1700000009000, big);
  snap_store_close(st);
  cr_assert(conn_int(c, "SELECT count(*) FROM snapshots_chunks") >= 2);
  drop_database(&f, c, db);
}

Test(postgres, the_version_2_dump_restores_upgrades_and_its_snapshots_load) {
  dump_restores_and_upgrades("postgres-v2.sql", "v2dump");
}

Test(postgres, the_version_3_dump_restores_upgrades_and_its_snapshots_load) {
  dump_restores_and_upgrades("postgres-v3.sql", "v3dump");
}

Test(postgres, the_version_5_dump_restores_upgrades_and_its_snapshots_load) {
  dump_restores_and_upgrades("postgres-v5.sql", "v5dump");
}

/* A store opened only to read never upgrades: a version 1 database is
 * refused, naming both versions and what to do, and nothing is created. */
Test(postgres, a_no_create_open_of_an_older_database_upgrades_nothing_and_says_so) {
  pgfx f = shared();
  char db[64], ci[512], json[1024];
  PGconn *c = NULL;
  own_database(&f, "v1ro", db, ci, sizeof ci, &c);
  PGresult *r = PQexec(
      c, "CREATE TABLE snapstore_meta (name text PRIMARY KEY, value bigint NOT NULL); "
         "CREATE TABLE snapshots (persistence_id text COLLATE \"C\" NOT NULL, seq bigint NOT "
         "NULL, ts bigint NOT NULL, slice integer NOT NULL, body bytea NOT NULL, PRIMARY KEY "
         "(persistence_id, seq)); INSERT INTO snapstore_meta VALUES ('schema_version:snapshots', "
         "1)");
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
  PQclear(r);
  snprintf(json, sizeof json, "{\"backend\": \"postgres\", \"config\": {\"conninfo\": \"%s\"}}",
           ci);
  snap_plugin *p = NULL;
  int rc = snap_plugin_open_ex(&p, json, NULL, SNAP_PLUGIN_NO_CREATE | SNAP_PLUGIN_NO_EXECUTOR);
  if (rc == SNAP_OK) {
    snap_snapshot *s = NULL;
    rc = snap_load_latest(snap_plugin_store(p), "a", NULL, &s);
    snap_plugin_close(p);
  }
  cr_assert_eq(rc, SNAP_EFORMAT, "%d: %s", rc, snap_error_message());
  char want[96];
  snprintf(want, sizeof want, "schema version 1 needs an upgrade to version %d", SCHEMA_NOW);
  cr_assert(strstr(snap_error_message(), want) &&
                strstr(snap_error_message(), "only a store that may write"),
            "%s", snap_error_message());
  cr_assert_eq(conn_int(c, "SELECT count(*) FROM pg_class WHERE relname = 'snapstore_settings'"),
               0, "nothing was created");
  cr_assert_eq(conn_int(c, "SELECT value FROM snapstore_meta"), 1);
  /* A writer upgrades it; then the read-only open reads. */
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);
  cr_assert_eq(conn_int(c, "SELECT value FROM snapstore_meta"), SCHEMA_NOW);
  cr_assert_eq(snap_plugin_open_ex(&p, json, NULL, SNAP_PLUGIN_NO_CREATE | SNAP_PLUGIN_NO_EXECUTOR),
               SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(snap_plugin_store(p), "a", NULL, &s), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_null(s);
  snap_plugin_close(p);
  drop_database(&f, c, db);
}

/* ------------------------------------------------------------------------ */
/* Conditional saves across processes                                        */
/* ------------------------------------------------------------------------ */

/* Two processes of eight threads each, each process with its own pool of
 * connections, save conditionally over the newest seq they read: the pid's
 * advisory lock and the INSERT ... SELECT ... WHERE give every seq exactly
 * one winner, with no lost update. */
Test(postgres, conditional_saves_of_two_processes_of_eight_threads_have_one_winner_per_seq) {
  pgfx f = shared();
  char table[64], cfg[4096], why[512] = "";
  unique_table(table, sizeof table, "race");
  keys_for(&f, three, table, "\"keep\": 0, \"pool_size\": 8", cfg, sizeof cfg);
  cr_assert(st_race_two_processes(snap_backend_postgres(), cfg, "contended", 8, 60, why,
                                  sizeof why),
            "%s", why);
}
