/* Internal declarations shared by the store layer's source files (never installed). */
#ifndef SNAP_STORE_INTERNAL_H
#define SNAP_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "snap/sys/backend.h"

/* Longest nesting of a msgpack value converted to JSON: deeper input is refused
 * rather than recursing without bound. */
#define SNAP__MSGPACK_MAX_DEPTH 512

/* Converts a msgpack state to a cJSON tree (snapshot_json.c). */
int snap__msgpack_to_json(const uint8_t *data, size_t len, struct cJSON **out);

/* The store's copy of its backend table; `*self` receives the instance. */
const snap_backend *snap__store_backend(const snap_store *st, void **self);

/* Resolves the options a save or load of `pid` with `call` would use, already
 * restricted to the backend's capabilities, into `*out` (a copy the caller
 * frees). Errors as for a save's resolution (SNAP_EUNSUPPORTED, SNAP_ENOMEM). */
int snap__store_options(snap_store *st, const char *pid, const snap_options *call,
                        snap_options **out);

/* Fails with SNAP_EUNSUPPORTED: `be` lacks the optional operation `what`. */
int snap__store_unsupported(const snap_backend *be, const char *what);

#endif /* SNAP_STORE_INTERNAL_H */
