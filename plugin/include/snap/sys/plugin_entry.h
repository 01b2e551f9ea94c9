/**
 * @file snap/sys/plugin_entry.h
 * @brief For backend authors: the entry point of a backend shipped as a
 *        shared object and loaded with snap_registry_load().
 *
 * A loadable backend defines exactly one exported function:
 *
 *     #include "snap/sys/plugin_entry.h"
 *
 *     static const snap_backend my_backend = {SNAP_BACKEND_ABI_VERSION, "mine", ...};
 *
 *     SNAP_BACKEND_EXPORT const snap_backend *snap_backend_entry(void) {
 *       return &my_backend;
 *     }
 *
 * The loader checks the table's ABI version before registering anything. The
 * library must not link against snapstore: everything it needs from the host
 * reaches it through the snap_host table given to open().
 */
#ifndef SNAP_SYS_PLUGIN_ENTRY_H
#define SNAP_SYS_PLUGIN_ENTRY_H

#include "snap/sys/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The name of the entry symbol the loader looks up with dlsym(). */
#define SNAP_BACKEND_ENTRY_SYMBOL "snap_backend_entry"

/**
 * The type of the entry symbol: returns the backend's table, which must stay
 * valid while the library is loaded (a static const table is the usual
 * choice), or NULL if the backend cannot run in this process.
 */
typedef const snap_backend *(*snap_backend_entry_fn)(void);

/** Marks the entry symbol as exported even when built with -fvisibility=hidden. */
#if defined(__GNUC__)
#define SNAP_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define SNAP_BACKEND_EXPORT
#endif

/** The entry point's declaration, so a definition with another type fails to compile. */
SNAP_BACKEND_EXPORT const snap_backend *snap_backend_entry(void);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_SYS_PLUGIN_ENTRY_H */
