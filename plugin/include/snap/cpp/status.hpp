/**
 * @file snap/cpp/status.hpp
 * @brief Part of the C++17 API (snap/snapstore.hpp has its rules and is the header to include).
 *        Errors: snap::status, snap::error, snap::result<T>, and the helpers the other C++
 *        headers share (snap::detail).
 */
#ifndef SNAP_CPP_STATUS_HPP
#define SNAP_CPP_STATUS_HPP

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

#include "snap/pipeline.h"
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

} // namespace snap

#endif /* SNAP_CPP_STATUS_HPP */
