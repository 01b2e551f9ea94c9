/* snap_store_check(): what a store would otherwise find out at its first
 * save or load, found at open time instead. */
#include <stdint.h>

#include "store_internal.h"

static int ignore_row(void *ctx, int64_t seq, int64_t ts, const void *body, size_t len) {
  (void)ctx;
  (void)seq;
  (void)ts;
  (void)body;
  (void)len;
  return SNAP_OK;
}

int snap_store_check(snap_store *st) {
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_check: store is NULL");
  int rc = snap__store_defaults_check(st);
  if (rc != SNAP_OK)
    return rc;
  void *self;
  const snap_backend *be = snap__store_backend(st, &self);
  if (be->setting != NULL)
    /* Reading the stored retention opens the data and checks its schema. */
    return snap__retention_check(snap__store_retention(st), be, self);
  /* Otherwise a load opens what the backend opens lazily; whatever it finds
   * is not looked at. */
  snap_criteria all = {0, INT64_MAX, INT64_MIN, INT64_MAX};
  return be->load(self, "snapstore.check", &all, ignore_row, NULL);
}
