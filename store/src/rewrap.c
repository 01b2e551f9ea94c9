/* Rewrapping data keys (snap_rewrap()): the key table read a page at a
 * time in unit order, each live key not under the active master key
 * unwrapped with its own version and wrapped again under the active one,
 * and the page written back in one conditional batch: a record that changed
 * meanwhile (a forget, a concurrent rewrap) is left as it stands. Bodies are
 * not touched. */
#include <inttypes.h>
#include <sodium.h>
#include <string.h>

#include "handle.h"
#include "snap/envelope.h"

/* Records per page: one key_list and one key_rewrap transaction each. */
#define PAGE 4096

/* A page of records as read. */
typedef struct page {
  size_t n;
  char *units[PAGE];
  uint32_t gen[PAGE], mv[PAGE];
  uint8_t rec[PAGE][SNAP__KEYSET_BYTES];
  size_t len[PAGE];
  bool live[PAGE];
} page;

static int take(void *ctx, const snap_backend_key *k) {
  page *p = ctx;
  if (p->n == PAGE)
    return SNAP_OK;
  size_t i = p->n;
  if ((p->units[i] = snap_strdup(k->unit)) == NULL)
    return snap_error_set(SNAP_ENOMEM, "rewrap: out of memory");
  p->gen[i] = k->generation;
  p->mv[i] = k->master_version;
  p->live[i] = k->wrapped != NULL;
  p->len[i] = k->wrapped_len;
  if (k->wrapped)
    memcpy(p->rec[i], k->wrapped,
           k->wrapped_len < SNAP__KEYSET_BYTES ? k->wrapped_len : SNAP__KEYSET_BYTES);
  p->n++;
  return SNAP_OK;
}

static void page_clear(page *p) {
  for (size_t i = 0; i < p->n; i++)
    snap_free(p->units[i]);
  p->n = 0;
}

/* Key-encryption keys derived once per master key version for a whole run
 * (on the stack, wiped at the end): a rewrap unwraps and wraps a million
 * records, and deriving per record would double its crypto. */
#define KEKS 8
typedef struct keks {
  snap_keyring *kr;
  const char *ctx, *dataset;
  size_t n;
  uint32_t version[KEKS];
  uint8_t kek[KEKS][32];
  uint32_t active;
  uint8_t active_kek[32];
} keks;

static const uint8_t *kek_of(keks *k, uint32_t version, const char *unit) {
  for (size_t i = 0; i < k->n; i++)
    if (k->version[i] == version)
      return k->kek[i];
  size_t i = k->n < KEKS ? k->n++ : KEKS - 1; /* more old versions than slots: reuse the last */
  if (snap__dek_kek(k->kr, version, k->ctx, k->dataset, k->kek[i], NULL) != SNAP_OK) {
    k->n = i;
    snap_error_set(SNAP_ENOKEY,
                   "rewrap unit '%.80s': its data key is wrapped under master key version %" PRIu32
                   ", which is not in the keyring",
                   unit, version);
    return NULL;
  }
  k->version[i] = version;
  return k->kek[i];
}

/* Unwraps every record of the key set of entry i (`*n` of them) and wraps
 * each again under the active key, in place. */
static int rewrap_one(page *p, size_t i, keks *k, size_t *n) {
  const char *unit = p->units[i];
  size_t ulen = strlen(unit);
  int rc = ulen == 0 || ulen > SNAP_PID_MAX
               ? snap_error_set(SNAP_EINVAL, "rewrap: a unit of %zu bytes in the key table", ulen)
               : snap__keyset_check(unit, p->rec[i], p->len[i], p->gen[i], p->mv[i], n);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "rewrap %s", snap_error_message());
  const uint8_t *old = kek_of(k, p->mv[i], unit);
  if (old == NULL)
    return SNAP_ENOKEY;
  uint8_t dek[SNAP_DEK_BYTES];
  for (size_t j = 0; j < *n && rc == SNAP_OK; j++) {
    uint8_t *rec = p->rec[i] + j * SNAP_WRAPPED_KEY_BYTES;
    uint32_t mv = 0, gen = 0;
    (void)snap__dek_record(rec, SNAP_WRAPPED_KEY_BYTES, &mv, &gen);
    rc = snap__dek_unwrap_kek(old, k->dataset, unit, ulen, rec, dek);
    if (rc == SNAP_OK)
      snap__dek_wrap_kek(k->active_kek, k->active, k->dataset, unit, ulen, gen, dek, NULL, NULL,
                         rec);
  }
  sodium_memzero(dek, sizeof dek);
  return rc;
}

/* A unit holding more than one generation (a renewal under way) is
 * rewrapped on its own, conditional on its whole set as read: a renewal
 * dropping a generation meanwhile must not see it written back. */
static int rewrap_set(const snap_backend *kbe, void *ks, page *p, size_t i, keks *k,
                      snap_rewrap_progress *pr) {
  uint8_t was[SNAP__KEYSET_BYTES];
  memcpy(was, p->rec[i], p->len[i] < sizeof was ? p->len[i] : sizeof was);
  size_t n = 0;
  int rc = rewrap_one(p, i, k, &n);
  snap_backend_key_change c = {p->units[i], was,      p->len[i], p->gen[i],
                               k->active,   p->rec[i], p->len[i]};
  if (rc == SNAP_OK && kbe->key_replace == NULL)
    rc = snap_error_set(SNAP_EUNSUPPORTED, "rewrap unit '%.80s': it holds %zu key generations "
                                           "and the key table cannot replace a record (backend "
                                           "ABI 6 key_replace)",
                        p->units[i], n);
  if (rc == SNAP_OK && (rc = kbe->key_replace(ks, &c)) >= 0) {
    pr->rewrapped += rc == SNAP_SWAP_DONE;
    pr->changed += rc != SNAP_SWAP_DONE;
    rc = SNAP_OK;
  }
  return rc;
}

/* Rewraps the page's live records not under the active version into `sw`
 * (records in p->rec are replaced by their new form); `*nsw` swaps. */
static int rewrap_page(const snap_backend *kbe, void *ks, page *p, keks *k,
                       snap_backend_key_swap *sw, size_t *nsw, snap_rewrap_progress *pr) {
  *nsw = 0;
  for (size_t i = 0; i < p->n; i++) {
    pr->seen++;
    if (!p->live[i]) {
      pr->forgotten++;
      continue;
    }
    if (p->mv[i] == k->active) {
      pr->current++;
      continue;
    }
    if (p->len[i] > SNAP_WRAPPED_KEY_BYTES) {
      int rc = rewrap_set(kbe, ks, p, i, k, pr);
      if (rc != SNAP_OK)
        return rc;
      continue;
    }
    size_t n = 0;
    int rc = rewrap_one(p, i, k, &n);
    if (rc != SNAP_OK)
      return rc;
    sw[*nsw] = (snap_backend_key_swap){p->units[i], p->gen[i], p->mv[i], k->active, p->rec[i],
                                       SNAP_WRAPPED_KEY_BYTES, SNAP_SWAP_DONE};
    (*nsw)++;
  }
  return SNAP_OK;
}

int snap__envelope_keyring(snap_store *st, const char *verb, const snap_options *opts,
                           snap_options **res, snap_keyring **kr, const char **ctx) {
  int rc = snap__store_options(st, verb, opts, res);
  if (rc != SNAP_OK)
    return rc;
  /* Any key mode: what is asked is which keyring wraps. */
  if (!snap__options_encryption(*res, kr, ctx) || snap_keyring_active(*kr) == 0)
    return snap_error_set(SNAP_EINVAL, "%s: no encryption keyring is configured (the data "
                                       "keys are wrapped by its master keys)",
                          verb);
  return SNAP_OK;
}

static int rewrap(snap_store *st, const snap_options *opts, const char *after,
                  snap_rewrap_fn progress, void *ud, snap_rewrap_progress *pr) {
  const snap_backend *kbe;
  void *ks;
  int rc = snap__envelope_keys(st, &kbe, &ks);
  snap_options *res = NULL;
  snap_keyring *kr = NULL;
  const char *ctx = NULL;
  if (rc == SNAP_OK)
    rc = snap__envelope_keyring(st, "rewrap", opts, &res, &kr, &ctx);
  page *p = rc == SNAP_OK ? snap_calloc(1, sizeof *p) : NULL;
  snap_backend_key_swap *sw = p ? snap_calloc(PAGE, sizeof *sw) : NULL;
  char *cursor = after ? snap_strdup(after) : NULL;
  if (rc == SNAP_OK && (p == NULL || sw == NULL || (after && cursor == NULL)))
    rc = snap_error_set(SNAP_ENOMEM, "rewrap: out of memory");
  keks k;
  memset(&k, 0, sizeof k);
  k.kr = kr;
  k.ctx = ctx;
  k.dataset = rc == SNAP_OK ? kbe->dataset(ks) : "";
  if (rc == SNAP_OK && (strlen(k.dataset) == 0 || strlen(k.dataset) > SNAP__DATASET_MAX))
    rc = snap_error_set(SNAP_EINVAL, "rewrap: data set name of %zu bytes", strlen(k.dataset));
  if (rc == SNAP_OK && snap__dek_kek(kr, 0, ctx, k.dataset, k.active_kek, &k.active) != SNAP_OK)
    rc = snap_error_set(SNAP_ENOKEY, "rewrap: the encryption keyring is empty");
  while (rc == SNAP_OK) {
    if ((rc = kbe->key_list(ks, cursor, PAGE, take, p)) != SNAP_OK || p->n == 0)
      break;
    size_t nsw = 0;
    rc = rewrap_page(kbe, ks, p, &k, sw, &nsw, pr);
    uint64_t done = 0;
    if (rc == SNAP_OK && nsw > 0 && (rc = kbe->key_rewrap(ks, sw, nsw)) == SNAP_OK) {
      for (size_t i = 0; i < nsw; i++)
        done += sw[i].outcome == SNAP_SWAP_DONE;
      pr->rewrapped += done;
      pr->changed += nsw - done;
    }
    if (rc == SNAP_OK) {
      atomic_fetch_add(&st->env.rewrapped, done);
      snap_free(cursor);
      if ((cursor = snap_strdup(p->units[p->n - 1])) == NULL)
        rc = snap_error_set(SNAP_ENOMEM, "rewrap: out of memory");
    }
    bool last = p->n < PAGE;
    page_clear(p);
    if (rc == SNAP_OK && progress) {
      pr->last = cursor;
      rc = progress(ud, pr);
      pr->last = NULL;
    }
    if (last)
      break;
  }
  sodium_memzero(&k, sizeof k);
  if (p)
    page_clear(p);
  snap_free(p);
  snap_free(sw);
  snap_free(cursor);
  snap_options_free(res);
  return rc;
}

int snap_rewrap(snap_store *st, const snap_options *opts, const char *after,
                snap_rewrap_fn progress, void *ud, snap_rewrap_progress *out) {
  snap_rewrap_progress pr;
  memset(&pr, 0, sizeof pr);
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "rewrap: store is NULL");
  int rc = rewrap(st, opts, after, progress, ud, &pr);
  if (out != NULL)
    *out = pr;
  return rc;
}
