/* The sqlite backend's write path: a put's rows inserted and their pids
 * pruned in one transaction on the writer connection, and deletes. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <sqlite3.h>

#include "internal.h"
#include "snap/sys/backend.h"

/* Inserts one row; `*sqlite_rc` receives SQLite's extended result code. */
static int insert_row(sql_backend *b, conn *c, const snap_backend_row *r, int *sqlite_rc) {
  sqlite3_stmt *s;
  int e = snap__sqlite_stmt(b, c, S_INSERT, &s);
  if (e != SNAP_OK)
    return e;
  /* The pid and body outlive the step: no copies. */
  sqlite3_bind_text(s, 1, r->pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, r->seq);
  sqlite3_bind_int64(s, 3, r->timestamp);
  sqlite3_bind_blob64(s, 4, r->body, r->body_len, SQLITE_STATIC);
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

/* Marks every stored row of `rows` failed with `e` (the transaction is gone). */
static int fail_all(snap_backend_row *rows, size_t n, int e) {
  for (size_t i = 0; i < n; i++)
    rows[i].status = e;
  return e;
}

/*
 * Writes a batch in one transaction. Every insert is followed by the prune of
 * its pid, as a single save is, rather than pruning once after the whole
 * batch (or after a run of one pid's rows, which a submitter that saves
 * faster than the others makes long): the pages a prune frees are then reused
 * by the very next insert of the same transaction, and rows that a later row
 * of the batch makes obsolete never reach the disk at all. A failing prune
 * never fails a save: pruning stops for the batch, and the next save of the
 * pid catches up.
 */
/* One put's transaction: what its statements did, for its conclusion. */
typedef struct put_txn {
  size_t stored;     /* rows inserted */
  int first;         /* the first row's failure, or SNAP_OK */
  int fatal;         /* a failure after which the transaction is lost, or SNAP_OK */
  bool flagged;      /* the "encrypted" mark was written in it */
  uint64_t *removed; /* by row: what the prune after it removed (NULL: not counted) */
} put_txn;

/* Inserts (and prunes after) each row inside the open transaction and
 * classifies each statement's result. No savepoint per row: SQLite undoes a
 * failing statement by itself and keeps the transaction, so a refused row
 * (too big, say) leaves the rows beside it intact. The errors after which
 * SQLite may have rolled back the whole transaction, or advises to (full
 * disk, I/O, memory, busy), end the batch (t->fatal). */
static void put_rows(sql_backend *b, conn *c, snap_backend_row *rows, size_t n, uint32_t keep,
                     put_txn *t) {
  bool pruning = keep > 0;
  for (size_t i = 0; i < n; i++) {
    int rc = SQLITE_OK;
    int e = insert_row(b, c, &rows[i], &rc);
    rows[i].status = e;
    if (e == SNAP_OK) {
      t->stored++;
      if ((rows[i].stages & SNAP_STAGE_ENCRYPTED) && !b->encrypted && !t->flagged) {
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
        return;
      }
    }
    if (pruning && rows[i].status == SNAP_OK) {
      uint64_t gone = 0;
      pruning = prune_pid(b, c, rows[i].pid, rows[i].seq, keep, &gone) == SNAP_OK;
      if (t->removed != NULL)
        t->removed[i] = gone;
      if (sqlite3_get_autocommit(c->db))
        return; /* the prune's failure took the transaction with it */
    }
  }
}

/* Concludes the batch from what put_rows() found: a lost transaction fails
 * every row; no row stored rolls back; otherwise COMMIT, and only then are
 * the prunes reported and the encrypted mark believed. The put's status. */
static int put_conclude(sql_backend *b, conn *c, snap_backend_row *rows, size_t n, put_txn *t) {
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
  int e = snap__sqlite_run(b, c, S_COMMIT, "commit");
  if (e != SNAP_OK) {
    if (!sqlite3_get_autocommit(c->db))
      (void)snap__sqlite_run(b, c, S_ROLLBACK, "rollback");
    return fail_all(rows, n, e);
  }
  for (size_t i = 0; t->removed != NULL && i < n; i++)
    if (t->removed[i] > 0)
      snap__sqlite_report(b, SNAP_EVENT_PRUNE, SNAP_OK, rows[i].pid, rows[i].seq, t->removed[i],
                          NULL);
  if (t->flagged)
    b->encrypted = true;
  return t->first;
}

static int put_locked(sql_backend *b, snap_backend_row *rows, size_t n, uint32_t keep) {
  int e = snap__sqlite_writer_ready(b);
  if (e != SNAP_OK)
    return fail_all(rows, n, e);
  conn *c = &b->writer;
  /* A table that is about to hold encrypted bodies deletes securely from the
   * first prune of this very transaction on. */
  bool any_encrypted = false;
  for (size_t i = 0; i < n; i++)
    any_encrypted |= (rows[i].stages & SNAP_STAGE_ENCRYPTED) != 0;
  bool secure_raised = any_encrypted && !b->encrypted && b->secure == SECURE_AUTO;
  if (secure_raised)
    (void)snap__sqlite_exec(b, c->db, "PRAGMA secure_delete = ON");
  put_txn t = {0, SNAP_OK, SNAP_OK, false, NULL};
  uint64_t removed_stack[16];
  if (keep > 0) {
    t.removed = n <= 16 ? removed_stack : b->host->malloc(n * sizeof *t.removed);
    if (t.removed != NULL)
      memset(t.removed, 0, n * sizeof *t.removed);
  }
  if ((e = snap__sqlite_run(b, c, S_BEGIN, "begin")) != SNAP_OK) {
    fail_all(rows, n, e);
  } else {
    put_rows(b, c, rows, n, keep, &t);
    e = put_conclude(b, c, rows, n, &t);
  }
  if (t.removed != removed_stack)
    b->host->free(t.removed);
  if (secure_raised && !b->encrypted)
    (void)snap__sqlite_exec(b, c->db, "PRAGMA secure_delete = FAST");
  return e;
}

int snap__sqlite_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  sql_backend *b = self;
  if (n == 0)
    return SNAP_OK;
  pthread_mutex_lock(&b->wlock);
  int e = put_locked(b, rows, n, keep);
  pthread_mutex_unlock(&b->wlock);
  return e;
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
    if (e == SNAP_OK)
      e = snap__sqlite_run(b, c, S_COMMIT, "commit");
    if (e != SNAP_OK && !sqlite3_get_autocommit(c->db))
      (void)snap__sqlite_run(b, c, S_ROLLBACK, "rollback");
  }
  pthread_mutex_unlock(&b->wlock);
  return e;
}
