/*
 * The pipeline alone: snap_body_encode()/snap_body_decode() against the same
 * work done with the libraries directly (validate with cJSON or msgpack-c,
 * zlib compress2, a BLAKE2b subkey and XChaCha20-Poly1305), which is the
 * least any body codec with these stages can cost.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <msgpack.h>
#include <sodium.h>
#include <zlib.h>

#include "bench.h"
#include "cases.h"

/* ------------------------------------------------------------------------ */
/* The baseline codec                                                        */
/* ------------------------------------------------------------------------ */

static int raw_validate(snap_format fmt, const uint8_t *p, size_t len) {
  if (fmt == SNAP_FORMAT_JSON) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts((const char *)p, len, &end, 0);
    int ok = j && end == (const char *)p + len;
    cJSON_Delete(j);
    return ok ? 0 : -1;
  }
  msgpack_unpacked u;
  size_t off = 0;
  msgpack_unpacked_init(&u);
  msgpack_unpack_return rc = msgpack_unpack_next(&u, (const char *)p, len, &off);
  msgpack_unpacked_destroy(&u);
  return rc == MSGPACK_UNPACK_SUCCESS && off == len ? 0 : -1;
}

/* A per-pid subkey: keyed BLAKE2b of the context and the pid. */
static void raw_subkey(uint8_t sub[32], const uint8_t master[32], const char *ctx,
                       const char *pid) {
  crypto_generichash_state h;
  crypto_generichash_init(&h, master, 32, 32);
  crypto_generichash_update(&h, (const uint8_t *)ctx, strlen(ctx) + 1);
  crypto_generichash_update(&h, (const uint8_t *)pid, strlen(pid) + 1);
  crypto_generichash_final(&h, sub, 32);
}

/* Associated data binding the ciphertext to (pid, seq), as snapstore does. */
static size_t raw_ad(uint8_t *ad, size_t cap, const char *pid, int64_t seq) {
  size_t n = strlen(pid);
  if (n + 8 > cap) {
    n = cap - 8;
  }
  memcpy(ad, pid, n);
  memcpy(ad + n, &seq, 8);
  return n + 8;
}

#define RAW_HDR 32 /* room for a frame header: nonce and lengths */

int raw_encode(raw_codec *c, const char *pid, int64_t seq, snap_format fmt, const uint8_t *state,
               size_t len, int opt) {
  if (raw_validate(fmt, state, len) != 0) {
    return -1;
  }
  const uint8_t *plain = state;
  size_t plain_len = len;
  if (opt & OPT_ZLIB) {
    uLongf bound = compressBound((uLong)len);
    if (c->tmp_cap < bound && !(c->tmp = realloc(c->tmp, c->tmp_cap = bound))) {
      return -1;
    }
    uLongf out = bound;
    if (compress2(c->tmp, &out, state, (uLong)len, 1) != Z_OK) {
      return -1;
    }
    /* Compression is kept only when it shrinks the state. */
    if (out < len) {
      plain = c->tmp;
      plain_len = out;
    }
  }
  size_t need = RAW_HDR + plain_len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (c->out_cap < need && !(c->out = realloc(c->out, c->out_cap = need))) {
    return -1;
  }
  if (opt & OPT_ENC) {
    uint8_t sub[32], ad[256];
    unsigned long long clen = 0;
    raw_subkey(sub, c->key, c->context, pid);
    randombytes_buf(c->out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    size_t adlen = raw_ad(ad, sizeof ad, pid, seq);
    crypto_aead_xchacha20poly1305_ietf_encrypt(c->out + RAW_HDR, &clen, plain, plain_len, ad, adlen,
                                               NULL, c->out, sub);
    sodium_memzero(sub, sizeof sub);
    c->out_len = RAW_HDR + (size_t)clen;
  } else {
    memcpy(c->out + RAW_HDR, plain, plain_len);
    c->out_len = RAW_HDR + plain_len;
  }
  c->orig_len = len;
  c->stored_compressed = plain != state;
  return 0;
}

int raw_decode(raw_codec *c, const char *pid, int64_t seq, const uint8_t *body, size_t body_len,
               int opt) {
  const uint8_t *plain = body + RAW_HDR;
  size_t plain_len = body_len - RAW_HDR;
  if (opt & OPT_ENC) {
    uint8_t sub[32], ad[256];
    unsigned long long mlen = 0;
    if (c->tmp_cap < plain_len && !(c->tmp = realloc(c->tmp, c->tmp_cap = plain_len))) {
      return -1;
    }
    raw_subkey(sub, c->key, c->context, pid);
    size_t adlen = raw_ad(ad, sizeof ad, pid, seq);
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(c->tmp, &mlen, NULL, plain, plain_len, ad,
                                                        adlen, body, sub);
    sodium_memzero(sub, sizeof sub);
    if (rc != 0) {
      return -1;
    }
    plain = c->tmp;
    plain_len = (size_t)mlen;
  }
  if (c->dec_cap < c->orig_len && !(c->dec = realloc(c->dec, c->dec_cap = c->orig_len))) {
    return -1;
  }
  if (c->stored_compressed) {
    uLongf out = (uLongf)c->orig_len;
    if (uncompress(c->dec, &out, plain, (uLong)plain_len) != Z_OK || out != c->orig_len) {
      return -1;
    }
  } else {
    memcpy(c->dec, plain, plain_len);
  }
  return 0;
}

void raw_codec_dispose(raw_codec *c) {
  free(c->out);
  free(c->tmp);
  free(c->dec);
  memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------ */
/* Timed loops                                                               */
/* ------------------------------------------------------------------------ */

/* Runs `fn` until `secs` have passed (at least `min_ops` times), returns µs/op. */
#define TIMED_LOOP(secs, min_ops, body)                                                            \
  do {                                                                                             \
    double t0_ = bench_now(), el_ = 0;                                                             \
    long n_ = 0;                                                                                   \
    do {                                                                                           \
      body;                                                                                        \
      n_++;                                                                                        \
      el_ = bench_now() - t0_;                                                                     \
    } while (el_ < (secs) || n_ < (min_ops));                                                      \
    *us = n_ ? el_ * 1e6 / (double)n_ : 0;                                                         \
  } while (0)

int codec_snap_encode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                      size_t errcap) {
  snap_buf out = SNAP_BUF_INIT;
  int rc = SNAP_OK;
  TIMED_LOOP(bx->cfg->codec_seconds, 3, {
    rc = snap_body_encode("account-000001", 1, cc->fmt, cc->state, cc->len, bx->opts[cc->opt], &out,
                          NULL);
    if (rc != SNAP_OK) {
      break;
    }
  });
  snap_buf_dispose(&out);
  if (rc != SNAP_OK) {
    snprintf(err, errcap, "snap_body_encode: %s: %s", snap_strerror(rc), snap_error_message());
    return -1;
  }
  return 0;
}

/* Validation alone, in GB/s of state: snap_payload_validate() against
 * cJSON_ParseWithLengthOpts() + cJSON_Delete() (or msgpack_unpack_next()),
 * which is what a caller without snapstore would run to check a state. */
static double gbps(size_t len, double us) { return us > 0 ? (double)len / (us * 1e3) : 0; }

int codec_snap_validate(const bench_ctx *bx, const codec_case *cc, double *v, char *err,
                        size_t errcap) {
  int rc = SNAP_OK;
  double t = 0, *us = &t;
  TIMED_LOOP(bx->cfg->codec_seconds, 3, {
    if ((rc = snap_payload_validate(cc->fmt, cc->state, cc->len)) != SNAP_OK) {
      break;
    }
  });
  if (rc != SNAP_OK) {
    snprintf(err, errcap, "snap_payload_validate: %s: %s", snap_strerror(rc), snap_error_message());
    return -1;
  }
  *v = gbps(cc->len, t);
  return 0;
}

int codec_raw_validate(const bench_ctx *bx, const codec_case *cc, double *v, char *err,
                       size_t errcap) {
  int rc = 0;
  double t = 0, *us = &t;
  TIMED_LOOP(bx->cfg->codec_seconds, 3, {
    if ((rc = raw_validate(cc->fmt, cc->state, cc->len)) != 0) {
      break;
    }
  });
  if (rc != 0) {
    snprintf(err, errcap, "the baseline parser refused the state");
    return -1;
  }
  *v = gbps(cc->len, t);
  return 0;
}

int codec_snap_decode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                      size_t errcap) {
  snap_buf body = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  int rc = snap_body_encode("account-000001", 1, cc->fmt, cc->state, cc->len, bx->opts[cc->opt],
                            &body, NULL);
  if (rc == SNAP_OK) {
    TIMED_LOOP(bx->cfg->codec_seconds, 3, {
      rc = snap_body_decode("account-000001", 1, body.data, body.len, bx->opts[cc->opt], &out, NULL,
                            NULL);
      if (rc != SNAP_OK) {
        break;
      }
    });
  }
  if (rc == SNAP_OK && (out.len != cc->len || memcmp(out.data, cc->state, cc->len) != 0)) {
    snprintf(err, errcap, "snap_body_decode returned %zu bytes that differ from the state",
             out.len);
    rc = -1;
  } else if (rc != SNAP_OK) {
    snprintf(err, errcap, "snap_body_encode/decode: %s: %s", snap_strerror(rc),
             snap_error_message());
  }
  snap_buf_dispose(&body);
  snap_buf_dispose(&out);
  return rc == SNAP_OK ? 0 : -1;
}

int codec_raw_encode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                     size_t errcap) {
  raw_codec c = {0};
  int rc = 0;
  memcpy(c.key, bx->key, sizeof c.key);
  c.context = BENCH_CONTEXT;
  TIMED_LOOP(bx->cfg->codec_seconds, 3, {
    rc = raw_encode(&c, "account-000001", 1, cc->fmt, cc->state, cc->len, cc->opt);
    if (rc != 0) {
      break;
    }
  });
  raw_codec_dispose(&c);
  if (rc != 0) {
    snprintf(err, errcap, "baseline encode failed");
  }
  return rc;
}

int codec_raw_decode(const bench_ctx *bx, const codec_case *cc, double *us, char *err,
                     size_t errcap) {
  raw_codec c = {0};
  memcpy(c.key, bx->key, sizeof c.key);
  c.context = BENCH_CONTEXT;
  int rc = raw_encode(&c, "account-000001", 1, cc->fmt, cc->state, cc->len, cc->opt);
  uint8_t *body = NULL;
  size_t body_len = c.out_len;
  if (rc == 0 && !(body = malloc(body_len))) {
    rc = -1;
  }
  if (rc == 0) {
    memcpy(body, c.out, body_len);
    TIMED_LOOP(bx->cfg->codec_seconds, 3, {
      rc = raw_decode(&c, "account-000001", 1, body, body_len, cc->opt);
      if (rc != 0) {
        break;
      }
    });
  }
  if (rc == 0 && memcmp(c.dec, cc->state, cc->len) != 0) {
    rc = -1;
  }
  if (rc != 0) {
    snprintf(err, errcap, "baseline decode failed");
  }
  free(body);
  raw_codec_dispose(&c);
  return rc;
}
