/* The observer and the warnings: every event kind is delivered with its
 * fields through the public API, and the warnings that must not be silent are
 * logged (once per store where promised). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "snap/observe.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "sqlite_asserts.h"
#include "store_util.h"

/* What an observer saw: copies of the events (their strings included). */
#define MAX_EVENTS 64

typedef struct seen_event {
  snap_event ev;
  char pid[64];
  char detail[512];
  char backend[32];
} seen_event;

typedef struct seen {
  seen_event e[MAX_EVENTS];
  int n;
  int logs;
  snap_log_level last_level;
  char last_log[1024];
} seen;

static void observer(void *ud, const snap_event *ev) {
  seen *s = ud;
  if (s->n >= MAX_EVENTS)
    return;
  seen_event *e = &s->e[s->n++];
  e->ev = *ev;
  snprintf(e->pid, sizeof e->pid, "%s", ev->pid ? ev->pid : "(null)");
  snprintf(e->detail, sizeof e->detail, "%s", ev->detail ? ev->detail : "(null)");
  snprintf(e->backend, sizeof e->backend, "%s", ev->backend ? ev->backend : "(null)");
}

static void logger(void *ud, snap_log_level level, const char *msg) {
  seen *s = ud;
  s->logs++;
  s->last_level = level;
  snprintf(s->last_log, sizeof s->last_log, "%s", msg);
}

/* The i-th event of `kind`, or NULL. */
static const seen_event *find(const seen *s, snap_event_kind kind, int i) {
  for (int k = 0; k < s->n; k++)
    if (s->e[k].ev.kind == kind && i-- == 0)
      return &s->e[k];
  return NULL;
}

static int count(const seen *s, snap_event_kind kind) {
  int n = 0;
  for (int k = 0; k < s->n; k++)
    n += s->e[k].ev.kind == kind;
  return n;
}

static snap_store *watched(const snap_backend *b, const char *cfg, seen *s) {
  snap_store *st = NULL;
  cr_assert_eq(snap_store_open_backend(&st, b, cfg), SNAP_OK, "%s", snap_error_message());
  memset(s, 0, sizeof *s);
  cr_assert_eq(snap_store_set_observer(st, observer, s), SNAP_OK);
  cr_assert_eq(snap_store_set_log(st, SNAP_LOG_WARNING, logger, s), SNAP_OK);
  return st;
}

static snap_store *watched_sqlite(const char *dir, const char *extra, seen *s) {
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s/t.db\"%s%s}", dir, extra[0] ? ", " : "", extra);
  return watched(snap_backend_sqlite(), cfg, s);
}

static snap_keyring *keyring(uint32_t version, uint8_t fill) {
  uint8_t key[32];
  memset(key, fill, sizeof key);
  snap_keyring *kr = NULL;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, version, key, sizeof key), SNAP_OK);
  cr_assert_eq(snap_keyring_set_active(kr, version), SNAP_OK);
  return kr;
}

static snap_options *encrypting(snap_keyring *kr) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "test/observe/v1"), SNAP_OK);
  return o;
}

static const char STATE[] =
    "{\"balance\": 100, \"memo\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
#define STATE_LEN (sizeof STATE - 1)

Test(observe, a_save_reports_its_outcome_with_sizes_and_stages) {
  char *dir = st_tmpdir();
  seen s;
  snap_store *st = watched_sqlite(dir, "\"compression\": \"zlib\", \"compression_level\": 6", &s);
  snap_meta m;
  cr_assert_eq(snap_save(st, "acct-1", 7, SNAP_FORMAT_JSON, STATE, STATE_LEN, NULL, &m), SNAP_OK);
  cr_assert_eq(s.n, 1, "exactly one event, got %d", s.n);
  const snap_event *ev = &s.e[0].ev;
  cr_assert_eq(ev->kind, SNAP_EVENT_SAVE);
  cr_assert_eq(ev->status, SNAP_OK);
  cr_assert_str_eq(s.e[0].pid, "acct-1");
  cr_assert_str_eq(s.e[0].backend, "sqlite");
  cr_assert_eq(ev->seq, 7);
  cr_assert_eq(ev->state_bytes, STATE_LEN);
  cr_assert_eq(ev->body_bytes, m.stored_len);
  cr_assert_eq(ev->stages, SNAP_STAGE_COMPRESSED);
  cr_assert_lt(ev->body_bytes, STATE_LEN, "compressed");
  cr_assert_eq(ev->groups, 0u);
  cr_assert_lt(ev->duration_ns, 60ull * 1000000000ull);

  /* A save that fails is an outcome too, with its status. */
  cr_assert_eq(snap_save(st, "acct-1", 8, SNAP_FORMAT_JSON, "{bad", 4, NULL, NULL), SNAP_EFORMAT);
  cr_assert_eq(s.n, 2);
  cr_assert_eq(s.e[1].ev.kind, SNAP_EVENT_SAVE);
  cr_assert_eq(s.e[1].ev.status, SNAP_EFORMAT);
  cr_assert_eq(s.e[1].ev.seq, 8);
  cr_assert_eq(s.e[1].ev.body_bytes, 0u);
  cr_assert_eq(s.logs, 0, "nothing worth a warning");
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(observe, a_batch_reports_each_save_and_the_commit) {
  seen s;
  snap_store *st = watched(snap_backend_memory(), NULL, &s);
  snap_save_req reqs[3] = {
      {"a", 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "1", 1, NULL},
      {"b", 2, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "{x", 2, NULL},
      {"c", 3, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "[3]", 3, NULL},
  };
  int status[3];
  cr_assert_eq(snap_save_batch(st, reqs, 3, status, NULL), SNAP_EFORMAT);
  cr_assert_eq(count(&s, SNAP_EVENT_SAVE), 3);
  for (int i = 0; i < 3; i++) {
    const seen_event *e = find(&s, SNAP_EVENT_SAVE, i);
    cr_assert_str_eq(e->pid, reqs[i].pid);
    cr_assert_eq(e->ev.seq, reqs[i].seq);
    cr_assert_eq(e->ev.status, status[i]);
    cr_assert_eq(e->ev.state_bytes, reqs[i].len);
  }
  const seen_event *b = find(&s, SNAP_EVENT_BATCH, 0);
  cr_assert_not_null(b);
  cr_assert_eq(b->ev.count, 3u);
  cr_assert_eq(b->ev.status, SNAP_EFORMAT, "the first failure");
  cr_assert_null(b->ev.pid);
  cr_assert_eq(b->ev.kind, s.e[s.n - 1].ev.kind, "after the saves");

  /* The prepare/commit path reports the same way. */
  s.n = 0;
  snap_prepared *p[2] = {NULL, NULL};
  cr_assert_eq(snap_save_prepare(st, &reqs[0], &p[0]), SNAP_OK);
  cr_assert_eq(snap_save_prepare(st, &reqs[2], &p[1]), SNAP_OK);
  cr_assert_eq(s.n, 0, "a prepared save has no outcome yet");
  cr_assert_eq(snap_save_commit(st, p, 2, status, NULL), SNAP_OK);
  cr_assert_eq(count(&s, SNAP_EVENT_SAVE), 2);
  cr_assert_eq(find(&s, SNAP_EVENT_BATCH, 0)->ev.count, 2u);
  cr_assert_eq(find(&s, SNAP_EVENT_SAVE, 1)->ev.seq, 3);
  snap_prepared_free(p[0]);
  snap_prepared_free(p[1]);
  snap_store_close(st);
}

Test(observe, a_load_reports_what_it_read_and_a_miss) {
  seen s;
  snap_store *st = watched(snap_backend_memory(), NULL, &s);
  cr_assert_eq(snap_save(st, "p", 4, SNAP_FORMAT_JSON, STATE, STATE_LEN, NULL, NULL), SNAP_OK);
  s.n = 0;
  snap_snapshot *snap = NULL;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &snap), SNAP_OK);
  cr_assert_not_null(snap);
  cr_assert_eq(s.n, 1);
  const snap_event *ev = &s.e[0].ev;
  cr_assert_eq(ev->kind, SNAP_EVENT_LOAD);
  cr_assert_eq(ev->status, SNAP_OK);
  cr_assert_str_eq(s.e[0].pid, "p");
  cr_assert_eq(ev->seq, 4);
  cr_assert_eq(ev->state_bytes, STATE_LEN);
  cr_assert_gt(ev->body_bytes, STATE_LEN, "a plain body is the state plus its frame");
  cr_assert_eq(ev->stages, 0u);
  cr_assert_eq(ev->count, 0u, "nothing skipped");
  snap_snapshot_free(snap);

  cr_assert_eq(snap_load_latest(st, "nobody", NULL, &snap), SNAP_OK);
  cr_assert_null(snap);
  cr_assert_eq(s.n, 2);
  cr_assert_eq(s.e[1].ev.seq, -1, "a miss has no seq");
  cr_assert_eq(s.e[1].ev.state_bytes, 0u);
  snap_store_close(st);
}

Test(observe, a_delete_reports_its_bound) {
  seen s;
  snap_store *st = watched(snap_backend_memory(), NULL, &s);
  cr_assert_eq(snap_delete(st, "p", 12), SNAP_OK);
  cr_assert_eq(snap_delete_one(st, "", 3), SNAP_EINVAL);
  cr_assert_eq(s.n, 2);
  cr_assert_eq(s.e[0].ev.kind, SNAP_EVENT_DELETE);
  cr_assert_eq(s.e[0].ev.status, SNAP_OK);
  cr_assert_eq(s.e[0].ev.seq, 12);
  cr_assert_str_eq(s.e[0].pid, "p");
  cr_assert_eq(s.e[1].ev.kind, SNAP_EVENT_DELETE);
  cr_assert_eq(s.e[1].ev.status, SNAP_EINVAL);
  snap_store_close(st);
}

static void prune_reported(snap_store *st, seen *s) {
  for (int64_t seq = 1; seq <= 3; seq++)
    cr_assert_eq(snap_save(st, "p", seq, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  cr_assert_eq(count(s, SNAP_EVENT_PRUNE), 1, "keep 2: only the third save prunes");
  const seen_event *e = find(s, SNAP_EVENT_PRUNE, 0);
  cr_assert_eq(e->ev.status, SNAP_OK);
  cr_assert_str_eq(e->pid, "p");
  cr_assert_eq(e->ev.seq, 3, "the save that pruned");
  cr_assert_eq(e->ev.count, 1u, "one snapshot removed");
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  cr_assert_eq(m.pruned, 1u);
  cr_assert_eq(m.ops[SNAP_OP_PRUNE][0], 1u);
}

Test(observe, a_prune_reports_what_it_removed_in_both_builtin_backends) {
  seen s;
  snap_store *st = watched(snap_backend_memory(), "{\"keep\": 2}", &s);
  prune_reported(st, &s);
  snap_store_close(st);
  char *dir = st_tmpdir();
  st = watched_sqlite(dir, "\"keep\": 2", &s);
  prune_reported(st, &s);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(observe, a_prune_blocked_by_a_trigger_is_reported_and_logged_each_time) {
  char *dir = st_tmpdir();
  seen s;
  snap_store *st = watched_sqlite(dir, "\"keep\": 1", &s);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "CREATE TRIGGER no_prune BEFORE DELETE ON snapshots "
               "BEGIN SELECT RAISE(ABORT, 'prune blocked by test'); END");
  sqlite3_close(db);
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, "2", 1, NULL, NULL), SNAP_OK,
               "the save still succeeds");
  cr_assert_eq(count(&s, SNAP_EVENT_PRUNE_FAILED), 1);
  const seen_event *e = find(&s, SNAP_EVENT_PRUNE_FAILED, 0);
  cr_assert_str_eq(e->pid, "p");
  cr_assert_eq(e->ev.seq, 2);
  cr_assert_neq(e->ev.status, SNAP_OK);
  cr_assert(strstr(e->detail, "prune blocked by test"), "detail: %s", e->detail);
  cr_assert_eq(count(&s, SNAP_EVENT_PRUNE), 0, "nothing was removed");
  cr_assert_eq(s.logs, 1);
  cr_assert_eq(s.last_level, SNAP_LOG_WARNING);
  cr_assert(strstr(s.last_log, "'p'") && strstr(s.last_log, "prune blocked by test"), "log: %s",
            s.last_log);
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "3", 1, NULL, NULL), SNAP_OK);
  cr_assert_eq(s.logs, 2, "every failed prune is logged");
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  cr_assert_eq(m.incidents[SNAP_EVENT_PRUNE_FAILED - SNAP_EVENT_FIRST_INCIDENT], 2u);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(observe, a_corrupt_body_planted_in_the_file_is_skipped_reported_and_warned_once) {
  char *dir = st_tmpdir();
  seen s;
  snap_store *st = watched_sqlite(dir, "\"keep\": 0", &s);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "[1]", 3, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, "[2]", 3, NULL, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "UPDATE snapshots SET body = X'00010203040506070809' WHERE pid = 'p' AND seq = 2");
  sqlite3_close(db);
  s.n = 0;
  for (int round = 0; round < 2; round++) {
    snap_snapshot *snap = NULL;
    cr_assert_eq(snap_load_latest(st, "p", NULL, &snap), SNAP_OK);
    cr_assert_eq(snap->seq, 1);
    snap_snapshot_free(snap);
  }
  cr_assert_eq(count(&s, SNAP_EVENT_CORRUPT_SKIPPED), 2, "one per skip");
  const seen_event *e = find(&s, SNAP_EVENT_CORRUPT_SKIPPED, 0);
  cr_assert_str_eq(e->pid, "p");
  cr_assert_eq(e->ev.seq, 2);
  cr_assert(e->ev.status == SNAP_ECORRUPT || e->ev.status == SNAP_EFORMAT, "%d", e->ev.status);
  cr_assert_gt(strlen(e->detail), 0u, "a reason");
  const seen_event *l = find(&s, SNAP_EVENT_LOAD, 0);
  cr_assert_eq(l->ev.seq, 1);
  cr_assert_eq(l->ev.count, 1u, "one body skipped");
  cr_assert_eq(s.logs, 1, "the first skip is warned, once per store");
  cr_assert(strstr(s.last_log, "seq 2"), "log: %s", s.last_log);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(observe, an_ignored_encryption_option_is_reported_per_call_and_warned_once_per_store) {
  snap_keyring *kr = keyring(1, 0x11);
  snap_options *o = encrypting(kr);
  seen s1, s2;
  snap_store *a = watched(snap_backend_memory(), NULL, &s1);
  snap_store *b = watched(snap_backend_memory(), NULL, &s2);
  for (int64_t seq = 1; seq <= 5; seq++) {
    snap_meta m;
    cr_assert_eq(snap_save(a, "p", seq, SNAP_FORMAT_JSON, "1", 1, o, &m), SNAP_OK,
                 "the call still succeeds");
    cr_assert_eq(m.ignored, SNAP_OPT_ENCRYPTION);
  }
  cr_assert_eq(count(&s1, SNAP_EVENT_OPTION_IGNORED), 5);
  const seen_event *e = find(&s1, SNAP_EVENT_OPTION_IGNORED, 0);
  cr_assert_eq(e->ev.groups, SNAP_OPT_ENCRYPTION);
  cr_assert_eq(e->ev.status, SNAP_OK);
  cr_assert_str_eq(e->pid, "p");
  cr_assert_eq(e->ev.seq, 1);
  cr_assert(strstr(e->detail, "encryption"), "%s", e->detail);
  cr_assert_eq(s1.logs, 1, "once per store, not per call");
  cr_assert_eq(s1.last_level, SNAP_LOG_WARNING);
  cr_assert(strstr(s1.last_log, "encryption"), "log: %s", s1.last_log);
  snap_snapshot *snap = NULL;
  cr_assert_eq(snap_load_latest(a, "p", o, &snap), SNAP_OK);
  snap_snapshot_free(snap);
  cr_assert_eq(s1.logs, 1, "loads do not repeat it either");

  cr_assert_eq(s2.logs, 0);
  cr_assert_eq(snap_save(b, "p", 1, SNAP_FORMAT_JSON, "1", 1, o, NULL), SNAP_OK);
  cr_assert_eq(s2.logs, 1, "another store warns on its own");
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(a, &m), SNAP_OK);
  cr_assert_eq(m.incidents[SNAP_EVENT_OPTION_IGNORED - SNAP_EVENT_FIRST_INCIDENT], 6u);
  snap_store_close(a);
  snap_store_close(b);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(observe, an_ignored_integrity_option_is_warned_once_too) {
  snap_keyring *kr = keyring(1, 0x22);
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_integrity(o, kr, "test/observe/mac/v1"), SNAP_OK);
  seen s;
  snap_store *st = watched(snap_backend_memory(), NULL, &s);
  cr_assert_eq(snap_store_set_default_options(st, o), SNAP_OK);
  for (int64_t seq = 1; seq <= 3; seq++)
    cr_assert_eq(snap_save(st, "p", seq, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  cr_assert_eq(count(&s, SNAP_EVENT_OPTION_IGNORED), 3);
  cr_assert_eq(find(&s, SNAP_EVENT_OPTION_IGNORED, 0)->ev.groups, SNAP_OPT_INTEGRITY);
  cr_assert_eq(s.logs, 1);
  cr_assert(strstr(s.last_log, "integrity"), "log: %s", s.last_log);
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(observe, a_required_option_the_backend_lacks_is_reported_as_refused) {
  snap_keyring *kr = keyring(1, 0x33);
  snap_options *o = encrypting(kr);
  cr_assert_eq(snap_options_set_required(o, SNAP_OPT_ENCRYPTION), SNAP_OK);
  seen s;
  snap_store *st = watched(snap_backend_memory(), NULL, &s);
  cr_assert_eq(snap_save(st, "p", 9, SNAP_FORMAT_JSON, "1", 1, o, NULL), SNAP_EUNSUPPORTED);
  const seen_event *e = find(&s, SNAP_EVENT_OPTION_REFUSED, 0);
  cr_assert_not_null(e);
  cr_assert_eq(e->ev.status, SNAP_EUNSUPPORTED);
  cr_assert_str_eq(e->pid, "p");
  cr_assert_eq(e->ev.seq, 9);
  cr_assert(strstr(e->detail, "encryption"), "%s", e->detail);
  cr_assert_eq(find(&s, SNAP_EVENT_SAVE, 0)->ev.status, SNAP_EUNSUPPORTED);
  cr_assert_eq(count(&s, SNAP_EVENT_OPTION_IGNORED), 0);
  cr_assert_eq(s.logs, 0, "the call failed: nothing went unnoticed");
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
}

Test(observe, an_authentication_failure_and_a_missing_key_are_reported) {
  char *dir = st_tmpdir();
  seen s;
  snap_store *st = watched_sqlite(dir, "", &s);
  snap_keyring *k1 = keyring(1, 0x44), *wrong = keyring(1, 0x45), *k2 = keyring(2, 0x46);
  snap_options *o1 = encrypting(k1), *owrong = encrypting(wrong), *o2 = encrypting(k2);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, o1, NULL), SNAP_OK);
  snap_snapshot *snap = NULL;
  cr_assert_eq(snap_load_latest(st, "p", owrong, &snap), SNAP_EAUTH);
  const seen_event *e = find(&s, SNAP_EVENT_AUTH_FAILED, 0);
  cr_assert_not_null(e);
  cr_assert_eq(e->ev.status, SNAP_EAUTH);
  cr_assert_str_eq(e->pid, "p");
  cr_assert_gt(strlen(e->detail), 0u);
  cr_assert_eq(snap_load_latest(st, "p", o2, &snap), SNAP_ENOKEY);
  e = find(&s, SNAP_EVENT_KEY_MISSING, 0);
  cr_assert_not_null(e);
  cr_assert_eq(e->ev.status, SNAP_ENOKEY);
  cr_assert_str_eq(e->pid, "p");
  cr_assert(strstr(e->detail, "1"), "names the key version: %s", e->detail);
  cr_assert_eq(find(&s, SNAP_EVENT_LOAD, 1)->ev.status, SNAP_ENOKEY);
  snap_store_close(st);
  snap_options_free(o1);
  snap_options_free(owrong);
  snap_options_free(o2);
  snap_keyring_free(k1);
  snap_keyring_free(wrong);
  snap_keyring_free(k2);
  st_rmtree(dir);
  free(dir);
}

Test(observe, a_locked_database_reports_busy_waits) {
  char *dir = st_tmpdir();
  seen s;
  snap_store *st = watched_sqlite(dir, "\"busy_timeout_ms\": 30", &s);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, NULL, NULL), SNAP_OK);
  sqlite3 *db = st_sqlite_beside(dir, "t.db");
  st_sqlite_run(db, "BEGIN IMMEDIATE");
  s.n = 0;
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, "2", 1, NULL, NULL), SNAP_EBUSY);
  st_sqlite_run(db, "ROLLBACK");
  sqlite3_close(db);
  cr_assert_geq(count(&s, SNAP_EVENT_BUSY_RETRY), 1);
  const seen_event *e = find(&s, SNAP_EVENT_BUSY_RETRY, 0);
  cr_assert_eq(e->ev.status, SNAP_EBUSY);
  cr_assert_eq(e->ev.count, 1u, "the first wait");
  cr_assert_gt(strlen(e->detail), 0u);
  cr_assert_eq(find(&s, SNAP_EVENT_SAVE, 0)->ev.status, SNAP_EBUSY);
  snap_metrics m;
  cr_assert_eq(snap_store_metrics(st, &m), SNAP_OK);
  cr_assert_eq(m.incidents[SNAP_EVENT_BUSY_RETRY - SNAP_EVENT_FIRST_INCIDENT],
               (uint64_t)count(&s, SNAP_EVENT_BUSY_RETRY));
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "3", 1, NULL, NULL), SNAP_OK);
  snap_store_close(st);
  st_rmtree(dir);
  free(dir);
}

Test(observe, the_log_threshold_and_removal_are_honoured) {
  snap_keyring *kr = keyring(1, 0x55);
  snap_options *o = encrypting(kr);
  seen s;
  snap_store *st = watched(snap_backend_memory(), NULL, &s);
  cr_assert_eq(snap_store_set_log(st, SNAP_LOG_ERROR, logger, &s), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "1", 1, o, NULL), SNAP_OK);
  cr_assert_eq(s.logs, 0, "a warning is below the error threshold");
  cr_assert_eq(snap_store_set_log(st, SNAP_LOG_OFF, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_store_set_log(st, (snap_log_level)9, NULL, NULL), SNAP_EINVAL);
  cr_assert_eq(snap_store_set_observer(st, NULL, NULL), SNAP_OK);
  cr_assert_eq(snap_save(st, "p", 2, SNAP_FORMAT_JSON, "1", 1, o, NULL), SNAP_OK);
  cr_assert_eq(count(&s, SNAP_EVENT_SAVE), 1, "the observer was removed");
  cr_assert_eq(snap_store_set_observer(NULL, observer, &s), SNAP_EINVAL);
  cr_assert_eq(snap_store_set_log(NULL, SNAP_LOG_OFF, NULL, NULL), SNAP_EINVAL);
  cr_assert_str_eq(snap_event_kind_name(SNAP_EVENT_BUSY_RETRY), "busy_retry");
  cr_assert_str_eq(snap_event_kind_name(0), "unknown");
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
}
