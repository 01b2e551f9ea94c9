/* Option resolution: the options a save or load of a pid uses, field by
 * field from the call's, the resolver's for the pid, the store's defaults
 * and its configuration keys (docs/STORE.md, "Options"), restricted to what
 * the backend can honour; with a cache so that a steady stream of calls
 * with one options object resolves it once. Saves and loads both use it,
 * and neither is used by it. */
#include <pthread.h>
#include <string.h>

#include "handle.h"

/* Option groups the pipeline can apply; a backend's capabilities pick among them. */
#define OPT_GROUPS (SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION | SNAP_OPT_INTEGRITY)

/* Resolves `layers` field by field and drops what the backend cannot honour
 * (`*dropped`); fails when a dropped group is required. */
static int resolve_for_backend(const snap_store *st, const snap_options *const *layers, size_t n,
                               snap_options **out, unsigned *dropped) {
  *out = NULL;
  *dropped = 0;
  int rc = snap_options_resolve(out, layers, n);
  if (rc == SNAP_OK)
    rc = snap_options_restrict(*out, st->be.capabilities & OPT_GROUPS, dropped);
  if (rc != SNAP_OK) {
    snap_options_free(*out);
    *out = NULL;
    *dropped = 0;
  }
  return rc;
}

int snap__store_refresh_effective(snap_store *st) {
  snap__store_cache_clear(st); /* a cached resolution stands on the layers that change */
  const snap_options *layers[2] = {st->defaults, st->config_opts};
  snap_options *eff;
  unsigned dropped;
  /* On failure (a required option the backend lacks) every call resolves on
   * its own and reports that error, so keep no shortcut. */
  int rc = resolve_for_backend(st, layers, 2, &eff, &dropped);
  snap_options_free(st->effective);
  st->effective = eff;
  st->effective_dropped = dropped;
  return rc == SNAP_EUNSUPPORTED ? SNAP_OK : rc;
}

int snap_store_set_default_options(snap_store *st, const snap_options *o) {
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_set_default_options: store is NULL");
  snap_options *copy = NULL;
  if (o != NULL) {
    int rc = snap_options_copy(&copy, o);
    if (rc != SNAP_OK)
      return rc;
  }
  pthread_rwlock_wrlock(&st->lock);
  snap_options *old = st->defaults;
  st->defaults = copy;
  int rc = snap__store_refresh_effective(st);
  if (rc != SNAP_OK) {
    st->defaults = old;
    int rc2 = snap__store_refresh_effective(st);
    (void)rc2; /* the previous layers resolved before, so this cannot newly fail */
    old = copy;
  }
  pthread_rwlock_unlock(&st->lock);
  snap_options_free(old);
  return rc;
}

int snap_store_set_resolver(snap_store *st, snap_options_resolver fn, void *ud) {
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_set_resolver: store is NULL");
  pthread_rwlock_wrlock(&st->lock);
  st->resolver = fn;
  st->resolver_ud = fn ? ud : NULL;
  pthread_rwlock_unlock(&st->lock);
  return SNAP_OK;
}

typedef struct snap__cached_opts {
  snap_options *o;
  unsigned dropped;
  unsigned refs; /* the cache slot's and each user's; under cache_lock */
} cached_opts;

/* Drops one reference (caller holds cache_lock); the last frees the entry. */
static void cached_unref_locked(cached_opts *c) {
  if (c && --c->refs == 0) {
    snap_options_free(c->o);
    snap_free(c);
  }
}

static void cached_release(snap_store *st, cached_opts *c) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&st->cache_lock);
  cached_unref_locked(c);
  pthread_mutex_unlock(&st->cache_lock);
}

void snap__store_cache_clear(snap_store *st) {
  pthread_mutex_lock(&st->cache_lock);
  cached_unref_locked(st->cache);
  st->cache = NULL;
  st->cache_key = NULL;
  pthread_mutex_unlock(&st->cache_lock);
}

void snap__resolution_done(snap_store *st, snap__resolution *r) {
  snap_options_free(r->owned);
  cached_release(st, r->held);
  r->owned = NULL;
  r->held = NULL;
}

/* Resolves `call` over the store's layers through the cache (no resolver in
 * play). On a hit no allocation happens: a load or save with the same options
 * object as the call before pays a lock and a compare. */
static int resolve_cached(snap_store *st, const snap_options *call, snap__resolution *res,
                          const snap_options **use, unsigned *ignored) {
  uint64_t gen = snap_options_generation(call);
  pthread_mutex_lock(&st->cache_lock);
  cached_opts *c = st->cache;
  if (c != NULL && st->cache_key == call && st->cache_gen == gen) {
    c->refs++;
    pthread_mutex_unlock(&st->cache_lock);
    res->held = c;
    *use = c->o;
    *ignored = c->dropped;
    return SNAP_OK;
  }
  pthread_mutex_unlock(&st->cache_lock);
  const snap_options *layers[3] = {call, st->defaults, st->config_opts};
  snap_options *r;
  unsigned dropped;
  int rc = resolve_for_backend(st, layers, 3, &r, &dropped);
  if (rc != SNAP_OK)
    return rc;
  c = snap_malloc(sizeof *c);
  if (c == NULL) { /* uncached, but resolved */
    res->owned = r;
    *use = r;
    *ignored = dropped;
    return SNAP_OK;
  }
  *c = (cached_opts){r, dropped, 2}; /* the slot's reference and ours */
  pthread_mutex_lock(&st->cache_lock);
  cached_unref_locked(st->cache);
  st->cache = c;
  st->cache_key = call;
  st->cache_gen = gen;
  pthread_mutex_unlock(&st->cache_lock);
  res->held = c;
  *use = r;
  *ignored = dropped;
  return SNAP_OK;
}

int snap__store_resolve(snap_store *st, const char *pid, const snap_options *call,
                           snap__resolution *res, const snap_options **use, unsigned *ignored) {
  res->owned = NULL;
  res->held = NULL;
  const snap_options *per_pid = NULL;
  if (st->resolver != NULL) {
    snap_error_clear();
    int rc = st->resolver(st->resolver_ud, pid, &per_pid);
    if (rc != SNAP_OK) {
      if (snap_error_code() == SNAP_OK)
        snap_error_set(rc, "options resolver failed for pid '%s' (%s)", pid, snap_strerror(rc));
      return rc;
    }
  }
  if (call == NULL && per_pid == NULL && st->effective != NULL) {
    *use = st->effective;
    *ignored = st->effective_dropped;
    return SNAP_OK;
  }
  if (call != NULL && st->resolver == NULL)
    return resolve_cached(st, call, res, use, ignored);
  const snap_options *layers[4] = {call, per_pid, st->defaults, st->config_opts};
  snap_options *r;
  unsigned dropped;
  int rc = resolve_for_backend(st, layers, 4, &r, &dropped);
  if (rc != SNAP_OK)
    return rc;
  res->owned = r;
  *use = r;
  *ignored = dropped;
  return SNAP_OK;
}

int snap__store_defaults_check(snap_store *st) {
  const snap_options *layers[2] = {st->defaults, st->config_opts};
  snap_options *eff;
  unsigned dropped;
  pthread_rwlock_rdlock(&st->lock);
  int rc = resolve_for_backend(st, layers, 2, &eff, &dropped);
  pthread_rwlock_unlock(&st->lock);
  snap_options_free(eff);
  return rc;
}

int snap__store_options(snap_store *st, const char *pid, const snap_options *call,
                        snap_options **out) {
  *out = NULL;
  snap__resolution res = {NULL, NULL};
  const snap_options *use = NULL;
  unsigned ignored = 0;
  snap_options *copy = NULL;
  pthread_rwlock_rdlock(&st->lock);
  int rc = snap__store_resolve(st, pid, call, &res, &use, &ignored);
  /* The caller owns what it gets: shared options are copied. */
  if (rc == SNAP_OK && res.owned == NULL)
    rc = snap_options_copy(&copy, use);
  pthread_rwlock_unlock(&st->lock);
  if (rc == SNAP_OK && res.owned != NULL) {
    copy = res.owned;
    res.owned = NULL;
  }
  snap__resolution_done(st, &res);
  if (rc == SNAP_OK)
    *out = copy;
  else
    snap_options_free(copy);
  return rc;
}

