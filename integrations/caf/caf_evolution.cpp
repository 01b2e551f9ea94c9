/*
 * caf_evolution: an event-sourced CAF actor whose state type evolved twice
 * recovers from a snapshot its first version saved (docs/CAF.md, "State that
 * evolves").
 *
 * The account's saved shape, version by version (manifest "bank.Account/<n>"):
 *   v1  {"owner":"Ada","balance":1205}      the balance in cents
 *   v2  {"holder":"Ada","balance":1205}     "owner" renamed "holder"
 *   v3  {"holder":"Ada","amount":"12.05"}   the cents became a decimal string
 *
 * The v1 code knows nothing of later versions. The v3 code specializes
 * snap::state_manifest for its state (version 3) and registers the two
 * upcasters (1 -> 2, 2 -> 3) on the plugin; recovery then brings a v1
 * snapshot to v3 before restore() sees it, and replays the journal after it.
 *
 * Usage: caf_evolution v1 DIR   the v1 code: ACCOUNTS actors take EVENTS
 *                               deposits each, journaled in DIR/journal.txt,
 *                               snapshots every 3 events into DIR/state.db
 *        caf_evolution v3 DIR   the v3 code: recovers the same actors, checks
 *                               each state against the journal, deposits once
 *                               more and checks the new snapshot is v3.
 * Exits 0 when every check passed, 1 otherwise, printing each check.
 */
#include <caf/all.hpp>
#include <cjson/cJSON.h>

#include <algorithm>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "snap/caf/event_sourced.hpp"

namespace {

using deposit_atom = caf::atom_constant<caf::atom("deposit")>;
using get_atom = caf::atom_constant<caf::atom("get")>;

constexpr auto ANSWER_TIMEOUT = std::chrono::seconds(60); /* a guard against a hang */
constexpr int ACCOUNTS = 4;
/* Snapshots are due every 3 events, one in flight at a time: the newest is
 * at 6, 7 or 8, and the v3 code replays the journal's events after it. */
constexpr int EVENTS = 8;
const char *const OWNERS[ACCOUNTS] = {"Ada", "Grace", "Edsger", "Barbara"};

int failures = 0;

void check(bool ok, const std::string &what) {
  failures += !ok;
  std::printf("  %s: %s\n", ok ? "ok" : "FAIL", what.c_str());
}

/* ------------------------------------------------------------------------ */
/* The journal: deposits in cents per pid, kept in a text file              */
/* ------------------------------------------------------------------------ */

class journal {
public:
  explicit journal(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_);
    std::string pid;
    std::int64_t seq = 0, cents = 0;
    while (in >> pid >> seq >> cents)
      events_[pid].push_back(cents);
  }
  void append(const std::string &pid, std::int64_t seq, std::int64_t cents) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::int64_t> &ev = events_[pid];
    if (seq != static_cast<std::int64_t>(ev.size()) + 1)
      throw std::logic_error(pid + ": journal seq " + std::to_string(seq) + " out of order");
    ev.push_back(cents);
    std::ofstream(path_, std::ios::app) << pid << ' ' << seq << ' ' << cents << '\n';
  }
  std::vector<std::int64_t> after(const std::string &pid, std::int64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<std::int64_t> &ev = events_[pid];
    auto from = static_cast<std::ptrdiff_t>(std::min(ev.size(), static_cast<std::size_t>(seq)));
    return {ev.begin() + from, ev.end()};
  }

private:
  std::string path_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::int64_t>> events_;
};

/* ------------------------------------------------------------------------ */
/* JSON helpers                                                              */
/* ------------------------------------------------------------------------ */

using json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

json parse(std::string_view text) {
  json j(cJSON_ParseWithLength(text.data(), text.size()), &cJSON_Delete);
  if (!j || !cJSON_IsObject(j.get()))
    throw std::runtime_error("not a JSON object: " + std::string(text));
  return j;
}

std::string print(const json &j) {
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(j.get()), &cJSON_free);
  if (!text)
    throw std::bad_alloc();
  return text.get();
}

cJSON *member(const json &j, const char *name) {
  cJSON *m = cJSON_GetObjectItemCaseSensitive(j.get(), name);
  if (!m)
    throw std::runtime_error(std::string("no \"") + name + "\" in " + print(j));
  return m;
}

std::string cents_to_decimal(std::int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%02" PRId64, cents / 100, cents % 100);
  return buf;
}

std::int64_t decimal_to_cents(const std::string &d) {
  std::size_t dot = d.find('.');
  if (dot == std::string::npos || d.size() != dot + 3)
    throw std::runtime_error("not a decimal with two places: " + d);
  return std::stoll(d.substr(0, dot)) * 100 + std::stoll(d.substr(dot + 1));
}

/* ------------------------------------------------------------------------ */
/* The account, as two versions of the application wrote it                 */
/* ------------------------------------------------------------------------ */

/* What both versions share: the journal and the replay of deposits. */
struct account_base : snap::event_sourced {
  journal *book = nullptr;
  std::string pid;
  std::int64_t cents = 0;

  /* A new account's name, before any snapshot restores one. */
  virtual void open_as(const std::string &who) = 0;

  std::int64_t replay(std::int64_t after_seq) override {
    std::int64_t seq = after_seq;
    for (std::int64_t c : book->after(pid, after_seq)) {
      cents += c;
      seq++;
    }
    return seq;
  }
};

/* Version 1: {"owner":..,"balance":<cents>}. */
struct account_v1 : account_base {
  std::string owner;
  void open_as(const std::string &who) override { owner = who; }
  void restore(const snap::snapshot &s) override {
    json j = parse(s.text());
    owner = cJSON_GetStringValue(member(j, "owner"));
    cents = static_cast<std::int64_t>(cJSON_GetNumberValue(member(j, "balance")));
  }
  std::string snapshot_state() const override {
    json j(cJSON_CreateObject(), &cJSON_Delete);
    cJSON_AddStringToObject(j.get(), "owner", owner.c_str());
    cJSON_AddNumberToObject(j.get(), "balance", static_cast<double>(cents));
    return print(j);
  }
};

/* Version 3: {"holder":..,"amount":"<decimal>"}. */
struct account_v3 : account_base {
  std::string holder;
  void open_as(const std::string &who) override { holder = who; }
  void restore(const snap::snapshot &s) override {
    json j = parse(s.text());
    holder = cJSON_GetStringValue(member(j, "holder"));
    cents = decimal_to_cents(cJSON_GetStringValue(member(j, "amount")));
  }
  std::string snapshot_state() const override {
    json j(cJSON_CreateObject(), &cJSON_Delete);
    cJSON_AddStringToObject(j.get(), "holder", holder.c_str());
    cJSON_AddStringToObject(j.get(), "amount", cents_to_decimal(cents).c_str());
    return print(j);
  }
};

} // namespace

/* Each version names itself: the type name stays, the version counts changes. */
template <> struct snap::state_manifest<account_v1> {
  static constexpr const char *type = "bank.Account";
  static constexpr int version = 1;
};
template <> struct snap::state_manifest<account_v3> {
  static constexpr const char *type = "bank.Account";
  static constexpr int version = 3;
};

namespace {

/* The v3 code's upcasters: each takes one version's shape to the next. */
std::string owner_to_holder(const snap::upcast_input &in) { /* 1 -> 2 */
  json j = parse(in.text());
  cJSON *owner = cJSON_DetachItemFromObjectCaseSensitive(j.get(), "owner");
  if (!owner)
    throw std::runtime_error("no \"owner\" in a bank.Account/1: " + std::string(in.text()));
  cJSON_AddItemToObject(j.get(), "holder", owner);
  return print(j);
}

std::string balance_to_amount(const snap::upcast_input &in) { /* 2 -> 3 */
  json j = parse(in.text());
  cJSON *balance = member(j, "balance");
  if (!cJSON_IsNumber(balance))
    throw std::runtime_error("\"balance\" is not a number of cents: " + std::string(in.text()));
  std::string amount = cents_to_decimal(static_cast<std::int64_t>(cJSON_GetNumberValue(balance)));
  cJSON_DeleteItemFromObjectCaseSensitive(j.get(), "balance");
  cJSON_AddStringToObject(j.get(), "amount", amount.c_str());
  return print(j);
}

struct env {
  journal *j;
  snap::executor_ref ex;
  std::string pid;
  std::string owner;
};

/* One actor for either version: deposits journaled, applied and persisted. */
template <class State>
caf::behavior account_actor(caf::stateful_actor<State> *self, env e, std::int64_t every) {
  self->state.book = e.j;
  self->state.pid = e.pid;
  self->state.open_as(e.owner);
  snap::event_sourced_config cfg;
  cfg.executor = e.ex;
  cfg.pid = e.pid;
  cfg.snapshot_every = every;
  cfg.manifest = snap::manifest_of<State>();
  return self->state.recover(self, cfg, [self] {
    return caf::behavior{
        [self](deposit_atom, std::int64_t c) {
          State &st = self->state;
          std::int64_t seq = st.seq() + 1;
          st.book->append(st.pid, seq, c);
          st.cents += c;
          st.persisted(seq);
          return st.cents;
        },
        [self](get_atom) {
          State &st = self->state;
          return caf::make_message(st.snapshot_state(), st.recovered_manifest(),
                                   st.recovered_from(), st.replayed());
        }};
  });
}

std::string pid_of(int i) { return "account-" + std::to_string(i); }
std::int64_t deposit_of(int i, int n) { return 100 * (i + 1) + n * 7; } /* cents */

std::string config_of(const std::string &dir) {
  return R"({"backend": "sqlite", "config": {"path": ")" + dir + R"(/state.db", "keep": 0},
             "executor": {"queue_capacity": 64}})";
}

/* The v1 code: EVENTS deposits per account, then stop. */
void run_v1(const std::string &dir) {
  std::printf("v1: %d accounts, %d deposits each, snapshots every 3\n", ACCOUNTS, EVENTS);
  journal j(dir + "/journal.txt");
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  snap::plugin plugin = snap::plugin::open(config_of(dir));
  caf::scoped_actor self{sys};
  for (int i = 0; i < ACCOUNTS; i++) {
    caf::actor a = sys.spawn(account_actor<account_v1>, env{&j, plugin.executor(), pid_of(i), OWNERS[i]},
                             std::int64_t{3});
    for (int n = 1; n <= EVENTS; n++)
      self->request(a, ANSWER_TIMEOUT, deposit_atom::value, deposit_of(i, n))
          .receive([](std::int64_t) {},
                   [&](caf::error &err) { check(false, "deposit: " + sys.render(err)); });
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(a);
  }
  plugin = snap::plugin(); /* drains the executor: every queued snapshot is stored */
  plugin = snap::plugin::open(config_of(dir));
  for (int i = 0; i < ACCOUNTS; i++) {
    std::optional<snap::snapshot> s = plugin.store().load_latest(pid_of(i));
    check(s && s->manifest() == "bank.Account/1" && s->text().find("\"owner\"") != s->text().npos,
          pid_of(i) + ": the newest snapshot is a bank.Account/1: " +
              (s ? std::string(s->text()) : std::string("none")));
  }
}

/* The v3 code: register the upcasters, recover every account, check. */
void run_v3(const std::string &dir) {
  std::printf("v3: recovering from the v1 snapshots\n");
  journal j(dir + "/journal.txt");
  caf::actor_system_config cfg;
  snap::add_error_category(cfg);
  caf::actor_system sys{cfg};
  snap::plugin plugin = snap::plugin::open(config_of(dir));
  snap::add_state_upcaster<account_v3>(plugin, 1, owner_to_holder).value();
  snap::add_state_upcaster<account_v3>(plugin, 2, balance_to_amount).value();
  caf::scoped_actor self{sys};
  for (int i = 0; i < ACCOUNTS; i++) {
    std::string pid = pid_of(i);
    std::int64_t snap_seq = plugin.store().load_latest(pid).value().seq();
    std::int64_t sum = 0;
    for (int n = 1; n <= EVENTS; n++)
      sum += deposit_of(i, n);
    caf::actor a =
        sys.spawn(account_actor<account_v3>, env{&j, plugin.executor(), pid, "?"}, std::int64_t{1});
    self->request(a, ANSWER_TIMEOUT, get_atom::value)
        .receive(
            [&](const std::string &state, const std::string &stored, std::int64_t from,
                std::int64_t replayed) {
              std::string want = std::string(R"({"holder":")") + OWNERS[i] + R"(","amount":")" +
                                 cents_to_decimal(sum) + "\"}";
              check(state == want, pid + ": state " + state + ", want " + want);
              check(stored == "bank.Account/1", pid + ": recovered from a " + stored);
              check(from == snap_seq && from > 0,
                    pid + ": recovered from snapshot " + std::to_string(from));
              check(replayed == EVENTS - from,
                    pid + ": replayed " + std::to_string(replayed) + " journal events");
            },
            [&](caf::error &err) { check(false, pid + ": recovery: " + sys.render(err)); });
    self->request(a, ANSWER_TIMEOUT, deposit_atom::value, std::int64_t{5})
        .receive([&](std::int64_t c) { check(c == sum + 5, pid + ": deposits go on"); },
                 [&](caf::error &err) { check(false, pid + ": deposit: " + sys.render(err)); });
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(a);
  }
  plugin = snap::plugin(); /* drains the executor */
  plugin = snap::plugin::open(config_of(dir));
  for (int i = 0; i < ACCOUNTS; i++) {
    std::optional<snap::snapshot> s = plugin.store().load_latest(pid_of(i));
    check(s && s->seq() == EVENTS + 1 && s->manifest() == "bank.Account/3" &&
              s->text().find("\"amount\"") != s->text().npos,
          pid_of(i) + ": the new snapshot is a bank.Account/3: " +
              (s ? std::string(s->text()) : std::string("none")));
  }
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3 || (std::string(argv[1]) != "v1" && std::string(argv[1]) != "v3")) {
    std::fprintf(stderr, "usage: %s v1|v3 DIR\n", argv[0]);
    return 2;
  }
  try {
    if (std::string(argv[1]) == "v1")
      run_v1(argv[2]);
    else
      run_v3(argv[2]);
  } catch (const std::exception &e) {
    check(false, std::string("unexpected exception: ") + e.what());
  }
  std::printf("%s\n", failures ? "FAILED" : "all checks passed");
  return failures ? 1 : 0;
}
