/* The frame of a body (docs/FORMAT.md): header parsing, length checks, the
 * binding block and the MAC, shared by encode and decode; and inspect, which
 * reads a header without keys. */
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snap/pipeline.h"
#include "frame.h"
#include "pipeline_internal.h"

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

/* The header on its own: magic, version, reserved fields, flag consistency. */
int snap__frame_parse(const where *w, const uint8_t *b, size_t n, frame *f) {
  /* The output is defined on every path, failures included: a caller can never
   * read a field this function did not write. */
  *f = (frame){0};
  if (n < FRAME_MAGIC_LEN || memcmp(b, FRAME_MAGIC, FRAME_MAGIC_LEN) != 0)
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "not a snapstore body (%zu bytes, no \"SNPB\" magic at offset 0)", n);
  if (n < HDR_LEN)
    return snap__frame_fail(w, SNAP_ECORRUPT, "truncated: %zu bytes, the frame header alone is %u",
                            n, HDR_LEN);
  if (b[4] != FRAME_VERSION)
    return snap__frame_fail(w, SNAP_EFORMAT,
                            "unknown frame version %u at byte offset 4 (this reader knows %u)",
                            b[4], FRAME_VERSION);
  if (b[5] != SNAP_FORMAT_JSON && b[5] != SNAP_FORMAT_MSGPACK)
    return snap__frame_fail(w, SNAP_EFORMAT, "unknown payload format %u at byte offset 5", b[5]);
  if (b[6] & ~ST_KNOWN)
    return snap__frame_fail(w, SNAP_EFORMAT, "reserved stage bits 0x%02x set at byte offset 6",
                            b[6] & ~ST_KNOWN);
  if (b[7] != 0)
    return snap__frame_fail(w, SNAP_EFORMAT, "reserved byte at offset 7 is 0x%02x, not 0", b[7]);
  f->fmt = (snap_format)b[5];
  f->stages = b[6];
  f->key_version = snap__get_u32le(b + 8);
  f->orig_len = snap__get_u64le(b + 12);
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
  f->body_off = HDR_LEN + ((f->stages & ST_AEAD) ? NONCE_LEN : 0);
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
  if (!(f->stages & ST_ZLIB)) {
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
  if (f->orig_len / ZLIB_MAX_RATIO > f->body_len)
    return snap__frame_fail(
        w, SNAP_ECORRUPT,
        "compressed body of %zu bytes declares %llu, more than zlib can inflate it to", f->body_len,
        (unsigned long long)f->orig_len);
  return SNAP_OK;
}

/* header || u64le(seq) || u32le(pid_len) || pid: what AEAD and MAC bind. */
size_t snap__frame_binding(uint8_t *dst, const uint8_t *hdr, int64_t seq, const char *pid,
                           size_t pid_len) {
  memcpy(dst, hdr, HDR_LEN);
  snap__put_u64le(dst + HDR_LEN, (uint64_t)seq);
  snap__put_u32le(dst + HDR_LEN + 8, (uint32_t)pid_len);
  memcpy(dst + HDR_LEN + 12, pid, pid_len);
  return HDR_LEN + 12 + pid_len;
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

int snap_body_inspect(const void *body, size_t body_len, snap_format *fmt, unsigned *stages,
                      uint32_t *key_version, uint64_t *orig_len) {
  where w = {"inspect", NULL, 0};
  if (!body && body_len)
    return snap__frame_fail(&w, SNAP_EINVAL, "body is NULL but its length is %zu", body_len);
  frame f;
  int rc = snap__frame_parse(&w, body, body_len, &f);
  if (rc == SNAP_OK)
    rc = snap__frame_check_lengths(&w, &f);
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
