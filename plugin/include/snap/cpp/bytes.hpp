/**
 * @file snap/cpp/bytes.hpp
 * @brief Part of the C++17 API (snap/snapstore.hpp has its rules and is the header to include).
 *        States as byte views (snap::bytes_view), the latest-snapshot criteria and the extensions
 *        of a save (snap::save_ext).
 */
#ifndef SNAP_CPP_BYTES_HPP
#define SNAP_CPP_BYTES_HPP

#include "snap/cpp/status.hpp"

namespace snap {

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

} // namespace snap

#endif /* SNAP_CPP_BYTES_HPP */
