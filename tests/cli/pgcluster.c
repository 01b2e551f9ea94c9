/* Test helper for shell tests that need a PostgreSQL server: starts a
 * throw-away cluster (tests/support/pg_fixture.c: a private Unix socket, run
 * as the `postgres` user when we are root), runs a command with the cluster
 * published in its environment, then stops and removes the cluster whatever
 * the command did.
 *
 *   pgcluster NDB COMMAND [ARG...]
 *
 * The command sees SNAP_PG_CONNINFO_0 .. SNAP_PG_CONNINFO_<NDB-1> (libpq
 * connection strings of the databases snap0..) and SNAP_PG_FIXTURE. Exit
 * status: the command's, or 2 when the cluster could not be started. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_fixture.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

int main(int argc, char **argv) {
  if (argc < 3 || atoi(argv[1]) < 1 || atoi(argv[1]) > PGFX_MAX_DB) {
    fprintf(stderr, "usage: pgcluster NDB(1-%d) COMMAND [ARG...]\n", PGFX_MAX_DB);
    return 2;
  }
  int ndb = atoi(argv[1]);
  pgfx f;
  char err[512];
  if (pgfx_start(&f, ndb, err, sizeof err) != 0) {
    fprintf(stderr, "pgcluster: the PostgreSQL cluster could not be started: %s\n", err);
    return 2;
  }
  pgfx_export(&f);
  for (int i = 0; i < ndb; i++) {
    char name[32], ci[512];
    snprintf(name, sizeof name, "SNAP_PG_CONNINFO_%d", i);
    pgfx_conninfo(&f, i, ci, sizeof ci);
    setenv(name, ci, 1);
  }
  /* A test runner that gives up on us (timeout) must not leave a server behind. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  pid_t child = fork();
  if (child == 0) {
    execvp(argv[2], argv + 2);
    fprintf(stderr, "pgcluster: %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  int status = 0, rc = 2;
  if (child < 0) {
    fprintf(stderr, "pgcluster: fork: %s\n", strerror(errno));
  } else {
    bool forwarded = false;
    while (waitpid(child, &status, 0) < 0) {
      if (errno != EINTR)
        break;
      if (stop_signal && !forwarded) {
        kill(child, SIGTERM);
        forwarded = true;
      }
    }
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  pgfx_destroy(&f);
  return rc;
}
