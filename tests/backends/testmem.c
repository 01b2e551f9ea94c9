/*
 * "testmem": a small third-party backend loaded from a shared object. It keeps
 * rows in memory, links nothing of snapstore (allocation and error messages
 * come through snap_host), and refuses every row whose pid starts with
 * "refuse-" with SNAP_EIO, so tests can make one save of a batch fail.
 * It implements ABI version 1 only (no enumeration, replace or backup).
 */
#include <pthread.h>
#include <string.h>

#include "snap/sys/plugin_entry.h"

typedef struct row {
  char *pid;
  int64_t seq;
  int64_t ts;
  uint8_t *body;
  size_t len;
} row;

typedef struct tm_state {
  const snap_host *host;
  pthread_mutex_t mu;
  row *rows;
  size_t n, cap;
} tm_state;

/* Accepts only an empty configuration: this backend has no keys of its own. */
static int config_is_empty(const char *json) {
  if (!json)
    return 1;
  const char *p = json;
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    p++;
  if (*p == '\0' || strcmp(p, "null") == 0)
    return 1;
  if (*p++ != '{')
    return 0;
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    p++;
  return *p == '}';
}

static int tm_open(void **self, const char *config_json, const snap_host *host) {
  if (!config_is_empty(config_json))
    return host->error(SNAP_ECONFIG, "testmem: unknown key in %s", config_json);
  tm_state *s = host->malloc(sizeof *s);
  if (!s)
    return host->error(SNAP_ENOMEM, "testmem: out of memory");
  memset(s, 0, sizeof *s);
  s->host = host;
  pthread_mutex_init(&s->mu, NULL);
  *self = s;
  return SNAP_OK;
}

static void tm_close(void *self) {
  tm_state *s = self;
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++) {
    s->host->free(s->rows[i].pid);
    s->host->free(s->rows[i].body);
  }
  s->host->free(s->rows);
  pthread_mutex_destroy(&s->mu);
  s->host->free(s);
}

static void drop(tm_state *s, size_t i) {
  s->host->free(s->rows[i].pid);
  s->host->free(s->rows[i].body);
  s->rows[i] = s->rows[--s->n];
}

static int put_one(tm_state *s, const snap_backend_row *r) {
  if (strncmp(r->pid, "refuse-", 7) == 0)
    return s->host->error(SNAP_EIO, "testmem: pid '%s' is refused", r->pid);
  uint8_t *body = s->host->malloc(r->body_len ? r->body_len : 1);
  if (!body)
    return s->host->error(SNAP_ENOMEM, "testmem: out of memory");
  memcpy(body, r->body, r->body_len);
  for (size_t i = 0; i < s->n; i++) {
    if (s->rows[i].seq == r->seq && strcmp(s->rows[i].pid, r->pid) == 0) {
      s->host->free(s->rows[i].body);
      s->rows[i].body = body;
      s->rows[i].len = r->body_len;
      s->rows[i].ts = r->timestamp;
      return SNAP_OK;
    }
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    row *grown = s->host->realloc(s->rows, cap * sizeof *grown);
    if (!grown) {
      s->host->free(body);
      return s->host->error(SNAP_ENOMEM, "testmem: out of memory");
    }
    s->rows = grown;
    s->cap = cap;
  }
  size_t plen = strlen(r->pid) + 1;
  char *pid = s->host->malloc(plen);
  if (!pid) {
    s->host->free(body);
    return s->host->error(SNAP_ENOMEM, "testmem: out of memory");
  }
  memcpy(pid, r->pid, plen);
  s->rows[s->n++] = (row){pid, r->seq, r->timestamp, body, r->body_len};
  return SNAP_OK;
}

/* Keeps the newest `keep` rows of `pid`. */
static void prune(tm_state *s, const char *pid, uint32_t keep) {
  for (;;) {
    size_t count = 0, oldest = 0;
    for (size_t i = 0; i < s->n; i++) {
      if (strcmp(s->rows[i].pid, pid) != 0)
        continue;
      if (count == 0 || s->rows[i].seq < s->rows[oldest].seq)
        oldest = i;
      count++;
    }
    if (count <= keep)
      return;
    drop(s, oldest);
  }
}

static int tm_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  tm_state *s = self;
  int first = SNAP_OK;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < n; i++) {
    rows[i].status = put_one(s, &rows[i]);
    if (rows[i].status && first == SNAP_OK)
      first = rows[i].status;
  }
  if (keep)
    for (size_t i = 0; i < n; i++)
      if (rows[i].status == SNAP_OK)
        prune(s, rows[i].pid, keep);
  pthread_mutex_unlock(&s->mu);
  return first;
}

static int matches(const row *r, const char *pid, const snap_criteria *c) {
  return strcmp(r->pid, pid) == 0 && r->seq >= c->min_seq && r->seq <= c->max_seq &&
         r->ts >= c->min_ts && r->ts <= c->max_ts;
}

static int tm_load(void *self, const char *pid, const snap_criteria *c, snap_backend_emit emit,
                   void *ctx) {
  tm_state *s = self;
  pthread_mutex_lock(&s->mu);
  const row *best = NULL;
  for (size_t i = 0; i < s->n; i++)
    if (matches(&s->rows[i], pid, c) && (!best || s->rows[i].seq > best->seq))
      best = &s->rows[i];
  /* The host copies the body inside emit, so the lock can be held across it. */
  int rc = best ? emit(ctx, best->seq, best->ts, best->body, best->len) : SNAP_OK;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int tm_remove(void *self, const char *pid, const snap_criteria *c) {
  tm_state *s = self;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->n;) {
    if (matches(&s->rows[i], pid, c))
      drop(s, i);
    else
      i++;
  }
  pthread_mutex_unlock(&s->mu);
  return SNAP_OK;
}

/* Written for ABI version 1 on purpose: the tests check that a backend of the
 * first version still loads, and that the store answers SNAP_EUNSUPPORTED
 * for the optional operations of later versions. */
static const snap_backend table = {.abi_version = 1,
                                   .name = "testmem",
                                   .capabilities = SNAP_CAP_BATCH,
                                   .open = tm_open,
                                   .close = tm_close,
                                   .put = tm_put,
                                   .load = tm_load,
                                   .remove = tm_remove};

SNAP_BACKEND_EXPORT const snap_backend *snap_backend_entry(void) { return &table; }
