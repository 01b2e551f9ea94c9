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
 */
#ifndef SNAP_SNAPSTORE_HPP
#define SNAP_SNAPSTORE_HPP

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "snap/admin.h"
#include "snap/envelope.h"
#include "snap/executor.h"
#include "snap/pipeline.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/version.h"

namespace snap {

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/** The outcome of an operation: SNAP_OK, or a SNAP_E* code and its detailed message. */
class status {
public:
  /** Success. */
  status() = default;
  /** A failure (or success when `code` is SNAP_OK) with its detailed message. */
  status(int code, std::string message) : code_(code), message_(std::move(message)) {}
  /** `code` with the calling thread's last detailed message (snap_error_message()). */
  static status last(int code) {
    return code == SNAP_OK ? status() : status(code, snap_error_message());
  }
  /** A conditional save's SNAP_ECONFLICT: `current_seq` is the pid's newest
   *  stored seq the save found (SNAP_SEQ_NONE: it has none). */
  static status conflict_at(std::string message, std::int64_t current_seq) {
    status st(SNAP_ECONFLICT, std::move(message));
    st.current_seq_ = current_seq;
    return st;
  }
  /** Whether the operation succeeded. */
  bool ok() const noexcept { return code_ == SNAP_OK; }
  /** Same as ok(). */
  explicit operator bool() const noexcept { return ok(); }
  /** SNAP_OK or the negative SNAP_E* code. */
  int code() const noexcept { return code_; }
  /** The code's name, e.g. "authentication failed" (snap_strerror()). */
  const char *name() const noexcept { return snap_strerror(code_); }
  /** The detailed message ("" on success). */
  const std::string &message() const noexcept { return message_; }
  /** SNAP_ECONFLICT of a conditional save: the pid's newest stored seq it
   *  found (SNAP_SEQ_NONE: none). Any other status: SNAP_SEQ_NONE. */
  std::int64_t current_seq() const noexcept { return current_seq_; }
  /** Throws snap::error (snap::conflict for SNAP_ECONFLICT) when this is a
   *  failure; does nothing otherwise. */
  inline void throw_if_failed() const;

private:
  int code_ = SNAP_OK;
  std::string message_;
  std::int64_t current_seq_ = SNAP_SEQ_NONE;
};

/** The exception the throwing forms raise: the SNAP_E* code and the detailed message. */
class error : public std::runtime_error {
public:
  /** `what()` is "<code name>: <message>". */
  error(int code, const std::string &message)
      : std::runtime_error(std::string(snap_strerror(code)) + (message.empty() ? "" : ": ") +
                           message),
        code_(code), message_(message) {}
  /** The negative SNAP_E* code. */
  int code() const noexcept { return code_; }
  /** The detailed message alone (what() prefixes the code's name). */
  const std::string &message() const noexcept { return message_; }

private:
  int code_;
  std::string message_;
};

/**
 * What the throwing forms raise for SNAP_ECONFLICT: a conditional save found
 * another newest seq than the one expected. A snap::error (code()
 * SNAP_ECONFLICT) that also carries the seq found: read again, decide again,
 * save again.
 */
class conflict : public error {
public:
  /** The conflict's message and the pid's newest stored seq (SNAP_SEQ_NONE: none). */
  conflict(const std::string &message, std::int64_t current_seq)
      : error(SNAP_ECONFLICT, message), current_seq_(current_seq) {}
  /** The pid's newest stored seq when the save was refused (SNAP_SEQ_NONE: none). */
  std::int64_t current_seq() const noexcept { return current_seq_; }

private:
  std::int64_t current_seq_;
};

inline void status::throw_if_failed() const {
  if (code_ == SNAP_ECONFLICT)
    throw snap::conflict(message_, current_seq_);
  if (!ok())
    throw error(code_, message_);
}

/**
 * The non-throwing form's return value: a T, or the status of the failure.
 * `value()` gives the T or throws the failure as snap::error.
 */
template <class T> class result {
public:
  /** A successful result. */
  result(T value) : value_(std::move(value)) {}
  /** A failed result; `st` must not be SNAP_OK. */
  result(snap::status st) : status_(std::move(st)) {}
  /** Whether it holds a value. */
  bool ok() const noexcept { return status_.ok(); }
  /** Same as ok(). */
  explicit operator bool() const noexcept { return ok(); }
  /** SNAP_OK or the failure's code. */
  int code() const noexcept { return status_.code(); }
  /** The failure's detailed message ("" on success). */
  const std::string &message() const noexcept { return status_.message(); }
  /** The whole status. */
  const snap::status &status() const noexcept { return status_; }
  /** The value; throws snap::error when the result is a failure. */
  T &value() & {
    status_.throw_if_failed();
    return *value_;
  }
  /** The value, moved out; throws snap::error when the result is a failure. */
  T value() && {
    status_.throw_if_failed();
    return std::move(*value_);
  }
  /** The value without a check (undefined when !ok()). */
  T &operator*() &noexcept { return *value_; }
  /** Member access to the value without a check (undefined when !ok()). */
  T *operator->() noexcept { return &*value_; }

private:
  std::optional<T> value_;
  snap::status status_;
};

/** A result with no value: only the status. */
template <> class result<void> {
public:
  /** Success. */
  result() = default;
  /** The outcome `st`. */
  result(snap::status st) : status_(std::move(st)) {}
  /** Whether the operation succeeded. */
  bool ok() const noexcept { return status_.ok(); }
  /** Same as ok(). */
  explicit operator bool() const noexcept { return ok(); }
  /** SNAP_OK or the failure's code. */
  int code() const noexcept { return status_.code(); }
  /** The failure's detailed message ("" on success). */
  const std::string &message() const noexcept { return status_.message(); }
  /** The whole status. */
  const snap::status &status() const noexcept { return status_; }
  /** Throws snap::error when the result is a failure. */
  void value() const { status_.throw_if_failed(); }

private:
  snap::status status_;
};

namespace detail {

/** Records a failure of the wrapper itself like the C API records its own. */
inline status fail(int code, const std::string &message) {
  snap_error_set(code, "%s", message.c_str());
  return status(code, message);
}

/** A NUL-terminated copy of `s` for the C API, or SNAP_EINVAL naming `what`. */
inline result<std::string> c_string(std::string_view s, const char *what) {
  std::size_t nul = s.find('\0');
  if (nul != std::string_view::npos)
    return fail(SNAP_EINVAL,
                std::string(what) + " contains a NUL byte at offset " + std::to_string(nul));
  return std::string(s);
}

/** SNAP_EINVAL when an owner is empty (moved from or released). */
inline status need(const void *handle, const char *what) {
  if (handle)
    return status();
  return fail(SNAP_EINVAL, std::string("empty snap::") + what + " (moved from or released)");
}

template <class T, void (*Free)(T *)> struct deleter {
  void operator()(T *p) const noexcept { Free(p); }
};

/* An owning handle over a borrowed one (store over store_ref, executor over
 * executor_ref): move-only, frees the C object when destroyed. */
template <class Ref, class H, void (*Free)(H *)> class owner : public Ref {
public:
  owner() noexcept = default;
  explicit owner(H *h) noexcept : Ref(h) {}
  owner(const owner &) = delete;
  owner &operator=(const owner &) = delete;
  owner(owner &&other) noexcept : Ref(other.release()) {}
  owner &operator=(owner &&other) noexcept {
    if (this != &other) {
      Free(this->h_);
      this->h_ = other.release();
    }
    return *this;
  }
  ~owner() { Free(this->h_); }
  /** Gives up ownership: the caller frees the handle. */
  H *release() noexcept { return std::exchange(this->h_, nullptr); }
};

/* The common part of the owners without a borrowed form (keyring, options,
 * snapshot, plugin): the handle, get(), release() and the emptiness test. */
template <class H, void (*Free)(H *)> class unique_handle {
public:
  unique_handle() noexcept = default;
  explicit unique_handle(H *h) noexcept : p_(h) {}
  /** The C handle (borrowed), NULL when empty. */
  H *get() const noexcept { return p_.get(); }
  /** Gives up ownership: the caller frees the handle. */
  H *release() noexcept { return p_.release(); }

private:
  std::unique_ptr<H, deleter<H, Free>> p_;
};

/* Runs a C constructor `make(&handle)` and wraps what it made in the owner T. */
template <class T, class H, class F> result<T> adopt(F make) {
  H *h = nullptr;
  int rc = make(&h);
  if (rc != SNAP_OK)
    return status::last(rc);
  return T(h);
}

template <class C, class = void> struct is_byte_range : std::false_type {};
template <class C>
struct is_byte_range<C, std::void_t<decltype(std::data(std::declval<const C &>())),
                                    decltype(std::size(std::declval<const C &>()))>>
    : std::bool_constant<sizeof(*std::data(std::declval<const C &>())) == 1 &&
                         std::is_trivially_copyable_v<std::remove_pointer_t<decltype(std::data(
                             std::declval<const C &>()))>>> {};

} // namespace detail

/* ------------------------------------------------------------------------ */
/* Byte views                                                                */
/* ------------------------------------------------------------------------ */

/**
 * A borrowed run of bytes: a pointer and a length. Converts from a string
 * (its characters, without a terminator) and from any contiguous container
 * of one-byte elements (std::vector<std::uint8_t>, std::array<std::byte, N>,
 * std::span<const std::byte>, ...).
 */
class bytes_view {
public:
  /** No bytes. */
  constexpr bytes_view() noexcept = default;
  /** `size` bytes at `data`. */
  constexpr bytes_view(const void *data, std::size_t size) noexcept : data_(data), size_(size) {}
  /** The characters of `s`. */
  constexpr bytes_view(std::string_view s) noexcept : data_(s.data()), size_(s.size()) {}
  /** The characters of `s` (a NUL-terminated string). */
  bytes_view(const char *s) noexcept : bytes_view(std::string_view(s)) {}
  /** The characters of `s`. */
  bytes_view(const std::string &s) noexcept : data_(s.data()), size_(s.size()) {}
  /** The elements of a contiguous container of bytes. */
  template <class C, std::enable_if_t<detail::is_byte_range<C>::value &&
                                          !std::is_convertible_v<const C &, std::string_view>,
                                      int> = 0>
  constexpr bytes_view(const C &c) noexcept : data_(std::data(c)), size_(std::size(c)) {}
  /** The first byte. */
  const std::uint8_t *data() const noexcept { return static_cast<const std::uint8_t *>(data_); }
  /** The number of bytes. */
  constexpr std::size_t size() const noexcept { return size_; }
  /** Whether there are no bytes. */
  constexpr bool empty() const noexcept { return size_ == 0; }
  /** Iteration over the bytes. */
  const std::uint8_t *begin() const noexcept { return data(); }
  /** Iteration over the bytes. */
  const std::uint8_t *end() const noexcept { return data() + size_; }

private:
  const void *data_ = nullptr;
  std::size_t size_ = 0;
};

/** Criteria matching every snapshot (C++ spelling of SNAP_CRITERIA_LATEST). */
inline constexpr snap_criteria criteria_latest() noexcept { return {0, INT64_MAX, 0, INT64_MAX}; }

/**
 * What a save may ask beyond its state (snap_save_ext): a condition, a
 * manifest and metadata. Every member left as it is asks nothing.
 */
struct save_ext {
  /** Set: store the save only if the pid's newest stored seq is still this one
   *  (SNAP_SEQ_NONE: the caller read none), else SNAP_ECONFLICT with the seq
   *  found (snap::conflict, status::current_seq()). */
  std::optional<std::int64_t> expected_seq;
  /** The state's type and version, e.g. "bank.Account/3" (empty: none),
   *  bound by the body's frame and returned by loads. */
  std::string_view manifest;
  /** Opaque bytes stored with the state (empty: none), returned by loads. */
  bytes_view metadata;
};

namespace detail {

/* The C form of `x`, whose manifest is copied into `manifest` (NUL-terminated). */
inline status c_save_ext(const save_ext &x, std::string &manifest, snap_save_ext &out) {
  out = snap_save_ext{};
  if (x.expected_seq) {
    out.flags = SNAP_SAVE_IF_LATEST;
    out.expected_seq = *x.expected_seq;
  }
  if (!x.manifest.empty()) {
    result<std::string> m = c_string(x.manifest, "manifest");
    if (!m)
      return m.status();
    manifest = std::move(*m);
    out.manifest = manifest.c_str();
  }
  out.metadata = x.metadata.empty() ? nullptr : x.metadata.data();
  out.metadata_len = x.metadata.size();
  return status();
}

/* The status of a save that returned `rc`: a conflict carries the seq found. */
inline status save_status(int rc, const snap_meta &meta) {
  if (rc == SNAP_ECONFLICT)
    return status::conflict_at(snap_error_message(), meta.current_seq);
  return status::last(rc);
}

} // namespace detail

/* ------------------------------------------------------------------------ */
/* Upcasters                                                                 */
/* ------------------------------------------------------------------------ */

/** What an upcaster is given: one step of a chain, and the state it upcasts. */
struct upcast_input {
  /** The manifest the state has. */
  std::string_view from;
  /** The manifest the step brings it to. */
  std::string_view to;
  /** The state's format. */
  snap_format format;
  /** The state's bytes. */
  bytes_view state;
  /** The state as characters (a JSON state's text). */
  std::string_view text() const noexcept {
    return std::string_view(reinterpret_cast<const char *>(state.data()), state.size());
  }
};

/** What an upcaster may return when the format changes too (a callable that
 *  returns a string keeps the input's format). */
struct upcast_output {
  snap_format format;
  std::string state;
};

namespace detail {

/* A registered callable, owned by the C++ owner of the store. */
struct upcaster_base {
  virtual ~upcaster_base() = default;
};

template <class F> struct upcaster_thunk : upcaster_base {
  explicit upcaster_thunk(F fn) : f(std::move(fn)) {}
  F f;

  /* The snap_upcaster_fn: runs the callable; no exception crosses into C. */
  static int call(void *ud, const char *from, const char *to, snap_format fmt,
                  const std::uint8_t *state, std::size_t len, snap_buf *out,
                  snap_format *out_fmt) noexcept {
    try {
      upcast_input in{from, to, fmt, bytes_view(state, len)};
      auto r = static_cast<upcaster_thunk *>(ud)->f(static_cast<const upcast_input &>(in));
      if constexpr (std::is_same_v<decltype(r), upcast_output>) {
        *out_fmt = r.format;
        return snap_buf_set(out, r.state.data(), r.state.size());
      } else {
        static_assert(std::is_convertible_v<decltype(r), std::string_view>,
                      "an upcaster returns the new state: a std::string (same format) or a "
                      "snap::upcast_output");
        std::string_view v = r;
        *out_fmt = fmt;
        return snap_buf_set(out, v.data(), v.size());
      }
    } catch (const error &e) {
      return snap_error_set(e.code() < 0 ? e.code() : SNAP_EINVAL, "%s", e.message().c_str());
    } catch (const std::bad_alloc &) {
      return snap_error_set(SNAP_ENOMEM, "out of memory in the upcaster");
    } catch (const std::exception &e) {
      return snap_error_set(SNAP_EFORMAT, "%s", e.what());
    } catch (...) {
      return snap_error_set(SNAP_EFORMAT, "the upcaster threw an exception that is not a "
                                          "std::exception");
    }
  }
};

/* The callables registered through an owner (snap::store, snap::plugin): they
 * live as long as it does. Each sits at a fixed address the C store points to. */
class upcaster_list {
public:
  template <class F>
  result<void> add(snap_store *st, std::string_view from, std::string_view to, F &&fn) {
    if (status s = need(st, "store"); !s)
      return s;
    result<std::string> f = c_string(from, "upcaster's from manifest");
    if (!f)
      return f.status();
    result<std::string> t = c_string(to, "upcaster's to manifest");
    if (!t)
      return t.status();
    using thunk = upcaster_thunk<std::decay_t<F>>;
    auto u = std::make_unique<thunk>(std::forward<F>(fn));
    list_.reserve(list_.size() + 1); /* no throw after the C store holds it */
    int rc = snap_store_add_upcaster(st, f->c_str(), t->c_str(), &thunk::call, u.get());
    if (rc != SNAP_OK)
      return status::last(rc);
    list_.push_back(std::move(u));
    return status();
  }

private:
  std::vector<std::unique_ptr<upcaster_base>> list_;
};

} // namespace detail

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
  bytes_view metadata() const noexcept {
    return bytes_view(get()->metadata, get()->metadata_len);
  }
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
    result<void> r =
        with_pid(unit, [&](const char *u) { return snap_forget(h_, u, &rep); });
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
    return load_with(pid,
                     [&](const char *p, snap_snapshot **s) { return call(p, n->c_str(), s); });
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

/* ------------------------------------------------------------------------ */
/* Executor                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * The outcome of an asynchronous request, as its completion sees it. It is
 * valid only during the completion, except the snapshot, which
 * take_snapshot() hands over; a snapshot not taken is freed afterwards.
 */
class completion {
public:
  /** Wraps the C result (borrowed). */
  explicit completion(snap_result *r) noexcept : r_(r) {}
  /** SNAP_REQUEST_SAVE, _LOAD or _DELETE. */
  snap_request_kind kind() const noexcept { return r_->kind; }
  /** SNAP_OK or the request's SNAP_E* code. */
  int code() const noexcept { return r_->status; }
  /** Whether the request succeeded. */
  bool ok() const noexcept { return r_->status == SNAP_OK; }
  /** The detailed message of a failure ("" on success). */
  std::string_view message() const noexcept { return r_->message ? r_->message : ""; }
  /** The outcome as a status (code and a copy of the message; a conditional
   *  save's conflict also carries current_seq()). */
  snap::status status() const {
    if (code() == SNAP_ECONFLICT)
      return snap::status::conflict_at(std::string(message()), r_->meta.current_seq);
    return snap::status(code(), std::string(message()));
  }
  /** The request's persistence id. */
  std::string_view pid() const noexcept { return r_->pid ? r_->pid : ""; }
  /** Save: the sequence number saved. */
  std::int64_t seq() const noexcept { return r_->seq; }
  /** Save: what was stored (valid when ok()). */
  const snap_meta &meta() const noexcept { return r_->meta; }
  /** Load: the snapshot, now owned by the caller; nullopt when none matched
   *  (or when it was already taken). */
  std::optional<snapshot> take_snapshot() noexcept {
    if (!r_->snapshot)
      return std::nullopt;
    return snapshot(std::exchange(r_->snapshot, nullptr));
  }
  /** The C result (borrowed, valid during the completion). */
  snap_result *get() const noexcept { return r_; }

private:
  snap_result *r_;
};

namespace detail {

/* Carries a completion callable through the C API's `void *ud`. The callable
 * runs on the executor's worker thread and is destroyed there. */
template <class F> struct thunk {
  static void call(void *ud, snap_result *r) noexcept {
    std::unique_ptr<F> f(static_cast<F *>(ud));
    completion c(r);
    (*f)(c);
    snap_snapshot_free(std::exchange(r->snapshot, nullptr)); /* not taken: ours to free */
  }
};

} // namespace detail

/**
 * A borrowed executor: asynchronous saves, loads and deletes whose
 * completions are callables taking `snap::completion &`. A completion runs on
 * the executor's worker thread (snap/executor.h): keep it short, and do not
 * let it throw (it is called from C; an exception escaping it calls
 * std::terminate, as one escaping a std::thread's function does). A submit
 * that fails calls nothing and destroys the callable.
 */
class executor_ref {
public:
  /** No executor. */
  executor_ref() noexcept = default;
  /** Borrows `ex` (may be NULL). */
  explicit executor_ref(snap_executor *ex) noexcept : h_(ex) {}
  /** The C handle (borrowed), NULL when empty. */
  snap_executor *get() const noexcept { return h_; }
  /** Whether there is an executor. */
  explicit operator bool() const noexcept { return h_ != nullptr; }

  /** Queues a save, encoded on this thread (snap_executor_submit()); waits up to
   *  `timeout_ms` for room (0: not at all, negative: without limit). */
  template <class F>
  result<void> try_save(std::string_view pid, std::int64_t seq, snap_format fmt, bytes_view state,
                        options_ref o, int timeout_ms, F &&done) const {
    return try_save_ex(pid, seq, fmt, state, save_ext{}, o, timeout_ms, std::forward<F>(done));
  }
  /** Throwing form of try_save(). */
  template <class F>
  void save(std::string_view pid, std::int64_t seq, snap_format fmt, bytes_view state,
            options_ref o, int timeout_ms, F &&done) const {
    try_save(pid, seq, fmt, state, o, timeout_ms, std::forward<F>(done)).value();
  }
  /** try_save() with what `x` asks (snap_request.save_ext): a conditional
   *  save that conflicts completes with SNAP_ECONFLICT, `meta().current_seq`
   *  and status().current_seq() giving the seq found. */
  template <class F>
  result<void> try_save_ex(std::string_view pid, std::int64_t seq, snap_format fmt,
                           bytes_view state, const save_ext &x, options_ref o, int timeout_ms,
                           F &&done) const {
    result<std::string> p = detail::c_string(pid, "persistence id");
    if (!p)
      return p.status();
    std::string manifest;
    snap_save_ext ext{};
    if (status st = detail::c_save_ext(x, manifest, ext); !st)
      return st;
    snap_request rq{};
    rq.kind = SNAP_REQUEST_SAVE;
    rq.save = snap_save_req{p->c_str(),   seq,    SNAP_TIMESTAMP_AUTO, fmt, state.data(),
                            state.size(), o.get()};
    bool asks = x.expected_seq || !x.manifest.empty() || !x.metadata.empty();
    rq.save_ext = asks ? &ext : nullptr;
    return submit(rq, timeout_ms, std::forward<F>(done));
  }
  /** Throwing form of try_save_ex(). */
  template <class F>
  void save_ex(std::string_view pid, std::int64_t seq, snap_format fmt, bytes_view state,
               const save_ext &x, options_ref o, int timeout_ms, F &&done) const {
    try_save_ex(pid, seq, fmt, state, x, o, timeout_ms, std::forward<F>(done)).value();
  }
  /** Queues a save with the store's default options, never waiting for room. */
  template <class F>
  void save(std::string_view pid, std::int64_t seq, snap_format fmt, bytes_view state,
            F &&done) const {
    save(pid, seq, fmt, state, {}, 0, std::forward<F>(done));
  }

  /** Queues a load of the youngest snapshot of `pid` matching `c`; `o` is
   *  borrowed until the completion has run. Waits up to `timeout_ms` for room. */
  template <class F>
  result<void> try_load(std::string_view pid, const snap_criteria &c, options_ref o, int timeout_ms,
                        F &&done) const {
    return submit_load(pid, c, nullptr, o, timeout_ms, std::forward<F>(done));
  }
  /** Throwing form of try_load(). */
  template <class F>
  void load(std::string_view pid, const snap_criteria &c, options_ref o, int timeout_ms,
            F &&done) const {
    try_load(pid, c, o, timeout_ms, std::forward<F>(done)).value();
  }
  /** try_load() whose state is brought to the manifest `target` by the
   *  store's upcasters on the load thread (snap_request.target, snap_load_as()). */
  template <class F>
  result<void> try_load_as(std::string_view pid, const snap_criteria &c, std::string_view target,
                           options_ref o, int timeout_ms, F &&done) const {
    result<std::string> t = detail::c_string(target, "target manifest");
    if (!t)
      return t.status();
    return submit_load(pid, c, t->c_str(), o, timeout_ms, std::forward<F>(done));
  }
  /** Throwing form of try_load_as(). */
  template <class F>
  void load_as(std::string_view pid, const snap_criteria &c, std::string_view target,
               options_ref o, int timeout_ms, F &&done) const {
    try_load_as(pid, c, target, o, timeout_ms, std::forward<F>(done)).value();
  }
  /** Queues a load of the latest snapshot of `pid`, never waiting for room. */
  template <class F> void load(std::string_view pid, F &&done) const {
    load(pid, criteria_latest(), {}, 0, std::forward<F>(done));
  }

  /** Queues a deletion of the snapshots of `pid` matching `c`. */
  template <class F>
  result<void> try_remove(std::string_view pid, const snap_criteria &c, int timeout_ms,
                          F &&done) const {
    result<std::string> p = detail::c_string(pid, "persistence id");
    if (!p)
      return p.status();
    snap_request rq{};
    rq.kind = SNAP_REQUEST_DELETE;
    rq.pid = p->c_str();
    rq.criteria = &c;
    return submit(rq, timeout_ms, std::forward<F>(done));
  }
  /** Throwing form of try_remove(), never waiting for room. */
  template <class F> void remove(std::string_view pid, const snap_criteria &c, F &&done) const {
    try_remove(pid, c, 0, std::forward<F>(done)).value();
  }

  /** The counters (zeros when empty). */
  snap_executor_stats stats() const noexcept {
    snap_executor_stats s{};
    if (h_)
      snap_executor_stats_get(h_, &s);
    return s;
  }

private:
  /* Queues a load of `pid` brought to `target` (NULL: as stored). */
  template <class F>
  result<void> submit_load(std::string_view pid, const snap_criteria &c, const char *target,
                           options_ref o, int timeout_ms, F &&done) const {
    result<std::string> p = detail::c_string(pid, "persistence id");
    if (!p)
      return p.status();
    snap_request rq{};
    rq.kind = SNAP_REQUEST_LOAD;
    rq.pid = p->c_str();
    rq.criteria = &c;
    rq.options = o.get();
    rq.target = target;
    return submit(rq, timeout_ms, std::forward<F>(done));
  }
  template <class F> result<void> submit(snap_request &rq, int timeout_ms, F &&done) const {
    if (status st = detail::need(h_, "executor"); !st)
      return st;
    using fn = std::decay_t<F>;
    std::unique_ptr<fn> f(new fn(std::forward<F>(done)));
    rq.callback = &detail::thunk<fn>::call;
    rq.ud = f.get();
    int rc = snap_executor_submit(h_, &rq, timeout_ms);
    if (rc != SNAP_OK)
      return status::last(rc); /* no completion follows: `f` is ours to destroy */
    f.release();               /* the completion owns it now */
    return status();
  }

protected:
  snap_executor *h_ = nullptr;
};

/** Owner of a snap_executor over a borrowed store: move-only, drains and frees
 *  it (snap_executor_free()) when destroyed; release() gives the handle up. */
class executor : public detail::owner<executor_ref, snap_executor, snap_executor_free> {
public:
  using owner::owner;

  /** Starts an executor over `st` (borrowed: it must outlive the executor). */
  static result<executor> try_start(store_ref st, const snap_executor_config *cfg = nullptr) {
    if (status s = detail::need(st.get(), "store"); !s)
      return s;
    return detail::adopt<executor, snap_executor>(
        [&](snap_executor **ex) { return snap_executor_new(ex, st.get(), cfg); });
  }
  /** Throwing form of try_start(). */
  static executor start(store_ref st, const snap_executor_config *cfg = nullptr) {
    return try_start(st, cfg).value();
  }
  /** snap_executor_shutdown(): SNAP_SHUTDOWN_DRAIN or SNAP_SHUTDOWN_CANCEL. */
  result<void> try_shutdown(unsigned mode) {
    if (status st = detail::need(h_, "executor"); !st)
      return st;
    return status::last(snap_executor_shutdown(h_, mode));
  }
  /** Throwing form of try_shutdown(). */
  void shutdown(unsigned mode) { try_shutdown(mode).value(); }
};

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
