/* The allocator hooks every snapstore allocation goes through. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snap/alloc.h"
#include "snap/error.h"
#include "alloc_internal.h"

static void *def_malloc(size_t n, void *ud) {
  (void)ud;
  return malloc(n);
}
static void *def_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return realloc(p, n);
}
static void def_free(void *p, void *ud) {
  (void)ud;
  free(p);
}
static void *def_secure_malloc(size_t n, void *ud) {
  (void)ud;
  if (sodium_init() < 0)
    return NULL;
  return sodium_malloc(n);
}
static void def_secure_free(void *p, void *ud) {
  (void)ud;
  sodium_free(p);
}

static snap_allocator current = {def_malloc,        def_realloc,     def_free,
                                 def_secure_malloc, def_secure_free, NULL};

int snap_allocator_set(const snap_allocator *a) {
  snap_allocator next = {def_malloc,        def_realloc,     def_free,
                         def_secure_malloc, def_secure_free, NULL};
  if (a) {
    if (a->malloc)
      next.malloc = a->malloc;
    if (a->realloc)
      next.realloc = a->realloc;
    if (a->free)
      next.free = a->free;
    if (a->secure_malloc)
      next.secure_malloc = a->secure_malloc;
    if (a->secure_free)
      next.secure_free = a->secure_free;
    next.ud = a->ud;
  }
  current = next;
  return SNAP_OK;
}

void *snap_malloc(size_t size) { return current.malloc(size ? size : 1, current.ud); }

void *snap_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size)
    return NULL;
  void *p = snap_malloc(n * size);
  if (p)
    memset(p, 0, n * size);
  return p;
}

void *snap_realloc(void *ptr, size_t size) {
  return current.realloc(ptr, size ? size : 1, current.ud);
}

void snap_free(void *ptr) {
  if (ptr)
    current.free(ptr, current.ud);
}

char *snap_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = snap_malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

void *snap__secure_malloc(size_t size) { return current.secure_malloc(size, current.ud); }

void snap__secure_free(void *ptr, size_t size) {
  if (!ptr)
    return;
  /* Wipe before handing the memory back, whatever the hook does with it. */
  sodium_memzero(ptr, size);
  current.secure_free(ptr, current.ud);
}
