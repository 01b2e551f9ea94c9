/* A shred unit's key set as its key table record stores it: one wrapped-key
 * record per generation the unit holds, newest first, all under one master
 * key version (docs/FORMAT.md, "Key sets"). A unit holds one generation,
 * except while snap_renew_keys() moves its bodies from the old generation to
 * a new one. */
#include <inttypes.h>
#include <string.h>

#include "handle.h"

int snap__keyset_check(const char *unit, const uint8_t *set, size_t len, uint32_t gen,
                       uint32_t mv, size_t *n) {
  *n = 0;
  if (len == 0 || len % SNAP_WRAPPED_KEY_BYTES != 0 || len > SNAP__KEYSET_BYTES)
    return snap_error_set(SNAP_ECORRUPT,
                          "unit '%.80s': its key record is %zu bytes, not 1 to %u records of %u",
                          unit, len, (unsigned)SNAP__KEYSET_MAX, (unsigned)SNAP_WRAPPED_KEY_BYTES);
  size_t count = len / SNAP_WRAPPED_KEY_BYTES;
  uint32_t prev = 0;
  for (size_t i = 0; i < count; i++) {
    uint32_t rmv = 0, rgen = 0;
    int rc = snap__dek_record(set + i * SNAP_WRAPPED_KEY_BYTES, SNAP_WRAPPED_KEY_BYTES, &rmv, &rgen);
    if (rc != SNAP_OK)
      return snap_error_set(rc, "unit '%.80s': %s", unit, snap_error_message());
    bool order = i == 0 ? rgen == gen : rgen < prev;
    if (!order || rmv != mv)
      return snap_error_set(SNAP_EAUTH,
                            "unit '%.80s': the key table says generation %" PRIu32
                            " under master key %" PRIu32 " but its record %zu is generation %" PRIu32
                            " under %" PRIu32 ": an altered record",
                            unit, gen, mv, i + 1, rgen, rmv);
    prev = rgen;
  }
  *n = count;
  return SNAP_OK;
}

const uint8_t *snap__keyset_find(const uint8_t *set, size_t n, uint32_t gen) {
  for (size_t i = 0; i < n; i++) {
    const uint8_t *rec = set + i * SNAP_WRAPPED_KEY_BYTES;
    uint32_t rmv = 0, rgen = 0;
    if (snap__dek_record(rec, SNAP_WRAPPED_KEY_BYTES, &rmv, &rgen) == SNAP_OK && rgen == gen)
      return rec;
  }
  return NULL;
}
