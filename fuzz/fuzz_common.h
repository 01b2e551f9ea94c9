/*
 * Shared by the fuzz targets: fixed keys, options chosen by a byte of input,
 * a deterministic nonce source and a little input reader. Header-only so that
 * each target stays one translation unit plus the driver.
 */
#ifndef SNAP_FUZZ_COMMON_H
#define SNAP_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap/pipeline.h"

/* A property the target checks failed: report it and abort, which libFuzzer
 * (and the replay driver, through the test's exit status) treats as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, " (last error: %s)\n", snap_error_message());                                \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* The context strings bodies are bound to; the second one must fail auth. */
#define FUZZ_CONTEXT "fuzz/test/snapshots/v1"
#define FUZZ_OTHER_CONTEXT "fuzz/test/snapshots/v2"

/* Option bits of the selector byte. */
#define FUZZ_OPT_ENCRYPT 0x01u  /* encryption with the keyring */
#define FUZZ_OPT_MAC 0x02u      /* integrity (MAC) with the keyring */
#define FUZZ_OPT_ACCEPT 0x04u   /* accept_unauthenticated */
#define FUZZ_OPT_ZLIB 0x08u     /* zlib compression (encode only) */
#define FUZZ_OPT_LIMITS 0x10u   /* small limits: 4 KiB stored and decoded */
#define FUZZ_OPT_OTHERCTX 0x20u /* the other context string */
#define FUZZ_OPT_ACTIVE2 0x40u  /* key version 2 active for writing */
#define FUZZ_LIMIT 4096u

/* Two keyrings holding the same keys (versions 1 and 2), differing only in
 * which one is active, so no test mutates a shared keyring. */
__attribute__((unused)) static snap_keyring *fuzz_kr_active1;
__attribute__((unused)) static snap_keyring *fuzz_kr_active2;

static inline void fuzz_keyrings_init(void) {
  if (fuzz_kr_active1)
    return;
  uint8_t k1[SNAP_KEY_BYTES], k2[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < SNAP_KEY_BYTES; i++) {
    k1[i] = (uint8_t)(0x10 + i);
    k2[i] = (uint8_t)(0xA0 ^ (i * 7));
  }
  int rc = snap_keyring_new(&fuzz_kr_active1);
  rc |= snap_keyring_add(fuzz_kr_active1, 1, k1, sizeof k1);
  rc |= snap_keyring_add(fuzz_kr_active1, 2, k2, sizeof k2);
  rc |= snap_keyring_new(&fuzz_kr_active2);
  rc |= snap_keyring_add(fuzz_kr_active2, 1, k1, sizeof k1);
  rc |= snap_keyring_add(fuzz_kr_active2, 2, k2, sizeof k2);
  rc |= snap_keyring_set_active(fuzz_kr_active2, 2);
  if (rc != SNAP_OK) {
    fprintf(stderr, "fuzz: keyring setup failed: %s\n", snap_error_message());
    abort();
  }
}

/* Counter-based nonces: deterministic bodies, yet distinct per encode. */
static inline void fuzz_nonce(uint8_t *nonce, size_t n, void *ud) {
  uint8_t seed = (uint8_t)(uintptr_t)ud;
  for (size_t i = 0; i < n; i++)
    nonce[i] = (uint8_t)(seed + i * 13);
}

/* Options as the selector byte says; NULL when setup failed (out of memory). */
static inline snap_options *fuzz_options(unsigned sel, uint8_t nonce_seed) {
  snap_options *o = NULL;
  if (snap_options_new(&o) != SNAP_OK)
    return NULL;
  snap_keyring *kr = (sel & FUZZ_OPT_ACTIVE2) ? fuzz_kr_active2 : fuzz_kr_active1;
  const char *ctx = (sel & FUZZ_OPT_OTHERCTX) ? FUZZ_OTHER_CONTEXT : FUZZ_CONTEXT;
  int rc = SNAP_OK;
  if (sel & FUZZ_OPT_ENCRYPT)
    rc |= snap_options_set_encryption(o, kr, ctx);
  if (sel & FUZZ_OPT_MAC)
    rc |= snap_options_set_integrity(o, kr, ctx);
  rc |= snap_options_set_accept_unauthenticated(o, (sel & FUZZ_OPT_ACCEPT) != 0);
  if (sel & FUZZ_OPT_ZLIB) {
    rc |= snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6);
    rc |= snap_options_set_compression_min_size(o, 0);
  }
  if (sel & FUZZ_OPT_LIMITS)
    rc |= snap_options_set_limits(o, FUZZ_LIMIT, FUZZ_LIMIT);
  rc |= snap_options_set_nonce_source(o, fuzz_nonce, (void *)(uintptr_t)nonce_seed);
  if (rc != SNAP_OK) {
    snap_options_free(o);
    return NULL;
  }
  return o;
}

/* A few fixed (pid, seq) pairs a body can be bound to. */
__attribute__((unused)) static const char *const fuzz_pids[] = {"account-42", "p",
                                                                "\xc3\xa9t\xc3\xa9/ledger:7"};
__attribute__((unused)) static const int64_t fuzz_seqs[] = {0, 1, 1200, INT64_MAX};

/* Reads input bytes front to back; past the end it yields zeros. */
typedef struct fuzz_reader {
  const uint8_t *p;
  size_t n;
} fuzz_reader;

static inline uint8_t fuzz_u8(fuzz_reader *r) {
  if (r->n == 0)
    return 0;
  r->n--;
  return *r->p++;
}

static inline uint32_t fuzz_u32(fuzz_reader *r) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++)
    v = (v << 8) | fuzz_u8(r);
  return v;
}

static inline uint64_t fuzz_u64(fuzz_reader *r) {
  uint64_t v = fuzz_u32(r);
  return (v << 32) | fuzz_u32(r);
}

/* The codes a public call may return. */
static inline int fuzz_known_code(int rc) { return rc <= 0 && rc >= SNAP_ENOTFOUND; }

#endif
