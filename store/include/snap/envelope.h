/**
 * @file snap/envelope.h
 * @brief Envelope keys: forget a shred unit in one step (crypto-shredding),
 *        and rewrap every data key under the active master key.
 *
 * In envelope mode (snap_options_set_key_mode()) each shred unit (the pid,
 * or the prefix of the pid before a configured separator) has a random data
 * key, stored wrapped by the keyring's master key in the data set's key
 * table. Forgetting the unit deletes that key, so every body of the unit, in
 * the store and in any backup of the data taken before, is unreadable.
 * Rotating a master key rewraps data keys only: O(units), no body rewritten.
 * Reference: docs/STORE.md, "Envelope keys"; the formats: docs/FORMAT.md.
 * Both functions need a backend with a key table (backend ABI 4): on one
 * without, they fail with SNAP_EUNSUPPORTED.
 */
#ifndef SNAP_ENVELOPE_H
#define SNAP_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "snap/export.h"
#include "snap/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What snap_forget() removed. */
typedef struct snap_forget_report {
  uint32_t keys;       /**< data keys deleted: 1, or 0 when the unit had none (already forgotten) */
  uint32_t generation; /**< the generation of the key forgotten (0: the unit never had one) */
  uint64_t pids;       /**< persistence ids of the unit whose snapshots were deleted */
} snap_forget_report;

/**
 * Forgets the shred unit `unit`: deletes its wrapped data key from the key
 * table (keeping a tombstone, so that a load of a leftover body says the unit
 * was forgotten: SNAP_ENOKEY), wipes the key from this store's cache, then
 * deletes every snapshot of every pid of the unit (for a prefix unit, on
 * every shard). The key goes first: once it is gone, no body of the unit
 * decrypts, whatever else a crash leaves. Works in either key mode; a unit
 * with no key still gets its snapshots deleted and a tombstone.
 * `report` may be NULL. Saves of the unit that race the call may be lost;
 * a later save of the unit starts a new key generation.
 * Errors: SNAP_EINVAL (NULL store, an invalid unit), SNAP_EUNSUPPORTED (no
 * key table), the backend's errors. Thread-safe.
 */
SNAP_API int snap_forget(snap_store *st, const char *unit, snap_forget_report *report);

/** Progress of snap_rewrap() so far. */
typedef struct snap_rewrap_progress {
  uint64_t seen;       /**< key records read */
  uint64_t rewrapped;  /**< rewrapped under the active master key */
  uint64_t current;    /**< already under the active master key: left alone */
  uint64_t forgotten;  /**< tombstones: nothing to rewrap */
  uint64_t changed;    /**< changed by someone else meanwhile (their record stands) */
  const char *last;    /**< the last unit handled (valid during the callback) */
} snap_rewrap_progress;

/** Called after each page; a non-zero return stops the rewrap with that status. */
typedef int (*snap_rewrap_fn)(void *ud, const snap_rewrap_progress *p);

/**
 * Rewraps every data key of the store's key table that is not under the
 * active master key of the encryption keyring resolved from `opts` (then the
 * store's defaults), so that older master keys can be retired. O(units):
 * bodies are not touched. Each page is one conditional batch, committed on
 * its own: safe beside live writers, and resumable (a rerun, or one started
 * `after` the last unit reported, skips what is done). `progress` (may be
 * NULL) is called after each page; `out` (may be NULL) receives the totals.
 * A key whose master key version is not in the keyring is an error
 * (SNAP_ENOKEY naming the unit and version), as is one that does not
 * authenticate (SNAP_EAUTH). SNAP_EINVAL when no encryption keyring is
 * configured. Thread-safe.
 */
SNAP_API int snap_rewrap(snap_store *st, const snap_options *opts, const char *after,
                         snap_rewrap_fn progress, void *ud, snap_rewrap_progress *out);

/** Progress of snap_renew_keys() so far. */
typedef struct snap_renew_progress {
  uint64_t units;   /**< units renewed: a new data key, their bodies under it, older keys deleted */
  uint64_t skipped; /**< units without a live key (none yet, or forgotten): nothing to renew */
  uint64_t bodies;  /**< bodies rewritten under a new data key */
  uint64_t changed; /**< bodies replaced or deleted by others meanwhile (theirs stand) */
  const char *last; /**< the last unit handled (valid during the callback) */
} snap_renew_progress;

/** Called after each unit; a non-zero return stops the renewal with that status. */
typedef int (*snap_renew_fn)(void *ud, const snap_renew_progress *p);

/**
 * Renews the data keys of shred units, for a data key that may have been
 * exposed: each unit gets a new random data key (the next generation,
 * wrapped under the active master key of the encryption keyring resolved
 * from `opts`, then the store's defaults), every body of the unit sealed with
 * an older generation is rewritten under it, and once no body needs them the
 * older generations are deleted from the key table: a copy of a body sealed
 * before, wherever it is, no longer decrypts (SNAP_ENOKEY). Saves made
 * meanwhile through this store use the new key.
 *
 * `units` (`n` of them) names the units; NULL renews every unit of the key
 * table whose name is greater than `after` (NULL: from the first). A unit
 * without a live key is skipped. Each unit is done in steps that each leave
 * every body loadable: the new key is durable (on the key store when it is
 * separate) before any body is sealed with it; bodies are rewritten with
 * conditional replaces (snap_store_rewrite()), so a concurrent save or
 * delete wins; older keys are deleted only after a pass over the unit found
 * no body that needs them. A killed run is resumed by running it again: a
 * unit left with more than one generation is finished, not given another.
 * `progress` (may be NULL) is called after each unit; `out` (may be NULL)
 * receives the totals.
 *
 * Errors: SNAP_EINVAL (NULL store, an invalid unit, no encryption keyring),
 * SNAP_EUNSUPPORTED (no key table, or one without key_replace: backend ABI
 * 6), SNAP_EBUSY (bodies of an older generation kept appearing: a writer in
 * another process still saves with its cached older key; run it again), a
 * body that cannot be rewritten (its status; the unit keeps its older keys),
 * the backend's errors. Thread-safe.
 */
SNAP_API int snap_renew_keys(snap_store *st, const snap_options *opts, const char *const *units,
                             size_t n, const char *after, snap_renew_fn progress, void *ud,
                             snap_renew_progress *out);

/**
 * Writes the shred unit of `pid` under this store's configuration into
 * `buf` (`cap` bytes, NUL-terminated; SNAP_ETOOBIG when it does not fit).
 * SNAP_EINVAL for a NULL argument or an invalid pid.
 */
SNAP_API int snap_store_unit_of(const snap_store *st, const char *pid, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* SNAP_ENVELOPE_H */
