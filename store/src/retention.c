/* Retention is a property of the data set, not of one opener (docs/STORE.md,
 * "Retention"). The first opener's "keep" is stored with the data through the
 * backend's setting() slot; an opener that does not say "keep" adopts the
 * stored value, and one that says another value is refused unless it says
 * "keep_change": true. */
#include <stdio.h>
#include <string.h>

#include "snap/store_layer.h"
#include "store_internal.h"

#define SETTING "keep"

int snap__retention_init(snap__retention *r, const snap__store_config *cfg, const char *prefix) {
  memset(r, 0, sizeof *r);
  if (pthread_mutex_init(&r->lock, NULL) != 0)
    return snap_error_set(SNAP_ENOMEM, "cannot create a lock");
  r->keep = cfg->keep;
  r->keep_set = cfg->keep_set;
  r->keep_change = cfg->keep_change;
  snprintf(r->prefix, sizeof r->prefix, "%s", prefix ? prefix : "");
  atomic_init(&r->settled, false);
  return SNAP_OK;
}

void snap__retention_dispose(snap__retention *r) { pthread_mutex_destroy(&r->lock); }

static void show_keep(char *dst, size_t cap, int64_t keep) {
  if (keep == 0)
    snprintf(dst, cap, "0 (keep all)");
  else
    snprintf(dst, cap, "%lld", (long long)keep);
}

/* The stored value is `stored`: adopt it, or refuse an explicit other one. */
static int agree(snap__retention *r, int64_t stored) {
  if (stored < 0 || stored > UINT32_MAX)
    return snap_error_set(SNAP_ECORRUPT, "the data set's stored retention %lld is not a count",
                          (long long)stored);
  if (r->keep_set && !r->keep_change && stored != (int64_t)r->keep) {
    char path[SNAP__CONF_PATH_MAX], mine[32], theirs[32];
    snap__conf_join(path, sizeof path, r->prefix, "keep");
    show_keep(mine, sizeof mine, r->keep);
    show_keep(theirs, sizeof theirs, stored);
    return snap_error_set(SNAP_ECONFIG,
                          "%s: this configuration keeps %s snapshots per pid but the data set "
                          "keeps %s; leave \"keep\" out to adopt the data set's value, or add "
                          "\"keep_change\": true to change it",
                          path, mine, theirs);
  }
  if (!r->keep_change)
    r->keep = (uint32_t)stored;
  return SNAP_OK;
}

int snap__retention_keep(snap__retention *r, const snap_backend *be, void *self, uint32_t *keep) {
  if (atomic_load_explicit(&r->settled, memory_order_acquire)) {
    *keep = r->keep;
    return SNAP_OK;
  }
  pthread_mutex_lock(&r->lock);
  int rc = SNAP_OK;
  if (!atomic_load_explicit(&r->settled, memory_order_relaxed)) {
    if (be->setting != NULL) {
      int64_t v = r->keep;
      int found = be->setting(self, SETTING, r->keep_change ? SNAP_SETTING_SET : SNAP_SETTING_INIT,
                              &v);
      if (found < 0)
        rc = found;
      else if (found > 0 && !r->keep_change)
        rc = agree(r, v);
    }
    if (rc == SNAP_OK)
      atomic_store_explicit(&r->settled, true, memory_order_release);
  }
  *keep = r->keep;
  pthread_mutex_unlock(&r->lock);
  return rc;
}

int snap__retention_check(snap__retention *r, const snap_backend *be, void *self) {
  if (be->setting == NULL)
    return SNAP_OK;
  pthread_mutex_lock(&r->lock);
  int rc = SNAP_OK;
  if (!atomic_load_explicit(&r->settled, memory_order_relaxed)) {
    /* Read only: checking must work where writing does not (read-only media). */
    int64_t v = 0;
    int found = be->setting(self, SETTING, SNAP_SETTING_GET, &v);
    if (found < 0)
      rc = found;
    else if (found > 0)
      rc = agree(r, v);
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}
