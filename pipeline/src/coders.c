/* Each thread's compression contexts, kept for the thread's lifetime and
 * freed when it exits: a libdeflate compressor is a few hundred KiB and a
 * zstd context more, and allocating one per call would cost more than
 * compressing a small state. deflate.c and zstd.c create them on first use.
 * Plain malloc on purpose: this is a per-thread cache, not memory a caller
 * owns, so it stays out of the snapstore allocator's accounting. */
#include <pthread.h>
#include <stdlib.h>

#include <libdeflate.h>
#include <zstd.h>

#include "pipeline_internal.h"

static pthread_key_t coders_key;
static pthread_once_t coders_once = PTHREAD_ONCE_INIT;
static int coders_key_ok;

static void coders_free(void *p) {
  snap__coders *c = p;
  for (int i = 0; i < SNAP__ZLIB_FROM_LEVEL; i++)
    libdeflate_free_compressor(c->deflate[i]);
  libdeflate_free_decompressor(c->inflate);
  ZSTD_freeCCtx(c->zstd_c);
  ZSTD_freeDCtx(c->zstd_d);
  free(c);
}

static void coders_init(void) { coders_key_ok = pthread_key_create(&coders_key, coders_free) == 0; }

snap__coders *snap__thread_coders(void) {
  if (pthread_once(&coders_once, coders_init) != 0 || !coders_key_ok)
    return NULL;
  snap__coders *c = pthread_getspecific(coders_key);
  if (c)
    return c;
  c = calloc(1, sizeof *c);
  if (c && pthread_setspecific(coders_key, c) != 0) {
    free(c);
    c = NULL;
  }
  return c;
}
