/* Shared helpers of the streamed-snapshot tests (tests/test_streams.c,
 * tests/test_postgres_streams.c, tests/test_stream_rewrite.c): states of a
 * given size, a streamed save in pieces, a stream reader's whole output, keys
 * and stage combinations, stores on a built-in backend and the chunk files the
 * sqlite backend keeps beside its database. */
#ifndef SNAP_TEST_STREAM_UTIL_H
#define SNAP_TEST_STREAM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "snap/store.h"
#include "snap/store_stream.h"

/** The chunk size of su_stream_save(): small, so that states span many. */
#define SU_CHUNK 64u

/** A JSON state of exactly `n` bytes (n >= 1; malloc'd, NUL-terminated):
 *  a number for 1, else a string of `fill`-based letters. NULL: no memory. */
char *su_state_of(size_t n, char fill);

/** A streamed save of `data` in pieces of `piece` bytes (chunks of SU_CHUNK). */
int su_stream_save(snap_store *st, const char *pid, int64_t seq, const char *data, size_t n,
                   const snap_options *o, size_t piece, snap_meta *meta);

/** Reads the latest snapshot of `pid` through a stream reader, in odd
 *  pieces, into a malloc'd `*out` (NUL-terminated; NULL when none). */
int su_stream_load(snap_store *st, const char *pid, const snap_options *o, unsigned flags,
                   char **out, size_t *len, snap_stream_meta *m);

/** A keyring holding key 1 of 32 bytes `fill` (NULL: failed). */
snap_keyring *su_keyring(uint8_t fill);

/** zlib-1 + AEAD under `kr` (context "rewrite"), reading plaintext too (the
 *  switch of a first encryption); NULL: failed. */
snap_options *su_sealed(snap_keyring *kr);

/** Stage combinations: 0 plain, 1 zlib-1, 2 zlib-1 + AEAD, 3 MAC (NULL: failed). */
snap_options *su_combo(int i, snap_keyring *kr);

/**
 * Streams a plain JSON array of about `total` bytes (1 MiB pieces, 1 MiB
 * chunks) as seq 1 of `pid`, then reads it back through a stream reader,
 * after a small warm-up save of pid "warm": `*written` the state's length,
 * `*growth_kib` the growth of the process's peak resident set over both.
 * SNAP_OK when the state read back is the state written (length and
 * CRC-32), else the failure with `why`.
 */
int su_big_round_trip(snap_store *st, const char *pid, uint64_t total, uint64_t *written,
                      long *growth_kib, char *why, size_t cap);

struct snap_backend;

/** A store on `be`: for sqlite the database `dir`/t.db, with the store keys
 *  `extra` (a JSON fragment such as "\"keep\": 0", or ""); NULL, saying
 *  why on stderr, when it does not open. */
snap_store *su_store(const struct snap_backend *be, const char *dir, const char *extra);

/** The chunk files in `dir`/t.db.streams (0 when the folder does not exist). */
int su_chunk_files(const char *dir);

#endif /* SNAP_TEST_STREAM_UTIL_H */
