/* The chunking field (frame field type 6) of a stream head: its layout, its
 * checks against the stage bits and the lengths it states, and inspecting a
 * head without keys (docs/FORMAT.md, "Streamed states"). */
#include <string.h>

#include "stream_internal.h"

size_t snap__chunk_overhead(unsigned stages) {
  return (stages & ST_AEAD) ? CHUNK_AEAD_LEN : (stages & ST_MAC) ? CHUNK_MAC_LEN : CHUNK_CRC_LEN;
}

size_t snap__chunking_len(unsigned stages) {
  return (stages & ST_AEAD) ? CHUNKING_LEN_AEAD
         : (stages & ST_MAC) ? CHUNKING_LEN_MAC
                             : CHUNKING_LEN_NONE;
}

void snap__chunking_read(const frame *f, chunking *c) {
  const uint8_t *v = f->field[FIELD_CHUNKING].val;
  memset(c, 0, sizeof *c);
  c->chunk_size = snap__get_u32le(v);
  c->count = snap__get_u64le(v + 4);
  c->stored = snap__get_u64le(v + 12);
  memcpy(c->nonce, v + 20, STREAM_NONCE_LEN);
  c->digest_len = f->field[FIELD_CHUNKING].len - CHUNKING_FIXED;
  memcpy(c->digest, v + CHUNKING_FIXED, c->digest_len);
  c->plain = f->orig_len;
  c->overhead = snap__chunk_overhead(f->stages);
}

size_t snap__chunking_write(const chunking *c, unsigned stages, uint8_t *dst) {
  snap__put_u32le(dst, c->chunk_size);
  snap__put_u64le(dst + 4, c->count);
  snap__put_u64le(dst + 12, c->stored);
  memcpy(dst + 20, c->nonce, STREAM_NONCE_LEN);
  const size_t n = snap__chunking_len(stages);
  memcpy(dst + CHUNKING_FIXED, c->digest, n - CHUNKING_FIXED);
  return n;
}

int snap__chunking_check_field(const where *w, const frame *f) {
  const frame_field *c = &f->field[FIELD_CHUNKING];
  const size_t want = snap__chunking_len(f->stages);
  if (c->len != want)
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "chunking field of %u bytes, a stream %s has %zu", (unsigned)c->len,
                            (f->stages & ST_AEAD)  ? "with AEAD"
                            : (f->stages & ST_MAC) ? "with a MAC"
                                                   : "with neither AEAD nor MAC",
                            want);
  const uint32_t size = snap__get_u32le(c->val);
  if (size < SNAP_STREAM_CHUNK_MIN || size > SNAP_STREAM_CHUNK_MAX)
    return snap__frame_fail(w, SNAP_EFORMAT, "chunking field: chunk size %u is not 1..%zu",
                            (unsigned)size, SNAP_STREAM_CHUNK_MAX);
  return SNAP_OK;
}

int snap__chunking_check_lengths(const where *w, const frame *f) {
  chunking c;
  snap__chunking_read(f, &c);
  if (f->body_len != 0)
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "stream head with a body of %zu bytes (a head's body is empty)",
                            f->body_len);
  const uint64_t count = c.stored / c.chunk_size + (c.stored % c.chunk_size != 0);
  if (c.count != count)
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "chunking field: %llu chunks of %u bytes cannot hold %llu bytes",
                            (unsigned long long)c.count, (unsigned)c.chunk_size,
                            (unsigned long long)c.stored);
  const bool comp = f->stages & ST_COMP;
  const uint64_t ratio = f->codec == FRAME_CODEC_ZSTD ? ZSTD_MAX_RATIO : ZLIB_MAX_RATIO;
  if (!comp ? c.plain != c.stored
            : (c.plain == 0 || c.stored == 0 || c.plain / ratio > c.stored))
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "stream head declares a %llu-byte state in %llu %s bytes",
                            (unsigned long long)c.plain, (unsigned long long)c.stored,
                            comp ? "compressed" : "stored");
  if (c.count > (UINT64_MAX - c.stored) / c.overhead)
    return snap__frame_fail(w, SNAP_ECORRUPT, "chunking field: %llu chunks cannot be stored",
                            (unsigned long long)c.count);
  return SNAP_OK;
}

int snap_body_inspect_stream(const void *body, size_t body_len, snap_stream_info *info) {
  if (!info)
    return snap_error_set(SNAP_EINVAL, "inspect: NULL stream info");
  memset(info, 0, sizeof *info);
  snap_format fmt;
  unsigned stages;
  int rc = snap_body_inspect(body, body_len, &fmt, &stages, NULL, NULL);
  if (rc)
    return rc;
  where w = {"inspect", NULL, 0};
  frame f;
  if ((rc = snap__frame_parse(&w, body, body_len, &f)) != SNAP_OK)
    return rc;
  if (!f.field[FIELD_CHUNKING].present)
    return SNAP_OK;
  chunking c;
  snap__chunking_read(&f, &c);
  *info = (snap_stream_info){.chunked = true,
                             .fmt = f.fmt,
                             .stages = f.stages,
                             .chunk_size = c.chunk_size,
                             .chunk_count = c.count,
                             .plain_len = c.plain,
                             .stored_len = c.stored,
                             .records_len = c.stored + c.count * c.overhead,
                             .record_overhead = c.overhead};
  return SNAP_OK;
}

size_t snap_stream_record_len(const snap_stream_info *info, uint64_t index) {
  if (!info || !info->chunked || index >= info->chunk_count)
    return 0;
  const uint64_t before = index * info->chunk_size, left = info->stored_len - before;
  const uint64_t n = left < info->chunk_size ? left : info->chunk_size;
  return (size_t)n + info->record_overhead;
}
