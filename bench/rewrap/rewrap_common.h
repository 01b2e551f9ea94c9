/* What the rewrap programs share (bench/rewrap/): making N data keys under
 * master key version 1 through the public API (saves of sqlite stores of
 * the data set "snapshots", several files written side by side), the
 * envelope options of either keyring, and a timed snap_rewrap(). */
#ifndef SNAP_BENCH_REWRAP_COMMON_H
#define SNAP_BENCH_REWRAP_COMMON_H

#include <pthread.h>

#include "snap/envelope.h"
#include "snap/store.h"

#define RW_CTX "bench/rewrap/v1"
/* The key makers run side by side, each on a file of its own. */
#define RW_MAKERS 4

typedef struct rw_maker {
  pthread_t t;
  char path[512];
  long from, to;
  int bad;
} rw_maker;

/* Prints "`prog`: what: why" on stderr; returns 1. */
int rw_fail(const char *what, const char *why);
/* Envelope options over a keyring of master key 1, and with `v2_fill` also
 * key 2 (filled with it), active. */
snap_options *rw_envelope(uint8_t v2_fill, snap_keyring **kr);
/* Keys under version 1 for units "u-0000000" .. of [0, units), in
 * RW_MAKERS sqlite stores "keys-<i>.db" under `dir`; non-zero on failure. */
int rw_make_all(const char *dir, long units, rw_maker *m);
/* snap_rewrap() of the store's defaults, timed and printed as `what`;
 * non-zero on failure. */
int rw_rewrap_timed(snap_store *st, const char *what, snap_rewrap_progress *pr);

extern const char *rw_prog;

#endif
