/* Payload validation: one well-formed JSON (RFC 8259, a subset of what cJSON reads) or
 * msgpack value (every length within the bytes, nesting within msgpack-c's 32 levels). */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h> /* part of every x86-64 CPU */
#endif

#include "snap/pipeline.h"
#include "payload_stream.h"
#include "pipeline_internal.h"

static bool json_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The UTF-8 sequence whose lead byte (>= 0x80) is p[*i]: its length follows
 * from the lead byte, and at most four bytes are validated. On success *i is
 * just past it. */
static int utf8_sequence(const uint8_t *p, size_t len, size_t *i) {
  uint8_t c = p[*i];
  size_t n = len - *i < 4 ? len - *i : 4, bad = 0;
  size_t seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  if (seq > n || !snap__utf8_valid(p + *i, seq, &bad))
    return snap_error_set(SNAP_EFORMAT, "JSON state: invalid UTF-8 at byte offset %zu", *i + bad);
  *i += seq;
  return SNAP_OK;
}

/*
 * The byte rules of a JSON state: RFC 8259 allows control bytes nowhere
 * outside whitespace, and the text must be valid UTF-8 (cJSON checks
 * neither). json_structure() enforces both on the way (a byte >= 0x80 or a
 * control byte can only be valid inside a string or as whitespace), so a
 * valid state is read once. This scan runs only when that pass refused a
 * state: it finds the first byte-level fault anywhere in the text, which is
 * what the refusal names, exactly as when it ran before the grammar. One pass
 * that skips sixteen or eight plain ASCII bytes at a time.
 */
static int scan_json_bytes(const uint8_t *p, size_t len) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  size_t i = 0;
#if defined(__SSE2__)
  /* Sixteen at a time: a signed compare with 0x20 flags both the bytes below
   * 0x20 and those >= 0x80 (negative as signed bytes). */
  const __m128i space = _mm_set1_epi8(0x20);
#endif
  while (i < len) {
#if defined(__SSE2__)
    if (len - i >= 16) {
      unsigned m = (unsigned)_mm_movemask_epi8(
          _mm_cmplt_epi8(_mm_loadu_si128((const __m128i *)(p + i)), space));
      if (!m) {
        i += 16;
        continue;
      }
      i += (size_t)__builtin_ctz(m); /* straight to the first byte to look at */
    }
#endif
    /* Fast path: eight printable ASCII bytes (none >= 0x80, none < 0x20). */
    if (len - i >= 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (!((w | ((w - 0x20 * ones) & ~w)) & highs)) {
        i += 8;
        continue;
      }
    }
    uint8_t c = p[i];
    if (c >= 0x20 && c < 0x80) {
      i++;
    } else if (c < 0x20) {
      if (!json_ws(c))
        return snap_error_set(SNAP_EFORMAT, "JSON state: control byte 0x%02x at byte offset %zu", c,
                              i);
      i++;
    } else {
      int rc = utf8_sequence(p, len, &i);
      if (rc)
        return rc;
    }
  }
  return SNAP_OK;
}

/*
 * JSON grammar (RFC 8259), checked without building a tree. cJSON's parser
 * allocates a node per value and a copy of every string, which made
 * validation cost 30-50 us for a 4 KiB state: most of a plain save's CPU
 * time. This pass allocates nothing and accepts a strict subset of what
 * cJSON_ParseWithLengthOpts() accepts, so every state it admits is readable
 * by snap_snapshot_to_json(); the tests and the payload fuzz target check that
 * against cJSON itself. Where cJSON is more lenient (numbers such as "01",
 * "1." or "+1", raw tabs or newlines inside strings) this pass refuses, as
 * RFC 8259 does; where cJSON has limits (numbers of 64 characters or more,
 * lone UTF-16 surrogates in \u escapes) this pass refuses too.
 */
#define JSON_MAX_DEPTH 512
#define JSON_MAX_NUMBER 63 /* cJSON reads at most 63 characters of a number */

/* Hot: called around every value and member name. Whitespace is rare in
 * machine-written states, so one compare decides the common case. */
#define HOT static inline __attribute__((always_inline))

HOT size_t json_skip_ws(const uint8_t *p, size_t len, size_t i) {
  if (__builtin_expect(i < len && p[i] > ' ', 1))
    return i;
  while (i < len && json_ws(p[i]))
    i++;
  return i;
}

static int json_hex4(const uint8_t *p, size_t len, size_t i, unsigned *out) {
  if (len - i < 4)
    return -1;
  unsigned v = 0;
  for (size_t k = 0; k < 4; k++) {
    uint8_t c = p[i + k];
    unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                        : 16u;
    if (d == 16u)
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

/*
 * The offset of the first byte of p[k..len) that ends a run of plain ASCII
 * string characters ('"', '\\', a control byte or a byte >= 0x80), or len. Eight bytes at a time:
 * in a word w, (x - 0x01..) & ~x & 0x80.. flags the bytes of x that are zero
 * and (w - 0x20..) & ~w & 0x80.. those below 0x20; both may also flag bytes
 * above the first true one (a borrow), never below it, so the lowest flag is
 * exact; a byte >= 0x80 is flagged by its own high bit (json_string()
 * checks its UTF-8 sequence). Half the cost of validating a ledger state was
 * this scan, a byte at a time.
 */
HOT size_t string_run_end(const uint8_t *p, size_t len, size_t k) {
#if defined(__SSE2__)
  /* Sixteen at a time where SSE2 is there (every x86-64): most member names
   * and values of a state fit in one step. Bytes >= 0x80 are negative as
   * signed bytes, so one signed compare with 0x20 flags both them and the
   * control bytes. */
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (len - k >= 16) {
    __m128i w = _mm_loadu_si128((const __m128i *)(p + k));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bslash)),
                               _mm_cmplt_epi8(w, space));
    unsigned m = (unsigned)_mm_movemask_epi8(hit);
    if (m)
      return k + (size_t)__builtin_ctz(m);
    k += 16;
  }
#endif
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  while (len - k >= 8) {
    uint64_t w;
    memcpy(&w, p + k, 8);
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
    hit &= highs;
    if (hit) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return k + (size_t)(__builtin_ctzll(hit) >> 3);
#else
      break; /* the byte loop below finds it */
#endif
    }
    k += 8;
  }
  while (k < len && p[k] != '"' && p[k] != '\\' && p[k] >= 0x20 && p[k] < 0x80)
    k++;
  return k;
}

/* A string starting at p[*i] == '"'; on success *i is just past the closing quote.
 * Its bytes >= 0x80 are checked here, one UTF-8 sequence at a time, with the
 * same lengths and the same check as scan_json_bytes(). */
HOT int json_string(const uint8_t *p, size_t len, size_t *i) {
  size_t k = *i + 1;
  for (;;) {
    k = string_run_end(p, len, k);
    if (k >= len)
      return snap_error_set(SNAP_EFORMAT, "JSON state: unterminated string at byte offset %zu", *i);
    uint8_t c = p[k];
    if (c == '"') {
      *i = k + 1;
      return SNAP_OK;
    }
    if (c < 0x20)
      return snap_error_set(SNAP_EFORMAT,
                            "JSON state: raw control byte 0x%02x inside a string at byte "
                            "offset %zu",
                            c, k);
    if (c >= 0x80) {
      int rc = utf8_sequence(p, len, &k);
      if (rc)
        return rc;
      continue;
    }
    /* An escape. */
    if (k + 1 >= len)
      goto bad_escape;
    switch (p[k + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      k += 2;
      break;
    case 'u': {
      unsigned u;
      if (json_hex4(p, len, k + 2, &u))
        goto bad_escape;
      if (u >= 0xDC00 && u <= 0xDFFF)
        goto bad_escape; /* a low surrogate first */
      if (u >= 0xD800 && u <= 0xDBFF) {
        unsigned lo;
        if (k + 7 >= len || p[k + 6] != '\\' || p[k + 7] != 'u' || json_hex4(p, len, k + 8, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
          goto bad_escape; /* a high surrogate must be followed by a low one */
        k += 12;
      } else {
        k += 6;
      }
      break;
    }
    default:
      goto bad_escape;
    }
  }
bad_escape:
  return snap_error_set(SNAP_EFORMAT, "JSON state: invalid escape at byte offset %zu", k);
}

static bool json_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/*
 * The offset of the first byte of p[k..len) that is not a decimal digit, or
 * len. Eight bytes at a time: a byte is a digit when its high nibble is 3 and
 * adding 6 leaves it 3 (0x30..0x39). The add can carry into the next byte
 * only out of a byte >= 0xFA, itself a non-digit, so the lowest flagged byte
 * is exact. States hold long digit runs (millisecond timestamps, amounts).
 */
HOT size_t digit_run_end(const uint8_t *p, size_t len, size_t k) {
#if defined(__SSE2__)
  /* Sixteen at a time where SSE2 is there: a digit is above '0' - 1 and
   * below '9' + 1 as a signed byte (a byte >= 0x80 is negative). */
  const __m128i below = _mm_set1_epi8('0' - 1), above = _mm_set1_epi8('9' + 1);
  while (len - k >= 16) {
    __m128i w = _mm_loadu_si128((const __m128i *)(p + k));
    unsigned m = 0xFFFFu & ~(unsigned)_mm_movemask_epi8(
                               _mm_and_si128(_mm_cmpgt_epi8(w, below), _mm_cmplt_epi8(w, above)));
    if (m)
      return k + (size_t)__builtin_ctz(m);
    k += 16;
  }
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  while (len - k >= 8) {
    uint64_t w;
    memcpy(&w, p + k, 8);
    uint64_t bad = ((w & (ones * 0xF0)) ^ (ones * 0x30)) |
                   (((w + ones * 0x06) & (ones * 0xF0)) ^ (ones * 0x30));
    /* A flag in the high bit of every byte of `bad` that is not zero. */
    bad = (((bad & ~highs) + ~highs) | bad) & highs;
    if (bad)
      return k + (size_t)(__builtin_ctzll(bad) >> 3);
    k += 8;
  }
#endif
  while (k < len && json_digit(p[k]))
    k++;
  return k;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(const uint8_t *p, size_t len, size_t *i) {
  size_t k = *i;
  if (k < len && p[k] == '-')
    k++;
  if (k < len && p[k] == '0') {
    k++;
  } else if (k < len && json_digit(p[k])) {
    k = digit_run_end(p, len, k);
  } else {
    goto bad;
  }
  if (k < len && p[k] == '.') {
    k++;
    if (k >= len || !json_digit(p[k]))
      goto bad;
    k = digit_run_end(p, len, k);
  }
  if (k < len && (p[k] == 'e' || p[k] == 'E')) {
    k++;
    if (k < len && (p[k] == '+' || p[k] == '-'))
      k++;
    if (k >= len || !json_digit(p[k]))
      goto bad;
    while (k < len && json_digit(p[k]))
      k++;
  }
  if (k - *i > JSON_MAX_NUMBER)
    return snap_error_set(SNAP_EFORMAT,
                          "JSON state: number of %zu characters at byte offset %zu (at most %d)",
                          k - *i, *i, JSON_MAX_NUMBER);
  *i = k;
  return SNAP_OK;
bad:
  return snap_error_set(SNAP_EFORMAT, "JSON state: malformed number at byte offset %zu", *i);
}

static int json_literal(const uint8_t *p, size_t len, size_t *i) {
  static const char *const words[] = {"true", "false", "null"};
  for (size_t w = 0; w < 3; w++) {
    size_t n = strlen(words[w]);
    if (len - *i >= n && memcmp(p + *i, words[w], n) == 0) {
      *i += n;
      return SNAP_OK;
    }
  }
  return snap_error_set(SNAP_EFORMAT, "JSON state: unexpected byte '%c' at byte offset %zu", p[*i],
                        *i);
}

/* Expects `"key" ws :` at p[*i] (after whitespace). Machine-written states
 * have no whitespace there, so the expected byte is tried first. */
HOT int json_member_key(const uint8_t *p, size_t len, size_t *i) {
  size_t k = *i;
  if (k >= len || p[k] != '"') {
    k = json_skip_ws(p, len, k);
    if (k >= len || p[k] != '"')
      return snap_error_set(SNAP_EFORMAT, "JSON state: expected a member name at byte offset %zu",
                            k);
  }
  int rc = json_string(p, len, &k);
  if (rc)
    return rc;
  if (k >= len || p[k] != ':') {
    k = json_skip_ws(p, len, k);
    if (k >= len || p[k] != ':')
      return snap_error_set(SNAP_EFORMAT, "JSON state: expected ':' at byte offset %zu", k);
  }
  *i = k + 1;
  return SNAP_OK;
}

static int json_structure(const uint8_t *p, size_t len) {
  uint8_t stack[JSON_MAX_DEPTH]; /* '{' or '[' per open container */
  size_t depth = 0, i = 0;
  int rc;
  for (;;) {
    /* A value starts here. */
    i = json_skip_ws(p, len, i);
    if (i >= len)
      return snap_error_set(SNAP_EFORMAT,
                            "JSON state: truncated, a value is missing at byte "
                            "offset %zu",
                            i);
    uint8_t c = p[i];
    if (c == '"') { /* the most common value first */
      if ((rc = json_string(p, len, &i)))
        return rc;
    } else if (c == '{' || c == '[') {
      if (depth == JSON_MAX_DEPTH)
        return snap_error_set(SNAP_EFORMAT,
                              "JSON state: nested deeper than %d levels at byte offset %zu",
                              JSON_MAX_DEPTH, i);
      stack[depth++] = c;
      i = json_skip_ws(p, len, i + 1);
      if (i < len && p[i] == (c == '{' ? '}' : ']')) {
        depth--;
        i++; /* an empty container is a complete value */
      } else {
        if (c == '{' && (rc = json_member_key(p, len, &i)))
          return rc;
        continue;
      }
    } else if (c == '-' || json_digit(c)) {
      if ((rc = json_number(p, len, &i)))
        return rc;
    } else if ((rc = json_literal(p, len, &i))) {
      return rc;
    }
    /* After a complete value: close containers or move to the next element. */
    for (;;) {
      i = json_skip_ws(p, len, i);
      if (depth == 0) {
        if (i != len)
          return snap_error_set(
              SNAP_EFORMAT, "JSON state: unexpected bytes after the value at byte offset %zu", i);
        return SNAP_OK;
      }
      uint8_t open = stack[depth - 1], next = i < len ? p[i] : 0; /* 0: neither below */
      if (next == ',') {
        i++;
        if (open == '{' && (rc = json_member_key(p, len, &i)))
          return rc;
        break; /* the next element's value */
      }
      if (next == (open == '{' ? '}' : ']')) {
        depth--;
        i++;
        continue;
      }
      return snap_error_set(SNAP_EFORMAT, "JSON state: expected ',' or '%c' at byte offset %zu",
                            open == '{' ? '}' : ']', i);
    }
  }
}

/* One pass when the state is valid (json_structure() checks the bytes too).
 * A refusal is named as the two passes named it: the first byte-level fault
 * anywhere, else a byte order mark, else the grammar's own fault. */
static int validate_json(const uint8_t *p, size_t len) {
  int rc = json_structure(p, len);
  if (rc == SNAP_OK)
    return SNAP_OK;
  int brc = scan_json_bytes(p, len);
  if (brc)
    return brc;
  if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
    return snap_error_set(SNAP_EFORMAT, "JSON state: starts with a byte order mark");
  return rc;
}

static uint64_t be(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

enum { MP_SCALAR, MP_BYTES, MP_ARRAY, MP_MAP, MP_INVALID };

/* The type bytes 0xc0..0xdf: bytes of the big-endian length field after the
 * type byte, payload bytes of fixed size (an ext's type byte included), kind. */
static const struct mp_type {
  uint8_t lenb, fixed, kind;
} MP_TYPES[32] = {
    [0x00] = {0, 0, MP_SCALAR},  /* c0 nil */
    [0x01] = {0, 0, MP_INVALID}, /* c1 never used */
    [0x02] = {0, 0, MP_SCALAR},  /* c2 false */
    [0x03] = {0, 0, MP_SCALAR},  /* c3 true */
    [0x04] = {1, 0, MP_BYTES},   /* c4 bin8 */
    [0x05] = {2, 0, MP_BYTES},   /* c5 bin16 */
    [0x06] = {4, 0, MP_BYTES},   /* c6 bin32 */
    [0x07] = {1, 1, MP_BYTES},   /* c7 ext8: length, type, data */
    [0x08] = {2, 1, MP_BYTES},   /* c8 ext16 */
    [0x09] = {4, 1, MP_BYTES},   /* c9 ext32 */
    [0x0a] = {0, 4, MP_SCALAR},  /* ca float32 */
    [0x0b] = {0, 8, MP_SCALAR},  /* cb float64 */
    [0x0c] = {0, 1, MP_SCALAR},  /* cc uint8 */
    [0x0d] = {0, 2, MP_SCALAR},  /* cd uint16 */
    [0x0e] = {0, 4, MP_SCALAR},  /* ce uint32 */
    [0x0f] = {0, 8, MP_SCALAR},  /* cf uint64 */
    [0x10] = {0, 1, MP_SCALAR},  /* d0 int8 */
    [0x11] = {0, 2, MP_SCALAR},  /* d1 int16 */
    [0x12] = {0, 4, MP_SCALAR},  /* d2 int32 */
    [0x13] = {0, 8, MP_SCALAR},  /* d3 int64 */
    [0x14] = {0, 2, MP_SCALAR},  /* d4 fixext1: type, data */
    [0x15] = {0, 3, MP_SCALAR},  /* d5 fixext2 */
    [0x16] = {0, 5, MP_SCALAR},  /* d6 fixext4 */
    [0x17] = {0, 9, MP_SCALAR},  /* d7 fixext8 */
    [0x18] = {0, 17, MP_SCALAR}, /* d8 fixext16 */
    [0x19] = {1, 0, MP_BYTES},   /* d9 str8 */
    [0x1a] = {2, 0, MP_BYTES},   /* da str16 */
    [0x1b] = {4, 0, MP_BYTES},   /* db str32 */
    [0x1c] = {2, 0, MP_ARRAY},   /* dc array16 */
    [0x1d] = {4, 0, MP_ARRAY},   /* dd array32 */
    [0x1e] = {2, 0, MP_MAP},     /* de map16 */
    [0x1f] = {4, 0, MP_MAP},     /* df map32 */
};

/*
 * A structural pass over msgpack before msgpack-c sees it: every length must
 * fit in the bytes that are there and exactly one value must cover them all.
 * It allocates nothing and needs no stack (it counts the values still owed),
 * and it keeps msgpack-c from reserving memory for a container that claims
 * billions of elements in five bytes.
 */
static int scan_msgpack(const uint8_t *p, size_t len) {
  uint64_t pending = 1; /* values still to read */
  size_t i = 0;
  while (pending) {
    if (i >= len)
      goto truncated;
    uint8_t c = p[i];
    pending--;
    if (c <= 0x7f || c >= 0xe0) { /* positive / negative fixint */
      i++;
    } else if (c <= 0x8f) { /* fixmap */
      pending += 2u * (c & 0x0f);
      i++;
    } else if (c <= 0x9f) { /* fixarray */
      pending += c & 0x0f;
      i++;
    } else if (c <= 0xbf) { /* fixstr */
      if ((size_t)(c & 0x1f) > len - i - 1)
        goto truncated;
      i += 1 + (c & 0x1f);
    } else {
      const struct mp_type *t = &MP_TYPES[c - 0xc0];
      if (t->kind == MP_INVALID)
        return snap_error_set(SNAP_EFORMAT,
                              "msgpack state: invalid type byte 0x%02x at byte offset %zu", c, i);
      if (len - i - 1 < t->lenb)
        goto truncated;
      uint64_t n = be(p + i + 1, t->lenb);
      i += 1 + t->lenb;
      uint64_t payload = t->fixed + (t->kind == MP_BYTES ? n : 0);
      if (payload > len - i)
        goto truncated;
      i += (size_t)payload;
      if (t->kind == MP_ARRAY)
        pending += n;
      else if (t->kind == MP_MAP)
        pending += 2 * n;
    }
    if (pending > len - i) /* every value owed needs at least one byte */
      goto truncated;
  }
  if (i != len)
    return snap_error_set(SNAP_EFORMAT,
                          "msgpack state: a second value or trailing bytes at byte offset %zu", i);
  return SNAP_OK;
truncated:
  return snap_error_set(SNAP_EFORMAT,
                        "msgpack state: truncated (%zu bytes, the value at byte offset %zu runs "
                        "past the end)",
                        len, i);
}

/* The structural pass, then the nesting limit by the incremental
 * validator's machine over the whole buffer: the rule of a streamed save,
 * so a state is valid or not whichever way it arrives. Nothing here
 * allocates: msgpack-c's unpack, which once had the last word, builds the
 * whole tree (24 bytes per value) and so refused large valid states when
 * memory ran short, a verdict that depended on the machine. */
static int validate_msgpack(const uint8_t *p, size_t len) {
  int rc = scan_msgpack(p, len);
  if (rc)
    return rc;
  snap_payload_validator v;
  memset(&v, 0, sizeof v);
  v.fmt = SNAP_FORMAT_MSGPACK;
  rc = snap__msgpack_push(&v, p, len);
  return rc ? rc : snap__msgpack_finish(&v);
}

int snap_payload_validate(snap_format fmt, const void *state, size_t len) {
  if (!state && len)
    return snap_error_set(SNAP_EINVAL, "state is NULL but its length is %zu", len);
  if (fmt != SNAP_FORMAT_JSON && fmt != SNAP_FORMAT_MSGPACK)
    return snap_error_set(SNAP_EINVAL, "unknown payload format %d", (int)fmt);
  if (len == 0)
    return SNAP_OK; /* the empty state: valid in both formats, see the header */
  return fmt == SNAP_FORMAT_JSON ? validate_json(state, len) : validate_msgpack(state, len);
}
