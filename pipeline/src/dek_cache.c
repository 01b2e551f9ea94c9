/* The cache of unwrapped data keys: a bounded LRU whose key bytes live in
 * one slab of guarded memory (snap__secure_malloc: guard pages, locked
 * when the system allows, excluded from core dumps, wiped on free), so a
 * recovery storm of many units costs one guarded allocation, not one per
 * key (each sodium_malloc takes whole pages). Unit names and links live in
 * ordinary memory: they are not secret. Lookups copy the key out to the
 * caller, who wipes it; an entry is never handed out by pointer, so an
 * eviction on another thread cannot pull a key from under a reader. */
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "alloc_internal.h"

#define NIL UINT32_MAX

typedef struct entry {
  char *unit; /* owned copy, NULL while free */
  uint32_t unit_len;
  uint32_t gen;
  uint32_t prev, next; /* LRU list: head is the most recent */
  uint32_t chain;      /* next entry of the same hash bucket */
  uint64_t hash;
} entry;

struct snap__dek_cache {
  pthread_mutex_t lock;
  uint8_t *slab; /* capacity * SNAP_DEK_BYTES of guarded memory */
  entry *e;
  uint32_t *bucket; /* nbuckets heads */
  uint32_t capacity, nbuckets, used;
  uint32_t head, tail, free_head; /* free entries are chained through `next` */
  uint8_t hash_key[crypto_shorthash_KEYBYTES];
  uint64_t hits, misses, evictions;
  uint64_t drops; /* drops and clears so far: the epoch a put is made against */
};

static uint64_t hash_of(const snap__dek_cache *c, const char *unit, size_t len) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, (const unsigned char *)unit, len, c->hash_key);
  uint64_t v;
  memcpy(&v, h, sizeof v);
  return v;
}

int snap__dek_cache_new(snap__dek_cache **out, size_t capacity) {
  *out = NULL;
  if (capacity == 0 || capacity > SNAP__DEK_CACHE_MAX)
    return snap_error_set(SNAP_EINVAL, "data key cache: %zu entries (1 to %u allowed)", capacity,
                          (unsigned)SNAP__DEK_CACHE_MAX);
  if (sodium_init() < 0)
    return snap_error_set(SNAP_ENOMEM, "libsodium failed to initialise");
  snap__dek_cache *c = snap_calloc(1, sizeof *c);
  if (!c)
    return snap_error_set(SNAP_ENOMEM, "out of memory for the data key cache");
  c->capacity = (uint32_t)capacity;
  c->nbuckets = 16;
  while (c->nbuckets < 2 * c->capacity)
    c->nbuckets *= 2;
  c->e = snap_calloc(capacity, sizeof *c->e);
  c->bucket = snap_malloc(c->nbuckets * sizeof *c->bucket);
  c->slab = snap__secure_malloc(capacity * SNAP_DEK_BYTES);
  if (!c->e || !c->bucket || !c->slab || pthread_mutex_init(&c->lock, NULL) != 0) {
    if (c->slab)
      snap__secure_free(c->slab, capacity * SNAP_DEK_BYTES);
    snap_free(c->e);
    snap_free(c->bucket);
    snap_free(c);
    return snap_error_set(SNAP_ENOMEM, "out of (guarded) memory for a data key cache of %zu keys",
                          capacity);
  }
  for (uint32_t i = 0; i < c->nbuckets; i++)
    c->bucket[i] = NIL;
  for (uint32_t i = 0; i < c->capacity; i++)
    c->e[i].next = i + 1 < c->capacity ? i + 1 : NIL;
  c->free_head = 0;
  c->head = c->tail = NIL;
  randombytes_buf(c->hash_key, sizeof c->hash_key);
  *out = c;
  return SNAP_OK;
}

void snap__dek_cache_free(snap__dek_cache *c) {
  if (!c)
    return;
  for (uint32_t i = 0; i < c->capacity; i++)
    snap_free(c->e[i].unit);
  snap__secure_free(c->slab, (size_t)c->capacity * SNAP_DEK_BYTES);
  snap_free(c->e);
  snap_free(c->bucket);
  pthread_mutex_destroy(&c->lock);
  snap_free(c);
}

static uint32_t find(const snap__dek_cache *c, const char *unit, size_t len, uint64_t h) {
  for (uint32_t i = c->bucket[h & (c->nbuckets - 1)]; i != NIL; i = c->e[i].chain)
    if (c->e[i].hash == h && c->e[i].unit_len == len && memcmp(c->e[i].unit, unit, len) == 0)
      return i;
  return NIL;
}

static void lru_unlink(snap__dek_cache *c, uint32_t i) {
  entry *x = &c->e[i];
  if (x->prev != NIL)
    c->e[x->prev].next = x->next;
  else
    c->head = x->next;
  if (x->next != NIL)
    c->e[x->next].prev = x->prev;
  else
    c->tail = x->prev;
}

static void lru_front(snap__dek_cache *c, uint32_t i) {
  c->e[i].prev = NIL;
  c->e[i].next = c->head;
  if (c->head != NIL)
    c->e[c->head].prev = i;
  c->head = i;
  if (c->tail == NIL)
    c->tail = i;
}

/* Takes entry i out of its bucket and the LRU list, wipes its key and puts
 * it on the free list. */
static void release(snap__dek_cache *c, uint32_t i) {
  entry *x = &c->e[i];
  uint32_t *p = &c->bucket[x->hash & (c->nbuckets - 1)];
  while (*p != i)
    p = &c->e[*p].chain;
  *p = x->chain;
  lru_unlink(c, i);
  sodium_memzero(c->slab + (size_t)i * SNAP_DEK_BYTES, SNAP_DEK_BYTES);
  snap_free(x->unit);
  x->unit = NULL;
  x->next = c->free_head;
  c->free_head = i;
  c->used--;
}

bool snap__dek_cache_get(snap__dek_cache *c, const char *unit, size_t len, uint32_t gen,
                         uint8_t dek[SNAP_DEK_BYTES], uint32_t *gen_out) {
  uint64_t h = hash_of(c, unit, len);
  pthread_mutex_lock(&c->lock);
  uint32_t i = find(c, unit, len, h);
  bool hit = i != NIL && (gen == 0 || c->e[i].gen == gen);
  if (hit) {
    memcpy(dek, c->slab + (size_t)i * SNAP_DEK_BYTES, SNAP_DEK_BYTES);
    if (gen_out)
      *gen_out = c->e[i].gen;
    if (c->head != i) {
      lru_unlink(c, i);
      lru_front(c, i);
    }
    c->hits++;
  } else {
    c->misses++;
  }
  pthread_mutex_unlock(&c->lock);
  return hit;
}

uint64_t snap__dek_cache_epoch(snap__dek_cache *c) {
  pthread_mutex_lock(&c->lock);
  uint64_t e = c->drops;
  pthread_mutex_unlock(&c->lock);
  return e;
}

int snap__dek_cache_put(snap__dek_cache *c, const char *unit, size_t len, uint32_t gen,
                        const uint8_t dek[SNAP_DEK_BYTES], uint64_t epoch) {
  uint64_t h = hash_of(c, unit, len);
  char *copy = snap_malloc(len + 1);
  if (!copy)
    return snap_error_set(SNAP_ENOMEM, "out of memory caching the data key of unit '%.80s'", unit);
  memcpy(copy, unit, len);
  copy[len] = 0;
  pthread_mutex_lock(&c->lock);
  uint32_t i = find(c, unit, len, h);
  if (epoch != SNAP__DEK_CACHE_ANY_EPOCH && epoch != c->drops) {
    /* A drop since the key was read: it may be the key dropped. */
    snap_free(copy);
    copy = NULL;
  } else if (i != NIL) {
    /* A newer generation replaces the entry; an older one never does. */
    if (gen >= c->e[i].gen) {
      c->e[i].gen = gen;
      memcpy(c->slab + (size_t)i * SNAP_DEK_BYTES, dek, SNAP_DEK_BYTES);
    }
    snap_free(copy);
    copy = NULL;
  } else {
    if (c->free_head == NIL) {
      release(c, c->tail);
      c->evictions++;
    }
    i = c->free_head;
    c->free_head = c->e[i].next;
    entry *x = &c->e[i];
    x->unit = copy;
    x->unit_len = (uint32_t)len;
    x->gen = gen;
    x->hash = h;
    uint32_t *b = &c->bucket[h & (c->nbuckets - 1)];
    x->chain = *b;
    *b = i;
    memcpy(c->slab + (size_t)i * SNAP_DEK_BYTES, dek, SNAP_DEK_BYTES);
    c->used++;
    lru_front(c, i);
    copy = NULL;
  }
  if (c->head != i) {
    lru_unlink(c, i);
    lru_front(c, i);
  }
  pthread_mutex_unlock(&c->lock);
  return SNAP_OK;
}

void snap__dek_cache_drop(snap__dek_cache *c, const char *unit, size_t len) {
  uint64_t h = hash_of(c, unit, len);
  pthread_mutex_lock(&c->lock);
  uint32_t i = find(c, unit, len, h);
  if (i != NIL)
    release(c, i);
  c->drops++;
  pthread_mutex_unlock(&c->lock);
}

void snap__dek_cache_clear(snap__dek_cache *c) {
  pthread_mutex_lock(&c->lock);
  while (c->head != NIL)
    release(c, c->head);
  c->drops++;
  pthread_mutex_unlock(&c->lock);
}

void snap__dek_cache_stats(snap__dek_cache *c, snap__dek_cache_counts *out) {
  pthread_mutex_lock(&c->lock);
  out->hits = c->hits;
  out->misses = c->misses;
  out->evictions = c->evictions;
  out->entries = c->used;
  out->capacity = c->capacity;
  pthread_mutex_unlock(&c->lock);
}
