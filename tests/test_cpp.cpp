/* The C++ API (snap/snapstore.hpp): owners, both error idioms, views, the
 * executor's callable completions and the plugin document. Built twice, as
 * C++17 and as C++20 (tests/cpp.cmake). */
#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
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
