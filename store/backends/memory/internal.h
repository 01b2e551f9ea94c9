/* Shared by the memory backend's files (never installed):
 *   memory.c  snapshots, enumeration, the operations table
 *   keys.c    the key table of envelope encryption (ABI version 4)
 *   dicts.c   the dictionary table of zstd compression (ABI version 4) */
#ifndef SNAP_BACKEND_MEMORY_INTERNAL_H
#define SNAP_BACKEND_MEMORY_INTERNAL_H

#include "snap/sys/backend.h"

typedef struct mem_keys mem_keys;

/* An empty key table; NULL when out of memory. */
mem_keys *snap__memkeys_new(const snap_host *host);
void snap__memkeys_free(mem_keys *k);

/* The key slots of snap/sys/backend.h on the table. */
int snap__memkeys_get(mem_keys *k, const char *unit, snap_backend_key_emit emit, void *ctx);
int snap__memkeys_create(mem_keys *k, const snap_backend_key *rec, snap_backend_key_emit emit,
                         void *ctx);
int snap__memkeys_forget(mem_keys *k, const char *unit, uint32_t *generation);
int snap__memkeys_list(mem_keys *k, const char *after, size_t limit, snap_backend_key_emit emit,
                       void *ctx);
int snap__memkeys_rewrap(mem_keys *k, snap_backend_key_swap *sw, size_t n);

typedef struct mem_dicts mem_dicts;

/* An empty dictionary table; NULL when out of memory. */
mem_dicts *snap__memdicts_new(const snap_host *host);
void snap__memdicts_free(mem_dicts *t);

/* The dictionary slots of snap/sys/backend.h on the table. */
int snap__memdicts_put(mem_dicts *t, const snap_backend_dict *d);
int snap__memdicts_get(mem_dicts *t, uint32_t id, const char *name, snap_backend_dict_emit emit,
                       void *ctx);
int snap__memdicts_remove(mem_dicts *t, uint32_t id);

#endif
