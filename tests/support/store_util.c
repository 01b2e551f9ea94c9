/* Shared helpers for the store tests. */
/* nftw() is an X/Open interface. */
#define _XOPEN_SOURCE 700
#include "store_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <inttypes.h>
#include <pthread.h>
#include <sys/wait.h>

#include "snap/store.h"

static int mkdirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n >= sizeof buf)
    return -1;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
      buf[i] = c;
    }
  }
  return 0;
}

char *st_tmpdir(void) {
  const char *base = getenv("SNAP_TEST_TMP");
  if (base == NULL || base[0] == '\0')
    base = "/tmp";
  if (mkdirs(base) != 0)
    return NULL;
  char *tpl = st_join(base, "store-XXXXXX");
  if (tpl != NULL && mkdtemp(tpl) == NULL) {
    free(tpl);
    return NULL;
  }
  return tpl;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void st_rmtree(const char *dir) {
  if (dir != NULL)
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *st_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p != NULL)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

bool st_write_not_a_database(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return false;
  for (int i = 0; i < 512; i++)
    fputs("not a database. ", f);
  return fclose(f) == 0;
}

bool st_read_file(const char *path, uint8_t **data, size_t *len) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return errno == ENOENT;
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf != NULL) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  bool ok = buf != NULL && !ferror(f);
  fclose(f);
  if (!ok) {
    free(buf);
    return false;
  }
  *data = buf;
  *len = n;
  return true;
}

bool st_contains(const uint8_t *hay, size_t hay_len, const void *needle, size_t needle_len) {
  if (needle_len == 0)
    return true;
  for (size_t i = 0; i + needle_len <= hay_len; i++)
    if (hay[i] == *(const uint8_t *)needle && memcmp(hay + i, needle, needle_len) == 0)
      return true;
  return false;
}

bool st_latest_is(struct snap_store *st, const char *pid, int64_t seq, int64_t ts,
                  const char *state, char *why, size_t cap) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, pid, NULL, &s);
  bool same = rc == SNAP_OK && s != NULL && s->seq == seq && s->timestamp == ts &&
              s->len == strlen(state) && memcmp(s->data, state, s->len) == 0;
  if (rc != SNAP_OK)
    snprintf(why, cap, "load %s: %s", pid, snap_error_message());
  else if (s == NULL)
    snprintf(why, cap, "load %s: no snapshot", pid);
  else if (!same)
    snprintf(why, cap, "load %s: seq %lld ts %lld '%.*s', expected seq %lld ts %lld '%s'", pid,
             (long long)s->seq, (long long)s->timestamp, (int)(s->len > 200 ? 200 : s->len),
             (const char *)s->data, (long long)seq, (long long)ts, state);
  snap_snapshot_free(s);
  return same;
}

/* ---- conditional save races ---------------------------------------------- */

typedef struct race {
  struct snap_store *st;
  const char *pid;
  int64_t upto;
  int id;
  int *won_by;
  pthread_mutex_t *lock;
  bool failed;
  char why[256];
} race;

static int64_t newest_seq(race *r) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(r->st, r->pid, NULL, &s);
  int64_t seq = rc != SNAP_OK ? -2 : s ? s->seq : SNAP_SEQ_NONE;
  if (rc != SNAP_OK)
    snprintf(r->why, sizeof r->why, "load: %s", snap_error_message());
  snap_snapshot_free(s);
  return seq;
}

/* One thread's loop; returns false with the reason in r->why. */
static bool race_loop(race *r) {
  for (;;) {
    int64_t latest = newest_seq(r);
    if (latest == -2)
      return false;
    if (latest >= r->upto)
      return true;
    char state[64];
    snprintf(state, sizeof state, "{\"by\":%d,\"seq\":%" PRId64 "}", r->id, latest + 1);
    snap_save_req req = {r->pid, latest + 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, state,
                         strlen(state), NULL};
    snap_save_ext x = {.flags = SNAP_SAVE_IF_LATEST, .expected_seq = latest};
    snap_meta m;
    int rc = snap_save_ex(r->st, &req, &x, &m);
    if (rc == SNAP_ECONFLICT) {
      if (m.current_seq <= latest) {
        snprintf(r->why, sizeof r->why, "conflict on seq %" PRId64 " reports current %" PRId64,
                 latest + 1, m.current_seq);
        return false;
      }
      continue;
    }
    if (rc != SNAP_OK) {
      snprintf(r->why, sizeof r->why, "save %" PRId64 ": %s", latest + 1, snap_error_message());
      return false;
    }
    pthread_mutex_lock(r->lock);
    int before = r->won_by[latest + 1];
    r->won_by[latest + 1] = r->id;
    pthread_mutex_unlock(r->lock);
    if (before != 0) {
      snprintf(r->why, sizeof r->why, "seq %" PRId64 " won by %d and by %d", latest + 1, before,
               r->id);
      return false;
    }
  }
}

static void *race_thread(void *arg) {
  race *r = arg;
  r->failed = !race_loop(r);
  return NULL;
}

bool st_race_conditional(struct snap_store *st, const char *pid, int threads, int64_t upto,
                         int tag, int *won_by, char *why, size_t cap) {
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  race rs[64];
  pthread_t th[64];
  if (threads > 64)
    threads = 64;
  for (int i = 0; i < threads; i++) {
    rs[i] = (race){st, pid, upto, tag * 100 + i + 1, won_by, &lock, false, ""};
    pthread_create(&th[i], NULL, race_thread, &rs[i]);
  }
  bool ok = true;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    if (rs[i].failed && ok) {
      snprintf(why, cap, "thread %d: %s", rs[i].id, rs[i].why);
      ok = false;
    }
  }
  return ok;
}

bool st_race_check(struct snap_store *st, const char *pid, int64_t upto, const int *won_by,
                   char *why, size_t cap) {
  for (int64_t seq = 0; seq <= upto; seq++) {
    if (won_by[seq] == 0) {
      snprintf(why, cap, "seq %" PRId64 ": no winner", seq);
      return false;
    }
    snap_criteria c = {seq, seq, 0, INT64_MAX};
    snap_snapshot *s = NULL;
    char want[64];
    snprintf(want, sizeof want, "{\"by\":%d,\"seq\":%" PRId64 "}", won_by[seq], seq);
    int rc = snap_load(st, pid, &c, NULL, &s);
    bool same = rc == SNAP_OK && s != NULL && s->len == strlen(want) &&
                memcmp(s->data, want, s->len) == 0;
    if (!same)
      snprintf(why, cap, "seq %" PRId64 ": stored %s, the winner wrote %s", seq,
               rc != SNAP_OK ? snap_error_message() : s ? (const char *)s->data : "nothing", want);
    snap_snapshot_free(s);
    if (!same)
      return false;
  }
  return true;
}

/* A child of st_race_two_processes(): races, then writes its wins (and its
 * failure, if any) to `fd`. */
static _Noreturn void race_child(const struct snap_backend *backend, const char *config,
                                 const char *pid, int threads, int64_t upto, int tag, int fd) {
  int won_by[1001] = {0};
  char why[512] = "";
  snap_store *st = NULL;
  bool ok = snap_store_open_backend(&st, backend, config) == SNAP_OK;
  if (!ok)
    snprintf(why, sizeof why, "open: %s", snap_error_message());
  else
    ok = st_race_conditional(st, pid, threads, upto, tag, won_by, why, sizeof why);
  snap_store_close(st);
  bool written = write(fd, why, sizeof why) == (ssize_t)sizeof why &&
                 write(fd, won_by, sizeof won_by) == (ssize_t)sizeof won_by;
  _exit(ok && written ? 0 : 1);
}

static bool read_full(int fd, void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0)
      return false;
    p += r;
    n -= (size_t)r;
  }
  return true;
}

bool st_race_two_processes(const struct snap_backend *backend, const char *config,
                           const char *pid, int threads, int64_t upto, char *why, size_t cap) {
  static int won_by[1001], theirs[1001];
  if (upto > 1000)
    upto = 1000;
  memset(won_by, 0, sizeof won_by);
  int fds[2][2];
  pid_t kids[2];
  for (int k = 0; k < 2; k++) {
    if (pipe(fds[k]) != 0 || (kids[k] = fork()) < 0) {
      snprintf(why, cap, "pipe/fork: %s", strerror(errno));
      return false;
    }
    if (kids[k] == 0)
      race_child(backend, config, pid, threads, upto, k + 1, fds[k][1]);
    close(fds[k][1]);
  }
  bool ok = true;
  for (int k = 0; k < 2; k++) {
    char child_why[512];
    int status = 0;
    bool got = read_full(fds[k][0], child_why, sizeof child_why) &&
               read_full(fds[k][0], theirs, sizeof theirs);
    close(fds[k][0]);
    waitpid(kids[k], &status, 0);
    if (ok && (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
      snprintf(why, cap, "process %d: %s", k + 1, got ? child_why : "no report");
      ok = false;
    }
    for (int64_t seq = 0; ok && seq <= upto; seq++) {
      if (theirs[seq] != 0 && won_by[seq] != 0) {
        snprintf(why, cap, "seq %" PRId64 " won by %d and by %d", seq, won_by[seq],
                 theirs[seq]);
        ok = false;
      } else if (theirs[seq] != 0) {
        won_by[seq] = theirs[seq];
      }
    }
  }
  snap_store *st = NULL;
  if (ok && snap_store_open_backend(&st, backend, config) != SNAP_OK) {
    snprintf(why, cap, "open: %s", snap_error_message());
    ok = false;
  }
  if (ok)
    ok = st_race_check(st, pid, upto, won_by, why, cap);
  snap_store_close(st);
  return ok;
}
