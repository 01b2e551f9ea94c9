/* The body codec through the public API: round trips, tampering, keys, limits,
 * malformed payloads and the golden vectors of tests/data/golden/.
 * Keyrings, key files and options have their own file: test_keyring.c. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include <cjson/cJSON.h>

#include "snap/pipeline.h"
#include "snap/stream.h"

#include "bytes_le.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* ---- helpers ------------------------------------------------------------- */

static void fill_key(uint8_t k[SNAP_KEY_BYTES], uint8_t seed) {
  for (unsigned i = 0; i < SNAP_KEY_BYTES; i++)
    k[i] = (uint8_t)(seed + i);
}

static snap_keyring *ring(uint32_t version, uint8_t seed) {
  snap_keyring *kr;
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, seed);
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, version, k, sizeof k), SNAP_OK);
  return kr;
}

enum auth { AUTH_NONE, AUTH_AEAD, AUTH_MAC };
static const char *const AUTH_NAME[] = {"none", "aead", "mac"};

/* Options for one combination; a NULL keyring for AUTH_NONE. */
static snap_options *opts(bool zlib, int level, enum auth a, snap_keyring *kr, const char *ctx) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(
      snap_options_set_compression(o, zlib ? SNAP_COMPRESSION_ZLIB : SNAP_COMPRESSION_NONE, level),
      SNAP_OK);
  if (a == AUTH_AEAD)
    cr_assert_eq(snap_options_set_encryption(o, kr, ctx), SNAP_OK);
  if (a == AUTH_MAC)
    cr_assert_eq(snap_options_set_integrity(o, kr, ctx), SNAP_OK);
  return o;
}

/* Deterministic filler that zlib can shrink (4 bits of entropy a byte) and
 * that needs no escaping in JSON or msgpack strings. */
static void filler(uint8_t *p, size_t n, uint32_t seed) {
  static const char alpha[] = "abcdefghij klmno";
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 1664525u + 1013904223u;
    p[i] = (uint8_t)alpha[(x >> 24) & 15];
  }
}

/* A JSON text of exactly n bytes: "" for 0, a number for 1, a string up to 19,
 * an object with an array and a string beyond. */
static uint8_t *json_of(size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  cr_assert(p);
  if (n == 0)
    return p;
  if (n == 1) {
    p[0] = '7';
    return p;
  }
  if (n < 20) {
    p[0] = '"';
    filler(p + 1, n - 2, (uint32_t)n);
    p[n - 1] = '"';
    return p;
  }
  static const char pre[] = "{\"k\":[1,2,3],\"s\":\"";
  memcpy(p, pre, sizeof pre - 1);
  filler(p + sizeof pre - 1, n - (sizeof pre - 1) - 2, (uint32_t)n);
  memcpy(p + n - 2, "\"}", 2);
  return p;
}

/* A msgpack str header for a str whose header plus body is r bytes. */
static size_t mp_str_header(uint8_t *p, size_t r) {
  if (r >= 1 && r - 1 <= 31) {
    p[0] = (uint8_t)(0xa0 | (r - 1));
    return 1;
  }
  if (r >= 2 && r - 2 <= 255) {
    p[0] = 0xd9;
    p[1] = (uint8_t)(r - 2);
    return 2;
  }
  if (r >= 3 && r - 3 <= 65535) {
    p[0] = 0xda;
    p[1] = (uint8_t)((r - 3) >> 8);
    p[2] = (uint8_t)(r - 3);
    return 3;
  }
  size_t k = r - 5;
  p[0] = 0xdb;
  p[1] = (uint8_t)(k >> 24);
  p[2] = (uint8_t)(k >> 16);
  p[3] = (uint8_t)(k >> 8);
  p[4] = (uint8_t)k;
  return 5;
}

/* A msgpack value of exactly n bytes: a positive fixint for 1, a str up to 15,
 * {"k": [1,2,3], "s": str} beyond. */
static uint8_t *msgpack_of(size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  cr_assert(p);
  if (n == 0)
    return p;
  if (n == 1) {
    p[0] = 0x07;
    return p;
  }
  size_t off = 0;
  if (n >= 16) {
    static const uint8_t pre[] = {0x82, 0xa1, 'k', 0x93, 1, 2, 3, 0xa1, 's'};
    memcpy(p, pre, sizeof pre);
    off = sizeof pre;
  }
  off += mp_str_header(p + off, n - off);
  filler(p + off, n - off, (uint32_t)n);
  return p;
}

static uint8_t *payload_of(snap_format f, size_t n) {
  return f == SNAP_FORMAT_JSON ? json_of(n) : msgpack_of(n);
}

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open %s", path);
  cr_assert_eq(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  cr_assert(n >= 0);
  rewind(f);
  uint8_t *p = malloc((size_t)n + 1);
  cr_assert(p);
  cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

/* Re-seals an unauthenticated body (stage bits 0 or zlib only) after editing
 * its header, so the one defect a test is after is the only one. */
static void reseal_crc(uint8_t *b, size_t n) {
  put_u32le(b + n - 4, (uint32_t)crc32(0, b, (uInt)(n - 4)));
}

/* ---- round trips --------------------------------------------------------- */

static const size_t SIZES[] = {0, 1, 255, 4 * KiB, 1 * MiB, 16 * MiB};

static void round_trip_combo(snap_format fmt, bool zlib, enum auth a) {
  snap_keyring *kr = ring(1, 0x10);
  snap_options *o = opts(zlib, 1, a, kr, "tests/round-trip/v1");
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
    size_t n = SIZES[i];
    uint8_t *p = payload_of(fmt, n);
    cr_assert_eq(snap_payload_validate(fmt, p, n), SNAP_OK,
                 "generator made a bad payload (%zu): %s", n, snap_error_message());
    unsigned st = 0xdead;
    int rc = snap_body_encode("acct-1", 7, fmt, p, n, o, &body, &st);
    cr_assert_eq(rc, SNAP_OK, "encode %zu bytes (%s/%s/%s): %s", n,
                 fmt == SNAP_FORMAT_JSON ? "json" : "msgpack", zlib ? "zlib" : "raw", AUTH_NAME[a],
                 snap_error_message());
    unsigned want =
        (a == AUTH_AEAD ? SNAP_STAGE_ENCRYPTED : 0) | (a == AUTH_MAC ? SNAP_STAGE_MAC : 0);
    if (zlib && n >= 255) /* the filler always shrinks from 255 bytes on */
      want |= SNAP_STAGE_COMPRESSED;
    cr_assert_eq(st, want, "stages 0x%x, wanted 0x%x for %zu bytes", st, want, n);
    if (!zlib || n < 255)
      cr_assert_geq(body.len, n, "an uncompressed body is never shorter than its state");
    else
      cr_assert_lt(body.len, n + 20, "a compressed body is shorter than state + overhead");

    snap_format f = 0;
    unsigned st2 = 0;
    rc = snap_body_decode("acct-1", 7, body.data, body.len, o, &back, &f, &st2);
    cr_assert_eq(rc, SNAP_OK, "decode %zu bytes: %s", n, snap_error_message());
    cr_assert_eq(back.len, n);
    cr_assert_eq(f, fmt);
    cr_assert_eq(st2, st);
    cr_assert(n == 0 || memcmp(back.data, p, n) == 0, "%zu bytes differ after the round trip", n);
    cr_assert_eq(back.data[n], 0, "decode NUL-terminates the state");
    free(p);
  }
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
}

#define RT(fmtname, fmt, zname, z, aname, a)                                                       \
  Test(round_trip, fmtname##_##zname##_##aname, .timeout = 300) { round_trip_combo(fmt, z, a); }
RT(json, SNAP_FORMAT_JSON, raw, false, none, AUTH_NONE)
RT(json, SNAP_FORMAT_JSON, raw, false, aead, AUTH_AEAD)
RT(json, SNAP_FORMAT_JSON, raw, false, mac, AUTH_MAC)
RT(json, SNAP_FORMAT_JSON, zlib, true, none, AUTH_NONE)
RT(json, SNAP_FORMAT_JSON, zlib, true, aead, AUTH_AEAD)
RT(json, SNAP_FORMAT_JSON, zlib, true, mac, AUTH_MAC)
RT(msgpack, SNAP_FORMAT_MSGPACK, raw, false, none, AUTH_NONE)
RT(msgpack, SNAP_FORMAT_MSGPACK, raw, false, aead, AUTH_AEAD)
RT(msgpack, SNAP_FORMAT_MSGPACK, raw, false, mac, AUTH_MAC)
RT(msgpack, SNAP_FORMAT_MSGPACK, zlib, true, none, AUTH_NONE)
RT(msgpack, SNAP_FORMAT_MSGPACK, zlib, true, aead, AUTH_AEAD)
RT(msgpack, SNAP_FORMAT_MSGPACK, zlib, true, mac, AUTH_MAC)

Test(round_trip, payload_generators_make_exact_valid_sizes) {
  for (size_t n = 0; n < 70000; n += (n < 300 ? 1 : 997)) {
    for (int f = SNAP_FORMAT_JSON; f <= SNAP_FORMAT_MSGPACK; f++) {
      uint8_t *p = payload_of((snap_format)f, n);
      cr_assert_eq(snap_payload_validate((snap_format)f, p, n), SNAP_OK, "format %d size %zu: %s",
                   f, n, snap_error_message());
      free(p);
    }
  }
}

Test(round_trip, decode_ignores_the_compression_options_of_the_call) {
  snap_options *w = opts(true, 9, AUTH_NONE, NULL, NULL),
               *r = opts(false, 0, AUTH_NONE, NULL, NULL);
  uint8_t *p = json_of(4 * KiB);
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  unsigned st;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, w, &body, &st), SNAP_OK);
  cr_assert(st & SNAP_STAGE_COMPRESSED);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, r, &back, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, NULL, &back, NULL, NULL), SNAP_OK);
  cr_assert_eq(back.len, 4 * KiB);
  cr_assert_eq(memcmp(back.data, p, back.len), 0);
  free(p);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(w);
  snap_options_free(r);
}

Test(round_trip, compression_is_skipped_below_min_size_incompressible_or_level_0) {
  snap_options *o = opts(true, 6, AUTH_NONE, NULL, NULL);
  uint8_t *p = json_of(4 * KiB);
  snap_buf body = SNAP_BUF_INIT;
  unsigned st;
  cr_assert_eq(snap_options_set_compression_min_size(o, 4 * KiB + 1), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, o, &body, &st), SNAP_OK);
  cr_assert_eq(st, 0u, "below the minimum size: stored as is");
  cr_assert_eq(snap_options_set_compression_min_size(o, 4 * KiB), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, o, &body, &st), SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED, "at the minimum size: compressed");

  /* Random bytes in a msgpack bin32 do not shrink: kept uncompressed. */
  size_t n = 5 + 4 * KiB;
  uint8_t *r = malloc(n);
  static const uint8_t bin32_4k[5] = {0xc6, 0x00, 0x00, 0x10, 0x00}; /* bin32, 4096 bytes */
  memcpy(r, bin32_4k, sizeof bin32_4k);
  randombytes_buf(r + 5, 4 * KiB);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_MSGPACK, r, n, o, &body, &st), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(st, 0u, "incompressible state is stored uncompressed");
  cr_assert_eq(body.len, 20 + n + 4);

  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 0), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, o, &body, &st), SNAP_OK);
  cr_assert_eq(st, 0u, "level 0 (stored blocks) never shrinks");
  free(p);
  free(r);
  snap_buf_dispose(&body);
  snap_options_free(o);
}

Test(round_trip, integrity_is_not_added_to_an_encrypted_body) {
  snap_keyring *kr = ring(1, 1);
  snap_options *o = opts(false, 0, AUTH_AEAD, kr, "ctx");
  cr_assert_eq(snap_options_set_integrity(o, kr, "ctx"), SNAP_OK);
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  unsigned st;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, "[1]", 3, o, &body, &st), SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_ENCRYPTED);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, &st), SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_ENCRYPTED);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(round_trip, fresh_random_nonce_per_encode) {
  snap_keyring *kr = ring(1, 1);
  snap_options *o = opts(false, 0, AUTH_AEAD, kr, "ctx");
  snap_buf a = SNAP_BUF_INIT, b = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, "[1]", 3, o, &a, NULL), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, "[1]", 3, o, &b, NULL), SNAP_OK);
  cr_assert_eq(a.len, b.len);
  cr_assert_neq(memcmp(a.data + 20, b.data + 20, 24), 0, "two encodes share a nonce");
  cr_assert_eq(snap_body_decode("p", 1, a.data, a.len, o, &back, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_body_decode("p", 1, b.data, b.len, o, &back, NULL, NULL), SNAP_OK);
  snap_buf_dispose(&a);
  snap_buf_dispose(&b);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* ---- tampering: every byte, every truncation, every stage combination ---- */

static void tamper_combo(snap_format fmt, bool zlib, enum auth a) {
  snap_keyring *kr = ring(1, 0x33);
  snap_options *o = opts(zlib, 6, a, kr, "tests/tamper/v1");
  /* Small and repetitive, so zlib applies when asked. */
  static const char JSON[] =
      "{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"b\":[1,1,1,1]}";
  uint8_t mp[64];
  mp[0] = 0x81, mp[1] = 0xa1, mp[2] = 'a', mp[3] = 0xd9, mp[4] = 50;
  memset(mp + 5, 'x', 50);
  const void *state = fmt == SNAP_FORMAT_JSON ? (const void *)JSON : (const void *)mp;
  size_t len = fmt == SNAP_FORMAT_JSON ? sizeof JSON - 1 : 55;

  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  unsigned st;
  cr_assert_eq(snap_body_encode("tamper-pid", 3, fmt, state, len, o, &body, &st), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(!!(st & SNAP_STAGE_COMPRESSED), zlib);
  cr_assert_eq(snap_body_decode("tamper-pid", 3, body.data, body.len, o, &back, NULL, NULL),
               SNAP_OK);

  uint8_t *copy = malloc(body.len + 1);
  static const uint8_t MASKS[] = {0x01, 0x80, 0xff};
  for (size_t i = 0; i < body.len; i++) {
    for (size_t m = 0; m < sizeof MASKS; m++) {
      memcpy(copy, body.data, body.len);
      copy[i] ^= MASKS[m];
      back.len = 12345;
      int rc = snap_body_decode("tamper-pid", 3, copy, body.len, o, &back, NULL, NULL);
      cr_assert_lt(rc, 0, "byte %zu ^ 0x%02x of a %zu-byte %s%s body was accepted", i, MASKS[m],
                   body.len, zlib ? "zlib+" : "", AUTH_NAME[a]);
      cr_assert_eq(back.len, 0u, "a failed decode returned bytes");
    }
  }
  for (size_t k = 0; k < body.len; k++) {
    memcpy(copy, body.data, k);
    back.len = 12345;
    int rc = snap_body_decode("tamper-pid", 3, k ? copy : NULL, k, o, &back, NULL, NULL);
    cr_assert_lt(rc, 0, "truncation to %zu of %zu bytes was accepted", k, body.len);
    cr_assert_eq(back.len, 0u);
  }
  memcpy(copy, body.data, body.len);
  copy[body.len] = 0;
  cr_assert_lt(snap_body_decode("tamper-pid", 3, copy, body.len + 1, o, &back, NULL, NULL), 0,
               "a trailing byte was accepted");
  free(copy);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
}

#define TAMPER(fmtname, fmt, zname, z, aname, a)                                                   \
  Test(tamper, fmtname##_##zname##_##aname) { tamper_combo(fmt, z, a); }
TAMPER(json, SNAP_FORMAT_JSON, raw, false, none, AUTH_NONE)
TAMPER(json, SNAP_FORMAT_JSON, raw, false, aead, AUTH_AEAD)
TAMPER(json, SNAP_FORMAT_JSON, raw, false, mac, AUTH_MAC)
TAMPER(json, SNAP_FORMAT_JSON, zlib, true, none, AUTH_NONE)
TAMPER(json, SNAP_FORMAT_JSON, zlib, true, aead, AUTH_AEAD)
TAMPER(json, SNAP_FORMAT_JSON, zlib, true, mac, AUTH_MAC)
TAMPER(msgpack, SNAP_FORMAT_MSGPACK, raw, false, none, AUTH_NONE)
TAMPER(msgpack, SNAP_FORMAT_MSGPACK, raw, false, aead, AUTH_AEAD)
TAMPER(msgpack, SNAP_FORMAT_MSGPACK, raw, false, mac, AUTH_MAC)
TAMPER(msgpack, SNAP_FORMAT_MSGPACK, zlib, true, none, AUTH_NONE)
TAMPER(msgpack, SNAP_FORMAT_MSGPACK, zlib, true, aead, AUTH_AEAD)
TAMPER(msgpack, SNAP_FORMAT_MSGPACK, zlib, true, mac, AUTH_MAC)

Test(tamper, empty_state_bodies_too) {
  /* The empty state has the smallest bodies: every byte is header or trailer. */
  snap_keyring *kr = ring(1, 2);
  for (int a = AUTH_NONE; a <= AUTH_MAC; a++) {
    snap_options *o = opts(false, 0, (enum auth)a, kr, "ctx");
    snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
    cr_assert_eq(snap_body_encode("p", 0, SNAP_FORMAT_MSGPACK, NULL, 0, o, &body, NULL), SNAP_OK);
    cr_assert_eq(snap_body_decode("p", 0, body.data, body.len, o, &back, NULL, NULL), SNAP_OK);
    cr_assert_eq(back.len, 0u);
    uint8_t copy[128];
    for (size_t i = 0; i < body.len; i++) {
      memcpy(copy, body.data, body.len);
      copy[i] ^= 0x01;
      cr_assert_lt(snap_body_decode("p", 0, copy, body.len, o, &back, NULL, NULL), 0,
                   "%s: byte %zu", AUTH_NAME[a], i);
    }
    for (size_t k = 0; k < body.len; k++)
      cr_assert_lt(snap_body_decode("p", 0, body.data, k, o, &back, NULL, NULL), 0);
    snap_buf_dispose(&body);
    snap_buf_dispose(&back);
    snap_options_free(o);
  }
  snap_keyring_free(kr);
}

/* ---- authentication and keys -------------------------------------------- */

static void encode_one(snap_options *o, const char *pid, int64_t seq, snap_buf *body) {
  static const char S[] = "{\"balance\":100,\"owner\":\"ada\"}";
  cr_assert_eq(snap_body_encode(pid, seq, SNAP_FORMAT_JSON, S, sizeof S - 1, o, body, NULL),
               SNAP_OK, "%s", snap_error_message());
}

static void check_binding(enum auth a) {
  snap_keyring *kr = ring(1, 0x40), *other = ring(1, 0x41);
  snap_options *w = opts(true, 6, a, kr, "acme/prod/snapshots/v1");
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  encode_one(w, "acct-42", 7, &body);
  cr_assert_eq(snap_body_decode("acct-42", 7, body.data, body.len, w, &back, NULL, NULL), SNAP_OK);

  snap_options *wrong_key = opts(false, 0, a, other, "acme/prod/snapshots/v1");
  snap_options *wrong_ctx = opts(false, 0, a, kr, "acme/staging/snapshots/v1");
  cr_assert_eq(snap_body_decode("acct-42", 7, body.data, body.len, wrong_key, &back, NULL, NULL),
               SNAP_EAUTH, "wrong key");
  cr_assert(strstr(snap_error_message(), "key version 1"), "message: %s", snap_error_message());
  cr_assert(strstr(snap_error_message(), "pid 'acct-42' seq 7"), "message: %s",
            snap_error_message());
  cr_assert_eq(snap_body_decode("acct-42", 7, body.data, body.len, wrong_ctx, &back, NULL, NULL),
               SNAP_EAUTH, "wrong context");
  cr_assert_eq(snap_body_decode("acct-43", 7, body.data, body.len, w, &back, NULL, NULL),
               SNAP_EAUTH, "wrong pid");
  cr_assert_eq(snap_body_decode("acct-42", 8, body.data, body.len, w, &back, NULL, NULL),
               SNAP_EAUTH, "wrong seq");
  cr_assert_eq(snap_body_decode("acct-42", 0, body.data, body.len, w, &back, NULL, NULL),
               SNAP_EAUTH, "wrong seq");
  cr_assert_eq(back.len, 0u);

  /* The key version is not in the reader's ring. */
  snap_keyring *v2only = ring(2, 0x40);
  snap_options *r2 = opts(false, 0, a, v2only, "acme/prod/snapshots/v1");
  cr_assert_eq(snap_body_decode("acct-42", 7, body.data, body.len, r2, &back, NULL, NULL),
               SNAP_ENOKEY);
  cr_assert(strstr(snap_error_message(), "key version 1"), "message: %s", snap_error_message());
  /* No keyring at all. */
  cr_assert_eq(snap_body_decode("acct-42", 7, body.data, body.len, NULL, &back, NULL, NULL),
               SNAP_ENOKEY);
  /* A keyring of the other kind is not used for this kind of body. */
  snap_options *cross =
      opts(false, 0, a == AUTH_AEAD ? AUTH_MAC : AUTH_AEAD, kr, "acme/prod/snapshots/v1");
  cr_assert_eq(snap_body_decode("acct-42", 7, body.data, body.len, cross, &back, NULL, NULL),
               SNAP_ENOKEY);

  snap_options_free(cross);
  snap_options_free(r2);
  snap_keyring_free(v2only);
  snap_options_free(wrong_key);
  snap_options_free(wrong_ctx);
  snap_options_free(w);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_keyring_free(kr);
  snap_keyring_free(other);
}

Test(auth, aead_binds_key_context_pid_and_seq) { check_binding(AUTH_AEAD); }
Test(auth, mac_binds_key_context_pid_and_seq) { check_binding(AUTH_MAC); }

Test(auth, unauthenticated_body_refused_by_a_keyed_reader_unless_migrating) {
  snap_keyring *kr = ring(1, 5);
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  uint8_t *p = json_of(4 * KiB);
  for (int z = 0; z <= 1; z++) {
    snap_options *plain = opts(z, 6, AUTH_NONE, NULL, NULL);
    cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, plain, &body, NULL),
                 SNAP_OK);
    for (int a = AUTH_AEAD; a <= AUTH_MAC; a++) {
      snap_options *r = opts(false, 0, (enum auth)a, kr, "ctx");
      cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, r, &back, NULL, NULL), SNAP_EAUTH,
                   "a %s reader took a plaintext body", AUTH_NAME[a]);
      cr_assert(strstr(snap_error_message(), "accept_unauthenticated"));
      cr_assert_eq(snap_options_set_accept_unauthenticated(r, true), SNAP_OK);
      unsigned st = 99;
      cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, r, &back, NULL, &st), SNAP_OK);
      cr_assert_eq(st, z ? SNAP_STAGE_COMPRESSED : 0u);
      cr_assert_eq(snap_options_set_accept_unauthenticated(r, false), SNAP_OK);
      cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, r, &back, NULL, NULL), SNAP_EAUTH);
      snap_options_free(r);
    }
    /* A reader without keys takes it. */
    cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, NULL, &back, NULL, NULL), SNAP_OK);
    snap_options_free(plain);
  }
  free(p);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_keyring_free(kr);
}

Test(auth, rotation_keeps_old_bodies_readable_and_writes_with_the_new_key) {
  snap_keyring *kr = ring(1, 0x50);
  for (int a = AUTH_AEAD; a <= AUTH_MAC; a++) {
    snap_options *o = opts(true, 6, (enum auth)a, kr, "ctx/v1");
    snap_buf b1 = SNAP_BUF_INIT, b2 = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
    encode_one(o, "acct", 1, &b1);
    uint8_t k2[SNAP_KEY_BYTES];
    fill_key(k2, 0x60);
    if (a == AUTH_AEAD)
      cr_assert_eq(snap_keyring_add(kr, 2, k2, sizeof k2), SNAP_OK);
    cr_assert_eq(snap_keyring_active(kr), 1u, "adding a key does not activate it");
    cr_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
    encode_one(o, "acct", 2, &b2);
    uint32_t v1 = 0, v2 = 0;
    cr_assert_eq(snap_body_inspect(b1.data, b1.len, NULL, NULL, &v1, NULL), SNAP_OK);
    cr_assert_eq(snap_body_inspect(b2.data, b2.len, NULL, NULL, &v2, NULL), SNAP_OK);
    cr_assert_eq(v1, 1u);
    cr_assert_eq(v2, 2u);
    cr_assert_eq(snap_body_decode("acct", 1, b1.data, b1.len, o, &back, NULL, NULL), SNAP_OK);
    cr_assert_eq(snap_body_decode("acct", 2, b2.data, b2.len, o, &back, NULL, NULL), SNAP_OK);
    cr_assert_eq(snap_keyring_set_active(kr, 1), SNAP_OK);
    snap_buf_dispose(&b1);
    snap_buf_dispose(&b2);
    snap_buf_dispose(&back);
    snap_options_free(o);
  }
  snap_keyring_free(kr);
}

Test(auth, encrypting_with_an_empty_keyring_is_enokey) {
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  snap_options *o = opts(false, 0, AUTH_AEAD, kr, "ctx");
  snap_buf body = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, "1", 1, o, &body, NULL), SNAP_ENOKEY);
  cr_assert_eq(body.len, 0u);
  snap_buf_dispose(&body);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(auth, the_required_set_is_enforced_at_encode) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_required(o, SNAP_OPT_ENCRYPTION), SNAP_OK);
  snap_buf body = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, "1", 1, o, &body, NULL), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "encryption is required"));
  snap_keyring *kr = ring(1, 1);
  cr_assert_eq(snap_options_set_encryption(o, kr, "ctx"), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, "1", 1, o, &body, NULL), SNAP_OK);
  snap_buf_dispose(&body);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* ---- strict frame parsing ------------------------------------------------ */

Test(frame, strict_header_parsing_with_a_valid_checksum) {
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  encode_one(NULL, "p", 1, &body);
  size_t n = body.len;
  uint8_t *c = malloc(n + 64);
  struct {
    size_t off;
    uint8_t val;
    int want;
  } cases[] = {
      {0, 'X', SNAP_EFORMAT},                             /* magic */
      {4, 2, SNAP_EFORMAT},                               /* frame version */
      {4, 0, SNAP_EFORMAT},      {5, 3, SNAP_EFORMAT},    /* payload format */
      {5, 0, SNAP_EFORMAT},      {6, 0x08, SNAP_EFORMAT}, /* reserved stage bit */
      {6, 0x80, SNAP_EFORMAT},   {7, 1, SNAP_EFORMAT},    /* reserved byte */
      {6, 0x06, SNAP_ECORRUPT},                           /* AEAD and MAC */
      {8, 1, SNAP_ECORRUPT},                              /* key version without AEAD/MAC */
      {12, 0xff, SNAP_ECORRUPT},                          /* original length != body length */
      {6, 0x01, SNAP_ECORRUPT},                           /* "compressed" yet not shorter */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memcpy(c, body.data, n);
    c[cases[i].off] = cases[i].val;
    reseal_crc(c, n);
    int rc = snap_body_decode("p", 1, c, n, NULL, &back, NULL, NULL);
    cr_assert_eq(rc, cases[i].want, "byte %zu = 0x%02x: got %d (%s)", cases[i].off, cases[i].val,
                 rc, snap_error_message());
  }
  /* Stage bits that need a key: refused for want of one, never read as plaintext. */
  memcpy(c, body.data, n);
  c[6] = 0x04;
  c[8] = 1;
  cr_assert_eq(snap_body_decode("p", 1, c, n, NULL, &back, NULL, NULL), SNAP_ECORRUPT,
               "a MAC'd frame too short for its MAC");
  /* A checksum mismatch. */
  memcpy(c, body.data, n);
  c[n - 1] ^= 1;
  cr_assert_eq(snap_body_decode("p", 1, c, n, NULL, &back, NULL, NULL), SNAP_ECORRUPT);
  cr_assert(strstr(snap_error_message(), "checksum"));
  /* Not a body at all. */
  cr_assert_eq(snap_body_decode("p", 1, "{\"a\":1}", 7, NULL, &back, NULL, NULL), SNAP_EFORMAT);
  cr_assert_eq(snap_body_decode("p", 1, NULL, 0, NULL, &back, NULL, NULL), SNAP_EFORMAT);
  cr_assert_eq(snap_body_decode("p", 1, "SNPB\x01", 5, NULL, &back, NULL, NULL), SNAP_ECORRUPT);
  free(c);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
}

/* The zlib stream inside a compressed body: its header and its trailer's
 * place are checked even where the frame's checksum is valid (the trailer's
 * Adler-32 itself is left to the frame's stronger check). */
Test(frame, the_zlib_stream_is_checked_inside_a_valid_checksum) {
  char state[600];
  memset(state, 'a', sizeof state);
  state[0] = '"';
  state[sizeof state - 1] = '"';
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6), SNAP_OK);
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  unsigned st = 0;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, state, sizeof state, o, &body, &st),
               SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED);
  const size_t n = body.len, z = 20; /* the zlib stream starts after the 20-byte header */
  uint8_t *c = malloc(n + 8);
  /* A bad compression method, a window over 32 KiB, a header check that fails, a preset dictionary.
   */
  const uint8_t bad_hdr[][2] = {{0x77, 0x01}, {0x88, 0x1c}, {0x78, 0x9d}, {0x78, 0xbb}};
  for (size_t i = 0; i < sizeof bad_hdr / sizeof *bad_hdr; i++) {
    memcpy(c, body.data, n);
    c[z] = bad_hdr[i][0];
    c[z + 1] = bad_hdr[i][1];
    reseal_crc(c, n);
    cr_assert_eq(snap_body_decode("p", 1, c, n, NULL, &back, NULL, NULL), SNAP_ECORRUPT,
                 "header %02x %02x", bad_hdr[i][0], bad_hdr[i][1]);
    cr_assert_eq(back.len, 0);
  }
  /* Without its 4-byte trailer (the frame re-sealed one byte shorter each time). */
  for (size_t cut = 1; cut <= 4; cut++) {
    memcpy(c, body.data, n - 4 - cut);
    memcpy(c + n - 4 - cut, body.data + n - 4, 4);
    reseal_crc(c, n - cut);
    cr_assert_eq(snap_body_decode("p", 1, c, n - cut, NULL, &back, NULL, NULL), SNAP_ECORRUPT,
                 "trailer cut by %zu", cut);
  }
  /* With a byte after the trailer. */
  memcpy(c, body.data, n - 4);
  c[n - 4] = 0;
  memcpy(c + n - 3, body.data + n - 4, 4);
  reseal_crc(c, n + 1);
  cr_assert_eq(snap_body_decode("p", 1, c, n + 1, NULL, &back, NULL, NULL), SNAP_ECORRUPT);
  /* The untouched body still decodes. */
  cr_assert_eq(snap_body_decode("p", 1, body.data, n, NULL, &back, NULL, NULL), SNAP_OK);
  cr_assert_eq(back.len, sizeof state);
  cr_assert_eq(memcmp(back.data, state, sizeof state), 0);
  free(c);
  snap_options_free(o);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
}

Test(frame, inspect_reads_the_header_without_keys) {
  snap_keyring *kr = ring(9, 1);
  snap_options *o = opts(true, 6, AUTH_AEAD, kr, "ctx");
  snap_buf body = SNAP_BUF_INIT;
  uint8_t *p = msgpack_of(4 * KiB);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_MSGPACK, p, 4 * KiB, o, &body, NULL), SNAP_OK);
  snap_format f = 0;
  unsigned st = 0;
  uint32_t kv = 0;
  uint64_t ol = 0;
  cr_assert_eq(snap_body_inspect(body.data, body.len, &f, &st, &kv, &ol), SNAP_OK);
  cr_assert_eq(f, SNAP_FORMAT_MSGPACK);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED | SNAP_STAGE_ENCRYPTED);
  cr_assert_eq(kv, 9u);
  cr_assert_eq(ol, 4 * KiB);
  cr_assert_eq(snap_body_inspect(body.data, body.len, NULL, NULL, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_body_inspect("nope", 4, &f, &st, &kv, &ol), SNAP_EFORMAT);
  cr_assert_eq(snap_body_inspect(body.data, 19, NULL, NULL, NULL, NULL), SNAP_ECORRUPT);
  free(p);
  snap_buf_dispose(&body);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* ---- limits and allocation ----------------------------------------------- */

static size_t largest_request, requests;
static void *count_malloc(size_t n, void *ud) {
  (void)ud;
  if (n > largest_request)
    largest_request = n;
  requests++;
  return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  if (n > largest_request)
    largest_request = n;
  requests++;
  return realloc(p, n);
}
static void install_counter(void) {
  static const snap_allocator a = {count_malloc, count_realloc, NULL, NULL, NULL, NULL};
  cr_assert_eq(snap_allocator_set(&a), SNAP_OK);
  largest_request = 0;
  requests = 0;
}

Test(limits, a_4gib_declaration_is_refused_without_allocating_it) {
  install_counter();
  snap_keyring *kr = ring(1, 7);
  uint8_t *p = json_of(64 * KiB);
  for (int a = AUTH_NONE; a <= AUTH_AEAD; a++) {
    snap_options *o = opts(true, 6, (enum auth)a, kr, "ctx");
    snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
    cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 64 * KiB, o, &body, NULL), SNAP_OK);
    uint8_t *c = malloc(body.len);
    memcpy(c, body.data, body.len);
    put_u64le(c + 12, (uint64_t)4 << 30); /* 4 GiB */
    if (a == AUTH_NONE)
      reseal_crc(c, body.len);

    largest_request = 0;
    requests = 0;
    /* A keyed body's length is checked against its tag first: altered, it is
     * an authentication failure, not a state over the limit. */
    cr_assert_eq(snap_body_decode("p", 1, c, body.len, o, &back, NULL, NULL),
                 a == AUTH_NONE ? SNAP_ETOOBIG : SNAP_EAUTH);
    cr_assert(strstr(snap_error_message(), "4294967296"), "%s", snap_error_message());
    cr_assert_eq(requests, 0u, "the default 1 GiB cap refuses it before any allocation");

    /* Raise the cap past it: zlib's expansion bound still refuses it. */
    cr_assert_eq(snap_options_set_limits(o, 0, (size_t)8 << 30), SNAP_OK);
    largest_request = 0;
    /* Damage to a keyed body is an authentication failure for a keyed reader. */
    cr_assert_eq(snap_body_decode("p", 1, c, body.len, o, &back, NULL, NULL),
                 a == AUTH_NONE ? SNAP_ECORRUPT : SNAP_EAUTH);
    cr_assert_lt(largest_request, 1 * MiB, "largest request %zu", largest_request);

    /* A plausible lie (inside zlib's bound): at most the declared length is
     * allocated, and inflating stops there. */
    uint64_t lie = (uint64_t)(body.len * 500);
    memcpy(c, body.data, body.len);
    put_u64le(c + 12, lie);
    if (a == AUTH_NONE)
      reseal_crc(c, body.len);
    largest_request = 0;
    int rc = snap_body_decode("p", 1, c, body.len, o, &back, NULL, NULL);
    cr_assert(rc == SNAP_ECORRUPT || rc == SNAP_EAUTH, "got %d: %s", rc, snap_error_message());
    cr_assert_leq(largest_request, lie + 1 + body.len, "largest request %zu", largest_request);
    cr_assert_eq(back.len, 0u);
    free(c);
    snap_buf_dispose(&body);
    snap_buf_dispose(&back);
    snap_options_free(o);
  }
  free(p);
  snap_keyring_free(kr);
}

Test(limits, stored_and_decoded_caps) {
  uint8_t *p = json_of(4 * KiB);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  cr_assert_eq(snap_options_set_limits(o, 0, 4 * KiB - 1), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, o, &body, NULL),
               SNAP_ETOOBIG);
  cr_assert_eq(snap_options_set_limits(o, 4 * KiB, 0), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, o, &body, NULL), SNAP_ETOOBIG,
               "4 KiB + 24 bytes of frame over a 4 KiB stored cap");
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, o, &body, NULL), SNAP_OK,
               "compressed, it fits");
  cr_assert_eq(snap_options_set_limits(o, 100, 0), SNAP_OK);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, NULL), SNAP_ETOOBIG);
  cr_assert_eq(snap_options_set_limits(o, 0, 4 * KiB - 1), SNAP_OK);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, NULL), SNAP_ETOOBIG);
  cr_assert_eq(snap_options_set_limits(o, 0, 0), SNAP_OK);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, NULL), SNAP_OK);
  free(p);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(o);
}

Test(limits, decode_reuses_the_output_capacity) {
  snap_keyring *kr = ring(1, 3);
  snap_options *o = opts(true, 1, AUTH_AEAD, kr, "ctx");
  uint8_t *p = json_of(4 * KiB);
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, 4 * KiB, o, &body, NULL), SNAP_OK);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, NULL), SNAP_OK);
  install_counter();
  for (int i = 0; i < 10; i++)
    cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, NULL), SNAP_OK);
  /* The decompressor is kept per thread and the output capacity is reused:
   * a decode into a reused buffer allocates nothing. */
  cr_assert_eq(requests, 0u, "%zu allocations for 10 decodes", requests);
  cr_assert_lt(largest_request, 16 * KiB);
  snap_allocator_set(NULL);
  free(p);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* ---- arguments and payloads ---------------------------------------------- */

Test(args, invalid_arguments_are_einval_and_leave_the_output_alone) {
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  encode_one(NULL, "p", 1, &body);
  size_t n = body.len;
  uint8_t first = body.data[0];
  cr_assert_eq(snap_body_encode("p", -1, SNAP_FORMAT_JSON, "1", 1, NULL, &body, NULL), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "-1"));
  cr_assert_eq(snap_body_encode("", 1, SNAP_FORMAT_JSON, "1", 1, NULL, &body, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_body_encode("\xc3\x28", 1, SNAP_FORMAT_JSON, "1", 1, NULL, &body, NULL),
               SNAP_EINVAL);
  cr_assert_eq(snap_body_encode(NULL, 1, SNAP_FORMAT_JSON, "1", 1, NULL, &body, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_body_encode("p", 1, (snap_format)3, "1", 1, NULL, &body, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, NULL, 1, NULL, &body, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, body.data, 1, NULL, &body, NULL),
               SNAP_EINVAL, "a state inside the output buffer");
  cr_assert_eq(body.len, n, "a refused call left the output alone");
  cr_assert_eq(body.data[0], first);
  cr_assert_eq(snap_body_decode("p", -5, body.data, body.len, NULL, &back, NULL, NULL),
               SNAP_EINVAL);
  cr_assert_eq(snap_body_decode(NULL, 1, body.data, body.len, NULL, &back, NULL, NULL),
               SNAP_EINVAL);
  cr_assert_eq(snap_body_decode("p", 1, NULL, 5, NULL, &back, NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, NULL, NULL, NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, NULL, &back, NULL, NULL), SNAP_OK);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
}

Test(args, pid_check) {
  cr_assert_eq(snap_pid_check("account-42"), SNAP_OK);
  cr_assert_eq(snap_pid_check("caf\xc3\xa9/\xf0\x9f\x98\x80/\xe2\x82\xac"), SNAP_OK);
  cr_assert_eq(snap_pid_check(NULL), SNAP_EINVAL);
  cr_assert_eq(snap_pid_check(""), SNAP_EINVAL);
  static const char *const bad[] = {
      "\x80",             /* lone continuation */
      "a\xc3",            /* truncated */
      "\xc0\x80",         /* overlong NUL */
      "\xc1\xbf",         /* overlong */
      "\xe0\x80\xaf",     /* overlong */
      "\xed\xa0\x80",     /* surrogate U+D800 */
      "\xf4\x90\x80\x80", /* U+110000 */
      "\xf5\x80\x80\x80", /* lead byte out of range */
      "\xff",             /* never valid */
      "ok\xe2\x82",       /* truncated at the end */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_eq(snap_pid_check(bad[i]), SNAP_EINVAL, "case %zu", i);
    cr_assert(strstr(snap_error_message(), "UTF-8"), "case %zu: %s", i, snap_error_message());
  }
  char *big = malloc(SNAP_PID_MAX + 2);
  memset(big, 'x', SNAP_PID_MAX + 1);
  big[SNAP_PID_MAX + 1] = 0;
  cr_assert_eq(snap_pid_check(big), SNAP_EINVAL);
  big[SNAP_PID_MAX] = 0;
  cr_assert_eq(snap_pid_check(big), SNAP_OK);
  /* A maximal pid goes through the codec (it is part of the binding). */
  snap_keyring *kr = ring(1, 1);
  snap_options *o = opts(false, 0, AUTH_AEAD, kr, "ctx");
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  encode_one(o, big, 1, &body);
  cr_assert_eq(snap_body_decode(big, 1, body.data, body.len, o, &back, NULL, NULL), SNAP_OK);
  big[SNAP_PID_MAX - 1] = 'y';
  cr_assert_eq(snap_body_decode(big, 1, body.data, body.len, o, &back, NULL, NULL), SNAP_EAUTH);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(big);
}

static void refused(snap_format f, const void *p, size_t n, const char *what) {
  cr_assert_eq(snap_payload_validate(f, p, n), SNAP_EFORMAT, "%s was accepted", what);
  snap_buf body = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, f, p, n, NULL, &body, NULL), SNAP_EFORMAT, "%s", what);
  cr_assert(strstr(snap_error_message(), "offset") || strstr(snap_error_message(), "byte order"),
            "%s: message without a position: %s", what, snap_error_message());
  cr_assert_eq(body.len, 0u);
  snap_buf_dispose(&body);
}

Test(payload, malformed_json_is_refused) {
  refused(SNAP_FORMAT_JSON, "{\"a\":1", 6, "truncated JSON");
  refused(SNAP_FORMAT_JSON, "{\"a\":1} x", 9, "trailing garbage");
  refused(SNAP_FORMAT_JSON, "{\"a\":1}{}", 9, "two values");
  refused(SNAP_FORMAT_JSON, "{\"a\":1}\0", 8, "a trailing NUL");
  refused(SNAP_FORMAT_JSON, "\x01{\"a\":1}", 8, "a leading control byte");
  refused(SNAP_FORMAT_JSON, "[1,\x02 2]", 7, "a control byte between tokens");
  refused(SNAP_FORMAT_JSON, "\"a\x01\"", 4, "a raw control byte in a string");
  refused(SNAP_FORMAT_JSON, "\"\xc3\x28\"", 4, "invalid UTF-8");
  refused(SNAP_FORMAT_JSON, "\xef\xbb\xbf{}", 5, "a byte order mark");
  refused(SNAP_FORMAT_JSON, "   ", 3, "whitespace only");
  refused(SNAP_FORMAT_JSON, "nul", 3, "a truncated literal");
  refused(SNAP_FORMAT_JSON, "[1,]", 4, "a trailing comma");
  /* UTF-8 and control bytes anywhere in long ASCII runs (the scanner skips
   * eight plain bytes at a time), with the offset reported exactly. */
  char t[64];
  for (size_t at = 1; at < 40; at++) {
    memset(t, 'a', sizeof t);
    t[0] = '"';
    memcpy(t + at, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9); /* é € 😀 */
    t[60] = '"';
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, t, 61), SNAP_OK, "at %zu: %s", at,
                 snap_error_message());
    memcpy(t + at, "\xed\xa0\x80", 3); /* a surrogate */
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, t, 61), SNAP_EFORMAT);
    char want[32];
    snprintf(want, sizeof want, "offset %zu", at);
    cr_assert(strstr(snap_error_message(), want), "at %zu: %s", at, snap_error_message());
    memset(t + at, 'a', 9);
    t[at] = 0x1f;
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, t, 61), SNAP_EFORMAT);
    cr_assert(strstr(snap_error_message(), want), "at %zu: %s", at, snap_error_message());
    t[at] = (char)0xc3; /* a lead byte cut off by the closing quote's neighbour */
    t[at + 1] = 'a';
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, t, 61), SNAP_EFORMAT);
  }
  memset(t, 'a', sizeof t);
  t[0] = '"';
  t[59] = (char)0xe2; /* truncated at the very end */
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, t, 60), SNAP_EFORMAT);
  /* Exactly len bytes are read: a valid prefix of a longer buffer is judged alone. */
  const char *s = "[1,2]]";
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, s, 5), SNAP_OK);
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, s, 4), SNAP_EFORMAT);
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, " \t\r\n{} \n", 8), SNAP_OK);
}

Test(payload, malformed_msgpack_is_refused) {
  refused(SNAP_FORMAT_MSGPACK, "\xc1", 1, "the never-used byte 0xc1");
  refused(SNAP_FORMAT_MSGPACK, "\x01\x02", 2, "two msgpack values");
  refused(SNAP_FORMAT_MSGPACK, "\x92\x01", 2, "a truncated array");
  refused(SNAP_FORMAT_MSGPACK,
          "\xa5"
          "abc",
          4, "a truncated str");
  refused(SNAP_FORMAT_MSGPACK, "\xcd\x01", 2, "a truncated uint16");
  refused(SNAP_FORMAT_MSGPACK, "\x81\xa1k", 3, "a map without its value");
  refused(SNAP_FORMAT_MSGPACK, "\xdd\xff\xff\xff\xff", 5, "an array claiming 4G elements");
  refused(SNAP_FORMAT_MSGPACK, "\xdf\x7f\xff\xff\xff\x01", 6, "a map claiming 2G pairs");
  refused(SNAP_FORMAT_MSGPACK, "\xc6\x00\x00\x10\x00", 5, "a bin claiming 4 KiB");
  /* Nesting: 32 levels unpack with msgpack-c, 33 do not. */
  uint8_t deep[40];
  memset(deep, 0x91, sizeof deep);
  deep[32] = 0x01;
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_MSGPACK, deep, 33), SNAP_OK);
  memset(deep, 0x91, sizeof deep);
  deep[33] = 0x01;
  refused(SNAP_FORMAT_MSGPACK, deep, 34, "33 nested arrays");
  /* Every type that is valid. */
  static const uint8_t all[] = {
      0xdc, 0x00, 25, 0xc0, 0xc2, 0xc3, 0xcc, 1,    0xcd, 0,    1,    0xce, 0,    0,    0,    1,
      0xcf, 0,    0,  0,    0,    0,    0,    0,    1,    0xd0, 0xff, 0xd1, 0,    1,    0xd2, 0,
      0,    0,    1,  0xd3, 0,    0,    0,    0,    0,    0,    0,    1,    0xca, 0,    0,    0,
      0,    0xcb, 0,  0,    0,    0,    0,    0,    0,    0,    0xc4, 1,    'x',  0xc5, 0,    1,
      'x',  0xc6, 0,  0,    0,    1,    'x',  0xd9, 1,    'x',  0xda, 0,    1,    'x',  0xdb, 0,
      0,    0,    1,  'x',  0xd4, 1,    'x',  0xd5, 1,    'x',  'x',  0xc7, 1,    5,    'x',  0xc8,
      0,    1,    5,  'x',  0xdc, 0,    1,    0xe0, 0xde, 0,    1,    0x01, 0x02};
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_MSGPACK, all, sizeof all), SNAP_OK, "%s",
               snap_error_message());
}

/* The address space this process has mapped, in bytes (VmSize). */
static uint64_t mapped_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  cr_assert_not_null(f);
  char line[256];
  unsigned long long kib = 0;
  while (fgets(line, sizeof line, f) != NULL && sscanf(line, "VmSize: %llu kB", &kib) != 1)
    ;
  fclose(f);
  cr_assert_gt(kib, 0ull);
  return (uint64_t)kib << 10;
}

/* Whether a msgpack state is valid is one rule, whatever memory is left and
 * however the state arrives: the whole-buffer check and the incremental one
 * (streamed saves) agree on a 16 Mi-element array while this process (a
 * test runs in a process of its own) may map only 64 MiB more. Unpacking it
 * into msgpack-c's tree would take 16 Mi objects of 24 bytes. */
Test(payload, a_large_msgpack_array_is_valid_whatever_memory_is_left) {
  const size_t count = (size_t)16 << 20;
  uint8_t *p = malloc(5 + count);
  cr_assert_not_null(p);
  p[0] = 0xdd; /* array32 */
  p[1] = (uint8_t)(count >> 24);
  p[2] = (uint8_t)(count >> 16);
  p[3] = (uint8_t)(count >> 8);
  p[4] = (uint8_t)count;
  memset(p + 5, 0x01, count);
  snap_payload_validator *v = NULL;
  cr_assert_eq(snap_payload_validator_new(&v, SNAP_FORMAT_MSGPACK), SNAP_OK);
  const rlim_t cap = (rlim_t)(mapped_bytes() + ((uint64_t)64 << 20));
  const struct rlimit lim = {cap, cap};
  cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
  int whole = snap_payload_validate(SNAP_FORMAT_MSGPACK, p, 5 + count);
  cr_assert_eq(whole, SNAP_OK, "the whole-buffer check: %s", snap_error_message());
  int rc = SNAP_OK;
  for (size_t at = 0; at < 5 + count && rc == SNAP_OK; at += (size_t)1 << 20) {
    size_t n = 5 + count - at < ((size_t)1 << 20) ? 5 + count - at : (size_t)1 << 20;
    rc = snap_payload_validator_push(v, p + at, n);
  }
  if (rc == SNAP_OK)
    rc = snap_payload_validator_finish(v);
  cr_assert_eq(rc, SNAP_OK, "the incremental check: %s", snap_error_message());
  /* One element short is refused by both, as truncated. */
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_MSGPACK, p, 4 + count), SNAP_EFORMAT);
  snap_payload_validator_free(v);
  free(p);
}

Test(payload, json_grammar_follows_rfc_8259) {
  static const char *const good[] = {"0",
                                     "-0",
                                     "1.5e-3",
                                     "-12E+7",
                                     "123456789012345678901234567890",
                                     "\"\"",
                                     "true",
                                     "null",
                                     "false",
                                     "[]",
                                     "{}",
                                     " [ 1 , [ ] , { } ] ",
                                     "{\"a\":{\"b\":[true,false,null]}}",
                                     "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"",
                                     "{\"\":\"\"}",
                                     "[\"\xc3\xa9\"]"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, good[i], strlen(good[i])), SNAP_OK,
                 "%s: %s", good[i], snap_error_message());
  static const char *const bad[] = {
      "01",
      "1.",
      ".5",
      "+1",
      "1e",
      "1e+",
      "-",
      "--1",
      "0x10",
      "NaN",
      "Infinity",
      "tru",
      "nulls",
      "[1 2]",
      "{\"a\" 1}",
      "{\"a\":}",
      "{a:1}",
      "{\"a\":1,}",
      "[,1]",
      "\"\\x\"",
      "\"\\u12\"",
      "\"\\uDE00\"",
      "\"\\uD83D\"",
      "\"\\uD83Dx\"",
      "\"\\uD83D\\u0041\"",
      "\"a",
      "\"a\tb\"",
      "'a'",
      "[",
      "]",
      "{\"a\":1]",
      "[1}",
      "1234567890123456789012345678901234567890123456789012345678901234" /* 64 chars */};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, bad[i], strlen(bad[i])), SNAP_EFORMAT,
                 "accepted %s", bad[i]);
  /* Nesting: 512 levels are accepted, 513 refused (cJSON itself allows 1000). */
  char deep[1100];
  for (size_t n = 512; n <= 513; n++) {
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, deep, 2 * n),
                 n == 512 ? SNAP_OK : SNAP_EFORMAT, "depth %zu", n);
  }
}

/* Every JSON state the validator accepts must be readable by cJSON (the load
 * side turns states into cJSON trees): mutate a realistic state at random and
 * check that acceptance implies a complete cJSON parse. */
Test(payload, every_accepted_json_state_is_readable_by_cjson) {
  const char *base =
      "{\"ownerId\":\"owner-42\",\"version\":3,\"accounts\":[{\"id\":\"acc-1\",\"name\":"
      "\"Zo\\u00eb "
      "\xc3\x9flich\",\"balance\":-60110.38e2,\"tags\":[true,false,null,[],{}]},{\"id\":\"acc-2\","
      "\"balance\":0,\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\uD83D\\uDE00\"}]}";
  size_t n = strlen(base);
  static const char alphabet[] = "{}[],:\"\\/-+.0123456789eEtrufalsn \t\n\x01\xc3\xa9u";
  char buf[512];
  uint32_t seed = 12345;
  size_t accepted = 0;
  for (int iter = 0; iter < 200000; iter++) {
    memcpy(buf, base, n);
    size_t len = n;
    int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3;
    for (int e = 0; e < edits; e++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 8) % len;
      char c = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
      switch ((seed >> 28) % 3) {
      case 0:
        buf[at] = c;
        break; /* replace */
      case 1:
        memmove(buf + at, buf + at + 1, len - at - 1);
        len--;
        break; /* delete */
      default: /* insert */
        if (len < sizeof buf - 1) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = c;
          len++;
        }
      }
    }
    if (snap_payload_validate(SNAP_FORMAT_JSON, buf, len) != SNAP_OK)
      continue;
    accepted++;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    cr_assert(j, "accepted but cJSON cannot parse: %.*s", (int)len, buf);
    while (end < buf + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
      end++;
    cr_assert_eq(end, buf + len, "cJSON stops early in: %.*s", (int)len, buf);
    cJSON_Delete(j);
  }
  cr_assert_gt(accepted, 1000, "too few mutants were valid (%zu) for the check to mean much",
               accepted);
}

Test(payload, the_empty_state_is_valid_in_both_formats) {
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, NULL, 0), SNAP_OK);
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_MSGPACK, "", 0), SNAP_OK);
  cr_assert_eq(snap_payload_validate((snap_format)0, "", 0), SNAP_EINVAL);
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, NULL, 3), SNAP_EINVAL);
}

/* ---- snap_buf ------------------------------------------------------------ */

Test(buf, helpers) {
  snap_buf b = SNAP_BUF_INIT;
  cr_assert_eq(snap_buf_set(&b, "hello", 5), SNAP_OK);
  cr_assert_eq(b.len, 5u);
  cr_assert_geq(b.cap, 5u);
  cr_assert_eq(memcmp(b.data, "hello", 5), 0);
  cr_assert_eq(snap_buf_reserve(&b, 100), SNAP_OK);
  cr_assert_geq(b.cap, 100u);
  cr_assert_eq(memcmp(b.data, "hello", 5), 0, "reserve keeps the content");
  cr_assert_eq(snap_buf_set(&b, b.data + 1, 3), SNAP_OK, "a source inside the buffer");
  cr_assert_eq(memcmp(b.data, "ell", 3), 0);
  cr_assert_eq(snap_buf_set(&b, NULL, 0), SNAP_OK);
  cr_assert_eq(b.len, 0u);
  cr_assert_eq(snap_buf_set(&b, NULL, 1), SNAP_EINVAL);
  cr_assert_eq(snap_buf_set(&b, "xy", 2), SNAP_OK);
  size_t n = 0;
  uint8_t *p = snap_buf_detach(&b, &n);
  cr_assert_eq(n, 2u);
  cr_assert_eq(memcmp(p, "xy", 2), 0);
  cr_assert_null(b.data);
  cr_assert_eq(b.len + b.cap, 0u);
  snap_free(p);
  snap_buf_dispose(&b);
  snap_buf_dispose(&b);
  snap_buf_dispose(NULL);
}

/* ---- golden vectors ------------------------------------------------------ */
/* Parameters of tools/gen_golden.c and tests/data/golden/MANIFEST.txt. */
#define G_DIR SNAP_TEST_DATA_DIR "/golden/"
#define G_CONTEXT "snapstore/golden/v1"
#define G_PID "golden/pid-\xc3\xa9"
#define G_SEQ 42

static void g_key(uint8_t k[32]) {
  for (int i = 0; i < 32; i++)
    k[i] = (uint8_t)i;
}
static void g_nonce(uint8_t *n, size_t len, void *ud) {
  (void)ud;
  for (size_t i = 0; i < len; i++)
    n[i] = (uint8_t)(0x80 + i);
}

static const struct gcombo {
  const char *name;
  snap_compression alg;
  enum auth a;
  bool dict; /* compressed with tests/data/golden/dict.zdict */
} GCOMBOS[] = {{"none", SNAP_COMPRESSION_NONE, AUTH_NONE, false},
               {"zlib", SNAP_COMPRESSION_ZLIB, AUTH_NONE, false},
               {"aead", SNAP_COMPRESSION_NONE, AUTH_AEAD, false},
               {"zlib-aead", SNAP_COMPRESSION_ZLIB, AUTH_AEAD, false},
               {"mac", SNAP_COMPRESSION_NONE, AUTH_MAC, false},
               {"zlib-mac", SNAP_COMPRESSION_ZLIB, AUTH_MAC, false},
               /* frame version 2: the codec field names zstd (level 3) */
               {"zstd", SNAP_COMPRESSION_ZSTD, AUTH_NONE, false},
               {"zstd-aead", SNAP_COMPRESSION_ZSTD, AUTH_AEAD, false},
               {"zstd-mac", SNAP_COMPRESSION_ZSTD, AUTH_MAC, false},
               /* ... and the dictionary field names dict.zdict's id */
               {"zstd-dict", SNAP_COMPRESSION_ZSTD, AUTH_NONE, true},
               {"zstd-dict-aead", SNAP_COMPRESSION_ZSTD, AUTH_AEAD, true},
               {"zstd-dict-mac", SNAP_COMPRESSION_ZSTD, AUTH_MAC, true}};

/* The golden dictionary, served by a dictionary source. */
static snap_dict *g_dict(void) {
  size_t n;
  uint8_t *bytes = read_all(G_DIR "dict.zdict", &n);
  snap_dict *d;
  cr_assert_eq(snap_dict_new(&d, bytes, n), SNAP_OK, "%s", snap_error_message());
  free(bytes);
  return d;
}
static int g_dict_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  (void)name;
  if (id != snap_dict_id(ud))
    return SNAP_ENOTFOUND;
  *out = snap_dict_ref(ud);
  return SNAP_OK;
}

/* More parameters of tools/gen_golden.c (MANIFEST.txt): the unit's data key,
 * the data set it is wrapped for, and what typed bodies state. */
#define G_DATASET "snapshots"
#define G_UNIT "golden"
#define G_MANIFEST "bank.Account/3"
#define G_METADATA "origin=golden"

/* The manifest and metadata a typed golden body states (snap_body_typing()). */
static void typing_is(const char *file, const uint8_t *b, size_t n) {
  const char *m = NULL;
  const uint8_t *md = NULL;
  size_t ml = 0, mdl = 0;
  cr_assert_eq(snap_body_typing(b, n, &m, &ml, &md, &mdl), SNAP_OK, "%s", file);
  cr_assert_eq(ml, strlen(G_MANIFEST), "%s: manifest of %zu bytes", file, ml);
  cr_assert_eq(memcmp(m, G_MANIFEST, ml), 0, "%s: manifest", file);
  cr_assert_eq(mdl, strlen(G_METADATA), "%s: metadata of %zu bytes", file, mdl);
  cr_assert_eq(memcmp(md, G_METADATA, mdl), 0, "%s: metadata", file);
}

static snap_keyring *g_ring(void) {
  uint8_t k[32];
  g_key(k);
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, k, 32), SNAP_OK);
  return kr;
}

/* Decodes golden `file` and checks its state; a `typed` one must state
 * G_MANIFEST and G_METADATA (below). Others are encoded again and compared. */
static void golden_check(const char *file, const char *payload_file, snap_format fmt,
                         snap_compression alg, enum auth a, bool dict, bool typed) {
  char path[1024];
  size_t blen, plen;
  snprintf(path, sizeof path, G_DIR "%s", file);
  uint8_t *b = read_all(path, &blen);
  snprintf(path, sizeof path, G_DIR "%s", payload_file);
  uint8_t *p = read_all(path, &plen);

  snap_keyring *kr = g_ring();
  snap_options *o = opts(false, 0, a, kr, G_CONTEXT);
  cr_assert_eq(snap_options_set_compression(o, alg, alg == SNAP_COMPRESSION_ZSTD ? 3 : 6), SNAP_OK);
  cr_assert_eq(snap_options_set_nonce_source(o, g_nonce, NULL), SNAP_OK);
  snap_dict *d = g_dict();
  cr_assert_eq(snap_options_set_dictionary_source(o, g_dict_source, d), SNAP_OK);
  if (dict)
    cr_assert_eq(snap_options_set_dictionary(o, snap_dict_id(d), NULL), SNAP_OK);
  snap_buf out = SNAP_BUF_INIT;
  snap_format f = 0;
  unsigned st = 0;
  cr_assert_eq(snap_body_decode(G_PID, G_SEQ, b, blen, o, &out, &f, &st), SNAP_OK,
               "%s no longer decodes: %s", file, snap_error_message());
  unsigned want = (alg != SNAP_COMPRESSION_NONE ? SNAP_STAGE_COMPRESSED : 0) |
                  (a == AUTH_AEAD ? SNAP_STAGE_ENCRYPTED : 0) | (a == AUTH_MAC ? SNAP_STAGE_MAC : 0);
  cr_assert_eq(st, want, "%s: stages 0x%x", file, st);
  /* zlib-only bodies stay version 1, zstd and typed bodies are version 2. */
  cr_assert_eq(b[4], alg == SNAP_COMPRESSION_ZSTD || typed ? 2 : 1, "%s: frame version %u", file,
               b[4]);
  cr_assert_eq(f, fmt);
  cr_assert_eq(out.len, plen);
  cr_assert_eq(memcmp(out.data, p, plen), 0, "%s decodes to other bytes", file);
  if (typed) {
    /* snap_body_encode() states no manifest (the store writes typed bodies):
     * what the header states is checked instead of encoding again. */
    typing_is(file, b, blen);
  } else {
    /* Encoding the payload again with the same key and nonce gives the same
     * bytes. (Compressed vectors also pin zlib's output: should a future zlib
     * compress differently, the decode above is what protects stored data.) */
    snap_buf again = SNAP_BUF_INIT;
    cr_assert_eq(snap_body_encode(G_PID, G_SEQ, fmt, p, plen, o, &again, &st), SNAP_OK);
    cr_assert_eq(again.len, blen, "%s: re-encoded to %zu bytes, committed %zu", file, again.len,
                 blen);
    cr_assert_eq(memcmp(again.data, b, blen), 0, "%s: re-encoding changed the bytes", file);
    snap_buf_dispose(&again);
  }
  snap_buf_dispose(&out);
  snap_options_free(o);
  snap_dict_free(d);
  snap_keyring_free(kr);
  free(b);
  free(p);
}

/* golden_check() of every combination of GCOMBOS in both formats: the files
 * json-<c>.body and msgpack-<c>.body, or json-typed-<c>.body and so on. */
static void golden_check_all(bool typed) {
  char name[64];
  const char *t = typed ? "typed-" : "";
  for (size_t i = 0; i < sizeof GCOMBOS / sizeof GCOMBOS[0]; i++) {
    snprintf(name, sizeof name, "json-%s%s.body", t, GCOMBOS[i].name);
    golden_check(name, "state.json", SNAP_FORMAT_JSON, GCOMBOS[i].alg, GCOMBOS[i].a,
                 GCOMBOS[i].dict, typed);
    snprintf(name, sizeof name, "msgpack-%s%s.body", t, GCOMBOS[i].name);
    golden_check(name, "state.msgpack", SNAP_FORMAT_MSGPACK, GCOMBOS[i].alg, GCOMBOS[i].a,
                 GCOMBOS[i].dict, typed);
  }
}

Test(golden, every_stage_combination_in_both_formats) { golden_check_all(false); }

Test(golden, the_worked_examples_of_format_md) {
  golden_check("example-aead.body", "example.json", SNAP_FORMAT_JSON, SNAP_COMPRESSION_NONE,
               AUTH_AEAD, false, false);
  golden_check("example-mac.body", "example.json", SNAP_FORMAT_JSON, SNAP_COMPRESSION_NONE,
               AUTH_MAC, false, false);
  golden_check("example-none.body", "example.json", SNAP_FORMAT_JSON, SNAP_COMPRESSION_NONE,
               AUTH_NONE, false, false);
  golden_check("example-zstd.body", "example-v2.json", SNAP_FORMAT_JSON, SNAP_COMPRESSION_ZSTD,
               AUTH_NONE, false, false);
}

/*
 * An independent reader written from docs/FORMAT.md alone, with libsodium and
 * zlib and none of the library's code: if the document and the code disagree
 * about a single byte, the golden vectors stop decoding here.
 */
static void lp(crypto_generichash_state *st, const void *p, size_t n) {
  uint8_t le[4];
  put_u32le(le, (uint32_t)n);
  crypto_generichash_update(st, le, 4);
  crypto_generichash_update(st, p, n);
}

/* What a version 2 frame's fields say (docs/FORMAT.md, "Field types"). */
typedef struct spec_fields {
  unsigned codec;            /* type 1 (u8), 0 without */
  uint32_t dict;             /* type 2 (u32le), 0 without */
  bool envelope;             /* type 3 present */
  const uint8_t *unit;       /* type 3's value: the shred unit, empty for the pid */
  size_t unit_len;
  const uint8_t *manifest;   /* type 4, NULL without */
  size_t manifest_len;
  const uint8_t *metadata;   /* type 5, NULL without */
  size_t metadata_len;
} spec_fields;

/* Frame version 2's extension block (20 + 2 bytes on): the total length
 * (its own 2 bytes included), then u8 type || u16le len || value, types
 * ascending. Returns the header length and what the fields say in *f. */
static size_t spec_header(const uint8_t *b, size_t n, spec_fields *f) {
  memset(f, 0, sizeof *f);
  if (b[4] == 1)
    return 20;
  cr_assert_eq(b[4], 2, "frame version %u", b[4]);
  cr_assert_geq(n, 22u);
  size_t blk = (size_t)b[20] | (size_t)b[21] << 8;
  cr_assert_geq(blk, 5u, "a v2 block holds a field");
  cr_assert_leq(blk, 4096u);
  cr_assert_leq(20 + blk, n);
  unsigned last = 0;
  for (size_t pos = 2; pos < blk;) {
    cr_assert_leq(pos + 3, blk);
    unsigned type = b[20 + pos];
    size_t len = (size_t)b[21 + pos] | (size_t)b[22 + pos] << 8;
    const uint8_t *v = b + 23 + pos;
    cr_assert_leq(pos + 3 + len, blk);
    cr_assert_gt(type, last, "field types ascend");
    cr_assert(type >= 1 && type <= 5, "field type %u is not in these vectors", type);
    if (type == 1) {
      cr_assert_eq(len, 1u);
      f->codec = v[0];
    } else if (type == 2) {
      cr_assert_eq(len, 4u);
      f->dict = (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 24;
    } else if (type == 3) {
      cr_assert_leq(len, 4080u);
      cr_assert_null(memchr(v, 0, len));
      f->envelope = true;
      f->unit = v;
      f->unit_len = len;
    } else if (type == 4) {
      cr_assert(len >= 1 && len <= 255, "manifest of %zu bytes", len);
      cr_assert_null(memchr(v, 0, len));
      f->manifest = v;
      f->manifest_len = len;
    } else {
      cr_assert(len >= 1 && len <= 2048, "metadata of %zu bytes", len);
      f->metadata = v;
      f->metadata_len = len;
    }
    last = type;
    pos += 3 + len;
  }
  return 20 + blk;
}

/* Decodes body `b` for (pid, seq) into `out`; an envelope body (field 3)
 * opens with `dek`, its unit's data key (NULL: not expected). `*f` receives
 * the frame's fields (may be NULL). */
static size_t spec_decode(const uint8_t *b, size_t n, const uint8_t master[32], const char *ctx,
                          const char *pid, uint64_t seq, const uint8_t *dek, spec_fields *fields,
                          uint8_t *out, size_t cap) {
  cr_assert_geq(n, 20u);
  cr_assert_eq(memcmp(b, "SNPB", 4), 0);
  cr_assert_eq(b[7], 0);
  spec_fields fs;
  const size_t hl = spec_header(b, n, &fs);
  if (fields)
    *fields = fs;
  const unsigned codec = fs.codec;
  const uint32_t dict = fs.dict;
  uint8_t stages = b[6];
  uint64_t orig = 0;
  for (int i = 7; i >= 0; i--)
    orig = orig << 8 | b[12 + i];
  bool z = stages & 1, aead = stages & 2, mac = stages & 4;
  cr_assert(codec == 0 || (z && codec == 2), "codec %u with stages 0x%x", codec, stages);
  size_t body_off = hl + (aead ? 24 : 0);
  size_t tlen = aead ? 16 : mac ? 32 : 4;
  size_t blen = n - body_off - tlen;
  const uint8_t *body = b + body_off, *tag = body + blen;

  /* binding = header (with its block) || u64le(seq) || u32le(len(pid)) || pid */
  uint8_t bind[4116 + 12 + 256];
  size_t pl = strlen(pid);
  cr_assert_leq(hl, 4116u);
  memcpy(bind, b, hl);
  put_u64le(bind + hl, seq);
  put_u32le(bind + hl + 8, (uint32_t)pl);
  memcpy(bind + hl + 12, pid, pl);
  size_t bind_len = hl + 12 + pl;

  uint8_t plain[4096];
  cr_assert_leq(blen, sizeof plain);
  cr_assert(!fs.envelope || (aead && dek), "field 3 needs AEAD and the unit's data key");
  if (aead || mac) {
    /* subkey = BLAKE2b-256(key = master, LP(label) || LP(context) || LP(pid)),
     * or for an envelope body the unit's data key itself */
    const char *label = aead ? "snapstore/v1/aead" : "snapstore/v1/mac";
    uint8_t sk[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, master, 32, 32);
    lp(&st, label, strlen(label));
    lp(&st, ctx, strlen(ctx));
    lp(&st, pid, pl);
    crypto_generichash_final(&st, sk, 32);
    if (fs.envelope)
      memcpy(sk, dek, 32);
    if (aead) {
      cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                       plain, NULL, body, blen, tag, bind, bind_len, b + hl, sk),
                   0, "AEAD per the spec failed");
    } else {
      uint8_t t[32];
      crypto_generichash_init(&st, sk, 32, 32);
      crypto_generichash_update(&st, bind, bind_len);
      crypto_generichash_update(&st, body, blen);
      crypto_generichash_final(&st, t, 32);
      cr_assert_eq(memcmp(t, tag, 32), 0, "MAC per the spec differs");
      memcpy(plain, body, blen);
    }
  } else {
    uint32_t crc = (uint32_t)crc32(0, b, (uInt)(body_off + blen));
    cr_assert_eq(crc, (uint32_t)(tag[0] | tag[1] << 8 | tag[2] << 16 | (uint32_t)tag[3] << 24),
                 "CRC per the spec differs");
    memcpy(plain, body, blen);
  }
  if (z && codec == 2) {
    cr_assert_eq(ZSTD_getFrameContentSize(plain, blen), orig, "the zstd frame declares its size");
    size_t dl;
    if (dict) {
      /* the dictionary whose bytes' BLAKE2b-256 starts with the id (LE) */
      size_t dn;
      uint8_t *db = read_all(G_DIR "dict.zdict", &dn), h[32];
      crypto_generichash(h, 32, db, dn, NULL, 0);
      cr_assert_eq(dict, (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                             (uint32_t)h[3] << 24);
      ZSTD_DCtx *dc = ZSTD_createDCtx();
      dl = ZSTD_decompress_usingDict(dc, out, cap, plain, blen, db, dn);
      ZSTD_freeDCtx(dc);
      free(db);
    } else {
      dl = ZSTD_decompress(out, cap, plain, blen);
    }
    cr_assert(!ZSTD_isError(dl), "zstd: %s", ZSTD_getErrorName(dl));
    cr_assert_eq(dl, orig);
    return dl;
  }
  if (z) {
    uLongf dl = cap;
    cr_assert_eq(uncompress(out, &dl, plain, blen), Z_OK);
    cr_assert_eq(dl, orig);
    return dl;
  }
  cr_assert_eq(blen, orig);
  memcpy(out, plain, blen);
  return blen;
}

Test(golden, an_independent_reader_following_format_md_decodes_them) {
  uint8_t k[32];
  g_key(k);
  static const char *const files[] = {
      "json-none.body",    "json-zlib.body",         "json-aead.body",    "json-zlib-aead.body",
      "json-mac.body",     "json-zlib-mac.body",     "msgpack-none.body", "msgpack-zlib.body",
      "msgpack-aead.body", "msgpack-zlib-aead.body", "msgpack-mac.body",  "msgpack-zlib-mac.body",
      "example-aead.body", "example-mac.body",       "example-none.body", "json-zstd.body",
      "json-zstd-aead.body", "json-zstd-mac.body",   "msgpack-zstd.body", "msgpack-zstd-aead.body",
      "msgpack-zstd-mac.body", "example-zstd.body",  "json-zstd-dict.body",
      "json-zstd-dict-aead.body", "json-zstd-dict-mac.body", "msgpack-zstd-dict.body",
      "msgpack-zstd-dict-aead.body", "msgpack-zstd-dict-mac.body"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[1024];
    size_t n, pn;
    snprintf(path, sizeof path, G_DIR "%s", files[i]);
    uint8_t *b = read_all(path, &n);
    snprintf(path, sizeof path, G_DIR "%s",
             strcmp(files[i], "example-zstd.body") == 0 ? "example-v2.json"
             : strncmp(files[i], "example", 7) == 0     ? "example.json"
             : files[i][0] == 'j'                       ? "state.json"
                                                        : "state.msgpack");
    uint8_t *p = read_all(path, &pn);
    uint8_t out[4096];
    size_t got = spec_decode(b, n, k, G_CONTEXT, G_PID, G_SEQ, NULL, NULL, out, sizeof out);
    cr_assert_eq(got, pn, "%s", files[i]);
    cr_assert_eq(memcmp(out, p, pn), 0, "%s", files[i]);
    free(b);
    free(p);
  }
}

/* ---- golden envelope and typed bodies (frame fields 3, 4, 5) -------------- */

static void g_dek(uint8_t d[32]) {
  for (int i = 0; i < 32; i++)
    d[i] = (uint8_t)(0xa0 + i);
}

/* The sixteen stage combinations of envelope and typed vectors: the twelve
 * of GCOMBOS, then the four envelope ones (always AEAD). */
static const char *const ENV_COMBOS[] = {"envelope", "zlib-envelope", "zstd-envelope",
                                         "zstd-dict-envelope"};

/* The independent reader's unwrap of a wrapped-key record (docs/FORMAT.md,
 * "The wrapped-key record"): KEK = BLAKE2b-256(key = master, LP("snapstore/
 * v1/wrap") || LP(context) || LP(data set)), then XChaCha20-Poly1305 with
 * ad = bytes 0..12 || LP(data set) || LP(unit). */
static void spec_unwrap(const uint8_t *rec, size_t n, const uint8_t master[32], const char *ctx,
                        const char *dataset, const char *unit, uint8_t dek[32]) {
  cr_assert_eq(n, 85u);
  cr_assert_eq(memcmp(rec, "SNPK", 4), 0);
  cr_assert_eq(rec[4], 1, "record version");
  cr_assert_eq(rec[5] | rec[6] << 8 | rec[7] << 16 | (uint32_t)rec[8] << 24, 1u, "master key 1");
  cr_assert_eq(rec[9] | rec[10] << 8 | rec[11] << 16 | (uint32_t)rec[12] << 24, 1u, "generation 1");
  uint8_t kek[32];
  crypto_generichash_state st;
  crypto_generichash_init(&st, master, 32, 32);
  lp(&st, "snapstore/v1/wrap", 17);
  lp(&st, ctx, strlen(ctx));
  lp(&st, dataset, strlen(dataset));
  crypto_generichash_final(&st, kek, 32);
  uint8_t ad[13 + 4 + 64 + 4 + 64];
  size_t dl = strlen(dataset), ul = strlen(unit);
  cr_assert_leq(dl, 64u);
  cr_assert_leq(ul, 64u);
  memcpy(ad, rec, 13);
  put_u32le(ad + 13, (uint32_t)dl);
  memcpy(ad + 17, dataset, dl);
  put_u32le(ad + 17 + dl, (uint32_t)ul);
  memcpy(ad + 21 + dl, unit, ul);
  cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                   dek, NULL, rec + 37, 32, rec + 69, ad, 21 + dl + ul, rec + 13, kek),
               0, "the wrapped key does not open per the spec");
}

/* Decodes golden `file` with the independent reader and checks its state,
 * its unit (NULL: no field 3; "": the pid's own) and its typing. */
static void spec_check(const char *file, const char *payload_file, const char *unit, bool typed,
                       const uint8_t dek[32]) {
  uint8_t k[32];
  g_key(k);
  char path[1024];
  size_t n, pn;
  snprintf(path, sizeof path, G_DIR "%s", file);
  uint8_t *b = read_all(path, &n);
  snprintf(path, sizeof path, G_DIR "%s", payload_file);
  uint8_t *p = read_all(path, &pn);
  uint8_t out[4096];
  spec_fields f;
  size_t got = spec_decode(b, n, k, G_CONTEXT, G_PID, G_SEQ, unit ? dek : NULL, &f, out,
                           sizeof out);
  cr_assert_eq(got, pn, "%s", file);
  cr_assert_eq(memcmp(out, p, pn), 0, "%s", file);
  cr_assert_eq(b[4], 2, "%s: frame version 2", file);
  cr_assert_eq(f.envelope, unit != NULL, "%s: field 3", file);
  if (unit) {
    cr_assert_eq(f.unit_len, strlen(unit), "%s: unit of %zu bytes", file, f.unit_len);
    cr_assert_eq(memcmp(f.unit, unit, f.unit_len), 0);
    cr_assert_eq(b[8] | b[9] << 8 | b[10] << 16 | (uint32_t)b[11] << 24, 1u,
                 "%s: bytes 8-11 name data key generation 1", file);
  }
  cr_assert_eq(f.manifest_len, typed ? strlen(G_MANIFEST) : 0u, "%s", file);
  cr_assert_eq(f.metadata_len, typed ? strlen(G_METADATA) : 0u, "%s", file);
  if (typed) {
    cr_assert_eq(memcmp(f.manifest, G_MANIFEST, f.manifest_len), 0, "%s", file);
    cr_assert_eq(memcmp(f.metadata, G_METADATA, f.metadata_len), 0, "%s", file);
  }
  free(b);
  free(p);
}

Test(golden, an_independent_reader_unwraps_the_data_keys_and_opens_envelope_bodies) {
  uint8_t k[32], want[32], dek[32];
  g_key(k);
  g_dek(want);
  size_t n;
  uint8_t *rec = read_all(G_DIR "envelope-pid.key", &n);
  spec_unwrap(rec, n, k, G_CONTEXT, G_DATASET, G_PID, dek);
  cr_assert_eq(memcmp(dek, want, 32), 0, "the pid's record wraps the fixed data key");
  free(rec);
  rec = read_all(G_DIR "example-envelope.key", &n);
  spec_unwrap(rec, n, k, G_CONTEXT, G_DATASET, G_UNIT, dek);
  cr_assert_eq(memcmp(dek, want, 32), 0, "the prefix unit's record wraps the fixed data key");
  free(rec);
  char name[64];
  for (size_t i = 0; i < sizeof ENV_COMBOS / sizeof ENV_COMBOS[0]; i++)
    for (int typed = 0; typed < 2; typed++) {
      snprintf(name, sizeof name, "json-%s%s.body", typed ? "typed-" : "", ENV_COMBOS[i]);
      spec_check(name, "state.json", "", typed, dek);
      snprintf(name, sizeof name, "msgpack-%s%s.body", typed ? "typed-" : "", ENV_COMBOS[i]);
      spec_check(name, "state.msgpack", "", typed, dek);
    }
  spec_check("example-envelope.body", "example.json", G_UNIT, false, dek);
}

Test(golden, an_independent_reader_reads_manifest_and_metadata_in_every_combination) {
  char name[64];
  for (size_t i = 0; i < sizeof GCOMBOS / sizeof GCOMBOS[0]; i++) {
    snprintf(name, sizeof name, "json-typed-%s.body", GCOMBOS[i].name);
    spec_check(name, "state.json", NULL, true, NULL);
    snprintf(name, sizeof name, "msgpack-typed-%s.body", GCOMBOS[i].name);
    spec_check(name, "state.msgpack", NULL, true, NULL);
  }
  spec_check("example-typed.body", "example.json", NULL, true, NULL);
}

/* The library reads the typed vectors it can without a store: every one but
 * the envelope ones (tests/test_envelope_golden.c loads those through a store). */
Test(golden, typed_bodies_decode_and_state_their_manifest_and_metadata) {
  golden_check_all(true);
  golden_check("example-typed.body", "example.json", SNAP_FORMAT_JSON, SNAP_COMPRESSION_NONE,
               AUTH_MAC, false, true);
}

Test(golden, the_wrapped_keys_verify_only_for_their_unit_and_data_set) {
  snap_keyring *kr = g_ring();
  static const struct {
    const char *file, *unit;
  } recs[] = {{"envelope-pid.key", G_PID}, {"example-envelope.key", G_UNIT}};
  for (size_t i = 0; i < 2; i++) {
    char path[1024];
    size_t n;
    snprintf(path, sizeof path, G_DIR "%s", recs[i].file);
    uint8_t *rec = read_all(path, &n);
    uint32_t mv = 0, gen = 0;
    cr_assert_eq(snap_wrapped_key_inspect(rec, n, &mv, &gen), SNAP_OK);
    cr_assert_eq(mv, 1);
    cr_assert_eq(gen, 1);
    cr_assert_eq(snap_wrapped_key_verify(kr, G_CONTEXT, G_DATASET, recs[i].unit, rec, n), SNAP_OK,
                 "%s: %s", recs[i].file, snap_error_message());
    cr_assert_eq(snap_wrapped_key_verify(kr, G_CONTEXT, G_DATASET, recs[1 - i].unit, rec, n),
                 SNAP_EAUTH, "%s opens for another unit", recs[i].file);
    cr_assert_eq(snap_wrapped_key_verify(kr, G_CONTEXT, "other", recs[i].unit, rec, n), SNAP_EAUTH);
    free(rec);
  }
  snap_keyring_free(kr);
}

/* ---- two DEFLATE implementations, one format --------------------------------- */

/* A compressible JSON state of n bytes (n >= 20). */
static uint8_t *compressible_json(size_t n) { return json_of(n); }

/* Bodies snapstore compresses at every level inflate with zlib itself: the
 * stored stream is plain RFC 1950 whichever library wrote it. */
Test(deflate, bodies_written_at_every_level_inflate_with_zlib) {
  static const size_t sizes[] = {1 * KiB, 4 * KiB, 300 * KiB};
  for (int level = 1; level <= 9; level++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      uint8_t *p = compressible_json(n);
      snap_options *o = opts(true, level, AUTH_NONE, NULL, NULL);
      snap_buf body = SNAP_BUF_INIT;
      unsigned st = 0;
      cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, p, n, o, &body, &st), SNAP_OK);
      cr_assert_eq(st, SNAP_STAGE_COMPRESSED, "level %d, %zu bytes: compressed", level, n);
      /* Header 20 bytes, then the zlib stream, then the CRC-32. */
      uint8_t *out = malloc(n);
      uLongf dl = n;
      cr_assert_eq(uncompress(out, &dl, body.data + 20, (uLong)(body.len - 24)), Z_OK,
                   "level %d, %zu bytes: zlib inflates it", level, n);
      cr_assert_eq(dl, n);
      cr_assert_eq(memcmp(out, p, n), 0);
      free(out);
      snap_buf_dispose(&body);
      snap_options_free(o);
      free(p);
    }
  }
}

/* A body whose stream zlib's compress2() wrote (at every level, as older
 * builds and other writers may have) decodes through snapstore. */
Test(deflate, bodies_zlib_compressed_decode) {
  static const size_t sizes[] = {1 * KiB, 4 * KiB, 300 * KiB};
  for (int level = 1; level <= 9; level++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      uint8_t *p = compressible_json(n);
      uLongf clen = compressBound(n);
      uint8_t *b = malloc(20 + clen + 4);
      cr_assert_eq(compress2(b + 20, &clen, p, n, level), Z_OK);
      cr_assert_lt(clen, n, "it shrinks, as a stored compressed body must");
      memcpy(b, "SNPB", 4);
      b[4] = 1;
      b[5] = SNAP_FORMAT_JSON;
      b[6] = SNAP_STAGE_COMPRESSED;
      b[7] = 0;
      put_u32le(b + 8, 0);
      put_u64le(b + 12, n);
      size_t total = 20 + clen + 4;
      reseal_crc(b, total);
      snap_buf out = SNAP_BUF_INIT;
      unsigned st = 0;
      cr_assert_eq(snap_body_decode("p", 1, b, total, NULL, &out, NULL, &st), SNAP_OK,
                   "level %d, %zu bytes: %s", level, n, snap_error_message());
      cr_assert_eq(st, SNAP_STAGE_COMPRESSED);
      cr_assert_eq(out.len, n);
      cr_assert_eq(memcmp(out.data, p, n), 0);
      /* One byte more declared than the stream holds is refused, not padded. */
      put_u64le(b + 12, n + 1);
      reseal_crc(b, total);
      cr_assert_eq(snap_body_decode("p", 1, b, total, NULL, &out, NULL, NULL), SNAP_ECORRUPT);
      /* One byte fewer declared: the stream inflates beyond it, refused. */
      put_u64le(b + 12, n - 1);
      reseal_crc(b, total);
      cr_assert_eq(snap_body_decode("p", 1, b, total, NULL, &out, NULL, NULL), SNAP_ECORRUPT);
      snap_buf_dispose(&out);
      free(b);
      free(p);
    }
  }
}

/* The string scan looks at 16 and 8 bytes at a time: a quote, an escape, a
 * raw control byte or a UTF-8 sequence at every offset of those windows is
 * found exactly where it is. */
Test(payload, strings_are_scanned_exactly_at_every_offset) {
  char doc[128];
  for (size_t n = 0; n < 48; n++) {
    for (size_t at = 0; at < n; at++) {
      /* {"k":"aaaa...X...aaaa"} with X one of the interesting bytes. */
      static const char *const xs[] = {"\\n", "\\\"", "\\u00e9", "\xc3\xa9", "\x01", "\t", "\""};
      static const int ok[] = {1, 1, 1, 1, 0, 0, 0};
      for (size_t x = 0; x < sizeof xs / sizeof xs[0]; x++) {
        size_t k = 0;
        k += (size_t)snprintf(doc + k, sizeof doc - k, "{\"k\":\"");
        for (size_t j = 0; j < n; j++) {
          if (j == at)
            k += (size_t)snprintf(doc + k, sizeof doc - k, "%s", xs[x]);
          else
            doc[k++] = 'a';
        }
        k += (size_t)snprintf(doc + k, sizeof doc - k, "\"}");
        int rc = snap_payload_validate(SNAP_FORMAT_JSON, doc, k);
        cr_assert_eq(rc == SNAP_OK, ok[x] == 1, "length %zu, byte %zu at %zu: %d (%s)", n, x, at,
                     rc, snap_error_message());
        if (rc == SNAP_OK) {
          cJSON *j = cJSON_ParseWithLength(doc, k);
          cr_assert_not_null(j, "cJSON reads what was accepted");
          cJSON_Delete(j);
        }
      }
    }
  }
}

/* Digit runs are scanned 8 bytes at a time: a run of every length, at every
 * alignment, ends exactly at the first non-digit, whichever byte that is
 * (the bytes either side of '0'..'9' included), in the integer, fraction and
 * exponent parts of a number. */
Test(payload, digit_runs_end_exactly_at_every_length) {
  static const char *const enders[] = {"}", ",\"b\":1}", "/}", ":}", " }", ".5}", "e3}", "a}"};
  static const int ok[] = {1, 1, 0, 0, 1, 1, 1, 0};
  char doc[128];
  for (size_t pad = 0; pad < 8; pad++) {
    for (size_t n = 1; n <= 40; n++) {
      for (size_t e = 0; e < sizeof enders / sizeof enders[0]; e++) {
        for (int part = 0; part < 3; part++) {
          size_t k = (size_t)snprintf(doc, sizeof doc, "{\"%.*s\":%s", (int)pad, "pppppppp",
                                      part == 1   ? "7."
                                      : part == 2 ? "7e"
                                                  : "");
          for (size_t j = 0; j < n; j++)
            doc[k++] = (char)('1' + (j % 9));
          k += (size_t)snprintf(doc + k, sizeof doc - k, "%s", enders[e]);
          /* A fraction or exponent after a fraction/exponent part is malformed. */
          int want = ok[e] && !(part == 1 && e == 5) && !(part == 2 && (e == 5 || e == 6));
          /* cJSON reads numbers of at most 63 characters. */
          size_t numlen = n + (part ? 2 : 0) + (e == 5 || e == 6 ? 2 : 0);
          if (numlen > 63)
            want = 0;
          int rc = snap_payload_validate(SNAP_FORMAT_JSON, doc, k);
          cr_assert_eq(rc == SNAP_OK, want, "pad %zu, %zu digits, ender %zu, part %d: %d (%s)", pad,
                       n, e, part, rc, snap_error_message());
          if (rc == SNAP_OK) {
            cJSON *j = cJSON_ParseWithLength(doc, k);
            cr_assert_not_null(j, "cJSON reads what was accepted: %.*s", (int)k, doc);
            cJSON_Delete(j);
          }
        }
      }
    }
  }
}

/* An uncompressed body must declare exactly its own length. A flipped bit in
 * that field is damage, reported as corruption (which a load skips for an
 * older snapshot), not as a state over the size limit (which stops it). */
Test(limits, a_damaged_length_of_a_plain_body_is_corruption_not_too_big) {
  static const char state[] = "{\"balance\":1200,\"holder\":\"Ada Lovelace\"}";
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, &body, NULL),
               SNAP_OK);
  for (size_t byte = 12; byte < 20; byte++) {
    uint8_t *c = malloc(body.len);
    memcpy(c, body.data, body.len);
    c[byte] ^= 0x40;
    int rc = snap_body_decode("p", 1, c, body.len, NULL, &back, NULL, NULL);
    cr_assert_eq(rc, SNAP_ECORRUPT, "length byte %zu flipped: %d (%s)", byte, rc,
                 snap_error_message());
    cr_assert(strstr(snap_error_message(), "declares"), "%s", snap_error_message());
    free(c);
  }
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
}

/* ---- header damage under a keyed reader ---------------------------------- */

/* Keys 1, 2 and 3 (seeds 0x61..0x63), the active one 2: a changed key version
 * can then name a key the reader holds (3), none at all (0) or one it lacks. */
static snap_keyring *ring_123(void) {
  snap_keyring *kr = ring(1, 0x61);
  uint8_t k[SNAP_KEY_BYTES];
  for (uint32_t v = 2; v <= 3; v++) {
    fill_key(k, (uint8_t)(0x60 + v));
    cr_assert_eq(snap_keyring_add(kr, v, k, sizeof k), SNAP_OK);
  }
  cr_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
  return kr;
}

/*
 * Every other value of every header byte (0..19) of an AEAD or MAC body,
 * compressed or not, read by the reader that holds its key: always EAUTH,
 * never ENOKEY (a changed key version) nor ETOOBIG (a changed length), which
 * would send an operator after a missing key or a size limit.
 */
static void every_header_byte_is_eauth(enum auth a, bool zlib) {
  snap_keyring *kr = ring_123();
  snap_options *o = opts(zlib, 6, a, kr, "acme/prod/snapshots/v1");
  uint8_t *state = json_of(4 * KiB);
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  unsigned stages = 0;
  cr_assert_eq(
      snap_body_encode("acct-9", 5, SNAP_FORMAT_JSON, state, 4 * KiB, o, &body, &stages), SNAP_OK);
  cr_assert_eq(!!(stages & SNAP_STAGE_COMPRESSED), zlib, "stages %#x", stages);
  uint8_t *c = malloc(body.len);
  unsigned failures = 0;
  for (size_t i = 0; i < 20; i++) {
    for (unsigned v = 0; v < 256; v++) {
      if (v == body.data[i])
        continue;
      memcpy(c, body.data, body.len);
      c[i] = (uint8_t)v;
      int rc = snap_body_decode("acct-9", 5, c, body.len, o, &back, NULL, NULL);
      if (rc != SNAP_EAUTH && failures++ < 8)
        cr_log_error("%s%s: byte %zu set to 0x%02x gives %d: %s", AUTH_NAME[a], zlib ? "+zlib" : "",
                     i, v, rc, snap_error_message());
      cr_assert_eq(back.len, 0u);
    }
  }
  cr_assert_eq(failures, 0u, "%u changed header bytes of a %s%s body were not EAUTH", failures,
               AUTH_NAME[a], zlib ? "+zlib" : "");
  cr_assert_eq(snap_body_decode("acct-9", 5, body.data, body.len, o, &back, NULL, NULL), SNAP_OK);
  free(c);
  free(state);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(header, every_changed_byte_of_an_encrypted_body_is_eauth) {
  every_header_byte_is_eauth(AUTH_AEAD, false);
}
Test(header, every_changed_byte_of_a_compressed_encrypted_body_is_eauth) {
  every_header_byte_is_eauth(AUTH_AEAD, true);
}
Test(header, every_changed_byte_of_a_mac_body_is_eauth) {
  every_header_byte_is_eauth(AUTH_MAC, false);
}
Test(header, every_changed_byte_of_a_compressed_mac_body_is_eauth) {
  every_header_byte_is_eauth(AUTH_MAC, true);
}

/* A reader holding both kinds of keyring: a stage byte turned into the other
 * keyed kind is an altered header too. */
Test(header, a_stage_byte_naming_the_other_kind_is_eauth) {
  snap_keyring *kr = ring_123();
  for (int a = AUTH_AEAD; a <= AUTH_MAC; a++) {
    snap_options *w = opts(false, 0, (enum auth)a, kr, "ctx");
    snap_options *both = opts(false, 0, AUTH_AEAD, kr, "ctx");
    cr_assert_eq(snap_options_set_integrity(both, kr, "ctx"), SNAP_OK);
    snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
    encode_one(w, "p", 1, &body);
    for (int z = 0; z <= 1; z++) {
      body.data[6] = (uint8_t)((a == AUTH_AEAD ? SNAP_STAGE_MAC : SNAP_STAGE_ENCRYPTED) |
                               (z ? SNAP_STAGE_COMPRESSED : 0));
      cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, w, &back, NULL, NULL), SNAP_EAUTH,
                   "%s body, stage byte 0x%02x, writer's reader: %s", AUTH_NAME[a], body.data[6],
                   snap_error_message());
      cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, both, &back, NULL, NULL),
                   SNAP_EAUTH, "%s body, stage byte 0x%02x, reader with both: %s", AUTH_NAME[a],
                   body.data[6], snap_error_message());
    }
    snap_buf_dispose(&body);
    snap_buf_dispose(&back);
    snap_options_free(both);
    snap_options_free(w);
  }
  snap_keyring_free(kr);
}

/* ENOKEY stays for what it means: the body verifies structurally but was
 * sealed with a key the reader really lacks. */
Test(header, a_key_version_the_keyring_lacks_is_enokey) {
  snap_keyring *writer = ring_123(); /* seals with version 2 */
  uint8_t k[SNAP_KEY_BYTES];
  for (int a = AUTH_AEAD; a <= AUTH_MAC; a++) {
    for (int zlib = 0; zlib <= 1; zlib++) {
      snap_options *w = opts(zlib, 6, (enum auth)a, writer, "ctx");
      uint8_t *state = json_of(4 * KiB);
      snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
      cr_assert_eq(snap_body_encode("p", 3, SNAP_FORMAT_JSON, state, 4 * KiB, w, &body, NULL),
                   SNAP_OK);
      /* Versions 1 and 3 with the writer's keys, 2 missing. */
      snap_keyring *lacks2 = ring(1, 0x61);
      fill_key(k, 0x63);
      cr_assert_eq(snap_keyring_add(lacks2, 3, k, sizeof k), SNAP_OK);
      /* Version 2's key material under another version number. */
      snap_keyring *renumbered = ring(7, 0x62);
      snap_keyring *const readers[] = {lacks2, renumbered};
      for (size_t i = 0; i < 2; i++) {
        snap_options *r = opts(false, 0, (enum auth)a, readers[i], "ctx");
        cr_assert_eq(snap_body_decode("p", 3, body.data, body.len, r, &back, NULL, NULL),
                     SNAP_ENOKEY, "%s%s, reader %zu: %s", AUTH_NAME[a], zlib ? "+zlib" : "", i,
                     snap_error_message());
        cr_assert(strstr(snap_error_message(), "key version 2 is not in the keyring"), "%s",
                  snap_error_message());
        /* Also when the declared state is over the reader's limit: it cannot
         * check that length without the key. */
        cr_assert_eq(snap_options_set_limits(r, 0, 1 * KiB), SNAP_OK);
        cr_assert_eq(snap_body_decode("p", 3, body.data, body.len, r, &back, NULL, NULL),
                     SNAP_ENOKEY, "%s", snap_error_message());
        snap_options_free(r);
      }
      /* A reader holding only the other kind of keyring, with the same keys. */
      snap_options *cross = opts(false, 0, a == AUTH_AEAD ? AUTH_MAC : AUTH_AEAD, writer, "ctx");
      cr_assert_eq(snap_body_decode("p", 3, body.data, body.len, cross, &back, NULL, NULL),
                   SNAP_ENOKEY, "%s", snap_error_message());
      cr_assert(strstr(snap_error_message(), "keyring is set"), "%s", snap_error_message());
      snap_options_free(cross);
      snap_keyring_free(renumbered);
      snap_keyring_free(lacks2);
      free(state);
      snap_buf_dispose(&body);
      snap_buf_dispose(&back);
      snap_options_free(w);
    }
  }
  snap_keyring_free(writer);
}

/* A genuine state over the reader's decoded limit is still ETOOBIG (the tag
 * is checked first, without allocating); the same body with a changed length
 * field is EAUTH. */
Test(header, an_authentic_state_over_the_limit_is_etoobig_an_altered_length_eauth) {
  snap_keyring *kr = ring_123();
  uint8_t *state = json_of(64 * KiB);
  for (int a = AUTH_AEAD; a <= AUTH_MAC; a++) {
    for (int zlib = 0; zlib <= 1; zlib++) {
      snap_options *o = opts(zlib, 6, (enum auth)a, kr, "ctx");
      snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
      cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, state, 64 * KiB, o, &body, NULL),
                   SNAP_OK);
      cr_assert_eq(snap_options_set_limits(o, 0, 16 * KiB), SNAP_OK);
      install_counter();
      cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, NULL),
                   SNAP_ETOOBIG, "%s%s: %s", AUTH_NAME[a], zlib ? "+zlib" : "",
                   snap_error_message());
      cr_assert_eq(requests, 0u, "refused before any allocation");
      body.data[13] ^= 0x01; /* 64 KiB + 256 bytes: still over the limit */
      cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, o, &back, NULL, NULL), SNAP_EAUTH,
                   "%s%s: %s", AUTH_NAME[a], zlib ? "+zlib" : "", snap_error_message());
      /* (Uncompressed, the length no longer matches the body: damage found
       * before the limit is reached.) */
      cr_assert(strstr(snap_error_message(), zlib ? "does not authenticate" : "declares 65792"),
                "%s", snap_error_message());
      cr_assert_eq(requests, 0u, "refused before any allocation");
      cr_assert_eq(snap_allocator_set(NULL), SNAP_OK);
      snap_buf_dispose(&body);
      snap_buf_dispose(&back);
      snap_options_free(o);
    }
  }
  free(state);
  snap_keyring_free(kr);
}
