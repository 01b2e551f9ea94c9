/* Shared by the sqlite backend's files (never installed): what the
 * operator operations of ABI version 2 (admin.c) need from the
 * core of the backend (sqlite.c). */
#ifndef SNAP_BACKEND_SQLITE_INTERNAL_H
#define SNAP_BACKEND_SQLITE_INTERNAL_H

#include <stdbool.h>
#include <sqlite3.h>

#include "snap/sys/backend.h"

typedef struct sql_backend sql_backend;

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
int snap__sqlite_backup(void *self, const char *path);

/* Settings kept with the data set (settings.c). */
int snap__sqlite_setting(void *self, const char *name, int mode, int64_t *value);

#endif
