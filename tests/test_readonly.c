/* Reading without writing: loads of the sqlite backend never open the writer
 * (no write lock, no journal-mode switch, no free space needed), and the
 * "read_only" key opens the database for reading only, refusing saves and
 * deletes with a clear error. The tests run as root (whom file modes do not
 * stop) and as an ordinary user alike: a held write lock, a database left in
 * rollback-journal mode and a read-only bind mount (in a private mount
 * namespace) stand in for a full disk and read-only media. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_util.h"

static snap_store *open_at(const char *path, const char *extra) {
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"keep\": 0%s%s}", path, extra[0] ? ", " : "",
           extra);
  snap_store *st = NULL;
  int rc = snap_store_open_backend(&st, snap_backend_sqlite(), cfg);
  cr_assert_eq(rc, SNAP_OK, "open %s: %s", cfg, snap_error_message());
  return st;
}

static void state_of(char *buf, size_t cap, int64_t seq) {
  snprintf(buf, cap, "{\"seq\":%" PRId64 ",\"pad\":\"%0300d\"}", seq, (int)seq);
}

/* A database with seqs 1..n of pid "p", closed cleanly (no -wal, no -shm). */
static void fill(const char *path, int n) {
  snap_store *st = open_at(path, "");
  for (int64_t i = 1; i <= n; i++) {
    char s[512];
    state_of(s, sizeof s, i);
    cr_assert_eq(snap_save(st, "p", i, SNAP_FORMAT_JSON, s, strlen(s), NULL, NULL), SNAP_OK, "%s",
                 snap_error_message());
  }
  snap_store_close(st);
}

/* The newest snapshot of "p" is seq `n` with its state, byte for byte. */
static int check_newest(snap_store *st, int64_t n) {
  snap_snapshot *s = NULL;
  int rc = snap_load_latest(st, "p", NULL, &s);
  if (rc != SNAP_OK)
    return rc;
  char want[512];
  state_of(want, sizeof want, n);
  bool ok = s != NULL && s->seq == n && s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
  snap_snapshot_free(s);
  return ok ? SNAP_OK : SNAP_ECORRUPT;
}

static bool file_exists(const char *dir, const char *name) {
  char *p = st_join(dir, name);
  struct stat sb;
  bool ok = stat(p, &sb) == 0;
  free(p);
  return ok;
}

static uint8_t *slurp(const char *path, size_t *len) {
  uint8_t *d = NULL;
  cr_assert(st_read_file(path, &d, len), "%s", path);
  return d;
}

/* Another process holds the write lock: before, the first load of a new store
 * opened the writer and waited for that lock in vain (SNAP_EBUSY). */
Test(readonly, first_load_needs_no_write_lock) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  fill(path, 3);
  sqlite3 *holder = NULL;
  cr_assert_eq(sqlite3_open(path, &holder), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  snap_store *st = open_at(path, "\"busy_timeout_ms\": 50");
  int rc = check_newest(st, 3);
  cr_assert_eq(rc, SNAP_OK, "load beside a held write lock: %d %s", rc, snap_error_message());
  /* Writing still waits for the lock, as it must. */
  cr_assert_eq(snap_save(st, "p", 4, SNAP_FORMAT_JSON, "4", 1, NULL, NULL), SNAP_EBUSY);
  cr_assert_eq(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(holder);
  cr_assert_eq(snap_save(st, "p", 4, SNAP_FORMAT_JSON, "4", 1, NULL, NULL), SNAP_OK);
  snap_store_close(st);
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* Bytes 18 and 19 of a database file are 2 in WAL mode and 1 in rollback mode:
 * a load that leaves them at 1 did not open the writer. */
Test(readonly, loads_do_not_switch_the_journal_mode) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  fill(path, 2);
  sqlite3 *db = NULL;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  size_t n = 0;
  uint8_t *before = slurp(path, &n);
  cr_assert_eq(before[18], 1);
  snap_store *st = open_at(path, "");
  cr_assert_eq(check_newest(st, 2), SNAP_OK, "%s", snap_error_message());
  snap_store_close(st);
  size_t m = 0;
  uint8_t *after = slurp(path, &m);
  cr_assert_eq(m, n);
  cr_assert_eq(memcmp(before, after, n), 0, "a load changed the file (byte 18: %u)", after[18]);
  free(after);
  /* A save opens the writer, which switches to WAL. */
  st = open_at(path, "");
  cr_assert_eq(snap_save(st, "p", 3, SNAP_FORMAT_JSON, "3", 1, NULL, NULL), SNAP_OK);
  snap_store_close(st);
  after = slurp(path, &m);
  cr_assert_eq(after[18], 2);
  free(after);
  free(before);
  free(path);
  st_rmtree(dir);
  free(dir);
}

Test(readonly, read_only_key_loads_and_refuses_every_write) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  fill(path, 5);
  size_t n = 0;
  uint8_t *before = slurp(path, &n);
  snap_store *st = open_at(path, "\"read_only\": true");
  cr_assert_eq(check_newest(st, 5), SNAP_OK, "%s", snap_error_message());
  snap_snapshot *s = NULL;
  cr_assert_eq(snap_load_before(st, "p", 3, NULL, &s), SNAP_OK);
  cr_assert_eq(s->seq, 2);
  snap_snapshot_free(s);

  int rc = snap_save(st, "p", 6, SNAP_FORMAT_JSON, "6", 1, NULL, NULL);
  cr_assert_eq(rc, SNAP_EUNSUPPORTED, "save: %d", rc);
  cr_assert(strstr(snap_error_message(), "read-only") && strstr(snap_error_message(), "t.db"), "%s",
            snap_error_message());
  snap_save_req req = {"p", 7, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "7", 1, NULL};
  int status = SNAP_OK;
  cr_assert_eq(snap_save_batch(st, &req, 1, &status, NULL), SNAP_EUNSUPPORTED);
  cr_assert_eq(status, SNAP_EUNSUPPORTED);
  cr_assert_eq(snap_delete(st, "p", 5), SNAP_EUNSUPPORTED);
  cr_assert(strstr(snap_error_message(), "read-only"), "%s", snap_error_message());
  cr_assert_eq(snap_delete_one(st, "p", 5), SNAP_EUNSUPPORTED);
  snap_criteria all = SNAP_CRITERIA_LATEST;
  cr_assert_eq(snap_delete_matching(st, "p", &all), SNAP_EUNSUPPORTED);
  cr_assert_eq(check_newest(st, 5), SNAP_OK, "nothing was deleted");
  snap_store_close(st);
  size_t m = 0;
  uint8_t *after = slurp(path, &m);
  cr_assert(m == n && memcmp(before, after, n) == 0, "the database file changed");
  free(before);
  free(after);

  /* The key is a boolean. */
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"read_only\": 1}", path);
  cr_assert_eq(snap_store_open_backend(&st, snap_backend_sqlite(), cfg), SNAP_ECONFIG);
  cr_assert(strstr(snap_error_message(), "read_only"), "%s", snap_error_message());
  free(path);
  st_rmtree(dir);
  free(dir);
}

Test(readonly, read_only_never_creates_a_file_or_a_table) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "missing.db");
  snap_store *st = open_at(path, "\"read_only\": true");
  snap_snapshot *s = (snap_snapshot *)1;
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "missing.db"), "%s", snap_error_message());
  cr_assert_null(s);
  snap_store_close(st);
  cr_assert(!file_exists(dir, "missing.db"), "a read-only store created the file");

  char *other = st_join(dir, "t.db");
  fill(other, 1);
  st = open_at(other, "\"read_only\": true, \"table\": \"elsewhere\"");
  cr_assert_eq(snap_load_latest(st, "p", NULL, &s), SNAP_EIO);
  cr_assert(strstr(snap_error_message(), "elsewhere"), "%s", snap_error_message());
  snap_store_close(st);
  free(other);
  free(path);
  st_rmtree(dir);
  free(dir);
}

/* Read-only media: the directory is bind-mounted read-only in a private mount
 * namespace of a child process, so no -wal or -shm can be created (root
 * included). The database was closed cleanly, so neither exists.
 *
 * The privilege to mount comes from root's CAP_SYS_ADMIN or, for an ordinary
 * user, from a user namespace of the child's own. In a plain chroot "/" is no
 * mount point and cannot be made private: the bind mount then also appears
 * in the parent namespace until the child unmounts it. When no way to mount
 * exists (an ordinary user in a chroot, or user namespaces switched off) the
 * test is skipped with the reason. */
#define RO_SKIP 3 /* exit code of a child that could not get the privilege */

static int write_proc(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  int rc = fputs(text, f) < 0 ? -1 : 0;
  return fclose(f) != 0 ? -1 : rc;
}

/* Enters a mount namespace in which this process may mount. 0, or RO_SKIP
 * with the reason written to `why`. */
static int enter_mount_namespace(char *why, size_t cap) {
  if (unshare(CLONE_NEWNS) == 0)
    return 0;
  int first = errno;
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    int e = errno;
    snprintf(why, cap,
             "no privilege to mount: unshare(CLONE_NEWNS) as uid %u: %s; an unprivileged user "
             "namespace (unshare(CLONE_NEWUSER)): %s%s",
             (unsigned)uid, strerror(first), strerror(e),
             e == EPERM ? " (refused in a chroot, or by the system's policy)" : "");
    return RO_SKIP;
  }
  char map[64];
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
  bool ok = write_proc("/proc/self/setgroups", "deny") == 0 &&
            write_proc("/proc/self/uid_map", map) == 0;
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
  if (!ok || write_proc("/proc/self/gid_map", map) != 0) {
    snprintf(why, cap, "mapping ids in a new user namespace: %s", strerror(errno));
    return RO_SKIP;
  }
  return 0;
}

/* The flags a read-only remount must keep: in a user namespace the ones the
 * mount came with are locked, and dropping one is refused. */
static unsigned long kept_flags(const char *dir) {
  struct statvfs sv;
  if (statvfs(dir, &sv) != 0)
    return 0;
  unsigned long f = 0;
  f |= (sv.f_flag & ST_NOSUID) ? MS_NOSUID : 0;
  f |= (sv.f_flag & ST_NODEV) ? MS_NODEV : 0;
  f |= (sv.f_flag & ST_NOEXEC) ? MS_NOEXEC : 0;
  f |= (sv.f_flag & ST_NOATIME) ? MS_NOATIME : 0;
  f |= (sv.f_flag & ST_NODIRATIME) ? MS_NODIRATIME : 0;
  f |= (sv.f_flag & ST_RELATIME) ? MS_RELATIME : 0;
  return f;
}

/* `dir` bind-mounted read-only onto itself. 0, or a step code 11..14 with
 * the system's reason in `why`. */
static int mount_read_only(const char *dir, char *why, size_t cap) {
  int step = 0;
  /* EINVAL: "/" is not a mount point (a plain chroot); see above. */
  unsigned long keep = kept_flags(dir);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 && errno != EINVAL)
    step = 11;
  else if (mount(dir, dir, NULL, MS_BIND, NULL) != 0)
    step = 12;
  else if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) != 0)
    step = 13;
  if (step != 0) {
    snprintf(why, cap, "%s", strerror(errno));
    return step;
  }
  char *probe = st_join(dir, "probe");
  FILE *f = fopen(probe, "w");
  free(probe);
  if (f != NULL || errno != EROFS) {
    snprintf(why, cap, "a file could be created (%s)", f != NULL ? "no error" : strerror(errno));
    if (f != NULL)
      fclose(f);
    return 14; /* the mount is not read-only */
  }
  return 0;
}

static int ro_media_checks(const char *path) {
  for (int pass = 0; pass < 2; pass++) {
    /* pass 0: "read_only": true; pass 1: a store that could write elsewhere. */
    snap_store *st = NULL;
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "{\"path\": \"%s\"%s}", path, pass ? "" : ", \"read_only\": true");
    if (snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK)
      return 20 + pass;
    int rc = check_newest(st, 4);
    if (rc != SNAP_OK) {
      fprintf(stderr, "load on read-only media (pass %d): %s\n", pass, snap_error_message());
      snap_store_close(st);
      return 30 + pass;
    }
    rc = snap_save(st, "p", 9, SNAP_FORMAT_JSON, "9", 1, NULL, NULL);
    snap_store_close(st);
    if (rc == SNAP_OK)
      return 40 + pass;
  }
  return 0;
}

/* The child: the reason for RO_SKIP goes to `fd`. */
static int ro_media_child(const char *dir, const char *path, int fd) {
  char why[512] = "";
  int code = enter_mount_namespace(why, sizeof why);
  if (code == 0)
    code = mount_read_only(dir, why, sizeof why);
  if (code == 0)
    code = ro_media_checks(path);
  if (code != RO_SKIP)
    umount2(dir, MNT_DETACH); /* also from the parent namespace, in a plain chroot */
  ssize_t n = write(fd, why, strlen(why));
  (void)n;
  return code;
}

Test(readonly, loads_work_on_read_only_media_without_wal_or_shm) {
  char *dir = st_tmpdir();
  char *path = st_join(dir, "t.db");
  fill(path, 4);
  cr_assert(!file_exists(dir, "t.db-wal") && !file_exists(dir, "t.db-shm"),
            "the clean close left a -wal or -shm");
  int pipefd[2];
  cr_assert_eq(pipe(pipefd), 0);
  pid_t child = fork();
  cr_assert(child >= 0);
  if (child == 0) {
    close(pipefd[0]);
    _exit(ro_media_child(dir, path, pipefd[1]));
  }
  close(pipefd[1]);
  char why[512] = "";
  ssize_t got = read(pipefd[0], why, sizeof why - 1);
  why[got > 0 ? got : 0] = '\0';
  close(pipefd[0]);
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_assert(WIFEXITED(status), "the child died (status %d)", status);
  int code = WEXITSTATUS(status);
  if (code == RO_SKIP) {
    st_rmtree(dir);
    cr_skip_test("read-only media cannot be simulated here: %s", why);
  }
  cr_assert(code < 10 || code > 14,
            "cannot make a read-only bind mount of %s here (step %d: 11 private /, 12 bind, "
            "13 remount read-only, 14 still writable): %s",
            dir, code, why);
  cr_assert_eq(code, 0, "read-only media: exit %d (2x: open, 3x: load, 4x: a save succeeded)",
               code);
  cr_assert(!file_exists(dir, "t.db-wal") && !file_exists(dir, "t.db-shm"));
  free(path);
  st_rmtree(dir);
  free(dir);
}
