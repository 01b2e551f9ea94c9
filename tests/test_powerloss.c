/* Power loss, not only process death. The sqlite backend runs over the
 * crash-simulating VFS (tests/support/crashvfs.h), made SQLite's default
 * inside this process, so the backend needs no change. Each round runs a few
 * seeded operations — single saves, batched saves, deletes — on a store with
 * keep = 3 (so saves prune in their own transaction), cuts the power at a
 * random write, sync or truncation (or after the last operation), then
 * reopens the files through the real VFS and checks:
 *
 *  - the rows are exactly the model's state after some prefix of the round's
 *    operations: with synchronous = full, every operation that returned
 *    SNAP_OK, plus the interrupted one or not; with synchronous = normal, any
 *    prefix (acknowledged transactions may vanish, and how many is counted);
 *  - every row loads through the store byte for byte;
 *  - PRAGMA integrity_check is "ok";
 *  - the store accepts a new save.
 *
 * SNAP_POWERCUTS sets the number of rounds per mode (default 2000; `make
 * soak` runs more). A failure names the round and its seed.
 *
 * Envelope keys (envelope_cuts()): power cuts while new shred units are
 * saved, their keys beside the data or in a separate key store, leave no
 * body without its key. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "crashvfs.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

#define NPIDS 5
#define KEEP 3
#define MAXROWS 64
#define MAXOPS 6
#define MAXBATCH 6

/* ---- the model ------------------------------------------------------------ */

typedef struct model {
  int n[NPIDS];
  int64_t seq[NPIDS][MAXROWS]; /* ascending */
} model;

static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void pid_name(char *out, size_t cap, int p) { snprintf(out, cap, "powercut/%d", p); }

/* The state of (p, seq): JSON, 30 bytes to about 6 KiB (bodies of one page
 * and of several, overflow pages included). */
static size_t state_of(int p, int64_t seq, char *out, size_t cap) {
  uint64_t h = (uint64_t)seq * 0x9e3779b97f4a7c15ull ^ (uint64_t)p * 0xc2b2ae3d27d4eb4full;
  h ^= h >> 29;
  size_t pad = (size_t)(h % 6000);
  size_t n = (size_t)snprintf(out, cap, "{\"p\":%d,\"s\":%" PRId64 ",\"d\":\"", p, seq);
  for (size_t i = 0; i < pad && n + 3 < cap; i++)
    out[n++] = (char)('a' + (h >> (i % 40)) % 26);
  out[n++] = '"';
  out[n++] = '}';
  out[n] = 0;
  return n;
}

static void model_add(model *m, int p, int64_t seq) {
  cr_assert_lt(m->n[p], MAXROWS);
  m->seq[p][m->n[p]++] = seq; /* seqs only grow */
}

static void model_prune(model *m, int p) {
  if (m->n[p] > KEEP) {
    int drop = m->n[p] - KEEP;
    memmove(m->seq[p], m->seq[p] + drop, (size_t)KEEP * sizeof m->seq[p][0]);
    m->n[p] -= drop;
  }
}

static void model_delete(model *m, int p, int64_t to) {
  int k = 0;
  for (int i = 0; i < m->n[p]; i++)
    if (m->seq[p][i] > to)
      m->seq[p][k++] = m->seq[p][i];
  m->n[p] = k;
}

static bool model_eq(const model *a, const model *b) {
  for (int p = 0; p < NPIDS; p++) {
    if (a->n[p] != b->n[p])
      return false;
    for (int i = 0; i < a->n[p]; i++)
      if (a->seq[p][i] != b->seq[p][i])
        return false;
  }
  return true;
}

static void model_print(const char *what, const model *m) {
  fprintf(stderr, "  %s:", what);
  for (int p = 0; p < NPIDS; p++) {
    fprintf(stderr, " [%d:", p);
    for (int i = 0; i < m->n[p]; i++)
      fprintf(stderr, " %" PRId64, m->seq[p][i]);
    fprintf(stderr, "]");
  }
  fprintf(stderr, "\n");
}

/* ---- operations ------------------------------------------------------------ */

enum op_kind { OP_SAVE, OP_BATCH, OP_DELETE };

typedef struct op {
  enum op_kind kind;
  int n;
  int pid[MAXBATCH];
  int64_t seq[MAXBATCH]; /* for OP_DELETE: seq[0] is to_seq */
} op;

static void plan(op *o, int64_t next_seq[NPIDS], const model *m) {
  uint64_t r = rnd() % 10;
  o->kind = r < 5 ? OP_SAVE : r < 8 ? OP_BATCH : OP_DELETE;
  if (o->kind == OP_DELETE) {
    int p = (int)(rnd() % NPIDS);
    o->n = 1;
    o->pid[0] = p;
    o->seq[0] = m->n[p] ? m->seq[p][m->n[p] - 1] - 1 - (int64_t)(rnd() % 2) : 0;
    return;
  }
  o->n = o->kind == OP_SAVE ? 1 : 2 + (int)(rnd() % (MAXBATCH - 1));
  for (int i = 0; i < o->n; i++) {
    int p = (int)(rnd() % NPIDS);
    o->pid[i] = p;
    o->seq[i] = next_seq[p]++;
  }
}

static void apply(model *m, const op *o) {
  if (o->kind == OP_DELETE) {
    model_delete(m, o->pid[0], o->seq[0]);
    return;
  }
  for (int i = 0; i < o->n; i++)
    model_add(m, o->pid[i], o->seq[i]);
  for (int i = 0; i < o->n; i++)
    model_prune(m, o->pid[i]);
}

static char bufs[MAXBATCH][7000];

static int run(snap_store *st, const op *o) {
  char pid[MAXBATCH][32];
  if (o->kind == OP_DELETE) {
    pid_name(pid[0], sizeof pid[0], o->pid[0]);
    return snap_delete(st, pid[0], o->seq[0]);
  }
  snap_save_req req[MAXBATCH];
  for (int i = 0; i < o->n; i++) {
    pid_name(pid[i], sizeof pid[i], o->pid[i]);
    size_t len = state_of(o->pid[i], o->seq[i], bufs[i], sizeof bufs[i]);
    req[i] = (snap_save_req){pid[i], o->seq[i], SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON,
                             bufs[i],    len,       NULL};
  }
  if (o->kind == OP_SAVE)
    return snap_save(st, req[0].pid, req[0].seq, req[0].format, req[0].state, req[0].len, NULL,
                     NULL);
  int status[MAXBATCH];
  return snap_save_batch(st, req, (size_t)o->n, status, NULL);
}

/* ---- checking the files through the real VFS ------------------------------ */

static void read_rows(const char *path, model *out) {
  memset(out, 0, sizeof *out);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK, "%s",
               sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "%s", sqlite3_errmsg(db));
  cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok", "integrity_check");
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_prepare_v2(db,
                                  "SELECT pid, seq FROM snapshots WHERE pid LIKE 'powercut/%' "
                                  "ORDER BY pid, seq",
                                  -1, &q, NULL),
               SQLITE_OK, "%s", sqlite3_errmsg(db));
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    int p = atoi((const char *)sqlite3_column_text(q, 0) + strlen("powercut/"));
    cr_assert(p >= 0 && p < NPIDS);
    model_add(out, p, sqlite3_column_int64(q, 1));
  }
  cr_assert_eq(rc, SQLITE_DONE, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

static snap_store *open_store(const char *path, const char *sync) {
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"keep\": %d, \"synchronous\": \"%s\"}", path,
           KEEP, sync);
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK, "%s",
               snap_error_message());
  return st;
}

static void check_loads(snap_store *st, const model *m, int round) {
  char pid[32], want[7000];
  for (int p = 0; p < NPIDS; p++) {
    pid_name(pid, sizeof pid, p);
    for (int i = 0; i < m->n[p]; i++) {
      int64_t seq = m->seq[p][i];
      snap_criteria c = {seq, seq, INT64_MIN, INT64_MAX};
      snap_snapshot *s = NULL;
      int rc = snap_load(st, pid, &c, NULL, &s);
      cr_assert_eq(rc, SNAP_OK, "round %d: load %s seq %" PRId64 ": %s", round, pid, seq,
                   snap_error_message());
      cr_assert_not_null(s, "round %d: %s seq %" PRId64 " is listed but does not load", round, pid,
                         seq);
      size_t len = state_of(p, seq, want, sizeof want);
      cr_assert(s->len == len && memcmp(s->data, want, len) == 0,
                "round %d: %s seq %" PRId64 " loads other bytes", round, pid, seq);
      cr_assert_eq(s->skipped, 0u);
      snap_snapshot_free(s);
    }
  }
}

static unsigned rounds_from_env(void) {
  const char *e = getenv("SNAP_POWERCUTS");
  long v = e ? strtol(e, NULL, 10) : 0;
  return v > 0 ? (unsigned)v : 2000;
}

typedef struct figures {
  unsigned rounds, mid_op, idle, inflight_committed;
  unsigned acked, lost, max_lost, rounds_losing;
} figures;

static void power_cuts(const char *sync, uint64_t base_seed, figures *fig) {
  const bool full = strcmp(sync, "full") == 0;
  /* tmpfs when there is one: the reopened store's own fsyncs (the probe
   * saves, the checkpoints at close) cost nothing there, and the simulated
   * power cuts do not depend on the medium. */
  char shm[] = "/dev/shm/snap-powercut-XXXXXX";
  char *dir = mkdtemp(shm) ? strdup(shm) : st_tmpdir();
  cr_assert_not_null(dir);
  char *path = st_join(dir, "powercut.db");
  cr_assert_eq(crashvfs_install(false), SQLITE_OK);
  snap_store *st = open_store(path, sync);
  cr_assert_eq(snap_save(st, "probe", 0, SNAP_FORMAT_JSON, "0", 1, NULL, NULL), SNAP_OK);
  snap_store_close(st);

  model cur;
  memset(&cur, 0, sizeof cur);
  int64_t next_seq[NPIDS] = {0};
  double ops_per_op = 12;
  memset(fig, 0, sizeof *fig);
  const unsigned rounds = rounds_from_env();

  for (unsigned round = 1; round <= rounds; round++) {
    const uint64_t seed = base_seed + round;
    rng_state = seed;
    op ops[MAXOPS];
    model states[MAXOPS + 1];
    const int m = 1 + (int)(rnd() % MAXOPS);
    states[0] = cur;
    for (int k = 0; k < m; k++) {
      plan(&ops[k], next_seq, &states[k]);
      states[k + 1] = states[k];
      apply(&states[k + 1], &ops[k]);
    }
    const uint64_t window = (uint64_t)(ops_per_op * m * 1.25) + 2;
    const uint64_t target = 1 + rnd() % window;

    cr_assert_eq(crashvfs_install(true), SQLITE_OK);
    crashvfs_reset();
    st = open_store(path, sync);
    crashvfs_arm(target, seed ^ 0x5eed);
    int done = 0; /* operations that returned SNAP_OK */
    uint64_t ops_done = 0; /* writes, syncs and truncations they made */
    for (; done < m; done++) {
      int rc = run(st, &ops[done]);
      if (rc == SNAP_OK)
        ops_done = crashvfs_ops();
      if (rc != SNAP_OK) {
        cr_assert(crashvfs_crashed(), "round %u (seed %" PRIu64 "): op %d failed without a crash: %s",
                  round, seed, done, snap_error_message());
        break;
      }
    }
    const bool interrupted = done < m;
    /* The window of cut points follows the cost of an operation. */
    if (done > 0)
      ops_per_op = 0.8 * ops_per_op + 0.2 * ((double)ops_done / done);
    if (!interrupted) {
      crashvfs_cut(); /* the power goes while the store is idle */
      fig->idle++;
    } else {
      fig->mid_op++;
    }
    snap_store_close(st); /* every write fails now: nothing reaches the files */
    crashvfs_reset();
    cr_assert_eq(crashvfs_install(false), SQLITE_OK);

    /* Power is back: the real VFS, a fresh process's view of the files. */
    model got;
    read_rows(path, &got);
    int hi = interrupted ? done + 1 : m; /* newest state that may be there */
    int lo = full ? done : 0;            /* oldest state that may be there */
    int match = -1;
    for (int j = hi; j >= lo && match < 0; j--)
      if (model_eq(&got, &states[j]))
        match = j;
    if (match < 0) {
      fprintf(stderr, "round %u (seed %" PRIu64 ", synchronous=%s): %d of %d operations acknowledged\n",
              round, seed, sync, done, m);
      model_print("found", &got);
      for (int j = lo; j <= hi; j++) {
        char what[32];
        snprintf(what, sizeof what, "after %d ops", j);
        model_print(what, &states[j]);
      }
      cr_assert_fail("round %u (seed %" PRIu64 "): the files match no allowed state", round, seed);
    }
    if (match > done)
      fig->inflight_committed++;
    fig->acked += (unsigned)done;
    if (match < done) {
      unsigned lost = (unsigned)(done - match);
      fig->lost += lost;
      fig->rounds_losing++;
      if (lost > fig->max_lost)
        fig->max_lost = lost;
    }
    cur = states[match];

    st = open_store(path, sync);
    check_loads(st, &cur, (int)round);
    int rc = snap_save(st, "probe", round, SNAP_FORMAT_JSON, "1", 1, NULL, NULL);
    cr_assert_eq(rc, SNAP_OK, "round %u: the store refuses a new save: %s", round,
                 snap_error_message());
    snap_store_close(st);
    fig->rounds++;
  }
  free(path);
  st_rmtree(dir);
  free(dir);
}

static void print_figures(const char *sync, const figures *f) {
  uint64_t kept, dropped, torn;
  crashvfs_stats(&kept, &dropped, &torn);
  fprintf(stderr,
          "powerloss synchronous=%s: %u power cuts (%u during an operation, %u idle); %u "
          "operations acknowledged; interrupted operation found committed %u times; "
          "acknowledged operations lost: %u in %u rounds (at most %u at once); unsynced sectors "
          "kept %" PRIu64 ", dropped %" PRIu64 ", torn %" PRIu64 "\n",
          sync, f->rounds, f->mid_op, f->idle, f->acked, f->inflight_committed, f->lost,
          f->rounds_losing, f->max_lost, kept, dropped, torn);
}

Test(powerloss, synchronous_full_keeps_every_acknowledged_save) {
  figures f;
  power_cuts("full", 0x10000000ull, &f);
  print_figures("full", &f);
  cr_assert_eq(f.lost, 0u, "synchronous=full lost acknowledged operations");
  cr_assert_gt(f.mid_op, 0u);
  uint64_t kept, dropped, torn;
  crashvfs_stats(&kept, &dropped, &torn);
  cr_assert(dropped > 0 && torn > 0, "the power cuts never dropped or tore a sector");
}

Test(powerloss, synchronous_normal_may_lose_the_newest_but_never_corrupts) {
  figures f;
  power_cuts("normal", 0x20000000ull, &f);
  print_figures("normal", &f);
  cr_assert_gt(f.mid_op, 0u);
}

/* ---- envelope keys: no body outlives its data key ------------------------ */

/* Rows of the data file whose unit has no live key, `keys` attached when the
 * key table is a separate file (NULL: in the data file). */
static int64_t bodies_without_key(const char *data, const char *keys) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(data, &db), SQLITE_OK);
  char sql[1400];
  if (keys) {
    snprintf(sql, sizeof sql, "ATTACH '%s' AS k", keys);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  }
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM main.snapshots WHERE pid NOT IN (SELECT unit FROM "
           "%s.snapshots_keys WHERE wrapped IS NOT NULL)",
           keys ? "k" : "main");
  sqlite3_stmt *q = NULL;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  cr_assert_eq(sqlite3_close(db), SQLITE_OK);
  return n;
}

/* Power cuts while new units are saved in envelope mode: whatever survives,
 * no body is left without its key (a key may be left without its body). With
 * synchronous = full a unit's key is synced before its body's transaction
 * begins, so a body that survives has a durable key; were the order ever
 * reversed, a cut between the two would leave a body without its key. (With
 * normal, this simulation almost never keeps an unsynced commit at all, so
 * rounds there would show little.) */
static void envelope_cuts(bool keystore, const char *sync, uint64_t base_seed, unsigned rounds) {
  char shm[] = "/dev/shm/snap-envcut-XXXXXX";
  char *dir = mkdtemp(shm) ? strdup(shm) : st_tmpdir();
  cr_assert_not_null(dir);
  char *data = st_join(dir, "data.db"), *keys = keystore ? st_join(dir, "keys.db") : NULL;
  char cfg[4096], ks[2048] = "";
  if (keystore)
    snprintf(ks, sizeof ks,
             ", \"envelope\": {\"keystore\": {\"path\": \"%s\", \"synchronous\": \"%s\"}}", keys,
             sync);
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"keep\": 0, \"synchronous\": \"%s\"%s}", data,
           sync, ks);
  snap_keyring *kr = NULL;
  uint8_t key[SNAP_KEY_BYTES];
  memset(key, 0x5a, sizeof key);
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, key, sizeof key), SNAP_OK);
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "acme/test/powerloss/v1"), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  /* Both files' schemas first, through the real VFS. */
  cr_assert_eq(crashvfs_install(false), SQLITE_OK);
  snap_store *first = NULL;
  cr_assert_eq(snap_store_open_backend(&first, snap_backend_sqlite(), cfg), SNAP_OK);
  cr_assert_eq(snap_store_set_default_options(first, o), SNAP_OK);
  cr_assert_eq(snap_save(first, "probe", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  snap_store_close(first);
  unsigned mid_op = 0, saved = 0;
  for (unsigned round = 0; round < rounds; round++) {
    rng_state = base_seed + round;
    cr_assert_eq(crashvfs_install(true), SQLITE_OK);
    snap_store *st = NULL;
    cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_OK, "%s",
                 snap_error_message());
    cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
    crashvfs_arm(1 + rnd() % 48, base_seed + round);
    for (int i = 0; i < 8 && !crashvfs_crashed(); i++) {
      char pid[32];
      snprintf(pid, sizeof pid, "unit-%04u-%d", round, i);
      if (snap_save(st, pid, 1, SNAP_FORMAT_JSON, "{\"n\":1}", 7, NULL, NULL) == SNAP_OK)
        saved++;
    }
    if (crashvfs_crashed())
      mid_op++;
    else
      crashvfs_cut();
    snap_store_close(st);
    crashvfs_reset();
    cr_assert_eq(crashvfs_install(false), SQLITE_OK);
    int64_t orphans = bodies_without_key(data, keys);
    cr_assert_eq(orphans, 0,
                 "round %u (seed %" PRIu64 ", %s, synchronous=%s): %" PRId64
                 " bodies survived a power cut without their key",
                 round, base_seed + round, keystore ? "separate key store" : "keys in the data",
                 sync, orphans);
  }
  cr_assert_gt(mid_op, 0u);
  fprintf(stderr,
          "powerloss envelope (%s, synchronous=%s): %u power cuts (%u during a save), %u saves "
          "acknowledged, no body without its key\n",
          keystore ? "separate key store" : "keys in the data", sync, rounds, mid_op, saved);
  snap_options_free(o);
  snap_keyring_free(kr);
  free(data);
  free(keys);
  st_rmtree(dir);
  free(dir);
}

Test(powerloss, no_body_outlives_its_data_key_in_a_separate_key_store) {
  envelope_cuts(true, "full", 0x31000000ull, 250);
}

Test(powerloss, no_body_outlives_its_data_key_beside_the_data) {
  envelope_cuts(false, "full", 0x32000000ull, 250);
}

/* ---- a hot journal left by a cut ------------------------------------------ */

/* A cut while a transaction of a rollback-journal database is being written
 * (or while a new database is being created: SQLite at FULL does not sync the
 * directory after deleting the journal) can leave a hot journal beside the
 * database. Here, its 28-byte header as such a cut leaves it (magic, 0
 * records, nonce, the original size in pages, sector size 512, page size
 * 4096), padded to one sector. */
static void write_hot_journal(const char *db_path, const char *header_hex) {
  uint8_t j[512] = {0};
  cr_assert_eq(strlen(header_hex), 56);
  for (size_t i = 0; i < 28; i++)
    cr_assert_eq(sscanf(header_hex + 2 * i, "%2hhx", &j[i]), 1);
  char path[4200];
  snprintf(path, sizeof path, "%s-journal", db_path);
  FILE *f = fopen(path, "wb");
  cr_assert(f != NULL, "%s", path);
  cr_assert_eq(fwrite(j, 1, sizeof j, f), sizeof j);
  cr_assert_eq(fclose(f), 0);
}

static void raw_exec_at(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
               sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_close(db), SQLITE_OK);
}

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert(f != NULL, "%s", path);
  cr_assert_eq(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  fclose(f);
  return n;
}

/* The newest seq of `pid` through the store (0: none), failing on an error. */
static int64_t newest_seq(snap_store *st, const char *pid, const char *when) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, pid, NULL, &s);
  cr_assert_eq(rc, SNAP_OK, "load %s: %s", when, snap_error_message());
  int64_t seq = s ? s->seq : 0;
  snap_snapshot_free(s);
  return seq;
}

/* A database whose page 1 holds `PRAGMA journal_mode=WAL` and nothing else,
 * with a hot journal of 0 records: the reader must not read it as immutable
 * (which would never see the table the writer then creates). */
Test(powerloss, a_hot_journal_beside_a_new_wal_database_never_hides_later_saves) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  raw_exec_at(path, "PRAGMA journal_mode=WAL");
  cr_assert_eq(file_size(path), 4096, "the fixture is page 1 only");
  write_hot_journal(path, "d9d505f920a163d7000000005b72502a000000000000020000001000");
  snap_store *st = open_store(path, "full");
  cr_assert_eq(newest_seq(st, "p0", "before the save"), 0);
  cr_assert_eq(snap_save(st, "p0", 1, SNAP_FORMAT_JSON, "{\"n\":1}", 7, NULL, NULL), SNAP_OK,
               "%s", snap_error_message());
  cr_assert_eq(newest_seq(st, "p0", "after the save"), 1, "the load does not see the save");
  snap_store_close(st);
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* The rollback-mode variant: a database holding p0 seq 1 in DELETE mode and
 * a hot journal of another client that crashed. A load after the save of
 * seq 2 must say 2, never the stale 1. */
Test(powerloss, a_hot_journal_of_a_crashed_client_never_makes_a_load_stale) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  snap_store *st = open_store(path, "full");
  cr_assert_eq(snap_save(st, "p0", 1, SNAP_FORMAT_JSON, "{\"n\":1}", 7, NULL, NULL), SNAP_OK,
               "%s", snap_error_message());
  snap_store_close(st);
  raw_exec_at(path, "PRAGMA journal_mode=DELETE");
  /* Page 1, the data table, its unique index, snapstore_meta, its primary
   * key index, the key table (WITHOUT ROWID: one page), the dictionary table
   * and its unique name index, the manifest table and its unique name index,
   * the stream index and the table of removed streams (WITHOUT ROWID). */
  cr_assert_eq(file_size(path), 12 * 4096, "the fixture is 12 pages, as the journal says");
  write_hot_journal(path, "d9d505f920a163d7000000005b72502a0000000c0000020000001000");
  st = open_store(path, "full");
  cr_assert_eq(newest_seq(st, "p0", "before the save"), 1);
  cr_assert_eq(snap_save(st, "p0", 2, SNAP_FORMAT_JSON, "{\"n\":2}", 7, NULL, NULL), SNAP_OK,
               "%s", snap_error_message());
  cr_assert_eq(newest_seq(st, "p0", "after the save"), 2, "a stale read after the save of seq 2");
  snap_store_close(st);
  free(path);
  st_rmtree(dir);
  free(dir);
}
