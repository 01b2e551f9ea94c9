/* The body decoder: parse -> check limits and key -> authenticate ->
 * decrypt -> decompress, and the rule that a keyed reader reports damage it
 * cannot tell from tampering as an authentication failure. docs/FORMAT.md
 * ("Reading a body") lists the checks in this order; keep the two in step. */
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "frame.h"
#include "pipeline_internal.h"
#include "stream_internal.h"

/*
 * Inflates the zlib stream of exactly `slen` bytes into exactly `dlen` bytes,
 * or fails (deflate.c does the work). The stream's 2-byte header is checked
 * here first, to name what is wrong with it.
 */
static int inflate_exact(const where *w, const uint8_t *src, size_t slen, uint8_t *dst,
                         size_t dlen) {
  enum { ZHDR = 2, ZTRAILER = 4 };
  if (slen < ZHDR + ZTRAILER)
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "compressed data of %zu bytes is shorter than a zlib stream", slen);
  const unsigned cmf = src[0], flg = src[1];
  if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 != 0 || (flg & 0x20))
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "compressed data has no valid zlib header (0x%02x 0x%02x)", cmf, flg);
  size_t in_used, out_used;
  switch (snap__inflate_exact(src, slen, dst, dlen, &in_used, &out_used)) {
  case SNAP__INFLATE_OK:
    if (out_used != dlen)
      return snap__frame_fail(w, SNAP_ECORRUPT,
                              "compressed data inflates to %zu bytes, the frame declares %zu",
                              out_used, dlen);
    if (in_used != slen)
      return snap__frame_fail(w, SNAP_ECORRUPT, "%zu bytes follow the end of the compressed data",
                              slen - in_used);
    return SNAP_OK;
  case SNAP__INFLATE_TOO_LONG:
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "compressed data inflates beyond the declared %zu bytes", dlen);
  case SNAP__INFLATE_NOMEM:
    return snap__frame_fail(w, SNAP_ENOMEM, "out of memory inflating");
  default:
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "bad compressed data (%zu stored bytes, %zu declared)", slen, dlen);
  }
}

/* What snap__zstd_check() or snap__zstd_decompress() found, as a failure. */
static int zstd_failure(const where *w, snap__zstd_result z, size_t slen, size_t dlen) {
  switch (z) {
  case SNAP__ZSTD_OK:
    return SNAP_OK;
  case SNAP__ZSTD_NOT_ONE_FRAME:
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "compressed data of %zu bytes is not exactly one zstd frame", slen);
  case SNAP__ZSTD_NO_SIZE:
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "the zstd frame does not declare its content size");
  case SNAP__ZSTD_WRONG_SIZE:
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "the zstd frame's content size is not the declared %zu bytes", dlen);
  case SNAP__ZSTD_NOMEM:
    return snap__frame_fail(w, SNAP_ENOMEM, "out of memory decompressing");
  default:
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "bad zstd data (%zu stored bytes, %zu declared)", slen, dlen);
  }
}

/* The dictionary a body names, through the reader's source (a reference in
 * `*d`). Only asked once the body is authenticated (or its CRC checked), so
 * an altered id is never reported as a missing dictionary. */
static int find_dict(const where *w, const snap__eff *e, uint32_t id, snap_dict **d) {
  *d = NULL;
  if (!e->dict_src)
    return snap__frame_fail(w, SNAP_ENOTFOUND,
                            "the body is compressed with dictionary %u and this reader has no "
                            "dictionary source",
                            (unsigned)id);
  snap_error_clear();
  int rc = e->dict_src(e->dict_ud, id, NULL, d);
  if (rc == SNAP_OK && snap_dict_id(*d) != id) {
    const unsigned got = snap_dict_id(*d);
    snap_dict_free(*d);
    *d = NULL;
    return snap__frame_fail(w, SNAP_EINVAL, "the dictionary source gave dictionary %u for %u",
                            got, (unsigned)id);
  }
  if (rc == SNAP_OK)
    return SNAP_OK;
  *d = NULL;
  if (snap_error_code() != SNAP_OK)
    return snap_error_set(rc, "%s pid '%.80s' seq %lld: dictionary %u: %s", w->op, w->pid,
                          (long long)w->seq, (unsigned)id, snap_error_message());
  return snap__frame_fail(w, rc, "dictionary %u not found", (unsigned)id);
}

/* Decompresses with the frame's codec (and dictionary) into exactly `dlen`
 * bytes, or fails. */
static int decompress_exact(const where *w, const snap__eff *e, const frame *f, const uint8_t *src,
                            size_t slen, uint8_t *dst, size_t dlen) {
  if (f->codec != FRAME_CODEC_ZSTD)
    return inflate_exact(w, src, slen, dst, dlen);
  snap_dict *d = NULL;
  int rc = f->dict_id ? find_dict(w, e, f->dict_id, &d) : SNAP_OK;
  if (rc == SNAP_OK)
    rc = zstd_failure(w, snap__zstd_decompress(src, slen, dst, dlen, d), slen, dlen);
  snap_dict_free(d);
  return rc;
}

/* ---- authenticating a body ------------------------------------------------ */

/*
 * Whether the body b[0..n) authenticates under `subkey` when its header is
 * `hdr` (the stored one or a candidate): the stage byte of `hdr` decides
 * where the body and trailer lie (`hdr_len`: the stored header's length, its
 * v2 block included). Nothing is decrypted or allocated.
 */
static bool authenticates(const uint8_t *hdr, size_t hdr_len, const uint8_t *b, size_t n,
                          const uint8_t subkey[SNAP__SUBKEY_BYTES], const char *pid, size_t pid_len,
                          int64_t seq) {
  const bool aead = hdr[6] & ST_AEAD;
  const size_t off = hdr_len + (aead ? NONCE_LEN : 0), tlen = snap__frame_trailer_len(hdr[6]);
  if (n < off + tlen)
    return false;
  const size_t blen = n - off - tlen;
  uint8_t bind[BIND_MAX];
  const size_t bind_len = snap__frame_binding(bind, hdr, hdr_len, seq, pid, pid_len);
  /* A NULL output makes libsodium check the tag without decrypting. */
  if (aead)
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
               NULL, NULL, b + off, blen, b + off + blen, bind, bind_len, b + hdr_len, subkey) == 0;
  uint8_t tag[MAC_TAG_LEN];
  snap__frame_mac(tag, subkey, bind, bind_len, b + off, blen);
  return sodium_memcmp(tag, b + off + blen, MAC_TAG_LEN) == 0;
}

/* ---- decode --------------------------------------------------------------- */

/* One decode call: the body, what it is bound to, its frame and its subkey. */
typedef struct reading {
  where w;
  const uint8_t *b;
  size_t n;
  size_t pid_len;
  frame f;
  bool keyed; /* AEAD or MAC: `subkey` holds the key once resolve_key succeeded */
  uint8_t subkey[SNAP__SUBKEY_BYTES];
  const uint8_t *dek; /* the unit's data key of an envelope body (the store's), or NULL */
} reading;

/*
 * Tries the keys of `kind` the reader holds on the stored header with byte 6
 * set to `stage` and bytes 8-11 to each key's version; the version that
 * authenticates the body, or 0.
 */
static uint32_t try_keyring(reading *r, const snap__eff *e, unsigned kind, unsigned stage) {
  snap_keyring *kr = frame_keyring(e, kind);
  uint8_t hdr[HDR_MAX];
  memcpy(hdr, r->b, r->f.hdr_len);
  hdr[6] = (uint8_t)stage;
  uint32_t v = 0;
  for (size_t i = 0;
       kr && snap__keyring_derive_nth(kr, i, frame_label(kind), frame_context(e, kind), r->w.pid,
                                      r->pid_len, r->subkey, &v) == SNAP_OK;
       i++) {
    snap__put_u32le(hdr + 8, v);
    if (authenticates(hdr, r->f.hdr_len, r->b, r->n, r->subkey, r->w.pid, r->pid_len, r->w.seq))
      return v;
  }
  return 0;
}

/*
 * The body declares a key this reader cannot use: a version its keyring
 * lacks, or a kind (AEAD, MAC) it holds no keyring for. Either the writer used
 * a key the reader does not have (ENOKEY), or the header's key fields were
 * altered (EAUTH). docs/FORMAT.md ("Reading a body") states the rule: try the
 * keys the reader holds, with the header's key version replaced by theirs,
 * and with its stage byte replaced by the other keyed kind (compressed or
 * not); if any such header authenticates the body, the stored one was
 * altered. One changed header byte can only be one of those two fields.
 */
static int missing_key(reading *r, const snap__eff *e) {
  const unsigned declared = r->f.stages & (ST_AEAD | ST_MAC);
  const unsigned other = declared ^ (ST_AEAD | ST_MAC);
  unsigned as = declared;
  uint32_t v = try_keyring(r, e, declared, r->f.stages);
  if (!v && (v = try_keyring(r, e, other, other)) != 0)
    as = other;
  if (!v && (v = try_keyring(r, e, other, other | ST_COMP)) != 0)
    as = other;
  if (v)
    return snap__frame_fail(
        &r->w, SNAP_EAUTH,
        "header declares a body %s under key version %u, but it authenticates as %s "
        "under key version %u: the header was altered",
        frame_kind_name(declared), (unsigned)r->f.key_version, frame_kind_name(as), (unsigned)v);
  if (!frame_keyring(e, declared))
    return snap__frame_fail(&r->w, SNAP_ENOKEY,
                            "body is %s with key version %u but no %s keyring is set",
                            frame_kind_name(declared), (unsigned)r->f.key_version,
                            declared == ST_AEAD ? "encryption" : "integrity");
  return snap__frame_fail(&r->w, SNAP_ENOKEY, "key version %u is not in the keyring",
                          (unsigned)r->f.key_version);
}

/*
 * A body declaring an envelope key reference that this reader cannot open:
 * a genuine envelope body, or a body of this reader's whose header had one
 * byte changed, the type byte of a field, into the envelope key reference.
 * The rule of missing_key() again: try the other values of that byte under
 * the reader's encryption key of the declared version; if one authenticates,
 * the header was altered. The cost (one tag check per value) is paid only
 * on this failure path.
 */
static bool altered_into_envelope(reading *r, const snap__eff *e) {
  const frame_field *k = &r->f.field[FIELD_ENVELOPE];
  if (!e->enc_kr || snap__keyring_derive(e->enc_kr, r->f.key_version, frame_label(ST_AEAD),
                                         e->enc_ctx, r->w.pid, r->pid_len, r->subkey,
                                         NULL) != SNAP_OK)
    return false;
  const size_t at = (size_t)(k->val - r->b) - FIELD_HDR_LEN;
  uint8_t hdr[HDR_MAX];
  memcpy(hdr, r->b, r->f.hdr_len);
  for (unsigned t = 0; t < 256; t++) {
    if (t == FIELD_ENVELOPE)
      continue;
    hdr[at] = (uint8_t)t;
    if (authenticates(hdr, r->f.hdr_len, r->b, r->n, r->subkey, r->w.pid, r->pid_len, r->w.seq))
      return true;
  }
  return false;
}

/* An envelope body opens with the data key of its unit, which only a store
 * with the unit's key table has. */
static int envelope_key(reading *r, const snap__eff *e) {
  if (r->dek) {
    memcpy(r->subkey, r->dek, SNAP_DEK_BYTES);
    return SNAP_OK;
  }
  const frame_field *k = &r->f.field[FIELD_ENVELOPE];
  if (altered_into_envelope(r, e))
    return snap__frame_fail(&r->w, SNAP_EAUTH,
                            "header declares an envelope key reference at byte offset %zu, but "
                            "the body authenticates under key version %u without it: the header "
                            "was altered",
                            (size_t)(k->val - r->b) - FIELD_HDR_LEN, (unsigned)r->f.key_version);
  return snap__frame_fail(&r->w, SNAP_ENOKEY,
                          "body is sealed with the data key (generation %u) of shred unit "
                          "'%.*s' (envelope mode): only a store with the unit's key table opens it",
                          (unsigned)r->f.key_version, k->len ? (int)(k->len > 80 ? 80 : k->len) : 80,
                          k->len ? (const char *)k->val : r->w.pid);
}

/* The subkey of an AEAD or MAC body, or why there is none. */
static int resolve_key(reading *r, const snap__eff *e) {
  if (r->keyed && r->f.field[FIELD_ENVELOPE].present)
    return envelope_key(r, e);
  if (!r->keyed) {
    if ((e->enc_kr || e->mac_kr) && !e->accept_unauth)
      return snap__frame_fail(&r->w, SNAP_EAUTH,
                              "body is neither encrypted nor MAC'd and this reader has a key "
                              "(accept_unauthenticated is off)");
    return SNAP_OK;
  }
  const unsigned kind = r->f.stages & (ST_AEAD | ST_MAC);
  snap_keyring *kr = frame_keyring(e, kind);
  if (kr && snap__keyring_derive(kr, r->f.key_version, frame_label(kind), frame_context(e, kind),
                                 r->w.pid, r->pid_len, r->subkey, NULL) == SNAP_OK)
    return SNAP_OK;
  return missing_key(r, e);
}

/*
 * The frame before anything is allocated: header, limits, lengths and key.
 * A declared length over the decoded limit is checked against the tag first
 * when the body is keyed: only an authentic body is "too big"; an altered
 * length field is an authentication failure.
 */
static int check_frame(reading *r, const snap__eff *e) {
  int rc;
  if ((rc = snap__frame_parse(&r->w, r->b, r->n, &r->f)) != SNAP_OK)
    return rc;
  r->keyed = r->f.stages & (ST_AEAD | ST_MAC);
  /* Limits before anything else looks at the lengths, let alone allocates. */
  if (r->n > e->max_stored)
    return snap__frame_fail(&r->w, SNAP_ETOOBIG,
                            "body of %zu bytes is over the %zu-byte stored limit", r->n,
                            e->max_stored);
  /* An uncompressed body declares exactly its own length: any other value is
   * damage, whatever its size, and is reported (and skipped by a load) as
   * corruption, not refused as a state over the limit, which would stop a
   * load instead of falling back to an older snapshot. */
  if (!(r->f.stages & ST_COMP) && (rc = snap__frame_check_lengths(&r->w, &r->f)) != SNAP_OK)
    return rc;
  if ((rc = resolve_key(r, e)) != SNAP_OK)
    return rc;
  if (r->f.orig_len > e->max_decoded) {
    if (r->keyed && !authenticates(r->b, r->f.hdr_len, r->b, r->n, r->subkey, r->w.pid, r->pid_len,
                                   r->w.seq))
      return snap__frame_fail(
          &r->w, SNAP_EAUTH,
          "frame declares a %llu-byte state (byte offset 12), over the %zu-byte limit, "
          "and the body does not authenticate under key version %u: an altered header, "
          "or the wrong key, context, pid or seq",
          (unsigned long long)r->f.orig_len, e->max_decoded, (unsigned)r->f.key_version);
    return snap__frame_fail(
        &r->w, SNAP_ETOOBIG,
        "frame declares a %llu-byte state (byte offset 12), over the %zu-byte limit",
        (unsigned long long)r->f.orig_len, e->max_decoded);
  }
  return snap__frame_check_lengths(&r->w, &r->f);
}

/* The MAC or the CRC-32 (an AEAD tag is checked while decrypting). */
static int check_trailer(const reading *r) {
  const uint8_t *cbody = r->b + r->f.body_off, *trailer = cbody + r->f.body_len;
  if (r->f.stages & ST_MAC) {
    if (!authenticates(r->b, r->f.hdr_len, r->b, r->n, r->subkey, r->w.pid, r->pid_len, r->w.seq))
      return snap__frame_fail(
          &r->w, SNAP_EAUTH,
          "MAC mismatch under key version %u: wrong key, context, pid or seq, or an "
          "altered body",
          (unsigned)r->f.key_version);
  } else if (!(r->f.stages & ST_AEAD)) {
    uint32_t want = snap__get_u32le(trailer);
    uint32_t got = snap__crc32(r->b, r->f.body_off + r->f.body_len);
    if (want != got)
      return snap__frame_fail(&r->w, SNAP_ECORRUPT,
                              "checksum mismatch (CRC-32 %08x stored at byte offset %zu, "
                              "%08x computed)",
                              (unsigned)want, r->f.body_off + r->f.body_len, (unsigned)got);
  }
  return SNAP_OK;
}

/*
 * Before anything is allocated for a compressed body: a zstd body that can
 * be read (not encrypted) is one zstd frame declaring the original length;
 * an encrypted one declaring more than zlib's bound (1032 times its length)
 * is authenticated first, so a body not yet authenticated never makes the
 * reader allocate more than a zlib body could.
 */
static int check_before_allocating(const reading *r) {
  const frame *f = &r->f;
  if (f->codec != FRAME_CODEC_ZSTD)
    return SNAP_OK;
  const uint8_t *cbody = r->b + f->body_off;
  if (!(f->stages & ST_AEAD))
    return zstd_failure(&r->w, snap__zstd_check(cbody, f->body_len, (size_t)f->orig_len),
                        f->body_len, (size_t)f->orig_len);
  if (f->orig_len / ZLIB_MAX_RATIO > f->body_len &&
      !authenticates(r->b, f->hdr_len, r->b, r->n, r->subkey, r->w.pid, r->pid_len, r->w.seq))
    return snap__frame_fail(&r->w, SNAP_EAUTH,
                            "authentication failed under key version %u: wrong key, context, "
                            "pid or seq, or an altered body",
                            (unsigned)f->key_version);
  return SNAP_OK;
}

/*
 * The state into `out`. One allocation: the state plus a NUL. An encrypted
 * compressed body is decrypted into the tail of the same buffer and
 * decompressed into its head.
 */
static int produce(const reading *r, const snap__eff *e, snap_buf *out) {
  const frame *f = &r->f;
  const size_t orig = (size_t)f->orig_len; /* <= max_decoded, a size_t */
  const bool aead = f->stages & ST_AEAD, comp = f->stages & ST_COMP;
  const uint8_t *cbody = r->b + f->body_off;
  int rc;
  if (orig > SIZE_MAX - 1 - f->body_len) /* only with limits near SIZE_MAX */
    return snap__frame_fail(&r->w, SNAP_ETOOBIG, "a %zu-byte state cannot be buffered", orig);
  if (comp && (rc = check_before_allocating(r)) != SNAP_OK)
    return rc;
  const size_t need = orig + 1 + ((aead && comp) ? f->body_len : 0);
  if ((rc = snap_buf_reserve(out, need)) != SNAP_OK)
    return snap__frame_fail(&r->w, rc, "out of memory for a %zu-byte state", orig);
  uint8_t *dst = out->data;
  if (aead) {
    uint8_t bind[BIND_MAX];
    const size_t bind_len =
        snap__frame_binding(bind, r->b, f->hdr_len, r->w.seq, r->w.pid, r->pid_len);
    uint8_t *plain = comp ? dst + orig + 1 : dst;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(plain, NULL, cbody, f->body_len,
                                                            cbody + f->body_len, bind, bind_len,
                                                            r->b + f->hdr_len, r->subkey) != 0)
      return snap__frame_fail(
          &r->w, SNAP_EAUTH,
          "authentication failed under key version %u: wrong key, context, pid or seq, "
          "or an altered body",
          (unsigned)f->key_version);
    if (comp && (rc = decompress_exact(&r->w, e, f, plain, f->body_len, dst, orig)) != SNAP_OK)
      return rc;
  } else if (comp) {
    if ((rc = decompress_exact(&r->w, e, f, cbody, f->body_len, dst, orig)) != SNAP_OK)
      return rc;
  } else if (orig) {
    memcpy(dst, cbody, orig);
  }
  dst[orig] = 0;
  out->len = orig;
  return SNAP_OK;
}

/* A stream head (frame field 6) authenticated whole: its trailer, or the
 * AEAD tag of its empty body. */
static int check_head(const reading *r) {
  int rc = check_trailer(r);
  if (rc == SNAP_OK && (r->f.stages & ST_AEAD) &&
      !authenticates(r->b, r->f.hdr_len, r->b, r->n, r->subkey, r->w.pid, r->pid_len, r->w.seq))
    return snap__frame_fail(&r->w, SNAP_EAUTH,
                            "authentication failed under key version %u: wrong key, context, "
                            "pid or seq, or an altered head",
                            (unsigned)r->f.key_version);
  return rc;
}

static int decode_body(const char *pid, int64_t seq, const uint8_t *b, size_t body_len,
                       const snap__eff *e, const uint8_t *dek, snap_buf *out, snap_format *fmt,
                       unsigned *stages) {
  reading r = {
      .w = {"decode", pid, seq}, .b = b, .n = body_len, .pid_len = strlen(pid), .dek = dek};
  int rc = check_frame(&r, e);
  const bool head = rc == SNAP_OK && r.f.field[FIELD_CHUNKING].present;
  if (rc == SNAP_OK)
    rc = head ? check_head(&r) : check_trailer(&r);
  if (rc == SNAP_OK && head)
    rc = snap__frame_fail(&r.w, SNAP_EINVAL,
                          "the body is the head of a streamed state (frame field 6): its state "
                          "is in chunk records, read through snap_stream_decoder_open()");
  if (rc == SNAP_OK)
    rc = produce(&r, e, out);
  sodium_memzero(r.subkey, sizeof r.subkey);
  if (rc != SNAP_OK) {
    out->len = 0;
    return rc;
  }
  if (fmt)
    *fmt = r.f.fmt;
  if (stages)
    *stages = r.f.stages;
  return SNAP_OK;
}

int snap__head_open(const char *pid, int64_t seq, const uint8_t *head, size_t len,
                    const snap__eff *e, const uint8_t *dek, frame *f,
                    uint8_t subkey[SNAP__SUBKEY_BYTES]) {
  reading r = {
      .w = {"stream decode", pid, seq}, .b = head, .n = len, .pid_len = strlen(pid), .dek = dek};
  int rc = check_frame(&r, e);
  if (rc == SNAP_OK && !r.f.field[FIELD_CHUNKING].present)
    rc = snap__frame_fail(&r.w, SNAP_EINVAL,
                          "the body is not the head of a streamed state (no frame field 6): "
                          "read it with snap_body_decode()");
  if (rc == SNAP_OK)
    rc = check_head(&r);
  *f = r.f;
  memcpy(subkey, r.subkey, SNAP__SUBKEY_BYTES);
  sodium_memzero(r.subkey, sizeof r.subkey);
  return rc == SNAP_OK ? SNAP_OK : snap__refuse_unverifiable(e, head, len, rc);
}

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
int snap__refuse_unverifiable(const snap__eff *e, const uint8_t *b, size_t n, int rc) {
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

static int body_decode(const char *pid, bool pid_checked, int64_t seq, const void *body_in,
                       size_t body_len, const snap_options *o, const uint8_t *dek, snap_buf *out,
                       snap_format *fmt, unsigned *stages);

int snap_body_decode(const char *pid, int64_t seq, const void *body_in, size_t body_len,
                     const snap_options *o, snap_buf *out, snap_format *fmt, unsigned *stages) {
  return body_decode(pid, false, seq, body_in, body_len, o, NULL, out, fmt, stages);
}

int snap__body_decode_checked(const char *pid, int64_t seq, const void *body, size_t body_len,
                              const snap_options *o, snap_buf *out, snap_format *fmt,
                              unsigned *stages) {
  return body_decode(pid, true, seq, body, body_len, o, NULL, out, fmt, stages);
}

int snap__body_decode_envelope(const char *pid, int64_t seq, const void *body, size_t body_len,
                               const snap_options *o, const uint8_t dek[SNAP_DEK_BYTES],
                               snap_buf *out, snap_format *fmt, unsigned *stages) {
  return body_decode(pid, true, seq, body, body_len, o, dek, out, fmt, stages);
}

static int body_decode(const char *pid, bool pid_checked, int64_t seq, const void *body_in,
                       size_t body_len, const snap_options *o, const uint8_t *dek, snap_buf *out,
                       snap_format *fmt, unsigned *stages) {
  where w = {"decode", pid, seq};
  if (out)
    out->len = 0;
  int rc = snap__body_check_call(&w, pid, pid_checked, seq, out);
  if (rc)
    return rc;
  if (!body_in && body_len)
    return snap__frame_fail(&w, SNAP_EINVAL, "body is NULL but its length is %zu", body_len);
  const uint8_t *b = body_in;
  if (body_len && out->data && b < out->data + out->cap && out->data < b + body_len)
    return snap__frame_fail(&w, SNAP_EINVAL, "the body overlaps the output buffer");

  snap__eff e;
  snap__options_effective(o, &e);
  rc = decode_body(pid, seq, b, body_len, &e, dek, out, fmt, stages);
  return rc == SNAP_OK ? SNAP_OK : snap__refuse_unverifiable(&e, b, body_len, rc);
}

/* What a parsed frame states (frame fields 4 and 5), pointing into it. */
static void typing_of(const frame *f, snap__typing *t) {
  const frame_field *m = &f->field[FIELD_MANIFEST], *d = &f->field[FIELD_METADATA];
  *t = (snap__typing){m->present ? (const char *)m->val : NULL, m->present ? m->len : 0,
                      d->present ? d->val : NULL, d->present ? d->len : 0};
}

int snap__body_typing(const void *body, size_t body_len, snap__typing *t) {
  where w = {"inspect", NULL, 0};
  frame f;
  *t = (snap__typing){NULL, 0, NULL, 0};
  if (!body && body_len)
    return snap__frame_fail(&w, SNAP_EINVAL, "body is NULL but its length is %zu", body_len);
  int rc = snap__frame_parse(&w, body, body_len, &f);
  if (rc == SNAP_OK)
    typing_of(&f, t);
  return rc;
}

int snap_body_typing(const void *body, size_t body_len, const char **manifest,
                     size_t *manifest_len, const uint8_t **metadata, size_t *metadata_len) {
  snap__typing t;
  int rc = snap__body_typing(body, body_len, &t);
  if (manifest)
    *manifest = t.manifest;
  if (manifest_len)
    *manifest_len = t.manifest_len;
  if (metadata)
    *metadata = t.metadata;
  if (metadata_len)
    *metadata_len = t.metadata_len;
  return rc;
}
