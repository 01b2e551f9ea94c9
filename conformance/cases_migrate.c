/* Migration to a manifest (snap_store_migrate(), backend ABI version 5's
 * replace_typed): an older body is replaced by its upcast state stating the
 * target, the manifest column follows, and as for a rewrite a newer save is
 * never overwritten and a deleted snapshot never comes back. */
#include <stdio.h>
#include <string.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/admin.h"
#include "snap/store.h"

#define T1 "cf.Account/1"
#define T2 "cf.Account/2"

/* Wraps the state: {"up": <state>}. */
static int up(void *ud, const char *from, const char *to, snap_format fmt, const uint8_t *state,
              size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)ud, (void)from, (void)to;
  if (snap_buf_reserve(out, len + 7) != SNAP_OK)
    return SNAP_ENOMEM;
  memcpy(out->data, "{\"up\":", 6);
  memcpy(out->data + 6, state, len);
  out->data[len + 6] = '}';
  out->len = len + 7;
  *out_fmt = fmt;
  return SNAP_OK;
}

static void save_typed(fx *f, const char *pid, int64_t seq, const char *state,
                       const char *manifest) {
  snap_save_req r = {pid, seq, 100 * seq, SNAP_FORMAT_JSON, state, strlen(state), NULL};
  snap_save_ext x = {.manifest = manifest};
  cf_assert_eq(snap_save_ex(f->st, &r, &x, NULL), SNAP_OK, "[%s] %s", f->bc->name,
               snap_error_message());
}

/* The snapshot (pid, seq) selected by `manifest`'s column, or NULL. */
static snap_snapshot *by_column(fx *f, const char *pid, int64_t seq, const char *manifest) {
  snap_snapshot *s = NULL;
  snap_criteria c = {seq, seq, INT64_MIN, INT64_MAX};
  cf_assert_eq(snap_load_manifest(f->st, pid, &c, manifest, NULL, &s), SNAP_OK, "[%s] %s",
               f->bc->name, snap_error_message());
  return s;
}

void cf_case_migration_moves_body_and_column_and_never_a_newer_save(const cf_backend *bc) {
  if (!cf_needs_abi(bc, 5, "conditional replace with a manifest (replace_typed)"))
    return;
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  const char *n = bc->name;
  cf_assert_eq(snap_store_add_upcaster(f.st, T1, T2, up, NULL), SNAP_OK);
  save_typed(&f, "m", 1, "{\"n\":1}", T1);
  save_typed(&f, "m", 2, "{\"n\":2}", T1);
  save_typed(&f, "m", 3, "{\"n\":3}", T1);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, "m", NULL, 0, 10, true, &page), SNAP_OK);
  cf_assert_eq(page.n, 3);
  snap_rewrite items[3];
  for (size_t i = 0; i < 3; i++)
    items[i] = (snap_rewrite){page.entries[i].pid,
                              page.entries[i].seq,
                              page.entries[i].body,
                              page.entries[i].stored_len,
                              SNAP_OK,
                              0,
                              0,
                              0};
  if (bc->backend()->replace_typed == NULL) {
    cf_assert_eq(snap_store_migrate(f.st, items, 3, T2, NULL), SNAP_EUNSUPPORTED, "[%s] %s", n,
                 snap_error_message());
    cf_skip(bc, "the backend leaves replace_typed (ABI version 5) NULL: no migration");
    snap_entry_page_dispose(&page);
    fx_close(&f);
    return;
  }
  /* Between the read and the migration: seq 2 saved again, seq 3 deleted. */
  save_typed(&f, "m", 2, "{\"newer\":2}", T2);
  cf_assert_eq(snap_delete_one(f.st, "m", 3), SNAP_OK);
  cf_assert_eq(snap_store_migrate(f.st, items, 3, T2, NULL), SNAP_OK, "[%s] %s", n,
               snap_error_message());
  cf_assert_eq(items[0].outcome, SNAP_REWRITE_DONE, "[%s]", n);
  cf_assert_eq(items[1].outcome, SNAP_REWRITE_CHANGED, "[%s]", n);
  cf_assert_eq(items[2].outcome, SNAP_REWRITE_GONE, "[%s]", n);
  snap_snapshot *s = by_column(&f, "m", 1, T2);
  cf_assert_not_null(s, "[%s] the column of seq 1 says " T2, n);
  cf_assert_str_eq((const char *)s->data, "{\"up\":{\"n\":1}}", "[%s]", n);
  cf_assert_str_eq(s->manifest, T2, "[%s]", n);
  cf_assert_eq(s->timestamp, 100, "[%s] the timestamp is kept", n);
  snap_snapshot_free(s);
  cf_assert_null(by_column(&f, "m", 1, T1), "[%s] no column says " T1 " any more", n);
  s = by_column(&f, "m", 2, T2);
  cf_assert_not_null(s, "[%s]", n);
  cf_assert_str_eq((const char *)s->data, "{\"newer\":2}", "[%s] the newer save is kept", n);
  snap_snapshot_free(s);
  s = fx_load(&f, "m", fx_crit(3, 3, INT64_MIN, INT64_MAX));
  fx_expect_none(&f, s, "deleted seq 3 after the migration");
  snap_entry_page_dispose(&page);
  fx_close(&f);
}
