/* The zstd codec behind the body frame (docs/FORMAT.md, "Frame version 2"):
 * one standard zstd frame per body, its content size written, no checksum
 * (the body's tag, MAC or CRC-32 covers every byte) and no dictionary id in
 * the zstd frame (the body frame names its dictionary). The contexts are the
 * calling thread's (coders.c). */
#include <zstd.h>
#include <zstd_errors.h>

#include "pipeline_internal.h"

int snap__zstd_level_min(void) { return ZSTD_minCLevel(); }
int snap__zstd_level_max(void) { return ZSTD_maxCLevel(); }

int snap__zstd_fit(const uint8_t *src, size_t slen, uint8_t *dst, size_t cap, int level,
                   size_t *out_len) {
  snap__coders *z = snap__thread_coders();
  if (!z || (!z->zstd_c && !(z->zstd_c = ZSTD_createCCtx())))
    return SNAP_ENOMEM;
  if (cap == 0)
    return 0;
  size_t r = ZSTD_compressCCtx(z->zstd_c, dst, cap, src, slen, level);
  if (ZSTD_isError(r)) {
    if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
      return SNAP_ENOMEM;
    return 0; /* does not fit (dstSize_tooSmall) */
  }
  *out_len = r;
  return 1;
}

snap__zstd_result snap__zstd_check(const uint8_t *src, size_t slen, size_t dlen) {
  if (ZSTD_findFrameCompressedSize(src, slen) != slen)
    return SNAP__ZSTD_NOT_ONE_FRAME;
  unsigned long long cs = ZSTD_getFrameContentSize(src, slen);
  if (cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN)
    return SNAP__ZSTD_NO_SIZE;
  return cs == dlen ? SNAP__ZSTD_OK : SNAP__ZSTD_WRONG_SIZE;
}

snap__zstd_result snap__zstd_decompress(const uint8_t *src, size_t slen, uint8_t *dst,
                                        size_t dlen, const snap_dict *dict) {
  snap__zstd_result c = snap__zstd_check(src, slen, dlen);
  if (c != SNAP__ZSTD_OK)
    return c;
  snap__coders *z = snap__thread_coders();
  if (!z || (!z->zstd_d && !(z->zstd_d = ZSTD_createDCtx())))
    return SNAP__ZSTD_NOMEM;
  const ZSTD_DDict *dd = snap__dict_ddict(dict);
  size_t r = dd ? ZSTD_decompress_usingDDict(z->zstd_d, dst, dlen, src, slen, dd)
                : ZSTD_decompressDCtx(z->zstd_d, dst, dlen, src, slen);
  if (ZSTD_isError(r))
    return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? SNAP__ZSTD_NOMEM
                                                                 : SNAP__ZSTD_BAD;
  return r == dlen ? SNAP__ZSTD_OK : SNAP__ZSTD_WRONG_SIZE;
}
