/* The snapshot-store conformance suite, run against every backend in `cases`:
 * a port of the Akka persistence snapshot-store TCK plus the cases it leaves
 * out (lower bounds, odd pids, retention, fallback, options, invalid input).
 * A new backend is tested by adding one line to `cases`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <sqlite3.h>

#include <libpq-fe.h>

#include "pg_fixture.h"
#include "snap/admin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

/* ------------------------------------------------------------------------ */
/* The backends under test                                                   */
/* ------------------------------------------------------------------------ */

/* Damages the stored body of (pid, seq) at rest, flipping one byte. */
typedef void (*corrupt_fn)(const char *dir, const char *pid, int64_t seq);

/* Writes the backend's own keys for the test's temp directory `dir`. */
typedef void (*keys_fn)(const char *dir, char *buf, size_t cap);

typedef struct backend_case {
  const char *name;
  const snap_backend *(*backend)(void);
  const char *config; /* the backend's own keys; "%s" is the test's temp directory */
  bool persistent;    /* snapshots survive closing and reopening the store */
  corrupt_fn corrupt; /* NULL when bodies cannot be reached from outside the store */
  keys_fn keys;       /* when set, writes the keys instead of `config` */
  bool file_backup;   /* snap_store_backup() writes a file the backend opens as a store */
} backend_case;

static void sqlite_corrupt(const char *dir, const char *pid, int64_t seq);
static void pg_corrupt(const char *dir, const char *pid, int64_t seq);
static void pg_keys(const char *dir, char *buf, size_t cap);
static void pg_sharded_keys(const char *dir, char *buf, size_t cap);

static const backend_case cases[] = {
    {"memory", snap_backend_memory, "", false, NULL, NULL, false},
    {"sqlite", snap_backend_sqlite, "\"path\": \"%s/conformance.db\"", true, sqlite_corrupt,
     NULL, true},
    {"postgres", snap_backend_postgres, "", true, pg_corrupt, pg_keys, false},
    {"postgres-3-shards", snap_backend_postgres, "", true, pg_corrupt, pg_sharded_keys, false},
};
#define NCASES (sizeof cases / sizeof cases[0])
#define FOR_EACH_BACKEND(bc) for (const backend_case *bc = cases; bc < cases + NCASES; bc++)

static void sqlite_corrupt(const char *dir, const char *pid, int64_t seq) {
  char *path = st_join(dir, "conformance.db");
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *s = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT body FROM snapshots WHERE pid = ?1 AND seq = ?2", -1,
                                  &s, NULL),
               SQLITE_OK);
  sqlite3_bind_text(s, 1, pid, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, seq);
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no row for %s/%" PRId64 " to corrupt", pid, seq);
  int n = sqlite3_column_bytes(s, 0);
  uint8_t *body = malloc((size_t)n);
  memcpy(body, sqlite3_column_blob(s, 0), (size_t)n);
  sqlite3_finalize(s);
  body[n / 2] ^= 0x5a; /* the middle: past the header, inside the payload */
  cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE snapshots SET body = ?3 WHERE pid = ?1 AND seq = ?2",
                                  -1, &s, NULL),
               SQLITE_OK);
  sqlite3_bind_text(s, 1, pid, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, seq);
  sqlite3_bind_blob(s, 3, body, n, SQLITE_TRANSIENT);
  cr_assert_eq(sqlite3_step(s), SQLITE_DONE);
  sqlite3_finalize(s);
  sqlite3_close(db);
  free(body);
  free(path);
}

/* The postgres cases share one throw-away cluster with three databases,
 * started by the runner before any test and removed after the last. Each
 * test gets its own table, named after its temp directory. */
static pgfx cluster;

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  char err[512];
  if (pgfx_start(&cluster, 3, err, sizeof err) == 0)
    pgfx_export(&cluster);
  else
    pgfx_export_failure(err); /* every postgres case then fails with it */
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  pgfx_destroy(&cluster);
}

static void pg_cluster(pgfx *f) {
  char err[512];
  cr_assert_eq(pgfx_import(f, err, sizeof err), 0, "%s", err);
}

static void pg_table(const char *dir, char *buf, size_t cap) {
  /* st_tmpdir() ends in "store-XXXXXX" with [A-Za-z0-9] for the X's. */
  const char *base = strrchr(dir, '-');
  snprintf(buf, cap, "conf_%s", base ? base + 1 : "x");
}

static void pg_keys(const char *dir, char *buf, size_t cap) {
  pgfx f;
  pg_cluster(&f);
  char ci[512], table[64];
  pgfx_conninfo(&f, 0, ci, sizeof ci);
  pg_table(dir, table, sizeof table);
  snprintf(buf, cap, "\"conninfo\": \"%s\", \"table\": \"%s\"", ci, table);
}

static void pg_sharded_keys(const char *dir, char *buf, size_t cap) {
  pgfx f;
  pg_cluster(&f);
  char ci[3][512], table[64];
  for (int i = 0; i < 3; i++)
    pgfx_conninfo(&f, i, ci[i], sizeof ci[i]);
  pg_table(dir, table, sizeof table);
  snprintf(buf, cap, "\"shards\": [\"%s\", \"%s\", \"%s\"], \"table\": \"%s\"", ci[0],
           ci[1], ci[2], table);
}

/* Flips the middle byte of the body of (pid, seq) in whichever database holds it. */
static void pg_corrupt(const char *dir, const char *pid, int64_t seq) {
  pgfx f;
  pg_cluster(&f);
  char table[64], sql[256], seqtext[24];
  pg_table(dir, table, sizeof table);
  snprintf(sql, sizeof sql,
           "UPDATE \"%s\" SET body = set_byte(body, length(body) / 2, "
           "get_byte(body, length(body) / 2) # 90) WHERE persistence_id = $1 AND seq = $2",
           table);
  snprintf(seqtext, sizeof seqtext, "%" PRId64, seq);
  int updated = 0;
  for (int db = 0; db < 3; db++) {
    char ci[512];
    pgfx_conninfo(&f, db, ci, sizeof ci);
    PGconn *c = PQconnectdb(ci);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    const char *vals[2] = {pid, seqtext};
    PGresult *r = PQexecParams(c, sql, 2, NULL, vals, NULL, NULL, 0);
    /* The table exists only in the databases a store has used. */
    if (PQresultStatus(r) == PGRES_COMMAND_OK)
      updated += atoi(PQcmdTuples(r));
    PQclear(r);
    PQfinish(c);
  }
  cr_assert_eq(updated, 1, "no row for %s/%" PRId64 " to corrupt", pid, seq);
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct fx {
  const backend_case *bc;
  char *dir;
  snap_store *st;
  snap_meta md[5];
} fx;

static int try_open(const backend_case *bc, const char *dir, const char *store_keys,
                    snap_store **st) {
  char backend_keys[2048], config[4096];
  if (bc->keys)
    bc->keys(dir, backend_keys, sizeof backend_keys);
  else
    snprintf(backend_keys, sizeof backend_keys, bc->config, dir);
  snprintf(config, sizeof config, "{%s%s%s}", backend_keys,
           backend_keys[0] && store_keys[0] ? ", " : "", store_keys);
  return snap_store_open_backend(st, bc->backend(), config);
}

static void fx_open(fx *f, const backend_case *bc, const char *store_keys) {
  memset(f, 0, sizeof *f);
  f->bc = bc;
  f->dir = st_tmpdir();
  cr_assert_not_null(f->dir, "[%s] cannot create a temp directory", bc->name);
  int rc = try_open(bc, f->dir, store_keys, &f->st);
  cr_assert_eq(rc, SNAP_OK, "[%s] open: %s", bc->name, snap_error_message());
}

static void fx_reopen(fx *f, const char *store_keys) {
  snap_store_close(f->st);
  f->st = NULL;
  int rc = try_open(f->bc, f->dir, store_keys, &f->st);
  cr_assert_eq(rc, SNAP_OK, "[%s] reopen: %s", f->bc->name, snap_error_message());
}

static void fx_close(fx *f) {
  snap_store_close(f->st);
  st_rmtree(f->dir);
  free(f->dir);
}

/* The TCK fixture: seq 11..15 with payloads "s-1".."s-5" and increasing timestamps. */
static void fx_fill(fx *f, const char *pid) {
  for (int i = 0; i < 5; i++) {
    char state[16];
    snprintf(state, sizeof state, "\"s-%d\"", i + 1);
    int rc = snap_save_at(f->st, pid, 11 + i, 100000 + 1000 * i, SNAP_FORMAT_JSON, state,
                          strlen(state), NULL, &f->md[i]);
    cr_assert_eq(rc, SNAP_OK, "[%s] save seq %d: %s", f->bc->name, 11 + i, snap_error_message());
  }
}

static snap_snapshot *load(fx *f, const char *pid, snap_criteria c) {
  snap_snapshot *s = (snap_snapshot *)1;
  int rc = snap_load(f->st, pid, &c, NULL, &s);
  cr_assert_eq(rc, SNAP_OK, "[%s] load: %s", f->bc->name, snap_error_message());
  return s;
}

static void expect_none(fx *f, snap_snapshot *s, const char *what) {
  cr_assert_null(s, "[%s] %s: expected no snapshot, got seq %" PRId64, f->bc->name, what,
                 s ? s->seq : -1);
}

/* Expects the fixture's snapshot md[i] with payload "s-(i+1)". */
static void expect_md(fx *f, snap_snapshot *s, int i, const char *what) {
  cr_assert_not_null(s, "[%s] %s: expected seq %" PRId64 ", got none", f->bc->name, what,
                     f->md[i].seq);
  char state[16];
  snprintf(state, sizeof state, "\"s-%d\"", i + 1);
  cr_assert_eq(s->seq, f->md[i].seq, "[%s] %s: seq", f->bc->name, what);
  cr_assert_eq(s->timestamp, f->md[i].timestamp, "[%s] %s: timestamp", f->bc->name, what);
  cr_assert_eq(s->format, SNAP_FORMAT_JSON, "[%s] %s: format", f->bc->name, what);
  cr_assert_eq(s->len, strlen(state), "[%s] %s: length", f->bc->name, what);
  cr_assert_str_eq((const char *)s->data, state, "[%s] %s: payload", f->bc->name, what);
  snap_snapshot_free(s);
}

static snap_criteria crit(int64_t min_seq, int64_t max_seq, int64_t min_ts, int64_t max_ts) {
  return (snap_criteria){min_seq, max_seq, min_ts, max_ts};
}

#define ANY_TS 0, INT64_MAX

/* ------------------------------------------------------------------------ */
/* The TCK                                                                   */
/* ------------------------------------------------------------------------ */

Test(conformance, unknown_pid_loads_none) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    expect_none(&f, load(&f, "other", SNAP_CRITERIA_LATEST), "unknown pid");
    fx_close(&f);
  }
}

Test(conformance, timestamp_bound_below_every_snapshot_loads_none) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    expect_none(&f, load(&f, "p", crit(0, INT64_MAX, 0, 100)), "max_ts 100");
    fx_close(&f);
  }
}

Test(conformance, seq_bound_below_every_snapshot_loads_none) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    expect_none(&f, load(&f, "p", crit(0, 7, ANY_TS)), "max_seq 7");
    snap_snapshot *s = (snap_snapshot *)1;
    cr_assert_eq(snap_load_before(f.st, "p", 8, NULL, &s), SNAP_OK, "[%s]", bc->name);
    expect_none(&f, s, "load_before 8");
    fx_close(&f);
  }
}

Test(conformance, latest_is_the_youngest_snapshot) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_latest(f.st, "p", NULL, &s), SNAP_OK, "[%s]", bc->name);
    cr_assert_eq(s->skipped, 0u, "[%s]", bc->name);
    cr_assert_eq(s->skip_reason, SNAP_OK, "[%s]", bc->name);
    cr_assert_str_eq(s->pid, "p", "[%s]", bc->name);
    expect_md(&f, s, 4, "latest");
    fx_close(&f);
  }
}

Test(conformance, max_seq_selects_the_youngest_at_or_below_it) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    expect_md(&f, load(&f, "p", crit(0, 13, ANY_TS)), 2, "max_seq 13");
    expect_md(&f, load(&f, "p", crit(0, 13, 0, f.md[2].timestamp)), 2, "max_seq 13 + max_ts");
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_before(f.st, "p", 13, NULL, &s), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, s, 1, "load_before 13");
    fx_close(&f);
  }
}

Test(conformance, delete_one_removes_exactly_that_snapshot) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    cr_assert_eq(snap_delete_one(f.st, "p", 13), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, load(&f, "p", crit(0, 13, ANY_TS)), 1, "after delete_one 13");
    expect_md(&f, load(&f, "p", crit(0, 14, ANY_TS)), 3, "seq 14 untouched");
    fx_close(&f);
  }
}

Test(conformance, delete_matching_removes_everything_matching_both_bounds) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    snap_criteria c = crit(0, 13, 0, f.md[2].timestamp);
    cr_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
    expect_none(&f, load(&f, "p", crit(0, 13, ANY_TS)), "max_seq 13 after delete");
    expect_md(&f, load(&f, "p", crit(0, 14, ANY_TS)), 3, "max_seq 14 after delete");
    fx_close(&f);
  }
}

Test(conformance, delete_matching_by_timestamp_keeps_younger_snapshots) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    snap_criteria c = crit(0, INT64_MAX, 0, f.md[3].timestamp - 1);
    cr_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, load(&f, "p", crit(0, 14, ANY_TS)), 3, "seq 14 left");
    expect_none(&f, load(&f, "p", crit(0, 13, ANY_TS)), "seq 11..13 gone");
    fx_close(&f);
  }
}

Test(conformance, saving_the_same_seq_again_replaces_the_payload) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    const char *st2 = "{\"replaced\":true}";
    snap_meta m;
    cr_assert_eq(snap_save_at(f.st, "p", 15, 200000, SNAP_FORMAT_JSON, st2, strlen(st2), NULL, &m),
                 SNAP_OK, "[%s]", bc->name);
    snap_snapshot *s = load(&f, "p", SNAP_CRITERIA_LATEST);
    cr_assert_not_null(s, "[%s]", bc->name);
    cr_assert_eq(s->seq, 15, "[%s]", bc->name);
    cr_assert_eq(s->timestamp, 200000, "[%s]", bc->name);
    cr_assert_str_eq((const char *)s->data, st2, "[%s]", bc->name);
    snap_snapshot_free(s);
    expect_md(&f, load(&f, "p", crit(0, 14, ANY_TS)), 3, "seq 14 untouched");
    fx_close(&f);
  }
}

Test(conformance, ten_megabyte_state_round_trips_byte_for_byte) {
  size_t n = 10u * 1000 * 1000;
  char *big = malloc(n);
  cr_assert_not_null(big);
  big[0] = '"';
  for (size_t i = 1; i < n - 1; i++)
    big[i] = (char)('a' + (i * 7919 % 26));
  big[n - 1] = '"';
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    snap_meta m;
    cr_assert_eq(snap_save(f.st, "big", 1, SNAP_FORMAT_JSON, big, n, NULL, &m), SNAP_OK, "[%s] %s",
                 bc->name, snap_error_message());
    cr_assert_eq(m.state_len, n, "[%s]", bc->name);
    snap_snapshot *s = load(&f, "big", SNAP_CRITERIA_LATEST);
    cr_assert_not_null(s, "[%s]", bc->name);
    cr_assert_eq(s->len, n, "[%s]", bc->name);
    cr_assert(memcmp(s->data, big, n) == 0, "[%s] the state differs", bc->name);
    cr_assert_eq(s->data[n], 0, "[%s] the state is NUL-terminated", bc->name);
    snap_snapshot_free(s);
    fx_close(&f);
  }
  free(big);
}

/* ------------------------------------------------------------------------ */
/* Beyond the TCK                                                            */
/* ------------------------------------------------------------------------ */

Test(conformance, lower_bounds_limit_loads) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    expect_md(&f, load(&f, "p", crit(12, 13, ANY_TS)), 2, "seq 12..13");
    expect_md(&f, load(&f, "p", crit(12, 12, ANY_TS)), 1, "seq 12..12");
    expect_none(&f, load(&f, "p", crit(16, INT64_MAX, ANY_TS)), "min_seq 16");
    expect_md(&f, load(&f, "p", crit(0, INT64_MAX, f.md[3].timestamp, INT64_MAX)), 4,
              "min_ts of seq 14");
    expect_md(&f, load(&f, "p", crit(0, 14, f.md[3].timestamp, INT64_MAX)), 3,
              "min_ts of seq 14, max_seq 14");
    expect_none(&f, load(&f, "p", crit(0, 13, f.md[3].timestamp, INT64_MAX)),
                "min_ts above every match");
    expect_none(&f, load(&f, "p", crit(0, INT64_MAX, f.md[4].timestamp + 1, INT64_MAX)),
                "min_ts above all");
    /* Inverted bounds match nothing: documented as "none", not an error. */
    expect_none(&f, load(&f, "p", crit(14, 13, ANY_TS)), "min_seq > max_seq");
    expect_none(&f, load(&f, "p", crit(0, INT64_MAX, 5, 4)), "min_ts > max_ts");
    /* The newest by seq may be older by timestamp: a lower timestamp bound then
     * skips it for the youngest snapshot that does match. */
    cr_assert_eq(snap_save_at(f.st, "p", 16, 50000, SNAP_FORMAT_JSON, "\"s-6\"", 5, NULL, NULL),
                 SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    expect_md(&f, load(&f, "p", crit(0, INT64_MAX, f.md[3].timestamp, INT64_MAX)), 4,
              "min_ts above the newest seq's timestamp");
    fx_close(&f);
  }
}

Test(conformance, lower_bounds_limit_deletes) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    snap_criteria c = crit(12, 14, f.md[3].timestamp, INT64_MAX);
    cr_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, load(&f, "p", crit(0, 14, ANY_TS)), 2, "14 deleted, 13 kept");
    expect_md(&f, load(&f, "p", SNAP_CRITERIA_LATEST), 4, "15 kept");
    c = crit(12, INT64_MAX, 0, f.md[2].timestamp);
    cr_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, load(&f, "p", crit(0, 14, ANY_TS)), 0, "12..13 deleted, 11 kept");
    /* Inverted criteria delete nothing. */
    c = crit(20, 10, ANY_TS);
    cr_assert_eq(snap_delete_matching(f.st, "p", &c), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, load(&f, "p", SNAP_CRITERIA_LATEST), 4, "inverted criteria");
    cr_assert_eq(snap_delete(f.st, "p", 14), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, load(&f, "p", SNAP_CRITERIA_LATEST), 4, "delete to 14 keeps 15");
    expect_none(&f, load(&f, "p", crit(0, 14, ANY_TS)), "delete to 14");
    fx_close(&f);
  }
}

Test(conformance, seq_zero_is_a_valid_sequence_number) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    cr_assert_eq(snap_save(f.st, "z", 0, SNAP_FORMAT_JSON, "0", 1, NULL, NULL), SNAP_OK, "[%s] %s",
                 bc->name, snap_error_message());
    snap_snapshot *s = load(&f, "z", SNAP_CRITERIA_LATEST);
    cr_assert_not_null(s, "[%s]", bc->name);
    cr_assert_eq(s->seq, 0, "[%s]", bc->name);
    snap_snapshot_free(s);
    s = (snap_snapshot *)1;
    cr_assert_eq(snap_load_before(f.st, "z", 0, NULL, &s), SNAP_OK, "[%s]", bc->name);
    expect_none(&f, s, "before 0");
    cr_assert_eq(snap_load_before(f.st, "z", 1, NULL, &s), SNAP_OK, "[%s]", bc->name);
    cr_assert_not_null(s, "[%s] before 1", bc->name);
    cr_assert_eq(s->seq, 0, "[%s]", bc->name);
    snap_snapshot_free(s);
    cr_assert_eq(snap_delete_one(f.st, "z", 0), SNAP_OK, "[%s]", bc->name);
    expect_none(&f, load(&f, "z", SNAP_CRITERIA_LATEST), "deleted seq 0");
    fx_close(&f);
  }
}

Test(conformance, empty_states_are_refused_and_one_byte_states_round_trip) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    /* 0 bytes are neither JSON nor msgpack: every save refuses them, storing nothing. */
    snap_meta m;
    cr_assert_eq(snap_save(f.st, "e", 1, SNAP_FORMAT_JSON, "", 0, NULL, &m), SNAP_EFORMAT,
                 "[%s] empty JSON state", bc->name);
    cr_assert_eq(snap_save(f.st, "e", 4, SNAP_FORMAT_MSGPACK, NULL, 0, NULL, NULL), SNAP_EFORMAT,
                 "[%s] NULL with length 0", bc->name);
    expect_none(&f, load(&f, "e", SNAP_CRITERIA_LATEST), "refused empty saves stored nothing");
    snap_save_req reqs[2] = {{"e", 5, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "5", 1, NULL},
                             {"e", 6, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "", 0, NULL}};
    int status[2] = {1, 1};
    cr_assert_eq(snap_save_batch(f.st, reqs, 2, status, NULL), SNAP_EFORMAT, "[%s] batch",
                 bc->name);
    cr_assert_eq(status[0], SNAP_OK, "[%s]", bc->name);
    cr_assert_eq(status[1], SNAP_EFORMAT, "[%s]", bc->name);
    snap_snapshot *s = load(&f, "e", SNAP_CRITERIA_LATEST);
    cr_assert_not_null(s, "[%s]", bc->name);
    cr_assert_eq(s->seq, 5, "[%s] only the valid row of the batch was stored", bc->name);
    snap_snapshot_free(s);
    cr_assert_eq(snap_delete_one(f.st, "e", 5), SNAP_OK, "[%s]", bc->name);
    cr_assert_eq(snap_save(f.st, "e", 2, SNAP_FORMAT_JSON, "7", 1, NULL, NULL), SNAP_OK, "[%s] %s",
                 bc->name, snap_error_message());
    const uint8_t nil = 0xc0; /* msgpack nil */
    cr_assert_eq(snap_save(f.st, "e", 3, SNAP_FORMAT_MSGPACK, &nil, 1, NULL, NULL), SNAP_OK,
                 "[%s] %s", bc->name, snap_error_message());
    s = load(&f, "e", crit(0, 2, ANY_TS));
    cr_assert_eq(s->len, 1u, "[%s]", bc->name);
    cr_assert_eq(s->data[0], '7', "[%s]", bc->name);
    snap_snapshot_free(s);
    s = load(&f, "e", SNAP_CRITERIA_LATEST);
    cr_assert_eq(s->format, SNAP_FORMAT_MSGPACK, "[%s]", bc->name);
    cr_assert_eq(s->len, 1u, "[%s]", bc->name);
    cr_assert_eq(s->data[0], 0xc0, "[%s]", bc->name);
    snap_snapshot_free(s);
    fx_close(&f);
  }
}

Test(conformance, unusual_pids_are_kept_apart) {
  char long_pid[1001];
  for (int i = 0; i < 1000; i++)
    long_pid[i] = (char)('a' + i % 26);
  long_pid[1000] = '\0';
  const char *pids[] = {"актор-☃-🎉", long_pid, "it's", "100%", "a/b",
                        "a'b",       "a%b",    "%s%n", "a b",  "'; DROP TABLE snapshots; --"};
  size_t np = sizeof pids / sizeof pids[0];
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "");
    for (size_t i = 0; i < np; i++) {
      char state[32];
      snprintf(state, sizeof state, "%zu", i);
      cr_assert_eq(snap_save(f.st, pids[i], 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
                   SNAP_OK, "[%s] pid #%zu: %s", bc->name, i, snap_error_message());
    }
    for (size_t i = 0; i < np; i++) {
      char state[32];
      snprintf(state, sizeof state, "%zu", i);
      snap_snapshot *s = load(&f, pids[i], SNAP_CRITERIA_LATEST);
      cr_assert_not_null(s, "[%s] pid #%zu", bc->name, i);
      cr_assert_str_eq(s->pid, pids[i], "[%s]", bc->name);
      cr_assert_str_eq((const char *)s->data, state, "[%s] pid #%zu", bc->name, i);
      snap_snapshot_free(s);
    }
    expect_none(&f, load(&f, "a", SNAP_CRITERIA_LATEST), "prefix of a pid");
    fx_close(&f);
  }
}

Test(conformance, deleting_a_missing_snapshot_succeeds) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "");
    cr_assert_eq(snap_delete_one(f.st, "nobody", 5), SNAP_OK, "[%s]", bc->name);
    cr_assert_eq(snap_delete(f.st, "nobody", 5), SNAP_OK, "[%s]", bc->name);
    snap_criteria c = SNAP_CRITERIA_LATEST;
    cr_assert_eq(snap_delete_matching(f.st, "nobody", &c), SNAP_OK, "[%s]", bc->name);
    fx_fill(&f, "p");
    cr_assert_eq(snap_delete_one(f.st, "p", 99), SNAP_OK, "[%s]", bc->name);
    expect_md(&f, load(&f, "p", SNAP_CRITERIA_LATEST), 4, "untouched");
    fx_close(&f);
  }
}

Test(conformance, persistent_backends_keep_everything_across_reopen) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    fx_reopen(&f, "\"keep\": 0");
    snap_snapshot *s = load(&f, "p", SNAP_CRITERIA_LATEST);
    if (bc->persistent) {
      expect_md(&f, s, 4, "after reopen");
      expect_md(&f, load(&f, "p", crit(0, 11, ANY_TS)), 0, "oldest after reopen");
    } else {
      expect_none(&f, s, "a non-persistent backend starts empty");
    }
    fx_close(&f);
  }
}

Test(conformance, keep_n_holds_after_many_saves) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 3");
    for (int i = 1; i <= 25; i++) {
      char state[16];
      snprintf(state, sizeof state, "%d", i);
      cr_assert_eq(snap_save(f.st, "k", i, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
                   SNAP_OK, "[%s]", bc->name);
      cr_assert_eq(snap_save(f.st, "other", i, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
                   SNAP_OK, "[%s]", bc->name);
    }
    for (int seq = 23; seq <= 25; seq++) {
      snap_snapshot *s = load(&f, "k", crit(seq, seq, ANY_TS));
      cr_assert_not_null(s, "[%s] seq %d kept", bc->name, seq);
      snap_snapshot_free(s);
    }
    expect_none(&f, load(&f, "k", crit(0, 22, ANY_TS)), "older than the newest 3");
    expect_none(&f, load(&f, "other", crit(0, 22, ANY_TS)), "other pid pruned too");
    /* Saving an older seq below the window is pruned straight away. */
    cr_assert_eq(snap_save(f.st, "k", 2, SNAP_FORMAT_JSON, "2", 1, NULL, NULL), SNAP_OK);
    expect_none(&f, load(&f, "k", crit(0, 22, ANY_TS)), "old seq saved then pruned");
    fx_close(&f);
  }
}

Test(conformance, corrupt_newest_body_falls_back_and_reports_the_skip) {
  FOR_EACH_BACKEND(bc) {
    if (bc->corrupt == NULL)
      continue; /* bodies of this backend cannot be damaged at rest */
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    bc->corrupt(f.dir, "p", 15);
    snap_snapshot *s = load(&f, "p", SNAP_CRITERIA_LATEST);
    cr_assert_not_null(s, "[%s]", bc->name);
    cr_assert_eq(s->skipped, 1u, "[%s]", bc->name);
    cr_assert(s->skip_reason == SNAP_ECORRUPT || s->skip_reason == SNAP_EFORMAT, "[%s] %d",
              bc->name, s->skip_reason);
    expect_md(&f, s, 3, "fallback to 14");
    /* A bound below the damaged row never sees it. */
    s = load(&f, "p", crit(0, 14, ANY_TS));
    cr_assert_eq(s->skipped, 0u, "[%s]", bc->name);
    expect_md(&f, s, 3, "max_seq 14");
    fx_close(&f);
  }
}

Test(conformance, too_many_corrupt_bodies_is_an_error_not_none) {
  FOR_EACH_BACKEND(bc) {
    if (bc->corrupt == NULL)
      continue;
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    fx_fill(&f, "p");
    bc->corrupt(f.dir, "p", 15);
    bc->corrupt(f.dir, "p", 14);
    snap_snapshot *s = load(&f, "p", SNAP_CRITERIA_LATEST);
    cr_assert_eq(s->skipped, 2u, "[%s]", bc->name);
    expect_md(&f, s, 2, "third attempt");
    bc->corrupt(f.dir, "p", 13);
    s = (snap_snapshot *)1;
    int rc = snap_load_latest(f.st, "p", NULL, &s);
    cr_assert_eq(rc, SNAP_ECORRUPT, "[%s] three corrupt bodies: %d", bc->name, rc);
    cr_assert_null(s, "[%s]", bc->name);
    cr_assert(strstr(snap_error_message(), "skipped") != NULL, "[%s] %s", bc->name,
              snap_error_message());
    /* Every match corrupt, and fewer than the attempts: still an error. */
    snap_criteria c = crit(13, 15, ANY_TS);
    fx_reopen(&f, "\"keep\": 0, \"max_load_attempts\": 5");
    cr_assert_eq(snap_load(f.st, "p", &c, NULL, &s), SNAP_ECORRUPT, "[%s]", bc->name);
    c = crit(0, INT64_MAX, ANY_TS);
    cr_assert_eq(snap_load(f.st, "p", &c, NULL, &s), SNAP_OK, "[%s]", bc->name);
    cr_assert_eq(s->skipped, 3u, "[%s]", bc->name);
    expect_md(&f, s, 1, "five attempts reach seq 12");
    fx_close(&f);
  }
}

/* ------------------------------------------------------------------------ */
/* Options and capabilities                                                  */
/* ------------------------------------------------------------------------ */

static snap_keyring *keyring_with(uint8_t fill) {
  snap_keyring *kr = NULL;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, fill, sizeof key);
  cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  return kr;
}

/* A compressible JSON state of about `n` bytes. */
static char *ledger(size_t n, const char *marker) {
  char *s = malloc(n + 64);
  size_t len = (size_t)sprintf(s, "[\"%s\"", marker);
  while (len < n)
    len += (size_t)sprintf(s + len, ",{\"account\":%zu,\"amount\":100}", len % 97);
  strcpy(s + len, "]");
  return s;
}

Test(conformance, mixed_plain_compressed_and_encrypted_rows_all_load) {
  snap_keyring *kr = keyring_with(0x11);
  snap_options *zip, *enc, *reader;
  cr_assert_eq(snap_options_new(&zip), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(zip, SNAP_COMPRESSION_ZLIB, 6), SNAP_OK);
  cr_assert_eq(snap_options_new(&enc), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(enc, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(enc, kr, "test/conformance/v1"), SNAP_OK);
  cr_assert_eq(snap_options_new(&reader), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(reader, kr, "test/conformance/v1"), SNAP_OK);
  cr_assert_eq(snap_options_set_accept_unauthenticated(reader, true), SNAP_OK);
  char *state = ledger(8000, "mixed");
  size_t len = strlen(state);
  const snap_options *writers[3] = {NULL, zip, enc};
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    unsigned caps = snap_store_capabilities(f.st);
    for (int i = 0; i < 3; i++) {
      snap_meta m;
      cr_assert_eq(snap_save(f.st, "mix", i + 1, SNAP_FORMAT_JSON, state, len, writers[i], &m),
                   SNAP_OK, "[%s] %s", bc->name, snap_error_message());
      unsigned want = 0;
      if (i >= 1 && (caps & SNAP_CAP_COMPRESSION))
        want |= SNAP_STAGE_COMPRESSED;
      if (i == 2 && (caps & SNAP_CAP_ENCRYPTION))
        want |= SNAP_STAGE_ENCRYPTED;
      cr_assert_eq(m.stages, want, "[%s] row %d stages %#x", bc->name, i + 1, m.stages);
    }
    for (int i = 0; i < 3; i++) {
      snap_snapshot *s = NULL;
      snap_criteria c = crit(i + 1, i + 1, ANY_TS);
      cr_assert_eq(snap_load(f.st, "mix", &c, reader, &s), SNAP_OK, "[%s] row %d: %s", bc->name,
                   i + 1, snap_error_message());
      cr_assert_not_null(s, "[%s] row %d", bc->name, i + 1);
      cr_assert_eq(s->len, len, "[%s] row %d", bc->name, i + 1);
      cr_assert(memcmp(s->data, state, len) == 0, "[%s] row %d", bc->name, i + 1);
      snap_snapshot_free(s);
    }
    fx_close(&f);
  }
  free(state);
  snap_options_free(zip);
  snap_options_free(enc);
  snap_options_free(reader);
  snap_keyring_free(kr);
}

Test(conformance, unsupported_options_are_ignored_and_reported) {
  snap_keyring *kr = keyring_with(0x22);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "test/conformance/v1"), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  char *state = ledger(4000, "opts");
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "");
    unsigned caps = snap_store_capabilities(f.st);
    snap_meta m;
    cr_assert_eq(snap_save(f.st, "o", 1, SNAP_FORMAT_JSON, state, strlen(state), o, &m), SNAP_OK,
                 "[%s] %s", bc->name, snap_error_message());
    unsigned unsupported = (SNAP_OPT_ENCRYPTION | SNAP_OPT_COMPRESSION) & ~caps;
    cr_assert_eq(m.ignored, unsupported, "[%s] ignored %#x", bc->name, m.ignored);
    cr_assert_eq((m.stages & SNAP_STAGE_ENCRYPTED) != 0, (caps & SNAP_CAP_ENCRYPTION) != 0,
                 "[%s] stages %#x", bc->name, m.stages);
    /* The same keyed options read it back, whatever was applied. */
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_latest(f.st, "o", o, &s), SNAP_OK, "[%s] %s", bc->name,
                 snap_error_message());
    cr_assert_str_eq((const char *)s->data, state, "[%s]", bc->name);
    cr_assert_eq(s->stages, m.stages, "[%s]", bc->name);
    snap_snapshot_free(s);
    fx_close(&f);
  }
  free(state);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(conformance, required_options_the_backend_lacks_fail_the_save) {
  snap_keyring *kr = keyring_with(0x33);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "test/conformance/v1"), SNAP_OK);
  cr_assert_eq(snap_options_set_required(o, SNAP_OPT_ENCRYPTION), SNAP_OK);
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "");
    int rc = snap_save(f.st, "r", 1, SNAP_FORMAT_JSON, "1", 1, o, NULL);
    if (snap_store_capabilities(f.st) & SNAP_CAP_ENCRYPTION) {
      cr_assert_eq(rc, SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    } else {
      cr_assert_eq(rc, SNAP_EUNSUPPORTED, "[%s] %d", bc->name, rc);
      expect_none(&f, load(&f, "r", SNAP_CRITERIA_LATEST), "nothing stored");
    }
    fx_close(&f);
  }
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(conformance, a_wrong_key_is_an_error_never_a_fallback) {
  snap_keyring *right = keyring_with(0x44), *wrong = keyring_with(0x55);
  snap_options *w, *r;
  cr_assert_eq(snap_options_new(&w), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(w, right, "test/conformance/v1"), SNAP_OK);
  cr_assert_eq(snap_options_new(&r), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(r, wrong, "test/conformance/v1"), SNAP_OK);
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    cr_assert_eq(snap_save(f.st, "w", 1, SNAP_FORMAT_JSON, "1", 1, w, NULL), SNAP_OK);
    cr_assert_eq(snap_save(f.st, "w", 2, SNAP_FORMAT_JSON, "2", 1, w, NULL), SNAP_OK);
    snap_snapshot *s = (snap_snapshot *)1;
    int rc = snap_load_latest(f.st, "w", r, &s);
    if (snap_store_capabilities(f.st) & SNAP_CAP_ENCRYPTION) {
      cr_assert_eq(rc, SNAP_EAUTH, "[%s] %d %s", bc->name, rc, snap_error_message());
      cr_assert_null(s, "[%s]", bc->name);
      cr_assert_eq(snap_load_latest(f.st, "w", w, &s), SNAP_OK, "[%s]", bc->name);
      cr_assert_eq(s->seq, 2, "[%s]", bc->name);
    } else {
      /* Nothing was encrypted, so a keyed reader reads the plaintext bodies. */
      cr_assert_eq(rc, SNAP_OK, "[%s] %s", bc->name, snap_error_message());
      cr_assert_eq(s->seq, 2, "[%s]", bc->name);
    }
    snap_snapshot_free(s);
    fx_close(&f);
  }
  snap_options_free(w);
  snap_options_free(r);
  snap_keyring_free(right);
  snap_keyring_free(wrong);
}

Test(conformance, store_defaults_and_resolver_layer_under_call_options) {
  snap_options *def, *call;
  cr_assert_eq(snap_options_new(&def), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(def, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  cr_assert_eq(snap_options_new(&call), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(call, SNAP_COMPRESSION_NONE, 0), SNAP_OK);
  char *state = ledger(4000, "layers");
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "");
    bool zips = (snap_store_capabilities(f.st) & SNAP_CAP_COMPRESSION) != 0;
    cr_assert_eq(snap_store_set_default_options(f.st, def), SNAP_OK);
    snap_meta m;
    cr_assert_eq(snap_save(f.st, "d", 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m),
                 SNAP_OK);
    cr_assert_eq((m.stages & SNAP_STAGE_COMPRESSED) != 0, zips, "[%s] default", bc->name);
    cr_assert_eq(m.ignored, zips ? 0u : SNAP_OPT_COMPRESSION, "[%s]", bc->name);
    cr_assert_eq(snap_save(f.st, "d", 2, SNAP_FORMAT_JSON, state, strlen(state), call, &m),
                 SNAP_OK);
    cr_assert_eq(m.stages, 0u, "[%s] the call overrides the default", bc->name);
    cr_assert_eq(snap_store_set_default_options(f.st, NULL), SNAP_OK);
    cr_assert_eq(snap_save(f.st, "d", 3, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m),
                 SNAP_OK);
    cr_assert_eq(m.stages, 0u, "[%s] defaults cleared", bc->name);
    fx_close(&f);
    /* Configured compression is the bottom layer. */
    fx_open(&f, bc, "\"compression\": \"zlib\", \"compression_level\": 1");
    cr_assert_eq(snap_save(f.st, "d", 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m),
                 SNAP_OK);
    cr_assert_eq((m.stages & SNAP_STAGE_COMPRESSED) != 0, zips, "[%s] configured", bc->name);
    fx_close(&f);
  }
  free(state);
  snap_options_free(def);
  snap_options_free(call);
}

/* ------------------------------------------------------------------------ */
/* Invalid input                                                             */
/* ------------------------------------------------------------------------ */

Test(conformance, invalid_input_is_refused_and_stores_nothing) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "");
    snap_store *st = f.st;
    cr_assert_eq(snap_save(st, "", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] empty pid", bc->name);
    cr_assert_eq(snap_save(st, "bad\xff\xfe", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] invalid UTF-8", bc->name);
    cr_assert_eq(snap_save(st, NULL, 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] NULL pid", bc->name);
    cr_assert_eq(snap_save(st, "x", -1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] negative seq", bc->name);
    cr_assert(strstr(snap_error_message(), "-1") != NULL, "[%s] %s", bc->name,
              snap_error_message());
    cr_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_JSON, "{\"a\":", 5, NULL, NULL), SNAP_EFORMAT,
                 "[%s] malformed JSON", bc->name);
    cr_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_JSON, "1 2", 3, NULL, NULL), SNAP_EFORMAT,
                 "[%s] trailing JSON", bc->name);
    const uint8_t bad_mp[] = {0x92, 0x01}; /* an array of 2 with one element */
    cr_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_MSGPACK, bad_mp, 2, NULL, NULL), SNAP_EFORMAT,
                 "[%s] truncated msgpack", bc->name);
    cr_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_JSON, NULL, 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] NULL state", bc->name);
    cr_assert_eq(snap_save(st, "x", 1, (snap_format)7, "1", 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] unknown format", bc->name);
    cr_assert_eq(snap_save_at(st, "x", 1, -5, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] negative timestamp", bc->name);
    cr_assert_eq(snap_save(NULL, "x", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
                 "[%s] NULL store", bc->name);
    cr_assert_eq(snap_save_json(st, "x", 1, NULL, NULL, NULL), SNAP_EINVAL, "[%s]", bc->name);
    snap_snapshot *s = (snap_snapshot *)1;
    cr_assert_eq(snap_load_latest(st, "x", NULL, &s), SNAP_OK, "[%s]", bc->name);
    expect_none(&f, s, "nothing stored by invalid saves");
    cr_assert_eq(snap_load_latest(st, "", NULL, &s), SNAP_EINVAL, "[%s]", bc->name);
    cr_assert_eq(snap_load_latest(st, "x", NULL, NULL), SNAP_EINVAL, "[%s]", bc->name);
    cr_assert_eq(snap_load(st, "x", NULL, NULL, &s), SNAP_EINVAL, "[%s]", bc->name);
    cr_assert_eq(snap_delete(st, NULL, 1), SNAP_EINVAL, "[%s]", bc->name);
    cr_assert_eq(snap_delete_one(st, "x", -1), SNAP_EINVAL, "[%s]", bc->name);
    cr_assert_eq(snap_delete_matching(st, "x", NULL), SNAP_EINVAL, "[%s]", bc->name);
    fx_close(&f);
  }
}

static void expect_config_error(const backend_case *bc, const char *dir, const char *keys,
                                const char *named) {
  snap_store *st = (snap_store *)1;
  int rc = try_open(bc, dir, keys, &st);
  cr_assert_eq(rc, SNAP_ECONFIG, "[%s] config {%s}: %d", bc->name, keys, rc);
  cr_assert_null(st, "[%s]", bc->name);
  cr_assert(strstr(snap_error_message(), named) != NULL, "[%s] config {%s}: message '%s'", bc->name,
            keys, snap_error_message());
}

Test(conformance, bad_configuration_names_the_key) {
  FOR_EACH_BACKEND(bc) {
    char *dir = st_tmpdir();
    expect_config_error(bc, dir, "\"kepe\": 3", "kepe");
    expect_config_error(bc, dir, "\"keep\": \"3\"", "keep");
    expect_config_error(bc, dir, "\"keep\": -1", "keep");
    expect_config_error(bc, dir, "\"keep\": 1.5", "keep");
    expect_config_error(bc, dir, "\"max_load_attempts\": 0", "max_load_attempts");
    expect_config_error(bc, dir, "\"compression\": \"lz4\"", "compression");
    expect_config_error(bc, dir, "\"compression\": \"zlib\", \"compression_level\": 10",
                        "compression_level");
    expect_config_error(bc, dir, "\"compression_min_size\": -4", "compression_min_size");
    expect_config_error(bc, dir, "\"max_stored_size\": true", "max_stored_size");
    expect_config_error(bc, dir, "\"max_decoded_size\": null", "max_decoded_size");
    snap_store *st = NULL;
    cr_assert_eq(snap_store_open_backend(&st, bc->backend(), "[1]"), SNAP_ECONFIG, "[%s]",
                 bc->name);
    cr_assert_eq(snap_store_open_backend(&st, bc->backend(), "{\"keep\": "), SNAP_ECONFIG, "[%s]",
                 bc->name);
    st_rmtree(dir);
    free(dir);
  }
}

/* ------------------------------------------------------------------------ */
/* Batches, prepared saves, JSON views                                       */
/* ------------------------------------------------------------------------ */

Test(conformance, batch_rows_succeed_or_fail_on_their_own) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    snap_save_req reqs[4] = {
        {"b1", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "1", 1, NULL},
        {"", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "2", 1, NULL},
        {"b2", 1, 777, SNAP_FORMAT_JSON, "{", 1, NULL},
        {"b2", 2, 778, SNAP_FORMAT_JSON, "[4]", 3, NULL},
    };
    int status[4];
    snap_meta meta[4];
    int rc = snap_save_batch(f.st, reqs, 4, status, meta);
    cr_assert_eq(rc, SNAP_EINVAL, "[%s] the first failure", bc->name);
    cr_assert_eq(status[0], SNAP_OK, "[%s]", bc->name);
    cr_assert_eq(status[1], SNAP_EINVAL, "[%s]", bc->name);
    cr_assert_eq(status[2], SNAP_EFORMAT, "[%s]", bc->name);
    cr_assert_eq(status[3], SNAP_OK, "[%s]", bc->name);
    cr_assert_eq(meta[3].timestamp, 778, "[%s]", bc->name);
    snap_snapshot *s = load(&f, "b2", SNAP_CRITERIA_LATEST);
    cr_assert_eq(s->seq, 2, "[%s]", bc->name);
    cr_assert_str_eq((const char *)s->data, "[4]", "[%s]", bc->name);
    snap_snapshot_free(s);
    s = load(&f, "b1", SNAP_CRITERIA_LATEST);
    cr_assert_not_null(s, "[%s]", bc->name);
    snap_snapshot_free(s);
    fx_close(&f);
  }
}

Test(conformance, prepared_saves_commit_together) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 2");
    snap_prepared *p[5];
    for (int i = 0; i < 5; i++) {
      char state[8];
      snprintf(state, sizeof state, "%d", i);
      snap_save_req r = {"prep",        i,   SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state,
                         strlen(state), NULL};
      cr_assert_eq(snap_save_prepare(f.st, &r, &p[i]), SNAP_OK, "[%s]", bc->name);
    }
    int status[5];
    snap_meta meta[5];
    cr_assert_eq(snap_save_commit(f.st, p, 5, status, meta), SNAP_OK, "[%s] %s", bc->name,
                 snap_error_message());
    for (int i = 0; i < 5; i++) {
      cr_assert_eq(status[i], SNAP_OK, "[%s]", bc->name);
      cr_assert_eq(meta[i].seq, i, "[%s]", bc->name);
      snap_prepared_free(p[i]);
    }
    snap_snapshot *s = load(&f, "prep", SNAP_CRITERIA_LATEST);
    cr_assert_str_eq((const char *)s->data, "4", "[%s]", bc->name);
    snap_snapshot_free(s);
    expect_none(&f, load(&f, "prep", crit(0, 2, ANY_TS)), "retention after commit");
    snap_save_req bad = {"prep", -3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "1", 1, NULL};
    snap_prepared *q = (snap_prepared *)1;
    cr_assert_eq(snap_save_prepare(f.st, &bad, &q), SNAP_EINVAL, "[%s]", bc->name);
    cr_assert_null(q, "[%s]", bc->name);
    fx_close(&f);
  }
}

Test(conformance, snapshots_convert_to_json_whatever_their_format) {
  /* {"a": [1, -2, 1.5, true, null], "s": "x"} in msgpack */
  const uint8_t mp[] = {0x82, 0xa1, 'a', 0x95, 0x01, 0xfe, 0xcb, 0x3f, 0xf8, 0,  0,
                        0,    0,    0,   0,    0xc3, 0xc0, 0xa1, 's',  0xa1, 'x'};
  const uint8_t bin[] = {0xc4, 0x01, 0x00};
  const uint8_t intkey[] = {0x81, 0x01, 0x02};
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    cr_assert_eq(snap_save(f.st, "j", 1, SNAP_FORMAT_MSGPACK, mp, sizeof mp, NULL, NULL), SNAP_OK,
                 "[%s] %s", bc->name, snap_error_message());
    cr_assert_eq(snap_save(f.st, "j", 2, SNAP_FORMAT_JSON, "{\"b\": [1]}", 10, NULL, NULL), SNAP_OK,
                 "[%s]", bc->name);
    cJSON *j = NULL;
    snap_snapshot *s = load(&f, "j", crit(1, 1, ANY_TS));
    cr_assert_eq(snap_snapshot_to_json(s, &j), SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    char *text = cJSON_PrintUnformatted(j);
    cr_assert_str_eq(text, "{\"a\":[1,-2,1.5,true,null],\"s\":\"x\"}", "[%s]", bc->name);
    cJSON_free(text);
    cJSON_Delete(j);
    snap_snapshot_free(s);
    s = load(&f, "j", crit(2, 2, ANY_TS));
    cr_assert_eq(snap_snapshot_to_json(s, &j), SNAP_OK, "[%s]", bc->name);
    cr_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "b")), "[%s]", bc->name);
    cJSON_Delete(j);
    snap_snapshot_free(s);
    cr_assert_eq(snap_save(f.st, "j", 3, SNAP_FORMAT_MSGPACK, bin, sizeof bin, NULL, NULL), SNAP_OK,
                 "[%s]", bc->name);
    s = load(&f, "j", crit(3, 3, ANY_TS));
    cr_assert_eq(snap_snapshot_to_json(s, &j), SNAP_EFORMAT, "[%s] bin", bc->name);
    cr_assert_null(j);
    snap_snapshot_free(s);
    cr_assert_eq(snap_save(f.st, "j", 4, SNAP_FORMAT_MSGPACK, intkey, sizeof intkey, NULL, NULL),
                 SNAP_OK, "[%s]", bc->name);
    s = load(&f, "j", crit(4, 4, ANY_TS));
    cr_assert_eq(snap_snapshot_to_json(s, &j), SNAP_EFORMAT, "[%s] integer key", bc->name);
    snap_snapshot_free(s);
    cJSON *tree = cJSON_CreateObject();
    cJSON_AddNumberToObject(tree, "n", 5);
    cr_assert_eq(snap_save_json(f.st, "j", 5, tree, NULL, NULL), SNAP_OK, "[%s]", bc->name);
    cJSON_Delete(tree);
    s = load(&f, "j", SNAP_CRITERIA_LATEST);
    cr_assert_str_eq((const char *)s->data, "{\"n\":5}", "[%s]", bc->name);
    snap_snapshot_free(s);
    fx_close(&f);
  }
}

/* ------------------------------------------------------------------------ */
/* Backend ABI version 2: enumeration, conditional rewrite, raw puts, backup */
/* ------------------------------------------------------------------------ */

Test(conformance, pids_are_listed_in_byte_order_and_pages_resume_from_the_cursor) {
  const char *pids[] = {"b", "a", "a\xc3\xa9", "a b", "Z", "zz", "\xe2\x82\xac", "b/1"};
  const char *sorted[] = {"Z", "a", "a b", "a\xc3\xa9", "b", "b/1", "zz", "\xe2\x82\xac"};
  size_t np = sizeof pids / sizeof pids[0];
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    for (size_t i = 0; i < np; i++)
      for (int64_t seq = 1; seq <= 2; seq++)
        cr_assert_eq(snap_save(f.st, pids[i], seq, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK,
                     "[%s] %s", bc->name, snap_error_message());
    cr_assert_eq(snap_delete(f.st, "zz", INT64_MAX), SNAP_OK);
    /* Pages of 3: every pid once, in order, the deleted one absent. */
    snap_pid_page page = SNAP_PID_PAGE_INIT;
    char *cursor = NULL;
    size_t seen = 0;
    for (;;) {
      cr_assert_eq(snap_store_list_pids(f.st, cursor, 3, &page), SNAP_OK, "[%s] %s", bc->name,
                   snap_error_message());
      for (size_t i = 0; i < page.n; i++) {
        if (strcmp(sorted[seen], "zz") == 0)
          seen++;
        cr_assert_lt(seen, np, "[%s] too many pids", bc->name);
        cr_assert_str_eq(page.pids[i], sorted[seen], "[%s] pid %zu", bc->name, seen);
        seen++;
      }
      free(cursor);
      cursor = page.n ? strdup(page.pids[page.n - 1]) : NULL;
      if (page.n < 3)
        break;
    }
    free(cursor);
    cr_assert_eq(seen, np, "[%s] listed %zu pids", bc->name, seen);
    /* A cursor that is no stored pid works too. */
    cr_assert_eq(snap_store_list_pids(f.st, "a c", 10, &page), SNAP_OK);
    cr_assert_eq(page.n, 4, "[%s] after 'a c': %zu", bc->name, page.n);
    cr_assert_str_eq(page.pids[0], "a\xc3\xa9");
    snap_pid_page_dispose(&page);
    cr_assert_eq(snap_store_list_pids(f.st, NULL, 0, &page), SNAP_EINVAL, "[%s]", bc->name);
    fx_close(&f);
  }
}

Test(conformance, snapshots_are_listed_with_their_metadata_without_decoding) {
  snap_keyring *kr = keyring_with(0x31);
  uint8_t key2[SNAP_KEY_BYTES];
  memset(key2, 0x32, sizeof key2);
  cr_assert_eq(snap_keyring_add(kr, 2, key2, sizeof key2), SNAP_OK);
  cr_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
  snap_options *enc;
  cr_assert_eq(snap_options_new(&enc), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(enc, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(enc, kr, "test/conformance/v1"), SNAP_OK);
  char *state = ledger(3000, "meta");
  const uint8_t mp[] = {0x81, 0xa1, 'k', 0x07};
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    snap_meta m[4];
    cr_assert_eq(
        snap_save_at(f.st, "p1", 5, 1000, SNAP_FORMAT_JSON, state, strlen(state), enc, &m[0]),
        SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    cr_assert_eq(snap_save_at(f.st, "p1", 2, 2000, SNAP_FORMAT_MSGPACK, mp, sizeof mp, NULL, &m[1]),
                 SNAP_OK);
    cr_assert_eq(snap_save_at(f.st, "p0", 9, 3000, SNAP_FORMAT_JSON, "[1]", 3, NULL, &m[2]),
                 SNAP_OK);
    cr_assert_eq(snap_save_at(f.st, "p2", 0, 4000, SNAP_FORMAT_JSON, "{}", 2, NULL, &m[3]),
                 SNAP_OK);
    /* Whole store, (pid, seq) order: p0/9, p1/2, p1/5, p2/0. */
    const int order[] = {2, 1, 0, 3};
    const char *opid[] = {"p0", "p1", "p1", "p2"};
    const size_t olen[] = {3, sizeof mp, 0, 2};
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(f.st, NULL, NULL, 0, 10, false, &page), SNAP_OK, "[%s] %s",
                 bc->name, snap_error_message());
    cr_assert_eq(page.n, 4, "[%s] %zu entries", bc->name, page.n);
    for (size_t i = 0; i < 4; i++) {
      const snap_entry *e = &page.entries[i];
      const snap_meta *w = &m[order[i]];
      cr_assert_str_eq(e->pid, opid[i], "[%s] entry %zu", bc->name, i);
      cr_assert_eq(e->seq, w->seq, "[%s] entry %zu", bc->name, i);
      cr_assert_eq(e->timestamp, w->timestamp, "[%s] entry %zu", bc->name, i);
      cr_assert_eq(e->stored_len, w->stored_len, "[%s] entry %zu", bc->name, i);
      cr_assert_eq(e->header_status, SNAP_OK);
      cr_assert_eq(e->format, w->format, "[%s] entry %zu", bc->name, i);
      cr_assert_eq(e->stages, w->stages, "[%s] entry %zu", bc->name, i);
      cr_assert_eq(e->orig_len, olen[i] ? olen[i] : strlen(state), "[%s] entry %zu", bc->name, i);
      bool keyed = (w->stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC)) != 0;
      cr_assert_eq(e->key_version, keyed ? 2u : 0u, "[%s] entry %zu", bc->name, i);
      cr_assert_null(e->body);
    }
    /* One pid, with bodies, in pages of one that resume from the cursor. */
    snap_entry_page one = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(f.st, "p1", NULL, 0, 1, true, &one), SNAP_OK);
    cr_assert_eq(one.n, 1);
    cr_assert_eq(one.entries[0].seq, 2);
    cr_assert_not_null(one.entries[0].body);
    snap_format fmt;
    cr_assert_eq(
        snap_body_inspect(one.entries[0].body, one.entries[0].stored_len, &fmt, NULL, NULL, NULL),
        SNAP_OK);
    cr_assert_eq(fmt, SNAP_FORMAT_MSGPACK);
    cr_assert_eq(snap_store_list(f.st, "p1", "p1", 2, 1, true, &one), SNAP_OK);
    cr_assert_eq(one.n, 1);
    cr_assert_eq(one.entries[0].seq, 5);
    cr_assert_eq(snap_store_list(f.st, "p1", "p1", 5, 1, true, &one), SNAP_OK);
    cr_assert_eq(one.n, 0, "[%s] past the last seq", bc->name);
    /* The whole store from a cursor inside a pid continues into the next pid. */
    cr_assert_eq(snap_store_list(f.st, NULL, "p1", 2, 10, false, &one), SNAP_OK);
    cr_assert_eq(one.n, 2, "[%s]", bc->name);
    cr_assert_str_eq(one.entries[0].pid, "p1");
    cr_assert_eq(one.entries[0].seq, 5);
    cr_assert_str_eq(one.entries[1].pid, "p2");
    cr_assert_eq(snap_store_list(f.st, "nobody", NULL, 0, 10, false, &one), SNAP_OK);
    cr_assert_eq(one.n, 0);
    snap_entry_page_dispose(&one);
    snap_entry_page_dispose(&page);
    fx_close(&f);
  }
  free(state);
  snap_options_free(enc);
  snap_keyring_free(kr);
}

/* One rewrite item per entry of `page` (which holds bodies). */
static void rewrite_items(const snap_entry_page *page, snap_rewrite *items) {
  for (size_t i = 0; i < page->n; i++)
    items[i] = (snap_rewrite){page->entries[i].pid,
                              page->entries[i].seq,
                              page->entries[i].body,
                              page->entries[i].stored_len,
                              -1,
                              -1,
                              0,
                              0};
}

/* Loads (pid, seq) with `o` and checks its state. */
static void expect_state(fx *f, const char *pid, int64_t seq, const snap_options *o,
                         const char *state, int64_t ts) {
  snap_snapshot *s = NULL;
  snap_criteria c = crit(seq, seq, INT64_MIN, INT64_MAX);
  cr_assert_eq(snap_load(f->st, pid, &c, o, &s), SNAP_OK, "[%s] %s/%" PRId64 ": %s", f->bc->name,
               pid, seq, snap_error_message());
  cr_assert_not_null(s, "[%s] %s/%" PRId64 " is missing", f->bc->name, pid, seq);
  cr_assert_eq(s->len, strlen(state), "[%s] %s/%" PRId64, f->bc->name, pid, seq);
  cr_assert(memcmp(s->data, state, s->len) == 0, "[%s] %s/%" PRId64, f->bc->name, pid, seq);
  if (ts >= 0)
    cr_assert_eq(s->timestamp, ts, "[%s] %s/%" PRId64 " timestamp", f->bc->name, pid, seq);
  snap_snapshot_free(s);
}

Test(conformance, rewrite_moves_bodies_to_the_active_key_keeping_state_and_timestamp) {
  snap_keyring *kr = keyring_with(0x41);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "test/conformance/v1"), SNAP_OK);
  char *big = ledger(5000, "rot");
  const char *states[] = {big, "[1,2,3]", "{\"x\":\"y\"}"};
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    unsigned caps = snap_store_capabilities(f.st);
    for (int i = 0; i < 3; i++)
      cr_assert_eq(snap_save_at(f.st, "rot", i, 5000 + i, SNAP_FORMAT_JSON, states[i],
                                strlen(states[i]), o, NULL),
                   SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    /* Rotate: a second key becomes active. */
    uint8_t key2[SNAP_KEY_BYTES];
    memset(key2, 0x42, sizeof key2);
    if (!snap_keyring_has(kr, 2))
      cr_assert_eq(snap_keyring_add(kr, 2, key2, sizeof key2), SNAP_OK);
    cr_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
    bool enc = (caps & SNAP_CAP_ENCRYPTION) != 0;
    for (int pass = 0; pass < 2; pass++) {
      snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
      cr_assert_eq(snap_store_list(f.st, "rot", NULL, 0, 10, true, &page), SNAP_OK);
      cr_assert_eq(page.n, 3);
      snap_rewrite items[3];
      rewrite_items(&page, items);
      cr_assert_eq(snap_store_rewrite(f.st, items, 3, o, false), SNAP_OK, "[%s] %s", bc->name,
                   snap_error_message());
      for (int i = 0; i < 3; i++) {
        cr_assert_eq(items[i].status, SNAP_OK);
        /* The first pass re-encrypts; the second finds nothing left to do.
         * A backend that stores no encryption already holds what it writes. */
        int want = (pass == 0 && enc) ? SNAP_REWRITE_DONE : SNAP_REWRITE_CURRENT;
        cr_assert_eq(items[i].outcome, want, "[%s] pass %d item %d: %d", bc->name, pass, i,
                     items[i].outcome);
        cr_assert_eq(items[i].key_version, enc ? 2u : 0u, "[%s] pass %d item %d", bc->name, pass,
                     i);
      }
      snap_entry_page_dispose(&page);
    }
    /* Stored headers now say key 2; states and timestamps are unchanged. */
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(f.st, "rot", NULL, 0, 10, false, &page), SNAP_OK);
    for (int i = 0; i < 3; i++) {
      cr_assert_eq(page.entries[i].key_version, enc ? 2u : 0u, "[%s] %d", bc->name, i);
      cr_assert_eq(page.entries[i].timestamp, 5000 + i, "[%s] %d", bc->name, i);
    }
    snap_entry_page_dispose(&page);
    for (int i = 0; i < 3; i++)
      expect_state(&f, "rot", i, o, states[i], 5000 + i);
    if (enc) {
      /* Key 1 is no longer needed: a ring without it still reads everything. */
      snap_keyring *only2 = NULL;
      cr_assert_eq(snap_keyring_new(&only2), SNAP_OK);
      cr_assert_eq(snap_keyring_add(only2, 2, key2, sizeof key2), SNAP_OK);
      snap_options *r;
      cr_assert_eq(snap_options_new(&r), SNAP_OK);
      cr_assert_eq(snap_options_set_encryption(r, only2, "test/conformance/v1"), SNAP_OK);
      for (int i = 0; i < 3; i++)
        expect_state(&f, "rot", i, r, states[i], 5000 + i);
      snap_options_free(r);
      snap_keyring_free(only2);
    }
    cr_assert_eq(snap_keyring_set_active(kr, 1), SNAP_OK);
    fx_close(&f);
  }
  free(big);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(conformance, rewrite_never_overwrites_a_newer_save_nor_revives_a_deleted_snapshot) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    for (int i = 1; i <= 4; i++) {
      char st[16];
      snprintf(st, sizeof st, "\"old-%d\"", i);
      cr_assert_eq(
          snap_save_at(f.st, "live", i, 100 * i, SNAP_FORMAT_JSON, st, strlen(st), NULL, NULL),
          SNAP_OK);
    }
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(f.st, "live", NULL, 0, 10, true, &page), SNAP_OK);
    cr_assert_eq(page.n, 4);
    /* Between the read and the rewrite: seq 2 saved again, seq 3 deleted. */
    cr_assert_eq(snap_save_at(f.st, "live", 2, 777, SNAP_FORMAT_JSON, "\"new-2\"", 7, NULL, NULL),
                 SNAP_OK);
    cr_assert_eq(snap_delete_one(f.st, "live", 3), SNAP_OK);
    snap_rewrite items[4];
    rewrite_items(&page, items);
    /* force: re-encode even what is current, so every row goes to the backend. */
    cr_assert_eq(snap_store_rewrite(f.st, items, 4, NULL, true), SNAP_OK, "[%s] %s", bc->name,
                 snap_error_message());
    cr_assert_eq(items[0].outcome, SNAP_REWRITE_DONE, "[%s]", bc->name);
    cr_assert_eq(items[1].outcome, SNAP_REWRITE_CHANGED, "[%s]", bc->name);
    cr_assert_eq(items[2].outcome, SNAP_REWRITE_GONE, "[%s]", bc->name);
    cr_assert_eq(items[3].outcome, SNAP_REWRITE_DONE, "[%s]", bc->name);
    expect_state(&f, "live", 1, NULL, "\"old-1\"", 100);
    expect_state(&f, "live", 2, NULL, "\"new-2\"", 777);
    expect_state(&f, "live", 4, NULL, "\"old-4\"", 400);
    snap_snapshot *s = load(&f, "live", crit(3, 3, INT64_MIN, INT64_MAX));
    expect_none(&f, s, "deleted seq 3 after the rewrite");
    snap_entry_page_dispose(&page);
    fx_close(&f);
  }
}

Test(conformance, rewrite_reports_bodies_it_cannot_decode_and_leaves_them) {
  snap_keyring *kr = keyring_with(0x51), *other = keyring_with(0x52);
  snap_options *w, *r;
  cr_assert_eq(snap_options_new(&w), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(w, kr, "test/conformance/v1"), SNAP_OK);
  cr_assert_eq(snap_options_new(&r), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(r, other, "test/conformance/v1"), SNAP_OK);
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    bool enc = (snap_store_capabilities(f.st) & SNAP_CAP_ENCRYPTION) != 0;
    cr_assert_eq(snap_save(f.st, "k", 1, SNAP_FORMAT_JSON, "1", 1, w, NULL), SNAP_OK);
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(f.st, "k", NULL, 0, 10, true, &page), SNAP_OK);
    snap_rewrite it = {"k", 1, page.entries[0].body, page.entries[0].stored_len, -1, -1, 0, 0};
    /* A wrong key: the body is not re-encrypted with it, and stays as it was. */
    int rc = snap_store_rewrite(f.st, &it, 1, r, true);
    cr_assert_eq(rc, enc ? SNAP_EAUTH : SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    cr_assert_eq(it.status, rc);
    snap_entry_page again = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(f.st, "k", NULL, 0, 10, true, &again), SNAP_OK);
    if (enc)
      cr_assert(
          page.entries[0].stored_len == again.entries[0].stored_len &&
              memcmp(page.entries[0].body, again.entries[0].body, page.entries[0].stored_len) == 0,
          "[%s] the body changed", bc->name);
    expect_state(&f, "k", 1, w, "1", -1);
    snap_entry_page_dispose(&again);
    snap_entry_page_dispose(&page);
    fx_close(&f);
  }
  snap_options_free(w);
  snap_options_free(r);
  snap_keyring_free(kr);
  snap_keyring_free(other);
}

Test(conformance, raw_puts_copy_bodies_as_they_are_with_pid_seq_and_timestamp) {
  snap_keyring *kr = keyring_with(0x61);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "test/conformance/v1"), SNAP_OK);
  char *big = ledger(4000, "copy");
  FOR_EACH_BACKEND(bc) {
    fx src, dst;
    fx_open(&src, bc, "\"keep\": 0");
    fx_open(&dst, bc, "\"keep\": 1"); /* a copy keeps everything even so */
    for (int i = 0; i < 5; i++)
      cr_assert_eq(snap_save_at(src.st, i % 2 ? "odd" : "even", i, 9000 + i, SNAP_FORMAT_JSON, big,
                                strlen(big), o, NULL),
                   SNAP_OK);
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(src.st, NULL, NULL, 0, 100, true, &page), SNAP_OK);
    cr_assert_eq(page.n, 5);
    snap_raw_row rows[6];
    for (size_t i = 0; i < 5; i++)
      rows[i] = (snap_raw_row){page.entries[i].pid,        page.entries[i].seq,
                               page.entries[i].timestamp,  page.entries[i].body,
                               page.entries[i].stored_len, -1};
    /* A body that is no frame is refused alone. */
    rows[5] = (snap_raw_row){"bad", 1, 1, "not a body", 10, -1};
    cr_assert_eq(snap_store_put_raw(dst.st, rows, 6), SNAP_EFORMAT, "[%s] %s", bc->name,
                 snap_error_message());
    for (int i = 0; i < 5; i++)
      cr_assert_eq(rows[i].status, SNAP_OK, "[%s] row %d", bc->name, i);
    cr_assert_eq(rows[5].status, SNAP_EFORMAT);
    snap_entry_page copy = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(dst.st, NULL, NULL, 0, 100, true, &copy), SNAP_OK);
    cr_assert_eq(copy.n, 5, "[%s] %zu rows copied", bc->name, copy.n);
    for (size_t i = 0; i < 5; i++) {
      cr_assert_str_eq(copy.entries[i].pid, page.entries[i].pid);
      cr_assert_eq(copy.entries[i].seq, page.entries[i].seq);
      cr_assert_eq(copy.entries[i].timestamp, page.entries[i].timestamp);
      cr_assert_eq(copy.entries[i].stored_len, page.entries[i].stored_len);
      cr_assert(memcmp(copy.entries[i].body, page.entries[i].body, copy.entries[i].stored_len) == 0,
                "[%s] body %zu differs", bc->name, i);
    }
    expect_state(&dst, "odd", 3, o, big, 9003);
    snap_snapshot *s = load(&dst, "bad", SNAP_CRITERIA_LATEST);
    expect_none(&dst, s, "the refused row");
    snap_entry_page_dispose(&copy);
    snap_entry_page_dispose(&page);
    fx_close(&dst);
    fx_close(&src);
  }
  free(big);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(conformance, backups_are_complete_stores_or_unsupported) {
  FOR_EACH_BACKEND(bc) {
    fx f;
    fx_open(&f, bc, "\"keep\": 0");
    for (int i = 0; i < 20; i++)
      cr_assert_eq(snap_save_at(f.st, i % 3 ? "b1" : "b2", i, 50 + i, SNAP_FORMAT_JSON, "[true]", 6,
                                NULL, NULL),
                   SNAP_OK);
    char *path = st_join(f.dir, "backup.db");
    int rc = snap_store_backup(f.st, path);
    if (!bc->file_backup) {
      cr_assert_eq(rc, SNAP_EUNSUPPORTED, "[%s] %s", bc->name, snap_error_message());
      cr_assert(strstr(snap_error_message(), bc->backend()->name), "%s", snap_error_message());
    } else {
      cr_assert_eq(rc, SNAP_OK, "[%s] %s", bc->name, snap_error_message());
      cr_assert_eq(snap_store_backup(f.st, path), SNAP_EINVAL, "[%s] over an existing file",
                   bc->name);
      /* The copy opens with the same backend and holds every row. */
      char config[1024];
      snprintf(config, sizeof config, "{\"path\": \"%s\", \"keep\": 0}", path);
      snap_store *b = NULL;
      cr_assert_eq(snap_store_open_backend(&b, bc->backend(), config), SNAP_OK, "%s",
                   snap_error_message());
      snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
      cr_assert_eq(snap_store_list(b, NULL, NULL, 0, 100, false, &page), SNAP_OK);
      cr_assert_eq(page.n, 20, "[%s] backup holds %zu rows", bc->name, page.n);
      snap_entry_page_dispose(&page);
      snap_store_close(b);
    }
    free(path);
    fx_close(&f);
  }
}

/* A backend written for ABI version 1: the memory backend's operations in a
 * table of that version, whose later slots point at a trap. */
static int trap_list_pids(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                          void *ctx) {
  cr_assert_fail("a version-1 table's list_pids slot was called");
  return SNAP_EIO;
}

Test(conformance, a_version_1_backend_loads_and_its_missing_operations_are_unsupported) {
  /* The table as a v1 backend would lay it out, followed by bytes that are no
   * part of it: the host must copy only the version-1 slots. */
  snap_backend v1 = *snap_backend_memory();
  v1.abi_version = 1;
  v1.name = "memory-v1";
  v1.list_pids = trap_list_pids;
  v1.list_rows = (void *)trap_list_pids;
  v1.replace = (void *)trap_list_pids;
  v1.backup = (void *)trap_list_pids;
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, &v1, "{\"keep\": 0}"), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(snap_save_at(st, "v1", 1, 10, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "v1", NULL, &s), SNAP_OK);
  cr_assert_not_null(s);
  snap_pid_page pids = SNAP_PID_PAGE_INIT;
  cr_assert_eq(snap_store_list_pids(st, NULL, 10, &pids), SNAP_EUNSUPPORTED);
  cr_assert(strstr(snap_error_message(), "memory-v1"), "%s", snap_error_message());
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, NULL, NULL, 0, 10, true, &page), SNAP_EUNSUPPORTED);
  snap_rewrite it = {"v1", 1, "x", 1, -1, -1, 0, 0};
  cr_assert_eq(snap_store_rewrite(st, &it, 1, NULL, true), SNAP_EUNSUPPORTED);
  cr_assert_eq(snap_store_backup(st, "/nonexistent/never-written.db"), SNAP_EUNSUPPORTED);
  /* Raw puts need nothing beyond version 1. */
  snap_buf body = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("v1", 2, SNAP_FORMAT_JSON, "[2]", 3, NULL, &body, NULL), SNAP_OK);
  snap_raw_row row = {"v1", 2, 20, body.data, body.len, -1};
  cr_assert_eq(snap_store_put_raw(st, &row, 1), SNAP_OK, "%s", snap_error_message());
  snap_snapshot_free(s);
  cr_assert_eq(snap_load_latest(st, "v1", NULL, &s), SNAP_OK);
  cr_assert_eq(s->seq, 2);
  cr_assert_eq(s->timestamp, 20);
  snap_snapshot_free(s);
  snap_buf_dispose(&body);
  snap_store_close(st);
}
