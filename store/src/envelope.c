/* Envelope keys in the store: the configuration ("envelope" in the store's
 * section), the shred unit of a pid, and the data key a save seals with or a
 * load opens with: from the cache of unwrapped keys, else from the key table
 * (unwrapped with the keyring), else, for a save, a new random key wrapped
 * and stored in the key table before the body that uses it; and the online
 * backup of a separate key store. The rules are docs/STORE.md's "Envelope
 * keys". */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "snap/admin.h"

/* Tries at creating a unit's key against concurrent creators and forgets. */
#define CREATE_TRIES 4

int snap__envelope_config_read(snap__envelope_config *ec, snap_conf *c) {
  static const char *const units[] = {"pid", "prefix", NULL};
  memset(ec, 0, sizeof *ec);
  ec->cache_size = SNAP__DEK_CACHE_DEFAULT;
  snap_conf env;
  int rc = snap__conf_obj(c, "envelope", 0, &env);
  if (rc <= 0)
    return rc;
  int unit = 0;
  const char *sep = NULL;
  int64_t cache = 0;
  snap__conf_enum(&env, "unit", 0, units, &unit);
  int has_sep = snap__conf_str(&env, "separator", SNAP_CONF_NONEMPTY, &sep);
  if (snap__conf_int(&env, "cache_size", 0, 1, SNAP__DEK_CACHE_MAX, &cache) > 0)
    ec->cache_size = (size_t)cache;
  if (has_sep > 0 && strlen(sep) >= sizeof ec->separator)
    snap__conf_error(&env, "separator", "is %zu bytes; at most %zu are allowed", strlen(sep),
                     sizeof ec->separator - 1);
  else if (has_sep > 0 && unit != 1)
    snap__conf_error(&env, "separator", "only meaningful with \"unit\": \"prefix\"");
  else if (has_sep == 0 && unit == 1)
    snap__conf_error(&env, "separator", "missing: \"unit\": \"prefix\" needs it");
  if (snap__conf_type(&env, "keystore") >= 0) {
    ec->has_keystore = true;
    snap__conf_section(&env, "keystore", &ec->keystore);
  }
  if ((rc = snap__conf_done(&env)) != SNAP_OK)
    return rc;
  ec->by_prefix = unit == 1;
  if (has_sep > 0)
    snprintf(ec->separator, sizeof ec->separator, "%s", sep);
  return SNAP_OK;
}

int snap__envelope_init(snap__envelope *ev, const snap__envelope_config *ec) {
  memset(ev, 0, sizeof *ev);
  ev->by_prefix = ec->by_prefix;
  memcpy(ev->separator, ec->separator, sizeof ev->separator);
  ev->cache_size = ec->cache_size;
  if (pthread_mutex_init(&ev->lock, NULL) != 0)
    return snap_error_set(SNAP_ENOMEM, "cannot create the envelope lock");
  ev->lock_init = true;
  return SNAP_OK;
}

void snap__envelope_dispose(snap__envelope *ev) {
  snap__dek_cache_free(ev->cache);
  ev->cache = NULL;
  if (ev->ks_self != NULL)
    ev->ks_be.close(ev->ks_self);
  ev->ks_self = NULL;
  if (ev->lock_init)
    pthread_mutex_destroy(&ev->lock);
  ev->lock_init = false;
}

size_t snap__envelope_unit(const snap__envelope *ev, const char *pid) {
  size_t n = strlen(pid);
  if (!ev->by_prefix)
    return n;
  const char *at = strstr(pid, ev->separator);
  /* A pid that starts with the separator, or has none, is its own unit. */
  return at != NULL && at > pid ? (size_t)(at - pid) : n;
}

/* The cache, created on first use (a store that never uses envelope mode
 * holds no guarded slab). */
static int cache_of(snap__envelope *ev, snap__dek_cache **out) {
  pthread_mutex_lock(&ev->lock);
  int rc = SNAP_OK;
  if (ev->cache == NULL)
    rc = snap__dek_cache_new(&ev->cache, ev->cache_size);
  *out = ev->cache;
  pthread_mutex_unlock(&ev->lock);
  return rc;
}

/* The key table a store uses: its key store's, else its backend's. */
int snap__envelope_keys(snap_store *st, const snap_backend **be, void **self) {
  snap__envelope *ev = &st->env;
  if (ev->ks_self != NULL) {
    *be = &ev->ks_be;
    *self = ev->ks_self;
  } else {
    *be = &st->be;
    *self = st->self;
  }
  if ((*be)->key_get == NULL || (*be)->key_create == NULL || (*be)->key_forget == NULL ||
      (*be)->key_list == NULL || (*be)->key_rewrap == NULL || (*be)->dataset == NULL)
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "envelope keys: backend '%s' has no key table (backend ABI 4 key slots)",
                          (*be)->name);
  return SNAP_OK;
}

static int copy_row(void *ctx, const snap_backend_key *k) {
  snap__key_row *r = ctx;
  r->found = 1;
  r->live = k->wrapped != NULL;
  r->gen = k->generation;
  r->mv = k->master_version;
  r->len = k->wrapped_len;
  if (k->wrapped)
    memcpy(r->wrapped, k->wrapped,
           k->wrapped_len < sizeof r->wrapped ? k->wrapped_len : sizeof r->wrapped);
  return SNAP_OK;
}

int snap__key_row_read(const snap_backend *kbe, void *ks, const char *unit, snap__key_row *r) {
  memset(r, 0, sizeof *r);
  return kbe->key_get(ks, unit, copy_row, r);
}

/* Unwraps generation `want` of a live row's key set into `dek` (1), or
 * finds the set without it (0). Only the newest generation is cached (a save
 * takes whatever is cached), and only when no drop came since `epoch`. */
static int open_row(snap_store *st, snap__dek_cache *cache, uint64_t epoch,
                    const snap_backend *kbe, void *ks, const snap__key_row *r, const snap__unit *u,
                    uint32_t want, snap_keyring *kr, const char *ctx,
                    uint8_t dek[SNAP_DEK_BYTES]) {
  size_t n = 0;
  int rc = snap__keyset_check(u->name, r->wrapped, r->len, r->gen, r->mv, &n);
  if (rc != SNAP_OK)
    return rc;
  const uint8_t *rec = snap__keyset_find(r->wrapped, n, want);
  if (rec == NULL)
    return 0;
  uint32_t gen = 0;
  rc = snap__dek_unwrap(kr, ctx, kbe->dataset(ks), u->name, u->len, rec, SNAP_WRAPPED_KEY_BYTES,
                        dek, &gen);
  if (rc == SNAP_OK) {
    atomic_fetch_add(&st->env.unwrapped, 1);
    if (want == r->gen)
      rc = snap__dek_cache_put(cache, u->name, u->len, r->gen, dek, epoch);
    if (rc != SNAP_OK)
      sodium_memzero(dek, SNAP_DEK_BYTES);
  }
  return rc == SNAP_OK ? 1 : rc;
}

/* A new key of generation `gen`, stored unless a concurrent creator won;
 * 1 when ours was stored (`dek` holds it), 0 when `*now` holds the winner. */
static int create_key(snap_store *st, const snap_backend *kbe, void *ks, const snap__unit *u,
                      uint32_t gen, snap_keyring *kr, const char *ctx,
                      uint8_t dek[SNAP_DEK_BYTES], snap__key_row *now) {
  uint8_t rec[SNAP_WRAPPED_KEY_BYTES];
  uint32_t mv = 0;
  snap__dek_generate(dek);
  int rc = snap__dek_wrap(kr, ctx, kbe->dataset(ks), u->name, u->len, gen, dek, NULL, NULL, rec,
                          &mv);
  snap_backend_key k = {u->name, gen, mv, rec, sizeof rec};
  memset(now, 0, sizeof *now);
  if (rc == SNAP_OK)
    rc = kbe->key_create(ks, &k, copy_row, now);
  if (rc == SNAP_OK && now->live && now->gen == gen && now->len == sizeof rec &&
      sodium_memcmp(now->wrapped, rec, sizeof rec) == 0) {
    atomic_fetch_add(&st->env.created, 1);
    return 1;
  }
  sodium_memzero(dek, SNAP_DEK_BYTES);
  return rc;
}

int snap__envelope_save_key(snap_store *st, const snap__unit *u, snap_keyring *kr,
                            const char *ctx, uint8_t dek[SNAP_DEK_BYTES], uint32_t *gen) {
  const snap_backend *kbe;
  void *ks;
  snap__dek_cache *cache;
  int rc = snap__envelope_keys(st, &kbe, &ks);
  if (rc == SNAP_OK)
    rc = cache_of(&st->env, &cache);
  if (rc != SNAP_OK)
    return rc;
  if (snap__dek_cache_get(cache, u->name, u->len, 0, dek, gen))
    return SNAP_OK;
  uint64_t epoch = snap__dek_cache_epoch(cache);
  snap__key_row r = {0};
  if ((rc = kbe->key_get(ks, u->name, copy_row, &r)) != SNAP_OK)
    return rc;
  for (int t = 0; t < CREATE_TRIES; t++) {
    if (r.found && r.live) {
      /* The newest generation: the first of the set, always in it. */
      *gen = r.gen;
      rc = open_row(st, cache, epoch, kbe, ks, &r, u, r.gen, kr, ctx, dek);
      return rc == 0 ? snap_error_set(SNAP_EAUTH, "unit '%.80s': an altered record", u->name)
             : rc > 0 ? SNAP_OK
                      : rc;
    }
    /* None yet, or forgotten: the next generation. */
    uint32_t next = r.found ? r.gen + 1 : 1;
    if (next == 0)
      return snap_error_set(SNAP_EINVAL, "unit '%.80s': no key generation left", u->name);
    rc = create_key(st, kbe, ks, u, next, kr, ctx, dek, &r);
    if (rc < 0)
      return rc;
    if (rc == 1) {
      *gen = next;
      rc = snap__dek_cache_put(cache, u->name, u->len, next, dek, epoch);
      if (rc != SNAP_OK)
        sodium_memzero(dek, SNAP_DEK_BYTES);
      return rc;
    }
  }
  return snap_error_set(SNAP_EBUSY, "unit '%.80s': its data key kept changing while a save "
                                    "created one",
                        u->name);
}

int snap__envelope_load_key(snap_store *st, const snap__unit *u, uint32_t gen, snap_keyring *kr,
                            const char *ctx, uint8_t dek[SNAP_DEK_BYTES]) {
  const snap_backend *kbe;
  void *ks;
  snap__dek_cache *cache;
  int rc = snap__envelope_keys(st, &kbe, &ks);
  if (rc == SNAP_OK)
    rc = cache_of(&st->env, &cache);
  if (rc != SNAP_OK)
    return rc;
  if (snap__dek_cache_get(cache, u->name, u->len, gen, dek, NULL))
    return SNAP_OK;
  uint64_t epoch = snap__dek_cache_epoch(cache);
  snap__key_row r = {0};
  if ((rc = kbe->key_get(ks, u->name, copy_row, &r)) != SNAP_OK)
    return rc;
  if (!r.found)
    return snap_error_set(SNAP_ENOKEY,
                          "unit '%.80s' has no data key in the key table of data set '%s' (the "
                          "body comes from another data set or key store)",
                          u->name, kbe->dataset(ks));
  if (!r.live)
    return snap_error_set(SNAP_ENOKEY,
                          "unit '%.80s' was forgotten: its data key (generation %" PRIu32
                          ") was deleted and its bodies can no longer be read",
                          u->name, gen);
  if (r.gen < gen)
    return snap_error_set(SNAP_ENOKEY,
                          "unit '%.80s': the body needs data key generation %" PRIu32
                          " but the key table holds generation %" PRIu32
                          " (a key store older than the data?)",
                          u->name, gen, r.gen);
  rc = open_row(st, cache, epoch, kbe, ks, &r, u, gen, kr, ctx, dek);
  if (rc == 0)
    return snap_error_set(SNAP_ENOKEY,
                          "unit '%.80s' was forgotten or given new data keys since: its data key "
                          "generation %" PRIu32 " was deleted (the unit holds generation %" PRIu32
                          " now) and bodies sealed with it can no longer be read",
                          u->name, gen, r.gen);
  return rc > 0 ? SNAP_OK : rc;
}

int snap__envelope_ref_key(snap_store *st, const snap__envelope_ref *ref, snap_keyring *kr,
                           const char *ctx, uint8_t dek[SNAP_DEK_BYTES]) {
  char unit[SNAP_PID_MAX + 1];
  memcpy(unit, ref->unit, ref->unit_len);
  unit[ref->unit_len] = 0;
  snap__unit u = {unit, ref->unit_len};
  return snap__envelope_load_key(st, &u, ref->generation, kr, ctx, dek);
}

void snap__envelope_drop(snap_store *st, const snap__unit *u) {
  snap__dek_cache *cache = NULL;
  pthread_mutex_lock(&st->env.lock);
  cache = st->env.cache;
  pthread_mutex_unlock(&st->env.lock);
  if (cache != NULL)
    snap__dek_cache_drop(cache, u->name, u->len);
}

void snap__envelope_metrics(const snap_store *st, snap_metrics *m) {
  snap__envelope *ev = (snap__envelope *)&st->env; /* its lock is logically mutable */
  m->keys_created = atomic_load(&ev->created);
  m->keys_unwrapped = atomic_load(&ev->unwrapped);
  m->units_forgotten = atomic_load(&ev->forgotten);
  m->keys_rewrapped = atomic_load(&ev->rewrapped);
  m->key_cache_misses = 0;
  pthread_mutex_lock(&ev->lock);
  if (ev->cache != NULL) {
    snap__dek_cache_counts n;
    snap__dek_cache_stats(ev->cache, &n);
    m->key_cache_misses = n.misses;
  }
  pthread_mutex_unlock(&ev->lock);
}

/* ---- the separate key store --------------------------------------------- */

int snap_store_backup_keys(snap_store *st, const char *path) {
  if (st == NULL || path == NULL || path[0] == '\0')
    return snap_error_set(SNAP_EINVAL, "backup: %s", st ? "path is empty" : "store is NULL");
  if (st->env.ks_self == NULL)
    return snap_error_set(SNAP_ENOTFOUND,
                          "backup: the store has no separate key store (envelope.keystore): its "
                          "key table is in its data, and snap_store_backup() copies it");
  return snap__store_backup_to(&st->env.ks_be, st->env.ks_self, path, "a key store");
}

int snap_store_keys_apart(const snap_store *st, bool *apart) {
  if (st == NULL || apart == NULL)
    return snap_error_set(SNAP_EINVAL, "keys apart: NULL %s", st ? "output" : "store");
  *apart = st->env.ks_self != NULL;
  return SNAP_OK;
}
