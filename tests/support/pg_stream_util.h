/* Shared helpers of the PostgreSQL stream tests (tests/test_postgres_streams.c,
 * tests/test_postgres_stream_rewrite.c, tests/test_postgres_stream_tamper.c):
 * a store over one or more databases of a throw-away cluster with a table of
 * its own, SQL run on every shard of it, and the pids that fall on each of
 * three shards. */
#ifndef SNAP_TEST_PG_STREAM_UTIL_H
#define SNAP_TEST_PG_STREAM_UTIL_H

#include <stdint.h>

#include "pg_fixture.h"
#include "snap/store.h"

/** A store's place: the cluster, its shards (databases snap0..), the table
 *  and the configuration it was opened with. */
typedef struct pgs_store {
  pgfx f;
  int nshards;
  char table[64];
  char cfg[4096];
} pgs_store;

/** Pids whose slices fall on shards 0, 1 and 2 of three (docs/POSTGRES.md). */
extern const char *const pgs_pids[3];

/** Opens a store on databases 0..nshards-1 of `f` with a table of its own
 *  and the store keys `extra` (a JSON fragment, or ""); NULL when it does not
 *  open (snap_error_message() says why). */
snap_store *pgs_open(pgs_store *p, const pgfx *f, int nshards, const char *extra);

/** Opens another handle on the same store (NULL: snap_error_message()). */
snap_store *pgs_reopen(const pgs_store *p);

/** Runs `tpl` (each {T} the table's name) on every shard: the sum of the
 *  first column of each answer (statements without rows count 0), or -1
 *  with the failure in `err`. */
long long pgs_sum(const pgs_store *p, const char *tpl, char *err, size_t cap);

/** FNV-1a (32 bits) of a string, as the backend keys its advisory locks. */
uint32_t pgs_fnv1a(const char *s);

#endif /* SNAP_TEST_PG_STREAM_UTIL_H */
