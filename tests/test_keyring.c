/* Keyrings, key files, key wiping, and persistence options (resolution,
 * restriction, argument checking), through the public API. */
#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap/pipeline.h"

static void fill_key(uint8_t k[SNAP_KEY_BYTES], uint8_t seed) {
  for (unsigned i = 0; i < SNAP_KEY_BYTES; i++)
    k[i] = (uint8_t)(seed ^ (i * 7));
}

static snap_keyring *new_ring(void) {
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  return kr;
}

static const char STATE[] = "{\"balance\":100,\"owner\":\"ada\",\"history\":[1,2,3,4,5,6,7,8]}";

static void encode_with(const snap_options *o, snap_buf *body, unsigned *stages) {
  cr_assert_eq(
      snap_body_encode("acct", 1, SNAP_FORMAT_JSON, STATE, sizeof STATE - 1, o, body, stages),
      SNAP_OK, "%s", snap_error_message());
}

static int decode_with(const snap_options *o, const snap_buf *body) {
  snap_buf back = SNAP_BUF_INIT;
  int rc = snap_body_decode("acct", 1, body->data, body->len, o, &back, NULL, NULL);
  if (rc == SNAP_OK)
    cr_assert(back.len == sizeof STATE - 1 && memcmp(back.data, STATE, back.len) == 0);
  snap_buf_dispose(&back);
  return rc;
}

static snap_options *enc_opts(snap_keyring *kr, const char *ctx) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, ctx), SNAP_OK);
  return o;
}

/* ---- keyring ------------------------------------------------------------- */

Test(keyring, add_activate_and_query) {
  snap_keyring *kr = new_ring();
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 1);
  cr_assert_eq(snap_keyring_active(kr), 0u);
  cr_assert_not(snap_keyring_has(kr, 1));
  cr_assert_eq(snap_keyring_add(kr, 5, k, sizeof k), SNAP_OK);
  cr_assert_eq(snap_keyring_active(kr), 5u, "the first key becomes active");
  fill_key(k, 2);
  cr_assert_eq(snap_keyring_add(kr, 6, k, sizeof k), SNAP_OK);
  cr_assert_eq(snap_keyring_active(kr), 5u);
  cr_assert(snap_keyring_has(kr, 5) && snap_keyring_has(kr, 6));
  cr_assert_not(snap_keyring_has(kr, 7));
  cr_assert_not(snap_keyring_has(kr, 0));
  cr_assert_eq(snap_keyring_set_active(kr, 6), SNAP_OK);
  cr_assert_eq(snap_keyring_active(kr), 6u);
  cr_assert_eq(snap_keyring_set_active(kr, 7), SNAP_ENOKEY);
  cr_assert(strstr(snap_error_message(), "key version 7"));
  cr_assert_eq(snap_keyring_active(kr), 6u, "a failed set_active changes nothing");
  for (uint32_t v = 10; v < 40; v++) { /* grows past the initial capacity */
    fill_key(k, (uint8_t)v);
    cr_assert_eq(snap_keyring_add(kr, v, k, sizeof k), SNAP_OK);
  }
  cr_assert(snap_keyring_has(kr, 39) && snap_keyring_has(kr, 5));
  snap_keyring_free(kr);
  snap_keyring_free(NULL);
}

Test(keyring, bad_keys_are_refused_and_change_nothing) {
  snap_keyring *kr = new_ring();
  uint8_t k[SNAP_KEY_BYTES + 1];
  fill_key(k, 9);
  cr_assert_eq(snap_keyring_add(kr, 1, k, SNAP_KEY_BYTES), SNAP_OK);
  snap_options *o = enc_opts(kr, "ctx");
  snap_buf body = SNAP_BUF_INIT;
  encode_with(o, &body, NULL);

  uint8_t other[SNAP_KEY_BYTES + 1];
  fill_key(other, 0x77);
  cr_assert_eq(snap_keyring_add(kr, 1, other, SNAP_KEY_BYTES), SNAP_EINVAL, "duplicate version");
  cr_assert(strstr(snap_error_message(), "key version 1"));
  cr_assert_eq(snap_keyring_add(kr, 2, other, 31), SNAP_EINVAL, "31-byte key");
  cr_assert(strstr(snap_error_message(), "31"));
  cr_assert_eq(snap_keyring_add(kr, 2, other, 33), SNAP_EINVAL, "33-byte key");
  cr_assert_eq(snap_keyring_add(kr, 0, other, SNAP_KEY_BYTES), SNAP_EINVAL, "version 0");
  cr_assert_eq(snap_keyring_add(kr, 2, NULL, SNAP_KEY_BYTES), SNAP_EINVAL);
  cr_assert_eq(snap_keyring_add(NULL, 2, other, SNAP_KEY_BYTES), SNAP_EINVAL);
  cr_assert_eq(snap_keyring_new(NULL), SNAP_EINVAL);
  cr_assert_eq(snap_keyring_set_active(NULL, 1), SNAP_EINVAL);
  /* Nothing changed: version 1 is still the original key, and alone. */
  cr_assert_not(snap_keyring_has(kr, 2));
  cr_assert_eq(snap_keyring_active(kr), 1u);
  cr_assert_eq(decode_with(o, &body), SNAP_OK);
  snap_buf_dispose(&body);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* ---- key files ----------------------------------------------------------- */

static char tmpdir[512];

static void make_tmpdir(void) {
  const char *base = getenv("SNAP_TEST_TMP");
  if (base && *base) {
    mkdir(base, 0700);
    snprintf(tmpdir, sizeof tmpdir, "%s/keyfiles-XXXXXX", base);
  } else {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/snap-keyfiles-XXXXXX");
  }
  cr_assert(mkdtemp(tmpdir), "mkdtemp %s: %s", tmpdir, strerror(errno));
}

static const char *key_file(const char *name, const void *content, size_t n, mode_t mode) {
  static char path[600];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
  cr_assert_eq(write(fd, content, n), (ssize_t)n);
  close(fd);
  cr_assert_eq(chmod(path, mode), 0);
  return path;
}

Test(keyfile, raw_and_hex_at_0600_are_the_same_key, .init = make_tmpdir) {
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 0x5a);
  char hex[2 * SNAP_KEY_BYTES + 8];
  for (unsigned i = 0; i < SNAP_KEY_BYTES; i++)
    sprintf(hex + 2 + 2 * i, "%02X", k[i]);
  hex[0] = ' ', hex[1] = '\n'; /* surrounding whitespace, upper case */
  strcpy(hex + 2 + 2 * SNAP_KEY_BYTES, "\r\n");

  snap_keyring *raw = new_ring(), *hexr = new_ring(), *mem = new_ring();
  cr_assert_eq(snap_keyring_add_file(raw, 3, key_file("raw.key", k, sizeof k, 0600)), SNAP_OK, "%s",
               snap_error_message());
  cr_assert_eq(snap_keyring_add_file(hexr, 3, key_file("hex.key", hex, strlen(hex), 0600)), SNAP_OK,
               "%s", snap_error_message());
  cr_assert_eq(snap_keyring_add_file(hexr, 4, key_file("ro.key", k, sizeof k, 0400)), SNAP_OK);
  cr_assert_eq(snap_keyring_add(mem, 3, k, sizeof k), SNAP_OK);
  cr_assert_eq(snap_keyring_active(raw), 3u);

  /* Encrypt with one, decrypt with the others. */
  snap_options *o_raw = enc_opts(raw, "c"), *o_hex = enc_opts(hexr, "c"),
               *o_mem = enc_opts(mem, "c");
  snap_buf body = SNAP_BUF_INIT;
  encode_with(o_raw, &body, NULL);
  cr_assert_eq(decode_with(o_hex, &body), SNAP_OK);
  cr_assert_eq(decode_with(o_mem, &body), SNAP_OK);
  encode_with(o_hex, &body, NULL);
  cr_assert_eq(decode_with(o_raw, &body), SNAP_OK);
  snap_buf_dispose(&body);
  snap_options_free(o_raw);
  snap_options_free(o_hex);
  snap_options_free(o_mem);
  snap_keyring_free(raw);
  snap_keyring_free(hexr);
  snap_keyring_free(mem);
}

Test(keyfile, loose_modes_bad_content_and_missing_files_are_refused, .init = make_tmpdir) {
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 1);
  snap_keyring *kr = new_ring();
  const mode_t loose[] = {0644, 0640, 0604, 0660, 0610, 0601};
  for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
    const char *p = key_file("loose.key", k, sizeof k, loose[i]);
    cr_assert_eq(snap_keyring_add_file(kr, 1, p), SNAP_EAUTH, "mode %04o", (unsigned)loose[i]);
    cr_assert(strstr(snap_error_message(), "loose.key"), "%s", snap_error_message());
  }
  cr_assert(strstr(snap_error_message(), "0601"), "%s", snap_error_message());
  /* 63 and 65 hex digits, a non-hex digit, 33 raw bytes, an empty file. */
  char h[80];
  memset(h, 'a', sizeof h);
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("h63", h, 63, 0600)), SNAP_EFORMAT);
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("h65", h, 65, 0600)), SNAP_EFORMAT);
  h[10] = 'g';
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("hg", h, 64, 0600)), SNAP_EFORMAT);
  h[10] = 'a';
  h[32] = ' '; /* whitespace inside */
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("hs", h, 65, 0600)), SNAP_EFORMAT);
  uint8_t r33[33] = {0};
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("r33", r33, 33, 0600)), SNAP_EFORMAT);
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("empty", "", 0, 0600)), SNAP_EFORMAT);
  uint8_t big[4096] = {0};
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("big", big, sizeof big, 0600)), SNAP_EFORMAT);
  char missing[600];
  snprintf(missing, sizeof missing, "%s/nope.key", tmpdir);
  cr_assert_eq(snap_keyring_add_file(kr, 1, missing), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "nope.key"));
  cr_assert_eq(snap_keyring_add_file(kr, 1, tmpdir), SNAP_EIO, "a directory");
  cr_assert_eq(snap_keyring_add_file(kr, 0, key_file("v0", k, sizeof k, 0600)), SNAP_EINVAL);
  cr_assert_eq(snap_keyring_add_file(kr, 1, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_keyring_active(kr), 0u, "nothing was added");
  /* A duplicate version from a file is refused like any other. */
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  cr_assert_eq(snap_keyring_add_file(kr, 1, key_file("dup", k, sizeof k, 0600)), SNAP_EINVAL);
  snap_keyring_free(kr);
}

/* A FIFO with no writer: opening it for reading blocks until one appears. The
 * call runs in a child with an alarm, so a blocking open fails this test
 * (the child dies of SIGALRM) instead of hanging the suite. */
Test(keyfile, fifo_is_refused_without_blocking, .init = make_tmpdir) {
  char fifo[600];
  snprintf(fifo, sizeof fifo, "%s/fifo.key", tmpdir);
  cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo %s: %s", fifo, strerror(errno));
  pid_t child = fork();
  cr_assert(child >= 0, "fork: %s", strerror(errno));
  if (child == 0) {
    alarm(20);
    snap_keyring *kr = NULL;
    if (snap_keyring_new(&kr) != SNAP_OK)
      _exit(3);
    int rc = snap_keyring_add_file(kr, 1, fifo);
    bool named = strstr(snap_error_message(), "fifo.key") != NULL &&
                 strstr(snap_error_message(), "not a regular file") != NULL;
    bool empty = snap_keyring_active(kr) == 0;
    snap_keyring_free(kr);
    _exit(rc == SNAP_EIO && named && empty ? 0 : 2);
  }
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(!WIFSIGNALED(status), "the child was killed by signal %d (SIGALRM: the open blocked)",
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "snap_keyring_add_file on a FIFO: not SNAP_EIO naming the file, or a key was added "
            "(exit %d)",
            WEXITSTATUS(status));
  unlink(fifo);
}

/* ---- key wiping ---------------------------------------------------------- */

#define MAX_SECURE 64
static struct secure_rec {
  void *p;
  size_t n;
  bool live;
} recs[MAX_SECURE];
static int nrecs, freed_clean, freed_dirty;

static void *rec_secure_malloc(size_t n, void *ud) {
  (void)ud;
  cr_assert_lt(nrecs, MAX_SECURE);
  void *p = malloc(n);
  recs[nrecs++] = (struct secure_rec){p, n, true};
  return p;
}

/* Receives the memory after the library wiped it: all of it must be zero. */
static void rec_secure_free(void *p, void *ud) {
  (void)ud;
  for (int i = 0; i < nrecs; i++) {
    if (recs[i].p == p && recs[i].live) {
      bool zero = true;
      for (size_t k = 0; k < recs[i].n; k++)
        zero &= ((uint8_t *)p)[k] == 0;
      if (zero)
        freed_clean++;
      else
        freed_dirty++;
      recs[i].live = false;
      free(p);
      return;
    }
  }
  cr_assert_fail("secure_free of memory secure_malloc never returned");
}

static bool key_is_in_secure_memory(const uint8_t k[SNAP_KEY_BYTES]) {
  for (int i = 0; i < nrecs; i++)
    if (recs[i].live && recs[i].n >= SNAP_KEY_BYTES && memcmp(recs[i].p, k, SNAP_KEY_BYTES) == 0)
      return true;
  return false;
}

Test(wipe, keyring_free_wipes_every_key, .init = make_tmpdir) {
  static const snap_allocator a = {NULL, NULL, NULL, rec_secure_malloc, rec_secure_free, NULL};
  cr_assert_eq(snap_allocator_set(&a), SNAP_OK);
  snap_keyring *kr = new_ring();
  uint8_t k1[SNAP_KEY_BYTES], k2[SNAP_KEY_BYTES], k3[SNAP_KEY_BYTES];
  fill_key(k1, 0xa1);
  fill_key(k2, 0xb2);
  fill_key(k3, 0xc3);
  cr_assert_eq(snap_keyring_add(kr, 1, k1, sizeof k1), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 2, k2, sizeof k2), SNAP_OK);
  cr_assert_eq(snap_keyring_add_file(kr, 3, key_file("k3", k3, sizeof k3, 0600)), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 2, k3, sizeof k3), SNAP_EINVAL,
               "the refused copy is wiped too");
  /* The keys really live in the memory the hooks handed out... */
  cr_assert(key_is_in_secure_memory(k1) && key_is_in_secure_memory(k2) &&
            key_is_in_secure_memory(k3));
  /* ...and are used from there. */
  snap_options *o = enc_opts(kr, "ctx");
  snap_buf body = SNAP_BUF_INIT;
  encode_with(o, &body, NULL);
  cr_assert_eq(decode_with(o, &body), SNAP_OK);
  snap_buf_dispose(&body);
  snap_options_free(o);
  int live_before = 0;
  for (int i = 0; i < nrecs; i++)
    live_before += recs[i].live;
  cr_assert_eq(live_before, 3, "one guarded allocation per key");
  snap_keyring_free(kr);
  cr_assert_eq(freed_dirty, 0, "%d secure allocations were released unwiped", freed_dirty);
  cr_assert_eq(freed_clean, nrecs, "%d of %d secure allocations released", freed_clean, nrecs);
  cr_assert_geq(nrecs, 5, "3 keys + the key file buffer + the refused duplicate");
  snap_allocator_set(NULL);
}

/* ---- options ------------------------------------------------------------- */

static snap_options *new_opts(void) {
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  return o;
}

Test(options, resolve_takes_each_field_from_the_first_layer_that_set_it) {
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 3);
  snap_keyring *kr = new_ring(), *kr_mac = new_ring();
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr_mac, 1, k, sizeof k), SNAP_OK);

  snap_options *call = new_opts(), *pid = new_opts(), *store = new_opts();
  cr_assert_eq(snap_options_set_compression(call, SNAP_COMPRESSION_ZLIB, 9), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(pid, SNAP_COMPRESSION_NONE, 0), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(pid, kr, "per-pid/ctx"), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(store, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_options_set_integrity(store, kr_mac, "store/ctx"), SNAP_OK);
  cr_assert_eq(snap_options_set_limits(store, 0, 100), SNAP_OK);
  cr_assert_eq(snap_options_set_compression_min_size(store, 1000000), SNAP_OK);

  const snap_options *layers[] = {call, NULL, pid, store};
  snap_options *r;
  cr_assert_eq(snap_options_resolve(&r, layers, 4), SNAP_OK);
  cr_assert_eq(snap_options_requested(r),
               SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION | SNAP_OPT_INTEGRITY);
  /* The layers can go: the result owns its contexts. */
  snap_options_free(call);
  snap_options_free(pid);

  snap_buf body = SNAP_BUF_INIT;
  unsigned st;
  encode_with(r, &body, &st);
  /* zlib 9 from the call, but the store's minimum size keeps it off; the
   * per-pid keyring and context encrypt; the MAC is not added on top. */
  cr_assert_eq(st, SNAP_STAGE_ENCRYPTED);
  snap_options *reader = enc_opts(kr, "per-pid/ctx");
  cr_assert_eq(decode_with(reader, &body), SNAP_OK);
  snap_options *wrong = enc_opts(kr, "store/ctx");
  cr_assert_eq(decode_with(wrong, &body), SNAP_EAUTH);
  /* The store's 100-byte decoded limit applies. */
  char big[200];
  memset(big, ' ', sizeof big);
  big[0] = '1';
  cr_assert_eq(snap_body_encode("acct", 1, SNAP_FORMAT_JSON, big, sizeof big, r, &body, NULL),
               SNAP_ETOOBIG);

  /* A call layer that also sets the minimum size and the limit: zlib applies. */
  snap_options *call2 = new_opts();
  cr_assert_eq(snap_options_set_compression(call2, SNAP_COMPRESSION_ZLIB, 9), SNAP_OK);
  cr_assert_eq(snap_options_set_compression_min_size(call2, 0), SNAP_OK);
  cr_assert_eq(snap_options_set_limits(call2, 0, 1 << 20), SNAP_OK);
  const snap_options *layers4[] = {call2, r};
  snap_options *r4;
  cr_assert_eq(snap_options_resolve(&r4, layers4, 2), SNAP_OK);
  char s[600];
  memset(s, ' ', sizeof s);
  s[0] = '0';
  cr_assert_eq(snap_body_encode("acct", 1, SNAP_FORMAT_JSON, s, sizeof s, r4, &body, &st), SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED | SNAP_STAGE_ENCRYPTED);
  snap_buf back = SNAP_BUF_INIT;
  cr_assert_eq(snap_body_decode("acct", 1, body.data, body.len, reader, &back, NULL, NULL),
               SNAP_OK);
  cr_assert_eq(back.len, sizeof s);
  snap_buf_dispose(&back);

  /* The store layer alone: its explicit "encryption off" and its MAC. */
  const snap_options *layers3[] = {store, NULL};
  snap_options *r3;
  cr_assert_eq(snap_options_resolve(&r3, layers3, 2), SNAP_OK);
  cr_assert_eq(snap_options_requested(r3), SNAP_OPT_INTEGRITY);
  encode_with(r3, &body, &st);
  cr_assert_eq(st, SNAP_STAGE_MAC);

  /* Nothing set anywhere: the defaults (no stages). */
  snap_options *empty;
  cr_assert_eq(snap_options_resolve(&empty, NULL, 0), SNAP_OK);
  cr_assert_eq(snap_options_requested(empty), 0u);
  encode_with(empty, &body, &st);
  cr_assert_eq(st, 0u);
  cr_assert_eq(snap_options_resolve(NULL, layers, 1), SNAP_EINVAL);
  cr_assert_eq(snap_options_resolve(&empty, NULL, 1), SNAP_EINVAL);

  snap_buf_dispose(&body);
  snap_options_free(empty);
  snap_options_free(call2);
  snap_options_free(r4);
  snap_options_free(r3);
  snap_options_free(reader);
  snap_options_free(wrong);
  snap_options_free(store);
  snap_options_free(r);
  snap_keyring_free(kr);
  snap_keyring_free(kr_mac);
}

Test(options, copy_is_independent) {
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 4);
  snap_keyring *kr = new_ring();
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  snap_options *o = enc_opts(kr, "ctx-a"), *c;
  cr_assert_eq(snap_options_copy(&c, o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "ctx-b"), SNAP_OK);
  snap_buf body = SNAP_BUF_INIT;
  encode_with(c, &body, NULL);
  snap_options_free(o);
  snap_options *r = enc_opts(kr, "ctx-a");
  cr_assert_eq(decode_with(r, &body), SNAP_OK);
  cr_assert_eq(snap_options_copy(NULL, r), SNAP_EINVAL);
  cr_assert_eq(snap_options_copy(&c, NULL), SNAP_EINVAL);
  snap_buf_dispose(&body);
  snap_options_free(c);
  snap_options_free(r);
  snap_options_free(NULL);
  snap_keyring_free(kr);
}

Test(options, restrict_drops_unsupported_groups_unless_required) {
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 5);
  snap_keyring *kr = new_ring();
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  snap_options *o = enc_opts(kr, "ctx");
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6), SNAP_OK);
  cr_assert_eq(snap_options_set_compression_min_size(o, 0), SNAP_OK);
  cr_assert_eq(snap_options_requested(o), SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION);

  /* Required and unsupported: refused, naming it, and `o` is left as it was. */
  cr_assert_eq(snap_options_set_required(o, SNAP_OPT_ENCRYPTION), SNAP_OK);
  unsigned dropped = 99;
  cr_assert_eq(snap_options_restrict(o, SNAP_OPT_COMPRESSION, &dropped), SNAP_EUNSUPPORTED);
  cr_assert(strstr(snap_error_message(), "encryption"), "%s", snap_error_message());
  cr_assert_eq(dropped, 0u);
  cr_assert_eq(snap_options_requested(o), SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION);
  /* Required though not configured, and unsupported: refused as well. */
  cr_assert_eq(snap_options_set_required(o, SNAP_OPT_INTEGRITY), SNAP_OK);
  cr_assert_eq(snap_options_restrict(o, SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION, &dropped),
               SNAP_EUNSUPPORTED);
  cr_assert(strstr(snap_error_message(), "integrity"));

  /* Not required: dropped and reported. */
  cr_assert_eq(snap_options_set_required(o, 0), SNAP_OK);
  cr_assert_eq(snap_options_restrict(o, SNAP_OPT_COMPRESSION | SNAP_OPT_INTEGRITY, &dropped),
               SNAP_OK);
  cr_assert_eq(dropped, SNAP_OPT_ENCRYPTION);
  cr_assert_eq(snap_options_requested(o), SNAP_OPT_COMPRESSION);
  char s[600];
  memset(s, ' ', sizeof s);
  s[0] = '0';
  snap_buf body = SNAP_BUF_INIT;
  unsigned st;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, sizeof s, o, &body, &st), SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED);
  /* A dropped group stays dropped when the result is used as a layer. */
  snap_options *lower = enc_opts(kr, "ctx");
  const snap_options *layers[] = {o, lower};
  snap_options *r;
  cr_assert_eq(snap_options_resolve(&r, layers, 2), SNAP_OK);
  cr_assert_eq(snap_options_requested(r), SNAP_OPT_COMPRESSION);
  cr_assert_eq(snap_options_restrict(o, 0, &dropped), SNAP_OK);
  cr_assert_eq(dropped, SNAP_OPT_COMPRESSION);
  cr_assert_eq(snap_options_requested(o), 0u);
  cr_assert_eq(snap_options_restrict(o, 0, NULL), SNAP_OK);
  cr_assert_eq(snap_options_restrict(NULL, 0, &dropped), SNAP_EINVAL);
  cr_assert_eq(snap_options_requested(NULL), 0u);
  snap_buf_dispose(&body);
  snap_options_free(r);
  snap_options_free(lower);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(options, invalid_arguments_are_einval_and_change_nothing) {
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 6);
  snap_keyring *kr = new_ring();
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  snap_options *o = enc_opts(kr, "original/ctx");
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6), SNAP_OK);

  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 10), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "10"));
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, -1), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_compression(o, (snap_compression)7, 1), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_encryption(o, kr, ""), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "context"));
  cr_assert_eq(snap_options_set_encryption(o, kr, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_integrity(o, kr, ""), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_required(o, 0x80), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_compression(NULL, SNAP_COMPRESSION_ZLIB, 1), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_compression_min_size(NULL, 1), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_encryption(NULL, kr, "c"), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_integrity(NULL, kr, "c"), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_limits(NULL, 1, 1), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_accept_unauthenticated(NULL, true), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_required(NULL, 0), SNAP_EINVAL);
  cr_assert_eq(snap_options_set_nonce_source(NULL, NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_options_new(NULL), SNAP_EINVAL);

  /* Still zlib 6 with the original keyring and context. */
  cr_assert_eq(snap_options_requested(o), SNAP_OPT_COMPRESSION | SNAP_OPT_ENCRYPTION);
  char s[600];
  memset(s, ' ', sizeof s);
  s[0] = '0';
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  unsigned st;
  cr_assert_eq(snap_body_encode("p", 1, SNAP_FORMAT_JSON, s, sizeof s, o, &body, &st), SNAP_OK);
  cr_assert_eq(st, SNAP_STAGE_COMPRESSED | SNAP_STAGE_ENCRYPTED);
  snap_options *r = enc_opts(kr, "original/ctx");
  cr_assert_eq(snap_body_decode("p", 1, body.data, body.len, r, &back, NULL, NULL), SNAP_OK);
  cr_assert_eq(back.len, sizeof s);

  /* Turning encryption off explicitly needs no context. */
  cr_assert_eq(snap_options_set_encryption(o, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_options_requested(o), SNAP_OPT_COMPRESSION);
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_options_free(r);
  snap_options_free(o);
  snap_keyring_free(kr);
}

/* ---- concurrency --------------------------------------------------------- */

struct worker {
  snap_options *o;
  int id;
  int ok;
};

static void *codec_worker(void *arg) {
  struct worker *w = arg;
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  char pid[32];
  snprintf(pid, sizeof pid, "worker-%d", w->id);
  for (int i = 0; i < 400; i++) {
    if (snap_body_encode(pid, i, SNAP_FORMAT_JSON, STATE, sizeof STATE - 1, w->o, &body, NULL))
      break;
    if (snap_body_decode(pid, i, body.data, body.len, w->o, &back, NULL, NULL))
      break;
    if (back.len != sizeof STATE - 1 || memcmp(back.data, STATE, back.len) != 0)
      break;
    w->ok++;
  }
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  return NULL;
}

Test(threads, rotation_while_others_encode_and_decode) {
  uint8_t k[SNAP_KEY_BYTES];
  fill_key(k, 1);
  snap_keyring *kr = new_ring();
  cr_assert_eq(snap_keyring_add(kr, 1, k, sizeof k), SNAP_OK);
  snap_options *aead = enc_opts(kr, "ctx"), *mac = new_opts();
  cr_assert_eq(snap_options_set_integrity(mac, kr, "ctx"), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(aead, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);

  enum { N = 4 };
  pthread_t t[N];
  struct worker w[N];
  for (int i = 0; i < N; i++) {
    w[i] = (struct worker){i % 2 ? mac : aead, i, 0};
    cr_assert_eq(pthread_create(&t[i], NULL, codec_worker, &w[i]), 0);
  }
  for (uint32_t v = 2; v <= 60; v++) {
    fill_key(k, (uint8_t)v);
    cr_assert_eq(snap_keyring_add(kr, v, k, sizeof k), SNAP_OK);
    cr_assert_eq(snap_keyring_set_active(kr, v), SNAP_OK);
    cr_assert(snap_keyring_has(kr, v - 1));
  }
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(w[i].ok, 400, "worker %d stopped after %d round trips: %s", i, w[i].ok,
                 snap_error_message());
  }
  cr_assert_eq(snap_keyring_active(kr), 60u);
  snap_options_free(aead);
  snap_options_free(mac);
  snap_keyring_free(kr);
}
