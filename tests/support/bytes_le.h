/* Little-endian integers, as the body frame stores them (docs/FORMAT.md):
 * what the tests that build or edit bodies by hand write. */
#ifndef SNAP_TEST_BYTES_LE_H
#define SNAP_TEST_BYTES_LE_H

#include <stddef.h>
#include <stdint.h>

static inline void put_u16le(uint8_t *p, size_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void put_u32le(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_u64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

#endif
