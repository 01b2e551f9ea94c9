/* Internal to the body codec: the frame of docs/FORMAT.md, shared by the
 * encoder (body.c), the decoder (body_decode.c) and the header parser
 * (frame.c). Keep it and the document in step. */
#ifndef SNAP_FRAME_H
#define SNAP_FRAME_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/pipeline.h"
#include "pipeline_internal.h"

/* ---- frame constants (docs/FORMAT.md) ------------------------------------ */

#define FRAME_MAGIC "SNPB" /* 4 bytes at offset 0, no NUL */
#define FRAME_MAGIC_LEN 4u
#define FRAME_VERSION 1u
#define HDR_LEN 20u                                            /* magic .. original length */
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define AEAD_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES /* 16 */
#define MAC_TAG_LEN 32u                                        /* keyed BLAKE2b-256 */
#define CRC_LEN 4u                                             /* CRC-32 (zlib's) */
#define ST_ZLIB 0x01u
#define ST_AEAD 0x02u
#define ST_MAC 0x04u
#define ST_KNOWN (ST_ZLIB | ST_AEAD | ST_MAC)
/* Deflate cannot expand one compressed byte into more than 1032 bytes. */
#define ZLIB_MAX_RATIO 1032u
/* Binding block: header || u64le(seq) || u32le(pid_len) || pid. */
#define BIND_MAX (HDR_LEN + 8u + 4u + SNAP_PID_MAX)

/* The SNAP_STAGE_* bits are the frame's stage bits; the frame cannot drift. */
_Static_assert(SNAP_STAGE_COMPRESSED == ST_ZLIB && SNAP_STAGE_ENCRYPTED == ST_AEAD &&
                   SNAP_STAGE_MAC == ST_MAC,
               "stage bits are stored in the frame");
_Static_assert(NONCE_LEN == 24 && AEAD_TAG_LEN == 16, "XChaCha20-Poly1305 sizes");

/* ---- error messages that name the call ----------------------------------- */

typedef struct where {
  const char *op; /* "encode", "decode", "inspect" */
  const char *pid;
  int64_t seq;
} where;

/* Sets the error `code` with a message naming the call (and its pid and seq,
 * when there is one); returns `code`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int snap__frame_fail(const where *w, int code, const char *fmt, ...);

/* The checks every encode and decode call makes on its arguments (a NULL pid
 * clears w->pid, so the message does not name it), and libsodium's
 * initialisation. */
int snap__body_check_call(where *w, const char *pid, bool pid_checked, int64_t seq, snap_buf *out);

/* ---- the frame ------------------------------------------------------------ */

typedef struct frame {
  snap_format fmt;
  unsigned stages;
  uint32_t key_version;
  uint64_t orig_len;
  size_t body_off; /* first byte of the (compressed / encrypted) body */
  size_t body_len;
  size_t trailer_len; /* AEAD tag, MAC or CRC, right after the body */
} frame;

/* A keyed kind (ST_AEAD or ST_MAC): the keyring and context the options
 * give it, the label its subkeys are derived under, and its name in messages. */
static inline snap_keyring *frame_keyring(const snap__eff *e, unsigned kind) {
  return kind == ST_AEAD ? e->enc_kr : e->mac_kr;
}
static inline const char *frame_context(const snap__eff *e, unsigned kind) {
  return kind == ST_AEAD ? e->enc_ctx : e->mac_ctx;
}
static inline const char *frame_label(unsigned kind) {
  return kind == ST_AEAD ? SNAP__LABEL_AEAD : SNAP__LABEL_MAC;
}
static inline const char *frame_kind_name(unsigned kind) {
  return kind == ST_AEAD ? "encrypted" : "MAC'd";
}

/* The trailer length of a frame with these stage bits. */
size_t snap__frame_trailer_len(unsigned stages);

/* The header on its own: magic, version, reserved fields, flag consistency.
 * `*f` is written on every path, failures included. */
int snap__frame_parse(const where *w, const uint8_t *b, size_t n, frame *f);

/* The declared original length against what the frame carries. */
int snap__frame_check_lengths(const where *w, const frame *f);

/* header || u64le(seq) || u32le(pid_len) || pid: what AEAD and MAC bind.
 * `dst` holds BIND_MAX bytes; returns the length written. */
size_t snap__frame_binding(uint8_t *dst, const uint8_t *hdr, int64_t seq, const char *pid,
                           size_t pid_len);

/* The MAC trailer: keyed BLAKE2b-256 of binding || body. */
void snap__frame_mac(uint8_t tag[MAC_TAG_LEN], const uint8_t subkey[SNAP__SUBKEY_BYTES],
                     const uint8_t *bind, size_t bind_len, const uint8_t *body, size_t body_len);

#endif
