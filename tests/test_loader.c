/* The shared-object loader: a third-party backend loaded from a .so stores and
 * loads through snap_store_open() by name; broken libraries are refused and
 * register nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "snap/plugin.h"
#include "snap/sys/backend.h"

static size_t registered_count(void) {
  char **names;
  size_t n;
  cr_assert_eq(snap_registry_list(&names, &n), SNAP_OK);
  snap_registry_list_free(names);
  return n;
}

Test(loader, loads_a_backend_that_stores_and_loads_by_name) {
  const char *name = NULL;
  cr_assert_eq(snap_registry_load(SNAP_TESTMEM_SO, &name), SNAP_OK, "%s", snap_error_message());
  cr_assert_str_eq(name, "testmem");

  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "testmem", NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_str_eq(snap_store_backend_name(st), "testmem");
  const char *state = "{\"owner\":\"Ada\",\"balance\":42}";
  cr_assert_eq(snap_save(st, "acct-1", 7, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
               SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "acct-1", NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, 7);
  cr_assert_eq(s->len, strlen(state));
  cr_assert_eq(memcmp(s->data, state, s->len), 0);
  snap_snapshot_free(s);
  cr_assert_eq(snap_delete(st, "acct-1", 7), SNAP_OK);
  cr_assert_eq(snap_load_latest(st, "acct-1", NULL, &s), SNAP_OK);
  cr_assert_null(s);
  snap_store_close(st);
}

Test(loader, refuses_loading_the_same_backend_twice) {
  cr_assert_eq(snap_registry_load(SNAP_TESTMEM_SO, NULL), SNAP_OK, "%s", snap_error_message());
  size_t before = registered_count();
  cr_assert_eq(snap_registry_load(SNAP_TESTMEM_SO, NULL), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "testmem"), "%s", snap_error_message());
  cr_assert_eq(registered_count(), before);
}

Test(loader, a_store_keeps_working_after_its_loaded_backend_is_unregistered) {
  cr_assert_eq(snap_registry_load(SNAP_TESTMEM_SO, NULL), SNAP_OK, "%s", snap_error_message());
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "testmem", NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_registry_unregister("testmem"), SNAP_OK);
  /* The library stays mapped: the store's copied table still points into it. */
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  snap_snapshot *s;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK);
  cr_assert_not_null(s);
  snap_snapshot_free(s);
  snap_store_close(st);
  /* And it can be loaded again. */
  cr_assert_eq(snap_registry_load(SNAP_TESTMEM_SO, NULL), SNAP_OK, "%s", snap_error_message());
}

Test(loader, refuses_a_library_of_another_abi_version) {
  size_t before = registered_count();
  const char *name = "untouched";
  cr_assert_eq(snap_registry_load(SNAP_BAD_ABI_SO, &name), SNAP_EABI);
  cr_assert_null(name);
  const char *msg = snap_error_message();
  cr_assert(strstr(msg, "99") && strstr(msg, "bad_abi"), "names both version and path: %s", msg);
  cr_assert_eq(registered_count(), before, "nothing registered");
  const snap_backend *b;
  cr_assert_eq(snap_registry_find("future", &b), SNAP_ENOTFOUND);
}

Test(loader, refuses_a_library_without_the_entry_symbol) {
  size_t before = registered_count();
  cr_assert_eq(snap_registry_load(SNAP_NO_ENTRY_SO, NULL), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "snap_backend_entry"), "%s", snap_error_message());
  cr_assert_eq(registered_count(), before);
}

Test(loader, refuses_a_path_that_cannot_be_loaded) {
  size_t before = registered_count();
  cr_assert_eq(snap_registry_load("/nonexistent/libnothing.so", NULL), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "/nonexistent/libnothing.so"), "%s", snap_error_message());
  cr_assert_eq(snap_registry_load("", NULL), SNAP_EINVAL);
  cr_assert_eq(snap_registry_load(NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(registered_count(), before);
}

/* ---- the configuration document names the library ------------------------- */

static void doc_refused(const char *json, int code, const char *needle) {
  snap_plugin *p = (snap_plugin *)1;
  int rc = snap_plugin_open(&p, json, NULL);
  cr_assert_eq(rc, code, "%s: got %d (%s)", json, rc, snap_error_message());
  cr_assert_null(p);
  cr_assert(strstr(snap_error_message(), needle), "%s: %s", json, snap_error_message());
}

Test(loader, a_document_loads_its_backend_library_before_looking_the_backend_up) {
  char json[2048];
  snprintf(json, sizeof json,
           "{\"backend\": \"testmem\", \"backend_library\": \"%s\", \"executor\": false}",
           SNAP_TESTMEM_SO);
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  snap_store *st = snap_plugin_store(p);
  cr_assert_str_eq(snap_store_backend_name(st), "testmem");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_OK);
  cr_assert_not_null(s);
  snap_snapshot_free(s);
  /* The same document again (another plugin in the same process): the
   * library already loaded for it is used, not refused as a duplicate. */
  snap_plugin *q;
  size_t before = registered_count();
  cr_assert_eq(snap_plugin_open(&q, json, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(registered_count(), before);
  snap_plugin_close(q);
  snap_plugin_close(p);
}

Test(loader, a_document_library_that_does_not_provide_the_backend_is_refused) {
  char json[2048];
  size_t before = registered_count();
  snprintf(json, sizeof json, "{\"backend\": \"other\", \"backend_library\": \"%s\"}",
           SNAP_TESTMEM_SO);
  doc_refused(json, SNAP_ECONFIG, "provides backend 'testmem', not 'other'");
  cr_assert_eq(registered_count(), before, "nothing registered");
  /* A built-in name is not the library's to take. */
  snprintf(json, sizeof json, "{\"backend\": \"memory\", \"backend_library\": \"%s\"}",
           SNAP_TESTMEM_SO);
  doc_refused(json, SNAP_ECONFIG, "backend_library");
}

Test(loader, a_document_library_gets_the_loaders_checks_and_errors) {
  char json[2048];
  size_t before = registered_count();
  snprintf(json, sizeof json, "{\"backend\": \"future\", \"backend_library\": \"%s\"}",
           SNAP_BAD_ABI_SO);
  doc_refused(json, SNAP_EABI, "backend_library");
  snprintf(json, sizeof json, "{\"backend\": \"x\", \"backend_library\": \"%s\"}", SNAP_NO_ENTRY_SO);
  doc_refused(json, SNAP_EIO, "snap_backend_entry");
  doc_refused("{\"backend\": \"x\", \"backend_library\": \"/nonexistent/libnothing.so\"}", SNAP_EIO,
              "backend_library: cannot load backend library '/nonexistent/libnothing.so'");
  doc_refused("{\"backend\": \"x\", \"backend_library\": 7}", SNAP_ECONFIG,
              "backend_library: must be a non-empty string");
  doc_refused("{\"backend\": \"x\", \"backend_library\": \"\"}", SNAP_ECONFIG, "backend_library");
  cr_assert_eq(registered_count(), before, "nothing registered");
}
