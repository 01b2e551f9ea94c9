/**
 * @file snap/stream.h
 * @brief Streamed states: a state of any size as a sequence of sealed chunk
 * records plus one small head body, encoded and decoded in memory bounded by
 * the chunk size.
 *
 * A streamed state is stored as
 *  - chunk records 0, 1, ... n-1: the state, validated incrementally,
 *    compressed as one continuous zlib stream or zstd frame (when configured),
 *    cut into pieces of the chunk size and each piece sealed: with
 *    libsodium's secretstream (AEAD, the last one tagged FINAL), with a keyed
 *    BLAKE2b MAC chained over the index and the previous MAC (MAC), or with a
 *    CRC-32 chained the same way (neither);
 *  - the head: a version 2 body frame with the chunking field (type 6) and
 *    an empty body, which states the chunk size, the chunk count, the lengths
 *    and what binds the chunks to it, and is itself authenticated (AEAD tag,
 *    MAC or CRC-32) like any body.
 * docs/FORMAT.md ("Streamed states") documents the head and the records byte
 * by byte. Small states keep their ordinary bodies (snap_body_encode()).
 *
 * A decoder hands out no byte of a chunk before that chunk is authenticated;
 * truncation, reordering, dropping, duplicating and swapping chunks (within a
 * stream, between streams, pids or sequence numbers) are detected. A failure
 * found after bytes were handed out is still an error: the caller discards
 * what it read.
 */
#ifndef SNAP_STREAM_H
#define SNAP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The chunk size used when 0 is given: 1 MiB of payload per record. */
#define SNAP_STREAM_CHUNK_DEFAULT ((size_t)1 << 20)
/** The smallest and largest chunk sizes (payload bytes per record). */
#define SNAP_STREAM_CHUNK_MIN ((size_t)1)
#define SNAP_STREAM_CHUNK_MAX ((size_t)64 << 20)
/** A record's length beyond its payload: secretstream's 17 bytes (AEAD), a
 *  32-byte MAC, or a 4-byte CRC-32 (neither). */
#define SNAP_STREAM_OVERHEAD_MAX 32u

/** What a stream head states (read without keys, see snap_body_inspect_stream()). */
typedef struct snap_stream_info {
  bool chunked;          /**< the body is a stream head (all below are 0 otherwise) */
  snap_format fmt;       /**< the state's payload format */
  unsigned stages;       /**< SNAP_STAGE_* bits of the chunks */
  uint32_t chunk_size;   /**< payload bytes of every record but the last */
  uint64_t chunk_count;  /**< records of the stream (0 for the empty state) */
  uint64_t plain_len;    /**< the state's length in bytes */
  uint64_t stored_len;   /**< payload bytes over all records (the compressed stream) */
  uint64_t records_len;  /**< bytes of all records, their overheads included */
  size_t record_overhead; /**< bytes of each record beyond its payload */
} snap_stream_info;

/**
 * Whether a body is a stream head, and what it states. For an ordinary body
 * `info->chunked` is false and SNAP_OK is returned; a header that does not
 * parse gives the errors of snap_body_inspect(). Read without keys: the head
 * is authenticated only when a decoder opens it.
 */
SNAP_API int snap_body_inspect_stream(const void *body, size_t body_len, snap_stream_info *info);

/**
 * The length of record `index` of a stream whose head states `info`
 * (payload and overhead). 0 when `index` is past the last record.
 */
SNAP_API size_t snap_stream_record_len(const snap_stream_info *info, uint64_t index);

/* ------------------------------------------------------------------------ */
/* Encoder                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct snap_stream_encoder snap_stream_encoder;

/**
 * Receives each sealed chunk record, in order (index 0, 1, ...). The bytes
 * are valid during the call only. A non-zero return (a SNAP_E* code, ideally
 * with a message set) stops the stream: the encoder fails with that code.
 */
typedef int (*snap_chunk_sink)(void *ud, uint64_t index, const void *record, size_t len);

/**
 * Starts a stream bound to (pid, seq) in format `fmt`, with the options `o`
 * (may be NULL): compression (zlib or zstd, with a dictionary; kept whatever
 * the ratio, since a stream cannot go back), encryption (direct mode) or
 * integrity, the nonce source. The size limits of `o` do not apply: a stream
 * exists to exceed them. `chunk_size` is the payload bytes per record (0:
 * SNAP_STREAM_CHUNK_DEFAULT; SNAP_STREAM_CHUNK_MIN..MAX). `sink` receives the
 * records. Errors: SNAP_EINVAL (arguments, envelope key mode, a required
 * option group not configured), SNAP_ENOKEY (empty keyring), SNAP_ENOTFOUND
 * (dictionary), SNAP_ENOMEM. Free with snap_stream_encoder_free().
 */
SNAP_API int snap_stream_encoder_new(snap_stream_encoder **out, const char *pid, int64_t seq,
                                     snap_format fmt, const snap_options *o, size_t chunk_size,
                                     snap_chunk_sink sink, void *ud);

/**
 * Consumes `len` bytes of the state (any split of it: one call or many).
 * Validates them incrementally and emits every chunk record that is complete
 * (the last one is held back until finish). Memory stays bounded by the chunk
 * size whatever `len` is. A call of at least 128 KiB on a machine with more
 * than one core is validated on a thread of the encoder's own while this one
 * encodes it, so records of a piece that is then refused may already have
 * reached the sink; the call still returns only with the piece's verdict, and
 * a refused piece fails the encoder, so no head ever states those records.
 * The verdict and its message do not depend on how the state was split.
 * Errors: SNAP_EFORMAT (the payload is malformed),
 * the sink's code, SNAP_ENOMEM, SNAP_EINVAL (after a failure or finish: an
 * encoder that failed stays failed).
 */
SNAP_API int snap_stream_encoder_write(snap_stream_encoder *e, const void *data, size_t len);

/**
 * Ends the stream: checks that the payload is one complete value
 * (SNAP_EFORMAT otherwise), emits the last record and writes the head body
 * into `head` (replacing its content). `*stages` (may be NULL) receives the
 * SNAP_STAGE_* bits. A 0-byte state has no records and no compression.
 * The encoder must still be freed.
 */
SNAP_API int snap_stream_encoder_finish(snap_stream_encoder *e, snap_buf *head, unsigned *stages);

/** Bytes of state consumed so far and records emitted so far (either may be NULL). */
SNAP_API void snap_stream_encoder_progress(const snap_stream_encoder *e, uint64_t *plain,
                                           uint64_t *records);

/** Frees the encoder, wiping its keys and buffers; before finish this
 *  abandons the stream (the records already emitted are the caller's to
 *  discard). NULL is a no-op. */
SNAP_API void snap_stream_encoder_free(snap_stream_encoder *e);

/* ------------------------------------------------------------------------ */
/* Decoder                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct snap_stream_decoder snap_stream_decoder;

/**
 * Opens a stream from its head body for (pid, seq) with the keys of `o` (may
 * be NULL; its accept_unauthenticated switch applies as for bodies). The head
 * is authenticated here. `max_plain` caps the state's declared length (0: no
 * cap): a larger one is SNAP_ETOOBIG once the head authenticates.
 * Errors as snap_body_decode() for the head (SNAP_EFORMAT, SNAP_ECORRUPT,
 * SNAP_EAUTH, SNAP_ENOKEY, SNAP_ETOOBIG, SNAP_ENOTFOUND for a dictionary);
 * SNAP_EINVAL when the body is not a stream head. `info` (may be NULL)
 * receives what the head states.
 */
SNAP_API int snap_stream_decoder_open(snap_stream_decoder **out, const char *pid, int64_t seq,
                                      const void *head, size_t head_len, const snap_options *o,
                                      uint64_t max_plain, snap_stream_info *info);

/**
 * Feeds the next record (index 0, 1, ... in order). It is authenticated
 * whole before any of its bytes can be read. Allowed when the plaintext of
 * the previous record was read up to snap_stream_decoder_read() returning 0
 * bytes (SNAP_EINVAL otherwise, and the decoder stays usable). Errors:
 * SNAP_EAUTH (keyed stream: a record altered, reordered, dropped, duplicated,
 * from another stream, or pushed past the last), SNAP_ECORRUPT (the same for an
 * unauthenticated stream). A failure is sticky: every later call returns it.
 */
SNAP_API int snap_stream_decoder_push(snap_stream_decoder *d, const void *record, size_t len);

/**
 * Reads plaintext of the records pushed so far into `buf` (at most `cap`
 * bytes; `*got` receives the count). `*got` = 0 means: push the next record,
 * or, after the last one, call finish. Decompression happens here, bounded by
 * `cap`; output beyond the declared length fails (SNAP_EAUTH / SNAP_ECORRUPT
 * as for push). A failure is sticky.
 */
SNAP_API int snap_stream_decoder_read(snap_stream_decoder *d, void *buf, size_t cap, size_t *got);

/**
 * Checks that every record was pushed and read and that the plaintext has
 * exactly the declared length (a truncated stream fails here:
 * SNAP_EAUTH / SNAP_ECORRUPT). Returns the sticky failure if there was one.
 */
SNAP_API int snap_stream_decoder_finish(snap_stream_decoder *d);

/** Frees the decoder, wiping its keys and buffers. NULL is a no-op. */
SNAP_API void snap_stream_decoder_free(snap_stream_decoder *d);

/* ------------------------------------------------------------------------ */
/* Incremental payload validation                                            */
/* ------------------------------------------------------------------------ */

/**
 * snap_payload_validate() over a state given in pieces: the verdict of
 * push()es of any split followed by finish() equals that of
 * snap_payload_validate() over the whole (the empty state included), in
 * memory of a few hundred bytes.
 */
typedef struct snap_payload_validator snap_payload_validator;

/** A validator for `fmt`. SNAP_EINVAL (unknown format), SNAP_ENOMEM. */
SNAP_API int snap_payload_validator_new(snap_payload_validator **out, snap_format fmt);
/** The next piece. SNAP_EFORMAT (with the byte offset in the whole) as soon
 *  as the bytes so far cannot begin a valid state; sticky. */
SNAP_API int snap_payload_validator_push(snap_payload_validator *v, const void *data, size_t len);
/** SNAP_OK when the bytes pushed are exactly one valid state. */
SNAP_API int snap_payload_validator_finish(snap_payload_validator *v);
/** NULL is a no-op. */
SNAP_API void snap_payload_validator_free(snap_payload_validator *v);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_STREAM_H */
