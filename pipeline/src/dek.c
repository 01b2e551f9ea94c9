/* Envelope keys: a unit's random 256-bit data key (DEK), wrapped with
 * XChaCha20-Poly1305 under a key-encryption key derived from the keyring's
 * master key, and bound to the data set, the unit, its generation and the
 * master key version, so that a wrapped key moved to another unit, data set
 * or version never unwraps. The record is docs/FORMAT.md's "Envelope keys"
 * byte by byte; keep the two in step. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "pipeline_internal.h"

/* Record geometry (docs/FORMAT.md, "The wrapped-key record"). */
#define REC_MAGIC "SNPK"
#define REC_VERSION 1u
#define REC_HDR 13u /* magic, version, master version, generation */
#define REC_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define REC_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define AD_MAX (REC_HDR + 4u + SNAP__DATASET_MAX + 4u + SNAP_PID_MAX)

_Static_assert(REC_HDR + REC_NONCE + SNAP_DEK_BYTES + REC_TAG == SNAP_WRAPPED_KEY_BYTES,
               "the wrapped-key record is 85 bytes");

/* Label of the key-encryption key (docs/FORMAT.md, "Key derivation"). */
#define LABEL_WRAP "snapstore/v1/wrap"

/* The record's header: what the record says before anything is checked. */
static int parse_header(const uint8_t *r, size_t n, uint32_t *mv, uint32_t *gen) {
  if (n < 4 || memcmp(r, REC_MAGIC, 4) != 0)
    return snap_error_set(SNAP_EFORMAT,
                          "wrapped key: not a wrapped-key record (%zu bytes, no \"SNPK\" magic)", n);
  if (n != SNAP_WRAPPED_KEY_BYTES)
    return snap_error_set(SNAP_ECORRUPT, "wrapped key: %zu bytes, a record is %u", n,
                          (unsigned)SNAP_WRAPPED_KEY_BYTES);
  if (r[4] != REC_VERSION)
    return snap_error_set(SNAP_EFORMAT,
                          "wrapped key: unknown record version %u at byte offset 4 (this reader "
                          "knows %u)",
                          r[4], REC_VERSION);
  *mv = snap__get_u32le(r + 5);
  *gen = snap__get_u32le(r + 9);
  if (*mv == 0 || *gen == 0)
    return snap_error_set(SNAP_ECORRUPT, "wrapped key: %s 0 at byte offset %d is reserved",
                          *mv == 0 ? "master key version" : "generation", *mv == 0 ? 5 : 9);
  return SNAP_OK;
}

/* header || LP(dataset) || LP(unit): what the wrapping AEAD binds. */
static size_t binding(uint8_t *ad, const uint8_t *hdr, const char *dataset, size_t ds_len,
                      const char *unit, size_t unit_len) {
  memcpy(ad, hdr, REC_HDR);
  snap__put_u32le(ad + REC_HDR, (uint32_t)ds_len);
  memcpy(ad + REC_HDR + 4, dataset, ds_len);
  size_t o = REC_HDR + 4 + ds_len;
  snap__put_u32le(ad + o, (uint32_t)unit_len);
  memcpy(ad + o + 4, unit, unit_len);
  return o + 4 + unit_len;
}

/* The arguments every wrap and unwrap checks. */
static int check_names(const char *what, const snap_keyring *kr, const char *context,
                       const char *dataset, const char *unit, size_t unit_len) {
  if (!kr || !context || !dataset || !unit)
    return snap_error_set(SNAP_EINVAL, "%s: NULL %s", what,
                          !kr        ? "keyring"
                          : !context ? "context"
                          : !dataset ? "data set"
                                     : "unit");
  if (!context[0])
    return snap_error_set(SNAP_EINVAL, "%s: the context is empty", what);
  size_t ds_len = strlen(dataset);
  if (ds_len == 0 || ds_len > SNAP__DATASET_MAX)
    return snap_error_set(SNAP_EINVAL, "%s: data set name of %zu bytes (1 to %u allowed)", what,
                          ds_len, (unsigned)SNAP__DATASET_MAX);
  if (unit_len == 0 || unit_len > SNAP_PID_MAX || memchr(unit, 0, unit_len))
    return snap_error_set(SNAP_EINVAL, "%s: unit of %zu bytes is not a valid unit", what,
                          unit_len);
  if (sodium_init() < 0)
    return snap_error_set(SNAP_ENOMEM, "libsodium failed to initialise");
  return SNAP_OK;
}

void snap__dek_generate(uint8_t dek[SNAP_DEK_BYTES]) { randombytes_buf(dek, SNAP_DEK_BYTES); }

int snap__dek_kek(const snap_keyring *kr, uint32_t version, const char *context,
                  const char *dataset, uint8_t kek[SNAP__SUBKEY_BYTES], uint32_t *used) {
  return snap__keyring_derive(kr, version, LABEL_WRAP, context, dataset, strlen(dataset), kek,
                              used);
}

void snap__dek_wrap_kek(const uint8_t kek[SNAP__SUBKEY_BYTES], uint32_t master_version,
                        const char *dataset, const char *unit, size_t unit_len,
                        uint32_t generation, const uint8_t dek[SNAP_DEK_BYTES],
                        snap_nonce_fn nonce_fn, void *nonce_ud,
                        uint8_t out[SNAP_WRAPPED_KEY_BYTES]) {
  memcpy(out, REC_MAGIC, 4);
  out[4] = REC_VERSION;
  snap__put_u32le(out + 5, master_version);
  snap__put_u32le(out + 9, generation);
  if (nonce_fn)
    nonce_fn(out + REC_HDR, REC_NONCE, nonce_ud);
  else
    randombytes_buf(out + REC_HDR, REC_NONCE);
  uint8_t ad[AD_MAX];
  size_t ad_len = binding(ad, out, dataset, strlen(dataset), unit, unit_len);
  uint8_t *c = out + REC_HDR + REC_NONCE;
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(c, c + SNAP_DEK_BYTES, NULL, dek,
                                                      SNAP_DEK_BYTES, ad, ad_len, NULL,
                                                      out + REC_HDR, kek);
}

int snap__dek_unwrap_kek(const uint8_t kek[SNAP__SUBKEY_BYTES], const char *dataset,
                         const char *unit, size_t unit_len, const uint8_t *rec,
                         uint8_t dek[SNAP_DEK_BYTES]) {
  uint8_t ad[AD_MAX];
  size_t ad_len = binding(ad, rec, dataset, strlen(dataset), unit, unit_len);
  const uint8_t *c = rec + REC_HDR + REC_NONCE;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(dek, NULL, c, SNAP_DEK_BYTES,
                                                          c + SNAP_DEK_BYTES, ad, ad_len,
                                                          rec + REC_HDR, kek) != 0) {
    sodium_memzero(dek, SNAP_DEK_BYTES);
    return snap_error_set(SNAP_EAUTH,
                          "unwrap unit '%.80s': the wrapped data key does not authenticate under "
                          "master key version %u (wrong key or context, another unit or data "
                          "set, or an altered record)",
                          unit, (unsigned)snap__get_u32le(rec + 5));
  }
  return SNAP_OK;
}

int snap__dek_wrap(const snap_keyring *kr, const char *context, const char *dataset,
                   const char *unit, size_t unit_len, uint32_t generation,
                   const uint8_t dek[SNAP_DEK_BYTES], snap_nonce_fn nonce_fn, void *nonce_ud,
                   uint8_t out[SNAP_WRAPPED_KEY_BYTES], uint32_t *master_version) {
  int rc = check_names("wrap", kr, context, dataset, unit, unit_len);
  if (rc != SNAP_OK)
    return rc;
  if (generation == 0)
    return snap_error_set(SNAP_EINVAL, "wrap unit '%.80s': generation 0 is reserved", unit);
  uint8_t kek[SNAP__SUBKEY_BYTES];
  uint32_t mv = 0;
  if (snap__dek_kek(kr, 0, context, dataset, kek, &mv) != SNAP_OK)
    return snap_error_set(SNAP_ENOKEY, "wrap unit '%.80s': the encryption keyring is empty", unit);
  snap__dek_wrap_kek(kek, mv, dataset, unit, unit_len, generation, dek, nonce_fn, nonce_ud, out);
  sodium_memzero(kek, sizeof kek);
  if (master_version)
    *master_version = mv;
  return SNAP_OK;
}

int snap__dek_unwrap(const snap_keyring *kr, const char *context, const char *dataset,
                     const char *unit, size_t unit_len, const uint8_t *rec, size_t rec_len,
                     uint8_t dek[SNAP_DEK_BYTES], uint32_t *generation) {
  int rc = check_names("unwrap", kr, context, dataset, unit, unit_len);
  if (rc != SNAP_OK)
    return rc;
  if (!rec)
    return snap_error_set(SNAP_EINVAL, "unwrap unit '%.80s': NULL record", unit);
  uint32_t mv = 0, gen = 0;
  if ((rc = parse_header(rec, rec_len, &mv, &gen)) != SNAP_OK)
    return snap_error_set(rc, "unit '%.80s': %s", unit, snap_error_message());
  uint8_t kek[SNAP__SUBKEY_BYTES];
  if (snap__dek_kek(kr, mv, context, dataset, kek, NULL) != SNAP_OK)
    return snap_error_set(SNAP_ENOKEY,
                          "unwrap unit '%.80s': its data key is wrapped under master key "
                          "version %u, which is not in the keyring",
                          unit, (unsigned)mv);
  rc = snap__dek_unwrap_kek(kek, dataset, unit, unit_len, rec, dek);
  sodium_memzero(kek, sizeof kek);
  if (rc == SNAP_OK && generation)
    *generation = gen;
  return rc;
}

int snap__dek_record(const uint8_t *rec, size_t len, uint32_t *master_version,
                     uint32_t *generation) {
  return parse_header(rec, len, master_version, generation);
}

int snap_wrapped_key_inspect(const void *record, size_t len, uint32_t *master_version,
                             uint32_t *generation) {
  if (!record)
    return snap_error_set(SNAP_EINVAL, "wrapped key: NULL record");
  uint32_t mv = 0, gen = 0;
  int rc = parse_header(record, len, &mv, &gen);
  if (rc != SNAP_OK)
    return rc;
  if (master_version)
    *master_version = mv;
  if (generation)
    *generation = gen;
  return SNAP_OK;
}

int snap_wrapped_key_verify(const snap_keyring *kr, const char *context, const char *dataset,
                            const char *unit, const void *record, size_t len) {
  uint8_t dek[SNAP_DEK_BYTES];
  int rc = snap__dek_unwrap(kr, context, dataset, unit, unit ? strlen(unit) : 0, record, len, dek,
                            NULL);
  sodium_memzero(dek, sizeof dek);
  return rc;
}
