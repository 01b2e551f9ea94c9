/**
 * @file snap/caf/event_sourced.hpp
 * @brief Event-sourced CAF 0.17 actors with snapstore snapshots.
 *
 * A CAF actor whose state derives from snap::event_sourced recovers before
 * it runs and snapshots as it goes (docs/CAF.md):
 *
 *  - recover() is the actor's initial behaviour. It asks the executor for the
 *    latest snapshot; the completion runs on the executor's thread and only
 *    sends a message (caf::anon_send) to the actor, so the actor's state is
 *    touched on the actor's own turn, never from another thread. Until that
 *    message arrives every other message is skipped (caf::skip): it stays in
 *    the mailbox, in order, and is handled once the actor runs.
 *  - On the message the state restores the snapshot (if there is one),
 *    replays the journal's events after its sequence number, and the actor
 *    becomes the running behaviour.
 *  - A failed load (wrong or missing key, a body that fails authentication,
 *    corruption beyond the fallback, a closed executor) stops the actor with
 *    that reason (a caf::error of category "snapstore"): it never starts from
 *    an empty state by accident. "No snapshot" is not a failure: the whole
 *    journal is replayed.
 *  - persisted(seq), called after each journaled event, saves a snapshot
 *    through the executor every `snapshot_every` events; the outcome comes
 *    back as a message too (snapshot_saved(), e.g. to trim the journal).
 *  - A state type that evolves names itself: the application specializes
 *    snap::state_manifest<State> (type name and version) and sets
 *    `manifest = snap::manifest_of<State>()`. Saves store that manifest in
 *    the body's frame; the recovery load brings an older snapshot to it
 *    through the upcasters registered on the store (add_state_upcaster()),
 *    so restore() only ever sees the current shape.
 *  - Codec and dictionary are options like any other: `save_options` (or
 *    the plugin document's "options") may say zstd and a stored dictionary.
 *
 * The journal is the application's: snapstore stores the snapshots.
 * Header-only; needs CAF 0.17 (libcaf-dev) and snap/snapstore.hpp.
 */
#ifndef SNAP_CAF_EVENT_SOURCED_HPP
#define SNAP_CAF_EVENT_SOURCED_HPP

#include <caf/all.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "snap/snapstore.hpp"

namespace snap {

/** Where and how an event-sourced actor keeps its snapshots. */
struct event_sourced_config {
  /** The executor loads and saves go through (borrowed: it must outlive the actor). */
  executor_ref executor;
  /** The actor's persistence id. */
  std::string pid;
  /** Events between two snapshots; 0 never snapshots. */
  std::int64_t snapshot_every = 100;
  /** The format snapshot_state() returns. */
  snap_format format = SNAP_FORMAT_JSON;
  /** Options for the load (borrowed; NULL: the store's defaults, e.g. a plugin document's). */
  const snap_options *load_options = nullptr;
  /** Options for saves (borrowed; NULL: the store's defaults): codec,
   *  level, dictionary, encryption, ... */
  const snap_options *save_options = nullptr;
  /** The state's manifest, "type/version" (manifest_of<State>()); empty:
   *  none. Saves store it; the recovery load is brought to it (snap_load_as()). */
  std::string manifest{};
};

/**
 * The name and version of a state type, specialized by the application:
 *
 *     template <> struct snap::state_manifest<account> {
 *       static constexpr const char *type = "bank.Account";
 *       static constexpr int version = 3;
 *     };
 *
 * Bump `version` whenever the saved shape changes, and register the upcaster
 * from the previous version (add_state_upcaster()).
 */
template <class State> struct state_manifest;

/** The manifest of `State`: "<type>/<version>", e.g. "bank.Account/3". */
template <class State> std::string manifest_of() {
  return std::string(state_manifest<State>::type) + "/" +
         std::to_string(state_manifest<State>::version);
}

/**
 * Registers `fn` on `owner` (a snap::store or snap::plugin, which keeps it) as
 * the upcaster of State's saved shape from version `from_version` to
 * `from_version + 1` ("<type>/<n>" -> "<type>/<n+1>"). `fn` takes a
 * `const snap::upcast_input &` and returns the new state (std::string or
 * snap::upcast_output); an exception it throws fails the load (snap::store::
 * try_add_upcaster()).
 */
template <class State, class Owner, class F>
result<void> add_state_upcaster(Owner &owner, int from_version, F &&fn) {
  std::string type = state_manifest<State>::type;
  return owner.try_add_upcaster(type + "/" + std::to_string(from_version),
                                type + "/" + std::to_string(from_version + 1),
                                std::forward<F>(fn));
}

/** Message: the outcome of the recovery load (sent by the executor's thread). */
struct loaded_msg {
  int code = SNAP_OK;
  std::string message;
  std::shared_ptr<snapshot> snap; /**< NULL when there is none */
};

/** Message: the outcome of a snapshot save (sent by the executor's thread). */
struct saved_msg {
  int code = SNAP_OK;
  std::string message;
  std::int64_t seq = 0;
  snap_meta meta{};
};

} // namespace snap

/* Local messages only (they carry a snapshot handle): never serialized. */
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(snap::loaded_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(snap::saved_msg)

namespace snap {

/** The category of the caf::error an actor stops with when its recovery fails. */
inline caf::atom_value error_category() { return caf::atom("snapstore"); }

/** The caf::error for a snapstore failure: code = -SNAP_E*, context = the message. */
inline caf::error make_caf_error(const status &st) {
  return caf::error(static_cast<std::uint8_t>(-st.code()), error_category(),
                    caf::make_message(std::string(st.name()) + ": " + st.message()));
}

/** Lets `system.render(err)` print snapstore errors: "snapstore: <name>: <message>". */
inline void add_error_category(caf::actor_system_config &cfg) {
  cfg.add_error_category(error_category(),
                         [](std::uint8_t code, caf::atom_value, const caf::message &ctx) {
                           std::string s = "snapstore: ";
                           if (ctx.match_elements<std::string>())
                             return s + ctx.get_as<std::string>(0);
                           return s + snap_strerror(-static_cast<int>(code));
                         });
}

/**
 * Base of an event-sourced actor's state (caf::stateful_actor<State> with
 * State deriving from this). The state implements restore(), replay() and
 * snapshot_state(); the actor returns recover() as its behaviour and calls
 * persisted() after each event it journals.
 */
class event_sourced {
public:
  virtual ~event_sourced() = default;

  /* ---- implemented by the state ---------------------------------------- */

  /** Restores the state from `s` (called at most once, before replay()). */
  virtual void restore(const snapshot &s) = 0;
  /** Applies the journal's events with a sequence number above `after_seq`,
   *  in order, and returns the last sequence number applied (`after_seq` when
   *  there were none). */
  virtual std::int64_t replay(std::int64_t after_seq) = 0;
  /** The state to save, in the configured format. */
  virtual std::string snapshot_state() const = 0;
  /** A snapshot of `seq` is durable (e.g. trim the journal). Default: nothing. */
  virtual void snapshot_saved(std::int64_t seq, const snap_meta &meta) {
    (void)seq;
    (void)meta;
  }
  /** A snapshot of `seq` was not taken (queue full, store failure). The
   *  journal still has every event; the next event tries again. */
  virtual void snapshot_failed(std::int64_t seq, const status &st) {
    (void)seq;
    (void)st;
  }

  /* ---- provided -------------------------------------------------------- */

  /**
   * The actor's initial behaviour: loads, restores, replays, then becomes
   * `running()` (plus the handler of snapshot outcomes). Messages other than
   * the load's outcome wait in the mailbox until then.
   */
  caf::behavior recover(caf::event_based_actor *self, event_sourced_config cfg,
                        std::function<caf::behavior()> running) {
    self_ = self;
    cfg_ = std::move(cfg);
    self->set_default_handler(caf::skip);
    caf::actor me = caf::actor_cast<caf::actor>(self);
    auto done = [me](completion &c) {
      std::optional<snapshot> s = c.take_snapshot();
      loaded_msg m{c.code(), std::string(c.message()), nullptr};
      if (s)
        m.snap = std::make_shared<snapshot>(std::move(*s));
      caf::anon_send(me, std::move(m));
    };
    result<void> queued =
        cfg_.manifest.empty()
            ? cfg_.executor.try_load(cfg_.pid, criteria_latest(), cfg_.load_options, 0, done)
            : cfg_.executor.try_load_as(cfg_.pid, criteria_latest(), cfg_.manifest,
                                        cfg_.load_options, 0, done);
    if (!queued) /* not even queued: the same path as a failed load */
      self->send(self, loaded_msg{queued.code(), queued.message(), nullptr});
    return caf::behavior{
        [this, running = std::move(running)](loaded_msg &m) { on_loaded(m, running); }};
  }

  /** Call after journaling and applying event `seq`: snapshots when due. */
  void persisted(std::int64_t seq) {
    seq_ = seq;
    if (cfg_.snapshot_every <= 0 || saving_ || seq - last_snapshot_ < cfg_.snapshot_every)
      return;
    caf::actor me = caf::actor_cast<caf::actor>(self_);
    std::string state = snapshot_state();
    save_ext x;
    x.manifest = cfg_.manifest;
    result<void> queued = cfg_.executor.try_save_ex(
        cfg_.pid, seq, cfg_.format, state, x, cfg_.save_options, 0, [me, seq](completion &c) {
          caf::anon_send(me, saved_msg{c.code(), std::string(c.message()), seq, c.meta()});
        });
    if (queued)
      saving_ = true; /* one save in flight at a time: a slow store is not flooded */
    else
      snapshot_failed(seq, queued.status());
  }

  /** The last sequence number applied. */
  std::int64_t seq() const noexcept { return seq_; }
  /** Whether recovery has finished and the actor runs. */
  bool recovered() const noexcept { return recovered_; }
  /** Events replayed from the journal during recovery. */
  std::int64_t replayed() const noexcept { return replayed_; }
  /** The sequence number of the snapshot recovered from, -1 when there was none. */
  std::int64_t recovered_from() const noexcept { return recovered_from_; }
  /** The stages (SNAP_STAGE_*) of the snapshot recovered from, 0 when none. */
  unsigned recovered_stages() const noexcept { return recovered_stages_; }
  /** The manifest the snapshot recovered from was stored with ("" when none
   *  or when it stated none); restore() saw it upcast to config().manifest. */
  const std::string &recovered_manifest() const noexcept { return recovered_manifest_; }
  /** The sequence number of the last snapshot known to be durable (0: none). */
  std::int64_t last_snapshot() const noexcept { return last_snapshot_; }
  /** The configuration given to recover(). */
  const event_sourced_config &config() const noexcept { return cfg_; }

private:
  void on_loaded(loaded_msg &m, const std::function<caf::behavior()> &running) {
    if (m.code != SNAP_OK) {
      self_->quit(make_caf_error(status(m.code, "recovering '" + cfg_.pid + "': " + m.message)));
      return;
    }
    std::int64_t from = 0;
    if (m.snap) {
      restore(*m.snap);
      from = last_snapshot_ = recovered_from_ = m.snap->seq();
      recovered_stages_ = m.snap->stages();
      recovered_manifest_ = std::string(m.snap->stored_manifest());
      m.snap.reset();
    }
    seq_ = replay(from);
    replayed_ = seq_ - from;
    recovered_ = true;
    self_->set_default_handler(caf::print_and_drop);
    caf::message_handler user{running().as_behavior_impl()};
    self_->become(user.or_else([this](saved_msg &s) { on_saved(s); }));
  }

  void on_saved(const saved_msg &s) {
    saving_ = false;
    if (s.code == SNAP_OK) {
      last_snapshot_ = s.seq;
      snapshot_saved(s.seq, s.meta);
    } else {
      snapshot_failed(s.seq, status(s.code, s.message));
    }
  }

  caf::event_based_actor *self_ = nullptr;
  event_sourced_config cfg_;
  std::int64_t seq_ = 0;
  std::int64_t replayed_ = 0;
  std::int64_t recovered_from_ = -1;
  unsigned recovered_stages_ = 0;
  std::string recovered_manifest_;
  std::int64_t last_snapshot_ = 0;
  bool saving_ = false;
  bool recovered_ = false;
};

} // namespace snap

#endif /* SNAP_CAF_EVENT_SOURCED_HPP */
