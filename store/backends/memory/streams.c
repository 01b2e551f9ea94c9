/* The memory backend's streamed snapshots (backend ABI versions 6 and 7): a
 * staging collects the chunk records; publishing hands them to the row as
 * one reference-counted list. Nothing outlives the process, so there are no
 * orphans to reclaim: a staging that is never published is freed by its
 * abort. */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

typedef struct mem_record {
  uint8_t *p;
  size_t len;
} mem_record;

struct mem_chunks {
  atomic_size_t refs;
  mem_record *v;
  size_t n, cap;
};

struct snap_backend_stream {
  char *pid;
  int64_t seq;
  mem_chunks *chunks;
  bool failed;
};

void snap__memchunks_ref(mem_chunks *c) {
  if (c != NULL)
    atomic_fetch_add(&c->refs, 1);
}

void snap__memchunks_unref(const snap_host *host, mem_chunks *c) {
  if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  for (size_t i = 0; i < c->n; i++)
    host->free(c->v[i].p);
  host->free(c->v);
  host->free(c);
}

int snap__memstream_begin(const snap_host *host, const char *pid, int64_t seq,
                          snap_backend_stream **out) {
  size_t pl = strlen(pid) + 1;
  snap_backend_stream *s = host->malloc(sizeof *s);
  mem_chunks *c = host->malloc(sizeof *c);
  char *p = host->malloc(pl);
  if (s == NULL || c == NULL || p == NULL) {
    host->free(s);
    host->free(c);
    host->free(p);
    return host->error(SNAP_ENOMEM, "memory backend: out of memory for a stream");
  }
  memcpy(p, pid, pl);
  memset(c, 0, sizeof *c);
  atomic_init(&c->refs, 1);
  *s = (snap_backend_stream){p, seq, c, false};
  *out = s;
  return SNAP_OK;
}

int snap__memstream_write(const snap_host *host, snap_backend_stream *s, const void *record,
                          size_t len) {
  if (s->failed)
    return host->error(SNAP_EINVAL, "memory backend: the stream of pid '%s' failed earlier",
                       s->pid);
  if (len == 0 || len > SNAP_BACKEND_CHUNK_MAX)
    return host->error(len ? SNAP_ETOOBIG : SNAP_EINVAL,
                       "memory backend: a chunk record of %zu bytes (1 to %u allowed)", len,
                       SNAP_BACKEND_CHUNK_MAX);
  mem_chunks *c = s->chunks;
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 16;
    mem_record *nv = host->realloc(c->v, nc * sizeof *nv);
    if (nv == NULL) {
      s->failed = true;
      return host->error(SNAP_ENOMEM, "memory backend: out of memory for a chunk");
    }
    c->v = nv;
    c->cap = nc;
  }
  uint8_t *p = host->malloc(len);
  if (p == NULL) {
    s->failed = true;
    return host->error(SNAP_ENOMEM, "memory backend: out of memory for a chunk");
  }
  memcpy(p, record, len);
  c->v[c->n++] = (mem_record){p, len};
  return SNAP_OK;
}

static void free_stream(const snap_host *host, snap_backend_stream *s) {
  host->free(s->pid);
  host->free(s);
}

mem_chunks *snap__memstream_take(const snap_host *host, snap_backend_stream *s,
                                 const snap_backend_row *row, int *rc) {
  mem_chunks *c = s->chunks;
  *rc = SNAP_OK;
  if (s->failed)
    *rc = host->error(SNAP_EINVAL, "memory backend: the stream of pid '%s' failed earlier and "
                      "is not published", s->pid);
  else if (strcmp(s->pid, row->pid) != 0 || s->seq != row->seq)
    *rc = host->error(SNAP_EINVAL, "memory backend: a stream staged for pid '%s' seq %lld "
                      "published as pid '%s' seq %lld", s->pid, (long long)s->seq, row->pid,
                      (long long)row->seq);
  if (*rc != SNAP_OK) {
    snap__memchunks_unref(host, c);
    c = NULL;
  }
  free_stream(host, s);
  return c;
}

void snap__memstream_abort(const snap_host *host, snap_backend_stream *s) {
  if (s == NULL)
    return;
  snap__memchunks_unref(host, s->chunks);
  free_stream(host, s);
}

/* The row's new body with its manifest's copy after it (one allocation, as
 * memory.c keeps rows); NULL when out of memory. */
static uint8_t *body_with_manifest(const snap_host *host, const snap_backend_swap *w,
                                   const char *manifest) {
  size_t ml = manifest ? strlen(manifest) + 1 : 0;
  uint8_t *body = host->malloc(w->body_len + ml + 1);
  if (body != NULL) {
    memcpy(body, w->body, w->body_len);
    if (ml > 0)
      memcpy(body + w->body_len, manifest, ml);
  }
  return body;
}

int snap__memstream_replace(mem_backend *m, snap_backend_stream *s, snap_backend_swap *w,
                            const char *manifest) {
  w->outcome = SNAP_SWAP_GONE;
  snap_backend_row key = {w->pid, w->seq, 0, NULL, 0, 0, SNAP_OK};
  mem_chunks *c = snap__memstream_take(m->host, s, &key, &w->status);
  if (c == NULL)
    return w->status;
  uint8_t *body = body_with_manifest(m->host, w, manifest);
  if (body == NULL) {
    snap__memchunks_unref(m->host, c);
    return w->status = m->host->error(SNAP_ENOMEM, "memory backend: out of memory for pid '%s'",
                                      w->pid);
  }
  pthread_rwlock_wrlock(&m->lock);
  mem_pid *p = snap__mem_find_pid(m, w->pid, snap__mem_hash_pid(w->pid));
  size_t at = p ? snap__mem_lower_bound(p, w->seq) : 0;
  mem_row *r = p != NULL && at < p->n && p->rows[at].seq == w->seq ? &p->rows[at] : NULL;
  if (r != NULL && (r->body_len != w->expected_len ||
                    memcmp(r->body, w->expected, r->body_len) != 0)) {
    w->outcome = SNAP_SWAP_CHANGED;
    r = NULL;
  }
  mem_chunks *old = NULL;
  if (r != NULL) {
    m->host->free(r->body);
    old = r->chunks; /* a read that opened them holds its own reference */
    r->body = body;
    r->body_len = w->body_len;
    r->manifest = manifest ? (const char *)body + w->body_len : NULL;
    r->chunks = c;
    w->outcome = SNAP_SWAP_DONE;
    body = NULL;
    c = NULL;
  }
  pthread_rwlock_unlock(&m->lock);
  m->host->free(body);
  snap__memchunks_unref(m->host, c);
  snap__memchunks_unref(m->host, old);
  return SNAP_OK;
}

struct snap_backend_reader {
  mem_chunks *chunks;
  size_t next;
};

int snap__memreader_new(const snap_host *host, mem_chunks *c, snap_backend_reader **out) {
  snap_backend_reader *r = host->malloc(sizeof *r);
  if (r == NULL)
    return host->error(SNAP_ENOMEM, "memory backend: out of memory for a stream reader");
  snap__memchunks_ref(c);
  *r = (snap_backend_reader){c, 0};
  *out = r;
  return SNAP_OK;
}

int snap__memreader_next(snap_backend_reader *r, const void **record, size_t *len) {
  const mem_chunks *c = r->chunks;
  *record = r->next < c->n ? c->v[r->next].p : NULL;
  *len = r->next < c->n ? c->v[r->next].len : 0;
  if (r->next < c->n)
    r->next++;
  return SNAP_OK;
}

void snap__memreader_free(const snap_host *host, snap_backend_reader *r) {
  if (r == NULL)
    return;
  snap__memchunks_unref(host, r->chunks);
  host->free(r);
}
