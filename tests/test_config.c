/* The configuration document: every key, its types and ranges, key files and
 * keyrings, and messages that name the offending key by its full path. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#ifdef SNAP_WITH_POSTGRES /* the postgres test: a library built with libpq */
#include "pg_fixture.h"
#endif
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

static char dir[512];

static void make_dir(void) {
  const char *base = getenv("SNAP_TEST_TMP");
  if (!base)
    base = "/tmp";
  mkdir(base, 0700);
  snprintf(dir, sizeof dir, "%s/config-XXXXXX", base);
  cr_assert_not_null(mkdtemp(dir));
}

TestSuite(config, .init = make_dir);

/* Writes a key file of 64 hex digits with the given mode. */
static void key_file_hex(const char *path, mode_t mode, const char *hex) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
  close(fd);
  cr_assert_eq(chmod(path, mode), 0);
}

/* The test key, 00 01 02 ... 1f. */
static void key_file(const char *path, mode_t mode) {
  key_file_hex(path, mode, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
}

/* Opening must fail with `code` and a message containing `needle`. */
static void refused(const char *json, int code, const char *needle) {
  snap_plugin *p = (snap_plugin *)1;
  int rc = snap_plugin_open(&p, json, NULL);
  cr_assert_eq(rc, code, "%s: got %d (%s)", json, rc, snap_error_message());
  cr_assert_null(p);
  cr_assert(strstr(snap_error_message(), needle), "message for %s names '%s': %s", json, needle,
            snap_error_message());
}

static const char *STATE = "{\"holder\":\"Ada Lovelace\",\"balance\":1200}";

/* A state large and repetitive enough that zlib shrinks it (compression is
 * kept only when it does). */
static const char *BIG =
    "{\"holder\":\"Ada Lovelace\",\"entries\":[\"deposit 100\",\"deposit 100\","
    "\"deposit 100\",\"deposit 100\",\"deposit 100\",\"deposit 100\",\"deposit 100\","
    "\"deposit 100\",\"deposit 100\",\"deposit 100\",\"deposit 100\",\"deposit 100\"]}";

/* Opens `json` (with `kr`), saves STATE once, closes: the stages it got. */
static unsigned stages_of_one_save(const char *json, snap_keyring *kr) {
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, json, kr), SNAP_OK, "%s", snap_error_message());
  snap_meta meta;
  cr_assert_eq(
      snap_save(snap_plugin_store(p), "a", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, &meta),
      SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);
  return meta.stages;
}

Test(config, a_minimal_document_opens_a_store_and_an_executor) {
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, "{\"backend\": \"memory\"}", NULL), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_not_null(snap_plugin_store(p));
  cr_assert_str_eq(snap_store_backend_name(snap_plugin_store(p)), "memory");
  cr_assert_not_null(snap_plugin_executor(p));
  cr_assert_not_null(snap_plugin_options(p));
  snap_plugin_close(p);
}

Test(config, executor_false_starts_none) {
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, "{\"backend\": \"memory\", \"executor\": false}", NULL),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_null(snap_plugin_executor(p));
  snap_plugin_close(p);
}

static void saved_cb(void *ud, snap_result *r) { *(int *)ud = r->status; }

Test(config, a_full_document_compresses_and_encrypts_with_a_key_file) {
  char key[600], db[600], json[2048];
  snprintf(key, sizeof key, "%s/snap.key", dir);
  snprintf(db, sizeof db, "%s/state.db", dir);
  key_file(key, 0600);
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\", \"keep\": 2},"
           " \"options\": {\"compression\": \"zlib\", \"compression_level\": 9,"
           " \"compression_min_size\": 0,"
           " \"encryption\": {\"key_file\": \"%s\", \"key_version\": 3,"
           " \"context\": \"acme/test/snapshots/v1\"},"
           " \"max_stored_size\": 1048576, \"max_decoded_size\": 4194304,"
           " \"accept_unauthenticated\": false, \"required\": [\"encryption\", \"compression\"]},"
           " \"executor\": {\"queue_capacity\": 8, \"max_batch\": 4}}",
           db, key);
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  snap_store *st = snap_plugin_store(p);
  snap_meta meta;
  cr_assert_eq(snap_save(st, "acct-1", 1, SNAP_FORMAT_JSON, BIG, strlen(BIG), NULL, &meta), SNAP_OK,
               "%s", snap_error_message());
  cr_assert(meta.stages & SNAP_STAGE_ENCRYPTED, "the defaults came from the document");
  cr_assert(meta.stages & SNAP_STAGE_COMPRESSED);
  int status = 1;
  snap_save_req r = {"acct-1",      2,   SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, STATE,
                     strlen(STATE), NULL};
  cr_assert_eq(snap_executor_save(snap_plugin_executor(p), &r, saved_cb, &status), SNAP_OK);
  snap_plugin_close(p); /* drains the executor */
  cr_assert_eq(status, SNAP_OK);

  /* Reopened with the same document, the latest snapshot decrypts. */
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s;
  cr_assert_eq(snap_load_latest(snap_plugin_store(p), "acct-1", NULL, &s), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, 2);
  cr_assert(s->stages & SNAP_STAGE_ENCRYPTED);
  cr_assert_eq(s->len, strlen(STATE));
  cr_assert_eq(memcmp(s->data, STATE, s->len), 0);
  snap_snapshot_free(s);
  snap_plugin_close(p);

  /* Without the key, the encrypted snapshot is an error, not a silent miss. */
  char nokey[1024];
  snprintf(nokey, sizeof nokey, "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\"}}", db);
  cr_assert_eq(snap_plugin_open(&p, nokey, NULL), SNAP_OK, "%s", snap_error_message());
  int rc = snap_load_latest(snap_plugin_store(p), "acct-1", NULL, &s);
  cr_assert(rc == SNAP_ENOKEY || rc == SNAP_EAUTH, "got %d", rc);
  snap_plugin_close(p);
}

Test(config, a_key_file_readable_by_others_is_refused) {
  char key[600], json[1024];
  snprintf(key, sizeof key, "%s/open.key", dir);
  key_file(key, 0644);
  snprintf(json, sizeof json,
           "{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"%s\","
           " \"context\": \"acme/test/v1\"}}}",
           key);
  refused(json, SNAP_EAUTH, key);
  key_file(key, 0640);
  refused(json, SNAP_EAUTH, "options.encryption.key_file");
  key_file(key, 0400);
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "owner-only is fine: %s",
               snap_error_message());
  snap_plugin_close(p);
}

Test(config, a_missing_key_file_is_refused_naming_it) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": "
           "\"%s/absent.key\", \"context\": \"acme/test/v1\"}}}",
           dir);
  refused(json, SNAP_EIO, "absent.key");
}

Test(config, a_supplied_keyring_encrypts_when_a_context_is_given) {
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t k[32] = {7};
  cr_assert_eq(snap_keyring_add(kr, 2, k, sizeof k), SNAP_OK);
  /* The memory backend does not offer encryption; sqlite does. */
  char json[1024];
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s/kr.db\"},"
           " \"options\": {\"encryption\": {\"context\": \"acme/test/v1\", \"key_version\": 2},"
           " \"required\": [\"encryption\"]}}",
           dir);
  cr_assert(stages_of_one_save(json, kr) & SNAP_STAGE_ENCRYPTED);

  snap_plugin *q = (snap_plugin *)1;
  cr_assert_eq(snap_plugin_open(&q,
                                "{\"backend\": \"memory\", \"options\": {\"encryption\": "
                                "{\"context\": \"acme/test/v1\", \"key_version\": 5}}}",
                                kr),
               SNAP_ECONFIG);
  cr_assert(strstr(snap_error_message(), "options.encryption.key_version"), "%s",
            snap_error_message());
  cr_assert_eq(snap_plugin_open(&q, "{\"backend\": \"memory\"}", kr), SNAP_ECONFIG,
               "a keyring without a context would silently store plaintext");
  cr_assert(strstr(snap_error_message(), "options.encryption"), "%s", snap_error_message());
  char json2[1024];
  char key[600];
  snprintf(key, sizeof key, "%s/both.key", dir);
  key_file(key, 0600);
  snprintf(json2, sizeof json2,
           "{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"%s\","
           " \"context\": \"acme/test/v1\"}}}",
           key);
  cr_assert_eq(snap_plugin_open(&q, json2, kr), SNAP_ECONFIG, "a key file and a keyring");
  cr_assert(strstr(snap_error_message(), "options.encryption.key_file"), "%s",
            snap_error_message());
  snap_keyring_free(kr);
}

Test(config, encryption_needs_a_key_source_and_a_context) {
  refused("{\"backend\": \"memory\", \"options\": {\"encryption\": {\"context\": \"a/b/v1\"}}}",
          SNAP_ECONFIG, "options.encryption.keys");
  refused("{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"/k\"}}}",
          SNAP_ECONFIG, "options.encryption.context");
  refused("{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"/k\","
          " \"context\": \"\"}}}",
          SNAP_ECONFIG, "options.encryption.context");
  refused("{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"/k\","
          " \"context\": 7}}}",
          SNAP_ECONFIG, "options.encryption.context");
  refused("{\"backend\": \"memory\", \"options\": {\"encryption\": true}}", SNAP_ECONFIG,
          "options.encryption");
  refused("{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"/k\","
          " \"context\": \"a/b\", \"key_version\": 0}}}",
          SNAP_ECONFIG, "options.encryption.key_version");
  snap_plugin *p;
  cr_assert_eq(
      snap_plugin_open(&p, "{\"backend\": \"memory\", \"options\": {\"encryption\": false}}", NULL),
      SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);
}

Test(config, unknown_keys_are_refused_by_full_path) {
  refused("{\"backend\": \"memory\", \"colour\": 1}", SNAP_ECONFIG, "colour");
  refused("{\"backend\": \"memory\", \"options\": {\"speed\": 1}}", SNAP_ECONFIG, "options.speed");
  refused("{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"/k\","
          " \"context\": \"a\", \"cipher\": \"aes\"}}}",
          SNAP_ECONFIG, "options.encryption.cipher");
  refused("{\"backend\": \"memory\", \"executor\": {\"threads\": 4}}", SNAP_ECONFIG,
          "executor.threads");
  refused("{\"backend\": \"memory\", \"config\": {\"bogus_key\": 1}}", SNAP_ECONFIG, "bogus_key");
}

static void store_refused(const char *backend, const char *json, const char *needle);

/* A stored body's frame version (byte 4, docs/FORMAT.md), read
 * straight from the SQLite file. */
static int stored_version(const char *db, const char *pid) {
  sqlite3 *h;
  sqlite3_stmt *q;
  cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(h, "SELECT body FROM snapshots WHERE pid = ?", -1, &q, NULL),
               SQLITE_OK);
  sqlite3_bind_text(q, 1, pid, -1, SQLITE_STATIC);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  const unsigned char *b = sqlite3_column_blob(q, 0);
  cr_assert_geq(sqlite3_column_bytes(q, 0), 5);
  int v = b[4];
  sqlite3_finalize(q);
  sqlite3_close(h);
  return v;
}

Test(config, zstd_with_its_own_levels_from_the_document) {
  char db[600], json[1024];
  snprintf(db, sizeof db, "%s/zstd.db", dir);
  static const char *const levels[] = {"", ", \"compression_level\": -5",
                                       ", \"compression_level\": 19"};
  for (int i = 0; i < 3; i++) {
    snprintf(json, sizeof json,
             "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\"},"
             " \"options\": {\"compression\": \"zstd\"%s}}",
             db, levels[i]);
    snap_plugin *p;
    cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
    char pid[16];
    snprintf(pid, sizeof pid, "z-%d", i);
    snap_meta meta;
    cr_assert_eq(snap_save(snap_plugin_store(p), pid, 1, SNAP_FORMAT_JSON, BIG, strlen(BIG), NULL,
                           &meta),
                 SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(meta.stages, SNAP_STAGE_COMPRESSED);
    snap_snapshot *s;
    cr_assert_eq(snap_load_latest(snap_plugin_store(p), pid, NULL, &s), SNAP_OK);
    cr_assert(s->len == strlen(BIG) && memcmp(s->data, BIG, s->len) == 0);
    snap_snapshot_free(s);
    snap_plugin_close(p);
    cr_assert_eq(stored_version(db, pid), 2, "a zstd body is a version 2 frame");
  }
  /* zstd's range, not zlib's; and the store's own keys the same way */
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": \"zstd\","
          " \"compression_level\": 23}}",
          SNAP_ECONFIG, "options.compression_level");
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": \"zstd\","
          " \"compression_level\": -200000}}",
          SNAP_ECONFIG, "options.compression_level");
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": \"none\","
          " \"compression_level\": 1}}",
          SNAP_ECONFIG, "options.compression_level");
  store_refused("memory", "{\"compression\": \"zstd\", \"compression_level\": 23}",
                "compression_level");
  store_refused("memory", "{\"compression\": \"zlib\", \"compression_level\": -1}",
                "compression_level");
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"compression\": \"zstd\", \"compression_level\": -7}"),
               SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
}

Test(config, wrong_types_are_refused_naming_the_key) {
  refused("{\"backend\": 3}", SNAP_ECONFIG, "backend");
  refused("{\"config\": {}}", SNAP_ECONFIG, "backend");
  refused("{\"backend\": \"memory\", \"config\": [1]}", SNAP_ECONFIG, "config");
  refused("{\"backend\": \"memory\", \"options\": []}", SNAP_ECONFIG, "options");
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": 1}}", SNAP_ECONFIG,
          "options.compression");
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": \"lz4\"}}", SNAP_ECONFIG,
          "options.compression");
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": \"zlib\","
          " \"compression_level\": \"6\"}}",
          SNAP_ECONFIG, "options.compression_level");
  refused("{\"backend\": \"memory\", \"options\": {\"accept_unauthenticated\": 1}}", SNAP_ECONFIG,
          "options.accept_unauthenticated");
  refused("{\"backend\": \"memory\", \"options\": {\"required\": \"encryption\"}}", SNAP_ECONFIG,
          "options.required");
  refused("{\"backend\": \"memory\", \"options\": {\"required\": [\"speed\"]}}", SNAP_ECONFIG,
          "options.required[0]");
  refused("{\"backend\": \"memory\", \"options\": {\"required\": [\"compression\", 2]}}",
          SNAP_ECONFIG, "options.required[1]");
  refused("{\"backend\": \"memory\", \"executor\": 1}", SNAP_ECONFIG, "executor");
  refused("[]", SNAP_ECONFIG, "document");
  refused("{\"backend\": ", SNAP_ECONFIG, "not valid JSON");
}

Test(config, out_of_range_values_are_refused_naming_the_key) {
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": \"zlib\","
          " \"compression_level\": 10}}",
          SNAP_ECONFIG, "options.compression_level");
  refused("{\"backend\": \"memory\", \"options\": {\"compression\": \"zlib\","
          " \"compression_level\": -1}}",
          SNAP_ECONFIG, "options.compression_level");
  refused("{\"backend\": \"memory\", \"options\": {\"compression_min_size\": -5}}", SNAP_ECONFIG,
          "options.compression_min_size");
  refused("{\"backend\": \"memory\", \"options\": {\"compression_min_size\": 1.5}}", SNAP_ECONFIG,
          "options.compression_min_size");
  refused("{\"backend\": \"memory\", \"options\": {\"max_stored_size\": 0}}", SNAP_ECONFIG,
          "options.max_stored_size");
  refused("{\"backend\": \"memory\", \"options\": {\"max_decoded_size\": 1e300}}", SNAP_ECONFIG,
          "options.max_decoded_size");
  refused("{\"backend\": \"memory\", \"executor\": {\"queue_capacity\": 0}}", SNAP_ECONFIG,
          "executor.queue_capacity");
  refused("{\"backend\": \"memory\", \"executor\": {\"max_batch\": 2.5}}", SNAP_ECONFIG,
          "executor.max_batch");
  refused("{\"backend\": \"memory\", \"options\": {\"compression_level\": 3}}", SNAP_ECONFIG,
          "options.compression_level");
}

Test(config, an_unknown_backend_is_refused_naming_it) {
  refused("{\"backend\": \"cassandra\"}", SNAP_ECONFIG, "cassandra");
}

Test(config, compression_none_stores_plain_bodies) {
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p,
                                "{\"backend\": \"memory\", \"options\": {\"compression\": "
                                "\"none\", \"accept_unauthenticated\": true, \"required\": []}}",
                                NULL),
               SNAP_OK, "%s", snap_error_message());
  snap_meta meta;
  cr_assert_eq(
      snap_save(snap_plugin_store(p), "a", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, &meta),
      SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(meta.stages & (SNAP_STAGE_COMPRESSED | SNAP_STAGE_ENCRYPTED), 0u);
  snap_plugin_close(p);
}

Test(config, a_limit_from_the_document_is_enforced) {
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(
                   &p, "{\"backend\": \"memory\", \"options\": {\"max_decoded_size\": 8}}", NULL),
               SNAP_OK, "%s", snap_error_message());
  int rc =
      snap_save(snap_plugin_store(p), "a", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL);
  cr_assert_eq(rc, SNAP_ETOOBIG, "a %zu-byte state over an 8-byte limit: %d (%s)", strlen(STATE),
               rc, snap_error_message());
  snap_plugin_close(p);
}

Test(config, executor_load_threads_is_a_bounded_integer) {
  snap_plugin *p;
  cr_assert_eq(
      snap_plugin_open(&p, "{\"backend\": \"memory\", \"executor\": {\"load_threads\": 3}}", NULL),
      SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(snap_plugin_executor(p));
  snap_plugin_close(p);
  refused("{\"backend\": \"memory\", \"executor\": {\"load_threads\": 0}}", SNAP_ECONFIG,
          "executor.load_threads");
  refused("{\"backend\": \"memory\", \"executor\": {\"load_threads\": 65}}", SNAP_ECONFIG,
          "executor.load_threads");
  refused("{\"backend\": \"memory\", \"executor\": {\"load_threads\": \"2\"}}", SNAP_ECONFIG,
          "executor.load_threads");
}

static uint64_t saves_counted(snap_plugin *p) {
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(snap_plugin_store(p), &m), SNAP_OK);
  return m.ops[SNAP_OP_SAVE][0];
}

Test(config, observe_defaults_to_metrics_on_and_can_switch_them_off) {
  snap_plugin *p = NULL;
  cr_assert_eq(snap_plugin_open(&p, "{\"backend\": \"memory\", \"executor\": false}", NULL),
               SNAP_OK);
  cr_assert_eq(snap_save(snap_plugin_store(p), "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL),
               SNAP_OK);
  cr_assert_eq(saves_counted(p), 1u, "metrics are on without configuring anything");
  snap_plugin_close(p);
  cr_assert_eq(snap_plugin_open(&p,
                                "{\"backend\": \"memory\", \"executor\": false,"
                                " \"observe\": {\"metrics\": false, \"log\": \"off\"}}",
                                NULL),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save(snap_plugin_store(p), "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL),
               SNAP_OK);
  cr_assert_eq(saves_counted(p), 0u);
  snap_plugin_close(p);
  refused("{\"backend\": \"memory\", \"observe\": {\"log\": \"loud\"}}", SNAP_ECONFIG,
          "observe.log");
  refused("{\"backend\": \"memory\", \"observe\": {\"metrics\": 1}}", SNAP_ECONFIG,
          "observe.metrics");
  refused("{\"backend\": \"memory\", \"observe\": {\"trace\": true}}", SNAP_ECONFIG,
          "observe.trace");
  refused("{\"backend\": \"memory\", \"observe\": []}", SNAP_ECONFIG, "observe");
}

/* ---- one strict reader for every document -------------------------------- */

/* A store opened by name must fail with `code` and a message containing `needle`. */
static void store_refused(const char *backend, const char *json, const char *needle) {
  snap_store *st = (snap_store *)1;
  int rc = snap_store_open(&st, backend, json);
  cr_assert_eq(rc, SNAP_ECONFIG, "%s: got %d (%s)", json, rc, snap_error_message());
  cr_assert_null(st);
  cr_assert(strstr(snap_error_message(), needle), "message for %s names '%s': %s", json, needle,
            snap_error_message());
}

Test(config, a_duplicate_encryption_key_is_refused_not_stored_unencrypted) {
  /* The first value ("false") used to win in the plugin document: saves went
   * out in plaintext although the document also configured encryption. */
  char key[600], json[1400];
  snprintf(key, sizeof key, "%s/dup.key", dir);
  key_file(key, 0600);
  snprintf(json, sizeof json,
           "{\"backend\": \"memory\", \"options\": {\"encryption\": false, \"encryption\": "
           "{\"key_file\": \"%s\", \"context\": \"c\"}}}",
           key);
  refused(json, SNAP_ECONFIG, "options.encryption: duplicate key");
  snprintf(json, sizeof json,
           "{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"%s\", "
           "\"context\": \"c\"}, \"encryption\": false}}",
           key);
  refused(json, SNAP_ECONFIG, "options.encryption: duplicate key");
}

Test(config, duplicate_keys_are_refused_at_every_level) {
  refused("{\"backend\": \"memory\", \"backend\": \"sqlite\"}", SNAP_ECONFIG,
          "backend: duplicate key");
  refused("{\"backend\": \"memory\", \"executor\": {\"max_batch\": 1, \"max_batch\": 2}}",
          SNAP_ECONFIG, "executor.max_batch: duplicate key");
  refused("{\"backend\": \"memory\", \"config\": {\"keep\": 1, \"keep\": 0}}", SNAP_ECONFIG,
          "config.keep: duplicate key");
  /* The sqlite parser used to take the last "path", the plugin the first. */
  refused("{\"backend\": \"sqlite\", \"config\": {\"path\": \"a.db\", \"path\": \"b.db\"}}",
          SNAP_ECONFIG, "config.path: duplicate key");
  refused("{\"backend\": \"memory\", \"options\": {\"required\": [\"encryption\"], "
          "\"encryption\": {\"context\": \"c\", \"keys\": [{\"version\": 1, \"file\": \"/k\", "
          "\"version\": 2}]}}}",
          SNAP_ECONFIG, "options.encryption.keys[0].version: duplicate key");
  store_refused("memory", "{\"keep\": 1, \"keep\": 2}", "keep: duplicate key");
  store_refused("sqlite", "{\"path\": \"a.db\", \"table\": \"t\", \"table\": \"u\"}",
                "table: duplicate key");
}

Test(config, bytes_after_the_document_are_refused_by_the_store) {
  store_refused("memory", "{\"keep\":1} trailing garbage", "after the end of the document");
  store_refused("sqlite", "{\"path\":\"t.db\"} {}", "after the end of the document");
  refused("{\"backend\": \"memory\"} x", SNAP_ECONFIG, "after the end of the document");
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", " {\"keep\": 1}\n\t "), SNAP_OK, "%s",
               snap_error_message());
  snap_store_close(st);
}

Test(config, a_nul_escape_inside_a_string_is_refused_naming_the_key) {
  /* cJSON decoded "\u0000" and the C string ended there: "a.db\u0000.other"
   * opened a.db, and two contexts differing after the NUL became one. */
  char json[1400];
  snprintf(json, sizeof json, "{\"path\": \"%s/a.db\\u0000.other\"}", dir);
  store_refused("sqlite", json, "path: a string must not contain NUL");
  char a_db[600];
  snprintf(a_db, sizeof a_db, "%s/a.db", dir);
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "sqlite", json), SNAP_ECONFIG);
  cr_assert_neq(access(a_db, F_OK), 0, "nothing was created");
  store_refused("sqlite", "{\"path\": \"t.db\", \"table\": \"ok\\u0000; DROP\"}",
                "table: a string must not contain NUL");
  refused("{\"backend\": \"sqlite\", \"config\": {\"path\": \"x\\u0000y\"}}", SNAP_ECONFIG,
          "config.path: a string must not contain NUL");
  char key[600];
  snprintf(key, sizeof key, "%s/nul.key", dir);
  key_file(key, 0600);
  snprintf(json, sizeof json,
           "{\"backend\": \"memory\", \"options\": {\"encryption\": {\"key_file\": \"%s\", "
           "\"context\": \"ctx\\u0000B\"}}}",
           key);
  refused(json, SNAP_ECONFIG, "options.encryption.context: a string must not contain NUL");
  /* In a key name too, and any escape form of it. */
  refused("{\"backend\": \"memory\", \"a\\u0000b\": 1}", SNAP_ECONFIG, "must not contain NUL");
  refused("{\"backend\": \"mem\\u0000ory\"}", SNAP_ECONFIG, "backend: a string must not");
  /* Other escapes still decode. */
  cr_assert_eq(snap_store_open(&st, "memory", "{\"k\\u0065ep\": 2}"), SNAP_OK, "%s",
               snap_error_message());
  snap_store_close(st);
}

Test(config, numbers_must_be_exactly_the_integer_they_configure) {
  static const char *const bad[] = {
      "1e30", "2.5",   "-0",   "-0.0", "1e-1", "0.5e0", "18446744073709551617",
      "-1",   "\"3\"", "true", "null"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char json[512];
    /* Store keys, by name and in a plugin document. */
    static const char *const store_keys[] = {"keep", "max_load_attempts", "compression_min_size",
                                             "max_stored_size", "max_decoded_size"};
    for (size_t k = 0; k < sizeof store_keys / sizeof store_keys[0]; k++) {
      snprintf(json, sizeof json, "{\"%s\": %s}", store_keys[k], bad[i]);
      store_refused("memory", json, store_keys[k]);
      char path[64];
      snprintf(json, sizeof json, "{\"backend\": \"memory\", \"config\": {\"%s\": %s}}",
               store_keys[k], bad[i]);
      snprintf(path, sizeof path, "config.%s", store_keys[k]);
      refused(json, SNAP_ECONFIG, path);
    }
    snprintf(json, sizeof json, "{\"compression\": \"zlib\", \"compression_level\": %s}", bad[i]);
    store_refused("memory", json, "compression_level");
    /* Backend keys, read through the host. */
    static const char *const sqlite_keys[] = {"busy_timeout_ms", "max_page_count"};
    for (size_t k = 0; k < 2; k++) {
      snprintf(json, sizeof json, "{\"path\": \"t.db\", \"%s\": %s}", sqlite_keys[k], bad[i]);
      store_refused("sqlite", json, sqlite_keys[k]);
    }
    /* Plugin options and executor. */
    static const char *const opt_keys[] = {"compression_min_size", "max_stored_size",
                                           "max_decoded_size"};
    for (size_t k = 0; k < 3; k++) {
      char path[64];
      snprintf(json, sizeof json, "{\"backend\": \"memory\", \"options\": {\"%s\": %s}}",
               opt_keys[k], bad[i]);
      snprintf(path, sizeof path, "options.%s", opt_keys[k]);
      refused(json, SNAP_ECONFIG, path);
    }
    snprintf(json, sizeof json,
             "{\"backend\": \"memory\", \"options\": {\"compression\": \"zlib\", "
             "\"compression_level\": %s}}",
             bad[i]);
    refused(json, SNAP_ECONFIG, "options.compression_level");
    snprintf(json, sizeof json, "{\"backend\": \"memory\", \"executor\": {\"max_batch\": %s}}",
             bad[i]);
    refused(json, SNAP_ECONFIG, "executor.max_batch");
    snprintf(json, sizeof json, "{\"backend\": \"memory\", \"executor\": {\"queue_capacity\": %s}}",
             bad[i]);
    refused(json, SNAP_ECONFIG, "executor.queue_capacity");
    snprintf(json, sizeof json,
             "{\"backend\": \"memory\", \"options\": {\"encryption\": {\"context\": \"c\", "
             "\"keys\": [{\"version\": %s, \"file\": \"/k\"}]}}}",
             bad[i]);
    refused(json, SNAP_ECONFIG, "options.encryption.keys[0].version");
  }
  /* Exact integers in other spellings are the integer they say. */
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 2.0e1, \"max_load_attempts\": 0.5e1}"),
               SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  cr_assert_eq(snap_store_open(&st, "memory", "{\"keep\": 4294967295}"), SNAP_OK);
  snap_store_close(st);
  store_refused("memory", "{\"keep\": 4294967296}", "keep: 4294967296 is out of range");
}

Test(config, every_layer_names_keys_by_their_full_path) {
  /* The store's keys, the backend's keys and the document's own, one style. */
  refused("{\"backend\": \"memory\", \"config\": {\"keep\": -1}}", SNAP_ECONFIG,
          "config.keep: -1 is out of range 0 to 4294967295");
  refused("{\"backend\": \"sqlite\", \"config\": {\"path\": \"t.db\", \"synchronous\": \"off\"}}",
          SNAP_ECONFIG, "config.synchronous: 'off' is not one of \"full\" or \"normal\"");
  refused("{\"backend\": \"memory\", \"config\": {\"colour\": 1}}", SNAP_ECONFIG,
          "config.colour: unknown key");
  refused("{\"backend\": \"memory\", \"options\": {\"compression_level\": 10}}", SNAP_ECONFIG,
          "options.compression_level: 10 is out of range 0 to 9");
  store_refused("memory", "{\"keep\": \"3\"}", "keep: must be an integer");
  store_refused("memory", "{\"colour\": 1}", "colour: unknown key");
  store_refused("memory", "[1]", "(document): must be a JSON object");
  store_refused("sqlite", "{\"path\": \"t.db\", \"synchronous\": 1}", "synchronous: must be one");
}

Test(config, the_sqlite_path_is_required) {
  /* No silent ./snapshots.db in the working directory. */
  store_refused("sqlite", NULL, "path: missing");
  store_refused("sqlite", "{}", "path: missing");
  store_refused("sqlite", "{\"keep\": 2}", "path: missing");
  refused("{\"backend\": \"sqlite\"}", SNAP_ECONFIG, "config.path: missing");
  refused("{\"backend\": \"sqlite\", \"config\": {\"keep\": 1}}", SNAP_ECONFIG,
          "config.path: missing");
  cr_assert_neq(access("snapshots.db", F_OK), 0, "no default file was created");
}

/* ---- key rotation through the document ------------------------------------ */

/* A 32-byte raw key file of `fill` bytes, mode 0600. */
static void raw_key_file(const char *path, unsigned char fill) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq(fd, 0);
  unsigned char k[32];
  memset(k, fill, sizeof k);
  cr_assert_eq(write(fd, k, sizeof k), (ssize_t)sizeof k);
  close(fd);
}

static snap_plugin *open_ok(const char *json) {
  snap_plugin *p = NULL;
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s: %s", json, snap_error_message());
  return p;
}

static void save_state(snap_plugin *p, const char *pid, int64_t seq) {
  snap_meta m;
  cr_assert_eq(
      snap_save(snap_plugin_store(p), pid, seq, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, &m),
      SNAP_OK, "%s", snap_error_message());
  cr_assert(m.stages & SNAP_STAGE_ENCRYPTED);
}

static int load_state(snap_plugin *p, const char *pid) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(snap_plugin_store(p), pid, NULL, &s);
  if (rc == SNAP_OK) {
    cr_assert_not_null(s);
    cr_assert_eq(s->len, strlen(STATE));
    cr_assert_eq(memcmp(s->data, STATE, s->len), 0);
  }
  snap_snapshot_free(s);
  return rc;
}

Test(config, a_key_rotation_keeps_older_snapshots_loading) {
  char k1[600], k2[600], db[600], json[4096];
  snprintf(k1, sizeof k1, "%s/k1.key", dir);
  snprintf(k2, sizeof k2, "%s/k2.key", dir);
  snprintf(db, sizeof db, "%s/rot.db", dir);
  raw_key_file(k1, 0x11);
  raw_key_file(k2, 0x22);
  const char *fmt = "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\"}, \"executor\": false,"
                    " \"options\": {\"encryption\": {\"context\": \"acme/test/rot/v1\", %s}}}";
  /* Before: the single-key form. */
  char keys[2048];
  snprintf(keys, sizeof keys, "\"key_file\": \"%s\", \"key_version\": 1", k1);
  snprintf(json, sizeof json, fmt, db, keys);
  snap_plugin *p = open_ok(json);
  save_state(p, "old", 1);
  snap_plugin_close(p);

  /* Step 1, add the new key (still writing with 1); step 2, make it active. */
  snprintf(keys, sizeof keys,
           "\"keys\": [{\"version\": 1, \"file\": \"%s\"}, {\"version\": 2, \"file\": \"%s\"}],"
           " \"active\": 1",
           k1, k2);
  snprintf(json, sizeof json, fmt, db, keys);
  p = open_ok(json);
  cr_assert_eq(load_state(p, "old"), SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);
  snprintf(keys, sizeof keys,
           "\"keys\": [{\"version\": 1, \"file\": \"%s\"}, {\"version\": 2, \"file\": \"%s\"}],"
           " \"active\": 2",
           k1, k2);
  snprintf(json, sizeof json, fmt, db, keys);
  p = open_ok(json);
  save_state(p, "new", 1);
  cr_assert_eq(load_state(p, "old"), SNAP_OK, "older snapshots keep loading: %s",
               snap_error_message());
  cr_assert_eq(load_state(p, "new"), SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);

  /* The new snapshot was written with key 2: with key 2 alone it loads, and
   * the old one needs key 1 (until re-encrypted, it must not be retired). */
  snprintf(keys, sizeof keys, "\"keys\": [{\"version\": 2, \"file\": \"%s\"}]", k2);
  snprintf(json, sizeof json, fmt, db, keys);
  p = open_ok(json);
  cr_assert_eq(load_state(p, "new"), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(load_state(p, "old"), SNAP_ENOKEY);
  cr_assert(strstr(snap_error_message(), "1"), "%s", snap_error_message());
  snap_plugin_close(p);
}

Test(config, the_keys_list_is_checked_before_any_key_is_read) {
  const char *pre = "{\"backend\": \"memory\", \"options\": {\"encryption\": {\"context\": \"c\", ";
  char json[2048];
  snprintf(json, sizeof json,
           "%s\"keys\": [{\"version\": 1, \"file\": \"/a\"}, {\"version\": 2, "
           "\"file\": \"/b\"}]}}}",
           pre);
  refused(json, SNAP_ECONFIG, "options.encryption.active: missing");
  snprintf(json, sizeof json, "%s\"keys\": [{\"version\": 1, \"file\": \"/a\"}], \"active\": 2}}}",
           pre);
  refused(json, SNAP_ECONFIG, "options.encryption.active: version 2 is not among");
  snprintf(json, sizeof json,
           "%s\"keys\": [{\"version\": 1, \"file\": \"/a\"}, {\"version\": 1, \"file\": \"/b\"}],"
           " \"active\": 1}}}",
           pre);
  refused(json, SNAP_ECONFIG, "options.encryption.keys[1].version: version 1 is also given");
  snprintf(json, sizeof json,
           "%s\"keys\": [{\"version\": 1, \"file\": \"/a\"}], \"key_file\": "
           "\"/b\"}}}",
           pre);
  refused(json, SNAP_ECONFIG, "options.encryption.key_file: give either");
  snprintf(json, sizeof json, "%s\"keys\": []}}}", pre);
  refused(json, SNAP_ECONFIG, "options.encryption.keys: must name at least one key");
  snprintf(json, sizeof json, "%s\"keys\": [{\"version\": 1}]}}}", pre);
  refused(json, SNAP_ECONFIG, "options.encryption.keys[0].file: missing");
  snprintf(json, sizeof json, "%s\"keys\": [{\"file\": \"/a\"}]}}}", pre);
  refused(json, SNAP_ECONFIG, "options.encryption.keys[0].version: missing");
  snprintf(json, sizeof json, "%s\"keys\": [{\"version\": 1, \"file\": \"/a\", \"mode\": 1}]}}}",
           pre);
  refused(json, SNAP_ECONFIG, "options.encryption.keys[0].mode: unknown key");
  snprintf(json, sizeof json, "%s\"keys\": [\"/a\"]}}}", pre);
  refused(json, SNAP_ECONFIG, "options.encryption.keys[0]: must be an object");
  /* The second key file is named by its place in the document. */
  char k1[600];
  snprintf(k1, sizeof k1, "%s/only.key", dir);
  raw_key_file(k1, 0x33);
  snprintf(json, sizeof json,
           "%s\"keys\": [{\"version\": 1, \"file\": \"%s\"}, {\"version\": 2, \"file\": "
           "\"%s/absent.key\"}], \"active\": 1}}}",
           pre, k1, dir);
  snap_plugin *p = (snap_plugin *)1;
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_EIO, "%s", snap_error_message());
  cr_assert(strstr(snap_error_message(), "options.encryption.keys[1].file"), "%s",
            snap_error_message());
}

/* ---- eager validation at open --------------------------------------------- */

Test(config, the_plugin_checks_the_store_at_open) {
  char json[1400];
  /* A path in a missing directory: an error now, not at the first save. */
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s/no/such/dir/s.db\"}}", dir);
  refused(json, SNAP_EIO, "no/such/dir/s.db");
  /* "check": false keeps the lazy open. */
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"check\": false, \"config\": {\"path\": "
           "\"%s/no/such/dir/s.db\"}}",
           dir);
  snap_plugin *p = open_ok(json);
  snap_plugin_close(p);
  /* A file that is not a database. */
  char junk[600];
  snprintf(junk, sizeof junk, "%s/junk.db", dir);
  cr_assert(st_write_not_a_database(junk));
  snprintf(json, sizeof json, "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\"}}", junk);
  refused(json, SNAP_EFORMAT, "junk.db");
  /* A required option group the backend cannot honour. */
  refused("{\"backend\": \"memory\", \"options\": {\"required\": [\"encryption\"]}}", SNAP_ECONFIG,
          "options.required");
  refused("{\"backend\": \"memory\", \"options\": {\"required\": [\"compression\"]}}", SNAP_ECONFIG,
          "compression");
  refused("{\"backend\": \"memory\", \"check\": 1}", SNAP_ECONFIG, "check: must be true or false");
  /* A conflicting retention, named where the document says it. */
  char db[600];
  snprintf(db, sizeof db, "%s/ret.db", dir);
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\", \"keep\": 0}}", db);
  p = open_ok(json);
  cr_assert_eq(snap_save(snap_plugin_store(p), "a", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL),
               SNAP_OK);
  snap_plugin_close(p);
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\", \"keep\": 5}}", db);
  refused(json, SNAP_ECONFIG, "config.keep: this configuration keeps 5");
}

/* options.integrity takes the same forms as options.encryption: saves are
 * MAC'd (not encrypted) under the named key, a reader with another key
 * refuses them, and the group's keys are read as strictly. */
Test(config, integrity_from_key_files_macs_plain_bodies) {
  char k1[600], k2[600], db[600], json[2048];
  snprintf(k1, sizeof k1, "%s/mac1.key", dir);
  snprintf(k2, sizeof k2, "%s/mac2.key", dir);
  snprintf(db, sizeof db, "%s/mac.db", dir);
  key_file(k1, 0600);
  key_file_hex(k2, 0600, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\"},"
           " \"options\": {\"integrity\": {\"context\": \"acme/test/mac/v1\","
           " \"keys\": [{\"version\": 4, \"file\": \"%s\"}]}, \"required\": [\"integrity\"]}}",
           db, k1);
  unsigned stages = stages_of_one_save(json, NULL);
  cr_assert(stages & SNAP_STAGE_MAC, "the document's integrity option applies");
  cr_assert_not(stages & SNAP_STAGE_ENCRYPTED);
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(snap_plugin_store(p), "a", NULL, &s), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->len, strlen(STATE));
  snap_snapshot_free(s);
  snap_plugin_close(p);

  /* The same version from another key file: the MAC does not verify. */
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s\"},"
           " \"options\": {\"integrity\": {\"context\": \"acme/test/mac/v1\","
           " \"key_file\": \"%s\", \"key_version\": 4}}}",
           db, k2);
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  s = NULL;
  cr_assert_eq(snap_load_latest(snap_plugin_store(p), "a", NULL, &s), SNAP_EAUTH, "%s",
               snap_error_message());
  cr_assert_null(s);
  snap_plugin_close(p);

  refused("{\"backend\": \"memory\", \"options\": {\"integrity\": {\"key_file\": \"/k\","
          " \"context\": \"c\", \"colour\": 1}}}",
          SNAP_ECONFIG, "options.integrity.colour");
  refused("{\"backend\": \"memory\", \"options\": {\"integrity\": {\"key_file\": \"/k\"}}}",
          SNAP_ECONFIG, "options.integrity.context");
  refused("{\"backend\": \"memory\", \"options\": {\"integrity\": \"on\"}}", SNAP_ECONFIG,
          "options.integrity");
  refused("{\"backend\": \"memory\", \"options\": {\"integrity\": {\"context\": \"c\"}}}",
          SNAP_ECONFIG, "options.integrity.keys");
}

/* A supplied keyring serves whichever group names no key file; one that
 * would serve nothing is refused. */
Test(config, a_supplied_keyring_serves_the_group_without_key_files) {
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t k[32] = {9};
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s/krmac.db\"},"
           " \"options\": {\"integrity\": {\"context\": \"acme/test/mac/v1\"}}}",
           dir);
  cr_assert(stages_of_one_save(json, kr) & SNAP_STAGE_MAC);

  char key[600];
  snprintf(key, sizeof key, "%s/integ.key", dir);
  key_file(key, 0600);
  snprintf(json, sizeof json,
           "{\"backend\": \"memory\", \"options\": {\"integrity\": {\"key_file\": \"%s\","
           " \"context\": \"c\"}}}",
           key);
  snap_plugin *q = (snap_plugin *)1;
  cr_assert_eq(snap_plugin_open(&q, json, kr), SNAP_ECONFIG, "the keyring would serve nothing");
  cr_assert(strstr(snap_error_message(), "options.integrity.key_file"), "%s", snap_error_message());
  cr_assert_null(q);
  snap_keyring_free(kr);
}

/* ------------------------------------------------------------------------ */
/* snap_plugin_open_ex(): what is done with a document, not what it says     */
/* ------------------------------------------------------------------------ */

Test(config, no_executor_opens_none_even_when_the_document_enables_one) {
  const char *json = "{\"backend\": \"memory\", \"executor\": {\"queue_capacity\": 8}}";
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open_ex(&p, json, NULL, SNAP_PLUGIN_NO_EXECUTOR), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_null(snap_plugin_executor(p));
  snap_store *st = snap_plugin_store(p);
  cr_assert_eq(snap_save(st, "a", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE), NULL, NULL), SNAP_OK,
               "%s", snap_error_message());
  snap_plugin_close(p);
  cr_assert_eq(snap_plugin_open_ex(&p, json, NULL, 0), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(snap_plugin_executor(p), "without the flag the document's executor runs");
  snap_plugin_close(p);
}

Test(config, open_ex_refuses_flags_it_does_not_know) {
  snap_plugin *p = (snap_plugin *)1;
  cr_assert_eq(snap_plugin_open_ex(&p, "{\"backend\": \"memory\"}", NULL, 1u << 7), SNAP_EINVAL);
  cr_assert_null(p);
  cr_assert(strstr(snap_error_message(), "unknown flags"), "%s", snap_error_message());
}

/* SNAP_PLUGIN_NO_CHECK leaves the check at open to the caller, whatever the
 * document's "check" says. */
Test(config, no_check_leaves_the_check_at_open_to_the_caller) {
  const char *json =
      "{\"backend\": \"memory\", \"check\": true, \"options\": {\"required\": [\"encryption\"]}}";
  snap_plugin *p = NULL;
  cr_assert_eq(snap_plugin_open_ex(&p, json, NULL, 0), SNAP_ECONFIG);
  cr_assert_eq(snap_plugin_open_ex(&p, json, NULL, SNAP_PLUGIN_NO_CHECK), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(snap_store_check(snap_plugin_store(p)), SNAP_EUNSUPPORTED, "%s",
               snap_error_message());
  snap_plugin_close(p);
}

/* The flags change nothing of how strictly the document is read. */
Test(config, open_ex_reads_the_document_as_strictly) {
  snap_plugin *p = (snap_plugin *)1;
  int rc = snap_plugin_open_ex(&p, "{\"backend\": \"memory\", \"config\": {\"kep\": 1}}", NULL,
                               SNAP_PLUGIN_NO_EXECUTOR | SNAP_PLUGIN_NO_CREATE);
  cr_assert_eq(rc, SNAP_ECONFIG);
  cr_assert_null(p);
  cr_assert(strstr(snap_error_message(), "config.kep: unknown key"), "%s", snap_error_message());
}

/* A backend of ABI version 1 or 2 gets its keys as JSON text and reads it
 * with the host's conf_open(): its refusals still name the keys by their
 * path in the plugin document. */
Test(config, a_version_2_backend_names_its_keys_by_their_document_path) {
  snap_backend v2 = *snap_backend_memory();
  v2.abi_version = 2;
  v2.name = "memory-v2";
  cr_assert_eq(snap_registry_register(&v2), SNAP_OK, "%s", snap_error_message());
  refused("{\"backend\": \"memory-v2\", \"config\": {\"keep\": 1, \"kep\": 1}}", SNAP_ECONFIG,
          "config.kep: unknown key");
  cr_assert_eq(snap_registry_unregister("memory-v2"), SNAP_OK);
}

/* ------------------------------------------------------------------------ */
/* Slips of a hand-written document, named where they are                    */
/* ------------------------------------------------------------------------ */

/* A typo on a required key names the key that was written, not only the one
 * that is missing. */
Test(config, a_typo_on_a_required_key_names_the_unknown_key) {
  refused("{\"backend\": \"sqlite\", \"config\": {\"paht\": \"x.db\"}}", SNAP_ECONFIG,
          "config.paht: unknown key (did you mean 'path'?)");
  refused("{\"backnd\": \"memory\"}", SNAP_ECONFIG,
          "backnd: unknown key (did you mean 'backend'?)");
  /* Nothing near: still the missing key. */
  refused("{\"backend\": \"sqlite\", \"config\": {\"file\": \"x.db\"}}", SNAP_ECONFIG,
          "config.path: missing");
}

Test(config, a_comment_is_named_with_its_line_and_column) {
  refused("{\"backend\": \"memory\", // the store\n \"check\": true}", SNAP_ECONFIG,
          "not valid JSON at line 1, column 23 (byte 22): comments (// or /* */) are not "
          "allowed in JSON");
  refused("{\"backend\": \"memory\",\n  /* the store */ \"check\": true}", SNAP_ECONFIG,
          "line 2, column 3");
  refused("{\"backend\": \"memory\"} // done", SNAP_ECONFIG, "comments (// or /* */)");
}

Test(config, a_trailing_comma_is_named_with_its_line_and_column) {
  refused("{\"backend\": \"memory\",\n \"check\": true,\n}", SNAP_ECONFIG,
          "not valid JSON at line 2, column 15 (byte 36): trailing comma before '}'");
  refused("{\"backend\": \"sqlite\", \"config\": {\"path\": \"x.db\"}, \"options\": "
          "{\"required\": [\"compression\",]}}",
          SNAP_ECONFIG, "options.required: not valid JSON at line 1, column 89 (byte 88)");
  refused("{\"backend\": \"memory\", \"options\": {\"required\": [\"compression\",]}}",
          SNAP_ECONFIG, "trailing comma before ']'");
}

/* The duplicate check is linear: a document of 80,000 members with the
 * duplicate at the very end is refused (a quadratic check took minutes,
 * which the suite's time limit for this file catches). */
Test(config, a_duplicate_after_80000_members_is_refused) {
  size_t cap = 80000 * 24 + 128;
  char *json = malloc(cap);
  cr_assert_not_null(json);
  size_t n = (size_t)snprintf(json, cap, "{\"backend\": \"memory\", \"config\": {");
  for (int i = 0; i < 80000; i++)
    n += (size_t)snprintf(json + n, cap - n, "\"member%d\": %d, ", i, i);
  n += (size_t)snprintf(json + n, cap - n, "\"member%d\": 0}}", 79999);
  cr_assert_lt(n, cap);
  refused(json, SNAP_ECONFIG, "config.member79999: duplicate key");
  /* Without the duplicate the document parses; its keys are unknown. */
  snprintf(json + n - strlen("\"member79999\": 0}}") - 2, 8, "}}");
  refused(json, SNAP_ECONFIG, "config.member0: unknown key");
  free(json);
}

/* Whether `path` exists (any kind of file). */
static bool exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* A mistyped or relative path must not turn into a new, empty store that a
 * reading tool then reports as healthy. */
Test(config, no_create_on_a_missing_sqlite_store_creates_nothing_and_says_where) {
  cr_assert_eq(chdir(dir), 0);
  const char *json = "{\"backend\": \"sqlite\", \"config\": {\"path\": \"missing.db\"}}";
  snap_plugin *p = (snap_plugin *)1;
  int rc = snap_plugin_open_ex(&p, json, NULL, SNAP_PLUGIN_NO_CREATE | SNAP_PLUGIN_NO_EXECUTOR);
  cr_assert_eq(rc, SNAP_ENOTFOUND, "%d: %s", rc, snap_error_message());
  cr_assert_null(p);
  char want[1200];
  snprintf(want, sizeof want, "no store at 'missing.db' (resolved to '%s/missing.db')", dir);
  cr_assert(strstr(snap_error_message(), want), "%s", snap_error_message());
  const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < 4; i++) {
    char f[64];
    snprintf(f, sizeof f, "missing.db%s", suffixes[i]);
    cr_assert(!exists(f), "%s was created", f);
  }
  /* Absolute paths are shown as they are. */
  char abs_json[1200];
  snprintf(abs_json, sizeof abs_json,
           "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s/gone/x.db\"}}", dir);
  cr_assert_eq(snap_plugin_open_ex(&p, abs_json, NULL, SNAP_PLUGIN_NO_CREATE), SNAP_ENOTFOUND);
  snprintf(want, sizeof want, "no store at '%s/gone/x.db' (resolved to '%s/gone/x.db')", dir, dir);
  cr_assert(strstr(snap_error_message(), want), "%s", snap_error_message());
  cr_assert(!exists("gone"), "a directory was created");
}

/* An existing store opens for reading, and stays as it was. */
Test(config, no_create_reads_an_existing_sqlite_store_and_writes_nothing) {
  char json[1200];
  snprintf(json, sizeof json, "{\"backend\": \"sqlite\", \"config\": {\"path\": \"%s/kept.db\"}}",
           dir);
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save(snap_plugin_store(p), "a", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE),
                         NULL, NULL),
               SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);

  cr_assert_eq(snap_plugin_open_ex(&p, json, NULL, SNAP_PLUGIN_NO_CREATE), SNAP_OK, "%s",
               snap_error_message());
  snap_snapshot *s;
  cr_assert_eq(snap_load_latest(snap_plugin_store(p), "a", NULL, &s), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, 1);
  snap_snapshot_free(s);
  cr_assert_neq(snap_save(snap_plugin_store(p), "a", 2, SNAP_FORMAT_JSON, STATE, strlen(STATE),
                          NULL, NULL),
                SNAP_OK, "a store opened without creating is read-only");
  snap_plugin_close(p);
}

/* "memory" has nothing to create: the flag changes nothing there. */
Test(config, no_create_is_ignored_by_the_memory_backend) {
  snap_plugin *p;
  cr_assert_eq(snap_plugin_open_ex(&p, "{\"backend\": \"memory\"}", NULL, SNAP_PLUGIN_NO_CREATE),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save(snap_plugin_store(p), "a", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE),
                         NULL, NULL),
               SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);
}

#ifdef SNAP_WITH_POSTGRES
/* The test's own PostgreSQL cluster, removed even when an assertion ends it. */
static pgfx pg;

static void remove_pg(void) { pgfx_destroy(&pg); }

/* "postgres" opened without creating: no schema appears, and a store that
 * has none is SNAP_ENOTFOUND; one that has it reads as usual. */
Test(config, no_create_on_postgres_creates_no_schema, .fini = remove_pg) {
  char err[512], ci[512], json[1200];
  cr_assert_eq(pgfx_start(&pg, 1, err, sizeof err), 0, "%s", err);
  pgfx_conninfo(&pg, 0, ci, sizeof ci);
  snprintf(json, sizeof json,
           "{\"backend\": \"postgres\", \"config\": {\"conninfo\": \"%s\"}}", ci);
  unsigned flags = SNAP_PLUGIN_NO_CREATE | SNAP_PLUGIN_NO_EXECUTOR;
  snap_plugin *p = NULL;
  int rc = snap_plugin_open_ex(&p, json, NULL, flags);
  if (rc == SNAP_OK) { /* connections are opened on first use */
    snap_snapshot *s = NULL;
    rc = snap_load_latest(snap_plugin_store(p), "a", NULL, &s);
    cr_assert_null(s);
    snap_plugin_close(p);
  }
  cr_assert_eq(rc, SNAP_ENOTFOUND, "%d: %s", rc, snap_error_message());
  cr_assert(strstr(snap_error_message(), "no snapstore table \"snapshots\""), "%s",
            snap_error_message());
  const char *none = "DO $$ BEGIN IF to_regclass('snapshots') IS NOT NULL OR "
                     "to_regclass('snapstore_meta') IS NOT NULL THEN RAISE EXCEPTION 'created'; "
                     "END IF; END $$";
  cr_assert_eq(pgfx_exec(&pg, 0, none, err, sizeof err), 0, "a table was created: %s", err);

  cr_assert_eq(snap_plugin_open(&p, json, NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_save(snap_plugin_store(p), "a", 1, SNAP_FORMAT_JSON, STATE, strlen(STATE),
                         NULL, NULL),
               SNAP_OK, "%s", snap_error_message());
  snap_plugin_close(p);
  cr_assert_eq(snap_plugin_open_ex(&p, json, NULL, flags), SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(snap_plugin_store(p), "a", NULL, &s), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_not_null(s);
  cr_assert_eq(s->seq, 1);
  snap_snapshot_free(s);
  snap_plugin_close(p);
}
#endif
