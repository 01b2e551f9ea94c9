/* Shared helpers of the streamed-snapshot tests (stream_util.h). */
#include "stream_util.h"

#include "snap/sys/backend.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

char *su_state_of(size_t n, char fill) {
  char *s = malloc(n + 1);
  if (s == NULL)
    return NULL;
  if (n == 1) {
    s[0] = '7';
  } else {
    s[0] = '"';
    for (size_t i = 1; i + 1 < n; i++)
      s[i] = (char)(fill + (char)(i % 7));
    s[n - 1] = '"';
  }
  s[n] = 0;
  return s;
}

int su_stream_save(snap_store *st, const char *pid, int64_t seq, const char *data, size_t n,
                   const snap_options *o, size_t piece, snap_meta *meta) {
  snap_save_stream *w = NULL;
  int rc = snap_save_stream_begin(st, pid, seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, o, NULL,
                                  SU_CHUNK, &w);
  if (rc != SNAP_OK)
    return rc;
  for (size_t at = 0; at < n && rc == SNAP_OK; at += piece)
    rc = snap_save_stream_write(w, data + at, n - at < piece ? n - at : piece);
  if (rc != SNAP_OK) {
    snap_save_stream_abort(w);
    return rc;
  }
  return snap_save_stream_commit(w, meta);
}

int su_stream_load(snap_store *st, const char *pid, const snap_options *o, unsigned flags,
                   char **out, size_t *len, snap_stream_meta *m) {
  snap_load_stream *r = NULL;
  snap_criteria c = SNAP_CRITERIA_LATEST;
  *out = NULL;
  *len = 0;
  int rc = snap_load_stream_open(st, pid, &c, o, flags, &r, m);
  if (rc != SNAP_OK || r == NULL)
    return rc;
  size_t cap = 1024, n = 0, got = 1;
  char *b = malloc(cap + 1);
  while (b != NULL && rc == SNAP_OK && got > 0) {
    if (cap - n < 17) {
      cap *= 2;
      char *nb = realloc(b, cap + 1);
      if (nb == NULL)
        break;
      b = nb;
    }
    rc = snap_load_stream_read(r, b + n, 17, &got); /* odd pieces on purpose */
    n += got;
  }
  snap_load_stream_close(r);
  if (b == NULL)
    return SNAP_ENOMEM;
  b[n] = 0;
  *out = b;
  *len = n;
  return rc;
}

snap_keyring *su_keyring(uint8_t fill) {
  snap_keyring *kr = NULL;
  uint8_t key[32];
  memset(key, fill, sizeof key);
  if (snap_keyring_new(&kr) != SNAP_OK)
    return NULL;
  if (snap_keyring_add(kr, 1, key, sizeof key) != SNAP_OK) {
    snap_keyring_free(kr);
    return NULL;
  }
  return kr;
}

snap_options *su_sealed(snap_keyring *kr) {
  snap_options *o = NULL;
  if (snap_options_new(&o) != SNAP_OK)
    return NULL;
  if (snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1) != SNAP_OK ||
      snap_options_set_encryption(o, kr, "rewrite") != SNAP_OK ||
      snap_options_set_accept_unauthenticated(o, true) != SNAP_OK) {
    snap_options_free(o);
    return NULL;
  }
  return o;
}

snap_options *su_combo(int i, snap_keyring *kr) {
  snap_options *o = NULL;
  if (snap_options_new(&o) != SNAP_OK)
    return NULL;
  int rc = SNAP_OK;
  if (i == 1 || i == 2)
    rc = snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1);
  if (rc == SNAP_OK && i == 2)
    rc = snap_options_set_encryption(o, kr, "streams");
  if (rc == SNAP_OK && i == 3)
    rc = snap_options_set_integrity(o, kr, "streams");
  if (rc != SNAP_OK) {
    snap_options_free(o);
    return NULL;
  }
  return o;
}

/* Peak resident set of this process so far, in KiB (VmHWM; -1: unknown). */
static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

/* The JSON array streamed by su_big_round_trip(): "[" + items + "0]". */
static const char big_item[] =
    "\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\",";

/* Streams the array into `w` in 1 MiB pieces; `*written`, `*crc` of it. */
static int big_save(snap_save_stream *w, const char *buf, size_t body, uint64_t total,
                    uint64_t *written, uLong *crc) {
  int rc = snap_save_stream_write(w, "[", 1);
  *written = 1;
  *crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)"[", 1);
  while (rc == SNAP_OK && *written + body + 2 <= total) {
    rc = snap_save_stream_write(w, buf, body);
    *crc = crc32(*crc, (const Bytef *)buf, (uInt)body);
    *written += body;
  }
  if (rc == SNAP_OK)
    rc = snap_save_stream_write(w, "0]", 2);
  *crc = crc32(*crc, (const Bytef *)"0]", 2);
  *written += 2;
  return rc;
}

/* Reads the latest of `pid` back: its length and CRC-32. */
static int big_load(snap_store *st, const char *pid, const snap_options *o, char *back,
                    size_t piece, uint64_t *read_back, uLong *crc) {
  snap_load_stream *r = NULL;
  int rc = snap_load_stream_open(st, pid, &SNAP_CRITERIA_LATEST, o, 0, &r, NULL);
  *read_back = 0;
  *crc = crc32(0L, Z_NULL, 0);
  size_t got = 1;
  while (rc == SNAP_OK && r != NULL && got > 0) {
    rc = snap_load_stream_read(r, back, piece, &got);
    *crc = crc32(*crc, (const Bytef *)back, (uInt)got);
    *read_back += got;
  }
  snap_load_stream_close(r);
  return rc;
}

int su_big_round_trip(snap_store *st, const char *pid, uint64_t total, uint64_t *written,
                      long *growth_kib, char *why, size_t cap) {
  const size_t piece = (size_t)1 << 20;
  char *buf = malloc(piece), *back = malloc(piece);
  snap_options *o = su_combo(0, NULL);
  int rc = buf && back && o ? SNAP_OK : SNAP_ENOMEM;
  size_t per = piece / (sizeof big_item - 1), body = per * (sizeof big_item - 1);
  for (size_t i = 0; rc == SNAP_OK && i < per; i++)
    memcpy(buf + i * (sizeof big_item - 1), big_item, sizeof big_item - 1);
  /* Warm up the code paths, then take the baseline. */
  if (rc == SNAP_OK)
    rc = su_stream_save(st, "warm", 1, "[1]", 3, o, 3, NULL);
  long base = peak_rss_kib();
  snap_save_stream *w = NULL;
  uLong crc = 0, crc_back = 0;
  uint64_t read_back = 0;
  snap_meta m = {0};
  if (rc == SNAP_OK)
    rc = snap_save_stream_begin(st, pid, 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, o, NULL, 0, &w);
  if (rc == SNAP_OK && (rc = big_save(w, buf, body, total, written, &crc)) != SNAP_OK)
    snap_save_stream_abort(w);
  else if (rc == SNAP_OK)
    rc = snap_save_stream_commit(w, &m);
  if (rc == SNAP_OK)
    rc = big_load(st, pid, o, back, piece, &read_back, &crc_back);
  if (rc != SNAP_OK)
    snprintf(why, cap, "%s", snap_error_message());
  else if (m.state_len != *written || read_back != *written || crc_back != crc)
  {
    rc = SNAP_ECORRUPT;
    snprintf(why, cap, "stored %llu, read back %llu of %llu bytes, CRC-32 %s",
             (unsigned long long)m.state_len, (unsigned long long)read_back,
             (unsigned long long)*written, crc_back == crc ? "equal" : "different");
  }
  *growth_kib = peak_rss_kib() - base;
  free(buf);
  free(back);
  snap_options_free(o);
  return rc;
}

snap_store *su_store(const snap_backend *be, const char *dir, const char *extra) {
  char cfg[4096];
  if (be == snap_backend_sqlite())
    snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\"%s%s}", dir, extra[0] ? ", " : "", extra);
  else
    snprintf(cfg, sizeof cfg, "{%s}", extra);
  snap_store *st = NULL;
  if (snap_store_open_backend(&st, be, cfg) != SNAP_OK)
    fprintf(stderr, "open %s: %s\n", cfg, snap_error_message());
  return st;
}

int su_chunk_files(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/t.db.streams", dir);
  DIR *d = opendir(path);
  if (d == NULL)
    return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    n += de->d_name[0] != '.';
  closedir(d);
  return n;
}
