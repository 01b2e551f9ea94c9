/* Upcasters (snap_store_add_upcaster(), snap_load_as()): a state saved as an
 * older manifest is brought to the reader's by registered steps, and every
 * way a chain can go wrong stops the load naming the step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "snap/store.h"
#include "snap/sys/backend.h"
#include "upcast_util.h"

static snap_store *open_memory(void) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), "{\"keep\": 0}"), SNAP_OK);
  return st;
}

static void save_as(snap_store *st, const char *pid, int64_t seq, const char *state,
                    const char *manifest) {
  snap_save_req r = {pid, seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state, strlen(state), NULL};
  snap_save_ext x = {.manifest = manifest, .metadata = "m", .metadata_len = 1};
  cr_assert_eq(snap_save_ex(st, &r, &x, NULL), SNAP_OK, "%s", snap_error_message());
}

static int fails(void *ud, const char *from, const char *to, snap_format fmt,
                 const uint8_t *state, size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)ud, (void)from, (void)to, (void)fmt, (void)state, (void)len, (void)out, (void)out_fmt;
  return snap_error_set(SNAP_EINVAL, "amount 'ten' is not a decimal");
}

static int garbage(void *ud, const char *from, const char *to, snap_format fmt,
                   const uint8_t *state, size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)ud, (void)from, (void)to, (void)fmt, (void)state, (void)len;
  *out_fmt = SNAP_FORMAT_JSON;
  return snap_buf_set(out, "{\"balance\":", 11);
}

static snap_snapshot *load_as(snap_store *st, const char *target, int want) {
  snap_snapshot *s = (snap_snapshot *)1;
  snap_criteria all = SNAP_CRITERIA_LATEST;
  int rc = snap_load_as(st, "acct", &all, target, NULL, &s);
  cr_assert_eq(rc, want, "%d: %s", rc, snap_error_message());
  if (want != SNAP_OK)
    cr_assert_null(s, "a failed upcast returns no snapshot, never the old shape");
  return s;
}

Test(upcast, one_step_brings_the_state_to_the_target_and_reports_both_manifests) {
  snap_store *st = open_memory();
  int calls = 0;
  cr_assert_eq(
      snap_store_add_upcaster(st, "bank.Account/1", "bank.Account/2", st_upcast_wrap, &calls),
      SNAP_OK);
  save_as(st, "acct", 1, "{\"balance\":10}", "bank.Account/1");
  snap_snapshot *s = load_as(st, "bank.Account/2", SNAP_OK);
  cr_assert_str_eq((const char *)s->data, "{\"v2\":{\"balance\":10}}");
  cr_assert_str_eq(s->manifest, "bank.Account/2");
  cr_assert_str_eq(s->stored_manifest, "bank.Account/1");
  cr_assert(s->metadata_len == 1 && s->metadata[0] == 'm');
  snap_snapshot_free(s);
  /* Already at the target: no step runs. */
  s = load_as(st, "bank.Account/1", SNAP_OK);
  cr_assert_str_eq((const char *)s->data, "{\"balance\":10}");
  cr_assert_eq(s->manifest, s->stored_manifest);
  snap_snapshot_free(s);
  cr_assert_eq(calls, 1);
  snap_store_close(st);
}

Test(upcast, three_steps_run_in_order) {
  snap_store *st = open_memory();
  int calls = 0;
  cr_assert_eq(snap_store_add_upcaster(st, "T/3", "T/4", st_upcast_wrap, &calls), SNAP_OK);
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/2", st_upcast_wrap, &calls), SNAP_OK);
  cr_assert_eq(snap_store_add_upcaster(st, "T/2", "T/3", st_upcast_wrap, &calls), SNAP_OK);
  save_as(st, "acct", 1, "[0]", "T/1");
  snap_snapshot *s = load_as(st, "T/4", SNAP_OK);
  cr_assert_str_eq((const char *)s->data, "{\"v4\":{\"v3\":{\"v2\":[0]}}}");
  cr_assert_str_eq(s->stored_manifest, "T/1");
  cr_assert_eq(calls, 3);
  snap_snapshot_free(s);
  snap_store_close(st);
}

Test(upcast, a_missing_step_is_an_error_naming_it) {
  snap_store *st = open_memory();
  int calls = 0;
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/2", st_upcast_wrap, &calls), SNAP_OK);
  cr_assert_eq(snap_store_add_upcaster(st, "T/3", "T/4", st_upcast_wrap, &calls), SNAP_OK);
  save_as(st, "acct", 1, "[0]", "T/1");
  load_as(st, "T/4", SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), "no upcaster from 'T/2'"), "%s", snap_error_message());
  /* A snapshot that states no manifest has no chain at all. */
  snap_save(st, "acct", 2, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL);
  load_as(st, "T/4", SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), "states no manifest"), "%s", snap_error_message());
  snap_store_close(st);
}

Test(upcast, a_failing_step_stops_the_load_with_its_reason) {
  snap_store *st = open_memory();
  int calls = 0;
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/2", st_upcast_wrap, &calls), SNAP_OK);
  cr_assert_eq(snap_store_add_upcaster(st, "T/2", "T/3", fails, NULL), SNAP_OK);
  save_as(st, "acct", 1, "[0]", "T/1");
  load_as(st, "T/3", SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "upcaster 'T/2' -> 'T/3' failed: amount 'ten'"), "%s",
            snap_error_message());
  snap_store_close(st);
}

Test(upcast, output_that_is_not_valid_json_is_refused) {
  snap_store *st = open_memory();
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/2", garbage, NULL), SNAP_OK);
  save_as(st, "acct", 1, "[0]", "T/1");
  load_as(st, "T/2", SNAP_EFORMAT);
  cr_assert(strstr(snap_error_message(), "upcaster 'T/1' -> 'T/2' returned a state that is not "
                                         "valid JSON"),
            "%s", snap_error_message());
  snap_store_close(st);
}

Test(upcast, loops_duplicates_and_bad_registrations_are_refused) {
  snap_store *st = open_memory();
  int calls = 0;
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/2", st_upcast_wrap, &calls), SNAP_OK);
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/3", st_upcast_wrap, &calls), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "already has an upcaster (to 'T/2')"), "%s",
            snap_error_message());
  cr_assert_eq(snap_store_add_upcaster(st, "T/5", "T/5", st_upcast_wrap, &calls), SNAP_EINVAL);
  cr_assert_eq(snap_store_add_upcaster(st, "", "T/5", st_upcast_wrap, &calls), SNAP_EINVAL);
  cr_assert_eq(snap_store_add_upcaster(st, "T/6", "T/7", NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_store_add_upcaster(st, "T/2", "T/1", st_upcast_wrap, &calls), SNAP_OK);
  save_as(st, "acct", 1, "[0]", "T/1");
  load_as(st, "T/9", SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "a loop?"), "%s", snap_error_message());
  snap_store_close(st);
}
