/* The backend registry, opening a store by name, and the shared-object loader. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap/plugin.h"
#include "snap/sys/backend.h"
#include "snap/sys/plugin_entry.h"
#include "plugin_internal.h"

/*
 * A registered backend. The registry's copy of the table points its name at
 * `name`, so the copy does not depend on the caller's memory. Entries are
 * never freed: an unregistered entry moves to the retired list, because a
 * store opened on it (which copied the table, name pointer included) may
 * still refer to the name, and a pointer returned by snap_registry_find()
 * is promised to stay valid.
 *
 * Entries are allocated with the C library's calloc() rather than
 * snap_malloc(): the registry is process-global and outlives any allocator a
 * test installs with snap_allocator_set(), whose contract asks that memory be
 * freed under the allocator that gave it.
 */
typedef struct entry {
  snap_backend table;
  void *dl; /* the library it was loaded from (its dlopen() handle), or NULL */
  char name[SNAP_BACKEND_NAME_MAX + 1];
  struct entry *next;
} entry;

static pthread_rwlock_t reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static entry *live_head, *live_tail; /* registration order */
static entry *retired;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;
static int builtins_status = SNAP_OK;

static int check_name(const char *name) {
  if (!name)
    return snap_error_set(SNAP_EINVAL, "backend name is missing");
  size_t n = strnlen(name, SNAP_BACKEND_NAME_MAX + 1);
  if (n == 0 || n > SNAP_BACKEND_NAME_MAX)
    return snap_error_set(SNAP_EINVAL, "backend name must be 1-%u characters of [A-Za-z0-9_.-]",
                          SNAP_BACKEND_NAME_MAX);
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok)
      return snap_error_set(
          SNAP_EINVAL, "backend name '%s': character %zu is not one of [A-Za-z0-9_.-]", name, i);
  }
  return SNAP_OK;
}

/* Checks a table before anything of it is copied. */
static int check_table(const snap_backend *b) {
  if (!b)
    return snap_error_set(SNAP_EINVAL, "backend table is NULL");
  if (b->abi_version < 1 || b->abi_version > SNAP_BACKEND_ABI_VERSION)
    return snap_error_set(SNAP_EABI,
                          "backend table has ABI version %u; this snapstore supports 1 to %u",
                          (unsigned)b->abi_version, (unsigned)SNAP_BACKEND_ABI_VERSION);
  int rc = check_name(b->name);
  if (rc)
    return rc;
  bool can_open = b->open || (b->abi_version >= 3 && b->open_conf);
  const char *missing = !can_open    ? "open"
                        : !b->close  ? "close"
                        : !b->put    ? "put"
                        : !b->load   ? "load"
                        : !b->remove ? "remove"
                                     : NULL;
  if (missing)
    return snap_error_set(SNAP_EINVAL, "backend '%s': required operation %s is NULL", b->name,
                          missing);
  return SNAP_OK;
}

static entry *find_locked(const char *name) {
  for (entry *e = live_head; e; e = e->next)
    if (strcmp(e->name, name) == 0)
      return e;
  return NULL;
}

/* Validates, copies and links a table; the caller holds the write lock. */
static int register_locked(const snap_backend *b, const char **name_out, void *dl) {
  int rc = check_table(b);
  if (rc)
    return rc;
  if (find_locked(b->name))
    return snap_error_set(SNAP_EINVAL, "a backend named '%s' is already registered", b->name);
  entry *e = calloc(1, sizeof *e);
  if (!e)
    return snap_error_set(SNAP_ENOMEM, "out of memory registering backend '%s'", b->name);
  /* A table written for an older ABI is shorter: the later slots stay zero. */
  memcpy(&e->table, b, snap_backend_table_size(b->abi_version));
  strcpy(e->name, b->name); /* length checked by check_name() */
  e->dl = dl;
  e->table.name = e->name;
  if (live_tail)
    live_tail->next = e;
  else
    live_head = e;
  live_tail = e;
  if (name_out)
    *name_out = e->name;
  return SNAP_OK;
}

/* The built-in backends are registered like any other, once, on first use,
 * from this one table. One the library was built without
 * (SNAP_WITH_<NAME>=OFF) has a NULL table and is not registered. */
static void register_builtins(void) {
  static const snap_backend *(*const builtins[])(void) = {snap_backend_memory, snap_backend_sqlite,
                                                          snap_backend_postgres};
  pthread_rwlock_wrlock(&reg_lock);
  int rc = SNAP_OK;
  for (size_t i = 0; rc == SNAP_OK && i < sizeof builtins / sizeof builtins[0]; i++) {
    const snap_backend *b = builtins[i]();
    if (b != NULL)
      rc = register_locked(b, NULL, NULL);
  }
  builtins_status = rc;
  pthread_rwlock_unlock(&reg_lock);
}

static int ensure_builtins(void) {
  pthread_once(&builtins_once, register_builtins);
  if (builtins_status != SNAP_OK)
    return snap_error_set(builtins_status, "the built-in backends could not be registered");
  return SNAP_OK;
}

int snap_registry_register(const snap_backend *backend) {
  int rc = ensure_builtins();
  if (rc)
    return rc;
  pthread_rwlock_wrlock(&reg_lock);
  rc = register_locked(backend, NULL, NULL);
  pthread_rwlock_unlock(&reg_lock);
  return rc;
}

int snap_registry_find(const char *name, const snap_backend **out) {
  if (!name || !out)
    return snap_error_set(SNAP_EINVAL, "snap_registry_find: NULL argument");
  *out = NULL;
  int rc = ensure_builtins();
  if (rc)
    return rc;
  pthread_rwlock_rdlock(&reg_lock);
  entry *e = find_locked(name);
  if (e)
    *out = &e->table;
  pthread_rwlock_unlock(&reg_lock);
  if (!e)
    return snap_error_set(SNAP_ENOTFOUND, "no backend named '%s' is registered", name);
  return SNAP_OK;
}

int snap_registry_list(char ***names, size_t *count) {
  if (!names)
    return snap_error_set(SNAP_EINVAL, "snap_registry_list: NULL argument");
  *names = NULL;
  if (count)
    *count = 0;
  int rc = ensure_builtins();
  if (rc)
    return rc;
  pthread_rwlock_rdlock(&reg_lock);
  size_t n = 0;
  for (entry *e = live_head; e; e = e->next)
    n++;
  char **arr = snap_calloc(n + 1, sizeof *arr);
  size_t i = 0;
  if (arr) {
    for (entry *e = live_head; e; e = e->next, i++) {
      arr[i] = snap_strdup(e->name);
      if (!arr[i])
        break;
    }
  }
  pthread_rwlock_unlock(&reg_lock);
  if (!arr || i < n) {
    snap_registry_list_free(arr);
    return snap_error_set(SNAP_ENOMEM, "out of memory listing backends");
  }
  *names = arr;
  if (count)
    *count = n;
  return SNAP_OK;
}

void snap_registry_list_free(char **names) {
  if (!names)
    return;
  for (size_t i = 0; names[i]; i++)
    snap_free(names[i]);
  snap_free(names);
}

int snap_registry_unregister(const char *name) {
  if (!name)
    return snap_error_set(SNAP_EINVAL, "snap_registry_unregister: NULL name");
  int rc = ensure_builtins();
  if (rc)
    return rc;
  pthread_rwlock_wrlock(&reg_lock);
  entry *prev = NULL, *e = live_head;
  while (e && strcmp(e->name, name) != 0) {
    prev = e;
    e = e->next;
  }
  if (e) {
    if (prev)
      prev->next = e->next;
    else
      live_head = e->next;
    if (live_tail == e)
      live_tail = prev;
    e->next = retired;
    retired = e;
  }
  pthread_rwlock_unlock(&reg_lock);
  if (!e)
    return snap_error_set(SNAP_ENOTFOUND, "no backend named '%s' is registered", name);
  return SNAP_OK;
}

/* Loads `path`; with `expect`, the library must provide the backend of that
 * name, and a library already loaded for it is not loaded again. */
static int load_library(const char *path, const char *expect, const char **name_out) {
  if (name_out)
    *name_out = NULL;
  if (!path || !*path)
    return snap_error_set(SNAP_EINVAL, "snap_registry_load: no path");
  int rc = ensure_builtins();
  if (rc)
    return rc;
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char *why = dlerror();
    return snap_error_set(SNAP_EIO, "cannot load backend library '%s': %s", path,
                          why ? why : "unknown dlopen failure");
  }
  dlerror(); /* clear, so a NULL from dlsym can be told from a missing symbol */
  snap_backend_entry_fn entry_fn;
  /* POSIX guarantees that a data pointer from dlsym() converts to a function
   * pointer; copying the bytes keeps -pedantic quiet about the conversion. */
  void *sym = dlsym(dl, SNAP_BACKEND_ENTRY_SYMBOL);
  const char *why = dlerror();
  if (!sym || why) {
    rc = snap_error_set(SNAP_EIO, "backend library '%s' has no entry symbol %s: %s", path,
                        SNAP_BACKEND_ENTRY_SYMBOL, why ? why : "symbol is NULL");
    dlclose(dl);
    return rc;
  }
  memcpy(&entry_fn, &sym, sizeof entry_fn);
  const snap_backend *b = entry_fn();
  if (!b) {
    dlclose(dl);
    return snap_error_set(SNAP_EINVAL, "backend library '%s': %s() returned no table", path,
                          SNAP_BACKEND_ENTRY_SYMBOL);
  }
  if (b->abi_version < 1 || b->abi_version > SNAP_BACKEND_ABI_VERSION) {
    rc = snap_error_set(SNAP_EABI,
                        "backend library '%s' was built for backend ABI version %u; this "
                        "snapstore supports 1 to %u",
                        path, (unsigned)b->abi_version, (unsigned)SNAP_BACKEND_ABI_VERSION);
    dlclose(dl);
    return rc;
  }
  if (expect && (!b->name || strcmp(b->name, expect) != 0)) {
    rc = snap_error_set(SNAP_ECONFIG, "backend library '%s' provides backend '%s', not '%s'", path,
                        b->name ? b->name : "(unnamed)", expect);
    dlclose(dl); /* a library registered earlier keeps the reference it was loaded with */
    return rc;
  }
  pthread_rwlock_wrlock(&reg_lock);
  entry *same = expect ? find_locked(expect) : NULL;
  if (same && same->dl == dl) {
    /* Loaded for this backend before: dlopen() only counted one more user. */
    if (name_out)
      *name_out = same->name;
    pthread_rwlock_unlock(&reg_lock);
    dlclose(dl);
    return SNAP_OK;
  }
  rc = register_locked(b, name_out, dl);
  pthread_rwlock_unlock(&reg_lock);
  if (rc) {
    /* Keep the message that names the problem, adding which library it was. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", snap_error_message());
    dlclose(dl);
    return snap_error_set(rc, "backend library '%s': %s", path, msg);
  }
  /* Registered: the handle is deliberately never closed (see snap_registry_load()). */
  return SNAP_OK;
}

int snap_registry_load(const char *path, const char **name_out) {
  return load_library(path, NULL, name_out);
}

int snap__registry_load_for(const char *path, const char *name) {
  return load_library(path, name, NULL);
}

int snap_store_open(snap_store **out, const char *name, const char *config_json) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_store_open: NULL output");
  *out = NULL;
  if (!name)
    return snap_error_set(SNAP_EINVAL, "snap_store_open: no backend name");
  const snap_backend *b;
  int rc = snap_registry_find(name, &b);
  if (rc)
    return rc;
  return snap_store_open_backend(out, b, config_json);
}
