/* An upcaster shared by the tests of upcasting and migration (upcast_util.h). */
#include "upcast_util.h"

#include <stdio.h>
#include <string.h>

int st_upcast_wrap(void *ud, const char *from, const char *to, snap_format fmt,
                   const uint8_t *state, size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)from;
  if (ud != NULL)
    (*(int *)ud)++;
  const char *v = strrchr(to, '/');
  char head[32];
  int n = snprintf(head, sizeof head, "{\"v%s\":", v ? v + 1 : "?");
  if (snap_buf_reserve(out, (size_t)n + len + 1) != SNAP_OK)
    return SNAP_ENOMEM;
  memcpy(out->data, head, (size_t)n);
  memcpy(out->data + n, state, len);
  out->data[(size_t)n + len] = '}';
  out->len = (size_t)n + len + 1;
  *out_fmt = fmt;
  return SNAP_OK;
}
