/* The C++ API (snap/snapstore.hpp): owners, both error idioms, views, the
 * executor's callable completions and the plugin document. Built twice, as
 * C++17 and as C++20 (tests/cpp.cmake). */
#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>
#if __cplusplus >= 202002L
#include <span>
#endif

#include "snap/admin.h"
#include "snap/snapstore.hpp"
extern "C" {
#include "store_util.h"
}

namespace {

const std::string STATE = R"({"balance":1200,"holder":"Ada Lovelace"})";

snap::store memory_store() { return snap::store::open("memory", R"({"keep": 0})"); }

/* A SQLite store in a scratch directory removed afterwards (the memory backend
 * stores bodies as they come and ignores encryption, as its capabilities say). */
struct sqlite_scratch {
  std::unique_ptr<char, decltype(&free)> dir{st_tmpdir(), &free};
  std::string config() const {
    return std::string(R"({"path": ")") + dir.get() + R"(/state.db", "keep": 0})";
  }
  ~sqlite_scratch() { st_rmtree(dir.get()); }
};

std::array<std::uint8_t, SNAP_KEY_BYTES> key_of(std::uint8_t fill) {
  std::array<std::uint8_t, SNAP_KEY_BYTES> k{};
  k.fill(fill);
  return k;
}

/* Waits for a completion without depending on its timing: the future blocks. */
template <class T> T wait(std::future<T> &f) { return f.get(); }

} // namespace

Test(cpp, save_then_load_latest_round_trips) {
  snap::store st = memory_store();
  snap_meta m = st.save("account-42", 7, SNAP_FORMAT_JSON, STATE);
  cr_assert_eq(m.seq, 7);
  cr_assert_eq(m.state_len, STATE.size());
  st.save("account-42", 9, SNAP_FORMAT_JSON, R"({"balance":1300})");

  std::optional<snap::snapshot> s = st.load_latest("account-42");
  cr_assert(s.has_value());
  cr_assert_eq(s->seq(), 9);
  cr_assert_eq(s->pid(), "account-42");
  cr_assert_eq(s->format(), SNAP_FORMAT_JSON);
  cr_assert_eq(s->text(), R"({"balance":1300})");

  std::optional<snap::snapshot> before = st.load_before("account-42", 9);
  cr_assert(before.has_value());
  cr_assert_eq(before->seq(), 7);
  cr_assert_eq(before->text(), STATE);
  cr_assert(before->get() != nullptr, "the C handle is reachable");
}

Test(cpp, none_found_is_nullopt_not_an_error) {
  snap::store st = memory_store();
  cr_assert_not(st.load_latest("nobody").has_value());
  snap::result<std::optional<snap::snapshot>> r = st.try_load_latest("nobody");
  cr_assert(r.ok());
  cr_assert_not(r->has_value());
}

Test(cpp, failures_throw_the_code_and_the_detailed_message) {
  try {
    snap::store::open("memory", R"({"keep": 1, "bogus_key": true})");
    cr_assert_fail("an unknown configuration key must throw");
  } catch (const snap::error &e) {
    cr_assert_eq(e.code(), SNAP_ECONFIG);
    cr_assert(e.message().find("bogus_key") != std::string::npos, "message: %s",
              e.message().c_str());
    cr_assert(std::string(e.what()).find("configuration error") == 0, "what: %s", e.what());
  }
  try {
    snap::store::open("no-such-backend");
    cr_assert_fail("an unknown backend must throw");
  } catch (const snap::error &e) {
    cr_assert_eq(e.code(), SNAP_ENOTFOUND);
    cr_assert(e.message().find("no-such-backend") != std::string::npos);
  }
}

Test(cpp, try_forms_return_the_failure_instead_of_throwing) {
  snap::result<snap::store> opened = snap::store::try_open("memory", R"({"keep": "three"})");
  cr_assert_not(opened.ok());
  cr_assert_eq(opened.code(), SNAP_ECONFIG);
  cr_assert(opened.message().find("keep") != std::string::npos, "%s", opened.message().c_str());
  cr_assert_throw(std::move(opened).value(), snap::error);

  snap::store st = memory_store();
  snap::result<snap_meta> bad = st.try_save("account-1", 1, SNAP_FORMAT_JSON, "{not json");
  cr_assert_eq(bad.code(), SNAP_EFORMAT);
  cr_assert_not(bad.message().empty());
  cr_assert_not(st.load_latest("account-1").has_value(), "a refused save stores nothing");

  snap::result<snap_meta> good = st.try_save("account-1", 1, SNAP_FORMAT_JSON, STATE);
  cr_assert(good.ok());
  cr_assert_eq(good->seq, 1);
}

Test(cpp, a_nul_inside_a_view_is_refused_and_changes_nothing) {
  snap::store st = memory_store();
  const std::string pid("acct\0hidden", 11);
  snap::result<snap_meta> r = st.try_save(pid, 1, SNAP_FORMAT_JSON, STATE);
  cr_assert_eq(r.code(), SNAP_EINVAL);
  cr_assert(r.message().find("offset 4") != std::string::npos, "%s", r.message().c_str());
  cr_assert_eq(std::string(snap_error_message()), r.message(), "the thread's last error agrees");
  cr_assert_not(st.load_latest("acct").has_value(), "nothing saved under the truncated pid");

  snap::result<snap::store> opened = snap::store::try_open(std::string("memory\0x", 8));
  cr_assert_eq(opened.code(), SNAP_EINVAL);
}

Test(cpp, moved_from_owners_are_empty_and_refuse_use) {
  snap::store a = memory_store();
  snap_store *raw = a.get();
  snap::store b = std::move(a);
  cr_assert_eq(b.get(), raw);
  cr_assert_null(a.get());
  snap::result<snap_meta> r = a.try_save("x", 1, SNAP_FORMAT_JSON, STATE);
  cr_assert_eq(r.code(), SNAP_EINVAL);
  cr_assert(r.message().find("empty snap::store") != std::string::npos, "%s", r.message().c_str());
  cr_assert(b.try_save("x", 1, SNAP_FORMAT_JSON, STATE).ok());

  snap::keyring k = snap::keyring::create();
  snap::keyring k2 = std::move(k);
  cr_assert_eq(k.try_add(1, key_of(1)).code(), SNAP_EINVAL);
  cr_assert_eq(k.active(), 0u);
  k2.add(1, key_of(1));
  cr_assert_eq(k2.active(), 1u);

  /* release() hands the C handle over: the owner no longer frees it. */
  snap_store *released = b.release();
  cr_assert_null(b.get());
  snap_store_close(released);
}

Test(cpp, byte_views_take_strings_and_byte_containers) {
  snap::store st = memory_store();
  std::vector<std::uint8_t> packed = {0x81, 0xa1, 'a', 0x01}; /* msgpack {"a": 1} */
  st.save("v", 1, SNAP_FORMAT_MSGPACK, packed);
  std::optional<snap::snapshot> s = st.load_latest("v");
  cr_assert(s.has_value());
  cr_assert_eq(s->data().size(), packed.size());
  cr_assert(std::equal(packed.begin(), packed.end(), s->data().begin()));

  std::array<std::byte, 2> empty_array = {std::byte{'{'}, std::byte{'}'}};
  st.save("v", 2, SNAP_FORMAT_JSON, empty_array);
  cr_assert_eq(st.load_latest("v")->text(), "{}");
  const char literal[] = "[1,2]"; /* a string: its terminator is not part of the state */
  st.save("v", 3, SNAP_FORMAT_JSON, literal);
  cr_assert_eq(st.load_latest("v")->data().size(), 5u);
#if __cplusplus >= 202002L
  std::span<const std::uint8_t> view(packed);
  st.save("v", 4, SNAP_FORMAT_MSGPACK, view);
  cr_assert_eq(st.load_latest("v")->format(), SNAP_FORMAT_MSGPACK);
#endif
}

Test(cpp, envelope_keys_forget_a_unit_and_rewrap_under_a_new_master_key) {
  snap::keyring kr = snap::keyring::create();
  kr.add(1, key_of(3));
  kr.add(2, key_of(4));
  snap::options o = snap::options::create();
  o.set_encryption(kr, "acme/test/cpp/v1").set_key_mode(SNAP_KEYS_ENVELOPE);
  sqlite_scratch scratch;
  cr_assert(scratch.dir);
  snap::store st = snap::store::open("sqlite", scratch.config());
  st.save("kept", 1, SNAP_FORMAT_JSON, STATE, o);
  st.save("gone", 1, SNAP_FORMAT_JSON, STATE, o);
  kr.set_active(2);
  snap_rewrap_progress pr = st.rewrap(o);
  cr_assert_eq(pr.rewrapped, 2);
  snap_forget_report rep = st.forget("gone");
  cr_assert_eq(rep.keys, 1);
  cr_assert(!st.load_latest("gone", o).has_value(), "its snapshots are deleted");
  std::optional<snap::snapshot> s = st.load_latest("kept", o);
  cr_assert(s && s->text() == STATE);
  cr_assert_eq(st.try_forget(std::string_view("a\0b", 3)).code(), SNAP_EINVAL);
}

Test(cpp, encrypted_saves_need_the_key_to_load) {
  sqlite_scratch scratch;
  cr_assert(scratch.dir);
  snap::store st = snap::store::open("sqlite", scratch.config());
  snap::keyring kr = snap::keyring::create();
  kr.add(1, key_of(7));
  snap::options o = snap::options::create();
  o.set_compression(SNAP_COMPRESSION_ZLIB, 6).set_encryption(kr, "acme/test/cpp/v1");
  snap_meta m = st.save("secret", 1, SNAP_FORMAT_JSON, STATE, o);
  cr_assert(m.stages & SNAP_STAGE_ENCRYPTED);

  std::optional<snap::snapshot> s = st.load_latest("secret", o);
  cr_assert(s && s->text() == STATE);
  cr_assert(s->stages() & SNAP_STAGE_ENCRYPTED);

  snap::keyring other = snap::keyring::create();
  other.add(1, key_of(8));
  snap::options wrong = o.clone();
  wrong.set_encryption(other, "acme/test/cpp/v1");
  snap::result<std::optional<snap::snapshot>> r = st.try_load_latest("secret", wrong);
  cr_assert_eq(r.code(), SNAP_EAUTH, "a wrong key is an error, never none: %s",
               r.message().c_str());

  cr_assert_eq(st.try_load_latest("secret").code(), SNAP_ENOKEY, "no keyring at all");
  cr_assert_eq(o.try_set_compression(SNAP_COMPRESSION_ZLIB, 42).code(), SNAP_EINVAL);
}

Test(cpp, options_select_zstd_and_a_stored_dictionary) {
  sqlite_scratch scratch;
  cr_assert(scratch.dir);
  snap::store st = snap::store::open("sqlite", scratch.config());
  const std::string dict = R"({"balance":,"holder":"","currency":"EUR","history":[]})";
  std::uint32_t id = 0;
  cr_assert_eq(snap_store_dict_add(st.get(), "holders", dict.data(), dict.size(), &id), SNAP_OK,
               "%s", snap_error_message());
  const std::string state =
      R"({"balance":1200,"holder":"Ada Lovelace","currency":"EUR","history":[1,2,3]})";
  for (int by_name = 0; by_name < 2; by_name++) {
    snap::options o = snap::options::create();
    o.set_compression(SNAP_COMPRESSION_ZSTD, 3).set_dictionary(by_name ? 0 : id,
                                                                by_name ? "holders" : "");
    snap_meta m = st.save("h", by_name + 1, SNAP_FORMAT_JSON, state, o);
    cr_assert(m.stages & SNAP_STAGE_COMPRESSED);
    std::optional<snap::snapshot> s = st.load_latest("h");
    cr_assert(s && s->text() == state);
  }
  snap::options bad = snap::options::create();
  cr_assert_eq(bad.try_set_dictionary(5, "both").code(), SNAP_EINVAL);
  uint64_t uses = 0;
  cr_assert_eq(snap_store_dict_uses(st.get(), id, &uses), SNAP_OK);
  cr_assert_eq(uses, 2u, "both saves name the dictionary");
}

Test(cpp, executor_completions_are_callables) {
  snap::store st = memory_store();
  snap::executor ex = snap::executor::start(st);

  /* Completions run on the worker: they only hand values to this thread. */
  std::promise<snap_result> saved;
  std::future<snap_result> saved_f = saved.get_future();
  ex.save("acct", 5, SNAP_FORMAT_JSON, STATE,
          [&saved](snap::completion &c) { saved.set_value(*c.get()); });
  snap_result sr = wait(saved_f);
  cr_assert_eq(sr.status, SNAP_OK);
  cr_assert_eq(sr.kind, SNAP_REQUEST_SAVE);
  cr_assert_eq(sr.meta.seq, 5);

  /* A move-only callable takes the snapshot out of the completion. */
  std::promise<std::optional<snap::snapshot>> loaded;
  std::future<std::optional<snap::snapshot>> loaded_f = loaded.get_future();
  auto token = std::make_unique<int>(42);
  ex.load("acct", [p = std::move(loaded), token = std::move(token)](snap::completion &c) mutable {
    p.set_value(*token == 42 ? c.take_snapshot() : std::nullopt);
  });
  std::optional<snap::snapshot> s = wait(loaded_f);
  cr_assert(s.has_value());
  cr_assert_eq(s->seq(), 5);
  cr_assert_eq(s->text(), STATE);

  /* A snapshot the completion leaves is freed (the leak checker would see it). */
  std::promise<int> ignored;
  std::future<int> ignored_f = ignored.get_future();
  ex.load("acct", [&ignored](snap::completion &c) { ignored.set_value(c.code()); });
  cr_assert_eq(wait(ignored_f), SNAP_OK);

  std::promise<bool> none;
  std::future<bool> none_f = none.get_future();
  ex.load("nobody", [&none](snap::completion &c) { none.set_value(!c.take_snapshot()); });
  cr_assert(wait(none_f), "no snapshot: take_snapshot() is nullopt");

  std::promise<int> removed;
  std::future<int> removed_f = removed.get_future();
  ex.remove("acct", snap::criteria_latest(),
            [&removed](snap::completion &c) { removed.set_value(c.code()); });
  cr_assert_eq(wait(removed_f), SNAP_OK);
  cr_assert_not(st.load_latest("acct").has_value());
  cr_assert_eq(ex.stats().submitted, 5u);
}

Test(cpp, a_refused_submission_calls_nothing_and_destroys_the_callable) {
  snap::store st = memory_store();
  snap::executor ex = snap::executor::start(st);
  std::atomic<int> calls{0};
  snap::result<void> bad = ex.try_save("acct", 1, SNAP_FORMAT_JSON, "{oops", {}, 0,
                                       [&calls](snap::completion &) { calls++; });
  cr_assert_eq(bad.code(), SNAP_EFORMAT, "a save is validated by the submit itself");

  ex.shutdown(SNAP_SHUTDOWN_DRAIN);
  auto alive = std::make_shared<int>(0);
  snap::result<void> r = ex.try_load("acct", snap::criteria_latest(), {}, 0,
                                     [alive, &calls](snap::completion &) { calls++; });
  cr_assert_eq(r.code(), SNAP_ECLOSED);
  cr_assert_eq(alive.use_count(), 1, "the callable was destroyed");
  cr_assert_eq(calls.load(), 0, "neither refused request calls its completion");
}

Test(cpp, plugin_from_a_document_with_a_keyring) {
  sqlite_scratch scratch;
  cr_assert(scratch.dir);
  snap::keyring kr = snap::keyring::create();
  kr.add(1, key_of(3));
  snap::plugin p =
      snap::plugin::open(R"({"backend": "sqlite", "config": )" + scratch.config() + R"(,
      "options": {"compression": "zlib", "encryption": {"context": "acme/test/plugin/v1"}},
      "executor": {"queue_capacity": 16}})",
                         &kr);
  cr_assert_eq(p.store().backend_name(), "sqlite");
  snap_meta m = p.store().save("acct", 1, SNAP_FORMAT_JSON, STATE);
  cr_assert(m.stages & SNAP_STAGE_ENCRYPTED, "the document's options are the defaults");

  std::promise<std::string> text;
  std::future<std::string> text_f = text.get_future();
  p.executor().load("acct", [&text](snap::completion &c) {
    std::optional<snap::snapshot> s = c.take_snapshot();
    text.set_value(s ? std::string(s->text()) : std::string("none"));
  });
  cr_assert_eq(wait(text_f), STATE);

  snap::result<snap::plugin> bad = snap::plugin::try_open(R"({"backend": "memory", "extra": 1})");
  cr_assert_eq(bad.code(), SNAP_ECONFIG);
  cr_assert(bad.message().find("extra") != std::string::npos, "%s", bad.message().c_str());
}

/* ---- conditional saves, manifests, upcasters -------------------------------- */

Test(cpp, a_conditional_save_conflicts_with_the_seq_it_found) {
  snap::store st = memory_store();
  snap::save_ext first;
  first.expected_seq = SNAP_SEQ_NONE;
  snap_meta m = st.save_ex("etag", 1, SNAP_FORMAT_JSON, STATE, first);
  cr_assert_eq(m.current_seq, 1);

  snap::save_ext stale;
  stale.expected_seq = SNAP_SEQ_NONE; /* read before the first save */
  try {
    st.save_ex("etag", 2, SNAP_FORMAT_JSON, R"({"balance":1})", stale);
    cr_assert_fail("a stale expected seq must not be stored");
  } catch (const snap::conflict &c) {
    cr_assert_eq(c.code(), SNAP_ECONFLICT);
    cr_assert_eq(c.current_seq(), 1, "the seq found");
    cr_assert(!c.message().empty());
  }
  /* Caught as any snapstore error too. */
  cr_assert_throw(st.save_ex("etag", 2, SNAP_FORMAT_JSON, STATE, stale), snap::error);

  snap::result<snap_meta> r = st.try_save_ex("etag", 2, SNAP_FORMAT_JSON, STATE, stale);
  cr_assert_eq(r.code(), SNAP_ECONFLICT);
  cr_assert_eq(r.status().current_seq(), 1);
  cr_assert_eq(st.load_latest("etag")->seq(), 1, "nothing stored by the conflicts");

  snap::save_ext fresh;
  fresh.expected_seq = 1;
  cr_assert_eq(st.save_ex("etag", 2, SNAP_FORMAT_JSON, STATE, fresh).current_seq, 2);
  cr_assert_eq(snap::status(SNAP_EIO, "x").current_seq(), SNAP_SEQ_NONE);
  snap::save_ext bad;
  bad.expected_seq = -2;
  cr_assert_eq(st.try_save_ex("etag", 3, SNAP_FORMAT_JSON, STATE, bad).code(), SNAP_EINVAL);
}

Test(cpp, manifest_and_metadata_are_returned_by_loads) {
  snap::store st = memory_store();
  const std::vector<std::uint8_t> meta{0x00, 0xff, 0x10};
  snap::save_ext x;
  x.manifest = "bank.Account/3";
  x.metadata = meta;
  st.save_ex("typed", 4, SNAP_FORMAT_JSON, STATE, x);
  st.save("untyped", 1, SNAP_FORMAT_JSON, STATE);

  std::optional<snap::snapshot> s = st.load_latest("typed");
  cr_assert(s.has_value());
  cr_assert_eq(s->manifest(), "bank.Account/3");
  cr_assert_eq(s->stored_manifest(), "bank.Account/3");
  cr_assert(std::equal(s->metadata().begin(), s->metadata().end(), meta.begin(), meta.end()));
  std::optional<snap::snapshot> u = st.load_latest("untyped");
  cr_assert(u->manifest().empty() && u->stored_manifest().empty() && u->metadata().empty());

  cr_assert(st.load_manifest("typed", snap::criteria_latest(), "bank.Account/3").has_value());
  cr_assert_not(st.load_manifest("typed", snap::criteria_latest(), "bank.Account/2").has_value());

  snap::save_ext nul;
  nul.manifest = std::string_view("T\0/1", 4);
  snap::result<snap_meta> r = st.try_save_ex("typed", 5, SNAP_FORMAT_JSON, STATE, nul);
  cr_assert_eq(r.code(), SNAP_EINVAL);
  cr_assert(r.message().find("manifest") != std::string::npos, "%s", r.message().c_str());
  snap::save_ext big;
  const std::vector<std::uint8_t> too_much(SNAP_METADATA_MAX + 1, 7);
  big.metadata = too_much;
  cr_assert_neq(st.try_save_ex("typed", 5, SNAP_FORMAT_JSON, STATE, big).code(), SNAP_OK);
  cr_assert_eq(st.load_latest("typed")->seq(), 4, "refused saves store nothing");
}

namespace {

/* The account of the upcaster tests: v1 {"owner":..,"cents":N}, v2 renames
 * owner to holder, v3 turns the cents into a decimal string "12.00". */
std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string cents_to_decimal(std::string_view v2) {
  std::string s(v2);
  std::size_t at = s.find("\"cents\":");
  if (at == std::string::npos)
    throw std::runtime_error("no cents in " + s);
  std::size_t num = at + 8, end = s.find_first_not_of("0123456789", num);
  long long cents = std::stoll(s.substr(num, end - num));
  std::string dec = std::to_string(cents / 100) + "." + (cents % 100 < 10 ? "0" : "") +
                    std::to_string(cents % 100);
  return s.substr(0, at) + "\"amount\":\"" + dec + "\"" + s.substr(end);
}

} // namespace

Test(cpp, callable_upcasters_bring_a_state_to_the_target) {
  snap::store st = memory_store();
  snap::save_ext x;
  x.manifest = "bank.Account/1";
  st.save_ex("acct", 9, SNAP_FORMAT_JSON, R"({"owner":"Ada","cents":1205})", x);

  auto seen = std::make_shared<std::vector<std::string>>();
  std::function<std::string(const snap::upcast_input &)> rename =
      [seen](const snap::upcast_input &in) {
        seen->push_back(std::string(in.from) + ">" + std::string(in.to));
        return replace_all(std::string(in.text()), "\"owner\"", "\"holder\"");
      };
  st.add_upcaster("bank.Account/1", "bank.Account/2", rename);
  auto token = std::make_unique<int>(3); /* a move-only callable */
  st.add_upcaster("bank.Account/2", "bank.Account/3",
                  [seen, token = std::move(token)](const snap::upcast_input &in) {
                    seen->push_back(std::string(in.from) + ">" + std::string(in.to));
                    return snap::upcast_output{in.format, cents_to_decimal(in.text())};
                  });

  std::optional<snap::snapshot> s = st.load_latest_as("acct", "bank.Account/3");
  cr_assert(s.has_value());
  cr_assert_eq(s->text(), R"({"holder":"Ada","amount":"12.05"})", "%.*s", (int)s->text().size(),
               s->text().data());
  cr_assert_eq(s->manifest(), "bank.Account/3");
  cr_assert_eq(s->stored_manifest(), "bank.Account/1");
  cr_assert_eq(s->seq(), 9);
  cr_assert_eq(seen->size(), 2u);
  cr_assert_eq((*seen)[0], "bank.Account/1>bank.Account/2");
  cr_assert_eq((*seen)[1], "bank.Account/2>bank.Account/3");

  std::optional<snap::snapshot> one = st.load_as("acct", snap::criteria_latest(), "bank.Account/2");
  cr_assert_eq(one->text(), R"({"holder":"Ada","cents":1205})");

  snap::result<std::optional<snap::snapshot>> missing = st.try_load_latest_as("acct", "bank.Account/4");
  cr_assert_eq(missing.code(), SNAP_ENOTFOUND);
  cr_assert(missing.message().find("bank.Account/3") != std::string::npos, "%s",
            missing.message().c_str());
  cr_assert_eq(st.try_add_upcaster("bank.Account/1", "bank.Account/9", rename).code(), SNAP_EINVAL,
               "one step leaves each manifest");

  long uses = seen.use_count();
  st = snap::store(); /* closes the store: the callables go with it */
  cr_assert_eq(seen.use_count(), uses - 2);
}

Test(cpp, exceptions_from_an_upcaster_become_codes_with_their_message) {
  snap::store st = memory_store();
  const char *kinds[] = {"T", "U", "V", "W"};
  for (const char *k : kinds) {
    snap::save_ext x;
    std::string m = std::string(k) + "/1";
    x.manifest = m;
    st.save_ex(k, 1, SNAP_FORMAT_JSON, STATE, x);
  }
  st.add_upcaster("T/1", "T/2", [](const snap::upcast_input &) -> std::string {
    throw std::runtime_error("amount 'ten' is not a decimal");
  });
  st.add_upcaster("U/1", "U/2", [](const snap::upcast_input &) -> std::string {
    throw snap::error(SNAP_ENOKEY, "the rates table needs key 4");
  });
  st.add_upcaster("V/1", "V/2", [](const snap::upcast_input &) -> std::string { throw 42; });
  st.add_upcaster("W/1", "W/2",
                  [](const snap::upcast_input &) { return std::string(R"({"balance":)"); });

  struct want {
    const char *pid, *target;
    int code;
    const char *words;
  } cases[] = {{"T", "T/2", SNAP_EFORMAT, "amount 'ten' is not a decimal"},
               {"U", "U/2", SNAP_ENOKEY, "the rates table needs key 4"},
               {"V", "V/2", SNAP_EFORMAT, "not a std::exception"},
               {"W", "W/2", SNAP_EFORMAT, "not valid JSON"}};
  for (const want &w : cases) {
    snap::result<std::optional<snap::snapshot>> r = st.try_load_latest_as(w.pid, w.target);
    cr_assert_eq(r.code(), w.code, "%s: %d %s", w.pid, r.code(), r.message().c_str());
    cr_assert(r.message().find(w.words) != std::string::npos, "%s", r.message().c_str());
    cr_assert(r.message().find(w.target) != std::string::npos, "the step is named: %s",
              r.message().c_str());
  }
  cr_assert_throw(st.load_latest_as("T", "T/2"), snap::error);
  cr_assert_eq(st.load_latest("T")->text(), STATE, "the stored body is untouched");
}

Test(cpp, executor_conditional_saves_and_loads_as_a_target) {
  snap::store st = memory_store();
  st.add_upcaster("Acct/1", "Acct/2", [](const snap::upcast_input &in) {
    return replace_all(std::string(in.text()), "\"holder\"", "\"owner\"");
  });
  snap::executor ex = snap::executor::start(st);
  snap::save_ext x;
  x.expected_seq = SNAP_SEQ_NONE;
  x.manifest = "Acct/1";

  std::promise<snap::status> first, second;
  std::future<snap::status> first_f = first.get_future(), second_f = second.get_future();
  ex.save_ex("acct", 1, SNAP_FORMAT_JSON, STATE, x, {}, -1,
             [&first](snap::completion &c) { first.set_value(c.status()); });
  cr_assert(wait(first_f).ok());
  ex.save_ex("acct", 2, SNAP_FORMAT_JSON, STATE, x, {}, -1,
             [&second](snap::completion &c) { second.set_value(c.status()); });
  snap::status conflict = wait(second_f);
  cr_assert_eq(conflict.code(), SNAP_ECONFLICT);
  cr_assert_eq(conflict.current_seq(), 1);
  cr_assert_throw(conflict.throw_if_failed(), snap::conflict);

  std::promise<std::optional<snap::snapshot>> loaded;
  std::future<std::optional<snap::snapshot>> loaded_f = loaded.get_future();
  ex.load_as("acct", snap::criteria_latest(), "Acct/2", {}, -1,
             [&loaded](snap::completion &c) { loaded.set_value(c.take_snapshot()); });
  std::optional<snap::snapshot> s = wait(loaded_f);
  cr_assert(s.has_value());
  cr_assert_eq(s->text(), R"({"balance":1200,"owner":"Ada Lovelace"})");
  cr_assert_eq(s->manifest(), "Acct/2");
  cr_assert_eq(s->stored_manifest(), "Acct/1");
  cr_assert_eq(ex.try_load_as("acct", snap::criteria_latest(), "", {}, 0,
                              [](snap::completion &) {})
                   .code(),
               SNAP_EINVAL, "an empty target is refused by the submit");
}

Test(cpp, plugin_keeps_its_upcasters_and_stores_dictionaries) {
  sqlite_scratch scratch;
  cr_assert(scratch.dir);
  snap::plugin p = snap::plugin::open(R"({"backend": "sqlite", "config": )" + scratch.config() +
                                      R"(, "executor": false})");
  const std::string dict = R"({"balance":,"holder":"","currency":"EUR","history":[],)"
                           R"("branch":"London","notes":"deposits in cents, newest last"})";
  const std::string state = R"({"balance":1200,"holder":"Ada Lovelace","currency":"EUR",)"
                            R"("history":[1,2,3],"branch":"London",)"
                            R"("notes":"deposits in cents, newest last"})";
  std::uint32_t id = p.store().dict_add("accounts", dict);
  cr_assert_neq(id, 0u);
  cr_assert_eq(p.store().try_dict_add("accounts", dict).code(), SNAP_ECONFLICT,
               "a dictionary is immutable");
  snap::options o = snap::options::create();
  o.set_compression(SNAP_COMPRESSION_ZSTD, 3).set_dictionary(0, "accounts");
  snap::save_ext x;
  x.manifest = "Acct/1";
  snap_meta m = p.store().save_ex("acct", 1, SNAP_FORMAT_JSON, state, x, o);
  cr_assert(m.stages & SNAP_STAGE_COMPRESSED, "smaller with the dictionary: kept compressed");
  p.add_upcaster("Acct/1", "Acct/2", [](const snap::upcast_input &in) {
    return "{\"v1\":" + std::string(in.text()) + "}";
  });
  std::optional<snap::snapshot> s = p.store().load_latest_as("acct", "Acct/2");
  cr_assert(s.has_value());
  cr_assert_eq(s->text(), "{\"v1\":" + state + "}");
  cr_assert(s->stages() & SNAP_STAGE_COMPRESSED);
  uint64_t uses = 0;
  cr_assert_eq(snap_store_dict_uses(p.store().get(), id, &uses), SNAP_OK);
  cr_assert_eq(uses, 1u, "the save named the dictionary");
}
