/* JSON validation at the edges of its bulk scans: the validator looks at 16
 * bytes (SSE2) or 8 bytes (a word) at a time, so every special byte is put at
 * every offset around those boundaries, with every distance to the end of the
 * buffer, and the verdict is compared with the one known by construction. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
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

/* An independent statement of the byte rules (RFC 8259 + RFC 3629): the
 * offset of the first control byte outside whitespace or of the first byte
 * that does not start a valid UTF-8 sequence, with whether it is a control
 * byte; false when there is none. Sequences are judged by their lead byte,
 * as the validator's messages name them. */
static bool ref_byte_fault(const unsigned char *p, size_t n, size_t *at, bool *control) {
  static const struct {
    unsigned char lead_lo, lead_hi, second_lo, second_hi;
    size_t len;
  } forms[] = {
      {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3}, {0xE1, 0xEC, 0x80, 0xBF, 3},
      {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3}, {0xF0, 0xF0, 0x90, 0xBF, 4},
      {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
  };
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      *at = i;
      *control = true;
      return true;
    }
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len = 0;
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++)
      if (c >= forms[f].lead_lo && c <= forms[f].lead_hi && n - i >= forms[f].len &&
          p[i + 1] >= forms[f].second_lo && p[i + 1] <= forms[f].second_hi) {
        len = forms[f].len;
        for (size_t k = 2; k < len; k++)
          if ((p[i + k] & 0xC0) != 0x80)
            len = 0;
      }
    if (!len) {
      *at = i;
      *control = false;
      return true;
    }
    i += len;
  }
  return false;
}

/* The validator reads a valid state once, checking bytes with the grammar;
 * a refusal still names the first byte-level fault of the whole text, before
 * any grammar fault, wherever each is (inside or outside a string, on either
 * side of a 16- or 8-byte step). Every byte of a state with multi-byte
 * characters is replaced by each interesting byte, with and without an
 * earlier grammar fault, at every shift of the 16-byte grid. */
Test(payload, refusal_names_first_byte_fault) {
  static const char doc[] = "{\"n\xc3\xa9v\":\"\xe2\x82\xac \xf0\x9f\x98\x80 \\u00e9\\n\","
                            "\"a\":[1,-2.5e3,true,null,\"\xc3\xbf\xc3\xbf\xc3\xbf\xc3\xbf"
                            "\xc3\xbf\xc3\xbf\xc3\xbf\xc3\xbf\xc3\xbf\"],\"z\":{}}";
  static const unsigned char subs[] = {0x00, 0x01, 0x09, 0x0a, 0x1f, 0x20, '"',  '\\', ',',
                                       '}',  0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                       0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  size_t dn = sizeof doc - 1;
  cr_assert_eq(check(doc, dn), SNAP_OK, "%s", snap_error_message());
  unsigned char text[160];
  size_t faults = 0;
  for (size_t shift = 0; shift < 16; shift++)
    for (int early = 0; early < 2; early++)
      for (size_t j = 0; j < dn; j++)
        for (size_t s = 0; s < sizeof subs; s++) {
          memset(text, ' ', shift);
          memcpy(text + shift, doc, dn);
          size_t n = shift + dn;
          text[shift + j] = subs[s];
          if (early && j > 1)
            text[shift + 1] = '#'; /* a grammar fault before the byte */
          size_t at = 0;
          bool control = false, fault = ref_byte_fault(text, n, &at, &control);
          int rc = check((const char *)text, n);
          const char *msg = snap_error_message();
          if (fault) {
            char want[64];
            snprintf(want, sizeof want, "byte offset %zu", at);
            cr_assert_eq(rc, SNAP_EFORMAT, "shift %zu sub 0x%02x at %zu", shift, subs[s], j);
            cr_assert(strstr(msg, control ? "control byte" : "invalid UTF-8") && strstr(msg, want),
                      "shift %zu early %d sub 0x%02x at %zu: want %s at %zu, got %s", shift,
                      early, subs[s], j, control ? "control" : "UTF-8", at, msg);
            faults++;
          } else if (rc != SNAP_OK) {
            cr_assert(!strstr(msg, "state: control byte") && !strstr(msg, "invalid UTF-8"), "%s", msg);
          } else {
            cr_assert(!early || j <= 1, "shift %zu sub 0x%02x at %zu: the grammar fault was missed", shift,
                      subs[s], j);
          }
        }
  cr_assert_gt(faults, 10000u);
}

/* Multi-byte characters back to back across many 16- and 8-byte steps, each
 * run ended by a truncated, overlong or surrogate form at every position, and
 * a text that ends inside a sequence inside an unterminated string. */
Test(payload, utf8_runs_across_steps) {
  static const struct {
    const char *bytes;
    size_t n;
  } chars[] = {{"\xc3\xa9", 2}, {"\xe2\x82\xac", 3}, {"\xf0\x9f\x98\x80", 4}};
  static const struct insert bad[] = {
      {"\xc0\xaf", 2, false}, {"\xe0\x9f\xbf", 3, false}, {"\xf0\x8f\xbf\xbf", 4, false},
      {"\xed\xbf\xbf", 3, false}, {"\xe2\x28\xa1", 3, false}, {"\xc3", 1, false},
      {"\xed\x9f\xbf", 3, true}, /* U+D7FF, just below the surrogates */
      {"\xee\x80\x80", 3, true}, /* U+E000, just above them */
  };
  char text[200];
  for (size_t c = 0; c < 3; c++)
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++)
      for (size_t count = 0; count <= 20; count++)
        for (size_t before = 0; before <= count; before++) {
          size_t n = 0;
          text[n++] = '"';
          for (size_t k = 0; k < count; k++) {
            if (k == before) {
              memcpy(text + n, bad[b].bytes, bad[b].n);
              n += bad[b].n;
            }
            memcpy(text + n, chars[c].bytes, chars[c].n);
            n += chars[c].n;
          }
          if (before == count) {
            memcpy(text + n, bad[b].bytes, bad[b].n);
            n += bad[b].n;
          }
          /* Cut inside the last character, the closing quote never comes. */
          int cut = check(text, n - 1);
          cr_assert_eq(cut, SNAP_EFORMAT);
          if (before < count || bad[b].ok)
            cr_assert(strstr(snap_error_message(), "invalid UTF-8"), "%s", snap_error_message());
          text[n++] = '"';
          int rc = check(text, n);
          cr_assert_eq(rc, bad[b].ok ? SNAP_OK : SNAP_EFORMAT, "char %zu bad %zu count %zu at %zu: %s",
                       c, b, count, before, snap_error_message());
        }
}

/* Bytes outside strings: whitespace is the only place for a control byte,
 * and a byte >= 0x80 is never valid there, even when it starts a valid UTF-8
 * sequence. A byte order mark is named as such. */
Test(payload, bytes_outside_strings) {
  static const struct insert outside[] = {
      {" \t\r\n", 4, true},    {"\x01", 1, false},         {"\x7f", 1, false},
      {"\xc3\xa9", 2, false},  {"\xe2\x82\xac", 3, false}, {"\xef\xbb\xbf", 3, false},
      {"\x80", 1, false},      {"\xff", 1, false},
  };
  char text[128];
  for (size_t k = 0; k < sizeof outside / sizeof *outside; k++)
    for (size_t pad = 0; pad <= 33; pad++)
      for (int where = 0; where < 3; where++) {
        size_t n = 0;
        memset(text, ' ', pad);
        n = pad;
        const char *parts[] = {"[\"x\"", ",1", "]"};
        for (int part = 0; part < 3; part++) {
          if (part == where) {
            memcpy(text + n, outside[k].bytes, outside[k].n);
            n += outside[k].n;
          }
          memcpy(text + n, parts[part], strlen(parts[part]));
          n += strlen(parts[part]);
        }
        int rc = check(text, n);
        cr_assert_eq(rc, outside[k].ok ? SNAP_OK : SNAP_EFORMAT, "insert %zu pad %zu where %d: %s",
                     k, pad, where, snap_error_message());
      }
  cr_assert_eq(check("\xef\xbb\xbf{}", 5), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "byte order mark"), "%s", snap_error_message());
  cr_assert_eq(check("\xef\xbb\xbf{\"\xff\"}", 8), SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "invalid UTF-8 at byte offset 5"), "%s",
            snap_error_message());
}
