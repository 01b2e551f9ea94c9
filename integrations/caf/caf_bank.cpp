/*
 * caf_bank: event-sourced bank accounts as CAF actors, snapshotted through
 * snapstore (snap/caf/event_sourced.hpp), killed with SIGKILL and recovered,
 * several times over.
 *
 *  - Each account is a caf::stateful_actor whose state derives from
 *    snap::event_sourced. It journals every event in the program's own SQLite
 *    journal (not snapstore's business), applies it, and lets the integration
 *    snapshot it every SNAPSHOT_EVERY events through the plugin's executor
 *    (sqlite backend, synchronous=full, zlib, XChaCha20-Poly1305 with a key
 *    file this program writes).
 *  - The last child also opens the store with a wrong key and spawns an
 *    account on it: the account must stop with the authentication failure as
 *    its exit reason, never run from an empty state.
 *  - A transfer is a two-step saga: the payer journals "debited" and sends
 *    "credit" to the payee, which journals "credited".
 *  - Each cycle runs in a fresh child process: it spawns every account, and
 *    each recovers (snapshot through the executor, completion by message,
 *    other messages skipped until then, journal events after the snapshot
 *    replayed). The child checks every recovered balance against a replay of
 *    the whole journal from event 0, completes the transfers a crash cut in
 *    half, checks again and checks that money is conserved, then runs random
 *    transfers until the parent kills it with SIGKILL. A last child recovers
 *    and checks once more and exits.
 *
 * Usage: caf_bank [--accounts N] [--cycles N] [--events N] [--snapshot-every N]
 *                 [scratch-dir]
 * Exits 0 when every check of every cycle passed, 1 on a mismatch, 2 on an
 * error.
 */
#include <caf/all.hpp>
#include <cjson/cJSON.h>
#include <sodium.h>
#include <sqlite3.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <new>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "snap/caf/event_sourced.hpp"

namespace {

constexpr std::int64_t INITIAL_DEPOSIT = 1000;
constexpr long MAX_IN_FLIGHT = 4000; /* messages queued before the generator waits */
constexpr int RECENT = 8;            /* history entries kept in the state */
enum { EV_DEPOSITED = 1, EV_DEBITED = 2, EV_CREDITED = 3 };

using deposit_atom = caf::atom_constant<caf::atom("deposit")>;
using transfer_atom = caf::atom_constant<caf::atom("transfer")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using balance_atom = caf::atom_constant<caf::atom("balance")>;

/* What one child reports to the parent (shared memory survives the SIGKILL). */
struct report {
  double recovery_s;
  long replayed;
  int from_snapshots;
  int with_snapshot;    /* an account that recovered from a snapshot, -1 if none */
  int sealed_snapshots; /* recovered from a compressed and encrypted body */
  int load_failures;
  int completed;       /* half-done transfers completed */
  int wrong_recovered; /* recovered balance != full replay */
  int wrong_after;     /* balance after completing transfers != full replay */
  int negative;
  bool conserved;
  long journal_events;
  long long total, deposits;
};

struct shared {
  std::atomic<long> events;      /* events journaled by the running child */
  std::atomic<long> snapshots;   /* snapshots acknowledged durable */
  std::atomic<long> snap_failed; /* snapshots not taken (queue full or failure) */
  std::atomic<int> phase;        /* 0 recovering, 1 checked and running, 2 failed, 3 done */
  report rep;
};
shared *sh;

[[noreturn]] void die(const std::string &what) {
  std::fprintf(stderr, "caf_bank: %s\n", what.c_str());
  std::fflush(stderr);
  _exit(2);
}

/* ------------------------------------------------------------------------ */
/* The journal: the application's own append-only SQLite table               */
/* ------------------------------------------------------------------------ */

class journal {
public:
  explicit journal(const std::string &path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK)
      die("journal " + path + ": " + sqlite3_errmsg(db_));
    /* WAL + synchronous=NORMAL survives a process crash, which is what this
     * program simulates; the snapshot store itself keeps synchronous=FULL. */
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
         "CREATE TABLE IF NOT EXISTS journal(account INTEGER NOT NULL, seq INTEGER NOT NULL,"
         " kind INTEGER NOT NULL, amount INTEGER NOT NULL, peer INTEGER NOT NULL,"
         " xfer INTEGER NOT NULL, PRIMARY KEY(account, seq));"
         "CREATE INDEX IF NOT EXISTS journal_xfer ON journal(xfer, kind);");
    append_ = prepare("INSERT INTO journal(account, seq, kind, amount, peer, xfer)"
                      " VALUES (?, ?, ?, ?, ?, ?)");
    tail_ = prepare("SELECT seq, kind, amount, xfer FROM journal WHERE account = ? AND seq > ?"
                    " ORDER BY seq");
  }
  ~journal() {
    sqlite3_finalize(append_);
    sqlite3_finalize(tail_);
    sqlite3_close(db_);
  }
  journal(const journal &) = delete;
  journal &operator=(const journal &) = delete;

  /* Appends one event, durable against a process crash on return. */
  void append(int account, std::int64_t seq, int kind, std::int64_t amount, int peer,
              std::int64_t xfer) {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_bind_int(append_, 1, account);
    sqlite3_bind_int64(append_, 2, seq);
    sqlite3_bind_int(append_, 3, kind);
    sqlite3_bind_int64(append_, 4, amount);
    sqlite3_bind_int(append_, 5, peer);
    sqlite3_bind_int64(append_, 6, xfer);
    int rc = sqlite3_step(append_);
    sqlite3_reset(append_);
    if (rc != SQLITE_DONE)
      die(std::string("journal append: ") + sqlite3_errstr(rc));
    sh->events.fetch_add(1);
  }

  /* Calls f(seq, kind, amount, xfer) for each event of `account` after `after`. */
  template <class F> void events_after(int account, std::int64_t after, F f) {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_bind_int(tail_, 1, account);
    sqlite3_bind_int64(tail_, 2, after);
    while (sqlite3_step(tail_) == SQLITE_ROW)
      f(sqlite3_column_int64(tail_, 0), sqlite3_column_int(tail_, 1),
        sqlite3_column_int64(tail_, 2), sqlite3_column_int64(tail_, 3));
    sqlite3_reset(tail_);
  }

  /* Runs a query and calls f(stmt) for each row. */
  template <class F> void query(const char *sql, F f) {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_stmt *s = prepare(sql);
    while (sqlite3_step(s) == SQLITE_ROW)
      f(s);
    sqlite3_finalize(s);
  }

private:
  void exec(const char *sql) {
    char *err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK)
      die(std::string("journal: ") + (err ? err : "?"));
  }
  sqlite3_stmt *prepare(const char *sql) {
    sqlite3_stmt *s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK)
      die(std::string("journal: ") + sqlite3_errmsg(db_));
    return s;
  }
  sqlite3 *db_ = nullptr;
  sqlite3_stmt *append_ = nullptr;
  sqlite3_stmt *tail_ = nullptr;
  std::mutex mu_;
};

/* ------------------------------------------------------------------------ */
/* The account actor                                                         */
/* ------------------------------------------------------------------------ */

struct context {
  journal *j = nullptr;
  std::int64_t snapshot_every = 10;
  snap::executor_ref ex;
  std::vector<caf::actor> accounts;
  std::atomic<long> in_flight{0};
};

const char *const FIRST[] = {"Ada",    "Grace",   "Alan", "Edsger",   "Barbara",
                             "Donald", "Frances", "John", "Margaret", "Niklaus"};
const char *const LAST[] = {"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov",
                            "Knuth",    "Allen",  "Backus", "Hamilton", "Wirth"};

/* The account's state: what the integration snapshots and restores. */
struct account : snap::event_sourced {
  int id = 0;
  context *ctx = nullptr;
  std::int64_t balance = 0;
  std::int64_t recent_xfer[RECENT] = {};
  std::int64_t recent_amount[RECENT] = {};
  std::int64_t events = 0;

  void apply(int kind, std::int64_t amount, std::int64_t xfer) {
    std::int64_t signed_amount = kind == EV_DEBITED ? -amount : amount;
    balance += signed_amount;
    recent_xfer[events % RECENT] = xfer;
    recent_amount[events % RECENT] = signed_amount;
    events++;
  }

  /* Journal first, then apply, then let the integration snapshot if due. */
  void persist(int kind, std::int64_t amount, int peer, std::int64_t xfer) {
    std::int64_t next = seq() + 1;
    ctx->j->append(id, next, kind, amount, peer, xfer);
    apply(kind, amount, xfer);
    persisted(next);
  }

  std::string snapshot_state() const override {
    cJSON *o = cJSON_CreateObject();
    std::string holder = std::string(FIRST[id % 10]) + " " + LAST[(id / 10) % 10];
    cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "holder", holder.c_str());
    cJSON_AddStringToObject(o, "currency", "EUR");
    cJSON_AddNumberToObject(o, "balance", static_cast<double>(balance));
    cJSON_AddNumberToObject(o, "events", static_cast<double>(events));
    cJSON *recent = cJSON_AddArrayToObject(o, "recent");
    for (int i = 0; i < RECENT && i < events; i++) {
      cJSON *e = cJSON_CreateObject();
      cJSON_AddNumberToObject(e, "transfer", static_cast<double>(recent_xfer[i]));
      cJSON_AddNumberToObject(e, "amount", static_cast<double>(recent_amount[i]));
      cJSON_AddStringToObject(e, "memo",
                              recent_amount[i] < 0 ? "outgoing payment" : "incoming payment");
      cJSON_AddItemToArray(recent, e);
    }
    char *text = cJSON_PrintUnformatted(o);
    std::string s(text ? text : "");
    cJSON_free(text);
    cJSON_Delete(o);
    return s;
  }

  void restore(const snap::snapshot &s) override {
    cJSON *o = cJSON_ParseWithLength(s.text().data(), s.text().size());
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "balance");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "events");
    const cJSON *recent = cJSON_GetObjectItemCaseSensitive(o, "recent");
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(n) || !cJSON_IsArray(recent)) {
      cJSON_Delete(o);
      throw std::runtime_error("account snapshot without balance, events or recent");
    }
    balance = static_cast<std::int64_t>(b->valuedouble);
    events = static_cast<std::int64_t>(n->valuedouble);
    int i = 0;
    const cJSON *e = nullptr;
    cJSON_ArrayForEach(e, recent) {
      if (i < RECENT) {
        recent_xfer[i] = static_cast<std::int64_t>(
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "transfer")));
        recent_amount[i] = static_cast<std::int64_t>(
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "amount")));
      }
      i++;
    }
    cJSON_Delete(o);
  }

  std::int64_t replay(std::int64_t after) override {
    std::int64_t last = after;
    ctx->j->events_after(id, after,
                         [&](std::int64_t seq, int kind, std::int64_t amount, std::int64_t xfer) {
                           apply(kind, amount, xfer);
                           last = seq;
                         });
    return last;
  }

  void snapshot_saved(std::int64_t, const snap_meta &) override { sh->snapshots.fetch_add(1); }
  void snapshot_failed(std::int64_t, const snap::status &) override {
    sh->snap_failed.fetch_add(1);
  }
};

caf::behavior account_actor(caf::stateful_actor<account> *self, int id, context *ctx) {
  account &st = self->state;
  st.id = id;
  st.ctx = ctx;
  char pid[32];
  std::snprintf(pid, sizeof pid, "account-%04d", id);
  return st.recover(self, {ctx->ex, pid, ctx->snapshot_every}, [self, ctx] {
    return caf::behavior{
        [self, ctx](deposit_atom, std::int64_t amount, std::int64_t xfer) {
          self->state.persist(EV_DEPOSITED, amount, -1, xfer);
          ctx->in_flight--;
        },
        [self, ctx](transfer_atom, int to, std::int64_t amount, std::int64_t xfer) {
          if (self->state.balance >= amount) { /* otherwise refused: nothing journaled */
            self->state.persist(EV_DEBITED, amount, to, xfer);
            ctx->in_flight++;
            self->send(ctx->accounts[static_cast<std::size_t>(to)], credit_atom::value,
                       self->state.id, amount, xfer);
          }
          ctx->in_flight--;
        },
        [self, ctx](credit_atom, int from, std::int64_t amount, std::int64_t xfer) {
          self->state.persist(EV_CREDITED, amount, from, xfer);
          ctx->in_flight--;
        },
        [self](get_atom) {
          const account &a = self->state;
          return caf::make_message(balance_atom::value, a.id, a.balance, a.replayed(),
                                   a.recovered_from(), a.recovered_stages());
        }};
  });
}

/* ------------------------------------------------------------------------ */
/* One cycle, in a child process                                             */
/* ------------------------------------------------------------------------ */

struct balances {
  std::vector<std::int64_t> of;
  int failures = 0;
};

/* Asks every account for its balance; an account that stopped (its recovery
 * failed) answers with a down message instead. */
balances ask_all(caf::scoped_actor &me, context &ctx, report *rep) {
  balances b;
  b.of.assign(ctx.accounts.size(), 0);
  for (const caf::actor &a : ctx.accounts)
    me->send(a, get_atom::value);
  std::size_t answers = 0;
  me->receive_while([&] { return answers < ctx.accounts.size(); })(
      [&](balance_atom, int id, std::int64_t balance, std::int64_t replayed, std::int64_t from,
          unsigned stages) {
        b.of[static_cast<std::size_t>(id)] = balance;
        if (rep) {
          rep->replayed += replayed;
          rep->from_snapshots += from >= 0;
          if (from >= 0 && rep->with_snapshot < 0)
            rep->with_snapshot = id;
          rep->sealed_snapshots += (stages & (SNAP_STAGE_COMPRESSED | SNAP_STAGE_ENCRYPTED)) ==
                                   (SNAP_STAGE_COMPRESSED | SNAP_STAGE_ENCRYPTED);
        }
        answers++;
      },
      [&](caf::down_msg &d) {
        if (b.failures++ < 5)
          std::fprintf(stderr, "caf_bank: an account stopped: %s\n",
                       me->system().render(d.reason).c_str());
        answers++;
      });
  return b;
}

/* The balances a replay of the whole journal from event 0 gives. */
std::vector<std::int64_t> full_replay(journal &j, std::size_t n, long long *deposits,
                                      long *events) {
  std::vector<std::int64_t> bal(n, 0);
  *deposits = 0;
  *events = 0;
  j.query("SELECT account, kind, amount FROM journal ORDER BY account, seq", [&](sqlite3_stmt *s) {
    auto a = static_cast<std::size_t>(sqlite3_column_int(s, 0));
    int kind = sqlite3_column_int(s, 1);
    std::int64_t amount = sqlite3_column_int64(s, 2);
    if (a < n)
      bal[a] += kind == EV_DEBITED ? -amount : amount;
    if (kind == EV_DEPOSITED)
      *deposits += amount;
    (*events)++;
  });
  return bal;
}

int count_wrong(const std::vector<std::int64_t> &got, const std::vector<std::int64_t> &want,
                const char *when) {
  int wrong = 0;
  for (std::size_t i = 0; i < got.size(); i++)
    if (got[i] != want[i] && wrong++ < 5)
      std::fprintf(stderr, "caf_bank: account %zu %s: %lld, journal replay %lld\n", i, when,
                   static_cast<long long>(got[i]), static_cast<long long>(want[i]));
  return wrong;
}

std::uint64_t rng_state;
std::uint64_t next_rand() { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

/* Recovers, checks, and (unless `last`) runs random transfers until killed. */
/* Opens the store with `wrong_config` (another key) and spawns account `id`,
 * which has a snapshot, on it with a message already waiting: the account
 * must stop with the authentication failure and never answer. Returns
 * whether it did. */
bool wrong_key_stops(caf::actor_system &system, journal &j, const std::string &wrong_config,
                     int id) {
  if (id < 0) {
    std::printf("  wrong key: no account had a snapshot to try it on\n");
    return false;
  }
  snap::plugin wrong = snap::plugin::open(wrong_config);
  context ctx;
  ctx.j = &j;
  ctx.ex = wrong.executor();
  bool stopped = false;
  {
    caf::scoped_actor me{system};
    caf::actor a = system.spawn(account_actor, id, &ctx);
    me->monitor(a);
    me->send(a, get_atom::value);
    bool done = false;
    me->receive_while([&] { return !done; })(
        [&](caf::down_msg &d) {
          stopped = d.reason.category() == snap::error_category() &&
                    d.reason.code() == static_cast<std::uint8_t>(-SNAP_EAUTH);
          std::printf("  wrong key: the account stopped with \"%s\"\n",
                      system.render(d.reason).c_str());
          done = true;
        },
        [&](balance_atom, int, std::int64_t balance, std::int64_t, std::int64_t, unsigned) {
          std::printf("  wrong key: the account RAN with balance %lld\n",
                      static_cast<long long>(balance));
          done = true;
        });
  }
  system.await_all_actors_done(); /* before `wrong` (and its executor) goes */
  return stopped;
}

[[noreturn]] void run_cycle(const std::string &config, const std::string &wrong_config,
                            const std::string &journal_path, int accounts,
                            std::int64_t snapshot_every, int cycle, bool last) {
  report &rep = sh->rep;
  rep = report{};
  rep.with_snapshot = -1;
  journal j(journal_path);
  int status = 0;
  {
    caf::actor_system_config cfg;
    snap::add_error_category(cfg);
    caf::actor_system system{cfg};
    snap::plugin plugin = snap::plugin::open(config);
    context ctx;
    ctx.j = &j;
    ctx.ex = plugin.executor();
    ctx.snapshot_every = snapshot_every;
    {
      caf::scoped_actor me{system};
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < accounts; i++) {
        ctx.accounts.push_back(system.spawn(account_actor, i, &ctx));
        me->monitor(ctx.accounts.back());
      }
      balances rec = ask_all(me, ctx, &rep);
      rep.recovery_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rep.load_failures = rec.failures;

      long long deposits = 0;
      long events = 0;
      rep.wrong_recovered =
          count_wrong(rec.of, full_replay(j, ctx.accounts.size(), &deposits, &events), "recovered");

      /* Complete the transfers the crash cut in half: debited, never credited. */
      std::int64_t max_xfer = 0;
      j.query("SELECT d.account, d.peer, d.amount, d.xfer FROM journal d WHERE d.kind = 2 AND"
              " NOT EXISTS (SELECT 1 FROM journal c WHERE c.xfer = d.xfer AND c.kind = 3)"
              " ORDER BY d.xfer",
              [&](sqlite3_stmt *s) {
                int from = sqlite3_column_int(s, 0), to = sqlite3_column_int(s, 1);
                ctx.in_flight++;
                me->send(ctx.accounts[static_cast<std::size_t>(to)], credit_atom::value, from,
                         static_cast<std::int64_t>(sqlite3_column_int64(s, 2)),
                         static_cast<std::int64_t>(sqlite3_column_int64(s, 3)));
                rep.completed++;
              });
      j.query("SELECT COALESCE(MAX(xfer), 0) FROM journal",
              [&](sqlite3_stmt *s) { max_xfer = sqlite3_column_int64(s, 0); });
      if (events == 0) /* a new bank: everyone opens an account with a deposit */
        for (int i = 0; i < accounts; i++) {
          ctx.in_flight++;
          me->send(ctx.accounts[static_cast<std::size_t>(i)], deposit_atom::value, INITIAL_DEPOSIT,
                   ++max_xfer);
        }
      /* Same sender, same receiver: each answer follows the credits sent before it. */
      balances after = ask_all(me, ctx, nullptr);
      std::vector<std::int64_t> want =
          full_replay(j, ctx.accounts.size(), &rep.deposits, &rep.journal_events);
      rep.wrong_after = count_wrong(after.of, want, "after completing transfers");
      rep.total = 0;
      for (std::int64_t b : after.of) {
        rep.total += b;
        rep.negative += b < 0;
      }
      rep.conserved = rep.total == rep.deposits;
      bool ok = !rep.load_failures && !after.failures && !rep.wrong_recovered && !rep.wrong_after &&
                !rep.negative && rep.conserved;
      sh->phase = ok ? (last ? 3 : 1) : 2;
      status = ok ? 0 : 1;

      if (ok && !last) {
        /* Random transfers until the parent's SIGKILL. */
        rng_state = 0x5eed2026u + static_cast<std::uint64_t>(cycle) * 7919u;
        for (;;) {
          while (ctx.in_flight.load() > MAX_IN_FLIGHT)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
          std::uint64_t r = next_rand();
          int from = static_cast<int>(r % static_cast<std::uint64_t>(accounts));
          int to = static_cast<int>((r >> 20) % static_cast<std::uint64_t>(accounts));
          std::int64_t amount = 1 + static_cast<std::int64_t>((r >> 40) % 300);
          ctx.in_flight++;
          if (r % 10 == 0 || from == to)
            caf::anon_send(ctx.accounts[static_cast<std::size_t>(from)], deposit_atom::value,
                           amount, ++max_xfer);
          else
            caf::anon_send(ctx.accounts[static_cast<std::size_t>(from)], transfer_atom::value, to,
                           amount, ++max_xfer);
        }
      }
      for (const caf::actor &a : ctx.accounts)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    /* Order matters: every actor done, then the executor drained (its
     * completions still message live mailboxes), then the system. */
    system.await_all_actors_done();
    if (last && status == 0 && !wrong_key_stops(system, j, wrong_config, rep.with_snapshot)) {
      sh->phase = 2;
      status = 1;
    }
    plugin = snap::plugin();
  }
  std::fflush(stdout);
  _exit(status);
}

bool write_key_file(const std::string &path) {
  unsigned char key[32];
  char hex[65];
  randombytes_buf(key, sizeof key);
  sodium_bin2hex(hex, sizeof hex, key, sizeof key);
  sodium_memzero(key, sizeof key);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    return false;
  ssize_t w = write(fd, hex, 64);
  sodium_memzero(hex, sizeof hex);
  close(fd);
  return w == 64;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

int main(int argc, char **argv) {
  int accounts = 1000, cycles = 3;
  long events_per_cycle = 20000, snapshot_every = 10;
  std::string dir = ".";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if ((a == "--accounts" || a == "--cycles" || a == "--events" || a == "--snapshot-every") &&
        i + 1 < argc) {
      long v = std::strtol(argv[++i], nullptr, 10);
      if (v < 1 || v > 100000000L) {
        std::fprintf(stderr, "caf_bank: %s needs a positive number\n", a.c_str());
        return 2;
      }
      if (a == "--accounts")
        accounts = static_cast<int>(v);
      else if (a == "--cycles")
        cycles = static_cast<int>(v);
      else if (a == "--snapshot-every")
        snapshot_every = v;
      else
        events_per_cycle = v;
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: caf_bank [--accounts N] [--cycles N] [--events N] "
                           "[--snapshot-every N] [scratch-dir]\n");
      return 2;
    } else {
      dir = a;
    }
  }
  if (sodium_init() < 0)
    die("libsodium failed to initialise");
  const std::string key_path = dir + "/snapshot.key", wrong_key_path = dir + "/wrong.key",
                    snap_path = dir + "/snapshots.db", journal_path = dir + "/journal.db";
  for (const std::string &k : {key_path, wrong_key_path})
    if (!write_key_file(k))
      die("cannot write " + k + ": " + std::strerror(errno));
  auto config_with = [&](const std::string &key) {
    return R"({"backend": "sqlite", "config": {"path": ")" + snap_path +
           R"(", "keep": 2, "synchronous": "full"},
          "options": {"compression": "zlib", "compression_level": 6,
                      "encryption": {"key_file": ")" +
           key + R"(", "key_version": 1, "context": "caf-bank/local/account-snapshots/v1"},
                      "required": ["encryption"]},
          "executor": {"queue_capacity": 4096, "max_batch": 256}})";
  };
  const std::string config = config_with(key_path), wrong_config = config_with(wrong_key_path);

  void *mem =
      mmap(nullptr, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    die(std::string("mmap: ") + std::strerror(errno));
  sh = new (mem) shared{};

  std::printf("caf_bank: %d account actors in a CAF actor system, snapshots through snapstore "
              "(zlib + XChaCha20-Poly1305), %d SIGKILL cycles\n",
              accounts, cycles);
  bool all_ok = true;
  for (int cycle = 0; cycle <= cycles; cycle++) {
    bool last = cycle == cycles;
    sh->events = 0;
    sh->phase = 0;
    std::fflush(stdout); /* or the child would print the parent's buffer again */
    pid_t child = fork();
    if (child < 0)
      die(std::string("fork: ") + std::strerror(errno));
    if (child == 0)
      run_cycle(config, wrong_config, journal_path, accounts, snapshot_every, cycle, last);
    /* Wait for the checks, then (unless last) for enough events, then kill. */
    double deadline = now_s() + 120;
    int wstatus = 0;
    bool exited = false;
    while (!exited) {
      if (waitpid(child, &wstatus, WNOHANG) == child) {
        exited = true;
        break;
      }
      int phase = sh->phase.load();
      if (phase == 1 && sh->events.load() >= events_per_cycle)
        break;
      if (now_s() > deadline) {
        std::fprintf(stderr, "caf_bank: cycle %d did not finish in time\n", cycle);
        kill(child, SIGKILL);
        waitpid(child, &wstatus, 0);
        return 1;
      }
      usleep(2000);
    }
    if (!exited) {
      kill(child, SIGKILL);
      waitpid(child, &wstatus, 0);
    }
    const report &r = sh->rep;
    bool ok = sh->phase.load() == (last ? 3 : 1) &&
              (last ? WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0
                    : WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
    all_ok = all_ok && ok;
    std::printf(
        "  %s %d: recovered %d accounts in %.3f s (%d from snapshots, %d of them "
        "compressed+encrypted, %ld journal events replayed, %d half-done transfers "
        "completed); balances %s against a full replay of %ld events (%d wrong after "
        "recovery, %d wrong after completing the transfers); money %s "
        "(%lld = deposits %lld)%s\n",
        cycle == 0 ? "start" : "restart", cycle, accounts, r.recovery_s, r.from_snapshots,
        r.sealed_snapshots, r.replayed, r.completed,
        r.wrong_recovered || r.wrong_after ? "WRONG" : "correct", r.journal_events,
        r.wrong_recovered, r.wrong_after, r.conserved ? "conserved" : "NOT CONSERVED", r.total, r.deposits,
        last ? "; exited cleanly" : (ok ? "; then ran until SIGKILL" : "; FAILED (see above)"));
    if (r.load_failures)
      std::printf("    %d accounts stopped because their recovery failed\n", r.load_failures);
    if (!ok)
      break;
  }
  std::printf("  snapshots                %ld acknowledged, %ld not taken (queue full)\n",
              sh->snapshots.load(), sh->snap_failed.load());
  std::printf("caf_bank: %s\n", all_ok ? "OK" : "FAILED");
  return all_ok ? 0 : 1;
}
