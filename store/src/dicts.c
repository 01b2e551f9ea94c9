/* The store's trained zstd dictionaries (docs/STORE.md, "Dictionaries"):
 * kept by the backend beside the data set's snapshots (backend ABI 4,
 * dict_* slots), sealed like a body under the store's own options (so an
 * encrypting store stores them encrypted), loaded on first use and cached
 * for the store's lifetime: they are immutable, and their id is derived from
 * their bytes. The store's configuration layer carries the dictionary
 * source, so every save and load through the store finds them. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "handle.h"
#include "snap/admin.h"
#include "snap/pipeline_layer.h"

/* The pid and sequence number a dictionary's bytes are sealed under: the
 * binding block of docs/FORMAT.md, so a sealed dictionary moved to another
 * id fails authentication. */
#define BIN32 5 /* msgpack bin 32 header: 0xc6 || u32be(len) */

int snap__dicts_need_slots(const snap_store *st) {
  if (st->be.dict_put == NULL || st->be.dict_get == NULL || st->be.dict_remove == NULL)
    return snap_error_set(SNAP_EUNSUPPORTED, "backend '%s' keeps no dictionaries", st->be.name);
  return SNAP_OK;
}

/* The options a dictionary is sealed and opened with: the store's own
 * (defaults over configuration) without compression, dictionary or envelope
 * keys. */
int snap__dicts_seal_options(snap_store *st, snap_options **out) {
  snap_options *top;
  int rc = snap_options_new(&top);
  if (rc == SNAP_OK && (rc = snap_options_set_compression(top, SNAP_COMPRESSION_NONE, 0)) == 0 &&
      (rc = snap_options_set_dictionary(top, 0, NULL)) == 0)
    rc = snap_options_set_key_mode(top, SNAP_KEYS_DIRECT);
  if (rc == SNAP_OK) {
    pthread_rwlock_rdlock(&st->lock);
    const snap_options *layers[3] = {top, st->defaults, st->config_opts};
    rc = snap_options_resolve(out, layers, 3);
    pthread_rwlock_unlock(&st->lock);
  }
  snap_options_free(top);
  if (rc == SNAP_OK)
    rc = snap_options_restrict(
        *out, st->be.capabilities & (SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION | SNAP_OPT_INTEGRITY),
        NULL);
  return rc;
}

/* ---- the cache -------------------------------------------------------------- */

int snap__dicts_init(snap__dicts *c) {
  memset(c, 0, sizeof *c);
  if (pthread_mutex_init(&c->lock, NULL) != 0)
    return snap_error_set(SNAP_ENOMEM, "out of memory for the dictionary cache");
  c->lock_init = true;
  return SNAP_OK;
}

void snap__dicts_dispose(snap__dicts *c) {
  for (size_t i = 0; i < c->n; i++) {
    snap_dict_free(c->v[i].d);
    snap_free(c->v[i].name);
  }
  snap_free(c->v);
  if (c->lock_init)
    pthread_mutex_destroy(&c->lock);
  memset(c, 0, sizeof *c);
}

/* A reference to the cached dictionary with `id` (or `name`), or NULL. */
static snap_dict *cached(snap__dicts *c, uint32_t id, const char *name) {
  snap_dict *d = NULL;
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; !d && i < c->n; i++)
    if (id ? snap_dict_id(c->v[i].d) == id : strcmp(c->v[i].name, name) == 0)
      d = snap_dict_ref(c->v[i].d);
  pthread_mutex_unlock(&c->lock);
  return d;
}

/* Keeps `d` (named `name`) in the cache; a failure only costs a reload. */
static void remember(snap__dicts *c, snap_dict *d, const char *name) {
  pthread_mutex_lock(&c->lock);
  bool have = false;
  for (size_t i = 0; i < c->n; i++)
    have = have || snap_dict_id(c->v[i].d) == snap_dict_id(d);
  if (!have && c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 4;
    void *v = snap_realloc(c->v, cap * sizeof *c->v);
    if (v) {
      c->v = v;
      c->cap = cap;
    }
  }
  char *copy = have || c->n == c->cap ? NULL : snap_strdup(name);
  if (copy) {
    c->v[c->n].d = snap_dict_ref(d);
    c->v[c->n].name = copy;
    c->n++;
  }
  pthread_mutex_unlock(&c->lock);
}

void snap__dicts_forget(snap__dicts *c, uint32_t id) {
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < c->n; i++)
    if (snap_dict_id(c->v[i].d) == id) {
      snap_dict_free(c->v[i].d);
      snap_free(c->v[i].name);
      c->v[i] = c->v[--c->n];
      break;
    }
  pthread_mutex_unlock(&c->lock);
}

/* ---- opening a stored dictionary ---------------------------------------------- */

typedef struct found {
  snap_store *st;
  snap_options *o;
  snap_dict *d;
  char name[256];
  int rc;
} found;

/* Opens the sealed row: authenticates or checks it, unwraps the bytes and
 * checks that they have the row's id. */
static int open_row(void *ctx, const snap_backend_dict *row) {
  found *f = ctx;
  snap_buf plain = SNAP_BUF_INIT;
  snap_format fmt;
  int rc = snap__body_decode_checked(SNAP__DICT_PID, row->id, row->body, row->body_len, f->o, &plain,
                                     &fmt, NULL);
  const uint8_t *p = plain.data;
  if (rc == SNAP_OK &&
      (fmt != SNAP_FORMAT_MSGPACK || plain.len < BIN32 || p[0] != 0xc6 ||
       ((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4]) != plain.len - BIN32))
    rc = snap_error_set(SNAP_ECORRUPT, "dictionary %u: the stored value is not its bytes",
                        (unsigned)row->id);
  else if (rc != SNAP_OK)
    rc = snap_error_set(rc, "dictionary %u: %s", (unsigned)row->id, snap_error_message());
  if (rc == SNAP_OK && (rc = snap_dict_new(&f->d, p + BIN32, plain.len - BIN32)) == SNAP_OK &&
      snap_dict_id(f->d) != row->id) {
    rc = snap_error_set(SNAP_ECORRUPT, "dictionary %u: its bytes have id %u, not the row's",
                        (unsigned)row->id, (unsigned)snap_dict_id(f->d));
    snap_dict_free(f->d);
    f->d = NULL;
  }
  if (rc == SNAP_OK)
    snprintf(f->name, sizeof f->name, "%s", row->name);
  snap_buf_dispose(&plain);
  f->rc = rc;
  return rc;
}

int snap_store_dict_get(snap_store *st, uint32_t id, const char *name, snap_dict **out) {
  if (!st || !out || (!id && !name))
    return snap_error_set(SNAP_EINVAL, "snap_store_dict_get: NULL %s",
                          !st ? "store" : !out ? "output" : "id and name");
  *out = cached(&st->dicts, id, name);
  if (*out)
    return SNAP_OK;
  int rc = snap__dicts_need_slots(st);
  found f = {st, NULL, NULL, "", SNAP_OK};
  if (rc == SNAP_OK)
    rc = snap__dicts_seal_options(st, &f.o);
  if (rc == SNAP_OK)
    rc = st->be.dict_get(st->self, id, id ? NULL : name, open_row, &f);
  snap_options_free(f.o);
  if (rc == SNAP_OK && !f.d)
    rc = id ? snap_error_set(SNAP_ENOTFOUND, "dictionary %u is not in this store", (unsigned)id)
            : snap_error_set(SNAP_ENOTFOUND, "no dictionary named '%s' in this store", name);
  if (rc != SNAP_OK) {
    snap_dict_free(f.d);
    return rc;
  }
  remember(&st->dicts, f.d, f.name);
  *out = f.d;
  return SNAP_OK;
}

/* The store's dictionary source (its configuration layer carries it). */
static int store_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  return snap_store_dict_get(ud, id, name, out);
}

int snap__dicts_attach(snap_store *st, snap_options **config_opts) {
  int rc = *config_opts ? SNAP_OK : snap_options_new(config_opts);
  return rc ? rc : snap_options_set_dictionary_source(*config_opts, store_source, st);
}
