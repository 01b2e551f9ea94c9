/* The "postgres" backend's internal declarations, shared by its files:
 *   postgres.c  the operations table, configuration, open/close, load/remove
 *   put.c       the write path: a put's pipelined transaction per shard
 *   shard.c     the slice function and the slice-to-shard map
 *   pool.c      connections: connect with a deadline, pool, schema
 *   sql.c       statements, pipelined I/O with deadlines, errors
 *   schema.c    the schema's version and its numbered upgrade steps
 *   admin.c     ABI version 2: enumeration and conditional replace
 *   settings.c  ABI version 2: settings kept with the data set
 *   exec.c      statements with binary parameters outside the prepared set
 *   keys.c      ABI version 4: the key table of envelope encryption
 *   dicts.c     ABI version 4: the dictionary table of zstd compression
 *   streams.c   ABI version 6: chunk records of streamed snapshots (staging,
 *               publish, the sweep of dead writers' staging)
 *   streams_read.c  ABI version 6: readers of streamed snapshots
 * The schema, the slice function and the fault semantics are in docs/POSTGRES.md.
 * Nothing here is installed; like a third-party backend, this folder sees
 * only the backend ABI (snap/sys/backend.h) and the public headers. */
#ifndef SNAP_BACKEND_POSTGRES_H
#define SNAP_BACKEND_POSTGRES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "snap/sys/backend.h"

/** The schema version this code writes (snapstore_meta, 'schema_version:<table>'):
 *  the number of the last upgrade step of schema.c, which lists them. */
#define SNAP_PG_SCHEMA_VERSION 6
/** PostgreSQL identifiers are at most 63 bytes. */
#define SNAP_PG_TABLE_MAX 63
/** Type OIDs of parameters (pg_type.h is a server header). */
#define SNAP_PG_OID_BYTEA 17
#define SNAP_PG_OID_INT8 20
#define SNAP_PG_OID_INT4 23
#define SNAP_PG_OID_TEXT 25
#define SNAP_PG_OID_BYTEA_ARRAY 1001
#define SNAP_PG_OID_TEXT_ARRAY 1009
#define SNAP_PG_OID_INT8_ARRAY 1016
/** The number of slices; fixed forever (docs/POSTGRES.md). */
#define SNAP_PG_SLICES 1024u

/** The prepared statements of every connection. */
enum snap_pg_stmt {
  PG_BEGIN,
  PG_COMMIT,
  PG_ROLLBACK,
  PG_INSERT,
  PG_PRUNE,
  PG_NEWEST,
  PG_LOAD,
  PG_REMOVE,
  PG_LOCK,
  PG_PIDS,
  PG_ROWS,
  PG_ROWS_PID,
  PG_SWAP,
  PG_INSERT_IF,
  PG_LOAD_MANIFEST,
  PG_SWAP_TYPED,
  PG_STMT_COUNT
};

/** One connection; it lives in pipeline mode from connect to close. */
typedef struct snap_pg_conn {
  PGconn *pg;
  struct snap_pg_conn *next; /* the shard's idle list */
  bool broken;               /* lost or out of step: closed on release */
} snap_pg_conn;

/** One database of the sharded store and its pool of connections. */
typedef struct snap_pg_shard {
  char *conninfo;  /* owned; never printed: it may hold a password */
  char label[192]; /* "shard 1/3 (host=... port=... dbname=...)": safe to print */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  snap_pg_conn *idle;
  int open;              /* connections open or being opened */
  pthread_mutex_t ddl;   /* one schema check per shard at a time */
  atomic_int ready;      /* the schema was checked on this shard */
  atomic_int swept;      /* the reclaim at open was done on this shard */
} snap_pg_shard;

/** The backend instance. */
typedef struct snap_pg {
  const snap_host *host;
  char table[SNAP_PG_TABLE_MAX + 1];
  char keys[SNAP_PG_TABLE_MAX + 1];  /* the key table: "<table>_keys" (docs/POSTGRES.md) */
  char dicts[SNAP_PG_TABLE_MAX + 1]; /* the dictionary table: "<table>_dicts" */
  char chunks[SNAP_PG_TABLE_MAX + 1];  /* the chunk records of streams: "<table>_chunks" */
  char staging[SNAP_PG_TABLE_MAX + 1]; /* the streams being written: "<table>_staging" */
  char unchunk[SNAP_PG_TABLE_MAX + 1]; /* the trigger function: "<table>_unchunk" */
  int pool_size;
  int connect_ms;
  int statement_ms; /* 0: no statement timeout and no client deadline */
  int nshards;
  snap_pg_shard *shards;
  uint32_t lock_class; /* first key of the per-pid advisory locks: FNV-1a of the table name */
  uint32_t stream_class; /* first key of the writers' leases (streams.c) */
  bool no_create;      /* SNAP_BACKEND_NO_CREATE: a missing schema is SNAP_ENOTFOUND */
  char *sql[PG_STMT_COUNT];
} snap_pg;

/* ---- shard.c ---- */

/** FNV-1a (32 bits) of the pid's bytes, modulo SNAP_PG_SLICES. */
uint32_t snap__pg_slice(const char *pid);
/** FNV-1a (32 bits) of a string's bytes. */
uint32_t snap__pg_fnv1a(const char *s);
/** The shard of a slice: floor(slice * nshards / SNAP_PG_SLICES). */
int snap__pg_shard_of(uint32_t slice, int nshards);

/* ---- pool.c ---- */

/** Takes a healthy connection of shard `s` (opening one when the pool has room). */
int snap__pg_acquire(snap_pg *b, int s, snap_pg_conn **out);
/** Returns a connection to its shard's pool (closing it when it is broken). */
void snap__pg_release(snap_pg *b, int s, snap_pg_conn *c);
/** Opens a connection of shard `s` outside the pool (schema checked,
 *  statements prepared), for a stream that keeps it from begin to end. */
int snap__pg_connect(snap_pg *b, int s, snap_pg_conn **out);
/** Closes a connection opened by snap__pg_connect() (NULL: no-op). */
void snap__pg_disconnect(snap_pg *b, snap_pg_conn *c);
/** Closes every idle connection and frees the shards. */
void snap__pg_pool_free(snap_pg *b);
/** Fills the label of shard `s` from its conninfo (host, port, dbname only). */
int snap__pg_shard_init(snap_pg *b, int s, const char *conninfo);

/* ---- sql.c ---- */

/** Builds the statements' text for the configured table. */
int snap__pg_build_sql(snap_pg *b);
/** The name of a prepared statement. */
const char *snap__pg_stmt_name(enum snap_pg_stmt id);
/** Sets the session's statement timeout and prepares every statement on `c`. */
int snap__pg_prepare_all(snap_pg *b, int s, snap_pg_conn *c);
/** Sends one statement with text results and at most one text parameter. */
int snap__pg_send_text(snap_pg *b, int s, snap_pg_conn *c, const char *sql, const char *param);
/** Reads a segment's results up to its sync: the first failure, and a
 *  single-value SELECT's value in `*value` (-1: no row; may be NULL). */
int snap__pg_read_results(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline, int64_t *value);

/* ---- schema.c ---- */

/** Creates, checks or upgrades the schema of shard `s` over `c` (once per shard). */
int snap__pg_schema(snap_pg *b, int s, snap_pg_conn *c);

/** The client deadline of an operation starting now (ms on CLOCK_MONOTONIC; INT64_MAX: none). */
int64_t snap__pg_deadline(const snap_pg *b);
/** Milliseconds on CLOCK_MONOTONIC. */
int64_t snap__pg_now_ms(void);

/**
 * Flushes what was sent and waits for the next result of a pipeline. `*res`
 * receives it (never NULL on SNAP_OK); the NULL that ends a command's results is
 * consumed too. A lost connection or a passed deadline marks `c` broken and
 * returns SNAP_EIO naming shard `s`.
 */
int snap__pg_next(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline, PGresult **res);
/** Reads results up to and including the pipeline's sync point. */
int snap__pg_drain(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline);
/** Sends a prepared statement with binary parameters (see the .c for the types). */
int snap__pg_send(snap_pg *b, int s, snap_pg_conn *c, enum snap_pg_stmt id, int n,
                  const char *const *values, const int *lengths, int result_binary);
/** Ends a pipeline segment (PQpipelineSync). */
int snap__pg_sync(snap_pg *b, int s, snap_pg_conn *c);

/** Maps a failed result to a SNAP_E* code and records its message. */
int snap__pg_result_error(snap_pg *b, int s, const PGresult *r, const char *what);
/** SNAP_EIO for a connection that failed, with libpq's message. */
int snap__pg_conn_error(snap_pg *b, int s, snap_pg_conn *c, const char *what);
/** Whether a failed statement's SQLSTATE is about that row alone (data, constraint, limit). */
bool snap__pg_row_error(const PGresult *r);

/** Runs one prepared statement with binary results on shard `s` (its own
 *  pipeline segment; a lost connection is retried once on a fresh one) and
 *  returns its PGresult (PGRES_TUPLES_OK) in `*out`, for the caller to PQclear(). */
int snap__pg_query(snap_pg *b, int s, enum snap_pg_stmt id, int n, const char *const *values,
                   const int *lengths, PGresult **out);

/* ---- admin.c ---- */

int snap__pg_list_pids(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                       void *ctx);
int snap__pg_list_rows(void *self, const char *pid, const char *after_pid, int64_t after_seq,
                       size_t limit, snap_backend_row_emit emit, void *ctx);
int snap__pg_replace(void *self, snap_backend_swap *swaps, size_t n);
int snap__pg_replace_typed(void *self, snap_backend_swap *swaps, const char *const *manifests,
                           size_t n);

/* ---- exec.c ---- */

/** One statement with binary parameters (at most SNAP_PG_MAX_PARAMS; a NULL
 *  value is SQL NULL) of the given types. */
#define SNAP_PG_MAX_PARAMS 8
typedef struct snap_pg_stmt_args {
  const char *sql;
  int n;
  const Oid *types;
  const char *const *values;
  const int *lengths;
} snap_pg_stmt_args;

/** Runs `n` statements as one pipeline segment on shard `s` (in BEGIN ...
 *  COMMIT when `txn`), binary results. The result of statement `keep` (-1:
 *  none; it must return rows) goes to `*out` for the caller to PQclear().
 *  With `retry` (reads), a connection lost under it is retried once on a
 *  fresh one. A lost connection after a COMMIT was sent is SNAP_EIO saying
 *  the outcome is unknown. */
int snap__pg_run(snap_pg *b, int s, const snap_pg_stmt_args *st, int n, bool txn, int keep,
                 bool retry, PGresult **out);
/** snap__pg_run() on a connection the caller holds (no retry). */
int snap__pg_run_on(snap_pg *b, int s, snap_pg_conn *c, const snap_pg_stmt_args *st, int n,
                    bool txn, int keep, PGresult **out);
/** Runs one read statement on every shard at once (sent to each before any
 *  answer is read): `out[s]` receives shard s's rows, for the caller to
 *  PQclear(). A shard that fails is asked again alone, as snap__pg_run()
 *  with `retry` does; the first failure is returned. */
int snap__pg_run_each(snap_pg *b, const snap_pg_stmt_args *st, PGresult **out);
/** The names of the side tables of the data set (b->keys, b->dicts,
 *  b->chunks, b->staging, b->unchunk): "<table>_keys", "<table>_dicts"...,
 *  or for a table name too
 *  long for the suffix, its first 48 bytes, '_', the FNV-1a of the whole
 *  name in 8 hex digits, and the suffix. */
void snap__pg_side_names(snap_pg *b);

/** A one-dimensional array parameter in binary form, built element by
 *  element (exec.c). */
typedef struct snap_pg_array {
  char *buf;
  size_t len, cap;
  uint32_t n;
  Oid elem;
  bool failed; /* out of memory */
} snap_pg_array;
void snap__pg_array_start(snap_pg_array *a, Oid elem);
void snap__pg_array_add(const snap_pg *b, snap_pg_array *a, const void *v, size_t len);
/** Ends the array (writes its length); false when memory ran out. */
bool snap__pg_array_end(const snap_pg *b, snap_pg_array *a);
void snap__pg_array_free(const snap_pg *b, snap_pg_array *a);

/** One result and one read position per shard, zeroed (a merge of the
 *  shards' pages); freed with snap__pg_per_shard_free(), results included. */
int snap__pg_per_shard(snap_pg *b, PGresult ***r, int **at);
void snap__pg_per_shard_free(snap_pg *b, PGresult **r, int *at);

/* ---- keys.c ---- */

const char *snap__pg_dataset(void *self);
int snap__pg_key_get(void *self, const char *unit, snap_backend_key_emit emit, void *ctx);
int snap__pg_key_create(void *self, const snap_backend_key *k, snap_backend_key_emit emit,
                        void *ctx);
int snap__pg_key_forget(void *self, const char *unit, uint32_t *generation);
int snap__pg_key_list(void *self, const char *after, size_t limit, snap_backend_key_emit emit,
                      void *ctx);
int snap__pg_key_rewrap(void *self, snap_backend_key_swap *swaps, size_t n);
int snap__pg_key_replace(void *self, const snap_backend_key_change *c);

/* ---- dicts.c ---- */

int snap__pg_dict_put(void *self, const snap_backend_dict *d);
int snap__pg_dict_get(void *self, uint32_t id, const char *name, snap_backend_dict_emit emit,
                      void *ctx);
int snap__pg_dict_remove(void *self, uint32_t id);

/* ---- streams.c ---- */

/** A stream being staged: its connection (holding its lease), its token
 *  and what was sent. */
struct snap_backend_stream {
  snap_pg_conn *c;
  int shard;
  char *pid;
  int64_t seq;
  int64_t token;
  int64_t n;            /* records sent */
  uint64_t batch_bytes; /* bytes of the open staging transaction */
  int batch;            /* records of the open staging transaction (-1: none open) */
  int unread;           /* synced segments whose results are unread */
  bool failed;
};

int snap__pg_stream_begin(void *self, const char *pid, int64_t seq, snap_backend_stream **out);
int snap__pg_stream_write(void *self, snap_backend_stream *s, const void *record, size_t len);
void snap__pg_stream_abort(void *self, snap_backend_stream *s);
int snap__pg_stream_open(void *self, const char *pid, int64_t seq, const void *head,
                         size_t head_len, snap_backend_reader **out);
int snap__pg_stream_next(void *self, snap_backend_reader *r, const void **record, size_t *len);
void snap__pg_stream_close(void *self, snap_backend_reader *r);
int snap__pg_stream_sweep(void *self, uint64_t max, uint64_t *reclaimed);
/** The reclaim when a shard is first used (bounded): orphans of dead
 *  writers on shard `s`, over the caller's connection. */
void snap__pg_streams_open_sweep(snap_pg *b, int s, snap_pg_conn *c);
/** Commits the open staging transaction and reads every result still
 *  unread: the staged records are committed (not yet durable). */
int snap__pg_stream_settle(snap_pg *b, snap_backend_stream *w);
/** Deletes the staging (its lease still held) and frees `w`. A connection
 *  that failed leaves it to the sweep: its lease is gone with it. */
void snap__pg_stream_discard(snap_pg *b, snap_backend_stream *w);
/** Frees `w` and closes its connection (the lease goes with the session). */
void snap__pg_stream_free(snap_pg *b, snap_backend_stream *w);

/* ---- streams_publish.c ---- */

int snap__pg_stream_publish(void *self, snap_backend_stream *s, snap_backend_row4 *row,
                            uint32_t keep);

int snap__pg_stream_replace(void *self, snap_backend_stream *s, snap_backend_swap *w,
                            const char *manifest);

/* ---- put.c ---- */

/** The put slot: each shard's rows in one pipelined transaction. */
int snap__pg_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep);
/** Sends the insert of one row (PG_INSERT, or PG_INSERT_IF for a
 *  conditional row) publishing stream `stream` (-1: an ordinary body). */
int snap__pg_send_insert(snap_pg *b, int s, snap_pg_conn *c, const snap_backend_row4 *r4,
                         int64_t stream);
/** The put4 slot: the same with manifests and conditional rows. */
int snap__pg_put4(void *self, snap_backend_row4 *rows, size_t n, uint32_t keep);

/* ---- settings.c ---- */

/** The setting() slot: one value on every shard, a disagreement is SNAP_ECONFIG. */
int snap__pg_setting(void *self, const char *name, int mode, int64_t *value);

/** Big-endian encoding of an int64 for a binary parameter. */
void snap__pg_put64(char out[8], int64_t v);
/** Big-endian encoding of a uint32 for a binary int4 parameter. */
void snap__pg_put32(char out[4], uint32_t v);
/** Decoding of a binary int8 column. */
int64_t snap__pg_get64(const char *in);

#endif /* SNAP_BACKEND_POSTGRES_H */
