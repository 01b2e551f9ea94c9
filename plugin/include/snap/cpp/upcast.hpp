/**
 * @file snap/cpp/upcast.hpp
 * @brief Part of the C++17 API (snap/snapstore.hpp has its rules and is the header to include).
 *        Upcasters: callables that turn a state of one manifest into the next
 *        (snap::upcast_input, snap::upcast_output).
 */
#ifndef SNAP_CPP_UPCAST_HPP
#define SNAP_CPP_UPCAST_HPP

#include "snap/store.h"

#include "snap/cpp/bytes.hpp"

namespace snap {

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

} // namespace snap

#endif /* SNAP_CPP_UPCAST_HPP */
