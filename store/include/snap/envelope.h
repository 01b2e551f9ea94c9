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
