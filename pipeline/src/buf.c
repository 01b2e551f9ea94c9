/* snap_buf: the caller-owned growable byte buffer. */
#include <string.h>

#include "snap/pipeline.h"

void snap_buf_dispose(snap_buf *b) {
  if (!b)
    return;
  snap_free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

int snap_buf_reserve(snap_buf *b, size_t cap) {
  if (!b)
    return snap_error_set(SNAP_EINVAL, "snap_buf_reserve: NULL buffer");
  if (cap <= b->cap)
    return SNAP_OK;
  if (b->len == 0) {
    /* Nothing to keep: free and allocate rather than realloc, which would copy. */
    snap_free(b->data);
    b->data = NULL;
    b->cap = 0;
    uint8_t *p = snap_malloc(cap);
    if (!p)
      return snap_error_set(SNAP_ENOMEM, "out of memory allocating %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return SNAP_OK;
  }
  uint8_t *p = snap_realloc(b->data, cap);
  if (!p)
    return snap_error_set(SNAP_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
  b->data = p;
  b->cap = cap;
  return SNAP_OK;
}

int snap_buf_set(snap_buf *b, const void *data, size_t len) {
  if (!b || (!data && len))
    return snap_error_set(SNAP_EINVAL, "snap_buf_set: NULL %s", b ? "data" : "buffer");
  if (len == 0) {
    b->len = 0;
    return SNAP_OK;
  }
  /* A source inside the buffer itself never needs growing: len <= b->len. */
  if (b->data && (const uint8_t *)data >= b->data && (const uint8_t *)data < b->data + b->cap) {
    memmove(b->data, data, len);
    b->len = len;
    return SNAP_OK;
  }
  b->len = 0;
  int rc = snap_buf_reserve(b, len);
  if (rc)
    return rc;
  memcpy(b->data, data, len);
  b->len = len;
  return SNAP_OK;
}

uint8_t *snap_buf_detach(snap_buf *b, size_t *len) {
  if (!b) {
    if (len)
      *len = 0;
    return NULL;
  }
  uint8_t *p = b->data;
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}
