/* Internal to the conformance cases: the fixture every case stands on
 * (fixture.c). */
#ifndef SNAP_CONFORMANCE_FIXTURE_H
#define SNAP_CONFORMANCE_FIXTURE_H

#include <stdint.h>

#include "conformance.h"
#include "snap/pipeline.h"
#include "snap/store.h"

/* One store on the backend under test, in a directory of its own. */
typedef struct fx {
  const cf_backend *bc;
  char *dir;
  snap_store *st;
  snap_meta md[5];
} fx;

/* Any timestamp: the last two fields of a criteria. */
#define ANY_TS 0, INT64_MAX

/* Opens a store on `bc` in `dir` with the backend's keys and `store_keys`
 * (members of a JSON object, "" for none); the status of the open. */
int fx_try_open(const cf_backend *bc, const char *dir, const char *store_keys, snap_store **st);

/* Opens a store in a fresh directory (fails the case when it cannot). */
void fx_open(fx *f, const cf_backend *bc, const char *store_keys);
/* Closes and opens the store again on the same directory. */
void fx_reopen(fx *f, const char *store_keys);
/* Closes the store and removes its directory. */
void fx_close(fx *f);
/* The TCK fixture: seq 11..15 with payloads "s-1".."s-5" and increasing timestamps. */
void fx_fill(fx *f, const char *pid);
/* Loads with `c` (no options); fails the case unless SNAP_OK. */
snap_snapshot *fx_load(fx *f, const char *pid, snap_criteria c);
/* Expects no snapshot. */
void fx_expect_none(fx *f, snap_snapshot *s, const char *what);
/* Expects the fixture's snapshot md[i] with payload "s-(i+1)", and frees it. */
void fx_expect_md(fx *f, snap_snapshot *s, int i, const char *what);
snap_criteria fx_crit(int64_t min_seq, int64_t max_seq, int64_t min_ts, int64_t max_ts);
/* A keyring holding version 1 = 32 bytes of `fill`. */
snap_keyring *fx_keyring(uint8_t fill);
/* New options: zlib at `zlib_level` (1-9; 0 sets no compression) and, with
 * `kr`, encryption under the cases' context. */
snap_options *fx_options(int zlib_level, snap_keyring *kr);
/* A compressible JSON state of about `n` bytes (malloc'd). */
char *fx_ledger(size_t n, const char *marker);

#endif
