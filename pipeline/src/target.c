/* What a body encoded with given options would carry: the authentication
 * stage and the key version. Operators compare stored headers against it to
 * find the bodies a key rotation has not reached yet. */
#include "pipeline_internal.h"

int snap_options_auth_target(const snap_options *o, unsigned *stage, uint32_t *key_version) {
  if (stage)
    *stage = 0;
  if (key_version)
    *key_version = 0;
  snap__eff e;
  snap__options_effective(o, &e);
  /* Encryption authenticates by itself; a MAC is only added to plaintext. */
  snap_keyring *kr = e.enc_kr ? e.enc_kr : e.mac_kr;
  if (kr == NULL)
    return SNAP_OK;
  uint32_t v = snap_keyring_active(kr);
  if (v == 0)
    return snap_error_set(SNAP_ENOKEY, "the %s keyring is empty",
                          e.enc_kr ? "encryption" : "integrity");
  if (stage)
    *stage = e.enc_kr ? SNAP_STAGE_ENCRYPTED : SNAP_STAGE_MAC;
  if (key_version)
    *key_version = v;
  return SNAP_OK;
}

int snap_options_codec_target(const snap_options *o, snap_compression *codec, uint32_t *dict_id) {
  if (codec)
    *codec = SNAP_COMPRESSION_NONE;
  if (dict_id)
    *dict_id = 0;
  snap__eff e;
  snap__options_effective(o, &e);
  uint32_t id = e.dict_id;
  if (e.comp == SNAP_COMPRESSION_ZSTD && id == 0 && e.dict_name) {
    /* Selected by name: the id is the named dictionary's. */
    snap_dict *d = NULL;
    int rc = e.dict_src ? e.dict_src(e.dict_ud, 0, e.dict_name, &d) : SNAP_ENOTFOUND;
    if (rc != SNAP_OK || d == NULL)
      return snap_error_set(rc != SNAP_OK ? rc : SNAP_ENOTFOUND, "no dictionary named '%.80s'",
                            e.dict_name);
    id = snap_dict_id(d);
    snap_dict_free(d);
  }
  if (codec)
    *codec = e.comp;
  if (dict_id)
    *dict_id = e.comp == SNAP_COMPRESSION_ZSTD ? id : 0;
  return SNAP_OK;
}
