/*
 * The DEFLATE implementations side by side on the bench states: libdeflate's
 * whole-buffer zlib-format compressor and decompressor against zlib's
 * streaming ones, as snapstore used them (the window sized to the input, a
 * raw inflate of the stream into a buffer of the known length). The same
 * bytes in, the same format out: the rows compare speed and compressed size.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

#include "bench.h"
#include "cases.h"

/* zlib with the window just covering the input, as the body codec did. */
static size_t zlib_compress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, int level) {
  int wbits = 9;
  while (wbits < 15 && ((size_t)1 << wbits) < n + 262) {
    wbits++;
  }
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, level, Z_DEFLATED, wbits, wbits - 7 < 2 ? 2 : wbits - 7,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return 0;
  }
  zs.next_in = (Bytef *)(uintptr_t)src;
  zs.avail_in = (uInt)n;
  zs.next_out = dst;
  zs.avail_out = (uInt)cap;
  int r = deflate(&zs, Z_FINISH);
  size_t out = r == Z_STREAM_END ? (size_t)(zs.next_out - dst) : 0;
  deflateEnd(&zs);
  return out;
}

/* zlib's inflate of the stream's deflate data, raw (no Adler-32), into
 * exactly n bytes, as the body codec did. */
static int zlib_decompress(const uint8_t *src, size_t slen, uint8_t *dst, size_t n) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    return -1;
  }
  zs.next_in = (Bytef *)(uintptr_t)(src + 2);
  zs.avail_in = (uInt)(slen - 6);
  zs.next_out = dst;
  zs.avail_out = (uInt)n;
  int r = inflate(&zs, Z_FINISH);
  int ok = r == Z_STREAM_END && zs.avail_out == 0;
  inflateEnd(&zs);
  return ok ? 0 : -1;
}

struct deflate_case {
  const uint8_t *state;
  size_t len;
  int level;
  int decompress;
  size_t zlib_len, libdeflate_len; /* compressed sizes, measured by the timed loops */
};

deflate_case *deflate_case_new(const uint8_t *state, size_t len, int level, int decompress) {
  deflate_case *c = calloc(1, sizeof *c);
  if (c) {
    c->state = state;
    c->len = len;
    c->level = level;
    c->decompress = decompress;
  }
  return c;
}

size_t deflate_case_size(const deflate_case *c, int libdeflate) {
  return libdeflate ? c->libdeflate_len : c->zlib_len;
}

static int timed(const bench_ctx *bx, deflate_case *c, int libdeflate, double *us, char *err,
                 size_t errcap) {
  size_t cap = c->len + c->len / 1000 + 64;
  uint8_t *comp = malloc(cap), *back = malloc(c->len ? c->len : 1);
  struct libdeflate_compressor *lc = libdeflate_alloc_compressor(c->level);
  struct libdeflate_decompressor *ld = libdeflate_alloc_decompressor();
  int rc = -1;
  if (!comp || !back || !lc || !ld) {
    snprintf(err, errcap, "out of memory");
    goto out;
  }
  /* The compressed stream both sides decompress: each its own. */
  size_t clen = libdeflate ? libdeflate_zlib_compress(lc, c->state, c->len, comp, cap)
                           : zlib_compress(c->state, c->len, comp, cap, c->level);
  if (clen == 0) {
    snprintf(err, errcap, "compression failed");
    goto out;
  }
  if (libdeflate) {
    c->libdeflate_len = clen;
  } else {
    c->zlib_len = clen;
  }
  long n = 0;
  double t0 = bench_now(), el = 0;
  do {
    if (c->decompress) {
      int bad = libdeflate ? libdeflate_zlib_decompress(ld, comp, clen, back, c->len, NULL) !=
                                 LIBDEFLATE_SUCCESS
                           : zlib_decompress(comp, clen, back, c->len) != 0;
      if (bad) {
        snprintf(err, errcap, "decompression failed");
        goto out;
      }
    } else {
      size_t k = libdeflate ? libdeflate_zlib_compress(lc, c->state, c->len, comp, cap)
                            : zlib_compress(c->state, c->len, comp, cap, c->level);
      if (k != clen) {
        snprintf(err, errcap, "compression is not deterministic");
        goto out;
      }
    }
    n++;
    el = bench_now() - t0;
  } while (el < bx->cfg->codec_seconds);
  if (c->decompress && memcmp(back, c->state, c->len) != 0) {
    snprintf(err, errcap, "round trip changed the bytes");
    goto out;
  }
  *us = el * 1e6 / (double)n;
  rc = 0;
out:
  libdeflate_free_compressor(lc);
  libdeflate_free_decompressor(ld);
  free(comp);
  free(back);
  return rc;
}

int deflate_libdeflate(const bench_ctx *bx, void *c, double *us, char *err, size_t errcap) {
  return timed(bx, c, 1, us, err, errcap);
}

int deflate_zlib(const bench_ctx *bx, void *c, double *us, char *err, size_t errcap) {
  return timed(bx, c, 0, us, err, errcap);
}
