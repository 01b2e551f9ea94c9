/* Keyrings: versioned 32-byte master keys in guarded memory, one active. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/pipeline.h"
#include "alloc_internal.h"
#include "pipeline_internal.h"

typedef struct key_entry {
  uint32_t version;
  uint8_t *key; /* SNAP_KEY_BYTES of guarded memory (snap__secure_malloc) */
} key_entry;

struct snap_keyring {
  /* Guards everything below. Readers (derivations, lookups) share it; adding a
   * key or changing the active version takes it exclusively. */
  pthread_rwlock_t lock;
  key_entry *keys; /* ordinary memory: versions and pointers only */
  size_t n, cap;
  uint32_t active; /* 0 while empty */
};

/* The lock is logically mutable: const keyrings are still locked for reading. */
static pthread_rwlock_t *ring_lock(const snap_keyring *kr) { return (pthread_rwlock_t *)&kr->lock; }

static const key_entry *find(const snap_keyring *kr, uint32_t version) {
  for (size_t i = 0; i < kr->n; i++)
    if (kr->keys[i].version == version)
      return &kr->keys[i];
  return NULL;
}

int snap_keyring_new(snap_keyring **out) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_keyring_new: NULL output pointer");
  *out = NULL;
  if (sodium_init() < 0)
    return snap_error_set(SNAP_ENOMEM, "libsodium failed to initialise");
  snap_keyring *kr = snap_calloc(1, sizeof *kr);
  if (!kr)
    return snap_error_set(SNAP_ENOMEM, "out of memory allocating a keyring");
  if (pthread_rwlock_init(&kr->lock, NULL) != 0) {
    snap_free(kr);
    return snap_error_set(SNAP_ENOMEM, "cannot initialise the keyring lock");
  }
  *out = kr;
  return SNAP_OK;
}

void snap_keyring_free(snap_keyring *kr) {
  if (!kr)
    return;
  for (size_t i = 0; i < kr->n; i++)
    snap__secure_free(kr->keys[i].key, SNAP_KEY_BYTES); /* wipes, then releases */
  snap_free(kr->keys);
  pthread_rwlock_destroy(&kr->lock);
  snap_free(kr);
}

int snap_keyring_add(snap_keyring *kr, uint32_t version, const uint8_t *key, size_t key_len) {
  if (!kr || !key)
    return snap_error_set(SNAP_EINVAL, "snap_keyring_add: NULL %s", kr ? "key" : "keyring");
  if (version == 0)
    return snap_error_set(SNAP_EINVAL, "key version 0 is reserved (versions start at 1)");
  if (key_len != SNAP_KEY_BYTES)
    return snap_error_set(SNAP_EINVAL, "key version %u: a master key is %u bytes, got %zu",
                          (unsigned)version, (unsigned)SNAP_KEY_BYTES, key_len);

  uint8_t *secret = snap__secure_malloc(SNAP_KEY_BYTES);
  if (!secret)
    return snap_error_set(SNAP_ENOMEM, "key version %u: out of guarded memory", (unsigned)version);
  memcpy(secret, key, SNAP_KEY_BYTES);

  int rc = SNAP_OK;
  pthread_rwlock_wrlock(&kr->lock);
  if (find(kr, version)) {
    rc = snap_error_set(SNAP_EINVAL, "key version %u is already in the keyring", (unsigned)version);
  } else if (kr->n == kr->cap) {
    size_t ncap = kr->cap ? kr->cap * 2 : 4;
    key_entry *nk = snap_realloc(kr->keys, ncap * sizeof *nk);
    if (!nk)
      rc = snap_error_set(SNAP_ENOMEM, "key version %u: out of memory", (unsigned)version);
    else {
      kr->keys = nk;
      kr->cap = ncap;
    }
  }
  if (rc == SNAP_OK) {
    kr->keys[kr->n].version = version;
    kr->keys[kr->n].key = secret;
    kr->n++;
    if (kr->active == 0)
      kr->active = version;
  }
  pthread_rwlock_unlock(&kr->lock);
  if (rc != SNAP_OK)
    snap__secure_free(secret, SNAP_KEY_BYTES);
  return rc;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool is_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Longest key file read: anything longer is neither accepted form. */
#define KEYFILE_MAX 256u

/* Opens a key file for reading: a regular file no group or other may access.
 * Returns the descriptor, or -1 with the error set in `*rc`. */
static int open_key_file(const char *path, int *rc) {
  /* O_NONBLOCK: opening a FIFO for reading blocks until a writer appears, and
   * a device may block too. The type is checked on the open descriptor, so
   * nothing can be swapped in between the check and the read. Regular files
   * ignore O_NONBLOCK. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    *rc = snap_error_set(SNAP_EIO, "key file '%s': %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0)
    *rc = snap_error_set(SNAP_EIO, "key file '%s': %s", path, strerror(errno));
  else if (!S_ISREG(st.st_mode))
    *rc = snap_error_set(SNAP_EIO, "key file '%s' is not a regular file", path);
  else if (st.st_mode & (S_IRWXG | S_IRWXO))
    *rc = snap_error_set(SNAP_EAUTH,
                         "key file '%s' has mode %04o: it must not be accessible to group or "
                         "others (chmod 600)",
                         path, (unsigned)(st.st_mode & 07777));
  else
    return fd;
  close(fd);
  return -1;
}

/* Reads up to `cap` bytes of `fd` into `raw`; SNAP_OK with `*n` set. */
static int read_key_bytes(int fd, const char *path, uint8_t *raw, size_t cap, size_t *n) {
  *n = 0;
  while (*n < cap) {
    ssize_t r = read(fd, raw + *n, cap - *n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return snap_error_set(SNAP_EIO, "key file '%s': %s", path, strerror(errno));
    }
    if (r == 0)
      break;
    *n += (size_t)r;
  }
  return SNAP_OK;
}

/* The key of a file's `n` bytes: 32 raw bytes, or 64 hex digits with any
 * whitespace around them. */
static int parse_key_bytes(const uint8_t *raw, size_t n, const char *path,
                           uint8_t key[SNAP_KEY_BYTES]) {
  if (n == SNAP_KEY_BYTES) {
    memcpy(key, raw, SNAP_KEY_BYTES);
    return SNAP_OK;
  }
  size_t b = 0, e = n;
  while (b < e && is_space(raw[b]))
    b++;
  while (e > b && is_space(raw[e - 1]))
    e--;
  bool ok = (e - b == 2 * SNAP_KEY_BYTES);
  for (size_t i = 0; ok && i < SNAP_KEY_BYTES; i++) {
    int hi = hexval(raw[b + 2 * i]), lo = hexval(raw[b + 2 * i + 1]);
    if (hi < 0 || lo < 0)
      ok = false;
    else
      key[i] = (uint8_t)(hi << 4 | lo);
  }
  if (ok)
    return SNAP_OK;
  return snap_error_set(
      SNAP_EFORMAT, "key file '%s' (%zu%s bytes) holds neither 32 raw bytes nor 64 hex digits",
      path, n > KEYFILE_MAX ? (size_t)KEYFILE_MAX : n, n > KEYFILE_MAX ? "+" : "");
}

int snap_keyring_add_file(snap_keyring *kr, uint32_t version, const char *path) {
  if (!kr || !path)
    return snap_error_set(SNAP_EINVAL, "snap_keyring_add_file: NULL %s", kr ? "path" : "keyring");
  if (version == 0)
    return snap_error_set(SNAP_EINVAL, "key version 0 is reserved (versions start at 1)");
  int rc = SNAP_OK;
  int fd = open_key_file(path, &rc);
  if (fd < 0)
    return rc;
  /* The file's bytes are secret too: read them into guarded memory. */
  uint8_t *raw = snap__secure_malloc(KEYFILE_MAX + 1);
  if (!raw) {
    close(fd);
    return snap_error_set(SNAP_ENOMEM, "key file '%s': out of guarded memory", path);
  }
  size_t n = 0;
  rc = read_key_bytes(fd, path, raw, KEYFILE_MAX + 1, &n);
  close(fd);
  uint8_t key[SNAP_KEY_BYTES];
  if (rc == SNAP_OK)
    rc = parse_key_bytes(raw, n, path, key);
  snap__secure_free(raw, KEYFILE_MAX + 1);
  if (rc == SNAP_OK)
    rc = snap_keyring_add(kr, version, key, SNAP_KEY_BYTES);
  sodium_memzero(key, sizeof key);
  return rc;
}

int snap_keyring_set_active(snap_keyring *kr, uint32_t version) {
  if (!kr)
    return snap_error_set(SNAP_EINVAL, "snap_keyring_set_active: NULL keyring");
  int rc = SNAP_OK;
  pthread_rwlock_wrlock(&kr->lock);
  if (find(kr, version))
    kr->active = version;
  else
    rc = snap_error_set(SNAP_ENOKEY, "key version %u is not in the keyring", (unsigned)version);
  pthread_rwlock_unlock(&kr->lock);
  return rc;
}

uint32_t snap_keyring_active(const snap_keyring *kr) {
  if (!kr)
    return 0;
  pthread_rwlock_rdlock(ring_lock(kr));
  uint32_t v = kr->active;
  pthread_rwlock_unlock(ring_lock(kr));
  return v;
}

bool snap_keyring_has(const snap_keyring *kr, uint32_t version) {
  if (!kr || version == 0)
    return false;
  pthread_rwlock_rdlock(ring_lock(kr));
  bool has = find(kr, version) != NULL;
  pthread_rwlock_unlock(ring_lock(kr));
  return has;
}

/* LP(x) = u32le(len(x)) || x, see docs/FORMAT.md. */
static void update_lp(crypto_generichash_state *st, const void *p, size_t n) {
  uint8_t len[4];
  snap__put_u32le(len, (uint32_t)n);
  crypto_generichash_update(st, len, sizeof len);
  if (n)
    crypto_generichash_update(st, p, n);
}

/* subkey = BLAKE2b-256(key = master, LP(label) || LP(context) || LP(pid)) */
static void derive_from(const key_entry *k, const char *label, const char *context, const char *pid,
                        size_t pid_len, uint8_t subkey[SNAP__SUBKEY_BYTES]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, k->key, SNAP_KEY_BYTES, SNAP__SUBKEY_BYTES);
  update_lp(&st, label, strlen(label));
  update_lp(&st, context, strlen(context));
  update_lp(&st, pid, pid_len);
  crypto_generichash_final(&st, subkey, SNAP__SUBKEY_BYTES);
  sodium_memzero(&st, sizeof st);
}

int snap__keyring_derive(const snap_keyring *kr, uint32_t version, const char *label,
                         const char *context, const char *pid, size_t pid_len,
                         uint8_t subkey[SNAP__SUBKEY_BYTES], uint32_t *used) {
  int rc = SNAP_ENOKEY;
  pthread_rwlock_rdlock(ring_lock(kr));
  uint32_t v = version ? version : kr->active;
  const key_entry *k = v ? find(kr, v) : NULL;
  if (k) {
    derive_from(k, label, context, pid, pid_len, subkey);
    rc = SNAP_OK;
  }
  pthread_rwlock_unlock(ring_lock(kr));
  if (used)
    *used = v;
  return rc;
}

int snap__keyring_derive_nth(const snap_keyring *kr, size_t i, const char *label,
                             const char *context, const char *pid, size_t pid_len,
                             uint8_t subkey[SNAP__SUBKEY_BYTES], uint32_t *version) {
  int rc = SNAP_ENOKEY;
  pthread_rwlock_rdlock(ring_lock(kr));
  if (i < kr->n) {
    derive_from(&kr->keys[i], label, context, pid, pid_len, subkey);
    *version = kr->keys[i].version;
    rc = SNAP_OK;
  }
  pthread_rwlock_unlock(ring_lock(kr));
  return rc;
}
