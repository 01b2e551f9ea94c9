/* The "postgres" backend: snapshots in a PostgreSQL table, optionally sharded
 * over several databases by a stable hash of the persistence id. Schema,
 * slice function, fault semantics and deployment notes: docs/POSTGRES.md.
 *
 * This file: configuration, open and close, load and remove, and the
 * operations table; the write path (put) is in put.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../sql_ident.h"

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

static bool valid_table(const char *t) { return snap__sql_ident_ok(t, SNAP_PG_TABLE_MAX); }

/* Whether libpq can parse a connection string. Its parse message is not
 * shown: it can quote the string, and the string can hold a password. */
static bool conninfo_parses(const char *ci) {
  PQconninfoOption *o = PQconninfoParse(ci, NULL);
  PQconninfoFree(o);
  return o != NULL;
}

/* Reads the backend's own keys (the store took its keys already) with the
 * host's strict reader. */
static int parse_config(snap_pg *b, snap_conf *c) {
  const snap_host *h = b->host;
  int e = SNAP_OK;
  const char *conninfo = NULL, *table = NULL;
  const char *const *shards = NULL;
  size_t nshards = 0;
  int64_t pool = b->pool_size, conn_ms = b->connect_ms, stmt_ms = b->statement_ms;
  int has_ci = h->conf_string(c, "conninfo", SNAP_CONF_NONEMPTY, &conninfo);
  int has_sh = h->conf_strings(c, "shards", SNAP_CONF_NONEMPTY, &shards, &nshards);
  if (has_ci > 0 && has_sh > 0)
    h->conf_error(c, "shards", "give 'conninfo' or 'shards', not both");
  else if (has_ci == 0 && has_sh == 0)
    h->conf_error(c, "conninfo", "missing: 'conninfo' or 'shards' is required");
  if (has_sh > 0 && (nshards < 1 || nshards > SNAP_PG_SLICES))
    h->conf_error(c, "shards", "expected 1 to %u connection strings, not %zu", SNAP_PG_SLICES,
                  nshards);
  if (has_ci > 0 && !conninfo_parses(conninfo))
    h->conf_error(c, "conninfo", "not a valid libpq connection string");
  for (size_t i = 0; has_sh > 0 && i < nshards; i++)
    if (!conninfo_parses(shards[i]))
      h->conf_error(c, "shards", "shard %zu is not a valid libpq connection string", i);
  if (h->conf_string(c, "table", 0, &table) > 0 && !valid_table(table))
    h->conf_error(c, "table", "'%s' does not match [A-Za-z_][A-Za-z0-9_]* of at most %d characters",
                  table, SNAP_PG_TABLE_MAX);
  else if (table != NULL && snap__sql_reserved_table(table, NULL, false))
    h->conf_error(c, "table", "'%s' is a table of the store's own", table);
  h->conf_int(c, "pool_size", 0, 1, 1024, &pool);
  h->conf_int(c, "connect_timeout_ms", 0, 1, 3600000, &conn_ms);
  h->conf_int(c, "statement_timeout_ms", 0, 0, 3600000, &stmt_ms);
  /* Copy (the reader's strings are the host's); only when all is well,
   * which the reader's sticky error tells (the probe below reads no key). */
  const char *probe;
  bool ok = h->conf_string(c, "conninfo", 0, &probe) >= 0;
  if (ok) {
    if (table != NULL)
      strcpy(b->table, table);
    b->pool_size = (int)pool;
    b->connect_ms = (int)conn_ms;
    b->statement_ms = (int)stmt_ms;
    b->nshards = has_sh > 0 ? (int)nshards : 1;
    b->shards = h->malloc((size_t)b->nshards * sizeof *b->shards);
    if (b->shards != NULL) {
      memset(b->shards, 0, (size_t)b->nshards * sizeof *b->shards);
      for (int i = 0; i < b->nshards && e == SNAP_OK; i++)
        e = snap__pg_shard_init(b, i, has_sh > 0 ? shards[i] : conninfo);
    }
  }
  int fin = h->conf_check(c);
  if (fin != SNAP_OK)
    return fin;
  if (b->shards == NULL)
    return h->error(SNAP_ENOMEM, "postgres backend: out of memory");
  return e;
}

/* ------------------------------------------------------------------------ */
/* Open and close                                                            */
/* ------------------------------------------------------------------------ */

static void pg_close(void *self) {
  snap_pg *b = self;
  if (b == NULL)
    return;
  snap__pg_pool_free(b);
  for (int i = 0; i < PG_STMT_COUNT; i++)
    b->host->free(b->sql[i]);
  b->host->free(b);
}

static int pg_open(void **self, snap_conf *config, unsigned flags, const snap_host *host) {
  *self = NULL;
  if (host->abi_version < 3)
    return host->error(SNAP_EABI, "postgres backend: the host has no configuration reader");
  snap_pg *b = host->malloc(sizeof *b);
  if (b == NULL)
    return host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  memset(b, 0, sizeof *b);
  b->host = host;
  strcpy(b->table, "snapshots");
  b->pool_size = 4;
  b->connect_ms = 5000;
  b->statement_ms = 30000;
  /* Read an existing store only: the schema check creates nothing. */
  b->no_create = (flags & SNAP_BACKEND_NO_CREATE) != 0;
  int e = parse_config(b, config);
  if (e == SNAP_OK) {
    b->lock_class = snap__pg_fnv1a(b->table);
    snap__pg_side_names(b);
    b->stream_class = snap__pg_fnv1a(b->chunks);
    e = snap__pg_build_sql(b);
  }
  if (e != SNAP_OK) {
    pg_close(b);
    return e;
  }
  /* Connections are opened on first use: a store can be configured before
   * its server is up; the first operation reports an unreachable one. */
  *self = b;
  return SNAP_OK;
}

/* ------------------------------------------------------------------------ */
/* Load and remove                                                           */
/* ------------------------------------------------------------------------ */

/* Sends one statement (binary results) as its own pipeline segment and reads
 * its result; the sync point is left for the caller to drain. */
static int one_statement(snap_pg *b, int s, snap_pg_conn *c, enum snap_pg_stmt id, int n,
                         const char *const *values, const int *lengths, int64_t deadline,
                         PGresult **r) {
  int e = snap__pg_send(b, s, c, id, n, values, lengths, 1);
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, c);
  if (e == SNAP_OK)
    e = snap__pg_next(b, s, c, deadline, r);
  return e;
}

int snap__pg_query(snap_pg *b, int s, enum snap_pg_stmt id, int n, const char *const *values,
                   const int *lengths, PGresult **out) {
  *out = NULL;
  int e = SNAP_OK;
  /* A read can be repeated: one connection lost under it is retried once on
   * a fresh one (the server may have restarted since it was pooled). */
  for (int attempt = 0; attempt < 2; attempt++) {
    snap_pg_conn *c;
    if ((e = snap__pg_acquire(b, s, &c)) != SNAP_OK)
      return e;
    int64_t deadline = snap__pg_deadline(b);
    PGresult *r = NULL;
    e = one_statement(b, s, c, id, n, values, lengths, deadline, &r);
    if (e == SNAP_OK) {
      if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        e = snap__pg_result_error(b, s, r, snap__pg_stmt_name(id));
        PQclear(r);
        r = NULL;
      }
      int d = snap__pg_drain(b, s, c, deadline);
      if (e == SNAP_OK && d != SNAP_OK) {
        PQclear(r);
        r = NULL;
        e = d;
      }
    }
    bool lost = c->broken;
    snap__pg_release(b, s, c);
    if (e == SNAP_OK) {
      *out = r;
      return SNAP_OK;
    }
    if (!lost)
      break;
  }
  return e;
}

/* The four bounds of `cr` as binary int8 parameters 2..5 after the pid. */
static void selection(const char *pid, const snap_criteria *cr, char v[4][8],
                      const char *vals[5], int lens[5]) {
  snap__pg_put64(v[0], cr->min_seq);
  snap__pg_put64(v[1], cr->max_seq);
  snap__pg_put64(v[2], cr->min_ts);
  snap__pg_put64(v[3], cr->max_ts);
  vals[0] = pid;
  lens[0] = (int)strlen(pid);
  for (int i = 0; i < 4; i++) {
    vals[i + 1] = v[i];
    lens[i + 1] = 8;
  }
}

static int pg_load4(void *self, const char *pid, const snap_criteria *cr, const char *manifest,
                    snap_backend_emit emit, void *ctx) {
  snap_pg *b = self;
  int s = snap__pg_shard_of(snap__pg_slice(pid), b->nshards);
  char v[4][8];
  const char *vals[6];
  int lens[6];
  selection(pid, cr, v, vals, lens);
  vals[5] = manifest;
  lens[5] = manifest ? (int)strlen(manifest) : 0;
  /* The common load, the newest snapshot under no upper bound, uses a
   * statement with no range; when its row falls below the lower bounds, the
   * general statement answers. */
  bool newest = cr->max_seq == INT64_MAX && cr->max_ts == INT64_MAX && manifest == NULL;
  int e = SNAP_OK;
  for (int pass = newest ? 0 : 1; pass < 2; pass++) {
    PGresult *r;
    enum snap_pg_stmt id = pass == 0 ? PG_NEWEST : manifest ? PG_LOAD_MANIFEST : PG_LOAD;
    int np = pass == 0 ? 1 : manifest ? 6 : 5;
    if ((e = snap__pg_query(b, s, id, np, vals, lens, &r)) != SNAP_OK)
      return e;
    bool again = false;
    if (PQntuples(r) == 1) {
      if (PQnfields(r) != 3 || PQgetlength(r, 0, 0) != 8 || PQgetlength(r, 0, 1) != 8) {
        e = b->host->error(SNAP_EFORMAT, "postgres %s table \"%s\": unexpected row shape",
                           b->shards[s].label, b->table);
      } else {
        int64_t seq = snap__pg_get64(PQgetvalue(r, 0, 0));
        int64_t ts = snap__pg_get64(PQgetvalue(r, 0, 1));
        if (pass == 0 && (seq < cr->min_seq || ts < cr->min_ts))
          again = true;
        else
          e = emit(ctx, seq, ts, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2));
      }
    }
    PQclear(r);
    if (!again)
      break;
  }
  return e;
}

static int pg_load(void *self, const char *pid, const snap_criteria *cr, snap_backend_emit emit,
                   void *ctx) {
  return pg_load4(self, pid, cr, NULL, emit, ctx);
}

static int pg_remove(void *self, const char *pid, const snap_criteria *cr) {
  snap_pg *b = self;
  int s = snap__pg_shard_of(snap__pg_slice(pid), b->nshards);
  snap_pg_conn *c;
  int e = snap__pg_acquire(b, s, &c);
  if (e != SNAP_OK)
    return e;
  /* One statement in its own pipeline segment is one implicit transaction,
   * committed when the server answers the sync. */
  int64_t deadline = snap__pg_deadline(b);
  char v[4][8];
  const char *vals[5];
  int lens[5];
  selection(pid, cr, v, vals, lens);
  PGresult *r = NULL;
  e = one_statement(b, s, c, PG_REMOVE, 5, vals, lens, deadline, &r);
  if (e == SNAP_OK) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      e = snap__pg_result_error(b, s, r, "delete");
    PQclear(r);
    int d = snap__pg_drain(b, s, c, deadline);
    if (e == SNAP_OK && d != SNAP_OK)
      e = b->host->error(SNAP_EIO,
                         "postgres %s: the connection was lost before the delete was "
                         "acknowledged: the outcome is unknown (deleting again is safe)",
                         b->shards[s].label);
  }
  snap__pg_release(b, s, c);
  return e;
}

/* The operations table; each slot's ABI version is in snap/sys/backend.h. */
static const snap_backend pg_backend = {
    .abi_version = SNAP_BACKEND_ABI_VERSION,
    .name = "postgres",
    .capabilities = SNAP_CAP_COMPRESSION | SNAP_CAP_ENCRYPTION | SNAP_CAP_INTEGRITY |
                    SNAP_CAP_DURABLE | SNAP_CAP_BATCH,
    /* ABI 1 */
    .open = NULL, /* open_conf reads the section */
    .close = pg_close,
    .put = snap__pg_put,
    .load = pg_load,
    .remove = pg_remove,
    /* ABI 2 */
    .list_pids = snap__pg_list_pids,
    .list_rows = snap__pg_list_rows,
    .replace = snap__pg_replace,
    .backup = NULL, /* pg_dump, docs/POSTGRES.md */
    .setting = snap__pg_setting,
    /* ABI 3 */
    .open_conf = pg_open,
    /* ABI 4 */
    .put4 = snap__pg_put4,
    .load4 = pg_load4,
    .dataset = snap__pg_dataset,
    .key_get = snap__pg_key_get,
    .key_create = snap__pg_key_create,
    .key_forget = snap__pg_key_forget,
    .key_list = snap__pg_key_list,
    .key_rewrap = snap__pg_key_rewrap,
    .dict_put = snap__pg_dict_put,
    .dict_get = snap__pg_dict_get,
    .dict_remove = snap__pg_dict_remove,
    /* ABI 5 */
    .replace_typed = snap__pg_replace_typed,
    /* ABI 6 */
    .stream_begin = snap__pg_stream_begin,
    .stream_write = snap__pg_stream_write,
    .stream_publish = snap__pg_stream_publish,
    .stream_abort = snap__pg_stream_abort,
    .stream_open = snap__pg_stream_open,
    .stream_next = snap__pg_stream_next,
    .stream_close = snap__pg_stream_close,
    .stream_sweep = snap__pg_stream_sweep,
    .key_replace = snap__pg_key_replace,
    /* ABI 7 */
    .stream_replace = snap__pg_stream_replace,
};

const snap_backend *snap_backend_postgres(void) { return &pg_backend; }
