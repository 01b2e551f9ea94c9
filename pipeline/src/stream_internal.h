/* Internal to streamed states (snap/stream.h): the chunking field of a head,
 * the sealing of chunk records and the streaming codecs, shared by the
 * encoder (stream_encode.c) and the decoder (stream_decode.c).
 * docs/FORMAT.md, "Streamed states", documents every byte; keep them in step. */
#ifndef SNAP_STREAM_INTERNAL_H
#define SNAP_STREAM_INTERNAL_H

#include <sodium.h>

#include "snap/stream.h"
#include "frame.h"

/* ---- the chunking field (type 6) ------------------------------------------ */

#define STREAM_NONCE_LEN 24u /* the stream's nonce: secretstream's header for AEAD */
#define CHUNK_CRC_LEN 4u
#define CHUNK_MAC_LEN 32u
#define CHUNK_AEAD_LEN crypto_secretstream_xchacha20poly1305_ABYTES /* 17 */
/* chunk size u32 || chunk count u64 || stored length u64 || nonce, then the
 * final digest: the last record's MAC (MAC) or CRC (neither); none for AEAD. */
#define CHUNKING_FIXED (4u + 8u + 8u + STREAM_NONCE_LEN)
#define CHUNKING_LEN_AEAD CHUNKING_FIXED
#define CHUNKING_LEN_MAC (CHUNKING_FIXED + CHUNK_MAC_LEN)
#define CHUNKING_LEN_NONE (CHUNKING_FIXED + CHUNK_CRC_LEN)
/* The label the chunks' key is derived under (docs/FORMAT.md). */
#define SNAP__LABEL_STREAM "snapstore/v1/stream"
/* zstd frames of a stream use a window of at most 8 MiB, so a reader's
 * memory stays bounded whatever wrote them. */
#define STREAM_ZSTD_WINDOW_LOG 23

_Static_assert(CHUNK_AEAD_LEN == 17, "secretstream's overhead");
_Static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == STREAM_NONCE_LEN,
               "the stream nonce is secretstream's header");

typedef struct chunking {
  uint32_t chunk_size;
  uint64_t count;
  uint64_t stored; /* payload bytes over all records */
  uint64_t plain;  /* the state's length (the frame's original length) */
  uint8_t nonce[STREAM_NONCE_LEN];
  uint8_t digest[CHUNK_MAC_LEN]; /* the final digest: 32 (MAC) or 4 (neither) bytes */
  size_t digest_len;
  size_t overhead; /* bytes of each record beyond its payload */
} chunking;

/* The overhead of a record sealed with these stage bits. */
size_t snap__chunk_overhead(unsigned stages);
/* The chunking value's length for these stage bits. */
size_t snap__chunking_len(unsigned stages);
/* Reads a parsed frame's chunking field (its length already checked). */
void snap__chunking_read(const frame *f, chunking *c);
/* Serialises `c` as the field's value; returns its length. */
size_t snap__chunking_write(const chunking *c, unsigned stages, uint8_t *dst);
/* The field's value against its stage bits (frame.c, check_fields()). */
int snap__chunking_check_field(const where *w, const frame *f);
/* A head's lengths (frame.c, snap__frame_check_lengths()). */
int snap__chunking_check_lengths(const where *w, const frame *f);

/* Opens a head for (pid, seq) (body_decode.c): the frame checks of a body,
 * field 6 required, the head authenticated; `*f` and `subkey` receive its
 * frame and (keyed) its subkey, which the caller wipes. `dek`: an envelope
 * head's data key, or NULL. Failures as snap_body_decode() reports them. */
int snap__head_open(const char *pid, int64_t seq, const uint8_t *head, size_t len,
                    const snap__eff *e, const uint8_t *dek, frame *f,
                    uint8_t subkey[SNAP__SUBKEY_BYTES]);
/* A keyed reader's failure to read a body it cannot authenticate, as EAUTH
 * (body_decode.c says when). */
int snap__refuse_unverifiable(const snap__eff *e, const uint8_t *b, size_t n, int rc);

/* ---- validation beside the encoder (stream_validate.c) ----------------------- */

/* Pieces of at least this many bytes are validated on the encoder's own
 * thread while the caller encodes and writes them; smaller ones, and every
 * piece on a machine with one core, in the caller. */
#define SNAP__SIDE_MIN ((size_t)128 << 10)

typedef struct snap__side_validator snap__side_validator;

/* Whether a piece of `len` bytes is worth handing to a thread. */
bool snap__side_worthwhile(size_t len);
/* A thread that pushes the pieces posted to it into `v`, or NULL when none
 * can be started (the caller then validates itself). */
snap__side_validator *snap__side_start(snap_payload_validator *v);
/* Hands it `data` (which stays valid and unchanged until the verdict). */
void snap__side_post(snap__side_validator *s, const void *data, size_t len);
/* The posted piece's verdict, its message set in the calling thread; a piece
 * the thread has not begun is validated here instead. */
int snap__side_verdict(snap__side_validator *s);
/* Stops and joins the thread (no piece may be posted). */
void snap__side_free(snap__side_validator *s);

/* ---- sealing chunk records (stream_seal.c) ---------------------------------- */

/* The running state of a stream's seal, in guarded memory. */
typedef struct chunk_seal {
  unsigned kind; /* ST_AEAD, ST_MAC or 0 */
  uint8_t key[32]; /* the stream key (AEAD, MAC) */
  crypto_secretstream_xchacha20poly1305_state ss;
  uint8_t chain[CHUNK_MAC_LEN]; /* the previous record's MAC */
  uint32_t crc_prefix; /* CRC-32 of nonce || u64le(seq) || LP(pid) (neither) */
  uint32_t crc_prev;
} chunk_seal;

/* Starts a seal: `subkey` is the AEAD subkey or data key (AEAD), the MAC
 * subkey (MAC), or NULL (neither). */
void snap__seal_init(chunk_seal *s, unsigned kind, const uint8_t *subkey, const uint8_t *nonce,
                     int64_t seq, const char *pid, size_t pid_len);

/* Seals record `index` of `n` payload bytes at `p` into `rec`
 * (n + overhead bytes; for MAC and neither `rec` may be `p`, the trailer is
 * appended). */
void snap__seal_chunk(chunk_seal *s, uint64_t index, bool last, const uint8_t *p, size_t n,
                      uint8_t *rec);

/* Opens record `index` (`len` bytes) into `p` (len - overhead bytes): 0 when
 * it authenticates (and, for the last one, ends the stream), -1 otherwise. */
int snap__open_chunk(chunk_seal *s, uint64_t index, bool last, const uint8_t *rec, size_t len,
                     uint8_t *p);

/* The final digest after the last record (MAC: 32 bytes, neither: 4). */
size_t snap__seal_digest(const chunk_seal *s, uint8_t out[CHUNK_MAC_LEN]);

/* ---- streaming codecs (stream_codec.c) --------------------------------------- */

typedef struct stream_codec stream_codec;

/* A compressor or decompressor for FRAME_CODEC_ZLIB or FRAME_CODEC_ZSTD
 * (level, dictionary for zstd; NULL dict: none). NULL when out of memory. */
stream_codec *snap__codec_new_compress(unsigned codec, int level, snap_dict *dict);
stream_codec *snap__codec_new_decompress(unsigned codec, snap_dict *dict);
void snap__codec_free(stream_codec *c);

typedef enum codec_result {
  CODEC_OK,   /* progress made (or nothing left to do) */
  CODEC_END,  /* decompressing: the compressed stream ended */
  CODEC_BAD,  /* decompressing: corrupt data */
  CODEC_NOMEM
} codec_result;

/* One step: consumes from *in (advancing it and *in_len) and writes at most
 * `cap` bytes to `out` (`*out_len` set). Compressing: `end` finishes the
 * stream; CODEC_END once everything is out. */
codec_result snap__codec_step(stream_codec *c, const uint8_t **in, size_t *in_len, uint8_t *out,
                              size_t cap, size_t *out_len, bool end);

/* The dictionary `id` (or, when 0, `name`) through the options' source (which
 * the caller checked is set): a reference in `*out`, or ENOTFOUND (or the
 * source's failure) with a message naming it. */
int snap__stream_dict(const where *w, const snap__eff *e, uint32_t id, const char *name,
                      snap_dict **out);

#endif
