/* Payload validation: one well-formed JSON (cJSON) or msgpack (msgpack-c) value. */
#include <cjson/cJSON.h>
#include <msgpack.h>
#include <string.h>

#include "snap/pipeline.h"
#include "pipeline_internal.h"

static bool json_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/*
 * cJSON alone is too lenient for "well-formed" here: it treats every byte <= 32
 * (NUL and control bytes included) as whitespace, accepts a leading BOM and
 * never checks UTF-8. And its require_null_terminated mode wants a NUL *inside*
 * the given length, which a state of exactly `len` bytes has not. So: reject
 * control bytes (which RFC 8259 allows nowhere, not even inside strings) and
 * invalid UTF-8 first, in one pass that skips eight plain ASCII bytes at a time, parse with
 * cJSON_ParseWithLengthOpts() without the NUL requirement (it never reads past `len`), then require
 * that only JSON whitespace follows the value.
 */
static int scan_json_bytes(const uint8_t *p, size_t len) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  size_t i = 0;
  while (i < len) {
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
      /* One UTF-8 sequence: validate at most four bytes from here. */
      size_t n = len - i < 4 ? len - i : 4, bad = 0;
      size_t seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      if (seq > n || !snap__utf8_valid(p + i, seq, &bad))
        return snap_error_set(SNAP_EFORMAT, "JSON state: invalid UTF-8 at byte offset %zu",
                              i + bad);
      i += seq;
    }
  }
  return SNAP_OK;
}

static int validate_json(const uint8_t *p, size_t len) {
  int rc = scan_json_bytes(p, len);
  if (rc)
    return rc;
  if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
    return snap_error_set(SNAP_EFORMAT, "JSON state: starts with a byte order mark");

  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts((const char *)p, len, &end, 0);
  if (!j) {
    size_t off = end ? (size_t)((const uint8_t *)end - p) : 0;
    return snap_error_set(SNAP_EFORMAT, "JSON state: malformed at byte offset %zu", off);
  }
  cJSON_Delete(j);
  size_t off = (size_t)((const uint8_t *)end - p);
  while (off < len && json_ws(p[off]))
    off++;
  if (off != len)
    return snap_error_set(SNAP_EFORMAT,
                          "JSON state: unexpected bytes after the value at byte offset %zu", off);
  return SNAP_OK;
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

static int validate_msgpack(const uint8_t *p, size_t len) {
  int rc = scan_msgpack(p, len);
  if (rc)
    return rc;
  /* msgpack-c has the last word: what it cannot unpack could not be read back. */
  msgpack_unpacked res;
  msgpack_unpacked_init(&res);
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack_next(&res, (const char *)p, len, &off);
  msgpack_unpacked_destroy(&res);
  switch (r) {
  case MSGPACK_UNPACK_SUCCESS:
    if (off != len)
      return snap_error_set(
          SNAP_EFORMAT, "msgpack state: a second value or trailing bytes at byte offset %zu", off);
    return SNAP_OK;
  case MSGPACK_UNPACK_NOMEM_ERROR:
    /* msgpack-c reports nesting beyond its fixed stack (32 levels) this way. */
    return snap_error_set(SNAP_EFORMAT,
                          "msgpack state: msgpack-c cannot unpack it at byte offset %zu "
                          "(nested deeper than 32 levels, or out of memory)",
                          off);
  case MSGPACK_UNPACK_CONTINUE:
    return snap_error_set(SNAP_EFORMAT, "msgpack state: truncated at byte offset %zu", off);
  default:
    return snap_error_set(SNAP_EFORMAT, "msgpack state: malformed at byte offset %zu", off);
  }
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
