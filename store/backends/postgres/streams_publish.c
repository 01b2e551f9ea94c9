/* The postgres backend's publishing of streams (backend ABI versions 6 and
 * 7; staging, leases and the sweep are in streams.c): the one small
 * transaction that makes a staged stream a row's.
 *
 * Publishing (stream_publish): on the writer's connection, once every
 * staging transaction is committed, one transaction takes the pid's lock
 * (as a put does), deletes the staging entry (which must still be there),
 * inserts the row with its stream column, prunes, then commits
 * synchronously after its results were read (a conflict or a failure rolls
 * it back). The synchronous COMMIT flushes the write-ahead log up to it, so
 * every staged record is durable before the row that names it.
 *
 * Replacing (stream_replace, ABI version 7: a rekey or a recompression of a
 * streamed snapshot): the same transaction with a conditional UPDATE in
 * place of the insert. The row (pid, seq) gets the new head, manifest and
 * stream column only if its body is still the one that was read; the
 * update trigger of schema step 6 deletes the old chunk rows in that
 * transaction. The UPDATE re-checks the body on the newest row version
 * (READ COMMITTED), so a save of the same (pid, seq) or a delete committed
 * meanwhile wins; a probe in a statement of its own (a newer snapshot) then
 * tells a changed row from a gone one. Anything but a swap rolls back, and
 * the new staging is reclaimed while its lease is still held: the row and
 * its old chunks are as they were. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define OID_INT8 SNAP_PG_OID_INT8
#define OID_TEXT SNAP_PG_OID_TEXT
#define OID_BYTEA SNAP_PG_OID_BYTEA

/* Tells the host's observer and metrics (hosts of ABI version 2 and later). */
static void report(const snap_pg *b, int kind, int status, const char *pid, int64_t seq,
                   uint64_t count, const char *detail) {
  if (b->host->abi_version < 2 || b->host->report == NULL)
    return;
  snap_backend_report ev = {kind, status, pid, seq, count, detail};
  b->host->report(b->host, &ev);
}

/* What the statements of a publish or a replace before its COMMIT said.
 * The results are, in order: BEGIN, SET LOCAL, the lock, the claim (k = 3),
 * then the insert and the prune, or the update and the probe (k = 4, 5),
 * then the sync. */
typedef struct verdict {
  int failed;        /* the first failure */
  bool prune_failed; /* that failure was the prune's */
  bool claimed;      /* the staging entry was there (and is deleted) */
  bool conflict;     /* a publish: the condition failed */
  bool swapped;      /* a replace: the row was updated */
  bool present;      /* a replace: the row (pid, seq) is there */
  uint64_t removed;  /* rows the prune removed */
} verdict;

/* Sends BEGIN, the synchronous commit, the pid's lock and the claim of the
 * staging entry. */
static int send_claim(snap_pg *b, snap_backend_stream *w) {
  int s = w->shard;
  snap_pg_conn *c = w->c;
  int e = snap__pg_send(b, s, c, PG_BEGIN, 0, NULL, NULL, 0);
  if (e == SNAP_OK)
    e = snap__pg_send_text(b, s, c, "SET LOCAL synchronous_commit TO on", NULL);
  char k1[4], k2[4], tok[8], sql[256];
  snap__pg_put32(k1, b->lock_class);
  snap__pg_put32(k2, snap__pg_fnv1a(w->pid));
  const char *lv[2] = {k1, k2};
  int ll[2] = {4, 4};
  if (e == SNAP_OK)
    e = snap__pg_send(b, s, c, PG_LOCK, 2, lv, ll, 0);
  snap__pg_put64(tok, w->token);
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE stream = $1", b->staging);
  static const Oid types[1] = {OID_INT8};
  static const int formats[1] = {1};
  const char *tv[1] = {tok};
  int tl[1] = {8};
  if (e == SNAP_OK && !PQsendQueryParams(c->pg, sql, 1, types, tv, tl, formats, 0))
    e = snap__pg_conn_error(b, s, c, "send");
  return e;
}

/* The claim, the insert and the prune, then a sync. */
static int send_publish(snap_pg *b, snap_backend_stream *w, const snap_backend_row4 *row,
                        uint32_t keep, bool prune) {
  int s = w->shard;
  int e = send_claim(b, w);
  if (e == SNAP_OK)
    e = snap__pg_send_insert(b, s, w->c, row, w->token);
  char off[8];
  snap__pg_put64(off, (int64_t)keep - 1);
  const char *pv[2] = {w->pid, off};
  int pl[2] = {(int)strlen(w->pid), 8};
  if (e == SNAP_OK && prune)
    e = snap__pg_send(b, s, w->c, PG_PRUNE, 2, pv, pl, 0);
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, w->c);
  return e;
}

/* The claim, the conditional update of the row to the new head, manifest
 * and stream, and the probe, then a sync. */
static int send_replace(snap_pg *b, snap_backend_stream *w, const snap_backend_swap *sw,
                        const char *manifest) {
  int s = w->shard;
  snap_pg_conn *c = w->c;
  int e = send_claim(b, w);
  char seq[8], tok[8], sql[320];
  snap__pg_put64(seq, w->seq);
  snap__pg_put64(tok, w->token);
  static const Oid types[6] = {OID_TEXT, OID_INT8, OID_BYTEA, OID_BYTEA, OID_TEXT, OID_INT8};
  static const int formats[6] = {1, 1, 1, 1, 1, 1};
  const char *vals[6] = {w->pid, seq, sw->body ? (const char *)sw->body : "",
                         sw->expected ? (const char *)sw->expected : "", manifest, tok};
  int lens[6] = {(int)strlen(w->pid), 8, (int)sw->body_len, (int)sw->expected_len,
                 manifest ? (int)strlen(manifest) : 0, 8};
  snprintf(sql, sizeof sql, "UPDATE \"%s\" SET body = $3, manifest = $5, stream = $6 WHERE "
           "persistence_id = $1 AND seq = $2 AND body = $4", b->table);
  if (e == SNAP_OK && !PQsendQueryParams(c->pg, sql, 6, types, vals, lens, formats, 0))
    e = snap__pg_conn_error(b, s, c, "send");
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE persistence_id = $1 AND seq = $2",
           b->table);
  if (e == SNAP_OK && !PQsendQueryParams(c->pg, sql, 2, types, vals, lens, formats, 0))
    e = snap__pg_conn_error(b, s, c, "send");
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, c);
  return e;
}

/* What the k-th result says (`row`: a publish; NULL: a replace). */
static void classify(snap_pg *b, snap_backend_stream *w, snap_backend_row4 *row, int k,
                     PGresult *r, verdict *v) {
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_FATAL_ERROR && v->failed == SNAP_OK) {
    bool prune = row != NULL && k == 5;
    v->failed = snap__pg_result_error(b, w->shard, r, prune ? "prune"
                                                      : row ? "publish a stream"
                                                            : "replace a stream");
    v->prune_failed = prune;
    if (prune) {
      const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      report(b, SNAP_EVENT_PRUNE_FAILED, v->failed, row->row.pid, row->row.seq, 0,
             msg != NULL ? msg : "the prune failed");
    }
  }
  if (k == 3 && st == PGRES_COMMAND_OK)
    v->claimed = strcmp(PQcmdTuples(r), "1") == 0;
  if (row != NULL && k == 4 && st == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 2) {
    row->current_seq = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    v->conflict = strtoll(PQgetvalue(r, 0, 0), NULL, 10) == 0;
  }
  if (row != NULL && k == 5 && st == PGRES_COMMAND_OK)
    v->removed = strtoull(PQcmdTuples(r), NULL, 10);
  if (row == NULL && k == 4 && st == PGRES_COMMAND_OK)
    v->swapped = strcmp(PQcmdTuples(r), "1") == 0;
  if (row == NULL && k == 5 && st == PGRES_TUPLES_OK && PQntuples(r) == 1)
    v->present = strtoll(PQgetvalue(r, 0, 0), NULL, 10) > 0;
}

/* Reads the `total` results before the sync, then the sync. */
static int read_verdict(snap_pg *b, snap_backend_stream *w, snap_backend_row4 *row, int total,
                        verdict *v) {
  int s = w->shard;
  int64_t deadline = snap__pg_deadline(b);
  memset(v, 0, sizeof *v);
  for (int k = 0; k <= total; k++) {
    PGresult *r;
    int e = snap__pg_next(b, s, w->c, deadline, &r);
    if (e != SNAP_OK)
      return e;
    ExecStatusType st = PQresultStatus(r);
    if (k < total)
      classify(b, w, row, k, r, v);
    PQclear(r);
    if (k == total && st != PGRES_PIPELINE_SYNC) {
      w->c->broken = true;
      return b->host->error(SNAP_EIO, "postgres %s: the pipeline lost its place",
                            b->shards[s].label);
    }
  }
  return SNAP_OK;
}

/* Ends the transaction: COMMIT (`commit`) or ROLLBACK. A COMMIT whose
 * answer is lost is an unknown outcome. */
static int finish(snap_pg *b, snap_backend_stream *w, bool commit) {
  int s = w->shard;
  int e = snap__pg_send(b, s, w->c, commit ? PG_COMMIT : PG_ROLLBACK, 0, NULL, NULL, 0);
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, w->c);
  PGresult *r = NULL;
  int64_t deadline = snap__pg_deadline(b);
  if (e == SNAP_OK)
    e = snap__pg_next(b, s, w->c, deadline, &r);
  bool ok = e == SNAP_OK && PQresultStatus(r) == PGRES_COMMAND_OK &&
            strcmp(PQcmdStatus(r), commit ? "COMMIT" : "ROLLBACK") == 0;
  if (e == SNAP_OK && !ok)
    e = snap__pg_result_error(b, s, r, commit ? "commit" : "roll back");
  PQclear(r);
  if (e == SNAP_OK)
    e = snap__pg_drain(b, s, w->c, deadline);
  else if (commit && w->c->broken)
    e = b->host->error(SNAP_EIO,
                       "postgres %s: the connection was lost before the COMMIT of a stream was "
                       "acknowledged: the outcome is unknown (saving the same (pid, seq) again "
                       "is safe: it replaces)",
                       b->shards[s].label);
  return e;
}

static int staging_gone(snap_pg *b, const snap_backend_stream *w, const char *what) {
  return b->host->error(SNAP_EIO, "postgres %s table \"%s\": pid '%s' seq %lld: the stream's "
                        "staging is gone (reclaimed as an orphan): nothing was %s",
                        b->shards[w->shard].label, b->table, w->pid, (long long)w->seq, what);
}

/* One publish transaction. `*retry`: the prune failed; try again without. */
static int publish_once(snap_pg *b, snap_backend_stream *w, snap_backend_row4 *row,
                        uint32_t keep, bool prune, bool *retry, uint64_t *removed) {
  verdict v;
  *retry = false;
  int e = send_publish(b, w, row, keep, prune);
  if (e == SNAP_OK)
    e = read_verdict(b, w, row, prune ? 6 : 5, &v);
  if (e != SNAP_OK)
    return e;
  bool commit = v.failed == SNAP_OK && v.claimed && !v.conflict;
  int f = finish(b, w, commit);
  if (v.failed != SNAP_OK) {
    *retry = v.prune_failed && f == SNAP_OK;
    return v.failed;
  }
  if (f != SNAP_OK)
    return f;
  if (!v.claimed)
    return staging_gone(b, w, "published");
  if (v.conflict)
    return b->host->error(SNAP_ECONFLICT,
                          "postgres %s table \"%s\": pid '%s' seq %lld: the newest stored seq is "
                          "%lld, not the expected %lld",
                          b->shards[w->shard].label, b->table, w->pid, (long long)w->seq,
                          (long long)row->current_seq, (long long)row->expect_seq);
  *removed = v.removed;
  return SNAP_OK;
}

/* Refuses a staging that failed or is published as another (pid, seq), and
 * a head libpq cannot send; then commits what is still being staged. */
static int ready(snap_pg *b, snap_backend_stream *w, const char *pid, int64_t seq,
                 size_t head_len, size_t expected_len) {
  int e = SNAP_OK;
  if (w->failed)
    e = b->host->error(SNAP_EINVAL, "postgres backend: the stream of pid '%s' seq %lld failed "
                       "earlier and is not published", w->pid, (long long)w->seq);
  else if (strcmp(pid, w->pid) != 0 || seq != w->seq)
    e = b->host->error(SNAP_EINVAL, "postgres backend: a stream staged for pid '%s' seq %lld "
                       "published as pid '%s' seq %lld", w->pid, (long long)w->seq, pid,
                       (long long)seq);
  else if (head_len > (size_t)INT32_MAX || expected_len > (size_t)INT32_MAX)
    e = b->host->error(SNAP_ETOOBIG, "postgres backend: a head of %zu bytes",
                       head_len > expected_len ? head_len : expected_len);
  /* Every staging transaction committed and acknowledged first. */
  if (e == SNAP_OK)
    e = snap__pg_stream_settle(b, w);
  return e;
}

int snap__pg_stream_publish(void *self, snap_backend_stream *w, snap_backend_row4 *row,
                            uint32_t keep) {
  snap_pg *b = self;
  int e = ready(b, w, row->row.pid, row->row.seq, row->row.body_len, 0);
  uint64_t removed = 0;
  bool retry = true;
  for (int pass = 0; e == SNAP_OK && retry && pass < 2; pass++)
    e = publish_once(b, w, row, keep, keep > 0 && pass == 0, &retry, &removed);
  row->row.status = e;
  if (e == SNAP_OK) {
    if (removed > 0)
      report(b, SNAP_EVENT_PRUNE, SNAP_OK, row->row.pid, row->row.seq, removed, NULL);
    snap__pg_stream_free(b, w); /* the row owns the chunks; the lease goes */
  } else {
    snap__pg_stream_discard(b, w);
  }
  return e;
}

int snap__pg_stream_replace(void *self, snap_backend_stream *w, snap_backend_swap *sw,
                            const char *manifest) {
  snap_pg *b = self;
  sw->outcome = SNAP_SWAP_GONE;
  verdict v;
  int e = ready(b, w, sw->pid, sw->seq, sw->body_len, sw->expected_len);
  if (e == SNAP_OK)
    e = send_replace(b, w, sw, manifest);
  if (e == SNAP_OK)
    e = read_verdict(b, w, NULL, 6, &v);
  if (e == SNAP_OK) {
    int f = finish(b, w, v.failed == SNAP_OK && v.claimed && v.swapped);
    e = v.failed != SNAP_OK ? v.failed : f;
    if (e == SNAP_OK && !v.claimed)
      e = staging_gone(b, w, "replaced");
    if (e == SNAP_OK)
      sw->outcome = v.swapped ? SNAP_SWAP_DONE : v.present ? SNAP_SWAP_CHANGED : SNAP_SWAP_GONE;
  }
  sw->status = e;
  /* Swapped in: the row owns the chunks. Left alone or failed: the staging
   * is deleted while its lease is still held (rolled back, it is listed). */
  if (e == SNAP_OK && sw->outcome == SNAP_SWAP_DONE)
    snap__pg_stream_free(b, w);
  else
    snap__pg_stream_discard(b, w);
  return e;
}
