/**
 * @file snap/snapstore_stream.hpp
 * @brief C++17 API of streamed saves and loads (snap/store_stream.h): states
 *        of any size in memory bounded by the chunk size (docs/STREAMS.md).
 *
 * - snap::stream_writer: a streamed save in progress. write() the state in
 *   pieces of any size, then commit(); a writer destroyed (or moved from)
 *   before its commit aborts the save, so nothing becomes visible.
 * - snap::stream_reader: the state of a snapshot read piece by piece; every
 *   byte it hands out was authenticated first.
 * - snap::save_stream() / snap::load_stream(): a whole std::istream saved, a
 *   whole state written into a std::ostream or handed to any callable.
 * - snap::istream: a std::istream over a reader, for parsers that read one.
 *
 * Both error idioms as in snap/snapstore.hpp: `try_` forms return
 * snap::result, the others throw snap::error. A failure found after bytes
 * were delivered (a chunk altered, missing or out of order) fails the read:
 * whatever was read or written out must then be discarded.
 */
#ifndef SNAP_SNAPSTORE_STREAM_HPP
#define SNAP_SNAPSTORE_STREAM_HPP

#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "snap/snapstore.hpp"
#include "snap/store_stream.h"

namespace snap {

/** The pieces save_stream() and load_stream() move at a time. */
inline constexpr std::size_t stream_piece = std::size_t(1) << 20;

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

/** A streamed save in progress (snap_save_stream_begin()). Move-only; aborts
 *  the save when destroyed before commit(). */
class stream_writer : public detail::unique_handle<snap_save_stream, snap_save_stream_abort> {
public:
  /** No save. */
  stream_writer() noexcept = default;
  /** Takes ownership of `w` (may be NULL: no save). */
  explicit stream_writer(snap_save_stream *w) noexcept : unique_handle(w) {}

  /** The next bytes of the state (any split). A failure is sticky: the save
   *  can then only be aborted (or destroyed). */
  result<void> try_write(bytes_view piece) {
    if (status st = detail::need(get(), "stream_writer"); !st)
      return st;
    return status::last(snap_save_stream_write(get(), piece.data(), piece.size()));
  }
  /** Throwing form of try_write(). */
  void write(bytes_view piece) { try_write(piece).value(); }

  /** Ends the state and publishes the snapshot (snap_save_stream_commit()).
   *  The writer is empty afterwards, whatever the outcome. A conflict is
   *  SNAP_ECONFLICT whose status has current_seq(). */
  result<snap_meta> try_commit() {
    if (status st = detail::need(get(), "stream_writer"); !st)
      return st;
    snap_meta meta{};
    int rc = snap_save_stream_commit(release(), &meta);
    if (rc != SNAP_OK)
      return detail::save_status(rc, meta);
    return meta;
  }
  /** Throwing form of try_commit(): a conflict throws snap::conflict. */
  snap_meta commit() { return try_commit().value(); }

  /** Abandons the save: nothing becomes visible. The writer is empty afterwards. */
  void abort() noexcept { snap_save_stream_abort(release()); }

  /** Bytes of state written so far (0 when empty). */
  std::uint64_t written() const noexcept { return get() ? snap_save_stream_written(get()) : 0; }
};

/**
 * Begins a streamed save of (pid, seq) in format `fmt` with the options
 * resolved as for a save from `o`, and what `x` asks (a condition checked at
 * the commit, a manifest, metadata). `chunk_size` 0 is the default (1 MiB).
 */
inline result<stream_writer> try_begin_stream(store_ref st, std::string_view pid, std::int64_t seq,
                                              snap_format fmt, options_ref o = {},
                                              const save_ext &x = {},
                                              std::size_t chunk_size = 0) {
  if (status s = detail::need(st.get(), "store"); !s)
    return s;
  result<std::string> p = detail::c_string(pid, "persistence id");
  if (!p)
    return p.status();
  std::string manifest;
  snap_save_ext ext{};
  if (status s = detail::c_save_ext(x, manifest, ext); !s)
    return s;
  return detail::adopt<stream_writer, snap_save_stream>([&](snap_save_stream **w) {
    return snap_save_stream_begin(st.get(), p->c_str(), seq, SNAP_TIMESTAMP_AUTO, fmt, o.get(),
                                  &ext, chunk_size, w);
  });
}

/** Throwing form of try_begin_stream(). */
inline stream_writer begin_stream(store_ref st, std::string_view pid, std::int64_t seq,
                                  snap_format fmt, options_ref o = {}, const save_ext &x = {},
                                  std::size_t chunk_size = 0) {
  return try_begin_stream(st, pid, seq, fmt, o, x, chunk_size).value();
}

/**
 * Saves everything `in` holds, read in pieces of stream_piece bytes, as the
 * state of (pid, seq). `in` failing before its end (badbit) aborts the save:
 * SNAP_EIO naming how many bytes were read.
 */
inline result<snap_meta> try_save_stream(store_ref st, std::string_view pid, std::int64_t seq,
                                         snap_format fmt, std::istream &in, options_ref o = {},
                                         const save_ext &x = {}, std::size_t chunk_size = 0) {
  result<stream_writer> w = try_begin_stream(st, pid, seq, fmt, o, x, chunk_size);
  if (!w)
    return w.status();
  std::vector<char> piece(stream_piece);
  while (in) {
    in.read(piece.data(), static_cast<std::streamsize>(piece.size()));
    std::size_t got = static_cast<std::size_t>(in.gcount());
    if (got > 0)
      if (result<void> r = w->try_write(bytes_view(piece.data(), got)); !r)
        return r.status(); /* the writer aborts as it goes */
  }
  if (in.bad())
    return detail::fail(SNAP_EIO, "the input stream failed after " +
                                      std::to_string(w->written()) + " bytes: the save of '" +
                                      std::string(pid) + "' was aborted");
  return w->try_commit();
}

/** Throwing form of try_save_stream(). */
inline snap_meta save_stream(store_ref st, std::string_view pid, std::int64_t seq,
                             snap_format fmt, std::istream &in, options_ref o = {},
                             const save_ext &x = {}, std::size_t chunk_size = 0) {
  return try_save_stream(st, pid, seq, fmt, in, o, x, chunk_size).value();
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

/** The state of one snapshot, read piece by piece (snap_load_stream_open()).
 *  Move-only; closes the reader when destroyed. */
class stream_reader : public detail::unique_handle<snap_load_stream, snap_load_stream_close> {
public:
  /** No reader. */
  stream_reader() noexcept = default;
  /** Takes ownership of `r`, which opened what `meta` says. */
  stream_reader(snap_load_stream *r, const snap_stream_meta &meta) noexcept
      : unique_handle(r), meta_(meta) {}

  /** What was opened: seq, timestamp, format, stages, length, whether streamed. */
  const snap_stream_meta &meta() const noexcept { return meta_; }
  /** The sequence number. */
  std::int64_t seq() const noexcept { return meta_.seq; }
  /** The state's length in bytes. */
  std::uint64_t length() const noexcept { return meta_.length; }

  /** Reads up to `cap` bytes into `buf`: how many, 0 only at the end of a
   *  state that was authenticated whole. A failure is sticky; what was read
   *  before it must be discarded. */
  result<std::size_t> try_read(void *buf, std::size_t cap) {
    if (status st = detail::need(get(), "stream_reader"); !st)
      return st;
    std::size_t got = 0;
    int rc = snap_load_stream_read(get(), buf, cap, &got);
    if (rc != SNAP_OK)
      return status::last(rc);
    return got;
  }
  /** Throwing form of try_read(). */
  std::size_t read(void *buf, std::size_t cap) { return try_read(buf, cap).value(); }

private:
  snap_stream_meta meta_{};
};

/**
 * Opens the youngest snapshot of `pid` matching `c` for reading; nullopt when
 * none matches. `flags`: SNAP_LOAD_STREAM_VERIFY_FIRST authenticates the
 * whole stream before the first byte (a second read), so that damage skips to
 * an older snapshot instead of failing a read.
 */
inline result<std::optional<stream_reader>>
try_open_stream(store_ref st, std::string_view pid, const snap_criteria &c = criteria_latest(),
                options_ref o = {}, unsigned flags = 0) {
  if (status s = detail::need(st.get(), "store"); !s)
    return s;
  result<std::string> p = detail::c_string(pid, "persistence id");
  if (!p)
    return p.status();
  snap_load_stream *r = nullptr;
  snap_stream_meta meta{};
  int rc = snap_load_stream_open(st.get(), p->c_str(), &c, o.get(), flags, &r, &meta);
  if (rc != SNAP_OK)
    return status::last(rc);
  if (r == nullptr)
    return std::optional<stream_reader>();
  return std::optional<stream_reader>(std::in_place, r, meta);
}

/** Throwing form of try_open_stream(). */
inline std::optional<stream_reader> open_stream(store_ref st, std::string_view pid,
                                                const snap_criteria &c = criteria_latest(),
                                                options_ref o = {}, unsigned flags = 0) {
  return try_open_stream(st, pid, c, o, flags).value();
}

/**
 * Reads the youngest snapshot of `pid` matching `c` whole, handing each
 * authenticated piece to `sink(snap::bytes_view)`; nullopt when none
 * matches. What `sink` throws propagates (the reader is closed first).
 */
template <class F>
result<std::optional<snap_stream_meta>>
try_load_stream_to(store_ref st, std::string_view pid, F &&sink,
                   const snap_criteria &c = criteria_latest(), options_ref o = {},
                   unsigned flags = 0) {
  result<std::optional<stream_reader>> r = try_open_stream(st, pid, c, o, flags);
  if (!r)
    return r.status();
  if (!*r)
    return std::optional<snap_stream_meta>();
  stream_reader &rd = **r;
  std::vector<std::uint8_t> piece(stream_piece);
  for (;;) {
    result<std::size_t> got = rd.try_read(piece.data(), piece.size());
    if (!got)
      return got.status();
    if (*got == 0)
      break;
    sink(bytes_view(piece.data(), *got));
  }
  return std::optional<snap_stream_meta>(rd.meta());
}

/**
 * Writes the state of the youngest snapshot of `pid` matching `c` into `out`;
 * nullopt when none matches. `out` failing is SNAP_EIO naming how many bytes
 * it took.
 */
inline result<std::optional<snap_stream_meta>>
try_load_stream(store_ref st, std::string_view pid, std::ostream &out,
                const snap_criteria &c = criteria_latest(), options_ref o = {},
                unsigned flags = 0) {
  std::uint64_t written = 0;
  bool failed = false;
  result<std::optional<snap_stream_meta>> r = try_load_stream_to(
      st, pid,
      [&](bytes_view b) {
        if (failed)
          return;
        out.write(reinterpret_cast<const char *>(b.data()), static_cast<std::streamsize>(b.size()));
        if (!out)
          failed = true;
        else
          written += b.size();
      },
      c, o, flags);
  if (r && failed)
    return detail::fail(SNAP_EIO, "the output stream failed after " + std::to_string(written) +
                                      " bytes of the state of '" + std::string(pid) + "'");
  return r;
}

/** Throwing form of try_load_stream(). */
inline std::optional<snap_stream_meta> load_stream(store_ref st, std::string_view pid,
                                                   std::ostream &out,
                                                   const snap_criteria &c = criteria_latest(),
                                                   options_ref o = {}, unsigned flags = 0) {
  return try_load_stream(st, pid, out, c, o, flags).value();
}

/* ------------------------------------------------------------------------ */
/* std::istream over a reader                                                */
/* ------------------------------------------------------------------------ */

namespace detail {

/* The buffer of snap::istream: refills from the reader, records a failure. */
class reader_buf : public std::streambuf {
public:
  explicit reader_buf(stream_reader r) : r_(std::move(r)), buf_(stream_piece) {}
  const snap::status &status() const noexcept { return status_; }

protected:
  int_type underflow() override {
    if (gptr() < egptr())
      return traits_type::to_int_type(*gptr());
    if (!status_.ok())
      return traits_type::eof();
    result<std::size_t> got = r_.try_read(buf_.data(), buf_.size());
    if (!got) {
      status_ = got.status();
      return traits_type::eof();
    }
    if (*got == 0)
      return traits_type::eof();
    setg(buf_.data(), buf_.data(), buf_.data() + *got);
    return traits_type::to_int_type(*gptr());
  }

private:
  stream_reader r_;
  std::vector<char> buf_;
  snap::status status_;
};

} // namespace detail

/**
 * A std::istream reading a snapshot's state. It ends (eof) at the end of a
 * state authenticated whole, or at a failure: status() tells them apart. Not
 * ok: the stream was cut short (damage, a key the reader lacks, I/O), and
 * what was read must be discarded.
 */
class istream : private detail::reader_buf, public std::istream {
public:
  /** Reads what `r` opened. */
  explicit istream(stream_reader r) : detail::reader_buf(std::move(r)), std::istream(this) {}
  /** SNAP_OK, or the failure that ended the stream early. */
  const snap::status &status() const noexcept { return detail::reader_buf::status(); }
};

} // namespace snap

#endif /* SNAP_SNAPSTORE_STREAM_HPP */
