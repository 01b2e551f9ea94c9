/* Forgetting a shred unit (snap_forget()): its data key becomes a tombstone
 * in the key table, its cached copy is wiped, then the snapshots of every
 * pid of the unit are deleted. The key goes first: from then on no body of
 * the unit decrypts, in the store or in any backup of its data, even if a
 * crash stops the deletes half way (a rerun finishes them). */
#include <inttypes.h>
#include <string.h>

#include "handle.h"
#include "snap/admin.h"
#include "snap/envelope.h"

/* Pids listed per page while looking for a prefix unit's pids. */
#define PAGE 256

static const snap_criteria everything = {0, INT64_MAX, INT64_MIN, INT64_MAX};

static int found_one(void *ctx, int64_t seq, int64_t ts, const void *body, size_t len) {
  (void)seq;
  (void)ts;
  (void)body;
  (void)len;
  *(int *)ctx = 1;
  return SNAP_OK;
}

int snap__envelope_unit_pids(snap_store *st, const snap__unit *u, snap__unit_pid_fn fn,
                             void *ud) {
  int had = 0;
  int rc = st->be.load(st->self, u->name, &everything, found_one, &had);
  if (rc == SNAP_OK && had)
    rc = fn(st, u->name, ud);
  if (rc != SNAP_OK || !st->env.by_prefix)
    return rc;
  /* The pids of a prefix unit sort right after the unit itself (every one
   * of them starts with it). */
  if (st->be.list_pids == NULL)
    return snap__store_unsupported(&st->be, "list_pids (the pids of a prefix unit)");
  char *after = NULL;
  bool more = true;
  while (rc == SNAP_OK && more) {
    snap_pid_page page = SNAP_PID_PAGE_INIT;
    rc = snap_store_list_pids(st, after ? after : u->name, PAGE, &page);
    more = rc == SNAP_OK && page.n == PAGE;
    for (size_t i = 0; rc == SNAP_OK && i < page.n; i++) {
      const char *pid = page.pids[i];
      if (strncmp(pid, u->name, u->len) != 0) {
        more = false; /* past every pid that starts with the unit */
        break;
      }
      if (snap__envelope_unit(&st->env, pid) != u->len)
        continue; /* "acme2:x" starts with "acme" but is another unit */
      rc = fn(st, pid, ud);
    }
    if (rc == SNAP_OK && page.n > 0) {
      snap_free(after);
      after = snap_strdup(page.pids[page.n - 1]);
      if (after == NULL)
        rc = snap_error_set(SNAP_ENOMEM, "out of memory listing the pids of unit '%.80s'",
                            u->name);
    }
    snap_pid_page_dispose(&page);
  }
  snap_free(after);
  return rc;
}

/* Deletes every snapshot of one pid of the unit being forgotten. */
static int remove_pid(snap_store *st, const char *pid, void *ud) {
  int rc = st->be.remove(st->self, pid, &everything);
  if (rc == SNAP_OK)
    (*(uint64_t *)ud)++;
  return rc;
}

static int forget(snap_store *st, const char *unit, snap_forget_report *rep) {
  int rc = snap_pid_check(unit);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "forget: %s", snap_error_message());
  snap__unit u = {unit, strlen(unit)};
  if (st->env.by_prefix && snap__envelope_unit(&st->env, unit) != u.len)
    return snap_error_set(SNAP_EINVAL,
                          "forget '%.80s': not a unit of this store (units are the part of a pid "
                          "before the first '%s')",
                          unit, st->env.separator);
  const snap_backend *kbe;
  void *ks;
  if ((rc = snap__envelope_keys(st, &kbe, &ks)) != SNAP_OK)
    return rc;
  rc = kbe->key_forget(ks, unit, &rep->generation);
  if (rc < 0)
    return rc;
  rep->keys = (uint32_t)rc;
  snap__envelope_drop(st, &u);
  atomic_fetch_add(&st->env.forgotten, 1);
  if (st->env.by_prefix)
    return snap__envelope_unit_pids(st, &u, remove_pid, &rep->pids);
  rc = st->be.remove(st->self, unit, &everything);
  if (rc == SNAP_OK)
    rep->pids = 1;
  return rc;
}

int snap_forget(snap_store *st, const char *unit, snap_forget_report *report) {
  snap_forget_report rep = {0, 0, 0};
  if (st == NULL || unit == NULL)
    return snap_error_set(SNAP_EINVAL, "forget: %s is NULL", st ? "unit" : "store");
  uint64_t t0 = snap__obs_start(&st->obs);
  int rc = forget(st, unit, &rep);
  snap__obs_op(&st->obs, t0, &(snap__op){SNAP_EVENT_DELETE, rc, unit, -1, 0, 0, 0, 0, 0});
  if (report != NULL)
    *report = rep;
  return rc;
}

int snap_store_unit_of(const snap_store *st, const char *pid, char *buf, size_t cap) {
  if (st == NULL || pid == NULL || buf == NULL)
    return snap_error_set(SNAP_EINVAL, "unit_of: NULL %s", !st ? "store" : !pid ? "pid" : "buffer");
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK)
    return rc;
  size_t n = snap__envelope_unit(&st->env, pid);
  if (n + 1 > cap)
    return snap_error_set(SNAP_ETOOBIG, "unit_of pid '%.80s': the unit needs %zu bytes", pid,
                          n + 1);
  memcpy(buf, pid, n);
  buf[n] = 0;
  return SNAP_OK;
}
