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
#define FRAME_V1 1u
#define FRAME_V2 2u                                            /* v1 + an extension block */
#define HDR_LEN 20u                                            /* magic .. original length */
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define AEAD_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES /* 16 */
#define MAC_TAG_LEN 32u                                        /* keyed BLAKE2b-256 */
#define CRC_LEN 4u                                             /* CRC-32 (zlib's) */
#define ST_COMP 0x01u /* compressed: zlib, or the codec field's codec */
#define ST_AEAD 0x02u
#define ST_MAC 0x04u
#define ST_KNOWN (ST_COMP | ST_AEAD | ST_MAC)
/* Deflate cannot expand one compressed byte into more than 1032 bytes. */
#define ZLIB_MAX_RATIO 1032u
/* Nor zstd one byte into more than 32768: its smallest block, a 3-byte
 * header and one RLE byte, yields at most 128 KiB. */
#define ZSTD_MAX_RATIO 32768u

/* ---- the v2 extension block (docs/FORMAT.md, "Frame version 2") ---------- */

/* The block, its own 2 length bytes included, is at most this long: it is
 * part of the header, which AEAD and MAC bind through a stack buffer. */
#define FRAME_EXT_MAX 4096u
#define FIELD_HDR_LEN 3u /* u8 type || u16le(len) */
/* The field types allocated in docs/FORMAT.md. A reader knows a type only
 * once its feature has landed; any other = EFORMAT. A feature adds its type
 * in three places: a row in FIELD_RULES (frame.c: name and value length),
 * its checks against the other fields in check_fields() (frame.c), and the
 * writer's call to snap__frame_fields_add() in set_fields() (body.c), in
 * type order. A parsed body's fields are in frame.field[type]. */
enum {
  FIELD_CODEC = 1,    /* u8: the codec of a compressed body (FRAME_CODEC_*) */
  FIELD_DICT = 2,     /* u32le: the zstd dictionary's id */
  FIELD_ENVELOPE = 3, /* envelope key reference */
  FIELD_MANIFEST = 4, /* manifest, UTF-8 */
  FIELD_METADATA = 5, /* metadata bytes */
  FIELD_CHUNKING = 6, /* chunking of a stream */
  FIELD_TYPES = 7     /* one past the highest allocated type */
};
/* The longest unit an envelope key reference names: the block's room once
 * its length, a codec field (4 bytes) and a dictionary field (7) are in. */
#define SNAP__FIELD_UNIT_MAX (FRAME_EXT_MAX - 2u - 4u - 7u - FIELD_HDR_LEN)

/* Codec field values. zlib is what bit 0 means without a codec field: it is
 * never written as one, so a compressed body has one encoding only. */
#define FRAME_CODEC_ZLIB 1u
#define FRAME_CODEC_ZSTD 2u

/* The whole header: the fixed 20 bytes and the block. */
#define HDR_MAX (HDR_LEN + FRAME_EXT_MAX)
/* Binding block: header || u64le(seq) || u32le(pid_len) || pid. */
#define BIND_MAX (HDR_MAX + 8u + 4u + SNAP_PID_MAX)

/* The SNAP_STAGE_* bits are the frame's stage bits; the frame cannot drift. */
_Static_assert(SNAP_STAGE_COMPRESSED == ST_COMP && SNAP_STAGE_ENCRYPTED == ST_AEAD &&
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

/* One field of a parsed block: its value points into the body. */
typedef struct frame_field {
  bool present;
  uint16_t len;
  const uint8_t *val;
} frame_field;

typedef struct frame {
  snap_format fmt;
  unsigned version; /* FRAME_V1 or FRAME_V2 */
  unsigned stages;
  unsigned codec;   /* FRAME_CODEC_* when ST_COMP is set, else 0 */
  uint32_t dict_id; /* the dictionary field's id, else 0 */
  uint32_t key_version;
  uint64_t orig_len;
  size_t hdr_len;  /* 20, or 20 + the block's length: what AEAD, MAC and CRC cover */
  size_t body_off; /* first byte of the (compressed / encrypted) body */
  size_t body_len;
  size_t trailer_len;             /* AEAD tag, MAC or CRC, right after the body */
  frame_field field[FIELD_TYPES]; /* by type; [0] unused; all absent in v1 */
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

/* The header on its own: magic, version, reserved fields, the v2 block and
 * its fields, flag consistency. `*f` is written on every path, failures
 * included. */
int snap__frame_parse(const where *w, const uint8_t *b, size_t n, frame *f);

/* ---- writing a header ----------------------------------------------------- */

/* The fields a writer emits, serialised as the block they form (length
 * prefix included). No field: a v1 frame. */
typedef struct frame_fields {
  unsigned last_type; /* the highest type added so far (0: none) */
  size_t len;         /* bytes of `block` in use; 0 = no field */
  uint8_t block[FRAME_EXT_MAX];
} frame_fields;

/* Appends a field. Types go in ascending order, each at most once, and the
 * block stays within FRAME_EXT_MAX: anything else is SNAP_EINVAL (a writer's
 * bug, with a message naming the call). */
int snap__frame_fields_add(const where *w, frame_fields *ff, unsigned type, const void *val,
                           size_t len);

/* The header length these fields give: 20 (v1) or 20 + the block (v2). */
size_t snap__frame_header_len(const frame_fields *ff);

/* Writes the header (v1 without fields, else v2 with the block) into `dst`,
 * which holds snap__frame_header_len(ff) bytes. */
void snap__frame_write_header(uint8_t *dst, const frame_fields *ff, snap_format fmt,
                              unsigned stages, uint32_t key_version, uint64_t orig_len);

/* The declared original length against what the frame carries. */
int snap__frame_check_lengths(const where *w, const frame *f);

/* header || u64le(seq) || u32le(pid_len) || pid: what AEAD and MAC bind.
 * `hdr_len` <= HDR_MAX; `dst` holds BIND_MAX bytes; returns the length
 * written. */
size_t snap__frame_binding(uint8_t *dst, const uint8_t *hdr, size_t hdr_len, int64_t seq,
                           const char *pid, size_t pid_len);

/* The MAC trailer: keyed BLAKE2b-256 of binding || body. */
void snap__frame_mac(uint8_t tag[MAC_TAG_LEN], const uint8_t subkey[SNAP__SUBKEY_BYTES],
                     const uint8_t *bind, size_t bind_len, const uint8_t *body, size_t body_len);

#endif
