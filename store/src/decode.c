/* Decoding a body read by an enumeration exactly as a load of it would
 * (snap_store_decode()), for operators that check or export every body. */
#include <inttypes.h>

#include "snap/admin.h"
#include "store_internal.h"

int snap_store_decode(snap_store *st, const char *pid, int64_t seq, const void *body,
                      size_t body_len, const snap_options *opts, snap_buf *out, snap_format *fmt,
                      unsigned *stages) {
  if (st == NULL || out == NULL)
    return snap_error_set(SNAP_EINVAL, "decode: store or output buffer is NULL");
  snap_options *o = NULL;
  int rc = snap_pid_check(pid);
  if (rc == SNAP_OK)
    rc = snap__store_options(st, pid, opts, &o);
  if (rc == SNAP_OK)
    rc = snap__store_decode(st, pid, seq, body, body_len, o, out, fmt, stages);
  snap_options_free(o);
  return rc;
}
