/* Internal declarations shared by the plugin layer's source files (never installed). */
#ifndef SNAP_PLUGIN_INTERNAL_H
#define SNAP_PLUGIN_INTERNAL_H

/* Loads the backend library `path` for the backend `name` (the plugin
 * document's "backend_library"): as snap_registry_load(), except that the
 * library must provide `name` (SNAP_ECONFIG otherwise), and that a library
 * already loaded for `name` is used as it is rather than refused. */
int snap__registry_load_for(const char *path, const char *name);

#endif /* SNAP_PLUGIN_INTERNAL_H */
