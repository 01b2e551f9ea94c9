/*
 * Entry points of the pipeline for the layers above it (store, plugin) and
 * nothing else: not part of the public API, not exported, not installed.
 *
 * The public snap_body_encode()/snap_body_decode() check the persistence id
 * (snap_pid_check()) on every call. The store checks it once when a call
 * enters the store, then encodes or decodes one or more bodies for the same
 * id; these variants skip the second check. The caller must have checked
 * `pid` with snap_pid_check() in the same call.
 */
#ifndef SNAP_PIPELINE_LAYER_H
#define SNAP_PIPELINE_LAYER_H

#include "snap/pipeline.h"

/** snap_body_encode() for a pid already checked by snap_pid_check(). */
int snap__body_encode_checked(const char *pid, int64_t seq, snap_format fmt, const void *state,
                              size_t len, const snap_options *o, snap_buf *out, unsigned *stages);

/** snap_body_decode() for a pid already checked by snap_pid_check(). */
int snap__body_decode_checked(const char *pid, int64_t seq, const void *body, size_t body_len,
                              const snap_options *o, snap_buf *out, snap_format *fmt,
                              unsigned *stages);

/** The levels `alg` accepts and its default level (zlib 0-9, default 6;
 * zstd its negative fast levels to 22, default 3). SNAP_EINVAL for NONE or an
 * unknown algorithm. */
int snap__compression_levels(snap_compression alg, int *min, int *max, int *dflt);

#endif
