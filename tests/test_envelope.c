/* Envelope keys: saves and loads sealed with a shred unit's data key, direct
 * and envelope bodies side by side, forgetting a unit (in the store and in a
 * restored backup of its data), rewrapping under a new master key, the
 * wrapped-key record's bindings, the data key cache and the configuration. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapstore.h"
#include "snap/envelope.h"
#include "snap/sys/backend.h"
#include "store_util.h"

#define CTX "acme/test/snapshots/v1"

static snap_keyring *ring_with(uint32_t v0, uint8_t fill0, uint32_t v1, uint8_t fill1) {
  snap_keyring *kr = NULL;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, fill0, sizeof key);
  cr_assert_eq(snap_keyring_add(kr, v0, key, sizeof key), SNAP_OK);
  if (v1) {
    memset(key, fill1, sizeof key);
    cr_assert_eq(snap_keyring_add(kr, v1, key, sizeof key), SNAP_OK);
  }
  return kr;
}

static snap_options *envelope_opts(snap_keyring *kr, snap_key_mode mode) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, CTX), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, mode), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  return o;
}

/* A sqlite store in `dir`/data.db; `extra` adds store keys. */
static snap_store *open_at(const char *dir, const char *extra, snap_options *defaults) {
  char cfg[2048];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/data.db\"%s%s}", dir, extra[0] ? ", " : "", extra);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK, "%s: %s", cfg,
               snap_error_message());
  if (defaults)
    cr_assert_eq(snap_store_set_default_options(st, defaults), SNAP_OK);
  return st;
}

static void save_state(snap_store *st, const char *pid, int64_t seq, const char *json) {
  int rc = snap_save(st, pid, seq, SNAP_FORMAT_JSON, json, strlen(json), NULL, NULL);
  cr_assert_eq(rc, SNAP_OK, "save %s: %s", pid, snap_error_message());
}

static void expect_state(snap_store *st, const char *pid, int64_t seq, const char *json) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, pid, NULL, &s);
  cr_assert_eq(rc, SNAP_OK, "load %s: %s", pid, snap_error_message());
  cr_assert_not_null(s, "%s has a snapshot", pid);
  cr_assert_eq(s->seq, seq);
  cr_assert_eq(s->len, strlen(json));
  cr_assert_eq(memcmp(s->data, json, s->len), 0);
  cr_assert(s->stages & SNAP_STAGE_ENCRYPTED);
  snap_snapshot_free(s);
}

static int64_t raw_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "%s", sql);
  int64_t v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return v;
}

/* The newest stored body of `pid`, read past the store. */
static size_t raw_body(const char *path, const char *pid, uint8_t *buf, size_t cap) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db,
                                  "SELECT body FROM snapshots WHERE pid = ?1 ORDER BY seq DESC "
                                  "LIMIT 1",
                                  -1, &q, NULL),
               SQLITE_OK);
  sqlite3_bind_text(q, 1, pid, -1, SQLITE_STATIC);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  size_t n = (size_t)sqlite3_column_bytes(q, 0);
  cr_assert(n <= cap);
  memcpy(buf, sqlite3_column_blob(q, 0), n);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

static void copy_file(const char *from, const char *to) {
  uint8_t *data = NULL;
  size_t len = 0;
  cr_assert(st_read_file(from, &data, &len), "read %s", from);
  FILE *f = fopen(to, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  fclose(f);
  free(data);
}

/* A store in a fresh directory with envelope options over a keyring of key
 * version 1 (filled with `fill`) and, when `v2_fill` is not 0, version 2. */
typedef struct fixture {
  char *dir;
  snap_keyring *kr;
  snap_options *o;
  snap_store *st;
} fixture;

static fixture fixture_open(uint8_t fill, uint8_t v2_fill, const char *extra) {
  fixture f;
  f.dir = st_tmpdir();
  f.kr = ring_with(1, fill, v2_fill ? 2 : 0, v2_fill);
  f.o = envelope_opts(f.kr, SNAP_KEYS_ENVELOPE);
  f.st = open_at(f.dir, extra, f.o);
  return f;
}

static void fixture_close(fixture *f) {
  snap_store_close(f->st);
  snap_options_free(f->o);
  snap_keyring_free(f->kr);
  st_rmtree(f->dir);
  free(f->dir);
}

Test(envelope, a_save_is_sealed_with_the_units_data_key_and_loads) {
  char *dir = st_tmpdir();
  snap_keyring *kr = ring_with(1, 0x11, 0, 0);
  snap_options *o = envelope_opts(kr, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, "", o);
  save_state(st, "account-1", 1, "{\"balance\":10}");
  save_state(st, "account-1", 2, "{\"balance\":20}");
  save_state(st, "account-2", 1, "{\"balance\":5}");
  expect_state(st, "account-1", 2, "{\"balance\":20}");
  expect_state(st, "account-2", 1, "{\"balance\":5}");
  snap_store_close(st);
  char *path = st_join(dir, "data.db");
  cr_assert_eq(raw_int(path, "SELECT count(*) FROM snapshots_keys WHERE wrapped IS NOT NULL"), 2,
               "one data key per unit");
  cr_assert_eq(raw_int(path, "SELECT min(length(wrapped)) FROM snapshots_keys"),
               SNAP_WRAPPED_KEY_BYTES);
  /* The body is a version 2 frame naming the key generation (bytes 8-11) and
   * carrying an empty envelope key reference (the unit is the pid). */
  uint8_t body[512];
  size_t n = raw_body(path, "account-1", body, sizeof body);
  cr_assert(n > 27);
  cr_assert_eq(body[4], 2, "frame version 2");
  cr_assert_eq(body[6] & SNAP_STAGE_ENCRYPTED, SNAP_STAGE_ENCRYPTED);
  cr_assert_eq(body[8], 1, "generation 1");
  cr_assert_eq(body[20] | body[21] << 8, 5, "a block of one empty field");
  cr_assert_eq(body[22], 3, "field type 3: envelope key reference");
  cr_assert_eq(body[23] | body[24] << 8, 0);
  /* A reader without the store's key table cannot open it. */
  snap_buf out = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_decode("account-1", 2, body, n, o, &out, NULL, NULL), SNAP_ENOKEY);
  cr_assert(strstr(snap_error_message(), "envelope"), "%s", snap_error_message());
  cr_assert_eq(snap_body_encode("x", 1, SNAP_FORMAT_JSON, "1", 1, o, &out, NULL), SNAP_EINVAL);
  snap_buf_dispose(&out);
  /* A new process (a fresh cache) reads the key table. */
  st = open_at(dir, "", o);
  expect_state(st, "account-1", 2, "{\"balance\":20}");
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(path);
  st_rmtree(dir);
  free(dir);
}

Test(envelope, direct_and_envelope_bodies_live_in_one_store) {
  char *dir = st_tmpdir();
  snap_keyring *kr = ring_with(1, 0x22, 0, 0);
  snap_options *direct = envelope_opts(kr, SNAP_KEYS_DIRECT);
  snap_options *env = envelope_opts(kr, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, "", direct);
  save_state(st, "old", 1, "{\"v\":\"direct\"}");
  cr_assert_eq(snap_store_set_default_options(st, env), SNAP_OK);
  save_state(st, "new", 1, "{\"v\":\"envelope\"}");
  save_state(st, "old", 2, "{\"v\":\"now envelope\"}");
  expect_state(st, "new", 1, "{\"v\":\"envelope\"}");
  snap_snapshot *s = NULL;
  snap_criteria first = {1, 1, INT64_MIN, INT64_MAX};
  cr_assert_eq(snap_load(st, "old", &first, NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_not_null(s);
  cr_assert_str_eq((const char *)s->data, "{\"v\":\"direct\"}", "the direct body still reads");
  snap_snapshot_free(s);
  expect_state(st, "old", 2, "{\"v\":\"now envelope\"}");
  /* Back in direct mode, envelope bodies still read. */
  cr_assert_eq(snap_store_set_default_options(st, direct), SNAP_OK);
  expect_state(st, "new", 1, "{\"v\":\"envelope\"}");
  snap_store_close(st);
  snap_options_free(direct);
  snap_options_free(env);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

Test(envelope, forget_deletes_the_key_and_the_snapshots_and_leaves_a_tombstone) {
  char *dir = st_tmpdir();
  snap_keyring *kr = ring_with(1, 0x33, 0, 0);
  snap_options *o = envelope_opts(kr, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, "", o);
  save_state(st, "alice", 1, "{\"a\":1}");
  save_state(st, "bob", 1, "{\"b\":1}");
  snap_forget_report rep;
  cr_assert_eq(snap_forget(st, "alice", &rep), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(rep.keys, 1);
  cr_assert_eq(rep.generation, 1);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "alice", NULL, &s), SNAP_OK);
  cr_assert_null(s, "the unit's snapshots are gone");
  expect_state(st, "bob", 1, "{\"b\":1}");
  cr_assert_eq(snap_forget(st, "alice", &rep), SNAP_OK);
  cr_assert_eq(rep.keys, 0, "forgetting twice deletes nothing more");
  snap_store_close(st);
  char *path = st_join(dir, "data.db");
  cr_assert_eq(raw_int(path, "SELECT count(*) FROM snapshots_keys WHERE unit = 'alice' AND "
                             "wrapped IS NULL AND generation = 1"),
               1, "a tombstone keeps the fact, not the key");
  /* A later save of the unit starts generation 2. */
  st = open_at(dir, "", o);
  save_state(st, "alice", 5, "{\"a\":2}");
  expect_state(st, "alice", 5, "{\"a\":2}");
  snap_store_close(st);
  cr_assert_eq(raw_int(path, "SELECT generation FROM snapshots_keys WHERE unit = 'alice'"), 2);
  free(path);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

/* The backup test: data and keys in separate files; a data backup
 * taken before a forget, restored beside the current key store, holds the
 * forgotten unit's bodies, which stay unreadable, while every other unit
 * loads. */
Test(envelope, a_restored_data_backup_cannot_bring_a_forgotten_unit_back) {
  char *dir = st_tmpdir();
  char extra[1024];
  snprintf(extra, sizeof extra, "\"envelope\": {\"keystore\": {\"path\": \"%s/keys.db\"}}", dir);
  snap_keyring *kr = ring_with(1, 0x44, 0, 0);
  snap_options *o = envelope_opts(kr, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, extra, o);
  const char *pids[] = {"carol", "dave", "erin"};
  for (int i = 0; i < 3; i++)
    save_state(st, pids[i], 1, "{\"ok\":true}");
  snap_store_close(st);
  char *data = st_join(dir, "data.db"), *keys = st_join(dir, "keys.db");
  char *backup = st_join(dir, "backup.db");
  cr_assert_eq(raw_int(data, "SELECT count(*) FROM snapshots_keys"), 0,
               "the data file holds no key");
  cr_assert_eq(raw_int(keys, "SELECT count(*) FROM snapshots_keys"), 3);
  copy_file(data, backup); /* a file copy of the closed data base */
  st = open_at(dir, extra, o);
  snap_forget_report rep;
  cr_assert_eq(snap_forget(st, "dave", &rep), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(rep.keys, 1);
  snap_store_close(st);
  /* Restore the data backup beside the current key store. */
  unlink(data);
  char *wal = st_join(dir, "data.db-wal"), *shm = st_join(dir, "data.db-shm");
  unlink(wal);
  unlink(shm);
  copy_file(backup, data);
  st = open_at(dir, extra, o);
  expect_state(st, "carol", 1, "{\"ok\":true}");
  expect_state(st, "erin", 1, "{\"ok\":true}");
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, "dave", NULL, &s);
  cr_assert_eq(rc, SNAP_ENOKEY, "%d %s", rc, snap_error_message());
  cr_assert_null(s);
  cr_assert(strstr(snap_error_message(), "'dave' was forgotten"), "%s", snap_error_message());
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(data);
  free(keys);
  free(backup);
  free(wal);
  free(shm);
  st_rmtree(dir);
  free(dir);
}

Test(envelope, a_prefix_unit_is_forgotten_with_every_pid_of_it) {
  char *dir = st_tmpdir();
  snap_keyring *kr = ring_with(1, 0x55, 0, 0);
  snap_options *o = envelope_opts(kr, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, "\"envelope\": {\"unit\": \"prefix\", \"separator\": \":\"}", o);
  const char *pids[] = {"acme", "acme:1", "acme:2", "acme2:1", "acme!x", "beta:1"};
  for (int i = 0; i < 6; i++)
    save_state(st, pids[i], 1, "{}");
  char unit[64];
  cr_assert_eq(snap_store_unit_of(st, "acme:order:7", unit, sizeof unit), SNAP_OK);
  cr_assert_str_eq(unit, "acme");
  snap_store_close(st);
  char *path = st_join(dir, "data.db");
  cr_assert_eq(raw_int(path, "SELECT count(*) FROM snapshots_keys"), 4,
               "acme, acme2, acme!x and beta");
  st = open_at(dir, "\"envelope\": {\"unit\": \"prefix\", \"separator\": \":\"}", o);
  snap_forget_report rep;
  cr_assert_eq(snap_forget(st, "acme:1", &rep), SNAP_EINVAL, "a pid is not a prefix unit");
  cr_assert_eq(snap_forget(st, "acme", &rep), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(rep.keys, 1);
  cr_assert_eq(rep.pids, 3, "acme, acme:1 and acme:2");
  for (int i = 0; i < 6; i++) {
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_latest(st, pids[i], NULL, &s), SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(s != NULL, i >= 3, "%s", pids[i]);
    snap_snapshot_free(s);
  }
  snap_store_close(st);
  free(path);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

static int count_pages(void *ud, const snap_rewrap_progress *p) {
  (void)p;
  (*(int *)ud)++;
  return SNAP_OK;
}

Test(envelope, rewrap_moves_every_key_to_the_active_master_key) {
  char *dir = st_tmpdir();
  snap_keyring *old = ring_with(1, 0x66, 0, 0);
  snap_options *o = envelope_opts(old, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, "\"synchronous\": \"normal\"", o);
  char pid[32];
  for (int i = 0; i < 4500; i++) {
    snprintf(pid, sizeof pid, "actor-%05d", i);
    save_state(st, pid, 1, "{\"n\":1}");
  }
  snap_store_close(st);
  snap_options_free(o);
  /* Rotation: version 2 becomes active; version 1 is still there to unwrap. */
  snap_keyring *both = ring_with(1, 0x66, 2, 0x77);
  cr_assert_eq(snap_keyring_set_active(both, 2), SNAP_OK);
  o = envelope_opts(both, SNAP_KEYS_ENVELOPE);
  st = open_at(dir, "", o);
  snap_rewrap_progress pr;
  int pages = 0;
  cr_assert_eq(snap_rewrap(st, NULL, NULL, count_pages, &pages, &pr), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(pr.rewrapped, 4500);
  cr_assert_eq(pr.seen, 4500);
  cr_assert(pages >= 2, "progress after each page (%d)", pages);
  cr_assert_eq(snap_rewrap(st, NULL, NULL, NULL, NULL, &pr), SNAP_OK);
  cr_assert_eq(pr.rewrapped, 0, "a rerun finds nothing to do");
  cr_assert_eq(pr.current, 4500);
  snap_store_close(st);
  snap_options_free(o);
  char *path = st_join(dir, "data.db");
  cr_assert_eq(raw_int(path, "SELECT count(*) FROM snapshots_keys WHERE master_version = 2"), 4500);
  free(path);
  /* Version 1 retired: every body still loads. */
  snap_keyring *new_only = ring_with(2, 0x77, 0, 0);
  o = envelope_opts(new_only, SNAP_KEYS_ENVELOPE);
  st = open_at(dir, "", o);
  expect_state(st, "actor-00000", 1, "{\"n\":1}");
  expect_state(st, "actor-04499", 1, "{\"n\":1}");
  snap_store_close(st);
  snap_options_free(o);
  /* A wrong master key of the same version never unwraps. */
  snap_keyring *wrong = ring_with(2, 0x78, 0, 0);
  o = envelope_opts(wrong, SNAP_KEYS_ENVELOPE);
  st = open_at(dir, "", o);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "actor-00001", NULL, &s), SNAP_EAUTH, "%s",
               snap_error_message());
  cr_assert_null(s);
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(old);
  snap_keyring_free(both);
  snap_keyring_free(new_only);
  snap_keyring_free(wrong);
  st_rmtree(dir);
  free(dir);
}

/* A wrapped key is bound to its data set, unit and context, and its header
 * (master version, generation) is authenticated. */
Test(envelope, a_wrapped_key_opens_only_where_it_was_wrapped) {
  char *dir = st_tmpdir();
  snap_keyring *kr = ring_with(1, 0x12, 0, 0);
  snap_options *o = envelope_opts(kr, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, "", o);
  save_state(st, "frank", 1, "{}");
  snap_store_close(st);
  char *path = st_join(dir, "data.db");
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT wrapped FROM snapshots_keys WHERE unit = 'frank'",
                                  -1, &q, NULL),
               SQLITE_OK);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  uint8_t rec[SNAP_WRAPPED_KEY_BYTES];
  cr_assert_eq(sqlite3_column_bytes(q, 0), (int)sizeof rec);
  memcpy(rec, sqlite3_column_blob(q, 0), sizeof rec);
  sqlite3_finalize(q);
  sqlite3_close(db);
  uint32_t mv = 0, gen = 0;
  cr_assert_eq(snap_wrapped_key_inspect(rec, sizeof rec, &mv, &gen), SNAP_OK);
  cr_assert_eq(mv, 1);
  cr_assert_eq(gen, 1);
  cr_assert_eq(snap_wrapped_key_verify(kr, CTX, "snapshots", "frank", rec, sizeof rec), SNAP_OK,
               "%s", snap_error_message());
  cr_assert_eq(snap_wrapped_key_verify(kr, CTX, "snapshots", "grace", rec, sizeof rec),
               SNAP_EAUTH);
  cr_assert_eq(snap_wrapped_key_verify(kr, CTX, "other", "frank", rec, sizeof rec), SNAP_EAUTH);
  cr_assert_eq(snap_wrapped_key_verify(kr, "another/context", "snapshots", "frank", rec,
                                       sizeof rec),
               SNAP_EAUTH);
  for (size_t i = 0; i < sizeof rec; i++) {
    uint8_t bad[SNAP_WRAPPED_KEY_BYTES];
    memcpy(bad, rec, sizeof bad);
    bad[i] ^= 0x01;
    int rc = snap_wrapped_key_verify(kr, CTX, "snapshots", "frank", bad, sizeof bad);
    cr_assert_neq(rc, SNAP_OK, "byte %zu changed still verifies", i);
  }
  cr_assert_eq(snap_wrapped_key_verify(kr, CTX, "snapshots", "frank", rec, sizeof rec - 1),
               SNAP_ECORRUPT);
  snap_keyring *other = ring_with(3, 0x12, 0, 0);
  cr_assert_eq(snap_wrapped_key_verify(other, CTX, "snapshots", "frank", rec, sizeof rec),
               SNAP_ENOKEY, "version 1 is not in that keyring");
  snap_keyring_free(other);
  free(path);
  snap_options_free(o);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

Test(envelope, a_small_cache_evicts_and_every_unit_still_loads) {
  fixture f = fixture_open(0x13, 0, "\"envelope\": {\"cache_size\": 2}");
  snap_store *st = f.st;
  char pid[32];
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 7; i++) {
      snprintf(pid, sizeof pid, "u%d", i);
      if (round == 0)
        save_state(st, pid, 1, "{\"x\":1}");
      else
        expect_state(st, pid, 1, "{\"x\":1}");
    }
  fixture_close(&f);
}

Test(envelope, the_envelope_configuration_is_strict) {
  static const struct {
    const char *cfg, *names;
  } bad[] = {
      {"{\"path\": \"x.db\", \"envelope\": {\"separator\": \":\"}}", "envelope.separator"},
      {"{\"path\": \"x.db\", \"envelope\": {\"unit\": \"prefix\"}}", "envelope.separator"},
      {"{\"path\": \"x.db\", \"envelope\": {\"unit\": \"tenant\"}}", "envelope.unit"},
      {"{\"path\": \"x.db\", \"envelope\": {\"cache_size\": 0}}", "envelope.cache_size"},
      {"{\"path\": \"x.db\", \"envelope\": {\"cahce_size\": 4}}", "envelope.cahce_size"},
      {"{\"path\": \"x.db\", \"envelope\": {\"keystore\": {\"paht\": \"k.db\"}}}",
       "envelope.keystore"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snap_store *st = NULL;
    int rc = snap_store_open_backend(&st, snap_backend_sqlite(), bad[i].cfg);
    cr_assert_eq(rc, SNAP_ECONFIG, "%s: %d %s", bad[i].cfg, rc, snap_error_message());
    cr_assert(strstr(snap_error_message(), bad[i].names), "%s: %s", bad[i].cfg,
              snap_error_message());
    cr_assert_null(st);
  }
}

Test(envelope, key_creation_misses_forgets_and_rewraps_are_counted_and_exported) {
  fixture f = fixture_open(0x14, 0x15, "");
  snap_store *st = f.st;
  save_state(st, "a", 1, "{}");
  save_state(st, "b", 1, "{}");
  save_state(st, "a", 2, "{}");
  cr_assert_eq(snap_keyring_set_active(f.kr, 2), SNAP_OK);
  snap_rewrap_progress pr;
  cr_assert_eq(snap_rewrap(st, NULL, NULL, NULL, NULL, &pr), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_forget(st, "b", NULL), SNAP_OK);
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  cr_assert_eq(m.keys_created, 2);
  cr_assert_eq(m.key_cache_misses, 2, "the first save of each unit");
  cr_assert_eq(m.keys_rewrapped, 2);
  cr_assert_eq(m.units_forgotten, 1);
  char *text = NULL;
  cr_assert_eq(snap_metrics_prometheus(&m, NULL, &text, NULL), SNAP_OK);
  cr_assert(strstr(text, "snapstore_envelope_keys_total{event=\"created\"} 2"), "%s", text);
  cr_assert(strstr(text, "snapstore_envelope_keys_total{event=\"forgotten\"} 1"), "%s", text);
  cr_assert(strstr(text, "snapstore_envelope_keys_total{event=\"rewrapped\"} 2"), "%s", text);
  cr_assert(strstr(text, "snapstore_envelope_key_cache_misses_total 2"), "%s", text);
  snap_free(text);
  fixture_close(&f);
}

Test(envelope, forget_on_the_memory_backend_deletes_the_snapshots) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_memory(), NULL), SNAP_OK);
  cr_assert_eq(snap_save(st, "m", 1, SNAP_FORMAT_JSON, "{}", 2, NULL, NULL), SNAP_OK);
  snap_forget_report rep;
  cr_assert_eq(snap_forget(st, "m", &rep), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(rep.keys, 0, "no key was ever made");
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, "m", NULL, &s), SNAP_OK);
  cr_assert_null(s);
  snap_store_close(st);
}

/* A separate key store is backed up to its own file, after the data. */
Test(envelope, a_separate_key_store_is_backed_up_to_its_own_file) {
  char *dir = st_tmpdir();
  char extra[1024];
  snprintf(extra, sizeof extra, "\"envelope\": {\"keystore\": {\"path\": \"%s/keys.db\"}}", dir);
  snap_keyring *kr = ring_with(1, 0x51, 0, 0);
  snap_options *o = envelope_opts(kr, SNAP_KEYS_ENVELOPE);
  snap_store *st = open_at(dir, extra, o);
  save_state(st, "fay", 1, "{\"f\":1}");
  save_state(st, "gil", 1, "{\"g\":1}");
  bool apart = false;
  cr_assert_eq(snap_store_keys_apart(st, &apart), SNAP_OK);
  cr_assert(apart);
  char *data_b = st_join(dir, "data-backup.db"), *keys_b = st_join(dir, "keys-backup.db");
  cr_assert_eq(snap_store_backup(st, data_b), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_store_backup_keys(st, keys_b), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_store_backup_keys(st, keys_b), SNAP_EINVAL, "an existing file");
  cr_assert_eq(snap_store_backup_keys(st, ""), SNAP_EINVAL);
  cr_assert_eq(snap_store_backup_keys(NULL, keys_b), SNAP_EINVAL);
  cr_assert_eq(snap_store_keys_apart(st, NULL), SNAP_EINVAL);
  snap_store_close(st);
  cr_assert_eq(raw_int(data_b, "SELECT count(*) FROM snapshots_keys"), 0, "no key in the data's");
  cr_assert_eq(raw_int(keys_b, "SELECT count(*) FROM snapshots_keys"), 2);
  cr_assert_eq(raw_int(keys_b, "SELECT count(*) FROM snapshots"), 0, "no body in the keys'");
  /* The two backups together are the store. */
  char cfg[2048];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"envelope\": {\"keystore\": {\"path\": \"%s\"}}}",
           data_b, keys_b);
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK);
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  expect_state(st, "fay", 1, "{\"f\":1}");
  expect_state(st, "gil", 1, "{\"g\":1}");
  snap_store_close(st);
  /* A store keeping its keys in its data has no key store to back up. */
  st = open_at(dir, "", o);
  cr_assert_eq(snap_store_keys_apart(st, &apart), SNAP_OK);
  cr_assert(!apart);
  cr_assert_eq(snap_store_backup_keys(st, keys_b), SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), "no separate key store"), "%s", snap_error_message());
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(data_b);
  free(keys_b);
  st_rmtree(dir);
  free(dir);
}
