/* What the golden vector writers (gen_golden.c, gen_golden_stream.c) share:
 * the fixed test nonce and the options of one stage combination. Never use
 * a fixed nonce outside tests. */
#ifndef SNAP_TOOLS_GOLDEN_H
#define SNAP_TOOLS_GOLDEN_H

#include "snap/pipeline.h"

#define G_CONTEXT "snapstore/golden/v1"

static void fixed_nonce(uint8_t *nonce, size_t n, void *ud) {
  (void)ud;
  for (size_t i = 0; i < n; i++)
    nonce[i] = (uint8_t)(0x80 + i); /* 80 81 .. 97 */
}

/* The dictionary source of the golden vectors: `ud` is the one dictionary. */
static int golden_dict_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  (void)name;
  if (id != snap_dict_id(ud))
    return SNAP_ENOTFOUND;
  *out = snap_dict_ref(ud);
  return SNAP_OK;
}

/* Options for `alg` at `level`, with `dict` when `use_dict`, encryption with
 * `aead` and integrity with `mac` (NULL: off), the fixed nonce. NULL on failure. */
static snap_options *golden_options(snap_compression alg, int level, snap_dict *dict,
                                    bool use_dict, snap_keyring *aead, snap_keyring *mac) {
  snap_options *o;
  if (snap_options_new(&o))
    return NULL;
  if (snap_options_set_compression(o, alg, level) ||
      snap_options_set_dictionary(o, use_dict ? snap_dict_id(dict) : 0, NULL) ||
      snap_options_set_dictionary_source(o, golden_dict_source, dict) ||
      snap_options_set_encryption(o, aead, G_CONTEXT) ||
      snap_options_set_integrity(o, mac, G_CONTEXT) ||
      snap_options_set_nonce_source(o, fixed_nonce, NULL)) {
    snap_options_free(o);
    return NULL;
  }
  return o;
}

#endif
