/* The body codec: validate -> compress -> encrypt or MAC (or checksum) -> frame.
 * The frame is documented byte by byte in docs/FORMAT.md; keep the two in step. */
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "pipeline_internal.h"

/* ---- frame constants (docs/FORMAT.md) ------------------------------------ */

static const uint8_t MAGIC[4] = {'S', 'N', 'P', 'B'};
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

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;
static void init_sodium(void) { sodium_ok = sodium_init() >= 0; }

/* ---- error messages that name the call ----------------------------------- */

typedef struct where {
  const char *op; /* "encode", "decode", "inspect" */
  const char *pid;
  int64_t seq;
} where;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(const where *w, int code, const char *fmt, ...) {
  char tmp[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (w->pid)
    return snap_error_set(code, "%s pid '%.80s' seq %lld: %s", w->op, w->pid, (long long)w->seq,
                          tmp);
  return snap_error_set(code, "%s: %s", w->op, tmp);
}

/*
 * Inflates the zlib stream of exactly `slen` bytes into exactly `dlen` bytes,
 * or fails (deflate.c does the work). The stream's 2-byte header is checked
 * here first, to name what is wrong with it.
 */
static int inflate_exact(const where *w, const uint8_t *src, size_t slen, uint8_t *dst,
                         size_t dlen) {
  enum { ZHDR = 2, ZTRAILER = 4 };
  if (slen < ZHDR + ZTRAILER)
    return fail(w, SNAP_ECORRUPT, "compressed data of %zu bytes is shorter than a zlib stream",
                slen);
  const unsigned cmf = src[0], flg = src[1];
  if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 != 0 || (flg & 0x20))
    return fail(w, SNAP_ECORRUPT, "compressed data has no valid zlib header (0x%02x 0x%02x)", cmf,
                flg);
  size_t in_used, out_used;
  switch (snap__inflate_exact(src, slen, dst, dlen, &in_used, &out_used)) {
  case SNAP__INFLATE_OK:
    if (out_used != dlen)
      return fail(w, SNAP_ECORRUPT, "compressed data inflates to %zu bytes, the frame declares %zu",
                  out_used, dlen);
    if (in_used != slen)
      return fail(w, SNAP_ECORRUPT, "%zu bytes follow the end of the compressed data",
                  slen - in_used);
    return SNAP_OK;
  case SNAP__INFLATE_TOO_LONG:
    return fail(w, SNAP_ECORRUPT, "compressed data inflates beyond the declared %zu bytes", dlen);
  case SNAP__INFLATE_NOMEM:
    return fail(w, SNAP_ENOMEM, "out of memory inflating");
  default:
    return fail(w, SNAP_ECORRUPT, "bad compressed data (%zu stored bytes, %zu declared)", slen,
                dlen);
  }
}

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

static size_t trailer_for(unsigned stages) {
  return (stages & ST_AEAD) ? AEAD_TAG_LEN : (stages & ST_MAC) ? MAC_TAG_LEN : CRC_LEN;
}

/* The header on its own: magic, version, reserved fields, flag consistency. */
static int parse_header(const where *w, const uint8_t *b, size_t n, frame *f) {
  /* The output is defined on every path, failures included: a caller can never
   * read a field this function did not write. */
  *f = (frame){0};
  if (n < sizeof MAGIC || memcmp(b, MAGIC, sizeof MAGIC) != 0)
    return fail(w, SNAP_EFORMAT, "not a snapstore body (%zu bytes, no \"SNPB\" magic at offset 0)",
                n);
  if (n < HDR_LEN)
    return fail(w, SNAP_ECORRUPT, "truncated: %zu bytes, the frame header alone is %u", n, HDR_LEN);
  if (b[4] != FRAME_VERSION)
    return fail(w, SNAP_EFORMAT, "unknown frame version %u at byte offset 4 (this reader knows %u)",
                b[4], FRAME_VERSION);
  if (b[5] != SNAP_FORMAT_JSON && b[5] != SNAP_FORMAT_MSGPACK)
    return fail(w, SNAP_EFORMAT, "unknown payload format %u at byte offset 5", b[5]);
  if (b[6] & ~ST_KNOWN)
    return fail(w, SNAP_EFORMAT, "reserved stage bits 0x%02x set at byte offset 6",
                b[6] & ~ST_KNOWN);
  if (b[7] != 0)
    return fail(w, SNAP_EFORMAT, "reserved byte at offset 7 is 0x%02x, not 0", b[7]);
  f->fmt = (snap_format)b[5];
  f->stages = b[6];
  f->key_version = snap__get_u32le(b + 8);
  f->orig_len = snap__get_u64le(b + 12);
  bool keyed = f->stages & (ST_AEAD | ST_MAC);
  if ((f->stages & ST_AEAD) && (f->stages & ST_MAC))
    return fail(w, SNAP_ECORRUPT, "stage byte at offset 6 sets both AEAD and MAC");
  if (keyed && f->key_version == 0)
    return fail(w, SNAP_ECORRUPT, "%s body with key version 0 (byte offset 8)",
                (f->stages & ST_AEAD) ? "encrypted" : "MAC'd");
  if (!keyed && f->key_version != 0)
    return fail(w, SNAP_ECORRUPT,
                "key version %u at byte offset 8 on a body that is neither encrypted nor MAC'd",
                (unsigned)f->key_version);
  f->body_off = HDR_LEN + ((f->stages & ST_AEAD) ? NONCE_LEN : 0);
  f->trailer_len = trailer_for(f->stages);
  if (n < f->body_off + f->trailer_len)
    return fail(w, SNAP_ECORRUPT, "truncated: %zu bytes, this frame's overhead alone is %zu", n,
                f->body_off + f->trailer_len);
  f->body_len = n - f->body_off - f->trailer_len;
  return SNAP_OK;
}

/* The declared original length against what the frame carries. */
static int check_lengths(const where *w, const frame *f) {
  if (!(f->stages & ST_ZLIB)) {
    if (f->orig_len != f->body_len)
      return fail(w, SNAP_ECORRUPT,
                  "uncompressed body of %zu bytes but byte offset 12 declares %llu", f->body_len,
                  (unsigned long long)f->orig_len);
    return SNAP_OK;
  }
  if (f->body_len == 0 || f->orig_len <= f->body_len)
    return fail(w, SNAP_ECORRUPT,
                "compressed body of %zu bytes declares %llu (compression is only kept when it "
                "shrinks)",
                f->body_len, (unsigned long long)f->orig_len);
  if (f->orig_len / ZLIB_MAX_RATIO > f->body_len)
    return fail(w, SNAP_ECORRUPT,
                "compressed body of %zu bytes declares %llu, more than zlib can inflate it to",
                f->body_len, (unsigned long long)f->orig_len);
  return SNAP_OK;
}

/* header || u64le(seq) || u32le(pid_len) || pid: what AEAD and MAC bind. */
static size_t binding(uint8_t *dst, const uint8_t *hdr, int64_t seq, const char *pid,
                      size_t pid_len) {
  memcpy(dst, hdr, HDR_LEN);
  snap__put_u64le(dst + HDR_LEN, (uint64_t)seq);
  snap__put_u32le(dst + HDR_LEN + 8, (uint32_t)pid_len);
  memcpy(dst + HDR_LEN + 12, pid, pid_len);
  return HDR_LEN + 12 + pid_len;
}

static void mac_compute(uint8_t tag[MAC_TAG_LEN], const uint8_t subkey[SNAP__SUBKEY_BYTES],
                        const uint8_t *bind, size_t bind_len, const uint8_t *body,
                        size_t body_len) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, subkey, SNAP__SUBKEY_BYTES, MAC_TAG_LEN);
  crypto_generichash_update(&st, bind, bind_len);
  if (body_len)
    crypto_generichash_update(&st, body, body_len);
  crypto_generichash_final(&st, tag, MAC_TAG_LEN);
  sodium_memzero(&st, sizeof st);
}

static int check_call(const where *w, const char *pid, bool pid_checked, int64_t seq,
                      snap_buf *out) {
  if (!out)
    return fail(w, SNAP_EINVAL, "NULL output buffer");
  int rc = pid_checked ? SNAP_OK : snap_pid_check(pid);
  if (rc)
    return snap_error_set(rc, "%s: %s", w->op, snap_error_message());
  if (seq < 0)
    return fail(w, SNAP_EINVAL, "sequence number %lld is negative", (long long)seq);
  if (pthread_once(&sodium_once, init_sodium) != 0 || !sodium_ok)
    return fail(w, SNAP_ENOMEM, "libsodium failed to initialise");
  return SNAP_OK;
}

/* ---- encode --------------------------------------------------------------- */

static int body_encode(const char *pid, bool pid_checked, int64_t seq, snap_format fmt,
                       const void *state, size_t len, const snap_options *o, snap_buf *out,
                       unsigned *stages);

int snap_body_encode(const char *pid, int64_t seq, snap_format fmt, const void *state, size_t len,
                     const snap_options *o, snap_buf *out, unsigned *stages) {
  return body_encode(pid, false, seq, fmt, state, len, o, out, stages);
}

int snap__body_encode_checked(const char *pid, int64_t seq, snap_format fmt, const void *state,
                              size_t len, const snap_options *o, snap_buf *out, unsigned *stages) {
  return body_encode(pid, true, seq, fmt, state, len, o, out, stages);
}

static int body_encode(const char *pid, bool pid_checked, int64_t seq, snap_format fmt,
                       const void *state, size_t len, const snap_options *o, snap_buf *out,
                       unsigned *stages) {
  where w = {"encode", pid, seq};
  if (stages)
    *stages = 0;
  if (!pid || !out) {
    w.pid = NULL;
    return fail(&w, SNAP_EINVAL, "NULL %s", pid ? "output buffer" : "persistence id");
  }
  int rc = check_call(&w, pid, pid_checked, seq, out);
  if (rc)
    return rc;
  if (fmt != SNAP_FORMAT_JSON && fmt != SNAP_FORMAT_MSGPACK)
    return fail(&w, SNAP_EINVAL, "unknown payload format %d", (int)fmt);
  if (!state && len)
    return fail(&w, SNAP_EINVAL, "state is NULL but its length is %zu", len);
  const uint8_t *src = state;
  if (len && out->data && src < out->data + out->cap && out->data < src + len)
    return fail(&w, SNAP_EINVAL, "the state overlaps the output buffer");
  out->len = 0;

  snap__eff e;
  snap__options_effective(o, &e);
  unsigned required = (o && (o->set & SNAP__F_REQUIRED)) ? o->required : 0;
  if ((required & SNAP_OPT_ENCRYPTION) && !e.enc_kr)
    return fail(&w, SNAP_EINVAL, "encryption is required but no encryption keyring is set");
  if ((required & SNAP_OPT_INTEGRITY) && !e.enc_kr && !e.mac_kr)
    return fail(&w, SNAP_EINVAL, "integrity is required but no keyring is set");
  if ((required & SNAP_OPT_COMPRESSION) && e.comp == SNAP_COMPRESSION_NONE)
    return fail(&w, SNAP_EINVAL, "compression is required but none is set");
  if (len > e.max_decoded)
    return fail(&w, SNAP_ETOOBIG, "state of %zu bytes is over the %zu-byte limit", len,
                e.max_decoded);
  rc = snap_payload_validate(fmt, state, len);
  if (rc)
    return snap_error_set(rc, "encode pid '%.80s' seq %lld: %s", pid, (long long)seq,
                          snap_error_message());

  const size_t pid_len = strlen(pid);
  const bool aead = e.enc_kr != NULL;
  const bool mac = !aead && e.mac_kr != NULL;
  uint8_t subkey[SNAP__SUBKEY_BYTES];
  uint32_t kv = 0;
  if (aead || mac) {
    if (snap__keyring_derive(aead ? e.enc_kr : e.mac_kr, 0,
                             aead ? SNAP__LABEL_AEAD : SNAP__LABEL_MAC,
                             aead ? e.enc_ctx : e.mac_ctx, pid, pid_len, subkey, &kv) != SNAP_OK)
      return fail(&w, SNAP_ENOKEY, "the %s keyring is empty", aead ? "encryption" : "integrity");
  }

  const size_t pre = HDR_LEN + (aead ? NONCE_LEN : 0);
  const size_t trailer = trailer_for(aead ? ST_AEAD : mac ? ST_MAC : 0);
  if (len > SIZE_MAX - pre - trailer) {
    rc = fail(&w, SNAP_ETOOBIG, "state of %zu bytes cannot be framed", len);
    goto done;
  }
  /* Deflate output is never kept unless it shrinks; under 9 bytes it cannot
   * (zlib's wrapper and an empty block alone take 8). */
  const bool try_zlib = e.comp == SNAP_COMPRESSION_ZLIB && len >= e.comp_min && len > 8;
  const size_t raw_total = pre + len + trailer;
  if (!try_zlib && raw_total > e.max_stored) {
    rc = fail(&w, SNAP_ETOOBIG, "body of %zu bytes is over the %zu-byte stored limit", raw_total,
              e.max_stored);
    goto done;
  }
  /* One allocation, sized for the uncompressed case, which is the largest. */
  if ((rc = snap_buf_reserve(out, raw_total)) != SNAP_OK) {
    rc = fail(&w, rc, "out of memory for a %zu-byte body", raw_total);
    goto done;
  }
  uint8_t *b = out->data;
  uint8_t *body = b + pre;
  size_t blen = len;
  unsigned st = 0;
  if (try_zlib) {
    size_t clen = 0;
    int z = snap__deflate_fit(src, len, body, len - 1, e.level, &clen);
    if (z < 0) {
      rc = fail(&w, SNAP_ENOMEM, "out of memory compressing");
      goto done;
    }
    if (z == 1) {
      st |= ST_ZLIB;
      blen = clen;
    }
  }
  const size_t total = pre + blen + trailer;
  if (total > e.max_stored) {
    rc = fail(&w, SNAP_ETOOBIG, "body of %zu bytes is over the %zu-byte stored limit", total,
              e.max_stored);
    goto done;
  }
  if (aead)
    st |= ST_AEAD;
  else if (mac)
    st |= ST_MAC;

  memcpy(b, MAGIC, sizeof MAGIC);
  b[4] = FRAME_VERSION;
  b[5] = (uint8_t)fmt;
  b[6] = (uint8_t)st;
  b[7] = 0;
  snap__put_u32le(b + 8, kv);
  snap__put_u64le(b + 12, (uint64_t)len);

  if (aead || mac) {
    uint8_t bind[BIND_MAX];
    size_t bind_len = binding(bind, b, seq, pid, pid_len);
    if (aead) {
      e.nonce_fn(b + HDR_LEN, NONCE_LEN, e.nonce_ud);
      /* In place over the compressed bytes, or straight from the caller's state. */
      static const uint8_t none = 0;
      const uint8_t *m = (st & ST_ZLIB) ? body : (len ? src : &none);
      crypto_aead_xchacha20poly1305_ietf_encrypt_detached(body, body + blen, NULL, m, blen, bind,
                                                          bind_len, NULL, b + HDR_LEN, subkey);
    } else {
      if (!(st & ST_ZLIB) && len)
        memcpy(body, src, len);
      mac_compute(body + blen, subkey, bind, bind_len, body, blen);
    }
  } else {
    if (!(st & ST_ZLIB) && len)
      memcpy(body, src, len);
    snap__put_u32le(body + blen, snap__crc32(b, pre + blen));
  }
  out->len = total;
  if (stages)
    *stages = st;
  rc = SNAP_OK;
done:
  sodium_memzero(subkey, sizeof subkey);
  return rc;
}

/* ---- decode --------------------------------------------------------------- */

/*
 * A reader that holds a key cannot tell accidental damage from tampering in a
 * body it cannot authenticate: a flipped header byte, a truncation or an
 * extension of an encrypted or MAC'd body fails before (or instead of) the
 * tag check. If such failures were ECORRUPT, callers that fall back to an
 * older snapshot on damage would let anyone who can write the storage roll
 * the state back without the key. So for a keyed reader, every damage
 * failure (ECORRUPT, EFORMAT) of a body that declares AEAD or MAC, or that
 * should carry one because the reader accepts nothing else, becomes EAUTH.
 * A reader with accept_unauthenticated on accepts plaintext bodies anyway, so
 * for it only the bodies whose stage byte still declares a key are promoted.
 * Keyless readers keep ECORRUPT: their fallback is for accidents.
 */
static int refuse_unverifiable(const snap__eff *e, const uint8_t *b, size_t n, int rc) {
  if (rc != SNAP_ECORRUPT && rc != SNAP_EFORMAT)
    return rc;
  if (!e->enc_kr && !e->mac_kr)
    return rc;
  const bool declares_key = n > 6 && (b[6] & (ST_AEAD | ST_MAC));
  if (e->accept_unauth && !declares_key)
    return rc;
  char why[384];
  snprintf(why, sizeof why, "%s", snap_error_message());
  return snap_error_set(SNAP_EAUTH,
                        "%s; this reader holds a key and cannot authenticate the body, so it is "
                        "refused, not skipped as damage",
                        why);
}

static int decode_body(const char *pid, int64_t seq, const uint8_t *b, size_t body_len,
                       const snap__eff *ep, snap_buf *out, snap_format *fmt, unsigned *stages);

static int body_decode(const char *pid, bool pid_checked, int64_t seq, const void *body_in,
                       size_t body_len, const snap_options *o, snap_buf *out, snap_format *fmt,
                       unsigned *stages);

int snap_body_decode(const char *pid, int64_t seq, const void *body_in, size_t body_len,
                     const snap_options *o, snap_buf *out, snap_format *fmt, unsigned *stages) {
  return body_decode(pid, false, seq, body_in, body_len, o, out, fmt, stages);
}

int snap__body_decode_checked(const char *pid, int64_t seq, const void *body, size_t body_len,
                              const snap_options *o, snap_buf *out, snap_format *fmt,
                              unsigned *stages) {
  return body_decode(pid, true, seq, body, body_len, o, out, fmt, stages);
}

static int body_decode(const char *pid, bool pid_checked, int64_t seq, const void *body_in,
                       size_t body_len, const snap_options *o, snap_buf *out, snap_format *fmt,
                       unsigned *stages) {
  where w = {"decode", pid, seq};
  if (out)
    out->len = 0;
  if (!pid || !out) {
    w.pid = NULL;
    return fail(&w, SNAP_EINVAL, "NULL %s", pid ? "output buffer" : "persistence id");
  }
  int rc = check_call(&w, pid, pid_checked, seq, out);
  if (rc)
    return rc;
  if (!body_in && body_len)
    return fail(&w, SNAP_EINVAL, "body is NULL but its length is %zu", body_len);
  const uint8_t *b = body_in;
  if (body_len && out->data && b < out->data + out->cap && out->data < b + body_len)
    return fail(&w, SNAP_EINVAL, "the body overlaps the output buffer");

  snap__eff e;
  snap__options_effective(o, &e);
  rc = decode_body(pid, seq, b, body_len, &e, out, fmt, stages);
  return rc == SNAP_OK ? SNAP_OK : refuse_unverifiable(&e, b, body_len, rc);
}

static int decode_body(const char *pid, int64_t seq, const uint8_t *b, size_t body_len,
                       const snap__eff *ep, snap_buf *out, snap_format *fmt, unsigned *stages) {
  where w = {"decode", pid, seq};
  const snap__eff e = *ep;
  int rc;
  frame f;
  if ((rc = parse_header(&w, b, body_len, &f)) != SNAP_OK)
    return rc;
  /* Limits before anything else looks at the lengths, let alone allocates. */
  if (body_len > e.max_stored)
    return fail(&w, SNAP_ETOOBIG, "body of %zu bytes is over the %zu-byte stored limit", body_len,
                e.max_stored);
  /* An uncompressed body declares exactly its own length: any other value is
   * damage, whatever its size, and is reported (and skipped by a load) as
   * corruption, not refused as a state over the limit, which would stop a
   * load instead of falling back to an older snapshot. */
  if (!(f.stages & ST_ZLIB) && (rc = check_lengths(&w, &f)) != SNAP_OK)
    return rc;
  if (f.orig_len > e.max_decoded)
    return fail(&w, SNAP_ETOOBIG,
                "frame declares a %llu-byte state (byte offset 12), over the %zu-byte limit",
                (unsigned long long)f.orig_len, e.max_decoded);
  if ((rc = check_lengths(&w, &f)) != SNAP_OK)
    return rc;
  const size_t orig = (size_t)f.orig_len; /* <= max_decoded, a size_t */

  const bool aead = f.stages & ST_AEAD, mac = f.stages & ST_MAC, zl = f.stages & ST_ZLIB;
  const uint8_t *cbody = b + f.body_off;
  const uint8_t *trailer = cbody + f.body_len;
  const size_t pid_len = strlen(pid);
  uint8_t subkey[SNAP__SUBKEY_BYTES];
  uint8_t bind[BIND_MAX];
  size_t bind_len = 0;

  if (aead || mac) {
    snap_keyring *kr = aead ? e.enc_kr : e.mac_kr;
    if (!kr)
      return fail(&w, SNAP_ENOKEY, "body is %s with key version %u but no %s keyring is set",
                  aead ? "encrypted" : "MAC'd", (unsigned)f.key_version,
                  aead ? "encryption" : "integrity");
    if (snap__keyring_derive(kr, f.key_version, aead ? SNAP__LABEL_AEAD : SNAP__LABEL_MAC,
                             aead ? e.enc_ctx : e.mac_ctx, pid, pid_len, subkey, NULL) != SNAP_OK)
      return fail(&w, SNAP_ENOKEY, "key version %u is not in the keyring", (unsigned)f.key_version);
    bind_len = binding(bind, b, seq, pid, pid_len);
  } else if ((e.enc_kr || e.mac_kr) && !e.accept_unauth) {
    return fail(&w, SNAP_EAUTH,
                "body is neither encrypted nor MAC'd and this reader has a key "
                "(accept_unauthenticated is off)");
  }

  if (mac) {
    uint8_t tag[MAC_TAG_LEN];
    mac_compute(tag, subkey, bind, bind_len, cbody, f.body_len);
    bool ok = sodium_memcmp(tag, trailer, MAC_TAG_LEN) == 0;
    if (!ok) {
      rc = fail(&w, SNAP_EAUTH,
                "MAC mismatch under key version %u: wrong key, context, pid or seq, or an "
                "altered body",
                (unsigned)f.key_version);
      goto done;
    }
  } else if (!aead) {
    uint32_t want = snap__get_u32le(trailer);
    uint32_t got = snap__crc32(b, f.body_off + f.body_len);
    if (want != got) {
      rc = fail(&w, SNAP_ECORRUPT,
                "checksum mismatch (CRC-32 %08x stored at byte offset %zu, "
                "%08x computed)",
                (unsigned)want, f.body_off + f.body_len, (unsigned)got);
      goto done;
    }
  }

  /* One allocation: the state plus a NUL. An encrypted compressed body is
   * decrypted into the tail of the same buffer and inflated into its head. */
  if (orig > SIZE_MAX - 1 - f.body_len) { /* only with limits near SIZE_MAX */
    rc = fail(&w, SNAP_ETOOBIG, "a %zu-byte state cannot be buffered", orig);
    goto done;
  }
  size_t need = orig + 1;
  if (aead && zl)
    need += f.body_len;
  if ((rc = snap_buf_reserve(out, need)) != SNAP_OK) {
    rc = fail(&w, rc, "out of memory for a %zu-byte state", orig);
    goto done;
  }
  uint8_t *dst = out->data;
  if (aead) {
    uint8_t *plain = zl ? dst + orig + 1 : dst;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            plain, NULL, cbody, f.body_len, trailer, bind, bind_len, b + HDR_LEN, subkey) != 0) {
      rc = fail(&w, SNAP_EAUTH,
                "authentication failed under key version %u: wrong key, context, pid or seq, "
                "or an altered body",
                (unsigned)f.key_version);
      goto done;
    }
    if (zl && (rc = inflate_exact(&w, plain, f.body_len, dst, orig)) != SNAP_OK)
      goto done;
  } else if (zl) {
    if ((rc = inflate_exact(&w, cbody, f.body_len, dst, orig)) != SNAP_OK)
      goto done;
  } else if (orig) {
    memcpy(dst, cbody, orig);
  }
  dst[orig] = 0;
  out->len = orig;
  if (fmt)
    *fmt = f.fmt;
  if (stages)
    *stages = f.stages;
  rc = SNAP_OK;
done:
  sodium_memzero(subkey, sizeof subkey);
  if (rc != SNAP_OK)
    out->len = 0;
  return rc;
}

int snap_body_inspect(const void *body, size_t body_len, snap_format *fmt, unsigned *stages,
                      uint32_t *key_version, uint64_t *orig_len) {
  where w = {"inspect", NULL, 0};
  if (!body && body_len)
    return fail(&w, SNAP_EINVAL, "body is NULL but its length is %zu", body_len);
  frame f;
  int rc = parse_header(&w, body, body_len, &f);
  if (rc == SNAP_OK)
    rc = check_lengths(&w, &f);
  if (rc)
    return rc;
  if (fmt)
    *fmt = f.fmt;
  if (stages)
    *stages = f.stages;
  if (key_version)
    *key_version = f.key_version;
  if (orig_len)
    *orig_len = f.orig_len;
  return SNAP_OK;
}
