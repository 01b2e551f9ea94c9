/* The fast path of incremental JSON validation: whole tokens at a time with
 * the machine's state in locals, far enough from the end of a piece that no
 * token it starts can be cut off. Anything unusual, including every error,
 * goes back to the byte machine (payload_stream.c) at the start of its
 * token, so the verdicts are the byte machine's. */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "payload_stream.h"

#define MARGIN 64 /* longer than any number (63) or literal the fast path reads */

size_t snap__json_plain_run(const uint8_t *p, size_t n, size_t i) {
#if defined(__SSE2__)
  /* A signed compare with 0x20 flags the bytes below it and those >= 0x80. */
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                space = _mm_set1_epi8(0x20);
  while (n - i >= 16) {
    const __m128i w = _mm_loadu_si128((const __m128i *)(p + i));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bslash)),
                                     _mm_cmplt_epi8(w, space));
    const unsigned m = (unsigned)_mm_movemask_epi8(hit);
    if (m)
      return i + (size_t)__builtin_ctz(m);
    i += 16;
  }
#endif
  while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
    i++;
  return i;
}

static bool ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool digit(uint8_t c) { return c >= '0' && c <= '9'; }

static size_t digits(const uint8_t *p, size_t n, size_t k) {
  while (k < n && digit(p[k]))
    k++;
  return k;
}

/* The end of the number at p[i], or i when the fast path leaves it to the
 * byte machine (malformed, too long, or running to the end of the piece). */
static size_t number_end(const uint8_t *p, size_t n, size_t i) {
  size_t k = i + (p[i] == '-');
  if (k < n && p[k] == '0')
    k++;
  else if (k < n && digit(p[k]))
    k = digits(p, n, k);
  else
    return i;
  if (k < n && p[k] == '.') {
    if (k + 1 >= n || !digit(p[k + 1]))
      return i;
    k = digits(p, n, k + 1);
  }
  if (k < n && (p[k] == 'e' || p[k] == 'E')) {
    k += k + 1 < n && (p[k + 1] == '+' || p[k + 1] == '-');
    if (k + 1 >= n || !digit(p[k + 1]))
      return i;
    k = digits(p, n, k + 1);
  }
  return k >= n || k - i > 63 ? i : k;
}

/* The length of the literal at p[i] (true, false, null), or 0. */
static size_t literal_len(const uint8_t *p, size_t i) {
  if (memcmp(p + i, "true", 4) == 0 || memcmp(p + i, "null", 4) == 0)
    return 4;
  return memcmp(p + i, "false", 5) == 0 ? 5 : 0;
}

size_t snap__json_fast(json_machine *j, const uint8_t *p, size_t n, size_t i) {
  if (n < MARGIN || j->u8_need)
    return i;
  const size_t stop = n - MARGIN;
  jstate st = j->st;
  unsigned depth = j->depth;
  bool key = j->key;
  while (i < stop) {
    if (st == J_STR) {
      const size_t k = snap__json_plain_run(p, n, i);
      if (k < n && p[k] == '"') {
        i = k + 1;
        st = key ? J_COLON : J_AFTER;
        continue;
      }
      i = k; /* an escape, a control byte, UTF-8 or the end: the byte machine */
      break;
    }
    if (st != J_VALUE && st != J_FIRST_ELEM && st != J_FIRST_KEY && st != J_KEY &&
        st != J_COLON && st != J_AFTER)
      break; /* inside an escape, a number or a literal: the byte machine's */
    while (i < stop && ws(p[i]))
      i++;
    if (i >= stop)
      break;
    const uint8_t c = p[i];
    if (st == J_COLON) {
      if (c != ':')
        break;
      st = J_VALUE;
      i++;
    } else if (st == J_FIRST_KEY || st == J_KEY) {
      if (c == '"') {
        st = J_STR;
        key = true;
        i++;
      } else if (c == '}' && st == J_FIRST_KEY) {
        depth--;
        st = J_AFTER;
        i++;
      } else {
        break;
      }
    } else if (st == J_AFTER) {
      if (depth == 0)
        break;
      const bool obj = j->objects[(depth - 1) / 8] >> ((depth - 1) % 8) & 1;
      if (c == ',') {
        st = obj ? J_KEY : J_VALUE;
      } else if (c == (obj ? '}' : ']')) {
        depth--;
      } else {
        break;
      }
      i++;
    } else { /* J_VALUE, J_FIRST_ELEM */
      if (c == '"') {
        st = J_STR;
        key = false;
        i++;
      } else if (c == '{' || c == '[') {
        if (depth == JSON_DEPTH_MAX)
          break;
        const uint8_t bit = (uint8_t)(1u << (depth % 8));
        j->objects[depth / 8] = c == '{' ? (uint8_t)(j->objects[depth / 8] | bit)
                                         : (uint8_t)(j->objects[depth / 8] & ~bit);
        depth++;
        st = c == '{' ? J_FIRST_KEY : J_FIRST_ELEM;
        i++;
      } else if (c == ']' && st == J_FIRST_ELEM) {
        depth--;
        st = J_AFTER;
        i++;
      } else if (c == '-' || digit(c)) {
        const size_t k = number_end(p, n, i);
        if (k == i)
          break;
        i = k;
        st = J_AFTER;
      } else {
        const size_t k = literal_len(p, i);
        if (!k)
          break;
        i += k;
        st = J_AFTER;
      }
    }
  }
  j->st = st;
  j->depth = depth;
  j->key = key;
  return i;
}
