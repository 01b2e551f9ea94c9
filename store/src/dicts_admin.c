/* Administering a store's dictionaries (docs/STORE.md, "Dictionaries"):
 * adding one (sealed like a body), listing them, counting the bodies that
 * use one, and removing one that none uses. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "handle.h"
#include "snap/admin.h"
#include "snap/pipeline_layer.h"

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The dictionary's bytes as one msgpack bin 32 value (a valid payload), sealed. */
static int seal(snap_store *st, uint32_t id, const void *bytes, size_t len, snap_buf *out) {
  snap_options *o;
  int rc = snap__dicts_seal_options(st, &o);
  if (rc != SNAP_OK)
    return rc;
  uint8_t *v = snap_malloc(len + 5);
  if (!v) {
    snap_options_free(o);
    return snap_error_set(SNAP_ENOMEM, "out of memory for a %zu-byte dictionary", len);
  }
  v[0] = 0xc6;
  v[1] = (uint8_t)(len >> 24), v[2] = (uint8_t)(len >> 16), v[3] = (uint8_t)(len >> 8);
  v[4] = (uint8_t)len;
  memcpy(v + 5, bytes, len);
  rc = snap__body_encode_checked(SNAP__DICT_PID, id, SNAP_FORMAT_MSGPACK, v, len + 5, o, out, NULL);
  snap_free(v);
  snap_options_free(o);
  return rc;
}

int snap_store_dict_add(snap_store *st, const char *name, const void *bytes, size_t len,
                        uint32_t *id) {
  if (!st || !name || !bytes)
    return snap_error_set(SNAP_EINVAL, "snap_store_dict_add: NULL %s",
                          !st ? "store" : !name ? "name" : "bytes");
  size_t nl = strlen(name);
  if (nl == 0 || nl > 255 || snap_pid_check(name) != SNAP_OK)
    return snap_error_set(SNAP_EINVAL, "a dictionary name is 1 to 255 bytes of UTF-8");
  int rc = snap__dicts_need_slots(st);
  snap_dict *d = NULL;
  if (rc == SNAP_OK)
    rc = snap_dict_new(&d, bytes, len);
  snap_buf body = SNAP_BUF_INIT;
  if (rc == SNAP_OK)
    rc = seal(st, snap_dict_id(d), bytes, len, &body);
  if (rc == SNAP_OK) {
    snap_backend_dict row = {snap_dict_id(d), name, now_us(), body.data, body.len};
    rc = st->be.dict_put(st->self, &row);
  }
  if (rc == SNAP_OK && id)
    *id = snap_dict_id(d);
  snap_dict_free(d);
  snap_buf_dispose(&body);
  return rc;
}

/* ---- listing ------------------------------------------------------------------ */

typedef struct listing {
  snap_dict_info *v;
  size_t n, cap;
} listing;

static int add_info(void *ctx, const snap_backend_dict *row) {
  listing *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 8;
    snap_dict_info *v = snap_realloc(l->v, cap * sizeof *v);
    if (!v)
      return snap_error_set(SNAP_ENOMEM, "out of memory listing dictionaries");
    l->v = v;
    l->cap = cap;
  }
  snap_dict_info *i = &l->v[l->n++];
  memset(i, 0, sizeof *i);
  i->id = row->id;
  snprintf(i->name, sizeof i->name, "%s", row->name);
  i->created = row->created;
  i->stored_len = row->body_len;
  uint64_t orig = 0; /* the bytes and their 5-byte msgpack bin header */
  if (snap_body_inspect(row->body, row->body_len, NULL, &i->stages, NULL, &orig) == SNAP_OK &&
      orig >= 5)
    i->size = orig - 5;
  return SNAP_OK;
}

int snap_store_dict_list(snap_store *st, snap_dict_info **out, size_t *n) {
  if (!st || !out || !n)
    return snap_error_set(SNAP_EINVAL, "snap_store_dict_list: NULL argument");
  *out = NULL;
  *n = 0;
  int rc = snap__dicts_need_slots(st);
  listing l = {NULL, 0, 0};
  if (rc == SNAP_OK)
    rc = st->be.dict_get(st->self, 0, NULL, add_info, &l);
  if (rc != SNAP_OK) {
    snap_free(l.v);
    return rc;
  }
  *out = l.v;
  *n = l.n;
  return SNAP_OK;
}

/* ---- uses and removal ------------------------------------------------------------ */

int snap_store_dict_uses(snap_store *st, uint32_t id, uint64_t *count) {
  if (!st || !count)
    return snap_error_set(SNAP_EINVAL, "snap_store_dict_uses: NULL argument");
  *count = 0;
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  char *after = NULL;
  int64_t after_seq = 0;
  int rc;
  for (;;) {
    rc = snap_store_list(st, NULL, after, after_seq, 512, true, &page);
    for (size_t i = 0; rc == SNAP_OK && i < page.n; i++) {
      uint32_t used = 0;
      const snap_entry *e = &page.entries[i];
      if (snap_body_inspect_codec(e->body, e->stored_len, NULL, &used) == SNAP_OK && used == id)
        (*count)++;
    }
    if (rc != SNAP_OK || page.n < 512)
      break;
    snap_free(after);
    after = snap_strdup(page.entries[page.n - 1].pid);
    after_seq = page.entries[page.n - 1].seq;
    if (!after) {
      rc = snap_error_set(SNAP_ENOMEM, "out of memory scanning for dictionary %u", (unsigned)id);
      break;
    }
  }
  snap_free(after);
  snap_entry_page_dispose(&page);
  return rc;
}

int snap_store_dict_remove(snap_store *st, uint32_t id, bool force) {
  if (!st || !id)
    return snap_error_set(SNAP_EINVAL, "snap_store_dict_remove: %s", st ? "id 0" : "NULL store");
  int rc = snap__dicts_need_slots(st);
  uint64_t uses = 0;
  if (rc == SNAP_OK && !force && (rc = snap_store_dict_uses(st, id, &uses)) == SNAP_OK && uses)
    rc = snap_error_set(SNAP_EBUSY,
                        "dictionary %u is used by %llu stored snapshot(s): rewrite them first "
                        "(or force, which leaves them unreadable)",
                        (unsigned)id, (unsigned long long)uses);
  if (rc != SNAP_OK)
    return rc;
  rc = st->be.dict_remove(st->self, id);
  if (rc < 0)
    return rc;
  snap__dicts_forget(&st->dicts, id);
  return rc == 1 ? SNAP_OK
                 : snap_error_set(SNAP_ENOTFOUND, "dictionary %u is not in this store",
                                  (unsigned)id);
}
