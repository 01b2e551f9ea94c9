/* The "postgres" backend's key table (backend ABI version 4): the wrapped
 * data keys of envelope encryption, one row per shred unit in "<table>_keys"
 * (schema step 4) on the unit's shard: the shard its name would have as a
 * pid (docs/POSTGRES.md "Key and dictionary tables"). A separate key store is
 * this backend opened again on other databases, with the same rules.
 *
 * Every write commits before it returns (synchronous_commit as configured on
 * the server), so a key is durable before any body sealed with it can be
 * saved. Enumeration merges the shards' pages in byte order of the unit
 * (COLLATE "C"); a rewrap page is one statement per shard, its records in
 * array parameters, the shards' statements in flight together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The columns every read selects, in this order. */
#define COLS "unit, generation, master_version, wrapped"

const char *snap__pg_dataset(void *self) { return ((snap_pg *)self)->table; }

static int shard_of_unit(const snap_pg *b, const char *unit) {
  return snap__pg_shard_of(snap__pg_slice(unit), b->nshards);
}

/* Checks the shape of a result of COLS. */
static int check_rows(snap_pg *b, int s, const PGresult *r) {
  for (int i = 0; i < PQntuples(r); i++)
    if (PQnfields(r) != 4 || PQgetlength(r, i, 1) != 8 || PQgetlength(r, i, 2) != 8 ||
        PQgetisnull(r, i, 0))
      return b->host->error(SNAP_EFORMAT, "postgres %s table \"%s\": unexpected key row shape",
                            b->shards[s].label, b->keys);
  return SNAP_OK;
}

/* Emits row i of a result of COLS. */
static int emit_row(const PGresult *r, int i, snap_backend_key_emit emit, void *ctx) {
  snap_backend_key k = {PQgetvalue(r, i, 0), (uint32_t)snap__pg_get64(PQgetvalue(r, i, 1)),
                        (uint32_t)snap__pg_get64(PQgetvalue(r, i, 2)), NULL, 0};
  if (!PQgetisnull(r, i, 3)) {
    k.wrapped = (const uint8_t *)PQgetvalue(r, i, 3);
    k.wrapped_len = (size_t)PQgetlength(r, i, 3);
  }
  return emit(ctx, &k);
}

/* ---- reads ----------------------------------------------------------------- */

int snap__pg_key_get(void *self, const char *unit, snap_backend_key_emit emit, void *ctx) {
  snap_pg *b = self;
  int s = shard_of_unit(b, unit);
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT " COLS " FROM \"%s\" WHERE unit = $1", b->keys);
  static const Oid types[1] = {SNAP_PG_OID_TEXT};
  const char *vals[1] = {unit};
  int lens[1] = {(int)strlen(unit)};
  snap_pg_stmt_args a = {sql, 1, types, vals, lens};
  PGresult *r = NULL;
  int e = snap__pg_run(b, s, &a, 1, false, 0, true, &r);
  if (e == SNAP_OK)
    e = check_rows(b, s, r);
  for (int i = 0; e == SNAP_OK && i < PQntuples(r) && i < 1; i++)
    e = emit_row(r, i, emit, ctx);
  PQclear(r);
  return e;
}

/* The statement of a chunk: up to `chunk` records after `after` (NULL: from
 * the first). `lim` and `sql` hold what the arguments point to. */
static snap_pg_stmt_args chunk_args(const snap_pg *b, const char *after, int64_t chunk,
                                    char sql[256], char lim[8], const char *vals[2], int lens[2]) {
  snprintf(sql, 256, "SELECT " COLS " FROM \"%s\" WHERE unit > $1 ORDER BY unit LIMIT $2",
           b->keys);
  snap__pg_put64(lim, chunk);
  static const Oid types[2] = {SNAP_PG_OID_TEXT, SNAP_PG_OID_INT8};
  vals[0] = after ? after : ""; /* '' sorts before every unit */
  vals[1] = lim;
  lens[0] = (int)strlen(vals[0]);
  lens[1] = 8;
  snap_pg_stmt_args a = {sql, 2, types, vals, lens};
  return a;
}

/* Fetches into `*r` (freed first) up to `chunk` records of shard `s` after
 * `after`; `*full` tells whether the shard may have more. */
static int list_chunk(snap_pg *b, int s, const char *after, int64_t chunk, PGresult **r,
                      bool *full) {
  char sql[256], lim[8];
  const char *vals[2];
  int lens[2];
  snap_pg_stmt_args a = chunk_args(b, after, chunk, sql, lim, vals, lens);
  PGresult *next = NULL;
  int e = snap__pg_run(b, s, &a, 1, false, 0, true, &next);
  if (e == SNAP_OK && (e = check_rows(b, s, next)) != SNAP_OK) {
    PQclear(next);
    next = NULL;
  }
  PQclear(*r);
  *r = next;
  *full = next != NULL && PQntuples(next) == chunk;
  return e;
}

/* The first chunk of every shard, asked of all at once. */
static int list_first(snap_pg *b, const char *after, int64_t chunk, PGresult **r, bool *full) {
  char sql[256], lim[8];
  const char *vals[2];
  int lens[2];
  snap_pg_stmt_args a = chunk_args(b, after, chunk, sql, lim, vals, lens);
  int e = snap__pg_run_each(b, &a, r);
  for (int s = 0; s < b->nshards && e == SNAP_OK; s++) {
    e = check_rows(b, s, r[s]);
    full[s] = PQntuples(r[s]) == chunk;
  }
  return e;
}

/* Shard `s` read to the end of its chunk while it may have more: the next
 * chunk after its last unit (copied before the old chunk goes). */
static int list_refill(snap_pg *b, int s, int64_t chunk, PGresult **r, int *at, bool *full) {
  const char *unit = PQgetvalue(r[s], PQntuples(r[s]) - 1, 0);
  size_t len = strlen(unit) + 1;
  char *last = b->host->malloc(len);
  if (last == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  memcpy(last, unit, len);
  int e = list_chunk(b, s, last, chunk, &r[s], &full[s]);
  b->host->free(last);
  at[s] = 0;
  return e;
}

int snap__pg_key_list(void *self, const char *after, size_t limit, snap_backend_key_emit emit,
                      void *ctx) {
  snap_pg *b = self;
  int64_t lim = limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
  /* Units spread evenly over the shards: each is asked for its share of the
   * page and a margin, and asked again in the rare case it runs out first. */
  int64_t chunk = lim / b->nshards + lim / (4 * b->nshards) + 16;
  if (chunk > lim)
    chunk = lim;
  PGresult **r;
  int *at;
  bool *full = b->host->malloc((size_t)b->nshards * sizeof *full);
  if (full == NULL || snap__pg_per_shard(b, &r, &at) != SNAP_OK) {
    b->host->free(full);
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  }
  int e = list_first(b, after, chunk, r, full);
  /* Merge: a unit lives on one shard, so nothing repeats. */
  for (size_t n = 0; n < limit && e == SNAP_OK; n++) {
    int best = -1;
    for (int s = 0; s < b->nshards && e == SNAP_OK; s++) {
      if (at[s] == PQntuples(r[s]) && full[s])
        e = list_refill(b, s, chunk, r, at, full);
      if (e == SNAP_OK && at[s] < PQntuples(r[s]) &&
          (best < 0 || strcmp(PQgetvalue(r[s], at[s], 0), PQgetvalue(r[best], at[best], 0)) < 0))
        best = s;
    }
    if (best < 0 || e != SNAP_OK)
      break;
    e = emit_row(r[best], at[best]++, emit, ctx);
  }
  snap__pg_per_shard_free(b, r, at);
  b->host->free(full);
  return e;
}

/* ---- writes ---------------------------------------------------------------- */

int snap__pg_key_create(void *self, const snap_backend_key *k, snap_backend_key_emit emit,
                        void *ctx) {
  snap_pg *b = self;
  if (k->wrapped == NULL || k->generation == 0)
    return b->host->error(SNAP_EINVAL,
                          "postgres backend: a new key needs a record and a generation");
  int s = shard_of_unit(b, k->unit);
  char sql[512], gen[8], mv[8];
  /* Insert, or revive a tombstone of an older generation; a live key or a
   * newer record stays (the read below then returns it). */
  snprintf(sql, sizeof sql,
           "INSERT INTO \"%s\" AS k (" COLS ") VALUES ($1, $2, $3, $4) ON CONFLICT (unit) DO "
           "UPDATE SET generation = EXCLUDED.generation, master_version = "
           "EXCLUDED.master_version, wrapped = EXCLUDED.wrapped WHERE k.wrapped IS NULL AND "
           "k.generation < EXCLUDED.generation",
           b->keys);
  snap__pg_put64(gen, k->generation);
  snap__pg_put64(mv, k->master_version);
  static const Oid types[4] = {SNAP_PG_OID_TEXT, SNAP_PG_OID_INT8, SNAP_PG_OID_INT8,
                               SNAP_PG_OID_BYTEA};
  const char *vals[4] = {k->unit, gen, mv, (const char *)k->wrapped};
  int lens[4] = {(int)strlen(k->unit), 8, 8, (int)k->wrapped_len};
  snap_pg_stmt_args a = {sql, 4, types, vals, lens};
  int e = snap__pg_run(b, s, &a, 1, false, -1, false, NULL);
  /* Read back what stands now: committed, so another writer's key is final too. */
  return e == SNAP_OK ? snap__pg_key_get(b, k->unit, emit, ctx) : e;
}

int snap__pg_key_forget(void *self, const char *unit, uint32_t *generation) {
  snap_pg *b = self;
  int s = shard_of_unit(b, unit);
  char ins[256], sel[256], upd[256];
  /* A unit without a record gets a tombstone of generation 0; the row is
   * then locked, read as it was, and emptied, in one transaction. */
  snprintf(ins, sizeof ins,
           "INSERT INTO \"%s\" (" COLS ") VALUES ($1, 0, 0, NULL) ON CONFLICT (unit) DO NOTHING",
           b->keys);
  snprintf(sel, sizeof sel,
           "SELECT generation, wrapped IS NOT NULL FROM \"%s\" WHERE unit = $1 FOR UPDATE",
           b->keys);
  snprintf(upd, sizeof upd,
           "UPDATE \"%s\" SET wrapped = NULL, master_version = 0 WHERE unit = $1", b->keys);
  static const Oid types[1] = {SNAP_PG_OID_TEXT};
  const char *vals[1] = {unit};
  int lens[1] = {(int)strlen(unit)};
  snap_pg_stmt_args a[3] = {
      {ins, 1, types, vals, lens}, {sel, 1, types, vals, lens}, {upd, 1, types, vals, lens}};
  PGresult *r = NULL;
  int e = snap__pg_run(b, s, a, 3, true, 1, false, &r);
  if (e == SNAP_OK && (PQntuples(r) != 1 || PQnfields(r) != 2 || PQgetlength(r, 0, 0) != 8 ||
                       PQgetlength(r, 0, 1) != 1))
    e = b->host->error(SNAP_EFORMAT, "postgres %s table \"%s\": unexpected key row shape",
                       b->shards[s].label, b->keys);
  if (e == SNAP_OK) {
    if (generation)
      *generation = (uint32_t)snap__pg_get64(PQgetvalue(r, 0, 0));
    e = PQgetvalue(r, 0, 1)[0] != 0 ? 1 : 0;
  }
  PQclear(r);
  return e;
}

/* ---- rewrap ---------------------------------------------------------------- */

/* The swaps of one shard in array parameters: unit, generation, expected
 * master version, new master version, new record, and the index in the
 * caller's array. */
typedef struct shard_page {
  snap_pg_array col[6];
  int count;
} shard_page;

static const Oid page_types[6] = {SNAP_PG_OID_TEXT_ARRAY, SNAP_PG_OID_INT8_ARRAY,
                                  SNAP_PG_OID_INT8_ARRAY, SNAP_PG_OID_INT8_ARRAY,
                                  SNAP_PG_OID_BYTEA_ARRAY, SNAP_PG_OID_INT8_ARRAY};

static bool page_build(snap_pg *b, int s, const snap_backend_key_swap *sw, size_t n,
                       shard_page *p) {
  static const Oid elems[6] = {SNAP_PG_OID_TEXT, SNAP_PG_OID_INT8, SNAP_PG_OID_INT8,
                               SNAP_PG_OID_INT8, SNAP_PG_OID_BYTEA, SNAP_PG_OID_INT8};
  for (int c = 0; c < 6; c++)
    snap__pg_array_start(&p->col[c], elems[c]);
  p->count = 0;
  for (size_t i = 0; i < n; i++) {
    if (shard_of_unit(b, sw[i].unit) != s)
      continue;
    char v[4][8];
    snap__pg_put64(v[0], sw[i].generation);
    snap__pg_put64(v[1], sw[i].expected_master);
    snap__pg_put64(v[2], sw[i].master_version);
    snap__pg_put64(v[3], (int64_t)i);
    snap__pg_array_add(b, &p->col[0], sw[i].unit, strlen(sw[i].unit));
    for (int c = 1; c < 4; c++)
      snap__pg_array_add(b, &p->col[c], v[c - 1], 8);
    snap__pg_array_add(b, &p->col[4], sw[i].wrapped ? (const char *)sw[i].wrapped : "",
                       sw[i].wrapped_len);
    snap__pg_array_add(b, &p->col[5], v[3], 8);
    p->count++;
  }
  bool ok = true;
  for (int c = 0; c < 6; c++)
    ok &= snap__pg_array_end(b, &p->col[c]);
  return ok;
}

/* Sends the page's statement on `c` (its own segment: one implicit
 * transaction); it answers the index of each record it rewrapped. */
static int page_send(snap_pg *b, int s, snap_pg_conn *c, const shard_page *p) {
  char sql[768];
  snprintf(sql, sizeof sql,
           "UPDATE \"%s\" k SET wrapped = v.w, master_version = v.mv FROM unnest($1::text[], "
           "$2::int8[], $3::int8[], $4::int8[], $5::bytea[], $6::int8[]) AS v(unit, gen, em, mv, "
           "w, i) WHERE k.unit = v.unit AND k.generation = v.gen AND k.master_version = v.em AND "
           "k.wrapped IS NOT NULL RETURNING v.i",
           b->keys);
  const char *vals[6];
  int lens[6];
  static const int formats[6] = {1, 1, 1, 1, 1, 1};
  for (int i = 0; i < 6; i++) {
    vals[i] = p->col[i].buf;
    lens[i] = (int)p->col[i].len;
  }
  if (!PQsendQueryParams(c->pg, sql, 6, page_types, vals, lens, formats, 1))
    return snap__pg_conn_error(b, s, c, "send");
  return snap__pg_sync(b, s, c);
}

/* Marks the indexes of a result's first column (int8) with `outcome`. */
static int mark(snap_pg *b, int s, const PGresult *r, snap_backend_key_swap *sw, size_t n,
                int outcome) {
  for (int i = 0; i < PQntuples(r); i++) {
    if (PQnfields(r) != 1 || PQgetlength(r, i, 0) != 8)
      return b->host->error(SNAP_EFORMAT, "postgres %s: unexpected rewrap result shape",
                            b->shards[s].label);
    int64_t at = snap__pg_get64(PQgetvalue(r, i, 0));
    if (at >= 0 && (size_t)at < n)
      sw[at].outcome = outcome;
  }
  return SNAP_OK;
}

/* Reads the page's answer: the records rewrapped. */
static int page_read(snap_pg *b, int s, snap_pg_conn *c, snap_backend_key_swap *sw, size_t n) {
  int64_t deadline = snap__pg_deadline(b);
  PGresult *r;
  int e = snap__pg_next(b, s, c, deadline, &r);
  if (e != SNAP_OK)
    return e;
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    e = snap__pg_result_error(b, s, r, "rewrap");
  if (e == SNAP_OK)
    e = mark(b, s, r, sw, n, SNAP_SWAP_DONE);
  PQclear(r);
  int d = snap__pg_drain(b, s, c, deadline);
  if (d != SNAP_OK && e == SNAP_OK)
    e = b->host->error(SNAP_EIO,
                       "postgres %s: the connection was lost before a rewrap was acknowledged: "
                       "the outcome is unknown (rewrapping again is safe)",
                       b->shards[s].label);
  return e;
}

/* The records of shard `s` left alone: changed (a record is there) or gone. */
static int page_left(snap_pg *b, int s, snap_backend_key_swap *sw, size_t n) {
  snap_pg_array a[2];
  snap__pg_array_start(&a[0], SNAP_PG_OID_TEXT);
  snap__pg_array_start(&a[1], SNAP_PG_OID_INT8);
  for (size_t i = 0; i < n; i++) {
    if (sw[i].outcome == SNAP_SWAP_DONE || shard_of_unit(b, sw[i].unit) != s)
      continue;
    char at[8];
    snap__pg_put64(at, (int64_t)i);
    snap__pg_array_add(b, &a[0], sw[i].unit, strlen(sw[i].unit));
    snap__pg_array_add(b, &a[1], at, 8);
  }
  int e = SNAP_OK;
  bool units_ok = snap__pg_array_end(b, &a[0]);
  bool index_ok = snap__pg_array_end(b, &a[1]);
  if (!units_ok || !index_ok)
    e = b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  if (e == SNAP_OK && a[0].n > 0) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT v.i FROM unnest($1::text[], $2::int8[]) AS v(unit, i) WHERE EXISTS "
             "(SELECT 1 FROM \"%s\" k WHERE k.unit = v.unit)",
             b->keys);
    static const Oid types[2] = {SNAP_PG_OID_TEXT_ARRAY, SNAP_PG_OID_INT8_ARRAY};
    const char *vals[2] = {a[0].buf, a[1].buf};
    int lens[2] = {(int)a[0].len, (int)a[1].len};
    snap_pg_stmt_args q = {sql, 2, types, vals, lens};
    PGresult *r = NULL;
    if ((e = snap__pg_run(b, s, &q, 1, false, 0, true, &r)) == SNAP_OK)
      e = mark(b, s, r, sw, n, SNAP_SWAP_CHANGED);
    PQclear(r);
  }
  snap__pg_array_free(b, &a[0]);
  snap__pg_array_free(b, &a[1]);
  return e;
}

int snap__pg_key_rewrap(void *self, snap_backend_key_swap *sw, size_t n) {
  snap_pg *b = self;
  for (size_t i = 0; i < n; i++)
    sw[i].outcome = SNAP_SWAP_GONE;
  shard_page *pages = b->host->malloc((size_t)b->nshards * sizeof *pages);
  snap_pg_conn **conn = b->host->malloc((size_t)b->nshards * sizeof *conn);
  if (pages == NULL || conn == NULL) {
    b->host->free(pages);
    b->host->free(conn);
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  }
  memset(conn, 0, (size_t)b->nshards * sizeof *conn);
  int e = SNAP_OK;
  /* Every shard's statement is sent before any answer is read: the shards
   * work on their parts at the same time. */
  for (int s = 0; s < b->nshards; s++) {
    bool built = page_build(b, s, sw, n, &pages[s]);
    if (e != SNAP_OK || pages[s].count == 0)
      continue;
    if (!built)
      e = b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
    else if ((e = snap__pg_acquire(b, s, &conn[s])) == SNAP_OK)
      e = page_send(b, s, conn[s], &pages[s]);
  }
  for (int s = 0; s < b->nshards; s++) {
    if (conn[s] != NULL) {
      int r = conn[s]->broken ? SNAP_OK : page_read(b, s, conn[s], sw, n);
      if (e == SNAP_OK)
        e = r;
      snap__pg_release(b, s, conn[s]);
    }
    if (e == SNAP_OK && conn[s] != NULL)
      e = page_left(b, s, sw, n);
    for (int c = 0; c < 6; c++)
      snap__pg_array_free(b, &pages[s].col[c]);
  }
  b->host->free(pages);
  b->host->free(conn);
  return e;
}

/* ---- replace (ABI 6) ------------------------------------------------------- */

int snap__pg_key_replace(void *self, const snap_backend_key_change *c) {
  snap_pg *b = self;
  if (c->wrapped == NULL || c->generation == 0)
    return b->host->error(SNAP_EINVAL,
                          "postgres backend: a key replace needs a record and a generation");
  int s = shard_of_unit(b, c->unit);
  char sql[512], gen[8], mv[8];
  /* One statement: the update, and whether the unit has a record at all
   * (the snapshot before the update: a replaced record existed too). */
  snprintf(sql, sizeof sql,
           "WITH u AS (UPDATE \"%s\" SET generation = $2, master_version = $3, wrapped = $4 "
           "WHERE unit = $1 AND wrapped IS NOT NULL AND wrapped = $5 RETURNING 1) SELECT "
           "(SELECT count(*) FROM u), EXISTS (SELECT 1 FROM \"%s\" WHERE unit = $1)",
           b->keys, b->keys);
  snap__pg_put64(gen, c->generation);
  snap__pg_put64(mv, c->master_version);
  static const Oid types[5] = {SNAP_PG_OID_TEXT, SNAP_PG_OID_INT8, SNAP_PG_OID_INT8,
                               SNAP_PG_OID_BYTEA, SNAP_PG_OID_BYTEA};
  const char *vals[5] = {c->unit, gen, mv, (const char *)c->wrapped,
                         c->expected ? (const char *)c->expected : ""};
  int lens[5] = {(int)strlen(c->unit), 8, 8, (int)c->wrapped_len, (int)c->expected_len};
  snap_pg_stmt_args a = {sql, 5, types, vals, lens};
  PGresult *r = NULL;
  int e = snap__pg_run(b, s, &a, 1, false, 0, false, &r);
  if (e == SNAP_OK && (PQntuples(r) != 1 || PQnfields(r) != 2 || PQgetlength(r, 0, 0) != 8 ||
                       PQgetlength(r, 0, 1) != 1))
    e = b->host->error(SNAP_EFORMAT, "postgres %s table \"%s\": unexpected key replace result",
                       b->shards[s].label, b->keys);
  if (e == SNAP_OK)
    e = snap__pg_get64(PQgetvalue(r, 0, 0)) == 1 ? SNAP_SWAP_DONE
        : PQgetvalue(r, 0, 1)[0] != 0            ? SNAP_SWAP_CHANGED
                                                 : SNAP_SWAP_GONE;
  PQclear(r);
  return e;
}
