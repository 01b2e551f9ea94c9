/* Conformance cases for options and capabilities (what a backend cannot
 * apply is reported, required options fail the save), invalid input and
 * configuration, batches, prepared saves and the JSON views. */
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
/* Options and capabilities                                                  */
/* ------------------------------------------------------------------------ */

/* Saves `state` as rows 1..n of `pid`, row i written with writers[i] and
 * reporting stages want[i]; then every row loads back with `reader`. */
static void rows_round_trip(const cf_backend *bc, fx *f, const char *pid, const char *state,
                            const snap_options *const *writers, const unsigned *want, int n,
                            const snap_options *reader) {
  size_t len = strlen(state);
  for (int i = 0; i < n; i++) {
    snap_meta m;
    cf_assert_eq(snap_save(f->st, pid, i + 1, SNAP_FORMAT_JSON, state, len, writers[i], &m),
                 SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    cf_assert_eq(m.stages, want[i], "[%s] row %d stages %#x", bc->name, i + 1, m.stages);
  }
  for (int i = 0; i < n; i++) {
    snap_snapshot *s = NULL;
    snap_criteria c = fx_crit(i + 1, i + 1, ANY_TS);
    cf_assert_eq(snap_load(f->st, pid, &c, reader, &s), SNAP_OK, "[%s] row %d: %s", bc->name,
                 i + 1, snap_error_message());
    cf_assert_not_null(s, "[%s] row %d", bc->name, i + 1);
    cf_assert_eq(s->len, len, "[%s] row %d", bc->name, i + 1);
    cf_assert(memcmp(s->data, state, len) == 0, "[%s] row %d", bc->name, i + 1);
    snap_snapshot_free(s);
  }
}

void cf_case_mixed_plain_compressed_and_encrypted_rows_all_load(const cf_backend *bc) {
  snap_keyring *kr = fx_keyring(0x11);
  snap_options *zip = fx_options(6, NULL), *enc = fx_options(1, kr), *reader = fx_options(0, kr);
  cf_assert_eq(snap_options_set_accept_unauthenticated(reader, true), SNAP_OK);
  char *state = fx_ledger(8000, "mixed");
  const snap_options *writers[3] = {NULL, zip, enc};

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  unsigned caps = snap_store_capabilities(f.st);
  unsigned want[3] = {0};
  for (int i = 0; i < 3; i++) {
    if (i >= 1 && (caps & SNAP_CAP_COMPRESSION))
      want[i] |= SNAP_STAGE_COMPRESSED;
    if (i == 2 && (caps & SNAP_CAP_ENCRYPTION))
      want[i] |= SNAP_STAGE_ENCRYPTED;
  }
  rows_round_trip(bc, &f, "mix", state, writers, want, 3, reader);
  fx_close(&f);
  free(state);
  snap_options_free(zip);
  snap_options_free(enc);
  snap_options_free(reader);
  snap_keyring_free(kr);
}

/* zstd bodies (frame version 2) beside zlib and plain ones: every row loads
 * and reports the stages it went through. */
void cf_case_zstd_rows_load_beside_zlib_and_plain_ones(const cf_backend *bc) {
  snap_keyring *kr = fx_keyring(0x12);
  snap_options *zip = fx_options(1, NULL), *zs = fx_options(0, NULL), *zs_enc = fx_options(0, kr);
  cf_assert_eq(snap_options_set_compression(zs, SNAP_COMPRESSION_ZSTD, 3), SNAP_OK);
  cf_assert_eq(snap_options_set_compression(zs_enc, SNAP_COMPRESSION_ZSTD, -1), SNAP_OK);
  snap_options *reader = fx_options(0, kr);
  cf_assert_eq(snap_options_set_accept_unauthenticated(reader, true), SNAP_OK);
  char *state = fx_ledger(8000, "zstd");
  const snap_options *writers[4] = {NULL, zip, zs, zs_enc};
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  unsigned caps = snap_store_capabilities(f.st);
  unsigned want[4] = {0};
  for (int i = 1; i < 4; i++)
    want[i] = (caps & SNAP_CAP_COMPRESSION) ? SNAP_STAGE_COMPRESSED : 0;
  if (caps & SNAP_CAP_ENCRYPTION)
    want[3] |= SNAP_STAGE_ENCRYPTED;
  rows_round_trip(bc, &f, "zs", state, writers, want, 4, reader);
  fx_close(&f);
  free(state);
  snap_options_free(zip);
  snap_options_free(zs);
  snap_options_free(zs_enc);
  snap_options_free(reader);
  snap_keyring_free(kr);
}

void cf_case_unsupported_options_are_ignored_and_reported(const cf_backend *bc) {
  snap_keyring *kr = fx_keyring(0x22);
  snap_options *o = fx_options(1, kr);
  char *state = fx_ledger(4000, "opts");

  fx f;
  fx_open(&f, bc, "");
  unsigned caps = snap_store_capabilities(f.st);
  snap_meta m;
  cf_assert_eq(snap_save(f.st, "o", 1, SNAP_FORMAT_JSON, state, strlen(state), o, &m), SNAP_OK,
               "[%s] %s", bc->name, snap_error_message());
  unsigned unsupported = (SNAP_OPT_ENCRYPTION | SNAP_OPT_COMPRESSION) & ~caps;
  cf_assert_eq(m.ignored, unsupported, "[%s] ignored %#x", bc->name, m.ignored);
  cf_assert_eq((m.stages & SNAP_STAGE_ENCRYPTED) != 0, (caps & SNAP_CAP_ENCRYPTION) != 0,
               "[%s] stages %#x", bc->name, m.stages);
  /* The same keyed options read it back, whatever was applied. */
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load_latest(f.st, "o", o, &s), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_str_eq((const char *)s->data, state, "[%s]", bc->name);
  cf_assert_eq(s->stages, m.stages, "[%s]", bc->name);
  snap_snapshot_free(s);
  fx_close(&f);
  free(state);
  snap_options_free(o);
  snap_keyring_free(kr);
}

void cf_case_required_options_the_backend_lacks_fail_the_save(const cf_backend *bc) {
  snap_keyring *kr = fx_keyring(0x33);
  snap_options *o = fx_options(0, kr);
  cf_assert_eq(snap_options_set_required(o, SNAP_OPT_ENCRYPTION), SNAP_OK);

  fx f;
  fx_open(&f, bc, "");
  int rc = snap_save(f.st, "r", 1, SNAP_FORMAT_JSON, "1", 1, o, NULL);
  if (snap_store_capabilities(f.st) & SNAP_CAP_ENCRYPTION) {
    cf_assert_eq(rc, SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  } else {
    cf_assert_eq(rc, SNAP_EUNSUPPORTED, "[%s] %d", bc->name, rc);
    fx_expect_none(&f, fx_load(&f, "r", SNAP_CRITERIA_LATEST), "nothing stored");
  }
  fx_close(&f);
  snap_options_free(o);
  snap_keyring_free(kr);
}

void cf_case_a_wrong_key_is_an_error_never_a_fallback(const cf_backend *bc) {
  snap_keyring *right = fx_keyring(0x44), *wrong = fx_keyring(0x55);
  snap_options *w = fx_options(0, right), *r = fx_options(0, wrong);

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  cf_assert_eq(snap_save(f.st, "w", 1, SNAP_FORMAT_JSON, "1", 1, w, NULL), SNAP_OK);
  cf_assert_eq(snap_save(f.st, "w", 2, SNAP_FORMAT_JSON, "2", 1, w, NULL), SNAP_OK);
  snap_snapshot *s = (snap_snapshot *)1;
  int rc = snap_load_latest(f.st, "w", r, &s);
  if (snap_store_capabilities(f.st) & SNAP_CAP_ENCRYPTION) {
    cf_assert_eq(rc, SNAP_EAUTH, "[%s] %d %s", bc->name, rc, snap_error_message());
    cf_assert_null(s, "[%s]", bc->name);
    cf_assert_eq(snap_load_latest(f.st, "w", w, &s), SNAP_OK, "[%s]", bc->name);
    cf_assert_eq(s->seq, 2, "[%s]", bc->name);
  } else {
    /* Nothing was encrypted, so a keyed reader reads the plaintext bodies. */
    cf_assert_eq(rc, SNAP_OK, "[%s] %s", bc->name, snap_error_message());
    cf_assert_eq(s->seq, 2, "[%s]", bc->name);
  }
  snap_snapshot_free(s);
  fx_close(&f);
  snap_options_free(w);
  snap_options_free(r);
  snap_keyring_free(right);
  snap_keyring_free(wrong);
}

void cf_case_store_defaults_and_resolver_layer_under_call_options(const cf_backend *bc) {
  snap_options *def = fx_options(1, NULL), *call = fx_options(0, NULL);
  cf_assert_eq(snap_options_set_compression(call, SNAP_COMPRESSION_NONE, 0), SNAP_OK);
  char *state = fx_ledger(4000, "layers");

  fx f;
  fx_open(&f, bc, "");
  bool zips = (snap_store_capabilities(f.st) & SNAP_CAP_COMPRESSION) != 0;
  cf_assert_eq(snap_store_set_default_options(f.st, def), SNAP_OK);
  snap_meta m;
  cf_assert_eq(snap_save(f.st, "d", 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m), SNAP_OK);
  cf_assert_eq((m.stages & SNAP_STAGE_COMPRESSED) != 0, zips, "[%s] default", bc->name);
  cf_assert_eq(m.ignored, zips ? 0u : SNAP_OPT_COMPRESSION, "[%s]", bc->name);
  cf_assert_eq(snap_save(f.st, "d", 2, SNAP_FORMAT_JSON, state, strlen(state), call, &m), SNAP_OK);
  cf_assert_eq(m.stages, 0u, "[%s] the call overrides the default", bc->name);
  cf_assert_eq(snap_store_set_default_options(f.st, NULL), SNAP_OK);
  cf_assert_eq(snap_save(f.st, "d", 3, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m), SNAP_OK);
  cf_assert_eq(m.stages, 0u, "[%s] defaults cleared", bc->name);
  fx_close(&f);
  /* Configured compression is the bottom layer. */
  fx_open(&f, bc, "\"compression\": \"zlib\", \"compression_level\": 1");
  cf_assert_eq(snap_save(f.st, "d", 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m), SNAP_OK);
  cf_assert_eq((m.stages & SNAP_STAGE_COMPRESSED) != 0, zips, "[%s] configured", bc->name);
  fx_close(&f);
  free(state);
  snap_options_free(def);
  snap_options_free(call);
}

/* ------------------------------------------------------------------------ */
/* Invalid input                                                             */
/* ------------------------------------------------------------------------ */

void cf_case_invalid_input_is_refused_and_stores_nothing(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "");
  snap_store *st = f.st;
  cf_assert_eq(snap_save(st, "", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
               "[%s] empty pid", bc->name);
  cf_assert_eq(snap_save(st, "bad\xff\xfe", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
               "[%s] invalid UTF-8", bc->name);
  cf_assert_eq(snap_save(st, NULL, 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
               "[%s] NULL pid", bc->name);
  cf_assert_eq(snap_save(st, "x", -1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
               "[%s] negative seq", bc->name);
  cf_assert(strstr(snap_error_message(), "-1") != NULL, "[%s] %s", bc->name, snap_error_message());
  cf_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_JSON, "{\"a\":", 5, NULL, NULL), SNAP_EFORMAT,
               "[%s] malformed JSON", bc->name);
  cf_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_JSON, "1 2", 3, NULL, NULL), SNAP_EFORMAT,
               "[%s] trailing JSON", bc->name);
  const uint8_t bad_mp[] = {0x92, 0x01}; /* an array of 2 with one element */
  cf_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_MSGPACK, bad_mp, 2, NULL, NULL), SNAP_EFORMAT,
               "[%s] truncated msgpack", bc->name);
  cf_assert_eq(snap_save(st, "x", 1, SNAP_FORMAT_JSON, NULL, 1, NULL, NULL), SNAP_EINVAL,
               "[%s] NULL state", bc->name);
  cf_assert_eq(snap_save(st, "x", 1, (snap_format)7, "1", 1, NULL, NULL), SNAP_EINVAL,
               "[%s] unknown format", bc->name);
  cf_assert_eq(snap_save_at(st, "x", 1, -5, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
               "[%s] negative timestamp", bc->name);
  cf_assert_eq(snap_save(NULL, "x", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_EINVAL,
               "[%s] NULL store", bc->name);
  cf_assert_eq(snap_save_json(st, "x", 1, NULL, NULL, NULL), SNAP_EINVAL, "[%s]", bc->name);
  snap_snapshot *s = (snap_snapshot *)1;
  cf_assert_eq(snap_load_latest(st, "x", NULL, &s), SNAP_OK, "[%s]", bc->name);
  fx_expect_none(&f, s, "nothing stored by invalid saves");
  cf_assert_eq(snap_load_latest(st, "", NULL, &s), SNAP_EINVAL, "[%s]", bc->name);
  cf_assert_eq(snap_load_latest(st, "x", NULL, NULL), SNAP_EINVAL, "[%s]", bc->name);
  cf_assert_eq(snap_load(st, "x", NULL, NULL, &s), SNAP_EINVAL, "[%s]", bc->name);
  cf_assert_eq(snap_delete(st, NULL, 1), SNAP_EINVAL, "[%s]", bc->name);
  cf_assert_eq(snap_delete_one(st, "x", -1), SNAP_EINVAL, "[%s]", bc->name);
  cf_assert_eq(snap_delete_matching(st, "x", NULL), SNAP_EINVAL, "[%s]", bc->name);
  fx_close(&f);
}

static void expect_config_error(const cf_backend *bc, const char *dir, const char *keys,
                                const char *named) {
  snap_store *st = (snap_store *)1;
  int rc = fx_try_open(bc, dir, keys, &st);
  cf_assert_eq(rc, SNAP_ECONFIG, "[%s] config {%s}: %d", bc->name, keys, rc);
  cf_assert_null(st, "[%s]", bc->name);
  cf_assert(strstr(snap_error_message(), named) != NULL, "[%s] config {%s}: message '%s'", bc->name,
            keys, snap_error_message());
}

void cf_case_bad_configuration_names_the_key(const cf_backend *bc) {
  char *dir = st_tmpdir();
  expect_config_error(bc, dir, "\"kepe\": 3", "kepe");
  expect_config_error(bc, dir, "\"keep\": \"3\"", "keep");
  expect_config_error(bc, dir, "\"keep\": -1", "keep");
  expect_config_error(bc, dir, "\"keep\": 1.5", "keep");
  expect_config_error(bc, dir, "\"max_load_attempts\": 0", "max_load_attempts");
  expect_config_error(bc, dir, "\"compression\": \"lz4\"", "compression");
  expect_config_error(bc, dir, "\"compression\": \"zlib\", \"compression_level\": 10",
                      "compression_level");
  expect_config_error(bc, dir, "\"compression_min_size\": -4", "compression_min_size");
  expect_config_error(bc, dir, "\"max_stored_size\": true", "max_stored_size");
  expect_config_error(bc, dir, "\"max_decoded_size\": null", "max_decoded_size");
  snap_store *st = NULL;
  cf_assert_eq(snap_store_open_backend(&st, bc->backend(), "[1]"), SNAP_ECONFIG, "[%s]", bc->name);
  cf_assert_eq(snap_store_open_backend(&st, bc->backend(), "{\"keep\": "), SNAP_ECONFIG, "[%s]",
               bc->name);
  st_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------------------------------ */
/* Batches, prepared saves, JSON views                                       */
/* ------------------------------------------------------------------------ */

void cf_case_batch_rows_succeed_or_fail_on_their_own(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  snap_save_req reqs[4] = {
      {"b1", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "1", 1, NULL},
      {"", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "2", 1, NULL},
      {"b2", 1, 777, SNAP_FORMAT_JSON, "{", 1, NULL},
      {"b2", 2, 778, SNAP_FORMAT_JSON, "[4]", 3, NULL},
  };
  int status[4];
  snap_meta meta[4];
  int rc = snap_save_batch(f.st, reqs, 4, status, meta);
  cf_assert_eq(rc, SNAP_EINVAL, "[%s] the first failure", bc->name);
  cf_assert_eq(status[0], SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(status[1], SNAP_EINVAL, "[%s]", bc->name);
  cf_assert_eq(status[2], SNAP_EFORMAT, "[%s]", bc->name);
  cf_assert_eq(status[3], SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(meta[3].timestamp, 778, "[%s]", bc->name);
  snap_snapshot *s = fx_load(&f, "b2", SNAP_CRITERIA_LATEST);
  cf_assert_eq(s->seq, 2, "[%s]", bc->name);
  cf_assert_str_eq((const char *)s->data, "[4]", "[%s]", bc->name);
  snap_snapshot_free(s);
  s = fx_load(&f, "b1", SNAP_CRITERIA_LATEST);
  cf_assert_not_null(s, "[%s]", bc->name);
  snap_snapshot_free(s);
  fx_close(&f);
}

void cf_case_prepared_saves_commit_together(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 2");
  snap_prepared *p[5];
  for (int i = 0; i < 5; i++) {
    char state[8];
    snprintf(state, sizeof state, "%d", i);
    snap_save_req r = {"prep",        i,   SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state,
                       strlen(state), NULL};
    cf_assert_eq(snap_save_prepare(f.st, &r, &p[i]), SNAP_OK, "[%s]", bc->name);
  }
  int status[5];
  snap_meta meta[5];
  cf_assert_eq(snap_save_commit(f.st, p, 5, status, meta), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  for (int i = 0; i < 5; i++) {
    cf_assert_eq(status[i], SNAP_OK, "[%s]", bc->name);
    cf_assert_eq(meta[i].seq, i, "[%s]", bc->name);
    snap_prepared_free(p[i]);
  }
  snap_snapshot *s = fx_load(&f, "prep", SNAP_CRITERIA_LATEST);
  cf_assert_str_eq((const char *)s->data, "4", "[%s]", bc->name);
  snap_snapshot_free(s);
  fx_expect_none(&f, fx_load(&f, "prep", fx_crit(0, 2, ANY_TS)), "retention after commit");
  snap_save_req bad = {"prep", -3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "1", 1, NULL};
  snap_prepared *q = (snap_prepared *)1;
  cf_assert_eq(snap_save_prepare(f.st, &bad, &q), SNAP_EINVAL, "[%s]", bc->name);
  cf_assert_null(q, "[%s]", bc->name);
  fx_close(&f);
}

void cf_case_snapshots_convert_to_json_whatever_their_format(const cf_backend *bc) {
  /* {"a": [1, -2, 1.5, true, null], "s": "x"} in msgpack */
  const uint8_t mp[] = {0x82, 0xa1, 'a', 0x95, 0x01, 0xfe, 0xcb, 0x3f, 0xf8, 0,  0,
                        0,    0,    0,   0,    0xc3, 0xc0, 0xa1, 's',  0xa1, 'x'};
  const uint8_t bin[] = {0xc4, 0x01, 0x00};
  const uint8_t intkey[] = {0x81, 0x01, 0x02};

  fx f;
  fx_open(&f, bc, "\"keep\": 0");
  cf_assert_eq(snap_save(f.st, "j", 1, SNAP_FORMAT_MSGPACK, mp, sizeof mp, NULL, NULL), SNAP_OK,
               "[%s] %s", bc->name, snap_error_message());
  cf_assert_eq(snap_save(f.st, "j", 2, SNAP_FORMAT_JSON, "{\"b\": [1]}", 10, NULL, NULL), SNAP_OK,
               "[%s]", bc->name);
  cJSON *j = NULL;
  snap_snapshot *s = fx_load(&f, "j", fx_crit(1, 1, ANY_TS));
  cf_assert_eq(snap_snapshot_to_json(s, &j), SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  char *text = cJSON_PrintUnformatted(j);
  cf_assert_str_eq(text, "{\"a\":[1,-2,1.5,true,null],\"s\":\"x\"}", "[%s]", bc->name);
  cJSON_free(text);
  cJSON_Delete(j);
  snap_snapshot_free(s);
  s = fx_load(&f, "j", fx_crit(2, 2, ANY_TS));
  cf_assert_eq(snap_snapshot_to_json(s, &j), SNAP_OK, "[%s]", bc->name);
  cf_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "b")), "[%s]", bc->name);
  cJSON_Delete(j);
  snap_snapshot_free(s);
  cf_assert_eq(snap_save(f.st, "j", 3, SNAP_FORMAT_MSGPACK, bin, sizeof bin, NULL, NULL), SNAP_OK,
               "[%s]", bc->name);
  s = fx_load(&f, "j", fx_crit(3, 3, ANY_TS));
  cf_assert_eq(snap_snapshot_to_json(s, &j), SNAP_EFORMAT, "[%s] bin", bc->name);
  cf_assert_null(j);
  snap_snapshot_free(s);
  cf_assert_eq(snap_save(f.st, "j", 4, SNAP_FORMAT_MSGPACK, intkey, sizeof intkey, NULL, NULL),
               SNAP_OK, "[%s]", bc->name);
  s = fx_load(&f, "j", fx_crit(4, 4, ANY_TS));
  cf_assert_eq(snap_snapshot_to_json(s, &j), SNAP_EFORMAT, "[%s] integer key", bc->name);
  snap_snapshot_free(s);
  cJSON *tree = cJSON_CreateObject();
  cJSON_AddNumberToObject(tree, "n", 5);
  cf_assert_eq(snap_save_json(f.st, "j", 5, tree, NULL, NULL), SNAP_OK, "[%s]", bc->name);
  cJSON_Delete(tree);
  s = fx_load(&f, "j", SNAP_CRITERIA_LATEST);
  cf_assert_str_eq((const char *)s->data, "{\"n\":5}", "[%s]", bc->name);
  snap_snapshot_free(s);
  fx_close(&f);
}
