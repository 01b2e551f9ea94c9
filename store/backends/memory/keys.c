/* The memory backend's key table: records sorted by unit (binary search,
 * ordered enumeration) behind one mutex. Like the snapshots, it lives and
 * dies with the instance. */
#include <pthread.h>
#include <string.h>

#include "internal.h"

typedef struct mem_key {
  char *unit;
  uint32_t generation, master_version;
  uint8_t *wrapped; /* NULL: tombstone */
  size_t wrapped_len;
} mem_key;

struct mem_keys {
  const snap_host *host;
  pthread_mutex_t lock;
  mem_key *v; /* ascending unit */
  size_t n, cap;
};

mem_keys *snap__memkeys_new(const snap_host *host) {
  mem_keys *k = host->malloc(sizeof *k);
  if (k == NULL)
    return NULL;
  memset(k, 0, sizeof *k);
  k->host = host;
  if (pthread_mutex_init(&k->lock, NULL) != 0) {
    host->free(k);
    return NULL;
  }
  return k;
}

/* Wipes the record's bytes (they are wrapped, but a deleted key should leave
 * nothing behind) and frees it. */
static void drop_wrapped(mem_keys *k, mem_key *r) {
  if (r->wrapped) {
    volatile uint8_t *p = r->wrapped;
    for (size_t i = 0; i < r->wrapped_len; i++)
      p[i] = 0;
    k->host->free(r->wrapped);
  }
  r->wrapped = NULL;
  r->wrapped_len = 0;
}

void snap__memkeys_free(mem_keys *k) {
  if (k == NULL)
    return;
  for (size_t i = 0; i < k->n; i++) {
    drop_wrapped(k, &k->v[i]);
    k->host->free(k->v[i].unit);
  }
  k->host->free(k->v);
  pthread_mutex_destroy(&k->lock);
  k->host->free(k);
}

/* The first index whose unit is >= `unit` (strictly > with `after`). */
static size_t bound(const mem_keys *k, const char *unit, bool after) {
  size_t lo = 0, hi = k->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(k->v[mid].unit, unit);
    if (c < 0 || (after && c == 0))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static mem_key *find(mem_keys *k, const char *unit) {
  size_t i = bound(k, unit, false);
  return i < k->n && strcmp(k->v[i].unit, unit) == 0 ? &k->v[i] : NULL;
}

static int emit_key(const mem_key *r, snap_backend_key_emit emit, void *ctx) {
  snap_backend_key out = {r->unit, r->generation, r->master_version, r->wrapped, r->wrapped_len};
  return emit(ctx, &out);
}

/* Inserts an empty record for `unit` at its place; NULL when out of memory. */
static mem_key *insert(mem_keys *k, const char *unit) {
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 16;
    mem_key *v = k->host->realloc(k->v, cap * sizeof *v);
    if (v == NULL)
      return NULL;
    k->v = v;
    k->cap = cap;
  }
  size_t len = strlen(unit);
  char *copy = k->host->malloc(len + 1);
  if (copy == NULL)
    return NULL;
  memcpy(copy, unit, len + 1);
  size_t i = bound(k, unit, false);
  memmove(&k->v[i + 1], &k->v[i], (k->n - i) * sizeof *k->v);
  k->n++;
  k->v[i] = (mem_key){copy, 0, 0, NULL, 0};
  return &k->v[i];
}

/* Sets the record's wrapped key to a copy of `w` (NULL: tombstone). */
static int set_wrapped(mem_keys *k, mem_key *r, const uint8_t *w, size_t len) {
  uint8_t *copy = NULL;
  if (w != NULL) {
    copy = k->host->malloc(len ? len : 1);
    if (copy == NULL)
      return SNAP_ENOMEM;
    memcpy(copy, w, len);
  }
  drop_wrapped(k, r);
  r->wrapped = copy;
  r->wrapped_len = w ? len : 0;
  return SNAP_OK;
}

int snap__memkeys_get(mem_keys *k, const char *unit, snap_backend_key_emit emit, void *ctx) {
  pthread_mutex_lock(&k->lock);
  mem_key *r = find(k, unit);
  int rc = r ? emit_key(r, emit, ctx) : SNAP_OK;
  pthread_mutex_unlock(&k->lock);
  return rc;
}

int snap__memkeys_create(mem_keys *k, const snap_backend_key *rec, snap_backend_key_emit emit,
                         void *ctx) {
  if (rec->wrapped == NULL || rec->generation == 0)
    return k->host->error(SNAP_EINVAL, "memory backend: a new key needs a record and a generation");
  pthread_mutex_lock(&k->lock);
  int rc = SNAP_OK;
  mem_key *r = find(k, rec->unit);
  if (r == NULL && (r = insert(k, rec->unit)) == NULL)
    rc = k->host->error(SNAP_ENOMEM, "memory backend: out of memory for a key");
  else if (r->wrapped == NULL && r->generation < rec->generation) {
    rc = set_wrapped(k, r, rec->wrapped, rec->wrapped_len);
    if (rc == SNAP_OK) {
      r->generation = rec->generation;
      r->master_version = rec->master_version;
    } else {
      rc = k->host->error(rc, "memory backend: out of memory for a key");
    }
  }
  if (rc == SNAP_OK)
    rc = emit_key(r, emit, ctx);
  pthread_mutex_unlock(&k->lock);
  return rc;
}

int snap__memkeys_forget(mem_keys *k, const char *unit, uint32_t *generation) {
  pthread_mutex_lock(&k->lock);
  int rc;
  mem_key *r = find(k, unit);
  if (r == NULL && (r = insert(k, unit)) == NULL) {
    rc = k->host->error(SNAP_ENOMEM, "memory backend: out of memory for a tombstone");
  } else {
    rc = r->wrapped != NULL ? 1 : 0;
    drop_wrapped(k, r);
    r->master_version = 0;
    if (generation)
      *generation = r->generation;
  }
  pthread_mutex_unlock(&k->lock);
  return rc;
}

int snap__memkeys_list(mem_keys *k, const char *after, size_t limit, snap_backend_key_emit emit,
                       void *ctx) {
  pthread_mutex_lock(&k->lock);
  int rc = SNAP_OK;
  for (size_t i = after ? bound(k, after, true) : 0; i < k->n && limit > 0 && rc == SNAP_OK;
       i++, limit--)
    rc = emit_key(&k->v[i], emit, ctx);
  pthread_mutex_unlock(&k->lock);
  return rc;
}

int snap__memkeys_rewrap(mem_keys *k, snap_backend_key_swap *sw, size_t n) {
  pthread_mutex_lock(&k->lock);
  int rc = SNAP_OK;
  for (size_t i = 0; i < n && rc == SNAP_OK; i++) {
    mem_key *r = find(k, sw[i].unit);
    if (r == NULL) {
      sw[i].outcome = SNAP_SWAP_GONE;
    } else if (r->wrapped == NULL || r->generation != sw[i].generation ||
               r->master_version != sw[i].expected_master) {
      sw[i].outcome = SNAP_SWAP_CHANGED;
    } else if ((rc = set_wrapped(k, r, sw[i].wrapped, sw[i].wrapped_len)) == SNAP_OK) {
      r->master_version = sw[i].master_version;
      sw[i].outcome = SNAP_SWAP_DONE;
    } else {
      rc = k->host->error(rc, "memory backend: out of memory rewrapping a key");
    }
  }
  pthread_mutex_unlock(&k->lock);
  return rc;
}

int snap__memkeys_replace(mem_keys *k, const snap_backend_key_change *c) {
  if (c->wrapped == NULL || c->generation == 0)
    return k->host->error(SNAP_EINVAL,
                          "memory backend: a key replace needs a record and a generation");
  pthread_mutex_lock(&k->lock);
  int rc;
  mem_key *r = find(k, c->unit);
  if (r == NULL) {
    rc = SNAP_SWAP_GONE;
  } else if (r->wrapped == NULL || r->wrapped_len != c->expected_len ||
             (c->expected_len > 0 && memcmp(r->wrapped, c->expected, c->expected_len) != 0)) {
    rc = SNAP_SWAP_CHANGED;
  } else if ((rc = set_wrapped(k, r, c->wrapped, c->wrapped_len)) == SNAP_OK) {
    r->generation = c->generation;
    r->master_version = c->master_version;
    rc = SNAP_SWAP_DONE;
  } else {
    rc = k->host->error(rc, "memory backend: out of memory replacing a key");
  }
  pthread_mutex_unlock(&k->lock);
  return rc;
}
