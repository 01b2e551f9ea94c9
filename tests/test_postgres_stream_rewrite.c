/* Rewriting streamed snapshots in place on the postgres backend
 * (store/backends/postgres/streams_publish.c: stream_replace of backend ABI
 * version 7, through snap_store_rewrite()), on one server and on three
 * shards: a plain stream sealed with zlib + AEAD, rekeyed to a new key (the
 * old key no longer needed) and recompressed, loading byte for byte as
 * before with its timestamp, manifest and metadata, and only its new chunk
 * rows left; a stream migrated to a new manifest (snap_store_migrate()); a
 * save or a delete that wins the race against the publishing
 * transaction; a replace that fails (a statement timeout, a missing key) or
 * is killed (kill -9) leaving the old snapshot loadable and no staging or
 * chunk rows behind once swept. The races are made deterministic by holding
 * the pid's advisory lock (the one saves and publishes take) on a connection
 * of the test's own. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pg_stream_asserts.h"
#include "snap/admin.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/sys/backend.h"
#include "stream_util.h"
#include "upcast_util.h"

#define CHUNK 4096u

PGS_CLUSTER_START(3)
PGS_CLUSTER_STOP

/* ---- helpers ------------------------------------------------------------- */

static snap_options *sealed(snap_keyring *kr) {
  snap_options *o = su_sealed(kr);
  cr_assert_not_null(o);
  return o;
}

/* A keyring holding key `version` of 32 bytes `fill`. */
static snap_keyring *key_only(uint32_t version, uint8_t fill) {
  snap_keyring *kr = NULL;
  uint8_t key[32];
  memset(key, fill, sizeof key);
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, version, key, sizeof key), SNAP_OK);
  return kr;
}

/* A streamed save of `n` bytes of `state` as (pid, seq), timestamp 1234,
 * manifest "T/1" and 3 bytes of metadata, chunks of CHUNK bytes. */
static void save_stream(snap_store *st, const char *pid, int64_t seq, const char *state,
                        size_t n) {
  static const uint8_t md[3] = {1, 2, 3};
  snap_save_ext x = {.manifest = "T/1", .metadata = md, .metadata_len = 3};
  snap_save_stream *w = NULL;
  cr_assert_eq(snap_save_stream_begin(st, pid, seq, 1234, SNAP_FORMAT_JSON, NULL, &x, CHUNK, &w),
               SNAP_OK, "%s", snap_error_message());
  for (size_t at = 0; at < n; at += 30000)
    cr_assert_eq(snap_save_stream_write(w, state + at, n - at < 30000 ? n - at : 30000), SNAP_OK,
                 "%s", snap_error_message());
  cr_assert_eq(snap_save_stream_commit(w, NULL), SNAP_OK, "%s", snap_error_message());
}

/* The listing of (pid, seq): a copy of its head (free()) in `*head`, its
 * timestamp, and the chunk records it names. */
typedef struct listing {
  uint8_t *head;
  size_t len;
  int64_t ts;
  uint64_t chunks;
} listing;

static listing list_one(snap_store *st, const char *pid, int64_t seq) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  cr_assert_eq(snap_store_list(st, pid, NULL, -1, 100, true, &page), SNAP_OK, "%s",
               snap_error_message());
  listing l = {NULL, 0, 0, 0};
  for (size_t i = 0; i < page.n; i++) {
    const snap_entry *e = &page.entries[i];
    if (e->seq != seq)
      continue;
    l.len = e->stored_len;
    l.head = malloc(l.len);
    cr_assert_not_null(l.head);
    memcpy(l.head, e->body, l.len);
    l.ts = e->timestamp;
    l.chunks = e->chunk_count;
  }
  snap_entry_page_dispose(&page);
  cr_assert_not_null(l.head, "pid %s seq %lld is listed", pid, (long long)seq);
  return l;
}

/* The chunk records the store's rows name, summed over `pids`: the chunk
 * rows there must be, not one more. */
static long long named_chunks(snap_store *st) {
  long long sum = 0;
  for (int i = 0; i < 3; i++) {
    snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
    cr_assert_eq(snap_store_list(st, pgs_pids[i], NULL, -1, 100, false, &page), SNAP_OK);
    for (size_t k = 0; k < page.n; k++)
      sum += (long long)page.entries[k].chunk_count;
    snap_entry_page_dispose(&page);
  }
  return sum;
}

/* The latest state of `pid` is `state` (n bytes), read whole and through a
 * stream reader with `o`. */
static void loads_as(snap_store *st, const char *pid, const snap_options *o, const char *state,
                     size_t n) {
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_latest(st, pid, o, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s != NULL && s->len == n && memcmp(s->data, state, n) == 0, "pid %s loads whole",
            pid);
  snap_snapshot_free(s);
  char *back = NULL;
  size_t len = 0;
  cr_assert_eq(su_stream_load(st, pid, o, 0, &back, &len, NULL), SNAP_OK, "%s",
               snap_error_message());
  cr_assert(len == n && memcmp(back, state, n) == 0, "pid %s streams back", pid);
  free(back);
}

/* One rewrite of (pid, seq, l's head): its status, outcome in `*it`. */
static int rewrite(snap_store *st, const char *pid, int64_t seq, const listing *l,
                   const snap_options *o, unsigned flags, snap_rewrite *it) {
  *it = (snap_rewrite){pid, seq, l->head, l->len, SNAP_OK, 0, 0, 0};
  (void)snap_store_rewrite_ex(st, it, 1, o, flags);
  return it->status;
}

/* ---- rekey and recompression ------------------------------------------------ */

/* The head of (pid, 5) after a rewrite: a stream of the same chunk size and
 * state length, its timestamp, manifest and metadata kept. */
static listing kept(snap_store *st, const char *pid, size_t n) {
  listing l = list_one(st, pid, 5);
  cr_assert_eq(l.ts, 1234, "the timestamp is kept");
  snap_stream_info info;
  cr_assert_eq(snap_body_inspect_stream(l.head, l.len, &info), SNAP_OK);
  cr_assert(info.chunked && info.plain_len == n && info.chunk_size == CHUNK);
  const char *man = NULL;
  const uint8_t *md = NULL;
  size_t ml = 0, mdl = 0;
  cr_assert_eq(snap_body_typing(l.head, l.len, &man, &ml, &md, &mdl), SNAP_OK);
  cr_assert(ml == 3 && memcmp(man, "T/1", 3) == 0 && mdl == 3 && md[2] == 3,
            "manifest and metadata are kept");
  return l;
}

/* Rekeys the plain stream (pid, 5): plain -> zlib-1 + AEAD under key 1 ->
 * key 2 (key 1 gone) -> uncompressed under key 2 -> current. */
static void rekey_pid(snap_store *st, const pgs_store *p, const char *pid, char fill) {
  const size_t n = 40000;
  char *state = su_state_of(n, fill);
  save_stream(st, pid, 5, state, n);
  listing l0 = list_one(st, pid, 5);
  snap_keyring *kr = key_only(1, 0x31);
  snap_options *o = sealed(kr);
  snap_rewrite it;
  cr_assert_eq(rewrite(st, pid, 5, &l0, o, 0, &it), SNAP_OK, "%s", snap_error_message());
  cr_assert(it.outcome == SNAP_REWRITE_DONE && (it.stages & SNAP_STAGE_ENCRYPTED) &&
            it.key_version == 1, "outcome %d stages 0x%x", it.outcome, it.stages);
  listing l1 = kept(st, pid, n);
  loads_as(st, pid, o, state, n);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_manifest(st, pid, &SNAP_CRITERIA_LATEST, "T/1", o, &s), SNAP_OK,
               "the manifest column follows: %s", snap_error_message());
  cr_assert(s != NULL && s->len == n);
  snap_snapshot_free(s);
  /* Rekey: key 2 becomes active; afterwards key 2 alone reads it. */
  uint8_t k2[32];
  memset(k2, 0x32, sizeof k2);
  cr_assert_eq(snap_keyring_add(kr, 2, k2, sizeof k2), SNAP_OK);
  cr_assert_eq(snap_keyring_set_active(kr, 2), SNAP_OK);
  cr_assert_eq(rewrite(st, pid, 5, &l1, o, 0, &it), SNAP_OK, "%s", snap_error_message());
  cr_assert(it.outcome == SNAP_REWRITE_DONE && it.key_version == 2);
  listing l2 = kept(st, pid, n);
  snap_keyring *only2 = key_only(2, 0x32), *only1 = key_only(1, 0x31);
  snap_options *o2 = sealed(only2), *o1 = sealed(only1);
  loads_as(st, pid, o2, state, n);
  cr_assert_eq(snap_load_latest(st, pid, o1, &s), SNAP_ENOKEY, "the old key is not enough");
  /* Recompression to none, under key 2. */
  cr_assert_eq(snap_options_set_compression(o2, SNAP_COMPRESSION_NONE, 0), SNAP_OK);
  cr_assert_eq(rewrite(st, pid, 5, &l2, o2, SNAP_REWRITE_RECOMPRESS, &it), SNAP_OK, "%s",
               snap_error_message());
  cr_assert(it.outcome == SNAP_REWRITE_DONE && !(it.stages & SNAP_STAGE_COMPRESSED) &&
            (it.stages & SNAP_STAGE_ENCRYPTED) && it.key_version == 2);
  listing l3 = kept(st, pid, n);
  loads_as(st, pid, o2, state, n);
  cr_assert_eq(rewrite(st, pid, 5, &l3, o2, SNAP_REWRITE_RECOMPRESS, &it), SNAP_OK);
  cr_assert_eq(it.outcome, SNAP_REWRITE_CURRENT);
  /* Only the rows the heads name are left: the old chunks went each time. */
  cr_assert_eq(pgs_chunk_rows(p), named_chunks(st));
  cr_assert_eq(pgs_staged(p), 0);
  free(l0.head);
  free(l1.head);
  free(l2.head);
  free(l3.head);
  snap_options_free(o);
  snap_options_free(o1);
  snap_options_free(o2);
  snap_keyring_free(kr);
  snap_keyring_free(only1);
  snap_keyring_free(only2);
  free(state);
}

static void rekey_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 0");
  /* On three shards, a pid on each. */
  int npids = nshards == 1 ? 1 : 3;
  for (int i = 0; i < npids; i++)
    rekey_pid(st, &p, pgs_pids[i], (char)('a' + i));
  cr_assert_eq(named_chunks(st), npids * (long long)((40000 + CHUNK - 1) / CHUNK));
  snap_store_close(st);
}

Test(pgrewrite, a_stream_is_rekeyed_and_recompressed_in_place_on_one_server) { rekey_on(1); }

Test(pgrewrite, a_stream_is_rekeyed_and_recompressed_in_place_on_three_shards) {
  rekey_on(3);
}

/* ---- races ------------------------------------------------------------------ */

/* A connection of the test's own holding the advisory lock of `pid` (the
 * lock saves and publishing transactions take first), in a transaction. */
static PGconn *hold_lock(const pgs_store *p, const char *pid, int shard) {
  char ci[512], sql[160];
  pgfx_conninfo(&p->f, shard, ci, sizeof ci);
  PGconn *c = PQconnectdb(ci);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d, %d)",
           (int32_t)pgs_fnv1a(p->table), (int32_t)pgs_fnv1a(pid));
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
  PQclear(r);
  return c;
}

static void release_lock(PGconn *c) {
  PQclear(PQexec(c, "ROLLBACK"));
  PQfinish(c);
}

/* Waits (at most ~20 s) until `want` sessions wait for the lock of `pid`. */
static void wait_for_waiters(const pgs_store *p, const char *pid, int want) {
  char sql[400];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
           "granted AND classid = '%u'::oid AND objid = '%u'::oid AND database = (SELECT oid "
           "FROM pg_database WHERE datname = current_database())",
           pgs_fnv1a(p->table), pgs_fnv1a(pid));
  long long n = 0;
  for (int i = 0; i < 2000 && (n = pgs_on_shards(p, sql)) < want; i++)
    usleep(10 * 1000);
  cr_assert_eq(n, want, "%lld sessions wait for the lock of %s", n, pid);
}

typedef struct job {
  snap_store *st;
  const char *pid;
  int64_t seq;
  const listing *l;
  const snap_options *o;
  snap_rewrite it;
  int rc;
} job;

static void *run_rewrite(void *arg) {
  job *j = arg;
  j->rc = rewrite(j->st, j->pid, j->seq, j->l, j->o, SNAP_REWRITE_FORCE, &j->it);
  return NULL;
}

static void *run_save(void *arg) {
  job *j = arg;
  j->rc = snap_save(j->st, j->pid, j->seq, SNAP_FORMAT_JSON, "[7]", 3, NULL, NULL);
  return NULL;
}

/* A save of (pid, 1) queued for the lock before the rewrite's publishing
 * transaction (with retention, a save takes the lock): it commits first,
 * and the rewrite finds the row changed. A
 * delete of (pid, 2) while the rewrite waits: it finds the row gone. Either
 * way its staging goes and nothing of it is left. */
static void race_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 5");
  const char *pid = pgs_pids[nshards - 1];
  char *state = su_state_of(60000, 'r');
  save_stream(st, pid, 1, state, 60000);
  save_stream(st, pid, 2, state, 60000);
  listing l1 = list_one(st, pid, 1), l2 = list_one(st, pid, 2);
  snap_keyring *kr = key_only(1, 0x41);
  snap_options *o = sealed(kr);
  /* Changed: the save waits first, the rewrite second. */
  PGconn *lock = hold_lock(&p, pid, nshards - 1);
  job save = {st, pid, 1, NULL, NULL, {0}, -1}, rw = {st, pid, 1, &l1, o, {0}, -1};
  pthread_t ts, tr;
  cr_assert_eq(pthread_create(&ts, NULL, run_save, &save), 0);
  wait_for_waiters(&p, pid, 1);
  cr_assert_eq(pthread_create(&tr, NULL, run_rewrite, &rw), 0);
  wait_for_waiters(&p, pid, 2);
  release_lock(lock);
  pthread_join(ts, NULL);
  pthread_join(tr, NULL);
  cr_assert_eq(save.rc, SNAP_OK);
  cr_assert_eq(rw.rc, SNAP_OK, "%d", rw.rc);
  cr_assert_eq(rw.it.outcome, SNAP_REWRITE_CHANGED, "outcome %d", rw.it.outcome);
  snap_criteria c1 = {1, 1, INT64_MIN, INT64_MAX};
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load(st, pid, &c1, NULL, &s), SNAP_OK, "%s", snap_error_message());
  cr_assert(s != NULL && s->len == 3 && memcmp(s->data, "[7]", 3) == 0, "the save stands");
  snap_snapshot_free(s);
  cr_assert_eq(pgs_staged(&p), 0);
  cr_assert_eq(pgs_chunk_rows(&p), named_chunks(st), "the rewrite's staging is gone");
  /* Gone: deleted while the rewrite waits for the lock. */
  lock = hold_lock(&p, pid, nshards - 1);
  rw = (job){st, pid, 2, &l2, o, {0}, -1};
  cr_assert_eq(pthread_create(&tr, NULL, run_rewrite, &rw), 0);
  wait_for_waiters(&p, pid, 1);
  cr_assert_eq(snap_delete_one(st, pid, 2), SNAP_OK, "%s", snap_error_message());
  release_lock(lock);
  pthread_join(tr, NULL);
  cr_assert_eq(rw.rc, SNAP_OK, "%d", rw.rc);
  cr_assert_eq(rw.it.outcome, SNAP_REWRITE_GONE, "outcome %d", rw.it.outcome);
  cr_assert_eq(pgs_latest_seq(st, pid), 1, "a deleted stream is not brought back");
  cr_assert_eq(pgs_staged(&p), 0);
  cr_assert_eq(pgs_chunk_rows(&p), 0, "no chunk row is left");
  free(l1.head);
  free(l2.head);
  free(state);
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
}

Test(pgrewrite, a_save_or_a_delete_that_wins_the_race_stands_on_one_server, .timeout = 120) {
  race_on(1);
}

Test(pgrewrite, a_save_or_a_delete_that_wins_the_race_stands_on_three_shards, .timeout = 120) {
  race_on(3);
}

/* ---- failures ------------------------------------------------------------------ */

/* The old stream (pid, 1) is as it was: the same head, its state, its rows. */
static void unchanged(snap_store *st, const pgs_store *p, const char *pid, const listing *l,
                      const char *state, size_t n) {
  listing now = list_one(st, pid, 1);
  cr_assert(now.len == l->len && memcmp(now.head, l->head, l->len) == 0, "the same head");
  free(now.head);
  loads_as(st, pid, NULL, state, n);
  cr_assert_eq(pgs_staged(p), 0, "no staging is left");
  cr_assert_eq(pgs_chunk_rows(p), (long long)l->chunks, "only the old stream's rows");
}

/* A publishing transaction cancelled by the statement timeout, and a
 * rewrite that cannot read the stream (its key is missing): each fails,
 * leaving the old snapshot and nothing else; then a rewrite succeeds. */
static void failures_on(int nshards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, nshards, "\"keep\": 0, \"statement_timeout_ms\": 1000");
  const char *pid = pgs_pids[nshards - 1];
  const size_t n = 80000;
  char *state = su_state_of(n, 'f');
  save_stream(st, pid, 1, state, n);
  listing l = list_one(st, pid, 1);
  snap_keyring *kr = key_only(1, 0x51);
  snap_options *o = sealed(kr);
  PGconn *lock = hold_lock(&p, pid, nshards - 1);
  snap_rewrite it;
  int rc = rewrite(st, pid, 1, &l, o, 0, &it);
  release_lock(lock);
  cr_assert_neq(rc, SNAP_OK, "the publish waited past the statement timeout");
  cr_assert(strstr(snap_error_message(), "seq 1: the new stream was not published") != NULL,
            "%s", snap_error_message());
  unchanged(st, &p, pid, &l, state, n);
  /* Sealed under key 1, the stream cannot be rewritten without it. */
  cr_assert_eq(rewrite(st, pid, 1, &l, o, 0, &it), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it.outcome, SNAP_REWRITE_DONE);
  listing sealed1 = list_one(st, pid, 1);
  snap_keyring *other = key_only(2, 0x52);
  snap_options *o2 = sealed(other);
  cr_assert_eq(rewrite(st, pid, 1, &sealed1, o2, SNAP_REWRITE_FORCE, &it), SNAP_ENOKEY, "%s",
               snap_error_message());
  cr_assert_eq(pgs_staged(&p), 0);
  cr_assert_eq(pgs_chunk_rows(&p), (long long)sealed1.chunks);
  loads_as(st, pid, o, state, n);
  free(sealed1.head);
  snap_options_free(o2);
  snap_keyring_free(other);
  free(l.head);
  free(state);
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
}

Test(pgrewrite, a_failed_replace_leaves_the_old_stream_and_nothing_else_on_one_server) {
  failures_on(1);
}

Test(pgrewrite, a_failed_replace_leaves_the_old_stream_and_nothing_else_on_three_shards) {
  failures_on(3);
}

/* A child's rewrite is killed (SIGKILL) while its publishing transaction
 * waits for the pid's lock: nothing was committed, the old stream loads,
 * the child's staging is an orphan the sweep reclaims, and a rerun finishes. */
Test(pgrewrite, a_replace_killed_before_its_commit_leaves_the_old_stream, .timeout = 120) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, 3, "\"keep\": 0");
  const char *pid = pgs_pids[1];
  const size_t n = 80000;
  char *state = su_state_of(n, 'k');
  save_stream(st, pid, 1, state, n);
  listing l = list_one(st, pid, 1);
  PGconn *lock = hold_lock(&p, pid, 1);
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0) {
    snap_store *cs = pgs_reopen(&p);
    snap_keyring *kr = key_only(1, 0x61);
    snap_options *o = sealed(kr);
    snap_rewrite it;
    if (cs != NULL)
      (void)rewrite(cs, pid, 1, &l, o, 0, &it);
    _exit(3); /* too late: it was to be killed while it waited */
  }
  wait_for_waiters(&p, pid, 1);
  cr_assert_eq(pgs_staged(&p), 1, "the child staged its stream");
  cr_assert_eq(kill(child, SIGKILL), 0);
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFSIGNALED(status));
  release_lock(lock);
  cr_assert_eq(pgs_sweep_until(st, 1), 1, "the orphan staging was reclaimed");
  unchanged(st, &p, pid, &l, state, n);
  snap_keyring *kr = key_only(1, 0x61);
  snap_options *o = sealed(kr);
  snap_rewrite it;
  cr_assert_eq(rewrite(st, pid, 1, &l, o, 0, &it), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it.outcome, SNAP_REWRITE_DONE);
  loads_as(st, pid, o, state, n);
  cr_assert_eq(pgs_chunk_rows(&p), named_chunks(st));
  snap_options_free(o);
  snap_keyring_free(kr);
  free(l.head);
  free(state);
  snap_store_close(st);
}

/* ---- migration ----------------------------------------------------------------- */

/* A stream of manifest T/1 migrated to T/2 on three shards: the upcaster
 * ran, the manifest column follows (loads by T/2 find it, by T/1 nothing),
 * the timestamp is kept and only the new stream's chunk rows are left. */
Test(pgrewrite, a_stream_is_migrated_to_its_target_manifest_on_three_shards) {
  pgfx f = pgs_shared();
  pgs_store p;
  snap_store *st = pgs_open_ok(&p, &f, 3, "\"keep\": 0");
  int calls = 0;
  cr_assert_eq(snap_store_add_upcaster(st, "T/1", "T/2", st_upcast_wrap, &calls), SNAP_OK);
  const char *pid = pgs_pids[2];
  char *state = su_state_of(20000, 'm');
  save_stream(st, pid, 3, state, 20000);
  listing l = list_one(st, pid, 3);
  snap_rewrite it = {pid, 3, l.head, l.len, SNAP_OK, 0, 0, 0};
  cr_assert_eq(snap_store_migrate(st, &it, 1, "T/2", NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(it.outcome, SNAP_REWRITE_DONE);
  cr_assert_eq(calls, 1);
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_manifest(st, pid, &SNAP_CRITERIA_LATEST, "T/2", NULL, &s), SNAP_OK,
               "%s", snap_error_message());
  cr_assert(s != NULL && s->timestamp == 1234 && s->len == 20000 + 7 &&
            memcmp(s->data, "{\"v2\":", 6) == 0 && memcmp(s->data + 6, state, 20000) == 0,
            "the state went through the upcaster");
  snap_snapshot_free(s);
  s = NULL;
  cr_assert_eq(snap_load_manifest(st, pid, &SNAP_CRITERIA_LATEST, "T/1", NULL, &s), SNAP_OK);
  cr_assert_null(s, "no row states T/1 any more");
  cr_assert_eq(pgs_chunk_rows(&p), named_chunks(st));
  cr_assert_eq(pgs_staged(&p), 0);
  free(l.head);
  free(state);
  snap_store_close(st);
}
