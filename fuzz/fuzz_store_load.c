/*
 * Loads from a database whose rows were written behind the store's back.
 * The sqlite store's file (in /dev/shm when it exists) is created once by
 * opening the store and saving a snapshot; each input then replaces the rows
 * of the snapshot table through a second connection, with fuzzed bodies
 * (raw bytes, or valid bodies with a byte flipped), seqs and timestamps, and
 * sometimes values of the wrong SQL type. snap_load, snap_load_latest,
 * snap_load_before and snap_delete_matching must then return a snapshot, none,
 * or an error; and what they return must agree with the rows: within the
 * criteria, the youngest match apart from the skipped undecodable ones, with
 * the saved state when the body was a valid one, and a delete removes exactly
 * the matching rows.
 *
 * Input: [read options][row count] then per row
 *   [flags: pid (2 bits), body kind (3 bits), flip, odd SQL type, wide seq]
 *   [seq: 1 or 8 bytes][ts: 1 byte, or 8 more when its top bit is set]
 *   [raw body: length byte + bytes | flip position]
 * then four criteria values, the operations byte and a load_before seq.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_store_rows.h"
#include "snap/store.h"
#include "snap/sys/backend.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char path[300];
static snap_store *store;
static sqlite3 *raw;
static sqlite3_stmt *ins, *count_all, *count_match;

/* Valid bodies (kinds 1..7 of a row), encoded once. */
static snap_buf valid[ROW_KINDS];

static void cleanup(void) {
  sqlite3_finalize(ins);
  sqlite3_finalize(count_all);
  sqlite3_finalize(count_match);
  sqlite3_close(raw);
  snap_store_close(store);
  for (int i = 0; i < ROW_KINDS; i++)
    snap_buf_dispose(&valid[i]);
  char f[340];
  static const char *const suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(f, sizeof f, "%s%s", path, suffix[i]);
    unlink(f);
  }
  rmdir(dir);
}

static void setup_failed(const char *what) {
  fprintf(stderr, "fuzz_store_load: setup: %s: %s %s\n", what, snap_error_message(),
          raw ? sqlite3_errmsg(raw) : "");
  abort();
}

static void init_once(void) {
  if (store)
    return;
  fuzz_keyrings_init();
  /* fuzz/run.sh names a scratch directory it removes even after a crash. */
  const char *base = getenv("SNAP_FUZZ_TMP");
  if (!base || !*base)
    base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(dir, sizeof dir, "%s/snapfuzz-load-XXXXXX", base);
  if (!mkdtemp(dir))
    setup_failed("mkdtemp");
  snprintf(path, sizeof path, "%s/store.db", dir);
  char cfg[512];
  snprintf(cfg, sizeof cfg,
           "{\"path\": \"%s\", \"keep\": 0, \"synchronous\": \"normal\", "
           "\"busy_timeout_ms\": 1000}",
           path);
  if (snap_store_open_backend(&store, snap_backend_sqlite(), cfg) != SNAP_OK)
    setup_failed("open");
  atexit(cleanup);
  /* The first save creates the schema the rows are then written into. */
  if (snap_save(store, "account-42", 1, SNAP_FORMAT_JSON, "{}", 2, NULL, NULL) != SNAP_OK)
    setup_failed("save");
  for (int k = 1; k < ROW_KINDS; k++) {
    const row_body *rb = &row_bodies[k];
    snap_options *o = fuzz_options(rb->sel, (uint8_t)k);
    if (!o || snap_body_encode(fuzz_pids[rb->pid], rb->seq, rb->fmt, rb->state, strlen(rb->state),
                               o, &valid[k], NULL) != SNAP_OK)
      setup_failed("encode");
    snap_options_free(o);
  }
  if (sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    setup_failed("raw open");
  sqlite3_busy_timeout(raw, 1000);
  if (sqlite3_exec(raw, "PRAGMA synchronous = OFF", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(raw,
                         "INSERT OR REPLACE INTO snapshots (pid, seq, ts, body) "
                         "VALUES (?1, ?2, ?3, ?4)",
                         -1, &ins, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(raw, "SELECT count(*) FROM snapshots WHERE pid = ?1", -1, &count_all,
                         NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(raw,
                         "SELECT count(*) FROM snapshots WHERE pid = ?1 AND seq BETWEEN ?2 AND ?3 "
                         "AND ts BETWEEN ?4 AND ?5",
                         -1, &count_match, NULL) != SQLITE_OK)
    setup_failed("prepare");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  init_once();
  return 0;
}

/* The rows as the table holds them (same pid and seq replace each other). */
typedef struct model_row {
  int pid;
  int64_t seq, ts;
  int kind;   /* 0 raw bytes, else the valid body it is */
  int intact; /* a valid body, unflipped */
  int odd;    /* stored with an SQL type other than the schema's */
} model_row;

static model_row rows[MAX_ROWS];
static int nrows;

static int64_t count(sqlite3_stmt *s, int pid, const snap_criteria *c) {
  sqlite3_bind_text(s, 1, fuzz_pids[pid], -1, SQLITE_STATIC);
  if (c) {
    sqlite3_bind_int64(s, 2, c->min_seq);
    sqlite3_bind_int64(s, 3, c->max_seq);
    sqlite3_bind_int64(s, 4, c->min_ts);
    sqlite3_bind_int64(s, 5, c->max_ts);
  }
  int64_t n = -1;
  if (sqlite3_step(s) == SQLITE_ROW)
    n = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  FUZZ_CHECK(n >= 0, "count: %s", sqlite3_errmsg(raw));
  return n;
}

static int matches(const model_row *m, int pid, const snap_criteria *c) {
  return m->pid == pid && m->seq >= c->min_seq && m->seq <= c->max_seq && m->ts >= c->min_ts &&
         m->ts <= c->max_ts;
}

/* Loads never return a row with a negative seq (sequence numbers are never
 * negative, so such a row was not written by the store); deletes do match it. */
static int load_matches(const model_row *m, int pid, const snap_criteria *c) {
  return m->seq >= 0 && matches(m, pid, c);
}

static int pid_has_odd(int pid) {
  for (int i = 0; i < nrows; i++)
    if (rows[i].pid == pid && rows[i].odd)
      return 1;
  return 0;
}

static void write_rows(fuzz_reader *r) {
  nrows = 0;
  FUZZ_CHECK(sqlite3_exec(raw, "BEGIN IMMEDIATE; DELETE FROM snapshots", NULL, NULL, NULL) ==
                 SQLITE_OK,
             "clear: %s", sqlite3_errmsg(raw));
  int n = fuzz_u8(r) % (MAX_ROWS + 1);
  for (int i = 0; i < n; i++) {
    row_spec rs;
    uint8_t raw_body[256];
    size_t raw_len = 0;
    row_read(r, &rs, raw_body, &raw_len);
    const uint8_t *body = raw_body;
    size_t body_len = raw_len;
    uint8_t *flipped = NULL;
    if (rs.kind) {
      body = valid[rs.kind].data;
      body_len = valid[rs.kind].len;
      if (rs.flip && body_len) {
        flipped = malloc(body_len);
        FUZZ_CHECK(flipped != NULL, "out of memory");
        memcpy(flipped, body, body_len);
        flipped[rs.flip_pos % body_len] ^= rs.flip_mask ? rs.flip_mask : 1;
        body = flipped;
      }
    }
    sqlite3_bind_text(ins, 1, fuzz_pids[rs.pid], -1, SQLITE_STATIC);
    switch (rs.odd) {
    case ODD_NONE:
      sqlite3_bind_int64(ins, 2, rs.seq);
      sqlite3_bind_int64(ins, 3, rs.ts);
      sqlite3_bind_blob(ins, 4, body, (int)body_len, SQLITE_STATIC);
      break;
    case ODD_REAL_SEQ:
      sqlite3_bind_double(ins, 2, (double)rs.seq + 0.5);
      sqlite3_bind_int64(ins, 3, rs.ts);
      sqlite3_bind_blob(ins, 4, body, (int)body_len, SQLITE_STATIC);
      break;
    case ODD_TEXT_TS:
      sqlite3_bind_int64(ins, 2, rs.seq);
      sqlite3_bind_text(ins, 3, "yesterday", -1, SQLITE_STATIC);
      sqlite3_bind_blob(ins, 4, body, (int)body_len, SQLITE_STATIC);
      break;
    case ODD_TEXT_BODY:
      sqlite3_bind_int64(ins, 2, rs.seq);
      sqlite3_bind_int64(ins, 3, rs.ts);
      sqlite3_bind_text(ins, 4, (const char *)body, (int)body_len, SQLITE_STATIC);
      break;
    case ODD_EMPTY_BODY:
      sqlite3_bind_int64(ins, 2, rs.seq);
      sqlite3_bind_int64(ins, 3, rs.ts);
      sqlite3_bind_zeroblob(ins, 4, 0);
      break;
    }
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    free(flipped);
    FUZZ_CHECK(rc == SQLITE_DONE, "insert: %s", sqlite3_errmsg(raw));
    model_row m = {rs.pid, rs.seq, rs.ts, rs.kind, rs.kind && !rs.flip, rs.odd != ODD_NONE};
    int replaced = 0;
    /* A text body still compares and loads as the same bytes. */
    if (rs.odd == ODD_TEXT_BODY)
      m.odd = 0;
    for (int j = 0; j < nrows && !m.odd; j++)
      if (!rows[j].odd && rows[j].pid == m.pid && rows[j].seq == m.seq) {
        rows[j] = m;
        replaced = 1;
      }
    if (!replaced)
      rows[nrows++] = m;
  }
  FUZZ_CHECK(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "commit: %s",
             sqlite3_errmsg(raw));
}

/* What a load of `pid` returned, against the rows that were written. */
static void check_load(const char *what, int rc, const snap_snapshot *s, int pid,
                       const snap_criteria *c) {
  FUZZ_CHECK(fuzz_known_code(rc), "%s returned %d", what, rc);
  if (rc != SNAP_OK) {
    FUZZ_CHECK(s == NULL, "%s failed (%d) but returned a snapshot", what, rc);
    FUZZ_CHECK(snap_error_message()[0] != '\0', "%s failed (%d) without a message", what, rc);
    return;
  }
  if (pid_has_odd(pid))
    return; /* rows of the wrong SQL type: anything but a crash is fine */
  int empty = c->min_seq > c->max_seq || c->min_ts > c->max_ts || c->max_seq < 0;
  int nmatch = 0;
  for (int i = 0; i < nrows; i++)
    nmatch += load_matches(&rows[i], pid, c);
  if (s == NULL) {
    FUZZ_CHECK(empty || nmatch == 0, "%s found none of %d matching rows", what, nmatch);
    return;
  }
  FUZZ_CHECK(strcmp(s->pid, fuzz_pids[pid]) == 0, "%s returned pid '%s'", what, s->pid);
  FUZZ_CHECK(s->seq >= c->min_seq && s->seq <= c->max_seq && s->timestamp >= c->min_ts &&
                 s->timestamp <= c->max_ts,
             "%s returned seq %" PRId64 " ts %" PRId64 " outside the criteria", what, s->seq,
             s->timestamp);
  const model_row *hit = NULL;
  int younger = 0;
  for (int i = 0; i < nrows; i++) {
    if (!load_matches(&rows[i], pid, c))
      continue;
    if (rows[i].seq == s->seq)
      hit = &rows[i];
    else if (rows[i].seq > s->seq)
      younger++;
  }
  FUZZ_CHECK(hit != NULL && hit->ts == s->timestamp, "%s returned a row that is not there", what);
  FUZZ_CHECK(younger == (int)s->skipped, "%s skipped %u rows but %d younger ones match", what,
             s->skipped, younger);
  FUZZ_CHECK(s->skipped == 0 || s->skip_reason == SNAP_ECORRUPT || s->skip_reason == SNAP_EFORMAT,
             "%s skipped for reason %d", what, s->skip_reason);
  FUZZ_CHECK(s->data != NULL && s->data[s->len] == 0, "%s: state not NUL-terminated", what);
  if (hit->intact && row_bodies[hit->kind].pid == pid && row_bodies[hit->kind].seq == s->seq) {
    const row_body *rb = &row_bodies[hit->kind];
    FUZZ_CHECK(s->len == strlen(rb->state) && memcmp(s->data, rb->state, s->len) == 0 &&
                   s->format == rb->fmt,
               "%s returned another state than the one saved", what);
  }
}

static int64_t crit_value(fuzz_reader *r, int is_ts) {
  uint8_t b = fuzz_u8(r);
  switch (b & 7) {
  case 0:
    return INT64_MIN;
  case 1:
    return INT64_MAX;
  case 2:
    return -1;
  case 3:
    return (int64_t)fuzz_u64(r);
  default:
    return (int64_t)(b >> 3) * (is_ts ? 1000 : 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  fuzz_reader r = {data, size};
  unsigned sel = fuzz_u8(&r) & (FUZZ_OPT_ENCRYPT | FUZZ_OPT_MAC | FUZZ_OPT_ACCEPT |
                                FUZZ_OPT_LIMITS | FUZZ_OPT_OTHERCTX);
  write_rows(&r);
  snap_criteria c;
  c.min_seq = crit_value(&r, 0);
  c.max_seq = crit_value(&r, 0);
  c.min_ts = crit_value(&r, 1);
  c.max_ts = crit_value(&r, 1);
  uint8_t ops = fuzz_u8(&r);
  int64_t before = crit_value(&r, 0);
  int pid = ops & 1; /* the pid the operations address */
  snap_options *o = (ops & 2) ? fuzz_options(sel, 0) : NULL;
  if ((ops & 2) && !o)
    return 0;

  snap_snapshot *s = NULL;
  snap_error_clear();
  int rc = snap_load(store, fuzz_pids[pid], &c, o, &s);
  check_load("load", rc, s, pid, &c);
  snap_snapshot_free(s);

  s = NULL;
  rc = snap_load_latest(store, fuzz_pids[pid], o, &s);
  snap_criteria all = {0, INT64_MAX, INT64_MIN, INT64_MAX};
  check_load("load_latest", rc, s, pid, &all);
  snap_snapshot_free(s);

  s = NULL;
  rc = snap_load_before(store, fuzz_pids[pid], before, o, &s);
  snap_criteria below = {0, before - (before > INT64_MIN), INT64_MIN, INT64_MAX};
  if (before <= 0)
    below.min_seq = 1, below.max_seq = 0;
  check_load("load_before", rc, s, pid, &below);
  snap_snapshot_free(s);

  if (ops & 4) {
    int empty = c.min_seq > c.max_seq || c.min_ts > c.max_ts || c.max_seq < 0;
    int64_t total = count(count_all, pid, NULL);
    int64_t matching = empty ? 0 : count(count_match, pid, &c);
    rc = snap_delete_matching(store, fuzz_pids[pid], &c);
    FUZZ_CHECK(rc == SNAP_OK, "delete_matching failed (%d)", rc);
    FUZZ_CHECK(empty || count(count_match, pid, &c) == 0, "delete_matching left matching rows");
    FUZZ_CHECK(count(count_all, pid, NULL) == total - matching,
               "delete_matching removed rows outside the criteria");
  }
  snap_options_free(o);
  return 0;
}
