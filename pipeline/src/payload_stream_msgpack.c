/* Incremental msgpack validation: the structural pass of payload.c
 * (every length within the bytes, exactly one value) and msgpack-c's nesting
 * limit, over pieces of any split. */
#include "payload_stream.h"
#include "pipeline_internal.h"

/* ---- msgpack ----------------------------------------------------------------- */

static int mfail(snap_payload_validator *v, uint64_t at, const char *what) {
  v->failed = SNAP_EFORMAT;
  return snap_error_set(SNAP_EFORMAT, "msgpack state: %s at byte offset %llu", what,
                        (unsigned long long)at);
}

/* A value is complete: it counts against its container, which may complete
 * in turn. */
static void m_complete(mp_machine *m) {
  while (m->top) {
    if (--m->owed[m->top - 1])
      return;
    m->top--;
  }
  m->done = true;
}

/* A container of `n` values starts (a map of k pairs owes 2k). msgpack-c
 * refuses any container, even an empty one, once 32 are open. */
static int m_container(snap_payload_validator *v, mp_machine *m, uint64_t n, uint64_t at) {
  if (m->top >= MP_DEPTH_MAX)
    return mfail(v, at, "nested deeper than 32 levels (msgpack-c cannot unpack it)");
  if (n == 0) {
    m_complete(m);
    return SNAP_OK;
  }
  m->owed[m->top++] = n;
  return SNAP_OK;
}

/* The type bytes 0xc0..0xdf: bytes of the length field, fixed payload bytes,
 * kind (0 scalar, 1 bytes, 2 array, 3 map, 4 invalid), as payload.c reads them. */
static const uint8_t MP_LENB[32] = {0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 0, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 2, 4, 2, 4};
static const uint8_t MP_FIXED[32] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 4, 8, 1, 2, 4, 8,
                                     1, 2, 4, 8, 2, 3, 5, 9, 17, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t MP_KIND[32] = {0, 4, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3};

/* A whole header (type byte and length field) in m->hdr. */
static int m_header(snap_payload_validator *v, mp_machine *m, uint64_t at) {
  const uint8_t c = m->hdr[0];
  m->hdr_have = m->hdr_need = 0;
  if (c <= 0x7f || c >= 0xe0) {
    m_complete(m);
    return SNAP_OK;
  }
  if (c <= 0x8f)
    return m_container(v, m, 2u * (c & 0x0fu), at);
  if (c <= 0x9f)
    return m_container(v, m, c & 0x0fu, at);
  if (c <= 0xbf) {
    m->skip = c & 0x1fu;
    m_complete(m);
    return SNAP_OK;
  }
  const unsigned t = c - 0xc0u;
  uint64_t n = 0;
  for (unsigned k = 0; k < MP_LENB[t]; k++)
    n = n << 8 | m->hdr[1 + k];
  switch (MP_KIND[t]) {
  case 2:
    return m_container(v, m, n, at);
  case 3:
    return m_container(v, m, 2 * n, at);
  default:
    m->skip = MP_FIXED[t] + (MP_KIND[t] == 1 ? n : 0);
    m_complete(m);
    return SNAP_OK;
  }
}

int snap__msgpack_push(snap_payload_validator *v, const uint8_t *p, size_t n) {
  mp_machine *m = &v->u.m;
  for (size_t i = 0; i < n;) {
    if (m->skip) {
      const size_t k = m->skip < n - i ? (size_t)m->skip : n - i;
      m->skip -= k;
      i += k;
      continue;
    }
    const uint64_t at = v->total + i;
    if (!m->hdr_need) {
      if (m->done)
        return mfail(v, at, "a second value or trailing bytes");
      const uint8_t c = p[i];
      if (c >= 0xc0 && c <= 0xdf && MP_KIND[c - 0xc0] == 4)
        return mfail(v, at, "invalid type byte");
      m->hdr[0] = c;
      m->hdr_have = 1;
      m->hdr_need = 1 + ((c >= 0xc0 && c <= 0xdf) ? MP_LENB[c - 0xc0] : 0);
      i++;
    } else {
      m->hdr[m->hdr_have++] = p[i++];
    }
    if (m->hdr_have == m->hdr_need) {
      int rc = m_header(v, m, at);
      if (rc)
        return rc;
    }
  }
  return SNAP_OK;
}

int snap__msgpack_finish(snap_payload_validator *v) {
  const mp_machine *m = &v->u.m;
  if (!m->done || m->skip || m->hdr_need)
    return mfail(v, v->total, "truncated, the value is incomplete");
  return SNAP_OK;
}
