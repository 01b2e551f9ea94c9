/* The memory backend's dictionary table: dictionaries in ascending id order
 * behind one mutex, living and dying with the instance like its snapshots. */
#include <pthread.h>
#include <string.h>

#include "internal.h"

typedef struct mem_dict {
  uint32_t id;
  char *name;
  int64_t created;
  uint8_t *body;
  size_t body_len;
} mem_dict;

struct mem_dicts {
  const snap_host *host;
  pthread_mutex_t lock;
  mem_dict *v; /* ascending id */
  size_t n, cap;
};

mem_dicts *snap__memdicts_new(const snap_host *host) {
  mem_dicts *t = host->malloc(sizeof *t);
  if (t == NULL)
    return NULL;
  memset(t, 0, sizeof *t);
  t->host = host;
  if (pthread_mutex_init(&t->lock, NULL) != 0) {
    host->free(t);
    return NULL;
  }
  return t;
}

void snap__memdicts_free(mem_dicts *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->n; i++) {
    t->host->free(t->v[i].name);
    t->host->free(t->v[i].body);
  }
  t->host->free(t->v);
  pthread_mutex_destroy(&t->lock);
  t->host->free(t);
}

/* The first index whose id is >= `id`. */
static size_t lower(const mem_dicts *t, uint32_t id) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->v[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int insert_at(mem_dicts *t, size_t at, const snap_backend_dict *d) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 4;
    mem_dict *v = t->host->realloc(t->v, cap * sizeof *v);
    if (v == NULL)
      return SNAP_ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  mem_dict r = {d->id, t->host->malloc(strlen(d->name) + 1), d->created,
                t->host->malloc(d->body_len ? d->body_len : 1), d->body_len};
  if (r.name == NULL || r.body == NULL) {
    t->host->free(r.name);
    t->host->free(r.body);
    return SNAP_ENOMEM;
  }
  strcpy(r.name, d->name);
  memcpy(r.body, d->body, d->body_len);
  memmove(t->v + at + 1, t->v + at, (t->n - at) * sizeof *t->v);
  t->v[at] = r;
  t->n++;
  return SNAP_OK;
}

int snap__memdicts_put(mem_dicts *t, const snap_backend_dict *d) {
  pthread_mutex_lock(&t->lock);
  size_t at = lower(t, d->id);
  int rc = SNAP_OK;
  if (at < t->n && t->v[at].id == d->id)
    rc = t->host->error(SNAP_ECONFLICT, "memory backend: dictionary %u exists",
                        (unsigned)d->id);
  for (size_t i = 0; rc == SNAP_OK && i < t->n; i++)
    if (strcmp(t->v[i].name, d->name) == 0)
      rc = t->host->error(SNAP_ECONFLICT, "memory backend: a dictionary named '%s' exists",
                          d->name);
  if (rc == SNAP_OK && insert_at(t, at, d) != SNAP_OK)
    rc = t->host->error(SNAP_ENOMEM, "memory backend: out of memory for a dictionary");
  pthread_mutex_unlock(&t->lock);
  return rc;
}

int snap__memdicts_get(mem_dicts *t, uint32_t id, const char *name, snap_backend_dict_emit emit,
                       void *ctx) {
  int rc = SNAP_OK;
  pthread_mutex_lock(&t->lock);
  for (size_t i = 0; rc == SNAP_OK && i < t->n; i++) {
    const mem_dict *r = &t->v[i];
    if ((id && r->id != id) || (!id && name && strcmp(r->name, name) != 0))
      continue;
    snap_backend_dict d = {r->id, r->name, r->created, r->body, r->body_len};
    rc = emit(ctx, &d);
  }
  pthread_mutex_unlock(&t->lock);
  return rc;
}

int snap__memdicts_remove(mem_dicts *t, uint32_t id) {
  pthread_mutex_lock(&t->lock);
  size_t at = lower(t, id);
  int found = at < t->n && t->v[at].id == id;
  if (found) {
    t->host->free(t->v[at].name);
    t->host->free(t->v[at].body);
    memmove(t->v + at, t->v + at + 1, (t->n - at - 1) * sizeof *t->v);
    t->n--;
  }
  pthread_mutex_unlock(&t->lock);
  return found;
}
