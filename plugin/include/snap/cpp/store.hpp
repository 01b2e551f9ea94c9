/**
 * @file snap/cpp/store.hpp
 * @brief Part of the C++17 API (snap/snapstore.hpp has its rules and is the header to include).
 *        Stores and what they return: snap::snapshot, snap::store_ref, snap::store.
 */
#ifndef SNAP_CPP_STORE_HPP
#define SNAP_CPP_STORE_HPP

#include "snap/admin.h"
#include "snap/plugin.h"
#include "snap/store.h"

#include "snap/cpp/options.hpp"

namespace snap {

/* ------------------------------------------------------------------------ */
/* Snapshot                                                                  */
/* ------------------------------------------------------------------------ */

/** Owner of a loaded snap_snapshot. */
class snapshot : public detail::unique_handle<snap_snapshot, snap_snapshot_free> {
public:
  /** Takes ownership of `s` (must not be NULL). */
  explicit snapshot(snap_snapshot *s) noexcept : unique_handle(s) {}
  /** The persistence id. */
  std::string_view pid() const noexcept { return get()->pid; }
  /** The sequence number. */
  std::int64_t seq() const noexcept { return get()->seq; }
  /** Milliseconds since the epoch. */
  std::int64_t timestamp() const noexcept { return get()->timestamp; }
  /** The state's format. */
  snap_format format() const noexcept { return get()->format; }
  /** The state's bytes (valid as long as this snapshot). */
  bytes_view data() const noexcept { return bytes_view(get()->data, get()->len); }
  /** The state as characters (a JSON state's text). */
  std::string_view text() const noexcept {
    return std::string_view(reinterpret_cast<const char *>(get()->data), get()->len);
  }
  /** SNAP_STAGE_* bits the stored body went through. */
  unsigned stages() const noexcept { return get()->stages; }
  /** Newer matching snapshots skipped as undecodable. */
  unsigned skipped() const noexcept { return get()->skipped; }
  /** Status of the first skip, or SNAP_OK. */
  int skip_reason() const noexcept { return get()->skip_reason; }
  /** The manifest of the state (the target of a load_as()), "" when the
   *  body states none. */
  std::string_view manifest() const noexcept {
    return get()->manifest ? get()->manifest : std::string_view();
  }
  /** The manifest the body was stored with (differs from manifest() when
   *  load_as() upcast it), "" when none. */
  std::string_view stored_manifest() const noexcept {
    return get()->stored_manifest ? get()->stored_manifest : std::string_view();
  }
  /** The metadata stored with the state (empty: none). */
  bytes_view metadata() const noexcept { return bytes_view(get()->metadata, get()->metadata_len); }
};

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

/**
 * A borrowed store: every operation of snap/store.h. Copyable; it does not
 * close the store. snap::store owns one; snap::plugin::store() lends one.
 */
class store_ref {
public:
  /** No store. */
  store_ref() noexcept = default;
  /** Borrows `st` (may be NULL). */
  explicit store_ref(snap_store *st) noexcept : h_(st) {}
  /** The C handle (borrowed), NULL when empty. */
  snap_store *get() const noexcept { return h_; }
  /** Whether there is a store. */
  explicit operator bool() const noexcept { return h_ != nullptr; }
  /** The backend's capability bits (SNAP_CAP_*), 0 when empty. */
  unsigned capabilities() const noexcept { return h_ ? snap_store_capabilities(h_) : 0u; }
  /** The backend's name, "" when empty. */
  std::string_view backend_name() const noexcept { return h_ ? snap_store_backend_name(h_) : ""; }
  /** Replaces the store's default options with a copy of `o` ({} clears them). */
  result<void> try_set_default_options(options_ref o) const {
    if (status st = detail::need(h_, "store"); !st)
      return st;
    return status::last(snap_store_set_default_options(h_, o.get()));
  }
  /** Throwing form of try_set_default_options(). */
  void set_default_options(options_ref o) const { try_set_default_options(o).value(); }

  /** Saves a snapshot, durable on success (snap_save()); gives what was stored. */
  result<snap_meta> try_save(std::string_view pid, std::int64_t seq, snap_format fmt,
                             bytes_view state, options_ref o = {}) const {
    snap_meta meta{};
    result<void> r = with_pid(pid, [&](const char *p) {
      return snap_save(h_, p, seq, fmt, state.data(), state.size(), o.get(), &meta);
    });
    if (!r)
      return r.status();
    return meta;
  }
  /** Throwing form of try_save(). */
  snap_meta save(std::string_view pid, std::int64_t seq, snap_format fmt, bytes_view state,
                 options_ref o = {}) const {
    return try_save(pid, seq, fmt, state, o).value();
  }
  /** A save with what `x` asks (snap_save_ex()): a condition, a manifest,
   *  metadata. A conflict is SNAP_ECONFLICT whose status has current_seq(). */
  result<snap_meta> try_save_ex(std::string_view pid, std::int64_t seq, snap_format fmt,
                                bytes_view state, const save_ext &x, options_ref o = {}) const {
    if (status st = detail::need(h_, "store"); !st)
      return st;
    result<std::string> p = detail::c_string(pid, "persistence id");
    if (!p)
      return p.status();
    std::string manifest;
    snap_save_ext ext{};
    if (status st = detail::c_save_ext(x, manifest, ext); !st)
      return st;
    snap_save_req rq{p->c_str(),   seq,    SNAP_TIMESTAMP_AUTO, fmt, state.data(),
                     state.size(), o.get()};
    snap_meta meta{};
    int rc = snap_save_ex(h_, &rq, &ext, &meta);
    if (rc != SNAP_OK)
      return detail::save_status(rc, meta);
    return meta;
  }
  /** Throwing form of try_save_ex(): a conflict throws snap::conflict. */
  snap_meta save_ex(std::string_view pid, std::int64_t seq, snap_format fmt, bytes_view state,
                    const save_ext &x, options_ref o = {}) const {
    return try_save_ex(pid, seq, fmt, state, x, o).value();
  }

  /** The youngest snapshot of `pid` matching all four bounds of `c`; nullopt when none. */
  result<std::optional<snapshot>> try_load(std::string_view pid, const snap_criteria &c,
                                           options_ref o = {}) const {
    return load_with(
        pid, [&](const char *p, snap_snapshot **s) { return snap_load(h_, p, &c, o.get(), s); });
  }
  /** Throwing form of try_load(). */
  std::optional<snapshot> load(std::string_view pid, const snap_criteria &c,
                               options_ref o = {}) const {
    return try_load(pid, c, o).value();
  }
  /** The newest snapshot of `pid`; nullopt when none. */
  result<std::optional<snapshot>> try_load_latest(std::string_view pid, options_ref o = {}) const {
    return try_load(pid, criteria_latest(), o);
  }
  /** Throwing form of try_load_latest(). */
  std::optional<snapshot> load_latest(std::string_view pid, options_ref o = {}) const {
    return try_load_latest(pid, o).value();
  }
  /** The youngest snapshot of `pid` matching `c`, its state brought to the
   *  manifest `target` by the store's upcasters (snap_load_as()); nullopt when none. */
  result<std::optional<snapshot>> try_load_as(std::string_view pid, const snap_criteria &c,
                                              std::string_view target, options_ref o = {}) const {
    return load_named(pid, target, "target manifest",
                      [&](const char *p, const char *t, snap_snapshot **s) {
                        return snap_load_as(h_, p, &c, t, o.get(), s);
                      });
  }
  /** Throwing form of try_load_as(). */
  std::optional<snapshot> load_as(std::string_view pid, const snap_criteria &c,
                                  std::string_view target, options_ref o = {}) const {
    return try_load_as(pid, c, target, o).value();
  }
  /** The newest snapshot of `pid` brought to the manifest `target`; nullopt when none. */
  result<std::optional<snapshot>> try_load_latest_as(std::string_view pid, std::string_view target,
                                                     options_ref o = {}) const {
    return try_load_as(pid, criteria_latest(), target, o);
  }
  /** Throwing form of try_load_latest_as(). */
  std::optional<snapshot> load_latest_as(std::string_view pid, std::string_view target,
                                         options_ref o = {}) const {
    return try_load_latest_as(pid, target, o).value();
  }
  /** The youngest snapshot of `pid` matching `c` stored with the manifest
   *  `manifest` (snap_load_manifest()); nullopt when none. */
  result<std::optional<snapshot>> try_load_manifest(std::string_view pid, const snap_criteria &c,
                                                    std::string_view manifest,
                                                    options_ref o = {}) const {
    return load_named(pid, manifest, "manifest",
                      [&](const char *p, const char *m, snap_snapshot **s) {
                        return snap_load_manifest(h_, p, &c, m, o.get(), s);
                      });
  }
  /** Throwing form of try_load_manifest(). */
  std::optional<snapshot> load_manifest(std::string_view pid, const snap_criteria &c,
                                        std::string_view manifest, options_ref o = {}) const {
    return try_load_manifest(pid, c, manifest, o).value();
  }

  /** Stores a dictionary under `name` (snap_store_dict_add()); gives its id. */
  result<std::uint32_t> try_dict_add(std::string_view name, bytes_view dict) const {
    if (status st = detail::need(h_, "store"); !st)
      return st;
    result<std::string> n = detail::c_string(name, "dictionary name");
    if (!n)
      return n.status();
    std::uint32_t id = 0;
    int rc = snap_store_dict_add(h_, n->c_str(), dict.data(), dict.size(), &id);
    if (rc != SNAP_OK)
      return status::last(rc);
    return id;
  }
  /** Throwing form of try_dict_add(). */
  std::uint32_t dict_add(std::string_view name, bytes_view dict) const {
    return try_dict_add(name, dict).value();
  }

  /** The newest snapshot of `pid` with sequence number < `seq`; nullopt when none. */
  result<std::optional<snapshot>> try_load_before(std::string_view pid, std::int64_t seq,
                                                  options_ref o = {}) const {
    return load_with(pid, [&](const char *p, snap_snapshot **s) {
      return snap_load_before(h_, p, seq, o.get(), s);
    });
  }
  /** Throwing form of try_load_before(). */
  std::optional<snapshot> load_before(std::string_view pid, std::int64_t seq,
                                      options_ref o = {}) const {
    return try_load_before(pid, seq, o).value();
  }

  /** Deletes every snapshot of `pid` matching `c` (snap_delete_matching()). */
  result<void> try_remove(std::string_view pid, const snap_criteria &c) const {
    return with_pid(pid, [&](const char *p) { return snap_delete_matching(h_, p, &c); });
  }
  /** Throwing form of try_remove(). */
  void remove(std::string_view pid, const snap_criteria &c) const { try_remove(pid, c).value(); }
  /** Deletes every snapshot of `pid` with sequence number <= `to_seq` (snap_delete()). */
  result<void> try_remove_to(std::string_view pid, std::int64_t to_seq) const {
    return with_pid(pid, [&](const char *p) { return snap_delete(h_, p, to_seq); });
  }
  /** Throwing form of try_remove_to(). */
  void remove_to(std::string_view pid, std::int64_t to_seq) const {
    try_remove_to(pid, to_seq).value();
  }

  /** Forgets a shred unit: its data key and its snapshots (snap_forget()). */
  result<snap_forget_report> try_forget(std::string_view unit) const {
    snap_forget_report rep{};
    result<void> r = with_pid(unit, [&](const char *u) { return snap_forget(h_, u, &rep); });
    if (!r)
      return r.status();
    return rep;
  }
  /** Throwing form of try_forget(). */
  snap_forget_report forget(std::string_view unit) const { return try_forget(unit).value(); }
  /** Rewraps every data key under the active master key of `o`, or of the
   *  store's defaults (snap_rewrap(), without a progress callback). */
  result<snap_rewrap_progress> try_rewrap(options_ref o = {}) const {
    if (status st = detail::need(h_, "store"); !st)
      return st;
    snap_rewrap_progress pr{};
    int rc = snap_rewrap(h_, o.get(), nullptr, nullptr, nullptr, &pr);
    if (rc != SNAP_OK)
      return status::last(rc);
    return pr;
  }
  /** Throwing form of try_rewrap(). */
  snap_rewrap_progress rewrap(options_ref o = {}) const { return try_rewrap(o).value(); }

private:
  /* Checks the store and the pid, then runs `call(pid)`, a C call returning a status. */
  template <class F> result<void> with_pid(std::string_view pid, F call) const {
    if (status st = detail::need(h_, "store"); !st)
      return st;
    result<std::string> p = detail::c_string(pid, "persistence id");
    if (!p)
      return p.status();
    return status::last(call(p->c_str()));
  }
  /* with_pid() for a C load: the snapshot it gives, if any, becomes a snap::snapshot. */
  template <class F> result<std::optional<snapshot>> load_with(std::string_view pid, F call) const {
    snap_snapshot *s = nullptr;
    result<void> r = with_pid(pid, [&](const char *p) { return call(p, &s); });
    if (!r)
      return r.status();
    if (!s)
      return std::optional<snapshot>();
    return std::optional<snapshot>(snapshot(s));
  }
  /* load_with() for a C load that also takes a manifest, `name` (checked as `what`). */
  template <class F>
  result<std::optional<snapshot>> load_named(std::string_view pid, std::string_view name,
                                             const char *what, F call) const {
    result<std::string> n = detail::c_string(name, what);
    if (!n)
      return n.status();
    return load_with(pid, [&](const char *p, snap_snapshot **s) { return call(p, n->c_str(), s); });
  }

protected:
  snap_store *h_ = nullptr;
};

/** Owner of a snap_store: move-only, closes it (snap_store_close()) when
 *  destroyed; release() gives the handle up. Every operation is store_ref's. */
class store : public detail::owner<store_ref, snap_store, snap_store_close> {
public:
  using owner::owner;

  /** Opens a store on the backend registered as `backend` (snap_store_open()).
   *  An empty `config_json` means no configuration (the backend's defaults). */
  static result<store> try_open(std::string_view backend, std::string_view config_json = {}) {
    result<std::string> name = detail::c_string(backend, "backend name");
    if (!name)
      return name.status();
    result<std::string> cfg = detail::c_string(config_json, "configuration document");
    if (!cfg)
      return cfg.status();
    return detail::adopt<store, snap_store>([&](snap_store **st) {
      return snap_store_open(st, name->c_str(), config_json.empty() ? nullptr : cfg->c_str());
    });
  }
  /** Throwing form of try_open(). */
  static store open(std::string_view backend, std::string_view config_json = {}) {
    return try_open(backend, config_json).value();
  }

  /**
   * Registers a callable as the upcaster from manifest `from` to manifest `to`
   * (snap_store_add_upcaster()): it takes a `const snap::upcast_input &` and
   * returns the new state, a std::string (same format) or a
   * snap::upcast_output. This owner keeps the callable until it is destroyed
   * (after release() the C store must not run it). An exception it throws
   * never reaches C: snap::error becomes its code and message, std::bad_alloc
   * SNAP_ENOMEM, any other exception SNAP_EFORMAT with its what(); the load
   * fails naming the step. Not concurrent with loads of this store.
   */
  template <class F>
  result<void> try_add_upcaster(std::string_view from, std::string_view to, F &&fn) {
    return upcasters_.add(h_, from, to, std::forward<F>(fn));
  }
  /** Throwing form of try_add_upcaster(). */
  template <class F> void add_upcaster(std::string_view from, std::string_view to, F &&fn) {
    try_add_upcaster(from, to, std::forward<F>(fn)).value();
  }

private:
  detail::upcaster_list upcasters_;
};

} // namespace snap

#endif /* SNAP_CPP_STORE_HPP */
