/* How the configuration reader names what it refuses: key paths
 * ("options.encryption.keys[1].file"), the first error of a document (which
 * sticks), and the likely typo behind a missing required key. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf_internal.h"
#include "snap/error.h"

/* Keys longer than this are never offered as a typo of a required key. */
#define NEAR_MAX 64

void snap__conf_join(char *dst, size_t cap, const char *prefix, const char *key) {
  int n;
  if (prefix == NULL || prefix[0] == '\0')
    n = snprintf(dst, cap, "%s", key);
  else
    n = snprintf(dst, cap, "%s.%s", prefix, key);
  if (n >= 0 && (size_t)n >= cap && cap > 4)
    memcpy(dst + cap - 4, "...", 4);
}

void snap__conf_join_index(char *dst, size_t cap, const char *path, size_t i) {
  int n = snprintf(dst, cap, "%s[%zu]", path, i);
  if (n >= 0 && (size_t)n >= cap && cap > 4)
    memcpy(dst + cap - 4, "...", 4);
}

const char *snap__conf_shown(const char *path) { return path[0] ? path : "(document)"; }

int snap__conf_error(snap_conf *c, const char *key, const char *fmt, ...) {
  if (c->doc->err != SNAP_OK)
    return c->doc->err; /* the first error's message stands */
  char path[SNAP__CONF_PATH_MAX];
  if (key != NULL)
    snap__conf_join(path, sizeof path, c->path, key);
  else
    snprintf(path, sizeof path, "%s", c->path);
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
    msg[0] = '\0';
  va_end(ap);
  return c->doc->err = snap_error_set(SNAP_ECONFIG, "%s: %s", snap__conf_shown(path), msg);
}

static size_t min3(size_t a, size_t b, size_t c) {
  size_t m = a < b ? a : b;
  return m < c ? m : c;
}

/* Edits (insert, delete, replace, swap of neighbours) from `a` to `b`, both
 * at most NEAR_MAX long: every distance fits a byte, which keeps the table
 * at 4 KiB of the caller's stack. */
static size_t edits(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d[NEAR_MAX + 1][NEAR_MAX + 1];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = (unsigned char)i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = (unsigned char)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t best = min3(d[i - 1][j] + 1u, d[i][j - 1] + 1u, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1u < best)
        best = d[i - 2][j - 2] + 1u;
      d[i][j] = (unsigned char)best;
    }
  return d[la][lb];
}

const snap__jv *snap__conf_near_miss(const snap__jv *obj, const char *key) {
  size_t klen = strlen(key);
  if (klen == 0 || klen > NEAR_MAX)
    return NULL;
  /* One edit in a short key makes another short word, not a typo. */
  size_t limit = klen <= 3 ? 1 : 2;
  const snap__jv *best = NULL;
  size_t best_d = limit + 1;
  for (const snap__jv *m = obj->child; m != NULL; m = m->next) {
    size_t mlen = strlen(m->key);
    if (m->used || mlen > NEAR_MAX || (mlen > klen ? mlen - klen : klen - mlen) > limit)
      continue;
    size_t d = edits(m->key, key);
    if (d < best_d) {
      best = m;
      best_d = d;
    }
  }
  return best;
}
