/* The "postgres" backend's key and dictionary tables beyond the conformance
 * suite (which runs envelope saves, forget and rewrap on one server and on
 * three shards): where the keys live (the unit's shard, or a separate key
 * store of its own databases), the data backup that cannot bring a
 * forgotten unit back (pg_dump of every data shard, forget, restore beside
 * the current key store), and dictionaries on every shard. Every test runs
 * against one throw-away cluster started before the first test. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "pg_fixture.h"
#include "store_util.h"
#include "snap/admin.h"
#include "snap/envelope.h"
#include "snap/store.h"
#include "snap/sys/backend.h"

static pgfx cluster;

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  char err[512];
  if (pgfx_start(&cluster, 1, err, sizeof err) == 0)
    pgfx_export(&cluster);
  else
    pgfx_export_failure(err); /* every test then fails with it */
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  pgfx_destroy(&cluster);
}

#define CTX "test/postgres-keys/v1"

static pgfx shared(void) {
  pgfx f;
  char err[512];
  cr_assert_eq(pgfx_import(&f, err, sizeof err), 0, "%s", err);
  return f;
}

static void exec_sql(const pgfx *f, const char *sql) {
  char err[1024];
  cr_assert_eq(pgfx_exec(f, -1, sql, err, sizeof err), 0, "%s", err);
}

/* A database of the cluster made for the test: its name and conninfo. */
typedef struct db {
  char name[64];
  char ci[512];
} db;

static db new_db(const pgfx *f, const char *prefix) {
  static atomic_int n;
  db d;
  snprintf(d.name, sizeof d.name, "%s_%ld_%d", prefix, (long)getpid(), atomic_fetch_add(&n, 1));
  char sql[2048];
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", d.name);
  exec_sql(f, sql);
  snprintf(d.ci, sizeof d.ci, "host=%s port=5432 user=snapstore dbname=%s", f->sock, d.name);
  return d;
}

static void drop_db(const pgfx *f, const db *d) {
  char sql[2048];
  snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", d->name);
  exec_sql(f, sql);
}

static long long db_int(const db *d, const char *sql) {
  PGconn *c = PQconnectdb(d->ci);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
  long long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  PQfinish(c);
  return v;
}

static void run(const char *cmd) {
  int rc = system(cmd);
  cr_assert_eq(rc, 0, "%s: exit %d", cmd, rc);
}

static snap_keyring *ring(uint8_t fill) {
  snap_keyring *kr = NULL;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, fill, sizeof key);
  cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  return kr;
}

static snap_options *envelope_opts(snap_keyring *kr) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, CTX), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  return o;
}

/* A store over data shards `data` (n of them) and, when `keys` is not
 * NULL, a separate key store on that database. */
static snap_store *open_store(const db *data, int n, const db *keys, const char *extra,
                              snap_options *o) {
  char cfg[4096];
  size_t len = (size_t)snprintf(cfg, sizeof cfg, "{\"shards\": [");
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(cfg + len, sizeof cfg - len, "%s\"%s\"", i ? ", " : "", data[i].ci);
  len += (size_t)snprintf(cfg + len, sizeof cfg - len, "]%s%s", extra[0] ? ", " : "", extra);
  if (keys)
    len += (size_t)snprintf(cfg + len, sizeof cfg - len,
                            ", \"envelope\": {\"keystore\": {\"conninfo\": \"%s\", \"table\": "
                            "\"unit_keys\"}}",
                            keys->ci);
  snprintf(cfg + len, sizeof cfg - len, "}");
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_postgres(), cfg), SNAP_OK, "%s: %s", cfg,
               snap_error_message());
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  return st;
}

static void save_state(snap_store *st, const char *pid, const char *json) {
  cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, json, strlen(json), NULL, NULL), SNAP_OK,
               "save %s: %s", pid, snap_error_message());
}

static void expect_state(snap_store *st, const char *pid, const char *json) {
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, pid, NULL, &s), SNAP_OK, "load %s: %s", pid,
               snap_error_message());
  cr_assert_not_null(s, "%s has a snapshot", pid);
  cr_assert(s->len == strlen(json) && memcmp(s->data, json, s->len) == 0, "%s", pid);
  cr_assert(s->stages & SNAP_STAGE_ENCRYPTED, "%s is sealed", pid);
  snap_snapshot_free(s);
}

/* The rows of `table` over the data shards. */
static long long rows_on(const db *data, int n, const char *sql) {
  long long total = 0;
  for (int i = 0; i < n; i++)
    total += db_int(&data[i], sql);
  return total;
}

/* ------------------------------------------------------------------------ */
/* Where the keys live                                                       */
/* ------------------------------------------------------------------------ */

/* Without a key store each unit's key is on the shard its name has as a pid:
 * with units of one pid, beside its snapshots. */
Test(postgres_keys, each_key_lives_on_its_units_shard) {
  pgfx f = shared();
  db data[3] = {new_db(&f, "own0"), new_db(&f, "own1"), new_db(&f, "own2")};
  snap_keyring *kr = ring(0x41);
  snap_options *o = envelope_opts(kr);
  snap_store *st = open_store(data, 3, NULL, "", o);
  char pid[32];
  for (int i = 0; i < 60; i++) {
    snprintf(pid, sizeof pid, "unit-%02d", i);
    save_state(st, pid, "{\"here\":true}");
  }
  snap_store_close(st);
  cr_assert_eq(rows_on(data, 3, "SELECT count(*) FROM snapshots_keys"), 60);
  for (int i = 0; i < 3; i++) {
    long long beside = db_int(&data[i], "SELECT count(*) FROM snapshots_keys k JOIN snapshots s "
                                        "ON s.persistence_id = k.unit");
    long long keys = db_int(&data[i], "SELECT count(*) FROM snapshots_keys");
    cr_assert(keys > 0, "shard %d holds keys", i);
    cr_assert_eq(beside, keys, "shard %d: every key beside its unit's snapshots", i);
  }
  st = open_store(data, 3, NULL, "", o);
  for (int i = 0; i < 60; i += 7) {
    snprintf(pid, sizeof pid, "unit-%02d", i);
    expect_state(st, pid, "{\"here\":true}");
  }
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  for (int i = 0; i < 3; i++)
    drop_db(&f, &data[i]);
}

/* ------------------------------------------------------------------------ */
/* A data backup cannot bring a forgotten unit back                          */
/* ------------------------------------------------------------------------ */

/* The backup test on postgres: data on two shards, keys in a key
 * store of their own; pg_dump of each data shard, then forget a unit (its
 * key, and its snapshots on every shard); the dumps restored in place of
 * the data databases beside the current key store: the forgotten unit's
 * bodies are back but stay unreadable (SNAP_ENOKEY, "forgotten") while every
 * other unit loads. */
Test(postgres_keys, a_restored_pg_dump_cannot_bring_a_forgotten_unit_back) {
  pgfx f = shared();
  db data[2] = {new_db(&f, "data0"), new_db(&f, "data1")};
  db keys = new_db(&f, "keys");
  snap_keyring *kr = ring(0x42);
  snap_options *o = envelope_opts(kr);
  const char *extra = "\"keep\": 0";
  snap_store *st = open_store(data, 2, &keys, extra, o);
  const char *pids[] = {"carol", "dave", "erin", "frank", "gina", "hank"};
  for (int i = 0; i < 6; i++)
    save_state(st, pids[i], "{\"ok\":true}");
  snap_store_close(st);
  cr_assert_eq(rows_on(data, 2, "SELECT count(*) FROM snapshots"), 6);
  cr_assert(db_int(&data[0], "SELECT count(*) FROM snapshots") > 0 &&
                db_int(&data[1], "SELECT count(*) FROM snapshots") > 0,
            "both shards hold snapshots");
  cr_assert_eq(rows_on(data, 2, "SELECT count(*) FROM snapshots_keys"), 0,
               "the data databases hold no key");
  cr_assert_eq(db_int(&keys, "SELECT count(*) FROM unit_keys_keys WHERE wrapped IS NOT NULL"), 6);
  /* The data backups. */
  char *dir = st_tmpdir(), cmd[2048];
  char dump[2][512];
  for (int i = 0; i < 2; i++) {
    snprintf(dump[i], sizeof dump[i], "%s/shard%d.dump", dir, i);
    snprintf(cmd, sizeof cmd, PGFX_BINDIR "/pg_dump -Fc --no-owner -f '%s' -d '%s'", dump[i],
             data[i].ci);
    run(cmd);
  }
  st = open_store(data, 2, &keys, extra, o);
  snap_forget_report rep;
  cr_assert_eq(snap_forget(st, "dave", &rep), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(rep.keys, 1);
  cr_assert_eq(rep.pids, 1);
  snap_store_close(st);
  cr_assert_eq(rows_on(data, 2, "SELECT count(*) FROM snapshots WHERE persistence_id = 'dave'"),
               0);
  cr_assert_eq(db_int(&keys, "SELECT count(*) FROM unit_keys_keys WHERE unit = 'dave' AND "
                             "wrapped IS NULL AND generation = 1"),
               1, "a tombstone keeps the fact, not the key");
  /* Restore the data backups in place of the data databases. */
  for (int i = 0; i < 2; i++) {
    drop_db(&f, &data[i]);
    char sql[2048];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", data[i].name);
    exec_sql(&f, sql);
    snprintf(cmd, sizeof cmd, PGFX_BINDIR "/pg_restore --no-owner -d '%s' '%s'", data[i].ci,
             dump[i]);
    run(cmd);
  }
  cr_assert_eq(rows_on(data, 2, "SELECT count(*) FROM snapshots WHERE persistence_id = 'dave'"),
               1, "the backup holds the forgotten unit's body");
  st = open_store(data, 2, &keys, extra, o);
  for (int i = 0; i < 6; i++) {
    if (strcmp(pids[i], "dave") == 0)
      continue;
    expect_state(st, pids[i], "{\"ok\":true}");
  }
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, "dave", NULL, &s);
  cr_assert_eq(rc, SNAP_ENOKEY, "%d %s", rc, snap_error_message());
  cr_assert_null(s);
  cr_assert(strstr(snap_error_message(), "'dave' was forgotten"), "%s", snap_error_message());
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  for (int i = 0; i < 2; i++)
    drop_db(&f, &data[i]);
  drop_db(&f, &keys);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Dictionaries on every shard                                               */
/* ------------------------------------------------------------------------ */

static const char DICT[] = "{\"account\":\"acc-\",\"owner\":\"\",\"currency\":\"EUR\","
                           "\"balance_cents\":,\"active\":true}";

/* A dictionary is on every shard; a put cut short (here: the row missing on
 * the first shard) still serves loads from the others, and the same put
 * again completes it; another dictionary under a name a shard holds is a
 * conflict naming the shard. */
Test(postgres_keys, dictionaries_are_on_every_shard_and_a_put_cut_short_completes) {
  pgfx f = shared();
  db data[3] = {new_db(&f, "dict0"), new_db(&f, "dict1"), new_db(&f, "dict2")};
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  snap_store *st = open_store(data, 3, NULL, "\"compression\": \"zstd\"", o);
  uint32_t id = 0;
  cr_assert_eq(snap_store_dict_add(st, "accounts", DICT, strlen(DICT), &id), SNAP_OK, "%s",
               snap_error_message());
  for (int i = 0; i < 3; i++)
    cr_assert_eq(db_int(&data[i], "SELECT count(*) FROM snapshots_dicts WHERE name = 'accounts'"),
                 1, "shard %d", i);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, 3), SNAP_OK);
  cr_assert_eq(snap_options_set_dictionary(o, 0, "accounts"), SNAP_OK, "%s",
               snap_error_message());
  char pid[32], state[256];
  for (int i = 0; i < 12; i++) {
    snprintf(pid, sizeof pid, "acc-%d", i);
    snprintf(state, sizeof state,
             "{\"account\":\"acc-%04d\",\"owner\":\"owner %d\",\"currency\":\"EUR\","
             "\"balance_cents\":%d,\"active\":true}",
             i, i, i * 37);
    cr_assert_eq(snap_save(st, pid, 1, SNAP_FORMAT_JSON, state, strlen(state), o, NULL), SNAP_OK,
                 "%s", snap_error_message());
  }
  uint64_t uses = 0;
  cr_assert_eq(snap_store_dict_uses(st, id, &uses), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(uses, 12, "every body names the dictionary");
  snap_store_close(st);
  PGconn *c = PQconnectdb(data[0].ci);
  PGresult *r = PQexec(c, "DELETE FROM snapshots_dicts");
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
  snap_options_free(o);
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  st = open_store(data, 3, NULL, "", o);
  for (int i = 0; i < 12; i++) {
    snprintf(pid, sizeof pid, "acc-%d", i);
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_latest(st, pid, NULL, &s), SNAP_OK, "%s: %s", pid,
                 snap_error_message());
    cr_assert_not_null(s);
    snap_snapshot_free(s);
  }
  snap_dict_info *list = NULL;
  size_t n = 0;
  cr_assert_eq(snap_store_dict_list(st, &list, &n), SNAP_OK, "%s", snap_error_message());
  cr_assert(n == 1 && list[0].id == id, "%zu dictionaries", n);
  snap_free(list);
  cr_assert_eq(snap_store_dict_add(st, "accounts", DICT, strlen(DICT), NULL), SNAP_OK,
               "the same put again completes it: %s", snap_error_message());
  cr_assert_eq(db_int(&data[0], "SELECT count(*) FROM snapshots_dicts"), 1);
  cr_assert_eq(snap_store_dict_add(st, "accounts", DICT, strlen(DICT), NULL), SNAP_ECONFLICT,
               "now it exists everywhere");
  cr_assert_eq(snap_store_dict_add(st, "accounts", "abcdefghijklmnop", 16, NULL), SNAP_ECONFLICT);
  cr_assert(strstr(snap_error_message(), "accounts"), "%s", snap_error_message());
  snap_store_close(st);
  snap_options_free(o);
  for (int i = 0; i < 3; i++)
    drop_db(&f, &data[i]);
}

/* ------------------------------------------------------------------------ */
/* Rewrap over shards holding unequal shares                                 */
/* ------------------------------------------------------------------------ */

/* The shard of 3 a unit lives on (docs/POSTGRES.md, section 3). */
static int shard_of_3(const char *unit) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)unit; *p; p++)
    h = (h ^ *p) * 16777619u;
  return (int)((h % 1024u) * 3 / 1024u);
}

/* The key table is listed a page at a time, each shard asked for about its
 * share of the page: a shard holding far more than its share is asked again,
 * and the merged pages still hold every unit once, in order. */
Test(postgres_keys, rewrap_covers_every_unit_when_one_shard_holds_most) {
  pgfx f = shared();
  db data[3] = {new_db(&f, "skew0"), new_db(&f, "skew1"), new_db(&f, "skew2")};
  snap_keyring *kr = ring(0x43);
  snap_options *o = envelope_opts(kr);
  snap_store *st = open_store(data, 3, NULL, "\"keep\": 0", o);
  char pid[32];
  int on0 = 0, others = 0;
  for (int i = 0; on0 < 1900 || others < 20; i++) {
    snprintf(pid, sizeof pid, "k-%05d", i);
    bool first = shard_of_3(pid) == 0;
    if ((first && on0 >= 1900) || (!first && others >= 20))
      continue;
    save_state(st, pid, "{}");
    if (first)
      on0++;
    else
      others++;
  }
  snap_store_close(st);
  cr_assert_eq(db_int(&data[0], "SELECT count(*) FROM snapshots_keys"), 1900);
  snap_keyring *both = NULL;
  cr_assert_eq(snap_keyring_new(&both), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, 0x43, sizeof key);
  cr_assert_eq(snap_keyring_add(both, 1, key, sizeof key), SNAP_OK);
  memset(key, 0x44, sizeof key);
  cr_assert_eq(snap_keyring_add(both, 2, key, sizeof key), SNAP_OK);
  cr_assert_eq(snap_keyring_set_active(both, 2), SNAP_OK);
  snap_options *o2 = envelope_opts(both);
  st = open_store(data, 3, NULL, "", o2);
  snap_rewrap_progress pr;
  cr_assert_eq(snap_rewrap(st, NULL, NULL, NULL, NULL, &pr), SNAP_OK, "%s", snap_error_message());
  cr_assert(pr.seen == 1920 && pr.rewrapped == 1920, "seen %llu rewrapped %llu",
            (unsigned long long)pr.seen, (unsigned long long)pr.rewrapped);
  cr_assert_eq(rows_on(data, 3, "SELECT count(*) FROM snapshots_keys WHERE master_version = 2"),
               1920);
  cr_assert_eq(snap_rewrap(st, NULL, NULL, NULL, NULL, &pr), SNAP_OK, "%s", snap_error_message());
  cr_assert(pr.seen == 1920 && pr.current == 1920, "seen %llu current %llu",
            (unsigned long long)pr.seen, (unsigned long long)pr.current);
  expect_state(st, "k-00000", "{}");
  snap_store_close(st);
  snap_options_free(o);
  snap_options_free(o2);
  snap_keyring_free(kr);
  snap_keyring_free(both);
  for (int i = 0; i < 3; i++)
    drop_db(&f, &data[i]);
}
