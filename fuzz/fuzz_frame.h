/*
 * The body frame's fields (docs/FORMAT.md), for structure-aware mutations:
 *
 *   0  magic "SNPB"      4  frame version     5  payload format
 *   6  stages            7  reserved (0)      8  key version (u32 LE)
 *   12 original length (u64 LE)               20 nonce (24 bytes, AEAD only)
 *   then the body and a trailer: AEAD tag (16), MAC (32) or CRC-32 (4, LE,
 *   over everything before it).
 *
 * Kept apart from the library on purpose: if the format changes without this
 * file, the mutations get less precise but nothing breaks.
 */
#ifndef SNAP_FUZZ_FRAME_H
#define SNAP_FUZZ_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FRAME_HDR 20u
#define FRAME_NONCE 24u

enum {
  FIELD_MAGIC,
  FIELD_VERSION,
  FIELD_FORMAT,
  FIELD_STAGES,
  FIELD_RESERVED,
  FIELD_KEY_VERSION,
  FIELD_ORIG_LEN,
  FIELD_NONCE,
  FIELD_TRAILER,
  FIELD_FIX_CRC,
  FIELD_COUNT
};

static inline void frame_put_le(uint8_t *b, size_t len, size_t at, uint64_t v, size_t n) {
  for (size_t i = 0; i < n && at + i < len; i++)
    b[at + i] = (uint8_t)(v >> (8 * i));
}

/* The trailer length the (possibly mutated) stage byte implies. */
static inline size_t frame_trailer_len(const uint8_t *b, size_t len) {
  unsigned st = len > 6 ? b[6] : 0;
  return (st & 0x02u) ? 16u : (st & 0x04u) ? 32u : 4u;
}

/* Recomputes a plaintext body's CRC-32 trailer, so mutations of an
 * unauthenticated body get past the checksum into the lengths and zlib. */
static inline void frame_fix_crc(uint8_t *b, size_t len) {
  if (len < FRAME_HDR + 4u)
    return;
  uint32_t crc = (uint32_t)crc32_z(0, b, len - 4);
  frame_put_le(b, len, len - 4, crc, 4);
}

/* A copy of the body after the two selector bytes of `data` (size >= 2),
 * its CRC-32 recomputed when data[1]'s top bit says so; NULL when out of
 * memory. Free it. */
static inline uint8_t *fuzz_body_copy(const uint8_t *data, size_t size, size_t *body_len) {
  *body_len = size - 2;
  uint8_t *body = malloc(*body_len ? *body_len : 1);
  if (!body)
    return NULL;
  memcpy(body, data + 2, *body_len);
  if (data[1] & 0x80)
    frame_fix_crc(body, *body_len);
  return body;
}

/* Overwrites field `field % FIELD_COUNT` with `v` (small fields), `w` (wide
 * fields) or byte `v` at `pos` within it (nonce, trailer). */
static inline void fuzz_frame_set_field(uint8_t *b, size_t len, size_t pos, uint8_t v, uint64_t w) {
  switch (pos % FIELD_COUNT) {
  case FIELD_MAGIC:
    frame_put_le(b, len, v & 3u, w, 1);
    break;
  case FIELD_VERSION:
    frame_put_le(b, len, 4, v, 1);
    break;
  case FIELD_FORMAT:
    frame_put_le(b, len, 5, v, 1);
    break;
  case FIELD_STAGES:
    frame_put_le(b, len, 6, v, 1);
    break;
  case FIELD_RESERVED:
    frame_put_le(b, len, 7, v, 1);
    break;
  case FIELD_KEY_VERSION:
    /* Mostly the interesting ones: 0, 1, 2 (present), 3 (absent), max. */
    frame_put_le(b, len, 8, (v & 0x80u) ? w : (uint64_t)(v % 4u) - ((v & 0x40u) ? 4u : 0u), 4);
    break;
  case FIELD_ORIG_LEN:
    /* Small deltas around the truth reach the length checks' edges. */
    if (len >= FRAME_HDR && !(v & 0x80u)) {
      uint64_t cur = 0;
      for (int i = 7; i >= 0; i--)
        cur = (cur << 8) | b[12 + i];
      w = cur + (uint64_t)(int64_t)((int)(v & 0x3fu) - 32);
    }
    frame_put_le(b, len, 12, w, 8);
    break;
  case FIELD_NONCE:
    frame_put_le(b, len, FRAME_HDR + (size_t)(v % FRAME_NONCE), w, 1);
    break;
  case FIELD_TRAILER: {
    size_t t = frame_trailer_len(b, len);
    if (len >= t)
      frame_put_le(b, len, len - t + (size_t)(v % t), w, 1);
    break;
  }
  case FIELD_FIX_CRC:
    frame_fix_crc(b, len);
    break;
  }
}

#endif
