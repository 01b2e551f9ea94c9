/* The store handle: opening a store on a backend (its table checked, its
 * configuration read, the backend opened on its section), the services the
 * host offers the backend, closing, and what the store's other files ask of
 * the handle. Saves, loads, deletes and option resolution have files of
 * their own. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "snap/store_layer.h"

/* ------------------------------------------------------------------------ */
/* Host services for backends                                                */
/* ------------------------------------------------------------------------ */

static int host_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int host_error(int code, const char *fmt, ...) {
  char msg[512] = "";
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
      msg[0] = '\0';
    va_end(ap);
  }
  return snap_error_set(code, "%s", msg);
}

static void host_init(snap_host *h) {
  memset(h, 0, sizeof *h);
  h->abi_version = SNAP_BACKEND_ABI_VERSION;
  h->error = host_error;
  h->malloc = snap_malloc;
  h->realloc = snap_realloc;
  h->free = snap_free;
  h->report = snap__obs_host_report;
  snap__conf_host_fill(h);
}

/* ------------------------------------------------------------------------ */
/* Open and close                                                            */
/* ------------------------------------------------------------------------ */

static bool valid_backend_name(const char *name) {
  if (name == NULL)
    return false;
  size_t n = strlen(name);
  if (n == 0 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

/* Checks a backend table before anything of it is used. */
static int check_table(const snap_backend *backend) {
  if (backend == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_open_backend: backend is NULL");
  if (backend->abi_version < 1 || backend->abi_version > SNAP_BACKEND_ABI_VERSION)
    return snap_error_set(SNAP_EABI,
                          "backend '%s': ABI version %" PRIu32
                          " is not supported (this host supports 1..%u)",
                          valid_backend_name(backend->name) ? backend->name : "?",
                          backend->abi_version, SNAP_BACKEND_ABI_VERSION);
  if (!valid_backend_name(backend->name))
    return snap_error_set(SNAP_EINVAL, "backend name is missing or not [A-Za-z0-9_.-]{1,64}");
  bool can_open = backend->open || (backend->abi_version >= 3 && backend->open_conf);
  if (!can_open || !backend->close || !backend->put || !backend->load || !backend->remove)
    return snap_error_set(SNAP_EINVAL, "backend '%s': a required operation is NULL", backend->name);
  return SNAP_OK;
}

int snap_store_open_backend(snap_store **out, const struct snap_backend *backend,
                            const char *config_json) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "snap_store_open_backend: out is NULL");
  *out = NULL;
  int rc = check_table(backend);
  snap_conf *c = NULL;
  if (rc == SNAP_OK)
    rc = snap__conf_parse(&c, config_json, "");
  if (rc == SNAP_OK)
    rc = snap__store_open_conf(out, backend, c, 0);
  snap__conf_free(c);
  return rc;
}

/* The store's locks; on failure none is left to destroy. */
static int locks_init(snap_store *st) {
  if (pthread_rwlock_init(&st->lock, NULL) != 0)
    return snap_error_set(SNAP_ENOMEM, "snap_store_open_backend: cannot create a lock");
  if (pthread_mutex_init(&st->pool_lock, NULL) != 0) {
    pthread_rwlock_destroy(&st->lock);
    return snap_error_set(SNAP_ENOMEM, "snap_store_open_backend: cannot create a lock");
  }
  if (pthread_mutex_init(&st->cache_lock, NULL) != 0) {
    pthread_mutex_destroy(&st->pool_lock);
    pthread_rwlock_destroy(&st->lock);
    return snap_error_set(SNAP_ENOMEM, "snap_store_open_backend: cannot create a lock");
  }
  return SNAP_OK;
}

/* Opens the backend on what of `section` the store did not read: a table of
 * ABI version 3 reads the section itself; an older one gets its keys as
 * JSON text, whose key paths the host still knows while it is lent. */
static int open_backend(snap_store *st, snap_conf *section, unsigned flags) {
  if (st->be.abi_version >= 3 && st->be.open_conf != NULL) {
    int rc = st->be.open_conf(&st->self, section, flags, &st->host.host);
    if (rc == SNAP_OK && (rc = snap__conf_done(section)) != SNAP_OK) {
      st->be.close(st->self); /* it left a key unread */
      st->self = NULL;
    }
    return rc;
  }
  char *json = NULL;
  int rc = snap__conf_rest(section, &json);
  if (rc != SNAP_OK)
    return rc;
  snap__conf_loan loan;
  snap__conf_lend(&loan, json, section->path);
  rc = st->be.open(&st->self, json, &st->host.host);
  snap__conf_return(&loan);
  snap_free(json);
  return rc;
}

/* A separate key store: the same backend opened again on the "keystore"
 * section, used for its key table only. */
static int open_keystore(snap_store *st, snap_conf *ks, unsigned flags) {
  if (st->be.abi_version < 4 || st->be.open_conf == NULL || st->be.key_get == NULL)
    return snap_error_set(SNAP_ECONFIG,
                          "%s: backend '%s' cannot hold a key store (it has no key table)",
                          ks->path, st->be.name);
  snap_backend *kb = &st->env.ks_be;
  *kb = st->be;
  int rc = kb->open_conf(&st->env.ks_self, ks, flags, &st->host.host);
  if (rc == SNAP_OK && (rc = snap__conf_done(ks)) != SNAP_OK) {
    kb->close(st->env.ks_self);
    st->env.ks_self = NULL;
  }
  if (rc != SNAP_OK)
    st->env.ks_self = NULL;
  return rc;
}

/* The store's keys, its retention and options, then the backend. */
static int open_with(snap_store *st, snap_conf *section, unsigned flags) {
  snap__store_config cfg;
  int rc = snap__obs_init(&st->obs, st->be.name);
  if (rc != SNAP_OK)
    return rc;
  if ((rc = snap__store_config_read(&cfg, section)) != SNAP_OK)
    return rc;
  rc = snap__retention_init(&st->retention, &cfg, section->path);
  st->retention_init = rc == SNAP_OK;
  if (rc == SNAP_OK) {
    st->max_load_attempts = cfg.max_load_attempts;
    st->config_opts = cfg.opts;
    cfg.opts = NULL;
    rc = snap__dicts_init(&st->dicts);
    if (rc == SNAP_OK)
      rc = snap__dicts_attach(st, &st->config_opts);
    if (rc == SNAP_OK)
      rc = snap__store_refresh_effective(st);
  }
  if (rc == SNAP_OK)
    rc = snap__envelope_init(&st->env, &cfg.envelope);
  if (rc == SNAP_OK)
    rc = open_backend(st, section, flags);
  if (rc == SNAP_OK && cfg.envelope.has_keystore &&
      (rc = open_keystore(st, &cfg.envelope.keystore, flags)) != SNAP_OK) {
    st->be.close(st->self); /* the caller closes nothing of a failed open */
    st->self = NULL;
  }
  snap__store_config_dispose(&cfg);
  return rc;
}

int snap__store_open_conf(snap_store **out, const struct snap_backend *backend,
                          snap_conf *section, unsigned flags) {
  *out = NULL;
  int rc = check_table(backend);
  if (rc != SNAP_OK)
    return rc;
  snap_store *st = snap_calloc(1, sizeof *st);
  if (st == NULL)
    return snap_error_set(SNAP_ENOMEM, "snap_store_open_backend: out of memory");
  /* Only the slots of the table's own ABI version: later ones stay NULL. */
  memcpy(&st->be, backend, snap_backend_table_size(backend->abi_version));
  host_init(&st->host.host);
  st->host.obs = &st->obs;
  if ((rc = locks_init(st)) != SNAP_OK) {
    snap_free(st);
    return rc;
  }
  rc = open_with(st, section, flags);
  if (rc != SNAP_OK) {
    st->self = NULL; /* a backend that failed to open has nothing to close */
    snap_store_close(st);
    return rc;
  }
  *out = st;
  return SNAP_OK;
}

void snap_store_close(snap_store *st) {
  if (st == NULL)
    return;
  snap__envelope_dispose(&st->env);
  if (st->self != NULL)
    st->be.close(st->self);
  snap__upcasters_free(st);
  snap_options_free(st->effective);
  snap_options_free(st->defaults);
  snap_options_free(st->config_opts);
  snap__dicts_dispose(&st->dicts);
  for (size_t i = 0; i < st->pool_n; i++)
    snap_buf_dispose(&st->pool[i]);
  snap__obs_dispose(&st->obs);
  snap__store_cache_clear(st);
  pthread_mutex_destroy(&st->cache_lock);
  if (st->retention_init)
    snap__retention_dispose(&st->retention);
  pthread_mutex_destroy(&st->pool_lock);
  pthread_rwlock_destroy(&st->lock);
  snap_free(st);
}

unsigned snap_store_capabilities(const snap_store *st) { return st ? st->be.capabilities : 0u; }

snap__obs *snap__store_obs(const snap_store *st) { return st ? (snap__obs *)&st->obs : NULL; }

const char *snap_store_backend_name(const snap_store *st) { return st ? st->be.name : NULL; }

/* ------------------------------------------------------------------------ */
/* For the store's other files (store_internal.h)                            */
/* ------------------------------------------------------------------------ */

const snap_backend *snap__store_backend(const snap_store *st, void **self) {
  *self = st->self;
  return &st->be;
}

snap__retention *snap__store_retention(snap_store *st) { return &st->retention; }

