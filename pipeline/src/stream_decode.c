/* The stream decoder (snap/stream.h): open and authenticate the head, then
 * each record whole before any of its bytes are read, decompress in pieces
 * the caller sizes, and at the end check that nothing is missing.
 * docs/FORMAT.md, "Streamed states". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snap/pipeline_layer.h"
#include "stream_internal.h"

struct snap_stream_decoder {
  where w;
  char *pid; /* owned: w.pid */
  size_t pid_len;
  unsigned stages, codec;
  chunking ch;
  snap_dict *dict;
  stream_codec *cz;
  chunk_seal *seal; /* guarded memory */
  uint8_t *pay;     /* the current record's payload, authenticated */
  size_t pay_cap, pay_len, pay_pos;
  uint64_t index, plain_out;
  bool ended; /* the compressed stream ended */
  int damage; /* what damage is reported as: EAUTH for a keyed stream, else ECORRUPT */
  int failed; /* sticky */
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int damaged(snap_stream_decoder *d, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  d->failed = snap__frame_fail(&d->w, d->damage, "%s", msg);
  return d->failed;
}

void snap_stream_decoder_free(snap_stream_decoder *d) {
  if (!d)
    return;
  if (d->seal)
    sodium_free(d->seal); /* wipes */
  snap__codec_free(d->cz);
  snap_dict_free(d->dict);
  if (d->pay)
    sodium_memzero(d->pay, d->pay_cap);
  snap_free(d->pay);
  snap_free(d->pid);
  snap_free(d);
}

/* The dictionary a compressed head names, through the reader's source. */
static int dec_dict(snap_stream_decoder *d, const snap__eff *e, uint32_t id) {
  if (!e->dict_src)
    return snap__frame_fail(&d->w, SNAP_ENOTFOUND,
                            "the stream is compressed with dictionary %u and this reader has no "
                            "dictionary source",
                            (unsigned)id);
  return snap__stream_dict(&d->w, e, id, NULL, &d->dict);
}

/* Everything after the head authenticated: dictionary, decompressor, seal,
 * the payload buffer. */
static int dec_setup(snap_stream_decoder *d, const snap__eff *e, const frame *f,
                     const uint8_t subkey[SNAP__SUBKEY_BYTES]) {
  int rc;
  d->stages = f->stages;
  snap__chunking_read(f, &d->ch);
  d->damage = (f->stages & (ST_AEAD | ST_MAC)) ? SNAP_EAUTH : SNAP_ECORRUPT;
  if (f->stages & ST_COMP) {
    d->codec = f->codec;
    if (f->dict_id && (rc = dec_dict(d, e, f->dict_id)) != SNAP_OK)
      return rc;
    if (!(d->cz = snap__codec_new_decompress(d->codec, d->dict)))
      return snap__frame_fail(&d->w, SNAP_ENOMEM, "out of memory for the decompressor");
  }
  if (!(d->seal = sodium_malloc(sizeof *d->seal)))
    return snap__frame_fail(&d->w, SNAP_ENOMEM, "out of memory for the keys");
  snap__seal_init(d->seal, f->stages & (ST_AEAD | ST_MAC), subkey, d->ch.nonce, d->w.seq, d->pid,
                  d->pid_len);
  const uint64_t biggest = d->ch.stored < d->ch.chunk_size ? d->ch.stored : d->ch.chunk_size;
  d->pay_cap = (size_t)biggest + d->ch.overhead;
  if (d->ch.count && !(d->pay = snap_malloc(d->pay_cap)))
    return snap__frame_fail(&d->w, SNAP_ENOMEM, "out of memory for a %zu-byte record",
                            d->pay_cap);
  return SNAP_OK;
}

static void fill_info(const snap_stream_decoder *d, snap_format fmt, snap_stream_info *info) {
  *info = (snap_stream_info){.chunked = true,
                             .fmt = fmt,
                             .stages = d->stages,
                             .chunk_size = d->ch.chunk_size,
                             .chunk_count = d->ch.count,
                             .plain_len = d->ch.plain,
                             .stored_len = d->ch.stored,
                             .records_len = d->ch.stored + d->ch.count * d->ch.overhead,
                             .record_overhead = d->ch.overhead};
}

int snap__stream_decoder_open_envelope(snap_stream_decoder **out, const char *pid, int64_t seq,
                                       const void *head, size_t head_len, const snap_options *o,
                                       const uint8_t dek[SNAP_DEK_BYTES], uint64_t max_plain,
                                       snap_stream_info *info) {
  where w = {"stream decode", pid, seq};
  snap_buf none = SNAP_BUF_INIT;
  if (info)
    memset(info, 0, sizeof *info);
  if (!out)
    return snap_error_set(SNAP_EINVAL, "stream decode: NULL output");
  *out = NULL;
  int rc = snap__body_check_call(&w, pid, false, seq, &none);
  if (rc)
    return rc;
  if (!head && head_len)
    return snap__frame_fail(&w, SNAP_EINVAL, "head is NULL but its length is %zu", head_len);
  snap__eff e;
  snap__options_effective(o, &e);
  e.max_decoded = max_plain && max_plain < SIZE_MAX ? (size_t)max_plain : SIZE_MAX;
  frame f;
  uint8_t *subkey = sodium_malloc(SNAP__SUBKEY_BYTES);
  snap_stream_decoder *d = snap_calloc(1, sizeof *d);
  const size_t pid_len = strlen(pid);
  char *own = snap_malloc(pid_len + 1);
  if (!subkey || !d || !own) {
    rc = snap__frame_fail(&w, SNAP_ENOMEM, "out of memory");
  } else {
    memcpy(own, pid, pid_len + 1);
    d->pid = own;
    own = NULL;
    d->pid_len = pid_len;
    d->w = (where){"stream decode", d->pid, seq};
    rc = snap__head_open(d->pid, seq, head, head_len, &e, dek, &f, subkey);
  }
  if (rc == SNAP_OK)
    rc = dec_setup(d, &e, &f, subkey);
  if (subkey)
    sodium_free(subkey);
  snap_free(own);
  if (rc != SNAP_OK) {
    snap_stream_decoder_free(d);
    return rc;
  }
  if (info)
    fill_info(d, f.fmt, info);
  *out = d;
  return SNAP_OK;
}

int snap_stream_decoder_open(snap_stream_decoder **out, const char *pid, int64_t seq,
                             const void *head, size_t head_len, const snap_options *o,
                             uint64_t max_plain, snap_stream_info *info) {
  return snap__stream_decoder_open_envelope(out, pid, seq, head, head_len, o, NULL, max_plain,
                                            info);
}

/* ---- records ------------------------------------------------------------------ */

static int usable(snap_stream_decoder *d) {
  if (!d)
    return snap_error_set(SNAP_EINVAL, "stream decode: NULL decoder");
  if (d->failed)
    return snap__frame_fail(&d->w, d->failed, "the stream already failed and must be discarded");
  return SNAP_OK;
}

int snap_stream_decoder_push(snap_stream_decoder *d, const void *record, size_t len) {
  int rc = usable(d);
  if (rc)
    return rc;
  if (!record && len)
    return snap__frame_fail(&d->w, SNAP_EINVAL, "record is NULL but its length is %zu", len);
  if (d->pay_pos < d->pay_len)
    return snap__frame_fail(&d->w, SNAP_EINVAL,
                            "record %llu pushed before the previous one was read to its end",
                            (unsigned long long)d->index);
  const uint64_t i = d->index;
  if (i >= d->ch.count)
    return damaged(d, "record %llu pushed past the last (the head states %llu records)",
                   (unsigned long long)i, (unsigned long long)d->ch.count);
  const uint64_t left = d->ch.stored - i * d->ch.chunk_size;
  const size_t want = (size_t)(left < d->ch.chunk_size ? left : d->ch.chunk_size) + d->ch.overhead;
  if (len != want)
    return damaged(d, "record %llu has %zu bytes, the head makes it %zu", (unsigned long long)i,
                   len, want);
  const bool last = i + 1 == d->ch.count;
  if (snap__open_chunk(d->seal, i, last, record, len, d->pay) != 0)
    return damaged(d,
                   "record %llu of %llu does not authenticate: altered, out of order, missing, "
                   "repeated or from another stream",
                   (unsigned long long)i, (unsigned long long)d->ch.count);
  uint8_t digest[CHUNK_MAC_LEN];
  const size_t dn = snap__seal_digest(d->seal, digest);
  if (last && dn && sodium_memcmp(digest, d->ch.digest, dn) != 0)
    return damaged(d, "the last record's digest is not the one the head states");
  d->pay_len = len - d->ch.overhead;
  d->pay_pos = 0;
  d->index++;
  return SNAP_OK;
}

/* Plaintext from the current payload through the decompressor. */
static int inflate_some(snap_stream_decoder *d, uint8_t *buf, size_t cap, size_t *got) {
  for (;;) {
    if (d->ended) {
      if (d->pay_pos < d->pay_len)
        return damaged(d, "%zu bytes follow the end of the compressed stream",
                       d->pay_len - d->pay_pos);
      return SNAP_OK;
    }
    const uint8_t *in = d->pay + d->pay_pos;
    size_t in_len = d->pay_len - d->pay_pos, n = 0;
    const size_t before = in_len;
    const codec_result r = snap__codec_step(d->cz, &in, &in_len, buf, cap, &n, false);
    d->pay_pos = d->pay_len - in_len;
    if (r == CODEC_NOMEM)
      return d->failed = snap__frame_fail(&d->w, SNAP_ENOMEM, "out of memory decompressing");
    if (r == CODEC_BAD)
      return damaged(d, "corrupt compressed data in record %llu",
                     (unsigned long long)(d->index - 1));
    d->ended = r == CODEC_END;
    if (!n && !d->ended && in_len && in_len == before)
      return damaged(d, "the compressed stream makes no progress");
    if (n || (in_len == 0 && !d->ended)) {
      *got = n;
      return SNAP_OK;
    }
  }
}

int snap_stream_decoder_read(snap_stream_decoder *d, void *buf, size_t cap, size_t *got) {
  if (got)
    *got = 0;
  int rc = usable(d);
  if (rc)
    return rc;
  if (!buf || !cap || !got)
    return snap__frame_fail(&d->w, SNAP_EINVAL, "read needs a buffer of at least one byte");
  size_t n = 0;
  if (d->cz) {
    if ((rc = inflate_some(d, buf, cap, &n)) != SNAP_OK)
      return rc;
  } else {
    n = d->pay_len - d->pay_pos < cap ? d->pay_len - d->pay_pos : cap;
    if (n)
      memcpy(buf, d->pay + d->pay_pos, n);
    d->pay_pos += n;
  }
  if (n > d->ch.plain - d->plain_out)
    return damaged(d, "the records yield more than the %llu bytes the head declares",
                   (unsigned long long)d->ch.plain);
  d->plain_out += n;
  *got = n;
  return SNAP_OK;
}

int snap_stream_decoder_finish(snap_stream_decoder *d) {
  int rc = usable(d);
  if (rc)
    return rc;
  if (d->index < d->ch.count)
    return damaged(d, "truncated: %llu of the %llu records the head states",
                   (unsigned long long)d->index, (unsigned long long)d->ch.count);
  uint8_t probe;
  size_t n = 0;
  if (d->pay_pos < d->pay_len || (d->cz && !d->ended)) {
    if ((rc = snap_stream_decoder_read(d, &probe, 1, &n)) != SNAP_OK)
      return rc;
    if (n)
      return snap__frame_fail(&d->w, SNAP_EINVAL, "finish before the plaintext was read to its end");
  }
  if (d->cz && d->ch.count && !d->ended)
    return damaged(d, "the compressed stream is truncated");
  if (d->plain_out != d->ch.plain)
    return damaged(d, "the records yield %llu bytes, the head declares %llu",
                   (unsigned long long)d->plain_out, (unsigned long long)d->ch.plain);
  return SNAP_OK;
}
