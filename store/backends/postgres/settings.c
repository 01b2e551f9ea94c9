/* Settings kept with the data set (the backend's setting() slot): rows of the
 * snapstore_settings table of every shard, keyed by (table_name, name), so
 * that every node opening the table agrees on them (the store keeps its
 * retention there, docs/STORE.md "Retention").
 *
 * With several shards a setting is written to every shard and read from every
 * shard; shards that disagree (other values, or the setting present on some
 * and missing on others) are SNAP_ECONFIG naming each shard and its value,
 * never a silent pick: the bodies are intact, the disagreement comes from a
 * write that did not reach every shard (a shard down during a change, a shard
 * restored on its own), and the way out is a change of configuration that
 * writes one value everywhere ("keep_change" for the retention). Writers (and
 * readers, shared) take a session advisory lock on the first shard, so that a
 * change in progress is never read half done.
 *
 * A shard that is down (SNAP_EIO) does not stop a read that the others answer:
 * a store opened while one shard is down still learns its retention and works
 * on the other shards. A write (the first one, or a change) needs every shard,
 * and fails naming the one that is down before anything is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The longest setting name. */
#define NAME_MAX_LEN 64

/* Runs one statement with text parameters as its own pipeline segment. A
 * result with rows goes to `*out` (the caller clears it) when `out` is not
 * NULL. */
static int exec_text(snap_pg *b, int s, snap_pg_conn *c, const char *sql, int n,
                     const char *const *params, PGresult **out) {
  if (out != NULL)
    *out = NULL;
  int64_t deadline = snap__pg_deadline(b);
  if (!PQsendQueryParams(c->pg, sql, n, NULL, params, NULL, NULL, 0))
    return snap__pg_conn_error(b, s, c, "send");
  int e = snap__pg_sync(b, s, c);
  PGresult *r = NULL;
  if (e == SNAP_OK)
    e = snap__pg_next(b, s, c, deadline, &r);
  if (e != SNAP_OK)
    return e;
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    e = snap__pg_result_error(b, s, r, "setting");
  int d = snap__pg_drain(b, s, c, deadline);
  if (e == SNAP_OK)
    e = d;
  if (e == SNAP_OK && out != NULL)
    *out = r;
  else
    PQclear(r);
  return e;
}

/* Reads the setting on shard `s`: 1 found (into `*value`), 0 absent, or an error. */
static int read_one(snap_pg *b, int s, snap_pg_conn *c, const char *name, int64_t *value) {
  const char *p[2] = {b->table, name};
  PGresult *r;
  int e = exec_text(b, s, c, "SELECT value FROM snapstore_settings WHERE table_name = $1 AND "
                             "name = $2",
                    2, p, &r);
  if (e != SNAP_OK)
    return e;
  int found = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
  if (found)
    *value = (int64_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return found;
}

static int write_one(snap_pg *b, int s, snap_pg_conn *c, const char *name, int64_t value) {
  char v[24];
  snprintf(v, sizeof v, "%lld", (long long)value);
  const char *p[3] = {b->table, name, v};
  return exec_text(b, s, c,
                   "INSERT INTO snapstore_settings (table_name, name, value) VALUES ($1, $2, $3) "
                   "ON CONFLICT (table_name, name) DO UPDATE SET value = EXCLUDED.value",
                   3, p, NULL);
}

/* Reads (write = false) or writes the setting on shard `s` >= 1 over a
 * connection of its own. */
static int on_shard(snap_pg *b, int s, const char *name, bool write, int64_t *value) {
  snap_pg_conn *c;
  int e = snap__pg_acquire(b, s, &c);
  if (e != SNAP_OK)
    return e;
  e = write ? write_one(b, s, c, name, *value) : read_one(b, s, c, name, value);
  snap__pg_release(b, s, c);
  return e;
}

/* SNAP_ECONFIG naming every shard and what it holds. */
static int disagreement(snap_pg *b, const char *name, const int *found, const int64_t *vals) {
  char list[2048];
  size_t len = 0;
  int shown = 0;
  for (int s = 0; s < b->nshards && len < sizeof list; s++) {
    if (shown == 16) {
      snprintf(list + len, sizeof list - len, ", ... (%d shards)", b->nshards);
      break;
    }
    char v[32];
    if (found[s] == 1)
      snprintf(v, sizeof v, "%lld", (long long)vals[s]);
    else
      snprintf(v, sizeof v, found[s] == 0 ? "(none)" : "(unreachable)");
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s: %s", shown ? ", " : "",
                            b->shards[s].label, v);
    shown++;
  }
  return b->host->error(SNAP_ECONFIG,
                        "postgres table \"%s\": the setting '%s' is not the same on every shard "
                        "(%s); write one value to every shard (for the retention: open with "
                        "\"keep\" and \"keep_change\": true)",
                        b->table, name, list);
}

/* What the shards hold of a setting. */
typedef struct holding {
  int *found;    /* by shard: 1 present, 0 absent, -1 the shard did not answer (SNAP_EIO) */
  int64_t *vals; /* by shard: the value, where found */
  int nfound;    /* the shards holding it */
  int nabsent;   /* the shards without it */
  int down;      /* a shard that did not answer, or -1 */
} holding;

/* Reads the setting on every shard; shard 0 over `c0` when its lock was
 * taken (else `a` is why not). SNAP_OK, or the first failure other than a
 * shard that is down. */
static int read_all(snap_pg *b, const char *name, snap_pg_conn *c0, bool locked, int a,
                    holding *hd) {
  int e = SNAP_OK;
  for (int s = 0; s < b->nshards && e == SNAP_OK; s++) {
    int f = s > 0    ? on_shard(b, s, name, false, &hd->vals[s])
            : locked ? read_one(b, 0, c0, name, &hd->vals[0])
                     : a;
    if (f == SNAP_EIO) {
      /* A shard that is down: the others can still tell a stored value. */
      hd->found[s] = -1;
      if (hd->down < 0)
        hd->down = s;
    } else if (f < 0) {
      e = f;
    } else {
      hd->found[s] = f;
      hd->nfound += f;
      hd->nabsent += !f;
    }
  }
  return e;
}

/* Concludes from what the shards hold: a disagreement, a shard that is down
 * where every shard is needed, the write of the setting, or its value. */
static int setting_apply(snap_pg *b, const char *name, int mode, int64_t *value, snap_pg_conn *c0,
                         const holding *hd) {
  int first = -1; /* the first shard holding the value */
  for (int s = 0; s < b->nshards && first < 0; s++)
    if (hd->found[s] == 1)
      first = s;
  bool agree = !(hd->nfound > 0 && hd->nabsent > 0);
  for (int s = 0; s < b->nshards && first >= 0; s++)
    agree &= hd->found[s] != 1 || hd->vals[s] == hd->vals[first];
  /* What needs every shard: the first write of the setting, and a change. */
  bool write = mode == SNAP_SETTING_SET || (mode == SNAP_SETTING_INIT && hd->nfound == 0);
  int e = SNAP_OK;
  if (!agree && mode != SNAP_SETTING_SET) {
    e = disagreement(b, name, hd->found, hd->vals);
  } else if (hd->down >= 0 && (write || hd->nfound == 0)) {
    /* The message stays the last shard's that did not answer (it names the
     * shard and why: "cannot connect: ..."); no other error came after it. */
    e = SNAP_EIO;
  } else if (write) {
    /* The first shard last: it is the one every reader sees first. */
    for (int s = b->nshards - 1; s >= 0 && e == SNAP_OK; s--)
      e = s == 0 ? write_one(b, 0, c0, name, *value) : on_shard(b, s, name, true, value);
  } else if (hd->nfound) {
    *value = hd->vals[first];
  }
  return e;
}

int snap__pg_setting(void *self, const char *name, int mode, int64_t *value) {
  snap_pg *b = self;
  const snap_host *h = b->host;
  if (name == NULL || name[0] == '\0' || strlen(name) > NAME_MAX_LEN)
    return h->error(SNAP_EINVAL, "postgres backend: setting name '%s' is not usable",
                    name ? name : "(null)");
  if (mode != SNAP_SETTING_GET && mode != SNAP_SETTING_INIT && mode != SNAP_SETTING_SET)
    return h->error(SNAP_EINVAL, "postgres backend: unknown setting mode %d", mode);
  holding hd = {NULL, NULL, 0, 0, -1};
  hd.found = h->malloc((size_t)b->nshards * sizeof *hd.found);
  hd.vals = h->malloc((size_t)b->nshards * sizeof *hd.vals);
  if (hd.found == NULL || hd.vals == NULL) {
    h->free(hd.found);
    h->free(hd.vals);
    return h->error(SNAP_ENOMEM, "postgres backend: out of memory");
  }
  /* The lock: its own key space (one bigint key, where the per-pid locks use
   * two int keys), "snap" then the FNV-1a of the table name. */
  char key[24];
  snprintf(key, sizeof key, "%lld",
           (long long)(int64_t)(((uint64_t)0x736e6170u << 32) | snap__pg_fnv1a(b->table)));
  const char *kp[1] = {key};
  bool shared = mode == SNAP_SETTING_GET, locked = false;
  snap_pg_conn *c0 = NULL;
  int a = snap__pg_acquire(b, 0, &c0);
  if (a == SNAP_OK) {
    a = exec_text(b, 0, c0,
                  shared ? "SELECT pg_advisory_lock_shared($1::bigint)"
                         : "SELECT pg_advisory_lock($1::bigint)",
                  1, kp, NULL);
    locked = a == SNAP_OK;
  }
  int e = read_all(b, name, c0, locked, a, &hd);
  if (e == SNAP_OK)
    e = setting_apply(b, name, mode, value, c0, &hd);
  if (locked && !c0->broken &&
      exec_text(b, 0, c0,
                shared ? "SELECT pg_advisory_unlock_shared($1::bigint)"
                       : "SELECT pg_advisory_unlock($1::bigint)",
                1, kp, NULL) != SNAP_OK)
    c0->broken = true; /* closing the session releases the lock */
  if (c0 != NULL)
    snap__pg_release(b, 0, c0);
  if (e == SNAP_OK)
    e = hd.nfound > 0;
  h->free(hd.found);
  h->free(hd.vals);
  return e;
}
