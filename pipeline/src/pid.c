/* Persistence ids: a small strict UTF-8 validator and snap_pid_check(). */
#include <string.h>

#include "snap/pipeline.h"
#include "pipeline_internal.h"

/* RFC 3629: shortest form only, no UTF-16 surrogates, nothing above U+10FFFF. */
bool snap__utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0)
        lo = 0xA0; /* overlong */
      else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0)
        lo = 0x90; /* overlong */
      else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    } else {
      goto fail; /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (n - i <= need)
      goto fail; /* truncated sequence */
    if (s[i + 1] < lo || s[i + 1] > hi)
      goto fail;
    for (size_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xC0) != 0x80)
        goto fail;
    i += need + 1;
  }
  return true;
fail:
  if (bad)
    *bad = i;
  return false;
}

int snap_pid_check(const char *pid) {
  if (!pid)
    return snap_error_set(SNAP_EINVAL, "persistence id is NULL");
  size_t n = strnlen(pid, SNAP_PID_MAX + 1);
  if (n == 0)
    return snap_error_set(SNAP_EINVAL, "persistence id is empty");
  if (n > SNAP_PID_MAX)
    return snap_error_set(SNAP_EINVAL, "persistence id is longer than %u bytes",
                          (unsigned)SNAP_PID_MAX);
  size_t bad = 0;
  if (!snap__utf8_valid((const uint8_t *)pid, n, &bad))
    return snap_error_set(SNAP_EINVAL, "persistence id is not valid UTF-8 (byte offset %zu)", bad);
  return SNAP_OK;
}
