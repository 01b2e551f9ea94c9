// An out-of-tree CAF 0.17 program against the installed snap/caf header and
// the snapstore::caf target: an event-sourced state type compiles and links
// against the installed library, and an actor system starts and stops.
#include <snap/caf/event_sourced.hpp>

#include <cstdio>
#include <string>

namespace {

struct counter : snap::event_sourced {
  std::int64_t total = 0;
  void restore(const snap::snapshot &s) override { total = std::stoll(std::string(s.text())); }
  std::int64_t replay(std::int64_t after) override { return after; }
  std::string snapshot_state() const override { return std::to_string(total); }
};

} // namespace

int main() {
  counter c;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::printf("consumer-caf: snapstore %s, an actor system started, state \"%s\"\n",
              snap_version(), c.snapshot_state().c_str());
  return 0;
}
