/* Shared by the sqlite backend's files (never installed): the backend's
 * state, and what each file uses of the others:
 *   sqlite.c    errors, configuration, open/close, load, the operations table
 *   conn.c      connections, prepared statements, the reader pool
 *   schema.c    the schema's versions and numbered upgrade steps
 *   write.c     the write path: put (insert and prune), delete
 *   elide.c     the rows of a put that its own prunes would delete
 *   read.c      read-only connections
 *   admin.c     ABI version 2: enumeration, conditional replace, backup
 *   settings.c  settings kept with the data set
 *   keys.c      ABI version 4: the key table of envelope encryption
 *   dicts.c     ABI version 4: the dictionary table of zstd compression
 *   streams.c   ABI versions 6 and 7: streamed snapshots (chunk files beside the
 *               database)
 *   scope.c     ABI version 8: read scopes (several loads in one read transaction) */
#ifndef SNAP_BACKEND_SQLITE_INTERNAL_H
#define SNAP_BACKEND_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "snap/sys/backend.h"

typedef struct sql_backend sql_backend;

/* The backend's state: sqlite.c opens and closes it, conn.c and write.c use it. */
#define TABLE_MAX 64
#define READERS 4

enum secure_mode { SECURE_AUTO, SECURE_ON, SECURE_OFF, SECURE_FAST };

enum stmt_id {
  S_BEGIN,
  S_COMMIT,
  S_ROLLBACK,
  S_INSERT,
  S_PRUNE,
  S_MARK,
  S_LOAD,
  S_LOAD_NEWEST,
  S_REMOVE,
  S_NEWEST_SEQ,
  S_LOAD_MANIFEST,
  S_MANIFEST_ADD,
  S_MANIFEST_ID,
  S_INSERT_STREAM,
  S_DEAD_LIST,
  S_BEGIN_READ,
  S_COUNT
};

typedef struct conn {
  sqlite3 *db;
  sqlite3_stmt *stmt[S_COUNT];
} conn;

/* The writer's cache of manifest ids (manifests.c): ids are never reused or
 * removed, so an id read from a committed row stays right for the file's
 * life. Names longer than a slot are looked up every time. */
#define MANIFEST_CACHE 32
#define MANIFEST_NAME_MAX 255

typedef struct manifest_slot {
  long long id;
  char name[MANIFEST_NAME_MAX + 1];
} manifest_slot;

typedef struct manifest_cache {
  manifest_slot slot[MANIFEST_CACHE];
  unsigned used; /* slots filled */
  unsigned next; /* the slot the next miss replaces once all are used */
} manifest_cache;

struct sql_backend {
  const snap_host *host;
  char *path;
  char table[TABLE_MAX + 1];
  bool sync_full;
  bool read_only; /* "read_only": no writer, ever */
  int busy_ms;
  unsigned long max_pages; /* PRAGMA max_page_count on every connection; 0 = SQLite's */
  enum secure_mode secure;
  char *sql[S_COUNT];

  /* The writer: its connection, the schema check and the encrypted flag. */
  pthread_mutex_t wlock;
  conn writer;
  bool encrypted;     /* the table holds (or held) encrypted bodies: secure_delete on */
  manifest_cache manifests; /* under wlock */
  atomic_int ready;   /* schema checked by the writer */
  atomic_int read_ok; /* schema checked by a reader: loads need no writer */

  /* Reader pool. */
  pthread_mutex_t plock;
  pthread_cond_t pcond;
  conn readers[READERS];
  bool busy[READERS];
  int scoped; /* readers held by read scopes (scope.c); under plock */
};

/* ---- sqlite.c ---- */

/* Tells the host's observer and metrics (hosts of ABI version 2 and later). */
void snap__sqlite_report(const sql_backend *b, int kind, int status, const char *pid, int64_t seq,
                         uint64_t count, const char *detail);
/* Whether `path` is a regular file or nothing yet (a FIFO would block). */
bool snap__sqlite_regular_or_absent(const char *path);
/* Binds ?1 = pid and ?2..?5 = the criteria of the load and remove statements. */
void snap__sqlite_bind_selection(sqlite3_stmt *s, const char *pid, const snap_criteria *cr);

/* ---- conn.c ---- */

void snap__sqlite_conn_close(conn *c);
/* Runs `sql` on `db`; a failure is mapped by snap__sqlite_error(). */
int snap__sqlite_exec(const sql_backend *b, sqlite3 *db, const char *sql);
/* The connection's prepared statement `id`, prepared on first use. */
int snap__sqlite_stmt(const sql_backend *b, conn *c, enum stmt_id id, sqlite3_stmt **out);
/* Runs a prepared statement without results. */
int snap__sqlite_run(const sql_backend *b, conn *c, enum stmt_id id, const char *what);
/* Opens the writer and checks the schema on first use. Writer lock held. */
int snap__sqlite_writer_ready(sql_backend *b);
/* What loads and enumeration need before their first read: our schema. */
int snap__sqlite_read_ready(sql_backend *b);
/* Takes a connection of the reader pool (opened on first use) / gives it back. */
int snap__sqlite_pool_take(sql_backend *b, conn **out);
void snap__sqlite_pool_give(sql_backend *b, conn *c);

/* ---- scope.c ---- */

/* read_scope_begin() / read_scope_end() (backend ABI version 8). */
int snap__sqlite_scope_begin(void *self);
void snap__sqlite_scope_end(void *self);
/* The reader of the calling thread's read scope on `b`, or NULL. */
conn *snap__sqlite_scoped(const sql_backend *b);

/* ---- schema.c ---- */

/* The versions of a database and of the configured table's data set. */
typedef struct snap_sqlite_versions {
  int database;   /* PRAGMA user_version: the highest any snapstore wrote here */
  int table;      /* snapstore_meta 'schema_version:<table>' (1 when unrecorded; 0: no table) */
  bool has_table; /* the data table exists */
  bool recorded;  /* the 'schema_version:<table>' row exists */
} snap_sqlite_versions;

/* Whether a writer has work to do: an older version, or one not recorded. */
bool snap__sqlite_schema_behind(const snap_sqlite_versions *v);

/* The schema version this code writes: the last upgrade step's number. */
int snap__sqlite_schema_version(void);
/* Reads the versions on any connection (a reader's will do). */
int snap__sqlite_schema_read(const sql_backend *b, sqlite3 *db, snap_sqlite_versions *out);
/* SNAP_EFORMAT naming both versions when either is newer than ours; else SNAP_OK. */
int snap__sqlite_schema_newer(const sql_backend *b, const snap_sqlite_versions *v);
/* The refusal of a read-only store to use a missing or older data set. */
int snap__sqlite_schema_stale(const sql_backend *b, const snap_sqlite_versions *v);
/* On the writer: one BEGIN IMMEDIATE transaction that checks the versions,
 * runs the upgrade steps the data set lacks, records the new versions and
 * reads the encrypted flag. Writer lock held. */
int snap__sqlite_schema_init(sql_backend *b);
/* Creates the triggers that record a removed streamed row's file in
 * "<table>_dead" (schema step 6), unless they exist. They exist only while the
 * data set holds a streamed row (step 7), so every transaction that inserts
 * a streamed row runs this first. Returns SQLite's result code. */
int snap__sqlite_stream_triggers(const sql_backend *b, sqlite3 *db);

/* ---- write.c ---- */

/* The put, put4 and remove slots. */
int snap__sqlite_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep);
int snap__sqlite_put4(void *self, snap_backend_row4 *rows, size_t n, uint32_t keep);
int snap__sqlite_remove(void *self, const char *pid, const snap_criteria *cr);
/* put4() of one streamed row whose stream column names `stream` (streams.c). */
int snap__sqlite_put_stream(sql_backend *b, snap_backend_row4 *row, uint32_t keep,
                            const char *stream);

/* ---- elide.c ---- */

/* One row of a put in the plan's order: by pid, then by position. */
typedef struct snap__sqlite_elided {
  const char *pid;
  uint32_t row; /* its index in the put */
  uint32_t run; /* on the first entry of a pid: how many rows of the put it has; else 0 */
} snap__sqlite_elided;

/* The rows of a put that retention deletes before the put commits. */
typedef struct snap__sqlite_elision {
  snap__sqlite_elided *entry; /* n entries, each pid's rows together; NULL: no plan */
  uint8_t *skip;              /* by row: 1 when it is not to be inserted */
  size_t n;
  size_t skipped; /* rows marked in skip */
} snap__sqlite_elision;

/* Row `i` of rows `stride` bytes apart (a put's rows, or a put4's). */
static inline const snap_backend_row *snap__sqlite_row_of(const snap_backend_row *rows,
                                                          size_t stride, size_t i) {
  return (const snap_backend_row *)(const void *)((const char *)rows + i * stride);
}

/* Plans which of the `n` rows (`stride` apart; `conditional`: they are
 * put4 rows, whose expect_seq counts) a put with retention `keep` need not
 * insert: a row with at least `keep` later rows of its pid, of greater seqs,
 * in the same put. SNAP_OK, or SNAP_ENOMEM with no plan (`el` empty: every
 * row inserted). Free with snap__sqlite_elide_free(). */
int snap__sqlite_elide_plan(sql_backend *b, const snap_backend_row *rows, size_t stride,
                            bool conditional, size_t n, uint32_t keep, snap__sqlite_elision *el);
void snap__sqlite_elide_free(sql_backend *b, snap__sqlite_elision *el);

/* ---- manifests.c ---- */

/* Writer lock held, outside a transaction: makes sure each manifest of
 * `names` (NULL entries skipped; `stride` bytes apart, the first at `names`)
 * has an id, adding the new ones in a transaction of their own, so that the
 * ids a put binds are committed whatever becomes of the put. */
int snap__sqlite_manifests_prepare(sql_backend *b, conn *c, const char *const *names, size_t n,
                                   size_t stride);
/* Writer lock held, inside the writer's transaction: the id of `name`. */
int snap__sqlite_manifest_id(sql_backend *b, conn *c, const char *name, long long *id);

/* ---- for admin.c and settings.c ---- */

const snap_host *snap__sqlite_host(const sql_backend *b);
const char *snap__sqlite_table(const sql_backend *b);
const char *snap__sqlite_path(const sql_backend *b);

/* Maps a SQLite failure to a status with a message naming path and table. */
int snap__sqlite_error(const sql_backend *b, sqlite3 *db, int rc, const char *what);

/* Borrows a reader connection (schema ready); give it back with the token. */
int snap__sqlite_reader(sql_backend *b, sqlite3 **db, int *token);
void snap__sqlite_reader_release(sql_backend *b, int token);

/* Takes the writer (schema ready) under the process-local write lock; the
 * lock is held even on failure until snap__sqlite_writer_release(). */
int snap__sqlite_writer(sql_backend *b, sqlite3 **db);
void snap__sqlite_writer_release(sql_backend *b);

/* Inside the writer's open transaction: records, as a put does, that the
 * table now holds encrypted bodies. Returns whether it was newly recorded;
 * pass that to snap__sqlite_encrypted_done() with the transaction's outcome. */
bool snap__sqlite_mark_encrypted(sql_backend *b);
void snap__sqlite_encrypted_done(sql_backend *b, bool newly, bool committed);

/* Opens a read-only connection to `path` (read.c): never writes, never
 * switches the journal mode. With `may_write` (a store that may write) a hot
 * journal is rolled back first by a read-write connection. Falls back to an
 * immutable open only when the -wal/-shm files cannot be created, no -wal or
 * -journal content exists, and the media is read-only or `may_write` is
 * false. Returns SQLite's result; `*out` may be set even on failure (for the
 * message) and must then be closed. */
int snap__sqlite_open_read(const char *path, int busy_ms, bool may_write, sqlite3 **out);

/* ABI version 2 operations (admin.c). */
int snap__sqlite_list_pids(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                        void *ctx);
int snap__sqlite_list_rows(void *self, const char *pid, const char *after_pid, int64_t after_seq,
                        size_t limit, snap_backend_row_emit emit, void *ctx);
int snap__sqlite_replace(void *self, snap_backend_swap *sw, size_t n);
/* replace_typed() of one row that also names the stream file `stream`
 * (admin.c, for stream_replace()); the old file goes after the commit. */
int snap__sqlite_swap_stream(sql_backend *b, snap_backend_swap *w, const char *manifest,
                             const char *stream);
/* ABI 5: replace() that also sets each replaced row's manifest column. */
int snap__sqlite_replace_typed(void *self, snap_backend_swap *sw, const char *const *manifests,
                               size_t n);
int snap__sqlite_backup(void *self, const char *path);

/* Settings kept with the data set (settings.c). */
int snap__sqlite_setting(void *self, const char *name, int mode, int64_t *value);

/* A write transaction on the writer (BEGIN IMMEDIATE): on success end it
 * with snap__sqlite_txn_end(), which commits when `e` is SNAP_OK and rolls
 * back otherwise, and releases the writer (keys.c). */
int snap__sqlite_txn_begin(sql_backend *b, sqlite3 **db);
int snap__sqlite_txn_end(sql_backend *b, sqlite3 *db, int e);
/* Prepares `tpl` with its %s replaced by the data set's table name; a failure
 * is reported as `what` (keys.c). */
int snap__sqlite_prepare_tpl(sql_backend *b, sqlite3 *db, const char *tpl, sqlite3_stmt **s,
                             const char *what);

/* ABI version 4: the dictionary table (dicts.c). */
int snap__sqlite_dict_put(void *self, const snap_backend_dict *d);
int snap__sqlite_dict_get(void *self, uint32_t id, const char *name, snap_backend_dict_emit emit,
                          void *ctx);
int snap__sqlite_dict_remove(void *self, uint32_t id);

/* ABI version 4: the key table (keys.c). */
const char *snap__sqlite_dataset(void *self);
int snap__sqlite_key_get(void *self, const char *unit, snap_backend_key_emit emit, void *ctx);
int snap__sqlite_key_create(void *self, const snap_backend_key *k, snap_backend_key_emit emit,
                            void *ctx);
int snap__sqlite_key_forget(void *self, const char *unit, uint32_t *generation);
int snap__sqlite_key_list(void *self, const char *after, size_t limit, snap_backend_key_emit emit,
                          void *ctx);
int snap__sqlite_key_rewrap(void *self, snap_backend_key_swap *sw, size_t n);
int snap__sqlite_key_replace(void *self, const snap_backend_key_change *c);

/* An I/O failure on a stream file, with errno `err`, as a status naming it (streams.c). */
int snap__sqlite_stream_io_error(const sql_backend *b, int err, const char *what, const char *file);

/* ABI version 6: streamed snapshots (streams.c). */
int snap__sqlite_stream_begin(void *self, const char *pid, int64_t seq,
                              snap_backend_stream **out);
int snap__sqlite_stream_write(void *self, snap_backend_stream *s, const void *record, size_t len);
int snap__sqlite_stream_publish(void *self, snap_backend_stream *s, snap_backend_row4 *row,
                                uint32_t keep);
void snap__sqlite_stream_abort(void *self, snap_backend_stream *s);
int snap__sqlite_stream_open(void *self, const char *pid, int64_t seq, const void *head,
                             size_t head_len, snap_backend_reader **out);
int snap__sqlite_stream_next(void *self, snap_backend_reader *r, const void **record,
                             size_t *len);
void snap__sqlite_stream_close(void *self, snap_backend_reader *r);
/* ABI version 7: a staged stream published in place of a row still holding
 * the expected body (streams.c). */
int snap__sqlite_stream_replace(void *self, snap_backend_stream *s, snap_backend_swap *w,
                                const char *manifest);
int snap__sqlite_stream_sweep(void *self, uint64_t max, uint64_t *reclaimed);
/* After a commit on the writer: unlinks the files of removed streamed rows.
 * Writer lock held. */
void snap__sqlite_streams_drain(sql_backend *b, sqlite3 *db);
/* A backup's chunk files: those the copy `dst` (written to `path`) names,
 * linked or copied to "<path>.streams"; undone by the _undo. */
int snap__sqlite_streams_backup(const sql_backend *b, sqlite3 *dst, const char *path);
void snap__sqlite_streams_backup_undo(const char *path);
/* The reclaim a writer does when it first opens: a bounded sweep. */
void snap__sqlite_streams_open_sweep(sql_backend *b);

#endif
