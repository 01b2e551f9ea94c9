/**
 * @file snap/cpp/options.hpp
 * @brief Part of the C++17 API (snap/snapstore.hpp has its rules and is the header to include).
 *        Keys and persistence options: snap::keyring, snap::options, snap::options_ref.
 */
#ifndef SNAP_CPP_OPTIONS_HPP
#define SNAP_CPP_OPTIONS_HPP

#include "snap/envelope.h"

#include "snap/cpp/upcast.hpp"

namespace snap {

/* ------------------------------------------------------------------------ */
/* Keyring                                                                   */
/* ------------------------------------------------------------------------ */

/** Owner of a snap_keyring: versioned master keys in guarded memory, wiped when freed. */
class keyring : public detail::unique_handle<snap_keyring, snap_keyring_free> {
public:
  /** An empty owner (no keyring). */
  keyring() noexcept = default;
  /** Takes ownership of `kr` (may be NULL). */
  explicit keyring(snap_keyring *kr) noexcept : unique_handle(kr) {}
  /** A new keyring with no keys; SNAP_ENOMEM. */
  static result<keyring> try_create() {
    return detail::adopt<keyring, snap_keyring>(snap_keyring_new);
  }
  /** Throwing form of try_create(). */
  static keyring create() { return try_create().value(); }
  /** Adds a copy of a 32-byte key under `version` (snap_keyring_add()). */
  result<void> try_add(std::uint32_t version, bytes_view key) {
    if (status st = detail::need(get(), "keyring"); !st)
      return st;
    return status::last(snap_keyring_add(get(), version, key.data(), key.size()));
  }
  /** Throwing form of try_add(). */
  void add(std::uint32_t version, bytes_view key) { try_add(version, key).value(); }
  /** Reads a key file and adds it under `version` (snap_keyring_add_file()). */
  result<void> try_add_file(std::uint32_t version, std::string_view path) {
    if (status st = detail::need(get(), "keyring"); !st)
      return st;
    result<std::string> p = detail::c_string(path, "key file path");
    if (!p)
      return p.status();
    return status::last(snap_keyring_add_file(get(), version, p->c_str()));
  }
  /** Throwing form of try_add_file(). */
  void add_file(std::uint32_t version, std::string_view path) {
    try_add_file(version, path).value();
  }
  /** Makes `version` the key new bodies are written with; SNAP_ENOKEY if absent. */
  result<void> try_set_active(std::uint32_t version) {
    if (status st = detail::need(get(), "keyring"); !st)
      return st;
    return status::last(snap_keyring_set_active(get(), version));
  }
  /** Throwing form of try_set_active(). */
  void set_active(std::uint32_t version) { try_set_active(version).value(); }
  /** The active version, 0 when there is none (or the owner is empty). */
  std::uint32_t active() const noexcept { return get() ? snap_keyring_active(get()) : 0; }
  /** Whether the keyring holds `version`. */
  bool has(std::uint32_t version) const noexcept {
    return get() && snap_keyring_has(get(), version);
  }
};

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Owner of a snap_options: per-call persistence options, every field unset
 * until a setter sets it. Keyrings are borrowed and must outlive the options.
 * The throwing setters return *this, so they chain.
 */
class options : public detail::unique_handle<snap_options, snap_options_free> {
public:
  /** An empty owner (no options). */
  options() noexcept = default;
  /** Takes ownership of `o` (may be NULL). */
  explicit options(snap_options *o) noexcept : unique_handle(o) {}
  /** New options with every field unset; SNAP_ENOMEM. */
  static result<options> try_create() {
    return detail::adopt<options, snap_options>(snap_options_new);
  }
  /** Throwing form of try_create(). */
  static options create() { return try_create().value(); }
  /** A copy (set fields and borrowed keyrings) in a new object. */
  result<options> try_clone() const {
    if (status st = detail::need(get(), "options"); !st)
      return st;
    return detail::adopt<options, snap_options>(
        [this](snap_options **o) { return snap_options_copy(o, get()); });
  }
  /** Throwing form of try_clone(). */
  options clone() const { return try_clone().value(); }

  /** snap_options_set_compression(). */
  result<void> try_set_compression(snap_compression alg, int level) {
    return apply(snap_options_set_compression(get(), alg, level));
  }
  /** Throwing form of try_set_compression(). */
  options &set_compression(snap_compression alg, int level) {
    try_set_compression(alg, level).value();
    return *this;
  }
  /** snap_options_set_dictionary(): by id (name empty) or by name (id 0). */
  result<void> try_set_dictionary(std::uint32_t id, const std::string &name = std::string()) {
    return apply(snap_options_set_dictionary(get(), id, name.empty() ? nullptr : name.c_str()));
  }
  /** Throwing form of try_set_dictionary(). */
  options &set_dictionary(std::uint32_t id, const std::string &name = std::string()) {
    try_set_dictionary(id, name).value();
    return *this;
  }
  /** snap_options_set_compression_min_size(). */
  result<void> try_set_compression_min_size(std::size_t min_size) {
    return apply(snap_options_set_compression_min_size(get(), min_size));
  }
  /** Throwing form of try_set_compression_min_size(). */
  options &set_compression_min_size(std::size_t min_size) {
    try_set_compression_min_size(min_size).value();
    return *this;
  }
  /** Encryption with `kr`'s active key bound to `context` (snap_options_set_encryption()). */
  result<void> try_set_encryption(const keyring &kr, std::string_view context) {
    return set_keyed(snap_options_set_encryption, kr, context, "encryption context");
  }
  /** Throwing form of try_set_encryption(). */
  options &set_encryption(const keyring &kr, std::string_view context) {
    try_set_encryption(kr, context).value();
    return *this;
  }
  /** Turns encryption off explicitly, overriding lower layers. */
  options &set_no_encryption() {
    apply(snap_options_set_encryption(get(), nullptr, nullptr)).value();
    return *this;
  }
  /** A keyed MAC over unencrypted bodies (snap_options_set_integrity()). */
  result<void> try_set_integrity(const keyring &kr, std::string_view context) {
    return set_keyed(snap_options_set_integrity, kr, context, "integrity context");
  }
  /** Throwing form of try_set_integrity(). */
  options &set_integrity(const keyring &kr, std::string_view context) {
    try_set_integrity(kr, context).value();
    return *this;
  }
  /** snap_options_set_limits(). */
  result<void> try_set_limits(std::size_t max_stored, std::size_t max_decoded) {
    return apply(snap_options_set_limits(get(), max_stored, max_decoded));
  }
  /** Throwing form of try_set_limits(). */
  options &set_limits(std::size_t max_stored, std::size_t max_decoded) {
    try_set_limits(max_stored, max_decoded).value();
    return *this;
  }
  /** snap_options_set_accept_unauthenticated(). */
  result<void> try_set_accept_unauthenticated(bool accept) {
    return apply(snap_options_set_accept_unauthenticated(get(), accept));
  }
  /** Throwing form of try_set_accept_unauthenticated(). */
  options &set_accept_unauthenticated(bool accept) {
    try_set_accept_unauthenticated(accept).value();
    return *this;
  }
  /** The option groups (SNAP_OPT_* bits) the caller requires (snap_options_set_required()). */
  result<void> try_set_required(unsigned required) {
    return apply(snap_options_set_required(get(), required));
  }
  /** Throwing form of try_set_required(). */
  options &set_required(unsigned required) {
    try_set_required(required).value();
    return *this;
  }
  /** Direct or envelope keys for encryption (snap_options_set_key_mode()). */
  result<void> try_set_key_mode(snap_key_mode mode) {
    return apply(snap_options_set_key_mode(get(), mode));
  }
  /** Throwing form of try_set_key_mode(). */
  options &set_key_mode(snap_key_mode mode) {
    try_set_key_mode(mode).value();
    return *this;
  }

private:
  result<void> apply(int rc) const {
    if (status st = detail::need(get(), "options"); !st)
      return st;
    return status::last(rc);
  }
  template <class F>
  result<void> set_keyed(F set, const keyring &kr, std::string_view context, const char *what) {
    if (status st = detail::need(get(), "options"); !st)
      return st;
    if (status st = detail::need(kr.get(), "keyring"); !st)
      return st;
    result<std::string> c = detail::c_string(context, what);
    if (!c)
      return c.status();
    return status::last(set(get(), kr.get(), c->c_str()));
  }
};

/**
 * Borrowed options for one call: a snap::options, a C handle, or nothing
 * (`{}`: the store's defaults apply).
 */
class options_ref {
public:
  /** No options. */
  constexpr options_ref() noexcept = default;
  /** No options. */
  constexpr options_ref(std::nullptr_t) noexcept {}
  /** The options `o` owns (borrowed for the call). */
  options_ref(const options &o) noexcept : p_(o.get()) {}
  /** A C handle (borrowed for the call; may be NULL). */
  constexpr options_ref(const snap_options *o) noexcept : p_(o) {}
  /** The C handle, NULL for none. */
  constexpr const snap_options *get() const noexcept { return p_; }

private:
  const snap_options *p_ = nullptr;
};

} // namespace snap

#endif /* SNAP_CPP_OPTIONS_HPP */
