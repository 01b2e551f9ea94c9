/*
 * caf_recovery_failures: an event-sourced CAF actor (snap/caf/event_sourced.hpp)
 * whose recovery load fails must stop with that failure as its exit reason,
 * having handled no message; one with no snapshot at all must run.
 *
 * One CAF actor system, a minimal counter actor (its journal is an in-memory
 * list of amounts per pid), snapshots through snapstore's sqlite backend:
 *
 *  0. control: snapshots saved by the actor, encrypted under key version 1,
 *     are recovered with the right keyring;
 *  1. the keyring lacks version 1                 -> stops with SNAP_ENOKEY;
 *  2. the newest encrypted body was changed in the database file, the older
 *     ones are intact and the reader holds the key -> stops with SNAP_EAUTH
 *     (never falls back to an older snapshot);
 *  3. every body of a plain pid was damaged       -> stops with SNAP_ECORRUPT;
 *     while a damaged length field of only the newest plain body is skipped
 *     as corruption: the actor recovers from the older snapshot;
 *  4. no snapshot at all                          -> runs: the whole journal is
 *     replayed (and the message sent before recovery is then answered);
 *  5. the executor was shut down before the actor started -> stops with
 *     SNAP_ECLOSED.
 *
 * Every actor is spawned with caf::lazy_init and its first message is an
 * "add": the actor initialises (and queues its load) only once that message
 * is in its mailbox, so the message always arrives before the load's outcome,
 * whatever the threads' timing. A failing actor must never answer it, never
 * journal it, never call restore() or replay(); its exit reason must be a
 * caf::error of category "snapstore" with code -SNAP_E* naming the pid.
 *
 * Usage: caf_recovery_failures [scratch-dir]   (default: a new directory in
 * $TMPDIR or /tmp, removed at the end). Exits 0 when every check passed, 1
 * otherwise, printing each failed check.
 */
#include <caf/all.hpp>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unistd.h>
#include <vector>

#include "snap/caf/event_sourced.hpp"

namespace {

using add_atom = caf::atom_constant<caf::atom("add")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using saved_atom = caf::atom_constant<caf::atom("saved")>;
using failed_atom = caf::atom_constant<caf::atom("failed")>;

/* A guard against a hang (an actor that never answers), not a measurement. */
constexpr auto ANSWER_TIMEOUT = std::chrono::seconds(60);
constexpr std::int64_t ADD = 100; /* the amount of the message sent before recovery */
const char *const CONTEXT = "snapstore-test/caf-recovery/v1";

int failures = 0;

void check(bool ok, const std::string &what) {
  if (!ok) {
    failures++;
    std::printf("  FAIL: %s\n", what.c_str());
  } else {
    std::printf("  ok: %s\n", what.c_str());
  }
}

/* ------------------------------------------------------------------------ */
/* The application's journal: amounts per pid, event seq = index + 1         */
/* ------------------------------------------------------------------------ */

class journal {
public:
  void append(const std::string &pid, std::int64_t seq, std::int64_t amount) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::int64_t> &ev = events_[pid];
    if (seq != static_cast<std::int64_t>(ev.size()) + 1)
      std::abort(); /* a test bug: the actor lost track of its sequence */
    ev.push_back(amount);
  }
  std::int64_t size(const std::string &pid) {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<std::int64_t>(events_[pid].size());
  }
  std::vector<std::int64_t> after(const std::string &pid, std::int64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<std::int64_t> &ev = events_[pid];
    if (seq >= static_cast<std::int64_t>(ev.size()))
      return {};
    return std::vector<std::int64_t>(ev.begin() + seq, ev.end());
  }

private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::int64_t>> events_;
};

/* What one actor did, seen from outside. */
struct probe {
  std::atomic<int> restores{0};
  std::atomic<int> replays{0};
  std::atomic<int> handled{0};
};

struct env {
  journal *j = nullptr;
  probe *p = nullptr;
  snap::executor_ref ex;
  std::string pid;
  std::int64_t snapshot_every = 0;
  caf::actor listener; /* told of snapshot outcomes, when set */
};

/* ------------------------------------------------------------------------ */
/* The counter actor                                                         */
/* ------------------------------------------------------------------------ */

struct counter : snap::event_sourced {
  env e;
  std::int64_t value = 0;

  void restore(const snap::snapshot &s) override {
    e.p->restores++;
    std::string text(s.text()); /* {"value":N} */
    std::size_t colon = text.find(':');
    value = colon == std::string::npos ? 0 : std::strtoll(text.c_str() + colon + 1, nullptr, 10);
  }
  std::int64_t replay(std::int64_t after_seq) override {
    e.p->replays++;
    std::int64_t seq = after_seq;
    for (std::int64_t amount : e.j->after(e.pid, after_seq)) {
      value += amount;
      seq++;
    }
    return seq;
  }
  std::string snapshot_state() const override {
    return "{\"value\":" + std::to_string(value) + "}";
  }
  void snapshot_saved(std::int64_t seq, const snap_meta &meta) override {
    if (e.listener)
      caf::anon_send(e.listener, saved_atom::value, seq, static_cast<std::int64_t>(meta.stages));
  }
  void snapshot_failed(std::int64_t seq, const snap::status &st) override {
    if (e.listener)
      caf::anon_send(e.listener, failed_atom::value, seq, st.name() + (": " + st.message()));
  }
};

caf::behavior counter_actor(caf::stateful_actor<counter> *self, env e) {
  self->state.e = e;
  snap::event_sourced_config cfg;
  cfg.executor = e.ex;
  cfg.pid = e.pid;
  cfg.snapshot_every = e.snapshot_every;
  return self->state.recover(self, cfg, [self] {
    return caf::behavior{[self](add_atom, std::int64_t amount) -> std::int64_t {
                           counter &st = self->state;
                           st.e.p->handled++;
                           std::int64_t seq = st.seq() + 1;
                           st.e.j->append(st.e.pid, seq, amount); /* journal first */
                           st.value += amount;                    /* then apply */
                           st.persisted(seq);
                           return st.value;
                         },
                         [self](get_atom) {
                           counter &st = self->state;
                           st.e.p->handled++;
                           return caf::make_message(st.value, st.replayed(), st.recovered_from());
                         }};
  });
}

/* ------------------------------------------------------------------------ */
/* Running one actor                                                          */
/* ------------------------------------------------------------------------ */

struct outcome {
  bool answered = false;
  bool hung = false; /* no answer and no stop within ANSWER_TIMEOUT */
  std::int64_t value = 0, replayed = -1, recovered_from = -2;
  caf::error answer_error;
  caf::error exit_reason;
};

/* Spawns the counter lazily, sends it "add ADD" (its first message: it is in
 * the mailbox before the load's outcome), and, if it answers, asks for its
 * figures and stops it; if it neither answers nor stops, kills it. Returns
 * what happened, exit reason included. */
outcome run_counter(caf::actor_system &sys, const env &e) {
  outcome o;
  caf::scoped_actor self{sys};
  caf::actor a = sys.spawn<caf::lazy_init>(counter_actor, e);
  self->monitor(a);
  self->request(a, ANSWER_TIMEOUT, add_atom::value, ADD)
      .receive(
          [&](std::int64_t v) {
            o.answered = true;
            o.value = v;
          },
          [&](caf::error &err) { o.answer_error = std::move(err); });
  if (o.answered) {
    self->request(a, ANSWER_TIMEOUT, get_atom::value)
        .receive(
            [&](std::int64_t v, std::int64_t replayed, std::int64_t from) {
              o.value = v;
              o.replayed = replayed;
              o.recovered_from = from;
            },
            [&](caf::error &err) { o.answer_error = std::move(err); });
    self->send_exit(a, caf::exit_reason::user_shutdown);
  }
  if (o.answer_error == caf::make_error(caf::sec::request_timeout)) {
    o.hung = true; /* neither answered nor stopped: stop it to report that */
    self->send_exit(a, caf::exit_reason::kill);
  }
  self->receive([&](caf::down_msg &d) { o.exit_reason = std::move(d.reason); });
  return o;
}

/* Has the counter `pid` journal `events` amounts 1..events, snapshotting every
 * `every` events, and waits for each snapshot's outcome before the next event,
 * so the snapshots are exactly at every, 2*every, ... Checks that each was
 * saved and whether it was encrypted. Returns the sum of the amounts. */
std::int64_t populate(caf::actor_system &sys, journal &j, snap::executor_ref ex,
                      const std::string &pid, int events, std::int64_t every, bool encrypted) {
  probe p;
  caf::scoped_actor self{sys};
  env e{&j, &p, ex, pid, every, caf::actor_cast<caf::actor>(self)};
  caf::actor a = sys.spawn(counter_actor, e);
  std::int64_t sum = 0;
  int saved = 0, sealed = 0;
  for (int i = 1; i <= events; i++) {
    sum += i;
    self->request(a, ANSWER_TIMEOUT, add_atom::value, std::int64_t{i})
        .receive([&](std::int64_t) {},
                 [&](caf::error &err) {
                   check(false, pid + ": add " + std::to_string(i) + ": " + sys.render(err));
                 });
    if (i % every != 0)
      continue;
    self->receive(
        [&](saved_atom, std::int64_t seq, std::int64_t stages) {
          saved += seq == i;
          sealed += (stages & SNAP_STAGE_ENCRYPTED) != 0;
        },
        [&](failed_atom, std::int64_t seq, const std::string &why) {
          check(false, pid + ": snapshot " + std::to_string(seq) + " not taken: " + why);
        });
  }
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->wait_for(a);
  int want = events / static_cast<int>(every);
  check(saved == want, pid + ": the actor saved " + std::to_string(saved) + " of " +
                           std::to_string(want) + " snapshots");
  check(sealed == (encrypted ? want : 0), pid + ": " + std::to_string(sealed) +
                                              " of them encrypted, want " +
                                              std::to_string(encrypted ? want : 0));
  return sum;
}

/* The checks of a recovery that must fail with `code`. */
void expect_stop(caf::actor_system &sys, journal &j, snap::executor_ref ex, const std::string &pid,
                 int code) {
  probe p;
  std::int64_t journaled = j.size(pid);
  outcome o = run_counter(sys, env{&j, &p, ex, pid, 2, caf::actor{}});
  std::string want =
      std::string("SNAP_E code ") + std::to_string(code) + " (" + snap_strerror(code) + ")";
  std::printf("  exit reason: %s\n", sys.render(o.exit_reason).c_str());
  check(!o.hung, pid + ": the actor stopped by itself (it did not hang in recovery)");
  check(o.exit_reason.category() == snap::error_category(),
        pid + ": the exit reason is of category \"snapstore\"");
  check(o.exit_reason.code() == static_cast<std::uint8_t>(-code),
        pid + ": the exit reason's code is " + want + ", got " +
            std::to_string(o.exit_reason.code()));
  const caf::message &ctx = o.exit_reason.context();
  std::string text = ctx.match_elements<std::string>() ? ctx.get_as<std::string>(0) : "";
  check(text.find("'" + pid + "'") != std::string::npos,
        pid + ": the exit reason's message names the pid: \"" + text + "\"");
  check(!o.answered, pid + ": the message sent before recovery was not answered (value " +
                         std::to_string(o.value) + ")");
  check(static_cast<bool>(o.answer_error),
        pid + ": its sender got an error instead: " + sys.render(o.answer_error));
  check(j.size(pid) == journaled, pid + ": the journal is untouched (" + std::to_string(journaled) +
                                      " events, now " + std::to_string(j.size(pid)) + ")");
  check(p.handled == 0 && p.restores == 0 && p.replays == 0,
        pid + ": no message handled, no restore(), no replay() (" + std::to_string(p.handled) +
            ", " + std::to_string(p.restores) + ", " + std::to_string(p.replays) + ")");
}

/* The checks of a recovery that must succeed from the snapshot of `from`
 * (-1: none) with state `want_value` before the "add ADD". */
void expect_run(caf::actor_system &sys, journal &j, snap::executor_ref ex, const std::string &pid,
                std::int64_t want_value, std::int64_t from) {
  probe p;
  std::int64_t journaled = j.size(pid);
  outcome o = run_counter(sys, env{&j, &p, ex, pid, 0, caf::actor{}});
  check(o.answered, pid + ": the message sent before recovery was answered after it" +
                        (o.answered ? std::string() : ": " + sys.render(o.answer_error)));
  check(o.value == want_value + ADD,
        pid + ": value " + std::to_string(o.value) + ", want " + std::to_string(want_value + ADD));
  check(o.recovered_from == from, pid + ": recovered from snapshot " +
                                      std::to_string(o.recovered_from) + ", want " +
                                      std::to_string(from));
  check(o.replayed == journaled - (from < 0 ? 0 : from),
        pid + ": replayed " + std::to_string(o.replayed) + " journal events, want " +
            std::to_string(journaled - (from < 0 ? 0 : from)));
  check(p.restores == (from < 0 ? 0 : 1) && p.replays == 1,
        pid + ": restore() ran " + std::to_string(p.restores) + " time(s), replay() " +
            std::to_string(p.replays));
  check(o.exit_reason == caf::make_error(caf::exit_reason::user_shutdown),
        pid + ": stopped only when told to: " + sys.render(o.exit_reason));
}

/* ------------------------------------------------------------------------ */
/* The database, edited behind the store (the plugin is closed)              */
/* ------------------------------------------------------------------------ */

/* Byte offsets in a stored body (docs/FORMAT.md, "Layout"). */
constexpr std::size_t PLAIN_STATE = 20;      /* the state's first byte, stages 0 */
constexpr std::size_t SEALED_STATE = 44;     /* the first ciphertext byte, after the nonce */
constexpr std::size_t LENGTH_HIGH_BYTE = 19; /* the top byte of the u64 original length */

/* Flips one bit of byte `offset` of the body of (pid, seq), or of every body
 * of pid when seq < 0. Returns the number of rows changed. */
int damage(const std::string &path, const std::string &pid, std::int64_t seq, std::size_t offset) {
  sqlite3 *db = nullptr;
  int changed = 0;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    check(false, "open " + path + ": " + sqlite3_errmsg(db));
    sqlite3_close(db);
    return 0;
  }
  std::vector<std::pair<std::int64_t, std::vector<unsigned char>>> rows;
  sqlite3_stmt *q = nullptr;
  sqlite3_prepare_v2(db, "SELECT seq, body FROM snapshots WHERE pid = ?1 AND (?2 < 0 OR seq = ?2)",
                     -1, &q, nullptr);
  sqlite3_bind_text(q, 1, pid.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(q, 2, seq);
  while (sqlite3_step(q) == SQLITE_ROW) {
    const auto *b = static_cast<const unsigned char *>(sqlite3_column_blob(q, 1));
    rows.emplace_back(sqlite3_column_int64(q, 0),
                      std::vector<unsigned char>(b, b + sqlite3_column_bytes(q, 1)));
  }
  sqlite3_finalize(q);
  sqlite3_prepare_v2(db, "UPDATE snapshots SET body = ?3 WHERE pid = ?1 AND seq = ?2", -1, &q,
                     nullptr);
  for (auto &[s, body] : rows) {
    if (offset >= body.size())
      continue;
    body[offset] ^= 0x40;
    sqlite3_bind_text(q, 1, pid.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, s);
    sqlite3_bind_blob(q, 3, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(q) == SQLITE_DONE)
      changed += sqlite3_changes(db);
    sqlite3_reset(q);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return changed;
}

snap::keyring keyring_with(std::uint32_t version) {
  unsigned char key[32];
  for (unsigned i = 0; i < sizeof key; i++)
    key[i] = static_cast<unsigned char>(version * 31 + i);
  snap::keyring kr = snap::keyring::create();
  kr.add(version, snap::bytes_view(key, sizeof key));
  kr.set_active(version);
  return kr;
}

std::string encrypted_config(const std::string &path) {
  return R"({"backend": "sqlite", "config": {"path": ")" + path +
         R"(", "keep": 0}, "options": {"encryption": {"context": ")" + CONTEXT +
         R"("}, "required": ["encryption"]}})";
}

std::string plain_config(const std::string &path) {
  return R"({"backend": "sqlite", "config": {"path": ")" + path + R"(", "keep": 0}})";
}

/* Opens the plain store: its own load of `pid` and the actor's recovery must
 * both fail with `code`. */
void expect_plain_stop(caf::actor_system &sys, journal &j, const std::string &db,
                       const std::string &pid, int code) {
  snap::plugin store = snap::plugin::open(plain_config(db));
  snap::result<std::optional<snap::snapshot>> direct = store.store().try_load_latest(pid);
  check(!direct && direct.code() == code,
        pid + ": the store's own load fails with " + snap_strerror(code) + ": " +
            (direct ? std::string("it succeeded") : direct.message()));
  expect_stop(sys, j, store.executor(), pid, code);
  sys.await_all_actors_done();
}

} // namespace

int main(int argc, char **argv) {
  std::string dir;
  bool own_dir = argc < 2;
  if (own_dir) {
    const char *tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/caf_recovery_XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      std::perror("caf_recovery_failures: mkdtemp");
      return 2;
    }
    dir = tmpl;
  } else {
    dir = argv[1];
  }
  const std::string enc_db = dir + "/encrypted.db", plain_db = dir + "/plain.db";
  for (const std::string &db : {enc_db, plain_db})
    for (const char *suffix : {"", "-wal", "-shm", "-journal"})
      unlink((db + suffix).c_str());

  journal j;
  try {
    caf::actor_system_config cfg;
    snap::add_error_category(cfg);
    caf::actor_system sys{cfg};
    snap::keyring key1 = keyring_with(1), key2 = keyring_with(2);
    std::int64_t tamper_sum = 0, length_sum = 0;

    std::printf("setup: the actor saves snapshots 2, 4, 6 (encrypted under key version 1, and "
                "plain)\n");
    {
      snap::plugin store = snap::plugin::open(encrypted_config(enc_db), &key1);
      populate(sys, j, store.executor(), "acct-nokey", 6, 2, true);
      tamper_sum = populate(sys, j, store.executor(), "acct-tamper", 6, 2, true);
      std::printf("0. control: the right keyring recovers from the newest snapshot\n");
      expect_run(sys, j, store.executor(), "acct-tamper", tamper_sum, 6);
      tamper_sum += ADD;
      sys.await_all_actors_done();
    }
    {
      snap::plugin store = snap::plugin::open(plain_config(plain_db));
      populate(sys, j, store.executor(), "acct-plain", 6, 2, false);
      length_sum = populate(sys, j, store.executor(), "acct-length", 6, 2, false);
      sys.await_all_actors_done();
    }

    std::printf("1. the keyring lacks key version 1 -> SNAP_ENOKEY\n");
    {
      snap::plugin store = snap::plugin::open(encrypted_config(enc_db), &key2);
      expect_stop(sys, j, store.executor(), "acct-nokey", SNAP_ENOKEY);
      sys.await_all_actors_done();
    }

    std::printf("2. the newest encrypted body was changed, the reader holds the key -> "
                "SNAP_EAUTH\n");
    check(damage(enc_db, "acct-tamper", 6, SEALED_STATE) == 1,
          "acct-tamper: one byte of body 6 flipped");
    {
      snap::plugin store = snap::plugin::open(encrypted_config(enc_db), &key1);
      /* The older snapshot is intact: falling back to it would have been possible. */
      snap::result<std::optional<snap::snapshot>> older =
          store.store().try_load_before("acct-tamper", 6);
      check(older && *older && (*older)->seq() == 4,
            "acct-tamper: snapshot 4 still loads (a fallback would have found it)");
      expect_stop(sys, j, store.executor(), "acct-tamper", SNAP_EAUTH);
      sys.await_all_actors_done();
    }

    std::printf("3. every body of a plain pid damaged -> SNAP_ECORRUPT\n");
    check(damage(plain_db, "acct-plain", -1, PLAIN_STATE) == 3,
          "acct-plain: one byte of each of its 3 bodies flipped");
    /* docs/STORE.md, "All attempts corrupt". */
    expect_plain_stop(sys, j, plain_db, "acct-plain", SNAP_ECORRUPT);

    std::printf("3b. the newest plain body's length field damaged -> skipped as corruption, "
                "recovered from snapshot 4\n");
    check(damage(plain_db, "acct-length", 6, LENGTH_HIGH_BYTE) == 1,
          "acct-length: the top byte of body 6's original length changed");
    {
      /* An uncompressed body must declare its own length: any other value is
       * damage (docs/FORMAT.md, "Reading a body", step 5), skipped by a reader
       * without a key like any other corruption (docs/STORE.md, "Fallback"). */
      snap::plugin store = snap::plugin::open(plain_config(plain_db));
      expect_run(sys, j, store.executor(), "acct-length", length_sum, 4);
      sys.await_all_actors_done();
    }

    std::printf("4. no snapshot at all -> the actor runs and replays the whole journal\n");
    {
      for (std::int64_t i = 1; i <= 5; i++)
        j.append("acct-fresh", i, i * 10);
      snap::plugin store = snap::plugin::open(encrypted_config(enc_db), &key1);
      expect_run(sys, j, store.executor(), "acct-fresh", 150, -1);
      sys.await_all_actors_done();
    }

    std::printf("5. the executor was shut down before the actor started -> SNAP_ECLOSED\n");
    {
      snap::plugin store = snap::plugin::open(plain_config(plain_db));
      for (std::int64_t i = 1; i <= 3; i++)
        j.append("acct-closed", i, i);
      snap::executor closed = snap::executor::start(store.store());
      closed.shutdown(SNAP_SHUTDOWN_DRAIN);
      expect_stop(sys, j, closed, "acct-closed", SNAP_ECLOSED);
      sys.await_all_actors_done();
    }
  } catch (const std::exception &ex) {
    check(false, std::string("unexpected exception: ") + ex.what());
  }

  if (own_dir) {
    for (const std::string &db : {enc_db, plain_db})
      for (const char *suffix : {"", "-wal", "-shm", "-journal"})
        unlink((db + suffix).c_str());
    rmdir(dir.c_str());
  }
  std::printf("caf_recovery_failures: %s (%d failed check%s)\n", failures ? "FAILED" : "passed",
              failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
