/* Streamed snapshots in the operator's sweeps: a stream head is checked
 * through a stream reader (every chunk authenticated, one chunk in memory at
 * a time), never decoded as a body, and copied with its chunks. */
#include <stdlib.h>

#include "snap/store_stream.h"
#include "snapctl.h"

#define CHECK_BUF (64u << 10)

bool ctl_is_stream_head(const void *body, size_t len) {
  snap_stream_info info;
  return snap_body_inspect_stream(body, len, &info) == SNAP_OK && info.chunked;
}

int ctl_stream_check(snap_store *st, const char *pid, int64_t seq) {
  snap_criteria c = {seq, seq, 0, INT64_MAX};
  snap_load_stream *r = NULL;
  int rc = snap_load_stream_open(st, pid, &c, NULL, 0, &r, NULL);
  if (rc == SNAP_OK && r == NULL)
    rc = snap_error_set(SNAP_ENOTFOUND, "pid '%s' seq %lld: deleted since it was listed", pid,
                        (long long)seq);
  uint8_t *buf = rc == SNAP_OK ? malloc(CHECK_BUF) : NULL;
  if (rc == SNAP_OK && buf == NULL)
    rc = snap_error_set(SNAP_ENOMEM, "out of memory");
  size_t got = 1;
  while (rc == SNAP_OK && got > 0)
    rc = snap_load_stream_read(r, buf, CHECK_BUF, &got);
  free(buf);
  snap_load_stream_close(r);
  return rc;
}
