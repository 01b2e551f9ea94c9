/* Manifests and metadata (frame fields 4 and 5, backend ABI version 4's
 * manifest column): given at save, returned at load, bound by the frame,
 * selected by, and absent from bodies that state none (those stay v1). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/admin.h"
#include "snap/store.h"

static int save_typed(fx *f, const char *pid, int64_t seq, const char *state, const char *manifest,
                      const void *metadata, size_t metadata_len) {
  snap_save_req r = {pid, seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state, strlen(state), NULL};
  snap_save_ext x = {.manifest = manifest, .metadata = metadata, .metadata_len = metadata_len};
  return snap_save_ex(f->st, &r, &x, NULL);
}

/* The frame version byte (offset 4) of the stored body of (pid, seq). */
static int frame_version(fx *f, const char *pid, int64_t seq) {
  snap_entry_page page = {0};
  cf_assert_eq(snap_store_list(f->st, pid, NULL, 0, 100, true, &page), SNAP_OK, "[%s] %s",
               f->bc->name, snap_error_message());
  int v = -1;
  for (size_t i = 0; i < page.n; i++)
    if (page.entries[i].seq == seq && page.entries[i].stored_len > 4)
      v = page.entries[i].body[4];
  snap_entry_page_dispose(&page);
  return v;
}

void cf_case_manifests_and_metadata_round_trip_in_the_frame(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  const char *n = bc->name;
  static const uint8_t meta[] = {0x00, 0x01, 0xff, 'a', 0x00};
  cf_assert_eq(save_typed(&f, "acct", 1, "{\"balance\":\"10\"}", "bank.Account/3", meta,
                          sizeof meta),
               SNAP_OK, "[%s] %s", n, snap_error_message());
  cf_assert_eq(save_typed(&f, "acct", 2, "{\"balance\":\"11\"}", NULL, NULL, 0), SNAP_OK, "[%s]",
               n);
  const snap_backend *be = bc->backend();
  if (be->abi_version >= 2 && be->list_rows != NULL) { /* enumeration reads the bodies */
    cf_assert_eq(frame_version(&f, "acct", 1), 2, "[%s] a body with a manifest is frame v2", n);
    cf_assert_eq(frame_version(&f, "acct", 2), 1, "[%s] a body without stays v1", n);
  }
  snap_snapshot *s = NULL;
  snap_criteria one = {1, 1, 0, INT64_MAX};
  cf_assert_eq(snap_load(f.st, "acct", &one, NULL, &s), SNAP_OK, "[%s]", n);
  cf_assert_not_null(s, "[%s]", n);
  cf_assert_str_eq(s->manifest, "bank.Account/3", "[%s]", n);
  cf_assert(s->metadata_len == sizeof meta && memcmp(s->metadata, meta, sizeof meta) == 0,
            "[%s] metadata byte for byte", n);
  snap_snapshot_free(s);
  cf_assert_eq(snap_load_latest(f.st, "acct", NULL, &s), SNAP_OK, "[%s]", n);
  cf_assert(s->manifest == NULL && s->metadata == NULL && s->metadata_len == 0, "[%s]", n);
  snap_snapshot_free(s);
  /* Refused, storing nothing: a bad manifest, too much metadata. */
  char longer[SNAP_MANIFEST_MAX + 2];
  memset(longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = 0;
  const char *bad[] = {"", "\xff\xfe", longer};
  for (size_t i = 0; i < 3; i++)
    cf_assert_eq(save_typed(&f, "acct", 9, "{}", bad[i], NULL, 0), SNAP_EINVAL, "[%s] bad %zu", n,
                 i);
  static uint8_t big[SNAP_METADATA_MAX + 1];
  cf_assert_eq(save_typed(&f, "acct", 9, "{}", "t/1", big, sizeof big), SNAP_EINVAL, "[%s]", n);
  cf_assert_eq(save_typed(&f, "acct", 9, "{}", "t/1", big, sizeof big - 1), SNAP_OK, "[%s] %s", n,
               snap_error_message());
  fx_close(&f);
}

void cf_case_loads_select_by_manifest(const cf_backend *bc) {
  if (!cf_needs_abi(bc, 4, "selection by manifest (load4)"))
    return;
  if (bc->backend()->load4 == NULL) {
    cf_skip(bc, "the backend leaves load4 (ABI version 4) NULL: no selection by manifest");
    return;
  }
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  const char *n = bc->name;
  cf_assert_eq(save_typed(&f, "p", 1, "[1]", "T/1", NULL, 0), SNAP_OK, "[%s]", n);
  cf_assert_eq(save_typed(&f, "p", 2, "[2]", "T/2", NULL, 0), SNAP_OK, "[%s]", n);
  cf_assert_eq(save_typed(&f, "p", 3, "[3]", "T/1", NULL, 0), SNAP_OK, "[%s]", n);
  cf_assert_eq(save_typed(&f, "p", 4, "[4]", NULL, NULL, 0), SNAP_OK, "[%s]", n);
  snap_snapshot *s = NULL;
  snap_criteria all = SNAP_CRITERIA_LATEST;
  cf_assert_eq(snap_load_manifest(f.st, "p", &all, "T/1", NULL, &s), SNAP_OK, "[%s] %s", n,
               snap_error_message());
  cf_assert(s != NULL && s->seq == 3 && strcmp(s->manifest, "T/1") == 0, "[%s]", n);
  snap_snapshot_free(s);
  cf_assert_eq(snap_load_manifest(f.st, "p", &all, "T/2", NULL, &s), SNAP_OK, "[%s]", n);
  cf_assert(s != NULL && s->seq == 2, "[%s]", n);
  snap_snapshot_free(s);
  snap_criteria below3 = {0, 2, 0, INT64_MAX};
  cf_assert_eq(snap_load_manifest(f.st, "p", &below3, "T/1", NULL, &s), SNAP_OK, "[%s]", n);
  cf_assert(s != NULL && s->seq == 1, "[%s] with the other bounds", n);
  snap_snapshot_free(s);
  cf_assert_eq(snap_load_manifest(f.st, "p", &all, "T/9", NULL, &s), SNAP_OK, "[%s]", n);
  cf_assert_null(s, "[%s] no snapshot of that manifest", n);
  cf_assert_eq(snap_load_manifest(f.st, "p", &all, NULL, NULL, &s), SNAP_OK, "[%s]", n);
  cf_assert(s != NULL && s->seq == 4, "[%s] NULL selects every snapshot", n);
  snap_snapshot_free(s);
  cf_assert_eq(snap_load_manifest(f.st, "p", &all, "", NULL, &s), SNAP_EINVAL, "[%s]", n);
  /* A raw copy (snapctl copy) refills the column from each body's header. */
  snap_entry_page page = {0};
  cf_assert_eq(snap_store_list(f.st, "p", NULL, 0, 100, true, &page), SNAP_OK, "[%s]", n);
  snap_raw_row rows[8];
  for (size_t i = 0; i < page.n && i < 8; i++)
    rows[i] = (snap_raw_row){page.entries[i].pid, page.entries[i].seq, page.entries[i].timestamp,
                             page.entries[i].body, page.entries[i].stored_len, SNAP_OK};
  fx g;
  fx_open(&g, bc, "\"keep\": 0");
  cf_assert_eq(snap_store_put_raw(g.st, rows, page.n), SNAP_OK, "[%s] %s", n,
               snap_error_message());
  snap_entry_page_dispose(&page);
  cf_assert_eq(snap_load_manifest(g.st, "p", &all, "T/2", NULL, &s), SNAP_OK, "[%s]", n);
  cf_assert(s != NULL && s->seq == 2, "[%s] the copy selects by manifest", n);
  snap_snapshot_free(s);
  fx_close(&g);
  fx_close(&f);
}
