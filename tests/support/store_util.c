/* Shared helpers for the store tests. */
/* nftw() is an X/Open interface. */
#define _XOPEN_SOURCE 700
#include "store_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/store.h"

static int mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n >= sizeof buf)
    return -1;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
      buf[i] = c;
    }
  }
  return 0;
}

char *st_tmpdir(void) {
  const char *base = getenv("SNAP_TEST_TMP");
  if (base == NULL || base[0] == '\0')
    base = "/tmp";
  if (mkdirs(base) != 0)
    return NULL;
  char *tpl = st_join(base, "store-XXXXXX");
  if (tpl != NULL && mkdtemp(tpl) == NULL) {
    free(tpl);
    return NULL;
  }
  return tpl;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void st_rmtree(const char *dir) {
  if (dir != NULL)
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *st_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p != NULL)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

bool st_write_not_a_database(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return false;
  for (int i = 0; i < 512; i++)
    fputs("not a database. ", f);
  return fclose(f) == 0;
}

bool st_read_file(const char *path, uint8_t **data, size_t *len) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return errno == ENOENT;
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf != NULL) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  bool ok = buf != NULL && !ferror(f);
  fclose(f);
  if (!ok) {
    free(buf);
    return false;
  }
  *data = buf;
  *len = n;
  return true;
}

bool st_contains(const uint8_t *hay, size_t hay_len, const void *needle, size_t needle_len) {
  if (needle_len == 0)
    return true;
  for (size_t i = 0; i + needle_len <= hay_len; i++)
    if (hay[i] == *(const uint8_t *)needle && memcmp(hay + i, needle, needle_len) == 0)
      return true;
  return false;
}

bool st_latest_is(struct snap_store *st, const char *pid, int64_t seq, int64_t ts,
                  const char *state, char *why, size_t cap) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, pid, NULL, &s);
  bool same = rc == SNAP_OK && s != NULL && s->seq == seq && s->timestamp == ts &&
              s->len == strlen(state) && memcmp(s->data, state, s->len) == 0;
  if (rc != SNAP_OK)
    snprintf(why, cap, "load %s: %s", pid, snap_error_message());
  else if (s == NULL)
    snprintf(why, cap, "load %s: no snapshot", pid);
  else if (!same)
    snprintf(why, cap, "load %s: seq %lld ts %lld '%.*s', expected seq %lld ts %lld '%s'", pid,
             (long long)s->seq, (long long)s->timestamp, (int)(s->len > 200 ? 200 : s->len),
             (const char *)s->data, (long long)seq, (long long)ts, state);
  snap_snapshot_free(s);
  return same;
}
