/* Streamed states (snap/stream.h): round trips at the chunk edges in every
 * stage combination, every tampering case (truncation, reordering, dropping,
 * duplicating, swapping records within a stream and between streams, seqs and
 * pids), bounded memory, the head among ordinary bodies, and arguments. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "snap/pipeline.h"
#include "snap/stream.h"

#define PID "acct/stream-\xc3\xa9"
#define CTX "snapstore/test/stream/v1"

/* ---- helpers ------------------------------------------------------------- */

typedef struct records {
  uint8_t **rec;
  size_t *len;
  size_t n, cap;
  int fail_at; /* the sink refuses this index (-1: never) */
} records;

static int collect(void *ud, uint64_t index, const void *p, size_t len) {
  records *r = ud;
  cr_assert_eq(index, r->n, "records arrive in order");
  if (r->fail_at >= 0 && (uint64_t)r->fail_at == index)
    return SNAP_EIO;
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 16;
    r->rec = realloc(r->rec, r->cap * sizeof *r->rec);
    r->len = realloc(r->len, r->cap * sizeof *r->len);
  }
  r->rec[r->n] = malloc(len ? len : 1);
  memcpy(r->rec[r->n], p, len);
  r->len[r->n++] = len;
  return SNAP_OK;
}

static void records_free(records *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->rec[i]);
  free(r->rec);
  free(r->len);
  memset(r, 0, sizeof *r);
}

enum auth { AUTH_NONE, AUTH_AEAD, AUTH_MAC };
enum codec { CODEC_NONE, CODEC_ZLIB, CODEC_ZSTD, CODEC_ZSTD_DICT };
static const char *const AUTH_NAME[] = {"none", "aead", "mac"};
static const char *const CODEC_NAME[] = {"plain", "zlib", "zstd", "zstd+dict"};

static snap_keyring *ring_of(uint8_t seed) {
  snap_keyring *kr;
  uint8_t k[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < sizeof k; i++)
    k[i] = (uint8_t)(seed + i);
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  return kr;
}

static snap_dict *the_dict(void) {
  static const char words[] = "{\"name\":\"account\",\"balance\":0,\"items\":[\"alpha\",\"beta\"]}";
  snap_dict *d;
  cr_assert_eq(snap_dict_new(&d, words, sizeof words - 1), SNAP_OK);
  return d;
}

static int dict_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  (void)name;
  snap_dict *d = ud;
  if (id && id != snap_dict_id(d))
    return SNAP_ENOTFOUND;
  *out = snap_dict_ref(d);
  return SNAP_OK;
}

static snap_dict *g_dict;

static snap_options *opts_of(enum codec c, enum auth a, snap_keyring *kr) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  if (c == CODEC_ZLIB)
    cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  if (c >= CODEC_ZSTD)
    cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, 3), SNAP_OK);
  if (c == CODEC_ZSTD_DICT) {
    if (!g_dict)
      g_dict = the_dict();
    cr_assert_eq(snap_options_set_dictionary(o, snap_dict_id(g_dict), NULL), SNAP_OK);
  }
  if (c != CODEC_NONE) {
    if (!g_dict)
      g_dict = the_dict();
    cr_assert_eq(snap_options_set_dictionary_source(o, dict_source, g_dict), SNAP_OK);
  }
  if (a == AUTH_AEAD)
    cr_assert_eq(snap_options_set_encryption(o, kr, CTX), SNAP_OK);
  if (a == AUTH_MAC)
    cr_assert_eq(snap_options_set_integrity(o, kr, CTX), SNAP_OK);
  return o;
}

/* A JSON array of exactly n bytes (n == 0: the empty state; n == 1: "7"). */
static uint8_t *json_of(size_t n, uint32_t seed) {
  uint8_t *p = malloc(n ? n : 1);
  if (n == 1)
    p[0] = '7';
  if (n < 2)
    return p;
  p[0] = '"';
  uint32_t x = seed * 2654435761u + 7;
  static const char alpha[] = "abcdefghij klmno";
  for (size_t i = 1; i + 1 < n; i++) {
    x = x * 1664525u + 1013904223u;
    p[i] = (uint8_t)alpha[(x >> 24) & 15];
  }
  p[n - 1] = '"';
  return p;
}

/* Encodes `n` bytes written in pieces of `piece` bytes. */
static int encode(const snap_options *o, const char *pid, int64_t seq, const uint8_t *p, size_t n,
                  size_t chunk, size_t piece, records *r, snap_buf *head, unsigned *stages) {
  snap_stream_encoder *e;
  int rc = snap_stream_encoder_new(&e, pid, seq, SNAP_FORMAT_JSON, o, chunk, collect, r);
  if (rc)
    return rc;
  for (size_t at = 0; at < n && rc == SNAP_OK; at += piece)
    rc = snap_stream_encoder_write(e, p + at, n - at < piece ? n - at : piece);
  if (rc == SNAP_OK)
    rc = snap_stream_encoder_finish(e, head, stages);
  snap_stream_encoder_free(e);
  return rc;
}

/* Decodes `head` and the records in the order `order` gives (NULL: as
 * stored), reading `cap` bytes at a time; the plaintext into `out`. The
 * first failure is returned; `*delivered` counts the bytes handed out. */
static int decode(const snap_options *o, const char *pid, int64_t seq, const snap_buf *head,
                  const records *r, const size_t *order, size_t norder, size_t cap,
                  snap_buf *out, size_t *delivered) {
  snap_stream_decoder *d;
  snap_stream_info info;
  out->len = 0;
  if (delivered)
    *delivered = 0;
  int rc = snap_stream_decoder_open(&d, pid, seq, head->data, head->len, o, 0, &info);
  if (rc)
    return rc;
  uint8_t *buf = malloc(cap);
  const size_t n = order ? norder : r->n;
  for (size_t i = 0; i < n && rc == SNAP_OK; i++) {
    const size_t k = order ? order[i] : i;
    rc = snap_stream_decoder_push(d, r->rec[k], r->len[k]);
    size_t got = 1;
    while (rc == SNAP_OK && got) {
      rc = snap_stream_decoder_read(d, buf, cap, &got);
      if (rc == SNAP_OK && got) {
        /* Doubling: growing by each read's few bytes would copy the whole
         * output on every read wherever realloc cannot grow in place (as
         * under AddressSanitizer), quadratic in the state's size. */
        size_t want = out->len + got;
        if (want > out->cap)
          cr_assert_eq(snap_buf_reserve(out, want > 2 * out->cap ? want : 2 * out->cap), SNAP_OK);
        memcpy(out->data + out->len, buf, got);
        out->len += got;
        if (delivered)
          *delivered += got;
      }
    }
  }
  if (rc == SNAP_OK)
    rc = snap_stream_decoder_finish(d);
  free(buf);
  snap_stream_decoder_free(d);
  return rc;
}

/* ---- round trips ----------------------------------------------------------- */

static void round_trip(enum codec c, enum auth a, size_t n, size_t chunk, size_t piece) {
  snap_keyring *kr = ring_of(3);
  snap_options *o = opts_of(c, a, kr);
  uint8_t *p = json_of(n, (uint32_t)n);
  records r = {.fail_at = -1};
  snap_buf head = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  unsigned st = 0;
  cr_assert_eq(encode(o, PID, 9, p, n, chunk, piece, &r, &head, &st), SNAP_OK,
               "%s/%s %zu bytes: %s", CODEC_NAME[c], AUTH_NAME[a], n, snap_error_message());
  const unsigned want_auth = a == AUTH_AEAD ? SNAP_STAGE_ENCRYPTED
                             : a == AUTH_MAC ? SNAP_STAGE_MAC
                                             : 0;
  cr_assert_eq(st, want_auth | (c != CODEC_NONE && n ? SNAP_STAGE_COMPRESSED : 0u));
  snap_stream_info info;
  cr_assert_eq(snap_body_inspect_stream(head.data, head.len, &info), SNAP_OK);
  cr_assert(info.chunked);
  cr_assert_eq(info.chunk_count, r.n);
  cr_assert_eq(info.plain_len, n);
  cr_assert_eq(info.stages, st);
  size_t total = 0;
  for (size_t i = 0; i < r.n; i++) {
    cr_assert_eq(r.len[i], snap_stream_record_len(&info, i), "record %zu", i);
    total += r.len[i];
  }
  cr_assert_eq(total, info.records_len);
  const size_t size = chunk ? chunk : SNAP_STREAM_CHUNK_DEFAULT;
  cr_assert_eq(info.chunk_size, size);
  if (c == CODEC_NONE)
    cr_assert_eq(r.n, (n + size - 1) / size, "%zu bytes in chunks of %zu", n, size);
  for (size_t cap = 1; cap <= 4096; cap *= 64) {
    cr_assert_eq(decode(o, PID, 9, &head, &r, NULL, 0, cap, &out, NULL), SNAP_OK,
                 "%s/%s %zu bytes, reads of %zu: %s", CODEC_NAME[c], AUTH_NAME[a], n, cap,
                 snap_error_message());
    cr_assert_eq(out.len, n);
    cr_assert(n == 0 || memcmp(out.data, p, n) == 0);
  }
  snap_buf_dispose(&head);
  snap_buf_dispose(&out);
  records_free(&r);
  free(p);
  snap_options_free(o);
  snap_keyring_free(kr);
}

static void every_edge(enum codec c, enum auth a) {
  const size_t chunk = 64;
  /* 0 bytes, 1 byte, exactly one chunk, one byte over, many chunks. */
  const size_t sizes[] = {0, 1, chunk, chunk + 1, 2 * chunk, 100 * chunk + 17};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    round_trip(c, a, sizes[i], chunk, 1000);
    round_trip(c, a, sizes[i], chunk, 7);
  }
  round_trip(c, a, 300000, 4096, 65536);
  round_trip(c, a, 3 << 20, 0, 1 << 20); /* the default chunk size */
}

/* Every stage combination: codec x authentication. */
#define EVERY_COMBO(X)                                                                             \
  X(plain, none, CODEC_NONE, AUTH_NONE)                                                            \
  X(plain, aead, CODEC_NONE, AUTH_AEAD)                                                            \
  X(plain, mac, CODEC_NONE, AUTH_MAC)                                                              \
  X(zlib, none, CODEC_ZLIB, AUTH_NONE)                                                             \
  X(zlib, aead, CODEC_ZLIB, AUTH_AEAD)                                                             \
  X(zlib, mac, CODEC_ZLIB, AUTH_MAC)                                                               \
  X(zstd, none, CODEC_ZSTD, AUTH_NONE)                                                             \
  X(zstd, aead, CODEC_ZSTD, AUTH_AEAD)                                                             \
  X(zstd, mac, CODEC_ZSTD, AUTH_MAC)                                                               \
  X(zstd_dict, none, CODEC_ZSTD_DICT, AUTH_NONE)                                                   \
  X(zstd_dict, aead, CODEC_ZSTD_DICT, AUTH_AEAD)                                                   \
  X(zstd_dict, mac, CODEC_ZSTD_DICT, AUTH_MAC)

#define ROUND_TRIP(cn, an, c, a)                                                                   \
  Test(round_trip, cn##_##an, .timeout = 300) { every_edge(c, a); }
EVERY_COMBO(ROUND_TRIP)

Test(round_trip, exact_record_counts_at_the_chunk_edges) {
  snap_options *o = opts_of(CODEC_NONE, AUTH_NONE, NULL);
  const size_t expect[][2] = {{0, 0}, {1, 1}, {64, 1}, {65, 2}, {128, 2}, {129, 3}};
  for (size_t i = 0; i < 6; i++) {
    uint8_t *p = json_of(expect[i][0], 1);
    records r = {.fail_at = -1};
    snap_buf head = SNAP_BUF_INIT;
    cr_assert_eq(encode(o, PID, 1, p, expect[i][0], 64, 64, &r, &head, NULL), SNAP_OK);
    cr_assert_eq(r.n, expect[i][1], "%zu bytes", expect[i][0]);
    snap_buf_dispose(&head);
    records_free(&r);
    free(p);
  }
  snap_options_free(o);
}

Test(round_trip, msgpack_states_and_zstd_levels) {
  /* A msgpack bin of 200 KiB, zstd at a fast, the top and an ultra level
   * (whose window the stream caps). */
  const size_t n = 200000;
  uint8_t *p = malloc(n + 5);
  p[0] = 0xc6;
  p[1] = (uint8_t)(n >> 24);
  p[2] = (uint8_t)(n >> 16);
  p[3] = (uint8_t)(n >> 8);
  p[4] = (uint8_t)n;
  for (size_t i = 0; i < n; i++)
    p[5 + i] = (uint8_t)(i % 251 < 200 ? 'a' : i);
  const int levels[] = {-5, 3, 19, 22};
  for (size_t l = 0; l < 4; l++) {
    snap_options *o;
    cr_assert_eq(snap_options_new(&o), SNAP_OK);
    cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, levels[l]), SNAP_OK);
    records r = {.fail_at = -1};
    snap_buf head = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
    snap_stream_encoder *e;
    cr_assert_eq(
        snap_stream_encoder_new(&e, PID, 2, SNAP_FORMAT_MSGPACK, o, 4096, collect, &r), SNAP_OK);
    cr_assert_eq(snap_stream_encoder_write(e, p, n + 5), SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(snap_stream_encoder_finish(e, &head, NULL), SNAP_OK);
    snap_stream_encoder_free(e);
    snap_stream_info info;
    cr_assert_eq(decode(o, PID, 2, &head, &r, NULL, 0, 10000, &out, NULL), SNAP_OK, "%s",
                 snap_error_message());
    cr_assert_eq(out.len, n + 5);
    cr_assert_eq(memcmp(out.data, p, n + 5), 0);
    cr_assert_eq(snap_body_inspect_stream(head.data, head.len, &info), SNAP_OK);
    cr_assert_eq(info.fmt, SNAP_FORMAT_MSGPACK);
    cr_assert_lt(info.stored_len, n / 4);
    snap_buf_dispose(&head);
    snap_buf_dispose(&out);
    records_free(&r);
    snap_options_free(o);
  }
  free(p);
}

/* ---- tampering --------------------------------------------------------------- */

/* One stream of `n` bytes in chunks of 64 bytes, for (pid, seq). */
typedef struct stream {
  records r;
  snap_buf head;
} stream;

static void make(const snap_options *o, const char *pid, int64_t seq, size_t n, stream *s) {
  uint8_t *p = json_of(n, 77);
  s->r = (records){.fail_at = -1};
  s->head = (snap_buf)SNAP_BUF_INIT;
  cr_assert_eq(encode(o, pid, seq, p, n, 64, 500, &s->r, &s->head, NULL), SNAP_OK, "%s",
               snap_error_message());
  free(p);
}

static void drop(stream *s) {
  records_free(&s->r);
  snap_buf_dispose(&s->head);
}

/* The records of `s` in `order` (indexes into s->r) must fail with `want`. */
static void refused_order(const snap_options *o, const stream *s, const size_t *order, size_t n,
                          int want, const char *what) {
  snap_buf out = SNAP_BUF_INIT;
  const int rc = decode(o, PID, 5, &s->head, &s->r, order, n, 100, &out, NULL);
  cr_assert_eq(rc, want, "%s: %d (%s)", what, rc, snap_error_message());
  snap_buf_dispose(&out);
}

static void tamper_combo(enum codec c, enum auth a) {
  snap_keyring *kr = ring_of(5);
  snap_options *o = opts_of(c, a, kr);
  const int bad = a == AUTH_NONE ? SNAP_ECORRUPT : SNAP_EAUTH;
  stream s, other, other_seq, other_pid;
  /* Enough bytes for several records even when compressed. */
  const size_t n = c == CODEC_NONE ? 64 * 6 + 10 : 1200;
  make(o, PID, 5, n, &s);
  make(o, PID, 5, n, &other);    /* the same pid and seq: another stream */
  make(o, PID, 6, n, &other_seq);
  make(o, "acct/other", 5, n, &other_pid);
  const size_t k = s.r.n;
  cr_assert_geq(k, 4u, "%s/%s: %zu records", CODEC_NAME[c], AUTH_NAME[a], k);
  size_t order[64];
  cr_assert_leq(k + 1, 64u);
  for (size_t i = 0; i < k; i++)
    order[i] = i;
  refused_order(o, &s, order, k, SNAP_OK, "as written");
  /* Truncation: every shorter prefix. */
  for (size_t m = 0; m < k; m++)
    refused_order(o, &s, order, m, bad, "truncated");
  /* Dropping a record, duplicating one, swapping two neighbours. */
  for (size_t i = 0; i + 1 < k; i++) {
    size_t o2[64];
    size_t m = 0;
    for (size_t j = 0; j < k; j++)
      if (j != i)
        o2[m++] = j;
    refused_order(o, &s, o2, m, bad, "a record dropped");
    m = 0;
    for (size_t j = 0; j < k; j++) {
      o2[m++] = j;
      if (j == i)
        o2[m++] = j;
    }
    refused_order(o, &s, o2, m, bad, "a record repeated");
    memcpy(o2, order, k * sizeof *o2);
    o2[i] = i + 1;
    o2[i + 1] = i;
    refused_order(o, &s, o2, k, bad, "two records swapped");
  }
  /* A record past the last: the last one again. */
  order[k] = k - 1;
  refused_order(o, &s, order, k + 1, bad, "the last record twice");
  /* Every byte of every record, flipped. */
  for (size_t i = 0; i < k; i++)
    for (size_t b = 0; b < s.r.len[i]; b += (i == 1 ? 1 : 7)) {
      s.r.rec[i][b] ^= 0x20;
      refused_order(o, &s, order, k, bad, "a flipped byte");
      s.r.rec[i][b] ^= 0x20;
    }
  /* Records of another stream of the same pid and seq, of another seq, of
   * another pid, in place of one of ours. */
  const stream *others[] = {&other, &other_seq, &other_pid};
  for (size_t w = 0; w < 3; w++)
    for (size_t i = 0; i < k && i < others[w]->r.n; i++) {
      uint8_t *keep = s.r.rec[i];
      const size_t keep_len = s.r.len[i];
      s.r.rec[i] = others[w]->r.rec[i];
      s.r.len[i] = others[w]->r.len[i];
      refused_order(o, &s, order, k, bad, "a record of another stream");
      s.r.rec[i] = keep;
      s.r.len[i] = keep_len;
    }
  /* Our records under another stream's head, and the head bound elsewhere. */
  snap_buf out = SNAP_BUF_INIT;
  cr_assert_eq(decode(o, PID, 5, &other.head, &s.r, NULL, 0, 100, &out, NULL), bad);
  const int keyed_head = a == AUTH_NONE ? SNAP_OK : SNAP_EAUTH;
  cr_assert_eq(decode(o, PID, 6, &s.head, &s.r, NULL, 0, 100, &out, NULL),
               a == AUTH_NONE ? bad : keyed_head, "another seq");
  cr_assert_eq(decode(o, "acct/other", 5, &s.head, &s.r, NULL, 0, 100, &out, NULL),
               a == AUTH_NONE ? bad : keyed_head, "another pid");
  /* Every byte of the head, flipped: refused, never read as another state. */
  for (size_t b = 0; b < s.head.len; b++) {
    s.head.data[b] ^= 0x01;
    const int rc = decode(o, PID, 5, &s.head, &s.r, NULL, 0, 100, &out, NULL);
    cr_assert_neq(rc, SNAP_OK, "head byte %zu flipped", b);
    if (a != AUTH_NONE)
      cr_assert_eq(rc, SNAP_EAUTH, "head byte %zu flipped: %d %s", b, rc, snap_error_message());
    s.head.data[b] ^= 0x01;
  }
  snap_buf_dispose(&out);
  drop(&s);
  drop(&other);
  drop(&other_seq);
  drop(&other_pid);
  snap_options_free(o);
  snap_keyring_free(kr);
}

#define TAMPER(cn, an, c, a)                                                                       \
  Test(tamper, cn##_##an, .timeout = 300) { tamper_combo(c, a); }
EVERY_COMBO(TAMPER)

Test(tamper, a_failure_after_bytes_were_delivered_is_still_an_error_and_sticky) {
  snap_keyring *kr = ring_of(5);
  snap_options *o = opts_of(CODEC_NONE, AUTH_AEAD, kr);
  stream s;
  make(o, PID, 5, 64 * 5, &s);
  s.r.rec[3][10] ^= 1;
  snap_buf out = SNAP_BUF_INIT;
  size_t delivered = 0;
  cr_assert_eq(decode(o, PID, 5, &s.head, &s.r, NULL, 0, 100, &out, &delivered), SNAP_EAUTH);
  cr_assert_eq(delivered, 3 * 64u, "the first three records were handed out");
  /* Sticky: nothing more comes out of a failed decoder. */
  snap_stream_decoder *d;
  cr_assert_eq(snap_stream_decoder_open(&d, PID, 5, s.head.data, s.head.len, o, 0, NULL),
               SNAP_OK);
  for (size_t i = 0; i < 3; i++) {
    cr_assert_eq(snap_stream_decoder_push(d, s.r.rec[i], s.r.len[i]), SNAP_OK);
    uint8_t buf[64];
    size_t got;
    cr_assert_eq(snap_stream_decoder_read(d, buf, sizeof buf, &got), SNAP_OK);
    cr_assert_eq(got, 64u);
    cr_assert_eq(snap_stream_decoder_read(d, buf, sizeof buf, &got), SNAP_OK);
    cr_assert_eq(got, 0u);
  }
  cr_assert_eq(snap_stream_decoder_push(d, s.r.rec[3], s.r.len[3]), SNAP_EAUTH);
  uint8_t buf[8];
  size_t got = 9;
  cr_assert_eq(snap_stream_decoder_read(d, buf, sizeof buf, &got), SNAP_EAUTH);
  cr_assert_eq(got, 0u);
  s.r.rec[3][10] ^= 1;
  cr_assert_eq(snap_stream_decoder_push(d, s.r.rec[3], s.r.len[3]), SNAP_EAUTH);
  cr_assert_eq(snap_stream_decoder_finish(d), SNAP_EAUTH);
  cr_assert(strstr(snap_error_message(), "discard"), "%s", snap_error_message());
  snap_stream_decoder_free(d);
  snap_buf_dispose(&out);
  drop(&s);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* ---- keys ------------------------------------------------------------------------ */

Test(keys, heads_are_refused_without_the_right_key) {
  snap_keyring *kr = ring_of(5), *other = ring_of(6);
  snap_options *aead = opts_of(CODEC_NONE, AUTH_AEAD, kr), *mac = opts_of(CODEC_NONE, AUTH_MAC, kr);
  snap_options *wrong = opts_of(CODEC_NONE, AUTH_AEAD, other), *none = opts_of(CODEC_NONE, AUTH_NONE, NULL);
  stream s, m, plain;
  make(aead, PID, 5, 300, &s);
  make(mac, PID, 5, 300, &m);
  make(none, PID, 5, 300, &plain);
  snap_buf out = SNAP_BUF_INIT;
  cr_assert_eq(decode(wrong, PID, 5, &s.head, &s.r, NULL, 0, 64, &out, NULL), SNAP_EAUTH);
  cr_assert_eq(decode(none, PID, 5, &s.head, &s.r, NULL, 0, 64, &out, NULL), SNAP_ENOKEY);
  cr_assert_eq(decode(none, PID, 5, &m.head, &m.r, NULL, 0, 64, &out, NULL), SNAP_ENOKEY);
  cr_assert_eq(decode(mac, PID, 5, &m.head, &m.r, NULL, 0, 64, &out, NULL), SNAP_OK);
  /* An unauthenticated stream and a keyed reader: refused unless migrating. */
  cr_assert_eq(decode(aead, PID, 5, &plain.head, &plain.r, NULL, 0, 64, &out, NULL), SNAP_EAUTH);
  cr_assert_eq(snap_options_set_accept_unauthenticated(aead, true), SNAP_OK);
  cr_assert_eq(decode(aead, PID, 5, &plain.head, &plain.r, NULL, 0, 64, &out, NULL), SNAP_OK);
  cr_assert_eq(out.len, 300u);
  plain.r.rec[1][3] ^= 1;
  cr_assert_eq(decode(aead, PID, 5, &plain.head, &plain.r, NULL, 0, 64, &out, NULL),
               SNAP_ECORRUPT);
  snap_buf_dispose(&out);
  drop(&s);
  drop(&m);
  drop(&plain);
  snap_options_free(aead);
  snap_options_free(mac);
  snap_options_free(wrong);
  snap_options_free(none);
  snap_keyring_free(kr);
  snap_keyring_free(other);
}

/* ---- heads among bodies ------------------------------------------------------------ */

Test(head, is_told_apart_from_an_ordinary_body) {
  snap_keyring *kr = ring_of(5);
  snap_options *o = opts_of(CODEC_ZLIB, AUTH_MAC, kr);
  stream s;
  make(o, PID, 5, 1000, &s);
  snap_stream_info info;
  snap_buf body = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode(PID, 5, SNAP_FORMAT_JSON, "[1]", 3, o, &body, NULL), SNAP_OK);
  cr_assert_eq(snap_body_inspect_stream(body.data, body.len, &info), SNAP_OK);
  cr_assert_not(info.chunked);
  cr_assert_eq(snap_stream_record_len(&info, 0), 0u);
  cr_assert_eq(snap_body_inspect_stream(s.head.data, s.head.len, &info), SNAP_OK);
  cr_assert(info.chunked);
  cr_assert_eq(info.plain_len, 1000u);
  cr_assert_eq(info.chunk_size, 64u);
  cr_assert_eq(info.record_overhead, 32u);
  cr_assert_eq(snap_stream_record_len(&info, info.chunk_count), 0u);
  uint64_t orig;
  unsigned st;
  cr_assert_eq(snap_body_inspect(s.head.data, s.head.len, NULL, &st, NULL, &orig), SNAP_OK);
  cr_assert_eq(orig, 1000u);
  cr_assert_eq(st, SNAP_STAGE_MAC | SNAP_STAGE_COMPRESSED);
  /* The body decoder refuses a head (its state is elsewhere), the stream
   * decoder an ordinary body. */
  cr_assert_eq(snap_body_decode(PID, 5, s.head.data, s.head.len, o, &out, NULL, NULL), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "stream"), "%s", snap_error_message());
  cr_assert_eq(out.len, 0u);
  snap_stream_decoder *d = (snap_stream_decoder *)&out;
  cr_assert_eq(snap_stream_decoder_open(&d, PID, 5, body.data, body.len, o, 0, NULL), SNAP_EINVAL);
  cr_assert_null(d);
  /* The head of the empty state. */
  stream e;
  make(o, PID, 5, 0, &e);
  cr_assert_eq(e.r.n, 0u);
  cr_assert_eq(snap_body_inspect_stream(e.head.data, e.head.len, &info), SNAP_OK);
  cr_assert(info.chunked);
  cr_assert_eq(info.stages, SNAP_STAGE_MAC, "the empty state is never compressed");
  snap_buf_dispose(&body);
  snap_buf_dispose(&out);
  drop(&s);
  drop(&e);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(head, the_declared_length_is_capped_by_the_reader) {
  snap_options *o = opts_of(CODEC_ZLIB, AUTH_NONE, NULL);
  stream s;
  make(o, PID, 5, 5000, &s);
  snap_stream_decoder *d;
  cr_assert_eq(snap_stream_decoder_open(&d, PID, 5, s.head.data, s.head.len, o, 4999, NULL),
               SNAP_ETOOBIG);
  cr_assert_eq(snap_stream_decoder_open(&d, PID, 5, s.head.data, s.head.len, o, 5000, NULL),
               SNAP_OK);
  snap_stream_decoder_free(d);
  drop(&s);
  snap_options_free(o);
}

/* ---- the encoder's checks ------------------------------------------------------------ */

Test(encoder, malformed_payloads_are_refused_mid_stream_or_at_finish) {
  records r = {.fail_at = -1};
  snap_buf head = SNAP_BUF_INIT;
  snap_stream_encoder *e;
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_JSON, NULL, 16, collect, &r),
               SNAP_OK);
  cr_assert_eq(snap_stream_encoder_write(e, "[1,2,3,4,5,6,7,8,9,10,", 22), SNAP_OK);
  cr_assert_eq(snap_stream_encoder_write(e, "x]", 2), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "offset 22"), "%s", snap_error_message());
  cr_assert_eq(snap_stream_encoder_write(e, "1]", 2), SNAP_EINVAL, "a failed stream stays failed");
  cr_assert_eq(snap_stream_encoder_finish(e, &head, NULL), SNAP_EINVAL);
  cr_assert_eq(head.len, 0u);
  snap_stream_encoder_free(e);
  records_free(&r);
  r = (records){.fail_at = -1};
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_MSGPACK, NULL, 16, collect, &r),
               SNAP_OK);
  cr_assert_eq(snap_stream_encoder_write(e, "\x92\x01", 2), SNAP_OK);
  cr_assert_eq(snap_stream_encoder_finish(e, &head, NULL), SNAP_EFORMAT, "a truncated array");
  cr_assert_eq(head.len, 0u);
  snap_stream_encoder_free(e);
  records_free(&r);
  snap_buf_dispose(&head);
}

Test(encoder, a_sink_failure_stops_the_stream) {
  records r = {.fail_at = 2};
  snap_buf head = SNAP_BUF_INIT;
  uint8_t *p = json_of(200, 3);
  snap_stream_encoder *e;
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_JSON, NULL, 16, collect, &r),
               SNAP_OK);
  cr_assert_eq(snap_stream_encoder_write(e, p, 200), SNAP_EIO);
  uint64_t plain, recs;
  snap_stream_encoder_progress(e, &plain, &recs);
  cr_assert_eq(recs, 2u);
  cr_assert_eq(snap_stream_encoder_finish(e, &head, NULL), SNAP_EINVAL);
  snap_stream_encoder_free(e);
  records_free(&r);
  snap_buf_dispose(&head);
  free(p);
}

Test(encoder, arguments) {
  snap_stream_encoder *e = NULL;
  records r = {.fail_at = -1};
  cr_assert_eq(snap_stream_encoder_new(NULL, PID, 1, SNAP_FORMAT_JSON, NULL, 0, collect, &r),
               SNAP_EINVAL);
  cr_assert_eq(snap_stream_encoder_new(&e, "", 1, SNAP_FORMAT_JSON, NULL, 0, collect, &r),
               SNAP_EINVAL);
  cr_assert_eq(snap_stream_encoder_new(&e, PID, -1, SNAP_FORMAT_JSON, NULL, 0, collect, &r),
               SNAP_EINVAL);
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, (snap_format)3, NULL, 0, collect, &r),
               SNAP_EINVAL);
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_JSON, NULL, 0, NULL, &r),
               SNAP_EINVAL);
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_JSON, NULL,
                                       SNAP_STREAM_CHUNK_MAX + 1, collect, &r),
               SNAP_EINVAL);
  cr_assert_null(e);
  snap_keyring *empty;
  cr_assert_eq(snap_keyring_new(&empty), SNAP_OK);
  snap_options *o = opts_of(CODEC_NONE, AUTH_AEAD, empty);
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_JSON, o, 0, collect, &r),
               SNAP_ENOKEY);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_JSON, o, 0, collect, &r),
               SNAP_EINVAL, "envelope mode needs a store");
  snap_options_free(o);
  snap_keyring_free(empty);
  cr_assert_eq(snap_stream_encoder_write(NULL, "1", 1), SNAP_EINVAL);
  cr_assert_eq(snap_stream_encoder_finish(NULL, NULL, NULL), SNAP_EINVAL);
  snap_stream_encoder_free(NULL);
  snap_stream_decoder_free(NULL);
  cr_assert_eq(r.n, 0u);
}

/* ---- memory bounded by the chunk size ------------------------------------------------ */

static size_t live, peak;
static void *m_malloc(size_t n, void *ud) {
  (void)ud;
  size_t *p = malloc(n + 16);
  if (!p)
    return NULL;
  *p = n;
  live += n;
  if (live > peak)
    peak = live;
  return (char *)p + 16;
}
static void m_free(void *q, void *ud) {
  (void)ud;
  if (!q)
    return;
  size_t *p = (size_t *)((char *)q - 16);
  live -= *p;
  free(p);
}
static void *m_realloc(void *q, size_t n, void *ud) {
  void *r = m_malloc(n, ud);
  if (r && q) {
    size_t old = *(size_t *)((char *)q - 16);
    memcpy(r, q, old < n ? old : n);
    m_free(q, ud);
  }
  return r;
}

static int discard(void *ud, uint64_t index, const void *p, size_t len) {
  (void)index;
  records *r = ud;
  /* Keep a few records to decode back; count the rest. */
  if (r->n < 4)
    return collect(ud, r->n, p, len);
  return SNAP_OK;
}

Test(memory, a_64_mib_state_streams_in_memory_bounded_by_the_chunk) {
  static const snap_allocator a = {m_malloc, m_realloc, m_free, NULL, NULL, NULL};
  cr_assert_eq(snap_allocator_set(&a), SNAP_OK);
  snap_keyring *kr = ring_of(1);
  snap_options *o = opts_of(CODEC_ZLIB, AUTH_AEAD, kr);
  records r = {.fail_at = -1};
  snap_buf head = SNAP_BUF_INIT;
  snap_stream_encoder *e;
  live = peak = 0;
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 1, SNAP_FORMAT_JSON, o, 1 << 20, discard, &r),
               SNAP_OK);
  uint8_t *piece = json_of(1 << 20, 9);
  cr_assert_eq(snap_stream_encoder_write(e, "[", 1), SNAP_OK);
  for (int i = 0; i < 64; i++) {
    piece[0] = i ? ',' : ' ';
    piece[(1 << 20) - 1] = ' ';
    piece[1] = '"';
    piece[(1 << 20) - 2] = '"';
    cr_assert_eq(snap_stream_encoder_write(e, piece, 1 << 20), SNAP_OK, "%s", snap_error_message());
  }
  cr_assert_eq(snap_stream_encoder_write(e, "]", 1), SNAP_OK);
  cr_assert_eq(snap_stream_encoder_finish(e, &head, NULL), SNAP_OK);
  snap_stream_encoder_free(e);
  /* Two chunk buffers, the compressor's output stage and zlib's ~256 KiB. */
  cr_assert_lt(peak, (size_t)4 << 20, "peak %zu bytes for a 64 MiB state", peak);
  snap_buf_dispose(&head);
  records_free(&r);
  free(piece);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* A v2 frame whose only field is a chunking field of `len` bytes (value
 * `val`), with neither AEAD nor MAC, sealed with its CRC-32. */
static size_t chunking_frame(uint8_t *b, const uint8_t *val, size_t len, uint64_t orig) {
  memcpy(b, "SNPB\x02\x01\x00\x00\x00\x00\x00\x00", 12);
  for (int i = 0; i < 8; i++)
    b[12 + i] = (uint8_t)(orig >> (8 * i));
  const size_t blk = 2 + 3 + len;
  b[20] = (uint8_t)blk;
  b[21] = (uint8_t)(blk >> 8);
  b[22] = 6;
  b[23] = (uint8_t)len;
  b[24] = 0;
  memcpy(b + 25, val, len);
  const size_t n = 20 + blk;
  const uLong crc = crc32(0, b, (uInt)n);
  for (int i = 0; i < 4; i++)
    b[n + i] = (uint8_t)(crc >> (8 * i));
  return n + 4;
}

Test(head, the_chunking_field_is_checked) {
  uint8_t val[48] = {0}, b[128];
  /* Neither AEAD nor MAC: 48 bytes; 64-byte chunks, 2 of them, 100 bytes. */
  val[0] = 64;
  val[4] = 2;
  val[12] = 100;
  snap_stream_info info;
  size_t n = chunking_frame(b, val, 48, 100);
  cr_assert_eq(snap_body_inspect_stream(b, n, &info), SNAP_OK, "%s", snap_error_message());
  cr_assert(info.chunked);
  cr_assert_eq(info.records_len, 108u);
  n = chunking_frame(b, val, 44, 100); /* the AEAD length without AEAD */
  cr_assert_eq(snap_body_inspect_stream(b, n, &info), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "chunking field"), "%s", snap_error_message());
  n = chunking_frame(b, val, 1, 100);
  cr_assert_eq(snap_body_inspect_stream(b, n, &info), SNAP_EFORMAT);
  val[4] = 3; /* 3 chunks of 64 bytes do not hold 100 */
  n = chunking_frame(b, val, 48, 100);
  cr_assert_eq(snap_body_inspect_stream(b, n, &info), SNAP_ECORRUPT);
  val[4] = 2;
  n = chunking_frame(b, val, 48, 101); /* uncompressed: stored = plain */
  cr_assert_eq(snap_body_inspect_stream(b, n, &info), SNAP_ECORRUPT);
  val[0] = 0; /* chunk size 0 */
  n = chunking_frame(b, val, 48, 100);
  cr_assert_eq(snap_body_inspect_stream(b, n, &info), SNAP_EFORMAT);
  cr_assert_not(info.chunked);
}
