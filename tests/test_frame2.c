/* Frame version 2 (docs/FORMAT.md, "Frame version 2") and the zstd codec
 * through the public API: which frame a writer emits, round trips in every
 * stage combination, the strictness rules of the extension block, and the
 * checks a zstd body passes before anything is allocated for it. The golden
 * vectors and the independent reader are in test_pipeline.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "snap/alloc.h"
#include "snap/pipeline.h"

#include "bytes_le.h"

#define KiB ((size_t)1024)

/* ---- helpers ------------------------------------------------------------- */

enum auth { AUTH_NONE, AUTH_AEAD, AUTH_MAC };

static snap_keyring *ring(void) {
  uint8_t k[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < SNAP_KEY_BYTES; i++)
    k[i] = (uint8_t)(0x40 + i);
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  return kr;
}

static snap_options *opts(snap_compression alg, int level, enum auth a, snap_keyring *kr) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, alg, level), SNAP_OK, "%s", snap_error_message());
  if (a == AUTH_AEAD)
    cr_assert_eq(snap_options_set_encryption(o, kr, "tests/frame2/v1"), SNAP_OK);
  if (a == AUTH_MAC)
    cr_assert_eq(snap_options_set_integrity(o, kr, "tests/frame2/v1"), SNAP_OK);
  return o;
}

/* A JSON array of `n` (>= 2) bytes of small records that compress well. */
static char *records(size_t n) {
  char *p = malloc(n + 1);
  size_t at = 0;
  p[at++] = '[';
  for (unsigned i = 0; at + 48 < n; i++)
    at += (size_t)snprintf(p + at, n - at, "%s{\"id\":%u,\"name\":\"user-%u\"}", i ? "," : "", i,
                           i % 97);
  while (at < n - 1)
    p[at++] = ' ';
  p[n - 1] = ']';
  p[n] = 0;
  return p;
}

/* A checksummed (neither AEAD nor MAC) v2 body built by hand: header with
 * `stages`, the extension block `blk` (its length prefix included) as given,
 * the body bytes and a correct CRC-32. Returns its length. */
static size_t craft(uint8_t *out, unsigned stages, const uint8_t *blk, size_t blk_len,
                    const void *body, size_t body_len, uint64_t orig) {
  memcpy(out, "SNPB", 4);
  out[4] = 2;
  out[5] = 1; /* JSON */
  out[6] = (uint8_t)stages;
  out[7] = 0;
  put_u32le(out + 8, 0);
  put_u64le(out + 12, orig);
  memcpy(out + 20, blk, blk_len);
  memcpy(out + 20 + blk_len, body, body_len);
  size_t n = 20 + blk_len + body_len;
  put_u32le(out + n, (uint32_t)crc32(0, out, (uInt)n));
  return n + 4;
}

static int decode(const uint8_t *b, size_t n, snap_buf *out) {
  return snap_body_decode("p", 1, b, n, NULL, out, NULL, NULL);
}

/* ---- what a writer emits ------------------------------------------------- */

Test(writer, zlib_bodies_stay_version_1_and_zstd_bodies_are_version_2) {
  char *s = records(1 * KiB);
  snap_options *z = opts(SNAP_COMPRESSION_ZLIB, 1, AUTH_NONE, NULL);
  snap_options *zs = opts(SNAP_COMPRESSION_ZSTD, 3, AUTH_NONE, NULL);
  snap_buf a = SNAP_BUF_INIT, b = SNAP_BUF_INIT;
  unsigned st;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, 1 * KiB, z, &a, &st), SNAP_OK);
  cr_assert_eq(a.data[4], 1);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, 1 * KiB, zs, &b, &st), SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED);
  /* version 2, block of 6 bytes: 06 00 | 01 01 00 | 02 (codec zstd) */
  static const uint8_t want[] = {2, 1, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,
                                 6, 0, 1, 1, 0, 2, 0x28, 0xb5, 0x2f, 0xfd};
  cr_assert_eq(memcmp(b.data + 4, want, sizeof want), 0, "header of a zstd body");
  cr_assert_lt(b.len, 1 * KiB);
  snap_buf_dispose(&a);
  snap_buf_dispose(&b);
  snap_options_free(z);
  snap_options_free(zs);
  free(s);
}

Test(writer, zstd_is_kept_only_when_the_whole_body_shrinks) {
  snap_options *o = opts(SNAP_COMPRESSION_ZSTD, 3, AUTH_NONE, NULL);
  snap_buf b = SNAP_BUF_INIT;
  unsigned st = 0xff;
  /* Too short, or incompressible: a plain version 1 body. */
  static const char tiny[] = "{\"n\":1}";
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, tiny, 7, o, &b, &st), SNAP_OK);
  cr_assert_eq(st, 0u);
  cr_assert_eq(b.data[4], 1);
  cr_assert_eq(b.len, 20u + 7 + 4);
  char str[130];
  str[0] = '"';
  for (int i = 1; i < 129; i++)
    str[i] = (char)("abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7919) % 36]);
  str[129] = '"';
  for (size_t n = 9; n <= 40; n++) {
    char js[64];
    memcpy(js, str, n - 1);
    js[n - 1] = '"';
    cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, js, n, o, &b, &st), SNAP_OK);
    /* Kept only if the body with its 6-byte block is shorter than without. */
    if (st & SNAP_STAGE_COMPRESSED)
      cr_assert_lt(b.len, 20u + n + 4, "%zu bytes", n);
    else
      cr_assert(b.data[4] == 1 && b.len == 20u + n + 4, "%zu bytes", n);
  }
  /* The minimum size applies to zstd as to zlib. */
  char *s = records(2 * KiB);
  cr_assert_eq(snap_options_set_compression_min_size(o, 4 * KiB), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, 2 * KiB, o, &b, &st), SNAP_OK);
  cr_assert_eq(st, 0u);
  cr_assert_eq(b.data[4], 1);
  free(s);
  snap_buf_dispose(&b);
  snap_options_free(o);
}

Test(writer, zstd_levels_negative_fast_to_maximum) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, ZSTD_maxCLevel() + 1),
               SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "zstd"), "%s", snap_error_message());
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, ZSTD_minCLevel() - 1),
               SNAP_EINVAL);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, -1), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_compression(o, (snap_compression)3, 1), SNAP_EINVAL);
  char *s = records(8 * KiB);
  static const int levels[] = {-131072, -50, -5, -1, 0, 1, 3, 9, 19};
  snap_buf b = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
    int lv = levels[i] < ZSTD_minCLevel() ? ZSTD_minCLevel() : levels[i];
    cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, lv), SNAP_OK);
    unsigned st;
    cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, 8 * KiB, o, &b, &st), SNAP_OK);
    /* the fastest levels barely compress; from -5 on these records shrink */
    cr_assert(st == SNAP_STAGE_COMPRESSED || lv < -5, "level %d", lv);
    cr_assert_eq(decode(b.data, b.len, &back), SNAP_OK, "level %d: %s", lv, snap_error_message());
    cr_assert(back.len == 8 * KiB && memcmp(back.data, s, back.len) == 0);
  }
  free(s);
  snap_buf_dispose(&b);
  snap_buf_dispose(&back);
  snap_options_free(o);
}

/* ---- round trips ----------------------------------------------------------- */

static void round_trip(snap_format fmt, enum auth a) {
  snap_keyring *kr = ring();
  snap_options *o = opts(SNAP_COMPRESSION_ZSTD, 3, a, kr);
  static const size_t sizes[] = {0, 1, 64, 300, 4 * KiB, 300 * KiB};
  snap_buf b = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    char *s = NULL;
    if (fmt == SNAP_FORMAT_JSON && n == 1) {
      s = strdup("7");
    } else if (fmt == SNAP_FORMAT_JSON) {
      s = n ? records(n) : NULL;
    } else if (n) {
      /* msgpack: one bin value of n bytes (str8/bin32 header, filler). */
      s = malloc(n);
      if (n < 6) {
        memset(s, 0xc0, 1); /* nil */
        n = 1;
      } else {
        s[0] = (char)0xc6;
        uint32_t m = (uint32_t)(n - 5);
        s[1] = (char)(m >> 24), s[2] = (char)(m >> 16), s[3] = (char)(m >> 8), s[4] = (char)m;
        for (size_t k = 5; k < n; k++)
          s[k] = (char)("snapshot"[k % 8]);
      }
    }
    unsigned st = 0, st2 = 0;
    snap_format f = 0;
    cr_assert_eq(snap_body_encode("acct-9", 3, fmt, s, n, o, &b, &st), SNAP_OK, "%zu: %s", n,
                 snap_error_message());
    const bool comp = n >= 64;
    cr_assert_eq(!!(st & SNAP_STAGE_COMPRESSED), comp, "%zu bytes: stages 0x%x", n, st);
    cr_assert_eq(b.data[4], comp ? 2 : 1);
    cr_assert_eq(snap_body_decode("acct-9", 3, b.data, b.len, o, &back, &f, &st2), SNAP_OK,
                 "%zu: %s", n, snap_error_message());
    cr_assert(f == fmt && st2 == st && back.len == n);
    cr_assert(n == 0 || memcmp(back.data, s, n) == 0);
    uint64_t orig = 0;
    unsigned ist = 0;
    cr_assert_eq(snap_body_inspect(b.data, b.len, NULL, &ist, NULL, &orig), SNAP_OK);
    cr_assert(orig == n && ist == st);
    /* The body is bound to its pid and seq like a version 1 body. */
    if (a != AUTH_NONE) {
      cr_assert_eq(snap_body_decode("acct-9", 4, b.data, b.len, o, &back, NULL, NULL), SNAP_EAUTH);
      cr_assert_eq(snap_body_decode("acct-8", 3, b.data, b.len, o, &back, NULL, NULL), SNAP_EAUTH);
    }
    free(s);
  }
  snap_buf_dispose(&b);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(round_trip, json_zstd_none) { round_trip(SNAP_FORMAT_JSON, AUTH_NONE); }
Test(round_trip, json_zstd_aead) { round_trip(SNAP_FORMAT_JSON, AUTH_AEAD); }
Test(round_trip, json_zstd_mac) { round_trip(SNAP_FORMAT_JSON, AUTH_MAC); }
Test(round_trip, msgpack_zstd_none) { round_trip(SNAP_FORMAT_MSGPACK, AUTH_NONE); }
Test(round_trip, msgpack_zstd_aead) { round_trip(SNAP_FORMAT_MSGPACK, AUTH_AEAD); }
Test(round_trip, msgpack_zstd_mac) { round_trip(SNAP_FORMAT_MSGPACK, AUTH_MAC); }

/* ---- the extension block's rules --------------------------------------------- */

/* A zstd frame of the state `s` (for hand-made bodies). */
static size_t zframe(uint8_t *dst, size_t cap, const char *s, size_t n) {
  size_t r = ZSTD_compress(dst, cap, s, n, 3);
  cr_assert(!ZSTD_isError(r));
  return r;
}

Test(block, a_well_formed_hand_made_body_decodes) {
  char *s = records(1 * KiB);
  uint8_t z[2 * KiB], b[4 * KiB];
  size_t zn = zframe(z, sizeof z, s, 1 * KiB);
  static const uint8_t blk[] = {6, 0, 1, 1, 0, 2};
  size_t n = craft(b, 1, blk, sizeof blk, z, zn, 1 * KiB);
  snap_buf out = SNAP_BUF_INIT;
  cr_assert_eq(decode(b, n, &out), SNAP_OK, "%s", snap_error_message());
  cr_assert(out.len == 1 * KiB && memcmp(out.data, s, out.len) == 0);
  snap_buf_dispose(&out);
  free(s);
}

/* The block `blk` around a valid zstd body of 1 KiB must fail with `want`,
 * its message containing `says`. */
static void refused(const uint8_t *blk, size_t blk_len, unsigned stages, int want,
                    const char *says) {
  char *s = records(1 * KiB);
  uint8_t z[2 * KiB], b[8 * KiB];
  size_t zn = zframe(z, sizeof z, s, 1 * KiB);
  size_t n = craft(b, stages, blk, blk_len, z, zn, 1 * KiB);
  snap_buf out = SNAP_BUF_INIT;
  int rc = decode(b, n, &out);
  cr_assert_eq(rc, want, "got %d (%s), wanted %d", rc, snap_error_message(), want);
  cr_assert(strstr(snap_error_message(), says), "message: %s", snap_error_message());
  cr_assert_eq(out.len, 0u);
  /* inspect reads the same header and refuses it the same way */
  cr_assert_eq(snap_body_inspect(b, n, NULL, NULL, NULL, NULL), want);
  snap_buf_dispose(&out);
  free(s);
}

Test(block, unknown_field_types_are_eformat) {
  for (unsigned t = 0; t < 256; t++) {
    /* 1 codec, 2 dictionary id (test_dict.c), 3 envelope key reference
     * (test_envelope.c), 4 manifest and 5 metadata (checked below), 6
     * chunking (test_stream.c) */
    if (t >= 1 && t <= 6)
      continue;
    const uint8_t blk[] = {6, 0, (uint8_t)t, 1, 0, 2};
    refused(blk, sizeof blk, 1, SNAP_EFORMAT, "unknown field type");
  }
  /* Type 3 is known: on a body that is not AEAD it is refused for that. */
  static const uint8_t envelope[] = {6, 0, 3, 1, 0, 2};
  refused(envelope, sizeof envelope, 1, SNAP_EFORMAT, "does not declare AEAD");
  /* after a known one, too */
  static const uint8_t after[] = {10, 0, 1, 1, 0, 2, 9, 1, 0, 0};
  refused(after, sizeof after, 1, SNAP_EFORMAT, "unknown field type 9");
}

/* Manifest (4) and metadata (5) fields: a manifest is 1..255 bytes of UTF-8
 * without NUL, metadata 1..2048 bytes; anything else is EFORMAT. */
Test(block, manifest_and_metadata_fields_are_checked) {
  static const uint8_t nul[] = {11, 0, 1, 1, 0, 2, 4, 2, 0, 'a', 0};
  refused(nul, sizeof nul, 1, SNAP_EFORMAT, "manifest field: it holds a NUL byte");
  static const uint8_t utf[] = {11, 0, 1, 1, 0, 2, 4, 2, 0, 0xc3, 0x28};
  refused(utf, sizeof utf, 1, SNAP_EFORMAT, "manifest field: it is not valid UTF-8");
  static const uint8_t empty[] = {9, 0, 1, 1, 0, 2, 4, 0, 0};
  refused(empty, sizeof empty, 1, SNAP_EFORMAT, "manifest field (type 4)");
  static const uint8_t nometa[] = {9, 0, 1, 1, 0, 2, 5, 0, 0};
  refused(nometa, sizeof nometa, 1, SNAP_EFORMAT, "metadata field (type 5)");
  /* A well-formed pair decodes. */
  char *s = records(1 * KiB);
  uint8_t z[2 * KiB], b[4 * KiB];
  size_t zn = zframe(z, sizeof z, s, 1 * KiB);
  static const uint8_t ok[] = {16, 0, 1, 1, 0, 2, 4, 3, 0, 'T', '/', '1', 5, 1, 0, 0};
  size_t n = craft(b, 1, ok, sizeof ok, z, zn, 1 * KiB);
  snap_buf out = SNAP_BUF_INIT;
  cr_assert_eq(decode(b, n, &out), SNAP_OK, "%s", snap_error_message());
  snap_buf_dispose(&out);
  free(s);
}

Test(block, duplicate_fields_are_eformat) {
  static const uint8_t dup[] = {10, 0, 1, 1, 0, 2, 1, 1, 0, 2};
  refused(dup, sizeof dup, 1, SNAP_EFORMAT, "types ascend");
}

Test(block, an_empty_or_fieldless_block_is_eformat) {
  for (size_t len = 0; len < 5; len++) {
    uint8_t blk[5] = {(uint8_t)len, 0, 0, 0, 0};
    refused(blk, len < 2 ? 2 : len, 1, SNAP_EFORMAT, "holds no field");
  }
}

Test(block, length_overruns_are_ecorrupt) {
  /* a field whose value runs past the block */
  static const uint8_t over[] = {6, 0, 1, 2, 0, 2};
  refused(over, sizeof over, 1, SNAP_ECORRUPT, "past the block's end");
  /* stray bytes after the last field, too few for a field header */
  static const uint8_t stray[] = {8, 0, 1, 1, 0, 2, 0, 0};
  refused(stray, sizeof stray, 1, SNAP_ECORRUPT, "stray bytes");
  /* a block longer than the whole body */
  uint8_t b[64] = "SNPB\x02\x01\x00";
  put_u16le(b + 20, 60);
  snap_buf out = SNAP_BUF_INIT;
  cr_assert_eq(decode(b, 30, &out), SNAP_ECORRUPT);
  cr_assert(strstr(snap_error_message(), "with its extension block"), "%s", snap_error_message());
  /* no room for the block's length at all */
  cr_assert_eq(decode(b, 21, &out), SNAP_ECORRUPT);
  snap_buf_dispose(&out);
}

Test(block, a_block_over_the_cap_is_eformat) {
  uint8_t *blk = calloc(1, 4097 + 3);
  put_u16le(blk, 4097);
  blk[2] = 1, blk[3] = 1, blk[4] = 0, blk[5] = 2; /* codec zstd, then padding */
  refused(blk, 4097, 1, SNAP_EFORMAT, "over the 4096-byte limit");
  free(blk);
}

Test(block, the_codec_field_is_checked) {
  static const uint8_t zlib_named[] = {6, 0, 1, 1, 0, 1};
  refused(zlib_named, sizeof zlib_named, 1, SNAP_EFORMAT, "zlib is written as no codec field");
  static const uint8_t unknown[] = {6, 0, 1, 1, 0, 3};
  refused(unknown, sizeof unknown, 1, SNAP_EFORMAT, "unknown codec 3");
  static const uint8_t two_bytes[] = {7, 0, 1, 2, 0, 2, 0};
  refused(two_bytes, sizeof two_bytes, 1, SNAP_EFORMAT, "codec field (type 1)");
  static const uint8_t empty[] = {5, 0, 1, 0, 0};
  refused(empty, sizeof empty, 1, SNAP_EFORMAT, "codec field (type 1)");
  static const uint8_t ok[] = {6, 0, 1, 1, 0, 2};
  refused(ok, sizeof ok, 0, SNAP_EFORMAT, "does not declare compression");
}

Test(block, unknown_frame_versions_stay_eformat) {
  char *s = records(1 * KiB);
  snap_options *o = opts(SNAP_COMPRESSION_ZSTD, 3, AUTH_NONE, NULL);
  snap_buf b = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, 1 * KiB, o, &b, NULL), SNAP_OK);
  for (unsigned v = 0; v < 256; v++) {
    if (v == 2)
      continue;
    b.data[4] = (uint8_t)v;
    put_u32le(b.data + b.len - 4, (uint32_t)crc32(0, b.data, (uInt)(b.len - 4)));
    int rc = decode(b.data, b.len, &out);
    /* Read as version 1, the block is body bytes: a zstd-less "zlib" body. */
    cr_assert(v == 1 ? rc == SNAP_ECORRUPT : rc == SNAP_EFORMAT, "version %u: %d", v, rc);
  }
  snap_buf_dispose(&b);
  snap_buf_dispose(&out);
  snap_options_free(o);
  free(s);
}

/* Every changed byte of the header and block of a keyed v2 body is EAUTH,
 * and of a checksummed one a failure: the block is bound and covered. */
static void every_header_byte(enum auth a) {
  snap_keyring *kr = ring();
  snap_options *o = opts(SNAP_COMPRESSION_ZSTD, 3, a, kr);
  char *s = records(1 * KiB);
  snap_buf b = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, 1 * KiB, o, &b, NULL), SNAP_OK);
  cr_assert_eq(b.data[4], 2);
  const size_t hdr = 20 + 6;
  for (size_t i = 0; i < hdr; i++) {
    const uint8_t keep = b.data[i];
    for (unsigned v = 0; v < 256; v++) {
      if (v == keep)
        continue;
      b.data[i] = (uint8_t)v;
      int rc = snap_body_decode("p", 1, b.data, b.len, o, &out, NULL, NULL);
      /* (a keyless reader sees a changed length byte as a state over the
       * limit, as for version 1 bodies) */
      if (a == AUTH_NONE)
        cr_assert(rc == SNAP_ECORRUPT || rc == SNAP_EFORMAT || (rc == SNAP_ETOOBIG && i >= 12),
                  "byte %zu = %u: %d", i, v, rc);
      else
        cr_assert_eq(rc, SNAP_EAUTH, "byte %zu = 0x%02x: %d (%s)", i, v, rc, snap_error_message());
      cr_assert_eq(out.len, 0u);
    }
    b.data[i] = keep;
  }
  cr_assert_eq(snap_body_decode("p", 1, b.data, b.len, o, &out, NULL, NULL), SNAP_OK);
  snap_buf_dispose(&b);
  snap_buf_dispose(&out);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(s);
}

Test(block, every_changed_header_byte_of_a_zstd_aead_body_is_eauth, .timeout = 120) {
  every_header_byte(AUTH_AEAD);
}
Test(block, every_changed_header_byte_of_a_zstd_mac_body_is_eauth, .timeout = 120) {
  every_header_byte(AUTH_MAC);
}
Test(block, every_changed_header_byte_of_a_zstd_crc_body_fails, .timeout = 120) {
  every_header_byte(AUTH_NONE);
}

/* ---- zstd data inside a valid frame ------------------------------------------- */

static size_t largest_request, requests;
static void *count_malloc(size_t n, void *ud) {
  (void)ud;
  largest_request = n > largest_request ? n : largest_request;
  requests++;
  return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  largest_request = n > largest_request ? n : largest_request;
  requests++;
  return realloc(p, n);
}

Test(zstd_data, a_lying_length_is_refused_before_allocating) {
  static const snap_allocator counter = {count_malloc, count_realloc, NULL, NULL, NULL, NULL};
  cr_assert_eq(snap_allocator_set(&counter), SNAP_OK);
  char *s = records(4 * KiB);
  uint8_t z[8 * KiB], b[16 * KiB];
  size_t zn = zframe(z, sizeof z, s, 4 * KiB);
  static const uint8_t blk[] = {6, 0, 1, 1, 0, 2};
  snap_buf out = SNAP_BUF_INIT;
  /* Declared lengths other than the zstd frame's content size, inside zstd's
   * expansion bound: refused by the frame's own size, nothing allocated. */
  const uint64_t lies[] = {4 * KiB - 1, 4 * KiB + 1, (uint64_t)zn * 30000};
  for (size_t i = 0; i < 3; i++) {
    size_t n = craft(b, 1, blk, sizeof blk, z, zn, lies[i]);
    requests = 0;
    cr_assert_eq(decode(b, n, &out), SNAP_ECORRUPT, "%llu", (unsigned long long)lies[i]);
    cr_assert(strstr(snap_error_message(), "content size"), "%s", snap_error_message());
    cr_assert_eq(requests, 0u, "nothing allocated for a declared %llu bytes",
                 (unsigned long long)lies[i]);
  }
  /* Past zstd's expansion bound (32768 to 1): refused from the frame alone. */
  size_t n = craft(b, 1, blk, sizeof blk, z, zn, (uint64_t)zn * 32768 + 32768);
  requests = 0;
  cr_assert_eq(decode(b, n, &out), SNAP_ECORRUPT);
  cr_assert(strstr(snap_error_message(), "more than zstd"), "%s", snap_error_message());
  cr_assert_eq(requests, 0u);
  snap_buf_dispose(&out);
  cr_assert_eq(snap_allocator_set(NULL), SNAP_OK);
  free(s);
}

Test(zstd_data, not_exactly_one_sized_frame_is_ecorrupt) {
  char *s = records(1 * KiB);
  uint8_t z[4 * KiB], b[8 * KiB];
  size_t zn = zframe(z, sizeof z, s, 1 * KiB);
  static const uint8_t blk[] = {6, 0, 1, 1, 0, 2};
  snap_buf out = SNAP_BUF_INIT;
  /* two frames back to back */
  memcpy(z + zn, z, zn);
  size_t n = craft(b, 1, blk, sizeof blk, z, 2 * zn, 2 * KiB);
  cr_assert_eq(decode(b, n, &out), SNAP_ECORRUPT);
  cr_assert(strstr(snap_error_message(), "exactly one zstd frame"), "%s", snap_error_message());
  /* a truncated frame, and trailing bytes */
  n = craft(b, 1, blk, sizeof blk, z, zn - 1, 1 * KiB);
  cr_assert_eq(decode(b, n, &out), SNAP_ECORRUPT);
  n = craft(b, 1, blk, sizeof blk, z, zn + 1, 1 * KiB);
  cr_assert_eq(decode(b, n, &out), SNAP_ECORRUPT);
  /* a zlib stream named zstd, and a zstd frame without the codec field */
  uLongf zl = sizeof z;
  cr_assert_eq(compress2(z, &zl, (const Bytef *)s, 1 * KiB, 6), Z_OK);
  n = craft(b, 1, blk, sizeof blk, z, zl, 1 * KiB);
  cr_assert_eq(decode(b, n, &out), SNAP_ECORRUPT);
  /* a frame without its content size */
  ZSTD_CCtx *c = ZSTD_createCCtx();
  cr_assert_eq(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)), 0);
  zn = ZSTD_compress2(c, z, sizeof z, s, 1 * KiB);
  cr_assert(!ZSTD_isError(zn));
  ZSTD_freeCCtx(c);
  n = craft(b, 1, blk, sizeof blk, z, zn, 1 * KiB);
  cr_assert_eq(decode(b, n, &out), SNAP_ECORRUPT);
  cr_assert(strstr(snap_error_message(), "does not declare its content size"), "%s",
            snap_error_message());
  /* every single flipped bit of the zstd data under a valid CRC (which only
   * its writer can make): never a crash, never a state of another length.
   * (A flipped literal decodes to another byte: in a stored body the CRC,
   * MAC or tag is what catches it.) */
  zn = zframe(z, sizeof z, s, 1 * KiB);
  for (size_t i = 0; i < zn * 8; i++) {
    z[i / 8] ^= (uint8_t)(1u << (i % 8));
    n = craft(b, 1, blk, sizeof blk, z, zn, 1 * KiB);
    int rc = decode(b, n, &out);
    cr_assert(rc == SNAP_ECORRUPT || (rc == SNAP_OK && out.len == 1 * KiB), "bit %zu: %d", i, rc);
    z[i / 8] ^= (uint8_t)(1u << (i % 8));
  }
  snap_buf_dispose(&out);
  free(s);
}

Test(zstd_data, an_encrypted_body_is_authenticated_before_a_large_allocation) {
  static const snap_allocator counter = {count_malloc, count_realloc, NULL, NULL, NULL, NULL};
  snap_keyring *kr = ring();
  snap_options *o = opts(SNAP_COMPRESSION_ZSTD, 3, AUTH_AEAD, kr);
  cr_assert_eq(snap_options_set_limits(o, 0, (size_t)1 << 31), SNAP_OK);
  char *s = records(4 * KiB);
  snap_buf b = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, 4 * KiB, o, &b, NULL), SNAP_OK);
  const size_t blen = b.len - 20 - 6 - 24 - 16;
  /* A declared length past zlib's bound, inside zstd's: the tag fails first. */
  put_u64le(b.data + 12, (uint64_t)blen * 20000);
  cr_assert_eq(snap_allocator_set(&counter), SNAP_OK);
  requests = 0;
  largest_request = 0;
  cr_assert_eq(snap_body_decode("p", 1, b.data, b.len, o, &out, NULL, NULL), SNAP_EAUTH);
  cr_assert_lt(largest_request, (size_t)blen * 1033, "largest request %zu", largest_request);
  cr_assert_eq(snap_allocator_set(NULL), SNAP_OK);
  snap_buf_dispose(&b);
  snap_buf_dispose(&out);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(s);
}
