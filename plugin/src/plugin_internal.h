/* Internal declarations shared by the plugin layer's source files (never installed). */
#ifndef SNAP_PLUGIN_INTERNAL_H
#define SNAP_PLUGIN_INTERNAL_H

#include <stdbool.h>

#include "snap/store_layer.h"
#include "snap/sys/upcaster_entry.h"

/* Loads the backend library `path` for the backend `name` (the plugin
 * document's "backend_library"): as snap_registry_load(), except that the
 * library must provide `name` (SNAP_ECONFIG otherwise), and that a library
 * already loaded for `name` is used as it is rather than refused. */
int snap__registry_load_for(const char *path, const char *name);

/* The document's "upcasters" (upcasters.c). */
typedef struct snap__upcasters {
  bool present;
  char library[4096];
  char symbol[256];
  void *dl;    /* dlopen()'s handle once loaded */
  void *entry; /* the entry symbol, a snap_upcasters_entry_fn */
  /* What the entry point gets: the library may keep the pointer for its
   * upcasters, so it lives as long as the store. */
  snap_upcaster_host host;
} snap__upcasters;

/* Reads "upcasters" from the document (absent: not present). SNAP_ECONFIG
 * naming the key. */
int snap__upcasters_read(struct snap_conf *doc, snap__upcasters *u);
/* Loads the library and finds its entry symbol: SNAP_ECONFIG naming
 * upcasters.library or upcasters.symbol. Nothing to do when not present. */
int snap__upcasters_load(snap__upcasters *u);
/* Calls the entry point on `st`: its failure, prefixed with the library. */
int snap__upcasters_register(snap__upcasters *u, struct snap_store *st);
/* dlclose()s the library: only once no store holds its upcasters. */
void snap__upcasters_unload(snap__upcasters *u);

#endif /* SNAP_PLUGIN_INTERNAL_H */
