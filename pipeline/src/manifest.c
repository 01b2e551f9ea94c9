/* Manifests: the type name and version a body states (frame field 4,
 * docs/FORMAT.md), checked the same way where a caller gives one and where a
 * frame carries one. */
#include <string.h>

#include "snap/pipeline.h"
#include "pipeline_internal.h"

_Static_assert(SNAP_MANIFEST_MAX == 255, "the messages below say 255");

bool snap__manifest_valid(const uint8_t *s, size_t n, const char **why) {
  size_t bad = 0;
  if (n == 0)
    *why = "it is empty";
  else if (n > SNAP_MANIFEST_MAX)
    *why = "it is longer than 255 bytes (SNAP_MANIFEST_MAX)";
  else if (memchr(s, 0, n) != NULL)
    *why = "it holds a NUL byte";
  else if (!snap__utf8_valid(s, n, &bad))
    *why = "it is not valid UTF-8";
  else
    return true;
  return false;
}

int snap_manifest_check(const char *manifest) {
  if (manifest == NULL)
    return snap_error_set(SNAP_EINVAL, "manifest is NULL");
  const char *why = NULL;
  size_t n = strnlen(manifest, SNAP_MANIFEST_MAX + 1);
  if (!snap__manifest_valid((const uint8_t *)manifest, n, &why))
    return snap_error_set(SNAP_EINVAL, "manifest '%.*s': %s", (int)(n > 64 ? 64 : n), manifest,
                          why);
  return SNAP_OK;
}
