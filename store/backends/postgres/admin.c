/* The "postgres" backend's operator operations (backend ABI version 2):
 * enumeration in (pid, seq) order with a resumable cursor, and the
 * conditional replace behind re-encryption. With several shards a page is
 * the merge of every shard's page: each shard returns its first `limit`
 * entries after the cursor, and the smallest `limit` of them are emitted (a
 * pid lives in one shard, so nothing is repeated). Online backups are not a
 * backend operation here: pg_dump takes them (docs/POSTGRES.md). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int64_t page_limit(size_t limit) {
  return limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
}

int snap__pg_list_pids(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                       void *ctx) {
  snap_pg *b = self;
  PGresult **r;
  int *at;
  if (snap__pg_per_shard(b, &r, &at) != SNAP_OK)
    return SNAP_ENOMEM;
  char lim[8];
  snap__pg_put64(lim, page_limit(limit));
  const char *vals[2] = {after ? after : "", lim};
  int lens[2] = {(int)strlen(vals[0]), 8};
  int e = SNAP_OK;
  for (int s = 0; s < b->nshards && e == SNAP_OK; s++)
    e = snap__pg_query(b, s, PG_PIDS, 2, vals, lens, &r[s]);
  /* Merge: the smallest pid among the shards' next ones, `limit` times. */
  for (size_t n = 0; n < limit && e == SNAP_OK; n++) {
    int best = -1;
    for (int s = 0; s < b->nshards; s++) {
      if (at[s] >= PQntuples(r[s]))
        continue;
      if (best < 0 || strcmp(PQgetvalue(r[s], at[s], 0), PQgetvalue(r[best], at[best], 0)) < 0)
        best = s;
    }
    if (best < 0)
      break;
    e = emit(ctx, PQgetvalue(r[best], at[best], 0));
    at[best]++;
  }
  snap__pg_per_shard_free(b, r, at);
  return e;
}

/* Orders two rows of enumeration results by (pid, seq). */
static int row_cmp(const PGresult *x, int i, const PGresult *y, int j) {
  int c = strcmp(PQgetvalue(x, i, 0), PQgetvalue(y, j, 0));
  if (c != 0)
    return c;
  int64_t a = snap__pg_get64(PQgetvalue(x, i, 1)), bb = snap__pg_get64(PQgetvalue(y, j, 1));
  return a < bb ? -1 : a > bb;
}

int snap__pg_list_rows(void *self, const char *pid, const char *after_pid, int64_t after_seq,
                       size_t limit, snap_backend_row_emit emit, void *ctx) {
  snap_pg *b = self;
  char seq[8], lim[8];
  snap__pg_put64(lim, page_limit(limit));
  if (pid != NULL) {
    /* One pid lives in one shard. Rows strictly after the cursor: all of
     * them when the cursor's pid sorts first, none when it sorts after. */
    int c = after_pid ? strcmp(after_pid, pid) : -1;
    if (c > 0)
      return SNAP_OK;
    snap__pg_put64(seq, c == 0 ? after_seq : INT64_MIN);
  } else {
    snap__pg_put64(seq, after_pid ? after_seq : INT64_MIN);
  }
  const char *vals[3] = {pid ? pid : after_pid ? after_pid : "", seq, lim};
  int lens[3] = {(int)strlen(vals[0]), 8, 8};
  int first = pid ? snap__pg_shard_of(snap__pg_slice(pid), b->nshards) : 0;
  int last = pid ? first + 1 : b->nshards;
  PGresult **r;
  int *at;
  if (snap__pg_per_shard(b, &r, &at) != SNAP_OK)
    return SNAP_ENOMEM;
  int e = SNAP_OK;
  for (int s = first; s < last && e == SNAP_OK; s++)
    e = snap__pg_query(b, s, pid ? PG_ROWS_PID : PG_ROWS, 3, vals, lens, &r[s]);
  for (int s = first; s < last && e == SNAP_OK; s++)
    if (PQntuples(r[s]) > 0 && (PQnfields(r[s]) != 4 || PQgetlength(r[s], 0, 1) != 8 ||
                                PQgetlength(r[s], 0, 2) != 8))
      e = b->host->error(SNAP_EFORMAT, "postgres %s table \"%s\": unexpected row shape",
                         b->shards[s].label, b->table);
  for (size_t n = 0; n < limit && e == SNAP_OK; n++) {
    int best = -1;
    for (int s = first; s < last; s++) {
      if (r[s] == NULL || at[s] >= PQntuples(r[s]))
        continue;
      if (best < 0 || row_cmp(r[s], at[s], r[best], at[best]) < 0)
        best = s;
    }
    if (best < 0)
      break;
    const PGresult *x = r[best];
    int i = at[best]++;
    e = emit(ctx, PQgetvalue(x, i, 0), snap__pg_get64(PQgetvalue(x, i, 1)),
             snap__pg_get64(PQgetvalue(x, i, 2)), PQgetvalue(x, i, 3),
             (size_t)PQgetlength(x, i, 3));
  }
  snap__pg_per_shard_free(b, r, at);
  return e;
}

static bool swap_on(const snap_pg *b, const snap_backend_swap *w, int s) {
  return snap__pg_shard_of(snap__pg_slice(w->pid), b->nshards) == s;
}

/* Sends one shard's swaps: BEGIN, a swap each (setting the manifest column
 * too with `manifests`), COMMIT, sync. */
static int replace_send(snap_pg *b, int s, snap_pg_conn *c, const snap_backend_swap *sw,
                        const char *const *manifests, size_t n, bool *commit_sent) {
  int e = snap__pg_send(b, s, c, PG_BEGIN, 0, NULL, NULL, 0);
  for (size_t i = 0; i < n && e == SNAP_OK; i++) {
    if (!swap_on(b, &sw[i], s))
      continue;
    char seq[8];
    snap__pg_put64(seq, sw[i].seq);
    const char *man = manifests ? manifests[i] : NULL;
    const char *vals[5] = {sw[i].pid, seq, sw[i].expected ? (const char *)sw[i].expected : "",
                           sw[i].body ? (const char *)sw[i].body : "", man};
    int lens[5] = {(int)strlen(sw[i].pid), 8, (int)sw[i].expected_len, (int)sw[i].body_len,
                   man ? (int)strlen(man) : 0};
    e = snap__pg_send(b, s, c, manifests ? PG_SWAP_TYPED : PG_SWAP, manifests ? 5 : 4, vals, lens,
                      1);
  }
  *commit_sent = false;
  if (e == SNAP_OK && (e = snap__pg_send(b, s, c, PG_COMMIT, 0, NULL, NULL, 0)) == SNAP_OK) {
    *commit_sent = true;
    e = snap__pg_sync(b, s, c);
  }
  return e;
}

/* What one shard's replace transaction did. */
typedef struct swap_txn {
  size_t sent;    /* the swaps sent */
  int failed;     /* the first failing statement's status, or SNAP_OK */
  bool committed; /* the COMMIT was acknowledged */
} swap_txn;

/* Classifies the k-th result of a shard's replace (BEGIN, one per swap: done,
 * present; COMMIT): the swap's outcome, the first failure, the COMMIT. */
static void replace_classify(snap_pg *b, int s, PGresult *r, size_t k, snap_backend_swap *sw,
                             size_t n, swap_txn *t) {
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_FATAL_ERROR && t->failed == SNAP_OK)
    t->failed = snap__pg_result_error(b, s, r, "replace");
  if (k > 0 && k <= t->sent && st == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
      PQgetlength(r, 0, 0) == 8 && PQgetlength(r, 0, 1) == 8) {
    /* The k-th swap of this shard. */
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
      if (!swap_on(b, &sw[i], s))
        continue;
      if (++seen == k) {
        int64_t done = snap__pg_get64(PQgetvalue(r, 0, 0));
        int64_t present = snap__pg_get64(PQgetvalue(r, 0, 1));
        sw[i].outcome = done > 0      ? SNAP_SWAP_DONE
                        : present > 0 ? SNAP_SWAP_CHANGED
                                      : SNAP_SWAP_GONE;
        break;
      }
    }
  }
  if (k == t->sent + 1 && st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0)
    t->committed = true;
}

/* Concludes a shard's replace from the connection's status `e` and what its
 * results said; ends a failed transaction. The status of its swaps unless
 * committed. */
static int replace_conclude(snap_pg *b, int s, snap_pg_conn *c, int e, bool commit_sent,
                            swap_txn *t) {
  if (e == SNAP_OK && t->failed == SNAP_OK && !t->committed)
    t->failed = b->host->error(
        SNAP_EIO, "postgres %s: the COMMIT of a replace was not acknowledged", b->shards[s].label);
  if (e != SNAP_OK && commit_sent && !t->committed && t->failed == SNAP_OK)
    e = b->host->error(SNAP_EIO,
                       "postgres %s: the connection was lost before the COMMIT of a replace was "
                       "acknowledged: the outcome is unknown (the replace can be repeated)",
                       b->shards[s].label);
  int code = e != SNAP_OK && !t->committed ? e : t->failed;
  if (!t->committed && code == SNAP_OK)
    code = e;
  if (PQtransactionStatus(c->pg) == PQTRANS_INERROR && !c->broken) {
    if (snap__pg_send(b, s, c, PG_ROLLBACK, 0, NULL, NULL, 0) == SNAP_OK &&
        snap__pg_sync(b, s, c) == SNAP_OK)
      (void)snap__pg_drain(b, s, c, snap__pg_deadline(b));
  }
  return code;
}

/* One shard's swaps in one transaction. */
static void replace_on(snap_pg *b, int s, snap_backend_swap *sw, const char *const *manifests,
                       size_t n) {
  snap_pg_conn *c;
  int e = snap__pg_acquire(b, s, &c);
  swap_txn t = {0, SNAP_OK, false};
  for (size_t i = 0; i < n; i++)
    if (swap_on(b, &sw[i], s))
      t.sent++;
  if (e != SNAP_OK) {
    for (size_t i = 0; i < n; i++)
      if (swap_on(b, &sw[i], s))
        sw[i].status = e;
    return;
  }
  int64_t deadline = snap__pg_deadline(b);
  bool commit_sent;
  e = replace_send(b, s, c, sw, manifests, n, &commit_sent);
  /* Results: BEGIN, one per swap, COMMIT, sync. */
  for (size_t k = 0; e == SNAP_OK && k < t.sent + 2; k++) {
    PGresult *r;
    if ((e = snap__pg_next(b, s, c, deadline, &r)) != SNAP_OK)
      break;
    replace_classify(b, s, r, k, sw, n, &t);
    PQclear(r);
  }
  if (e == SNAP_OK)
    e = snap__pg_drain(b, s, c, deadline);
  int code = replace_conclude(b, s, c, e, commit_sent, &t);
  snap__pg_release(b, s, c);
  for (size_t i = 0; i < n; i++)
    if (swap_on(b, &sw[i], s))
      sw[i].status = t.committed ? SNAP_OK : code;
}

/* replace(), and with `manifests` replace_typed(). */
static int replace_all(snap_pg *b, snap_backend_swap *sw, const char *const *manifests, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sw[i].status = SNAP_OK;
    sw[i].outcome = SNAP_SWAP_GONE;
  }
  /* Shard by shard: replaces are an operator's batch, not a hot path. */
  for (int s = 0; s < b->nshards; s++) {
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
      any = swap_on(b, &sw[i], s);
    if (any)
      replace_on(b, s, sw, manifests, n);
  }
  int first = SNAP_OK;
  for (size_t i = 0; i < n && first == SNAP_OK; i++)
    first = sw[i].status;
  return first;
}

int snap__pg_replace(void *self, snap_backend_swap *sw, size_t n) {
  return replace_all(self, sw, NULL, n);
}

int snap__pg_replace_typed(void *self, snap_backend_swap *sw, const char *const *manifests,
                           size_t n) {
  return replace_all(self, sw, manifests, n);
}
