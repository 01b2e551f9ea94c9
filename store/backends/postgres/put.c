/* The postgres backend's write path (the put slot). A put groups its rows by
 * shard and sends each shard's transaction (BEGIN, the inserts, the prunes,
 * COMMIT) as one pipeline: one round trip per shard, all shards in flight at
 * once. A save is reported stored only when its shard acknowledged the
 * COMMIT. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A row of a put whose outcome is not known yet. */
#define PENDING 1

/* A pending row and its position in idx, sorted by pid to find each pid's
 * last row. */
typedef struct pid_pos {
  const char *pid;
  size_t pos;
} pid_pos;

/* One shard's part of a put. */
typedef struct job {
  int shard;
  snap_pg_conn *c;
  size_t *idx; /* its rows, in the caller's order */
  size_t k;
  uint32_t *keys;     /* scratch: the sorted lock keys of an attempt (k of them at most) */
  uint64_t *removed;  /* by the caller's row index: what the attempt's prune removed */
  bool *last;         /* by the caller's row index: its pid's prune follows it */
  pid_pos *order;     /* scratch for mark_prunes() (k of them at most) */
  bool *conflict;     /* by the caller's row index: its condition failed in this attempt */
  bool prune;         /* prune in this attempt (off after a failing prune) */
  bool rollback;      /* end the failed transaction of the last attempt first */
  bool sent;          /* this attempt was sent */
  bool commit_sent;   /* its COMMIT was handed to libpq */
  bool more;          /* another attempt is needed */
  size_t nlocks, ninserts, nprunes; /* the statements of the attempt sent */
} job;

static void fail_pending(snap_backend_row4 *rows, const job *j, int e) {
  for (size_t i = 0; i < j->k; i++)
    if (rows[j->idx[i]].row.status == PENDING)
      rows[j->idx[i]].row.status = e;
}

static int cmp_pid_pos(const void *a, const void *b) {
  const pid_pos *x = a, *y = b;
  int c = strcmp(x->pid, y->pid);
  return c != 0 ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Marks, by the caller's row index, the last pending row of each pid in the
 * job: one prune per pid follows all the inserts, however the pid's rows are
 * interleaved with other pids', and it is reported for that row's save. */
static void mark_prunes(const snap_backend_row4 *rows, job *j) {
  size_t n = 0;
  for (size_t i = 0; i < j->k; i++) {
    j->last[j->idx[i]] = false;
    if (rows[j->idx[i]].row.status == PENDING)
      j->order[n++] = (pid_pos){rows[j->idx[i]].row.pid, i};
  }
  qsort(j->order, n, sizeof *j->order, cmp_pid_pos);
  for (size_t i = 0; i < n; i++)
    if (i + 1 == n || strcmp(j->order[i].pid, j->order[i + 1].pid) != 0)
      j->last[j->idx[j->order[i].pos]] = true;
}

/* The position in idx of the first row whose prune was sent at or after
 * `from` (send_job() sends them in idx order). */
static size_t next_prune(const snap_backend_row4 *rows, const job *j, size_t from) {
  size_t i = from;
  while (i < j->k && (rows[j->idx[i]].row.status != PENDING || !j->last[j->idx[i]]))
    i++;
  return i;
}

/* Tells the host's observer and metrics (hosts of ABI version 2 and later). */
static void report(const snap_pg *b, int kind, int status, const snap_backend_row *r,
                   uint64_t count, const char *detail) {
  if (b->host->abi_version < 2 || b->host->report == NULL)
    return;
  snap_backend_report ev = {kind, status, r->pid, r->seq, count, detail};
  b->host->report(b->host, &ev);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Locks the pids of the pending rows, in ascending key order so that two
 * transactions never wait on each other in a cycle. */
static int send_locks(snap_pg *b, snap_backend_row4 *rows, job *j) {
  size_t n = 0;
  for (size_t i = 0; i < j->k; i++)
    if (rows[j->idx[i]].row.status == PENDING)
      j->keys[n++] = snap__pg_fnv1a(rows[j->idx[i]].row.pid);
  qsort(j->keys, n, sizeof *j->keys, cmp_u32);
  int e = SNAP_OK;
  for (size_t i = 0; i < n && e == SNAP_OK; i++) {
    if (i > 0 && j->keys[i] == j->keys[i - 1])
      continue;
    char k1[4], k2[4];
    snap__pg_put32(k1, b->lock_class);
    snap__pg_put32(k2, j->keys[i]);
    const char *vals[2] = {k1, k2};
    int lens[2] = {4, 4};
    e = snap__pg_send(b, j->shard, j->c, PG_LOCK, 2, vals, lens, 0);
    j->nlocks++;
  }
  return e;
}

static bool is_conditional(const snap_backend_row4 *r) {
  return r->expect_seq != SNAP_BACKEND_ANY_SEQ;
}

int snap__pg_send_insert(snap_pg *b, int s, snap_pg_conn *c, const snap_backend_row4 *r4,
                         int64_t stream) {
  const snap_backend_row *r = &r4->row;
  char seq[8], ts[8], slice[4], expect[8], token[8];
  snap__pg_put64(seq, r->seq);
  snap__pg_put64(ts, r->timestamp);
  snap__pg_put32(slice, snap__pg_slice(r->pid));
  snap__pg_put64(expect, r4->expect_seq);
  snap__pg_put64(token, stream);
  /* A NULL value would be SQL NULL: an empty body is sent as "". A NULL
   * manifest is SQL NULL, and so is the stream of an ordinary body. */
  const char *st = stream >= 0 ? token : NULL;
  bool cond = is_conditional(r4);
  const char *vals[8] = {r->pid, seq, ts, slice, r->body ? (const char *)r->body : "",
                         r4->manifest, cond ? expect : st, st};
  int lens[8] = {(int)strlen(r->pid), 8, 8, 4, (int)r->body_len,
                 r4->manifest ? (int)strlen(r4->manifest) : 0, 8, 8};
  if (cond)
    return snap__pg_send(b, s, c, PG_INSERT_IF, 8, vals, lens, 0);
  return snap__pg_send(b, s, c, PG_INSERT, 7, vals, lens, 0);
}

static int send_job(snap_pg *b, snap_backend_row4 *rows, job *j, uint32_t keep) {
  int s = j->shard, e = SNAP_OK;
  j->sent = j->commit_sent = false;
  j->nlocks = j->ninserts = j->nprunes = 0;
  if (j->rollback)
    e = snap__pg_send(b, s, j->c, PG_ROLLBACK, 0, NULL, NULL, 0);
  if (e == SNAP_OK)
    e = snap__pg_send(b, s, j->c, PG_BEGIN, 0, NULL, NULL, 0);
  if (j->prune)
    mark_prunes(rows, j);
  else
    for (size_t i = 0; i < j->k; i++)
      j->last[j->idx[i]] = false;
  bool conditional = false;
  for (size_t i = 0; i < j->k; i++) {
    j->conflict[j->idx[i]] = false;
    conditional |= rows[j->idx[i]].row.status == PENDING && is_conditional(&rows[j->idx[i]]);
  }
  /* Conditional rows, like prunes, need their pids' locks: they serialise
   * every check-and-insert of a pid across connections and processes. */
  if (e == SNAP_OK && (j->prune || conditional))
    e = send_locks(b, rows, j);
  for (size_t i = 0; i < j->k && e == SNAP_OK; i++) {
    const snap_backend_row *r = &rows[j->idx[i]].row;
    if (r->status != PENDING)
      continue;
    if (r->body_len > (size_t)INT_MAX) {
      rows[j->idx[i]].row.status = b->host->error(SNAP_ETOOBIG, "postgres: a body of more than %d "
                                                            "bytes cannot be sent",
                                              INT_MAX);
      continue;
    }
    e = snap__pg_send_insert(b, s, j->c, &rows[j->idx[i]], -1);
    j->ninserts++;
  }
  for (size_t i = 0; i < j->k && e == SNAP_OK && j->prune; i++) {
    const snap_backend_row *r = &rows[j->idx[i]].row;
    if (r->status != PENDING || !j->last[j->idx[i]])
      continue;
    char off[8];
    snap__pg_put64(off, (int64_t)keep - 1);
    const char *vals[2] = {r->pid, off};
    int lens[2] = {(int)strlen(r->pid), 8};
    e = snap__pg_send(b, s, j->c, PG_PRUNE, 2, vals, lens, 0);
    j->nprunes++;
  }
  if (e == SNAP_OK && j->ninserts == 0) {
    /* Every row was refused before sending: end the empty transaction. */
    e = snap__pg_send(b, s, j->c, PG_ROLLBACK, 0, NULL, NULL, 0);
    if (e == SNAP_OK && (e = snap__pg_sync(b, s, j->c)) == SNAP_OK)
      e = snap__pg_drain(b, s, j->c, snap__pg_deadline(b));
    j->more = false;
    j->rollback = false;
    return e;
  }
  if (e == SNAP_OK) {
    e = snap__pg_send(b, s, j->c, PG_COMMIT, 0, NULL, NULL, 0);
    j->commit_sent = e == SNAP_OK;
  }
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, j->c);
  if (e != SNAP_OK) {
    if (j->commit_sent)
      e = b->host->error(SNAP_EIO,
                         "postgres %s: the connection was lost while the COMMIT was being sent: "
                         "the outcome is unknown (saving the same (pid, seq) again is safe: it "
                         "replaces)",
                         b->shards[s].label);
    fail_pending(rows, j, e);
    j->more = false;
    return e;
  }
  j->sent = true;
  return SNAP_OK;
}

/* What the first failing statement of an attempt was. */
enum failure { F_NONE, F_ROW, F_PRUNE, F_ALL, F_COMMIT };

static int unknown_outcome(snap_pg *b, int s) {
  return b->host->error(SNAP_EIO,
                        "postgres %s: the connection was lost before the COMMIT was "
                        "acknowledged: the outcome is unknown (saving the same (pid, seq) again "
                        "is safe: it replaces)",
                        b->shards[s].label);
}

/* Where an attempt's results stand. They arrive in the order of the
 * statements sent: BEGIN, the locks, the inserts, the prunes, COMMIT. */
typedef struct cursor {
  size_t first_insert; /* the position of the first insert's result */
  size_t first_prune;  /* of the first prune's */
  size_t commit;       /* of the COMMIT's */
  size_t row_pos;      /* index into idx of the next insert's row */
  size_t prune_pos;    /* and of the next prune's first row */
} cursor;

/* What an attempt's results said, for its conclusion. */
typedef struct outcome {
  enum failure kind; /* the first failing statement */
  int code;          /* its status */
  size_t bad_row;    /* F_ROW: the caller's index of the row refused */
  bool committed;    /* the COMMIT was acknowledged */
} outcome;

/* How reading an attempt's results ended. */
enum ending {
  END_SYNCED,   /* every result and the sync point were read */
  END_LOST,     /* the connection was lost */
  END_UNSYNCED, /* the COMMIT was acknowledged before the sync point was lost */
};

/* A conditional insert's answer (text: rows inserted, the newest seq found):
 * none inserted is a conflict, applied once the attempt commits. */
static void read_condition(snap_backend_row4 *rows, job *j, const PGresult *r, size_t row) {
  if (PQntuples(r) != 1 || PQnfields(r) != 2)
    return;
  rows[row].current_seq = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  j->conflict[row] = strtoll(PQgetvalue(r, 0, 0), NULL, 10) == 0;
}

/* Classifies the result of the n-th statement of an attempt: what a prune
 * removed, the first failure and its kind, an acknowledged COMMIT. */
static void classify_result(snap_pg *b, snap_backend_row4 *rows, job *j, PGresult *r, size_t n,
                            cursor *cu, outcome *o) {
  int s = j->shard;
  bool is_insert = n >= cu->first_insert && n < cu->first_prune;
  if (is_insert)
    while (rows[j->idx[cu->row_pos]].row.status != PENDING)
      cu->row_pos++;
  ExecStatusType st = PQresultStatus(r);
  bool is_prune = n >= cu->first_prune && n < cu->commit && cu->prune_pos < j->k;
  size_t prune_row = is_prune ? j->idx[cu->prune_pos] : 0;
  if (is_prune && st == PGRES_COMMAND_OK)
    j->removed[prune_row] = strtoull(PQcmdTuples(r), NULL, 10);
  if (st == PGRES_FATAL_ERROR && o->kind == F_NONE) {
    o->code = snap__pg_result_error(b, s, r,
                                    n == cu->commit        ? "commit"
                                    : is_insert            ? "insert"
                                    : n >= cu->first_prune ? "prune"
                                                           : "begin");
    if (is_insert && snap__pg_row_error(r)) {
      o->kind = F_ROW;
      o->bad_row = j->idx[cu->row_pos];
    } else if (n >= cu->first_prune && n < cu->commit) {
      o->kind = F_PRUNE;
      if (is_prune) {
        /* The save goes on without it (see conclude_job()); the observer hears why. */
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        report(b, SNAP_EVENT_PRUNE_FAILED, o->code, &rows[prune_row].row, 0,
               msg != NULL ? msg : "the prune failed");
      }
    } else if (n == cu->commit) {
      /* A COMMIT that fails with the session (FATAL: terminated, crashed)
       * may have been made durable before it failed. */
      const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
      o->kind = sev != NULL && strcmp(sev, "ERROR") == 0 ? F_ALL : F_COMMIT;
    } else {
      o->kind = F_ALL;
    }
  }
  if (is_insert && st == PGRES_TUPLES_OK)
    read_condition(rows, j, r, j->idx[cu->row_pos]);
  if (n == cu->commit && st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0)
    o->committed = true;
  if (is_insert)
    cu->row_pos++;
  if (is_prune)
    cu->prune_pos = next_prune(rows, j, cu->prune_pos + 1);
}

/* Reads an attempt's results up to its sync point, classifying each. */
static enum ending recv_results(snap_pg *b, snap_backend_row4 *rows, job *j, int64_t deadline,
                                outcome *o) {
  int s = j->shard;
  PGresult *r;
  if (j->rollback) {
    if (snap__pg_next(b, s, j->c, deadline, &r) != SNAP_OK)
      return END_LOST;
    PQclear(r);
  }
  cursor cu;
  cu.first_insert = 1 + j->nlocks;
  cu.first_prune = cu.first_insert + j->ninserts;
  cu.commit = cu.first_prune + j->nprunes;
  cu.row_pos = 0;
  cu.prune_pos = next_prune(rows, j, 0);
  for (size_t i = 0; i < j->k; i++)
    j->removed[j->idx[i]] = 0;
  for (size_t n = 0; n <= cu.commit; n++) {
    if (snap__pg_next(b, s, j->c, deadline, &r) != SNAP_OK)
      return END_LOST;
    classify_result(b, rows, j, r, n, &cu, o);
    PQclear(r);
  }
  if (snap__pg_next(b, s, j->c, deadline, &r) != SNAP_OK)
    return o->committed ? END_UNSYNCED : END_LOST;
  bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
  PQclear(r);
  if (!sync) {
    j->c->broken = true;
    if (!o->committed) {
      o->code =
          b->host->error(SNAP_EIO, "postgres %s: the pipeline lost its place", b->shards[s].label);
      o->kind = F_ALL;
    }
  }
  return END_SYNCED;
}

/* The attempt committed: its pending rows are stored, but for those whose
 * condition failed. */
static void job_stored(snap_pg *b, snap_backend_row4 *rows, job *j) {
  for (size_t i = 0; i < j->k; i++) {
    snap_backend_row4 *r = &rows[j->idx[i]];
    if (r->row.status != PENDING)
      continue;
    r->row.status = SNAP_OK;
    if (j->conflict[j->idx[i]])
      r->row.status = b->host->error(
          SNAP_ECONFLICT,
          "postgres %s table \"%s\": pid '%s' seq %lld: the newest stored seq is %lld, not the "
          "expected %lld",
          b->shards[j->shard].label, b->table, r->row.pid, (long long)r->row.seq,
          (long long)r->current_seq, (long long)r->expect_seq);
  }
  /* Reported once the COMMIT was acknowledged. */
  for (size_t i = 0; i < j->k; i++)
    if (rows[j->idx[i]].row.status == SNAP_OK && j->removed[j->idx[i]] > 0)
      report(b, SNAP_EVENT_PRUNE, SNAP_OK, &rows[j->idx[i]].row, j->removed[j->idx[i]], NULL);
}

/* The connection was lost while the attempt's results were read. */
static void job_lost(snap_pg *b, snap_backend_row4 *rows, job *j, const outcome *o) {
  /* Everything was sent with the COMMIT: unless a statement before the COMMIT
   * failed (then the transaction cannot have committed), nobody knows whether
   * the server committed before the connection was lost. */
  j->c->broken = true;
  if (o->kind != F_NONE && o->kind != F_COMMIT)
    fail_pending(rows, j,
                 b->host->error(SNAP_EIO,
                                "postgres %s: the connection was lost after a "
                                "failed statement; nothing was stored",
                                b->shards[j->shard].label));
  else
    fail_pending(rows, j, unknown_outcome(b, j->shard));
}

/* Concludes an attempt from what its results said: stored, a row refused
 * alone or a failing prune (another attempt), or every pending row failed
 * with the attempt's status and message. */
static void conclude_job(snap_pg *b, snap_backend_row4 *rows, job *j, enum ending end,
                         const outcome *o) {
  int s = j->shard;
  if (end == END_SYNCED)
    j->rollback = PQtransactionStatus(j->c->pg) == PQTRANS_INERROR;
  j->more = false;
  if (end == END_LOST) {
    job_lost(b, rows, j, o);
    return;
  }
  if (end == END_UNSYNCED || (o->kind == F_NONE && o->committed)) {
    job_stored(b, rows, j);
    return;
  }
  if (o->kind == F_ROW) {
    rows[o->bad_row].row.status = o->code;
    for (size_t i = 0; i < j->k; i++)
      j->more |= rows[j->idx[i]].row.status == PENDING;
    return;
  }
  if (o->kind == F_PRUNE) {
    /* The prune never fails a save: store the rows without it. */
    j->prune = false;
    j->more = true;
    return;
  }
  int code = o->code;
  if (o->kind == F_COMMIT)
    code = unknown_outcome(b, s);
  else if (o->kind == F_NONE) /* no error, yet no COMMIT tag: do not claim it stored */
    code = b->host->error(SNAP_EIO, "postgres %s: the COMMIT was not acknowledged",
                          b->shards[s].label);
  fail_pending(rows, j, code);
}

static void recv_job(snap_pg *b, snap_backend_row4 *rows, job *j, int64_t deadline) {
  outcome o = {F_NONE, SNAP_OK, 0, false};
  enum ending end = recv_results(b, rows, j, deadline, &o);
  conclude_job(b, rows, j, end, &o);
}

/* A put's scratch memory: one block of each kind, the jobs' parts of it. */
typedef struct put_mem {
  size_t *idx;
  uint32_t *keys;
  job *jobs;
  int *shard_of;
  uint64_t *removed;
  bool *last;
  pid_pos *order;
  bool *conflict;
} put_mem;

static void put_mem_free(const snap_host *h, put_mem *m) {
  h->free(m->conflict);
  h->free(m->order);
  h->free(m->last);
  h->free(m->removed);
  h->free(m->idx);
  h->free(m->keys);
  h->free(m->jobs);
  h->free(m->shard_of);
}

static int put_mem_alloc(snap_pg *b, size_t n, put_mem *m) {
  const snap_host *h = b->host;
  m->idx = h->malloc(n * sizeof *m->idx);
  m->keys = h->malloc(n * sizeof *m->keys);
  m->jobs = h->malloc((size_t)b->nshards * sizeof *m->jobs);
  m->shard_of = h->malloc(n * sizeof *m->shard_of);
  m->removed = h->malloc(n * sizeof *m->removed);
  m->last = h->malloc(n * sizeof *m->last);
  m->order = h->malloc(n * sizeof *m->order);
  m->conflict = h->malloc(n * sizeof *m->conflict);
  if (m->idx == NULL || m->keys == NULL || m->jobs == NULL || m->shard_of == NULL ||
      m->removed == NULL || m->last == NULL || m->order == NULL || m->conflict == NULL) {
    put_mem_free(h, m);
    return h->error(SNAP_ENOMEM, "postgres backend: out of memory");
  }
  return SNAP_OK;
}

/* Groups the rows by shard, each group in the caller's order, one job per
 * shard; every row is pending. */
static void plan_jobs(snap_pg *b, snap_backend_row4 *rows, size_t n, uint32_t keep, put_mem *m) {
  job *jobs = m->jobs;
  memset(jobs, 0, (size_t)b->nshards * sizeof *jobs);
  for (size_t i = 0; i < n; i++) {
    m->shard_of[i] = snap__pg_shard_of(snap__pg_slice(rows[i].row.pid), b->nshards);
    jobs[m->shard_of[i]].k++;
    rows[i].row.status = PENDING;
  }
  size_t at = 0;
  for (int s = 0; s < b->nshards; s++) {
    jobs[s].shard = s;
    jobs[s].idx = m->idx + at;
    jobs[s].keys = m->keys + at;
    jobs[s].removed = m->removed;
    jobs[s].last = m->last;
    jobs[s].conflict = m->conflict;
    jobs[s].order = m->order + at;
    jobs[s].prune = keep > 0;
    at += jobs[s].k;
    jobs[s].k = 0;
  }
  for (size_t i = 0; i < n; i++)
    jobs[m->shard_of[i]].idx[jobs[m->shard_of[i]].k++] = i;
  b->host->free(m->shard_of);
  m->shard_of = NULL;
}

/* Takes a connection for every shard with rows, then runs the attempts:
 * every shard's attempt is sent before any is read, so the shards work in
 * parallel. A retry (a row refused alone, a failing prune) is rare. */
static void run_jobs(snap_pg *b, snap_backend_row4 *rows, job *jobs, uint32_t keep) {
  for (int s = 0; s < b->nshards; s++) {
    job *j = &jobs[s];
    if (j->k == 0)
      continue;
    int e = snap__pg_acquire(b, s, &j->c);
    if (e != SNAP_OK)
      fail_pending(rows, j, e);
    else
      j->more = true;
  }
  for (;;) {
    bool any = false;
    int64_t deadline = snap__pg_deadline(b);
    for (int s = 0; s < b->nshards; s++)
      if (jobs[s].more && send_job(b, rows, &jobs[s], keep) == SNAP_OK)
        any = true;
    if (!any)
      break;
    for (int s = 0; s < b->nshards; s++)
      if (jobs[s].sent) {
        jobs[s].sent = false;
        recv_job(b, rows, &jobs[s], deadline);
      }
  }
}

/* Concludes the put: every connection goes back outside any transaction,
 * and the put's status is its first row's failure, if any. */
static int put_conclude(snap_pg *b, const snap_backend_row4 *rows, size_t n, job *jobs) {
  for (int s = 0; s < b->nshards; s++) {
    job *j = &jobs[s];
    if (j->c == NULL)
      continue;
    if (j->rollback && !j->c->broken) {
      /* Leave the connection outside any transaction. */
      int64_t deadline = snap__pg_deadline(b);
      if (snap__pg_send(b, s, j->c, PG_ROLLBACK, 0, NULL, NULL, 0) == SNAP_OK &&
          snap__pg_sync(b, s, j->c) == SNAP_OK)
        (void)snap__pg_drain(b, s, j->c, deadline);
    }
    snap__pg_release(b, s, j->c);
  }
  int first = SNAP_OK;
  for (size_t i = 0; i < n && first == SNAP_OK; i++)
    first = rows[i].row.status;
  return first;
}

int snap__pg_put4(void *self, snap_backend_row4 *rows, size_t n, uint32_t keep) {
  snap_pg *b = self;
  if (n == 0)
    return SNAP_OK;
  put_mem m;
  int e = put_mem_alloc(b, n, &m);
  if (e != SNAP_OK) {
    for (size_t i = 0; i < n; i++)
      rows[i].row.status = e;
    return e;
  }
  plan_jobs(b, rows, n, keep, &m);
  run_jobs(b, rows, m.jobs, keep);
  e = put_conclude(b, rows, n, m.jobs);
  put_mem_free(b->host, &m);
  return e;
}

/* put() of ABI 1 is put4() with no manifest and no condition. */
int snap__pg_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  snap_pg *b = self;
  if (n == 0)
    return SNAP_OK;
  snap_backend_row4 *rows4 = b->host->malloc(n * sizeof *rows4);
  if (rows4 == NULL) {
    int e = b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
    for (size_t i = 0; i < n; i++)
      rows[i].status = e;
    return e;
  }
  for (size_t i = 0; i < n; i++)
    rows4[i] = (snap_backend_row4){rows[i], NULL, SNAP_BACKEND_ANY_SEQ, -1};
  int e = snap__pg_put4(self, rows4, n, keep);
  for (size_t i = 0; i < n; i++)
    rows[i].status = rows4[i].row.status;
  b->host->free(rows4);
  return e;
}
