/*
 * A library of upcasters loaded from a configuration document ("upcasters"),
 * linking nothing of snapstore: everything comes through snap_upcaster_host.
 * Each step wraps the state it is given: test.Account/n -> /n+1 turns S into
 * {"v":n+1,"was":S}, so a test can tell from a state exactly which steps ran.
 * A state containing "fail" makes a step fail; gap.Thing/1 -> /2 exists but
 * gap.Thing/2 -> /3 does not (a missing step). refusing_register is an entry
 * point that refuses, for the error path. With WRAP_STEP_DELAY_US set, each
 * step sleeps that long: a slow migration, so that a live writer's newer
 * saves land between its reads and its conditional replaces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap/sys/upcaster_entry.h"

static const snap_upcaster_host *host;
static long delay_us;

static int wrap(void *ud, const char *from, const char *to, snap_format fmt, const uint8_t *state,
                size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)ud;
  (void)from;
  if (fmt != SNAP_FORMAT_JSON)
    return host->error(SNAP_EFORMAT, "wrap: JSON states only");
  if (len >= 4 && memmem(state, len, "fail", 4) != NULL)
    return host->error(SNAP_EINVAL, "wrap: this state asks to fail");
  if (delay_us > 0) {
    struct timespec ts = {0, delay_us * 1000L};
    nanosleep(&ts, NULL);
  }
  const char *slash = strrchr(to, '/');
  char head[64];
  int hl = snprintf(head, sizeof head, "{\"v\":%s,\"was\":", slash ? slash + 1 : "0");
  int rc = host->buf_reserve(out, (size_t)hl + len + 1);
  if (rc != SNAP_OK)
    return rc;
  memcpy(out->data, head, (size_t)hl);
  memcpy(out->data + hl, state, len);
  out->data[(size_t)hl + len] = '}';
  out->len = (size_t)hl + len + 1;
  *out_fmt = SNAP_FORMAT_JSON;
  return SNAP_OK;
}

SNAP_UPCASTERS_EXPORT int snap_upcasters_register(const snap_upcaster_host *h) {
  if (h->abi_version < 1)
    return SNAP_EABI;
  host = h;
  const char *d = getenv("WRAP_STEP_DELAY_US");
  delay_us = d ? atol(d) % 1000000L : 0;
  int rc = h->add(h, "test.Account/1", "test.Account/2", wrap, NULL);
  if (rc == SNAP_OK)
    rc = h->add(h, "test.Account/2", "test.Account/3", wrap, NULL);
  if (rc == SNAP_OK)
    rc = h->add(h, "gap.Thing/1", "gap.Thing/2", wrap, NULL);
  return rc;
}

SNAP_UPCASTERS_EXPORT int refusing_register(const snap_upcaster_host *h);
SNAP_UPCASTERS_EXPORT int refusing_register(const snap_upcaster_host *h) {
  return h->error(SNAP_EINVAL, "this library refuses to register anything");
}
