/*
 * Structure-aware body fuzzing: a valid body is encoded from a fixed state
 * with options chosen by the input, then the input's remaining bytes are a
 * list of mutations applied to that body (header fields, key version,
 * lengths, nonce, tag, truncation, extension, splices from another valid
 * body), so that inputs get past the header checks into decompression and
 * authentication. The decode must never crash, and a reader that holds the
 * key and refuses unauthenticated bodies must never accept a changed body
 * with a changed state, nor a body bound to another (pid, seq), and must
 * report one changed header byte of a body it can read as SNAP_EAUTH.
 *
 * Input: [encode options][decode options][state][pid/seq][mutation...]
 * where a mutation is [kind][position hi][position lo][value] plus, for the
 * wide writes, 8 more value bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_keyrings_init();
  return 0;
}

typedef struct state_def {
  snap_format fmt;
  const char *bytes;
  size_t len;
} state_def;

#define S(fmt, lit)                                                                                \
  { fmt, lit, sizeof(lit) - 1 }
static const state_def states[] = {
    S(SNAP_FORMAT_JSON, "{\"balance\":42,\"owner\":\"acme\"}"),
    S(SNAP_FORMAT_JSON, "[1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,"
                        "4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10]"),
    S(SNAP_FORMAT_JSON, "\"x\""),
    /* {"a": 1, "b": [true, nil]} */
    S(SNAP_FORMAT_MSGPACK, "\x82\xa1\x61\x01\xa1\x62\x92\xc3\xc0"),
    S(SNAP_FORMAT_MSGPACK, "\x07"),
    S(SNAP_FORMAT_JSON,
      "{\"entries\":[{\"id\":1,\"amount\":100},{\"id\":2,\"amount\":100},{\"id\":3,\"amount\":"
      "100},{\"id\":4,\"amount\":100},{\"id\":5,\"amount\":100},{\"id\":6,\"amount\":100}]}"),
};
#undef S
#define NSTATES (sizeof states / sizeof states[0])

enum {
  M_FLIP,     /* flip one bit anywhere */
  M_SET,      /* set one byte anywhere */
  M_SET_HEAD, /* set one byte of the first 64 (the frame header) */
  M_SET_TAIL, /* set one byte of the last 32 (the tag) */
  M_U32LE,    /* write a 32-bit value, little-endian */
  M_U32BE,    /* write a 32-bit value, big-endian */
  M_U64LE,    /* write a 64-bit value, little-endian */
  M_U64BE,    /* write a 64-bit value, big-endian */
  M_TRUNCATE, /* cut the body at a position */
  M_EXTEND,   /* append up to 64 bytes */
  M_INSERT,   /* insert one byte */
  M_DELETE,   /* delete one byte */
  M_SPLICE,   /* replace a prefix with the same prefix of another valid body */
  M_FIELD,    /* overwrite a named header field (fuzz_frame.h) */
  M_KINDS
};

static void put_uint(uint8_t *b, size_t len, size_t pos, uint64_t v, int bytes, int big) {
  for (int i = 0; i < bytes && pos + (size_t)i < len; i++) {
    int shift = big ? 8 * (bytes - 1 - i) : 8 * i;
    b[pos + (size_t)i] = (uint8_t)(v >> shift);
  }
}

/* Applies the mutations of the reader to `b`; false when out of memory. */
static int mutate(snap_buf *b, fuzz_reader *r, const snap_buf *other) {
  for (int count = 0; count < 16 && r->n > 0; count++) {
    unsigned kind = fuzz_u8(r) % M_KINDS;
    size_t pos = ((size_t)fuzz_u8(r) << 8) | fuzz_u8(r);
    uint8_t v = fuzz_u8(r);
    size_t len = b->len;
    switch (kind) {
    case M_FLIP:
      if (len)
        b->data[pos % len] ^= (uint8_t)(1u << (v & 7));
      break;
    case M_SET:
      if (len)
        b->data[pos % len] = v;
      break;
    case M_SET_HEAD:
      if (len)
        b->data[pos % (len < 64 ? len : 64)] = v;
      break;
    case M_SET_TAIL:
      if (len)
        b->data[len - 1 - pos % (len < 32 ? len : 32)] = v;
      break;
    case M_U32LE:
    case M_U32BE:
    case M_U64LE:
    case M_U64BE: {
      uint64_t w = fuzz_u64(r);
      int bytes = (kind == M_U32LE || kind == M_U32BE) ? 4 : 8;
      int big = (kind == M_U32BE || kind == M_U64BE);
      if (len)
        put_uint(b->data, len, pos % len, w, bytes, big);
      break;
    }
    case M_TRUNCATE:
      b->len = pos % (len + 1);
      break;
    case M_EXTEND: {
      size_t add = (size_t)(v & 63) + 1;
      if (snap_buf_reserve(b, len + add) != SNAP_OK)
        return 0;
      for (size_t i = 0; i < add; i++)
        b->data[len + i] = (uint8_t)(v + i);
      b->len = len + add;
      break;
    }
    case M_INSERT: {
      if (snap_buf_reserve(b, len + 1) != SNAP_OK)
        return 0;
      size_t at = pos % (len + 1);
      memmove(b->data + at + 1, b->data + at, len - at);
      b->data[at] = v;
      b->len = len + 1;
      break;
    }
    case M_DELETE:
      if (len) {
        size_t at = pos % len;
        memmove(b->data + at, b->data + at + 1, len - at - 1);
        b->len = len - 1;
      }
      break;
    case M_SPLICE: {
      size_t k = pos % (other->len + 1);
      if (k > len)
        k = len;
      memcpy(b->data, other->data, k);
      break;
    }
    case M_FIELD: {
      uint64_t w = fuzz_u64(r);
      fuzz_frame_set_field(b->data, len, pos, v, w);
      break;
    }
    }
  }
  return 1;
}

/* Whether `b` is `a` with exactly one byte of the frame header changed. */
static int one_header_byte_changed(const snap_buf *a, const snap_buf *b) {
  if (a->len != b->len || a->len < FRAME_HDR ||
      memcmp(a->data + FRAME_HDR, b->data + FRAME_HDR, a->len - FRAME_HDR) != 0)
    return 0;
  int changed = 0;
  for (size_t i = 0; i < FRAME_HDR; i++)
    changed += a->data[i] != b->data[i];
  return changed == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_keyrings_init();
  fuzz_reader r = {data, size};
  unsigned enc_sel = fuzz_u8(&r) & ~FUZZ_OPT_LIMITS;
  unsigned dec_sel = fuzz_u8(&r);
  const state_def *st = &states[fuzz_u8(&r) % NSTATES];
  uint8_t ps = fuzz_u8(&r);
  const char *pid = fuzz_pids[(ps & 0x0f) % (sizeof fuzz_pids / sizeof fuzz_pids[0])];
  int64_t seq = fuzz_seqs[(ps >> 4) % (sizeof fuzz_seqs / sizeof fuzz_seqs[0])];
  /* Decode for another (pid, seq) when the top bit of the state byte says so. */
  const char *dec_pid = pid;
  int64_t dec_seq = seq;
  if (ps & 0x80)
    dec_seq = seq == 1 ? 2 : 1;
  else if (ps & 0x08)
    dec_pid = pid == fuzz_pids[0] ? fuzz_pids[1] : fuzz_pids[0];

  snap_options *enc = fuzz_options(enc_sel, (uint8_t)size);
  snap_options *dec = fuzz_options(dec_sel, 0);
  /* A second valid body, with other options, for splicing headers across. */
  snap_options *alt = fuzz_options(enc_sel ^ (FUZZ_OPT_ENCRYPT | FUZZ_OPT_ZLIB), 7);
  snap_buf orig = SNAP_BUF_INIT, body = SNAP_BUF_INIT, other = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  unsigned stages = 0;
  if (!enc || !dec || !alt)
    goto done;
  int rc = snap_body_encode(pid, seq, st->fmt, st->bytes, st->len, enc, &orig, &stages);
  FUZZ_CHECK(rc == SNAP_OK, "encoding a fixed valid state failed (%d)", rc);
  rc = snap_body_encode(pid, seq, st->fmt, st->bytes, st->len, alt, &other, NULL);
  FUZZ_CHECK(rc == SNAP_OK, "encoding a fixed valid state failed (%d)", rc);
  if (snap_buf_set(&body, orig.data, orig.len) != SNAP_OK)
    goto done;
  if (!mutate(&body, &r, &other))
    goto done;

  int same_body = body.len == orig.len && memcmp(body.data, orig.data, orig.len) == 0;
  snap_format fmt = 0;
  unsigned dec_stages = 0;
  rc = snap_body_decode(dec_pid, dec_seq, body.data, body.len, dec, &out, &fmt, &dec_stages);
  FUZZ_CHECK(fuzz_known_code(rc), "decode returned %d", rc);
  if (rc != SNAP_OK)
    FUZZ_CHECK(out.len == 0, "failed decode (%d) left %zu bytes", rc, out.len);

  /* A reader holding the key that refuses unauthenticated bodies. */
  int strict = (dec_sel & (FUZZ_OPT_ENCRYPT | FUZZ_OPT_MAC)) && !(dec_sel & FUZZ_OPT_ACCEPT);
  if (rc == SNAP_OK && strict) {
    FUZZ_CHECK(out.len == st->len && memcmp(out.data, st->bytes, st->len) == 0,
               "strict reader accepted a changed state (%zu bytes, body %s)", out.len,
               same_body ? "unchanged" : "mutated");
    FUZZ_CHECK(fmt == st->fmt, "strict reader accepted a changed format %d", (int)fmt);
    FUZZ_CHECK(dec_stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC),
               "strict reader accepted an unauthenticated body (stages %#x)", dec_stages);
    FUZZ_CHECK(dec_pid == pid && dec_seq == seq,
               "strict reader accepted a body bound to another pid or seq");
  }
  /* One changed header byte of a body this reader can read is an
   * authentication failure, never a missing key or a size limit
   * (docs/FORMAT.md, "Reading a body"). */
  if (strict && rc != SNAP_OK && one_header_byte_changed(&orig, &body)) {
    snap_buf check = SNAP_BUF_INIT;
    int orc = snap_body_decode(dec_pid, dec_seq, orig.data, orig.len, dec, &check, NULL, NULL);
    FUZZ_CHECK(orc != SNAP_OK || rc == SNAP_EAUTH,
               "one changed header byte of a readable body gave %d, not EAUTH", rc);
    snap_buf_dispose(&check);
  }
  /* An unchanged body decodes, with the writer's own options, to the state. */
  if (same_body) {
    snap_buf_dispose(&out);
    rc = snap_body_decode(pid, seq, body.data, body.len, enc, &out, &fmt, NULL);
    FUZZ_CHECK(rc == SNAP_OK, "unchanged body failed to decode (%d)", rc);
    FUZZ_CHECK(out.len == st->len && memcmp(out.data, st->bytes, st->len) == 0 && fmt == st->fmt,
               "unchanged body decoded to another state");
  }
done:
  snap_buf_dispose(&orig);
  snap_buf_dispose(&body);
  snap_buf_dispose(&other);
  snap_buf_dispose(&out);
  snap_options_free(enc);
  snap_options_free(dec);
  snap_options_free(alt);
  return 0;
}
