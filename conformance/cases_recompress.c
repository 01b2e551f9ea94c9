/* Rewriting stored bodies to another codec or dictionary
 * (snap_store_rewrite_ex() with SNAP_REWRITE_RECOMPRESS, `snapctl rekey
 * --recompress`): what a save writes now becomes what is stored, through the
 * same conditional replace as a key rotation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/admin.h"
#include "snap/store.h"

#define NPIDS 4

/* Rewrites pid's one snapshot with `flags` as listed with its body; checks
 * its status and returns its outcome in `*out`. */
static void rewrite_pid(fx *f, const char *pid, const snap_options *o, unsigned flags,
                        int *out) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f->st, pid, NULL, 0, 10, true, &page), SNAP_OK, "[%s] %s",
               f->bc->name, snap_error_message());
  cf_assert_eq(page.n, 1u, "[%s] %s", f->bc->name, pid);
  snap_rewrite it = {page.entries[0].pid, page.entries[0].seq, page.entries[0].body,
                     page.entries[0].stored_len, -1, -1, 0, 0};
  cf_assert_eq(snap_store_rewrite_ex(f->st, &it, 1, o, flags), SNAP_OK, "[%s] %s: %s",
               f->bc->name, pid, snap_error_message());
  cf_assert_eq(it.status, SNAP_OK, "[%s] %s", f->bc->name, pid);
  *out = it.outcome;
  snap_entry_page_dispose(&page);
}

/* The codec and dictionary pid's stored body names. */
static void stored_codec(fx *f, const char *pid, snap_compression *codec, uint32_t *dict) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f->st, pid, NULL, 0, 10, false, &page), SNAP_OK);
  cf_assert_eq(page.n, 1u);
  *codec = page.entries[0].codec;
  *dict = page.entries[0].dict_id;
  snap_entry_page_dispose(&page);
}

void cf_case_recompress_moves_bodies_to_the_codec_and_dictionary_a_save_writes_now(
    const cf_backend *bc) {
  if (!cf_needs_abi(bc, 4, "dictionaries and conditional replace"))
    return;
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  if (bc->backend()->dict_put == NULL || bc->backend()->replace == NULL ||
      !(snap_store_capabilities(f.st) & SNAP_CAP_COMPRESSION)) {
    cf_skip(bc, "the backend stores no dictionaries or no compression: nothing to recompress");
    fx_close(&f);
    return;
  }
  char *states[NPIDS + 1], pid[16];
  snap_options *zlib = fx_options(6, NULL), *zstd = NULL;
  for (int i = 0; i < NPIDS; i++) {
    states[i] = fx_ledger(3000, "recompress");
    snprintf(pid, sizeof pid, "r-%d", i);
    cf_assert_eq(snap_save(f.st, pid, 1, SNAP_FORMAT_JSON, states[i], strlen(states[i]), zlib,
                           NULL),
                 SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  }
  /* Too small for any codec to shrink: it stays uncompressed. */
  states[NPIDS] = strdup("{\"n\":1}");
  cf_assert_eq(snap_save(f.st, "r-small", 1, SNAP_FORMAT_JSON, states[NPIDS],
                         strlen(states[NPIDS]), zlib, NULL),
               SNAP_OK);
  uint32_t id = 0;
  cf_assert_eq(snap_store_dict_add(f.st, "ledger", states[0], 2048, &id), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert_eq(snap_options_new(&zstd), SNAP_OK);
  cf_assert_eq(snap_options_set_compression(zstd, SNAP_COMPRESSION_ZSTD, 3), SNAP_OK);
  cf_assert_eq(snap_options_set_dictionary(zstd, 0, "ledger"), SNAP_OK);
  snap_compression codec;
  uint32_t dict;
  cf_assert_eq(snap_store_codec_target(f.st, "r-0", zstd, &codec, &dict), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert(codec == SNAP_COMPRESSION_ZSTD && dict == id, "[%s] target %d/%u", bc->name, codec,
            dict);
  /* A key rotation's rewrite leaves them: they are authenticated as a save
   * writes now (not at all). Unknown flags change nothing. */
  int outcome;
  rewrite_pid(&f, "r-0", zstd, 0, &outcome);
  cf_assert_eq(outcome, SNAP_REWRITE_CURRENT, "[%s]", bc->name);
  snap_rewrite none = {"r-0", 1, "x", 1, -1, -1, 0, 0};
  cf_assert_eq(snap_store_rewrite_ex(f.st, &none, 1, zstd, 4u), SNAP_EINVAL, "[%s]", bc->name);
  /* Recompressing moves every compressed body, twice is a no-op, and the
   * small one is left as it was. */
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < NPIDS; i++) {
      snprintf(pid, sizeof pid, "r-%d", i);
      rewrite_pid(&f, pid, zstd, SNAP_REWRITE_RECOMPRESS, &outcome);
      cf_assert_eq(outcome, pass == 0 ? SNAP_REWRITE_DONE : SNAP_REWRITE_CURRENT, "[%s] %s pass %d",
                   bc->name, pid, pass);
    }
    rewrite_pid(&f, "r-small", zstd, SNAP_REWRITE_RECOMPRESS, &outcome);
    cf_assert_eq(outcome, SNAP_REWRITE_CURRENT, "[%s] small pass %d", bc->name, pass);
  }
  for (int i = 0; i <= NPIDS; i++) {
    snprintf(pid, sizeof pid, i < NPIDS ? "r-%d" : "r-small", i);
    stored_codec(&f, pid, &codec, &dict);
    cf_assert(i < NPIDS ? codec == SNAP_COMPRESSION_ZSTD && dict == id
                        : codec == SNAP_COMPRESSION_NONE && dict == 0,
              "[%s] %s stored %d/%u", bc->name, pid, codec, dict);
    snap_snapshot *s = NULL;
    cf_assert_eq(snap_load_latest(f.st, pid, NULL, &s), SNAP_OK, "[%s] %s", bc->name,
                 snap_error_message());
    cf_assert(s && s->len == strlen(states[i]) && memcmp(s->data, states[i], s->len) == 0,
              "[%s] %s", bc->name, pid);
    snap_snapshot_free(s);
  }
  /* In use now: the dictionary cannot be removed. */
  cf_assert_eq(snap_store_dict_remove(f.st, id, false), SNAP_EBUSY, "[%s]", bc->name);
  /* And back to zlib. */
  rewrite_pid(&f, "r-1", zlib, SNAP_REWRITE_RECOMPRESS, &outcome);
  cf_assert_eq(outcome, SNAP_REWRITE_DONE, "[%s]", bc->name);
  stored_codec(&f, "r-1", &codec, &dict);
  cf_assert(codec == SNAP_COMPRESSION_ZLIB && dict == 0, "[%s]", bc->name);
  for (int i = 0; i <= NPIDS; i++)
    free(states[i]);
  snap_options_free(zlib);
  snap_options_free(zstd);
  fx_close(&f);
}
