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
