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

/* Where the fast path stands between tokens. */
typedef struct fast_pos {
  jstate st;
  unsigned depth;
  bool key;
} fast_pos;

/* One structural token at `*i` (its first byte `c`) taken by the fast path:
 * false when it is the byte machine's to take. */
static inline bool fast_token(json_machine *j, fast_pos *f, const uint8_t *p, size_t n, size_t *i,
                              uint8_t c) {
  if (f->st == J_COLON) {
    if (c != ':')
      return false;
    f->st = J_VALUE;
    ++*i;
  } else if (f->st == J_FIRST_KEY || f->st == J_KEY) {
    if (c == '"') {
      f->st = J_STR;
      f->key = true;
      ++*i;
    } else if (c == '}' && f->st == J_FIRST_KEY) {
      f->depth--;
      f->st = J_AFTER;
      ++*i;
    } else {
      return false;
    }
  } else if (f->st == J_AFTER) {
    if (f->depth == 0)
      return false;
    const bool obj = j->objects[(f->depth - 1) / 8] >> ((f->depth - 1) % 8) & 1;
    if (c == ',') {
      f->st = obj ? J_KEY : J_VALUE;
    } else if (c == (obj ? '}' : ']')) {
      f->depth--;
    } else {
      return false;
    }
    ++*i;
  } else { /* J_VALUE, J_FIRST_ELEM */
    if (c == '"') {
      f->st = J_STR;
      f->key = false;
      ++*i;
    } else if (c == '{' || c == '[') {
      if (f->depth == JSON_DEPTH_MAX)
        return false;
      const uint8_t bit = (uint8_t)(1u << (f->depth % 8));
      j->objects[f->depth / 8] = c == '{' ? (uint8_t)(j->objects[f->depth / 8] | bit)
                                       : (uint8_t)(j->objects[f->depth / 8] & ~bit);
      f->depth++;
      f->st = c == '{' ? J_FIRST_KEY : J_FIRST_ELEM;
      ++*i;
    } else if (c == ']' && f->st == J_FIRST_ELEM) {
      f->depth--;
      f->st = J_AFTER;
      ++*i;
    } else if (c == '-' || digit(c)) {
      const size_t k = number_end(p, n, *i);
      if (k == *i)
        return false;
      *i = k;
      f->st = J_AFTER;
    } else {
      const size_t k = literal_len(p, *i);
      if (!k)
        return false;
      *i += k;
      f->st = J_AFTER;
    }
  }
  return true;
}

size_t snap__json_fast(json_machine *j, const uint8_t *p, size_t n, size_t i) {
  if (n < MARGIN || j->u8_need)
    return i;
  const size_t stop = n - MARGIN;
  fast_pos f = {j->st, j->depth, j->key};
  while (i < stop) {
    if (f.st == J_STR) {
      const size_t k = snap__json_plain_run(p, n, i);
      if (k < n && p[k] == '"') {
        i = k + 1;
        f.st = f.key ? J_COLON : J_AFTER;
        continue;
      }
      i = k; /* an escape, a control byte, UTF-8 or the end: the byte machine */
      break;
    }
    if (f.st != J_VALUE && f.st != J_FIRST_ELEM && f.st != J_FIRST_KEY && f.st != J_KEY &&
        f.st != J_COLON && f.st != J_AFTER)
      break; /* inside an escape, a number or a literal: the byte machine's */
    while (i < stop && ws(p[i]))
      i++;
    if (i >= stop)
      break;
    const uint8_t c = p[i];
    if (!fast_token(j, &f, p, n, &i, c))
      break;
  }
  j->st = f.st;
  j->depth = f.depth;
  j->key = f.key;
  return i;
}
