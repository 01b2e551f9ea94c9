/* The snapshot-store conformance suite on the built-in backends: every case
 * of conformance/ (a port of the Akka persistence snapshot-store TCK plus the
 * cases it leaves out) runs once per backend of `cases`, as one Criterion
 * test per case. The same cases run on any backend through the installed
 * `snapstore-conformance`. A new built-in backend is tested by adding one
 * line to `cases`; a new case goes into conformance/ (conformance.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <sqlite3.h>

#ifdef SNAP_WITH_POSTGRES /* the postgres cases: a library built with libpq */
#include <libpq-fe.h>

#include "pg_fixture.h"
#endif
#include "conformance.h"
#include "snap/admin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

/* ------------------------------------------------------------------------ */
/* The backends under test                                                   */
/* ------------------------------------------------------------------------ */

static void sqlite_corrupt(const cf_backend *bc, snap_store *st, const char *dir, const char *pid,
                           int64_t seq);
#ifdef SNAP_WITH_POSTGRES
static void pg_corrupt(const cf_backend *bc, snap_store *st, const char *dir, const char *pid,
                       int64_t seq);
static void pg_keys(const char *dir, char *buf, size_t cap);
static void pg_sharded_keys(const char *dir, char *buf, size_t cap);
#endif

/* At rest: the corrupt hooks edit the database behind the store's back. */
static const cf_backend cases[] = {
    {.name = "memory", .backend = snap_backend_memory, .config = ""},
    {.name = "sqlite",
     .backend = snap_backend_sqlite,
     .config = "\"path\": \"@DIR@/conformance.db\"",
     .persistent = true,
     .corrupt = sqlite_corrupt,
     .file_backup = true},
#ifdef SNAP_WITH_POSTGRES
    {.name = "postgres",
     .backend = snap_backend_postgres,
     .persistent = true,
     .corrupt = pg_corrupt,
     .keys = pg_keys},
    {.name = "postgres-3-shards",
     .backend = snap_backend_postgres,
     .persistent = true,
     .corrupt = pg_corrupt,
     .keys = pg_sharded_keys},
#endif
};
#define NCASES (sizeof cases / sizeof cases[0])
#define FOR_EACH_BACKEND(bc) for (const cf_backend *bc = cases; bc < cases + NCASES; bc++)

static void sqlite_corrupt(const cf_backend *bc, snap_store *st, const char *dir, const char *pid,
                           int64_t seq) {
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

#ifdef SNAP_WITH_POSTGRES
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

static void pg_keys(const char *dir, char *buf, size_t cap) {
  pgfx f;
  pg_cluster(&f);
  char ci[512], table[64];
  pgfx_conninfo(&f, 0, ci, sizeof ci);
  cf_case_id(dir, table, sizeof table);
  snprintf(buf, cap, "\"conninfo\": \"%s\", \"table\": \"%s\"", ci, table);
}

static void pg_sharded_keys(const char *dir, char *buf, size_t cap) {
  pgfx f;
  pg_cluster(&f);
  char ci[3][512], table[64];
  for (int i = 0; i < 3; i++)
    pgfx_conninfo(&f, i, ci[i], sizeof ci[i]);
  cf_case_id(dir, table, sizeof table);
  snprintf(buf, cap, "\"shards\": [\"%s\", \"%s\", \"%s\"], \"table\": \"%s\"", ci[0],
           ci[1], ci[2], table);
}

/* Flips the middle byte of the body of (pid, seq) in whichever database holds it. */
static void pg_corrupt(const cf_backend *bc, snap_store *st, const char *dir, const char *pid,
                       int64_t seq) {
  pgfx f;
  pg_cluster(&f);
  char table[64], sql[256], seqtext[24];
  cf_case_id(dir, table, sizeof table);
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
#endif /* SNAP_WITH_POSTGRES */

/* ------------------------------------------------------------------------ */
/* What the cases call back                                                  */
/* ------------------------------------------------------------------------ */

void cf_fail(const char *file, int line, const char *what, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cr_assert_fail("%s:%d: %s%s%s", file, line, what, msg[1] ? ":" : "", msg[1] ? msg : "");
  abort(); /* not reached: a failed assertion ends the test */
}

void cf_skip(const cf_backend *bc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cr_log_info("[%s] does not apply: %s", bc->name, msg);
}

/* ------------------------------------------------------------------------ */
/* One test per case, each on every backend                                  */
/* ------------------------------------------------------------------------ */

#define CF_TEST(name)                                                                              \
  Test(conformance, name) {                                                                        \
    FOR_EACH_BACKEND(bc)                                                                           \
    cf_case_##name(bc);                                                                            \
  }
CF_CASES(CF_TEST)
#undef CF_TEST

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
