/* The store's body codec: the pipeline's encoder and decoder, with envelope
 * bodies sealed with, and opened by, the data key of their shred unit, which
 * the store keeps (envelope.c). Every path that encodes or decodes a body
 * (saves, loads, snap_store_decode(), rewrites) goes through here, so a
 * store reads direct and envelope bodies alike. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"

int snap__store_encode(snap_store *st, const char *pid, int64_t seq, snap_format fmt,
                       const void *state, size_t len, const snap_options *o,
                       const snap__typing *t, snap_buf *body, unsigned *stages) {
  snap_keyring *kr;
  const char *ctx;
  if (!snap__options_envelope(o, &kr, &ctx))
    return snap__body_encode_typed(pid, seq, fmt, state, len, o, NULL, t, body, stages);
  char unit[SNAP_PID_MAX + 1];
  size_t ulen = snap__envelope_unit(&st->env, pid);
  memcpy(unit, pid, ulen);
  unit[ulen] = 0;
  snap__unit u = {unit, ulen};
  snap__envelope_key k = {.unit = unit, .unit_len = ulen};
  int rc = snap__envelope_save_key(st, &u, kr, ctx, k.dek, &k.generation);
  if (rc != SNAP_OK)
    rc = snap_error_set(rc, "save pid '%.80s' seq %" PRId64 ": %s", pid, seq, snap_error_message());
  else
    rc = snap__body_encode_typed(pid, seq, fmt, state, len, o, &k, t, body, stages);
  sodium_memzero(k.dek, sizeof k.dek);
  return rc;
}

int snap__store_decode(snap_store *st, const char *pid, int64_t seq, const void *body,
                       size_t body_len, const snap_options *o, snap_buf *out, snap_format *fmt,
                       unsigned *stages) {
  snap_keyring *kr;
  const char *ctx;
  snap__envelope_ref ref;
  if (snap__body_is_head(body, body_len)) {
    /* Its chunks are read through the backend, the whole state checked
     * before this returns; a state over the limit names the stream reader. */
    unsigned ignored = 0;
    return snap__stream_load_whole(st, pid, seq, body, body_len, o, out,
                                   fmt ? fmt : &(snap_format){SNAP_FORMAT_JSON},
                                   stages ? stages : &ignored);
  }
  if (!snap__options_encryption(o, &kr, &ctx) ||
      !snap__body_envelope_ref(pid, seq, body, body_len, &ref))
    return snap__body_decode_checked(pid, seq, body, body_len, o, out, fmt, stages);
  uint8_t dek[SNAP_DEK_BYTES];
  int rc = snap__envelope_ref_key(st, &ref, kr, ctx, dek);
  if (rc != SNAP_OK) {
    char why[512];
    snprintf(why, sizeof why, "%s", snap_error_message());
    /* Without the unit's key, the pipeline tells a body whose header was
     * altered into naming a unit (EAUTH) from a genuine one (docs/FORMAT.md,
     * "Envelope key reference"); a genuine one keeps the store's reason. */
    int auth = snap__body_decode_checked(pid, seq, body, body_len, o, out, fmt, stages);
    if (auth == SNAP_EAUTH)
      rc = auth;
    else
      rc = snap_error_set(rc, "decode pid '%.80s' seq %" PRId64 ": %s", pid, seq, why);
    if (out != NULL)
      out->len = 0;
  } else {
    rc = snap__body_decode_envelope(pid, seq, body, body_len, o, dek, out, fmt, stages);
  }
  sodium_memzero(dek, sizeof dek);
  return rc;
}

bool snap__store_envelope_current(const char *pid, int64_t seq, const void *body, size_t len,
                                  const snap_options *o) {
  snap_keyring *kr;
  const char *ctx;
  snap__envelope_ref ref;
  return snap__options_envelope(o, &kr, &ctx) &&
         snap__body_envelope_ref(pid, seq, body, len, &ref) == 1;
}
