/* The DEFLATE and checksum implementations behind the body codec. The stored
 * format is plain zlib (RFC 1950) whichever library writes it: bodies written
 * by libdeflate inflate with zlib and the reverse (tests/test_pipeline.c
 * checks both ways). docs/PERFORMANCE.md has the measurements behind the
 * choices:
 *  - decompression and the frame's CRC-32: libdeflate, always;
 *  - compression at levels 0-5: libdeflate's whole-buffer compressor;
 *  - compression at levels 6-9: zlib. The golden vectors of every earlier
 *    build (tests/data/golden/) are level 6 and pin zlib's exact output: a
 *    state encoded again under the same key and nonce gives the committed
 *    bytes. Level 6 is also the default; keeping zlib there keeps that
 *    property for every body written so far. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

#include "pipeline_internal.h"

/* ---- zlib (levels 6-9), through the snapstore allocator ------------------- */

void *snap__zlib_alloc(void *opaque, unsigned items, unsigned size) {
  (void)opaque;
  if (size && items > SIZE_MAX / size)
    return Z_NULL;
  return snap_malloc((size_t)items * size);
}
void snap__zlib_free(void *opaque, void *p) {
  (void)opaque;
  snap_free(p);
}

static uInt chunk(size_t *left) {
  uInt c = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
  *left -= c;
  return c;
}

/*
 * deflate's memory (256 KiB at zlib's defaults, allocated and zeroed per call)
 * dominated small states, so the window is the smallest that still spans the
 * whole input plus zlib's lookahead, and memLevel keeps zlib's default
 * proportion to it (windowBits 15 <-> memLevel 8). The decoder reads the
 * window size from the stream; these are encoder choices, not format.
 */
static int zlib_fit(const uint8_t *src, size_t slen, uint8_t *dst, size_t cap, int level,
                    size_t *out_len) {
  int wbits = 9;
  while (wbits < 15 && ((size_t)1 << wbits) < slen + 262)
    wbits++;
  const int mem_level = wbits - 7 < 2 ? 2 : wbits - 7;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  zs.zalloc = snap__zlib_alloc;
  zs.zfree = snap__zlib_free;
  if (deflateInit2(&zs, level, Z_DEFLATED, wbits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
    return SNAP_ENOMEM;
  size_t in_left = slen, out_left = cap;
  zs.next_in = (Bytef *)(uintptr_t)src;
  zs.next_out = dst;
  int result = 0;
  for (;;) {
    if (zs.avail_in == 0 && in_left)
      zs.avail_in = chunk(&in_left);
    if (zs.avail_out == 0) {
      if (!out_left)
        break; /* out of room: it does not shrink enough */
      zs.avail_out = chunk(&out_left);
    }
    int r = deflate(&zs, in_left ? Z_NO_FLUSH : Z_FINISH);
    if (r == Z_STREAM_END) {
      *out_len = (size_t)(zs.next_out - dst);
      result = 1;
      break;
    }
    if (r != Z_OK && r != Z_BUF_ERROR) {
      result = SNAP_ENOMEM;
      break;
    }
  }
  deflateEnd(&zs);
  return result;
}

/* ---- the entry points ------------------------------------------------------ */

int snap__deflate_fit(const uint8_t *src, size_t slen, uint8_t *dst, size_t cap, int level,
                      size_t *out_len) {
  if (level < 0 || level >= SNAP__DEFLATE_LEVELS)
    return SNAP_EINVAL;
  if (level >= SNAP__ZLIB_FROM_LEVEL)
    return zlib_fit(src, slen, dst, cap, level, out_len);
  snap__coders *c = snap__thread_coders();
  if (!c)
    return SNAP_ENOMEM;
  if (!c->deflate[level] && !(c->deflate[level] = libdeflate_alloc_compressor(level)))
    return SNAP_ENOMEM;
  size_t n = libdeflate_zlib_compress(c->deflate[level], src, slen, dst, cap);
  if (n == 0)
    return 0; /* it does not fit: it does not shrink enough */
  *out_len = n;
  return 1;
}

snap__inflate_result snap__inflate_exact(const uint8_t *src, size_t slen, uint8_t *dst, size_t dlen,
                                         size_t *in_used, size_t *out_used) {
  *in_used = *out_used = 0;
  snap__coders *c = snap__thread_coders();
  if (!c)
    return SNAP__INFLATE_NOMEM;
  if (!c->inflate && !(c->inflate = libdeflate_alloc_decompressor()))
    return SNAP__INFLATE_NOMEM;
  /* The output buffer is exactly the declared length: libdeflate never
   * writes beyond it, so a stream that would inflate further is refused
   * without any allocation (the decompression-bomb limit was applied to the
   * declared length before the buffer was made). */
  enum libdeflate_result r =
      libdeflate_zlib_decompress_ex(c->inflate, src, slen, dst, dlen, in_used, out_used);
  switch (r) {
  case LIBDEFLATE_SUCCESS:
    return SNAP__INFLATE_OK;
  case LIBDEFLATE_INSUFFICIENT_SPACE:
    return SNAP__INFLATE_TOO_LONG;
  default:
    return SNAP__INFLATE_BAD;
  }
}

uint32_t snap__crc32(const void *p, size_t n) { return libdeflate_crc32(0, p, n); }
