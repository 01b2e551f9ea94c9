/* A throw-away PostgreSQL 15 cluster (see pg_fixture.h). */
#define _XOPEN_SOURCE 700
#include "pg_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#define PGFX_USER "snapstore" /* the cluster's superuser role */

/* The account the server runs as: ourselves, or `postgres` when we are root. */
static int server_account(uid_t *uid, gid_t *gid, char *err, size_t cap) {
  *uid = getuid();
  *gid = getgid();
  if (geteuid() != 0)
    return 0;
  struct passwd *pw = getpwnam("postgres");
  if (pw == NULL) {
    snprintf(err, cap, "running as root and there is no 'postgres' user to run the server as "
                       "(install postgresql-15)");
    return -1;
  }
  *uid = pw->pw_uid;
  *gid = pw->pw_gid;
  return 0;
}

/* Runs a server program as the server's account, output appended to the log. */
static int run(const pgfx *f, char *const argv[], char *err, size_t cap) {
  uid_t uid;
  gid_t gid;
  if (server_account(&uid, &gid, err, cap) != 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, cap, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0))
      _exit(126);
    /* Opened as the server's account, so that pg_ctl -l can append to it. */
    int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    if (chdir(f->root) != 0)
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      snprintf(err, cap, "waitpid: %s", strerror(errno));
      return -1;
    }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    snprintf(err, cap, "%s failed (status %d); see %s", argv[0],
             WIFEXITED(status) ? WEXITSTATUS(status) : -1, f->log);
    return -1;
  }
  return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void pgfx_conninfo(const pgfx *f, int db, char *buf, size_t cap) {
  char name[32];
  if (db < 0)
    snprintf(name, sizeof name, "postgres");
  else
    snprintf(name, sizeof name, "snap%d", db);
  snprintf(buf, cap, "host=%s port=5432 user=" PGFX_USER " dbname=%s", f->sock, name);
}

int pgfx_exec(const pgfx *f, int db, const char *sql, char *err, size_t cap) {
  char ci[512];
  pgfx_conninfo(f, db, ci, sizeof ci);
  PGconn *c = PQconnectdb(ci);
  int rc = 0;
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(err, cap, "connect: %s", PQerrorMessage(c));
    rc = -1;
  } else {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
      snprintf(err, cap, "%s: %s", sql, PQresultErrorMessage(r));
      rc = -1;
    }
    PQclear(r);
  }
  PQfinish(c);
  return rc;
}

static int start_server(pgfx *f, char *err, size_t cap) {
  /* The socket directory is the cluster's own; everything else is in the
   * template's postgresql.conf. */
  char opts[320];
  snprintf(opts, sizeof opts, "-k %s", f->sock);
  char *argv[] = {PGFX_BINDIR "/pg_ctl", "start", "-w", "-t", "60", "-D", f->data, "-l", f->log,
                  "-o", opts, NULL};
  if (run(f, argv, err, cap) != 0)
    return -1;
  f->running = true;
  return 0;
}

/* Makes the directories of a cluster rooted at f->root (already created). */
static int layout(pgfx *f, uid_t uid, gid_t gid, char *err, size_t cap) {
  snprintf(f->data, sizeof f->data, "%s/data", f->root);
  snprintf(f->sock, sizeof f->sock, "%s/sock", f->root);
  snprintf(f->log, sizeof f->log, "%s/server.log", f->root);
  /* The private directory belongs to the server's account; root reaches in anyway. */
  if ((mkdir(f->sock, 0700) != 0 && errno != EEXIST) || chown(f->root, uid, gid) != 0 ||
      chown(f->sock, uid, gid) != 0) {
    snprintf(err, cap, "preparing %s: %s", f->root, strerror(errno));
    return -1;
  }
  return 0;
}

/* Whether the server's account can reach `dir` (every directory above it
 * searchable): a build directory under a private home is not, for `postgres`. */
static bool server_reaches(const char *dir, uid_t uid, gid_t gid) {
  if (geteuid() != 0)
    return true;
  pid_t pid = fork();
  if (pid < 0)
    return false;
  if (pid == 0) {
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
      _exit(1);
    _exit(access(dir, X_OK) == 0 ? 0 : 1);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Where the template lives: under the build directory (PGFX_TEMPLATE_DIR,
 * set by CMake), so that it goes away with the build and nothing of 84 MB is
 * left behind in /tmp per user. Only when the server's account cannot reach
 * the build directory (root building under a private home) is it kept in
 * /tmp, one per user. */
static void template_root(char *buf, size_t cap, uid_t uid, gid_t gid) {
#ifdef PGFX_TEMPLATE_DIR
  char parent[sizeof(PGFX_TEMPLATE_DIR)];
  snprintf(parent, sizeof parent, "%s", PGFX_TEMPLATE_DIR);
  char *slash = strrchr(parent, '/');
  if (slash != NULL && slash != parent)
    *slash = '\0';
  (void)mkdir(parent, 0755);
  if (strlen(PGFX_TEMPLATE_DIR) + 16 < cap && server_reaches(parent, uid, gid)) {
    snprintf(buf, cap, "%s-15", PGFX_TEMPLATE_DIR);
    return;
  }
#else
  (void)uid;
  (void)gid;
  (void)server_reaches;
#endif
  snprintf(buf, cap, "/tmp/snap-pg-template-15-%u", (unsigned)geteuid());
}

/* The template's server listens in a short directory of its own under /tmp:
 * a socket path has at most 107 bytes, and a build directory can be deep. */
static int template_socket(pgfx *t, uid_t uid, gid_t gid, char *err, size_t cap) {
  snprintf(t->sock, sizeof t->sock, "/tmp/snap-pg-sock-XXXXXX");
  if (mkdtemp(t->sock) == NULL || chown(t->sock, uid, gid) != 0) {
    snprintf(err, cap, "socket directory %s: %s", t->sock, strerror(errno));
    return -1;
  }
  return 0;
}

/*
 * initdb costs seconds, and much more on a loaded machine, so it runs once
 * per build directory: a template cluster (with its databases already
 * created) is kept there and every cluster starts as a copy of it. A lock
 * file serialises test binaries that start together; a READY file marks a
 * complete template.
 */
static int ensure_template(pgfx *t, uid_t uid, gid_t gid, char *err, size_t cap) {
  memset(t, 0, sizeof *t);
  template_root(t->root, sizeof t->root, uid, gid);
  char lockpath[sizeof t->root + 8], ready[sizeof t->root + 8];
  snprintf(lockpath, sizeof lockpath, "%s.lock", t->root);
  snprintf(ready, sizeof ready, "%s/READY", t->root);
  snprintf(t->data, sizeof t->data, "%s/data", t->root);
  int lk = open(lockpath, O_RDWR | O_CREAT, 0600);
  if (lk < 0 || flock(lk, LOCK_EX) != 0) {
    snprintf(err, cap, "%s: %s", lockpath, strerror(errno));
    if (lk >= 0)
      close(lk);
    return -1;
  }
  int rc = 0;
  struct stat sb;
  if (stat(ready, &sb) != 0) {
    nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* a partial one */
    rc = mkdir(t->root, 0700) == 0 ? layout(t, uid, gid, err, cap) : -1;
    if (rc != 0 && err[0] == '\0')
      snprintf(err, cap, "mkdir %s: %s", t->root, strerror(errno));
    if (rc == 0)
      rc = template_socket(t, uid, gid, err, cap);
    char *initdb[] = {PGFX_BINDIR "/initdb", "-D", t->data, "-U", PGFX_USER, "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync", NULL};
    if (rc == 0)
      rc = run(t, initdb, err, cap);
    if (rc == 0) {
      char conf[320];
      snprintf(conf, sizeof conf, "%s/postgresql.conf", t->data);
      FILE *fp = fopen(conf, "a");
      if (fp == NULL) {
        snprintf(err, cap, "%s: %s", conf, strerror(errno));
        rc = -1;
      } else {
        /* Only a private socket; small memory; fsync stays on. */
        fprintf(fp, "\nlisten_addresses = ''\nport = 5432\nshared_buffers = 32MB\n"
                    "max_connections = 60\nfsync = on\n");
        fclose(fp);
      }
    }
    if (rc == 0)
      rc = start_server(t, err, cap);
    for (int i = 0; i < PGFX_MAX_DB && rc == 0; i++) {
      char sql[64];
      snprintf(sql, sizeof sql, "CREATE DATABASE snap%d", i);
      rc = pgfx_exec(t, -1, sql, err, cap);
    }
    if (t->running && pgfx_stop(t, false, err, cap) != 0)
      rc = -1;
    if (strncmp(t->sock, "/tmp/snap-pg-sock-", 18) == 0)
      nftw(t->sock, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc == 0) {
      int fd = open(ready, O_WRONLY | O_CREAT, 0600);
      rc = fd >= 0 ? close(fd) : -1;
    }
  }
  flock(lk, LOCK_UN);
  close(lk);
  return rc;
}

int pgfx_start(pgfx *f, int ndb, char *err, size_t cap) {
  memset(f, 0, sizeof *f);
  err[0] = '\0';
  if (ndb < 0 || ndb > PGFX_MAX_DB) {
    snprintf(err, cap, "at most %d databases", PGFX_MAX_DB);
    return -1;
  }
  f->ndb = ndb;
  uid_t uid;
  gid_t gid;
  if (server_account(&uid, &gid, err, cap) != 0)
    return -1;
  pgfx t;
  if (ensure_template(&t, uid, gid, err, cap) != 0)
    return -1;
  snprintf(f->root, sizeof f->root, "/tmp/snap-pg-XXXXXX");
  if (mkdtemp(f->root) == NULL) {
    snprintf(err, cap, "mkdtemp: %s", strerror(errno));
    return -1;
  }
  char *cp[] = {"/bin/cp", "-a", t.data, NULL, NULL};
  if (layout(f, uid, gid, err, cap) != 0) {
    pgfx_destroy(f);
    return -1;
  }
  cp[3] = f->data;
  if (run(f, cp, err, cap) != 0 || start_server(f, err, cap) != 0) {
    pgfx_destroy(f);
    return -1;
  }
  return 0;
}

int pgfx_stop(pgfx *f, bool immediate, char *err, size_t cap) {
  char *argv[] = {PGFX_BINDIR "/pg_ctl", "stop", "-w", "-D", f->data, "-m",
                  immediate ? "immediate" : "fast", NULL};
  if (run(f, argv, err, cap) != 0)
    return -1;
  f->running = false;
  return 0;
}

int pgfx_restart(pgfx *f, char *err, size_t cap) { return start_server(f, err, cap); }

void pgfx_destroy(pgfx *f) {
  char err[256];
  if (f->running)
    (void)pgfx_stop(f, true, err, sizeof err);
  if (f->root[0] != '\0')
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  f->root[0] = '\0';
}

void pgfx_export(const pgfx *f) {
  char v[sizeof f->root + 32];
  snprintf(v, sizeof v, "ok:%d:%s", f->ndb, f->root);
  setenv(PGFX_ENV, v, 1);
}

void pgfx_export_failure(const char *why) {
  char v[1024];
  snprintf(v, sizeof v, "failed:%s", why);
  setenv(PGFX_ENV, v, 1);
}

int pgfx_import(pgfx *f, char *err, size_t cap) {
  memset(f, 0, sizeof *f);
  const char *v = getenv(PGFX_ENV);
  if (v == NULL) {
    snprintf(err, cap, "no PostgreSQL cluster was started for this test binary");
    return -1;
  }
  if (strncmp(v, "failed:", 7) == 0) {
    snprintf(err, cap, "the PostgreSQL cluster could not be started: %s", v + 7);
    return -1;
  }
  if (sscanf(v, "ok:%d:%255s", &f->ndb, f->root) != 2) {
    snprintf(err, cap, "malformed %s", PGFX_ENV);
    return -1;
  }
  snprintf(f->data, sizeof f->data, "%s/data", f->root);
  snprintf(f->sock, sizeof f->sock, "%s/sock", f->root);
  snprintf(f->log, sizeof f->log, "%s/server.log", f->root);
  f->running = true;
  return 0;
}
