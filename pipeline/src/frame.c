/* The frame of a body (docs/FORMAT.md): header parsing (the v2 extension
 * block included) and writing, length checks, the binding block and the MAC,
 * shared by encode and decode; and inspect, which reads a header without
 * keys. */
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snap/pipeline.h"
#include "frame.h"
#include "pipeline_internal.h"
#include "stream_internal.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;
static void init_sodium(void) { sodium_ok = sodium_init() >= 0; }

int snap__frame_fail(const where *w, int code, const char *fmt, ...) {
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

size_t snap__frame_trailer_len(unsigned stages) {
  return (stages & ST_AEAD) ? AEAD_TAG_LEN : (stages & ST_MAC) ? MAC_TAG_LEN : CRC_LEN;
}

/* ---- the v2 extension block ---------------------------------------------- */

/* What this reader knows of each allocated field type: its name and the
 * length its value must have. A type without a name is unknown (EFORMAT)
 * until its feature lands and adds its row here and its checks to
 * check_fields(). */
typedef struct field_rule {
  const char *name;
  uint16_t min_len, max_len;
} field_rule;

static const field_rule FIELD_RULES[FIELD_TYPES] = {
    [FIELD_CODEC] = {"codec", 1, 1},
    [FIELD_DICT] = {"dictionary id", 4, 4},
    /* Empty: the unit is the pid; else the unit's bytes (frame.h). */
    [FIELD_ENVELOPE] = {"envelope key reference", 0, SNAP__FIELD_UNIT_MAX},
    [FIELD_MANIFEST] = {"manifest", 1, SNAP_MANIFEST_MAX},
    [FIELD_METADATA] = {"metadata", 1, SNAP_METADATA_MAX},
    /* Its exact length follows from the stage bits (stream_frame.c). */
    [FIELD_CHUNKING] = {"chunking", CHUNKING_LEN_AEAD, CHUNKING_LEN_MAC},
};

/* The block's fields into f->field[], each checked for its place and size. */
static int parse_fields(const where *w, const uint8_t *blk, size_t blen, frame *f) {
  unsigned last = 0;
  for (size_t pos = 2; pos < blen;) {
    const size_t at = HDR_LEN + pos; /* byte offset in the body, for messages */
    if (blen - pos < FIELD_HDR_LEN)
      return snap__frame_fail(w, SNAP_ECORRUPT,
                              "extension block: %zu stray bytes at byte offset %zu, too short "
                              "for a field header",
                              blen - pos, at);
    const unsigned type = blk[pos];
    const size_t len = (size_t)blk[pos + 1] | (size_t)blk[pos + 2] << 8;
    if (len > blen - pos - FIELD_HDR_LEN)
      return snap__frame_fail(w, SNAP_ECORRUPT,
                              "extension block: field type %u at byte offset %zu declares %zu "
                              "bytes, past the block's end",
                              type, at, len);
    if (type >= FIELD_TYPES || !FIELD_RULES[type].name)
      return snap__frame_fail(w, SNAP_EFORMAT,
                              "extension block: unknown field type %u at byte offset %zu", type,
                              at);
    if (type <= last)
      return snap__frame_fail(w, SNAP_EFORMAT,
                              "extension block: field type %u at byte offset %zu follows type "
                              "%u (types ascend, each at most once)",
                              type, at, last);
    const field_rule *r = &FIELD_RULES[type];
    if (len < r->min_len || len > r->max_len)
      return snap__frame_fail(w, SNAP_EFORMAT,
                              "extension block: %s field (type %u) at byte offset %zu has %zu "
                              "bytes, not %u..%u",
                              r->name, type, at, len, r->min_len, r->max_len);
    f->field[type] = (frame_field){true, (uint16_t)len, blk + pos + FIELD_HDR_LEN};
    last = type;
    pos += FIELD_HDR_LEN + len;
  }
  return SNAP_OK;
}

/* The v2 block after the 20-byte header: its length, then its fields. */
static int parse_block(const where *w, const uint8_t *b, size_t n, frame *f) {
  if (n < HDR_LEN + 2)
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "truncated: %zu bytes, a version 2 frame's header alone is %u", n,
                            HDR_LEN + 2);
  const size_t blen = (size_t)b[HDR_LEN] | (size_t)b[HDR_LEN + 1] << 8;
  if (blen < 2 + FIELD_HDR_LEN)
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "extension block of %zu bytes at byte offset %u holds no field (a "
                            "version 2 frame has at least one)",
                            blen, HDR_LEN);
  if (blen > FRAME_EXT_MAX)
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "extension block of %zu bytes at byte offset %u is over the %u-byte "
                            "limit",
                            blen, HDR_LEN, FRAME_EXT_MAX);
  if (n < HDR_LEN + blen)
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "truncated: %zu bytes, the header with its extension block is %zu", n,
                            HDR_LEN + blen);
  f->hdr_len = HDR_LEN + blen;
  return parse_fields(w, b + HDR_LEN, blen, f);
}

/* What the known fields say, against each other and the stage byte. */
static int check_fields(const where *w, frame *f) {
  const frame_field *c = &f->field[FIELD_CODEC];
  if (c->present) {
    if (!(f->stages & ST_COMP))
      return snap__frame_fail(w, SNAP_EFORMAT,
                              "codec field on a body whose stage byte (offset 6) does not "
                              "declare compression");
    if (c->val[0] != FRAME_CODEC_ZSTD)
      return snap__frame_fail(w, SNAP_EFORMAT,
                              "unknown codec %u in the codec field (%s)", c->val[0],
                              c->val[0] == FRAME_CODEC_ZLIB ? "zlib is written as no codec field"
                                                            : "this reader knows 2 = zstd");
    f->codec = c->val[0];
  } else if (f->stages & ST_COMP) {
    f->codec = FRAME_CODEC_ZLIB;
  }
  const frame_field *d = &f->field[FIELD_DICT];
  if (d->present) {
    if (f->codec != FRAME_CODEC_ZSTD)
      return snap__frame_fail(w, SNAP_EFORMAT,
                              "dictionary field on a body that is not zstd-compressed");
    f->dict_id = snap__get_u32le(d->val);
    if (f->dict_id == 0)
      return snap__frame_fail(w, SNAP_EFORMAT, "dictionary field names id 0, which is no "
                                               "dictionary's");
  }
  const frame_field *k = &f->field[FIELD_ENVELOPE];
  if (k->present && !(f->stages & ST_AEAD))
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "envelope key reference on a body whose stage byte (offset 6) does "
                            "not declare AEAD");
  if (k->present && k->len && memchr(k->val, 0, k->len))
    return snap__frame_fail(w, SNAP_EFORMAT, "envelope key reference: the unit holds a NUL byte");
  const frame_field *m = &f->field[FIELD_MANIFEST];
  const char *why = NULL;
  if (m->present && !snap__manifest_valid(m->val, m->len, &why))
    return snap__frame_fail(w, SNAP_EFORMAT, "manifest field: %s", why);
  if (f->field[FIELD_CHUNKING].present)
    return snap__chunking_check_field(w, f);
  return SNAP_OK;
}

/* ---- the header ------------------------------------------------------------ */

/* Magic, version, reserved fields; the v2 block. */
static int parse_fixed(const where *w, const uint8_t *b, size_t n, frame *f) {
  if (n < FRAME_MAGIC_LEN || memcmp(b, FRAME_MAGIC, FRAME_MAGIC_LEN) != 0)
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "not a snapstore body (%zu bytes, no \"SNPB\" magic at offset 0)", n);
  if (n < HDR_LEN)
    return snap__frame_fail(w, SNAP_ECORRUPT, "truncated: %zu bytes, the frame header alone is %u",
                            n, HDR_LEN);
  if (b[4] != FRAME_V1 && b[4] != FRAME_V2)
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "unknown frame version %u at byte offset 4 (this reader knows 1 and 2)",
                            b[4]);
  if (b[5] != SNAP_FORMAT_JSON && b[5] != SNAP_FORMAT_MSGPACK)
    return snap__frame_fail(w, SNAP_EFORMAT, "unknown payload format %u at byte offset 5", b[5]);
  if (b[6] & ~ST_KNOWN)
    return snap__frame_fail(w, SNAP_EFORMAT, "reserved stage bits 0x%02x set at byte offset 6",
                            b[6] & ~ST_KNOWN);
  if (b[7] != 0)
    return snap__frame_fail(w, SNAP_EFORMAT, "reserved byte at offset 7 is 0x%02x, not 0", b[7]);
  f->version = b[4];
  f->fmt = (snap_format)b[5];
  f->stages = b[6];
  f->key_version = snap__get_u32le(b + 8);
  f->orig_len = snap__get_u64le(b + 12);
  f->hdr_len = HDR_LEN;
  int rc = f->version == FRAME_V2 ? parse_block(w, b, n, f) : SNAP_OK;
  return rc ? rc : check_fields(w, f);
}

/* The header on its own: magic, version, reserved fields, the v2 block and
 * its fields, flag consistency. */
int snap__frame_parse(const where *w, const uint8_t *b, size_t n, frame *f) {
  /* The output is defined on every path, failures included: a caller can never
   * read a field this function did not write. */
  *f = (frame){0};
  int rc = parse_fixed(w, b, n, f);
  if (rc)
    return rc;
  bool keyed = f->stages & (ST_AEAD | ST_MAC);
  if ((f->stages & ST_AEAD) && (f->stages & ST_MAC))
    return snap__frame_fail(w, SNAP_ECORRUPT, "stage byte at offset 6 sets both AEAD and MAC");
  if (keyed && f->key_version == 0)
    return snap__frame_fail(w, SNAP_ECORRUPT, "%s body with key version 0 (byte offset 8)",
                            frame_kind_name(f->stages & (ST_AEAD | ST_MAC)));
  if (!keyed && f->key_version != 0)
    return snap__frame_fail(
        w, SNAP_ECORRUPT,
        "key version %u at byte offset 8 on a body that is neither encrypted nor MAC'd",
        (unsigned)f->key_version);
  f->body_off = f->hdr_len + ((f->stages & ST_AEAD) ? NONCE_LEN : 0);
  f->trailer_len = snap__frame_trailer_len(f->stages);
  if (n < f->body_off + f->trailer_len)
    return snap__frame_fail(w, SNAP_ECORRUPT,
                            "truncated: %zu bytes, this frame's overhead alone is %zu", n,
                            f->body_off + f->trailer_len);
  f->body_len = n - f->body_off - f->trailer_len;
  return SNAP_OK;
}

/* The declared original length against what the frame carries. */
int snap__frame_check_lengths(const where *w, const frame *f) {
  if (f->field[FIELD_CHUNKING].present) /* a stream head: its chunks hold the state */
    return snap__chunking_check_lengths(w, f);
  if (!(f->stages & ST_COMP)) {
    if (f->orig_len != f->body_len)
      return snap__frame_fail(w, SNAP_ECORRUPT,
                              "uncompressed body of %zu bytes but byte offset 12 declares %llu",
                              f->body_len, (unsigned long long)f->orig_len);
    return SNAP_OK;
  }
  if (f->body_len == 0 || f->orig_len <= f->body_len)
    return snap__frame_fail(
        w, SNAP_ECORRUPT,
        "compressed body of %zu bytes declares %llu (compression is only kept when it "
        "shrinks)",
        f->body_len, (unsigned long long)f->orig_len);
  const bool zstd = f->codec == FRAME_CODEC_ZSTD;
  if (f->orig_len / (zstd ? ZSTD_MAX_RATIO : ZLIB_MAX_RATIO) > f->body_len)
    return snap__frame_fail(
        w, SNAP_ECORRUPT, "compressed body of %zu bytes declares %llu, more than %s can inflate it to",
        f->body_len, (unsigned long long)f->orig_len, zstd ? "zstd" : "zlib");
  return SNAP_OK;
}

/* ---- writing a header --------------------------------------------------------- */

int snap__frame_fields_add(const where *w, frame_fields *ff, unsigned type, const void *val,
                           size_t len) {
  if (type == 0 || type >= FIELD_TYPES || type <= ff->last_type)
    return snap__frame_fail(w, SNAP_EINVAL,
                            "frame field type %u after type %u (types ascend, 1..%u)", type,
                            ff->last_type, FIELD_TYPES - 1);
  const size_t used = ff->len ? ff->len : 2;
  if (len > FRAME_EXT_MAX - used || FIELD_HDR_LEN > FRAME_EXT_MAX - used - len)
    return snap__frame_fail(w, SNAP_EINVAL,
                            "frame field type %u of %zu bytes does not fit the %u-byte "
                            "extension block",
                            type, len, FRAME_EXT_MAX);
  uint8_t *p = ff->block + used;
  p[0] = (uint8_t)type;
  p[1] = (uint8_t)len;
  p[2] = (uint8_t)(len >> 8);
  if (len)
    memcpy(p + FIELD_HDR_LEN, val, len);
  ff->len = used + FIELD_HDR_LEN + len;
  ff->block[0] = (uint8_t)ff->len;
  ff->block[1] = (uint8_t)(ff->len >> 8);
  ff->last_type = type;
  return SNAP_OK;
}

size_t snap__frame_header_len(const frame_fields *ff) { return HDR_LEN + ff->len; }

void snap__frame_write_header(uint8_t *dst, const frame_fields *ff, snap_format fmt,
                              unsigned stages, uint32_t key_version, uint64_t orig_len) {
  memcpy(dst, FRAME_MAGIC, FRAME_MAGIC_LEN);
  dst[4] = (uint8_t)(ff->len ? FRAME_V2 : FRAME_V1);
  dst[5] = (uint8_t)fmt;
  dst[6] = (uint8_t)stages;
  dst[7] = 0;
  snap__put_u32le(dst + 8, key_version);
  snap__put_u64le(dst + 12, orig_len);
  if (ff->len)
    memcpy(dst + HDR_LEN, ff->block, ff->len);
}

/* header || u64le(seq) || u32le(pid_len) || pid: what AEAD and MAC bind. */
size_t snap__frame_binding(uint8_t *dst, const uint8_t *hdr, size_t hdr_len, int64_t seq,
                           const char *pid, size_t pid_len) {
  memcpy(dst, hdr, hdr_len);
  snap__put_u64le(dst + hdr_len, (uint64_t)seq);
  snap__put_u32le(dst + hdr_len + 8, (uint32_t)pid_len);
  memcpy(dst + hdr_len + 12, pid, pid_len);
  return hdr_len + 12 + pid_len;
}

void snap__frame_mac(uint8_t tag[MAC_TAG_LEN], const uint8_t subkey[SNAP__SUBKEY_BYTES],
                     const uint8_t *bind, size_t bind_len, const uint8_t *body, size_t body_len) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, subkey, SNAP__SUBKEY_BYTES, MAC_TAG_LEN);
  crypto_generichash_update(&st, bind, bind_len);
  if (body_len)
    crypto_generichash_update(&st, body, body_len);
  crypto_generichash_final(&st, tag, MAC_TAG_LEN);
  sodium_memzero(&st, sizeof st);
}

int snap__body_check_call(where *w, const char *pid, bool pid_checked, int64_t seq, snap_buf *out) {
  if (!pid || !out) {
    w->pid = NULL; /* nothing to name */
    return snap__frame_fail(w, SNAP_EINVAL, "NULL %s", pid ? "output buffer" : "persistence id");
  }
  int rc = pid_checked ? SNAP_OK : snap_pid_check(pid);
  if (rc)
    return snap_error_set(rc, "%s: %s", w->op, snap_error_message());
  if (seq < 0)
    return snap__frame_fail(w, SNAP_EINVAL, "sequence number %lld is negative", (long long)seq);
  if (pthread_once(&sodium_once, init_sodium) != 0 || !sodium_ok)
    return snap__frame_fail(w, SNAP_ENOMEM, "libsodium failed to initialise");
  return SNAP_OK;
}

/* The header of a body read without keys: parsed and its lengths checked. */
static int inspect_frame(const void *body, size_t body_len, frame *f) {
  where w = {"inspect", NULL, 0};
  if (!body && body_len)
    return snap__frame_fail(&w, SNAP_EINVAL, "body is NULL but its length is %zu", body_len);
  int rc = snap__frame_parse(&w, body, body_len, f);
  return rc ? rc : snap__frame_check_lengths(&w, f);
}

int snap_body_inspect(const void *body, size_t body_len, snap_format *fmt, unsigned *stages,
                      uint32_t *key_version, uint64_t *orig_len) {
  frame f;
  int rc = inspect_frame(body, body_len, &f);
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

int snap_body_inspect_codec(const void *body, size_t body_len, snap_compression *codec,
                            uint32_t *dict_id) {
  frame f;
  int rc = inspect_frame(body, body_len, &f);
  if (rc)
    return rc;
  if (codec)
    *codec = f.codec == FRAME_CODEC_ZSTD   ? SNAP_COMPRESSION_ZSTD
             : f.codec == FRAME_CODEC_ZLIB ? SNAP_COMPRESSION_ZLIB
                                           : SNAP_COMPRESSION_NONE;
  if (dict_id)
    *dict_id = f.dict_id;
  return SNAP_OK;
}
