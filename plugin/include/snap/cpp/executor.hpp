/**
 * @file snap/cpp/executor.hpp
 * @brief Part of the C++17 API (snap/snapstore.hpp has its rules and is the header to include).
 *        The async executor: snap::completion, snap::executor_ref, snap::executor.
 */
#ifndef SNAP_CPP_EXECUTOR_HPP
#define SNAP_CPP_EXECUTOR_HPP

#include "snap/executor.h"

#include "snap/cpp/store.hpp"

namespace snap {

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
  void load_as(std::string_view pid, const snap_criteria &c, std::string_view target, options_ref o,
               int timeout_ms, F &&done) const {
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

} // namespace snap

#endif /* SNAP_CPP_EXECUTOR_HPP */
