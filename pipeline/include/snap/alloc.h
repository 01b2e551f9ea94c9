/**
 * @file snap/alloc.h
 * @brief The allocator snapstore uses for its own memory, replaceable for tests.
 *
 * All heap memory snapstore allocates itself (buffers, objects, zlib state)
 * goes through these hooks; key material goes through the `secure_*` pair,
 * which defaults to libsodium's guarded sodium_malloc()/sodium_free().
 * Memory handed to the caller (snap_buf data, snapshots) is released with the
 * matching snapstore free function, never with free() directly.
 */
#ifndef SNAP_ALLOC_H
#define SNAP_ALLOC_H

#include <stddef.h>

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A set of allocation hooks. Any NULL member falls back to the default. */
typedef struct snap_allocator {
  void *(*malloc)(size_t size, void *ud);
  void *(*realloc)(void *ptr, size_t size, void *ud);
  void (*free)(void *ptr, void *ud);
  /** Guarded memory for secrets. The library wipes it before secure_free. */
  void *(*secure_malloc)(size_t size, void *ud);
  void (*secure_free)(void *ptr, void *ud);
  void *ud;
} snap_allocator;

/**
 * Installs allocation hooks process-wide (NULL restores the defaults).
 * Meant for tests and embedders with their own allocator: call it before any
 * other snapstore call, while no other thread uses the library, and free every
 * object allocated under one allocator before switching to another.
 * Returns SNAP_OK.
 */
SNAP_API int snap_allocator_set(const snap_allocator *a);

/** Frees memory snapstore returned to the caller (NULL is a no-op). */
SNAP_API void snap_free(void *ptr);

/** Allocates through the installed hooks (for the store and plugin layers and
 *  for wrappers whose memory snapstore later frees). NULL on failure. */
SNAP_API void *snap_malloc(size_t size);
SNAP_API void *snap_calloc(size_t n, size_t size);
SNAP_API void *snap_realloc(void *ptr, size_t size);
SNAP_API char *snap_strdup(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_ALLOC_H */
