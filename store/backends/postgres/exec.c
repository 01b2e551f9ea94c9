/* The "postgres" backend's statements outside the prepared set: the key and
 * dictionary tables (keys.c, dicts.c) run a few statements each, with binary
 * parameters, as one pipeline segment per shard (in a transaction when they
 * must commit together). They are not prepared on every connection: they
 * are rarer than saves and loads, or (a rewrap page) carry a whole page in
 * array parameters. Also here: the names of those tables, and binary arrays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------------------ */
/* Table names                                                               */
/* ------------------------------------------------------------------------ */

static void side_name(const snap_pg *b, char *out, const char *suffix) {
  size_t n = strlen(b->table), sl = strlen(suffix);
  /* Room for either form whatever the compiler assumes of the lengths; the
   * result is at most SNAP_PG_TABLE_MAX bytes by construction. */
  char name[2 * SNAP_PG_TABLE_MAX + 32];
  if (n + sl <= SNAP_PG_TABLE_MAX)
    snprintf(name, sizeof name, "%s%s", b->table, suffix);
  else /* PostgreSQL would cut the name to 63 bytes: that could be the table itself */
    snprintf(name, sizeof name, "%.48s_%08x%s", b->table, (unsigned)snap__pg_fnv1a(b->table),
             suffix);
  size_t len = strlen(name);
  if (len > SNAP_PG_TABLE_MAX)
    len = SNAP_PG_TABLE_MAX;
  memcpy(out, name, len);
  out[len] = 0;
}

void snap__pg_side_names(snap_pg *b) {
  side_name(b, b->keys, "_keys");
  side_name(b, b->dicts, "_dicts");
  side_name(b, b->chunks, "_chunks");
  side_name(b, b->staging, "_staging");
  side_name(b, b->unchunk, "_unchunk");
}

/* ------------------------------------------------------------------------ */
/* Binary arrays                                                             */
/* ------------------------------------------------------------------------ */

static void put32(snap_pg_array *a, size_t at, uint32_t v) {
  snap__pg_put32(a->buf + at, v);
}

static bool reserve(const snap_pg *b, snap_pg_array *a, size_t more) {
  if (a->failed)
    return false;
  if (a->buf != NULL && a->len + more <= a->cap)
    return true;
  size_t cap = a->cap ? a->cap : 4096;
  while (cap < a->len + more)
    cap *= 2;
  char *p = b->host->realloc(a->buf, cap);
  if (p == NULL) {
    a->failed = true;
    return false;
  }
  a->buf = p;
  a->cap = cap;
  return true;
}

/* The header (20 bytes, written at the end): one dimension, no NULLs, the
 * element type, the length and the lower bound 1. */
void snap__pg_array_start(snap_pg_array *a, Oid elem) {
  memset(a, 0, sizeof *a);
  a->elem = elem;
  a->len = 20;
}

void snap__pg_array_add(const snap_pg *b, snap_pg_array *a, const void *v, size_t len) {
  if (!reserve(b, a, 4 + len))
    return;
  put32(a, a->len, (uint32_t)len);
  memcpy(a->buf + a->len + 4, v, len);
  a->len += 4 + len;
  a->n++;
}

bool snap__pg_array_end(const snap_pg *b, snap_pg_array *a) {
  if (!reserve(b, a, 0) || a->buf == NULL)
    return false;
  put32(a, 0, 1);
  put32(a, 4, 0);
  put32(a, 8, (uint32_t)a->elem);
  put32(a, 12, a->n);
  put32(a, 16, 1);
  return true;
}

void snap__pg_array_free(const snap_pg *b, snap_pg_array *a) {
  b->host->free(a->buf);
  memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------------ */
/* Running statements                                                        */
/* ------------------------------------------------------------------------ */

static int send_one(snap_pg *b, int s, snap_pg_conn *c, const snap_pg_stmt_args *a) {
  static const int formats[SNAP_PG_MAX_PARAMS] = {1, 1, 1, 1, 1, 1, 1, 1};
  if (a->n > SNAP_PG_MAX_PARAMS)
    return b->host->error(SNAP_EINVAL, "postgres backend: too many parameters");
  if (!PQsendQueryParams(c->pg, a->sql, a->n, a->types, a->values, a->lengths, formats, 1))
    return snap__pg_conn_error(b, s, c, "send");
  return SNAP_OK;
}

/* What one segment's results said. */
typedef struct outcome {
  int failed;      /* the first failing statement's status */
  bool committed;  /* the COMMIT (or, without a transaction, the sync) was reached */
  PGresult *kept;  /* the result of the statement asked for */
} outcome;

/* Reads the results of `total` statements then the sync. */
static int read_segment(snap_pg *b, int s, snap_pg_conn *c, int total, bool txn, int keep,
                        int64_t deadline, outcome *o) {
  int e = SNAP_OK;
  for (int k = 0; k < total && e == SNAP_OK; k++) {
    PGresult *r;
    if ((e = snap__pg_next(b, s, c, deadline, &r)) != SNAP_OK)
      break;
    ExecStatusType st = PQresultStatus(r);
    if ((st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) && o->failed == SNAP_OK)
      o->failed = snap__pg_result_error(b, s, r, "key, dictionary or chunk table");
    if (txn && k == total - 1 && st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0)
      o->committed = true;
    if (k == keep + (txn ? 1 : 0) && st == PGRES_TUPLES_OK && o->kept == NULL) {
      o->kept = r;
      continue;
    }
    PQclear(r);
  }
  if (e == SNAP_OK)
    e = snap__pg_drain(b, s, c, deadline);
  if (e == SNAP_OK && !txn && o->failed == SNAP_OK)
    o->committed = true;
  return e;
}

/* One attempt on one connection. */
int snap__pg_run_on(snap_pg *b, int s, snap_pg_conn *c, const snap_pg_stmt_args *st, int n,
                  bool txn, int keep, PGresult **out) {
  int64_t deadline = snap__pg_deadline(b);
  static const snap_pg_stmt_args begin = {"BEGIN", 0, NULL, NULL, NULL};
  static const snap_pg_stmt_args commit = {"COMMIT", 0, NULL, NULL, NULL};
  int e = txn ? send_one(b, s, c, &begin) : SNAP_OK;
  for (int i = 0; i < n && e == SNAP_OK; i++)
    e = send_one(b, s, c, &st[i]);
  bool commit_sent = false;
  if (e == SNAP_OK && txn && (e = send_one(b, s, c, &commit)) == SNAP_OK)
    commit_sent = true;
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, c);
  outcome o = {SNAP_OK, false, NULL};
  if (e == SNAP_OK)
    e = read_segment(b, s, c, n + (txn ? 2 : 0), txn, keep, deadline, &o);
  if (e != SNAP_OK && commit_sent && !o.committed && o.failed == SNAP_OK)
    e = b->host->error(SNAP_EIO,
                       "postgres %s: the connection was lost before the COMMIT was "
                       "acknowledged: the outcome is unknown (the operation can be repeated)",
                       b->shards[s].label);
  if (e == SNAP_OK)
    e = o.failed;
  if (e == SNAP_OK && keep >= 0 && o.kept == NULL)
    e = b->host->error(SNAP_EIO, "postgres %s: a query returned no rows result",
                       b->shards[s].label);
  if (PQtransactionStatus(c->pg) == PQTRANS_INERROR && !c->broken) {
    if (snap__pg_send_text(b, s, c, "ROLLBACK", NULL) == SNAP_OK &&
        snap__pg_sync(b, s, c) == SNAP_OK)
      (void)snap__pg_drain(b, s, c, snap__pg_deadline(b));
  }
  if (e == SNAP_OK && out != NULL)
    *out = o.kept;
  else
    PQclear(o.kept);
  return e;
}

int snap__pg_run(snap_pg *b, int s, const snap_pg_stmt_args *st, int n, bool txn, int keep,
                 bool retry, PGresult **out) {
  if (out != NULL)
    *out = NULL;
  int e = SNAP_OK;
  for (int attempt = 0; attempt < (retry ? 2 : 1); attempt++) {
    snap_pg_conn *c;
    if ((e = snap__pg_acquire(b, s, &c)) != SNAP_OK)
      return e;
    e = snap__pg_run_on(b, s, c, st, n, txn, keep, out);
    bool lost = c->broken;
    snap__pg_release(b, s, c);
    if (e == SNAP_OK || !lost)
      break;
  }
  return e;
}

/* Reads the one result of a read sent on `c`, then its sync. */
static int read_one(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline, PGresult **out) {
  PGresult *r = NULL;
  int e = snap__pg_next(b, s, c, deadline, &r);
  if (e == SNAP_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    e = snap__pg_result_error(b, s, r, "key, dictionary or chunk table");
  int d = e == SNAP_OK || !c->broken ? snap__pg_drain(b, s, c, deadline) : SNAP_OK;
  if (e == SNAP_OK)
    e = d;
  if (e == SNAP_OK)
    *out = r;
  else
    PQclear(r);
  return e;
}

int snap__pg_run_each(snap_pg *b, const snap_pg_stmt_args *st, PGresult **out) {
  snap_pg_conn **conn = b->host->malloc((size_t)b->nshards * sizeof *conn);
  if (conn == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  int64_t deadline = snap__pg_deadline(b);
  for (int s = 0; s < b->nshards; s++) {
    out[s] = NULL;
    if (snap__pg_acquire(b, s, &conn[s]) != SNAP_OK)
      conn[s] = NULL;
    else if (send_one(b, s, conn[s], st) != SNAP_OK || snap__pg_sync(b, s, conn[s]) != SNAP_OK)
      conn[s]->broken = true;
  }
  /* The shards work at the same time; a shard that failed is asked again
   * alone (a lost connection is retried once), which also reports why. */
  int e = SNAP_OK;
  for (int s = 0; s < b->nshards; s++) {
    int r = conn[s] != NULL && !conn[s]->broken ? read_one(b, s, conn[s], deadline, &out[s])
                                                : SNAP_EIO;
    if (conn[s] != NULL)
      snap__pg_release(b, s, conn[s]);
    if (r != SNAP_OK && e == SNAP_OK)
      e = snap__pg_run(b, s, st, 1, false, 0, true, &out[s]);
  }
  b->host->free(conn);
  return e;
}

/* ------------------------------------------------------------------------ */
/* One result per shard                                                      */
/* ------------------------------------------------------------------------ */

int snap__pg_per_shard(snap_pg *b, PGresult ***r, int **at) {
  *r = b->host->malloc((size_t)b->nshards * sizeof **r);
  *at = b->host->malloc((size_t)b->nshards * sizeof **at);
  if (*r == NULL || *at == NULL) {
    b->host->free(*r);
    b->host->free(*at);
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  }
  memset(*r, 0, (size_t)b->nshards * sizeof **r);
  memset(*at, 0, (size_t)b->nshards * sizeof **at);
  return SNAP_OK;
}

void snap__pg_per_shard_free(snap_pg *b, PGresult **r, int *at) {
  for (int s = 0; s < b->nshards; s++)
    PQclear(r[s]);
  b->host->free(r);
  b->host->free(at);
}
