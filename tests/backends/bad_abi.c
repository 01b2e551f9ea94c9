/* A backend built for an ABI version this snapstore does not know: the loader
 * must refuse it before registering anything. */
#include "snap/sys/plugin_entry.h"

static int bad_open(void **self, const char *config_json, const snap_host *host) {
  (void)config_json;
  (void)host;
  *self = NULL;
  return 0;
}
static void bad_close(void *self) { (void)self; }
static int bad_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  (void)self;
  (void)rows;
  (void)n;
  (void)keep;
  return 0;
}
static int bad_load(void *self, const char *pid, const snap_criteria *c, snap_backend_emit emit,
                    void *ctx) {
  (void)self;
  (void)pid;
  (void)c;
  (void)emit;
  (void)ctx;
  return 0;
}
static int bad_remove(void *self, const char *pid, const snap_criteria *c) {
  (void)self;
  (void)pid;
  (void)c;
  return 0;
}

static const snap_backend table = {.abi_version = 99u,
                                   .name = "future",
                                   .open = bad_open,
                                   .close = bad_close,
                                   .put = bad_put,
                                   .load = bad_load,
                                   .remove = bad_remove};

SNAP_BACKEND_EXPORT const snap_backend *snap_backend_entry(void) { return &table; }
