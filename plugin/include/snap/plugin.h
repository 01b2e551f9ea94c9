/**
 * @file snap/plugin.h
 * @brief Finding backends: the registry, opening a store by backend name, the
 *        shared-object loader and the configuration document.
 *
 * The registry maps names to backend tables (snap/sys/backend.h). The built-in
 * "memory" and "sqlite" backends are registered on first use of the registry,
 * through the same snap_registry_register() a third-party backend uses.
 * Every function here is thread-safe.
 */
#ifndef SNAP_PLUGIN_H
#define SNAP_PLUGIN_H

#include <stddef.h>

#include "snap/executor.h"
#include "snap/pipeline.h"
#include "snap/store.h"

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct snap_backend; /* snap/sys/backend.h */

/** Longest backend name accepted, in bytes. Names match [A-Za-z0-9_.-]{1,64}. */
#define SNAP_BACKEND_NAME_MAX 64u

/* ------------------------------------------------------------------------ */
/* Registry                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * Registers a backend table under its name. The table is validated (ABI
 * version between 1 and SNAP_BACKEND_ABI_VERSION, a valid name, the required
 * operations open, close, put, load and remove present) and copied, so the
 * caller's table may be temporary or read-only.
 * Errors: SNAP_EINVAL (NULL table, bad name, missing operation, or a backend
 * of that name already registered), SNAP_EABI (unsupported ABI version; the
 * message gives both versions), SNAP_ENOMEM.
 */
SNAP_API int snap_registry_register(const struct snap_backend *backend);

/**
 * Finds a registered backend. `*out` receives the registry's copy of the
 * table, valid for the life of the process even after the name is
 * unregistered (retired tables are kept, never freed). SNAP_ENOTFOUND (with
 * the name in the message) when no backend has that name, SNAP_EINVAL for a
 * NULL argument.
 */
SNAP_API int snap_registry_find(const char *name, const struct snap_backend **out);

/**
 * Lists the registered names in registration order. `*names` receives a
 * NULL-terminated array of copies and `*count` (may be NULL) their number;
 * free it with snap_registry_list_free(). SNAP_ENOMEM.
 */
SNAP_API int snap_registry_list(char ***names, size_t *count);

/** Frees an array returned by snap_registry_list(). NULL is a no-op. */
SNAP_API void snap_registry_list_free(char **names);

/**
 * Removes a name from the registry, so it can be registered again. Stores
 * already open on that backend are unaffected: each store copied the table,
 * and a shared object the backend came from is never unloaded (see
 * snap_registry_load()). SNAP_ENOTFOUND when the name is not registered.
 */
SNAP_API int snap_registry_unregister(const char *name);

/**
 * Loads a backend from a shared object and registers it. The library is
 * opened with dlopen(RTLD_NOW | RTLD_LOCAL), its entry symbol
 * SNAP_BACKEND_ENTRY_SYMBOL (snap/sys/plugin_entry.h) is called, and the
 * table it returns is checked and registered like snap_registry_register().
 * A library that cannot be loaded, lacks the symbol, returns NULL, has an
 * unsupported ABI version or a name already taken is closed again and nothing
 * is registered. A library whose backend was registered stays loaded for the
 * life of the process, so that unregistering never pulls code from under an
 * open store. `*name_out` (may be NULL) receives the registered name, valid
 * for the life of the process.
 * Errors: SNAP_EIO (dlopen or dlsym failed; the message has dlerror()'s
 * text), SNAP_EABI, SNAP_EINVAL, SNAP_ENOMEM.
 */
SNAP_API int snap_registry_load(const char *path, const char **name_out);

/* ------------------------------------------------------------------------ */
/* Opening a store by name                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Opens a store on the backend registered as `name` ("memory", "sqlite", or a
 * registered or loaded third-party backend). `config_json` (may be NULL) is
 * the JSON object described at snap_store_open_backend(): store keys plus the
 * backend's own keys. Close with snap_store_close().
 * Errors: SNAP_ENOTFOUND (no such backend), SNAP_ECONFIG (naming the key),
 * and the backend's open errors.
 */
SNAP_API int snap_store_open(snap_store **out, const char *name, const char *config_json);

/* ------------------------------------------------------------------------ */
/* Configuration document                                                    */
/* ------------------------------------------------------------------------ */

/**
 * A store, its default options and an executor, built from one JSON document
 * (the reference is docs/PLUGIN.md):
 *
 *     {"backend": "sqlite",
 *      "config": {"path": "state.db", "keep": 3},
 *      "options": {"compression": "zlib", "compression_level": 6,
 *                  "compression_min_size": 256,
 *                  "encryption": {"context": "acme/prod/snapshots/v1",
 *                                 "keys": [{"version": 1, "file": "/etc/app/k1"},
 *                                          {"version": 2, "file": "/etc/app/k2"}],
 *                                 "active": 2},
 *                  "max_stored_size": 16777216, "max_decoded_size": 67108864,
 *                  "accept_unauthenticated": false, "required": ["encryption"]},
 *      "executor": {"queue_capacity": 1024, "max_batch": 512},
 *      "observe": {"metrics": true, "log": "warning"}}
 *
 * Keys never travel inside the document: encryption (and "integrity", a MAC on
 * unencrypted bodies, with the same keys) takes its key from a key file (mode
 * 0600 or stricter) or from the keyring given to snap_plugin_open().
 */
typedef struct snap_plugin snap_plugin;

/**
 * Parses `config_json`, loads "backend_library" if the document names one,
 * opens the store, installs the options as the store's defaults, checks the
 * store with snap_store_check() (unless "check": false) and starts the
 * executor ("executor": false starts none).
 * `keyring` (may be NULL) is borrowed and must outlive the plugin; it supplies
 * the keys of "options.encryption" and of "options.integrity" when the group
 * has a context but no key file (a keyring that would serve neither group is
 * refused with SNAP_ECONFIG).
 * The document is read strictly: unknown or duplicate keys, wrong types,
 * inexact integers, NUL inside strings and bytes after the document fail with
 * SNAP_ECONFIG and a message naming the key by its full path
 * ("options.encryption.keys[1].file", "config.path").
 * A key file that cannot be used fails with its keyring error (SNAP_EAUTH for
 * a group- or world-readable file, SNAP_EIO, SNAP_EFORMAT) naming the path.
 * Other errors: those of snap_store_open(), SNAP_ENOMEM. Free with
 * snap_plugin_close().
 */
SNAP_API int snap_plugin_open(snap_plugin **out, const char *config_json, snap_keyring *keyring);

/** snap_plugin_open_ex() flag: start no executor, whatever "executor" says
 *  (snap_plugin_executor() is then NULL). */
#define SNAP_PLUGIN_NO_EXECUTOR (1u << 0)

/**
 * snap_plugin_open_ex() flag: open an existing store only, to read it. No
 * file, directory, table or schema is created. A store that does not exist
 * fails with SNAP_ENOTFOUND; for "sqlite" the message is
 * `no store at '<path>' (resolved to '<absolute path>')` and nothing is left
 * on disk, and the store is opened read-only (as with "read_only": true).
 * "postgres" creates no schema and reports a missing table as
 * SNAP_ENOTFOUND; "memory" has nothing to create. Third-party backends
 * written for backend ABI version 1 or 2 do not know the flag and open as
 * they always do.
 */
#define SNAP_PLUGIN_NO_CREATE (1u << 1)

/**
 * snap_plugin_open_ex() flag: no snap_store_check() at open, whatever "check"
 * says; the caller runs it (e.g. snapctl, to report a store it cannot reach
 * apart from a wrong document: both may be SNAP_EIO inside one open).
 */
#define SNAP_PLUGIN_NO_CHECK (1u << 2)

/**
 * snap_plugin_open() with `flags` (SNAP_PLUGIN_NO_EXECUTOR,
 * SNAP_PLUGIN_NO_CREATE, SNAP_PLUGIN_NO_CHECK, or 0 for snap_plugin_open()
 * itself). The document
 * is read exactly as snap_plugin_open() reads it: the flags change what is
 * done with it, never what it may say. Unknown flag bits fail with
 * SNAP_EINVAL.
 */
SNAP_API int snap_plugin_open_ex(snap_plugin **out, const char *config_json, snap_keyring *keyring,
                                 unsigned flags);

/**
 * Drains and frees the executor (every queued request completes), closes the
 * store and wipes the plugin's own keyring. NULL is a no-op.
 */
SNAP_API void snap_plugin_close(snap_plugin *p);

/** The plugin's store (borrowed; valid until snap_plugin_close()). */
SNAP_API snap_store *snap_plugin_store(const snap_plugin *p);

/** The plugin's executor (borrowed), or NULL when "executor" was false or the
 *  plugin was opened with SNAP_PLUGIN_NO_EXECUTOR. */
SNAP_API snap_executor *snap_plugin_executor(const snap_plugin *p);

/**
 * The options built from "options" (borrowed), already installed as the
 * store's defaults; pass them to loads and saves made directly on the store
 * when a call should carry them explicitly. Never NULL.
 */
SNAP_API const snap_options *snap_plugin_options(const snap_plugin *p);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_PLUGIN_H */
