/* The streaming codecs of streamed states: one continuous zlib stream (zlib's
 * deflate / inflate: libdeflate has no streaming interface) or one zstd frame
 * (ZSTD_compressStream2 / ZSTD_decompressStream, with a dictionary), fed and
 * drained in bounded pieces. */
#include <limits.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "stream_internal.h"

struct stream_codec {
  unsigned codec; /* FRAME_CODEC_* */
  bool compress;
  bool z_live; /* zs initialised */
  z_stream zs;
  ZSTD_CCtx *zc;
  ZSTD_DCtx *zd;
  snap_dict *dict; /* a reference, or NULL */
};

static stream_codec *codec_alloc(unsigned codec, bool compress, snap_dict *dict) {
  stream_codec *c = snap_calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->codec = codec;
  c->compress = compress;
  c->dict = dict ? snap_dict_ref(dict) : NULL;
  c->zs.zalloc = snap__zlib_alloc;
  c->zs.zfree = snap__zlib_free;
  return c;
}

/* zstd's level, its window capped so that a reader's memory stays bounded:
 * levels up to 19 use at most 8 MiB for a stream of unknown size, the
 * "ultra" levels above more. */
static bool zstd_setup_compress(stream_codec *c, int level) {
  if (!(c->zc = ZSTD_createCCtx()))
    return false;
  if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, level)))
    return false;
  if (level > 19 &&
      ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_windowLog, STREAM_ZSTD_WINDOW_LOG)))
    return false;
  /* The body frame's tag, MAC or CRC chain covers every byte; its field 2
   * names the dictionary. */
  if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 0)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_dictIDFlag, 0)))
    return false;
  if (c->dict) {
    size_t n;
    const void *b = snap_dict_bytes(c->dict, &n);
    if (ZSTD_isError(ZSTD_CCtx_loadDictionary(c->zc, b, n)))
      return false;
  }
  return true;
}

stream_codec *snap__codec_new_compress(unsigned codec, int level, snap_dict *dict) {
  stream_codec *c = codec_alloc(codec, true, dict);
  if (!c)
    return NULL;
  bool ok;
  if (codec == FRAME_CODEC_ZSTD) {
    ok = zstd_setup_compress(c, level);
  } else {
    ok = deflateInit2(&c->zs, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    c->z_live = ok;
  }
  if (!ok) {
    snap__codec_free(c);
    return NULL;
  }
  return c;
}

stream_codec *snap__codec_new_decompress(unsigned codec, snap_dict *dict) {
  stream_codec *c = codec_alloc(codec, false, dict);
  if (!c)
    return NULL;
  bool ok;
  if (codec == FRAME_CODEC_ZSTD) {
    ok = (c->zd = ZSTD_createDCtx()) != NULL &&
         !ZSTD_isError(ZSTD_DCtx_setParameter(c->zd, ZSTD_d_windowLogMax, STREAM_ZSTD_WINDOW_LOG)) &&
         (!c->dict || !ZSTD_isError(ZSTD_DCtx_refDDict(c->zd, snap__dict_ddict(c->dict))));
  } else {
    ok = inflateInit2(&c->zs, 15) == Z_OK; /* a zlib wrapper, a window up to 32 KiB */
    c->z_live = ok;
  }
  if (!ok) {
    snap__codec_free(c);
    return NULL;
  }
  return c;
}

void snap__codec_free(stream_codec *c) {
  if (!c)
    return;
  if (c->z_live) {
    if (c->compress)
      deflateEnd(&c->zs);
    else
      inflateEnd(&c->zs);
  }
  ZSTD_freeCCtx(c->zc);
  ZSTD_freeDCtx(c->zd);
  snap_dict_free(c->dict);
  snap_free(c);
}

static codec_result zlib_step(stream_codec *c, const uint8_t **in, size_t *in_len, uint8_t *out,
                              size_t cap, size_t *out_len, bool end) {
  const uInt in_n = *in_len > UINT_MAX ? UINT_MAX : (uInt)*in_len;
  const uInt out_n = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
  c->zs.next_in = (Bytef *)(uintptr_t)*in;
  c->zs.avail_in = in_n;
  c->zs.next_out = out;
  c->zs.avail_out = out_n;
  const int r = c->compress ? deflate(&c->zs, end && in_n == *in_len ? Z_FINISH : Z_NO_FLUSH)
                            : inflate(&c->zs, Z_NO_FLUSH);
  const size_t used = in_n - c->zs.avail_in;
  if (used) /* *in may be NULL when finishing */
    *in += used;
  *in_len -= used;
  *out_len = out_n - c->zs.avail_out;
  switch (r) {
  case Z_STREAM_END:
    return CODEC_END;
  case Z_OK:
  case Z_BUF_ERROR: /* no progress possible: more input or room needed */
    return CODEC_OK;
  case Z_MEM_ERROR:
    return CODEC_NOMEM;
  default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
    return CODEC_BAD;
  }
}

static codec_result zstd_step(stream_codec *c, const uint8_t **in, size_t *in_len, uint8_t *out,
                              size_t cap, size_t *out_len, bool end) {
  ZSTD_inBuffer ib = {*in, *in_len, 0};
  ZSTD_outBuffer ob = {out, cap, 0};
  const size_t r = c->compress
                       ? ZSTD_compressStream2(c->zc, &ob, &ib, end ? ZSTD_e_end : ZSTD_e_continue)
                       : ZSTD_decompressStream(c->zd, &ob, &ib);
  if (ib.pos)
    *in += ib.pos;
  *in_len -= ib.pos;
  *out_len = ob.pos;
  if (ZSTD_isError(r))
    return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? CODEC_NOMEM : CODEC_BAD;
  /* 0: compressing, everything is flushed (with end); decompressing, the frame ended. */
  if (r == 0 && (end || !c->compress))
    return CODEC_END;
  return CODEC_OK;
}

codec_result snap__codec_step(stream_codec *c, const uint8_t **in, size_t *in_len, uint8_t *out,
                              size_t cap, size_t *out_len, bool end) {
  return c->codec == FRAME_CODEC_ZSTD ? zstd_step(c, in, in_len, out, cap, out_len, end)
                                      : zlib_step(c, in, in_len, out, cap, out_len, end);
}

int snap__stream_dict(const where *w, const snap__eff *e, uint32_t id, const char *name,
                      snap_dict **out) {
  snap_dict *d = NULL;
  snap_error_clear();
  int rc = e->dict_src(e->dict_ud, id, name, &d);
  const bool found = rc == SNAP_OK && d && (id == 0 || snap_dict_id(d) == id);
  if (found) {
    *out = d;
    return SNAP_OK;
  }
  if (rc == SNAP_OK) {
    snap_dict_free(d); /* none, or another id than asked for */
    rc = SNAP_ENOTFOUND;
  }
  const char *why = snap_error_code() != SNAP_OK ? snap_error_message() : "not found";
  if (name)
    return snap__frame_fail(w, rc, "dictionary '%s': %s", name, why);
  return snap__frame_fail(w, rc, "dictionary %u: %s", (unsigned)id, why);
}
