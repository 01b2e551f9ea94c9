/*
 * The PostgreSQL rows' server and baseline. The server is a throw-away
 * PostgreSQL 15 cluster started with the tests' fixture (tests/support/
 * pg_fixture.c, compiled into snap_bench), fsync on as initdb leaves it.
 *
 * The baseline is what an application would write by hand with libpq against
 * the `postgres` backend's table (store/backends/postgres/sql.c, the same
 * DDL): statements prepared once, binary parameters and results, and a save
 * sent as one pipeline — BEGIN; INSERT ... ON CONFLICT DO UPDATE; the prune
 * DELETE; COMMIT; sync — so that, like the backend, it costs one round trip
 * and one commit. It takes no advisory lock: one connection saving alone
 * needs none (the backend takes one per pid with retention, see
 * docs/POSTGRES.md, and that is part of what the ratio prices).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cases.h"
#include "pg.h"

/* Type OIDs of the parameters (pg_type.h is a server header). */
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_BYTEA 17

/* ------------------------------------------------------------------------ */
/* The cluster                                                               */
/* ------------------------------------------------------------------------ */

static int show(PGconn *c, const char *name, char *out, size_t cap) {
  char sql[96];
  snprintf(sql, sizeof sql, "SHOW %s", name);
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  snprintf(out, cap, "%s", ok ? PQgetvalue(r, 0, 0) : "?");
  PQclear(r);
  return ok ? 0 : -1;
}

/* The server's version and the settings that decide what a commit costs. */
static void describe(bench_pg *pg) {
  PGconn *c = PQconnectdb(pg->snap_ci);
  char ver[64], fsync[16], sc[16], wsm[32], fpw[16], sb[16];
  if (PQstatus(c) != CONNECTION_OK || show(c, "server_version", ver, sizeof ver) != 0) {
    snprintf(pg->about, sizeof pg->about, "settings unknown: %s", PQerrorMessage(c));
    PQfinish(c);
    return;
  }
  show(c, "fsync", fsync, sizeof fsync);
  show(c, "synchronous_commit", sc, sizeof sc);
  show(c, "wal_sync_method", wsm, sizeof wsm);
  show(c, "full_page_writes", fpw, sizeof fpw);
  show(c, "shared_buffers", sb, sizeof sb);
  snprintf(pg->about, sizeof pg->about,
           "PostgreSQL %s, throw-away cluster in %s over a Unix socket; fsync=%s, "
           "synchronous_commit=%s, wal_sync_method=%s, full_page_writes=%s, shared_buffers=%s",
           ver, pg->fx.root, fsync, sc, wsm, fpw, sb);
  PQfinish(c);
}

int bench_pg_start(bench_pg *pg, char *why, size_t cap) {
  memset(pg, 0, sizeof *pg);
  if (access(PGFX_BINDIR "/initdb", X_OK) != 0 || access(PGFX_BINDIR "/pg_ctl", X_OK) != 0 ||
      access(PGFX_BINDIR "/postgres", X_OK) != 0) {
    snprintf(why, cap, "no PostgreSQL server binaries (install postgresql-15; none in %s)",
             PGFX_BINDIR);
    return 1;
  }
  if (pgfx_start(&pg->fx, 2, why, cap) != 0) {
    return -1;
  }
  pg->started = 1;
  pgfx_conninfo(&pg->fx, 0, pg->snap_ci, sizeof pg->snap_ci);
  pgfx_conninfo(&pg->fx, 1, pg->raw_ci, sizeof pg->raw_ci);
  describe(pg);
  return 0;
}

void bench_pg_stop(bench_pg *pg) {
  if (pg->started) {
    pgfx_destroy(&pg->fx);
  }
  pg->started = 0;
}

/* Both sides start every repetition on an empty table right after a
 * checkpoint (outside the timed loop), so that neither pays for the dirty
 * pages and WAL the other side left behind. */
int bench_pg_open_store(const bench_pg *pg, uint32_t keep, snap_store **st, char *err,
                        size_t errcap) {
  if (pgfx_exec(&pg->fx, 0,
                "SET client_min_messages = warning; "
                "DROP TABLE IF EXISTS snapshots, snapstore_meta, snapstore_settings; "
                "CHECKPOINT",
                err, errcap) != 0) {
    return -1;
  }
  char cfg[1024];
  /* The conninfo is the fixture's (a socket path under /tmp, no quote). */
  snprintf(cfg, sizeof cfg, "{\"conninfo\": \"%s\", \"keep\": %u}", pg->snap_ci, (unsigned)keep);
  int rc = snap_store_open(st, "postgres", cfg);
  if (rc != SNAP_OK) {
    snprintf(err, errcap, "snap_store_open(postgres): %s: %s", snap_strerror(rc),
             snap_error_message());
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The raw connection                                                        */
/* ------------------------------------------------------------------------ */

/* The backend's DDL and statements (store/backends/postgres/sql.c). */
static const char *const schema_sql[] = {
    "SET client_min_messages = warning",
    "DROP TABLE IF EXISTS snapshots",
    "CREATE TABLE snapshots (persistence_id text COLLATE \"C\" NOT NULL, seq bigint NOT NULL, "
    "ts bigint NOT NULL, slice integer NOT NULL, body bytea NOT NULL, "
    "PRIMARY KEY (persistence_id, seq))",
    "ALTER TABLE snapshots ALTER COLUMN body SET STORAGE EXTERNAL",
    "CHECKPOINT",
};

enum { RAW_BEGIN, RAW_COMMIT, RAW_INSERT, RAW_PRUNE, RAW_NEWEST, RAW_COUNT };

static const char *const raw_names[RAW_COUNT] = {"raw_begin", "raw_commit", "raw_insert",
                                                 "raw_prune", "raw_newest"};
static const char *const raw_sql[RAW_COUNT] = {
    "BEGIN",
    "COMMIT",
    "INSERT INTO snapshots (persistence_id, seq, ts, slice, body) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (persistence_id, seq) DO UPDATE SET ts = EXCLUDED.ts, body = EXCLUDED.body",
    "DELETE FROM snapshots WHERE persistence_id = $1 AND seq < (SELECT seq FROM snapshots "
    "WHERE persistence_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
    "SELECT seq, ts, body FROM snapshots WHERE persistence_id = $1 ORDER BY seq DESC LIMIT 1",
};
static const int raw_nparams[RAW_COUNT] = {0, 0, 5, 2, 1};
static const Oid raw_types[RAW_COUNT][5] = {{0},
                                            {0},
                                            {OID_TEXT, OID_INT8, OID_INT8, OID_INT4, OID_BYTEA},
                                            {OID_TEXT, OID_INT8},
                                            {OID_TEXT}};

static int raw_fail(pg_raw *r, const char *what, const char *msg) {
  size_t n = strcspn(msg ? msg : "", "\n");
  snprintf(r->err, sizeof r->err, "%s: %.*s", what, (int)n, msg ? msg : "");
  return -1;
}

static int raw_command(pg_raw *r, const char *sql) {
  PGresult *res = PQexec(r->conn, sql);
  int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok) {
    raw_fail(r, sql, PQresultErrorMessage(res));
  }
  PQclear(res);
  return ok ? 0 : -1;
}

/* Connects, makes a fresh table (when `fresh`) and prepares the statements. */
static int pg_raw_open(pg_raw *r, const char *conninfo, int fresh) {
  memset(r, 0, sizeof *r);
  r->conn = PQconnectdb(conninfo);
  if (PQstatus(r->conn) != CONNECTION_OK) {
    return raw_fail(r, "connect", PQerrorMessage(r->conn));
  }
  for (size_t i = 0; fresh && i < sizeof schema_sql / sizeof schema_sql[0]; i++) {
    if (raw_command(r, schema_sql[i]) != 0) {
      return -1;
    }
  }
  for (int i = 0; i < RAW_COUNT; i++) {
    PGresult *res = PQprepare(r->conn, raw_names[i], raw_sql[i], raw_nparams[i], raw_types[i]);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
      raw_fail(r, raw_names[i], PQresultErrorMessage(res));
    }
    PQclear(res);
    if (!ok) {
      return -1;
    }
  }
  return 0;
}

static void pg_raw_close(pg_raw *r) {
  PQfinish(r->conn);
  r->conn = NULL;
}

static void put64(char out[8], int64_t v) {
  uint64_t u = (uint64_t)v;
  for (int i = 7; i >= 0; i--) {
    out[i] = (char)(u & 0xff);
    u >>= 8;
  }
}

static void put32(char out[4], uint32_t v) {
  out[0] = (char)(v >> 24);
  out[1] = (char)(v >> 16);
  out[2] = (char)(v >> 8);
  out[3] = (char)v;
}

static int64_t get64(const char *in) {
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) {
    u = (u << 8) | (unsigned char)in[i];
  }
  return (int64_t)u;
}

/* The slice column's value: FNV-1a (32 bits) of the pid's bytes modulo 1024
 * (docs/POSTGRES.md), so that both tables hold the same bytes. */
static uint32_t slice_of(const char *pid) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)pid; *p; p++) {
    h = (h ^ *p) * 16777619u;
  }
  return h % 1024u;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int send_prepared(pg_raw *r, int id, int n, const char *const *vals, const int *lens) {
  static const int formats[5] = {1, 1, 1, 1, 1};
  if (!PQsendQueryPrepared(r->conn, raw_names[id], n, vals, lens, formats, 1)) {
    return raw_fail(r, raw_names[id], PQerrorMessage(r->conn));
  }
  return 0;
}

/* Reads the results of `n` statements and the sync that ends them. */
static int read_pipeline(pg_raw *r, long n) {
  int failed = 0;
  for (long i = 0; i < n; i++) {
    PGresult *res = PQgetResult(r->conn);
    if (!res) {
      return raw_fail(r, "pipeline", PQerrorMessage(r->conn));
    }
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !failed) {
      raw_fail(r, "statement", PQresultErrorMessage(res));
      failed = 1;
    }
    PQclear(res);
    PGresult *end = PQgetResult(r->conn); /* the NULL after each statement's result */
    if (end) {
      PQclear(end);
      return raw_fail(r, "pipeline", "a statement returned several results");
    }
  }
  PGresult *sync = PQgetResult(r->conn);
  int ok = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!ok) {
    return raw_fail(r, "pipeline", "no sync at the end");
  }
  return failed ? -1 : 0;
}

/*
 * Inserts rows first .. first+n-1 as raw_insert() does for SQLite: row i is
 * (pids[i % npids], seq0 + i / npids), `batch` rows per transaction, each
 * followed by its prune when keep > 0. A transaction is one pipeline.
 */
static int pg_raw_insert(pg_raw *r, char *const *pids, int npids, int64_t seq0, long first, long n,
                         int batch, const void *data, size_t len, uint32_t keep) {
  if (!PQenterPipelineMode(r->conn)) {
    return raw_fail(r, "pipeline mode", PQerrorMessage(r->conn));
  }
  int rc = 0;
  for (long done = 0; done < n && rc == 0;) {
    long k = n - done < batch ? n - done : batch;
    long sent = 0;
    rc = send_prepared(r, RAW_BEGIN, 0, NULL, NULL);
    sent++;
    for (long i = first + done; i < first + done + k && rc == 0; i++) {
      const char *pid = pids[i % npids];
      char seq[8], ts[8], slice[4], off[8];
      put64(seq, seq0 + i / npids);
      put64(ts, now_ms());
      put32(slice, slice_of(pid));
      const char *vals[5] = {pid, seq, ts, slice, data};
      int lens[5] = {(int)strlen(pid), 8, 8, 4, (int)len};
      rc = send_prepared(r, RAW_INSERT, 5, vals, lens);
      sent++;
      if (rc == 0 && keep > 0) {
        put64(off, (int64_t)keep - 1);
        const char *pv[2] = {pid, off};
        int pl[2] = {(int)strlen(pid), 8};
        rc = send_prepared(r, RAW_PRUNE, 2, pv, pl);
        sent++;
      }
    }
    if (rc == 0) {
      rc = send_prepared(r, RAW_COMMIT, 0, NULL, NULL);
      sent++;
    }
    if (rc == 0 && !PQpipelineSync(r->conn)) {
      rc = raw_fail(r, "sync", PQerrorMessage(r->conn));
    }
    if (rc == 0) {
      rc = read_pipeline(r, sent);
    }
    done += k;
  }
  if (!PQexitPipelineMode(r->conn) && rc == 0) {
    rc = raw_fail(r, "leaving pipeline mode", PQerrorMessage(r->conn));
  }
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Saves                                                                     */
/* ------------------------------------------------------------------------ */

/* The warm-up saves per pid (as in cases.c): with keep, every pid is filled
 * beyond it so that the timed saves prune. */
static int warm_saves(const save_case *sc) { return sc->keep > 0 ? (int)sc->keep + 1 : 1; }

int pg_save_raw(const bench_ctx *bx, const save_case *sc, double *rate, char *err, size_t errcap) {
  pg_raw r;
  int npids = sc->npids;
  char **pids = bench_pids_make(npids);
  int rc = -1;
  if (!pids) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  if (pg_raw_open(&r, sc->pg->raw_ci, 1) != 0) {
    snprintf(err, errcap, "baseline open: %s", r.err);
    goto done;
  }
  int warm = warm_saves(sc);
  if (pg_raw_insert(&r, pids, npids, 0, 0, (long)warm * npids, sc->batch, sc->state, sc->len,
                    sc->keep) != 0) {
    snprintf(err, errcap, "baseline insert (warm-up): %s", r.err);
    goto done;
  }
  long n = 0;
  double t0 = bench_now(), el = 0;
  do {
    long k = sc->batch > 1 ? sc->batch : 1;
    if (pg_raw_insert(&r, pids, npids, warm, n, k, (int)k, sc->state, sc->len, sc->keep) != 0) {
      snprintf(err, errcap, "baseline insert: %s", r.err);
      goto done;
    }
    n += k;
    el = bench_now() - t0;
  } while (el < bx->cfg->save_seconds);
  *rate = (double)n / el;
  rc = 0;
done:
  pg_raw_close(&r);
  bench_pids_free(pids, npids);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Loads                                                                     */
/* ------------------------------------------------------------------------ */

/* The newest row of `pid`: its seq, and its body copied (as snap_load_latest
 * hands the caller a snapshot it owns). */
static int pg_raw_load_latest(pg_raw *r, const char *pid, int64_t *seq, uint8_t **out,
                              size_t *len) {
  const char *vals[1] = {pid};
  int lens[1] = {(int)strlen(pid)};
  int formats[1] = {1};
  PGresult *res = PQexecPrepared(r->conn, raw_names[RAW_NEWEST], 1, vals, lens, formats, 1);
  if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 3 ||
      PQgetlength(res, 0, 0) != 8) {
    raw_fail(r, "load",
             PQresultStatus(res) == PGRES_TUPLES_OK ? "no row" : PQresultErrorMessage(res));
    PQclear(res);
    return -1;
  }
  *seq = get64(PQgetvalue(res, 0, 0));
  *len = (size_t)PQgetlength(res, 0, 2);
  *out = malloc(*len ? *len : 1);
  if (*out) {
    memcpy(*out, PQgetvalue(res, 0, 2), *len);
  }
  PQclear(res);
  return *out ? 0 : raw_fail(r, "load", "out of memory");
}

int pg_load_raw(const bench_ctx *bx, pg_load_case *c, double *rate, char *err, size_t errcap) {
  load_case *lc = &c->lc;
  long n = 0;
  double t0 = bench_now(), el = 0;
  do {
    uint8_t *body = NULL;
    size_t len = 0;
    int64_t seq = -1;
    const char *pid = lc->pids[load_pid_index(n, lc->npids)];
    if (pg_raw_load_latest(&c->raw, pid, &seq, &body, &len) != 0 || len != lc->len ||
        seq != LOAD_SNAPSHOTS - 1) {
      free(body);
      snprintf(err, errcap, "baseline load of %s: %s", pid,
               c->raw.err[0] ? c->raw.err : "the wrong row");
      return -1;
    }
    free(body);
    n++;
    el = bench_now() - t0;
  } while (el < bx->cfg->load_seconds || n < lc->npids);
  *rate = (double)n / el;
  return 0;
}

int pg_load_setup(const bench_ctx *bx, const bench_pg *pg, pg_load_case *c, char *err,
                  size_t errcap) {
  load_case *lc = &c->lc;
  lc->pids = bench_pids_make(lc->npids);
  if (!lc->pids) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  if (bench_pg_open_store(pg, 0, &lc->st, err, errcap) != 0 ||
      load_fill_store(bx, lc, err, errcap) != 0) {
    return -1;
  }
  if (pg_raw_open(&c->raw, pg->raw_ci, 1) != 0 ||
      pg_raw_insert(&c->raw, lc->pids, lc->npids, 0, 0, (long)LOAD_SNAPSHOTS * lc->npids, 500,
                    lc->state, lc->len, 0) != 0) {
    snprintf(err, errcap, "baseline setup: %s", c->raw.err);
    return -1;
  }
  /* Fresh statistics for both tables, then one pass over every pid on both
   * sides: the warm cache the rows promise. */
  if (pgfx_exec(&pg->fx, 0, "VACUUM ANALYZE snapshots", err, errcap) != 0 ||
      pgfx_exec(&pg->fx, 1, "VACUUM ANALYZE snapshots", err, errcap) != 0) {
    return -1;
  }
  bench_cfg warm;
  bench_ctx wx;
  double rate;
  bench_warm_ctx(bx, &warm, &wx);
  if (load_snap(&wx, lc, &rate, err, errcap) != 0 || pg_load_raw(&wx, c, &rate, err, errcap) != 0) {
    return -1;
  }
  return 0;
}

void pg_load_teardown(pg_load_case *c) {
  snap_store_close(c->lc.st);
  c->lc.st = NULL;
  pg_raw_close(&c->raw);
  bench_pids_free(c->lc.pids, c->lc.npids);
  c->lc.pids = NULL;
}
