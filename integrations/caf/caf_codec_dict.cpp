/*
 * caf_codec_dict: an event-sourced CAF actor (snap/caf/event_sourced.hpp)
 * whose save options choose zstd and a dictionary stored in the store saves
 * its snapshots as zstd bodies naming that dictionary, and recovers from them.
 *
 * One actor system, a sqlite store in a scratch directory, a dictionary added
 * to it (snap::store_ref::dict_add()), save options zstd level 3 + that
 * dictionary by name. The actor journals SAVES deposits, snapshotting after
 * each; then:
 *  - every snapshot's outcome says it was compressed;
 *  - every stored body's frame names zstd and the dictionary's id
 *    (snap_store_list() + snap_body_inspect_codec()), and the store counts
 *    SAVES bodies using it (snap_store_dict_uses());
 *  - a second actor of the same pid recovers from the newest snapshot
 *    (compressed stages) with the state the first one had.
 *
 * Usage: caf_codec_dict [scratch-dir]   (default: a new directory in $TMPDIR
 * or /tmp, removed at the end). Exits 0 when every check passed.
 */
#include <caf/all.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

#include "snap/caf/event_sourced.hpp"

namespace {

using deposit_atom = caf::atom_constant<caf::atom("deposit")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using saved_atom = caf::atom_constant<caf::atom("saved")>;

constexpr auto ANSWER_TIMEOUT = std::chrono::seconds(60); /* a guard against a hang */
constexpr int SAVES = 5;
const char *const PID = "account-zstd";

int failures = 0;

void check(bool ok, const std::string &what) {
  failures += !ok;
  std::printf("  %s: %s\n", ok ? "ok" : "FAIL", what.c_str());
}

/* The account: a balance and its deposits, as JSON much like the dictionary. */
struct account : snap::event_sourced {
  std::vector<std::int64_t> *journal = nullptr;
  caf::actor listener;
  std::vector<std::int64_t> deposits;

  void restore(const snap::snapshot &s) override {
    deposits.clear();
    std::string text(s.text()); /* {"holder":..,"currency":"EUR","deposits":[a,b,..]} */
    std::size_t at = text.find('[');
    while (at != std::string::npos && text[at + 1] != ']') {
      deposits.push_back(std::strtoll(text.c_str() + at + 1, nullptr, 10));
      at = text.find(',', at + 1);
    }
  }
  std::int64_t replay(std::int64_t after_seq) override {
    for (std::size_t i = static_cast<std::size_t>(after_seq); i < journal->size(); i++)
      deposits.push_back((*journal)[i]);
    return static_cast<std::int64_t>(journal->size());
  }
  std::string snapshot_state() const override {
    std::string s = R"({"holder":"Ada Lovelace","currency":"EUR","branch":"London",)"
                    R"("notes":"deposits in cents, newest last","deposits":[)";
    for (std::size_t i = 0; i < deposits.size(); i++)
      s += (i ? "," : "") + std::to_string(deposits[i]);
    return s + "]}";
  }
  void snapshot_saved(std::int64_t seq, const snap_meta &meta) override {
    caf::anon_send(listener, saved_atom::value, seq, static_cast<std::int64_t>(meta.stages));
  }
};

/* What an actor is spawned with (CAF forwards it by value). */
struct env {
  std::vector<std::int64_t> *journal;
  snap::executor_ref ex;
  const snap_options *save; /* zstd + the dictionary */
  caf::actor listener;
};

caf::behavior account_actor(caf::stateful_actor<account> *self, env e) {
  self->state.journal = e.journal;
  self->state.listener = e.listener;
  snap::event_sourced_config cfg;
  cfg.executor = e.ex;
  cfg.pid = PID;
  cfg.snapshot_every = 1;
  cfg.save_options = e.save;
  return self->state.recover(self, cfg, [self] {
    return caf::behavior{[self](deposit_atom, std::int64_t c) {
                           account &st = self->state;
                           st.journal->push_back(c);
                           st.deposits.push_back(c);
                           st.persisted(st.seq() + 1);
                           return st.seq();
                         },
                         [self](get_atom) {
                           account &st = self->state;
                           return caf::make_message(st.snapshot_state(), st.recovered_from(),
                                                    static_cast<std::int64_t>(
                                                        st.recovered_stages()));
                         }};
  });
}

/* The stored bodies of PID: (codec, dictionary id) from each frame. */
std::vector<std::pair<snap_compression, std::uint32_t>> body_codecs(snap::store_ref st) {
  std::vector<std::pair<snap_compression, std::uint32_t>> out;
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  int rc = snap_store_list(st.get(), PID, nullptr, 0, 100, true, &page);
  check(rc == SNAP_OK, std::string("list the stored bodies: ") + snap_error_message());
  for (std::size_t i = 0; rc == SNAP_OK && i < page.n; i++) {
    snap_compression codec = SNAP_COMPRESSION_NONE;
    std::uint32_t dict = 0;
    if (snap_body_inspect_codec(page.entries[i].body, page.entries[i].stored_len, &codec,
                                &dict) == SNAP_OK)
      out.emplace_back(codec, dict);
  }
  snap_entry_page_dispose(&page);
  return out;
}

void run(const std::string &dir) {
  std::vector<std::int64_t> journal;
  caf::actor_system_config cfg;
  snap::add_error_category(cfg);
  caf::actor_system sys{cfg};
  snap::plugin plugin = snap::plugin::open(R"({"backend": "sqlite", "config": {"path": ")" + dir +
                                           R"(/state.db", "keep": 0}})");
  const std::string dict = R"({"holder":"","currency":"EUR","branch":"London",)"
                           R"("notes":"deposits in cents, newest last","deposits":[1200,)";
  std::uint32_t id = plugin.store().dict_add("accounts", dict);
  snap::options save = snap::options::create();
  save.set_compression(SNAP_COMPRESSION_ZSTD, 3).set_dictionary(0, "accounts");

  caf::scoped_actor self{sys};
  env e{&journal, plugin.executor(), save.get(), caf::actor_cast<caf::actor>(self)};
  caf::actor a = sys.spawn(account_actor, e);
  int compressed = 0;
  for (int n = 1; n <= SAVES; n++) {
    self->request(a, ANSWER_TIMEOUT, deposit_atom::value, std::int64_t{1000 + n})
        .receive([](std::int64_t) {}, [&](caf::error &err) { check(false, sys.render(err)); });
    self->receive([&](saved_atom, std::int64_t seq, std::int64_t stages) {
      compressed += seq == n && (stages & SNAP_STAGE_COMPRESSED) != 0;
    });
  }
  std::string before;
  self->request(a, ANSWER_TIMEOUT, get_atom::value)
      .receive([&](const std::string &s, std::int64_t, std::int64_t) { before = s; },
               [&](caf::error &err) { check(false, sys.render(err)); });
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->wait_for(a);
  check(compressed == SAVES, std::to_string(compressed) + " of " + std::to_string(SAVES) +
                                 " snapshots saved compressed");

  std::vector<std::pair<snap_compression, std::uint32_t>> codecs = body_codecs(plugin.store());
  int named = 0;
  for (const auto &c : codecs)
    named += c.first == SNAP_COMPRESSION_ZSTD && c.second == id;
  check(codecs.size() == SAVES && named == SAVES,
        std::to_string(named) + " of " + std::to_string(codecs.size()) +
            " stored bodies are zstd naming dictionary " + std::to_string(id));
  std::uint64_t uses = 0;
  int rc = snap_store_dict_uses(plugin.store().get(), id, &uses);
  check(rc == SNAP_OK && uses == SAVES,
        "the store counts " + std::to_string(uses) + " bodies using the dictionary");

  caf::actor b = sys.spawn(account_actor, e);
  self->request(b, ANSWER_TIMEOUT, get_atom::value)
      .receive(
          [&](const std::string &s, std::int64_t from, std::int64_t stages) {
            check(from == SAVES, "recovered from snapshot " + std::to_string(from));
            check((stages & SNAP_STAGE_COMPRESSED) != 0, "the snapshot recovered is compressed");
            check(s == before, "recovered state " + s);
          },
          [&](caf::error &err) { check(false, "recovery: " + sys.render(err)); });
  self->send_exit(b, caf::exit_reason::user_shutdown);
  self->wait_for(b);
}

} // namespace

int main(int argc, char **argv) {
  std::string dir;
  bool scratch = argc < 2;
  if (scratch) {
    const char *tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/caf_codec_dict.XXXXXX";
    if (!mkdtemp(&templ[0])) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = templ;
  } else {
    dir = argv[1];
  }
  try {
    run(dir);
  } catch (const std::exception &e) {
    check(false, std::string("unexpected exception: ") + e.what());
  }
  if (scratch) {
    std::string db = dir + "/state.db";
    for (const char *suffix : {"", "-wal", "-shm", "-journal"})
      unlink((db + suffix).c_str());
    rmdir(dir.c_str());
  }
  std::printf("%s\n", failures ? "FAILED" : "all checks passed");
  return failures ? 1 : 0;
}
