/* The "postgres" backend's statements and its pipelined I/O.
 *
 * Every connection stays in libpq pipeline mode and non-blocking from connect
 * to close, so every operation is the same shape: send prepared statements
 * with binary parameters, end the segment with a sync, then read the results
 * in order, waiting on the socket with poll() against a client deadline. No
 * call can block longer than the deadline, whatever the server or the network
 * does. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define OID_INT8 SNAP_PG_OID_INT8
#define OID_INT4 SNAP_PG_OID_INT4
#define OID_TEXT SNAP_PG_OID_TEXT
#define OID_BYTEA SNAP_PG_OID_BYTEA

static const char *const stmt_names[PG_STMT_COUNT] = {
    [PG_BEGIN] = "snap_begin",   [PG_COMMIT] = "snap_commit", [PG_ROLLBACK] = "snap_rollback",
    [PG_INSERT] = "snap_insert", [PG_PRUNE] = "snap_prune",   [PG_NEWEST] = "snap_newest",
    [PG_LOAD] = "snap_load",     [PG_REMOVE] = "snap_remove", [PG_LOCK] = "snap_lock",
    [PG_PIDS] = "snap_pids",     [PG_ROWS] = "snap_rows",     [PG_ROWS_PID] = "snap_rows_pid",
    [PG_SWAP] = "snap_swap",     [PG_INSERT_IF] = "snap_insert_if",
    [PG_LOAD_MANIFEST] = "snap_load_manifest", [PG_SWAP_TYPED] = "snap_swap_typed",
};

/* Every statement but the transaction ones is keyed by persistence_id = $1,
 * so a table distributed on persistence_id (Citus) routes each to one node. */
static const char *const stmt_tpl[PG_STMT_COUNT] = {
    [PG_BEGIN] = "BEGIN",
    [PG_COMMIT] = "COMMIT",
    [PG_ROLLBACK] = "ROLLBACK",
    /* $7: the stream whose chunks the row publishes (NULL: an ordinary
     * body). Replacing a streamed row changes its stream column, which
     * fires the trigger that deletes the old chunks (schema step 6). */
    [PG_INSERT] = "INSERT INTO \"%s\" (persistence_id, seq, ts, slice, body, manifest, stream) "
                  "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (persistence_id, seq) "
                  "DO UPDATE SET ts = EXCLUDED.ts, body = EXCLUDED.body, "
                  "manifest = EXCLUDED.manifest, stream = EXCLUDED.stream",
    /* Keep the newest $2 + 1 rows: with fewer, the subquery is NULL and
     * nothing matches. */
    [PG_PRUNE] = "DELETE FROM \"%s\" WHERE persistence_id = $1 AND seq < (SELECT seq FROM \"%s\" "
                 "WHERE persistence_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
    [PG_NEWEST] = "SELECT seq, ts, body FROM \"%s\" WHERE persistence_id = $1 "
                  "ORDER BY seq DESC LIMIT 1",
    [PG_LOAD] = "SELECT seq, ts, body FROM \"%s\" WHERE persistence_id = $1 "
                "AND seq BETWEEN $2 AND $3 AND ts BETWEEN $4 AND $5 ORDER BY seq DESC LIMIT 1",
    [PG_REMOVE] = "DELETE FROM \"%s\" WHERE persistence_id = $1 AND seq BETWEEN $2 AND $3 "
                  "AND ts BETWEEN $4 AND $5",
    /* Saves of one pid with retention are serialised by this lock (held to
     * the end of the transaction), so that concurrent prunes cannot leave
     * more than `keep` rows. */
    [PG_LOCK] = "SELECT pg_advisory_xact_lock($1, $2)",
    /* Enumeration (operator tools: a page per call) in byte order of the
     * pid, which COLLATE "C" gives; '' sorts before every pid. */
    [PG_PIDS] = "SELECT DISTINCT persistence_id FROM \"%s\" WHERE persistence_id > $1 "
                "ORDER BY persistence_id LIMIT $2",
    [PG_ROWS] = "SELECT persistence_id, seq, ts, body FROM \"%s\" "
                "WHERE (persistence_id, seq) > ($1, $2) ORDER BY persistence_id, seq LIMIT $3",
    [PG_ROWS_PID] = "SELECT persistence_id, seq, ts, body FROM \"%s\" WHERE persistence_id = $1 "
                    "AND seq > $2 ORDER BY seq LIMIT $3",
    /* The conditional replace: the UPDATE re-checks the body on the newest
     * row version (READ COMMITTED), so a concurrent save wins; `present`
     * tells a changed row from a missing one. The timestamp is kept. */
    [PG_SWAP] = "WITH u AS (UPDATE \"%s\" SET body = $4 WHERE persistence_id = $1 AND seq = $2 "
                "AND body = $3 RETURNING 1) SELECT (SELECT count(*) FROM u), "
                "(SELECT count(*) FROM \"%s\" WHERE persistence_id = $1 AND seq = $2)",
    /* The same, setting the manifest column with the body (a migration):
     * $5 NULL stores none. */
    [PG_SWAP_TYPED] = "WITH u AS (UPDATE \"%s\" SET body = $4, manifest = $5 WHERE "
                      "persistence_id = $1 AND seq = $2 AND body = $3 RETURNING 1) SELECT "
                      "(SELECT count(*) FROM u), (SELECT count(*) FROM \"%s\" WHERE "
                      "persistence_id = $1 AND seq = $2)",
    /* A conditional save: the row goes in only when the pid's newest seq is
     * $7 (-1: none). The put took the pid's advisory lock earlier in the
     * transaction, so under READ COMMITTED this statement's snapshot, taken
     * after the lock, sees every conditional save committed before it. It
     * answers (rows inserted, the newest seq it found). */
    [PG_INSERT_IF] = "WITH cur AS (SELECT COALESCE(max(seq), -1) AS m FROM \"%s\" WHERE "
                     "persistence_id = $1), ins AS (INSERT INTO \"%s\" (persistence_id, seq, ts, "
                     "slice, body, manifest, stream) SELECT $1, $2, $3, $4, $5, $6, $8 FROM cur "
                     "WHERE m = $7 ON CONFLICT (persistence_id, seq) DO UPDATE SET ts = "
                     "EXCLUDED.ts, body = EXCLUDED.body, manifest = EXCLUDED.manifest, "
                     "stream = EXCLUDED.stream RETURNING 1) "
                     "SELECT (SELECT count(*) FROM ins), (SELECT m FROM cur)",
    [PG_LOAD_MANIFEST] = "SELECT seq, ts, body FROM \"%s\" WHERE persistence_id = $1 "
                         "AND seq BETWEEN $2 AND $3 AND ts BETWEEN $4 AND $5 AND manifest = $6 "
                         "ORDER BY seq DESC LIMIT 1",
};

static const int stmt_nparams[PG_STMT_COUNT] = {
    [PG_INSERT] = 7, [PG_INSERT_IF] = 8, [PG_LOAD_MANIFEST] = 6, [PG_PRUNE] = 2, [PG_NEWEST] = 1, [PG_LOAD] = 5, [PG_REMOVE] = 5,
    [PG_LOCK] = 2, [PG_PIDS] = 2, [PG_ROWS] = 3, [PG_ROWS_PID] = 3, [PG_SWAP] = 4,
    [PG_SWAP_TYPED] = 5,
};

static const Oid stmt_types[PG_STMT_COUNT][8] = {
    [PG_INSERT] = {OID_TEXT, OID_INT8, OID_INT8, OID_INT4, OID_BYTEA, OID_TEXT, OID_INT8},
    [PG_INSERT_IF] = {OID_TEXT, OID_INT8, OID_INT8, OID_INT4, OID_BYTEA, OID_TEXT, OID_INT8,
                      OID_INT8},
    [PG_LOAD_MANIFEST] = {OID_TEXT, OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_TEXT},
    [PG_PRUNE] = {OID_TEXT, OID_INT8},
    [PG_NEWEST] = {OID_TEXT},
    [PG_LOAD] = {OID_TEXT, OID_INT8, OID_INT8, OID_INT8, OID_INT8},
    [PG_REMOVE] = {OID_TEXT, OID_INT8, OID_INT8, OID_INT8, OID_INT8},
    [PG_LOCK] = {OID_INT4, OID_INT4},
    [PG_PIDS] = {OID_TEXT, OID_INT8},
    [PG_ROWS] = {OID_TEXT, OID_INT8, OID_INT8},
    [PG_ROWS_PID] = {OID_TEXT, OID_INT8, OID_INT8},
    [PG_SWAP] = {OID_TEXT, OID_INT8, OID_BYTEA, OID_BYTEA},
    [PG_SWAP_TYPED] = {OID_TEXT, OID_INT8, OID_BYTEA, OID_BYTEA, OID_TEXT},
};

const char *snap__pg_stmt_name(enum snap_pg_stmt id) { return stmt_names[id]; }

int snap__pg_build_sql(snap_pg *b) {
  for (int i = 0; i < PG_STMT_COUNT; i++) {
    /* The table name matches [A-Za-z_][A-Za-z0-9_]*, so quoting it is
     * enough; pids and values are always bound parameters. */
    size_t n = strlen(stmt_tpl[i]) + 2 * SNAP_PG_TABLE_MAX + 1; /* at most two names */
    b->sql[i] = b->host->malloc(n);
    if (b->sql[i] == NULL)
      return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
    snprintf(b->sql[i], n, stmt_tpl[i], b->table, b->table);
  }
  return SNAP_OK;
}

/* ------------------------------------------------------------------------ */
/* Binary values                                                             */
/* ------------------------------------------------------------------------ */

void snap__pg_put64(char out[8], int64_t v) {
  uint64_t u = (uint64_t)v;
  for (int i = 7; i >= 0; i--) {
    out[i] = (char)(u & 0xff);
    u >>= 8;
  }
}

void snap__pg_put32(char out[4], uint32_t v) {
  out[0] = (char)(v >> 24);
  out[1] = (char)(v >> 16);
  out[2] = (char)(v >> 8);
  out[3] = (char)v;
}

int64_t snap__pg_get64(const char *in) {
  uint64_t u = 0;
  for (int i = 0; i < 8; i++)
    u = (u << 8) | (unsigned char)in[i];
  return (int64_t)u;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static const char *first_line(const char *msg, char *buf, size_t cap) {
  /* libpq's messages end in a newline and may carry DETAIL lines. */
  size_t n = strcspn(msg ? msg : "", "\n");
  if (n >= cap)
    n = cap - 1;
  memcpy(buf, msg ? msg : "", n);
  buf[n] = '\0';
  return buf;
}

int snap__pg_conn_error(snap_pg *b, int s, snap_pg_conn *c, const char *what) {
  char line[512];
  c->broken = true;
  return b->host->error(SNAP_EIO, "postgres %s: %s: connection lost: %s", b->shards[s].label,
                        what, first_line(PQerrorMessage(c->pg), line, sizeof line));
}

bool snap__pg_row_error(const PGresult *r) {
  const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  /* 22: data exception, 23: integrity constraint, 54: program limit exceeded. */
  return st != NULL && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
                        strncmp(st, "54", 2) == 0);
}

int snap__pg_result_error(snap_pg *b, int s, const PGresult *r, const char *what) {
  const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  int code = SNAP_EIO;
  if (st == NULL)
    code = SNAP_EIO;
  else if (strcmp(st, "53100") == 0) /* disk_full */
    code = SNAP_EFULL;
  else if (strcmp(st, "53200") == 0) /* out_of_memory */
    code = SNAP_ENOMEM;
  else if (strncmp(st, "40", 2) == 0 || strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0)
    code = SNAP_EBUSY; /* serialization, deadlock, lock timeout, statement timeout */
  else if (strncmp(st, "54", 2) == 0)
    code = SNAP_ETOOBIG;
  else if (strncmp(st, "22", 2) == 0)
    code = SNAP_EINVAL;
  char line[512];
  return b->host->error(code, "postgres %s table \"%s\": %s: %s%s%s", b->shards[s].label,
                        b->table, what, first_line(PQresultErrorMessage(r), line, sizeof line),
                        st ? " SQLSTATE " : "", st ? st : "");
}

/* ------------------------------------------------------------------------ */
/* I/O with a deadline                                                       */
/* ------------------------------------------------------------------------ */

int64_t snap__pg_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t snap__pg_deadline(const snap_pg *b) {
  /* The server cancels a statement after statement_timeout_ms; the client
   * gives it the connect timeout more to say so before it gives up on the
   * connection itself (a server or network that stopped answering). */
  if (b->statement_ms == 0)
    return INT64_MAX;
  return snap__pg_now_ms() + b->statement_ms + b->connect_ms;
}

/* Flushes the output and waits until a result is complete. */
static int wait_result(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline) {
  PGconn *pg = c->pg;
  for (;;) {
    int f = PQflush(pg);
    if (f < 0)
      return snap__pg_conn_error(b, s, c, "send");
    if (f == 0 && !PQisBusy(pg))
      return SNAP_OK;
    if (PQstatus(pg) == CONNECTION_BAD)
      return snap__pg_conn_error(b, s, c, "receive");
    struct pollfd p = {PQsocket(pg), (short)(POLLIN | (f == 1 ? POLLOUT : 0)), 0};
    int timeout = -1;
    if (deadline != INT64_MAX) {
      int64_t left = deadline - snap__pg_now_ms();
      if (left <= 0) {
        c->broken = true;
        return b->host->error(SNAP_EIO,
                              "postgres %s: no answer within %d ms (statement_timeout_ms + "
                              "connect_timeout_ms); the connection is dropped",
                              b->shards[s].label, b->statement_ms + b->connect_ms);
      }
      timeout = left > 60000 ? 60000 : (int)left;
    }
    int n = poll(&p, 1, timeout);
    if (n < 0 && errno != EINTR) {
      c->broken = true;
      return b->host->error(SNAP_EIO, "postgres %s: poll: %s", b->shards[s].label,
                            strerror(errno));
    }
    if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(pg))
      return snap__pg_conn_error(b, s, c, "receive");
  }
}

int snap__pg_next(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline, PGresult **res) {
  *res = NULL;
  int e = wait_result(b, s, c, deadline);
  if (e != SNAP_OK)
    return e;
  PGresult *r = PQgetResult(c->pg);
  if (r == NULL) {
    /* Out of step with the pipeline: only a lost connection does that. */
    if (PQstatus(c->pg) == CONNECTION_BAD)
      return snap__pg_conn_error(b, s, c, "receive");
    c->broken = true;
    return b->host->error(SNAP_EIO, "postgres %s: the pipeline lost its place",
                          b->shards[s].label);
  }
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_FATAL_ERROR && PQstatus(c->pg) == CONNECTION_BAD) {
    PQclear(r);
    return snap__pg_conn_error(b, s, c, "receive");
  }
  if (st != PGRES_PIPELINE_SYNC) {
    /* The NULL that ends this command's results. */
    e = wait_result(b, s, c, deadline);
    if (e != SNAP_OK) {
      PQclear(r);
      return e;
    }
    PGresult *end = PQgetResult(c->pg);
    if (end != NULL) {
      PQclear(end);
      PQclear(r);
      c->broken = true;
      return b->host->error(SNAP_EIO, "postgres %s: a statement returned several results",
                            b->shards[s].label);
    }
  }
  *res = r;
  return SNAP_OK;
}

int snap__pg_drain(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline) {
  for (;;) {
    PGresult *r;
    int e = snap__pg_next(b, s, c, deadline, &r);
    if (e != SNAP_OK)
      return e;
    bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (sync)
      return SNAP_OK;
  }
}

int snap__pg_send(snap_pg *b, int s, snap_pg_conn *c, enum snap_pg_stmt id, int n,
                  const char *const *values, const int *lengths, int result_binary) {
  static const int formats[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  /* libpq copies the parameters into its output buffer here, so they may
   * live on the caller's stack. */
  if (!PQsendQueryPrepared(c->pg, stmt_names[id], n, values, lengths, formats, result_binary))
    return snap__pg_conn_error(b, s, c, "send");
  return SNAP_OK;
}

int snap__pg_sync(snap_pg *b, int s, snap_pg_conn *c) {
  if (!PQpipelineSync(c->pg))
    return snap__pg_conn_error(b, s, c, "send");
  return SNAP_OK;
}

/* ------------------------------------------------------------------------ */
/* Text statements (schema.c) and the prepared statements                    */
/* ------------------------------------------------------------------------ */

/* Sends one statement with text parameters (schema work and settings). */
int snap__pg_send_text(snap_pg *b, int s, snap_pg_conn *c, const char *sql, const char *param) {
  const char *values[1] = {param};
  if (!PQsendQueryParams(c->pg, sql, param ? 1 : 0, NULL, values, NULL, NULL, 0))
    return snap__pg_conn_error(b, s, c, "send");
  return SNAP_OK;
}

/* Reads the results of a segment of statements sent with text results up to
 * its sync. The first failure is recorded; a single-value SELECT's value
 * goes to `*value` (-1 when it returned no row). */
int snap__pg_read_results(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline, int64_t *value) {
  int first = SNAP_OK;
  for (;;) {
    PGresult *r;
    int e = snap__pg_next(b, s, c, deadline, &r);
    if (e != SNAP_OK)
      return e;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      return first;
    }
    if (st == PGRES_FATAL_ERROR && first == SNAP_OK)
      first = snap__pg_result_error(b, s, r, "schema");
    if (st == PGRES_TUPLES_OK && value != NULL && PQnfields(r) == 1) {
      *value = -1;
      if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        const char *v = PQgetvalue(r, 0, 0);
        /* Text results: "t"/"f" for booleans, digits for integers. */
        *value = v[0] == 't' ? 1 : v[0] == 'f' ? 0 : (int64_t)strtoll(v, NULL, 10);
      }
    }
    PQclear(r);
  }
}

int snap__pg_prepare_all(snap_pg *b, int s, snap_pg_conn *c) {
  int64_t deadline = snap__pg_deadline(b);
  /* The server enforces the statement timeout of every statement of this
   * session; set in the same round trip as the statements are prepared. */
  char ms[24];
  snprintf(ms, sizeof ms, "%d", b->statement_ms);
  int e = snap__pg_send_text(b, s, c, "SELECT set_config('statement_timeout', $1, false)", ms);
  if (e != SNAP_OK)
    return e;
  for (int i = 0; i < PG_STMT_COUNT; i++)
    if (!PQsendPrepare(c->pg, stmt_names[i], b->sql[i], stmt_nparams[i], stmt_types[i]))
      return snap__pg_conn_error(b, s, c, "prepare");
  e = snap__pg_sync(b, s, c);
  return e == SNAP_OK ? snap__pg_read_results(b, s, c, deadline, NULL) : e;
}
