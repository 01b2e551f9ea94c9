/* What every conformance case stands on: opening a store on the backend
 * under test in a fresh directory, the TCK's five snapshots, loads and their
 * checks, keyrings and large states; and the table of cases (conformance.h). */
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

bool cf_str_eq(const char *a, const char *b) { return a && b ? strcmp(a, b) == 0 : a == b; }

bool cf_needs_abi(const cf_backend *bc, unsigned version, const char *what) {
  unsigned has = bc->backend()->abi_version;
  if (has >= version)
    return true;
  cf_skip(bc, "needs backend ABI version %u (%s); this backend implements version %u", version,
          what, has);
  return false;
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                   */
/* ------------------------------------------------------------------------ */

void cf_case_id(const char *dir, char *buf, size_t cap) {
  /* st_tmpdir() ends in "store-XXXXXX" with [A-Za-z0-9] for the X's. */
  const char *dash = strrchr(dir, '-');
  snprintf(buf, cap, "conf_%s", dash ? dash + 1 : "x");
}

/* "@DIR@" and "@ID@" of `config` replaced for the case directory `dir`. */
static bool expand(const char *config, const char *dir, char *buf, size_t cap) {
  char id[32];
  cf_case_id(dir, id, sizeof id);
  size_t n = 0;
  for (const char *p = config; *p;) {
    const char *with = NULL;
    if (strncmp(p, "@DIR@", 5) == 0)
      with = dir;
    else if (strncmp(p, "@ID@", 4) == 0)
      with = id;
    size_t len = with ? strlen(with) : 1;
    if (n + len >= cap)
      return false;
    memcpy(buf + n, with ? with : p, len);
    n += len;
    p += with ? (with == dir ? 5 : 4) : 1;
  }
  buf[n] = 0;
  return true;
}

bool cf_backend_keys(const cf_backend *bc, const char *dir, char *buf, size_t cap) {
  if (!bc->keys)
    return expand(bc->config ? bc->config : "", dir, buf, cap);
  bc->keys(dir, buf, cap);
  return true;
}

int fx_try_open(const cf_backend *bc, const char *dir, const char *store_keys, snap_store **st) {
  char backend_keys[2048], config[4096];
  cf_assert(cf_backend_keys(bc, dir, backend_keys, sizeof backend_keys),
            "[%s] the backend's configuration is over %zu bytes", bc->name, sizeof backend_keys);
  int n = snprintf(config, sizeof config, "{%s%s%s}", backend_keys,
                   backend_keys[0] && store_keys[0] ? ", " : "", store_keys);
  cf_assert(n > 0 && (size_t)n < sizeof config, "[%s] configuration too long", bc->name);
  return snap_store_open_backend(st, bc->backend(), config);
}

void fx_open(fx *f, const cf_backend *bc, const char *store_keys) {
  memset(f, 0, sizeof *f);
  f->bc = bc;
  f->dir = st_tmpdir();
  cf_assert_not_null(f->dir, "[%s] cannot create a temp directory", bc->name);
  int rc = fx_try_open(bc, f->dir, store_keys, &f->st);
  cf_assert_eq(rc, SNAP_OK, "[%s] open: %s", bc->name, snap_error_message());
}

void fx_reopen(fx *f, const char *store_keys) {
  snap_store_close(f->st);
  f->st = NULL;
  int rc = fx_try_open(f->bc, f->dir, store_keys, &f->st);
  cf_assert_eq(rc, SNAP_OK, "[%s] reopen: %s", f->bc->name, snap_error_message());
}

void fx_close(fx *f) {
  snap_store_close(f->st);
  st_rmtree(f->dir);
  free(f->dir);
}

/* The TCK fixture: seq 11..15 with payloads "s-1".."s-5" and increasing timestamps. */
void fx_fill(fx *f, const char *pid) {
  for (int i = 0; i < 5; i++) {
    char state[16];
    snprintf(state, sizeof state, "\"s-%d\"", i + 1);
    int rc = snap_save_at(f->st, pid, 11 + i, 100000 + 1000 * i, SNAP_FORMAT_JSON, state,
                          strlen(state), NULL, &f->md[i]);
    cf_assert_eq(rc, SNAP_OK, "[%s] save seq %d: %s", f->bc->name, 11 + i, snap_error_message());
  }
}

snap_snapshot *fx_load(fx *f, const char *pid, snap_criteria c) {
  snap_snapshot *s = (snap_snapshot *)1;
  int rc = snap_load(f->st, pid, &c, NULL, &s);
  cf_assert_eq(rc, SNAP_OK, "[%s] load: %s", f->bc->name, snap_error_message());
  return s;
}

void fx_expect_none(fx *f, snap_snapshot *s, const char *what) {
  cf_assert_null(s, "[%s] %s: expected no snapshot, got seq %" PRId64, f->bc->name, what,
                 s ? s->seq : -1);
}

/* Expects the fixture's snapshot md[i] with payload "s-(i+1)". */
void fx_expect_md(fx *f, snap_snapshot *s, int i, const char *what) {
  cf_assert_not_null(s, "[%s] %s: expected seq %" PRId64 ", got none", f->bc->name, what,
                     f->md[i].seq);
  char state[16];
  snprintf(state, sizeof state, "\"s-%d\"", i + 1);
  cf_assert_eq(s->seq, f->md[i].seq, "[%s] %s: seq", f->bc->name, what);
  cf_assert_eq(s->timestamp, f->md[i].timestamp, "[%s] %s: timestamp", f->bc->name, what);
  cf_assert_eq(s->format, SNAP_FORMAT_JSON, "[%s] %s: format", f->bc->name, what);
  cf_assert_eq(s->len, strlen(state), "[%s] %s: length", f->bc->name, what);
  cf_assert_str_eq((const char *)s->data, state, "[%s] %s: payload", f->bc->name, what);
  snap_snapshot_free(s);
}

snap_criteria fx_crit(int64_t min_seq, int64_t max_seq, int64_t min_ts, int64_t max_ts) {
  return (snap_criteria){min_seq, max_seq, min_ts, max_ts};
}

snap_keyring *fx_keyring(uint8_t fill) {
  snap_keyring *kr = NULL;
  cf_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, fill, sizeof key);
  cf_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  return kr;
}

snap_options *fx_options(int zlib_level, snap_keyring *kr) {
  snap_options *o = NULL;
  cf_assert_eq(snap_options_new(&o), SNAP_OK);
  if (zlib_level)
    cf_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, zlib_level), SNAP_OK);
  if (kr)
    cf_assert_eq(snap_options_set_encryption(o, kr, "test/conformance/v1"), SNAP_OK);
  return o;
}

/* A compressible JSON state of about `n` bytes. */
char *fx_ledger(size_t n, const char *marker) {
  char *s = malloc(n + 64);
  size_t len = (size_t)sprintf(s, "[\"%s\"", marker);
  while (len < n)
    len += (size_t)sprintf(s + len, ",{\"account\":%zu,\"amount\":100}", len % 97);
  strcpy(s + len, "]");
  return s;
}

/* ------------------------------------------------------------------------ */
/* The table                                                                 */
/* ------------------------------------------------------------------------ */

#define CF_ENTRY(name) {#name, cf_case_##name},
const cf_case cf_cases[] = {CF_CASES(CF_ENTRY)};
#undef CF_ENTRY
const size_t cf_ncases = sizeof cf_cases / sizeof cf_cases[0];
