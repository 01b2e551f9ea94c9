/* Conformance cases for backend ABI version 2: enumeration of pids and
 * rows, conditional rewrites, raw copies and backups. A version-1 backend
 * skips the cases that need it (cf_needs_abi). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/admin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

/* ------------------------------------------------------------------------ */
/* Backend ABI version 2: enumeration, conditional rewrite, raw puts, backup */
/* ------------------------------------------------------------------------ */

void cf_case_pids_are_listed_in_byte_order_and_pages_resume_from_the_cursor(const cf_backend *bc) {
  if (!cf_needs_abi(bc, 2, "enumeration"))
    return;
  const char *pids[] = {"b", "a", "a\xc3\xa9", "a b", "Z", "zz", "\xe2\x82\xac", "b/1"};
  const char *sorted[] = {"Z", "a", "a b", "a\xc3\xa9", "b", "b/1", "zz", "\xe2\x82\xac"};
  size_t np = sizeof pids / sizeof pids[0];

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  for (size_t i = 0; i < np; i++)
    for (int64_t seq = 1; seq <= 2; seq++)
      cf_assert_eq(snap_save(f.st, pids[i], seq, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK,
                   "[%s] %s", bc->name, snap_error_message());
  cf_assert_eq(snap_delete(f.st, "zz", INT64_MAX), SNAP_OK);
  /* Pages of 3: every pid once, in order, the deleted one absent. */
  snap_pid_page page = SNAP_PID_PAGE_INIT;
  char *cursor = NULL;
  size_t seen = 0;
  for (;;) {
    cf_assert_eq(snap_store_list_pids(f.st, cursor, 3, &page), SNAP_OK, "[%s] %s", bc->name,
                 snap_error_message());
    for (size_t i = 0; i < page.n; i++) {
      if (strcmp(sorted[seen], "zz") == 0)
        seen++;
      cf_assert(seen < np, "[%s] too many pids", bc->name);
      cf_assert_str_eq(page.pids[i], sorted[seen], "[%s] pid %zu", bc->name, seen);
      seen++;
    }
    free(cursor);
    cursor = page.n ? strdup(page.pids[page.n - 1]) : NULL;
    if (page.n < 3)
      break;
  }
  free(cursor);
  cf_assert_eq(seen, np, "[%s] listed %zu pids", bc->name, seen);
  /* A cursor that is no stored pid works too. */
  cf_assert_eq(snap_store_list_pids(f.st, "a c", 10, &page), SNAP_OK);
  cf_assert_eq(page.n, 4, "[%s] after 'a c': %zu", bc->name, page.n);
  cf_assert_str_eq(page.pids[0], "a\xc3\xa9");
  snap_pid_page_dispose(&page);
  cf_assert_eq(snap_store_list_pids(f.st, NULL, 0, &page), SNAP_EINVAL, "[%s]", bc->name);
  fx_close(&f);
}

void cf_case_snapshots_are_listed_with_their_metadata_without_decoding(const cf_backend *bc) {
  if (!cf_needs_abi(bc, 2, "enumeration"))
    return;
  snap_keyring *kr = fx_keyring(0x31);
  uint8_t key2[SNAP_KEY_BYTES];
  memset(key2, 0x32, sizeof key2);
  cf_assert_eq(snap_keyring_add(kr, 2, key2, sizeof key2), SNAP_OK);
  cf_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
  snap_options *enc = fx_options(1, kr);
  char *state = fx_ledger(3000, "meta");
  const uint8_t mp[] = {0x81, 0xa1, 'k', 0x07};

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  snap_meta m[4];
  cf_assert_eq(
      snap_save_at(f.st, "p1", 5, 1000, SNAP_FORMAT_JSON, state, strlen(state), enc, &m[0]),
      SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  cf_assert_eq(snap_save_at(f.st, "p1", 2, 2000, SNAP_FORMAT_MSGPACK, mp, sizeof mp, NULL, &m[1]),
               SNAP_OK);
  cf_assert_eq(snap_save_at(f.st, "p0", 9, 3000, SNAP_FORMAT_JSON, "[1]", 3, NULL, &m[2]), SNAP_OK);
  cf_assert_eq(snap_save_at(f.st, "p2", 0, 4000, SNAP_FORMAT_JSON, "{}", 2, NULL, &m[3]), SNAP_OK);
  /* Whole store, (pid, seq) order: p0/9, p1/2, p1/5, p2/0. */
  const int order[] = {2, 1, 0, 3};
  const char *opid[] = {"p0", "p1", "p1", "p2"};
  const size_t olen[] = {3, sizeof mp, 0, 2};
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, NULL, NULL, 0, 10, false, &page), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_eq(page.n, 4, "[%s] %zu entries", bc->name, page.n);
  for (size_t i = 0; i < 4; i++) {
    const snap_entry *e = &page.entries[i];
    const snap_meta *w = &m[order[i]];
    cf_assert_str_eq(e->pid, opid[i], "[%s] entry %zu", bc->name, i);
    cf_assert_eq(e->seq, w->seq, "[%s] entry %zu", bc->name, i);
    cf_assert_eq(e->timestamp, w->timestamp, "[%s] entry %zu", bc->name, i);
    cf_assert_eq(e->stored_len, w->stored_len, "[%s] entry %zu", bc->name, i);
    cf_assert_eq(e->header_status, SNAP_OK);
    cf_assert_eq(e->format, w->format, "[%s] entry %zu", bc->name, i);
    cf_assert_eq(e->stages, w->stages, "[%s] entry %zu", bc->name, i);
    cf_assert_eq(e->orig_len, olen[i] ? olen[i] : strlen(state), "[%s] entry %zu", bc->name, i);
    bool keyed = (w->stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC)) != 0;
    cf_assert_eq(e->key_version, keyed ? 2u : 0u, "[%s] entry %zu", bc->name, i);
    cf_assert_null(e->body);
  }
  /* One pid, with bodies, in pages of one that resume from the cursor. */
  snap_entry_page one = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, "p1", NULL, 0, 1, true, &one), SNAP_OK);
  cf_assert_eq(one.n, 1);
  cf_assert_eq(one.entries[0].seq, 2);
  cf_assert_not_null(one.entries[0].body);
  snap_format fmt;
  cf_assert_eq(
      snap_body_inspect(one.entries[0].body, one.entries[0].stored_len, &fmt, NULL, NULL, NULL),
      SNAP_OK);
  cf_assert_eq(fmt, SNAP_FORMAT_MSGPACK);
  cf_assert_eq(snap_store_list(f.st, "p1", "p1", 2, 1, true, &one), SNAP_OK);
  cf_assert_eq(one.n, 1);
  cf_assert_eq(one.entries[0].seq, 5);
  cf_assert_eq(snap_store_list(f.st, "p1", "p1", 5, 1, true, &one), SNAP_OK);
  cf_assert_eq(one.n, 0, "[%s] past the last seq", bc->name);
  /* The whole store from a cursor inside a pid continues into the next pid. */
  cf_assert_eq(snap_store_list(f.st, NULL, "p1", 2, 10, false, &one), SNAP_OK);
  cf_assert_eq(one.n, 2, "[%s]", bc->name);
  cf_assert_str_eq(one.entries[0].pid, "p1");
  cf_assert_eq(one.entries[0].seq, 5);
  cf_assert_str_eq(one.entries[1].pid, "p2");
  cf_assert_eq(snap_store_list(f.st, "nobody", NULL, 0, 10, false, &one), SNAP_OK);
  cf_assert_eq(one.n, 0);
  snap_entry_page_dispose(&one);
  snap_entry_page_dispose(&page);
  fx_close(&f);
  free(state);
  snap_options_free(enc);
  snap_keyring_free(kr);
}

/* One rewrite item per entry of `page` (which holds bodies). */
static void rewrite_items(const snap_entry_page *page, snap_rewrite *items) {
  for (size_t i = 0; i < page->n; i++)
    items[i] = (snap_rewrite){page->entries[i].pid,
                              page->entries[i].seq,
                              page->entries[i].body,
                              page->entries[i].stored_len,
                              -1,
                              -1,
                              0,
                              0};
}

/* Loads (pid, seq) with `o` and checks its state. */
static void expect_state(fx *f, const char *pid, int64_t seq, const snap_options *o,
                         const char *state, int64_t ts) {
  snap_snapshot *s = NULL;
  snap_criteria c = fx_crit(seq, seq, INT64_MIN, INT64_MAX);
  cf_assert_eq(snap_load(f->st, pid, &c, o, &s), SNAP_OK, "[%s] %s/%" PRId64 ": %s", f->bc->name,
               pid, seq, snap_error_message());
  cf_assert_not_null(s, "[%s] %s/%" PRId64 " is missing", f->bc->name, pid, seq);
  cf_assert_eq(s->len, strlen(state), "[%s] %s/%" PRId64, f->bc->name, pid, seq);
  cf_assert(memcmp(s->data, state, s->len) == 0, "[%s] %s/%" PRId64, f->bc->name, pid, seq);
  if (ts >= 0)
    cf_assert_eq(s->timestamp, ts, "[%s] %s/%" PRId64 " timestamp", f->bc->name, pid, seq);
  snap_snapshot_free(s);
}

void cf_case_rewrite_moves_bodies_to_the_active_key_keeping_state_and_timestamp(
    const cf_backend *bc) {
  if (!cf_needs_abi(bc, 2, "enumeration and conditional replace"))
    return;
  snap_keyring *kr = fx_keyring(0x41);
  snap_options *o = fx_options(1, kr);
  char *big = fx_ledger(5000, "rot");
  const char *states[] = {big, "[1,2,3]", "{\"x\":\"y\"}"};

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  unsigned caps = snap_store_capabilities(f.st);
  for (int i = 0; i < 3; i++)
    cf_assert_eq(snap_save_at(f.st, "rot", i, 5000 + i, SNAP_FORMAT_JSON, states[i],
                              strlen(states[i]), o, NULL),
                 SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  /* Rotate: a second key becomes active. */
  uint8_t key2[SNAP_KEY_BYTES];
  memset(key2, 0x42, sizeof key2);
  if (!snap_keyring_has(kr, 2))
    cf_assert_eq(snap_keyring_add(kr, 2, key2, sizeof key2), SNAP_OK);
  cf_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
  bool enc = (caps & SNAP_CAP_ENCRYPTION) != 0;
  for (int pass = 0; pass < 2; pass++) {
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cf_assert_eq(snap_store_list(f.st, "rot", NULL, 0, 10, true, &page), SNAP_OK);
    cf_assert_eq(page.n, 3);
    snap_rewrite items[3];
    rewrite_items(&page, items);
    cf_assert_eq(snap_store_rewrite(f.st, items, 3, o, false), SNAP_OK, "[%s] %s", bc->name,
                 snap_error_message());
    for (int i = 0; i < 3; i++) {
      cf_assert_eq(items[i].status, SNAP_OK);
      /* The first pass re-encrypts; the second finds nothing left to do.
       * A backend that stores no encryption already holds what it writes. */
      int want = (pass == 0 && enc) ? SNAP_REWRITE_DONE : SNAP_REWRITE_CURRENT;
      cf_assert_eq(items[i].outcome, want, "[%s] pass %d item %d: %d", bc->name, pass, i,
                   items[i].outcome);
      cf_assert_eq(items[i].key_version, enc ? 2u : 0u, "[%s] pass %d item %d", bc->name, pass, i);
    }
    snap_entry_page_dispose(&page);
  }
  /* Stored headers now say key 2; states and timestamps are unchanged. */
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, "rot", NULL, 0, 10, false, &page), SNAP_OK);
  for (int i = 0; i < 3; i++) {
    cf_assert_eq(page.entries[i].key_version, enc ? 2u : 0u, "[%s] %d", bc->name, i);
    cf_assert_eq(page.entries[i].timestamp, 5000 + i, "[%s] %d", bc->name, i);
  }
  snap_entry_page_dispose(&page);
  for (int i = 0; i < 3; i++)
    expect_state(&f, "rot", i, o, states[i], 5000 + i);
  if (enc) {
    /* Key 1 is no longer needed: a ring without it still reads everything. */
    snap_keyring *only2 = NULL;
    cf_assert_eq(snap_keyring_new(&only2), SNAP_OK);
    cf_assert_eq(snap_keyring_add(only2, 2, key2, sizeof key2), SNAP_OK);
    snap_options *r = fx_options(0, only2);
    for (int i = 0; i < 3; i++)
      expect_state(&f, "rot", i, r, states[i], 5000 + i);
    snap_options_free(r);
    snap_keyring_free(only2);
  }
  cf_assert_eq(snap_keyring_set_active(kr, 1), SNAP_OK);
  fx_close(&f);
  free(big);
  snap_options_free(o);
  snap_keyring_free(kr);
}

void cf_case_rewrite_never_overwrites_a_newer_save_nor_revives_a_deleted_snapshot(
    const cf_backend *bc) {
  if (!cf_needs_abi(bc, 2, "enumeration and conditional replace"))
    return;
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  for (int i = 1; i <= 4; i++) {
    char st[16];
    snprintf(st, sizeof st, "\"old-%d\"", i);
    cf_assert_eq(
        snap_save_at(f.st, "live", i, 100 * i, SNAP_FORMAT_JSON, st, strlen(st), NULL, NULL),
        SNAP_OK);
  }
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, "live", NULL, 0, 10, true, &page), SNAP_OK);
  cf_assert_eq(page.n, 4);
  /* Between the read and the rewrite: seq 2 saved again, seq 3 deleted. */
  cf_assert_eq(snap_save_at(f.st, "live", 2, 777, SNAP_FORMAT_JSON, "\"new-2\"", 7, NULL, NULL),
               SNAP_OK);
  cf_assert_eq(snap_delete_one(f.st, "live", 3), SNAP_OK);
  snap_rewrite items[4];
  rewrite_items(&page, items);
  /* force: re-encode even what is current, so every row goes to the backend. */
  cf_assert_eq(snap_store_rewrite(f.st, items, 4, NULL, true), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_eq(items[0].outcome, SNAP_REWRITE_DONE, "[%s]", bc->name);
  cf_assert_eq(items[1].outcome, SNAP_REWRITE_CHANGED, "[%s]", bc->name);
  cf_assert_eq(items[2].outcome, SNAP_REWRITE_GONE, "[%s]", bc->name);
  cf_assert_eq(items[3].outcome, SNAP_REWRITE_DONE, "[%s]", bc->name);
  expect_state(&f, "live", 1, NULL, "\"old-1\"", 100);
  expect_state(&f, "live", 2, NULL, "\"new-2\"", 777);
  expect_state(&f, "live", 4, NULL, "\"old-4\"", 400);
  snap_snapshot *s = fx_load(&f, "live", fx_crit(3, 3, INT64_MIN, INT64_MAX));
  fx_expect_none(&f, s, "deleted seq 3 after the rewrite");
  snap_entry_page_dispose(&page);
  fx_close(&f);
}

void cf_case_rewrite_reports_bodies_it_cannot_decode_and_leaves_them(const cf_backend *bc) {
  if (!cf_needs_abi(bc, 2, "enumeration and conditional replace"))
    return;
  snap_keyring *kr = fx_keyring(0x51), *other = fx_keyring(0x52);
  snap_options *w = fx_options(0, kr), *r = fx_options(0, other);

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  bool enc = (snap_store_capabilities(f.st) & SNAP_CAP_ENCRYPTION) != 0;
  cf_assert_eq(snap_save(f.st, "k", 1, SNAP_FORMAT_JSON, "1", 1, w, NULL), SNAP_OK);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, "k", NULL, 0, 10, true, &page), SNAP_OK);
  snap_rewrite it = {"k", 1, page.entries[0].body, page.entries[0].stored_len, -1, -1, 0, 0};
  /* A wrong key: the body is not re-encrypted with it, and stays as it was. */
  int rc = snap_store_rewrite(f.st, &it, 1, r, true);
  cf_assert_eq(rc, enc ? SNAP_EAUTH : SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  cf_assert_eq(it.status, rc);
  snap_entry_page again = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, "k", NULL, 0, 10, true, &again), SNAP_OK);
  if (enc)
    cf_assert(page.entries[0].stored_len == again.entries[0].stored_len &&
                  memcmp(page.entries[0].body, again.entries[0].body, page.entries[0].stored_len) ==
                      0,
              "[%s] the body changed", bc->name);
  expect_state(&f, "k", 1, w, "1", -1);
  snap_entry_page_dispose(&again);
  snap_entry_page_dispose(&page);
  fx_close(&f);
  snap_options_free(w);
  snap_options_free(r);
  snap_keyring_free(kr);
  snap_keyring_free(other);
}

void cf_case_raw_puts_copy_bodies_as_they_are_with_pid_seq_and_timestamp(const cf_backend *bc) {
  if (!cf_needs_abi(bc, 2, "enumeration"))
    return;
  snap_keyring *kr = fx_keyring(0x61);
  snap_options *o = fx_options(1, kr);
  char *big = fx_ledger(4000, "copy");

  fx src, dst;
  fx_open(&src, bc, "\"keep\": 0");
  fx_open(&dst, bc, "\"keep\": 1"); /* a copy keeps everything even so */
  for (int i = 0; i < 5; i++)
    cf_assert_eq(snap_save_at(src.st, i % 2 ? "odd" : "even", i, 9000 + i, SNAP_FORMAT_JSON, big,
                              strlen(big), o, NULL),
                 SNAP_OK);
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(src.st, NULL, NULL, 0, 100, true, &page), SNAP_OK);
  cf_assert_eq(page.n, 5);
  snap_raw_row rows[6];
  for (size_t i = 0; i < 5; i++)
    rows[i] =
        (snap_raw_row){page.entries[i].pid,  page.entries[i].seq,        page.entries[i].timestamp,
                       page.entries[i].body, page.entries[i].stored_len, -1};
  /* A body that is no frame is refused alone. */
  rows[5] = (snap_raw_row){"bad", 1, 1, "not a body", 10, -1};
  cf_assert_eq(snap_store_put_raw(dst.st, rows, 6), SNAP_EFORMAT, "[%s] %s", bc->name,
               snap_error_message());
  for (int i = 0; i < 5; i++)
    cf_assert_eq(rows[i].status, SNAP_OK, "[%s] row %d", bc->name, i);
  cf_assert_eq(rows[5].status, SNAP_EFORMAT);
  snap_entry_page copy = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(dst.st, NULL, NULL, 0, 100, true, &copy), SNAP_OK);
  cf_assert_eq(copy.n, 5, "[%s] %zu rows copied", bc->name, copy.n);
  for (size_t i = 0; i < 5; i++) {
    cf_assert_str_eq(copy.entries[i].pid, page.entries[i].pid);
    cf_assert_eq(copy.entries[i].seq, page.entries[i].seq);
    cf_assert_eq(copy.entries[i].timestamp, page.entries[i].timestamp);
    cf_assert_eq(copy.entries[i].stored_len, page.entries[i].stored_len);
    cf_assert(memcmp(copy.entries[i].body, page.entries[i].body, copy.entries[i].stored_len) == 0,
              "[%s] body %zu differs", bc->name, i);
  }
  expect_state(&dst, "odd", 3, o, big, 9003);
  snap_snapshot *s = fx_load(&dst, "bad", SNAP_CRITERIA_LATEST);
  fx_expect_none(&dst, s, "the refused row");
  snap_entry_page_dispose(&copy);
  snap_entry_page_dispose(&page);
  fx_close(&dst);
  fx_close(&src);
  free(big);
  snap_options_free(o);
  snap_keyring_free(kr);
}

void cf_case_backups_are_complete_stores_or_unsupported(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  for (int i = 0; i < 20; i++)
    cf_assert_eq(snap_save_at(f.st, i % 3 ? "b1" : "b2", i, 50 + i, SNAP_FORMAT_JSON, "[true]", 6,
                              NULL, NULL),
                 SNAP_OK);
  char *path = st_join(f.dir, "backup.db");
  int rc = snap_store_backup(f.st, path);
  if (!bc->file_backup) {
    cf_assert_eq(rc, SNAP_EUNSUPPORTED, "[%s] %s", bc->name, snap_error_message());
    cf_assert(strstr(snap_error_message(), bc->backend()->name), "%s", snap_error_message());
  } else {
    cf_assert_eq(rc, SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    cf_assert_eq(snap_store_backup(f.st, path), SNAP_EINVAL, "[%s] over an existing file",
                 bc->name);
    /* The copy opens with the same backend and holds every row. */
    char config[1024];
    snprintf(config, sizeof config, "{\"path\": \"%s\", \"keep\": 0}", path);
    snap_store *b = NULL;
    cf_assert_eq(snap_store_open_backend(&b, bc->backend(), config), SNAP_OK, "%s",
                 snap_error_message());
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cf_assert_eq(snap_store_list(b, NULL, NULL, 0, 100, false, &page), SNAP_OK);
    cf_assert_eq(page.n, 20, "[%s] backup holds %zu rows", bc->name, page.n);
    snap_entry_page_dispose(&page);
    snap_store_close(b);
  }
  free(path);
  fx_close(&f);
}
