/*
 * Wrapped-key records (envelope keys, docs/FORMAT.md "The wrapped-key
 * record"). Input: one byte choosing the unit the record is checked for
 * (0: "unit-a", 1: "unit-b", other: "acme"), then the record. Properties:
 *   - inspect and verify answer SNAP_OK or an error with a message, never
 *     read past the input;
 *   - a record that verifies also inspects, under a master key version the
 *     keyring holds, with a generation >= 1;
 *   - a record that verifies for one unit never verifies for another, nor
 *     for another data set or context.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "snap/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DATASET "snapshots"

static const char *unit_of(uint8_t sel) {
  return sel == 0 ? "unit-a" : sel == 1 ? "unit-b" : "acme";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_keyrings_init();
  if (size < 1)
    return 0;
  const char *unit = unit_of(data[0]);
  /* A copy of exactly the record's bytes, so a read past it is caught. */
  size_t n = size - 1;
  uint8_t *rec = malloc(n ? n : 1);
  if (!rec)
    return 0;
  memcpy(rec, data + 1, n);
  uint32_t mv = 0, gen = 0;
  int ins = snap_wrapped_key_inspect(rec, n, &mv, &gen);
  FUZZ_CHECK(ins == SNAP_OK || snap_error_message()[0] != '\0', "inspect %d without a message",
             ins);
  int ver = snap_wrapped_key_verify(fuzz_kr_active1, FUZZ_CONTEXT, DATASET, unit, rec, n);
  FUZZ_CHECK(ver == SNAP_OK || ver == SNAP_EFORMAT || ver == SNAP_ECORRUPT || ver == SNAP_EAUTH ||
                 ver == SNAP_ENOKEY,
             "verify: unexpected %d", ver);
  FUZZ_CHECK(ver == SNAP_OK || snap_error_message()[0] != '\0', "verify %d without a message", ver);
  if (ver == SNAP_OK) {
    FUZZ_CHECK(ins == SNAP_OK && n == SNAP_WRAPPED_KEY_BYTES, "verified but inspect %d", ins);
    FUZZ_CHECK(gen >= 1 && snap_keyring_has(fuzz_kr_active1, mv), "mv %u gen %u", (unsigned)mv,
               (unsigned)gen);
    const char *other = strcmp(unit, "unit-a") == 0 ? "unit-b" : "unit-a";
    FUZZ_CHECK(snap_wrapped_key_verify(fuzz_kr_active1, FUZZ_CONTEXT, DATASET, other, rec, n) ==
                   SNAP_EAUTH,
               "verifies for another unit");
    FUZZ_CHECK(snap_wrapped_key_verify(fuzz_kr_active1, FUZZ_CONTEXT, "other", unit, rec, n) ==
                   SNAP_EAUTH,
               "verifies for another data set");
    FUZZ_CHECK(snap_wrapped_key_verify(fuzz_kr_active1, FUZZ_OTHER_CONTEXT, DATASET, unit, rec,
                                       n) == SNAP_EAUTH,
               "verifies under another context");
  }
  free(rec);
  return 0;
}
