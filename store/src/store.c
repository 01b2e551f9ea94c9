/* The backend-neutral store: configuration, option resolution, capability
 * filtering, encoding on save, decoding and fallback on load, retention. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "snap/store_layer.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "observe_internal.h"
#include "store_internal.h"

/* Option groups the pipeline can apply; a backend's capabilities pick among them. */
#define OPT_GROUPS (SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION | SNAP_OPT_INTEGRITY)

/* Encoding buffers kept for reuse, so a steady stream of saves allocates nothing.
 * Buffers that grew beyond POOL_MAX_CAP are released instead of kept, so one
 * huge state does not pin its memory for the life of the store. */
#define POOL_SLOTS 8
#define POOL_MAX_CAP (4u << 20)

/* Rows committed per put without a heap-allocated row array. */
#define STACK_ROWS 16

struct snap_store {
  snap_backend be; /* our own copy of the table */
  void *self;
  snap__host host; /* the backend's snap_host, and where its reports go */
  snap__obs obs;
  snap__retention retention;
  bool retention_init;
  unsigned max_load_attempts;

  /* Guarded by `lock`: written only by set_default_options / set_resolver. */
  pthread_rwlock_t lock;
  snap_options *config_opts; /* from the configuration keys */
  snap_options *defaults;    /* snap_store_set_default_options() copy, or NULL */
  snap_options *effective; /* defaults over config, restricted: used when no other layer applies */
  unsigned effective_dropped;
  snap_options_resolver resolver;
  void *resolver_ud;

  /* The last caller's options resolved over the store's layers (when no
   * resolver applies): a steady stream of calls with the same options object
   * resolves it once. Entries are shared by reference count; `cache_lock`
   * guards the slot and the counts. */
  pthread_mutex_t cache_lock;
  const snap_options *cache_key;
  uint64_t cache_gen;
  struct cached_opts *cache;

  pthread_mutex_t pool_lock;
  snap_buf pool[POOL_SLOTS];
  size_t pool_n;
};

struct snap_prepared {
  snap_store *st;
  char *pid; /* points into the same allocation */
  int64_t seq;
  int64_t timestamp;
  snap_format format;
  unsigned stages;
  unsigned ignored;
  size_t state_len;
  snap_buf body;
};

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
/* Buffer pool                                                               */
/* ------------------------------------------------------------------------ */

static snap_buf pool_get(snap_store *st) {
  snap_buf b = SNAP_BUF_INIT;
  pthread_mutex_lock(&st->pool_lock);
  if (st->pool_n > 0)
    b = st->pool[--st->pool_n];
  pthread_mutex_unlock(&st->pool_lock);
  return b;
}

static void pool_put(snap_store *st, snap_buf *b) {
  if (b->cap == 0 || b->cap > POOL_MAX_CAP) {
    snap_buf_dispose(b);
    return;
  }
  b->len = 0;
  pthread_mutex_lock(&st->pool_lock);
  if (st->pool_n < POOL_SLOTS) {
    st->pool[st->pool_n++] = *b;
    b->data = NULL;
    b->len = b->cap = 0;
  }
  pthread_mutex_unlock(&st->pool_lock);
  snap_buf_dispose(b); /* no-op when it went into the pool */
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
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

/* Recomputes the options used when neither the call nor the resolver gives
 * any. Called with the write lock held (or before the store is shared). */
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

static void cache_clear(snap_store *st);

static int refresh_effective(snap_store *st) {
  cache_clear(st); /* a cached resolution stands on the layers that change */
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
    rc = refresh_effective(st);
  }
  snap__store_config_dispose(&cfg);
  return rc == SNAP_OK ? open_backend(st, section, flags) : rc;
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
  if (st->self != NULL)
    st->be.close(st->self);
  snap_options_free(st->effective);
  snap_options_free(st->defaults);
  snap_options_free(st->config_opts);
  for (size_t i = 0; i < st->pool_n; i++)
    snap_buf_dispose(&st->pool[i]);
  snap__obs_dispose(&st->obs);
  cache_clear(st);
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
  int rc = refresh_effective(st);
  if (rc != SNAP_OK) {
    st->defaults = old;
    int rc2 = refresh_effective(st);
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

/* ------------------------------------------------------------------------ */
/* Option resolution (caller holds the read lock)                            */
/* ------------------------------------------------------------------------ */

typedef struct cached_opts {
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

/* Empties the cache slot: the layers below the caller's changed. */
static void cache_clear(snap_store *st) {
  pthread_mutex_lock(&st->cache_lock);
  cached_unref_locked(st->cache);
  st->cache = NULL;
  st->cache_key = NULL;
  pthread_mutex_unlock(&st->cache_lock);
}

/* A resolution in use: either nothing to release (the store's effective
 * options), a fresh object (`owned`) or a reference to the cache (`held`). */
typedef struct resolution {
  snap_options *owned;
  cached_opts *held;
} resolution;

static void resolution_done(snap_store *st, resolution *r) {
  snap_options_free(r->owned);
  cached_release(st, r->held);
  r->owned = NULL;
  r->held = NULL;
}

/* Resolves `call` over the store's layers through the cache (no resolver in
 * play). On a hit no allocation happens: a load or save with the same options
 * object as the call before pays a lock and a compare. */
static int resolve_cached(snap_store *st, const snap_options *call, resolution *res,
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

/* `*use` receives the options to encode or decode with, valid until
 * resolution_done(st, res): the store's shared effective options, a cached
 * resolution of the caller's options, or a fresh one. */
static int resolve_options(snap_store *st, const char *pid, const snap_options *call,
                           resolution *res, const snap_options **use, unsigned *ignored) {
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

/* ------------------------------------------------------------------------ */
/* Save                                                                      */
/* ------------------------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One encoded save on its way to the backend. */
typedef struct encoded {
  const char *pid;
  int64_t seq;
  int64_t timestamp;
  snap_format format;
  unsigned stages;
  unsigned ignored;
  size_t state_len;
  snap_buf *body;
} encoded;

static int check_request(const snap_save_req *r) {
  int rc = snap_pid_check(r->pid);
  if (rc != SNAP_OK)
    return rc;
  if (r->seq < 0)
    return snap_error_set(SNAP_EINVAL, "save pid '%s': seq %" PRId64 " is negative", r->pid,
                          r->seq);
  if (r->format != SNAP_FORMAT_JSON && r->format != SNAP_FORMAT_MSGPACK)
    return snap_error_set(SNAP_EINVAL, "save pid '%s' seq %" PRId64 ": unknown format %d", r->pid,
                          r->seq, (int)r->format);
  if (r->state == NULL && r->len > 0)
    return snap_error_set(SNAP_EINVAL, "save pid '%s' seq %" PRId64 ": state is NULL", r->pid,
                          r->seq);
  /* Zero bytes are neither a JSON text nor a msgpack value: storing them would
   * turn a caller's NULL or forgotten length into an "empty" snapshot. Bodies
   * written that way before keep decoding (the codec still reads them). */
  if (r->len == 0)
    return snap_error_set(SNAP_EFORMAT,
                          "save pid '%s' seq %" PRId64 ": the state is empty (0 bytes), which "
                          "is neither JSON nor msgpack",
                          r->pid, r->seq);
  if (r->timestamp != SNAP_TIMESTAMP_AUTO && r->timestamp < 0)
    return snap_error_set(SNAP_EINVAL,
                          "save pid '%s' seq %" PRId64 ": timestamp %" PRId64 " is negative",
                          r->pid, r->seq, r->timestamp);
  return SNAP_OK;
}

/* Validates and encodes `r` into `body`; fills `e` (which borrows r->pid). */
static int encode_request(snap_store *st, const snap_save_req *r, snap_buf *body, encoded *e) {
  int rc = check_request(r);
  if (rc != SNAP_OK)
    return rc;
  resolution owned;
  const snap_options *o;
  unsigned ignored = 0, stages = 0;
  pthread_rwlock_rdlock(&st->lock);
  rc = resolve_options(st, r->pid, r->options, &owned, &o, &ignored);
  if (rc == SNAP_OK)
    rc = snap__body_encode_checked(r->pid, r->seq, r->format, r->state, r->len, o, body, &stages);
  pthread_rwlock_unlock(&st->lock);
  resolution_done(st, &owned);
  if (rc != SNAP_OK)
    return rc;
  e->pid = r->pid;
  e->seq = r->seq;
  e->timestamp = r->timestamp == SNAP_TIMESTAMP_AUTO ? now_ms() : r->timestamp;
  e->format = r->format;
  e->stages = stages;
  e->ignored = ignored;
  e->state_len = r->len;
  e->body = body;
  return SNAP_OK;
}

static void fill_meta(snap_meta *m, const encoded *e) {
  m->seq = e->seq;
  m->timestamp = e->timestamp;
  m->format = e->format;
  m->stages = e->stages;
  m->ignored = e->ignored;
  m->state_len = e->state_len;
  m->stored_len = e->body->len;
}

/* Reports one save's outcome; `e` is all zero when the save failed to encode. */
static void observe_save(snap_store *st, uint64_t t0, const char *pid, int64_t seq, size_t len,
                         int status, const encoded *e) {
  size_t body = status == SNAP_OK && e->body ? e->body->len : 0;
  snap__obs_op(&st->obs, t0,
               &(snap__op){SNAP_EVENT_SAVE, status, pid, seq, len, body, e->stages, e->ignored, 0});
}

/* Writes the encoded saves in one backend put. `status` has n entries. */
static int put_encoded(snap_store *st, encoded *const *es, size_t n, int *status) {
  snap_backend_row stack_rows[STACK_ROWS];
  snap_backend_row *rows = stack_rows;
  if (n > STACK_ROWS) {
    rows = snap_malloc(n * sizeof *rows);
    if (rows == NULL) {
      int rc = snap_error_set(SNAP_ENOMEM, "save: out of memory for %zu rows", n);
      for (size_t i = 0; i < n; i++)
        status[i] = rc;
      return rc;
    }
  }
  for (size_t i = 0; i < n; i++) {
    rows[i].pid = es[i]->pid;
    rows[i].seq = es[i]->seq;
    rows[i].timestamp = es[i]->timestamp;
    rows[i].body = es[i]->body->data;
    rows[i].body_len = es[i]->body->len;
    rows[i].stages = es[i]->stages;
    rows[i].status = SNAP_OK;
  }
  uint32_t keep;
  int rc = snap__retention_keep(&st->retention, &st->be, st->self, &keep);
  if (rc == SNAP_OK)
    rc = st->be.put(st->self, rows, n, keep);
  /* Rows report their own status. A backend that failed without marking any
   * row failed as a whole: then no row is known to be stored. */
  bool any_marked = false;
  for (size_t i = 0; i < n; i++)
    any_marked |= rows[i].status != SNAP_OK;
  int first = SNAP_OK;
  for (size_t i = 0; i < n; i++) {
    status[i] = rows[i].status;
    if (rc != SNAP_OK && !any_marked)
      status[i] = rc;
    if (first == SNAP_OK)
      first = status[i];
  }
  if (rows != stack_rows)
    snap_free(rows);
  return first;
}

int snap_save_at(snap_store *st, const char *pid, int64_t seq, int64_t timestamp, snap_format fmt,
                 const void *state, size_t len, const snap_options *opts, snap_meta *meta) {
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "save: store is NULL");
  uint64_t t0 = snap__obs_start(&st->obs);
  snap_save_req r = {pid, seq, timestamp, fmt, state, len, opts};
  snap_buf body = pool_get(st);
  encoded e = {0};
  encoded *ep = &e;
  int rc = encode_request(st, &r, &body, &e);
  if (rc == SNAP_OK) {
    int status;
    rc = put_encoded(st, &ep, 1, &status);
    if (rc == SNAP_OK && meta != NULL)
      fill_meta(meta, &e);
  }
  observe_save(st, t0, pid, seq, len, rc, &e);
  pool_put(st, &body);
  return rc;
}

int snap_save(snap_store *st, const char *pid, int64_t seq, snap_format fmt, const void *state,
              size_t len, const snap_options *opts, snap_meta *meta) {
  return snap_save_at(st, pid, seq, SNAP_TIMESTAMP_AUTO, fmt, state, len, opts, meta);
}

int snap_save_json(snap_store *st, const char *pid, int64_t seq, const struct cJSON *state,
                   const snap_options *opts, snap_meta *meta) {
  if (state == NULL)
    return snap_error_set(SNAP_EINVAL, "save_json pid '%s': state is NULL", pid ? pid : "(null)");
  char *text = cJSON_PrintUnformatted(state);
  if (text == NULL)
    return snap_error_set(SNAP_ENOMEM, "save_json pid '%s': cannot print the state",
                          pid ? pid : "(null)");
  int rc = snap_save(st, pid, seq, SNAP_FORMAT_JSON, text, strlen(text), opts, meta);
  cJSON_free(text);
  return rc;
}

int snap_save_batch(snap_store *st, const snap_save_req *reqs, size_t n, int *status,
                    snap_meta *meta) {
  if (st == NULL || (n > 0 && (reqs == NULL || status == NULL)))
    return snap_error_set(SNAP_EINVAL, "save_batch: store, requests or status is NULL");
  if (n == 0)
    return SNAP_OK;
  uint64_t t0 = snap__obs_start(&st->obs);
  /* One block: the encoded saves, their buffers and the list of those to put. */
  size_t bytes = n * (sizeof(encoded) + sizeof(snap_buf) + sizeof(encoded *) + sizeof(size_t));
  uint8_t *block = snap_calloc(1, bytes);
  if (block == NULL) {
    int rc = snap_error_set(SNAP_ENOMEM, "save_batch: out of memory for %zu saves", n);
    for (size_t i = 0; i < n; i++)
      status[i] = rc;
    return rc;
  }
  encoded *es = (encoded *)block;
  snap_buf *bufs = (snap_buf *)(es + n);
  encoded **todo = (encoded **)(bufs + n);
  size_t *index = (size_t *)(todo + n);
  size_t m = 0;
  int first = SNAP_OK;
  for (size_t i = 0; i < n; i++) {
    status[i] = encode_request(st, &reqs[i], &bufs[i], &es[i]);
    if (status[i] == SNAP_OK) {
      todo[m] = &es[i];
      index[m++] = i;
    } else if (first == SNAP_OK) {
      first = status[i];
    }
  }
  if (m > 0) {
    /* Reuse the tail of `status` order: put writes statuses for the rows it got. */
    int *st_rows = snap_malloc(m * sizeof *st_rows);
    if (st_rows == NULL) {
      int rc = snap_error_set(SNAP_ENOMEM, "save_batch: out of memory for %zu saves", n);
      for (size_t j = 0; j < m; j++)
        status[index[j]] = rc;
      if (first == SNAP_OK)
        first = rc;
    } else {
      put_encoded(st, todo, m, st_rows);
      for (size_t j = 0; j < m; j++) {
        status[index[j]] = st_rows[j];
        if (st_rows[j] == SNAP_OK && meta != NULL)
          fill_meta(&meta[index[j]], todo[j]);
      }
      snap_free(st_rows);
      for (size_t i = 0; i < n && first == SNAP_OK; i++)
        first = status[i];
    }
  }
  for (size_t i = 0; i < n; i++)
    observe_save(st, t0, reqs[i].pid, reqs[i].seq, reqs[i].len, status[i], &es[i]);
  snap__obs_op(&st->obs, t0, &(snap__op){SNAP_EVENT_BATCH, first, NULL, -1, 0, 0, 0, 0, n});
  for (size_t i = 0; i < n; i++)
    snap_buf_dispose(&bufs[i]);
  snap_free(block);
  return first;
}

/* A save that failed before its commit is an outcome too. */
static int prepare_failed(snap_store *st, uint64_t t0, const snap_save_req *req, int rc) {
  observe_save(st, t0, req->pid, req->seq, req->len, rc, &(encoded){0});
  return rc;
}

int snap_save_prepare(snap_store *st, const snap_save_req *req, snap_prepared **out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "save_prepare: out is NULL");
  *out = NULL;
  if (st == NULL || req == NULL)
    return snap_error_set(SNAP_EINVAL, "save_prepare: store or request is NULL");
  uint64_t t0 = snap__obs_start(&st->obs);
  int rc = check_request(req);
  if (rc != SNAP_OK)
    return prepare_failed(st, t0, req, rc);
  size_t pid_len = strlen(req->pid);
  snap_prepared *p = snap_calloc(1, sizeof *p + pid_len + 1);
  if (p == NULL)
    return snap_error_set(SNAP_ENOMEM, "save_prepare pid '%s': out of memory", req->pid);
  p->pid = (char *)(p + 1);
  memcpy(p->pid, req->pid, pid_len + 1);
  encoded e;
  rc = encode_request(st, req, &p->body, &e);
  if (rc != SNAP_OK) {
    snap_prepared_free(p);
    return prepare_failed(st, t0, req, rc);
  }
  p->st = st;
  p->seq = e.seq;
  p->timestamp = e.timestamp;
  p->format = e.format;
  p->stages = e.stages;
  p->ignored = e.ignored;
  p->state_len = e.state_len;
  *out = p;
  return SNAP_OK;
}

int snap_save_commit(snap_store *st, snap_prepared *const *items, size_t n, int *status,
                     snap_meta *meta) {
  if (st == NULL || (n > 0 && (items == NULL || status == NULL)))
    return snap_error_set(SNAP_EINVAL, "save_commit: store, items or status is NULL");
  if (n == 0)
    return SNAP_OK;
  uint64_t t0 = snap__obs_start(&st->obs);
  size_t bytes = n * (sizeof(encoded) + sizeof(encoded *) + sizeof(size_t) + sizeof(int));
  uint8_t *block = snap_malloc(bytes);
  if (block == NULL) {
    int rc = snap_error_set(SNAP_ENOMEM, "save_commit: out of memory for %zu saves", n);
    for (size_t i = 0; i < n; i++)
      status[i] = rc;
    return rc;
  }
  encoded *es = (encoded *)block;
  encoded **todo = (encoded **)(es + n);
  size_t *index = (size_t *)(todo + n);
  int *st_rows = (int *)(index + n);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    snap_prepared *p = items[i];
    if (p == NULL || p->st != st) {
      status[i] = snap_error_set(SNAP_EINVAL, "save_commit: item %zu is %s", i,
                                 p == NULL ? "NULL" : "prepared for another store");
      continue;
    }
    es[i] = (encoded){p->pid,    p->seq,     p->timestamp, p->format,
                      p->stages, p->ignored, p->state_len, &p->body};
    todo[m] = &es[i];
    index[m++] = i;
  }
  if (m > 0) {
    put_encoded(st, todo, m, st_rows);
    for (size_t j = 0; j < m; j++) {
      status[index[j]] = st_rows[j];
      if (st_rows[j] == SNAP_OK && meta != NULL)
        fill_meta(&meta[index[j]], todo[j]);
    }
  }
  int first = SNAP_OK;
  for (size_t i = 0; i < n && first == SNAP_OK; i++)
    first = status[i];
  for (size_t j = 0; j < m; j++)
    observe_save(st, t0, todo[j]->pid, todo[j]->seq, todo[j]->state_len, status[index[j]], todo[j]);
  snap__obs_op(&st->obs, t0, &(snap__op){SNAP_EVENT_BATCH, first, NULL, -1, 0, 0, 0, 0, n});
  snap_free(block);
  return first;
}

void snap_prepared_free(snap_prepared *p) {
  if (p == NULL)
    return;
  snap_buf_dispose(&p->body);
  snap_free(p);
}

/* ------------------------------------------------------------------------ */
/* Load                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct load_ctx {
  const char *pid;
  const snap_options *o;
  snap_buf state;
  int found;
  int status;
  int64_t seq;
  int64_t timestamp;
  snap_format format;
  unsigned stages;
  size_t body_len;
} load_ctx;

/* Decodes straight from the backend's buffer into the future snapshot's buffer. */
static int load_emit(void *vctx, int64_t seq, int64_t timestamp, const void *body,
                     size_t body_len) {
  load_ctx *c = vctx;
  c->found = 1;
  c->seq = seq;
  c->timestamp = timestamp;
  c->body_len = body_len;
  c->status = snap__body_decode_checked(c->pid, seq, body, body_len, c->o, &c->state, &c->format,
                                        &c->stages);
  /* Decoding failures are the host's business, not the backend's. */
  return SNAP_OK;
}

static bool criteria_empty(const snap_criteria *c) {
  return c->min_seq > c->max_seq || c->min_ts > c->max_ts || c->max_seq < 0;
}

static int make_snapshot(load_ctx *c, unsigned skipped, int skip_reason, snap_snapshot **out) {
  size_t pid_len = strlen(c->pid);
  /* Room for the terminating NUL promised to callers; usually already there. */
  int rc = snap_buf_reserve(&c->state, c->state.len + 1);
  if (rc != SNAP_OK)
    return rc;
  snap_snapshot *s = snap_malloc(sizeof *s + pid_len + 1);
  if (s == NULL)
    return snap_error_set(SNAP_ENOMEM, "load pid '%s': out of memory", c->pid);
  c->state.data[c->state.len] = 0;
  s->pid = (char *)(s + 1);
  memcpy(s->pid, c->pid, pid_len + 1);
  s->seq = c->seq;
  s->timestamp = c->timestamp;
  s->format = c->format;
  s->data = snap_buf_detach(&c->state, &s->len);
  s->stages = c->stages;
  s->skipped = skipped;
  s->skip_reason = skip_reason;
  *out = s;
  return SNAP_OK;
}

/* snap_load() once its pointers are checked; `op` receives what was read. */
static int load(snap_store *st, const char *pid, const snap_criteria *c, const snap_options *opts,
                snap_snapshot **out, snap__op *op) {
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK)
    return rc;
  if (criteria_empty(c))
    return SNAP_OK; /* nothing can match: none, like any other miss */

  load_ctx ctx = {pid, NULL, SNAP_BUF_INIT, 0, SNAP_OK, 0, 0, SNAP_FORMAT_JSON, 0, 0};
  resolution owned = {NULL, NULL};
  unsigned ignored = 0;
  snap_criteria cc = *c;
  /* Sequence numbers are never negative: a row that claims one was written
   * behind the store's back and is not ours to return. */
  if (cc.min_seq < 0)
    cc.min_seq = 0;
  unsigned skipped = 0;
  int skip_reason = SNAP_OK;
  int64_t first_skip_seq = -1;
  char first_msg[256]; /* written before it is read: only once a body was skipped */

  pthread_rwlock_rdlock(&st->lock);
  rc = resolve_options(st, pid, opts, &owned, &ctx.o, &ignored);
  for (unsigned attempt = 0; rc == SNAP_OK && attempt < st->max_load_attempts; attempt++) {
    ctx.found = 0;
    rc = st->be.load(st->self, pid, &cc, load_emit, &ctx);
    if (rc != SNAP_OK || !ctx.found)
      break;
    if (ctx.status == SNAP_OK) {
      rc = make_snapshot(&ctx, skipped, skip_reason, out);
      break;
    }
    if (ctx.status != SNAP_ECORRUPT && ctx.status != SNAP_EFORMAT) {
      /* A wrong or missing key is not damage: falling back would silently
       * hand out older state. */
      rc = ctx.status;
      break;
    }
    snap__obs_skip(&st->obs, pid, ctx.seq, ctx.status, snap_error_message());
    if (skipped++ == 0) {
      skip_reason = ctx.status;
      first_skip_seq = ctx.seq;
      snprintf(first_msg, sizeof first_msg, "%s", snap_error_message());
    }
    if (ctx.seq == 0 || ctx.seq - 1 < cc.min_seq)
      break;
    cc.max_seq = ctx.seq - 1;
  }
  pthread_rwlock_unlock(&st->lock);
  resolution_done(st, &owned);
  snap_buf_dispose(&ctx.state);
  *op = (snap__op){SNAP_EVENT_LOAD,
                   rc,
                   pid,
                   ctx.found ? ctx.seq : -1,
                   *out ? (*out)->len : 0,
                   ctx.found ? ctx.body_len : 0,
                   ctx.found ? ctx.stages : 0,
                   ignored,
                   skipped};
  if (rc == SNAP_OK && *out == NULL && skipped > 0)
    rc = snap_error_set(SNAP_ECORRUPT,
                        "load pid '%s': %u matching snapshot(s) skipped as undecodable (first at "
                        "seq %" PRId64 ": %s) and no decodable one found",
                        pid, skipped, first_skip_seq, first_msg);
  return rc;
}

int snap_load(snap_store *st, const char *pid, const snap_criteria *c, const snap_options *opts,
              snap_snapshot **out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "load: out is NULL");
  *out = NULL;
  if (st == NULL || c == NULL)
    return snap_error_set(SNAP_EINVAL, "load: store or criteria is NULL");
  uint64_t t0 = snap__obs_start(&st->obs);
  snap__op op = {SNAP_EVENT_LOAD, SNAP_OK, pid, -1, 0, 0, 0, 0, 0};
  op.status = load(st, pid, c, opts, out, &op);
  snap__obs_op(&st->obs, t0, &op);
  return op.status;
}

int snap_load_latest(snap_store *st, const char *pid, const snap_options *opts,
                     snap_snapshot **out) {
  snap_criteria c = SNAP_CRITERIA_LATEST;
  c.min_ts = INT64_MIN;
  return snap_load(st, pid, &c, opts, out);
}

int snap_load_before(snap_store *st, const char *pid, int64_t seq, const snap_options *opts,
                     snap_snapshot **out) {
  /* seq - 1 only once seq > 0: INT64_MIN - 1 would overflow. */
  snap_criteria c = {0, seq > 0 ? seq - 1 : 0, INT64_MIN, INT64_MAX};
  if (seq <= 0) {
    /* Nothing is older than seq 0; still validate the arguments. */
    c.min_seq = 1;
    c.max_seq = 0;
  }
  return snap_load(st, pid, &c, opts, out);
}

void snap_snapshot_free(snap_snapshot *s) {
  if (s == NULL)
    return;
  snap_free(s->data);
  snap_free(s);
}

/* ------------------------------------------------------------------------ */
/* Delete                                                                    */
/* ------------------------------------------------------------------------ */

static int delete_matching(snap_store *st, const char *pid, const snap_criteria *c) {
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK)
    return rc;
  if (criteria_empty(c))
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

/* ------------------------------------------------------------------------ */
/* For the store's other files (store_internal.h)                            */
/* ------------------------------------------------------------------------ */

const snap_backend *snap__store_backend(const snap_store *st, void **self) {
  *self = st->self;
  return &st->be;
}

snap__retention *snap__store_retention(snap_store *st) { return &st->retention; }

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
  resolution res = {NULL, NULL};
  const snap_options *use = NULL;
  unsigned ignored = 0;
  snap_options *copy = NULL;
  pthread_rwlock_rdlock(&st->lock);
  int rc = resolve_options(st, pid, call, &res, &use, &ignored);
  /* The caller owns what it gets: shared options are copied. */
  if (rc == SNAP_OK && res.owned == NULL)
    rc = snap_options_copy(&copy, use);
  pthread_rwlock_unlock(&st->lock);
  if (rc == SNAP_OK && res.owned != NULL) {
    copy = res.owned;
    res.owned = NULL;
  }
  resolution_done(st, &res);
  if (rc == SNAP_OK)
    *out = copy;
  else
    snap_options_free(copy);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* JSON view of a snapshot                                                   */
/* ------------------------------------------------------------------------ */

int snap_snapshot_to_json(const snap_snapshot *s, struct cJSON **out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "snapshot_to_json: out is NULL");
  *out = NULL;
  if (s == NULL || (s->data == NULL && s->len > 0))
    return snap_error_set(SNAP_EINVAL, "snapshot_to_json: snapshot is NULL");
  if (s->format == SNAP_FORMAT_MSGPACK)
    return snap__msgpack_to_json(s->data, s->len, out);
  if (s->format != SNAP_FORMAT_JSON)
    return snap_error_set(SNAP_EFORMAT, "snapshot_to_json: unknown format %d", (int)s->format);
  /* cJSON alone takes invalid UTF-8 and ignores what follows the value; the
   * validator refuses both, so a tree always stands for a valid state. */
  int vrc = snap_payload_validate(SNAP_FORMAT_JSON, s->data, s->len);
  if (vrc != SNAP_OK)
    return snap_error_set(vrc, "snapshot pid '%s' seq %" PRId64 ": %s", s->pid ? s->pid : "",
                          s->seq, snap_error_message());
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts((const char *)s->data, s->len, &end, false);
  if (j == NULL)
    return snap_error_set(
        SNAP_EFORMAT, "snapshot pid '%s' seq %" PRId64 ": state is not valid JSON (near byte %ld)",
        s->pid ? s->pid : "", s->seq, end ? (long)(end - (const char *)s->data) : -1L);
  *out = j;
  return SNAP_OK;
}
