/* The slice function of the "postgres" backend and the map from slices to
 * shards. Both decide where a snapshot lives: they never change (the tests
 * hold golden values, docs/POSTGRES.md states them exactly). */
#include "internal.h"

uint32_t snap__pg_fnv1a(const char *s) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    h ^= *p;
    h *= 16777619u;
  }
  return h;
}

/* FNV-1a, 32 bits, over the pid's bytes (its UTF-8 encoding, no NUL). */
uint32_t snap__pg_slice(const char *pid) { return snap__pg_fnv1a(pid) % SNAP_PG_SLICES; }

int snap__pg_shard_of(uint32_t slice, int nshards) {
  /* Slice ranges in order: shard i holds the slices s with
   * floor(s * n / 1024) == i, so adjacent ranges differ by at most one slice. */
  return (int)(((uint64_t)slice * (uint64_t)nshards) / SNAP_PG_SLICES);
}
