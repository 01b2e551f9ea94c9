/* The configuration document's "upcasters": a shared object whose entry
 * point registers upcasters on the store the document opens
 * (snap/sys/upcaster_entry.h, docs/PLUGIN.md). The library is loaded before
 * the store is opened, so a missing file or symbol opens nothing, and
 * unloaded only after the store is closed, since the store keeps pointers
 * to its functions. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "plugin_internal.h"
#include "snap/store_layer.h"
#include "snap/sys/upcaster_entry.h"

int snap__upcasters_read(snap_conf *doc, snap__upcasters *u) {
  memset(u, 0, sizeof *u);
  snap_conf sec;
  int rc = snap__conf_obj(doc, "upcasters", 0, &sec);
  if (rc <= 0)
    return rc;
  const char *library = NULL, *symbol = SNAP_UPCASTERS_ENTRY_SYMBOL;
  snap__conf_str(&sec, "library", SNAP_CONF_REQUIRED | SNAP_CONF_NONEMPTY, &library);
  snap__conf_str(&sec, "symbol", SNAP_CONF_NONEMPTY, &symbol);
  if ((rc = snap__conf_done(&sec)) != SNAP_OK)
    return rc;
  /* The strings live as long as the document: copy them for later. */
  if (strlen(library) >= sizeof u->library || strlen(symbol) >= sizeof u->symbol)
    return snap_error_set(SNAP_ECONFIG, "upcasters.%s: too long",
                          strlen(library) >= sizeof u->library ? "library" : "symbol");
  snprintf(u->library, sizeof u->library, "%s", library);
  snprintf(u->symbol, sizeof u->symbol, "%s", symbol);
  u->present = true;
  return SNAP_OK;
}

int snap__upcasters_load(snap__upcasters *u) {
  if (!u->present)
    return SNAP_OK;
  u->dl = dlopen(u->library, RTLD_NOW | RTLD_LOCAL);
  if (u->dl == NULL) {
    const char *why = dlerror();
    return snap_error_set(SNAP_ECONFIG, "upcasters.library: cannot load '%s': %s", u->library,
                          why ? why : "unknown dlopen failure");
  }
  dlerror(); /* clear, so a NULL from dlsym can be told from a missing symbol */
  void *sym = dlsym(u->dl, u->symbol);
  const char *why = dlerror();
  if (sym == NULL || why != NULL) {
    int rc = snap_error_set(SNAP_ECONFIG, "upcasters.symbol: '%s' has no entry symbol %s: %s",
                            u->library, u->symbol, why ? why : "symbol is NULL");
    snap__upcasters_unload(u);
    return rc;
  }
  /* POSIX guarantees that a data pointer from dlsym() converts to a function
   * pointer; copying the bytes keeps -pedantic quiet about the conversion. */
  memcpy(&u->entry, &sym, sizeof u->entry);
  return SNAP_OK;
}

static int host_add(const snap_upcaster_host *h, const char *from, const char *to,
                    snap_upcaster_fn fn, void *ud) {
  return snap_store_add_upcaster(h->ctx, from, to, fn, ud);
}

int snap__upcasters_register(snap__upcasters *u, snap_store *st) {
  if (!u->present)
    return SNAP_OK;
  snap_upcasters_entry_fn entry;
  memcpy(&entry, &u->entry, sizeof entry);
  u->host = (snap_upcaster_host){.abi_version = SNAP_UPCASTERS_ABI_VERSION,
                                 .add = host_add,
                                 .error = snap_error_set,
                                 .buf_set = snap_buf_set,
                                 .buf_reserve = snap_buf_reserve,
                                 .ctx = st};
  snap_error_clear();
  int rc = entry(&u->host);
  if (rc == SNAP_OK)
    return SNAP_OK;
  char msg[512];
  snprintf(msg, sizeof msg, "%s", snap_error_message()[0] ? snap_error_message() : "no message");
  return snap_error_set(rc < 0 ? rc : SNAP_ECONFIG, "upcasters: %s() of '%s' failed: %s", u->symbol,
                        u->library, msg);
}

void snap__upcasters_unload(snap__upcasters *u) {
  if (u->dl != NULL)
    dlclose(u->dl);
  u->dl = NULL;
  u->entry = NULL;
}
