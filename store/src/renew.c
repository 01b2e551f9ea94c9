/* Renewing data keys (snap_renew_keys()), for a data key that may have been
 * exposed. A unit goes through three steps, each of which leaves every body
 * loadable, so a run killed anywhere is finished by running it again:
 *
 *   1. its key set gains a new generation, in front (one conditional
 *      replace of the unit's record, durable before any body uses it);
 *   2. its bodies of older generations are rewritten under the new one with
 *      the conditional replace of snap_store_rewrite(), pass after pass until
 *      a pass finds none;
 *   3. its set is cut to the new generation (a conditional replace again).
 *
 * A unit whose set already holds more than one generation is in the middle
 * of this: it is finished from step 2, never given yet another key. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "snap/admin.h"
#include "snap/envelope.h"

/* Attempts at a conditional replace of a unit's record against concurrent
 * changes (a rewrap, a save creating the key). */
#define TRIES 4
/* Passes over a unit's bodies before giving up on a writer that keeps
 * sealing with an older generation. */
#define PASSES 4
/* Bodies read and rewritten per batch. */
#define BATCH 64
/* Units per key table page for a renewal of every unit. */
#define UNITS_PAGE 256

typedef struct renew {
  snap_store *st;
  const snap_options *opts; /* the caller's, for the rewrites */
  const snap_backend *kbe;
  void *ks;
  snap_keyring *kr;
  const char *ctx, *dataset;
  snap_renew_progress *pr;
  const snap__unit *u;
  uint32_t target; /* the generation the unit's bodies move to */
  uint64_t stale;  /* bodies of an older generation this pass found */
} renew;

/* Wipes this store's cached key of the unit, and makes a load that read the
 * key table before not cache what it read. */
static void forget_cached(renew *rn) { snap__envelope_drop(rn->st, rn->u); }

/* A conditional replace of the unit's record `r` by `set`; SNAP_SWAP_* or
 * a negative status. */
static int replace_set(renew *rn, const snap__key_row *r, uint32_t gen, uint32_t mv,
                       const uint8_t *set, size_t len) {
  snap_backend_key_change c = {rn->u->name, r->wrapped, r->len, gen, mv, set, len};
  return rn->kbe->key_replace(rn->ks, &c);
}

/* The set [new key of generation `next`, the unit's current key] under the
 * active master key, into `set` (2 records). */
static int grown_set(renew *rn, const snap__key_row *r, uint32_t next, uint8_t *set,
                     uint32_t *mv) {
  const snap__unit *u = rn->u;
  uint8_t dek[SNAP_DEK_BYTES];
  uint32_t gen = 0, mv_old = 0;
  int rc = snap__dek_unwrap(rn->kr, rn->ctx, rn->dataset, u->name, u->len, r->wrapped,
                            SNAP_WRAPPED_KEY_BYTES, dek, &gen);
  if (rc == SNAP_OK)
    rc = snap__dek_wrap(rn->kr, rn->ctx, rn->dataset, u->name, u->len, gen, dek, NULL, NULL,
                        set + SNAP_WRAPPED_KEY_BYTES, &mv_old);
  snap__dek_generate(dek);
  if (rc == SNAP_OK)
    rc = snap__dek_wrap(rn->kr, rn->ctx, rn->dataset, u->name, u->len, next, dek, NULL, NULL,
                        set, mv);
  sodium_memzero(dek, sizeof dek);
  return rc;
}

/* Step 1: 1 with rn->target set, 0 when the unit has no live key. */
static int add_generation(renew *rn) {
  const snap__unit *u = rn->u;
  snap__key_row r;
  for (int t = 0; t < TRIES; t++) {
    int rc = snap__key_row_read(rn->kbe, rn->ks, u->name, &r);
    size_t n = 0;
    if (rc != SNAP_OK || !r.found || !r.live)
      return rc;
    if ((rc = snap__keyset_check(u->name, r.wrapped, r.len, r.gen, r.mv, &n)) != SNAP_OK)
      return rc;
    if (n > 1) { /* a renewal under way: finish it */
      rn->target = r.gen;
      return 1;
    }
    uint32_t next = r.gen + 1, mv = 0;
    if (next == 0)
      return snap_error_set(SNAP_EINVAL, "unit '%.80s': no key generation left", u->name);
    uint8_t set[2 * SNAP_WRAPPED_KEY_BYTES];
    rc = grown_set(rn, &r, next, set, &mv);
    if (rc == SNAP_OK)
      rc = replace_set(rn, &r, next, mv, set, sizeof set);
    sodium_memzero(set, sizeof set);
    if (rc < 0)
      return rc;
    if (rc == SNAP_SWAP_DONE) {
      atomic_fetch_add(&rn->st->env.created, 1);
      rn->target = next;
      forget_cached(rn);
      return 1;
    }
  }
  return snap_error_set(SNAP_EBUSY, "renew unit '%.80s': its key record kept changing", u->name);
}

/* Whether a listed body needs an older generation of the unit. */
static bool stale_body(const renew *rn, const snap_entry *e) {
  snap__envelope_ref ref;
  return e->body != NULL &&
         snap__body_envelope_ref(e->pid, e->seq, e->body, e->stored_len, &ref) == 1 &&
         ref.unit_len == rn->u->len && memcmp(ref.unit, rn->u->name, ref.unit_len) == 0 &&
         ref.generation != rn->target;
}

/* Rewrites one page's stale bodies under the new generation. */
static int rewrite_page(renew *rn, const snap_entry_page *page) {
  snap_rewrite items[BATCH];
  size_t m = 0;
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    if (stale_body(rn, e))
      items[m++] = (snap_rewrite){e->pid, e->seq, e->body, e->stored_len, SNAP_OK, 0, 0, 0};
  }
  rn->stale += m;
  if (m == 0)
    return SNAP_OK;
  int rc = snap_store_rewrite_ex(rn->st, items, m, rn->opts, SNAP_REWRITE_FORCE);
  for (size_t i = 0; i < m; i++) {
    if (items[i].status != SNAP_OK)
      continue;
    if (items[i].outcome == SNAP_REWRITE_DONE)
      rn->pr->bodies++;
    else
      rn->pr->changed++;
  }
  return rc;
}

/* Step 2, one pid: its snapshots a batch at a time. */
static int rewrite_pid(snap_store *st, const char *pid, void *ud) {
  renew *rn = ud;
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  int64_t after = INT64_MIN;
  int rc;
  bool more = true;
  while (more) {
    rc = snap_store_list(st, pid, after == INT64_MIN ? NULL : pid, after, BATCH, true, &page);
    if (rc == SNAP_OK)
      rc = rewrite_page(rn, &page);
    more = rc == SNAP_OK && page.n == BATCH;
    if (page.n > 0)
      after = page.entries[page.n - 1].seq;
    if (rc != SNAP_OK)
      break;
  }
  snap_entry_page_dispose(&page);
  return rc;
}

/* Step 2: passes until one finds no body of an older generation. */
static int rewrite_bodies(renew *rn) {
  for (int pass = 0; pass < PASSES; pass++) {
    rn->stale = 0;
    int rc = snap__envelope_unit_pids(rn->st, rn->u, rewrite_pid, rn);
    if (rc != SNAP_OK)
      return snap_error_set(rc, "renew unit '%.80s': %s (its older keys are kept)", rn->u->name,
                            snap_error_message());
    if (rn->stale == 0)
      return SNAP_OK;
  }
  return snap_error_set(SNAP_EBUSY,
                        "renew unit '%.80s': bodies sealed with an older key kept appearing (a "
                        "writer in another process with the old key cached?); its older keys "
                        "are kept, run the renewal again",
                        rn->u->name);
}

/* Step 3: the set cut to the new generation. */
static int drop_older(renew *rn) {
  snap__key_row r;
  for (int t = 0; t < TRIES; t++) {
    size_t n = 0;
    int rc = snap__key_row_read(rn->kbe, rn->ks, rn->u->name, &r);
    if (rc != SNAP_OK || !r.found || !r.live)
      return rc; /* forgotten meanwhile: nothing left to drop */
    if ((rc = snap__keyset_check(rn->u->name, r.wrapped, r.len, r.gen, r.mv, &n)) != SNAP_OK)
      return rc;
    if (n == 1)
      return SNAP_OK;
    if (r.gen != rn->target)
      return snap_error_set(SNAP_EBUSY,
                            "renew unit '%.80s': another renewal moved it to generation %" PRIu32,
                            rn->u->name, r.gen);
    rc = replace_set(rn, &r, r.gen, r.mv, r.wrapped, SNAP_WRAPPED_KEY_BYTES);
    if (rc < 0)
      return rc;
    if (rc == SNAP_SWAP_DONE) {
      forget_cached(rn);
      return SNAP_OK;
    }
  }
  return snap_error_set(SNAP_EBUSY, "renew unit '%.80s': its key record kept changing",
                        rn->u->name);
}

static int renew_unit(renew *rn, const char *unit) {
  snap_store *st = rn->st;
  int rc = snap_pid_check(unit);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "renew: %s", snap_error_message());
  snap__unit u = {unit, strlen(unit)};
  if (st->env.by_prefix && snap__envelope_unit(&st->env, unit) != u.len)
    return snap_error_set(SNAP_EINVAL,
                          "renew '%.80s': not a unit of this store (units are the part of a pid "
                          "before the first '%s')",
                          unit, st->env.separator);
  rn->u = &u;
  rc = add_generation(rn);
  if (rc == 0)
    rn->pr->skipped++;
  if (rc == 1 && (rc = rewrite_bodies(rn)) == SNAP_OK && (rc = drop_older(rn)) == SNAP_OK)
    rn->pr->units++;
  rn->u = NULL;
  return rc;
}

static int after_unit(renew *rn, const char *unit, snap_renew_fn progress, void *ud) {
  if (progress == NULL)
    return SNAP_OK;
  rn->pr->last = unit;
  int rc = progress(ud, rn->pr);
  rn->pr->last = NULL;
  return rc;
}

/* A page of unit names from the key table. */
typedef struct unit_page {
  size_t n;
  char *v[UNITS_PAGE];
} unit_page;

static int take_unit(void *ctx, const snap_backend_key *k) {
  unit_page *p = ctx;
  if (p->n < UNITS_PAGE && (p->v[p->n] = snap_strdup(k->unit)) != NULL)
    p->n++;
  else if (p->n < UNITS_PAGE)
    return snap_error_set(SNAP_ENOMEM, "renew: out of memory");
  return SNAP_OK;
}

static int renew_all(renew *rn, const char *after, snap_renew_fn progress, void *ud) {
  unit_page p = {0};
  char *cursor = after ? snap_strdup(after) : NULL;
  int rc = after && !cursor ? snap_error_set(SNAP_ENOMEM, "renew: out of memory") : SNAP_OK;
  bool more = rc == SNAP_OK;
  while (more) {
    rc = rn->kbe->key_list(rn->ks, cursor, UNITS_PAGE, take_unit, &p);
    more = rc == SNAP_OK && p.n == UNITS_PAGE;
    for (size_t i = 0; i < p.n && rc == SNAP_OK; i++)
      if ((rc = renew_unit(rn, p.v[i])) == SNAP_OK)
        rc = after_unit(rn, p.v[i], progress, ud);
    if (rc == SNAP_OK && p.n > 0) {
      snap_free(cursor);
      cursor = p.v[p.n - 1];
      p.v[p.n - 1] = NULL;
    }
    for (size_t i = 0; i < p.n; i++)
      snap_free(p.v[i]);
    p.n = 0;
    more = more && rc == SNAP_OK;
  }
  snap_free(cursor);
  return rc;
}

int snap_renew_keys(snap_store *st, const snap_options *opts, const char *const *units, size_t n,
                    const char *after, snap_renew_fn progress, void *ud,
                    snap_renew_progress *out) {
  snap_renew_progress pr;
  memset(&pr, 0, sizeof pr);
  if (st == NULL || (units == NULL && n > 0))
    return snap_error_set(SNAP_EINVAL, "renew: %s is NULL", st ? "units" : "store");
  renew rn = {st, opts, NULL, NULL, NULL, NULL, NULL, &pr, NULL, 0, 0};
  snap_options *res = NULL;
  int rc = snap__envelope_keys(st, &rn.kbe, &rn.ks);
  if (rc == SNAP_OK && rn.kbe->key_replace == NULL)
    rc = snap_error_set(SNAP_EUNSUPPORTED,
                        "renew: the key table of backend '%s' cannot replace a record (backend "
                        "ABI 6 key_replace)",
                        rn.kbe->name);
  if (rc == SNAP_OK)
    rc = snap__envelope_keyring(st, "renew", opts, &res, &rn.kr, &rn.ctx);
  if (rc == SNAP_OK) {
    rn.dataset = rn.kbe->dataset(rn.ks);
    if (units == NULL)
      rc = renew_all(&rn, after, progress, ud);
    for (size_t i = 0; units != NULL && i < n && rc == SNAP_OK; i++)
      if ((rc = units[i] == NULL ? snap_error_set(SNAP_EINVAL, "renew: unit %zu is NULL", i)
                                 : renew_unit(&rn, units[i])) == SNAP_OK)
        rc = after_unit(&rn, units[i], progress, ud);
  }
  snap_options_free(res);
  if (out != NULL)
    *out = pr;
  return rc;
}
