/* Shared helpers of the PostgreSQL stream tests (pg_stream_util.h). */
#include "pg_stream_util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "snap/sys/backend.h"

const char *const pgs_pids[3] = {"a", "p-0", "account-42"};

snap_store *pgs_open(pgs_store *p, const pgfx *f, int nshards, const char *extra) {
  static atomic_int seq;
  p->f = *f;
  p->nshards = nshards;
  snprintf(p->table, sizeof p->table, "st_%ld_%d", (long)getpid(), atomic_fetch_add(&seq, 1));
  size_t len = (size_t)snprintf(p->cfg, sizeof p->cfg, "{\"table\": \"%s\"%s%s, \"shards\": [",
                                p->table, extra[0] ? ", " : "", extra);
  for (int i = 0; i < nshards; i++) {
    char ci[512];
    pgfx_conninfo(f, i, ci, sizeof ci);
    len += (size_t)snprintf(p->cfg + len, sizeof p->cfg - len, "%s\"%s\"", i ? ", " : "", ci);
  }
  snprintf(p->cfg + len, sizeof p->cfg - len, "]}");
  return pgs_reopen(p);
}

snap_store *pgs_reopen(const pgs_store *p) {
  snap_store *st = NULL;
  if (snap_store_open_backend(&st, snap_backend_postgres(), p->cfg) != SNAP_OK)
    return NULL;
  return st;
}

/* `tpl` with each {T} replaced by the table's name; false when too long. */
static bool expand(const pgs_store *p, const char *tpl, char *sql, size_t cap) {
  size_t o = 0, tl = strlen(p->table);
  for (const char *t = tpl; *t != '\0'; t++) {
    bool name = strncmp(t, "{T}", 3) == 0;
    size_t n = name ? tl : 1;
    if (o + n + 1 > cap)
      return false;
    memcpy(sql + o, name ? p->table : t, n);
    o += n;
    t += name ? 2 : 0;
  }
  sql[o] = '\0';
  return true;
}

long long pgs_sum(const pgs_store *p, const char *tpl, char *err, size_t cap) {
  char sql[4096];
  if (!expand(p, tpl, sql, sizeof sql)) {
    snprintf(err, cap, "statement too long: %s", tpl);
    return -1;
  }
  long long sum = 0;
  for (int i = 0; i < p->nshards && sum >= 0; i++) {
    char ci[512];
    pgfx_conninfo(&p->f, i, ci, sizeof ci);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
      snprintf(err, cap, "connect: %s", PQerrorMessage(c));
      PQfinish(c);
      return -1;
    }
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      snprintf(err, cap, "%s: %s", sql, PQresultErrorMessage(r));
      sum = -1;
    } else if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      sum += atoll(PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
  }
  return sum;
}

uint32_t pgs_fnv1a(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s != '\0'; s++) {
    h ^= (uint8_t)*s;
    h *= 16777619u;
  }
  return h;
}
