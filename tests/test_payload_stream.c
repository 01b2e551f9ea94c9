/* Incremental payload validation (snap/stream.h): the verdict of pushes of
 * any split equals snap_payload_validate()'s over the whole. Every document
 * here is split at every offset, pushed a byte at a time, and mutated. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/stream.h"

/* The verdict of pushing `n` bytes in pieces cut at `cuts` (ascending). */
static int pushed(snap_format f, const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts) {
  snap_payload_validator *v;
  cr_assert_eq(snap_payload_validator_new(&v, f), SNAP_OK);
  size_t at = 0;
  int rc = SNAP_OK;
  for (size_t i = 0; i <= ncuts && rc == SNAP_OK; i++) {
    const size_t end = i < ncuts ? cuts[i] : n;
    rc = snap_payload_validator_push(v, p + at, end - at);
    at = end;
  }
  if (rc == SNAP_OK)
    rc = snap_payload_validator_finish(v);
  snap_payload_validator_free(v);
  return rc;
}

/* Whole, split at every offset, and a byte at a time: one verdict. */
static void same_verdict(snap_format f, const uint8_t *p, size_t n) {
  const int want = snap_payload_validate(f, p, n);
  cr_assert(want == SNAP_OK || want == SNAP_EFORMAT);
  cr_assert_eq(pushed(f, p, n, NULL, 0), want, "whole %.*s", (int)(n > 60 ? 60 : n), p);
  for (size_t cut = 0; cut <= n; cut++)
    cr_assert_eq(pushed(f, p, n, &cut, 1), want, "cut at %zu of %.*s (want %d)", cut,
                 (int)(n > 60 ? 60 : n), p, want);
  if (n > 4096)
    return;
  size_t *cuts = malloc((n + 1) * sizeof *cuts);
  for (size_t i = 0; i < n; i++)
    cuts[i] = i + 1;
  cr_assert_eq(pushed(f, p, n, cuts, n ? n - 1 : 0), want, "bytewise %.*s",
               (int)(n > 60 ? 60 : n), p);
  free(cuts);
}

static void same_str(snap_format f, const char *s) {
  same_verdict(f, (const uint8_t *)s, strlen(s));
}

static const char *const JSON_DOCS[] = {
    "0", "-0", "1.5e-3", "-12E+7", "123456789012345678901234567890", "\"\"", "true", "null",
    "false", "[]", "{}", " [ 1 , [ ] , { } ] ", "{\"a\":{\"b\":[true,false,null]}}",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"", "{\"\":\"\"}", "[\"\xc3\xa9\"]",
    " \t\r\n{} \n", "7", "  42  ", "[1,2]", "{\"k\":[1,2,3],\"s\":\"abc def\"}",
    "\"\xe2\x82\xac\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbf\"",
    /* refused */
    "01", "1.", ".5", "+1", "1e", "1e+", "-", "--1", "0x10", "NaN", "Infinity", "tru", "nulls",
    "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{\"a\":1,}", "[,1]", "\"\\x\"", "\"\\u12\"",
    "\"\\uDE00\"", "\"\\uD83D\"", "\"\\uD83Dx\"", "\"\\uD83D\\u0041\"", "\"a", "\"a\tb\"", "'a'",
    "[", "]", "{\"a\":1]", "[1}", "{\"a\":1", "{\"a\":1} x", "{\"a\":1}{}", "[1,\x02 2]",
    "\"a\x01\"", "\"\xc3\x28\"", "\xef\xbb\xbf{}", "   ", "nul", "[1,]", "\"\xed\xa0\x80\"",
    "\"\xc0\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xe0\x9f\xbf\"", "\"\xf0\x8f\xbf\xbf\"",
    "\"\xf4\x90\x80\x80\"", "\"\xc3\"", "\"\xe2\x82\"", "\xc3\xa9", "1 ", "1\x01", "[1]]",
    "{\"a\":1,\"b\"}", "{\"a\"::1}", "[\"a\"\"b\"]", "-01", "1.e5", "1E", "0.0e-0",
    "1234567890123456789012345678901234567890123456789012345678901234",
    "123456789012345678901234567890123456789012345678901234567890123",
    "-12345678901234567890123456789012345678901234567890123456789012"};

Test(validator, json_verdicts_equal_the_whole_buffer_validator_at_every_split) {
  for (size_t i = 0; i < sizeof JSON_DOCS / sizeof *JSON_DOCS; i++)
    same_str(SNAP_FORMAT_JSON, JSON_DOCS[i]);
  same_verdict(SNAP_FORMAT_JSON, (const uint8_t *)"{\"a\":1}\0", 8);
  same_verdict(SNAP_FORMAT_JSON, (const uint8_t *)"", 0);
}

Test(validator, json_nesting_limit_is_the_same) {
  static char deep[1100];
  for (size_t n = 511; n <= 513; n++) {
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    same_verdict(SNAP_FORMAT_JSON, (const uint8_t *)deep, 2 * n);
    memset(deep, '{', 1);
    same_verdict(SNAP_FORMAT_JSON, (const uint8_t *)deep, 2 * n);
  }
  /* Objects and arrays interleaved, closed in the wrong order at depth. */
  char mix[2048];
  size_t k = 0;
  for (int i = 0; i < 300; i++) {
    memcpy(mix + k, i % 2 ? "[" : "{\"k\":", i % 2 ? 1 : 5);
    k += i % 2 ? 1 : 5;
  }
  mix[k++] = '1';
  for (int i = 299; i >= 0; i--)
    mix[k++] = i % 2 ? ']' : '}';
  same_verdict(SNAP_FORMAT_JSON, (const uint8_t *)mix, k);
  mix[k - 150] = mix[k - 150] == ']' ? '}' : ']';
  same_verdict(SNAP_FORMAT_JSON, (const uint8_t *)mix, k);
}

static const struct {
  const char *p;
  size_t n;
} MP_DOCS[] = {
    {"\x07", 1}, {"\xc0", 1}, {"\xc1", 1}, {"\x01\x02", 2}, {"\x92\x01", 2}, {"\xa5" "abc", 4},
    {"\xcd\x01", 2}, {"\x81\xa1k", 3}, {"\xdd\xff\xff\xff\xff", 5}, {"\xdf\x7f\xff\xff\xff\x01", 6},
    {"\xc6\x00\x00\x10\x00", 5}, {"\x82\xa1k\x93\x01\x02\x03\xa1s\xa3xyz", 13}, {"\x90", 1},
    {"\x80", 1}, {"\xdc\x00\x00", 3}, {"\xde\x00\x00", 3}, {"\xc7\x00\x05", 3},
    {"\xc4\x00", 2}, {"\xd9\x00", 2}, {"\xa0", 1}, {"\x91\x90", 2}, {"\x91\x90\x90", 3},
    {"\xd4\x01\x02", 3}, {"\xd8\x01" "0123456789abcdef", 18}, {"\xcb\x00\x00\x00\x00", 5},
    {"\x93\xc0\xc2\xc3", 4}, {"\x81\x01", 2}, {"\xe0", 1}, {"\xff\x00", 2}};

Test(validator, msgpack_verdicts_equal_the_whole_buffer_validator_at_every_split) {
  for (size_t i = 0; i < sizeof MP_DOCS / sizeof *MP_DOCS; i++)
    same_verdict(SNAP_FORMAT_MSGPACK, (const uint8_t *)MP_DOCS[i].p, MP_DOCS[i].n);
  /* Every valid type, in one array of 25 elements. */
  static const char all_s[] =
      "\xdc\x00\x19\xc0\xc2\xc3\xcc\x01\xcd\x00\x01\xce\x00\x00\x00\x01"
      "\xcf\x00\x00\x00\x00\x00\x00\x00\x01\xd0\xff\xd1\x00\x01"
      "\xd2\x00\x00\x00\x01\xd3\x00\x00\x00\x00\x00\x00\x00\x01"
      "\xca\x00\x00\x00\x00\xcb\x00\x00\x00\x00\x00\x00\x00\x00"
      "\xc4\x01x\xc5\x00\x01x\xc6\x00\x00\x00\x01x\xd9\x01x\xda\x00\x01x"
      "\xdb\x00\x00\x00\x01x\xd4\x01x\xd5\x01xx\xc7\x01\x05x\xc8\x00\x01\x05x"
      "\xdc\x00\x01\xe0\xde\x00\x01\x01\x02";
  const uint8_t *all = (const uint8_t *)all_s;
  const size_t all_len = sizeof all_s - 1;
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_MSGPACK, all, all_len), SNAP_OK, "%s",
               snap_error_message());
  same_verdict(SNAP_FORMAT_MSGPACK, all, all_len);
  for (size_t n = 1; n < all_len; n++)
    same_verdict(SNAP_FORMAT_MSGPACK, all, n); /* every truncation */
}

Test(validator, msgpack_nesting_limit_is_msgpack_cs) {
  uint8_t deep[40];
  for (size_t levels = 30; levels <= 34; levels++) {
    memset(deep, 0x91, sizeof deep);
    deep[levels] = 0x01;
    same_verdict(SNAP_FORMAT_MSGPACK, deep, levels + 1);
    deep[levels] = 0x90; /* an empty array innermost */
    same_verdict(SNAP_FORMAT_MSGPACK, deep, levels + 1);
    deep[levels] = 0x80; /* an empty map */
    same_verdict(SNAP_FORMAT_MSGPACK, deep, levels + 1);
  }
  /* Maps: 32 levels of {k: ...}. */
  uint8_t m[80];
  for (size_t levels = 31; levels <= 33; levels++) {
    for (size_t i = 0; i < levels; i++) {
      m[2 * i] = 0x81;
      m[2 * i + 1] = 0x01;
    }
    m[2 * levels] = 0x01;
    same_verdict(SNAP_FORMAT_MSGPACK, m, 2 * levels + 1);
  }
}

/* Random mutations of valid documents: flips, insertions, deletions. */
static void mutate_and_compare(snap_format f, const uint8_t *doc, size_t n, unsigned rounds) {
  uint8_t buf[512];
  uint32_t x = 12345;
  for (unsigned r = 0; r < rounds; r++) {
    memcpy(buf, doc, n);
    size_t len = n;
    for (int k = 0; k < 1 + (int)(r % 3); k++) {
      x = x * 1664525u + 1013904223u;
      const size_t at = (x >> 8) % (len + 1);
      const uint8_t b = (uint8_t)(x >> 24);
      if ((x & 3) == 0 && len < sizeof buf) { /* insert */
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = b;
        len++;
      } else if ((x & 3) == 1 && at < len) { /* delete */
        memmove(buf + at, buf + at + 1, len - at - 1);
        len--;
      } else if (at < len) {
        buf[at] = (x & 3) == 2 ? b : (uint8_t)"{}[]\",:\\u0e-.1 tfn"[b % 18];
      }
    }
    same_verdict(f, buf, len);
  }
}

Test(validator, random_mutations_give_the_same_verdict) {
  static const char json[] =
      "{\"id\":\"acc-\xc3\xa9\",\"n\":-12.5e3,\"ok\":[true,false,null],\"s\":\"a\\u00e9\\n\","
      "\"o\":{\"x\":[],\"y\":{}},\"big\":12345678901234567890}";
  mutate_and_compare(SNAP_FORMAT_JSON, (const uint8_t *)json, sizeof json - 1, 3000);
  static const uint8_t mp[] = {0x84, 0xa2, 'i', 'd', 0xa3, 'a', 'b', 'c', 0xa1, 'n', 0xcb, 0,
                               0,    0,    0,   0,   0,    0,   1,   0xa2, 'o', 'k', 0x93, 0xc3,
                               0xc2, 0xc0, 0xa1, 'b', 0xc4, 3,   1,   2,    3};
  mutate_and_compare(SNAP_FORMAT_MSGPACK, mp, sizeof mp, 3000);
}

/* The committed fuzz corpora of the payload target: a format byte, then the state. */
Test(validator, the_payload_fuzz_corpus_gives_the_same_verdicts) {
  const char *dir = SNAP_TEST_DATA_DIR "/../../fuzz/corpus/fuzz_payload";
  DIR *d = opendir(dir);
  cr_assert(d, "no corpus at %s", dir);
  struct dirent *e;
  size_t files = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *fp = fopen(path, "rb");
    cr_assert(fp);
    static uint8_t buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    if (n < 1)
      continue;
    same_verdict((buf[0] & 1) ? SNAP_FORMAT_MSGPACK : SNAP_FORMAT_JSON, buf + 1, n - 1);
    files++;
  }
  closedir(d);
  cr_assert_gt(files, 5u);
}

Test(validator, arguments_and_sticky_failures) {
  snap_payload_validator *v;
  cr_assert_eq(snap_payload_validator_new(&v, (snap_format)9), SNAP_EINVAL);
  cr_assert_eq(snap_payload_validator_new(NULL, SNAP_FORMAT_JSON), SNAP_EINVAL);
  cr_assert_eq(snap_payload_validator_new(&v, SNAP_FORMAT_JSON), SNAP_OK);
  cr_assert_eq(snap_payload_validator_push(v, NULL, 1), SNAP_EINVAL);
  cr_assert_eq(snap_payload_validator_push(v, "[1,", 3), SNAP_OK);
  cr_assert_eq(snap_payload_validator_push(v, "x", 1), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "offset 3"), "%s", snap_error_message());
  cr_assert_eq(snap_payload_validator_push(v, "2]", 2), SNAP_EFORMAT);
  cr_assert_eq(snap_payload_validator_finish(v), SNAP_EFORMAT);
  snap_payload_validator_free(v);
  snap_payload_validator_free(NULL);
}

/* Long documents: tokens far from the end of a piece take the validator's
 * fast path, those near it the byte machine; the verdict is one. */
Test(validator, long_documents_mutated_give_the_same_verdict) {
  static const char rec[] =
      "{\"id\":\"acc-\\u00e9\xc3\xa9\",\"n\":-12.5e+3,\"z\":0,\"f\":1.25,\"ok\":[true,false,null],"
      "\"o\":{\"x\":[],\"y\":{},\"s\":\"a\\\"b\\\\c\\/\\uD83D\\uDE00\"},\"big\":12345678901234567890} ";
  static uint8_t doc[4096], buf[4200];
  size_t n = 0;
  doc[n++] = '[';
  for (int r = 0; r < 12; r++) {
    memcpy(doc + n, rec, sizeof rec - 1);
    n += sizeof rec - 1;
    doc[n++] = r < 11 ? ',' : ']';
  }
  cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, doc, n), SNAP_OK, "%s",
               snap_error_message());
  same_verdict(SNAP_FORMAT_JSON, doc, n);
  uint32_t x = 99;
  for (unsigned round = 0; round < 4000; round++) {
    memcpy(buf, doc, n);
    size_t len = n;
    x = x * 1664525u + 1013904223u;
    const size_t at = (x >> 8) % len;
    const uint8_t b = (uint8_t)(x >> 24);
    switch (round % 4) {
    case 0:
      buf[at] = (uint8_t)"{}[]\",:\\u0e-.1 tfnE+\x01\xc3"[b % 22];
      break;
    case 1:
      buf[at] = b;
      break;
    case 2:
      memmove(buf + at, buf + at + 1, len - at - 1);
      len--;
      break;
    default:
      memmove(buf + at + 1, buf + at, len - at);
      buf[at] = (uint8_t)"{}[]\",: 0-.e"[b % 13];
      len++;
      break;
    }
    const int want = snap_payload_validate(SNAP_FORMAT_JSON, buf, len);
    cr_assert_eq(pushed(SNAP_FORMAT_JSON, buf, len, NULL, 0), want, "round %u whole", round);
    for (size_t cut = at > 70 ? at - 70 : 0; cut <= at + 70 && cut <= len; cut += 3)
      cr_assert_eq(pushed(SNAP_FORMAT_JSON, buf, len, &cut, 1), want, "round %u cut %zu", round,
                   cut);
  }
}

/* A token ending exactly at the end of a piece: nothing past the piece is
 * read (the byte after it here would be refused). */
Test(validator, a_piece_ending_with_a_long_token_is_read_to_its_end_only) {
  static char buf[400];
  memset(buf, 'a', sizeof buf);
  buf[0] = '"';
  buf[199] = '"';
  buf[200] = 'x';
  for (int f = 0; f < 2; f++) {
    cr_assert_eq(pushed(SNAP_FORMAT_JSON, (const uint8_t *)buf, 200, NULL, 0), SNAP_OK);
    const size_t cut = 100;
    cr_assert_eq(pushed(SNAP_FORMAT_JSON, (const uint8_t *)buf, 200, &cut, 1), SNAP_OK);
    /* The same inside an array: [ "aaa…" ] with the string's end last in the piece. */
    buf[0] = '[';
    buf[1] = '"';
    buf[198] = '"';
    buf[199] = ']';
  }
}

/* The message of a refusal, pushed in pieces of `step` bytes. */
static void refusal_message(const uint8_t *p, size_t n, size_t step, char *msg, size_t cap) {
  snap_payload_validator *v;
  cr_assert_eq(snap_payload_validator_new(&v, SNAP_FORMAT_JSON), SNAP_OK);
  int rc = SNAP_OK;
  for (size_t at = 0; at < n && rc == SNAP_OK; at += step)
    rc = snap_payload_validator_push(v, p + at, n - at < step ? n - at : step);
  if (rc == SNAP_OK)
    rc = snap_payload_validator_finish(v);
  snprintf(msg, cap, "%d %s", rc, rc ? snap_error_message() : "");
  snap_payload_validator_free(v);
}

/* The fast path reads whole escapes and UTF-8 sequences inside strings, 16
 * bytes at a time, and hands back to the byte machine whatever it cannot
 * finish in the piece. Every special string byte at every offset of a
 * 16-byte window, in a document long enough for the fast path, cut at every
 * offset (so the end of a piece falls before, inside and after it): the
 * verdict is the one known by construction, as the whole-buffer validator
 * gives it, and a refusal names the same fault as the byte machine alone
 * (the state pushed a byte at a time). */
Test(validator, fast_path_strings_at_every_offset_and_cut) {
  static const struct {
    const char *b;
    int ok;
  } xs[] = {{"\xc3\xa9", 1},
            {"\xe2\x82\xac", 1},
            {"\xf0\x9f\x98\x80", 1},
            {"\xf4\x8f\xbf\xbf", 1},
            {"\xed\x9f\xbf", 1},
            {"\xee\x80\x80", 1},
            {"\\n", 1},
            {"\\/", 1},
            {"\\u00e9", 1},
            {"\\uD7FF", 1},
            {"\\uE000", 1},
            {"\\uD83D\\uDE00", 1},
            {"\\ud800\\udc00", 1},
            {"\x7f", 1},
            {"\xc3", 0},
            {"\xc3\x28", 0},
            {"\xe0\x9f\xbf", 0},
            {"\xed\xa0\x80", 0},
            {"\xf0\x8f\xbf\xbf", 0},
            {"\xf4\x90\x80\x80", 0},
            {"\xf5\x80\x80\x80", 0},
            {"\xc0\x80", 0},
            {"\x80", 0},
            {"\\x", 0},
            {"\\u00g0", 0},
            {"\\uDC00", 0},
            {"\\uD800", 0},
            {"\\uD800\\u0041", 0},
            {"\x1f", 0},
            {"\t", 0}};
  uint8_t doc[256];
  char whole[600], bytewise[600];
  for (size_t x = 0; x < sizeof xs / sizeof *xs; x++)
    for (size_t pad = 0; pad < 4; pad++)
      for (size_t at = 0; at < 18; at++) {
        size_t n = (size_t)snprintf((char *)doc, sizeof doc, "{\"%.*s\":\"%.*s%s%.*s\",\"t\":[",
                                    (int)pad, "pppp", (int)at, "aaaaaaaaaaaaaaaaaa", xs[x].b,
                                    (int)(18 - at), "bbbbbbbbbbbbbbbbbb");
        for (int r = 0; r < 16; r++) /* past the 64 bytes the byte machine keeps */
          n += (size_t)snprintf((char *)doc + n, sizeof doc - n, "%s\"v%d\"", r ? "," : "", r);
        n += (size_t)snprintf((char *)doc + n, sizeof doc - n, "]}");
        const int want = snap_payload_validate(SNAP_FORMAT_JSON, doc, n);
        cr_assert_eq(want, xs[x].ok ? SNAP_OK : SNAP_EFORMAT, "byte %zu at %zu: %s", x, at,
                     snap_error_message());
        same_verdict(SNAP_FORMAT_JSON, doc, n);
        refusal_message(doc, n, n, whole, sizeof whole);
        refusal_message(doc, n, 1, bytewise, sizeof bytewise);
        cr_assert_str_eq(whole, bytewise, "byte %zu at %zu", x, at);
      }
}

/* Numbers in the fast path: digit runs of every length around the 16-byte
 * scan, every kind of byte after them, the 63-character limit, cut at every
 * offset; refusals named as the byte machine names them. */
Test(validator, fast_path_numbers_at_every_length_and_cut) {
  static const char *const enders[] = {"]",  ",1]", ".5]", "e3]", "E+7]",  "/]",
                                       "a]", ".]",  "e]",  " ]",  "\x80]", "0]"};
  uint8_t doc[256];
  char whole[600], bytewise[600];
  for (size_t digits = 1; digits <= 66; digits++)
    for (size_t e = 0; e < sizeof enders / sizeof *enders; e++)
      for (int neg = 0; neg < 2; neg++) {
        size_t n = (size_t)snprintf((char *)doc, sizeof doc, "[%s1", neg ? "-" : "");
        for (size_t d = 1; d < digits; d++)
          doc[n++] = (uint8_t)('0' + d % 10);
        n += (size_t)snprintf((char *)doc + n, sizeof doc - n,
                              "%s,\"the rest of the document, past the 64 bytes the byte machine "
                              "keeps at the end of a piece\"]",
                              enders[e]);
        /* Drop the first ']' of the ender: the number sits in the array's middle. */
        uint8_t *close = memchr(doc + 1, ']', n);
        memmove(close, close + 1, (size_t)(doc + n - close - 1));
        n--;
        same_verdict(SNAP_FORMAT_JSON, doc, n);
        refusal_message(doc, n, n, whole, sizeof whole);
        refusal_message(doc, n, 1, bytewise, sizeof bytewise);
        cr_assert_str_eq(whole, bytewise, "%zu digits, ender %zu", digits, e);
      }
}

/* The nesting limit in the fast path, with the 512th level opened at every
 * offset of a piece. */
Test(validator, fast_path_nesting_limit_at_every_cut) {
  /* 513 levels: 1,026 brackets and 171 objects of 4 more bytes each. */
  static uint8_t doc[2048];
  char whole[600], bytewise[600];
  for (size_t depth = 511; depth <= 513; depth++) {
    size_t n = 0;
    for (size_t d = 0; d < depth; d++)
      doc[n++] = d % 3 == 2 ? '{' : '[';
    for (size_t d = depth; d-- > 0;) {
      if (d % 3 == 2) { /* an object needs a member: {"k":[...]} */
        memmove(doc + d + 5, doc + d + 1, n - d - 1);
        memcpy(doc + d, "{\"k\":", 5);
        n += 4;
        doc[n++] = '}';
      } else {
        doc[n++] = ']';
      }
    }
    same_verdict(SNAP_FORMAT_JSON, doc, n);
    refusal_message(doc, n, n, whole, sizeof whole);
    refusal_message(doc, n, 1, bytewise, sizeof bytewise);
    cr_assert_str_eq(whole, bytewise, "depth %zu", depth);
    cr_assert_eq(snap_payload_validate(SNAP_FORMAT_JSON, doc, n),
                 depth <= 512 ? SNAP_OK : SNAP_EFORMAT, "depth %zu: %s", depth,
                 snap_error_message());
  }
}
