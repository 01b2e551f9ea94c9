/* Envelope keys (backend ABI version 4, key_* slots and dataset): bodies
 * sealed with a data key per shred unit load; forgetting a unit spread over
 * many pids (and, on a sharded backend, over every shard) deletes its key and
 * every snapshot of it and says so, and a body of it put back afterwards is
 * SNAP_ENOKEY; rewrapping moves every key to the active master key so that
 * the old one can be retired. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/admin.h"
#include "snap/envelope.h"
#include "snap/store.h"

#define PREFIX_UNITS "\"keep\": 0, \"envelope\": {\"unit\": \"prefix\", \"separator\": \":\"}"

/* Whether the backend keeps data keys; when not, the store says so
 * (SNAP_EUNSUPPORTED) and the case is skipped. */
static bool has_keys(const cf_backend *bc, fx *f) {
  if (!cf_needs_abi(bc, 4, "envelope keys (key_* slots)"))
    return false;
  if (bc->backend()->key_get != NULL)
    return true;
  snap_forget_report rep;
  cf_assert_eq(snap_forget(f->st, "u", &rep), SNAP_EUNSUPPORTED, "[%s] %s", bc->name,
               snap_error_message());
  cf_skip(bc, "the backend leaves the key_* slots (ABI version 4) NULL: no envelope keys");
  return false;
}

/* A keyring of versions 1 (filled with `v1`, when not 0) and 2 (`v2`, when
 * not 0), `active` active. */
static snap_keyring *ring(uint8_t v1, uint8_t v2, uint32_t active) {
  snap_keyring *kr = NULL;
  cf_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  for (uint32_t v = 1; v <= 2; v++) {
    uint8_t fill = v == 1 ? v1 : v2;
    if (fill == 0)
      continue;
    memset(key, fill, sizeof key);
    cf_assert_eq(snap_keyring_add(kr, v, key, sizeof key), SNAP_OK);
  }
  cf_assert_eq(snap_keyring_set_active(kr, active), SNAP_OK);
  return kr;
}

/* Envelope mode over `kr` as the store's defaults; the options to free. */
static snap_options *use_envelope(fx *f, snap_keyring *kr) {
  snap_options *o = fx_options(1, kr);
  cf_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  cf_assert_eq(snap_store_set_default_options(f->st, o), SNAP_OK);
  return o;
}

static void save_state(fx *f, const char *pid, int64_t seq, const char *state) {
  cf_assert_eq(snap_save(f->st, pid, seq, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
               SNAP_OK, "[%s] save %s: %s", f->bc->name, pid, snap_error_message());
}

/* Expects `pid`'s newest snapshot to be `state` (sealed when `sealed`), or
 * none when `state` is NULL. */
static void expect_state(fx *f, const char *pid, const char *state, bool sealed) {
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load_latest(f->st, pid, NULL, &s), SNAP_OK, "[%s] load %s: %s", f->bc->name,
               pid, snap_error_message());
  if (state == NULL) {
    cf_assert_null(s, "[%s] %s has no snapshot", f->bc->name, pid);
    return;
  }
  cf_assert_not_null(s, "[%s] %s has a snapshot", f->bc->name, pid);
  cf_assert(s->len == strlen(state) && memcmp(s->data, state, s->len) == 0, "[%s] %s",
            f->bc->name, pid);
  cf_assert_eq((s->stages & SNAP_STAGE_ENCRYPTED) != 0, sealed, "[%s] %s stages %#x",
               f->bc->name, pid, s->stages);
  snap_snapshot_free(s);
}

/* The stored body of (pid, 1), copied. */
static uint8_t *stored_body(fx *f, const char *pid, size_t *len) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f->st, pid, NULL, 0, 4, true, &page), SNAP_OK, "[%s] %s",
               f->bc->name, snap_error_message());
  cf_assert_eq(page.n, 1u, "[%s] %s", f->bc->name, pid);
  *len = page.entries[0].stored_len;
  uint8_t *copy = malloc(*len);
  memcpy(copy, page.entries[0].body, *len);
  snap_entry_page_dispose(&page);
  return copy;
}

void cf_case_a_forgotten_unit_loses_its_key_and_its_snapshots_on_every_shard(
    const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, PREFIX_UNITS);
  if (!has_keys(bc, &f)) {
    fx_close(&f);
    return;
  }
  /* A backend that does not encrypt stores envelope saves unsealed (the
   * option is ignored); forgetting still deletes the unit's snapshots. */
  const bool sealed = snap_store_capabilities(f.st) & SNAP_CAP_ENCRYPTION;
  snap_keyring *kr = ring(0x21, 0, 1);
  snap_options *o = use_envelope(&f, kr);
  /* The unit "acme" spans the pid "acme" and twenty "acme:<n>" pids: on a
   * sharded backend they live on every shard. "acme2:1" is another unit. */
  char pid[32];
  save_state(&f, "acme", 1, "{\"tenant\":true}");
  for (int i = 0; i < 20; i++) {
    snprintf(pid, sizeof pid, "acme:%d", i);
    save_state(&f, pid, 1, "{\"order\":1}");
  }
  save_state(&f, "acme2:1", 1, "{\"other\":1}");
  save_state(&f, "beta:1", 1, "{\"beta\":1}");
  expect_state(&f, "acme:7", "{\"order\":1}", sealed);
  size_t left_len = 0;
  uint8_t *left = stored_body(&f, "acme:3", &left_len);
  snap_forget_report rep;
  cf_assert_eq(snap_forget(f.st, "acme:3", &rep), SNAP_EINVAL, "[%s] a pid is not a unit",
               bc->name);
  cf_assert_eq(snap_forget(f.st, "acme", &rep), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_eq(rep.pids, 21u, "[%s] %llu pids", bc->name, (unsigned long long)rep.pids);
  cf_assert_eq(rep.keys, sealed ? 1u : 0u, "[%s]", bc->name);
  cf_assert_eq(rep.generation, sealed ? 1u : 0u, "[%s]", bc->name);
  if (bc->persistent)
    fx_reopen(&f, PREFIX_UNITS);
  cf_assert_eq(snap_store_set_default_options(f.st, o), SNAP_OK);
  expect_state(&f, "acme", NULL, false);
  for (int i = 0; i < 20; i++) {
    snprintf(pid, sizeof pid, "acme:%d", i);
    expect_state(&f, pid, NULL, false);
  }
  expect_state(&f, "acme2:1", "{\"other\":1}", sealed);
  expect_state(&f, "beta:1", "{\"beta\":1}", sealed);
  /* Forgetting again removes nothing more, and says so. */
  cf_assert_eq(snap_forget(f.st, "acme", &rep), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert(rep.keys == 0 && rep.pids == 0, "[%s] %u keys, %llu pids", bc->name, rep.keys,
            (unsigned long long)rep.pids);
  /* A body of the unit from before (a copy, a backup) never opens again. */
  snap_raw_row row = {"acme:3", 1, 1000, left, left_len, -1};
  cf_assert_eq(snap_store_put_raw(f.st, &row, 1), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(f.st, "acme:3", NULL, &s);
  if (sealed) {
    cf_assert_eq(rc, SNAP_ENOKEY, "[%s] %d %s", bc->name, rc, snap_error_message());
    cf_assert(strstr(snap_error_message(), "'acme' was forgotten"), "[%s] %s", bc->name,
              snap_error_message());
  } else {
    cf_assert_eq(rc, SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  }
  snap_snapshot_free(s);
  /* The unit can start again, under a new key. */
  save_state(&f, "acme:4", 2, "{\"again\":1}");
  expect_state(&f, "acme:4", "{\"again\":1}", sealed);
  cf_assert_eq(snap_forget(f.st, "acme", &rep), SNAP_OK);
  cf_assert_eq(rep.generation, sealed ? 2u : 0u, "[%s]", bc->name);
  free(left);
  snap_options_free(o);
  snap_keyring_free(kr);
  fx_close(&f);
}

/* Opens the case's store when the backend keeps data keys and seals bodies
 * with them; otherwise skips the case (the store closed). */
static bool open_sealing(fx *f, const cf_backend *bc, const char *store_keys) {
  fx_open(f, bc, store_keys);
  if (!has_keys(bc, f)) {
    fx_close(f);
    return false;
  }
  if (!(snap_store_capabilities(f->st) & SNAP_CAP_ENCRYPTION)) {
    cf_skip(bc, "the backend does not encrypt: no body is sealed with a data key");
    fx_close(f);
    return false;
  }
  return true;
}

static int count_pages(void *ud, const snap_rewrap_progress *p) {
  (void)p;
  (*(int *)ud)++;
  return SNAP_OK;
}

void cf_case_rewrap_moves_every_data_key_to_the_active_master_key(const cf_backend *bc) {
  fx f;
  if (!open_sealing(&f, bc, "\"keep\": 0"))
    return;
  enum { UNITS = 150 };
  snap_keyring *old = ring(0x31, 0, 1);
  snap_options *o = use_envelope(&f, old);
  char pid[32];
  for (int i = 0; i < UNITS; i++) {
    snprintf(pid, sizeof pid, "unit-%03d", i);
    save_state(&f, pid, 1, "{\"n\":1}");
  }
  snap_forget_report rep;
  cf_assert_eq(snap_forget(f.st, "unit-007", &rep), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  snap_options_free(o);
  /* Rotation: version 2 active, version 1 still there to unwrap with. */
  snap_keyring *both = ring(0x31, 0x32, 2);
  o = use_envelope(&f, both);
  snap_rewrap_progress pr;
  int pages = 0;
  cf_assert_eq(snap_rewrap(f.st, NULL, NULL, count_pages, &pages, &pr), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert(pr.seen == UNITS && pr.rewrapped == UNITS - 1 && pr.forgotten == 1 &&
                pr.current == 0 && pr.changed == 0,
            "[%s] seen %llu rewrapped %llu forgotten %llu", bc->name,
            (unsigned long long)pr.seen, (unsigned long long)pr.rewrapped,
            (unsigned long long)pr.forgotten);
  cf_assert(pages >= 1, "[%s] progress after each page", bc->name);
  /* A rerun (a resumed one, too) finds nothing left to do. */
  cf_assert_eq(snap_rewrap(f.st, NULL, "unit-100", NULL, NULL, &pr), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert(pr.seen == UNITS - 101 && pr.current == UNITS - 101 && pr.rewrapped == 0,
            "[%s] seen %llu current %llu", bc->name, (unsigned long long)pr.seen,
            (unsigned long long)pr.current);
  snap_options_free(o);
  /* Version 1 retired: every body still loads. */
  if (bc->persistent)
    fx_reopen(&f, "\"keep\": 0");
  snap_keyring *new_only = ring(0, 0x32, 2);
  o = use_envelope(&f, new_only);
  for (int i = 0; i < UNITS; i += 37) {
    snprintf(pid, sizeof pid, "unit-%03d", i);
    expect_state(&f, pid, i == 7 ? NULL : "{\"n\":1}", true);
  }
  expect_state(&f, "unit-149", "{\"n\":1}", true);
  snap_options_free(o);
  /* A wrong master key of the same version never unwraps (a store that
   * forgets everything on closing keeps its unwrapped keys until then). */
  snap_keyring *wrong = ring(0, 0x33, 2);
  if (bc->persistent) {
    fx_reopen(&f, "\"keep\": 0");
    o = use_envelope(&f, wrong);
    snap_snapshot *s = NULL;
    cf_assert_eq(snap_load_latest(f.st, "unit-001", NULL, &s), SNAP_EAUTH, "[%s] %s", bc->name,
                 snap_error_message());
    cf_assert_null(s);
    snap_options_free(o);
  }
  snap_keyring_free(old);
  snap_keyring_free(both);
  snap_keyring_free(new_only);
  snap_keyring_free(wrong);
  fx_close(&f);
}

static int count_units(void *ud, const snap_renew_progress *p) {
  (void)p;
  (*(int *)ud)++;
  return SNAP_OK;
}

/* The data key generation a stored body of (pid, seq) names. */
static uint32_t stored_generation(fx *f, const char *pid, int64_t seq) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f->st, pid, pid, seq - 1, 1, false, &page), SNAP_OK, "[%s] %s",
               f->bc->name, snap_error_message());
  cf_assert_eq(page.n, 1u, "[%s] %s seq %lld", f->bc->name, pid, (long long)seq);
  uint32_t gen = page.entries[0].key_version;
  snap_entry_page_dispose(&page);
  return gen;
}

void cf_case_new_data_keys_move_a_units_bodies_and_delete_the_old_key(const cf_backend *bc) {
  fx f;
  if (!open_sealing(&f, bc, PREFIX_UNITS))
    return;
  if (bc->backend()->key_replace == NULL) {
    const char *u[1] = {"acme"};
    cf_assert_eq(snap_renew_keys(f.st, NULL, u, 1, NULL, NULL, NULL, NULL), SNAP_EUNSUPPORTED);
    cf_skip(bc, "the backend leaves key_replace (ABI version 6) NULL: no new data keys");
    fx_close(&f);
    return;
  }
  snap_keyring *kr = ring(0x41, 0, 1);
  snap_options *o = use_envelope(&f, kr);
  /* The unit "acme" spans "acme" and five "acme:<n>" pids of two snapshots. */
  char pid[32];
  save_state(&f, "acme", 1, "{\"tenant\":true}");
  for (int i = 0; i < 5; i++) {
    snprintf(pid, sizeof pid, "acme:%d", i);
    save_state(&f, pid, 1, "{\"order\":1}");
    save_state(&f, pid, 2, "{\"order\":2}");
  }
  save_state(&f, "beta:1", 1, "{\"beta\":1}");
  size_t old_len = 0;
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cf_assert_eq(snap_store_list(f.st, "acme:3", NULL, 0, 1, true, &page), SNAP_OK);
  old_len = page.entries[0].stored_len;
  uint8_t *old = malloc(old_len);
  memcpy(old, page.entries[0].body, old_len);
  snap_entry_page_dispose(&page);
  cf_assert_eq(stored_generation(&f, "acme:3", 1), 1u, "[%s]", bc->name);

  const char *units[2] = {"acme", "nobody"};
  snap_renew_progress pr;
  int calls = 0;
  cf_assert_eq(snap_renew_keys(f.st, NULL, units, 2, NULL, count_units, &calls, &pr), SNAP_OK,
               "[%s] %s", bc->name, snap_error_message());
  cf_assert(pr.units == 1 && pr.skipped == 1 && pr.bodies == 11 && pr.changed == 0 && calls == 2,
            "[%s] units %llu skipped %llu bodies %llu calls %d", bc->name,
            (unsigned long long)pr.units, (unsigned long long)pr.skipped,
            (unsigned long long)pr.bodies, calls);
  /* Every body of the unit is sealed with generation 2 and loads; "beta"
   * is untouched; a new save uses the new key. */
  if (bc->persistent)
    fx_reopen(&f, PREFIX_UNITS);
  cf_assert_eq(snap_store_set_default_options(f.st, o), SNAP_OK);
  for (int i = 0; i < 5; i++) {
    snprintf(pid, sizeof pid, "acme:%d", i);
    expect_state(&f, pid, "{\"order\":2}", true);
    cf_assert(stored_generation(&f, pid, 1) == 2 && stored_generation(&f, pid, 2) == 2, "[%s] %s",
              bc->name, pid);
  }
  expect_state(&f, "acme", "{\"tenant\":true}", true);
  cf_assert_eq(stored_generation(&f, "beta:1", 1), 1u, "[%s]", bc->name);
  save_state(&f, "acme:9", 1, "{\"new\":1}");
  cf_assert_eq(stored_generation(&f, "acme:9", 1), 2u, "[%s]", bc->name);
  /* The old key is gone: a copy of a body sealed with it never opens again. */
  snap_raw_row row = {"acme:3", 7, 1000, old, old_len, -1};
  cf_assert_eq(snap_store_put_raw(f.st, &row, 1), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(f.st, "acme:3", NULL, &s);
  cf_assert(rc == SNAP_ENOKEY && s == NULL, "[%s] %d %s", bc->name, rc, snap_error_message());
  cf_assert(strstr(snap_error_message(), "generation 1 was deleted"), "[%s] %s", bc->name,
            snap_error_message());
  /* A renewal of every unit renews "beta" and "acme" again (a body it
   * cannot read would stop it: the copy goes first). */
  cf_assert_eq(snap_delete_one(f.st, "acme:3", 7), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_eq(snap_renew_keys(f.st, NULL, NULL, 0, NULL, NULL, NULL, &pr), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert(pr.units == 2 && pr.bodies == 13, "[%s] units %llu bodies %llu", bc->name,
            (unsigned long long)pr.units, (unsigned long long)pr.bodies);
  expect_state(&f, "beta:1", "{\"beta\":1}", true);
  cf_assert_eq(stored_generation(&f, "beta:1", 1), 2u, "[%s]", bc->name);
  /* Forgetting removes every generation. */
  snap_forget_report rep;
  cf_assert_eq(snap_forget(f.st, "acme", &rep), SNAP_OK);
  cf_assert(rep.keys == 1 && rep.generation == 3, "[%s] keys %u generation %u", bc->name,
            rep.keys, rep.generation);
  free(old);
  snap_options_free(o);
  snap_keyring_free(kr);
  fx_close(&f);
}
