/* The postgres backend's readers of streamed snapshots (backend ABI version
 * 6; the writing side and the sweep are in streams.c). A reader has a
 * connection of its own, outside the pool, holding one REPEATABLE READ
 * transaction from open to close: the row it checked at the open and every
 * chunk of it stay readable to the end even when the row is deleted,
 * pruned or replaced meanwhile. It fetches the records in order of n by
 * ranged SELECTs of about READ_BYTES each (the first fetch takes one
 * record, to learn their size), so memory holds one batch, never the
 * stream. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define READ_BYTES ((size_t)8 << 20)
#define READ_ROWS 64

struct snap_backend_reader {
  snap_pg_conn *c;
  int shard;
  int64_t token;
  int64_t next;   /* the smallest n of the next fetch */
  PGresult *rows; /* the batch being handed out */
  int at, count;
  int want;  /* records per fetch */
  bool last; /* no fetch after this batch */
  char sql[160];
};

static int run(snap_pg *b, snap_backend_reader *r, const char *sql, int n, const Oid *types,
               const char *const *vals, const int *lens, int keep, PGresult **out) {
  snap_pg_stmt_args a = {sql, n, types, vals, lens};
  if (out != NULL)
    *out = NULL;
  return snap__pg_run_on(b, r->shard, r->c, &a, 1, false, keep, out);
}

/* The stream of the row (pid, seq), if its body is still `head`. */
static int find_row(snap_pg *b, snap_backend_reader *r, const char *pid, int64_t seq,
                    const void *head, size_t head_len) {
  static const Oid types[2] = {SNAP_PG_OID_TEXT, SNAP_PG_OID_INT8};
  char sq[8], sql[256];
  snap__pg_put64(sq, seq);
  const char *vals[2] = {pid, sq};
  int lens[2] = {(int)strlen(pid), 8};
  int e = run(b, r, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, NULL, -1,
              NULL);
  snprintf(sql, sizeof sql, "SELECT stream, body FROM \"%s\" WHERE persistence_id = $1 AND "
           "seq = $2", b->table);
  PGresult *q = NULL;
  if (e == SNAP_OK)
    e = run(b, r, sql, 2, types, vals, lens, 0, &q);
  bool found = e == SNAP_OK && PQntuples(q) == 1 && PQnfields(q) == 2 && !PQgetisnull(q, 0, 0) &&
               PQgetlength(q, 0, 0) == 8 && (size_t)PQgetlength(q, 0, 1) == head_len &&
               (head_len == 0 || memcmp(PQgetvalue(q, 0, 1), head, head_len) == 0);
  if (found)
    r->token = snap__pg_get64(PQgetvalue(q, 0, 0));
  PQclear(q);
  if (e == SNAP_OK && !found)
    e = b->host->error(SNAP_ENOTFOUND,
                       "postgres %s table \"%s\": pid '%s' seq %lld: no streamed snapshot with "
                       "that head (deleted or replaced since it was read)",
                       b->shards[r->shard].label, b->table, pid, (long long)seq);
  return e;
}

int snap__pg_stream_open(void *self, const char *pid, int64_t seq, const void *head,
                         size_t head_len, snap_backend_reader **out) {
  snap_pg *b = self;
  *out = NULL;
  snap_backend_reader *r = b->host->malloc(sizeof *r);
  if (r == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  memset(r, 0, sizeof *r);
  r->shard = snap__pg_shard_of(snap__pg_slice(pid), b->nshards);
  r->want = 1;
  snprintf(r->sql, sizeof r->sql, "SELECT n, record FROM \"%s\" WHERE stream = $1 AND n >= $2 "
           "ORDER BY n LIMIT $3", b->chunks);
  int e = snap__pg_connect(b, r->shard, &r->c);
  if (e == SNAP_OK)
    e = find_row(b, r, pid, seq, head, head_len);
  if (e != SNAP_OK) {
    snap__pg_stream_close(b, r);
    return e;
  }
  *out = r;
  return SNAP_OK;
}

/* The next batch of records. */
static int fetch(snap_pg *b, snap_backend_reader *r) {
  static const Oid types[3] = {SNAP_PG_OID_INT8, SNAP_PG_OID_INT8, SNAP_PG_OID_INT8};
  char tok[8], from[8], lim[8];
  snap__pg_put64(tok, r->token);
  snap__pg_put64(from, r->next);
  snap__pg_put64(lim, r->want);
  const char *vals[3] = {tok, from, lim};
  int lens[3] = {8, 8, 8};
  PQclear(r->rows);
  r->rows = NULL;
  r->at = r->count = 0;
  int e = run(b, r, r->sql, 3, types, vals, lens, 0, &r->rows);
  if (e != SNAP_OK)
    return e;
  r->count = PQntuples(r->rows);
  r->last = r->count < r->want;
  if (PQnfields(r->rows) != 2)
    return b->host->error(SNAP_ECORRUPT, "postgres %s table \"%s\": unexpected chunk row shape",
                          b->shards[r->shard].label, b->chunks);
  return SNAP_OK;
}

int snap__pg_stream_next(void *self, snap_backend_reader *r, const void **record, size_t *len) {
  snap_pg *b = self;
  *record = NULL;
  *len = 0;
  if (r->at == r->count) {
    if (r->last)
      return SNAP_OK;
    int e = fetch(b, r);
    if (e != SNAP_OK)
      return e;
    if (r->count == 0)
      return SNAP_OK;
  }
  int i = r->at++;
  size_t n = (size_t)PQgetlength(r->rows, i, 1);
  if (PQgetlength(r->rows, i, 0) != 8 || n == 0 || n > SNAP_BACKEND_CHUNK_MAX)
    return b->host->error(SNAP_ECORRUPT, "postgres %s table \"%s\": a chunk record of an "
                          "impossible length (%zu bytes)", b->shards[r->shard].label, b->chunks,
                          n);
  r->next = snap__pg_get64(PQgetvalue(r->rows, i, 0)) + 1;
  /* The next fetches take about READ_BYTES. */
  size_t per = READ_BYTES / n;
  r->want = per < 1 ? 1 : per > READ_ROWS ? READ_ROWS : (int)per;
  *record = PQgetvalue(r->rows, i, 1);
  *len = n;
  return SNAP_OK;
}

void snap__pg_stream_close(void *self, snap_backend_reader *r) {
  snap_pg *b = self;
  if (r == NULL)
    return;
  PQclear(r->rows);
  snap__pg_disconnect(b, r->c); /* the transaction ends with the session */
  b->host->free(r);
}
