/* Persistence options: per-field "is set" flags, layered resolution, restriction. */
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "pipeline_internal.h"

/* Generations are process-wide, so no two states of any two options
 * objects ever share one (snap_options_generation()). */
static atomic_uint_least64_t generations;

static void touch(snap_options *o) { o->gen = atomic_fetch_add(&generations, 1) + 1; }

uint64_t snap_options_generation(const snap_options *o) { return o ? o->gen : 0; }

int snap_options_new(snap_options **out) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_options_new: NULL output pointer");
  *out = snap_calloc(1, sizeof **out);
  if (!*out)
    return snap_error_set(SNAP_ENOMEM, "out of memory allocating options");
  touch(*out);
  return SNAP_OK;
}

void snap_options_free(snap_options *o) {
  if (!o)
    return;
  snap_free(o->enc_ctx);
  snap_free(o->mac_ctx);
  snap_free(o->dict_name);
  snap_free(o);
}

/* Copies field values (not the set mask) from `src`, duplicating contexts.
 * `dst` must have no contexts (or dictionary name) of its own. */
static int copy_fields(snap_options *dst, const snap_options *src, unsigned fields) {
  if (fields & SNAP__F_COMPRESSION) {
    dst->comp = src->comp;
    dst->level = src->level;
  }
  if (fields & SNAP__F_COMP_MIN)
    dst->comp_min = src->comp_min;
  if (fields & SNAP__F_ENCRYPTION) {
    dst->enc_kr = src->enc_kr;
    if (src->enc_ctx && !(dst->enc_ctx = snap_strdup(src->enc_ctx)))
      return SNAP_ENOMEM;
  }
  if (fields & SNAP__F_INTEGRITY) {
    dst->mac_kr = src->mac_kr;
    if (src->mac_ctx && !(dst->mac_ctx = snap_strdup(src->mac_ctx)))
      return SNAP_ENOMEM;
  }
  if (fields & SNAP__F_MAX_STORED)
    dst->max_stored = src->max_stored;
  if (fields & SNAP__F_MAX_DECODED)
    dst->max_decoded = src->max_decoded;
  if (fields & SNAP__F_ACCEPT_UNAUTH)
    dst->accept_unauth = src->accept_unauth;
  if (fields & SNAP__F_REQUIRED)
    dst->required = src->required;
  if (fields & SNAP__F_NONCE) {
    dst->nonce_fn = src->nonce_fn;
    dst->nonce_ud = src->nonce_ud;
  }
  if (fields & SNAP__F_KEY_MODE)
    dst->key_mode = src->key_mode;
  if (fields & SNAP__F_DICT) {
    dst->dict_id = src->dict_id;
    if (src->dict_name && !(dst->dict_name = snap_strdup(src->dict_name)))
      return SNAP_ENOMEM;
  }
  if (fields & SNAP__F_DICT_SOURCE) {
    dst->dict_src = src->dict_src;
    dst->dict_ud = src->dict_ud;
  }
  dst->set |= fields;
  return SNAP_OK;
}

int snap_options_copy(snap_options **out, const snap_options *src) {
  if (!out || !src)
    return snap_error_set(SNAP_EINVAL, "snap_options_copy: NULL %s", out ? "source" : "output");
  *out = NULL;
  snap_options *o;
  int rc = snap_options_new(&o);
  if (rc)
    return rc;
  if (copy_fields(o, src, src->set) != SNAP_OK) {
    snap_options_free(o);
    return snap_error_set(SNAP_ENOMEM, "out of memory copying options");
  }
  *out = o;
  return SNAP_OK;
}

int snap__compression_levels(snap_compression alg, int *min, int *max, int *dflt) {
  if (alg == SNAP_COMPRESSION_ZLIB) {
    *min = 0, *max = 9, *dflt = 6;
    return SNAP_OK;
  }
  if (alg == SNAP_COMPRESSION_ZSTD) {
    *min = snap__zstd_level_min(), *max = snap__zstd_level_max(), *dflt = 3;
    return SNAP_OK;
  }
  return SNAP_EINVAL;
}

int snap_options_set_compression(snap_options *o, snap_compression alg, int level) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_compression: NULL options");
  int lo = 0, hi = 9, dflt;
  if (alg != SNAP_COMPRESSION_NONE && snap__compression_levels(alg, &lo, &hi, &dflt) != SNAP_OK)
    return snap_error_set(SNAP_EINVAL, "unknown compression algorithm %d", (int)alg);
  if (level < lo || level > hi)
    return snap_error_set(SNAP_EINVAL, "%scompression level %d is out of range (%d to %d)",
                          alg == SNAP_COMPRESSION_ZSTD ? "zstd " : "", level, lo, hi);
  o->comp = alg;
  o->level = level;
  o->set |= SNAP__F_COMPRESSION;
  touch(o);
  return SNAP_OK;
}

int snap_options_set_dictionary(snap_options *o, uint32_t id, const char *name) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_dictionary: NULL options");
  if (id && name)
    return snap_error_set(SNAP_EINVAL, "a dictionary is chosen by id or by name, not both");
  if (name && (!*name || strlen(name) > 255))
    return snap_error_set(SNAP_EINVAL, "a dictionary name has 1 to 255 bytes");
  char *copy = NULL;
  if (name && !(copy = snap_strdup(name)))
    return snap_error_set(SNAP_ENOMEM, "out of memory copying a dictionary name");
  snap_free(o->dict_name);
  o->dict_name = copy;
  o->dict_id = id;
  o->set |= SNAP__F_DICT;
  touch(o);
  return SNAP_OK;
}

int snap_options_set_dictionary_source(snap_options *o, snap_dict_source fn, void *ud) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_dictionary_source: NULL options");
  o->dict_src = fn;
  o->dict_ud = fn ? ud : NULL;
  if (fn)
    o->set |= SNAP__F_DICT_SOURCE;
  else
    o->set &= ~(unsigned)SNAP__F_DICT_SOURCE;
  touch(o);
  return SNAP_OK;
}

int snap_options_set_compression_min_size(snap_options *o, size_t min_size) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_compression_min_size: NULL options");
  o->comp_min = min_size;
  o->set |= SNAP__F_COMP_MIN;
  touch(o);
  return SNAP_OK;
}

static int set_keyed(snap_options *o, snap_keyring *kr, const char *context, const char *what,
                     snap_keyring **kr_field, char **ctx_field, unsigned flag) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_%s: NULL options", what);
  char *ctx = NULL;
  if (kr) {
    if (!context || !context[0])
      return snap_error_set(SNAP_EINVAL, "%s needs a non-empty context string", what);
    if (!(ctx = snap_strdup(context)))
      return snap_error_set(SNAP_ENOMEM, "out of memory copying the %s context", what);
  }
  snap_free(*ctx_field);
  *ctx_field = ctx;
  *kr_field = kr;
  o->set |= flag;
  touch(o);
  return SNAP_OK;
}

int snap_options_set_encryption(snap_options *o, snap_keyring *kr, const char *context) {
  return set_keyed(o, kr, context, "encryption", o ? &o->enc_kr : NULL, o ? &o->enc_ctx : NULL,
                   SNAP__F_ENCRYPTION);
}

int snap_options_set_integrity(snap_options *o, snap_keyring *kr, const char *context) {
  return set_keyed(o, kr, context, "integrity", o ? &o->mac_kr : NULL, o ? &o->mac_ctx : NULL,
                   SNAP__F_INTEGRITY);
}

int snap_options_set_limits(snap_options *o, size_t max_stored, size_t max_decoded) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_limits: NULL options");
  /* Each limit is its own field: 0 leaves it unset, so a lower layer or the
   * built-in default applies. */
  o->max_stored = max_stored;
  o->max_decoded = max_decoded;
  if (max_stored)
    o->set |= SNAP__F_MAX_STORED;
  else
    o->set &= ~(unsigned)SNAP__F_MAX_STORED;
  if (max_decoded)
    o->set |= SNAP__F_MAX_DECODED;
  else
    o->set &= ~(unsigned)SNAP__F_MAX_DECODED;
  touch(o);
  return SNAP_OK;
}

int snap_options_set_accept_unauthenticated(snap_options *o, bool accept) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_accept_unauthenticated: NULL options");
  o->accept_unauth = accept;
  o->set |= SNAP__F_ACCEPT_UNAUTH;
  touch(o);
  return SNAP_OK;
}

#define SNAP__OPT_ALL (SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION | SNAP_OPT_INTEGRITY)

int snap_options_set_required(snap_options *o, unsigned required) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_required: NULL options");
  if (required & ~SNAP__OPT_ALL)
    return snap_error_set(SNAP_EINVAL, "unknown option groups 0x%x in the required set",
                          required & ~SNAP__OPT_ALL);
  o->required = required;
  o->set |= SNAP__F_REQUIRED;
  touch(o);
  return SNAP_OK;
}

int snap_options_set_nonce_source(snap_options *o, snap_nonce_fn fn, void *ud) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_nonce_source: NULL options");
  o->nonce_fn = fn;
  o->nonce_ud = fn ? ud : NULL;
  if (fn)
    o->set |= SNAP__F_NONCE;
  else
    o->set &= ~(unsigned)SNAP__F_NONCE;
  touch(o);
  return SNAP_OK;
}

int snap_options_set_key_mode(snap_options *o, snap_key_mode mode) {
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_set_key_mode: NULL options");
  if (mode != SNAP_KEYS_DIRECT && mode != SNAP_KEYS_ENVELOPE)
    return snap_error_set(SNAP_EINVAL, "unknown key mode %d", (int)mode);
  o->key_mode = mode;
  o->set |= SNAP__F_KEY_MODE;
  touch(o);
  return SNAP_OK;
}

bool snap__options_envelope(const snap_options *o, snap_keyring **kr, const char **context) {
  if (!o || !(o->set & SNAP__F_ENCRYPTION) || !o->enc_kr || !(o->set & SNAP__F_KEY_MODE) ||
      o->key_mode != SNAP_KEYS_ENVELOPE)
    return false;
  *kr = o->enc_kr;
  *context = o->enc_ctx;
  return true;
}

bool snap__options_encryption(const snap_options *o, snap_keyring **kr, const char **context) {
  if (!o || !(o->set & SNAP__F_ENCRYPTION) || !o->enc_kr)
    return false;
  *kr = o->enc_kr;
  *context = o->enc_ctx;
  return true;
}

int snap_options_resolve(snap_options **out, const snap_options *const *layers, size_t n) {
  if (!out || (!layers && n))
    return snap_error_set(SNAP_EINVAL, "snap_options_resolve: NULL %s", out ? "layers" : "output");
  *out = NULL;
  snap_options *r;
  int rc = snap_options_new(&r);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++) {
    const snap_options *l = layers[i];
    if (!l)
      continue;
    unsigned take = l->set & ~r->set; /* fields no earlier layer set */
    if (take && copy_fields(r, l, take) != SNAP_OK) {
      snap_options_free(r);
      return snap_error_set(SNAP_ENOMEM, "out of memory resolving options");
    }
  }
  *out = r;
  return SNAP_OK;
}

unsigned snap_options_requested(const snap_options *o) {
  if (!o)
    return 0;
  unsigned r = 0;
  if ((o->set & SNAP__F_COMPRESSION) && o->comp != SNAP_COMPRESSION_NONE)
    r |= SNAP_OPT_COMPRESSION;
  if ((o->set & SNAP__F_ENCRYPTION) && o->enc_kr)
    r |= SNAP_OPT_ENCRYPTION;
  if ((o->set & SNAP__F_INTEGRITY) && o->mac_kr)
    r |= SNAP_OPT_INTEGRITY;
  return r;
}

static const char *group_name(unsigned bit) {
  switch (bit) {
  case SNAP_OPT_COMPRESSION:
    return "compression";
  case SNAP_OPT_ENCRYPTION:
    return "encryption";
  case SNAP_OPT_INTEGRITY:
    return "integrity";
  default:
    return "unknown option";
  }
}

int snap_options_restrict(snap_options *o, unsigned supported, unsigned *dropped) {
  if (dropped)
    *dropped = 0;
  if (!o)
    return snap_error_set(SNAP_EINVAL, "snap_options_restrict: NULL options");
  unsigned required = (o->set & SNAP__F_REQUIRED) ? o->required : 0;
  unsigned refused = required & ~supported & SNAP__OPT_ALL;
  if (refused) {
    unsigned bit = refused & (0u - refused); /* lowest: name one group */
    return snap_error_set(SNAP_EUNSUPPORTED, "%s is required but this store cannot provide it",
                          group_name(bit));
  }
  unsigned removed = snap_options_requested(o) & ~supported;
  if (removed & SNAP_OPT_COMPRESSION) {
    o->comp = SNAP_COMPRESSION_NONE;
    o->level = 0;
    o->set |= SNAP__F_COMPRESSION;
    /* and with it its dictionary */
    snap_free(o->dict_name);
    o->dict_name = NULL;
    o->dict_id = 0;
    o->set |= SNAP__F_DICT;
  }
  if (removed & SNAP_OPT_ENCRYPTION) {
    snap_free(o->enc_ctx);
    o->enc_ctx = NULL;
    o->enc_kr = NULL;
    o->set |= SNAP__F_ENCRYPTION;
  }
  if (removed & SNAP_OPT_INTEGRITY) {
    snap_free(o->mac_ctx);
    o->mac_ctx = NULL;
    o->mac_kr = NULL;
    o->set |= SNAP__F_INTEGRITY;
  }
  if (dropped)
    *dropped = removed;
  return SNAP_OK;
}

static void default_nonce(uint8_t *nonce, size_t n, void *ud) {
  (void)ud;
  randombytes_buf(nonce, n);
}

size_t snap__options_max_decoded(const snap_options *o) {
  return o != NULL && (o->set & SNAP__F_MAX_DECODED) ? o->max_decoded : SNAP__DEFAULT_LIMIT;
}

void snap__options_effective(const snap_options *o, snap__eff *e) {
  memset(e, 0, sizeof *e);
  e->comp = SNAP_COMPRESSION_NONE;
  e->max_stored = SNAP__DEFAULT_LIMIT;
  e->max_decoded = SNAP__DEFAULT_LIMIT;
  e->nonce_fn = default_nonce;
  if (!o)
    return;
  if (o->set & SNAP__F_COMPRESSION) {
    e->comp = o->comp;
    e->level = o->level;
  }
  if (o->set & SNAP__F_COMP_MIN)
    e->comp_min = o->comp_min;
  if (o->set & SNAP__F_ENCRYPTION) {
    e->enc_kr = o->enc_kr;
    e->enc_ctx = o->enc_ctx;
  }
  if (o->set & SNAP__F_INTEGRITY) {
    e->mac_kr = o->mac_kr;
    e->mac_ctx = o->mac_ctx;
  }
  if (o->set & SNAP__F_MAX_STORED)
    e->max_stored = o->max_stored;
  if (o->set & SNAP__F_MAX_DECODED)
    e->max_decoded = o->max_decoded;
  if (o->set & SNAP__F_ACCEPT_UNAUTH)
    e->accept_unauth = o->accept_unauth;
  if (o->set & SNAP__F_NONCE) {
    e->nonce_fn = o->nonce_fn;
    e->nonce_ud = o->nonce_ud;
  }
  e->envelope = e->enc_kr && (o->set & SNAP__F_KEY_MODE) && o->key_mode == SNAP_KEYS_ENVELOPE;
  if (o->set & SNAP__F_DICT) {
    e->dict_id = o->dict_id;
    e->dict_name = o->dict_name;
  }
  if (o->set & SNAP__F_DICT_SOURCE) {
    e->dict_src = o->dict_src;
    e->dict_ud = o->dict_ud;
  }
}
