/* The golden envelope vectors of tests/data/golden/ (tools/gen_golden.c)
 * through a store: a body sealed with a unit's data key opens only with the
 * key table's wrapped record, so the library's reading of them is checked
 * here, where a key table exists (tests/test_pipeline.c reads the same files
 * with its independent reader). Each body and its record are written past
 * the store into a SQLite database, then loaded with the golden master key. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapstore.h"
#include "snap/sys/backend.h"
#include "store_util.h"

/* Parameters of tools/gen_golden.c and tests/data/golden/MANIFEST.txt. */
#define G_DIR SNAP_TEST_DATA_DIR "/golden/"
#define G_CONTEXT "snapstore/golden/v1"
#define G_PID "golden/pid-\xc3\xa9"
#define G_SEQ 42
#define G_UNIT "golden"
#define G_MANIFEST "bank.Account/3"
#define G_METADATA "origin=golden"

static uint8_t *read_golden(const char *name, size_t *len) {
  char *path = st_join(G_DIR, name);
  uint8_t *data = NULL;
  cr_assert(st_read_file(path, &data, len) && *len > 0, "cannot read %s", path);
  free(path);
  return data;
}

static void exec_bind(sqlite3 *db, const char *sql, const char *text, const uint8_t *blob,
                      size_t blob_len, const char *text2) {
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
  if (blob)
    sqlite3_bind_blob(q, 2, blob, (int)blob_len, SQLITE_STATIC);
  if (text2)
    sqlite3_bind_text(q, 3, text2, -1, SQLITE_STATIC);
  cr_assert_eq(sqlite3_step(q), SQLITE_DONE, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(q);
}

/* Writes `body` as G_PID's only snapshot and `key` as `unit`'s record. */
static void plant(const char *path, const char *body_file, const char *unit, const char *key_file,
                  bool typed) {
  size_t bn, kn;
  uint8_t *body = read_golden(body_file, &bn), *key = read_golden(key_file, &kn);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "DELETE FROM snapshots; DELETE FROM snapshots_keys", NULL, NULL,
                            NULL),
               SQLITE_OK);
  exec_bind(db,
            "INSERT INTO snapshots_keys (unit, generation, master_version, wrapped) "
            "VALUES (?1, 1, 1, ?2)",
            unit, key, kn, NULL);
  exec_bind(db, "INSERT INTO snapshots (pid, seq, ts, body, manifest) VALUES (?1, 42, 0, ?2, ?3)",
            G_PID, body, bn, typed ? G_MANIFEST : NULL);
  sqlite3_close(db);
  free(body);
  free(key);
}

static void load_golden(const char *dir, const char *body_file, const char *unit,
                        const char *key_file, const char *payload_file, snap_format fmt,
                        bool typed) {
  char *path = st_join(dir, "data.db");
  plant(path, body_file, unit, key_file, typed);
  free(path);
  uint8_t master[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < sizeof master; i++)
    master[i] = (uint8_t)i;
  snap_keyring *kr = NULL;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, master, sizeof master), SNAP_OK);
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, G_CONTEXT), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  size_t dn;
  uint8_t *dict_bytes = read_golden("dict.zdict", &dn);
  char cfg[1200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/data.db\"}", dir);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  /* The dictionary the zstd-dict vectors name (its id comes from its bytes). */
  int rc = snap_store_dict_add(st, "golden", dict_bytes, dn, NULL);
  cr_assert(rc == SNAP_OK || rc == SNAP_ECONFLICT, "%s", snap_error_message()); /* once */
  free(dict_bytes);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, G_PID, NULL, &s), SNAP_OK, "%s no longer loads: %s",
               body_file, snap_error_message());
  cr_assert_not_null(s);
  size_t pn;
  uint8_t *p = read_golden(payload_file, &pn);
  cr_assert_eq(s->format, fmt);
  cr_assert_eq(s->len, pn, "%s", body_file);
  cr_assert_eq(memcmp(s->data, p, pn), 0, "%s loads other bytes", body_file);
  cr_assert(s->stages & SNAP_STAGE_ENCRYPTED);
  if (typed) {
    cr_assert_str_eq(s->manifest, G_MANIFEST);
    cr_assert_eq(s->metadata_len, strlen(G_METADATA));
    cr_assert_eq(memcmp(s->metadata, G_METADATA, s->metadata_len), 0);
  } else {
    cr_assert_null(s->manifest);
  }
  snap_snapshot_free(s);
  snap_store_close(st);
  free(p);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(envelope_golden, every_envelope_vector_loads_with_its_wrapped_key) {
  char *dir = st_tmpdir();
  char cfg[1200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/data.db\"}", dir);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK);
  snap_snapshot *none = NULL; /* the first use creates the schema */
  cr_assert_eq(snap_load_latest(st, "nobody", NULL, &none), SNAP_OK, "%s", snap_error_message());
  cr_assert_null(none);
  snap_store_close(st);
  static const char *const combos[] = {"envelope", "zlib-envelope", "zstd-envelope",
                                       "zstd-dict-envelope"};
  char name[64];
  for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++)
    for (int typed = 0; typed < 2; typed++) {
      snprintf(name, sizeof name, "json-%s%s.body", typed ? "typed-" : "", combos[i]);
      load_golden(dir, name, G_PID, "envelope-pid.key", "state.json", SNAP_FORMAT_JSON, typed);
      snprintf(name, sizeof name, "msgpack-%s%s.body", typed ? "typed-" : "", combos[i]);
      load_golden(dir, name, G_PID, "envelope-pid.key", "state.msgpack", SNAP_FORMAT_MSGPACK,
                  typed);
    }
  load_golden(dir, "example-envelope.body", G_UNIT, "example-envelope.key", "example.json",
              SNAP_FORMAT_JSON, false);
  st_rmtree(dir);
  free(dir);
}
