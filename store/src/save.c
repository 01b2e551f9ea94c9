/* Saves: one (snap_save*), a batch in one put (snap_save_batch) and the two
 * steps of a prepared save (snap_save_prepare, then snap_save_commit of many
 * at once). Each is validated, encoded with its resolved options through the
 * pipeline and handed to the backend's put with the store's retention;
 * every outcome is observed. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "handle.h"

/* Buffers that grew beyond POOL_MAX_CAP are released instead of kept in the
 * store's pool (SNAP__POOL_SLOTS), so one huge state does not pin its
 * memory for the life of the store. */
#define POOL_MAX_CAP (4u << 20)

/* Rows committed per put without a heap-allocated row array. */
#define STACK_ROWS 16

/* Encoding buffers kept for reuse, so a steady stream of saves allocates nothing. */
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
  if (st->pool_n < SNAP__POOL_SLOTS) {
    st->pool[st->pool_n++] = *b;
    b->data = NULL;
    b->len = b->cap = 0;
  }
  pthread_mutex_unlock(&st->pool_lock);
  snap_buf_dispose(b); /* no-op when it went into the pool */
}

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
  const char *manifest; /* the body states it and the column copies it; NULL: none */
  int64_t expect_seq;  /* SNAP_BACKEND_ANY_SEQ: unconditional */
  int64_t current_seq; /* out of a conditional put: the pid's newest seq */
} encoded;

/* A save encoded by snap_save_prepare(), waiting for snap_save_commit(). */
struct snap_prepared {
  snap_store *st;
  encoded e;      /* e.pid points at the copy after the struct, e.body at `body` */
  snap_buf body;  /* kept (with its capacity) when the prepared save is reused */
  size_t pid_cap; /* bytes after the struct for the pid, its NUL excluded */
  char manifest[SNAP_MANIFEST_MAX + 1]; /* e.manifest's copy: the request's was borrowed */
};

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

/* The manifest and metadata of a save's extension. */
static int check_typing(const snap_save_req *r, const snap_save_ext *x) {
  if (x->manifest != NULL && snap_manifest_check(x->manifest) != SNAP_OK) {
    char why[320];
    snprintf(why, sizeof why, "%s", snap_error_message());
    return snap_error_set(SNAP_EINVAL, "save pid '%s' seq %" PRId64 ": %s", r->pid, r->seq, why);
  }
  if (x->metadata_len > SNAP_METADATA_MAX || (x->metadata == NULL && x->metadata_len > 0))
    return snap_error_set(SNAP_EINVAL,
                          "save pid '%s' seq %" PRId64 ": metadata of %zu bytes %s", r->pid,
                          r->seq, x->metadata_len,
                          x->metadata == NULL ? "is NULL" : "is over SNAP_METADATA_MAX (2048)");
  return SNAP_OK;
}

/* What a save's extension asks, checked against the request and the backend. */
static int check_ext(const snap_store *st, const snap_save_req *r, const snap_save_ext *x) {
  if (x == NULL)
    return SNAP_OK;
  int rc = check_typing(r, x);
  if (rc != SNAP_OK)
    return rc;
  if ((x->flags & ~SNAP_SAVE_IF_LATEST) != 0)
    return snap_error_set(SNAP_EINVAL, "save pid '%s' seq %" PRId64 ": unknown flags 0x%x",
                          r->pid, r->seq, x->flags & ~SNAP_SAVE_IF_LATEST);
  if (!(x->flags & SNAP_SAVE_IF_LATEST))
    return SNAP_OK;
  if (x->expected_seq < SNAP_SEQ_NONE)
    return snap_error_set(SNAP_EINVAL,
                          "save pid '%s' seq %" PRId64 ": expected seq %" PRId64
                          " is neither a seq nor SNAP_SEQ_NONE (-1)",
                          r->pid, r->seq, x->expected_seq);
  if (st->be.abi_version < 4 || st->be.put4 == NULL)
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "save pid '%s' seq %" PRId64 ": backend '%s' cannot make a save "
                          "conditional (it has no put4, backend ABI version 4)",
                          r->pid, r->seq, st->be.name);
  return SNAP_OK;
}

/* Validates and encodes `r` into `body`; fills `e` (which borrows r->pid). */
static int encode_request(snap_store *st, const snap_save_req *r, const snap_save_ext *x,
                          snap_buf *body, encoded *e) {
  int rc = check_request(r);
  if (rc == SNAP_OK)
    rc = check_ext(st, r, x);
  if (rc != SNAP_OK)
    return rc;
  snap__resolution owned;
  const snap_options *o;
  unsigned ignored = 0, stages = 0;
  pthread_rwlock_rdlock(&st->lock);
  rc = snap__store_resolve(st, r->pid, r->options, &owned, &o, &ignored);
  snap__typing t = {NULL, 0, NULL, 0};
  if (x != NULL)
    t = (snap__typing){x->manifest, x->manifest ? strlen(x->manifest) : 0, x->metadata,
                       x->metadata_len};
  if (rc == SNAP_OK)
    rc = snap__store_encode(st, r->pid, r->seq, r->format, r->state, r->len, o, &t, body,
                            &stages);
  pthread_rwlock_unlock(&st->lock);
  snap__resolution_done(st, &owned);
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
  e->manifest = x != NULL ? x->manifest : NULL;
  e->expect_seq =
      x != NULL && (x->flags & SNAP_SAVE_IF_LATEST) ? x->expected_seq : SNAP_BACKEND_ANY_SEQ;
  e->current_seq = SNAP_SEQ_NONE;
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
  m->current_seq = e->expect_seq == SNAP_BACKEND_ANY_SEQ ? SNAP_SEQ_NONE : e->seq;
}

/* A save's meta for its status: what was stored, or the seq a conflict found. */
static void meta_for(snap_meta *m, const encoded *e, int status) {
  if (status == SNAP_OK) {
    fill_meta(m, e);
  } else if (status == SNAP_ECONFLICT) {
    memset(m, 0, sizeof *m);
    m->seq = e->seq;
    m->current_seq = e->current_seq;
  }
}

/* Reports one save's outcome; `e` is all zero when the save failed to encode. */
static void observe_save(snap_store *st, uint64_t t0, const char *pid, int64_t seq, size_t len,
                         int status, const encoded *e) {
  size_t body = status == SNAP_OK && e->body ? e->body->len : 0;
  snap__obs_op(&st->obs, t0,
               &(snap__op){SNAP_EVENT_SAVE, status, pid, seq, len, body, e->stages, e->ignored, 0});
}

/* The backend's put of `n` rows: put4() when the backend has it (the
 * conditions travel with the rows; their conflicts come back in
 * `es[i]->current_seq`), else put(). */
static int backend_put(snap_store *st, encoded *const *es, snap_backend_row *rows,
                       snap_backend_row4 *rows4, size_t n, uint32_t keep) {
  if (rows4 == NULL)
    return st->be.put(st->self, rows, n, keep);
  for (size_t i = 0; i < n; i++) {
    rows4[i].row = rows[i];
    rows4[i].manifest = es[i]->manifest;
    rows4[i].expect_seq = es[i]->expect_seq;
    rows4[i].current_seq = SNAP_SEQ_NONE;
  }
  int rc = st->be.put4(st->self, rows4, n, keep);
  for (size_t i = 0; i < n; i++) {
    rows[i].status = rows4[i].row.status;
    es[i]->current_seq = rows4[i].current_seq;
  }
  return rc;
}

/* Writes the encoded saves in one backend put. `status` has n entries. */
static int put_encoded(snap_store *st, encoded *const *es, size_t n, int *status) {
  snap_backend_row stack_rows[STACK_ROWS];
  snap_backend_row4 stack_rows4[STACK_ROWS];
  bool four = st->be.abi_version >= 4 && st->be.put4 != NULL;
  snap_backend_row *rows = stack_rows;
  snap_backend_row4 *rows4 = four ? stack_rows4 : NULL;
  if (n > STACK_ROWS) {
    rows = snap_malloc(n * (sizeof *rows + (four ? sizeof *rows4 : 0)));
    rows4 = four && rows != NULL ? (snap_backend_row4 *)(rows + n) : NULL;
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
    rc = backend_put(st, es, rows, rows4, n, keep);
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

/* One save of `r` with `x` (may be NULL). */
static int save_one(snap_store *st, const snap_save_req *r, const snap_save_ext *x,
                    snap_meta *meta) {
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "save: store is NULL");
  if (r == NULL)
    return snap_error_set(SNAP_EINVAL, "save: request is NULL");
  uint64_t t0 = snap__obs_start(&st->obs);
  snap_buf body = pool_get(st);
  encoded e = {0};
  encoded *ep = &e;
  int rc = encode_request(st, r, x, &body, &e);
  if (rc == SNAP_OK) {
    int status;
    rc = put_encoded(st, &ep, 1, &status);
    if (meta != NULL)
      meta_for(meta, &e, rc);
  }
  observe_save(st, t0, r->pid, r->seq, r->len, rc, &e);
  pool_put(st, &body);
  return rc;
}

int snap_save_at(snap_store *st, const char *pid, int64_t seq, int64_t timestamp, snap_format fmt,
                 const void *state, size_t len, const snap_options *opts, snap_meta *meta) {
  snap_save_req r = {pid, seq, timestamp, fmt, state, len, opts};
  return save_one(st, &r, NULL, meta);
}

int snap_save_ex(snap_store *st, const snap_save_req *req, const snap_save_ext *ext,
                 snap_meta *meta) {
  return save_one(st, req, ext, meta);
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

/* The saves of one batch on their way to one put, in one allocation: one
 * per request (`es`, with its encoding buffer in `bufs` for save_batch),
 * those ready to store (`todo`, the request's position in `index`) and the
 * statuses the put gives them (`rows`). */
typedef struct save_block {
  encoded *es;
  snap_buf *bufs; /* NULL for save_commit: prepared saves hold their bodies */
  encoded **todo;
  size_t *index;
  int *rows;
  size_t m;
  uint64_t t0; /* when the call began, for its observations */
} save_block;

/* The start of a batch call: its arguments checked (`inputs` is the array of
 * what to save, named `inputs_name` in messages), the clock started and a
 * zeroed block for `n` saves allocated. Returns 1 with the block ready, 0
 * for an empty batch, or the error (then every status is the error). */
static int block_start(snap_store *st, const void *inputs, const char *inputs_name, size_t n,
                       int *status, bool bufs, const char *what, save_block *b) {
  if (st == NULL || (n > 0 && (inputs == NULL || status == NULL)))
    return snap_error_set(SNAP_EINVAL, "%s: store, %s or status is NULL", what, inputs_name);
  if (n == 0)
    return 0;
  b->t0 = snap__obs_start(&st->obs);
  size_t each = sizeof(encoded) + (bufs ? sizeof(snap_buf) : 0) + sizeof(encoded *) +
                sizeof(size_t) + sizeof(int);
  uint8_t *mem = snap_calloc(n, each);
  if (mem == NULL) {
    int rc = snap_error_set(SNAP_ENOMEM, "%s: out of memory for %zu saves", what, n);
    for (size_t i = 0; i < n; i++)
      status[i] = rc;
    return rc;
  }
  b->es = (encoded *)mem;
  b->bufs = bufs ? (snap_buf *)(b->es + n) : NULL;
  b->todo = bufs ? (encoded **)(b->bufs + n) : (encoded **)(b->es + n);
  b->index = (size_t *)(b->todo + n);
  b->rows = (int *)(b->index + n);
  b->m = 0;
  return 1;
}

/* The save at request position `i` is encoded and goes into the put. */
static void block_ready(save_block *b, size_t i) {
  b->todo[b->m] = &b->es[i];
  b->index[b->m++] = i;
}

/* Stores the ready saves in one put, gives each its status (and meta) at
 * its request's position, and returns the first failure of all `n`. */
static int block_commit(snap_store *st, save_block *b, size_t n, int *status, snap_meta *meta) {
  if (b->m > 0) {
    put_encoded(st, b->todo, b->m, b->rows);
    for (size_t j = 0; j < b->m; j++) {
      status[b->index[j]] = b->rows[j];
      if (meta != NULL)
        meta_for(&meta[b->index[j]], b->todo[j], b->rows[j]);
    }
  }
  int first = SNAP_OK;
  for (size_t i = 0; i < n && first == SNAP_OK; i++)
    first = status[i];
  return first;
}

int snap_save_batch(snap_store *st, const snap_save_req *reqs, size_t n, int *status,
                    snap_meta *meta) {
  return snap_save_batch_ex(st, reqs, NULL, n, status, meta);
}

int snap_save_batch_ex(snap_store *st, const snap_save_req *reqs, const snap_save_ext *ext,
                       size_t n, int *status, snap_meta *meta) {
  save_block b = {0}; /* block_start() fills it; zeroed so optimisers see it set */
  int rc = block_start(st, reqs, "requests", n, status, true, "save_batch", &b);
  if (rc <= 0)
    return rc;
  for (size_t i = 0; i < n; i++) {
    status[i] = encode_request(st, &reqs[i], ext ? &ext[i] : NULL, &b.bufs[i], &b.es[i]);
    if (status[i] == SNAP_OK)
      block_ready(&b, i);
  }
  int first = block_commit(st, &b, n, status, meta);
  for (size_t i = 0; i < n; i++)
    observe_save(st, b.t0, reqs[i].pid, reqs[i].seq, reqs[i].len, status[i], &b.es[i]);
  snap__obs_op(&st->obs, b.t0, &(snap__op){SNAP_EVENT_BATCH, first, NULL, -1, 0, 0, 0, 0, n});
  for (size_t i = 0; i < n; i++)
    snap_buf_dispose(&b.bufs[i]);
  snap_free(b.es);
  return first;
}

/* A save that failed before its commit is an outcome too. */
static int prepare_failed(snap_store *st, uint64_t t0, const snap_save_req *req, int rc) {
  observe_save(st, t0, req->pid, req->seq, req->len, rc, &(encoded){0});
  return rc;
}

/* Encodes `req` into `*io`, allocated (or grown for a longer pid) here; on
 * failure `*io` stays valid for the caller to free or reuse. */
static int prepare_into(snap_store *st, const snap_save_req *req, const snap_save_ext *ext,
                        snap_prepared **io) {
  uint64_t t0 = snap__obs_start(&st->obs);
  int rc = check_request(req);
  if (rc != SNAP_OK)
    return prepare_failed(st, t0, req, rc);
  size_t pid_len = strlen(req->pid);
  snap_prepared *p = *io;
  if (p == NULL || p->pid_cap < pid_len) {
    snap_prepared *q = snap_realloc(p, sizeof *q + pid_len + 1);
    if (q == NULL)
      return snap_error_set(SNAP_ENOMEM, "save_prepare pid '%s': out of memory", req->pid);
    if (p == NULL)
      memset(q, 0, sizeof *q);
    q->pid_cap = pid_len;
    *io = p = q;
  }
  p->st = NULL; /* a failed encode leaves nothing to commit */
  p->e = (encoded){0};
  p->body.len = 0;
  rc = encode_request(st, req, ext, &p->body, &p->e);
  if (rc != SNAP_OK)
    return prepare_failed(st, t0, req, rc);
  char *pid = (char *)(p + 1);
  memcpy(pid, req->pid, pid_len + 1);
  p->e.pid = pid; /* the request's pid and manifest were only borrowed */
  if (p->e.manifest != NULL) {
    snprintf(p->manifest, sizeof p->manifest, "%s", p->e.manifest); /* checked: it fits */
    p->e.manifest = p->manifest;
  }
  p->st = st;
  return SNAP_OK;
}

int snap_save_prepare(snap_store *st, const snap_save_req *req, snap_prepared **out) {
  return snap_save_prepare_ex(st, req, NULL, out);
}

int snap_save_prepare_ex(snap_store *st, const snap_save_req *req, const snap_save_ext *ext,
                         snap_prepared **out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "save_prepare: out is NULL");
  *out = NULL;
  if (st == NULL || req == NULL)
    return snap_error_set(SNAP_EINVAL, "save_prepare: store or request is NULL");
  snap_prepared *p = NULL;
  int rc = prepare_into(st, req, ext, &p);
  if (rc != SNAP_OK) {
    snap_prepared_free(p);
    return rc;
  }
  *out = p;
  return SNAP_OK;
}

int snap__save_prepare_reuse(snap_store *st, const snap_save_req *req, const snap_save_ext *ext,
                             snap_prepared **p) {
  if (st == NULL || req == NULL || p == NULL)
    return snap_error_set(SNAP_EINVAL, "save_prepare: store, request or prepared save is NULL");
  return prepare_into(st, req, ext, p);
}

size_t snap__prepared_bytes(const snap_prepared *p) {
  return p ? sizeof *p + p->pid_cap + 1 + p->body.cap : 0;
}

int snap_save_commit(snap_store *st, snap_prepared *const *items, size_t n, int *status,
                     snap_meta *meta) {
  save_block b = {0}; /* block_start() fills it; zeroed so optimisers see it set */
  int rc = block_start(st, items, "items", n, status, false, "save_commit", &b);
  if (rc <= 0)
    return rc;
  for (size_t i = 0; i < n; i++) {
    snap_prepared *p = items[i];
    if (p == NULL || p->st != st) {
      status[i] = snap_error_set(SNAP_EINVAL, "save_commit: item %zu is %s", i,
                                 p == NULL ? "NULL" : "prepared for another store");
      continue;
    }
    b.es[i] = p->e;
    block_ready(&b, i);
  }
  int first = block_commit(st, &b, n, status, meta);
  for (size_t j = 0; j < b.m; j++)
    observe_save(st, b.t0, b.todo[j]->pid, b.todo[j]->seq, b.todo[j]->state_len,
                 status[b.index[j]], b.todo[j]);
  snap__obs_op(&st->obs, b.t0, &(snap__op){SNAP_EVENT_BATCH, first, NULL, -1, 0, 0, 0, 0, n});
  snap_free(b.es);
  return first;
}

void snap_prepared_free(snap_prepared *p) {
  if (p == NULL)
    return;
  snap_buf_dispose(&p->body);
  snap_free(p);
}

