/*
 * The measurements over the small-state corpus (corpus.h): compression
 * ratio, the pipeline's encode and decode time with zstd + dictionary
 * against zlib-1, and synchronous saves and loads of zstd+dict+enc bodies
 * against raw SQLite storing the uncompressed states.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"

/* ---- encode and decode ----------------------------------------------------- */

/* µs per state over the measured states, the whole corpus once at least. */
static int corpus_encode_us(const corpus_cpu *cc, double *us, char *err, size_t errcap) {
  snap_buf b = SNAP_BUF_INIT;
  long n = 0;
  double t0 = bench_now(), el = 0;
  int rc = SNAP_OK;
  do {
    for (unsigned i = CORPUS_TRAIN; i < CORPUS_N && rc == SNAP_OK; i++, n++)
      rc = snap_body_encode("acc", 1, cc->c->fmt, cc->c->buf + cc->c->off[i], cc->c->len[i],
                            cc->o, &b, NULL);
    el = bench_now() - t0;
  } while (rc == SNAP_OK && el < cc->seconds);
  snap_buf_dispose(&b);
  if (rc != SNAP_OK) {
    snprintf(err, errcap, "snap_body_encode: %s: %s", snap_strerror(rc), snap_error_message());
    return -1;
  }
  *us = el * 1e6 / (double)n;
  return 0;
}

static int corpus_decode_us(const corpus_cpu *cc, double *us, char *err, size_t errcap) {
  snap_buf b = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  uint8_t *bodies = NULL;
  size_t *off = calloc(CORPUS_N + 1, sizeof *off), at = 0;
  int rc = off ? SNAP_OK : SNAP_ENOMEM;
  for (unsigned i = CORPUS_TRAIN; i < CORPUS_N && rc == SNAP_OK; i++) {
    rc = snap_body_encode("acc", 1, cc->c->fmt, cc->c->buf + cc->c->off[i], cc->c->len[i], cc->o,
                          &b, NULL);
    uint8_t *grown = rc == SNAP_OK ? realloc(bodies, at + b.len) : NULL;
    if (rc == SNAP_OK && !grown)
      rc = SNAP_ENOMEM;
    if (rc == SNAP_OK) {
      bodies = grown;
      memcpy(bodies + at, b.data, b.len);
      off[i] = at;
      at += b.len;
      off[i + 1] = at;
    }
  }
  long n = 0;
  double t0 = bench_now(), el = 0;
  while (rc == SNAP_OK && (n == 0 || el < cc->seconds)) {
    for (unsigned i = CORPUS_TRAIN; i < CORPUS_N && rc == SNAP_OK; i++, n++)
      rc = snap_body_decode("acc", 1, bodies + off[i], off[i + 1] - off[i], cc->o, &out, NULL,
                            NULL);
    el = bench_now() - t0;
  }
  snap_buf_dispose(&b);
  snap_buf_dispose(&out);
  free(bodies);
  free(off);
  if (rc != SNAP_OK) {
    snprintf(err, errcap, "corpus decode: %s: %s", snap_strerror(rc), snap_error_message());
    return -1;
  }
  *us = el * 1e6 / (double)n;
  return 0;
}

int corpus_cpu_side(const bench_ctx *bx, void *c, double *us, char *err, size_t errcap) {
  (void)bx;
  corpus_cpu *cc = c;
  return cc->decode ? corpus_decode_us(cc, us, err, errcap) : corpus_encode_us(cc, us, err, errcap);
}
