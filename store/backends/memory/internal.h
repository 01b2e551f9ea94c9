/* Shared by the memory backend's files (never installed):
 *   memory.c    snapshots, the operations table
 *   enumerate.c pids and rows in order (ABI version 2)
 *   keys.c      the key table of envelope encryption (ABI version 4)
 *   dicts.c     the dictionary table of zstd compression (ABI version 4)
 *   streams.c   the chunk records of streamed snapshots (ABI versions 6 and 7) */
#ifndef SNAP_BACKEND_MEMORY_INTERNAL_H
#define SNAP_BACKEND_MEMORY_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

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
int snap__memkeys_replace(mem_keys *k, const snap_backend_key_change *c);

typedef struct mem_dicts mem_dicts;

/* An empty dictionary table; NULL when out of memory. */
mem_dicts *snap__memdicts_new(const snap_host *host);
void snap__memdicts_free(mem_dicts *t);

/* The dictionary slots of snap/sys/backend.h on the table. */
int snap__memdicts_put(mem_dicts *t, const snap_backend_dict *d);
int snap__memdicts_get(mem_dicts *t, uint32_t id, const char *name, snap_backend_dict_emit emit,
                       void *ctx);
int snap__memdicts_remove(mem_dicts *t, uint32_t id);

/* The chunk records of one streamed snapshot: shared by its row and the
 * loads reading it (reference counted), so that a row deleted during a
 * read frees its chunks when the read ends. */
typedef struct mem_chunks mem_chunks;

/* Takes a reference / drops one (the last frees; NULL is a no-op). */
void snap__memchunks_ref(mem_chunks *c);
void snap__memchunks_unref(const snap_host *host, mem_chunks *c);

/* A staging (stream_begin .. publish/abort). */
int snap__memstream_begin(const snap_host *host, const char *pid, int64_t seq,
                          snap_backend_stream **out);
int snap__memstream_write(const snap_host *host, snap_backend_stream *s, const void *record,
                          size_t len);
/* The staged chunks, handed over (a reference the caller owns), after the
 * stream's (pid, seq) was checked against `row`; NULL with the error set
 * in *rc otherwise. Frees `s`. */
mem_chunks *snap__memstream_take(const snap_host *host, snap_backend_stream *s,
                                 const snap_backend_row *row, int *rc);
void snap__memstream_abort(const snap_host *host, snap_backend_stream *s);
/* A reader over `c` (takes its own reference). */
int snap__memreader_new(const snap_host *host, mem_chunks *c, snap_backend_reader **out);
int snap__memreader_next(snap_backend_reader *r, const void **record, size_t *len);
void snap__memreader_free(const snap_host *host, snap_backend_reader *r);

/* ---- memory.c: the table, for enumerate.c ---- */

typedef struct mem_row {
  int64_t seq;
  int64_t timestamp;
  uint8_t *body; /* one allocation: the body, then the manifest's copy */
  size_t body_len;
  const char *manifest; /* inside `body`'s allocation, or NULL */
  mem_chunks *chunks;   /* a streamed row's chunk records (streams.c), or NULL */
} mem_row;

typedef struct mem_pid {
  struct mem_pid *next; /* hash chain */
  uint64_t hash;
  mem_row *rows; /* ascending seq */
  size_t n, cap;
  char pid[]; /* NUL-terminated */
} mem_pid;

typedef struct mem_backend {
  const snap_host *host;
  pthread_rwlock_t lock;
  mem_pid **buckets;
  size_t nbuckets; /* a power of two */
  size_t npids;
  mem_keys *keys; /* the key table (keys.c) */
  mem_dicts *dicts; /* the dictionary table (dicts.c) */
} mem_backend;

/* FNV-1a of a pid. */
uint64_t snap__mem_hash_pid(const char *s);
/* The pid's entry, or NULL. Lock held. */
mem_pid *snap__mem_find_pid(const mem_backend *m, const char *pid, uint64_t h);
/* Index of the first row of `p` with seq >= `seq`. */
size_t snap__mem_lower_bound(const mem_pid *p, int64_t seq);

/* stream_replace() (ABI version 7, streams.c): the staged chunks of `s` in
 * place of the row's when its body is still `w->expected`. Consumes `s`. */
int snap__memstream_replace(mem_backend *m, snap_backend_stream *s, snap_backend_swap *w,
                            const char *manifest);

/* ---- enumerate.c ---- */

int snap__mem_list_pids(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                        void *ctx);
int snap__mem_list_rows(void *self, const char *pid, const char *after_pid, int64_t after_seq,
                        size_t limit, snap_backend_row_emit emit, void *ctx);

#endif
