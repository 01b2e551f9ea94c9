/* The golden vectors of streamed states (tests/data/golden/stream/): the
 * library decodes them and re-encodes them byte for byte, and an independent
 * reader written from docs/FORMAT.md ("Streamed states") alone, with
 * libsodium, zlib and libzstd, opens every one. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "snap/pipeline.h"
#include "snap/stream.h"

#define GDIR SNAP_TEST_DATA_DIR "/golden"
#define G_PID "golden/pid-\xc3\xa9"
#define G_CONTEXT "snapstore/golden/v1"
#define G_SEQ 42

static uint8_t *slurp(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", GDIR, name);
  FILE *f = fopen(path, "rb");
  cr_assert(f, "missing %s", path);
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc(n ? (size_t)n : 1);
  cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static const char *const COMBOS[] = {"none",      "zlib",     "zstd",           "zstd-dict",
                                     "aead",      "zlib-aead", "zstd-aead",     "zstd-dict-aead",
                                     "mac",       "zlib-mac", "zstd-mac",       "zstd-dict-mac",
                                     "zlib-envelope", "typed-zstd-mac"};
#define N_PUBLIC 12 /* the combinations the public encoder writes */

/* ---- the independent reader ------------------------------------------------------ */

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void lp(crypto_generichash_state *st, const void *p, size_t n) {
  uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
  crypto_generichash_update(st, len, 4);
  crypto_generichash_update(st, p, n);
}

/* subkey = BLAKE2b-256(key = master, LP(label) || LP(context) || LP(pid)). */
static void subkey_of(uint8_t out[32], const char *label) {
  uint8_t master[32];
  for (int i = 0; i < 32; i++)
    master[i] = (uint8_t)i;
  crypto_generichash_state st;
  crypto_generichash_init(&st, master, 32, 32);
  lp(&st, label, strlen(label));
  lp(&st, G_CONTEXT, strlen(G_CONTEXT));
  lp(&st, G_PID, strlen(G_PID));
  crypto_generichash_final(&st, out, 32);
}

typedef struct spec_head {
  unsigned fmt, stages;
  uint64_t plain;
  size_t hdr_len;
  bool zstd, envelope;
  uint32_t dict_id;
  const uint8_t *chunking;
  size_t chunking_len;
} spec_head;

/* Reads and authenticates a head; the subkey (or data key) into `key`. */
static void spec_head_read(const uint8_t *b, size_t n, spec_head *h, uint8_t key[32]) {
  memset(h, 0, sizeof *h);
  cr_assert(n >= 22 && memcmp(b, "SNPB", 4) == 0 && b[4] == 2 && b[7] == 0);
  h->fmt = b[5];
  h->stages = b[6];
  h->plain = le64(b + 12);
  const size_t blen = b[20] | (size_t)b[21] << 8;
  h->hdr_len = 20 + blen;
  for (size_t at = 22; at < h->hdr_len;) {
    const unsigned type = b[at];
    const size_t len = b[at + 1] | (size_t)b[at + 2] << 8;
    const uint8_t *v = b + at + 3;
    if (type == 1)
      h->zstd = v[0] == 2;
    if (type == 2)
      h->dict_id = le32(v);
    if (type == 3)
      h->envelope = true;
    if (type == 6) {
      h->chunking = v;
      h->chunking_len = len;
    }
    at += 3 + len;
  }
  cr_assert(h->chunking, "a head carries field 6");
  /* binding = header || u64le(seq) || LP(pid) */
  uint8_t bind[512];
  memcpy(bind, b, h->hdr_len);
  put64(bind + h->hdr_len, G_SEQ);
  const size_t pl = strlen(G_PID);
  bind[h->hdr_len + 8] = (uint8_t)pl;
  memset(bind + h->hdr_len + 9, 0, 3);
  memcpy(bind + h->hdr_len + 12, G_PID, pl);
  const size_t bind_len = h->hdr_len + 12 + pl;
  if (h->stages & 2) {
    if (h->envelope)
      for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(0xa0 + i);
    else
      subkey_of(key, "snapstore/v1/aead");
    cr_assert_eq(n, h->hdr_len + 24 + 16);
    static const uint8_t none = 0; /* the empty body */
    cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                     NULL, NULL, &none, 0, b + h->hdr_len + 24, bind, bind_len, b + h->hdr_len, key),
                 0, "the head's tag");
  } else if (h->stages & 4) {
    subkey_of(key, "snapstore/v1/mac");
    cr_assert_eq(n, h->hdr_len + 32);
    uint8_t mac[32];
    crypto_generichash(mac, 32, bind, bind_len, key, 32);
    cr_assert_eq(memcmp(mac, b + h->hdr_len, 32), 0, "the head's MAC");
  } else {
    cr_assert_eq(n, h->hdr_len + 4);
    cr_assert_eq(crc32(0, b, (uInt)h->hdr_len), le32(b + h->hdr_len), "the head's CRC-32");
  }
}

/* Opens the records and returns the state they hold (`*len` bytes). */
static uint8_t *spec_stream(const uint8_t *head, size_t head_len, const uint8_t *recs,
                            size_t recs_len, size_t *len) {
  spec_head h;
  uint8_t key[32], skey[32];
  spec_head_read(head, head_len, &h, key);
  const uint8_t *c = h.chunking;
  const uint32_t chunk = le32(c);
  const uint64_t count = le64(c + 4), stored = le64(c + 12);
  const uint8_t *nonce = c + 20, *digest = c + 44;
  const bool aead = h.stages & 2, mac = h.stages & 4;
  const size_t over = aead ? 17 : mac ? 32 : 4;
  cr_assert_eq(h.chunking_len, aead ? 44u : mac ? 76u : 48u);
  cr_assert_eq(recs_len, stored + count * over);
  /* stream key = BLAKE2b-256(key = subkey, LP(label) || u64le(seq) || LP(pid) || nonce) */
  uint8_t seq[8];
  put64(seq, G_SEQ);
  crypto_generichash_state st;
  crypto_generichash_init(&st, key, 32, 32);
  lp(&st, "snapstore/v1/stream", 19);
  crypto_generichash_update(&st, seq, 8);
  lp(&st, G_PID, strlen(G_PID));
  crypto_generichash_update(&st, nonce, 24);
  crypto_generichash_final(&st, skey, 32);
  crypto_secretstream_xchacha20poly1305_state ss;
  if (aead)
    cr_assert_eq(crypto_secretstream_xchacha20poly1305_init_pull(&ss, nonce, skey), 0);
  uint8_t *payload = malloc(stored + 1), chain[32] = {0};
  uint32_t crc_prev = 0;
  const uint8_t *r = recs;
  for (uint64_t i = 0; i < count; i++) {
    const size_t n = (size_t)(stored - i * chunk < chunk ? stored - i * chunk : chunk);
    uint8_t *dst = payload + i * chunk, idx[8];
    put64(idx, i);
    if (aead) {
      unsigned char tag;
      cr_assert_eq(crypto_secretstream_xchacha20poly1305_pull(&ss, dst, NULL, &tag, r, n + 17,
                                                               NULL, 0),
                   0, "record %llu", (unsigned long long)i);
      cr_assert_eq(tag, i + 1 == count ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                                       : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    } else if (mac) {
      crypto_generichash_init(&st, skey, 32, 32);
      crypto_generichash_update(&st, idx, 8);
      crypto_generichash_update(&st, chain, 32);
      crypto_generichash_update(&st, r, n);
      crypto_generichash_final(&st, chain, 32);
      cr_assert_eq(memcmp(chain, r + n, 32), 0, "record %llu's MAC", (unsigned long long)i);
      memcpy(dst, r, n);
    } else {
      uint8_t pre[40];
      memcpy(pre, nonce, 24);
      memcpy(pre + 24, seq, 8);
      const size_t pl = strlen(G_PID);
      pre[32] = (uint8_t)pl;
      memset(pre + 33, 0, 3);
      uLong crc = crc32(crc32(0, pre, 36), (const Bytef *)G_PID, (uInt)pl);
      uint8_t mid[12];
      memcpy(mid, idx, 8);
      for (int k = 0; k < 4; k++)
        mid[8 + k] = (uint8_t)(crc_prev >> (8 * k));
      crc = crc32(crc32(crc, mid, 12), r, (uInt)n);
      cr_assert_eq(crc, le32(r + n), "record %llu's CRC", (unsigned long long)i);
      crc_prev = (uint32_t)crc;
      memcpy(dst, r, n);
    }
    r += n + over;
  }
  if (mac && count)
    cr_assert_eq(memcmp(chain, digest, 32), 0, "the final digest");
  if (!aead && !mac && count)
    cr_assert_eq(crc_prev, le32(digest), "the final digest");
  uint8_t *state = malloc(h.plain + 1);
  if (!(h.stages & 1)) {
    cr_assert_eq(stored, h.plain);
    memcpy(state, payload, stored);
  } else if (h.zstd) {
    size_t dlen = 0;
    uint8_t *dict = h.dict_id ? slurp("dict.zdict", &dlen) : NULL;
    ZSTD_DCtx *z = ZSTD_createDCtx();
    const size_t got =
        ZSTD_decompress_usingDict(z, state, h.plain, payload, stored, dict, dlen);
    cr_assert_eq(got, h.plain, "zstd: %s", ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size");
    ZSTD_freeDCtx(z);
    free(dict);
  } else {
    uLongf dlen = (uLongf)h.plain;
    cr_assert_eq(uncompress(state, &dlen, payload, (uLong)stored), Z_OK);
    cr_assert_eq(dlen, h.plain);
  }
  free(payload);
  *len = h.plain;
  return state;
}

static void spec_check(const char *name, const char *state_file) {
  char file[128];
  size_t hn, rn, sn, n;
  snprintf(file, sizeof file, "stream/%s.head", name);
  uint8_t *head = slurp(file, &hn);
  snprintf(file, sizeof file, "stream/%s.records", name);
  uint8_t *recs = slurp(file, &rn);
  uint8_t *want = state_file ? slurp(state_file, &sn) : NULL;
  if (!state_file)
    sn = 0;
  uint8_t *got = spec_stream(head, hn, recs, rn, &n);
  cr_assert_eq(n, sn, "%s", name);
  cr_assert(n == 0 || memcmp(got, want, n) == 0, "%s", name);
  free(head);
  free(recs);
  free(want);
  free(got);
}

Test(stream_golden, an_independent_reader_following_format_md_opens_every_one) {
  cr_assert_geq(sodium_init(), 0);
  for (size_t i = 0; i < sizeof COMBOS / sizeof *COMBOS; i++) {
    char name[64];
    snprintf(name, sizeof name, "json-%s", COMBOS[i]);
    spec_check(name, "state.json");
    snprintf(name, sizeof name, "msgpack-%s", COMBOS[i]);
    spec_check(name, "state.msgpack");
  }
  spec_check("empty-mac", NULL);
  spec_check("example-none", "example.json");
  spec_check("example-aead", "example.json");
  spec_check("example-mac", "example.json");
}

/* ---- the library ------------------------------------------------------------------- */

static snap_dict *g_dict;
/* The golden dictionary (`ud`) is the only one there is. */
static int dict_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  (void)name;
  *out = id == snap_dict_id(ud) ? snap_dict_ref(ud) : NULL;
  return *out ? SNAP_OK : SNAP_ENOTFOUND;
}
static void fixed_nonce(uint8_t *nonce, size_t n, void *ud) {
  (void)ud;
  for (size_t i = 0; i < n; i++)
    nonce[i] = (uint8_t)(0x80 + i);
}

static snap_options *options_for(const char *combo, snap_keyring *kr) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  const bool zstd = strstr(combo, "zstd"), zlib = strstr(combo, "zlib");
  cr_assert_eq(snap_options_set_compression(o, zstd   ? SNAP_COMPRESSION_ZSTD
                                               : zlib ? SNAP_COMPRESSION_ZLIB
                                                      : SNAP_COMPRESSION_NONE,
                                            zstd ? 3 : zlib ? 6 : 0),
               SNAP_OK);
  cr_assert_eq(snap_options_set_dictionary(o, strstr(combo, "dict") ? snap_dict_id(g_dict) : 0,
                                           NULL),
               SNAP_OK);
  cr_assert_eq(snap_options_set_dictionary_source(o, dict_source, g_dict), SNAP_OK);
  if (strstr(combo, "aead"))
    cr_assert_eq(snap_options_set_encryption(o, kr, G_CONTEXT), SNAP_OK);
  if (strstr(combo, "mac"))
    cr_assert_eq(snap_options_set_integrity(o, kr, G_CONTEXT), SNAP_OK);
  cr_assert_eq(snap_options_set_nonce_source(o, fixed_nonce, NULL), SNAP_OK);
  return o;
}

static int append(void *ud, uint64_t index, const void *p, size_t len) {
  (void)index;
  snap_buf *b = ud;
  cr_assert_eq(snap_buf_reserve(b, b->len + len), SNAP_OK);
  memcpy(b->data + b->len, p, len);
  b->len += len;
  return SNAP_OK;
}

/* Decodes a vector with the library and encodes its state again: the same bytes. */
static void library_check(const char *name, const char *combo, snap_format fmt,
                          const char *state_file, size_t chunk, snap_keyring *kr) {
  char file[128];
  size_t hn, rn, sn = 0;
  snprintf(file, sizeof file, "stream/%s.head", name);
  uint8_t *head = slurp(file, &hn);
  snprintf(file, sizeof file, "stream/%s.records", name);
  uint8_t *recs = slurp(file, &rn);
  uint8_t *want = state_file ? slurp(state_file, &sn) : NULL;
  snap_options *o = options_for(combo, kr);
  snap_stream_decoder *d;
  snap_stream_info info;
  cr_assert_eq(snap_stream_decoder_open(&d, G_PID, G_SEQ, head, hn, o, 0, &info), SNAP_OK,
               "%s: %s", name, snap_error_message());
  cr_assert_eq(info.fmt, fmt);
  snap_buf out = SNAP_BUF_INIT;
  cr_assert_eq(snap_buf_reserve(&out, sn + 1), SNAP_OK);
  const uint8_t *r = recs;
  for (uint64_t i = 0; i < info.chunk_count; i++) {
    const size_t len = snap_stream_record_len(&info, i);
    cr_assert_eq(snap_stream_decoder_push(d, r, len), SNAP_OK, "%s record %llu: %s", name,
                 (unsigned long long)i, snap_error_message());
    r += len;
    size_t got = 1;
    while (got) {
      cr_assert_eq(snap_stream_decoder_read(d, out.data + out.len, sn + 1 - out.len, &got),
                   SNAP_OK);
      out.len += got;
    }
  }
  cr_assert_eq(snap_stream_decoder_finish(d), SNAP_OK, "%s: %s", name, snap_error_message());
  snap_stream_decoder_free(d);
  cr_assert_eq(out.len, sn);
  cr_assert(sn == 0 || memcmp(out.data, want, sn) == 0);
  snap_buf h2 = SNAP_BUF_INIT, r2 = SNAP_BUF_INIT;
  snap_stream_encoder *e;
  cr_assert_eq(snap_stream_encoder_new(&e, G_PID, G_SEQ, fmt, o, chunk, append, &r2), SNAP_OK);
  cr_assert_eq(snap_stream_encoder_write(e, want, sn), SNAP_OK);
  cr_assert_eq(snap_stream_encoder_finish(e, &h2, NULL), SNAP_OK);
  snap_stream_encoder_free(e);
  cr_assert(h2.len == hn && memcmp(h2.data, head, hn) == 0, "%s: the head again", name);
  cr_assert(r2.len == rn && (rn == 0 || memcmp(r2.data, recs, rn) == 0),
            "%s: the records again", name);
  snap_buf_dispose(&out);
  snap_buf_dispose(&h2);
  snap_buf_dispose(&r2);
  snap_options_free(o);
  free(head);
  free(recs);
  free(want);
}

Test(stream_golden, the_library_decodes_them_and_encodes_the_same_bytes) {
  size_t dn;
  uint8_t *dict = slurp("dict.zdict", &dn);
  cr_assert_eq(snap_dict_new(&g_dict, dict, dn), SNAP_OK);
  free(dict);
  uint8_t master[32];
  for (int i = 0; i < 32; i++)
    master[i] = (uint8_t)i;
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, master, 32), SNAP_OK);
  for (size_t i = 0; i < N_PUBLIC; i++) {
    char name[64];
    snprintf(name, sizeof name, "json-%s", COMBOS[i]);
    library_check(name, COMBOS[i], SNAP_FORMAT_JSON, "state.json", 64, kr);
    snprintf(name, sizeof name, "msgpack-%s", COMBOS[i]);
    library_check(name, COMBOS[i], SNAP_FORMAT_MSGPACK, "state.msgpack", 64, kr);
  }
  library_check("empty-mac", "mac", SNAP_FORMAT_JSON, NULL, 64, kr);
  library_check("example-none", "none", SNAP_FORMAT_JSON, "example.json", 4, kr);
  library_check("example-aead", "aead", SNAP_FORMAT_JSON, "example.json", 4, kr);
  library_check("example-mac", "mac", SNAP_FORMAT_JSON, "example.json", 4, kr);
  snap_keyring_free(kr);
  snap_dict_free(g_dict);
}
