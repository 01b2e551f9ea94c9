/* Incremental payload validation: snap_payload_validate()'s verdict over a
 * state given in pieces of any split. A state machine per format carries its
 * position between pieces; nothing of the state is buffered (a msgpack
 * length field split across pieces excepted, at most 4 bytes). The verdicts
 * equal the whole-buffer validator's (payload.c); tests/test_stream.c checks
 * that by splitting documents at every offset. */
#include <string.h>

#include "snap/stream.h"
#include "payload_stream.h"
#include "pipeline_internal.h"

int snap_payload_validator_new(snap_payload_validator **out, snap_format fmt) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "payload validator: NULL output");
  *out = NULL;
  if (fmt != SNAP_FORMAT_JSON && fmt != SNAP_FORMAT_MSGPACK)
    return snap_error_set(SNAP_EINVAL, "payload validator: unknown payload format %d", (int)fmt);
  snap_payload_validator *v = snap_calloc(1, sizeof *v);
  if (!v)
    return snap_error_set(SNAP_ENOMEM, "payload validator: out of memory");
  v->fmt = fmt;
  *out = v;
  return SNAP_OK;
}

void snap_payload_validator_free(snap_payload_validator *v) { snap_free(v); }

/* ---- JSON ------------------------------------------------------------------ */

static int jfail(snap_payload_validator *v, uint64_t at, const char *what) {
  v->failed = SNAP_EFORMAT;
  return snap_error_set(SNAP_EFORMAT, "JSON state: %s at byte offset %llu", what,
                        (unsigned long long)at);
}

static bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int hex_digit(uint8_t c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                             : -1;
}

/* Opens a container: '{' (object) or '['. */
static int j_open(snap_payload_validator *v, json_machine *j, uint8_t c, uint64_t at) {
  if (j->depth == JSON_DEPTH_MAX)
    return jfail(v, at, "nested deeper than 512 levels");
  const uint8_t bit = (uint8_t)(1u << (j->depth % 8));
  if (c == '{')
    j->objects[j->depth / 8] |= bit;
  else
    j->objects[j->depth / 8] &= (uint8_t)~bit;
  j->depth++;
  j->st = c == '{' ? J_FIRST_KEY : J_FIRST_ELEM;
  return SNAP_OK;
}

static bool j_in_object(const json_machine *j) {
  return j->depth && (j->objects[(j->depth - 1) / 8] >> ((j->depth - 1) % 8) & 1);
}

/* The first byte of a value. */
static int j_value(snap_payload_validator *v, json_machine *j, uint8_t c, uint64_t at) {
  if (c == '{' || c == '[')
    return j_open(v, j, c, at);
  if (c == '"') {
    j->st = J_STR;
    j->key = false;
    return SNAP_OK;
  }
  if (c == '-' || is_digit(c)) {
    j->st = J_NUM;
    j->num = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
    j->num_len = 1;
    return SNAP_OK;
  }
  j->lit = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : NULL;
  if (!j->lit)
    return jfail(v, at, "unexpected byte");
  j->st = J_LIT;
  j->lit_pos = 1;
  return SNAP_OK;
}

/* A number ends: whether what was read is one. */
static int j_end_number(snap_payload_validator *v, json_machine *j, uint64_t at) {
  if (j->num != N_ZERO && j->num != N_INT && j->num != N_FRAC && j->num != N_EXP)
    return jfail(v, at, "malformed number");
  if (j->num_len > JSON_NUMBER_MAX)
    return jfail(v, at, "number of more than 63 characters");
  j->st = J_AFTER;
  return SNAP_OK;
}

/* One byte inside a number; 1 when it ended the number (not consumed). */
static int j_number(snap_payload_validator *v, json_machine *j, uint8_t c, uint64_t at) {
  nstate n = j->num, next;
  const bool d = is_digit(c);
  switch (n) {
  case N_MINUS:
    next = c == '0' ? N_ZERO : d ? N_INT : (nstate)-1;
    break;
  case N_ZERO:
  case N_INT:
    next = (n == N_INT && d) ? N_INT : c == '.' ? N_DOT : (c == 'e' || c == 'E') ? N_E : (nstate)-1;
    break;
  case N_DOT:
  case N_FRAC:
    next = d ? N_FRAC : (n == N_FRAC && (c == 'e' || c == 'E')) ? N_E : (nstate)-1;
    break;
  case N_E:
    next = (c == '+' || c == '-') ? N_ESIGN : d ? N_EXP : (nstate)-1;
    break;
  default: /* N_ESIGN, N_EXP */
    next = d ? N_EXP : (nstate)-1;
    break;
  }
  if (next == (nstate)-1) {
    int rc = j_end_number(v, j, at);
    return rc ? rc : 1;
  }
  j->num = next;
  j->num_len++;
  return SNAP_OK;
}

/* A byte >= 0x80 inside a string: one step of UTF-8 (RFC 3629, shortest form,
 * no surrogates, nothing above U+10FFFF), as pid.c checks it. */
static int j_utf8(snap_payload_validator *v, json_machine *j, uint8_t c, uint64_t at) {
  if (j->u8_need) {
    if (c < j->u8_lo || c > j->u8_hi)
      return jfail(v, at, "invalid UTF-8");
    j->u8_need--;
    j->u8_lo = 0x80;
    j->u8_hi = 0xBF;
    return SNAP_OK;
  }
  j->u8_lo = 0x80;
  j->u8_hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    j->u8_need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    j->u8_need = 2;
    if (c == 0xE0)
      j->u8_lo = 0xA0;
    else if (c == 0xED)
      j->u8_hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    j->u8_need = 3;
    if (c == 0xF0)
      j->u8_lo = 0x90;
    else if (c == 0xF4)
      j->u8_hi = 0x8F;
  } else {
    return jfail(v, at, "invalid UTF-8");
  }
  return SNAP_OK;
}

/* One byte inside a string or an escape. */
static int j_string(snap_payload_validator *v, json_machine *j, uint8_t c, uint64_t at) {
  switch (j->st) {
  case J_STR:
    if (j->u8_need || c >= 0x80)
      return j_utf8(v, j, c, at);
    if (c < 0x20)
      return jfail(v, at, "control byte inside a string");
    if (c == '\\')
      j->st = J_ESC;
    else if (c == '"')
      j->st = j->key ? J_COLON : J_AFTER;
    return SNAP_OK;
  case J_ESC:
    if (c == 'u') {
      j->st = J_HEX;
      j->hex_left = 4;
      j->hex = 0;
      return SNAP_OK;
    }
    if (!strchr("\"\\/bfnrt", c) || c == 0)
      return jfail(v, at, "invalid escape");
    j->st = J_STR;
    return SNAP_OK;
  case J_LOW_BS:
    if (c != '\\')
      return jfail(v, at, "invalid escape (a high surrogate without a low one)");
    j->st = J_LOW_U;
    return SNAP_OK;
  case J_LOW_U:
    if (c != 'u')
      return jfail(v, at, "invalid escape (a high surrogate without a low one)");
    j->st = J_HEX;
    j->hex_left = 4;
    j->hex = 0;
    return SNAP_OK;
  default: { /* J_HEX */
    const int h = hex_digit(c);
    if (h < 0)
      return jfail(v, at, "invalid escape");
    j->hex = j->hex << 4 | (unsigned)h;
    if (--j->hex_left)
      return SNAP_OK;
    const bool lo = j->hex >= 0xDC00 && j->hex <= 0xDFFF, hi = j->hex >= 0xD800 && j->hex <= 0xDBFF;
    if (j->low ? !lo : lo)
      return jfail(v, at, "invalid escape (a lone surrogate)");
    j->low = !j->low && hi;
    j->st = j->low ? J_LOW_BS : J_STR;
    return SNAP_OK;
  }
  }
}

/* One byte between tokens. */
static int j_between(snap_payload_validator *v, json_machine *j, uint8_t c, uint64_t at) {
  if (is_ws(c))
    return SNAP_OK;
  switch (j->st) {
  case J_VALUE:
    return j_value(v, j, c, at);
  case J_FIRST_ELEM:
    if (c == ']') {
      j->depth--;
      j->st = J_AFTER;
      return SNAP_OK;
    }
    return j_value(v, j, c, at);
  case J_FIRST_KEY:
  case J_KEY:
    if (c == '}' && j->st == J_FIRST_KEY) {
      j->depth--;
      j->st = J_AFTER;
      return SNAP_OK;
    }
    if (c != '"')
      return jfail(v, at, "expected a member name");
    j->st = J_STR;
    j->key = true;
    return SNAP_OK;
  case J_COLON:
    if (c != ':')
      return jfail(v, at, "expected ':'");
    j->st = J_VALUE;
    return SNAP_OK;
  default: /* J_AFTER */
    if (j->depth == 0)
      return jfail(v, at, "unexpected bytes after the value");
    const bool obj = j_in_object(j);
    if (c == ',') {
      j->st = obj ? J_KEY : J_VALUE;
      return SNAP_OK;
    }
    if (c != (obj ? '}' : ']'))
      return jfail(v, at, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    j->depth--;
    return SNAP_OK;
  }
}

static int json_push(snap_payload_validator *v, const uint8_t *p, size_t n) {
  json_machine *j = &v->u.j;
  const uint64_t base = v->total;
  int rc = SNAP_OK;
  for (size_t i = 0; i < n;) {
    if ((i = snap__json_fast(j, p, n, i)) == n)
      break;
    if (j->st == J_STR && !j->u8_need) {
      i = snap__json_plain_run(p, n, i);
      if (i == n)
        break;
    }
    const uint8_t c = p[i];
    const uint64_t at = base + i;
    switch (j->st) {
    case J_STR:
    case J_ESC:
    case J_HEX:
    case J_LOW_BS:
    case J_LOW_U:
      rc = j_string(v, j, c, at);
      break;
    case J_NUM:
      rc = j_number(v, j, c, at);
      if (rc == 1) /* the number ended before c: c is read again, after it */
        continue;
      break;
    case J_LIT:
      if (c != (uint8_t)j->lit[j->lit_pos])
        return jfail(v, at, "unexpected byte in a literal");
      if (j->lit[++j->lit_pos] == 0)
        j->st = J_AFTER;
      break;
    default:
      rc = j_between(v, j, c, at);
      break;
    }
    if (rc)
      return rc;
    i++;
  }
  return SNAP_OK;
}

static int json_finish(snap_payload_validator *v) {
  json_machine *j = &v->u.j;
  if (j->st == J_NUM && j->depth == 0 && j_end_number(v, j, v->total) != SNAP_OK)
    return SNAP_EFORMAT;
  if (j->st == J_AFTER && j->depth == 0)
    return SNAP_OK;
  return jfail(v, v->total, "truncated, the value is incomplete");
}

/* ---- the public calls ---------------------------------------------------------- */

int snap_payload_validator_push(snap_payload_validator *v, const void *data, size_t len) {
  if (!v || (!data && len))
    return snap_error_set(SNAP_EINVAL, "payload validator: NULL %s", v ? "data" : "validator");
  if (v->failed)
    return snap_error_set(v->failed, "payload validator: the state was already refused");
  if (!len)
    return SNAP_OK;
  int rc = v->fmt == SNAP_FORMAT_JSON ? json_push(v, data, len) : snap__msgpack_push(v, data, len);
  v->total += len;
  if (rc)
    v->failed = rc;
  return rc;
}

int snap_payload_validator_finish(snap_payload_validator *v) {
  if (!v)
    return snap_error_set(SNAP_EINVAL, "payload validator: NULL validator");
  if (v->failed)
    return snap_error_set(v->failed, "payload validator: the state was already refused");
  if (v->total == 0)
    return SNAP_OK; /* the empty state */
  if (v->fmt == SNAP_FORMAT_JSON)
    return json_finish(v);
  return snap__msgpack_finish(v);
}
