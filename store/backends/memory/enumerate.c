/* The memory backend's enumeration (backend ABI version 2): its pids in
 * ascending order, and a pid's rows, page by page. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "snap/sys/backend.h"

static int cmp_pid(const void *a, const void *b) {
  return strcmp((*(const mem_pid *const *)a)->pid, (*(const mem_pid *const *)b)->pid);
}

/* The pids (with at least one row) at or after `from` (`inclusive`) in
 * ascending order, in a host-allocated array (`*n` of them). Read lock held. */
static int sorted_pids(mem_backend *m, const char *from, bool inclusive, mem_pid ***out,
                       size_t *n) {
  *out = NULL;
  *n = 0;
  if (m->npids == 0)
    return SNAP_OK;
  mem_pid **v = m->host->malloc(m->npids * sizeof *v);
  if (v == NULL)
    return m->host->error(SNAP_ENOMEM, "memory backend: out of memory listing pids");
  size_t k = 0;
  for (size_t i = 0; i < m->nbuckets; i++)
    for (mem_pid *p = m->buckets[i]; p; p = p->next) {
      if (p->n == 0)
        continue; /* every row deleted: the pid is no longer stored */
      int c = from ? strcmp(p->pid, from) : 1;
      if (c > 0 || (inclusive && c == 0))
        v[k++] = p;
    }
  qsort(v, k, sizeof *v, cmp_pid);
  *out = v;
  *n = k;
  return SNAP_OK;
}

int snap__mem_list_pids(void *self, const char *after, size_t limit, snap_backend_pid_emit emit,
                         void *ctx) {
  mem_backend *m = self;
  pthread_rwlock_rdlock(&m->lock);
  mem_pid **v;
  size_t n;
  int rc = sorted_pids(m, after, false, &v, &n);
  for (size_t i = 0; rc == SNAP_OK && i < n && i < limit; i++)
    rc = emit(ctx, v[i]->pid);
  pthread_rwlock_unlock(&m->lock);
  m->host->free(v);
  return rc;
}

/* Emits rows of `p` with seq >= `from_seq` until `*left` reaches 0. */
static int emit_rows(const mem_pid *p, int64_t from_seq, size_t *left, snap_backend_row_emit emit,
                     void *ctx) {
  int rc = SNAP_OK;
  for (size_t i = snap__mem_lower_bound(p, from_seq); rc == SNAP_OK && i<p->n && * left> 0; i++, (*left)--)
    rc = emit(ctx, p->pid, p->rows[i].seq, p->rows[i].timestamp, p->rows[i].body,
              p->rows[i].body_len);
  return rc;
}

int snap__mem_list_rows(void *self, const char *pid, const char *after_pid, int64_t after_seq,
                         size_t limit, snap_backend_row_emit emit, void *ctx) {
  mem_backend *m = self;
  int rc = SNAP_OK;
  size_t left = limit;
  pthread_rwlock_rdlock(&m->lock);
  if (pid != NULL) {
    const mem_pid *p = snap__mem_find_pid(m, pid, snap__mem_hash_pid(pid));
    int c = after_pid ? strcmp(pid, after_pid) : 1;
    if (p != NULL && c >= 0 && !(c == 0 && after_seq == INT64_MAX))
      rc = emit_rows(p, c == 0 ? after_seq + 1 : INT64_MIN, &left, emit, ctx);
  } else {
    mem_pid **v;
    size_t n;
    rc = sorted_pids(m, after_pid, true, &v, &n);
    for (size_t i = 0; rc == SNAP_OK && i < n && left > 0; i++) {
      bool first = after_pid && strcmp(v[i]->pid, after_pid) == 0;
      if (first && after_seq == INT64_MAX)
        continue;
      rc = emit_rows(v[i], first ? after_seq + 1 : INT64_MIN, &left, emit, ctx);
    }
    m->host->free(v);
  }
  pthread_rwlock_unlock(&m->lock);
  return rc;
}
