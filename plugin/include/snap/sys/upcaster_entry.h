/**
 * @file snap/sys/upcaster_entry.h
 * @brief For authors of upcaster libraries: the entry point of a shared
 *        object that registers upcasters on a store opened from a
 *        configuration document ("upcasters", docs/PLUGIN.md).
 *
 * A library of upcasters defines one exported function, by default named
 * `snap_upcasters_register` (the document's "upcasters.symbol" may name
 * another), that registers its steps through the host table it is given:
 *
 *     #include "snap/sys/upcaster_entry.h"
 *
 *     static int account_1_to_2(void *ud, const char *from, const char *to,
 *                                snap_format fmt, const uint8_t *state,
 *                                size_t len, snap_buf *out, snap_format *out_fmt);
 *
 *     SNAP_UPCASTERS_EXPORT int snap_upcasters_register(const snap_upcaster_host *host) {
 *       if (host->abi_version < 1)
 *         return SNAP_EABI;
 *       return host->add(host, "bank.Account/1", "bank.Account/2", account_1_to_2, NULL);
 *     }
 *
 * Like a backend library (snap/sys/plugin_entry.h), it must not link against
 * snapstore: what an upcaster needs from the host (filling its output buffer,
 * setting an error message) is in the table, which stays valid for as long
 * as the store (an upcaster may keep the pointer); the library is unloaded
 * after the store is closed.
 */
#ifndef SNAP_SYS_UPCASTER_ENTRY_H
#define SNAP_SYS_UPCASTER_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "snap/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of snap_upcaster_host this header describes. */
#define SNAP_UPCASTERS_ABI_VERSION 1u

/** The entry symbol looked up when the document names none. */
#define SNAP_UPCASTERS_ENTRY_SYMBOL "snap_upcasters_register"

/**
 * What the host gives the entry point. Fields are only ever appended; a
 * library checks `abi_version` before using a field of a later version.
 */
typedef struct snap_upcaster_host {
  /* ---- version 1 ---- */
  uint32_t abi_version; /**< SNAP_UPCASTERS_ABI_VERSION of the host */
  /**
   * Registers one upcaster on the store being opened, as
   * snap_store_add_upcaster() does (same rules and errors). Call it only
   * from the entry point.
   */
  int (*add)(const struct snap_upcaster_host *host, const char *from, const char *to,
             snap_upcaster_fn fn, void *ud);
  /** snap_error_set(): records a message for the calling thread, returns `code`. */
  int (*error)(int code, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;
  /** snap_buf_set() and snap_buf_reserve(), to fill an upcaster's `out`. */
  int (*buf_set)(snap_buf *b, const void *data, size_t len);
  int (*buf_reserve)(snap_buf *b, size_t cap);
  /** The host's; a library never touches it. */
  void *ctx;
} snap_upcaster_host;

/**
 * The type of the entry symbol: registers the library's upcasters with
 * `host->add` and returns SNAP_OK, or a negative SNAP_E* code (with a message
 * through `host->error`) to refuse: the store is then not opened.
 */
typedef int (*snap_upcasters_entry_fn)(const snap_upcaster_host *host);

/** Marks the entry symbol as exported even when built with -fvisibility=hidden. */
#if defined(__GNUC__)
#define SNAP_UPCASTERS_EXPORT __attribute__((visibility("default")))
#else
#define SNAP_UPCASTERS_EXPORT
#endif

/** The default entry point's declaration, so a definition with another type fails to compile. */
SNAP_UPCASTERS_EXPORT int snap_upcasters_register(const snap_upcaster_host *host);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_SYS_UPCASTER_ENTRY_H */
