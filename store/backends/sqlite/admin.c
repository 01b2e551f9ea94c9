/* The sqlite backend's operator operations (backend ABI version 2):
 * enumeration in (pid, seq) order with a resumable cursor, the conditional
 * replace behind re-encryption, and online backups through SQLite's backup
 * API. Statements here run once per page or batch, so they are prepared per
 * call rather than kept on every connection. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Prepares `tpl` with the table name substituted (validated at open). */
static int prepare(sql_backend *b, sqlite3 *db, const char *tpl, sqlite3_stmt **s) {
  char sql[512];
  snprintf(sql, sizeof sql, tpl, snap__sqlite_table(b));
  int rc = sqlite3_prepare_v2(db, sql, -1, s, NULL);
  if (rc != SQLITE_OK) {
    *s = NULL;
    return snap__sqlite_error(b, db, rc, "prepare");
  }
  return SNAP_OK;
}

/* Borrows a reader and prepares `tpl` on it; on failure nothing is held. */
static int reader_prepare(sql_backend *b, const char *tpl, sqlite3 **db, int *token,
                          sqlite3_stmt **s) {
  int e = snap__sqlite_reader(b, db, token);
  if (e == SNAP_OK && (e = prepare(b, *db, tpl, s)) != SNAP_OK)
    snap__sqlite_reader_release(b, *token);
  return e;
}

int snap__sqlite_list_pids(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                        void *ctx) {
  sql_backend *b = self;
  sqlite3 *db;
  int token;
  sqlite3_stmt *s;
  /* Text compares with the BINARY collation (memcmp), i.e. strcmp order. */
  int e = reader_prepare(b,
                         after ? "SELECT DISTINCT pid FROM \"%s\" WHERE pid > ?1 ORDER BY pid "
                                 "LIMIT ?2"
                               : "SELECT DISTINCT pid FROM \"%s\" ORDER BY pid LIMIT ?2",
                         &db, &token, &s);
  if (e != SNAP_OK)
    return e;
  {
    if (after)
      sqlite3_bind_text(s, 1, after, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    int rc;
    while (e == SNAP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
      e = emit(ctx, (const char *)sqlite3_column_text(s, 0));
    if (e == SNAP_OK && rc != SQLITE_DONE)
      e = snap__sqlite_error(b, db, rc, "list pids");
    sqlite3_finalize(s);
  }
  snap__sqlite_reader_release(b, token);
  return e;
}

int snap__sqlite_list_rows(void *self, const char *pid, const char *after_pid, int64_t after_seq,
                        size_t limit, snap_backend_row_emit emit, void *ctx) {
  sql_backend *b = self;
  /* A cursor past the last seq of its pid moves to the next pid. */
  const char *sql;
  int64_t from_seq = INT64_MIN;
  if (pid != NULL) {
    int c = after_pid ? strcmp(pid, after_pid) : 1;
    if (c < 0 || (c == 0 && after_seq == INT64_MAX))
      return SNAP_OK;
    if (c == 0)
      from_seq = after_seq + 1;
    sql = "SELECT pid, seq, ts, body FROM \"%s\" WHERE pid = ?1 AND seq >= ?2 ORDER BY seq "
          "LIMIT ?3";
  } else if (after_pid != NULL) {
    sql = "SELECT pid, seq, ts, body FROM \"%s\" WHERE (pid, seq) > (?1, ?2) ORDER BY pid, seq "
          "LIMIT ?3";
    from_seq = after_seq;
  } else {
    sql = "SELECT pid, seq, ts, body FROM \"%s\" ORDER BY pid, seq LIMIT ?3";
  }
  sqlite3 *db;
  int token;
  sqlite3_stmt *s;
  int e = reader_prepare(b, sql, &db, &token, &s);
  if (e != SNAP_OK)
    return e;
  {
    if (pid != NULL || after_pid != NULL) {
      sqlite3_bind_text(s, 1, pid ? pid : after_pid, -1, SQLITE_STATIC);
      sqlite3_bind_int64(s, 2, from_seq);
    }
    sqlite3_bind_int64(s, 3, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    int rc;
    while (e == SNAP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
      const void *body = sqlite3_column_blob(s, 3);
      size_t len = (size_t)sqlite3_column_bytes(s, 3);
      e = emit(ctx, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1),
               sqlite3_column_int64(s, 2), body, len);
    }
    if (e == SNAP_OK && rc != SQLITE_DONE)
      e = snap__sqlite_error(b, db, rc, "list snapshots");
    sqlite3_finalize(s);
  }
  snap__sqlite_reader_release(b, token);
  return e;
}

/* One conditional update; `*outcome` says what happened. */
static int swap_one(sql_backend *b, sqlite3 *db, sqlite3_stmt *upd, sqlite3_stmt *probe,
                    const snap_backend_swap *w, const char *const *manifest, int *outcome) {
  sqlite3_bind_text(upd, 1, w->pid, -1, SQLITE_STATIC);
  /* replace_typed(): the row's new manifest, by id (NULL binds SQL NULL: none). */
  long long id = 0;
  if (manifest != NULL && *manifest != NULL) {
    int e = snap__sqlite_manifest_id(b, &b->writer, *manifest, &id);
    if (e != SNAP_OK)
      return e;
    sqlite3_bind_int64(upd, 5, id);
  } else if (manifest != NULL) {
    sqlite3_bind_null(upd, 5);
  }
  sqlite3_bind_int64(upd, 2, w->seq);
  sqlite3_bind_blob64(upd, 3, w->body, w->body_len, SQLITE_STATIC);
  sqlite3_bind_blob64(upd, 4, w->expected, w->expected_len, SQLITE_STATIC);
  int rc = sqlite3_step(upd);
  int e = rc == SQLITE_DONE ? SNAP_OK : snap__sqlite_error(b, db, rc, "replace");
  sqlite3_reset(upd);
  if (e != SNAP_OK)
    return e;
  if (sqlite3_changes(db) == 1) {
    *outcome = SNAP_SWAP_DONE;
    return SNAP_OK;
  }
  sqlite3_bind_text(probe, 1, w->pid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(probe, 2, w->seq);
  rc = sqlite3_step(probe);
  if (rc == SQLITE_ROW)
    *outcome = SNAP_SWAP_CHANGED;
  else if (rc == SQLITE_DONE)
    *outcome = SNAP_SWAP_GONE;
  else
    e = snap__sqlite_error(b, db, rc, "replace");
  sqlite3_reset(probe);
  return e;
}

/* The conditional update of swap_rows(): with a manifest (?5), with a
 * stream file (?6) too, or the body alone. */
static const char *update_sql(const char *const *manifests, const char *stream) {
  if (stream != NULL)
    return "UPDATE \"%s\" SET body = ?3, manifest = NULL, manifest_id = ?5, stream = ?6 "
           "WHERE pid = ?1 AND seq = ?2 AND body = ?4";
  if (manifests != NULL)
    return "UPDATE \"%s\" SET body = ?3, manifest = NULL, manifest_id = ?5 "
           "WHERE pid = ?1 AND seq = ?2 AND body = ?4";
  return "UPDATE \"%s\" SET body = ?3 WHERE pid = ?1 AND seq = ?2 AND body = ?4";
}

/* replace() and, with `manifests`, replace_typed(), which also sets the
 * manifest column of each replaced row; with `stream` (one swap, with its
 * manifest), the row's stream file becomes `stream` and the old one's goes
 * (the update trigger of schema step 6 lists it, drained after the commit). */
static int swap_rows(sql_backend *b, snap_backend_swap *sw, const char *const *manifests,
                     size_t n, const char *stream) {
  if (n == 0)
    return SNAP_OK;
  sqlite3 *db;
  sqlite3_stmt *upd = NULL, *probe = NULL;
  bool newly = false, committed = false;
  int e = snap__sqlite_writer(b, &db);
  if (e == SNAP_OK)
    e = prepare(b, db, update_sql(manifests, stream), &upd);
  if (e == SNAP_OK && stream != NULL)
    sqlite3_bind_text(upd, 6, stream, -1, SQLITE_STATIC);
  if (e == SNAP_OK)
    e = prepare(b, db, "SELECT 1 FROM \"%s\" WHERE pid = ?1 AND seq = ?2", &probe);
  if (e == SNAP_OK && manifests != NULL)
    e = snap__sqlite_manifests_prepare(b, &b->writer, manifests, n, sizeof manifests[0]);
  if (e == SNAP_OK && (e = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
    e = snap__sqlite_error(b, db, e, "begin");
  /* A row that becomes streamed needs the triggers that record its file's
   * removal (schema step 7 keeps them only while a row is streamed). */
  int trc = SQLITE_OK;
  if (e == SNAP_OK && stream != NULL &&
      (trc = snap__sqlite_stream_triggers(b, db)) != SQLITE_OK) {
    e = snap__sqlite_error(b, db, trc, "create the stream triggers");
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  }
  if (e == SNAP_OK) {
    /* The comparison and the write happen under the write lock of one
     * transaction: no save or delete can come between them. */
    bool encrypted = false;
    for (size_t i = 0; i < n && e == SNAP_OK; i++) {
      sw[i].status = SNAP_OK;
      e = swap_one(b, db, upd, probe, &sw[i], manifests ? &manifests[i] : NULL,
                   &sw[i].outcome);
      encrypted |= sw[i].outcome == SNAP_SWAP_DONE && (sw[i].stages & SNAP_STAGE_ENCRYPTED);
    }
    if (e == SNAP_OK && encrypted)
      newly = snap__sqlite_mark_encrypted(b);
    if (e == SNAP_OK) {
      int rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
      if (rc != SQLITE_OK)
        e = snap__sqlite_error(b, db, rc, "commit");
      else
        committed = true;
    }
    if (!committed && !sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    snap__sqlite_encrypted_done(b, newly, committed);
    if (committed && stream != NULL)
      snap__sqlite_streams_drain(b, db); /* the replaced stream's file */
  }
  sqlite3_finalize(upd);
  sqlite3_finalize(probe);
  snap__sqlite_writer_release(b);
  if (e != SNAP_OK)
    for (size_t i = 0; i < n; i++)
      sw[i].status = e; /* the transaction is gone: nothing of it is stored */
  return e;
}

int snap__sqlite_replace(void *self, snap_backend_swap *sw, size_t n) {
  return swap_rows(self, sw, NULL, n, NULL);
}

int snap__sqlite_replace_typed(void *self, snap_backend_swap *sw, const char *const *manifests,
                               size_t n) {
  return swap_rows(self, sw, manifests, n, NULL);
}

int snap__sqlite_swap_stream(sql_backend *b, snap_backend_swap *w, const char *manifest,
                             const char *stream) {
  return swap_rows(b, w, &manifest, 1, stream);
}

int snap__sqlite_backup(void *self, const char *path) {
  sql_backend *b = self;
  const snap_host *h = snap__sqlite_host(b);
  sqlite3 *src;
  int token;
  int e = snap__sqlite_reader(b, &src, &token);
  if (e != SNAP_OK)
    return e;
  sqlite3 *dst = NULL;
  int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) {
    e = h->error(SNAP_EIO, "backup of '%s' to '%s': cannot create the file: %s", snap__sqlite_path(b),
                 path, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
  } else {
    /* All pages in one step: one read transaction, so the copy is the
     * database as of one instant; WAL lets writers go on meanwhile. */
    sqlite3_backup *bk = sqlite3_backup_init(dst, "main", src, "main");
    if (bk == NULL) {
      e = h->error(SNAP_EIO, "backup of '%s' to '%s': %s", snap__sqlite_path(b), path,
                   sqlite3_errmsg(dst));
    } else {
      rc = sqlite3_backup_step(bk, -1);
      int fin = sqlite3_backup_finish(bk);
      if (rc != SQLITE_DONE || fin != SQLITE_OK)
        e = snap__sqlite_error(b, dst, rc != SQLITE_DONE ? rc : fin, "backup");
    }
    /* The chunk files of streamed rows, which live beside the database. */
    if (e == SNAP_OK)
      e = snap__sqlite_streams_backup(b, dst, path);
    if (e == SNAP_OK &&
        (rc = sqlite3_exec(dst, "PRAGMA journal_mode = WAL", NULL, NULL, NULL)) != SQLITE_OK)
      e = snap__sqlite_error(b, dst, rc, "backup: journal mode");
  }
  sqlite3_close(dst);
  snap__sqlite_reader_release(b, token);
  if (e != SNAP_OK) {
    /* No half-written copy that could be mistaken for a backup. */
    char side[4096];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-journal", path);
    unlink(side);
    snap__sqlite_streams_backup_undo(path);
  }
  return e;
}
