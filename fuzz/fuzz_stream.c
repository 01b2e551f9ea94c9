/*
 * Streamed states (snap/stream.h, docs/FORMAT.md "Streamed states"): the
 * chunked frame, its head and its records. Input: a selector byte (the
 * options of fuzz_common.h; bit 7 of the second byte picks zstd instead of
 * zlib), a mode byte, then:
 *  - mode 0 (decode): u16le head length, the head, then records: each
 *    u16le length and bytes. The decoder must answer SNAP_OK or an error,
 *    never hand out more than the head declares, and fail once it failed.
 *  - mode 1 (round trip): a chunk size byte (1..256), a cap byte for reads,
 *    then the state. A valid state streams and decodes back to itself, every
 *    record has the length the head gives it; an invalid one is SNAP_EFORMAT.
 *  - mode 2 (tamper): as mode 1, then u16le position and a byte: that byte
 *    of the records (or, past them, of the head) XORed with it must make the
 *    stream fail to decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "snap/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct recs {
  snap_buf all;  /* records one after the other */
  size_t n;      /* how many */
  size_t len[512];
  int overflow;  /* more records than len[] holds */
} recs;

static int collect(void *ud, uint64_t index, const void *p, size_t len) {
  recs *r = ud;
  FUZZ_CHECK(index == r->n, "record %llu arrived as number %zu", (unsigned long long)index, r->n);
  if (r->n == sizeof r->len / sizeof *r->len) {
    r->overflow = 1;
    return SNAP_EFULL;
  }
  if (snap_buf_reserve(&r->all, r->all.len + len + 1) != SNAP_OK)
    return SNAP_ENOMEM;
  if (len)
    memcpy(r->all.data + r->all.len, p, len);
  r->all.len += len;
  r->len[r->n++] = len;
  return SNAP_OK;
}

/* Decodes head + records; the plaintext into `out` (may be NULL). */
static int decode(const snap_options *o, const uint8_t *head, size_t hn, const recs *r,
                  size_t cap, snap_buf *out) {
  snap_stream_decoder *d;
  snap_stream_info info;
  int rc = snap_stream_decoder_open(&d, "account-42", 7, head, hn, o, 1u << 20, &info);
  FUZZ_CHECK(fuzz_known_code(rc), "open returned %d", rc);
  if (rc)
    return rc;
  uint8_t buf[256];
  uint64_t total = 0;
  const uint8_t *p = r->all.data;
  for (size_t i = 0; i < r->n && rc == SNAP_OK; i++) {
    rc = snap_stream_decoder_push(d, p, r->len[i]);
    p += r->len[i];
    size_t got = 1;
    while (rc == SNAP_OK && got) {
      rc = snap_stream_decoder_read(d, buf, cap, &got);
      total += got;
      FUZZ_CHECK(total <= info.plain_len, "%llu bytes out, the head declares %llu",
                 (unsigned long long)total, (unsigned long long)info.plain_len);
      if (rc == SNAP_OK && got && out && snap_buf_reserve(out, out->len + got) == SNAP_OK) {
        memcpy(out->data + out->len, buf, got);
        out->len += got;
      }
    }
  }
  if (rc == SNAP_OK)
    rc = snap_stream_decoder_finish(d);
  else
    FUZZ_CHECK(snap_stream_decoder_finish(d) == rc, "a failure is sticky");
  FUZZ_CHECK(fuzz_known_code(rc), "decode returned %d", rc);
  FUZZ_CHECK(rc != SNAP_OK || total == info.plain_len, "finish accepted %llu of %llu bytes",
             (unsigned long long)total, (unsigned long long)info.plain_len);
  snap_stream_decoder_free(d);
  return rc;
}

static void mode_decode(const snap_options *o, fuzz_reader *in) {
  size_t hn = fuzz_u8(in);
  hn |= (size_t)fuzz_u8(in) << 8;
  if (hn > in->n)
    hn = in->n;
  const uint8_t *head = in->p;
  in->p += hn;
  in->n -= hn;
  recs r = {SNAP_BUF_INIT, 0, {0}, 0};
  while (in->n && r.n < sizeof r.len / sizeof *r.len) {
    size_t len = fuzz_u8(in);
    len |= (size_t)fuzz_u8(in) << 8;
    if (len > in->n)
      len = in->n;
    if (collect(&r, r.n, in->p, len) != SNAP_OK)
      break;
    in->p += len;
    in->n -= len;
  }
  decode(o, head, hn, &r, 1 + (hn & 127), NULL);
  snap_buf_dispose(&r.all);
}

static void mode_round_trip(const snap_options *o, fuzz_reader *in, int tamper) {
  const size_t chunk = (size_t)fuzz_u8(in) + 1, cap = (size_t)fuzz_u8(in) + 1;
  size_t pos = 0;
  uint8_t flip = 0;
  if (tamper) {
    pos = fuzz_u8(in);
    pos |= (size_t)fuzz_u8(in) << 8;
    flip = fuzz_u8(in);
  }
  const snap_format fmt = (chunk & 1) ? SNAP_FORMAT_MSGPACK : SNAP_FORMAT_JSON;
  const int valid = snap_payload_validate(fmt, in->p, in->n);
  recs r = {SNAP_BUF_INIT, 0, {0}, 0};
  snap_buf head = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  snap_stream_encoder *e;
  int rc = snap_stream_encoder_new(&e, "account-42", 7, fmt, o, chunk, collect, &r);
  if (rc == SNAP_OK) {
    /* The state in two writes, split where the chunk size says. */
    const size_t cut = in->n ? chunk * 7 % (in->n + 1) : 0;
    rc = snap_stream_encoder_write(e, in->p, cut);
    if (rc == SNAP_OK)
      rc = snap_stream_encoder_write(e, in->p + cut, in->n - cut);
    if (rc == SNAP_OK)
      rc = snap_stream_encoder_finish(e, &head, NULL);
    snap_stream_encoder_free(e);
  }
  FUZZ_CHECK(fuzz_known_code(rc), "encode returned %d", rc);
  if (r.overflow || rc == SNAP_ENOMEM) {
    snap_buf_dispose(&r.all);
    return;
  }
  FUZZ_CHECK((rc == SNAP_OK) == (valid == SNAP_OK), "encode %d, validate %d", rc, valid);
  if (rc == SNAP_OK) {
    snap_stream_info info;
    FUZZ_CHECK(snap_body_inspect_stream(head.data, head.len, &info) == SNAP_OK && info.chunked,
               "the head inspects");
    FUZZ_CHECK(info.chunk_count == r.n && info.records_len == r.all.len, "the head's counts");
    for (size_t i = 0; i < r.n; i++)
      FUZZ_CHECK(snap_stream_record_len(&info, i) == r.len[i], "record %zu's length", i);
    const size_t span = r.all.len + head.len;
    if (tamper && flip && span) {
      const size_t at = pos % span;
      uint8_t *b = at < r.all.len ? r.all.data + at : head.data + (at - r.all.len);
      *b ^= flip;
      rc = decode(o, head.data, head.len, &r, cap, NULL);
      FUZZ_CHECK(rc != SNAP_OK, "a changed byte at %zu of %zu went unnoticed", at, span);
    } else {
      rc = decode(o, head.data, head.len, &r, cap, &out);
      FUZZ_CHECK(rc == SNAP_OK, "a stream just written does not decode (%d)", rc);
      FUZZ_CHECK(out.len == in->n && (in->n == 0 || memcmp(out.data, in->p, in->n) == 0),
                 "the state came back changed");
    }
  }
  snap_buf_dispose(&r.all);
  snap_buf_dispose(&head);
  snap_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  fuzz_keyrings_init();
  fuzz_reader in = {data, size};
  const unsigned sel = fuzz_u8(&in), mode = fuzz_u8(&in);
  snap_options *o = fuzz_options(sel & ~FUZZ_OPT_LIMITS, (uint8_t)mode);
  if (!o)
    return 0;
  if ((mode & 0x80) && (sel & FUZZ_OPT_ZLIB) &&
      snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, 1) != SNAP_OK) {
    snap_options_free(o);
    return 0;
  }
  switch (mode & 3) {
  case 0:
    mode_decode(o, &in);
    break;
  case 1:
    mode_round_trip(o, &in, 0);
    break;
  default:
    mode_round_trip(o, &in, 1);
    break;
  }
  snap_options_free(o);
  return 0;
}
