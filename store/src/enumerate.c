/* Enumeration without decoding, raw puts and online backups (snap/admin.h):
 * the store side of the backend's ABI version 2 operations. */
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "snap/admin.h"
#include "store_internal.h"

int snap__store_unsupported(const snap_backend *be, const char *what) {
  return snap_error_set(SNAP_EUNSUPPORTED,
                        "backend '%s' does not support %s (an optional operation it leaves out)",
                        be->name, what);
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = snap_malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

/* ------------------------------------------------------------------------ */
/* Pids                                                                      */
/* ------------------------------------------------------------------------ */

/* Grows a page's array (of `size`-byte elements) to hold one more, at most `limit`. */
static int page_room(void **arr, size_t size, size_t n, size_t *cap, size_t limit,
                     const char *what) {
  if (n >= limit)
    return snap_error_set(SNAP_EIO, "%s: the backend emitted more than the %zu asked for", what,
                          limit);
  if (n < *cap)
    return SNAP_OK;
  size_t nc = *cap ? *cap * 2 : 64;
  if (nc > limit)
    nc = limit;
  void *g = snap_realloc(*arr, nc * size);
  if (g == NULL)
    return snap_error_set(SNAP_ENOMEM, "%s: out of memory", what);
  *arr = g;
  *cap = nc;
  return SNAP_OK;
}

typedef struct pid_ctx {
  snap_pid_page *page;
  size_t limit, cap;
} pid_ctx;

static int pid_emit(void *vctx, const char *pid) {
  pid_ctx *c = vctx;
  int rc = page_room((void **)&c->page->pids, sizeof *c->page->pids, c->page->n, &c->cap, c->limit,
                     "list_pids");
  if (rc != SNAP_OK)
    return rc;
  char *d = dup_str(pid);
  if (d == NULL)
    return snap_error_set(SNAP_ENOMEM, "list_pids: out of memory");
  c->page->pids[c->page->n++] = d;
  return SNAP_OK;
}

void snap_pid_page_dispose(snap_pid_page *page) {
  if (page == NULL)
    return;
  for (size_t i = 0; i < page->n; i++)
    snap_free(page->pids[i]);
  snap_free(page->pids);
  page->pids = NULL;
  page->n = 0;
}

int snap_store_list_pids(snap_store *st, const char *after, size_t limit, snap_pid_page *out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "list_pids: out is NULL");
  snap_pid_page_dispose(out);
  if (st == NULL || limit == 0)
    return snap_error_set(SNAP_EINVAL, "list_pids: %s", st ? "limit is 0" : "store is NULL");
  void *self;
  const snap_backend *be = snap__store_backend(st, &self);
  if (be->list_pids == NULL)
    return snap__store_unsupported(be, "listing pids");
  pid_ctx ctx = {out, limit, 0};
  int rc = be->list_pids(self, after, limit, pid_emit, &ctx);
  if (rc != SNAP_OK)
    snap_pid_page_dispose(out);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct row_ctx {
  snap_entry_page *page;
  size_t limit, cap;
  bool bodies;
} row_ctx;

static int row_emit(void *vctx, const char *pid, int64_t seq, int64_t timestamp, const void *body,
                    size_t body_len) {
  row_ctx *c = vctx;
  int rc = page_room((void **)&c->page->entries, sizeof *c->page->entries, c->page->n, &c->cap,
                     c->limit, "list");
  if (rc != SNAP_OK)
    return rc;
  snap_entry *e = &c->page->entries[c->page->n];
  memset(e, 0, sizeof *e);
  /* The pid and the manifest its header states, in one allocation. */
  snap__typing t;
  if (snap__body_typing(body, body_len, &t) != SNAP_OK)
    t.manifest_len = 0;
  size_t pid_len = strlen(pid);
  e->pid = snap_malloc(pid_len + 1 + (t.manifest_len ? t.manifest_len + 1 : 0));
  if (e->pid == NULL)
    return snap_error_set(SNAP_ENOMEM, "list: out of memory");
  memcpy(e->pid, pid, pid_len + 1);
  if (t.manifest_len > 0) {
    e->manifest = e->pid + pid_len + 1;
    memcpy(e->manifest, t.manifest, t.manifest_len);
    e->manifest[t.manifest_len] = 0;
  }
  if (c->bodies) {
    e->body = snap_malloc(body_len ? body_len : 1);
    if (e->body == NULL) {
      snap_free(e->pid);
      return snap_error_set(SNAP_ENOMEM, "list: out of memory for a body of %zu bytes", body_len);
    }
    memcpy(e->body, body, body_len);
  }
  e->seq = seq;
  e->timestamp = timestamp;
  e->stored_len = body_len;
  e->header_status =
      snap_body_inspect(body, body_len, &e->format, &e->stages, &e->key_version, &e->orig_len);
  if (e->header_status == SNAP_OK)
    e->header_status = snap_body_inspect_codec(body, body_len, &e->codec, &e->dict_id);
  snap_stream_info info;
  if (e->header_status == SNAP_OK && snap_body_inspect_stream(body, body_len, &info) == SNAP_OK &&
      info.chunked) {
    e->streamed = true;
    e->chunk_count = info.chunk_count;
    e->stream_bytes = info.records_len;
  }
  if (e->header_status != SNAP_OK) {
    /* An unreadable header is a finding to report, not a failure of the listing. */
    e->format = 0;
    e->stages = 0;
    e->key_version = 0;
    e->orig_len = 0;
    e->codec = SNAP_COMPRESSION_NONE;
    e->dict_id = 0;
    snap_error_clear();
  }
  c->page->n++;
  return SNAP_OK;
}

void snap_entry_page_dispose(snap_entry_page *page) {
  if (page == NULL)
    return;
  for (size_t i = 0; i < page->n; i++) {
    snap_free(page->entries[i].pid);
    snap_free(page->entries[i].body);
  }
  snap_free(page->entries);
  page->entries = NULL;
  page->n = 0;
}

int snap_store_list(snap_store *st, const char *pid, const char *after_pid, int64_t after_seq,
                    size_t limit, bool bodies, snap_entry_page *out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "list: out is NULL");
  snap_entry_page_dispose(out);
  if (st == NULL || limit == 0)
    return snap_error_set(SNAP_EINVAL, "list: %s", st ? "limit is 0" : "store is NULL");
  if (pid != NULL) {
    int rc = snap_pid_check(pid);
    if (rc != SNAP_OK)
      return rc;
  }
  void *self;
  const snap_backend *be = snap__store_backend(st, &self);
  if (be->list_rows == NULL)
    return snap__store_unsupported(be, "listing snapshots");
  row_ctx ctx = {out, limit, 0, bodies};
  int rc = be->list_rows(self, pid, after_pid, after_pid ? after_seq : 0, limit, row_emit, &ctx);
  if (rc != SNAP_OK)
    snap_entry_page_dispose(out);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Raw puts                                                                  */
/* ------------------------------------------------------------------------ */

/* Rows written per put without a heap-allocated row array. */
#define STACK_ROWS 16

static int check_raw(const snap_raw_row *r, unsigned *stages) {
  int rc = snap_pid_check(r->pid);
  if (rc != SNAP_OK)
    return rc;
  if (r->seq < 0 || r->timestamp < 0)
    return snap_error_set(SNAP_EINVAL, "put_raw pid '%s': %s %" PRId64 " is negative", r->pid,
                          r->seq < 0 ? "seq" : "timestamp", r->seq < 0 ? r->seq : r->timestamp);
  if (r->body == NULL && r->body_len > 0)
    return snap_error_set(SNAP_EINVAL, "put_raw pid '%s' seq %" PRId64 ": body is NULL", r->pid,
                          r->seq);
  rc = snap_body_inspect(r->body, r->body_len, NULL, stages, NULL, NULL);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "put_raw pid '%s' seq %" PRId64 ": %s", r->pid, r->seq,
                          snap_error_message());
  /* A head stored without its chunks would be a snapshot that never loads. */
  if (snap__body_is_head(r->body, r->body_len))
    return snap__stream_refused("put_raw", r->pid, r->seq,
                                "a raw put stores the head without its chunks; copy it with "
                                "snap_store_copy_stream()");
  return SNAP_OK;
}

/* A raw row's manifest, read from its frame header for the backend's column
 * (so that a copy selects by manifest as the original does); "" for none. */
typedef char raw_manifest[SNAP_MANIFEST_MAX + 1];

static void read_manifest(const snap_raw_row *r, raw_manifest out) {
  snap__typing t;
  out[0] = 0;
  if (snap__body_typing(r->body, r->body_len, &t) == SNAP_OK && t.manifest_len > 0) {
    memcpy(out, t.manifest, t.manifest_len);
    out[t.manifest_len] = 0;
  }
}

/* The backend's put of the checked rows: put4() with the manifests when the
 * backend has it, else put(). */
static int raw_backend_put(const snap_backend *be, void *self, snap_backend_row *br,
                           const raw_manifest *man, size_t m) {
  if (be->abi_version < 4 || be->put4 == NULL)
    return be->put(self, br, m, 0);
  snap_backend_row4 *r4 = snap_malloc(m * sizeof *r4);
  if (r4 == NULL)
    return snap_error_set(SNAP_ENOMEM, "put_raw: out of memory for %zu rows", m);
  for (size_t j = 0; j < m; j++)
    r4[j] = (snap_backend_row4){br[j], man[j][0] ? man[j] : NULL, SNAP_BACKEND_ANY_SEQ, -1};
  int rc = be->put4(self, r4, m, 0);
  for (size_t j = 0; j < m; j++)
    br[j].status = r4[j].row.status;
  snap_free(r4);
  return rc;
}

int snap_store_put_raw(snap_store *st, snap_raw_row *rows, size_t n) {
  if (st == NULL || (n > 0 && rows == NULL))
    return snap_error_set(SNAP_EINVAL, "put_raw: store or rows is NULL");
  if (n == 0)
    return SNAP_OK;
  void *self;
  const snap_backend *be = snap__store_backend(st, &self);
  snap_backend_row stack_rows[STACK_ROWS];
  snap_backend_row *br = stack_rows;
  size_t *index = NULL;
  size_t stack_index[STACK_ROWS];
  if (n > STACK_ROWS) {
    br = snap_malloc(n * (sizeof *br + sizeof *index));
    if (br == NULL) {
      int rc = snap_error_set(SNAP_ENOMEM, "put_raw: out of memory for %zu rows", n);
      for (size_t i = 0; i < n; i++)
        rows[i].status = rc;
      return rc;
    }
    index = (size_t *)(br + n);
  } else {
    index = stack_index;
  }
  raw_manifest *man = snap_malloc(n * sizeof *man);
  if (man == NULL) {
    if (br != stack_rows)
      snap_free(br);
    int rc = snap_error_set(SNAP_ENOMEM, "put_raw: out of memory for %zu rows", n);
    for (size_t i = 0; i < n; i++)
      rows[i].status = rc;
    return rc;
  }
  int first = SNAP_OK;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned stages = 0;
    rows[i].status = check_raw(&rows[i], &stages);
    if (rows[i].status != SNAP_OK) {
      if (first == SNAP_OK)
        first = rows[i].status;
      continue;
    }
    br[m] = (snap_backend_row){rows[i].pid,  rows[i].seq,      rows[i].timestamp,
                               rows[i].body, rows[i].body_len, stages,
                               SNAP_OK};
    read_manifest(&rows[i], man[m]);
    index[m++] = i;
  }
  /* The first write of a data set fixes its retention, a copy's as a save's:
   * a store copied into with "keep": 0 stays "keep all" for the application
   * that opens it later without saying "keep" (docs/STORE.md, "Retention"). */
  uint32_t keep;
  int settled = m > 0 ? snap__retention_keep(snap__store_retention(st), be, self, &keep) : SNAP_OK;
  if (settled != SNAP_OK) {
    for (size_t j = 0; j < m; j++)
      rows[index[j]].status = settled;
    first = settled;
    m = 0;
  }
  if (m > 0) {
    /* keep = 0: a copy keeps every snapshot it is given. */
    int rc = raw_backend_put(be, self, br, man, m);
    bool any_marked = false;
    for (size_t j = 0; j < m; j++)
      any_marked |= br[j].status != SNAP_OK;
    for (size_t j = 0; j < m; j++) {
      int s = br[j].status;
      if (rc != SNAP_OK && !any_marked)
        s = rc;
      rows[index[j]].status = s;
    }
    for (size_t i = 0; i < n && first == SNAP_OK; i++)
      first = rows[i].status;
  }
  snap_free(man);
  if (br != stack_rows)
    snap_free(br);
  return first;
}

/* ------------------------------------------------------------------------ */
/* Backup                                                                    */
/* ------------------------------------------------------------------------ */

int snap__store_backup_to(const snap_backend *be, void *self, const char *path, const char *what) {
  if (be->backup == NULL)
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "backend '%s' has no online backup of %s: copy the store into one that "
                          "has (snap_store_list() and snap_store_put_raw(), as 'snapctl copy' "
                          "does) or use the database's own tools",
                          be->name, what);
  struct stat sb;
  if (lstat(path, &sb) == 0)
    return snap_error_set(SNAP_EINVAL, "backup: '%s' already exists; give a new file", path);
  return be->backup(self, path);
}

int snap_store_backup(snap_store *st, const char *path) {
  if (st == NULL || path == NULL || path[0] == '\0')
    return snap_error_set(SNAP_EINVAL, "backup: %s", st ? "path is empty" : "store is NULL");
  void *self;
  const snap_backend *be = snap__store_backend(st, &self);
  return snap__store_backup_to(be, self, path, "its data");
}
