/* The fast path of JSON validation: whole tokens at a time with the machine's
 * state in locals, one label per state of the grammar between tokens, so a
 * machine-written state costs a few compares per token besides the 16-byte
 * scans of its strings and digit runs. Anything unusual, including every
 * error, goes back to the byte machine (payload_stream.c) at the start of its
 * token or at the unusual byte of a string, so the verdicts are the byte
 * machine's. */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "payload_stream.h"

/* The last MARGIN bytes of a piece are the byte machine's (tokens cut by the
 * end of a piece are its to carry over), and so is a piece shorter than
 * that. Every token the fast path reads is checked against the end of the
 * piece all the same. */
#define MARGIN 64

static inline bool ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline bool digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* The end of the run of decimal digits from p[k] (or n). */
static inline size_t digit_run(const uint8_t *p, size_t n, size_t k) {
#if defined(__SSE2__)
  /* A digit is above '0' - 1 and below '9' + 1 as a signed byte (a byte
   * >= 0x80 is negative). */
  const __m128i below = _mm_set1_epi8('0' - 1), above = _mm_set1_epi8('9' + 1);
  while (n - k >= 16) {
    const __m128i w = _mm_loadu_si128((const __m128i *)(p + k));
    const unsigned m = 0xFFFFu & ~(unsigned)_mm_movemask_epi8(_mm_and_si128(
                                     _mm_cmpgt_epi8(w, below), _mm_cmplt_epi8(w, above)));
    if (m)
      return k + (size_t)__builtin_ctz(m);
    k += 16;
  }
#endif
  while (k < n && digit(p[k]))
    k++;
  return k;
}

/* The end of the number at p[i] ('-' or a digit), or i when the fast path
 * leaves it to the byte machine: malformed, longer than 63 characters, or
 * running to the end of the piece (it may go on in the next one). */
static inline size_t number_end(const uint8_t *p, size_t n, size_t i) {
  size_t k = i + (p[i] == '-');
  if (k >= n)
    return i;
  if (p[k] == '0')
    k++;
  else if (digit(p[k]))
    k = digit_run(p, n, k + 1);
  else
    return i;
  if (k < n && p[k] == '.') {
    if (k + 1 >= n || !digit(p[k + 1]))
      return i;
    k = digit_run(p, n, k + 2);
  }
  if (k < n && (p[k] | 0x20) == 'e') {
    k += k + 1 < n && (p[k + 1] == '+' || p[k + 1] == '-');
    if (k + 1 >= n || !digit(p[k + 1]))
      return i;
    k = digit_run(p, n, k + 2);
  }
  if (k - i > JSON_NUMBER_MAX || k >= n)
    return i;
  return k;
}

/* The length of the literal at p[i] (true, false, null), or 0. */
static inline size_t literal_len(const uint8_t *p, size_t n, size_t i) {
  if (n - i >= 4 && (memcmp(p + i, "true", 4) == 0 || memcmp(p + i, "null", 4) == 0))
    return 4;
  return n - i >= 5 && memcmp(p + i, "false", 5) == 0 ? 5 : 0;
}

/* The length of the valid UTF-8 sequence at p[k] (a byte >= 0x80) when all
 * of it is in the piece, else 0: the rules of the byte machine's j_utf8()
 * (RFC 3629: shortest form, no surrogates, nothing above U+10FFFF). */
static inline size_t utf8_len(const uint8_t *p, size_t n, size_t k) {
  const uint8_t c = p[k];
  uint8_t lo = 0x80, hi = 0xBF;
  size_t len;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80;
    hi = c == 0xED ? 0x9F : 0xBF;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80;
    hi = c == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (n - k < len || p[k + 1] < lo || p[k + 1] > hi)
    return 0;
  for (size_t m = 2; m < len; m++)
    if (p[k + m] < 0x80 || p[k + m] > 0xBF)
      return 0;
  return len;
}

static inline bool hex(uint8_t c) { return digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

/* The length of the escape at p[k] == '\' when all of it is in the piece and
 * valid, else 0. A \u escape of a surrogate (half of a pair) is left to the
 * byte machine. */
static inline size_t escape_len(const uint8_t *p, size_t n, size_t k) {
  if (n - k < 2)
    return 0;
  const uint8_t e = p[k + 1];
  if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't')
    return 2;
  if (e != 'u' || n - k < 6 || !hex(p[k + 2]) || !hex(p[k + 3]) || !hex(p[k + 4]) || !hex(p[k + 5]))
    return 0;
  /* U+D800..U+DFFF: the first digit d or D, the second 8, 9 or a..f. */
  if ((p[k + 2] | 0x20) == 'd' && (!digit(p[k + 3]) || p[k + 3] >= '8'))
    return 0;
  return 6;
}

/* The bytes that end a run of plain string characters, tested 16 at a time:
 * made once per call of the fast path, so the scans of its strings do not
 * build them again. */
typedef struct string_masks {
#if defined(__SSE2__)
  __m128i quote, bslash, space;
#else
  int unused;
#endif
} string_masks;

static inline string_masks string_masks_make(void) {
  string_masks s;
#if defined(__SSE2__)
  s.quote = _mm_set1_epi8('"');
  s.bslash = _mm_set1_epi8('\\');
  s.space = _mm_set1_epi8(0x20);
#else
  s.unused = 0;
#endif
  return s;
}

/* The end of the run of plain string bytes (printable ASCII other than '"'
 * and '\\') from p[k], or n. */
static inline size_t plain_run(const uint8_t *p, size_t n, size_t k, const string_masks *s) {
#if defined(__SSE2__)
  /* Bytes >= 0x80 are negative as signed bytes: one signed compare flags
   * them and the control bytes. */
  while (n - k >= 16) {
    const __m128i w = _mm_loadu_si128((const __m128i *)(p + k));
    const __m128i hit =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, s->quote), _mm_cmpeq_epi8(w, s->bslash)),
                     _mm_cmpgt_epi8(s->space, w));
    const unsigned m = (unsigned)_mm_movemask_epi8(hit);
    if (m)
      return k + (size_t)__builtin_ctz(m);
    k += 16;
  }
#else
  (void)s;
#endif
  while (k < n && p[k] >= 0x20 && p[k] < 0x80 && p[k] != '"' && p[k] != '\\')
    k++;
  return k;
}

size_t snap__json_plain_run(const uint8_t *p, size_t n, size_t i) {
  const string_masks s = string_masks_make();
  return plain_run(p, n, i, &s);
}

/* A string from p[*k] (just past its opening quote): true with *k just past
 * its closing quote, or false with *k at the byte where the byte machine
 * takes over (an escape or UTF-8 sequence not whole in the piece or
 * invalid, a control byte) or at n. */
static inline bool string_end(const uint8_t *p, size_t n, size_t *kp, const string_masks *s) {
  size_t k = *kp;
  for (;;) {
    k = plain_run(p, n, k, s);
    if (k >= n)
      break;
    if (p[k] == '"') {
      *kp = k + 1;
      return true;
    }
    const size_t len = p[k] >= 0x80 ? utf8_len(p, n, k) : p[k] == '\\' ? escape_len(p, n, k) : 0;
    if (!len)
      break;
    k += len;
  }
  *kp = k;
  return false;
}

static inline bool in_object(const json_machine *j, unsigned depth) {
  return depth && (j->objects[(depth - 1) / 8] >> ((depth - 1) % 8) & 1);
}

/* Records the container opened at `depth` as an object or an array. */
static inline void open_container(json_machine *j, unsigned depth, bool obj) {
  const uint8_t bit = (uint8_t)(1u << (depth % 8));
  j->objects[depth / 8] =
      obj ? (uint8_t)(j->objects[depth / 8] | bit) : (uint8_t)(j->objects[depth / 8] & ~bit);
}

/* The end of the number or literal at p[i] (its first byte c), or i when it
 * is the byte machine's. */
static inline size_t scalar_end(const uint8_t *p, size_t n, size_t i, uint8_t c) {
  if (c == '-' || digit(c))
    return number_end(p, n, i);
  return i + literal_len(p, n, i);
}

#define LEAVE(S)                                                                                   \
  do {                                                                                             \
    st = (S);                                                                                      \
    goto out;                                                                                      \
  } while (0)

/* The next byte that is not whitespace, into c; at `stop` the fast path
 * stops in state S. */
#define NEXT(S)                                                                                    \
  do {                                                                                             \
    if (i >= stop)                                                                                 \
      LEAVE(S);                                                                                    \
    c = p[i];                                                                                      \
    if (c <= ' ') {                                                                                \
      while (i < stop && ws(p[i]))                                                                 \
        i++;                                                                                       \
      if (i >= stop)                                                                               \
        LEAVE(S);                                                                                  \
      c = p[i];                                                                                    \
    }                                                                                              \
  } while (0)

/* One state machine: the states below share the machine's state in locals
 * and jump to one another, which is the point of the fast path, so they stay
 * in one function; the token readers above are its helpers. */
size_t snap__json_fast(json_machine *j, const uint8_t *p, size_t n, size_t i) {
  if (j->u8_need || n - i < MARGIN)
    return i;
  const size_t stop = n - MARGIN;
  unsigned depth = j->depth;
  bool obj = in_object(j, depth), key = j->key;
  jstate st = j->st;
  const string_masks sm = string_masks_make();
  size_t k;
  uint8_t c;
  switch (st) {
  case J_VALUE:
    goto value;
  case J_FIRST_ELEM:
    goto first_elem;
  case J_FIRST_KEY:
    goto first_key;
  case J_KEY:
    goto member;
  case J_COLON:
    goto colon;
  case J_AFTER:
    goto after;
  case J_STR:
    if (!string_end(p, n, &i, &sm))
      goto out;
    if (key)
      goto colon;
    goto after;
  default: /* inside an escape, a number or a literal: the byte machine's */
    return i;
  }

first_elem:
  NEXT(J_FIRST_ELEM);
  if (c == ']') {
    i++;
    goto close;
  }
  goto value_c; /* as J_VALUE from here: c is neither ']' nor whitespace */
value:
  NEXT(J_VALUE);
value_c:
  if (c == '"') {
    i++;
    if (string_end(p, n, &i, &sm))
      goto after;
    key = false;
    LEAVE(J_STR);
  }
  if (c == '{' || c == '[') {
    if (depth == JSON_DEPTH_MAX)
      LEAVE(J_VALUE);
    obj = c == '{';
    open_container(j, depth++, obj);
    i++;
    if (obj)
      goto first_key;
    goto first_elem;
  }
  k = scalar_end(p, n, i, c);
  if (k == i)
    LEAVE(J_VALUE);
  i = k;
  goto after;

first_key:
  NEXT(J_FIRST_KEY);
  if (c == '}') {
    i++;
    goto close;
  }
  goto member_c; /* as J_KEY from here: c is neither '}' nor whitespace */
member:
  NEXT(J_KEY);
member_c:
  if (c != '"')
    LEAVE(J_KEY);
  i++;
  if (!string_end(p, n, &i, &sm)) {
    key = true;
    LEAVE(J_STR);
  }
colon:
  NEXT(J_COLON);
  if (c != ':')
    LEAVE(J_COLON);
  i++;
  goto value;

close:
  depth--;
  obj = in_object(j, depth);
after:
  NEXT(J_AFTER);
  if (!depth)
    LEAVE(J_AFTER);
  if (c == ',') {
    i++;
    if (obj)
      goto member;
    goto value;
  }
  if (c != (obj ? '}' : ']'))
    LEAVE(J_AFTER);
  i++;
  goto close;

out:
  j->st = st;
  j->depth = depth;
  j->key = key;
  return i;
}
