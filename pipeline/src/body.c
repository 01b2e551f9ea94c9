/* The body encoder: validate -> compress -> encrypt or MAC (or checksum) ->
 * frame. The frame is documented byte by byte in docs/FORMAT.md; keep the two
 * in step (frame.h holds its constants). */
#include <limits.h>
#include <sodium.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "frame.h"
#include "pipeline_internal.h"

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
  int rc = snap__body_check_call(&w, pid, pid_checked, seq, out);
  if (rc)
    return rc;
  if (fmt != SNAP_FORMAT_JSON && fmt != SNAP_FORMAT_MSGPACK)
    return snap__frame_fail(&w, SNAP_EINVAL, "unknown payload format %d", (int)fmt);
  if (!state && len)
    return snap__frame_fail(&w, SNAP_EINVAL, "state is NULL but its length is %zu", len);
  const uint8_t *src = state;
  if (len && out->data && src < out->data + out->cap && out->data < src + len)
    return snap__frame_fail(&w, SNAP_EINVAL, "the state overlaps the output buffer");
  out->len = 0;

  snap__eff e;
  snap__options_effective(o, &e);
  unsigned required = (o && (o->set & SNAP__F_REQUIRED)) ? o->required : 0;
  if ((required & SNAP_OPT_ENCRYPTION) && !e.enc_kr)
    return snap__frame_fail(&w, SNAP_EINVAL,
                            "encryption is required but no encryption keyring is set");
  if ((required & SNAP_OPT_INTEGRITY) && !e.enc_kr && !e.mac_kr)
    return snap__frame_fail(&w, SNAP_EINVAL, "integrity is required but no keyring is set");
  if ((required & SNAP_OPT_COMPRESSION) && e.comp == SNAP_COMPRESSION_NONE)
    return snap__frame_fail(&w, SNAP_EINVAL, "compression is required but none is set");
  if (len > e.max_decoded)
    return snap__frame_fail(&w, SNAP_ETOOBIG, "state of %zu bytes is over the %zu-byte limit", len,
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
      return snap__frame_fail(&w, SNAP_ENOKEY, "the %s keyring is empty",
                              aead ? "encryption" : "integrity");
  }

  const size_t pre = HDR_LEN + (aead ? NONCE_LEN : 0);
  const size_t trailer = snap__frame_trailer_len(aead ? ST_AEAD : mac ? ST_MAC : 0);
  if (len > SIZE_MAX - pre - trailer) {
    rc = snap__frame_fail(&w, SNAP_ETOOBIG, "state of %zu bytes cannot be framed", len);
    goto done;
  }
  /* Deflate output is never kept unless it shrinks; under 9 bytes it cannot
   * (zlib's wrapper and an empty block alone take 8). */
  const bool try_zlib = e.comp == SNAP_COMPRESSION_ZLIB && len >= e.comp_min && len > 8;
  const size_t raw_total = pre + len + trailer;
  if (!try_zlib && raw_total > e.max_stored) {
    rc = snap__frame_fail(&w, SNAP_ETOOBIG, "body of %zu bytes is over the %zu-byte stored limit",
                          raw_total, e.max_stored);
    goto done;
  }
  /* One allocation, sized for the uncompressed case, which is the largest. */
  if ((rc = snap_buf_reserve(out, raw_total)) != SNAP_OK) {
    rc = snap__frame_fail(&w, rc, "out of memory for a %zu-byte body", raw_total);
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
      rc = snap__frame_fail(&w, SNAP_ENOMEM, "out of memory compressing");
      goto done;
    }
    if (z == 1) {
      st |= ST_ZLIB;
      blen = clen;
    }
  }
  const size_t total = pre + blen + trailer;
  if (total > e.max_stored) {
    rc = snap__frame_fail(&w, SNAP_ETOOBIG, "body of %zu bytes is over the %zu-byte stored limit",
                          total, e.max_stored);
    goto done;
  }
  if (aead)
    st |= ST_AEAD;
  else if (mac)
    st |= ST_MAC;

  memcpy(b, FRAME_MAGIC, FRAME_MAGIC_LEN);
  b[4] = FRAME_VERSION;
  b[5] = (uint8_t)fmt;
  b[6] = (uint8_t)st;
  b[7] = 0;
  snap__put_u32le(b + 8, kv);
  snap__put_u64le(b + 12, (uint64_t)len);

  if (aead || mac) {
    uint8_t bind[BIND_MAX];
    size_t bind_len = snap__frame_binding(bind, b, seq, pid, pid_len);
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
      snap__frame_mac(body + blen, subkey, bind, bind_len, body, blen);
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
