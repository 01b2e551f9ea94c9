/* Migration of stored bodies to a manifest (snap_store_migrate()): decode,
 * run the registered upcasters to the target, encode again stating the
 * target, and swap each body in only if the stored one is still the body that
 * was read, as a rewrite does (rewrite.c), so that a migration run beside
 * live writers never overwrites a newer save and a killed run is simply run
 * again. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "snap/admin.h"

/* A manifest "T/n": the length of T and the version n (at most 18 digits,
 * so that it fits an int64 whatever the digits). */
static bool split_manifest(const char *m, size_t *name_len, int64_t *version) {
  const char *slash = strrchr(m, '/');
  if (slash == NULL || slash == m || slash[1] == 0 || strlen(slash + 1) > 18)
    return false;
  int64_t v = 0;
  for (const char *p = slash + 1; *p; p++) {
    if (*p < '0' || *p > '9')
      return false;
    v = v * 10 + (*p - '0');
  }
  *name_len = (size_t)(slash - m);
  *version = v;
  return true;
}

/* snap_store_migrate_kind() of a checked target. */
static int kind_of(snap_store *st, const char *manifest, const char *target) {
  if (manifest == NULL)
    return SNAP_MIGRATE_OTHER;
  if (strcmp(manifest, target) == 0)
    return SNAP_MIGRATE_CURRENT;
  size_t ml, tl;
  int64_t mv, tv;
  if (split_manifest(manifest, &ml, &mv) && split_manifest(target, &tl, &tv) && ml == tl &&
      memcmp(manifest, target, ml) == 0 && mv != tv)
    return mv < tv ? SNAP_MIGRATE_OLDER : SNAP_MIGRATE_NEWER;
  /* Another type (or another spelling): on the way only if the registered
   * steps lead to the target, as a renaming step does. */
  return snap__upcast_reaches(st, manifest, target) ? SNAP_MIGRATE_OLDER : SNAP_MIGRATE_OTHER;
}

int snap_store_migrate_kind(snap_store *st, const char *manifest, const char *target, int *kind) {
  if (st == NULL || kind == NULL)
    return snap_error_set(SNAP_EINVAL, "migrate_kind: store or kind is NULL");
  if (snap_manifest_check(target) != SNAP_OK)
    return snap_error_set(SNAP_EINVAL, "migrate_kind: target %s", snap_error_message());
  *kind = kind_of(st, manifest, target);
  return SNAP_OK;
}

/* The manifest a body's header states, NUL-terminated into `out` (empty:
 * none). Not yet authenticated: the decode that follows checks it. */
static int header_manifest(const snap_rewrite *it, char *out, size_t cap) {
  snap__typing t;
  int rc = snap__body_typing(it->body, it->body_len, &t);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "migrate pid '%s' seq %" PRId64 ": %s", it->pid, it->seq,
                          snap_error_message());
  size_t n = t.manifest_len < cap ? t.manifest_len : cap - 1;
  memcpy(out, t.manifest ? t.manifest : "", n);
  out[n] = 0;
  return SNAP_OK;
}

/* Decodes the body, upcasts its state and encodes it stating `target` with
 * the metadata the decoded (so authenticated) body states. */
static int migrate_encode(snap_store *st, const snap_rewrite *it, const char *stored,
                          const char *target, const snap_options *o, snap_buf *state,
                          snap_buf *body, unsigned *stages) {
  snap_format fmt = SNAP_FORMAT_JSON;
  int rc = snap__store_decode(st, it->pid, it->seq, it->body, it->body_len, o, state, &fmt, NULL);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "migrate pid '%s' seq %" PRId64 ": %s", it->pid, it->seq,
                          snap_error_message());
  rc = snap__upcast_chain(st, "migrate", it->pid, it->seq, stored, target, state, &fmt);
  if (rc != SNAP_OK)
    return rc;
  snap__typing t;
  if ((rc = snap__body_typing(it->body, it->body_len, &t)) != SNAP_OK)
    return rc;
  t.manifest = target;
  t.manifest_len = strlen(target);
  rc = snap__store_encode(st, it->pid, it->seq, fmt, state->data, state->len, o, &t, body, stages);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "migrate pid '%s' seq %" PRId64 ": %s", it->pid, it->seq,
                          snap_error_message());
  return SNAP_OK;
}

/* Decides and, when needed, migrates one item into `body`; `*swap` says
 * whether it goes to the backend. */
static int prepare_one(snap_store *st, snap_rewrite *it, const char *target,
                       const snap_options *call, snap_buf *state, snap_buf *body, bool *swap) {
  *swap = false;
  int rc = snap__rewrite_item_check(it, "migrate");
  if (rc != SNAP_OK)
    return rc;
  char stored[SNAP_MANIFEST_MAX + 1];
  if ((rc = header_manifest(it, stored, sizeof stored)) != SNAP_OK)
    return rc;
  int kind = kind_of(st, stored[0] ? stored : NULL, target);
  if (kind != SNAP_MIGRATE_OLDER) {
    it->outcome = kind == SNAP_MIGRATE_CURRENT ? SNAP_REWRITE_CURRENT : SNAP_REWRITE_SKIPPED;
    (void)snap_body_inspect(it->body, it->body_len, NULL, &it->stages, &it->key_version, NULL);
    return SNAP_OK;
  }
  if (snap__body_is_head(it->body, it->body_len))
    return snap__stream_rewrite(st, it, call, "migrate", stored, target); /* on its own */
  snap_options *o = NULL;
  if ((rc = snap__store_options(st, it->pid, call, &o)) != SNAP_OK)
    return rc;
  unsigned stages = 0;
  rc = migrate_encode(st, it, stored, target, o, state, body, &stages);
  snap_options_free(o);
  if (rc != SNAP_OK)
    return rc;
  it->stages = stages;
  (void)snap_body_inspect(body->data, body->len, NULL, NULL, &it->key_version, NULL);
  *swap = true;
  return SNAP_OK;
}

/* The arrays of one call: a swap, its new body and its item's index per body. */
typedef struct migrate_batch {
  snap_backend_swap *sw;
  snap_buf *bufs;
  const char **manifests;
  size_t *index;
} migrate_batch;

static int batch_alloc(migrate_batch *b, size_t n) {
  size_t each = sizeof *b->sw + sizeof *b->bufs + sizeof *b->manifests + sizeof *b->index;
  uint8_t *block = snap_calloc(n, each);
  if (block == NULL)
    return snap_error_set(SNAP_ENOMEM, "migrate: out of memory for %zu bodies", n);
  b->sw = (snap_backend_swap *)block;
  b->bufs = (snap_buf *)(b->sw + n);
  b->manifests = (const char **)(b->bufs + n);
  b->index = (size_t *)(b->manifests + n);
  return SNAP_OK;
}

int snap_store_migrate(snap_store *st, snap_rewrite *items, size_t n, const char *target,
                       const snap_options *opts) {
  if (st == NULL || (n > 0 && items == NULL))
    return snap_error_set(SNAP_EINVAL, "migrate: store or items is NULL");
  if (snap_manifest_check(target) != SNAP_OK)
    return snap_error_set(SNAP_EINVAL, "migrate: target %s", snap_error_message());
  void *self;
  const snap_backend *be = snap__store_backend(st, &self);
  int rc = SNAP_OK;
  if (be->replace_typed == NULL)
    rc = snap__store_unsupported(be, "conditional replace with a manifest (ABI version 5)");
  if (rc != SNAP_OK || n == 0) {
    for (size_t i = 0; i < n; i++)
      items[i].status = rc;
    return rc;
  }
  migrate_batch b;
  memset(&b, 0, sizeof b);
  rc = batch_alloc(&b, n);
  if (rc != SNAP_OK) {
    for (size_t i = 0; i < n; i++)
      items[i].status = rc;
    return rc;
  }
  snap_buf state = SNAP_BUF_INIT;
  size_t m = 0;
  /* The first failure's message, kept: later items' upcasters clear the
   * thread's message before they run. */
  char first_msg[512] = "";
  size_t first_at = n;
  for (size_t i = 0; i < n; i++) {
    snap_rewrite *it = &items[i];
    it->outcome = SNAP_REWRITE_CURRENT;
    it->stages = 0;
    it->key_version = 0;
    bool swap = false;
    it->status = prepare_one(st, it, target, opts, &state, &b.bufs[m], &swap);
    if (it->status != SNAP_OK && first_at == n) {
      first_at = i;
      snprintf(first_msg, sizeof first_msg, "%s", snap_error_message());
    }
    if (it->status != SNAP_OK || !swap)
      continue;
    b.sw[m] =
        (snap_backend_swap){it->pid,       it->seq,    it->body,       it->body_len, b.bufs[m].data,
                            b.bufs[m].len, it->stages, SNAP_SWAP_DONE, SNAP_OK};
    b.manifests[m] = target;
    b.index[m++] = i;
  }
  snap_buf_dispose(&state);
  if (m > 0)
    snap__rewrite_conclude(items, b.sw, b.index, m, be->replace_typed(self, b.sw, b.manifests, m));
  /* Every slot, not only the m used: a failed encode may have left memory in the next one. */
  for (size_t j = 0; j < n; j++)
    snap_buf_dispose(&b.bufs[j]);
  snap_free(b.sw);
  size_t k = 0;
  while (k < n && items[k].status == SNAP_OK)
    k++;
  if (k == n)
    return SNAP_OK;
  /* A body that failed before the backend write keeps its own message; a
   * failure of the write itself is the last message set. */
  return k == first_at ? snap_error_set(items[k].status, "%s", first_msg) : items[k].status;
}
