/* A throw-away PostgreSQL 15 cluster for the tests and the benchmark: initdb
 * in a private temporary directory, listening only on a Unix socket in that
 * directory, run as the unprivileged `postgres` user when the process is root
 * (the server refuses to run as root). fsync stays on: what the tests check
 * about durability is what production gets. */
#ifndef SNAP_TEST_PG_FIXTURE_H
#define SNAP_TEST_PG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

/** The directory of the PostgreSQL 15 server programs (Debian's layout). */
#define PGFX_BINDIR "/usr/lib/postgresql/15/bin"
/** The most databases a cluster has (snap0..snap3). */
#define PGFX_MAX_DB 4
/** The environment variable through which test processes find the cluster. */
#define PGFX_ENV "SNAP_PG_FIXTURE"

/** A cluster: its directories and the number of databases snap0..snap<n-1>. */
typedef struct pgfx {
  char root[256]; /* the private directory holding everything below */
  char data[288];
  char sock[288];
  char log[288];
  int ndb;
  bool running;
} pgfx;

/**
 * Creates and starts a cluster with `ndb` (at most PGFX_MAX_DB) empty databases
 * snap0..snap<ndb-1>, as a copy of a template cluster made once per build
 * directory (PGFX_TEMPLATE_DIR; /tmp when it is not defined or the server's
 * account cannot reach it).
 * Returns 0, or -1 with the reason (and the server log's path) in `err`;
 * whatever was created is removed again on failure.
 */
int pgfx_start(pgfx *f, int ndb, char *err, size_t cap);

/** Stops the server: `immediate` is a crash (pg_ctl stop -m immediate). 0 or -1. */
int pgfx_stop(pgfx *f, bool immediate, char *err, size_t cap);

/** Starts a stopped server again (crash recovery runs when it was killed). 0 or -1. */
int pgfx_restart(pgfx *f, char *err, size_t cap);

/** Stops the server if it runs and removes the cluster's directory. */
void pgfx_destroy(pgfx *f);

/** The libpq connection string of database `db` (snap<db>, or "postgres" when db < 0). */
void pgfx_conninfo(const pgfx *f, int db, char *buf, size_t cap);

/** Publishes the cluster to child processes (an environment variable). */
void pgfx_export(const pgfx *f);

/**
 * Finds the cluster published by pgfx_export() or the reason it could not be
 * started (set by pgfx_export_failure()). Returns 0, or -1 with the reason in
 * `err`.
 */
int pgfx_import(pgfx *f, char *err, size_t cap);

/** Publishes why the cluster could not be started, for pgfx_import() to report. */
void pgfx_export_failure(const char *why);

/** Runs one SQL statement on database `db` of the cluster. 0, or -1 with libpq's message. */
int pgfx_exec(const pgfx *f, int db, const char *sql, char *err, size_t cap);

#endif /* SNAP_TEST_PG_FIXTURE_H */
