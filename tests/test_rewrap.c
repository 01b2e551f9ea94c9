/* Rewrapping beside changes to the key table: a record changed between the
 * rewrap reading it and writing it back (here: forgotten) is reported by the
 * key table as changed, one deleted outright as gone, and both are left as
 * they stand. The sqlite table is wrapped so that the changes land exactly
 * between the read and the conditional write. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapstore.h"
#include "snap/envelope.h"
#include "snap/sys/backend.h"
#include "store_util.h"

#define CTX "acme/test/rewrap/v1"

static char *db_path;
static int outcome_of[3]; /* "changed", "gone", "kept" */
static const char *const names[3] = {"changed", "gone", "kept"};

/* key_rewrap of the sqlite table, after a forget of "changed" and the
 * deletion of the record of "gone", recording what it says of each. */
static int racing_rewrap(void *self, snap_backend_key_swap *sw, size_t n) {
  const snap_backend *real = snap_backend_sqlite();
  cr_assert_geq(real->key_forget(self, "changed", NULL), 0);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  cr_assert_eq(sqlite3_exec(db, "DELETE FROM \"snapshots_keys\" WHERE unit = 'gone'", NULL, NULL,
                            NULL),
               SQLITE_OK, "%s", sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_changes(db), 1);
  sqlite3_close(db);
  int rc = real->key_rewrap(self, sw, n);
  for (size_t i = 0; i < n; i++)
    for (int u = 0; u < 3; u++)
      if (strcmp(sw[i].unit, names[u]) == 0)
        outcome_of[u] = sw[i].outcome;
  return rc;
}

static snap_options *envelope_under(snap_keyring *kr) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, CTX), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  return o;
}

Test(rewrap, a_changed_record_and_a_missing_one_are_told_apart_and_left_alone) {
  char *dir = st_tmpdir();
  db_path = st_join(dir, "data.db");
  char cfg[1024];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\"}", db_path);
  snap_backend racing = *snap_backend_sqlite();
  racing.key_rewrap = racing_rewrap;
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, &racing, cfg), SNAP_OK, "%s", snap_error_message());
  snap_keyring *kr = NULL;
  uint8_t key[SNAP_KEY_BYTES];
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  memset(key, 0x51, sizeof key);
  cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  snap_options *o = envelope_under(kr);
  for (int u = 0; u < 3; u++)
    cr_assert_eq(snap_save(st, names[u], 1, SNAP_FORMAT_JSON, "{}", 2, o, NULL), SNAP_OK, "%s",
                 snap_error_message());
  /* Master key 2 active: every record is to rewrap. */
  memset(key, 0x52, sizeof key);
  cr_assert_eq(snap_keyring_add(kr, 2, key, sizeof key), SNAP_OK);
  cr_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
  for (int u = 0; u < 3; u++)
    outcome_of[u] = -1;
  snap_rewrap_progress pr;
  cr_assert_eq(snap_rewrap(st, o, NULL, NULL, NULL, &pr), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(outcome_of[0], SNAP_SWAP_CHANGED, "a forgotten record is changed: %d",
               outcome_of[0]);
  cr_assert_eq(outcome_of[1], SNAP_SWAP_GONE, "a deleted record is gone: %d", outcome_of[1]);
  cr_assert_eq(outcome_of[2], SNAP_SWAP_DONE, "%d", outcome_of[2]);
  cr_assert(pr.seen == 3 && pr.rewrapped == 1 && pr.changed == 2, "seen %llu rewrapped %llu",
            (unsigned long long)pr.seen, (unsigned long long)pr.rewrapped);
  /* Neither was written back: the tombstone stands, the deleted record
   * stays deleted, and the rewrapped key still opens its body (in a store
   * opened afresh: this one still caches the keys it saved with). */
  snap_store_close(st);
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "kept", o, &s), SNAP_OK, "%s", snap_error_message());
  snap_snapshot_free(s);
  s = NULL;
  cr_assert_eq(snap_load_latest(st, "changed", o, &s), SNAP_ENOKEY, "%s", snap_error_message());
  cr_assert(strstr(snap_error_message(), "was forgotten"), "%s", snap_error_message());
  cr_assert_eq(snap_load_latest(st, "gone", o, &s), SNAP_ENOKEY, "%s", snap_error_message());
  cr_assert(strstr(snap_error_message(), "has no data key"), "%s", snap_error_message());
  cr_assert_null(s);
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(db_path);
  free(dir);
}
