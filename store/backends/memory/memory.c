/* The "memory" backend: snapshots in a hash table of per-pid arrays sorted by
 * seq, behind one reader-writer lock. Not persistent; meant for tests and for
 * actors whose snapshots need not survive the process. It goes through the
 * same codec path as every backend (the store encodes and decodes). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "snap/sys/backend.h"

uint64_t snap__mem_hash_pid(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (uint8_t)*s;
    h *= 1099511628211ull;
  }
  return h;
}

mem_pid *snap__mem_find_pid(const mem_backend *m, const char *pid, uint64_t h) {
  for (mem_pid *p = m->buckets[h & (m->nbuckets - 1)]; p; p = p->next)
    if (p->hash == h && strcmp(p->pid, pid) == 0)
      return p;
  return NULL;
}


/* Index of the first row with seq >= `seq`. */
size_t snap__mem_lower_bound(const mem_pid *p, int64_t seq) {
  size_t lo = 0, hi = p->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (p->rows[mid].seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}


static int grow_table(mem_backend *m) {
  size_t nb = m->nbuckets * 2;
  mem_pid **b = m->host->malloc(nb * sizeof *b);
  if (b == NULL)
    return SNAP_ENOMEM;
  memset(b, 0, nb * sizeof *b);
  for (size_t i = 0; i < m->nbuckets; i++) {
    mem_pid *p = m->buckets[i];
    while (p) {
      mem_pid *next = p->next;
      p->next = b[p->hash & (nb - 1)];
      b[p->hash & (nb - 1)] = p;
      p = next;
    }
  }
  m->host->free(m->buckets);
  m->buckets = b;
  m->nbuckets = nb;
  return SNAP_OK;
}

static mem_pid *get_or_add_pid(mem_backend *m, const char *pid) {
  uint64_t h = snap__mem_hash_pid(pid);
  mem_pid *p = snap__mem_find_pid(m, pid, h);
  if (p)
    return p;
  if (m->npids >= m->nbuckets)
    (void)grow_table(m); /* a failed grow only lengthens the chains */
  size_t len = strlen(pid);
  p = m->host->malloc(sizeof *p + len + 1);
  if (p == NULL)
    return NULL;
  memset(p, 0, sizeof *p);
  memcpy(p->pid, pid, len + 1);
  p->hash = h;
  p->next = m->buckets[h & (m->nbuckets - 1)];
  m->buckets[h & (m->nbuckets - 1)] = p;
  m->npids++;
  return p;
}


static void mem_close(void *self);

/* No keys of its own: the reader refuses any key left. Nothing outlives the
 * handle, so SNAP_BACKEND_NO_CREATE has nothing to refuse. */
static int mem_open(void **self, snap_conf *config, unsigned flags, const snap_host *host) {
  (void)flags;
  *self = NULL;
  if (host->abi_version < 3)
    return host->error(SNAP_EABI, "memory backend: the host has no configuration reader");
  int rc = host->conf_check(config);
  if (rc != SNAP_OK)
    return rc;
  mem_backend *m = host->malloc(sizeof *m);
  if (m == NULL)
    return host->error(SNAP_ENOMEM, "memory backend: out of memory");
  memset(m, 0, sizeof *m);
  m->host = host;
  m->nbuckets = 64;
  m->buckets = host->malloc(m->nbuckets * sizeof *m->buckets);
  if (m->buckets == NULL || pthread_rwlock_init(&m->lock, NULL) != 0) {
    host->free(m->buckets);
    host->free(m);
    return host->error(SNAP_ENOMEM, "memory backend: out of memory");
  }
  memset(m->buckets, 0, m->nbuckets * sizeof *m->buckets);
  if ((m->keys = snap__memkeys_new(host)) == NULL || (m->dicts = snap__memdicts_new(host)) == NULL) {
    mem_close(m);
    return host->error(SNAP_ENOMEM, "memory backend: out of memory");
  }
  *self = m;
  return SNAP_OK;
}

static void mem_close(void *self) {
  mem_backend *m = self;
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->nbuckets; i++) {
    mem_pid *p = m->buckets[i];
    while (p) {
      mem_pid *next = p->next;
      for (size_t j = 0; j < p->n; j++) {
        m->host->free(p->rows[j].body);
        snap__memchunks_unref(m->host, p->rows[j].chunks);
      }
      m->host->free(p->rows);
      m->host->free(p);
      p = next;
    }
  }
  m->host->free(m->buckets);
  snap__memkeys_free(m->keys);
  snap__memdicts_free(m->dicts);
  pthread_rwlock_destroy(&m->lock);
  m->host->free(m);
}

/* Removes rows [from, to) of `p`, freeing their bodies. */
static void drop_rows(mem_backend *m, mem_pid *p, size_t from, size_t to) {
  if (from >= to)
    return;
  for (size_t i = from; i < to; i++) {
    m->host->free(p->rows[i].body);
    snap__memchunks_unref(m->host, p->rows[i].chunks);
  }
  memmove(&p->rows[from], &p->rows[to], (p->n - to) * sizeof *p->rows);
  p->n -= to - from;
}

/* Stores `body` (a copy owned from now on by the table, or freed on failure)
 * and `chunks` (a reference, likewise). */
static int put_row(mem_backend *m, const snap_backend_row *r, uint8_t *body,
                   const char *manifest, mem_chunks *chunks) {
  mem_pid *p = get_or_add_pid(m, r->pid);
  if (p == NULL) {
    m->host->free(body);
    snap__memchunks_unref(m->host, chunks);
    return m->host->error(SNAP_ENOMEM, "memory backend: out of memory for pid '%s'", r->pid);
  }
  size_t i = snap__mem_lower_bound(p, r->seq);
  if (i < p->n && p->rows[i].seq == r->seq) {
    m->host->free(p->rows[i].body);
    snap__memchunks_unref(m->host, p->rows[i].chunks);
  } else {
    if (p->n == p->cap) {
      size_t nc = p->cap ? p->cap * 2 : 4;
      mem_row *nr = m->host->realloc(p->rows, nc * sizeof *nr);
      if (nr == NULL) {
        m->host->free(body);
        snap__memchunks_unref(m->host, chunks);
        return m->host->error(SNAP_ENOMEM, "memory backend: out of memory for pid '%s'", r->pid);
      }
      p->rows = nr;
      p->cap = nc;
    }
    memmove(&p->rows[i + 1], &p->rows[i], (p->n - i) * sizeof *p->rows);
    p->n++;
  }
  p->rows[i] = (mem_row){r->seq, r->timestamp, body, r->body_len, manifest, chunks};
  return SNAP_OK;
}

/* A copy of the body with the manifest (may be NULL) after it. */
static uint8_t *copy_body(mem_backend *m, snap_backend_row *r, const char *manifest) {
  size_t ml = manifest ? strlen(manifest) + 1 : 0;
  uint8_t *body = m->host->malloc(r->body_len + ml + 1);
  if (body == NULL) {
    r->status = m->host->error(SNAP_ENOMEM, "memory backend: out of memory for pid '%s' seq %lld",
                               r->pid, (long long)r->seq);
    return NULL;
  }
  memcpy(body, r->body, r->body_len);
  if (ml > 0)
    memcpy(body + r->body_len, manifest, ml);
  return body;
}

/* The newest seq of `pid` (-1: none). Lock held. */
static int64_t newest_seq(const mem_backend *m, const char *pid) {
  const mem_pid *p = snap__mem_find_pid(m, pid, snap__mem_hash_pid(pid));
  return p != NULL && p->n > 0 ? p->rows[p->n - 1].seq : -1;
}

/* Row `i` of a put (rows) or a put4 (rows4). */
static snap_backend_row *row_at(snap_backend_row *rows, snap_backend_row4 *rows4, size_t i) {
  return rows4 ? &rows4[i].row : &rows[i];
}

/* Stores row `i` unless its condition fails (ECONFLICT). Lock held. */
static int put_one(mem_backend *m, snap_backend_row *r, snap_backend_row4 *r4, uint8_t *body,
                   mem_chunks *chunks) {
  if (r4 != NULL && r4->expect_seq != SNAP_BACKEND_ANY_SEQ) {
    int64_t cur = newest_seq(m, r->pid);
    if (cur != r4->expect_seq) {
      m->host->free(body);
      snap__memchunks_unref(m->host, chunks);
      r4->current_seq = cur;
      return m->host->error(SNAP_ECONFLICT,
                            "memory backend: pid '%s' seq %lld: the newest stored seq is %lld, "
                            "not the expected %lld",
                            r->pid, (long long)r->seq, (long long)cur, (long long)r4->expect_seq);
    }
  }
  size_t ml = r4 && r4->manifest ? 1 : 0;
  return put_row(m, r, body, ml ? (const char *)body + r->body_len : NULL, chunks);
}

/* `chunks`: a streamed row's records (n == 1), a reference put_rows owns. */
static int put_rows(mem_backend *m, snap_backend_row *rows, snap_backend_row4 *rows4, size_t n,
                    uint32_t keep, mem_chunks *chunks) {
  int first = SNAP_OK;
  for (size_t i = 0; i < n; i++)
    row_at(rows, rows4, i)->status = SNAP_OK;
  /* Copy the bodies before taking the lock: the copies are the slow part. A
   * single row, the common case, needs no array. */
  uint8_t *one = NULL;
  uint8_t **bodies = &one;
  if (n > 1) {
    bodies = m->host->malloc(n * sizeof *bodies);
    if (bodies == NULL) {
      snap__memchunks_unref(m->host, chunks);
      int rc = m->host->error(SNAP_ENOMEM, "memory backend: out of memory for %zu rows", n);
      for (size_t i = 0; i < n; i++)
        row_at(rows, rows4, i)->status = rc;
      return rc;
    }
  }
  for (size_t i = 0; i < n; i++)
    bodies[i] = copy_body(m, row_at(rows, rows4, i), rows4 ? rows4[i].manifest : NULL);
  pthread_rwlock_wrlock(&m->lock);
  for (size_t i = 0; i < n; i++) {
    snap_backend_row *r = row_at(rows, rows4, i);
    if (bodies[i] != NULL)
      r->status = put_one(m, r, rows4 ? &rows4[i] : NULL, bodies[i], chunks);
    else
      snap__memchunks_unref(m->host, chunks);
    if (r->status != SNAP_OK && first == SNAP_OK)
      first = r->status;
  }
  if (keep > 0) {
    for (size_t i = 0; i < n; i++) {
      snap_backend_row *row = row_at(rows, rows4, i);
      if (row->status != SNAP_OK)
        continue;
      mem_pid *p = snap__mem_find_pid(m, row->pid, snap__mem_hash_pid(row->pid));
      if (p && p->n > keep) {
        snap_backend_report r = {SNAP_EVENT_PRUNE, SNAP_OK, row->pid, row->seq, p->n - keep,
                                 NULL};
        drop_rows(m, p, 0, p->n - keep);
        if (m->host->abi_version >= 2 && m->host->report)
          m->host->report(m->host, &r);
      }
    }
  }
  pthread_rwlock_unlock(&m->lock);
  if (bodies != &one)
    m->host->free(bodies);
  return first;
}

static int mem_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  return put_rows(self, rows, NULL, n, keep, NULL);
}

static int mem_put4(void *self, snap_backend_row4 *rows, size_t n, uint32_t keep) {
  return put_rows(self, NULL, rows, n, keep, NULL);
}

static int mem_load4(void *self, const char *pid, const snap_criteria *c, const char *manifest,
                     snap_backend_emit emit, void *ctx) {
  mem_backend *m = self;
  int rc = SNAP_OK;
  pthread_rwlock_rdlock(&m->lock);
  const mem_pid *p = snap__mem_find_pid(m, pid, snap__mem_hash_pid(pid));
  if (p != NULL && c->max_seq >= c->min_seq) {
    /* Youngest first from the largest seq <= max_seq. */
    size_t i = c->max_seq == INT64_MAX ? p->n : snap__mem_lower_bound(p, c->max_seq + 1);
    while (i-- > 0) {
      const mem_row *r = &p->rows[i];
      if (r->seq < c->min_seq)
        break;
      if (r->timestamp >= c->min_ts && r->timestamp <= c->max_ts &&
          (manifest == NULL || (r->manifest != NULL && strcmp(r->manifest, manifest) == 0))) {
        /* The body stays valid while we hold the read lock. */
        rc = emit(ctx, r->seq, r->timestamp, r->body, r->body_len);
        break;
      }
    }
  }
  pthread_rwlock_unlock(&m->lock);
  return rc;
}

static int mem_load(void *self, const char *pid, const snap_criteria *c, snap_backend_emit emit,
                    void *ctx) {
  return mem_load4(self, pid, c, NULL, emit, ctx);
}

static int mem_remove(void *self, const char *pid, const snap_criteria *c) {
  mem_backend *m = self;
  pthread_rwlock_wrlock(&m->lock);
  mem_pid *p = snap__mem_find_pid(m, pid, snap__mem_hash_pid(pid));
  if (p != NULL && c->max_seq >= c->min_seq) {
    size_t lo = snap__mem_lower_bound(p, c->min_seq);
    size_t hi = c->max_seq == INT64_MAX ? p->n : snap__mem_lower_bound(p, c->max_seq + 1);
    size_t w = lo;
    for (size_t i = lo; i < hi; i++) {
      mem_row r = p->rows[i];
      if (r.timestamp >= c->min_ts && r.timestamp <= c->max_ts) {
        m->host->free(r.body);
        snap__memchunks_unref(m->host, r.chunks);
      } else
        p->rows[w++] = r;
    }
    memmove(&p->rows[w], &p->rows[hi], (p->n - hi) * sizeof *p->rows);
    p->n -= hi - w;
  }
  pthread_rwlock_unlock(&m->lock);
  return SNAP_OK;
}

/* ---- ABI version 2: conditional replace (enumeration: enumerate.c) ------- */

/* replace() and, with `manifests`, replace_typed(): a replaced row keeps its
 * manifest unless `manifests` gives its new one. */
static int swap_rows(mem_backend *m, snap_backend_swap *sw, const char *const *manifests,
                     size_t n) {
  int first = SNAP_OK;
  for (size_t i = 0; i < n; i++) {
    sw[i].status = SNAP_OK;
    sw[i].outcome = SNAP_SWAP_GONE;
  }
  pthread_rwlock_wrlock(&m->lock);
  for (size_t i = 0; i < n; i++) {
    mem_pid *p = snap__mem_find_pid(m, sw[i].pid, snap__mem_hash_pid(sw[i].pid));
    size_t at = p ? snap__mem_lower_bound(p, sw[i].seq) : 0;
    if (p == NULL || at >= p->n || p->rows[at].seq != sw[i].seq)
      continue;
    mem_row *r = &p->rows[at];
    if (r->chunks != NULL || r->body_len != sw[i].expected_len || memcmp(r->body, sw[i].expected, r->body_len) != 0) {
      sw[i].outcome = SNAP_SWAP_CHANGED;
      continue;
    }
    const char *manifest = manifests ? manifests[i] : r->manifest;
    size_t ml = manifest ? strlen(manifest) + 1 : 0;
    uint8_t *body = m->host->malloc(sw[i].body_len + ml + 1);
    if (body == NULL) {
      sw[i].status =
          m->host->error(SNAP_ENOMEM, "memory backend: out of memory for pid '%s'", sw[i].pid);
      if (first == SNAP_OK)
        first = sw[i].status;
      continue;
    }
    memcpy(body, sw[i].body, sw[i].body_len);
    if (ml > 0)
      memcpy(body + sw[i].body_len, manifest, ml);
    m->host->free(r->body);
    r->body = body;
    r->body_len = sw[i].body_len;
    r->manifest = ml > 0 ? (const char *)body + sw[i].body_len : NULL;
    sw[i].outcome = SNAP_SWAP_DONE;
  }
  pthread_rwlock_unlock(&m->lock);
  return first;
}

static int mem_replace(void *self, snap_backend_swap *sw, size_t n) {
  return swap_rows(self, sw, NULL, n);
}

/* ABI 5 */
static int mem_replace_typed(void *self, snap_backend_swap *sw, const char *const *manifests,
                             size_t n) {
  return swap_rows(self, sw, manifests, n);
}

/* ABI 4: the key table (keys.c). The memory backend stores no encrypted
 * bodies (no SNAP_CAP_ENCRYPTION), but forgetting a unit works the same. */
static const char *mem_dataset(void *self) {
  (void)self;
  return "memory";
}
static int mem_key_get(void *self, const char *unit, snap_backend_key_emit emit, void *ctx) {
  return snap__memkeys_get(((mem_backend *)self)->keys, unit, emit, ctx);
}
static int mem_key_create(void *self, const snap_backend_key *k, snap_backend_key_emit emit,
                          void *ctx) {
  return snap__memkeys_create(((mem_backend *)self)->keys, k, emit, ctx);
}
static int mem_key_forget(void *self, const char *unit, uint32_t *generation) {
  return snap__memkeys_forget(((mem_backend *)self)->keys, unit, generation);
}
static int mem_key_list(void *self, const char *after, size_t limit, snap_backend_key_emit emit,
                        void *ctx) {
  return snap__memkeys_list(((mem_backend *)self)->keys, after, limit, emit, ctx);
}
static int mem_key_rewrap(void *self, snap_backend_key_swap *sw, size_t n) {
  return snap__memkeys_rewrap(((mem_backend *)self)->keys, sw, n);
}
static int mem_key_replace(void *self, const snap_backend_key_change *c) {
  return snap__memkeys_replace(((mem_backend *)self)->keys, c);
}

/* ABI 4: the dictionary table (dicts.c). */
static int mem_dict_put(void *self, const snap_backend_dict *d) {
  return snap__memdicts_put(((mem_backend *)self)->dicts, d);
}
static int mem_dict_get(void *self, uint32_t id, const char *name, snap_backend_dict_emit emit,
                        void *ctx) {
  return snap__memdicts_get(((mem_backend *)self)->dicts, id, name, emit, ctx);
}
static int mem_dict_remove(void *self, uint32_t id) {
  return snap__memdicts_remove(((mem_backend *)self)->dicts, id);
}

/* ABI 6: streamed snapshots (streams.c). */
static int mem_stream_begin(void *self, const char *pid, int64_t seq, snap_backend_stream **out) {
  return snap__memstream_begin(((mem_backend *)self)->host, pid, seq, out);
}
static int mem_stream_write(void *self, snap_backend_stream *s, const void *record, size_t len) {
  return snap__memstream_write(((mem_backend *)self)->host, s, record, len);
}
static int mem_stream_publish(void *self, snap_backend_stream *s, snap_backend_row4 *row,
                              uint32_t keep) {
  mem_backend *m = self;
  int rc;
  mem_chunks *c = snap__memstream_take(m->host, s, &row->row, &rc);
  if (c == NULL)
    return row->row.status = rc;
  return put_rows(m, NULL, row, 1, keep, c);
}
static void mem_stream_abort(void *self, snap_backend_stream *s) {
  snap__memstream_abort(((mem_backend *)self)->host, s);
}
static int mem_stream_open(void *self, const char *pid, int64_t seq, const void *head,
                           size_t head_len, snap_backend_reader **out) {
  mem_backend *m = self;
  *out = NULL;
  int rc = SNAP_ENOTFOUND;
  pthread_rwlock_rdlock(&m->lock);
  const mem_pid *p = snap__mem_find_pid(m, pid, snap__mem_hash_pid(pid));
  size_t at = p ? snap__mem_lower_bound(p, seq) : 0;
  if (p != NULL && at < p->n && p->rows[at].seq == seq && p->rows[at].chunks != NULL &&
      p->rows[at].body_len == head_len && memcmp(p->rows[at].body, head, head_len) == 0)
    rc = snap__memreader_new(m->host, p->rows[at].chunks, out);
  pthread_rwlock_unlock(&m->lock);
  if (rc == SNAP_ENOTFOUND)
    return m->host->error(SNAP_ENOTFOUND,
                          "memory backend: pid '%s' seq %lld: no streamed snapshot with that "
                          "head (deleted or replaced since it was read)",
                          pid, (long long)seq);
  return rc;
}
static int mem_stream_next(void *self, snap_backend_reader *r, const void **record,
                           size_t *len) {
  (void)self;
  return snap__memreader_next(r, record, len);
}
static void mem_stream_close(void *self, snap_backend_reader *r) {
  snap__memreader_free(((mem_backend *)self)->host, r);
}
static int mem_stream_sweep(void *self, uint64_t max, uint64_t *reclaimed) {
  (void)self;
  (void)max;
  if (reclaimed != NULL)
    *reclaimed = 0; /* an abandoned staging dies with its process */
  return SNAP_OK;
}

/* ABI 7 (streams.c). */
static int mem_stream_replace(void *self, snap_backend_stream *s, snap_backend_swap *w,
                              const char *manifest) {
  return snap__memstream_replace(self, s, w, manifest);
}

/* open() of ABI versions 1 and 2: a copy of this table declared at an older
 * version (as a test of the host's version handling makes) still opens. */
static int mem_open_json(void **self, const char *config_json, const snap_host *host) {
  snap_conf *c;
  int rc = host->conf_open(&c, config_json);
  if (rc == SNAP_OK)
    rc = mem_open(self, c, 0, host);
  int fin = host->conf_finish(c);
  return rc != SNAP_OK ? rc : fin; /* mem_open() checked every key: fin is SNAP_OK */
}

/* The operations table; each slot's ABI version is in snap/sys/backend.h. */
static const snap_backend memory_backend = {
    .abi_version = SNAP_BACKEND_ABI_VERSION,
    .name = "memory",
    .capabilities = SNAP_CAP_BATCH,
    /* ABI 1 */
    .open = mem_open_json,
    .close = mem_close,
    .put = mem_put,
    .load = mem_load,
    .remove = mem_remove,
    /* ABI 2 */
    .list_pids = snap__mem_list_pids,
    .list_rows = snap__mem_list_rows,
    .replace = mem_replace,
    .backup = NULL,  /* nothing outlives the process */
    .setting = NULL, /* the data set lives with the handle */
    /* ABI 3 */
    .open_conf = mem_open,
    /* ABI 4 */
    .put4 = mem_put4,
    .load4 = mem_load4,
    .dataset = mem_dataset,
    .key_get = mem_key_get,
    .key_create = mem_key_create,
    .key_forget = mem_key_forget,
    .key_list = mem_key_list,
    .key_rewrap = mem_key_rewrap,
    .dict_put = mem_dict_put,
    .dict_get = mem_dict_get,
    .dict_remove = mem_dict_remove,
    /* ABI 5 */
    .replace_typed = mem_replace_typed,
    /* ABI 6 */
    .stream_begin = mem_stream_begin,
    .stream_write = mem_stream_write,
    .stream_publish = mem_stream_publish,
    .stream_abort = mem_stream_abort,
    .stream_open = mem_stream_open,
    .stream_next = mem_stream_next,
    .stream_close = mem_stream_close,
    .stream_sweep = mem_stream_sweep,
    .key_replace = mem_key_replace,
    /* ABI 7 */
    .stream_replace = mem_stream_replace,
};

const snap_backend *snap_backend_memory(void) { return &memory_backend; }
