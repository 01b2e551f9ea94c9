/* Migration to a manifest (snap_store_migrate(), snap_store_migrate_kind())
 * and upcasters registered from a library named by the configuration
 * document ("upcasters"): which bodies move, what they state afterwards, the
 * guarantees of the conditional replace, and every way a row can fail while
 * staying as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "snap/admin.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"
#include "upcast_util.h"

#define T1 "bank.Account/1"
#define T2 "bank.Account/2"
#define T3 "bank.Account/3"

/* Fails on a state that says "ten". */
static int picky(void *ud, const char *from, const char *to, snap_format fmt, const uint8_t *state,
                 size_t len, snap_buf *out, snap_format *out_fmt) {
  if (st_contains(state, len, "\"ten\"", 5))
    return snap_error_set(SNAP_EINVAL, "amount 'ten' is not a decimal");
  return st_upcast_wrap(ud, from, to, fmt, state, len, out, out_fmt);
}

static snap_store *open_on(const snap_backend *be, const char *cfg) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, be, cfg), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_store_add_upcaster(st, T1, T2, picky, NULL), SNAP_OK);
  cr_assert_eq(snap_store_add_upcaster(st, T2, T3, st_upcast_wrap, NULL), SNAP_OK);
  return st;
}

static void save_as(snap_store *st, const char *pid, int64_t seq, const char *state,
                    const char *manifest) {
  snap_save_req r = {pid, seq, 1000 + seq, SNAP_FORMAT_JSON, state, strlen(state), NULL};
  snap_save_ext x = {.manifest = manifest, .metadata = "md", .metadata_len = 2};
  cr_assert_eq(snap_save_ex(st, &r, &x, NULL), SNAP_OK, "%s", snap_error_message());
}

static snap_snapshot *load_at(snap_store *st, const char *pid, int64_t seq) {
  snap_snapshot *s = NULL;
  snap_criteria c = {seq, seq, INT64_MIN, INT64_MAX};
  cr_assert_eq(snap_load(st, pid, &c, NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(s, "no snapshot %s %lld", pid, (long long)seq);
  return s;
}

/* Every row of the store with its body, into `page`; items point into it. */
static size_t read_all(snap_store *st, snap_entry_page *page, snap_rewrite *items, size_t cap) {
  cr_assert_eq(snap_store_list(st, NULL, NULL, 0, cap, true, page), SNAP_OK);
  for (size_t i = 0; i < page->n; i++)
    items[i] = (snap_rewrite){page->entries[i].pid,
                              page->entries[i].seq,
                              page->entries[i].body,
                              page->entries[i].stored_len,
                              SNAP_OK,
                              0,
                              0,
                              0};
  return page->n;
}

Test(migrate, kinds_follow_the_version_and_the_registered_steps) {
  snap_store *st = open_on(snap_backend_memory(), "{\"keep\": 0}");
  cr_assert_eq(snap_store_add_upcaster(st, "old.Name/7", T2, st_upcast_wrap, NULL), SNAP_OK);
  struct {
    const char *m;
    int kind;
  } cases[] = {{T1, SNAP_MIGRATE_OLDER},
               {T2, SNAP_MIGRATE_OLDER},
               {T3, SNAP_MIGRATE_CURRENT},
               {"bank.Account/10", SNAP_MIGRATE_NEWER},
               {"bank.Other/1", SNAP_MIGRATE_OTHER},
               {"old.Name/7", SNAP_MIGRATE_OLDER},
               {"bank.Account", SNAP_MIGRATE_OTHER},
               {NULL, SNAP_MIGRATE_OTHER}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int kind = -1;
    cr_assert_eq(snap_store_migrate_kind(st, cases[i].m, T3, &kind), SNAP_OK);
    cr_assert_eq(kind, cases[i].kind, "%s: %d", cases[i].m ? cases[i].m : "(none)", kind);
  }
  int kind;
  cr_assert_eq(snap_store_migrate_kind(st, T1, "", &kind), SNAP_EINVAL);
  cr_assert_eq(snap_store_migrate_kind(NULL, T1, T3, &kind), SNAP_EINVAL);
  snap_store_close(st);
}

/* A mixed store on `be`: T/1, T/2, T/3, another type, none. */
static void mixed_store_migrates(const snap_backend *be, const char *cfg) {
  snap_store *st = open_on(be, cfg);
  save_as(st, "a", 1, "{\"n\":1}", T1);
  save_as(st, "a", 2, "{\"n\":2}", T2);
  save_as(st, "a", 3, "{\"n\":3}", T3);
  save_as(st, "b", 1, "{\"n\":4}", "bank.Other/1");
  save_as(st, "c", 1, "{\"n\":5}", NULL);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  snap_rewrite items[8];
  size_t n = read_all(st, &page, items, 8);
  cr_assert_eq(n, 5);
  cr_assert_eq(snap_store_migrate(st, items, n, T3, NULL), SNAP_OK, "%s", snap_error_message());
  int want[] = {SNAP_REWRITE_DONE, SNAP_REWRITE_DONE, SNAP_REWRITE_CURRENT, SNAP_REWRITE_SKIPPED,
                SNAP_REWRITE_SKIPPED};
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(items[i].outcome, want[i], "row %zu: outcome %d", i, items[i].outcome);
  snap_snapshot *s = load_at(st, "a", 1);
  cr_assert_str_eq((const char *)s->data, "{\"v3\":{\"v2\":{\"n\":1}}}");
  cr_assert_str_eq(s->manifest, T3);
  cr_assert(s->metadata_len == 2 && memcmp(s->metadata, "md", 2) == 0, "metadata kept");
  cr_assert_eq(s->timestamp, 1001, "timestamp kept");
  snap_snapshot_free(s);
  s = load_at(st, "a", 2);
  cr_assert_str_eq((const char *)s->data, "{\"v3\":{\"n\":2}}");
  snap_snapshot_free(s);
  s = load_at(st, "b", 1);
  cr_assert_str_eq((const char *)s->data, "{\"n\":4}");
  cr_assert_str_eq(s->manifest, "bank.Other/1");
  snap_snapshot_free(s);
  /* The manifest column followed the body: selecting by the target finds
   * the migrated row, by the old manifest nothing. */
  snap_criteria c1 = {1, 1, INT64_MIN, INT64_MAX};
  cr_assert_eq(snap_load_manifest(st, "a", &c1, T3, NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, 1);
  snap_snapshot_free(s);
  cr_assert_eq(snap_load_manifest(st, "a", &c1, T1, NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_null(s, "no row states T/1 any more");
  /* A second run finds everything at the target or left alone. */
  n = read_all(st, &page, items, 8);
  cr_assert_eq(snap_store_migrate(st, items, n, T3, NULL), SNAP_OK);
  for (size_t i = 0; i < n; i++)
    cr_assert(items[i].outcome == SNAP_REWRITE_CURRENT || items[i].outcome == SNAP_REWRITE_SKIPPED);
  snap_entry_page_dispose(&page);
  snap_store_close(st);
}

Test(migrate, a_mixed_memory_store_moves_only_older_rows_and_the_column_follows) {
  mixed_store_migrates(snap_backend_memory(), "{\"keep\": 0}");
}

Test(migrate, a_mixed_sqlite_store_moves_only_older_rows_and_the_column_follows) {
  char *dir = st_tmpdir();
  cr_assert_not_null(dir);
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/m.db\", \"keep\": 0}", dir);
  mixed_store_migrates(snap_backend_sqlite(), cfg);
  st_rmtree(dir);
  free(dir);
}

Test(migrate, a_newer_save_between_read_and_replace_wins_and_a_delete_stays) {
  snap_store *st = open_on(snap_backend_memory(), "{\"keep\": 0}");
  save_as(st, "a", 1, "{\"n\":1}", T1);
  save_as(st, "a", 2, "{\"n\":2}", T1);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  snap_rewrite items[4];
  size_t n = read_all(st, &page, items, 4);
  /* After the read: a writer saves seq 1 again as T/3, and deletes seq 2. */
  save_as(st, "a", 1, "{\"newer\":true}", T3);
  cr_assert_eq(snap_delete_one(st, "a", 2), SNAP_OK);
  cr_assert_eq(snap_store_migrate(st, items, n, T3, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(items[0].outcome, SNAP_REWRITE_CHANGED);
  cr_assert_eq(items[1].outcome, SNAP_REWRITE_GONE);
  snap_snapshot *s = load_at(st, "a", 1);
  cr_assert_str_eq((const char *)s->data, "{\"newer\":true}", "the newer save is kept");
  snap_snapshot_free(s);
  snap_criteria c2 = {2, 2, INT64_MIN, INT64_MAX};
  cr_assert_eq(snap_load(st, "a", &c2, NULL, &s), SNAP_OK);
  cr_assert_null(s, "the deleted row did not come back");
  snap_entry_page_dispose(&page);
  snap_store_close(st);
}

Test(migrate, a_failing_upcaster_leaves_its_row_and_names_the_step) {
  snap_store *st = open_on(snap_backend_memory(), "{\"keep\": 0}");
  save_as(st, "a", 1, "{\"amount\":\"ten\"}", T1);
  save_as(st, "b", 1, "{\"amount\":10}", T1);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  snap_rewrite items[4];
  size_t n = read_all(st, &page, items, 4);
  uint8_t before[256];
  size_t before_len = page.entries[0].stored_len;
  memcpy(before, page.entries[0].body, before_len);
  cr_assert_eq(snap_store_migrate(st, items, n, T3, NULL), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "migrate pid 'a' seq 1: upcaster '" T1 "' -> '" T2
                                         "' failed: amount 'ten' is not a decimal") != NULL,
            "%s", snap_error_message());
  cr_assert_eq(items[0].status, SNAP_EINVAL);
  cr_assert_eq(items[1].status, SNAP_OK);
  cr_assert_eq(items[1].outcome, SNAP_REWRITE_DONE, "the other row still migrates");
  snap_entry_page after = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, "a", NULL, 0, 4, true, &after), SNAP_OK);
  cr_assert(after.n == 1 && after.entries[0].stored_len == before_len &&
                memcmp(after.entries[0].body, before, before_len) == 0,
            "the failed row is byte for byte as it was");
  snap_entry_page_dispose(&after);
  snap_entry_page_dispose(&page);
  snap_store_close(st);
}

Test(migrate, a_missing_step_is_named) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), "{\"keep\": 0}"), SNAP_OK);
  cr_assert_eq(snap_store_add_upcaster(st, T1, T2, st_upcast_wrap, NULL), SNAP_OK);
  save_as(st, "a", 1, "{\"n\":1}", T1);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  snap_rewrite items[2];
  size_t n = read_all(st, &page, items, 2);
  cr_assert_eq(snap_store_migrate(st, items, n, T3, NULL), SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), "no upcaster from '" T2 "'") != NULL, "%s",
            snap_error_message());
  snap_snapshot *s = load_at(st, "a", 1);
  cr_assert_str_eq(s->manifest, T1, "the row is unchanged");
  snap_snapshot_free(s);
  snap_entry_page_dispose(&page);
  snap_store_close(st);
}

Test(migrate, an_encrypted_body_is_sealed_again_with_the_options_of_the_day) {
  snap_keyring *kr = NULL;
  uint8_t key[32] = {7};
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  char *dir = st_tmpdir();
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/e.db\", \"keep\": 0}", dir);
  snap_store *st = open_on(snap_backend_sqlite(), cfg);
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "test/migrate"), SNAP_OK);
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  save_as(st, "a", 1, "{\"n\":1}", T1);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  snap_rewrite items[2];
  size_t n = read_all(st, &page, items, 2);
  cr_assert_eq(snap_store_migrate(st, items, n, T3, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert(items[0].stages & SNAP_STAGE_ENCRYPTED);
  cr_assert_eq(items[0].key_version, 1);
  snap_snapshot *s = load_at(st, "a", 1);
  cr_assert_str_eq((const char *)s->data, "{\"v3\":{\"v2\":{\"n\":1}}}");
  cr_assert(s->stages & SNAP_STAGE_ENCRYPTED);
  snap_snapshot_free(s);
  snap_entry_page_dispose(&page);
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

Test(migrate, a_backend_table_of_abi_4_still_opens_and_cannot_migrate) {
  snap_backend v4 = *snap_backend_memory();
  v4.abi_version = 4;
  snap_store *st = open_on(&v4, "{\"keep\": 0}");
  save_as(st, "a", 1, "{\"n\":1}", T1);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  snap_rewrite items[2];
  size_t n = read_all(st, &page, items, 2);
  cr_assert_eq(snap_store_migrate(st, items, n, T3, NULL), SNAP_EUNSUPPORTED);
  cr_assert_eq(items[0].status, SNAP_EUNSUPPORTED);
  cr_assert(strstr(snap_error_message(), "ABI version 5") != NULL, "%s", snap_error_message());
  snap_snapshot *s = load_at(st, "a", 1);
  cr_assert_str_eq(s->manifest, T1);
  snap_snapshot_free(s);
  snap_entry_page_dispose(&page);
  snap_store_close(st);
}

Test(migrate, bad_arguments_change_nothing) {
  snap_store *st = open_on(snap_backend_memory(), "{\"keep\": 0}");
  snap_rewrite it = {"a", -1, "x", 1, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_migrate(NULL, &it, 1, T3, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_store_migrate(st, NULL, 1, T3, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_store_migrate(st, &it, 1, "", NULL), SNAP_EINVAL);
  cr_assert_eq(snap_store_migrate(st, &it, 1, T3, NULL), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "seq is negative") != NULL, "%s", snap_error_message());
  snap_store_close(st);
}

/* ---- upcasters from a library named by the document ---------------------- */

static char *doc_for(const char *dir, const char *upcasters) {
  static char doc[9000];
  snprintf(doc, sizeof doc,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s/p.db\", \"keep\": 0}, "
           "\"executor\": false, \"upcasters\": %s}",
           dir, upcasters);
  return doc;
}

Test(migrate, the_documents_library_registers_upcasters_that_loads_and_migrate_use) {
  char *dir = st_tmpdir();
  char up[4200];
  snprintf(up, sizeof up, "{\"library\": \"%s\"}", SNAP_WRAP_UPCASTERS_SO);
  snap_plugin *p = NULL;
  cr_assert_eq(snap_plugin_open(&p, doc_for(dir, up), NULL), SNAP_OK, "%s", snap_error_message());
  snap_store *st = snap_plugin_store(p);
  snap_save_req r = {"a", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "{\"n\":1}", 7, NULL};
  snap_save_ext x = {.manifest = "test.Account/1"};
  cr_assert_eq(snap_save_ex(st, &r, &x, NULL), SNAP_OK);
  snap_snapshot *s = NULL;
  snap_criteria all = SNAP_CRITERIA_LATEST;
  cr_assert_eq(snap_load_as(st, "a", &all, "test.Account/3", NULL, &s), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_str_eq((const char *)s->data, "{\"v\":3,\"was\":{\"v\":2,\"was\":{\"n\":1}}}");
  snap_snapshot_free(s);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  snap_rewrite items[2];
  size_t n = read_all(st, &page, items, 2);
  cr_assert_eq(snap_store_migrate(st, items, n, "test.Account/3", NULL), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(items[0].outcome, SNAP_REWRITE_DONE);
  snap_entry_page_dispose(&page);
  snap_plugin_close(p);
  st_rmtree(dir);
  free(dir);
}

/* A refused document names the key and leaves no database behind. */
static void refused(const char *upcasters, const char *needle) {
  char *dir = st_tmpdir();
  snap_plugin *p = (snap_plugin *)1;
  int rc = snap_plugin_open(&p, doc_for(dir, upcasters), NULL);
  cr_assert_neq(rc, SNAP_OK, "%s was accepted", upcasters);
  cr_assert_null(p);
  cr_assert(strstr(snap_error_message(), needle) != NULL, "%s: %s", upcasters,
            snap_error_message());
  char *db = st_join(dir, "p.db");
  if (strstr(needle, "refuses") == NULL)
    cr_assert_neq(access(db, F_OK), 0, "%s left a database", upcasters);
  free(db);
  st_rmtree(dir);
  free(dir);
}

Test(migrate, the_upcasters_key_is_strict) {
  char up[4200];
  refused("{\"library\": \"/nonexistent/up.so\"}", "upcasters.library: cannot load");
  refused("{}", "upcasters.library");
  refused("{\"library\": 3}", "upcasters.library");
  refused("\"x.so\"", "upcasters");
  snprintf(up, sizeof up, "{\"library\": \"%s\", \"symbol\": \"nope\"}", SNAP_WRAP_UPCASTERS_SO);
  refused(up, "upcasters.symbol");
  snprintf(up, sizeof up, "{\"library\": \"%s\", \"colour\": true}", SNAP_WRAP_UPCASTERS_SO);
  refused(up, "upcasters.colour");
  snprintf(up, sizeof up, "{\"library\": \"%s\", \"library\": \"%s\"}", SNAP_WRAP_UPCASTERS_SO,
           SNAP_WRAP_UPCASTERS_SO);
  refused(up, "upcasters.library");
  snprintf(up, sizeof up, "{\"library\": \"%s\", \"symbol\": \"refusing_register\"}",
           SNAP_WRAP_UPCASTERS_SO);
  refused(up, "refusing_register() of '" SNAP_WRAP_UPCASTERS_SO
              "' failed: this library refuses to register anything");
}
