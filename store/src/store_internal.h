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

#endif /* SNAP_STORE_INTERNAL_H */
