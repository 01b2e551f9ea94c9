/* JSON validation at the edges of its bulk scans: the validator looks at 16
 * bytes (SSE2) or 8 bytes (a word) at a time, so every special byte is put at
 * every offset around those boundaries, with every distance to the end of the
 * buffer, and the verdict is compared with the one known by construction. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "snap/pipeline.h"

/* Bytes put inside a run of 'a' in a string, and whether the string stays valid. */
static const struct insert {
  const char *bytes;
  size_t n;
  bool ok;
} inserts[] = {
    {"", 0, true},
    {"\"", 1, false}, /* ends the string early: bytes follow the value */
    {"\\n", 2, true},
    {"\\\\", 2, true},
    {"\\\"", 2, true},
    {"\\u00e9", 6, true},
    {"\\uD83D\\uDE00", 12, true},
    {"\\x", 2, false},
    {"\\uD800", 6, false}, /* a lone high surrogate */
    {"\\uDC00", 6, false}, /* a lone low surrogate */
    {"\\u00g0", 6, false},
    {" ", 1, true},
    {"\x7f", 1, true}, /* DEL is no control byte in RFC 8259 */
    {"\x1f", 1, false},
    {"\t", 1, false},
    {"\n", 1, false},
    {"\0", 1, false},
    {"\xc3\xa9", 2, true},
    {"\xe2\x82\xac", 3, true},
    {"\xf0\x9f\x98\x80", 4, true},
    {"\xf4\x8f\xbf\xbf", 4, true}, /* U+10FFFF */
    {"\xef\xbb\xbf", 3, true},     /* U+FEFF inside a string is a character */
    {"\x80", 1, false},
    {"\xbf", 1, false},
    {"\xff", 1, false},
    {"\xfe", 1, false},
    {"\xc0\x80", 2, false},         /* overlong */
    {"\xe0\x80\x80", 3, false},     /* overlong */
    {"\xc3", 1, false},             /* a lead byte without its continuation */
    {"\xe2\x82", 2, false},         /* cut short */
    {"\xed\xa0\x80", 3, false},     /* a UTF-16 surrogate */
    {"\xf4\x90\x80\x80", 4, false}, /* above U+10FFFF */
    {"\xf8\x88\x80\x80\x80", 5, false},
};

/* Validates exactly n bytes from a heap block of exactly n bytes, so a read
 * past the end is an error under a sanitizer. */
static int check(const char *text, size_t n) {
  char *p = malloc(n ? n : 1);
  cr_assert_not_null(p);
  memcpy(p, text, n);
  int rc = snap_payload_validate(SNAP_FORMAT_JSON, p, n);
  free(p);
  return rc;
}

Test(payload, string_special_byte_at_every_offset) {
  char text[128];
  size_t cases = 0;
  for (size_t k = 0; k < sizeof inserts / sizeof *inserts; k++) {
    const struct insert *in = &inserts[k];
    for (size_t len = 0; len <= 40; len++)
      for (size_t at = 0; at <= len; at++)
        for (size_t pre = 0; pre < 3; pre++)
          for (size_t post = 0; post <= 17; post++) {
            size_t n = 0;
            memset(text, ' ', pre);
            n += pre;
            text[n++] = '"';
            memset(text + n, 'a', at);
            n += at;
            memcpy(text + n, in->bytes, in->n);
            n += in->n;
            memset(text + n, 'a', len - at);
            n += len - at;
            text[n++] = '"';
            memset(text + n, ' ', post);
            n += post;
            int rc = check(text, n);
            cr_assert_eq(rc, in->ok ? SNAP_OK : SNAP_EFORMAT,
                         "insert %zu at %zu of %zu (pre %zu, post %zu): %d %s", k, at, len, pre,
                         post, rc, snap_error_message());
            if (rc)
              cr_assert_not_null(strstr(snap_error_message(), "offset"), "%s",
                                 snap_error_message());
            cases++;
          }
  }
  cr_assert_gt(cases, 100000u);
}

/* Whole strings as member names and values in an object, so the run that ends
 * at the special byte is followed by the grammar's own scanning. */
Test(payload, special_byte_in_member_name_and_value) {
  char text[160];
  for (size_t k = 0; k < sizeof inserts / sizeof *inserts; k++) {
    const struct insert *in = &inserts[k];
    for (size_t at = 0; at <= 33; at++)
      for (int where = 0; where < 2; where++) {
        size_t n = 0;
        memcpy(text, "{\"", 2);
        n = 2;
        for (int part = 0; part < 2; part++) {
          memset(text + n, 'k', at);
          n += at;
          if (part == where) {
            memcpy(text + n, in->bytes, in->n);
            n += in->n;
          }
          memset(text + n, 'k', 33 - at);
          n += 33 - at;
          memcpy(text + n, part == 0 ? "\":\"" : "\"}", part == 0 ? 3u : 2u);
          n += part == 0 ? 3u : 2u;
        }
        int rc = check(text, n);
        cr_assert_eq(rc, in->ok ? SNAP_OK : SNAP_EFORMAT, "insert %zu at %zu in %s: %s", k, at,
                     where ? "value" : "name", snap_error_message());
      }
  }
}

/* Digit runs are scanned eight at a time: every run length up to past the
 * 63-character limit, followed by every kind of byte that can end it. */
Test(payload, number_runs_end_exactly) {
  static const struct {
    const char *tail;
    bool ok;
    bool extends; /* the tail is part of the number */
  } tails[] = {
      {"", true, false},       {" ", true, false},       {".5", true, true},
      {"e7", true, true},      {"E-12", true, true},     {"0", true, true},
      {"9", true, true},       {"/", false, false},      {":", false, false},
      {"a", false, false},     {".", false, true},       {"e", false, true},
      {"\xfa", false, false},  {"\xff", false, false},   {"\x80", false, false},
      {"\x1f", false, false},  {"\"", false, false},     {"-", false, false},
  };
  char text[128];
  for (size_t t = 0; t < sizeof tails / sizeof *tails; t++)
    for (size_t digits = 1; digits <= 70; digits++)
      for (size_t post = 0; post <= 9; post++) {
        size_t tl = strlen(tails[t].tail), n = 0;
        text[n++] = '[';
        text[n++] = '1';
        memset(text + n, '0', digits - 1);
        n += digits - 1;
        memcpy(text + n, tails[t].tail, tl);
        n += tl;
        text[n++] = ']';
        memset(text + n, ' ', post);
        n += post;
        size_t chars = digits + (tails[t].extends ? tl : 0);
        bool ok = tails[t].ok && chars <= 63;
        int rc = check(text, n);
        cr_assert_eq(rc, ok ? SNAP_OK : SNAP_EFORMAT, "%zu digits, tail %zu, post %zu: %s", digits,
                     t, post, snap_error_message());
      }
}

/* The documented limit: 512 nested containers are read, 513 are refused. */
Test(payload, nesting_limit_is_exact) {
  enum { MAX = 512 };
  /* An object level takes {"a": and }, six bytes, plus the value. */
  static char text[6 * (MAX + 2) + 1];
  for (int obj = 0; obj < 2; obj++)
    for (size_t depth = MAX - 2; depth <= MAX + 2; depth++) {
      size_t n = 0;
      for (size_t d = 0; d < depth; d++) {
        if (obj) {
          memcpy(text + n, "{\"a\":", 5);
          n += 5;
        } else {
          text[n++] = '[';
        }
      }
      text[n++] = '1';
      for (size_t d = 0; d < depth; d++)
        text[n++] = obj ? '}' : ']';
      int rc = check(text, n);
      cr_assert_eq(rc, depth <= MAX ? SNAP_OK : SNAP_EFORMAT, "%s depth %zu: %s",
                   obj ? "object" : "array", depth, snap_error_message());
    }
}

/* Long strings: a special byte far into a string of several kilobytes, where
 * the bulk loops run many times before they meet it. */
Test(payload, long_strings) {
  size_t n = 9000;
  char *text = malloc(n);
  cr_assert_not_null(text);
  for (size_t k = 0; k < sizeof inserts / sizeof *inserts; k++)
    for (size_t at = 4080; at < 4120; at += 3) {
      const struct insert *in = &inserts[k];
      memset(text, 'x', n);
      text[0] = '"';
      memcpy(text + at, in->bytes, in->n);
      text[n - 1] = '"';
      int rc = check(text, n);
      cr_assert_eq(rc, in->ok ? SNAP_OK : SNAP_EFORMAT, "insert %zu at %zu: %s", k, at,
                   snap_error_message());
    }
  free(text);
}
