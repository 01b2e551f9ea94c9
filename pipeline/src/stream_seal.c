/* Sealing and opening the chunk records of a stream (docs/FORMAT.md,
 * "Streamed states"): libsodium's secretstream for AEAD, a chained keyed
 * BLAKE2b-256 for MAC, a chained CRC-32 for neither. Each chain covers the
 * record's index and the previous record's tag, and starts from what the
 * head binds (the stream's nonce, seq and pid), so a record only opens at its
 * own place in its own stream. */
#include <string.h>

#include <libdeflate.h>

#include "stream_internal.h"

/* u32le(len) || bytes, into a BLAKE2b state. */
static void lp_update(crypto_generichash_state *st, const void *p, size_t n) {
  uint8_t len[4];
  snap__put_u32le(len, (uint32_t)n);
  crypto_generichash_update(st, len, 4);
  if (n)
    crypto_generichash_update(st, p, n);
}

void snap__seal_init(chunk_seal *s, unsigned kind, const uint8_t *subkey, const uint8_t *nonce,
                     int64_t seq, const char *pid, size_t pid_len) {
  memset(s, 0, sizeof *s);
  s->kind = kind;
  uint8_t seq_le[8];
  snap__put_u64le(seq_le, (uint64_t)seq);
  if (!kind) {
    uint8_t len[4];
    snap__put_u32le(len, (uint32_t)pid_len);
    uint32_t crc = libdeflate_crc32(0, nonce, STREAM_NONCE_LEN);
    crc = libdeflate_crc32(crc, seq_le, 8);
    crc = libdeflate_crc32(crc, len, 4);
    s->crc_prefix = libdeflate_crc32(crc, pid, pid_len);
    return;
  }
  /* The stream key: BLAKE2b-256 keyed with the subkey over
   * LP(label) || u64le(seq) || LP(pid) || nonce. */
  crypto_generichash_state st;
  crypto_generichash_init(&st, subkey, SNAP__SUBKEY_BYTES, sizeof s->key);
  lp_update(&st, SNAP__LABEL_STREAM, strlen(SNAP__LABEL_STREAM));
  crypto_generichash_update(&st, seq_le, 8);
  lp_update(&st, pid, pid_len);
  crypto_generichash_update(&st, nonce, STREAM_NONCE_LEN);
  crypto_generichash_final(&st, s->key, sizeof s->key);
  sodium_memzero(&st, sizeof st);
  /* The same state pushing and pulling: init_pull() takes the header (the
   * stream's nonce, drawn by the writer's nonce source) instead of drawing it. */
  if (kind == ST_AEAD)
    crypto_secretstream_xchacha20poly1305_init_pull(&s->ss, nonce, s->key);
}

/* The MAC of record `index`: keyed BLAKE2b-256 of u64le(index) || the
 * previous MAC || payload. */
static void chunk_mac(const chunk_seal *s, uint64_t index, const uint8_t *p, size_t n,
                      uint8_t out[CHUNK_MAC_LEN]) {
  uint8_t idx[8];
  snap__put_u64le(idx, index);
  crypto_generichash_state st;
  crypto_generichash_init(&st, s->key, sizeof s->key, CHUNK_MAC_LEN);
  crypto_generichash_update(&st, idx, 8);
  crypto_generichash_update(&st, s->chain, CHUNK_MAC_LEN);
  crypto_generichash_update(&st, p, n);
  crypto_generichash_final(&st, out, CHUNK_MAC_LEN);
  sodium_memzero(&st, sizeof st);
}

/* The CRC-32 of record `index`: continued from the prefix over
 * u64le(index) || u32le(previous CRC) || payload. */
static uint32_t chunk_crc(const chunk_seal *s, uint64_t index, const uint8_t *p, size_t n) {
  uint8_t head[12];
  snap__put_u64le(head, index);
  snap__put_u32le(head + 8, s->crc_prev);
  return libdeflate_crc32(libdeflate_crc32(s->crc_prefix, head, 12), p, n);
}

void snap__seal_chunk(chunk_seal *s, uint64_t index, bool last, const uint8_t *p, size_t n,
                      uint8_t *rec) {
  if (s->kind == ST_AEAD) {
    crypto_secretstream_xchacha20poly1305_push(
        &s->ss, rec, NULL, p, n, NULL, 0,
        last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
             : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    return;
  }
  if (rec != p)
    memmove(rec, p, n);
  if (s->kind == ST_MAC) {
    chunk_mac(s, index, p, n, s->chain);
    memcpy(rec + n, s->chain, CHUNK_MAC_LEN);
    return;
  }
  s->crc_prev = chunk_crc(s, index, p, n);
  snap__put_u32le(rec + n, s->crc_prev);
}

int snap__open_chunk(chunk_seal *s, uint64_t index, bool last, const uint8_t *rec, size_t len,
                     uint8_t *p) {
  if (s->kind == ST_AEAD) {
    unsigned char tag = 0;
    if (len < CHUNK_AEAD_LEN ||
        crypto_secretstream_xchacha20poly1305_pull(&s->ss, p, NULL, &tag, rec, len, NULL, 0) != 0)
      return -1;
    return tag == (last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                        : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
               ? 0
               : -1;
  }
  if (s->kind == ST_MAC) {
    if (len < CHUNK_MAC_LEN)
      return -1;
    const size_t n = len - CHUNK_MAC_LEN;
    uint8_t mac[CHUNK_MAC_LEN];
    chunk_mac(s, index, rec, n, mac);
    if (sodium_memcmp(mac, rec + n, CHUNK_MAC_LEN) != 0)
      return -1;
    memcpy(s->chain, mac, CHUNK_MAC_LEN);
    memmove(p, rec, n);
    return 0;
  }
  if (len < CHUNK_CRC_LEN)
    return -1;
  const size_t n = len - CHUNK_CRC_LEN;
  const uint32_t crc = chunk_crc(s, index, rec, n);
  if (crc != snap__get_u32le(rec + n))
    return -1;
  s->crc_prev = crc;
  memmove(p, rec, n);
  return 0;
}

size_t snap__seal_digest(const chunk_seal *s, uint8_t out[CHUNK_MAC_LEN]) {
  if (s->kind == ST_AEAD)
    return 0;
  if (s->kind == ST_MAC) {
    memcpy(out, s->chain, CHUNK_MAC_LEN);
    return CHUNK_MAC_LEN;
  }
  snap__put_u32le(out, s->crc_prev);
  return CHUNK_CRC_LEN;
}
