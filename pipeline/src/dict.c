/* Trained zstd dictionaries (docs/FORMAT.md, "Dictionaries"): an immutable,
 * reference-counted object holding the bytes, the id derived from them, the
 * digested form zstd decompresses with and, per compression level, the one
 * it compresses with (made on first use, the first few levels kept). */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "snap/pipeline.h"
#include "pipeline_internal.h"

#define CDICT_SLOTS 4 /* compression levels kept digested per dictionary */

struct snap_dict {
  atomic_uint refs;
  uint32_t id;
  size_t len;
  uint8_t *bytes;
  ZSTD_DDict *ddict;
  pthread_mutex_t lock; /* guards cdict[] */
  struct {
    ZSTD_CDict *c;
    int level;
  } cdict[CDICT_SLOTS]; /* filled once each, never replaced */
};

int snap_dict_id_of(const void *bytes, size_t len, uint32_t *id) {
  if (!id || (!bytes && len))
    return snap_error_set(SNAP_EINVAL, "snap_dict_id_of: NULL %s", id ? "bytes" : "id");
  if (sodium_init() < 0)
    return snap_error_set(SNAP_ENOMEM, "libsodium failed to initialise");
  uint8_t h[crypto_generichash_BYTES];
  crypto_generichash(h, sizeof h, bytes, len, NULL, 0);
  *id = snap__get_u32le(h);
  return SNAP_OK;
}

int snap_dict_new(snap_dict **out, const void *bytes, size_t len) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_dict_new: NULL output");
  *out = NULL;
  if (!bytes || len < SNAP_DICT_MIN || len > SNAP_DICT_MAX)
    return snap_error_set(SNAP_EINVAL, "a dictionary has %u to %u bytes, not %zu", SNAP_DICT_MIN,
                          SNAP_DICT_MAX, bytes ? len : 0);
  uint32_t id;
  int rc = snap_dict_id_of(bytes, len, &id);
  if (rc)
    return rc;
  if (id == 0)
    return snap_error_set(SNAP_EINVAL, "these dictionary bytes hash to id 0, which names no "
                                       "dictionary: train another");
  snap_dict *d = snap_calloc(1, sizeof *d);
  if (!d || !(d->bytes = snap_malloc(len))) {
    snap_free(d);
    return snap_error_set(SNAP_ENOMEM, "out of memory for a %zu-byte dictionary", len);
  }
  memcpy(d->bytes, bytes, len);
  d->len = len;
  d->id = id;
  atomic_init(&d->refs, 1);
  pthread_mutex_init(&d->lock, NULL);
  if (!(d->ddict = ZSTD_createDDict(d->bytes, len))) {
    snap_dict_free(d);
    return snap_error_set(SNAP_ENOMEM, "out of memory digesting a %zu-byte dictionary", len);
  }
  *out = d;
  return SNAP_OK;
}

snap_dict *snap_dict_ref(snap_dict *d) {
  if (d)
    atomic_fetch_add(&d->refs, 1);
  return d;
}

void snap_dict_free(snap_dict *d) {
  if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
    return;
  for (int i = 0; i < CDICT_SLOTS; i++)
    ZSTD_freeCDict(d->cdict[i].c);
  ZSTD_freeDDict(d->ddict);
  pthread_mutex_destroy(&d->lock);
  sodium_memzero(d->bytes, d->len); /* derived from states */
  snap_free(d->bytes);
  snap_free(d);
}

uint32_t snap_dict_id(const snap_dict *d) { return d ? d->id : 0; }

const void *snap_dict_bytes(const snap_dict *d, size_t *len) {
  if (len)
    *len = d ? d->len : 0;
  return d ? d->bytes : NULL;
}

/* The digested dictionary for compressing at `level`, made on first use and
 * kept in a free slot: a kept one lives as long as `d`. With every slot
 * taken by other levels, a digest of the caller's own (`*own` set), freed
 * after the call. */
static ZSTD_CDict *cdict_for(snap_dict *d, int level, bool *own) {
  *own = false;
  pthread_mutex_lock(&d->lock);
  for (int i = 0; i < CDICT_SLOTS; i++)
    if (d->cdict[i].c && d->cdict[i].level == level) {
      ZSTD_CDict *c = d->cdict[i].c;
      pthread_mutex_unlock(&d->lock);
      return c;
    }
  ZSTD_CDict *c = ZSTD_createCDict(d->bytes, d->len, level);
  *own = c != NULL;
  for (int i = 0; c && i < CDICT_SLOTS; i++)
    if (!d->cdict[i].c) {
      d->cdict[i].c = c;
      d->cdict[i].level = level;
      *own = false;
      break;
    }
  pthread_mutex_unlock(&d->lock);
  return c;
}

int snap__zstd_fit_dict(const uint8_t *src, size_t slen, uint8_t *dst, size_t cap, int level,
                        snap_dict *d, size_t *out_len) {
  snap__coders *z = snap__thread_coders();
  if (!z || (!z->zstd_c && !(z->zstd_c = ZSTD_createCCtx())))
    return SNAP_ENOMEM;
  bool own;
  ZSTD_CDict *cd = cdict_for(d, level, &own);
  if (!cd)
    return SNAP_ENOMEM;
  ZSTD_CCtx *c = z->zstd_c;
  size_t r = ZSTD_CCtx_refCDict(c, cd);
  if (!ZSTD_isError(r))
    r = ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0);
  if (!ZSTD_isError(r) && cap)
    r = ZSTD_compress2(c, dst, cap, src, slen);
  ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters); /* drops the reference */
  if (own)
    ZSTD_freeCDict(cd);
  if (cap == 0 || ZSTD_isError(r))
    return cap && ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? SNAP_ENOMEM : 0;
  *out_len = r;
  return 1;
}

const struct ZSTD_DDict_s *snap__dict_ddict(const snap_dict *d) { return d ? d->ddict : NULL; }
