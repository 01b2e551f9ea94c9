/*
 * bank_demo: event-sourced bank accounts on a small actor system, snapshotted
 * through snapstore's plugin layer, crashed with SIGKILL and recovered.
 *
 *  - Each account is an actor with a mailbox; a pool of dispatcher threads
 *    runs the actors that have mail, one message at a time per actor.
 *  - Commands come from a seeded generator (deposits and transfers). An actor
 *    first appends its event to the journal (its own SQLite file, written
 *    here with the sqlite3 API: the journal is not part of snapstore), then
 *    applies it. A transfer is a two-step saga: the payer journals "debited"
 *    and sends "credit" to the payee, which journals "credited".
 *  - Every SNAPSHOT_EVERY events an account saves its state through the
 *    plugin's executor (sqlite backend, synchronous=full, zlib, encryption
 *    with a key file this program generates).
 *  - A child process runs the system and is killed with SIGKILL mid-run. The
 *    parent then recovers every account from its latest snapshot plus the
 *    journal events after it, completes transfers the crash cut in half, and
 *    checks the balances against an independent replay of the whole journal
 *    and against conservation of money. It exits non-zero on any mismatch.
 *
 * Usage: bank_demo [scratch-dir]   (default: the current directory)
 */
#define _GNU_SOURCE /* memmem() */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snapstore.h"

#define ACCOUNTS 1000
#define DISPATCHERS 4
#define SNAPSHOT_EVERY 20
#define INITIAL_DEPOSIT 1000
#define KILL_AFTER_EVENTS 60000 /* journaled events before the crash */
#define MAX_IN_FLIGHT 4000      /* messages queued before the generator waits */
#define RECENT 12               /* entries of history kept in the state */
#define SEED 0x5eed2026u

enum { EV_DEPOSITED = 1, EV_DEBITED = 2, EV_CREDITED = 3 };
enum { MSG_DEPOSIT = 1, MSG_TRANSFER = 2, MSG_CREDIT = 3 };

static const char *FIRST[] = {"Ada",    "Grace",   "Alan", "Edsger",   "Barbara",
                              "Donald", "Frances", "John", "Margaret", "Niklaus"};
static const char *LAST[] = {"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov",
                             "Knuth",    "Allen",  "Backus", "Hamilton", "Wirth"};

/* Counters the child shares with the parent (they survive the SIGKILL). */
typedef struct shared {
  atomic_long events;
  atomic_long snapshots;   /* saves acknowledged with SNAP_OK */
  atomic_long snap_failed; /* saves that failed or found the queue full */
  atomic_long state_bytes; /* state bytes of acknowledged saves */
  atomic_long stored_bytes;
  atomic_long rejected; /* transfers refused for lack of funds */
  /* The child's store metrics, published twice-buffered: slot metrics_seq % 2
   * is complete, so a SIGKILL in the middle of a copy leaves the other intact. */
  atomic_long metrics_seq;
  snap_metrics metrics[2];
  long acked_at[2];       /* `snapshots` when metrics[i] was copied */
  double published_at[2]; /* and the time, CLOCK_MONOTONIC seconds */
} shared;

static shared *stats;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bank_demo: %s: %s (%s)\n", what, snap_strerror(rc), snap_error_message());
  _exit(2);
}

/* ------------------------------------------------------------------------ */
/* The journal                                                               */
/* ------------------------------------------------------------------------ */

typedef struct journal {
  sqlite3 *db;
  sqlite3_stmt *append;
  pthread_mutex_t mu;
} journal;

static void journal_open(journal *j, const char *path) {
  if (sqlite3_open(path, &j->db) != SQLITE_OK) {
    fprintf(stderr, "bank_demo: journal %s: %s\n", path, sqlite3_errmsg(j->db));
    _exit(2);
  }
  /* WAL with synchronous=NORMAL survives a process crash, which is what the
   * demo simulates; the snapshot store itself keeps synchronous=FULL. */
  const char *ddl = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=5000;"
                    "CREATE TABLE IF NOT EXISTS journal(account INTEGER NOT NULL,"
                    " seq INTEGER NOT NULL, kind INTEGER NOT NULL, amount INTEGER NOT NULL,"
                    " peer INTEGER NOT NULL, xfer INTEGER NOT NULL,"
                    " PRIMARY KEY(account, seq));"
                    "CREATE INDEX IF NOT EXISTS journal_xfer ON journal(xfer, kind);";
  char *err = NULL;
  if (sqlite3_exec(j->db, ddl, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "bank_demo: journal schema: %s\n", err);
    _exit(2);
  }
  sqlite3_prepare_v2(j->db,
                     "INSERT INTO journal(account, seq, kind, amount, peer, xfer)"
                     " VALUES (?, ?, ?, ?, ?, ?)",
                     -1, &j->append, NULL);
  pthread_mutex_init(&j->mu, NULL);
}

static void journal_close(journal *j) {
  sqlite3_finalize(j->append);
  sqlite3_close(j->db);
  pthread_mutex_destroy(&j->mu);
}

/* Appends one event, durable against a process crash when it returns. */
static void journal_append(journal *j, int account, int64_t seq, int kind, int64_t amount, int peer,
                           int64_t xfer) {
  pthread_mutex_lock(&j->mu);
  sqlite3_stmt *s = j->append;
  sqlite3_bind_int(s, 1, account);
  sqlite3_bind_int64(s, 2, seq);
  sqlite3_bind_int(s, 3, kind);
  sqlite3_bind_int64(s, 4, amount);
  sqlite3_bind_int(s, 5, peer);
  sqlite3_bind_int64(s, 6, xfer);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  pthread_mutex_unlock(&j->mu);
  if (rc != SQLITE_DONE) {
    fprintf(stderr, "bank_demo: journal append: %s\n", sqlite3_errstr(rc));
    _exit(2);
  }
  atomic_fetch_add(&stats->events, 1);
}

/* ------------------------------------------------------------------------ */
/* Accounts: state and event application                                     */
/* ------------------------------------------------------------------------ */

typedef struct account {
  int id;
  int64_t seq; /* last event applied */
  int64_t balance;
  int64_t recent_xfer[RECENT];
  int64_t recent_amount[RECENT];
  int recent_n;
} account;

static void apply(account *a, int64_t seq, int kind, int64_t amount, int64_t xfer) {
  a->seq = seq;
  a->balance += kind == EV_DEBITED ? -amount : amount;
  int i = a->recent_n++ % RECENT;
  a->recent_xfer[i] = xfer;
  a->recent_amount[i] = kind == EV_DEBITED ? -amount : amount;
}

static void holder_name(int id, char *out, size_t n) {
  snprintf(out, n, "%s %s", FIRST[id % 10], LAST[(id / 10) % 10]);
}

static char *state_json(const account *a) {
  char holder[64];
  holder_name(a->id, holder, sizeof holder);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "id", a->id);
  cJSON_AddStringToObject(o, "holder", holder);
  cJSON_AddStringToObject(o, "currency", "EUR");
  cJSON_AddNumberToObject(o, "balance", (double)a->balance);
  cJSON_AddNumberToObject(o, "seq", (double)a->seq);
  cJSON_AddNumberToObject(o, "events", a->recent_n);
  cJSON *recent = cJSON_AddArrayToObject(o, "recent");
  int n = a->recent_n < RECENT ? a->recent_n : RECENT;
  for (int i = 0; i < n; i++) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "transfer", (double)a->recent_xfer[i]);
    cJSON_AddNumberToObject(e, "amount", (double)a->recent_amount[i]);
    cJSON_AddStringToObject(e, "memo",
                            a->recent_amount[i] < 0 ? "outgoing payment" : "incoming payment");
    cJSON_AddItemToArray(recent, e);
  }
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

/* ------------------------------------------------------------------------ */
/* The actor system                                                          */
/* ------------------------------------------------------------------------ */

typedef struct msg {
  struct msg *next;
  int type;
  int64_t amount;
  int peer;
  int64_t xfer;
} msg;

typedef struct actor {
  account acct;
  pthread_mutex_t mu; /* guards the mailbox and `scheduled` */
  msg *head, *tail;
  bool scheduled; /* in the run queue or being run: at most one dispatcher at a time */
  struct actor *next_ready;
  char pid[32];
} actor;

typedef struct system {
  actor *actors;
  journal *j;
  snap_executor *ex;
  pthread_mutex_t mu; /* the run queue */
  pthread_cond_t cv;
  actor *ready_head, *ready_tail;
  atomic_long in_flight;
} actor_system;

static actor_system sys;

static void schedule(actor *a) {
  pthread_mutex_lock(&sys.mu);
  a->next_ready = NULL;
  if (sys.ready_tail)
    sys.ready_tail->next_ready = a;
  else
    sys.ready_head = a;
  sys.ready_tail = a;
  pthread_cond_signal(&sys.cv);
  pthread_mutex_unlock(&sys.mu);
}

static void tell(int to, int type, int64_t amount, int peer, int64_t xfer) {
  actor *a = &sys.actors[to];
  msg *m = malloc(sizeof *m);
  if (!m)
    abort(); /* the demo has no graceful answer to OOM */
  *m = (msg){NULL, type, amount, peer, xfer};
  atomic_fetch_add(&sys.in_flight, 1);
  pthread_mutex_lock(&a->mu);
  if (a->tail)
    a->tail->next = m;
  else
    a->head = m;
  a->tail = m;
  bool wake = !a->scheduled;
  a->scheduled = true;
  pthread_mutex_unlock(&a->mu);
  if (wake)
    schedule(a);
}

static void snapshot_done(void *ud, snap_result *r) {
  (void)ud;
  if (r->status == SNAP_OK) {
    atomic_fetch_add(&stats->snapshots, 1);
    atomic_fetch_add(&stats->state_bytes, (long)r->meta.state_len);
    atomic_fetch_add(&stats->stored_bytes, (long)r->meta.stored_len);
  } else {
    atomic_fetch_add(&stats->snap_failed, 1);
  }
}

static void maybe_snapshot(actor *a) {
  if (a->acct.seq % SNAPSHOT_EVERY != 0)
    return;
  char *state = state_json(&a->acct);
  snap_save_req r = {a->pid,        a->acct.seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state,
                     strlen(state), NULL};
  snap_request rq = {.kind = SNAP_REQUEST_SAVE, .save = r, .callback = snapshot_done};
  /* A snapshot only shortens recovery: if the store falls behind, skip it. */
  int rc = snap_executor_submit(sys.ex, &rq, 100);
  if (rc != SNAP_OK)
    atomic_fetch_add(&stats->snap_failed, 1);
  cJSON_free(state);
}

static void persist(actor *a, int kind, int64_t amount, int peer, int64_t xfer) {
  int64_t seq = a->acct.seq + 1;
  journal_append(sys.j, a->acct.id, seq, kind, amount, peer, xfer);
  apply(&a->acct, seq, kind, amount, xfer);
  maybe_snapshot(a);
}

static void receive(actor *a, const msg *m) {
  switch (m->type) {
  case MSG_DEPOSIT:
    persist(a, EV_DEPOSITED, m->amount, -1, m->xfer);
    break;
  case MSG_TRANSFER:
    if (a->acct.balance < m->amount) {
      atomic_fetch_add(&stats->rejected, 1);
      break;
    }
    persist(a, EV_DEBITED, m->amount, m->peer, m->xfer);
    tell(m->peer, MSG_CREDIT, m->amount, a->acct.id, m->xfer);
    break;
  case MSG_CREDIT:
    persist(a, EV_CREDITED, m->amount, m->peer, m->xfer);
    break;
  }
}

static void *dispatcher(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&sys.mu);
    while (!sys.ready_head)
      pthread_cond_wait(&sys.cv, &sys.mu);
    actor *a = sys.ready_head;
    sys.ready_head = a->next_ready;
    if (!sys.ready_head)
      sys.ready_tail = NULL;
    pthread_mutex_unlock(&sys.mu);

    /* A bounded run per turn keeps one busy account from starving the rest. */
    for (int i = 0; i < 16; i++) {
      pthread_mutex_lock(&a->mu);
      msg *m = a->head;
      if (m) {
        a->head = m->next;
        if (!a->head)
          a->tail = NULL;
      }
      pthread_mutex_unlock(&a->mu);
      if (!m)
        break;
      receive(a, m);
      free(m);
      atomic_fetch_sub(&sys.in_flight, 1);
    }
    pthread_mutex_lock(&a->mu);
    bool more = a->head != NULL;
    a->scheduled = more;
    pthread_mutex_unlock(&a->mu);
    if (more)
      schedule(a);
  }
  return NULL;
}

static uint64_t rng = SEED;
static uint64_t next_rand(void) { /* xorshift64*: deterministic across runs */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

/* Copies the store's metrics where the parent can read them after the crash. */
static void publish_metrics(const snap_store *st) {
  long next = atomic_load(&stats->metrics_seq) + 1;
  snap_store_metrics(st, &stats->metrics[next % 2]);
  stats->acked_at[next % 2] = atomic_load(&stats->snapshots);
  stats->published_at[next % 2] = now_s();
  atomic_store(&stats->metrics_seq, next);
}

/* The child: runs the system until the parent kills it. */
static void run_system(const char *config, const char *journal_path) {
  journal j;
  journal_open(&j, journal_path);
  snap_plugin *plugin;
  int rc = snap_plugin_open(&plugin, config, NULL);
  if (rc)
    die("open the snapshot store", rc);
  sys.j = &j;
  sys.ex = snap_plugin_executor(plugin);
  sys.actors = calloc(ACCOUNTS, sizeof *sys.actors);
  pthread_mutex_init(&sys.mu, NULL);
  pthread_cond_init(&sys.cv, NULL);
  for (int i = 0; i < ACCOUNTS; i++) {
    actor *a = &sys.actors[i];
    a->acct.id = i;
    pthread_mutex_init(&a->mu, NULL);
    snprintf(a->pid, sizeof a->pid, "account-%04d", i);
  }
  pthread_t t[DISPATCHERS];
  for (int i = 0; i < DISPATCHERS; i++)
    pthread_create(&t[i], NULL, dispatcher, NULL);

  int64_t xfer = 0;
  for (int i = 0; i < ACCOUNTS; i++)
    tell(i, MSG_DEPOSIT, INITIAL_DEPOSIT, -1, ++xfer);
  /* Commands until killed; the bound only matters if the parent never kills. */
  for (long n = 0; n < 100000000L; n++) {
    if (n % 2000 == 0)
      publish_metrics(snap_plugin_store(plugin));
    while (atomic_load(&sys.in_flight) > MAX_IN_FLIGHT) {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
    uint64_t r = next_rand();
    int from = (int)(r % ACCOUNTS);
    int to = (int)((r >> 20) % ACCOUNTS);
    int64_t amount = 1 + (int64_t)((r >> 40) % 300);
    if (r % 10 == 0 || from == to)
      tell(from, MSG_DEPOSIT, amount, -1, ++xfer);
    else
      tell(from, MSG_TRANSFER, amount, to, ++xfer);
  }
  for (;;)
    pause();
}

/* ------------------------------------------------------------------------ */
/* Recovery and verification (the parent)                                    */
/* ------------------------------------------------------------------------ */

typedef struct recovered {
  int64_t balance, seq, snap_seq;
  bool from_snapshot;
  bool done;
  int status;
} recovered;

static recovered *rec;
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_cv = PTHREAD_COND_INITIALIZER;
static int rec_pending;

static void loaded(void *ud, snap_result *r) {
  recovered *a = ud;
  a->status = r->status;
  if (r->status == SNAP_OK && r->snapshot) {
    cJSON *doc = NULL;
    if (snap_snapshot_to_json(r->snapshot, &doc) == SNAP_OK) {
      const cJSON *bal = cJSON_GetObjectItemCaseSensitive(doc, "balance");
      a->balance = (int64_t)cJSON_GetNumberValue(bal);
      a->seq = a->snap_seq = r->snapshot->seq;
      a->from_snapshot = true;
      cJSON_Delete(doc);
    } else {
      a->status = SNAP_EFORMAT;
    }
  }
  snap_snapshot_free(r->snapshot);
  pthread_mutex_lock(&rec_mu);
  a->done = true;
  rec_pending--;
  pthread_cond_broadcast(&rec_cv);
  pthread_mutex_unlock(&rec_mu);
}

/* Whether `needle` occurs anywhere in the file. */
static bool file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  size_t nl = strlen(needle), cap = 1 << 20, keep = 0;
  char *buf = malloc(cap + nl);
  bool found = false;
  for (;;) {
    size_t got = fread(buf + keep, 1, cap, f);
    size_t have = keep + got;
    if (have >= nl && memmem(buf, have, needle, nl)) {
      found = true;
      break;
    }
    if (got == 0)
      break;
    keep = have < nl - 1 ? have : nl - 1;
    memmove(buf, buf + have - keep, keep);
  }
  free(buf);
  fclose(f);
  return found;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static int write_key_file(const char *path) {
  uint8_t key[32];
  char hex[65];
  randombytes_buf(key, sizeof key);
  sodium_bin2hex(hex, sizeof hex, key, sizeof key);
  sodium_memzero(key, sizeof key);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    return -1;
  ssize_t w = write(fd, hex, 64);
  sodium_memzero(hex, sizeof hex);
  close(fd);
  return w == 64 ? 0 : -1;
}

/* A latency quantile in readable units. */
static const char *latency(const snap_histogram *h, double q, char *buf, size_t cap) {
  double us = snap_histogram_quantile(h, q);
  if (us >= 1000)
    snprintf(buf, cap, "%.1f ms", us / 1000);
  else
    snprintf(buf, cap, "%.0f us", us);
  return buf;
}

static uint64_t failures(const snap_metrics *m, int op) {
  uint64_t n = 0;
  for (int i = 1; i < SNAP_METRICS_STATUSES; i++)
    n += m->ops[op][i];
  return n;
}

/* The store's own metrics: the run (as last published before the crash) and
 * the recovery. The killed process published its metrics every 2,000
 * commands, so they count fewer saves than were acknowledged in all: the
 * line says when they were copied and how many were acknowledged then. */
static void print_metrics(long slot, double killed_at, const snap_metrics *rec_m) {
  char a[32], b[32], c[32], d[32];
  const snap_metrics *run = &stats->metrics[slot];
  /* The executor's commits (one transaction of saves each) and, apart, the
   * time saves waited in its queue before one. */
  static const snap_histogram none;
  const snap_series *cs = NULL, *ws = NULL;
  (void)snap_metrics_series(run, "snapstore_executor_commit_seconds", &cs);
  (void)snap_metrics_series(run, "snapstore_executor_queue_wait_seconds", &ws);
  const snap_histogram *cl = cs ? &cs->hist : &none, *wl = ws ? &ws->hist : &none;
  const snap_histogram *ll = &rec_m->latency[SNAP_OP_LOAD];
  printf("  store metrics, run       %" PRIu64 " saves ok, %" PRIu64 " failed, in %" PRIu64
         " transactions (last published %.0f ms\n"
         "                           before the SIGKILL, when %ld of the %ld snapshots above were "
         "acknowledged)\n",
         run->ops[SNAP_OP_SAVE][0], failures(run, SNAP_OP_SAVE), run->ops[SNAP_OP_BATCH][0],
         (killed_at - stats->published_at[slot]) * 1000, stats->acked_at[slot],
         atomic_load(&stats->snapshots));
  printf("  store metrics, executor  commit p50 %s, p99 %s; queue wait before a commit p50 %s, "
         "p99 %s\n",
         latency(cl, 0.50, a, sizeof a), latency(cl, 0.99, b, sizeof b),
         latency(wl, 0.50, c, sizeof c), latency(wl, 0.99, d, sizeof d));
  printf("  store metrics, recovery  %" PRIu64 " loads ok, %" PRIu64 " failed; load p50 %s, p99 %s"
         "\n",
         rec_m->ops[SNAP_OP_LOAD][0], failures(rec_m, SNAP_OP_LOAD), latency(ll, 0.50, a, sizeof a),
         latency(ll, 0.99, b, sizeof b));
  uint64_t raw = run->state_bytes[SNAP_OP_SAVE], stored = run->body_bytes[SNAP_OP_SAVE];
  printf("  store metrics, bytes     %" PRIu64 " of state saved as %" PRIu64
         " stored: compression saved %.0f %%; %" PRIu64 " old snapshots pruned\n",
         raw, stored, raw ? 100.0 * (1.0 - (double)stored / (double)raw) : 0.0, run->pruned);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  if (sodium_init() < 0) {
    fprintf(stderr, "bank_demo: libsodium failed to initialise\n");
    return 2;
  }
  char key_path[4096], snap_path[4096], wal_path[4200], journal_path[4096], config[16384];
  snprintf(key_path, sizeof key_path, "%s/snapshot.key", dir);
  snprintf(snap_path, sizeof snap_path, "%s/snapshots.db", dir);
  snprintf(wal_path, sizeof wal_path, "%s-wal", snap_path);
  snprintf(journal_path, sizeof journal_path, "%s/journal.db", dir);
  if (write_key_file(key_path) != 0) {
    fprintf(stderr, "bank_demo: cannot write %s: %s\n", key_path, strerror(errno));
    return 2;
  }
  snprintf(config, sizeof config,
           "{\"backend\": \"sqlite\","
           " \"config\": {\"path\": \"%s\", \"keep\": 2, \"synchronous\": \"full\"},"
           " \"options\": {\"compression\": \"zlib\", \"compression_level\": 6,"
           "  \"encryption\": {\"key_file\": \"%s\", \"key_version\": 1,"
           "   \"context\": \"bank-demo/local/account-snapshots/v1\"},"
           "  \"required\": [\"encryption\"]},"
           " \"executor\": {\"queue_capacity\": 4096, \"max_batch\": 256}}",
           snap_path, key_path);

  stats = mmap(NULL, sizeof *stats, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (stats == MAP_FAILED) {
    perror("bank_demo: mmap");
    return 2;
  }
  memset(stats, 0, sizeof *stats);

  /* ---- run, then crash ---- */
  double t0 = now_s();
  pid_t child = fork();
  if (child < 0) {
    perror("bank_demo: fork");
    return 2;
  }
  if (child == 0)
    run_system(config, journal_path);
  int wstatus;
  while (atomic_load(&stats->events) < KILL_AFTER_EVENTS) {
    if (waitpid(child, &wstatus, WNOHANG) == child) {
      fprintf(stderr, "bank_demo: the system stopped before the crash (status %d)\n", wstatus);
      return 1;
    }
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  double killed_at = now_s();
  kill(child, SIGKILL);
  waitpid(child, &wstatus, 0);
  double run_s = now_s() - t0;
  if (!WIFSIGNALED(wstatus) || WTERMSIG(wstatus) != SIGKILL) {
    fprintf(stderr, "bank_demo: the child was not killed as planned\n");
    return 1;
  }

  /* ---- restart: recover every account ---- */
  double r0 = now_s();
  journal j;
  journal_open(&j, journal_path);
  snap_plugin *plugin;
  int rc = snap_plugin_open(&plugin, config, NULL);
  if (rc)
    die("reopen the snapshot store", rc);
  snap_executor *ex = snap_plugin_executor(plugin);
  rec = calloc(ACCOUNTS, sizeof *rec);
  char pid[32];
  rec_pending = ACCOUNTS;
  for (int i = 0; i < ACCOUNTS; i++) {
    snprintf(pid, sizeof pid, "account-%04d", i);
    snap_request rq = {.kind = SNAP_REQUEST_LOAD, .pid = pid, .callback = loaded, .ud = &rec[i]};
    if ((rc = snap_executor_submit(ex, &rq, -1)))
      die("queue a snapshot load", rc);
  }
  pthread_mutex_lock(&rec_mu);
  while (rec_pending > 0)
    pthread_cond_wait(&rec_cv, &rec_mu);
  pthread_mutex_unlock(&rec_mu);
  int from_snapshots = 0;
  for (int i = 0; i < ACCOUNTS; i++) {
    if (rec[i].status != SNAP_OK)
      die("load a snapshot", rec[i].status);
    from_snapshots += rec[i].from_snapshot;
  }
  /* Replay each account's events after its snapshot. */
  sqlite3_stmt *tail;
  sqlite3_prepare_v2(j.db,
                     "SELECT seq, kind, amount FROM journal WHERE account = ? AND seq > ?"
                     " ORDER BY seq",
                     -1, &tail, NULL);
  long replayed = 0;
  for (int i = 0; i < ACCOUNTS; i++) {
    sqlite3_bind_int(tail, 1, i);
    sqlite3_bind_int64(tail, 2, rec[i].seq);
    while (sqlite3_step(tail) == SQLITE_ROW) {
      int64_t seq = sqlite3_column_int64(tail, 0);
      int kind = sqlite3_column_int(tail, 1);
      int64_t amount = sqlite3_column_int64(tail, 2);
      rec[i].balance += kind == EV_DEBITED ? -amount : amount;
      rec[i].seq = seq;
      replayed++;
    }
    sqlite3_reset(tail);
  }
  sqlite3_finalize(tail);
  /* Complete the transfers the crash cut in half: debited, never credited. */
  sqlite3_stmt *open_xfers;
  sqlite3_prepare_v2(j.db,
                     "SELECT d.account, d.peer, d.amount, d.xfer FROM journal d"
                     " WHERE d.kind = 2 AND NOT EXISTS (SELECT 1 FROM journal c"
                     "  WHERE c.xfer = d.xfer AND c.kind = 3) ORDER BY d.xfer",
                     -1, &open_xfers, NULL);
  int completed = 0;
  while (sqlite3_step(open_xfers) == SQLITE_ROW) {
    int from = sqlite3_column_int(open_xfers, 0);
    int to = sqlite3_column_int(open_xfers, 1);
    int64_t amount = sqlite3_column_int64(open_xfers, 2);
    int64_t xfer = sqlite3_column_int64(open_xfers, 3);
    journal_append(&j, to, rec[to].seq + 1, EV_CREDITED, amount, from, xfer);
    rec[to].seq++;
    rec[to].balance += amount;
    completed++;
  }
  sqlite3_finalize(open_xfers);
  double recovery_s = now_s() - r0;

  /* ---- verify against an independent replay of the whole journal ---- */
  int64_t *replay = calloc(ACCOUNTS, sizeof *replay);
  int64_t deposits = 0;
  long events = 0;
  sqlite3_stmt *all;
  sqlite3_prepare_v2(j.db, "SELECT account, kind, amount FROM journal ORDER BY account, seq", -1,
                     &all, NULL);
  while (sqlite3_step(all) == SQLITE_ROW) {
    int a = sqlite3_column_int(all, 0);
    int kind = sqlite3_column_int(all, 1);
    int64_t amount = sqlite3_column_int64(all, 2);
    replay[a] += kind == EV_DEBITED ? -amount : amount;
    if (kind == EV_DEPOSITED)
      deposits += amount;
    events++;
  }
  sqlite3_finalize(all);
  int wrong = 0;
  int64_t total = 0;
  for (int i = 0; i < ACCOUNTS; i++) {
    total += rec[i].balance;
    if (rec[i].balance != replay[i] || rec[i].balance < 0) {
      if (wrong++ < 10)
        fprintf(stderr, "account %d: recovered %" PRId64 ", journal replay %" PRId64 "\n", i,
                rec[i].balance, replay[i]);
    }
  }
  bool conserved = total == deposits;

  /* ---- the database must not contain plaintext ----
   * Scanned while the store is open, so that the WAL is still there. */
  char probe[64];
  holder_name(42, probe, sizeof probe);
  bool leak = false;
  const char *needles[] = {probe, "Lovelace", "holder", "incoming payment"};
  for (size_t i = 0; i < sizeof needles / sizeof *needles; i++)
    leak |= file_contains(snap_path, needles[i]) || file_contains(wal_path, needles[i]);
  long db_bytes = file_size(snap_path), wal_bytes = file_size(wal_path);

  snap_metrics recovery_metrics;
  snap_store_metrics(snap_plugin_store(plugin), &recovery_metrics);
  snap_plugin_close(plugin);
  journal_close(&j);

  long st_bytes = atomic_load(&stats->state_bytes), sd_bytes = atomic_load(&stats->stored_bytes);
  printf("bank_demo: event-sourced accounts on %d dispatcher threads, crashed and recovered\n",
         DISPATCHERS);
  printf("  accounts                 %d\n", ACCOUNTS);
  printf("  events journaled         %ld (run %.2f s, then SIGKILL)\n", events, run_s);
  printf("  transfers refused        %ld (insufficient funds)\n", atomic_load(&stats->rejected));
  printf("  snapshots taken          %ld acknowledged, %ld skipped or failed\n",
         atomic_load(&stats->snapshots), atomic_load(&stats->snap_failed));
  printf("  snapshot db on disk      %ld bytes (db %ld + wal %ld)\n", db_bytes + wal_bytes,
         db_bytes, wal_bytes);
  printf("  compression ratio        %.2f (%ld state bytes -> %ld stored, encrypted)\n",
         sd_bytes ? (double)st_bytes / (double)sd_bytes : 0.0, st_bytes, sd_bytes);
  printf("  recovery                 %.3f s: %d accounts from snapshots, %ld journal events "
         "replayed, %d half-done transfers completed\n",
         recovery_s, from_snapshots, replayed, completed);
  printf("  balances                 %s (%d wrong of %d; replay of the journal from event 0)\n",
         wrong ? "WRONG" : "all correct", wrong, ACCOUNTS);
  printf("  money conserved          %s (total %" PRId64 " = deposits %" PRId64 ")\n",
         conserved ? "yes" : "NO", total, deposits);
  printf("  plaintext in snapshot db %s (searched db and wal for \"%s\", \"Lovelace\", ...)\n",
         leak ? "FOUND" : "none", probe);
  print_metrics(atomic_load(&stats->metrics_seq) % 2, killed_at, &recovery_metrics);
  free(replay);
  free(rec);
  bool ok = !wrong && conserved && !leak && from_snapshots > 0;
  printf("bank_demo: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
