/**
 * @file snap/snapstore.hpp
 * @brief The C++17 API: header-only RAII owners over the C API.
 *
 * Every owner (snap::store, snap::plugin, snap::executor, snap::keyring,
 * snap::options, snap::snapshot) is move-only and frees its C object when it
 * is destroyed; `get()` gives the C handle for anything this header does not
 * wrap, and `release()` hands it over. A moved-from owner is empty: using it
 * is a SNAP_EINVAL error, never a crash.
 *
 * Errors, two idioms over the same operations (docs/CPP.md):
 *  - `x.save(...)` throws snap::error, which carries the SNAP_E* code and the
 *    detailed message of the failure;
 *  - `x.try_save(...)` throws no snapstore error: it returns a
 *    snap::result<T> holding either the value or the code and the message.
 *    (Like every C++ function that allocates, it may still throw
 *    std::bad_alloc when memory for the result itself runs out.)
 *
 * Strings come in as std::string_view and are copied to NUL-terminated
 * strings for the C API; a view that contains a NUL byte is refused with
 * SNAP_EINVAL (the C API would otherwise see a shorter string). States come in
 * as snap::bytes_view, which any contiguous container of bytes converts to.
 *
 * Thread-safety is the C API's: stores, executors and keyrings may be shared
 * by threads; an owner object itself must not be moved or destroyed while
 * another thread uses it.
 *
 * This header brings the whole API; its parts live in snap/cpp/ (one idea a
 * header, each usable alone), and the plugin owner (snap::plugin) is here.
 */
#ifndef SNAP_SNAPSTORE_HPP
#define SNAP_SNAPSTORE_HPP

#include "snap/cpp/status.hpp"   /* snap::status, snap::error, snap::result */
#include "snap/cpp/bytes.hpp"    /* snap::bytes_view, snap::save_ext */
#include "snap/cpp/upcast.hpp"   /* upcaster inputs and outputs */
#include "snap/cpp/options.hpp"  /* snap::keyring, snap::options */
#include "snap/cpp/store.hpp"    /* snap::snapshot, snap::store */
#include "snap/cpp/executor.hpp" /* snap::executor, snap::completion */
#include "snap/plugin.h"

namespace snap {

/* ------------------------------------------------------------------------ */
/* Plugin                                                                    */
/* ------------------------------------------------------------------------ */

/** Owner of a snap_plugin: a store, its default options and an executor built
 *  from one JSON document (snap/plugin.h, docs/PLUGIN.md). */
class plugin : public detail::unique_handle<snap_plugin, snap_plugin_close> {
public:
  /** An empty owner (no plugin). */
  plugin() noexcept = default;
  /** Takes ownership of `p` (may be NULL). */
  explicit plugin(snap_plugin *p) noexcept : unique_handle(p) {}
  /** Opens a plugin from `config_json` (snap_plugin_open()). `kr` (may be
   *  NULL) is borrowed and must outlive the plugin. */
  static result<plugin> try_open(std::string_view config_json, const keyring *kr = nullptr) {
    result<std::string> cfg = detail::c_string(config_json, "configuration document");
    if (!cfg)
      return cfg.status();
    return detail::adopt<plugin, snap_plugin>([&](snap_plugin **p) {
      return snap_plugin_open(p, cfg->c_str(), kr ? kr->get() : nullptr);
    });
  }
  /** Throwing form of try_open(). */
  static plugin open(std::string_view config_json, const keyring *kr = nullptr) {
    return try_open(config_json, kr).value();
  }
  /** The plugin's store (borrowed; valid while the plugin is). Empty when the owner is. */
  store_ref store() const noexcept { return store_ref(get() ? snap_plugin_store(get()) : nullptr); }
  /** The plugin's executor (borrowed), empty when "executor" was false. */
  executor_ref executor() const noexcept {
    return executor_ref(get() ? snap_plugin_executor(get()) : nullptr);
  }
  /** The options built from "options" (borrowed), NULL when the owner is empty. */
  const snap_options *options() const noexcept {
    return get() ? snap_plugin_options(get()) : nullptr;
  }
  /** Registers a callable upcaster on the plugin's store, kept by this owner
   *  (snap::store::try_add_upcaster() has the rules). */
  template <class F>
  result<void> try_add_upcaster(std::string_view from, std::string_view to, F &&fn) {
    return upcasters_.add(store().get(), from, to, std::forward<F>(fn));
  }
  /** Throwing form of try_add_upcaster(). */
  template <class F> void add_upcaster(std::string_view from, std::string_view to, F &&fn) {
    try_add_upcaster(from, to, std::forward<F>(fn)).value();
  }

private:
  detail::upcaster_list upcasters_;
};

} // namespace snap

#endif /* SNAP_SNAPSTORE_HPP */
