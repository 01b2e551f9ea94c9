/* Trained zstd dictionaries in the body codec through the public API: the id
 * derived from the bytes, choosing one by id or name through a dictionary
 * source, the dictionary field's rules, and what a reader without the
 * dictionary gets. The golden vectors (tests/data/golden/dict.zdict) and the
 * independent reader are in test_pipeline.c. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "snap/pipeline.h"

#include "bytes_le.h"

#define DICT_FILE SNAP_TEST_DATA_DIR "/golden/dict.zdict"

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)n + 1);
  cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static snap_dict *golden_dict(void) {
  size_t n;
  uint8_t *b = read_all(DICT_FILE, &n);
  snap_dict *d;
  cr_assert_eq(snap_dict_new(&d, b, n), SNAP_OK, "%s", snap_error_message());
  free(b);
  return d;
}

/* A source holding up to two dictionaries, found by id or by name. */
typedef struct shelf {
  snap_dict *d[2];
  const char *name[2];
  unsigned asked;
} shelf;

static int shelf_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  shelf *s = ud;
  s->asked++;
  for (int i = 0; i < 2; i++)
    if (s->d[i] && (id ? snap_dict_id(s->d[i]) == id : strcmp(name, s->name[i]) == 0)) {
      *out = snap_dict_ref(s->d[i]);
      return SNAP_OK;
    }
  return SNAP_ENOTFOUND;
}

/* An account state like the ones the golden dictionary was trained on. */
static const char STATE[] =
    "{\"account\":\"acc-7777\",\"owner\":\"Grace Hopper\",\"currency\":\"EUR\","
    "\"balance_cents\":4242,\"active\":true,\"closed_at\":null,\"rate\":0.0150,"
    "\"tags\":[\"premium\",\"eu\"],\"history\":[{\"seq\":1,\"kind\":\"deposit\","
    "\"cents\":1200,\"memo\":\"salary\"},{\"seq\":2,\"kind\":\"withdrawal\",\"cents\":-300,"
    "\"memo\":\"rent\"}]}";

enum auth { AUTH_NONE, AUTH_AEAD, AUTH_MAC };

static snap_options *opts(enum auth a, snap_keyring *kr, shelf *s, uint32_t id, const char *name) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, 3), SNAP_OK);
  cr_assert_eq(snap_options_set_dictionary(o, id, name), SNAP_OK);
  if (s)
    cr_assert_eq(snap_options_set_dictionary_source(o, shelf_source, s), SNAP_OK);
  if (a == AUTH_AEAD)
    cr_assert_eq(snap_options_set_encryption(o, kr, "tests/dict/v1"), SNAP_OK);
  if (a == AUTH_MAC)
    cr_assert_eq(snap_options_set_integrity(o, kr, "tests/dict/v1"), SNAP_OK);
  return o;
}

static snap_keyring *ring(void) {
  uint8_t k[SNAP_KEY_BYTES];
  memset(k, 0x5a, sizeof k);
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  return kr;
}

Test(dict, the_id_is_derived_from_the_bytes) {
  size_t n;
  uint8_t *b = read_all(DICT_FILE, &n), h[32];
  crypto_generichash(h, 32, b, n, NULL, 0);
  snap_dict *d = golden_dict();
  uint32_t id;
  cr_assert_eq(snap_dict_id_of(b, n, &id), SNAP_OK);
  cr_assert_eq(id, snap_dict_id(d));
  cr_assert_eq(id, (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                       (uint32_t)h[3] << 24);
  size_t len;
  const void *p = snap_dict_bytes(d, &len);
  cr_assert(len == n && memcmp(p, b, n) == 0);
  snap_dict *e;
  cr_assert_eq(snap_dict_new(&e, b, 7), SNAP_EINVAL);
  cr_assert_eq(snap_dict_new(&e, b, SNAP_DICT_MAX + 1), SNAP_EINVAL);
  cr_assert_eq(snap_dict_new(NULL, b, n), SNAP_EINVAL);
  /* references: the last release frees */
  cr_assert_eq(snap_dict_ref(d), d);
  snap_dict_free(d);
  cr_assert_eq(snap_dict_id(d), id);
  snap_dict_free(d);
  snap_dict_free(NULL);
  free(b);
}

static void round_trip(enum auth a, bool by_name) {
  snap_keyring *kr = ring();
  shelf s = {{golden_dict(), NULL}, {"accounts", NULL}, 0};
  const uint32_t id = snap_dict_id(s.d[0]);
  snap_options *o = opts(a, kr, &s, by_name ? 0 : id, by_name ? "accounts" : NULL);
  snap_options *plain = opts(a, kr, NULL, 0, NULL);
  snap_buf b = SNAP_BUF_INIT, nod = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  const size_t n = strlen(STATE);
  unsigned st;
  cr_assert_eq(snap_body_encode("acc-7777", 5, SNAP_FORMAT_JSON, STATE, n, o, &b, &st), SNAP_OK,
               "%s", snap_error_message());
  cr_assert(st & SNAP_STAGE_COMPRESSED);
  cr_assert_eq(snap_body_encode("acc-7777", 5, SNAP_FORMAT_JSON, STATE, n, plain, &nod, NULL),
               SNAP_OK);
  cr_assert_lt(b.len, nod.len, "with the dictionary %zu bytes, without %zu", b.len, nod.len);
  snap_compression codec;
  uint32_t named;
  cr_assert_eq(snap_body_inspect_codec(b.data, b.len, &codec, &named), SNAP_OK);
  cr_assert(codec == SNAP_COMPRESSION_ZSTD && named == id);
  cr_assert_eq(snap_body_inspect_codec(nod.data, nod.len, &codec, &named), SNAP_OK);
  cr_assert(codec == SNAP_COMPRESSION_ZSTD && named == 0);
  unsigned st2;
  cr_assert_eq(snap_body_decode("acc-7777", 5, b.data, b.len, o, &back, NULL, &st2), SNAP_OK,
               "%s", snap_error_message());
  cr_assert(back.len == n && memcmp(back.data, STATE, n) == 0 && st2 == st);

  /* A reader without the dictionary: an error naming it, never a fallback. */
  char idstr[16];
  snprintf(idstr, sizeof idstr, "%u", (unsigned)id);
  cr_assert_eq(snap_body_decode("acc-7777", 5, b.data, b.len, plain, &back, NULL, NULL),
               SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), idstr), "%s", snap_error_message());
  cr_assert_eq(back.len, 0u);
  shelf empty = {{NULL, NULL}, {NULL, NULL}, 0};
  cr_assert_eq(snap_options_set_dictionary_source(plain, shelf_source, &empty), SNAP_OK);
  cr_assert_eq(snap_body_decode("acc-7777", 5, b.data, b.len, plain, &back, NULL, NULL),
               SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), idstr), "%s", snap_error_message());
  snap_buf_dispose(&b);
  snap_buf_dispose(&nod);
  snap_buf_dispose(&back);
  snap_options_free(o);
  snap_options_free(plain);
  snap_dict_free(s.d[0]);
  snap_keyring_free(kr);
}

Test(dict, round_trip_by_id) { round_trip(AUTH_NONE, false); }
Test(dict, round_trip_by_name) { round_trip(AUTH_NONE, true); }
Test(dict, round_trip_encrypted) { round_trip(AUTH_AEAD, false); }
Test(dict, round_trip_maced) { round_trip(AUTH_MAC, true); }

Test(dict, choosing_a_dictionary_is_checked_at_encode) {
  shelf s = {{golden_dict(), NULL}, {"accounts", NULL}, 0};
  snap_buf b = SNAP_BUF_INIT;
  const size_t n = strlen(STATE);
  /* with zlib */
  snap_options *o = opts(AUTH_NONE, NULL, &s, snap_dict_id(s.d[0]), NULL);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, n, o, &b, NULL), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "not zstd"), "%s", snap_error_message());
  snap_options_free(o);
  /* unknown, by id and by name; no source */
  o = opts(AUTH_NONE, NULL, &s, 12345, NULL);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, n, o, &b, NULL), SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), "dictionary 12345"), "%s", snap_error_message());
  snap_options_free(o);
  o = opts(AUTH_NONE, NULL, &s, 0, "sessions");
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, n, o, &b, NULL), SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), "'sessions'"), "%s", snap_error_message());
  snap_options_free(o);
  o = opts(AUTH_NONE, NULL, NULL, snap_dict_id(s.d[0]), NULL);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, n, o, &b, NULL), SNAP_EINVAL);
  /* both id and name; empty name */
  cr_assert_eq(snap_options_set_dictionary(o, 5, "x"), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_dictionary(o, 0, ""), SNAP_EINVAL);
  /* none overrides a lower layer's choice */
  snap_options *low = opts(AUTH_NONE, NULL, &s, snap_dict_id(s.d[0]), NULL), *high, *r;
  cr_assert_eq(snap_options_new(&high), SNAP_OK);
  cr_assert_eq(snap_options_set_dictionary(high, 0, NULL), SNAP_OK);
  const snap_options *layers[2] = {high, low};
  cr_assert_eq(snap_options_resolve(&r, layers, 2), SNAP_OK);
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, n, r, &b, NULL), SNAP_OK);
  uint32_t named = 1;
  cr_assert_eq(snap_body_inspect_codec(b.data, b.len, NULL, &named), SNAP_OK);
  cr_assert_eq(named, 0u);
  /* a state under the minimum size: no dictionary asked for, a v1 body */
  cr_assert_eq(snap_options_set_compression_min_size(low, 4096), SNAP_OK);
  s.asked = 0;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, n, low, &b, NULL), SNAP_OK);
  cr_assert_eq(s.asked, 0u);
  cr_assert_eq(b.data[4], 1);
  snap_options_free(o);
  snap_options_free(low);
  snap_options_free(high);
  snap_options_free(r);
  snap_buf_dispose(&b);
  snap_dict_free(s.d[0]);
}

/* A CRC body with the block `blk` around the dictionary-compressed STATE. */
static size_t craft(uint8_t *out, const uint8_t *blk, size_t blk_len, const uint8_t *z,
                    size_t zn) {
  memcpy(out, "SNPB\x02\x01\x01\x00\x00\x00\x00\x00", 12);
  put_u64le(out + 12, strlen(STATE));
  memcpy(out + 20, blk, blk_len);
  memcpy(out + 20 + blk_len, z, zn);
  size_t n = 20 + blk_len + zn;
  put_u32le(out + n, (uint32_t)crc32(0, out, (uInt)n));
  return n + 4;
}

Test(dict, the_dictionary_field_is_checked) {
  shelf s = {{golden_dict(), NULL}, {"accounts", NULL}, 0};
  const uint32_t id = snap_dict_id(s.d[0]);
  snap_options *o = opts(AUTH_NONE, NULL, &s, id, NULL);
  snap_buf b = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), o, &b, NULL),
               SNAP_OK);
  /* the zstd frame of the body: after the 13-byte block */
  cr_assert_eq(b.data[20], 13);
  const uint8_t *z = b.data + 33;
  const size_t zn = b.len - 33 - 4;
  uint8_t c[1024];
  uint8_t blk[16] = {13, 0, 1, 1, 0, 2, 2, 4, 0};
  put_u32le(blk + 9, id);
  size_t n = craft(c, blk, 13, z, zn);
  cr_assert_eq(snap_body_decode("p", 1, c, n, o, &back, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  /* id 0 */
  put_u32le(blk + 9, 0);
  n = craft(c, blk, 13, z, zn);
  cr_assert_eq(snap_body_decode("p", 1, c, n, o, &back, NULL, NULL), SNAP_EFORMAT);
  /* without the codec field */
  static const uint8_t nocodec[] = {9, 0, 2, 4, 0, 1, 2, 3, 4};
  n = craft(c, nocodec, sizeof nocodec, z, zn);
  cr_assert_eq(snap_body_decode("p", 1, c, n, o, &back, NULL, NULL), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "not zstd"), "%s", snap_error_message());
  /* descending, duplicate, wrong length */
  uint8_t desc[13] = {13, 0, 2, 4, 0, 1, 2, 3, 4, 1, 1, 0, 2};
  n = craft(c, desc, 13, z, zn);
  cr_assert_eq(snap_body_decode("p", 1, c, n, o, &back, NULL, NULL), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "types ascend"), "%s", snap_error_message());
  uint8_t dup[20] = {20, 0, 1, 1, 0, 2, 2, 4, 0, 1, 2, 3, 4, 2, 4, 0, 1, 2, 3, 4};
  n = craft(c, dup, 20, z, zn);
  cr_assert_eq(snap_body_decode("p", 1, c, n, o, &back, NULL, NULL), SNAP_EFORMAT);
  uint8_t shortid[12] = {12, 0, 1, 1, 0, 2, 2, 3, 0, 1, 2, 3};
  n = craft(c, shortid, 12, z, zn);
  cr_assert_eq(snap_body_decode("p", 1, c, n, o, &back, NULL, NULL), SNAP_EFORMAT);
  /* a dictionary-compressed frame read without its dictionary field: never
   * the state (zstd refuses it, or it is damage under a valid CRC) */
  static const uint8_t codec_only[] = {6, 0, 1, 1, 0, 2};
  n = craft(c, codec_only, sizeof codec_only, z, zn);
  int rc = snap_body_decode("p", 1, c, n, o, &back, NULL, NULL);
  cr_assert(rc == SNAP_ECORRUPT || (rc == SNAP_OK && memcmp(back.data, STATE, back.len) != 0),
            "%d", rc);
  snap_options_free(o);
  snap_buf_dispose(&b);
  snap_buf_dispose(&back);
  snap_dict_free(s.d[0]);
}

Test(dict, an_altered_id_of_a_keyed_body_is_eauth_not_a_missing_dictionary) {
  snap_keyring *kr = ring();
  shelf s = {{golden_dict(), NULL}, {"accounts", NULL}, 0};
  for (int a = AUTH_AEAD; a <= AUTH_MAC; a++) {
    snap_options *o = opts((enum auth)a, kr, &s, snap_dict_id(s.d[0]), NULL);
    snap_buf b = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
    cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), o, &b, NULL),
                 SNAP_OK);
    for (int i = 29; i < 33; i++) { /* the id's bytes */
      b.data[i] ^= 0x10;
      s.asked = 0;
      cr_assert_eq(snap_body_decode("p", 1, b.data, b.len, o, &back, NULL, NULL), SNAP_EAUTH);
      cr_assert_eq(s.asked, 0u, "no dictionary is looked up for an unauthenticated body");
      b.data[i] ^= 0x10;
    }
    snap_options_free(o);
    snap_buf_dispose(&b);
    snap_buf_dispose(&back);
  }
  snap_dict_free(s.d[0]);
  snap_keyring_free(kr);
}
