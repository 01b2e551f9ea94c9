/* The C++ API of streamed saves and loads (snap/snapstore_stream.hpp):
 * writers and readers as owners, std::istream in and std::ostream out, a
 * callable sink, and every way a stream can end early. */
#include <criterion/criterion.h>

#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "snap/snapstore_stream.hpp"
extern "C" {
#include "store_util.h"
}

namespace {

/* A SQLite store in a scratch directory removed afterwards. */
struct scratch {
  std::unique_ptr<char, decltype(&free)> dir{st_tmpdir(), &free};
  snap::store st;
  scratch() {
    std::string cfg = std::string(R"({"path": ")") + dir.get() + R"(/s.db", "keep": 0})";
    st = snap::store::open("sqlite", cfg);
  }
  ~scratch() {
    st = snap::store();
    st_rmtree(dir.get());
  }
};

/* A JSON array of `n` objects: about 40 bytes each. */
std::string big_state(std::size_t n) {
  std::string s = "[";
  for (std::size_t i = 0; i < n; i++) {
    if (i)
      s += ',';
    s += R"({"i":)" + std::to_string(i) + R"(,"name":"entry )" + std::to_string(i * 7) + "\"}";
  }
  return s + "]";
}

/* An input stream that fails (badbit) after `ok` bytes. */
class failing_buf : public std::streambuf {
public:
  explicit failing_buf(std::size_t ok) : left_(ok) {}

protected:
  int_type underflow() override {
    if (left_ == 0)
      throw std::runtime_error("the disk went away");
    std::size_t n = left_ < sizeof buf_ ? left_ : sizeof buf_;
    std::memset(buf_, ' ', n);
    left_ -= n;
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(*gptr());
  }

private:
  std::size_t left_;
  char buf_[4096];
};

/* Flips one byte in the middle of the store's only chunk file. */
void flip_middle_of_chunk_file(const char *dir) {
  std::string streams = std::string(dir) + "/s.db.streams";
  DIR *d = opendir(streams.c_str());
  cr_assert_not_null(d, "%s", streams.c_str());
  std::string file;
  while (dirent *e = readdir(d))
    if (std::strstr(e->d_name, ".chunks"))
      file = streams + "/" + e->d_name;
  closedir(d);
  cr_assert(!file.empty(), "no chunk file in %s", streams.c_str());
  FILE *f = std::fopen(file.c_str(), "r+b");
  cr_assert_not_null(f);
  std::fseek(f, 0, SEEK_END);
  long mid = std::ftell(f) / 2;
  std::fseek(f, mid, SEEK_SET);
  int c = std::fgetc(f);
  std::fseek(f, mid, SEEK_SET);
  std::fputc(c ^ 0x20, f);
  cr_assert_eq(std::fclose(f), 0);
}

} // namespace

Test(cpp_stream, an_istream_saved_in_chunks_loads_into_an_ostream_and_as_a_snapshot) {
  scratch s;
  std::string state = big_state(60000); /* about 2.4 MB: many 64 KiB chunks */
  std::istringstream in(state);
  snap_meta m = snap::save_stream(s.st, "big", 3, SNAP_FORMAT_JSON, in, {}, {}, 64 * 1024);
  cr_assert_eq(m.seq, 3);
  cr_assert_eq(m.state_len, state.size());

  std::ostringstream out;
  std::optional<snap_stream_meta> got = snap::load_stream(s.st, "big", out);
  cr_assert(got.has_value());
  cr_assert(got->streamed, "stored as chunk records");
  cr_assert_eq(got->length, state.size());
  cr_assert(out.str() == state, "the state read back differs");

  /* Under the reader's limit, an ordinary load reads it too. */
  std::optional<snap::snapshot> snap = s.st.load_latest("big");
  cr_assert(snap.has_value());
  cr_assert(snap->text() == state);
  cr_assert_eq(snap::open_stream(s.st, "nobody").has_value(), false);
}

Test(cpp_stream, a_writer_destroyed_before_its_commit_leaves_nothing_visible) {
  scratch s;
  {
    snap::stream_writer w = snap::begin_stream(s.st, "p", 1, SNAP_FORMAT_JSON);
    w.write("[1,2,");
    w.write("3]");
    cr_assert_eq(w.written(), 7u);
  }
  cr_assert_eq(snap::open_stream(s.st, "p").has_value(), false, "an aborted save is visible");
  snap::stream_writer w = snap::begin_stream(s.st, "p", 1, SNAP_FORMAT_JSON);
  w.write("[1,2,3]");
  cr_assert_eq(w.commit().seq, 1);
  cr_assert_eq(w.written(), 0u, "a committed writer is empty");
  cr_assert_eq(w.try_write("x").code(), SNAP_EINVAL, "writing to an empty writer");
  cr_assert_eq(s.st.load_latest("p")->text(), "[1,2,3]");
}

Test(cpp_stream, a_stale_condition_throws_a_conflict_carrying_the_current_seq) {
  scratch s;
  s.st.save("acct", 4, SNAP_FORMAT_JSON, "{}");
  snap::save_ext x;
  x.expected_seq = 2;
  snap::stream_writer w = snap::begin_stream(s.st, "acct", 5, SNAP_FORMAT_JSON, {}, x);
  w.write("{\"n\":5}");
  try {
    w.commit();
    cr_assert_fail("the commit of a stale condition succeeded");
  } catch (const snap::conflict &c) {
    cr_assert_eq(c.current_seq(), 4);
  }
  cr_assert_eq(s.st.load_latest("acct")->seq(), 4);
}

Test(cpp_stream, a_state_that_is_not_json_fails_the_save_and_stores_nothing) {
  scratch s;
  std::istringstream in("[1,2,}");
  snap::result<snap_meta> r = snap::try_save_stream(s.st, "p", 1, SNAP_FORMAT_JSON, in);
  cr_assert_eq(r.code(), SNAP_EFORMAT, "%d %s", r.code(), r.message().c_str());
  cr_assert_eq(snap::open_stream(s.st, "p").has_value(), false);
}

Test(cpp_stream, an_input_stream_that_fails_aborts_the_save_naming_what_was_read) {
  scratch s;
  failing_buf fb(100000);
  std::istream in(&fb);
  snap::result<snap_meta> r = snap::try_save_stream(s.st, "p", 1, SNAP_FORMAT_JSON, in);
  cr_assert_eq(r.code(), SNAP_EIO, "%d %s", r.code(), r.message().c_str());
  cr_assert(r.message().find("the input stream failed") != std::string::npos, "%s",
            r.message().c_str());
  cr_assert_eq(snap::open_stream(s.st, "p").has_value(), false);
}

Test(cpp_stream, an_istream_over_a_reader_reads_the_state_and_reports_a_clean_end) {
  scratch s;
  std::string state = big_state(5000);
  std::istringstream in(state);
  snap::save_stream(s.st, "p", 1, SNAP_FORMAT_JSON, in, {}, {}, 4096);
  std::optional<snap::stream_reader> r = snap::open_stream(s.st, "p");
  cr_assert(r.has_value());
  cr_assert_eq(r->length(), state.size());
  snap::istream is(std::move(*r));
  std::string back((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
  cr_assert(back == state);
  cr_assert(is.status().ok(), "%s", is.status().message().c_str());
}

Test(cpp_stream, an_istream_cut_short_by_a_damaged_chunk_says_so_in_its_status) {
  scratch s;
  std::string state = big_state(5000);
  std::istringstream in(state);
  snap::save_stream(s.st, "p", 1, SNAP_FORMAT_JSON, in, {}, {}, 4096);
  flip_middle_of_chunk_file(s.dir.get());
  std::optional<snap::stream_reader> r = snap::open_stream(s.st, "p");
  cr_assert(r.has_value());
  snap::istream is(std::move(*r));
  std::string back((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
  cr_assert(back.size() > 0 && back.size() < state.size(),
            "%zu of %zu bytes before the damaged chunk", back.size(), state.size());
  cr_assert(state.compare(0, back.size(), back) == 0, "a byte handed out was not the state's");
  cr_assert_eq(is.status().code(), SNAP_ECORRUPT, "%d %s", is.status().code(),
               is.status().message().c_str());
  /* Verified first, the damage is found before any byte: no reader opens
   * it, and with no older snapshot there is none to fall back to. */
  snap::result<std::optional<snap::stream_reader>> v =
      snap::try_open_stream(s.st, "p", snap::criteria_latest(), {}, SNAP_LOAD_STREAM_VERIFY_FIRST);
  cr_assert(v.ok() ? !v->has_value() : v.code() == SNAP_ECORRUPT, "%d %s", v.code(),
            v.message().c_str());
}

Test(cpp_stream, a_sink_sees_every_piece_and_what_it_throws_propagates) {
  scratch s;
  std::string state = big_state(30000);
  std::istringstream in(state);
  snap::save_stream(s.st, "p", 1, SNAP_FORMAT_JSON, in);
  std::string back;
  std::size_t pieces = 0;
  auto r = snap::try_load_stream_to(s.st, "p", [&](snap::bytes_view b) {
    back.append(reinterpret_cast<const char *>(b.data()), b.size());
    pieces++;
  });
  cr_assert(r.ok(), "%s", r.message().c_str());
  cr_assert(back == state);
  cr_assert_geq(pieces, 1u);
  bool thrown = false;
  try {
    (void)snap::try_load_stream_to(s.st, "p",
                                   [](snap::bytes_view) { throw std::length_error("full"); });
  } catch (const std::length_error &) {
    thrown = true;
  }
  cr_assert(thrown, "the sink's exception was swallowed");
}

Test(cpp_stream, an_ordinary_snapshot_reads_through_a_stream_reader) {
  scratch s;
  s.st.save("p", 2, SNAP_FORMAT_JSON, "{\"small\":true}");
  std::ostringstream out;
  std::optional<snap_stream_meta> m = snap::load_stream(s.st, "p", out);
  cr_assert(m.has_value());
  cr_assert_eq(m->streamed, false);
  cr_assert_eq(m->seq, 2);
  cr_assert(out.str() == "{\"small\":true}");
}
