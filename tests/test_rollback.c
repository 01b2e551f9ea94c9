/* Rollback through damaged bodies. Someone who can write the database but
 * holds no key must not be able to make a load return an older snapshot by
 * damaging the newest one: a reader that holds keys refuses every body it
 * cannot authenticate (header bytes, truncation, extension), while a keyless
 * reader of unauthenticated bodies keeps falling back over accidental damage.
 * The bodies are edited with the sqlite3 API while the store is closed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

#define PID "rollback/pid"
#define CONTEXT "test/rollback/v1"

/* ---- the database, edited behind the store ------------------------------ */

static sqlite3 *raw_open(const char *path) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK, "%s", path);
  sqlite3_busy_timeout(db, 5000);
  cr_assert_eq(sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL, NULL, NULL), SQLITE_OK);
  return db;
}

/* The stored body of (PID, seq), malloc'd. */
static uint8_t *raw_body(const char *path, int64_t seq, size_t *len) {
  sqlite3 *db = raw_open(path);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT body FROM snapshots WHERE pid = ?1 AND seq = ?2", -1,
                                  &q, NULL),
               SQLITE_OK, "%s", sqlite3_errmsg(db));
  sqlite3_bind_text(q, 1, PID, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, seq);
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  *len = (size_t)sqlite3_column_bytes(q, 0);
  uint8_t *b = malloc(*len + 1);
  memcpy(b, sqlite3_column_blob(q, 0), *len);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return b;
}

static void raw_set_body(const char *path, int64_t seq, const uint8_t *b, size_t len) {
  sqlite3 *db = raw_open(path);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(
      sqlite3_prepare_v2(db, "UPDATE snapshots SET body = ?3 WHERE pid = ?1 AND seq = ?2", -1, &q,
                         NULL),
      SQLITE_OK, "%s", sqlite3_errmsg(db));
  sqlite3_bind_text(q, 1, PID, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, seq);
  /* A zero-length blob, not NULL, for the empty body. */
  sqlite3_bind_blob(q, 3, len ? (const void *)b : "", (int)len, SQLITE_TRANSIENT);
  cr_assert_eq(sqlite3_step(q), SQLITE_DONE, "%s", sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_changes(db), 1);
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

/* ---- stores, options and states ----------------------------------------- */

static snap_store *open_store(const char *path) {
  char cfg[4096];
  /* synchronous = normal: durability is not what this test is about. */
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"keep\": 0, \"synchronous\": \"normal\"}", path);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK, "%s",
               snap_error_message());
  return st;
}

static snap_keyring *ring(void) {
  snap_keyring *kr = NULL;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(0xa0 + i);
  cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  return kr;
}

enum auth { AUTH_NONE, AUTH_AEAD, AUTH_MAC };

static snap_options *options(bool zlib, enum auth a, snap_keyring *kr, bool accept_unauth) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  if (zlib) {
    cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6), SNAP_OK);
    cr_assert_eq(snap_options_set_compression_min_size(o, 0), SNAP_OK);
  }
  if (a == AUTH_AEAD)
    cr_assert_eq(snap_options_set_encryption(o, kr, CONTEXT), SNAP_OK);
  if (a == AUTH_MAC)
    cr_assert_eq(snap_options_set_integrity(o, kr, CONTEXT), SNAP_OK);
  if (accept_unauth)
    cr_assert_eq(snap_options_set_accept_unauthenticated(o, true), SNAP_OK);
  return o;
}

/* A compressible JSON state carrying a marker. */
static char *state_of(const char *marker) {
  char *s = malloc(2048);
  size_t n = (size_t)sprintf(s, "{\"marker\":\"%s\",\"entries\":[", marker);
  for (int i = 0; i < 30; i++)
    n += (size_t)sprintf(s + n, "%s{\"account\":%d,\"amount\":100}", i ? "," : "", i % 7);
  strcpy(s + n, "]}");
  return s;
}

/* ---- the mutations ------------------------------------------------------- */

typedef struct mutation {
  char what[64];
  int header_byte; /* -1 when the length changes */
  uint8_t *body;
  size_t len;
} mutation;

/* Every header byte XORed with 0x01, 0x80 and 0xff; truncations to several
 * lengths; extensions by 1, 16 and 1024 bytes. Returns the count. */
static size_t mutations_of(const uint8_t *b, size_t n, size_t overhead, mutation *m,
                           size_t cap) {
  size_t k = 0;
  static const uint8_t flips[] = {0x01, 0x80, 0xff};
  for (int i = 0; i < 20; i++)
    for (size_t f = 0; f < sizeof flips; f++) {
      cr_assert_lt(k, cap);
      m[k].body = malloc(n);
      memcpy(m[k].body, b, n);
      m[k].body[i] ^= flips[f];
      m[k].len = n;
      m[k].header_byte = i;
      snprintf(m[k].what, sizeof m[k].what, "byte %d ^ 0x%02x", i, flips[f]);
      k++;
    }
  const size_t cuts[] = {n - 1, n - 4, n - 16, overhead, overhead - 1, 20, 19, 4, 3, 0};
  for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
    cr_assert_lt(k, cap);
    m[k].body = malloc(n + 1);
    memcpy(m[k].body, b, cuts[c]);
    m[k].len = cuts[c];
    m[k].header_byte = -1;
    snprintf(m[k].what, sizeof m[k].what, "truncated to %zu of %zu bytes", cuts[c], n);
    k++;
  }
  const size_t grows[] = {1, 16, 1024};
  for (size_t g = 0; g < sizeof grows / sizeof grows[0]; g++) {
    cr_assert_lt(k, cap);
    m[k].body = malloc(n + grows[g]);
    memcpy(m[k].body, b, n);
    for (size_t j = 0; j < grows[g]; j++)
      m[k].body[n + j] = (uint8_t)(j * 37 + 1);
    m[k].len = n + grows[g];
    m[k].header_byte = -1;
    snprintf(m[k].what, sizeof m[k].what, "extended by %zu bytes", grows[g]);
    k++;
  }
  return k;
}

/* ---- the rule ------------------------------------------------------------ */

/* What a keyed reader may answer: EAUTH, or for the fields that name a key
 * version or a length, the equally final ENOKEY or ETOOBIG. Never a snapshot,
 * never a skip. */
static void expect_refused(snap_store *st, const snap_options *reader, const mutation *m,
                           const char *combo, const char *who) {
  snap_snapshot *s = (snap_snapshot *)1;
  int rc = snap_load_latest(st, PID, reader, &s);
  cr_assert_null(s, "[%s, %s, %s] a snapshot was returned (rc %d, seq %" PRId64 ", skipped %u)",
                 combo, who, m->what, rc, s ? s->seq : -1, s ? s->skipped : 0u);
  bool key_field = m->header_byte >= 8 && m->header_byte <= 11;
  bool len_field = m->header_byte >= 12 && m->header_byte <= 19;
  cr_assert(rc == SNAP_EAUTH || (key_field && rc == SNAP_ENOKEY) ||
                (len_field && rc == SNAP_ETOOBIG),
            "[%s, %s, %s] rc %d (%s): %s", combo, who, m->what, rc, snap_strerror(rc),
            snap_error_message());
}

/* A keyless reader of an unauthenticated body falls back to the older one. */
static void expect_fallback(snap_store *st, const mutation *m, const char *combo) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, PID, NULL, &s);
  bool len_field = m->header_byte >= 12 && m->header_byte <= 19;
  if (len_field && rc == SNAP_ETOOBIG)
    return; /* a declared length over the reader's limit: refused, not skipped */
  cr_assert_eq(rc, SNAP_OK, "[%s, keyless, %s] rc %d: %s", combo, m->what, rc,
               snap_error_message());
  cr_assert_not_null(s, "[%s, keyless, %s]", combo, m->what);
  cr_assert_eq(s->seq, 1, "[%s, keyless, %s]", combo, m->what);
  cr_assert_eq(s->skipped, 1u, "[%s, keyless, %s]", combo, m->what);
  cr_assert(strstr((const char *)s->data, "\"old\"") != NULL);
  snap_snapshot_free(s);
}

Test(rollback, damaged_newest_body_is_never_skipped_by_a_keyed_reader) {
  char *dir = st_tmpdir();
  cr_assert_not_null(dir);
  snap_keyring *kr = ring();
  char *old_state = state_of("old"), *new_state = state_of("new");
  size_t cases = 0;

  for (int combo = 0; combo < 6; combo++) {
    const bool zlib = combo & 1;
    const enum auth a = (enum auth)(combo / 2);
    char name[48];
    snprintf(name, sizeof name, "%s%s", zlib ? "zlib+" : "",
             a == AUTH_AEAD ? "aead" : a == AUTH_MAC ? "mac" : "none");
    char file[64];
    snprintf(file, sizeof file, "combo-%d.db", combo);
    char *path = st_join(dir, file);

    snap_options *writer = options(zlib, a, kr, false);
    /* The strict reader: the writer's key, or for unauthenticated bodies an
     * encryption key, which therefore expects every body to carry one. */
    snap_options *strict = options(false, a == AUTH_NONE ? AUTH_AEAD : a, kr, false);
    snap_options *migrating = options(false, a == AUTH_NONE ? AUTH_AEAD : a, kr, true);
    const unsigned want_stages = (zlib ? SNAP_STAGE_COMPRESSED : 0) |
                                 (a == AUTH_AEAD  ? SNAP_STAGE_ENCRYPTED
                                  : a == AUTH_MAC ? SNAP_STAGE_MAC
                                                  : 0);

    snap_store *st = open_store(path);
    snap_meta meta;
    cr_assert_eq(snap_save(st, PID, 1, SNAP_FORMAT_JSON, old_state, strlen(old_state), writer,
                           NULL),
                 SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(snap_save(st, PID, 2, SNAP_FORMAT_JSON, new_state, strlen(new_state), writer,
                           &meta),
                 SNAP_OK, "%s", snap_error_message());
    cr_assert_eq(meta.stages, want_stages, "[%s] stages %u", name, meta.stages);
    snap_store_close(st);

    size_t n = 0;
    uint8_t *orig = raw_body(path, 2, &n);
    const size_t overhead = 20 + (a == AUTH_AEAD ? 24 + 16 : a == AUTH_MAC ? 32 : 4);
    mutation m[128];
    size_t nm = mutations_of(orig, n, overhead, m, 128);

    for (size_t i = 0; i < nm; i++) {
      raw_set_body(path, 2, m[i].body, m[i].len);
      st = open_store(path);
      expect_refused(st, strict, &m[i], name, "keyed reader");
      if (a == AUTH_NONE) {
        expect_fallback(st, &m[i], name);
      } else if (m[i].len > 6) {
        /* A migrating reader (accept_unauthenticated) still refuses a body
         * whose stage byte declares a key: every flip here keeps one set.
         * Cut before byte 6, nothing declares one any more (see below). */
        expect_refused(st, migrating, &m[i], name, "migrating reader");
      }
      snap_store_close(st);
      cases++;
    }

    /* Intact again: every reader that can read it gets the newest state. */
    raw_set_body(path, 2, orig, n);
    st = open_store(path);
    snap_snapshot *s = NULL;
    cr_assert_eq(snap_load_latest(st, PID, a == AUTH_NONE ? NULL : strict, &s), SNAP_OK, "%s",
                 snap_error_message());
    cr_assert_eq(s->seq, 2);
    cr_assert_eq(s->skipped, 0u);
    cr_assert_eq(s->len, strlen(new_state));
    cr_assert_eq(memcmp(s->data, new_state, s->len), 0);
    snap_snapshot_free(s);
    snap_store_close(st);

    for (size_t i = 0; i < nm; i++)
      free(m[i].body);
    free(orig);
    snap_options_free(writer);
    snap_options_free(strict);
    snap_options_free(migrating);
    free(path);
  }
  cr_assert_eq(cases, 6u * (60 + 10 + 3));
  free(old_state);
  free(new_state);
  snap_keyring_free(kr);
  st_rmtree(dir);
  free(dir);
}

/* The limit of the rule, stated as a test: a reader that accepts
 * unauthenticated bodies (the migration switch) cannot tell an encrypted body
 * whose stage byte was cleared from a damaged plaintext one, so it falls back.
 * Such a reader accepts forged plaintext anyway; the switch is for migrations
 * only (docs/STORE.md). */
Test(rollback, a_migrating_reader_falls_back_when_the_stage_byte_no_longer_declares_a_key) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "migrating.db");
  snap_keyring *kr = ring();
  snap_options *writer = options(false, AUTH_AEAD, kr, false);
  snap_options *strict = options(false, AUTH_AEAD, kr, false);
  snap_options *migrating = options(false, AUTH_AEAD, kr, true);
  char *old_state = state_of("old"), *new_state = state_of("new");
  snap_store *st = open_store(path);
  cr_assert_eq(snap_save(st, PID, 1, SNAP_FORMAT_JSON, old_state, strlen(old_state), writer, NULL),
               SNAP_OK);
  cr_assert_eq(snap_save(st, PID, 2, SNAP_FORMAT_JSON, new_state, strlen(new_state), writer, NULL),
               SNAP_OK);
  snap_store_close(st);
  size_t n = 0;
  uint8_t *b = raw_body(path, 2, &n);
  b[6] = 0; /* no stage: an unauthenticated body with a key version, i.e. damaged */
  raw_set_body(path, 2, b, n);
  st = open_store(path);
  snap_snapshot *s = (snap_snapshot *)1;
  cr_assert_eq(snap_load_latest(st, PID, strict, &s), SNAP_EAUTH, "%s", snap_error_message());
  cr_assert_null(s);
  cr_assert_eq(snap_load_latest(st, PID, migrating, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(s->seq, 1);
  cr_assert_eq(s->skipped, 1u);
  snap_snapshot_free(s);
  snap_store_close(st);
  free(b);
  free(old_state);
  free(new_state);
  snap_options_free(writer);
  snap_options_free(strict);
  snap_options_free(migrating);
  snap_keyring_free(kr);
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* The timestamp column is not authenticated (docs/STORE.md, "What the body
 * does not bind"): whoever can write the database can change which snapshot a
 * timestamp-bounded load returns, and the timestamp it reports, but never the
 * state returned for a (pid, seq): that stays bound to its body. */
Test(rollback, an_edited_timestamp_changes_selection_but_not_the_state) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "ts.db");
  snap_keyring *kr = ring();
  snap_options *o = options(false, AUTH_AEAD, kr, false);
  char *old_state = state_of("old"), *new_state = state_of("new");
  snap_store *st = open_store(path);
  cr_assert_eq(snap_save_at(st, PID, 1, 1000, SNAP_FORMAT_JSON, old_state, strlen(old_state), o,
                            NULL),
               SNAP_OK);
  cr_assert_eq(snap_save_at(st, PID, 2, 2000, SNAP_FORMAT_JSON, new_state, strlen(new_state), o,
                            NULL),
               SNAP_OK);
  snap_store_close(st);

  sqlite3 *db = raw_open(path);
  cr_assert_eq(sqlite3_exec(db, "UPDATE snapshots SET ts = 500 WHERE seq = 2", NULL, NULL, NULL),
               SQLITE_OK);
  sqlite3_close(db);

  st = open_store(path);
  snap_criteria before_1500 = {0, INT64_MAX, 0, 1500};
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load(st, PID, &before_1500, o, &s), SNAP_OK, "%s", snap_error_message());
  /* Without the edit this is seq 1 (taken at 1000); with it, seq 2. */
  cr_assert_eq(s->seq, 2);
  cr_assert_eq(s->timestamp, 500, "the edited column is what is reported");
  cr_assert(s->len == strlen(new_state) && memcmp(s->data, new_state, s->len) == 0,
            "the state is still the authentic one of seq 2");
  snap_snapshot_free(s);
  snap_store_close(st);
  free(old_state);
  free(new_state);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(path);
  st_rmtree(dir);
  free(dir);
}
