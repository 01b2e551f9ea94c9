/* Internal to the pipeline: guarded allocations for key material. */
#ifndef SNAP_ALLOC_INTERNAL_H
#define SNAP_ALLOC_INTERNAL_H
#include <stddef.h>

/* sodium_malloc'd (by default) memory for secrets. */
void *snap__secure_malloc(size_t size);
/* Wipes `size` bytes with sodium_memzero, then releases the memory. */
void snap__secure_free(void *ptr, size_t size);

#endif
