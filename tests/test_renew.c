/* Renewing data keys (snap_renew_keys()) stopped between its steps: with
 * the unit's record holding two generations, every body (of either
 * generation) loads, a rewrap moves both generations to a new master key,
 * and a rerun finishes the unit without a third generation; only then does
 * a body sealed with the old generation stop loading. The sqlite table is
 * wrapped so that the last step (cutting the record to one generation)
 * fails on demand, as a crash there would leave it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapstore.h"
#include "snap/envelope.h"
#include "snap/sys/backend.h"
#include "store_util.h"

#define CTX "acme/test/renew/v1"

static bool fail_cut; /* key_replace of a one-record set (step 3) fails */

static int stopping_replace(void *self, const snap_backend_key_change *c) {
  if (fail_cut && c->wrapped_len == SNAP_WRAPPED_KEY_BYTES)
    return SNAP_EIO;
  return snap_backend_sqlite()->key_replace(self, c);
}

static snap_backend stopping;

static snap_store *open_store(const char *cfg, snap_options *o) {
  stopping = *snap_backend_sqlite();
  stopping.key_replace = stopping_replace;
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, &stopping, cfg), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  return st;
}

static snap_options *envelope_under(snap_keyring *kr) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, CTX), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  return o;
}

static snap_keyring *keyring(uint32_t from, uint32_t to) {
  snap_keyring *kr = NULL;
  uint8_t key[SNAP_KEY_BYTES];
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  for (uint32_t v = from; v <= to; v++) {
    memset(key, 0x60 + (int)v, sizeof key);
    cr_assert_eq(snap_keyring_add(kr, v, key, sizeof key), SNAP_OK);
  }
  cr_assert_eq(snap_keyring_set_active(kr, to), SNAP_OK);
  return kr;
}

/* The stored body of (pid, seq): its copy and the generation it names. */
static uint8_t *stored(snap_store *st, const char *pid, int64_t seq, size_t *len, uint32_t *gen) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, pid, pid, seq - 1, 1, true, &page), SNAP_OK);
  cr_assert_eq(page.n, 1u);
  cr_assert_eq(page.entries[0].seq, seq);
  *len = page.entries[0].stored_len;
  *gen = page.entries[0].key_version;
  uint8_t *copy = malloc(*len);
  memcpy(copy, page.entries[0].body, *len);
  snap_entry_page_dispose(&page);
  return copy;
}

static int load_seq(snap_store *st, const char *pid, int64_t seq) {
  snap_snapshot *s = NULL;
  snap_criteria c = {seq, seq, INT64_MIN, INT64_MAX};
  int rc = snap_load(st, pid, &c, NULL, &s);
  if (rc == SNAP_OK && (s == NULL || s->seq != seq))
    rc = SNAP_ENOTFOUND;
  snap_snapshot_free(s);
  return rc;
}

Test(renew, a_renewal_stopped_before_its_last_step_leaves_every_body_loadable_and_resumes) {
  char *dir = st_tmpdir();
  char cfg[1024];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/data.db\", \"keep\": 0}", dir);
  snap_keyring *kr1 = keyring(1, 1);
  snap_options *o = envelope_under(kr1);
  snap_store *st = open_store(cfg, o);
  const char *unit[1] = {"u"};
  for (int64_t seq = 1; seq <= 2; seq++)
    cr_assert_eq(snap_save(st, "u", seq, SNAP_FORMAT_JSON, "{\"v\":1}", 7, NULL, NULL), SNAP_OK);
  size_t old_len;
  uint32_t gen;
  uint8_t *old = stored(st, "u", 1, &old_len, &gen);
  cr_assert_eq(gen, 1u);

  /* Stopped after the bodies moved, before the old key is dropped. */
  fail_cut = true;
  snap_renew_progress pr;
  cr_assert_eq(snap_renew_keys(st, NULL, unit, 1, NULL, NULL, NULL, &pr), SNAP_EIO);
  cr_assert(pr.units == 0 && pr.bodies == 2, "units %llu bodies %llu",
            (unsigned long long)pr.units, (unsigned long long)pr.bodies);
  snap_store_close(st);
  st = open_store(cfg, o);
  free(stored(st, "u", 2, &old_len, &gen));
  cr_assert_eq(gen, 2u);
  /* The old body of seq 1 restored from a copy (a body is bound to its seq). */
  snap_raw_row row = {"u", 1, 1000, old, old_len, -1};
  cr_assert_eq(snap_store_put_raw(st, &row, 1), SNAP_OK);
  cr_assert_eq(load_seq(st, "u", 2), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(load_seq(st, "u", 1), SNAP_OK, "the old generation still opens: %s",
               snap_error_message());
  cr_assert_eq(snap_save(st, "u", 3, SNAP_FORMAT_JSON, "{\"v\":3}", 7, NULL, NULL), SNAP_OK);
  free(stored(st, "u", 3, &old_len, &gen));
  cr_assert_eq(gen, 2u, "a save takes the newest generation");

  /* A master key rotation in between moves both generations. */
  snap_keyring *kr12 = keyring(1, 2);
  snap_options *o12 = envelope_under(kr12);
  snap_rewrap_progress rw;
  cr_assert_eq(snap_rewrap(st, o12, NULL, NULL, NULL, &rw), SNAP_OK, "%s", snap_error_message());
  cr_assert(rw.rewrapped == 1 && rw.changed == 0, "rewrapped %llu", (unsigned long long)rw.rewrapped);
  snap_store_close(st);
  snap_keyring *kr2 = keyring(2, 2);
  snap_options *o2 = envelope_under(kr2);
  st = open_store(cfg, o2);
  cr_assert_eq(load_seq(st, "u", 1), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(load_seq(st, "u", 3), SNAP_OK, "%s", snap_error_message());

  /* The rerun finishes the unit: the copy of the old body is rewritten,
   * no third generation, the old key is dropped. */
  fail_cut = false;
  cr_assert_eq(snap_renew_keys(st, NULL, unit, 1, NULL, NULL, NULL, &pr), SNAP_OK, "%s",
               snap_error_message());
  cr_assert(pr.units == 1 && pr.bodies == 1, "units %llu bodies %llu",
            (unsigned long long)pr.units, (unsigned long long)pr.bodies);
  for (int64_t seq = 1; seq <= 3; seq++) {
    free(stored(st, "u", seq, &old_len, &gen));
    cr_assert_eq(gen, 2u, "seq %lld", (long long)seq);
    cr_assert_eq(load_seq(st, "u", seq), SNAP_OK, "%s", snap_error_message());
  }
  cr_assert_eq(snap_store_put_raw(st, &row, 1), SNAP_OK);
  snap_store_close(st);
  st = open_store(cfg, o2);
  cr_assert_eq(load_seq(st, "u", 1), SNAP_ENOKEY, "the old key is gone");
  cr_assert(strstr(snap_error_message(), "generation 1 was deleted"), "%s", snap_error_message());
  snap_store_close(st);
  free(old);
  snap_options_free(o);
  snap_options_free(o12);
  snap_options_free(o2);
  snap_keyring_free(kr1);
  snap_keyring_free(kr12);
  snap_keyring_free(kr2);
  st_rmtree(dir);
  free(dir);
}
