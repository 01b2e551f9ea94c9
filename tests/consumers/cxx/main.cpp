// An out-of-tree C++17 program built against an installed snapstore through
// find_package(snapstore): saves an encrypted snapshot to a SQLite file and
// loads it back with SNAP_CRITERIA_LATEST. Usage: consumer-cxx DIR
#include <snapstore.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

struct error : std::runtime_error {
  error(const char *what, int rc)
      : std::runtime_error(std::string(what) + ": " + snap_strerror(rc) + " (" +
                           snap_error_message() + ")") {}
};

void check(int rc, const char *what) {
  if (rc != SNAP_OK)
    throw error(what, rc);
}

template <class T, void (*Free)(T *)> struct deleter {
  void operator()(T *p) const { Free(p); }
};
using store_ptr = std::unique_ptr<snap_store, deleter<snap_store, snap_store_close>>;
using keyring_ptr = std::unique_ptr<snap_keyring, deleter<snap_keyring, snap_keyring_free>>;
using options_ptr = std::unique_ptr<snap_options, deleter<snap_options, snap_options_free>>;
using snapshot_ptr = std::unique_ptr<snap_snapshot, deleter<snap_snapshot, snap_snapshot_free>>;

} // namespace

const char *consumer_headers_version(); // version.cpp

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  try {
    const std::string config =
        std::string("{\"path\": \"") + argv[1] + "/consumer-cxx.db\", \"keep\": 3}";
    snap_store *raw_store = nullptr;
    check(snap_store_open(&raw_store, "sqlite", config.c_str()), "snap_store_open");
    store_ptr store(raw_store);

    snap_keyring *raw_ring = nullptr;
    check(snap_keyring_new(&raw_ring), "snap_keyring_new");
    keyring_ptr ring(raw_ring);
    unsigned char key[SNAP_KEY_BYTES];
    for (unsigned i = 0; i < sizeof key; i++)
      key[i] = static_cast<unsigned char>(255 - i);
    check(snap_keyring_add(ring.get(), 1, key, sizeof key), "snap_keyring_add");

    snap_options *raw_opts = nullptr;
    check(snap_options_new(&raw_opts), "snap_options_new");
    options_ptr opts(raw_opts);
    check(snap_options_set_encryption(opts.get(), ring.get(), "consumer/cxx/v1"),
          "snap_options_set_encryption");

    const std::string state = R"({"account": "7", "balance": -15, "owner": "grace"})";
    snap_meta meta;
    check(snap_save(store.get(), "account-7", 3, SNAP_FORMAT_JSON, state.data(), state.size(),
                    opts.get(), &meta),
          "snap_save");

    const snap_criteria latest = SNAP_CRITERIA_LATEST;
    snap_snapshot *raw_snap = nullptr;
    check(snap_load(store.get(), "account-7", &latest, opts.get(), &raw_snap), "snap_load");
    snapshot_ptr snap(raw_snap);
    if (!snap || snap->seq != 3 ||
        std::string(reinterpret_cast<const char *>(snap->data), snap->len) != state ||
        !(snap->stages & SNAP_STAGE_ENCRYPTED))
      throw std::runtime_error("loaded snapshot differs from the saved one");
    if (std::strcmp(consumer_headers_version(), snap_version()) != 0)
      throw std::runtime_error(std::string("headers ") + consumer_headers_version() +
                               " but library " + snap_version());
    std::printf("consumer-cxx: snapstore %s (the C++ header's version: %s): saved %zu bytes as %zu "
                "(encrypted), loaded seq %lld back\n",
                snap_version(), consumer_headers_version(), meta.state_len, meta.stored_len,
                static_cast<long long>(snap->seq));
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "consumer-cxx: %s\n", e.what());
    return 1;
  }
}
