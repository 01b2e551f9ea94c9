/* Internal to the pipeline: what the keyring, options and codec share. */
#ifndef SNAP_PIPELINE_INTERNAL_H
#define SNAP_PIPELINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/pipeline.h"

/* ---- little-endian helpers ---------------------------------------------- */

static inline void snap__put_u32le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline void snap__put_u64le(uint8_t *p, uint64_t v) {
  snap__put_u32le(p, (uint32_t)v);
  snap__put_u32le(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t snap__get_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t snap__get_u64le(const uint8_t *p) {
  return (uint64_t)snap__get_u32le(p) | (uint64_t)snap__get_u32le(p + 4) << 32;
}

/* ---- key derivation (keyring.c) ----------------------------------------- */

#define SNAP__SUBKEY_BYTES 32u
/* Domain labels of the two derived subkeys (docs/FORMAT.md, "Key derivation"). */
#define SNAP__LABEL_AEAD "snapstore/v1/aead"
#define SNAP__LABEL_MAC "snapstore/v1/mac"

/*
 * Derives the per-pid subkey for `label` from the master key `version` of the
 * ring (0 = the active one), all under the ring's read lock, so a concurrent
 * rotation never tears a read. `*used` receives the version used.
 * SNAP_ENOKEY when the version is absent (or the ring is empty); no message set.
 */
int snap__keyring_derive(const snap_keyring *kr, uint32_t version, const char *label,
                         const char *context, const char *pid, size_t pid_len,
                         uint8_t subkey[SNAP__SUBKEY_BYTES], uint32_t *used);

/*
 * The same for the i-th key the ring holds (0, 1, ... in the order they were
 * added; keys are never removed, so the order is stable), `*version` set to
 * its version: how a reader tries every key it has. SNAP_ENOKEY once i is
 * past the last key; no message set.
 */
int snap__keyring_derive_nth(const snap_keyring *kr, size_t i, const char *label,
                             const char *context, const char *pid, size_t pid_len,
                             uint8_t subkey[SNAP__SUBKEY_BYTES], uint32_t *version);

/* ---- options (options.c) ------------------------------------------------ */

/* Which fields of an options object were set (one bit each). */
enum {
  SNAP__F_COMPRESSION = 1u << 0, /* algorithm + level */
  SNAP__F_COMP_MIN = 1u << 1,
  SNAP__F_ENCRYPTION = 1u << 2, /* keyring + context (keyring NULL = off) */
  SNAP__F_INTEGRITY = 1u << 3,  /* keyring + context (keyring NULL = off) */
  SNAP__F_MAX_STORED = 1u << 4,
  SNAP__F_MAX_DECODED = 1u << 5,
  SNAP__F_ACCEPT_UNAUTH = 1u << 6,
  SNAP__F_REQUIRED = 1u << 7,
  SNAP__F_NONCE = 1u << 8,
  SNAP__F_KEY_MODE = 1u << 9,
  SNAP__F_DICT = 1u << 10,       /* dictionary id or name */
  SNAP__F_DICT_SOURCE = 1u << 11 /* the dictionary source */
};

struct snap_options {
  uint64_t gen; /* snap_options_generation(): changes with every setter */
  unsigned set; /* SNAP__F_* */
  snap_compression comp;
  int level;
  size_t comp_min;
  snap_keyring *enc_kr;
  char *enc_ctx; /* owned; NULL when enc_kr is NULL */
  snap_keyring *mac_kr;
  char *mac_ctx; /* owned; NULL when mac_kr is NULL */
  size_t max_stored;
  size_t max_decoded;
  bool accept_unauth;
  unsigned required;
  snap_nonce_fn nonce_fn;
  void *nonce_ud;
  snap_key_mode key_mode;
  uint32_t dict_id;
  char *dict_name; /* owned; NULL unless selected by name */
  snap_dict_source dict_src;
  void *dict_ud;
};

/* The built-in limit on stored and decoded sizes when no layer sets one. */
#define SNAP__DEFAULT_LIMIT ((size_t)1 << 30)

/* Effective settings of one call: options with every default filled in. */
typedef struct snap__eff {
  snap_compression comp;
  int level;
  size_t comp_min;
  snap_keyring *enc_kr;
  const char *enc_ctx;
  snap_keyring *mac_kr;
  const char *mac_ctx;
  size_t max_stored;
  size_t max_decoded;
  bool accept_unauth;
  snap_nonce_fn nonce_fn;
  void *nonce_ud;
  bool envelope; /* encryption keyed by the unit's data key (needs a store) */
  uint32_t dict_id;      /* 0 and dict_name NULL: no dictionary */
  const char *dict_name;
  snap_dict_source dict_src;
  void *dict_ud;
} snap__eff;

void snap__options_effective(const snap_options *o, snap__eff *e);

/* ---- UTF-8 (pid.c) ------------------------------------------------------ */

/* Whether `s[0..n)` is valid UTF-8 (no overlongs, surrogates or > U+10FFFF).
 * On failure `*bad` (may be NULL) receives the offset of the first bad byte. */
bool snap__utf8_valid(const uint8_t *s, size_t n, size_t *bad);
/* Whether `n` bytes are a valid manifest (manifest.c); when not, `*why` says why. */
bool snap__manifest_valid(const uint8_t *s, size_t n, const char **why);

/* ---- DEFLATE and CRC-32 (deflate.c) -------------------------------------- */

/* Compression levels 0..9, as zlib numbers them. */
#define SNAP__DEFLATE_LEVELS 10
/* The first level compressed by zlib rather than libdeflate (deflate.c says why). */
#define SNAP__ZLIB_FROM_LEVEL 6

/* ---- the calling thread's compression contexts (coders.c) ----------------- */

struct libdeflate_compressor;
struct libdeflate_decompressor;
struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

/* Created on first use by deflate.c and zstd.c, freed when the thread exits. */
typedef struct snap__coders {
  struct libdeflate_compressor *deflate[SNAP__ZLIB_FROM_LEVEL]; /* by level */
  struct libdeflate_decompressor *inflate;
  struct ZSTD_CCtx_s *zstd_c;
  struct ZSTD_DCtx_s *zstd_d;
} snap__coders;

/* The calling thread's contexts; NULL when out of memory. */
snap__coders *snap__thread_coders(void);

/*
 * Compresses src into dst as one zlib-format (RFC 1950) stream, only if it
 * fits in `cap` bytes. 1: it fits (*out_len set); 0: it does not;
 * SNAP_ENOMEM; SNAP_EINVAL for a level outside 0..9. Thread-safe.
 */
int snap__deflate_fit(const uint8_t *src, size_t slen, uint8_t *dst, size_t cap, int level,
                      size_t *out_len);

typedef enum snap__inflate_result {
  SNAP__INFLATE_OK,       /* a whole stream; *in_used and *out_used say how much */
  SNAP__INFLATE_TOO_LONG, /* it inflates beyond dlen bytes */
  SNAP__INFLATE_BAD,      /* not a valid zlib stream (or its Adler-32 does not match) */
  SNAP__INFLATE_NOMEM
} snap__inflate_result;

/* Inflates the zlib stream at the start of src into at most dlen bytes. */
snap__inflate_result snap__inflate_exact(const uint8_t *src, size_t slen, uint8_t *dst, size_t dlen,
                                         size_t *in_used, size_t *out_used);

/* zlib's allocation hooks (zalloc, zfree), through the snapstore allocator. */
void *snap__zlib_alloc(void *opaque, unsigned items, unsigned size);
void snap__zlib_free(void *opaque, void *p);

/* The CRC-32 of the frame (the same function as zlib's crc32()). */
uint32_t snap__crc32(const void *p, size_t n);

/* ---- zstd (zstd.c) --------------------------------------------------------- */

/* zstd's compression levels: negative (fast) to the maximum; 0 = its default. */
int snap__zstd_level_min(void);
int snap__zstd_level_max(void);

/*
 * Compresses src into dst as one zstd frame (content size written, no
 * checksum), only if it fits in `cap` bytes. 1: it fits (*out_len set);
 * 0: it does not; SNAP_ENOMEM. Thread-safe.
 */
int snap__zstd_fit(const uint8_t *src, size_t slen, uint8_t *dst, size_t cap, int level,
                   size_t *out_len);

typedef enum snap__zstd_result {
  SNAP__ZSTD_OK,
  SNAP__ZSTD_NOT_ONE_FRAME, /* not exactly one zstd frame covering the bytes */
  SNAP__ZSTD_NO_SIZE,       /* the frame does not declare its content size */
  SNAP__ZSTD_WRONG_SIZE,    /* it declares (or yields) another size than expected */
  SNAP__ZSTD_BAD,           /* corrupt data */
  SNAP__ZSTD_NOMEM
} snap__zstd_result;

/* Whether src is exactly one zstd frame declaring `dlen` bytes of content:
 * checked before anything is allocated for them. */
snap__zstd_result snap__zstd_check(const uint8_t *src, size_t slen, size_t dlen);

/* snap__zstd_check(), then decompresses into exactly `dlen` bytes, with the
 * dictionary `dict` (NULL: none). */
snap__zstd_result snap__zstd_decompress(const uint8_t *src, size_t slen, uint8_t *dst,
                                        size_t dlen, const snap_dict *dict);

/* snap__zstd_fit() with a dictionary (dict.c). */
int snap__zstd_fit_dict(const uint8_t *src, size_t slen, uint8_t *dst, size_t cap, int level,
                        snap_dict *d, size_t *out_len);

/* The dictionary's digested form for decompressing (NULL for NULL). */
struct ZSTD_DDict_s;
const struct ZSTD_DDict_s *snap__dict_ddict(const snap_dict *d);

#endif
