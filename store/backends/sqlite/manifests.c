/* The sqlite backend's manifest names (schema step 5): each distinct manifest
 * is stored once, in "<table>_manifests", and a row names it by id in its
 * manifest_id column. A manifest then costs a row one or two bytes instead of
 * its name, which for small states decides how many rows share a page.
 *
 * Ids are never reused or removed, so an id read from a committed row stays
 * right for the life of the file: the writer caches them. A new name is
 * added in a transaction of its own before the put that needs it, so the put
 * never binds an id that its own rollback could take back (and another
 * process then give to another name). A put that fails leaves the name
 * behind, unused: a few bytes, harmless. */
#include <stdbool.h>
#include <string.h>

#include <sqlite3.h>

#include "internal.h"

static const manifest_slot *cache_find(const manifest_cache *mc, const char *name) {
  for (unsigned i = 0; i < mc->used; i++)
    if (strcmp(mc->slot[i].name, name) == 0)
      return &mc->slot[i];
  return NULL;
}

static void cache_add(manifest_cache *mc, const char *name, long long id) {
  size_t n = strlen(name);
  if (n > MANIFEST_NAME_MAX)
    return;
  manifest_slot *s;
  if (mc->used < MANIFEST_CACHE) {
    s = &mc->slot[mc->used++];
  } else {
    s = &mc->slot[mc->next];
    mc->next = (mc->next + 1) % MANIFEST_CACHE;
  }
  memcpy(s->name, name, n + 1);
  s->id = id;
}

/* Runs S_MANIFEST_ID: `*found` says whether the name has an id. */
static int lookup(sql_backend *b, conn *c, const char *name, long long *id, bool *found) {
  sqlite3_stmt *s;
  int e = snap__sqlite_stmt(b, c, S_MANIFEST_ID, &s);
  if (e != SNAP_OK)
    return e;
  sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  *found = rc == SQLITE_ROW;
  if (rc == SQLITE_ROW)
    *id = sqlite3_column_int64(s, 0);
  else if (rc != SQLITE_DONE)
    e = snap__sqlite_error(b, c->db, rc, "look up a manifest");
  sqlite3_reset(s);
  return e;
}

/* Runs S_MANIFEST_ADD (nothing when the name is there already), then finds
 * the id. In whatever transaction is open, or in its own. */
static int add(sql_backend *b, conn *c, const char *name, long long *id) {
  sqlite3_stmt *s;
  int e = snap__sqlite_stmt(b, c, S_MANIFEST_ADD, &s);
  if (e != SNAP_OK)
    return e;
  sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE)
    e = snap__sqlite_error(b, c->db, rc, "add a manifest");
  sqlite3_reset(s);
  bool found = false;
  if (e == SNAP_OK && (e = lookup(b, c, name, id, &found)) == SNAP_OK && !found)
    e = b->host->error(SNAP_EIO, "sqlite '%s' table '%s': manifest '%s' vanished after its insert",
                       b->path, b->table, name);
  return e;
}

int snap__sqlite_manifests_prepare(sql_backend *b, conn *c, const char *const *names, size_t n,
                                   size_t stride) {
  int e = SNAP_OK;
  const char *at = (const char *)names;
  for (size_t i = 0; i < n && e == SNAP_OK; i++, at += stride) {
    const char *name = *(const char *const *)(const void *)at;
    if (name == NULL || cache_find(&b->manifests, name) != NULL)
      continue;
    long long id = 0;
    bool found = false;
    /* Outside a transaction each statement commits on its own: what it
     * finds or adds is committed. */
    e = lookup(b, c, name, &id, &found);
    if (e == SNAP_OK && !found)
      e = add(b, c, name, &id);
    if (e == SNAP_OK)
      cache_add(&b->manifests, name, id);
  }
  return e;
}

int snap__sqlite_manifest_id(sql_backend *b, conn *c, const char *name, long long *id) {
  const manifest_slot *s = cache_find(&b->manifests, name);
  if (s != NULL) {
    *id = s->id;
    return SNAP_OK;
  }
  /* Not prepared (a name too long to cache, or pushed out by a put of more
   * names than the cache holds): found or added inside this transaction,
   * and not cached, since the transaction may still roll back. */
  bool found = false;
  int e = lookup(b, c, name, id, &found);
  if (e == SNAP_OK && !found)
    e = add(b, c, name, id);
  return e;
}
