/* The postgres backend's streamed snapshots (backend ABI version 6): the
 * chunk records of a stream are rows of "<table>_chunks" on the pid's shard
 * (one row per record, never the state in one value), published by the row
 * whose stream column names them (schema step 6, schema.c).
 *
 * Writing: a stream has a connection of its own, outside the pool, from
 * begin to publish or abort. Its records are sent in pipeline mode as
 * inserts, in transactions of at most BATCH_BYTES (or BATCH_RECORDS)
 * committed one after the other without waiting (synchronous_commit off for
 * them: the publish commits synchronously, which makes every earlier record
 * of the write-ahead log durable first). One segment is in flight while the
 * next is built, so memory holds one record and a few results.
 *
 * Leases: the writer takes a session advisory lock (stream_class, a hash of
 * its token) before it lists its stream in "<table>_staging", and holds it
 * until its row committed or its staging was deleted. The sweep reclaims a
 * listed stream only when it gets that lock without waiting and the stream
 * is still listed after it got it: a live writer is never reclaimed, and the
 * lock of a writer that died (kill -9, a lost host) goes when the server
 * notices its connection gone; a server restart ends every session. Two
 * tokens whose hashes collide only make the sweep wait for the live one.
 *
 * Removal: the triggers of schema step 6 delete a row's chunks in the
 * transaction that deletes, prunes or replaces the row.
 *
 * Publishing (and replacing a row's stream) is in streams_publish.c,
 * readers are in streams_read.c. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

/* A staging transaction commits after this many bytes or records. */
#define BATCH_BYTES ((uint64_t)32 << 20)
#define BATCH_RECORDS 256
/* Records one reclaim transaction deletes. */
#define DELETE_ROWS 64
/* The most orphans the reclaim at a shard's first connection takes. */
#define OPEN_SWEEP_MAX 256u

#define OID_INT4 SNAP_PG_OID_INT4
#define OID_INT8 SNAP_PG_OID_INT8
#define OID_TEXT SNAP_PG_OID_TEXT
#define OID_BYTEA SNAP_PG_OID_BYTEA

/* ---- small helpers ------------------------------------------------------ */

static void lock_keys(const snap_pg *b, int64_t token, char k1[4], char k2[4]) {
  uint64_t t = (uint64_t)token;
  snap__pg_put32(k1, b->stream_class);
  snap__pg_put32(k2, (uint32_t)(t ^ (t >> 32)));
}

/* Runs one statement of `sql` with up to 4 binary parameters on `c`
 * (autocommit); its rows, when `out` is given. */
static int run1(snap_pg *b, int s, snap_pg_conn *c, const char *sql, int n, const Oid *types,
                const char *const *vals, const int *lens, PGresult **out) {
  snap_pg_stmt_args a = {sql, n, types, vals, lens};
  if (out != NULL)
    *out = NULL;
  return snap__pg_run_on(b, s, c, &a, 1, false, out ? 0 : -1, out);
}

/* The value of a one-row, one-column binary result: a bool or an int8. */
static int64_t value_of(const PGresult *r) {
  if (r == NULL || PQntuples(r) != 1 || PQnfields(r) < 1 || PQgetisnull(r, 0, 0))
    return -1;
  int len = PQgetlength(r, 0, 0);
  const char *v = PQgetvalue(r, 0, 0);
  return len == 1 ? (int64_t)(v[0] != 0) : len == 8 ? snap__pg_get64(v) : -1;
}

static int try_lock(snap_pg *b, int s, snap_pg_conn *c, int64_t token, bool lock, bool *got) {
  char k1[4], k2[4];
  lock_keys(b, token, k1, k2);
  static const Oid types[2] = {OID_INT4, OID_INT4};
  const char *vals[2] = {k1, k2};
  int lens[2] = {4, 4};
  PGresult *r;
  int e = run1(b, s, c, lock ? "SELECT pg_try_advisory_lock($1, $2)"
                             : "SELECT pg_advisory_unlock($1, $2)",
               2, types, vals, lens, &r);
  if (got != NULL)
    *got = e == SNAP_OK && value_of(r) == 1;
  PQclear(r);
  return e;
}

/* Deletes the chunks of `token`, DELETE_ROWS per transaction from the last
 * one down, then its staging entry: what a crash leaves halfway is still
 * listed, and reclaimed again later. */
static int reclaim(snap_pg *b, int s, snap_pg_conn *c, int64_t token) {
  char tok[8], lo[8], hi[8], sql[256];
  snap__pg_put64(tok, token);
  static const Oid types[3] = {OID_INT8, OID_INT8, OID_INT8};
  const char *vals[3] = {tok, lo, hi};
  int lens[3] = {8, 8, 8};
  PGresult *r;
  snprintf(sql, sizeof sql, "SELECT COALESCE(max(n), -1) FROM \"%s\" WHERE stream = $1",
           b->chunks);
  int e = run1(b, s, c, sql, 1, types, vals, lens, &r);
  int64_t top = e == SNAP_OK ? value_of(r) : -1;
  PQclear(r);
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE stream = $1 AND n > $2 AND n <= $3",
           b->chunks);
  for (int64_t h = top; e == SNAP_OK && h >= 0; h -= DELETE_ROWS) {
    snap__pg_put64(lo, h - DELETE_ROWS);
    snap__pg_put64(hi, h);
    e = run1(b, s, c, sql, 3, types, vals, lens, NULL);
  }
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE stream = $1", b->staging);
  if (e == SNAP_OK)
    e = run1(b, s, c, sql, 1, types, vals, lens, NULL);
  return e;
}

/* Sends what libpq holds, reading what arrives meanwhile (results are read
 * later, in order). */
static int flush_all(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline) {
  for (;;) {
    int f = PQflush(c->pg);
    if (f < 0)
      return snap__pg_conn_error(b, s, c, "send a chunk");
    if (f == 0)
      return SNAP_OK;
    int64_t left = deadline == INT64_MAX ? 60000 : deadline - snap__pg_now_ms();
    if (left <= 0) {
      c->broken = true;
      return b->host->error(SNAP_EIO, "postgres %s: the server took no data within %d ms; the "
                            "connection is dropped", b->shards[s].label,
                            b->statement_ms + b->connect_ms);
    }
    struct pollfd p = {PQsocket(c->pg), POLLIN | POLLOUT, 0};
    int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c->pg))
      return snap__pg_conn_error(b, s, c, "receive");
  }
}

/* Reads one synced segment's results: the first failure. */
static int read_segment(snap_pg *b, int s, snap_pg_conn *c) {
  int64_t deadline = snap__pg_deadline(b);
  int first = SNAP_OK;
  for (;;) {
    PGresult *r;
    int e = snap__pg_next(b, s, c, deadline, &r);
    if (e != SNAP_OK)
      return e;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR && first == SNAP_OK)
      first = snap__pg_result_error(b, s, r, "stage a chunk");
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC)
      return first;
  }
}

/* Reads segments until at most `keep` are unread. */
static int read_until(snap_pg *b, snap_backend_stream *w, int keep) {
  int e = SNAP_OK;
  while (w->unread > keep) {
    int r = w->c->broken ? SNAP_EIO : read_segment(b, w->shard, w->c);
    w->unread--;
    if (e == SNAP_OK)
      e = r;
  }
  return e;
}

/* Ends the open staging transaction (COMMIT, or ROLLBACK) and its segment,
 * then reads the results of the one before. */
static int end_batch(snap_pg *b, snap_backend_stream *w, bool commit) {
  if (w->batch < 0)
    return SNAP_OK;
  int e = snap__pg_send(b, w->shard, w->c, commit ? PG_COMMIT : PG_ROLLBACK, 0, NULL, NULL, 0);
  if (e == SNAP_OK)
    e = snap__pg_sync(b, w->shard, w->c);
  w->batch = -1;
  if (e != SNAP_OK)
    return e;
  w->unread++;
  return read_until(b, w, 1);
}

void snap__pg_stream_free(snap_pg *b, snap_backend_stream *w) {
  snap__pg_disconnect(b, w->c); /* the lease goes with the session */
  b->host->free(w->pid);
  b->host->free(w);
}

void snap__pg_stream_discard(snap_pg *b, snap_backend_stream *w) {
  if (!w->c->broken && end_batch(b, w, false) == SNAP_OK && read_until(b, w, 0) == SNAP_OK &&
      !w->c->broken)
    (void)reclaim(b, w->shard, w->c, w->token);
  snap__pg_stream_free(b, w);
}

int snap__pg_stream_settle(snap_pg *b, snap_backend_stream *w) {
  int e = end_batch(b, w, true);
  return e == SNAP_OK ? read_until(b, w, 0) : e;
}

/* ---- writing ------------------------------------------------------------ */

static int64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* A token, its lease and its staging entry; the chunk statement prepared. */
static int lease(snap_pg *b, snap_backend_stream *w) {
  int s = w->shard, e = SNAP_OK;
  bool got = false;
  for (int attempt = 0; attempt < 8 && e == SNAP_OK && !got; attempt++) {
    uint64_t t;
    if (getrandom(&t, sizeof t, 0) != (ssize_t)sizeof t)
      return b->host->error(SNAP_EIO, "postgres backend: no random stream token");
    w->token = (int64_t)(t >> 1) | 1;
    e = try_lock(b, s, w->c, w->token, true, &got);
  }
  if (e == SNAP_OK && !got)
    e = b->host->error(SNAP_EBUSY, "postgres %s: no free stream lease", b->shards[s].label);
  char sql[512], tok[8], seq[8], started[8];
  snap__pg_put64(tok, w->token);
  snap__pg_put64(seq, w->seq);
  snap__pg_put64(started, now_us());
  static const Oid types[4] = {OID_INT8, OID_TEXT, OID_INT8, OID_INT8};
  const char *vals[4] = {tok, w->pid, seq, started};
  int lens[4] = {8, (int)strlen(w->pid), 8, 8};
  snprintf(sql, sizeof sql, "INSERT INTO \"%s\" (stream, persistence_id, seq, started) VALUES "
           "($1, $2, $3, $4)", b->staging);
  if (e == SNAP_OK)
    e = run1(b, s, w->c, sql, 4, types, vals, lens, NULL);
  /* Staging commits need not wait for the disk: the publish's does. */
  if (e == SNAP_OK)
    e = run1(b, s, w->c, "SELECT set_config('synchronous_commit', 'off', false)", 0, NULL, NULL,
             NULL, NULL);
  static const Oid ctypes[3] = {OID_INT8, OID_INT8, OID_BYTEA};
  snprintf(sql, sizeof sql, "INSERT INTO \"%s\" (stream, n, record) VALUES ($1, $2, $3)",
           b->chunks);
  if (e == SNAP_OK && !PQsendPrepare(w->c->pg, "snap_chunk", sql, 3, ctypes))
    e = snap__pg_conn_error(b, s, w->c, "prepare");
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, w->c);
  if (e == SNAP_OK)
    e = snap__pg_read_results(b, s, w->c, snap__pg_deadline(b), NULL);
  return e;
}

int snap__pg_stream_begin(void *self, const char *pid, int64_t seq, snap_backend_stream **out) {
  snap_pg *b = self;
  *out = NULL;
  snap_backend_stream *w = b->host->malloc(sizeof *w);
  size_t pl = strlen(pid) + 1;
  char *p = b->host->malloc(pl);
  if (w == NULL || p == NULL) {
    b->host->free(w);
    b->host->free(p);
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  }
  memset(w, 0, sizeof *w);
  memcpy(p, pid, pl);
  w->pid = p;
  w->seq = seq;
  w->batch = -1;
  w->shard = snap__pg_shard_of(snap__pg_slice(pid), b->nshards);
  int e = snap__pg_connect(b, w->shard, &w->c);
  /* A lease that failed after its entry was listed takes the entry back. */
  if (e == SNAP_OK && (e = lease(b, w)) != SNAP_OK && !w->c->broken && w->token > 0)
    (void)reclaim(b, w->shard, w->c, w->token);
  if (e != SNAP_OK) {
    snap__pg_stream_free(b, w);
    return e;
  }
  *out = w;
  return SNAP_OK;
}

int snap__pg_stream_write(void *self, snap_backend_stream *w, const void *record, size_t len) {
  snap_pg *b = self;
  if (w->failed)
    return b->host->error(SNAP_EINVAL, "postgres backend: the stream of pid '%s' seq %lld failed "
                          "earlier: abort it", w->pid, (long long)w->seq);
  if (len == 0 || len > SNAP_BACKEND_CHUNK_MAX)
    return b->host->error(len ? SNAP_ETOOBIG : SNAP_EINVAL,
                          "postgres backend: a chunk record of %zu bytes (1 to %u allowed)", len,
                          SNAP_BACKEND_CHUNK_MAX);
  int s = w->shard, e = SNAP_OK;
  if (w->batch < 0) {
    e = snap__pg_send(b, s, w->c, PG_BEGIN, 0, NULL, NULL, 0);
    w->batch = 0;
    w->batch_bytes = 0;
  }
  char tok[8], n[8];
  snap__pg_put64(tok, w->token);
  snap__pg_put64(n, w->n);
  static const int formats[3] = {1, 1, 1};
  const char *vals[3] = {tok, n, record};
  int lens[3] = {8, 8, (int)len};
  if (e == SNAP_OK && !PQsendQueryPrepared(w->c->pg, "snap_chunk", 3, vals, lens, formats, 0))
    e = snap__pg_conn_error(b, s, w->c, "send a chunk");
  if (e == SNAP_OK) {
    w->n++;
    w->batch++;
    w->batch_bytes += len;
    e = flush_all(b, s, w->c, snap__pg_deadline(b));
  }
  if (e == SNAP_OK && (w->batch_bytes >= BATCH_BYTES || w->batch >= BATCH_RECORDS))
    e = end_batch(b, w, true);
  if (e != SNAP_OK)
    w->failed = true;
  return e;
}

void snap__pg_stream_abort(void *self, snap_backend_stream *w) {
  if (w != NULL)
    snap__pg_stream_discard(self, w);
}

/* ---- reclaiming --------------------------------------------------------- */

/* Reclaims up to `max` orphans of shard `s` over `c`; `*n` counts them. */
static int sweep_shard(snap_pg *b, int s, snap_pg_conn *c, uint64_t max, uint64_t *n) {
  char sql[256], lim[8];
  snprintf(sql, sizeof sql, "SELECT stream FROM \"%s\" ORDER BY started LIMIT $1", b->staging);
  snap__pg_put64(lim, (int64_t)(max > 100000 ? 100000 : max));
  static const Oid types[1] = {OID_INT8};
  const char *lv[1] = {lim};
  int ll[1] = {8};
  PGresult *list;
  int e = run1(b, s, c, sql, 1, types, lv, ll, &list);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE stream = $1", b->staging);
  for (int i = 0; e == SNAP_OK && i < PQntuples(list) && *n < max; i++) {
    if (PQgetlength(list, i, 0) != 8)
      continue;
    int64_t token = snap__pg_get64(PQgetvalue(list, i, 0));
    bool got = false;
    if ((e = try_lock(b, s, c, token, true, &got)) != SNAP_OK || !got)
      continue; /* a live writer's */
    /* Still listed once the lease is ours: its writer died. */
    char tok[8];
    snap__pg_put64(tok, token);
    const char *tv[1] = {tok};
    PGresult *r;
    e = run1(b, s, c, sql, 1, types, tv, ll, &r);
    bool orphan = e == SNAP_OK && value_of(r) == 1;
    PQclear(r);
    if (orphan && (e = reclaim(b, s, c, token)) == SNAP_OK)
      (*n)++;
    if (!c->broken)
      (void)try_lock(b, s, c, token, false, NULL);
  }
  PQclear(list);
  return e;
}

int snap__pg_stream_sweep(void *self, uint64_t max, uint64_t *reclaimed) {
  snap_pg *b = self;
  uint64_t n = 0;
  int e = SNAP_OK;
  for (int s = 0; s < b->nshards && e == SNAP_OK && n < max; s++) {
    snap_pg_conn *c;
    if ((e = snap__pg_acquire(b, s, &c)) != SNAP_OK)
      break;
    e = sweep_shard(b, s, c, max, &n);
    snap__pg_release(b, s, c);
  }
  if (reclaimed != NULL)
    *reclaimed = n;
  return e;
}

void snap__pg_streams_open_sweep(snap_pg *b, int s, snap_pg_conn *c) {
  uint64_t n = 0;
  (void)sweep_shard(b, s, c, OPEN_SWEEP_MAX, &n);
}
