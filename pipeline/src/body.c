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
                       const void *state, size_t len, const snap_options *o,
                       const snap__envelope_key *env, const snap__typing *t, snap_buf *out,
                       unsigned *stages);

int snap_body_encode(const char *pid, int64_t seq, snap_format fmt, const void *state, size_t len,
                     const snap_options *o, snap_buf *out, unsigned *stages) {
  return body_encode(pid, false, seq, fmt, state, len, o, NULL, NULL, out, stages);
}

int snap__body_encode_checked(const char *pid, int64_t seq, snap_format fmt, const void *state,
                              size_t len, const snap_options *o, snap_buf *out, unsigned *stages) {
  return body_encode(pid, true, seq, fmt, state, len, o, NULL, NULL, out, stages);
}

int snap__body_encode_envelope(const char *pid, int64_t seq, snap_format fmt, const void *state,
                               size_t len, const snap_options *o, const snap__envelope_key *k,
                               snap_buf *out, unsigned *stages) {
  return body_encode(pid, true, seq, fmt, state, len, o, k, NULL, out, stages);
}

int snap__body_encode_typed(const char *pid, int64_t seq, snap_format fmt, const void *state,
                            size_t len, const snap_options *o, const snap__envelope_key *k,
                            const snap__typing *t, snap_buf *out, unsigned *stages) {
  return body_encode(pid, true, seq, fmt, state, len, o, k, t, out, stages);
}

/* One encode call: the state, the stages chosen and the body's geometry. */
typedef struct writing {
  where w;
  snap_format fmt;
  const uint8_t *src;
  size_t len;
  size_t pid_len;
  bool aead, mac;
  uint32_t kv; /* the key version sealed with (0 for neither) */
  uint8_t subkey[SNAP__SUBKEY_BYTES];
  unsigned codec;  /* FRAME_CODEC_* tried when compression is configured */
  frame_fields *ff; /* the v2 fields (none: a v1 frame); not zeroed with the rest */
  const snap__envelope_key *env; /* envelope mode: the unit's data key, else NULL */
  snap_dict *dict;  /* the zstd dictionary (a reference), or NULL */
  const snap__typing *typ; /* manifest and metadata to state, or NULL */
  size_t pre;      /* header (and nonce) before the body */
  size_t trailer;  /* tag, MAC or CRC after it */
  unsigned st;     /* the stage bits written */
  size_t blen;     /* the body's length: the state's, or its compressed stream's */
} writing;

/* The arguments, what the options require, the size limit and the payload. */
static int check_state(writing *x, const snap_options *o, const snap__eff *e, snap_buf *out) {
  where *w = &x->w;
  if (x->fmt != SNAP_FORMAT_JSON && x->fmt != SNAP_FORMAT_MSGPACK)
    return snap__frame_fail(w, SNAP_EINVAL, "unknown payload format %d", (int)x->fmt);
  if (!x->src && x->len)
    return snap__frame_fail(w, SNAP_EINVAL, "state is NULL but its length is %zu", x->len);
  if (x->len && out->data && x->src < out->data + out->cap && out->data < x->src + x->len)
    return snap__frame_fail(w, SNAP_EINVAL, "the state overlaps the output buffer");
  out->len = 0; /* the output is left alone only on argument errors */
  unsigned required = (o && (o->set & SNAP__F_REQUIRED)) ? o->required : 0;
  if ((required & SNAP_OPT_ENCRYPTION) && !e->enc_kr)
    return snap__frame_fail(w, SNAP_EINVAL,
                            "encryption is required but no encryption keyring is set");
  if ((required & SNAP_OPT_INTEGRITY) && !e->enc_kr && !e->mac_kr)
    return snap__frame_fail(w, SNAP_EINVAL, "integrity is required but no keyring is set");
  if ((required & SNAP_OPT_COMPRESSION) && e->comp == SNAP_COMPRESSION_NONE)
    return snap__frame_fail(w, SNAP_EINVAL, "compression is required but none is set");
  if (x->len > e->max_decoded)
    return snap__frame_fail(w, SNAP_ETOOBIG, "state of %zu bytes is over the %zu-byte limit",
                            x->len, e->max_decoded);
  int rc = snap_payload_validate(x->fmt, x->src, x->len);
  if (rc)
    return snap_error_set(rc, "encode pid '%.80s' seq %lld: %s", w->pid, (long long)w->seq,
                          snap_error_message());
  return SNAP_OK;
}

/* AEAD when an encryption keyring is set, else MAC when an integrity one is:
 * the subkey of the keyring's active version. */
static int choose_key(writing *x, const snap__eff *e) {
  if (e->envelope && !x->env)
    return snap__frame_fail(&x->w, SNAP_EINVAL,
                            "envelope key mode needs a store: the unit's data key lives in its "
                            "key table (snap_body_encode() encrypts in direct mode only)");
  if (x->env) {
    /* The unit's data key seals the body as is; bytes 8-11 say its generation. */
    x->aead = true;
    x->mac = false;
    memcpy(x->subkey, x->env->dek, SNAP_DEK_BYTES);
    x->kv = x->env->generation;
    return SNAP_OK;
  }
  const unsigned kind = e->enc_kr ? ST_AEAD : e->mac_kr ? ST_MAC : 0;
  x->aead = kind == ST_AEAD;
  x->mac = kind == ST_MAC;
  if (!kind)
    return SNAP_OK;
  if (snap__keyring_derive(frame_keyring(e, kind), 0, frame_label(kind), frame_context(e, kind),
                           x->w.pid, x->pid_len, x->subkey, &x->kv) != SNAP_OK)
    return snap__frame_fail(&x->w, SNAP_ENOKEY, "the %s keyring is empty",
                            x->aead ? "encryption" : "integrity");
  return SNAP_OK;
}

/* The frame's fields: the codec's when the body is compressed by a codec
 * other than zlib, then the other features' fields in type order. No field:
 * a v1 frame, byte for byte what earlier writers wrote. */
static int set_fields(writing *x, bool compressed) {
  x->ff->len = 0;
  x->ff->last_type = 0;
  int rc = SNAP_OK;
  if (compressed && x->codec == FRAME_CODEC_ZSTD) {
    const uint8_t codec = FRAME_CODEC_ZSTD;
    rc = snap__frame_fields_add(&x->w, x->ff, FIELD_CODEC, &codec, 1);
    uint8_t id[4];
    snap__put_u32le(id, snap_dict_id(x->dict));
    if (rc == SNAP_OK && x->dict)
      rc = snap__frame_fields_add(&x->w, x->ff, FIELD_DICT, id, 4);
  }
  if (rc == SNAP_OK && x->env) {
    /* The unit, unless it is the pid (the default): then the field is empty. */
    const bool is_pid =
        x->env->unit_len == x->pid_len && memcmp(x->env->unit, x->w.pid, x->pid_len) == 0;
    rc = snap__frame_fields_add(&x->w, x->ff, FIELD_ENVELOPE, x->env->unit,
                                is_pid ? 0 : x->env->unit_len);
  }
  const snap__typing *t = x->typ;
  if (rc == SNAP_OK && t != NULL && t->manifest_len > 0)
    rc = snap__frame_fields_add(&x->w, x->ff, FIELD_MANIFEST, t->manifest, t->manifest_len);
  if (rc == SNAP_OK && t != NULL && t->metadata_len > 0)
    rc = snap__frame_fields_add(&x->w, x->ff, FIELD_METADATA, t->metadata, t->metadata_len);
  x->pre = snap__frame_header_len(x->ff) + (x->aead ? NONCE_LEN : 0);
  return rc;
}

/* Compresses into the body's place in `out` (reserved for the uncompressed
 * body) when that shrinks the whole body; sets the fields, the body's length
 * and the compression bit. */
static int try_compress(writing *x, const snap__eff *e, snap_buf *out) {
  const size_t raw_pre = x->pre;
  int rc = set_fields(x, true);
  if (rc != SNAP_OK)
    return rc;
  /* Kept only when the body (the codec field included) is strictly shorter. */
  const size_t extra = x->pre - raw_pre;
  size_t clen = 0;
  int z = 0;
  if (x->len > extra + 1) {
    const size_t cap = x->len - 1 - extra;
    uint8_t *dst = out->data + x->pre;
    z = x->dict ? snap__zstd_fit_dict(x->src, x->len, dst, cap, e->level, x->dict, &clen)
        : x->codec == FRAME_CODEC_ZSTD ? snap__zstd_fit(x->src, x->len, dst, cap, e->level, &clen)
                                       : snap__deflate_fit(x->src, x->len, dst, cap, e->level, &clen);
  }
  if (z < 0)
    return snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory compressing");
  if (z == 1) {
    x->st |= ST_COMP;
    x->blen = clen;
    return SNAP_OK;
  }
  return set_fields(x, false);
}

/* The dictionary the options choose, through their source (a reference in
 * x->dict), when compression is tried (`look`); a dictionary without zstd is
 * refused either way. */
static int find_dict(writing *x, const snap__eff *e, bool look) {
  if (!e->dict_id && !e->dict_name)
    return SNAP_OK;
  if (e->comp != SNAP_COMPRESSION_ZSTD)
    return snap__frame_fail(&x->w, SNAP_EINVAL,
                            "a dictionary is set but the compression is not zstd");
  if (!look)
    return SNAP_OK;
  if (!e->dict_src)
    return snap__frame_fail(&x->w, SNAP_EINVAL,
                            "a dictionary is set but no dictionary source to find it");
  snap_error_clear();
  int rc = e->dict_src(e->dict_ud, e->dict_id, e->dict_name, &x->dict);
  if (rc == SNAP_OK && !x->dict)
    rc = SNAP_ENOTFOUND;
  if (rc == SNAP_OK)
    return SNAP_OK;
  x->dict = NULL;
  if (snap_error_code() != SNAP_OK)
    return snap_error_set(rc, "encode pid '%.80s' seq %lld: %s", x->w.pid, (long long)x->w.seq,
                          snap_error_message());
  if (e->dict_name)
    return snap__frame_fail(&x->w, rc, "dictionary '%s' not found", e->dict_name);
  return snap__frame_fail(&x->w, rc, "dictionary %u not found", (unsigned)e->dict_id);
}

/* Reserves the output and compresses into its body when that is configured
 * and shrinks the state; sets the body's length and the compression bit. */
static int compress_into(writing *x, const snap__eff *e, snap_buf *out) {
  x->codec = e->comp == SNAP_COMPRESSION_ZSTD ? FRAME_CODEC_ZSTD : FRAME_CODEC_ZLIB;
  int rc = set_fields(x, false);
  if (rc != SNAP_OK)
    return rc;
  x->trailer = snap__frame_trailer_len(x->aead ? ST_AEAD : x->mac ? ST_MAC : 0);
  if (x->len > SIZE_MAX - x->pre - x->trailer)
    return snap__frame_fail(&x->w, SNAP_ETOOBIG, "state of %zu bytes cannot be framed", x->len);
  /* Compressed output is never kept unless it shrinks; under 9 bytes it cannot
   * (zlib's wrapper and an empty block alone take 8, a zstd frame more). */
  const bool try_comp = e->comp != SNAP_COMPRESSION_NONE && x->len >= e->comp_min && x->len > 8;
  if ((rc = find_dict(x, e, try_comp)) != SNAP_OK)
    return rc;
  const size_t raw_total = x->pre + x->len + x->trailer;
  if (!try_comp && raw_total > e->max_stored)
    return snap__frame_fail(&x->w, SNAP_ETOOBIG,
                            "body of %zu bytes is over the %zu-byte stored limit", raw_total,
                            e->max_stored);
  /* One allocation, sized for the uncompressed case, which is the largest. */
  rc = snap_buf_reserve(out, raw_total);
  if (rc != SNAP_OK)
    return snap__frame_fail(&x->w, rc, "out of memory for a %zu-byte body", raw_total);
  x->blen = x->len;
  if (try_comp && (rc = try_compress(x, e, out)) != SNAP_OK)
    return rc;
  const size_t total = x->pre + x->blen + x->trailer;
  if (total > e->max_stored)
    return snap__frame_fail(&x->w, SNAP_ETOOBIG,
                            "body of %zu bytes is over the %zu-byte stored limit", total,
                            e->max_stored);
  return SNAP_OK;
}

/* Writes the header, then encrypts, MACs or checksums the body in `b`. */
static void seal(writing *x, const snap__eff *e, uint8_t *b) {
  uint8_t *body = b + x->pre;
  const size_t len = x->len, blen = x->blen;
  const size_t hdr = snap__frame_header_len(x->ff);
  snap__frame_write_header(b, x->ff, x->fmt, x->st, x->kv, len);
  const bool comp = x->st & ST_COMP;
  if (!x->aead && !comp && len)
    memcpy(body, x->src, len);
  if (!x->aead && !x->mac) {
    snap__put_u32le(body + blen, snap__crc32(b, x->pre + blen));
    return;
  }
  uint8_t bind[BIND_MAX];
  size_t bind_len = snap__frame_binding(bind, b, hdr, x->w.seq, x->w.pid, x->pid_len);
  if (x->mac) {
    snap__frame_mac(body + blen, x->subkey, bind, bind_len, body, blen);
    return;
  }
  e->nonce_fn(b + hdr, NONCE_LEN, e->nonce_ud);
  /* In place over the compressed bytes, or straight from the caller's state. */
  static const uint8_t none = 0;
  const uint8_t *m = comp ? body : (len ? x->src : &none);
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(body, body + blen, NULL, m, blen, bind,
                                                      bind_len, NULL, b + hdr, x->subkey);
}

static int body_encode(const char *pid, bool pid_checked, int64_t seq, snap_format fmt,
                       const void *state, size_t len, const snap_options *o,
                       const snap__envelope_key *env, const snap__typing *t, snap_buf *out,
                       unsigned *stages) {
  frame_fields ff; /* 4 KiB: set by set_fields(), never zeroed whole */
  ff.len = 0;
  ff.last_type = 0;
  writing x = {
      .w = {"encode", pid, seq}, .fmt = fmt, .src = state, .len = len, .ff = &ff, .env = env,
      .typ = t};
  if (stages)
    *stages = 0;
  int rc = snap__body_check_call(&x.w, pid, pid_checked, seq, out);
  if (rc)
    return rc;
  snap__eff e;
  snap__options_effective(o, &e);
  if ((rc = check_state(&x, o, &e, out)) != SNAP_OK)
    return rc;
  x.pid_len = strlen(pid);
  rc = choose_key(&x, &e);
  if (rc == SNAP_OK)
    rc = compress_into(&x, &e, out);
  if (rc == SNAP_OK) {
    x.st |= x.aead ? ST_AEAD : x.mac ? ST_MAC : 0;
    seal(&x, &e, out->data);
    out->len = x.pre + x.blen + x.trailer;
    if (stages)
      *stages = x.st;
  }
  sodium_memzero(x.subkey, sizeof x.subkey);
  snap_dict_free(x.dict);
  return rc;
}
