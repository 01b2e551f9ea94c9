/* The sqlite backend's write path: a put's rows inserted and their pids
 * pruned in one transaction on the writer connection, and deletes. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <sqlite3.h>

#include "internal.h"
#include "snap/sys/backend.h"

/* The rows of a put (`rows`) or of a put4 (`rows4`): one of the two is NULL. */
typedef struct put_rows_of {
  snap_backend_row *rows;
  snap_backend_row4 *rows4;
  const char *stream; /* a streamed row's file (one row of rows4), or NULL */
} put_rows_of;

static snap_backend_row *row_at(const put_rows_of *r, size_t i) {
  return r->rows4 ? &r->rows4[i].row : &r->rows[i];
}

/* Inserts one row with its manifest (may be NULL); `*sqlite_rc` receives
 * SQLite's extended result code. */
static int insert_row(sql_backend *b, conn *c, const snap_backend_row *r, const char *manifest,
                      const char *stream, int *sqlite_rc) {
  sqlite3_stmt *s;
  int e = snap__sqlite_stmt(b, c, stream ? S_INSERT_STREAM : S_INSERT, &s);
  if (e != SNAP_OK)
    return e;
  /* The pid and body outlive the step: no copies. */
  sqlite3_bind_text(s, 1, r->pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, r->seq);
  sqlite3_bind_int64(s, 3, r->timestamp);
  sqlite3_bind_blob64(s, 4, r->body, r->body_len, SQLITE_STATIC);
  long long id = 0;
  if (manifest != NULL && (e = snap__sqlite_manifest_id(b, c, manifest, &id)) != SNAP_OK) {
    *sqlite_rc = sqlite3_extended_errcode(c->db);
    sqlite3_clear_bindings(s);
    return e;
  }
  if (manifest != NULL)
    sqlite3_bind_int64(s, 5, id);
  else
    sqlite3_bind_null(s, 5);
  if (stream != NULL)
    sqlite3_bind_text(s, 6, stream, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    *sqlite_rc = sqlite3_extended_errcode(c->db);
    e = snap__sqlite_error(b, c->db, rc, "insert");
  }
  sqlite3_reset(s);
  return e;
}

/* Prunes `pid` to its `keep` newest rows; `*removed` receives the rows it
 * deleted. One statement: SQLite undoes a failing one by itself, so a
 * failure leaves the saves (and the earlier prunes) of the transaction
 * untouched; it is reported for `seq`, the save that triggered it. */
static int prune_pid(sql_backend *b, conn *c, const char *pid, int64_t seq, uint32_t keep,
                     uint64_t *removed) {
  *removed = 0;
  sqlite3_stmt *s;
  int e = snap__sqlite_stmt(b, c, S_PRUNE, &s);
  if (e != SNAP_OK)
    return e;
  sqlite3_bind_text(s, 1, pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)keep - 1);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    e = snap__sqlite_error(b, c->db, rc, "prune");
    snap__sqlite_report(b, SNAP_EVENT_PRUNE_FAILED, e, pid, seq, 0, sqlite3_errmsg(c->db));
  } else {
    *removed = (uint64_t)sqlite3_changes(c->db);
  }
  sqlite3_reset(s);
  return e;
}

/* Marks every stored row failed with `e` (the transaction is gone). */
static int fail_all(const put_rows_of *rows, size_t n, int e) {
  for (size_t i = 0; i < n; i++)
    row_at(rows, i)->status = e;
  return e;
}

/* A conditional row's check inside the open transaction: SNAP_OK when the
 * pid's newest stored seq is the expected one, SNAP_ECONFLICT (with the seq
 * found in `current_seq`) when not. */
static int check_condition(sql_backend *b, conn *c, snap_backend_row4 *r4, int *sqlite_rc) {
  sqlite3_stmt *s;
  int e = snap__sqlite_stmt(b, c, S_NEWEST_SEQ, &s);
  if (e != SNAP_OK)
    return e;
  sqlite3_bind_text(s, 1, r4->row.pid, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    int64_t cur = sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 0);
    r4->current_seq = cur;
    if (cur != r4->expect_seq)
      e = b->host->error(SNAP_ECONFLICT,
                         "sqlite '%s' table '%s': pid '%s' seq %lld: the newest stored seq is "
                         "%lld, not the expected %lld",
                         snap__sqlite_path(b), b->table, r4->row.pid, (long long)r4->row.seq,
                         (long long)cur, (long long)r4->expect_seq);
  } else {
    *sqlite_rc = sqlite3_extended_errcode(c->db);
    e = snap__sqlite_error(b, c->db, rc, "check the newest seq");
  }
  sqlite3_reset(s);
  return e;
}

/* A row's condition (when it has one), then its insert. */
static int store_row(sql_backend *b, conn *c, const put_rows_of *rows, size_t i, int *sqlite_rc) {
  snap_backend_row4 *r4 = rows->rows4 ? &rows->rows4[i] : NULL;
  int e = SNAP_OK;
  if (r4 != NULL && r4->expect_seq != SNAP_BACKEND_ANY_SEQ)
    e = check_condition(b, c, r4, sqlite_rc);
  if (e == SNAP_OK)
    e = insert_row(b, c, row_at(rows, i), r4 ? r4->manifest : NULL, rows->stream, sqlite_rc);
  return e;
}

/*
 * Writes a batch in one transaction. Every insert is followed by the prune of
 * its pid, as a single save is, rather than pruning once after the whole
 * batch (or after a run of one pid's rows, which a submitter that saves
 * faster than the others makes long): the pages a prune frees are then reused
 * by the very next insert of the same transaction. Rows that later rows of
 * the batch make obsolete are not inserted at all (elide.c). A failing prune
 * never fails a save: pruning stops for the batch, and the next save of the
 * pid catches up.
 */
/* One put's transaction: what its statements did, for its conclusion. */
typedef struct put_txn {
  size_t stored;     /* rows inserted */
  int first;         /* the first row's failure, or SNAP_OK */
  int fatal;         /* a failure after which the transaction is lost, or SNAP_OK */
  bool flagged;      /* the "encrypted" mark was written in it */
  bool pruning;      /* no prune of the put has failed */
  uint64_t *removed; /* by row: what the prune after it removed (NULL: not counted) */
} put_txn;

/* Inserts row `i` (and prunes its pid after) inside the open transaction and
 * classifies each statement's result. No savepoint per row: SQLite undoes a
 * failing statement by itself and keeps the transaction, so a refused row
 * (too big, say) leaves the rows beside it intact. The errors after which
 * SQLite may have rolled back the whole transaction, or advises to (full
 * disk, I/O, memory, busy), end the batch (t->fatal). False when the
 * transaction is over. */
static bool put_one(sql_backend *b, conn *c, const put_rows_of *rows, size_t i, uint32_t keep,
                    put_txn *t) {
  int rc = SQLITE_OK;
  snap_backend_row *row = row_at(rows, i);
  int e = store_row(b, c, rows, i, &rc);
  row->status = e;
  if (e == SNAP_OK) {
    t->stored++;
    if ((row->stages & SNAP_STAGE_ENCRYPTED) && !b->encrypted && !t->flagged) {
      /* Remember in the same transaction that this table now holds
       * encrypted bodies, so that every later process deletes them securely. */
      t->flagged = snap__sqlite_run(b, c, S_MARK, "mark encrypted") == SNAP_OK;
    }
  } else {
    if (t->first == SNAP_OK)
      t->first = e;
    int primary = rc & 0xff;
    if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_NOMEM ||
        primary == SQLITE_BUSY || sqlite3_get_autocommit(c->db)) {
      t->fatal = e;
      return false;
    }
  }
  if (keep > 0 && t->pruning && row->status == SNAP_OK) {
    uint64_t gone = 0;
    t->pruning = prune_pid(b, c, row->pid, row->seq, keep, &gone) == SNAP_OK;
    if (t->removed != NULL)
      t->removed[i] += gone;
    if (sqlite3_get_autocommit(c->db))
      return false; /* the prune's failure took the transaction with it */
  }
  return true;
}

/* Whether a later row of the run at `e` (`m` rows of one pid), one the
 * elided rows counted on, failed. */
static bool cover_failed(const put_rows_of *rows, const snap__sqlite_elision *el,
                         const snap__sqlite_elided *e, size_t m) {
  for (size_t j = 0; j < m; j++)
    if (!el->skip[e[j].row] && row_at(rows, e[j].row)->status != SNAP_OK)
      return true;
  return false;
}

/* Inserts, in order, the elided rows of every pid one of whose later rows
 * failed: they may be among its newest `keep` after all. Inserting all of
 * them is harmless: the prunes leave the same rows as inserting each row in
 * turn would have. False when the transaction is over. */
static bool put_uncovered(sql_backend *b, conn *c, const put_rows_of *rows, uint32_t keep,
                          put_txn *t, snap__sqlite_elision *el) {
  for (size_t s = 0; el->skipped > 0 && s < el->n; s += el->entry[s].run) {
    const snap__sqlite_elided *e = &el->entry[s];
    if (!cover_failed(rows, el, e, e->run))
      continue;
    for (size_t j = 0; j < e->run; j++) {
      if (!el->skip[e[j].row])
        continue;
      el->skip[e[j].row] = 0;
      el->skipped--;
      if (!put_one(b, c, rows, e[j].row, keep, t))
        return false;
    }
  }
  return true;
}

/* The elided rows count as removed by retention: each pid's are reported
 * with the prune of its first stored row (there is one: it covered them). */
static void credit_elided(const put_rows_of *rows, const snap__sqlite_elision *el, put_txn *t) {
  for (size_t s = 0; t->removed != NULL && el->skipped > 0 && s < el->n; s += el->entry[s].run) {
    const snap__sqlite_elided *e = &el->entry[s];
    uint64_t gone = 0;
    size_t first = SIZE_MAX;
    for (size_t j = 0; j < e->run; j++) {
      if (el->skip[e[j].row])
        gone++;
      else if (first == SIZE_MAX && row_at(rows, e[j].row)->status == SNAP_OK)
        first = e[j].row;
    }
    if (gone > 0 && first != SIZE_MAX)
      t->removed[first] += gone;
  }
}

/* Every row of the put inside the open transaction, the elided ones
 * stored as far as their caller can tell. */
static void put_rows(sql_backend *b, conn *c, const put_rows_of *rows, size_t n, uint32_t keep,
                     put_txn *t, snap__sqlite_elision *el) {
  for (size_t i = 0; i < n; i++) {
    if (el->skip != NULL && el->skip[i]) {
      row_at(rows, i)->status = SNAP_OK;
      continue;
    }
    if (!put_one(b, c, rows, i, keep, t))
      return;
  }
  if (el->skipped > 0 && put_uncovered(b, c, rows, keep, t, el))
    credit_elided(rows, el, t);
}

/* Whether removed streamed rows (a prune, a delete, a replace of the same
 * (pid, seq)) left files to delete, asked inside the open transaction right
 * before its COMMIT: it sees what the commit will hold, and a save then
 * needs no read transaction of its own after the commit (its two lock calls
 * on the shared memory were the system calls a save made that raw SQLite's
 * does not). The files go only once the commit is durable (streams.c). */
static bool removed_listed(sql_backend *b, conn *c) {
  sqlite3_stmt *s;
  if (snap__sqlite_stmt(b, c, S_DEAD_LIST, &s) != SNAP_OK)
    return false;
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_ROW;
}

/* Concludes the batch from what put_rows() found: a lost transaction fails
 * every row; no row stored rolls back; otherwise COMMIT, and only then are
 * the prunes reported and the encrypted mark believed. The put's status. */
static int put_conclude(sql_backend *b, conn *c, const put_rows_of *rows, size_t n,
                        put_txn *t) {
  if (t->fatal != SNAP_OK || sqlite3_get_autocommit(c->db)) {
    /* The transaction is lost: nothing of it is stored. */
    int why = t->fatal != SNAP_OK ? t->fatal : t->first != SNAP_OK ? t->first : SNAP_EIO;
    if (!sqlite3_get_autocommit(c->db))
      (void)snap__sqlite_run(b, c, S_ROLLBACK, "rollback");
    return fail_all(rows, n, why);
  }
  if (t->stored == 0) {
    (void)snap__sqlite_run(b, c, S_ROLLBACK, "rollback");
    return t->first;
  }
  bool removed = removed_listed(b, c);
  int e = snap__sqlite_run(b, c, S_COMMIT, "commit");
  if (e != SNAP_OK) {
    if (!sqlite3_get_autocommit(c->db))
      (void)snap__sqlite_run(b, c, S_ROLLBACK, "rollback");
    return fail_all(rows, n, e);
  }
  if (removed)
    snap__sqlite_streams_drain(b, c->db);
  for (size_t i = 0; t->removed != NULL && i < n; i++)
    if (t->removed[i] > 0)
      snap__sqlite_report(b, SNAP_EVENT_PRUNE, SNAP_OK, row_at(rows, i)->pid,
                          row_at(rows, i)->seq, t->removed[i], NULL);
  if (t->flagged)
    b->encrypted = true;
  return t->first;
}

/* A streamed row's removal must be recorded from its insert on: the
 * triggers that do it go in the same transaction, before the row. */
static int stream_triggers(sql_backend *b, conn *c) {
  int rc = snap__sqlite_stream_triggers(b, c->db);
  return rc == SQLITE_OK ? SNAP_OK : snap__sqlite_error(b, c->db, rc, "create the stream triggers");
}

static int put_locked(sql_backend *b, const put_rows_of *rows, size_t n, uint32_t keep) {
  int e = snap__sqlite_writer_ready(b);
  if (e != SNAP_OK)
    return fail_all(rows, n, e);
  conn *c = &b->writer;
  /* A table that is about to hold encrypted bodies deletes securely from the
   * first prune of this very transaction on. */
  bool any_encrypted = false;
  for (size_t i = 0; i < n; i++)
    any_encrypted |= (row_at(rows, i)->stages & SNAP_STAGE_ENCRYPTED) != 0;
  bool secure_raised = any_encrypted && !b->encrypted && b->secure == SECURE_AUTO;
  if (secure_raised)
    (void)snap__sqlite_exec(b, c->db, "PRAGMA secure_delete = ON");
  put_txn t = {0, SNAP_OK, SNAP_OK, false, true, NULL};
  uint64_t removed_stack[16];
  if (keep > 0) {
    t.removed = n <= 16 ? removed_stack : b->host->malloc(n * sizeof *t.removed);
    if (t.removed != NULL)
      memset(t.removed, 0, n * sizeof *t.removed);
  }
  /* A streamed row is a put of its own: nothing to elide. No plan (no
   * memory) inserts every row. */
  snap__sqlite_elision el;
  (void)snap__sqlite_elide_plan(b, rows->rows4 ? &rows->rows4[0].row : rows->rows,
                                rows->rows4 ? sizeof *rows->rows4 : sizeof *rows->rows,
                                rows->rows4 != NULL, n, rows->stream ? 0 : keep, &el);
  if (rows->rows4 != NULL)
    e = snap__sqlite_manifests_prepare(b, c, (const char *const *)&rows->rows4[0].manifest, n,
                                       sizeof rows->rows4[0]);
  if (e != SNAP_OK || (e = snap__sqlite_run(b, c, S_BEGIN, "begin")) != SNAP_OK) {
    fail_all(rows, n, e);
  } else if (rows->stream != NULL && (e = stream_triggers(b, c)) != SNAP_OK) {
    (void)snap__sqlite_run(b, c, S_ROLLBACK, "rollback");
    fail_all(rows, n, e);
  } else {
    put_rows(b, c, rows, n, keep, &t, &el);
    e = put_conclude(b, c, rows, n, &t);
  }
  snap__sqlite_elide_free(b, &el);
  if (t.removed != removed_stack)
    b->host->free(t.removed);
  if (secure_raised && !b->encrypted)
    (void)snap__sqlite_exec(b, c->db, "PRAGMA secure_delete = FAST");
  return e;
}

static int put_any(sql_backend *b, const put_rows_of *rows, size_t n, uint32_t keep) {
  if (n == 0)
    return SNAP_OK;
  pthread_mutex_lock(&b->wlock);
  int e = put_locked(b, rows, n, keep);
  pthread_mutex_unlock(&b->wlock);
  return e;
}

int snap__sqlite_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  return put_any(self, &(put_rows_of){rows, NULL, NULL}, n, keep);
}

/* A conditional row is checked and inserted in the put's BEGIN IMMEDIATE
 * transaction: it holds the database's write lock from its start, so no
 * other connection or process writes between the check and the insert. */
int snap__sqlite_put4(void *self, snap_backend_row4 *rows, size_t n, uint32_t keep) {
  return put_any(self, &(put_rows_of){NULL, rows, NULL}, n, keep);
}

int snap__sqlite_put_stream(sql_backend *b, snap_backend_row4 *row, uint32_t keep,
                            const char *stream) {
  return put_any(b, &(put_rows_of){NULL, row, stream}, 1, keep);
}

int snap__sqlite_remove(void *self, const char *pid, const snap_criteria *cr) {
  sql_backend *b = self;
  pthread_mutex_lock(&b->wlock);
  int e = snap__sqlite_writer_ready(b);
  conn *c = &b->writer;
  if (e == SNAP_OK)
    e = snap__sqlite_run(b, c, S_BEGIN, "begin");
  if (e == SNAP_OK) {
    sqlite3_stmt *s;
    if ((e = snap__sqlite_stmt(b, c, S_REMOVE, &s)) == SNAP_OK) {
      snap__sqlite_bind_selection(s, pid, cr);
      int rc = sqlite3_step(s);
      if (rc != SQLITE_DONE)
        e = snap__sqlite_error(b, c->db, rc, "delete");
      sqlite3_reset(s);
    }
    bool removed = e == SNAP_OK && removed_listed(b, c);
    if (e == SNAP_OK)
      e = snap__sqlite_run(b, c, S_COMMIT, "commit");
    if (e != SNAP_OK && !sqlite3_get_autocommit(c->db))
      (void)snap__sqlite_run(b, c, S_ROLLBACK, "rollback");
    if (e == SNAP_OK && removed)
      snap__sqlite_streams_drain(b, c->db);
  }
  pthread_mutex_unlock(&b->wlock);
  return e;
}
