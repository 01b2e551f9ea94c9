/* Deletes: the rows of a pid matching the criteria, by the backend. */
#include <inttypes.h>

#include "handle.h"

static int delete_matching(snap_store *st, const char *pid, const snap_criteria *c) {
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK)
    return rc;
  if (snap__criteria_empty(c))
    return SNAP_OK;
  return st->be.remove(st->self, pid, c);
}

int snap_delete_matching(snap_store *st, const char *pid, const snap_criteria *c) {
  if (st == NULL || c == NULL)
    return snap_error_set(SNAP_EINVAL, "delete: store or criteria is NULL");
  uint64_t t0 = snap__obs_start(&st->obs);
  int rc = delete_matching(st, pid, c);
  snap__obs_op(&st->obs, t0, &(snap__op){SNAP_EVENT_DELETE, rc, pid, c->max_seq, 0, 0, 0, 0, 0});
  return rc;
}

int snap_delete(snap_store *st, const char *pid, int64_t to_seq) {
  snap_criteria c = {0, to_seq, INT64_MIN, INT64_MAX};
  return snap_delete_matching(st, pid, &c);
}

int snap_delete_one(snap_store *st, const char *pid, int64_t seq) {
  if (seq < 0)
    return snap_error_set(SNAP_EINVAL, "delete pid '%s': seq %" PRId64 " is negative",
                          pid ? pid : "(null)", seq);
  snap_criteria c = {seq, seq, INT64_MIN, INT64_MAX};
  return snap_delete_matching(st, pid, &c);
}

