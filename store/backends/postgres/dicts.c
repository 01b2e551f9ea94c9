/* The "postgres" backend's dictionary table (backend ABI version 4): the
 * trained zstd dictionaries of a data set in "<table>_dicts" (schema step
 * 5), one row per dictionary, immutable once written, on EVERY shard, so
 * that each shard's own backup holds the dictionaries its bodies name
 * (docs/POSTGRES.md "Key and dictionary tables").
 *
 * A put checks every shard first and then writes shard 0 before the others:
 * two puts of one id or name race on shard 0's unique keys, and the loser
 * writes nothing. A put cut short (a shard down, a crash) leaves the
 * dictionary on the first shards only: reads look on every shard, and the
 * same put again completes it on the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define COLS "id, name, created, body"

/* Checks the shape of a result of COLS. */
static int check_rows(snap_pg *b, int s, const PGresult *r) {
  for (int i = 0; i < PQntuples(r); i++)
    if (PQnfields(r) != 4 || PQgetlength(r, i, 0) != 8 || PQgetlength(r, i, 2) != 8 ||
        PQgetisnull(r, i, 1) || PQgetisnull(r, i, 3))
      return b->host->error(SNAP_EFORMAT,
                            "postgres %s table \"%s\": unexpected dictionary row shape",
                            b->shards[s].label, b->dicts);
  return SNAP_OK;
}

static snap_backend_dict row_of(const PGresult *r, int i) {
  snap_backend_dict d = {(uint32_t)snap__pg_get64(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1),
                         snap__pg_get64(PQgetvalue(r, i, 2)),
                         (const uint8_t *)PQgetvalue(r, i, 3), (size_t)PQgetlength(r, i, 3)};
  return d;
}

/* Selects on shard `s` the dictionary `id`, or named `name` when id is 0, or
 * every one (id 0, name NULL), in id order. */
static int select_on(snap_pg *b, int s, uint32_t id, const char *name, PGresult **r) {
  char sql[256], idv[8];
  snprintf(sql, sizeof sql,
           "SELECT " COLS " FROM \"%s\" WHERE ($1 = 0 OR id = $1) AND ($1 <> 0 OR $2::text IS "
           "NULL OR name = $2) ORDER BY id",
           b->dicts);
  snap__pg_put64(idv, id);
  static const Oid types[2] = {SNAP_PG_OID_INT8, SNAP_PG_OID_TEXT};
  const char *vals[2] = {idv, name};
  int lens[2] = {8, name ? (int)strlen(name) : 0};
  snap_pg_stmt_args a = {sql, 2, types, vals, lens};
  int e = snap__pg_run(b, s, &a, 1, false, 0, true, r);
  if (e == SNAP_OK && (e = check_rows(b, s, *r)) != SNAP_OK) {
    PQclear(*r);
    *r = NULL;
  }
  return e;
}

/* Whether row i is the dictionary `d` itself (its id, name and bytes). */
static bool same(const PGresult *r, int i, const snap_backend_dict *d) {
  snap_backend_dict x = row_of(r, i);
  return x.id == d->id && strcmp(x.name, d->name) == 0 && x.body_len == d->body_len &&
         memcmp(x.body, d->body, d->body_len) == 0;
}

static int conflict(snap_pg *b, int s, const snap_backend_dict *d, const PGresult *r) {
  snap_backend_dict x = row_of(r, 0);
  return b->host->error(SNAP_ECONFLICT,
                        "postgres %s: a dictionary with id %u or name '%s' exists (id %u, '%s')",
                        b->shards[s].label, (unsigned)d->id, d->name, (unsigned)x.id, x.name);
}

/* Inserts `d` on shard `s` unless its id or name is taken: 1 inserted, 0 not. */
static int insert_on(snap_pg *b, int s, const snap_backend_dict *d) {
  char sql[256], idv[8], created[8];
  snprintf(sql, sizeof sql,
           "INSERT INTO \"%s\" (" COLS ") VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING "
           "RETURNING 1",
           b->dicts);
  snap__pg_put64(idv, d->id);
  snap__pg_put64(created, d->created);
  static const Oid types[4] = {SNAP_PG_OID_INT8, SNAP_PG_OID_TEXT, SNAP_PG_OID_INT8,
                               SNAP_PG_OID_BYTEA};
  const char *vals[4] = {idv, d->name, created, d->body_len ? (const char *)d->body : ""};
  int lens[4] = {8, (int)strlen(d->name), 8, (int)d->body_len};
  snap_pg_stmt_args a = {sql, 4, types, vals, lens};
  PGresult *r = NULL;
  int e = snap__pg_run(b, s, &a, 1, false, 0, false, &r);
  if (e == SNAP_OK)
    e = PQntuples(r) == 1;
  PQclear(r);
  return e;
}

int snap__pg_dict_put(void *self, const snap_backend_dict *d) {
  snap_pg *b = self;
  /* What every shard holds of the id and the name: a different dictionary
   * anywhere is a conflict; this one everywhere is one too (it exists). */
  int missing = 0, e = SNAP_OK;
  bool *has = b->host->malloc((size_t)b->nshards * sizeof *has);
  if (has == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  for (int s = 0; s < b->nshards && e == SNAP_OK; s++) {
    PGresult *r = NULL;
    if ((e = select_on(b, s, d->id, NULL, &r)) == SNAP_OK && PQntuples(r) == 0) {
      PQclear(r);
      e = select_on(b, s, 0, d->name, &r);
    }
    if (e == SNAP_OK) {
      has[s] = PQntuples(r) > 0;
      missing += !has[s];
      if (has[s] && !same(r, 0, d))
        e = conflict(b, s, d, r);
    }
    PQclear(r);
  }
  if (e == SNAP_OK && missing == 0)
    e = b->host->error(SNAP_ECONFLICT, "postgres backend: a dictionary with id %u or name '%s' exists",
                       (unsigned)d->id, d->name);
  /* Shard 0 first: there two concurrent puts meet. */
  for (int s = 0; s < b->nshards && e == SNAP_OK; s++) {
    if (has[s])
      continue;
    int ins = insert_on(b, s, d);
    if (ins == 0) { /* taken since the check: by this dictionary or another */
      PGresult *r = NULL;
      if ((e = select_on(b, s, d->id, NULL, &r)) == SNAP_OK && PQntuples(r) == 0) {
        PQclear(r);
        e = select_on(b, s, 0, d->name, &r);
      }
      if (e == SNAP_OK && (s == 0 || PQntuples(r) == 0 || !same(r, 0, d)))
        e = PQntuples(r) > 0 ? conflict(b, s, d, r)
                             : b->host->error(SNAP_ECONFLICT, "postgres %s: dictionary %u "
                                                              "was refused",
                                              b->shards[s].label, (unsigned)d->id);
      PQclear(r);
    } else if (ins < 0) {
      e = ins;
    }
  }
  b->host->free(has);
  return e;
}

/* Emits the union of the shards' answers in id order, each id once. */
static int emit_merged(snap_pg *b, PGresult **r, int *at, snap_backend_dict_emit emit,
                       void *ctx) {
  int e = SNAP_OK;
  int64_t last = -1;
  for (;;) {
    int best = -1;
    for (int s = 0; s < b->nshards; s++)
      if (r[s] != NULL && at[s] < PQntuples(r[s]) &&
          (best < 0 || row_of(r[s], at[s]).id < row_of(r[best], at[best]).id))
        best = s;
    if (best < 0 || e != SNAP_OK)
      return e;
    snap_backend_dict d = row_of(r[best], at[best]++);
    if ((int64_t)d.id != last)
      e = emit(ctx, &d);
    last = d.id;
  }
}

int snap__pg_dict_get(void *self, uint32_t id, const char *name, snap_backend_dict_emit emit,
                      void *ctx) {
  snap_pg *b = self;
  bool all = id == 0 && name == NULL;
  PGresult **r;
  int *at;
  if (snap__pg_per_shard(b, &r, &at) != SNAP_OK)
    return SNAP_ENOMEM;
  /* One: the first shard that has it (a put that stopped half way wrote the
   * first shards). All: every shard, merged. */
  int e = SNAP_OK;
  for (int s = 0; s < b->nshards && e == SNAP_OK; s++) {
    e = select_on(b, s, id, id ? NULL : name, &r[s]);
    if (e == SNAP_OK && !all && PQntuples(r[s]) > 0)
      break;
  }
  if (e == SNAP_OK)
    e = emit_merged(b, r, at, emit, ctx);
  snap__pg_per_shard_free(b, r, at);
  return e;
}

int snap__pg_dict_remove(void *self, uint32_t id) {
  snap_pg *b = self;
  char sql[256], idv[8];
  snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id = $1 RETURNING 1", b->dicts);
  snap__pg_put64(idv, id);
  static const Oid types[1] = {SNAP_PG_OID_INT8};
  const char *vals[1] = {idv};
  int lens[1] = {8};
  snap_pg_stmt_args a = {sql, 1, types, vals, lens};
  int e = SNAP_OK, found = 0;
  /* The last shard first: shard 0, where reads look first, goes last. */
  for (int s = b->nshards - 1; s >= 0 && e == SNAP_OK; s--) {
    PGresult *r = NULL;
    if ((e = snap__pg_run(b, s, &a, 1, false, 0, false, &r)) == SNAP_OK)
      found |= PQntuples(r) > 0;
    PQclear(r);
  }
  return e != SNAP_OK ? e : found;
}
