/* Test helper for tests/cli/snapctl.sh: writes stores with the library, plays
 * a live writer beside snapctl, and damages bodies at rest.
 *
 *   mkstore fill DB NPIDS KEYS KEY1 [KEY2]   mixed formats and stages; KEYS = 0 (plaintext
 *                                            only), 1 (plus key 1), 2 (plus key 2)
 *   mkstore sealed DB NPIDS 1 KEY1           as fill, every body zlib + encrypted under key 1
 *   mkstore churn DB ITER EXPECT             a writer on pids live-0..9: saves new seqs,
 *                                            saves existing seqs again, deletes; writes the
 *                                            rows it left to EXPECT ("pid seq state" lines)
 *   mkstore check DB EXPECT KEY1             the live-* rows are exactly EXPECT's (read
 *                                            with key 1, plaintext accepted)
 *   mkstore uniform DB N FILE KEY1           N pids of one snapshot each, the state in FILE
 *                                            (JSON), zlib + encrypted under key 1, saved in
 *                                            batches: a store to measure snapctl on
 *   mkstore typed DB                         pids typed-0..3 of one snapshot each, stating
 *                                            the manifests bank.Account/1 (two of them),
 *                                            bank.Account/2 and none; typed-0 also
 *                                            carries 3 bytes of metadata
 *   mkstore seed DB PREFIX NPIDS NSEQ        pids PREFIX-0.. with seqs 1..NSEQ, state
 *                                            {"seed":P,"seq":S}, manifest test.Account/1
 *                                            (odd seqs) or /2 (even seqs)
 *   mkstore typedchurn DB ITER EXPECT START  a writer on live-0..9 that already hold seeded
 *                                            seqs 1..START-1, stating test.Account/3: new
 *                                            seqs from START, saves again of any kept seq
 *                                            (seeded ones too), deletes from the oldest;
 *                                            EXPECT as churn's, plus "pid seq -" lines for
 *                                            the seqs it deleted
 *   mkstore migcheck DB EXPECT               after snapctl migrate --to test.Account/3 with
 *                                            tests/upcasters/wrap.c: live-* rows are the
 *                                            writer's (none it deleted came back), every
 *                                            other live-* row is its seed migrated
 *   mkstore damage DB flip PID SEQ           flips a byte in the middle of a body
 *   mkstore damage DB swap PID SEQ PID2 SEQ2 gives (PID, SEQ) the body of (PID2, SEQ2)
 *
 * Stores are opened with keep = 0 and synchronous = normal. Exit 0 on
 * success, 1 on a failed check, 2 on a usage or library error. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapstore.h"

#define LIVE_PIDS 10
#define LIVE_MAX 4096

static int die(const char *what) {
  fprintf(stderr, "mkstore: %s: %s\n", what, snap_error_message());
  return 2;
}

static snap_store *open_db(const char *db) {
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"keep\": 0, \"synchronous\": \"normal\"}", db);
  snap_store *st = NULL;
  if (snap_store_open(&st, "sqlite", cfg) != SNAP_OK)
    return NULL;
  return st;
}

/* A JSON ledger of about n bytes, distinct per (i, seq). */
static size_t ledger(char *buf, size_t n, int i, int seq) {
  size_t len = (size_t)sprintf(buf, "{\"owner\":\"pid-%d\",\"seq\":%d,\"entries\":[", i, seq);
  for (int k = 0; len < n; k++)
    len += (size_t)sprintf(buf + len, "%s{\"id\":%d,\"amount\":%d}", k ? "," : "", k,
                           (i * 31 + seq * 7 + k) % 1000);
  len += (size_t)sprintf(buf + len, "]}");
  return len;
}

static int fill(int argc, char **argv) {
  if (argc < 5 || (atoi(argv[4]) >= 1 && argc < 6))
    return 2;
  int npids = atoi(argv[3]), keys = atoi(argv[4]);
  bool sealed = strcmp(argv[1], "sealed") == 0;
  if (sealed && keys != 1)
    return 2;
  snap_store *st = open_db(argv[2]);
  snap_keyring *k1 = NULL, *k2 = NULL;
  if (!st)
    return die("open");
  if (keys >= 1 && (snap_keyring_new(&k1) || snap_keyring_add_file(k1, 1, argv[5])))
    return die("key 1");
  if (keys >= 2 && (argc < 7 || snap_keyring_new(&k2) || snap_keyring_add_file(k2, 2, argv[6])))
    return die("key 2");
  snap_options *o[6];
  for (int v = 0; v < 6; v++)
    if (snap_options_new(&o[v]))
      return die("options");
  /* 0 plain, 1 zlib, 2 aead key 1, 3 zlib + aead key 1, 4 aead key 2, 5 zlib + aead key 2 */
  for (int v = 1; v < 6; v += 2)
    snap_options_set_compression(o[v], SNAP_COMPRESSION_ZLIB, 6);
  for (int v = 2; v < 6; v++)
    snap_options_set_encryption(o[v], v < 4 ? k1 : k2, "test/snapctl/v1");
  int variants = keys == 0 ? 2 : keys == 1 ? 4 : 6;
  static char state[20000];
  const uint8_t mp[] = {0x83, 0xa1, 'a',  0x01, 0xa1, 'b', 0x92,
                        0xc3, 0xc0, 0xa1, 'c',  0xa2, 'h', 'i'};
  for (int i = 0; i < npids; i++) {
    char pid[64];
    snprintf(pid, sizeof pid, i % 7 == 3 ? "acct \xc3\xa9/%d" : "acct-%05d", i);
    for (int seq = 1; seq <= 3; seq++) {
      int v = sealed ? 3 : (i + seq) % variants;
      bool msgpack = (i + 2 * seq) % 5 == 0;
      size_t len =
          msgpack ? sizeof mp : ledger(state, 300 + (size_t)((i * 37 + seq) % 9000), i, seq);
      int rc = snap_save_at(st, pid, seq, 1600000000000 + (int64_t)i * 1000 + seq,
                            msgpack ? SNAP_FORMAT_MSGPACK : SNAP_FORMAT_JSON,
                            msgpack ? (const void *)mp : state, len, o[v], NULL);
      if (rc)
        return die("save");
    }
  }
  for (int v = 0; v < 6; v++)
    snap_options_free(o[v]);
  snap_store_close(st);
  snap_keyring_free(k1);
  snap_keyring_free(k2);
  return 0;
}

/* The writer's model: the state of each live row it left. */
typedef struct live_row {
  int pid;
  int64_t seq;
  char state[48];
  bool present;
} live_row;

/* A save stating `manifest` (NULL: none). */
static int save_typed(snap_store *st, const char *pid, int64_t seq, const char *state,
                      const char *manifest) {
  snap_save_req r = {pid, seq, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state, strlen(state), NULL};
  snap_save_ext x = {.manifest = manifest};
  return snap_save_ex(st, &r, &x, NULL);
}

static int churn(int argc, char **argv) {
  if (argc < 5)
    return 2;
  long iters = atol(argv[3]);
  snap_store *st = open_db(argv[2]);
  if (!st)
    return die("open");
  static live_row rows[LIVE_PIDS][LIVE_MAX];
  int64_t next[LIVE_PIDS], low[LIVE_PIDS];
  char pid[32];
  for (int p = 0; p < LIVE_PIDS; p++) {
    next[p] = 1;
    low[p] = 1;
  }
  for (long it = 0; it < iters; it++) {
    int p = (int)(it % LIVE_PIDS);
    snprintf(pid, sizeof pid, "live-%d", p);
    int action = (int)((it / LIVE_PIDS) % 4);
    if (next[p] - low[p] < 3 || action == 0 || next[p] >= LIVE_MAX) {
      if (next[p] >= LIVE_MAX)
        break;
      action = 0; /* a new seq */
    }
    int64_t seq = action == 0 ? next[p]++ : action == 3 ? low[p]++ : next[p] - 1 - (it % 2);
    live_row *r = &rows[p][seq];
    if (action == 3) {
      if (snap_delete_one(st, pid, seq))
        return die("delete");
      r->present = false;
      continue;
    }
    /* A new seq, or an existing one saved again with another state. */
    snprintf(r->state, sizeof r->state, "{\"gen\":%ld,\"pid\":%d}", it, p);
    if (snap_save(st, pid, seq, SNAP_FORMAT_JSON, r->state, strlen(r->state), NULL, NULL))
      return die("save");
    r->pid = p;
    r->seq = seq;
    r->present = true;
  }
  FILE *f = fopen(argv[4], "w");
  if (!f)
    return 2;
  for (int p = 0; p < LIVE_PIDS; p++)
    for (int64_t s = 0; s < next[p]; s++)
      if (rows[p][s].present)
        fprintf(f, "live-%d %" PRId64 " %s\n", p, s, rows[p][s].state);
  fclose(f);
  snap_store_close(st);
  return 0;
}

/* One step of typed_churn: a new seq, a newer save of a kept one, or a delete
 * of the oldest. */
static int typed_step(snap_store *st, long it, int64_t *next, int64_t *low, uint64_t *lcg,
                      live_row (*rows)[LIVE_MAX], bool (*deleted)[LIVE_MAX]) {
  int p = (int)(it % LIVE_PIDS);
  int action = next[p] - low[p] < 3 ? 0 : (int)((it / LIVE_PIDS) % 4);
  int64_t seq;
  if (action == 0) {
    seq = next[p]++;
  } else if (action == 3) {
    seq = low[p]++;
  } else {
    *lcg = *lcg * 6364136223846793005u + 1442695040888963407u;
    seq = low[p] + (int64_t)((*lcg >> 33) % (uint64_t)(next[p] - low[p]));
  }
  char pid[32];
  snprintf(pid, sizeof pid, "live-%d", p);
  live_row *r = &rows[p][seq];
  if (action == 3) {
    r->present = false;
    deleted[p][seq] = true;
    return snap_delete_one(st, pid, seq);
  }
  snprintf(r->state, sizeof r->state, "{\"gen\":%ld,\"pid\":%d}", it, p);
  r->present = true;
  return save_typed(st, pid, seq, r->state, "test.Account/3");
}

static int typed_churn(int argc, char **argv) {
  if (argc != 6)
    return 2;
  long iters = atol(argv[3]);
  int64_t start = atoll(argv[5]);
  if (start < 2 || start >= LIVE_MAX)
    return 2;
  snap_store *st = open_db(argv[2]);
  if (!st)
    return die("open");
  static live_row rows[LIVE_PIDS][LIVE_MAX];
  static bool deleted[LIVE_PIDS][LIVE_MAX];
  int64_t next[LIVE_PIDS], low[LIVE_PIDS];
  uint64_t lcg = 1;
  for (int p = 0; p < LIVE_PIDS; p++) {
    next[p] = start;
    low[p] = 1;
  }
  for (long it = 0; it < iters && next[it % LIVE_PIDS] < LIVE_MAX; it++)
    if (typed_step(st, it, next, low, &lcg, rows, deleted))
      return die("save");
  FILE *f = fopen(argv[4], "w");
  if (!f)
    return 2;
  for (int p = 0; p < LIVE_PIDS; p++)
    for (int64_t s = 1; s < LIVE_MAX; s++)
      if (rows[p][s].present)
        fprintf(f, "live-%d %" PRId64 " %s\n", p, s, rows[p][s].state);
      else if (deleted[p][s])
        fprintf(f, "live-%d %" PRId64 " -\n", p, s);
  fclose(f);
  snap_store_close(st);
  return 0;
}

/* Every live-* row of the store must be in EXPECT with its state, and back. */
static int check(int argc, char **argv) {
  if (argc < 5)
    return 2;
  snap_store *st = open_db(argv[2]);
  FILE *f = fopen(argv[3], "r");
  snap_keyring *kr = NULL;
  if (!st || !f || snap_keyring_new(&kr) || snap_keyring_add_file(kr, 1, argv[4]))
    return die("open");
  char pid[64], state[64];
  int64_t seq;
  long expected = 0, bad = 0;
  snap_options *o = NULL;
  snap_options_new(&o);
  snap_options_set_encryption(o, kr, "test/snapctl/v1");
  snap_options_set_accept_unauthenticated(o, true);
  while (fscanf(f, "%63s %" SCNd64 " %63s", pid, &seq, state) == 3) {
    expected++;
    snap_snapshot *s = NULL;
    snap_criteria c = {seq, seq, INT64_MIN, INT64_MAX};
    int rc = snap_load(st, pid, &c, o, &s);
    if (rc || !s || s->len != strlen(state) || memcmp(s->data, state, s->len)) {
      fprintf(stderr, "mkstore: %s %" PRId64 ": expected %s, found %s\n", pid, seq, state,
              rc  ? snap_error_message()
              : s ? (const char *)s->data
                  : "nothing");
      bad++;
    }
    snap_snapshot_free(s);
  }
  fclose(f);
  long found = 0;
  for (int p = 0; p < LIVE_PIDS; p++) {
    snprintf(pid, sizeof pid, "live-%d", p);
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    if (snap_store_list(st, pid, NULL, 0, 100000, false, &page))
      return die("list");
    found += (long)page.n;
    snap_entry_page_dispose(&page);
  }
  if (found != expected) {
    fprintf(stderr, "mkstore: %ld live rows stored, %ld expected (a deleted one came back?)\n",
            found, expected);
    bad++;
  }
  snap_options_free(o);
  snap_store_close(st);
  snap_keyring_free(kr);
  printf("check: %ld rows as the writer left them, %ld problems\n", expected, bad);
  return bad ? 1 : 0;
}

/* The stored body of (pid, seq), copied. */
static int body_of(snap_store *st, const char *pid, int64_t seq, snap_entry_page *page) {
  int rc = snap_store_list(st, pid, pid, seq - 1, 1, true, page);
  if (rc == SNAP_OK && (page->n != 1 || page->entries[0].seq != seq))
    rc = snap_error_set(SNAP_ENOTFOUND, "no row %s/%" PRId64, pid, seq);
  return rc;
}

static int damage(int argc, char **argv) {
  if (argc < 6)
    return 2;
  snap_store *st = open_db(argv[2]);
  if (!st)
    return die("open");
  const char *pid = argv[4];
  int64_t seq = atoll(argv[5]);
  snap_entry_page a = SNAP_ENTRY_PAGE_INIT, b = SNAP_ENTRY_PAGE_INIT;
  if (body_of(st, pid, seq, &a))
    return die("read");
  snap_entry *e = &a.entries[0];
  snap_raw_row row = {pid, seq, e->timestamp, e->body, e->stored_len, 0};
  if (strcmp(argv[3], "flip") == 0) {
    e->body[e->stored_len / 2] ^= 0x20;
  } else if (strcmp(argv[3], "swap") == 0 && argc >= 8) {
    if (body_of(st, argv[6], atoll(argv[7]), &b))
      return die("read");
    row.body = b.entries[0].body;
    row.body_len = b.entries[0].stored_len;
  } else {
    return 2;
  }
  /* put_raw stores any body whose header parses: damage past the header. */
  if (snap_store_put_raw(st, &row, 1))
    return die("write");
  snap_entry_page_dispose(&a);
  snap_entry_page_dispose(&b);
  snap_store_close(st);
  return 0;
}

static int uniform(int argc, char **argv) {
  if (argc < 6)
    return 2;
  long n = atol(argv[3]);
  snap_store *st = open_db(argv[2]);
  snap_keyring *kr = NULL;
  snap_options *o = NULL;
  FILE *f = fopen(argv[4], "rb");
  static char state[1 << 20];
  size_t len = f ? fread(state, 1, sizeof state, f) : 0;
  if (f)
    fclose(f);
  if (!st || len == 0 || snap_keyring_new(&kr) || snap_keyring_add_file(kr, 1, argv[5]) ||
      snap_options_new(&o))
    return die("open");
  snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 6);
  snap_options_set_encryption(o, kr, "test/snapctl/v1");
  enum { BATCH = 500 };
  static char pids[BATCH][32];
  snap_save_req reqs[BATCH];
  int status[BATCH];
  for (long i = 0; i < n; i += BATCH) {
    size_t m = 0;
    for (long j = i; j < n && m < BATCH; j++, m++) {
      snprintf(pids[m], sizeof pids[m], "acct-%07ld", j);
      reqs[m] = (snap_save_req){pids[m], 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state, len, o};
    }
    if (snap_save_batch(st, reqs, m, status, NULL))
      return die("save");
  }
  snap_options_free(o);
  snap_store_close(st);
  snap_keyring_free(kr);
  return 0;
}

static int typed(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: mkstore typed DB\n");
    return 2;
  }
  snap_store *st = open_db(argv[2]);
  if (st == NULL)
    return die("open");
  const char *manifests[4] = {"bank.Account/1", "bank.Account/1", "bank.Account/2", NULL};
  for (int i = 0; i < 4; i++) {
    char pid[16];
    snprintf(pid, sizeof pid, "typed-%d", i);
    snap_save_req r = {pid, 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "{\"n\":1}", 7, NULL};
    snap_save_ext x = {.manifest = manifests[i]};
    if (i == 0) { /* metadata with a NUL byte inside */
      x.metadata = "m\0d";
      x.metadata_len = 3;
    }
    if (snap_save_ex(st, &r, &x, NULL) != SNAP_OK) {
      snap_store_close(st);
      return die("save");
    }
  }
  snap_store_close(st);
  return 0;
}

static int seed(int argc, char **argv) {
  if (argc != 6)
    return 2;
  snap_store *st = open_db(argv[2]);
  if (st == NULL)
    return die("open");
  int npids = atoi(argv[4]), nseq = atoi(argv[5]);
  char pid[64], state[64];
  for (int p = 0; p < npids; p++)
    for (int q = 1; q <= nseq; q++) {
      snprintf(pid, sizeof pid, "%s-%d", argv[3], p);
      snprintf(state, sizeof state, "{\"seed\":%d,\"seq\":%d}", p, q);
      if (save_typed(st, pid, q, state, q % 2 ? "test.Account/1" : "test.Account/2"))
        return die("save");
    }
  snap_store_close(st);
  return 0;
}

/* What one live-* row must be: the writer's state, absent ("-"), or not in
 * EXPECT (NULL): the seed, migrated to test.Account/3. */
static int migcheck_row(const snap_snapshot *s, int p, const char *want) {
  char seeded[160];
  if (want == NULL) {
    int seq = (int)s->seq;
    const char *wrap2 = seq % 2 ? "{\"v\":3,\"was\":{\"v\":2,\"was\":" : "{\"v\":3,\"was\":";
    snprintf(seeded, sizeof seeded, "%s{\"seed\":%d,\"seq\":%d}}%s", wrap2, p, seq,
             seq % 2 ? "}" : "");
    want = seeded;
  }
  bool ok = strcmp(want, "-") != 0 && s->len == strlen(want) &&
            memcmp(s->data, want, s->len) == 0 && s->manifest != NULL &&
            strcmp(s->manifest, "test.Account/3") == 0;
  if (!ok)
    fprintf(stderr, "mkstore: %s %" PRId64 ": expected %s (test.Account/3), found %s (%s)\n",
            s->pid, s->seq, strcmp(want, "-") ? want : "no row (deleted by the writer)",
            (const char *)s->data, s->manifest ? s->manifest : "no manifest");
  return ok ? 0 : 1;
}

static int migcheck(int argc, char **argv) {
  if (argc != 4)
    return 2;
  static char want[LIVE_PIDS][LIVE_MAX][48];
  FILE *f = fopen(argv[3], "r");
  snap_store *st = open_db(argv[2]);
  if (!st || !f)
    return die("open");
  int p;
  int64_t seq;
  char state[48];
  long listed = 0, bad = 0, rows = 0;
  while (fscanf(f, "live-%d %" SCNd64 " %47s\n", &p, &seq, state) == 3)
    if (p >= 0 && p < LIVE_PIDS && seq >= 0 && seq < LIVE_MAX && strcmp(state, "-") != 0) {
      snprintf(want[p][seq], sizeof want[p][seq], "%s", state);
      listed++;
    } else if (p >= 0 && p < LIVE_PIDS && seq >= 0 && seq < LIVE_MAX) {
      snprintf(want[p][seq], sizeof want[p][seq], "-");
    }
  fclose(f);
  for (p = 0; p < LIVE_PIDS; p++) {
    char pid[32];
    snprintf(pid, sizeof pid, "live-%d", p);
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    if (snap_store_list(st, pid, NULL, 0, 100000, false, &page))
      return die("list");
    for (size_t i = 0; i < page.n; i++) {
      snap_snapshot *s = NULL;
      int64_t q = page.entries[i].seq;
      snap_criteria c = {q, q, INT64_MIN, INT64_MAX};
      if (snap_load(st, pid, &c, NULL, &s) || s == NULL || q >= LIVE_MAX) {
        fprintf(stderr, "mkstore: %s %" PRId64 ": %s\n", pid, q, snap_error_message());
        bad++;
      } else {
        bad += migcheck_row(s, p, want[p][q][0] ? want[p][q] : NULL);
        rows += want[p][q][0] && strcmp(want[p][q], "-") != 0;
      }
      snap_snapshot_free(s);
    }
    snap_entry_page_dispose(&page);
  }
  if (rows != listed) {
    fprintf(stderr, "mkstore: %ld of the writer's %ld rows stored\n", rows, listed);
    bad++;
  }
  snap_store_close(st);
  printf("migcheck: %ld rows as the writer left them, %ld problems\n", listed, bad);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr,
            "usage: mkstore fill|sealed|churn|typedchurn|check|migcheck|seed|uniform|damage|"
            "typed ...\n");
    return 2;
  }
  if (strcmp(argv[1], "fill") == 0 || strcmp(argv[1], "sealed") == 0)
    return fill(argc, argv);
  if (strcmp(argv[1], "churn") == 0)
    return churn(argc, argv);
  if (strcmp(argv[1], "typedchurn") == 0)
    return typed_churn(argc, argv);
  if (strcmp(argv[1], "seed") == 0)
    return seed(argc, argv);
  if (strcmp(argv[1], "migcheck") == 0)
    return migcheck(argc, argv);
  if (strcmp(argv[1], "check") == 0)
    return check(argc, argv);
  if (strcmp(argv[1], "uniform") == 0)
    return uniform(argc, argv);
  if (strcmp(argv[1], "damage") == 0)
    return damage(argc, argv);
  if (strcmp(argv[1], "typed") == 0)
    return typed(argc, argv);
  fprintf(stderr, "mkstore: unknown mode '%s'\n", argv[1]);
  return 2;
}
