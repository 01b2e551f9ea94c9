/* The "postgres" backend's connections: one pool per shard, connections
 * opened on demand up to pool_size, each connected within connect_timeout_ms,
 * checked for the schema once per shard, and with every statement prepared.
 * A connection found dead when taken from the pool (the server restarted, an
 * idle timeout closed it) is replaced instead of failing the caller's
 * operation; one that fails during an operation is closed on release. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int snap__pg_shard_init(snap_pg *b, int s, const char *conninfo) {
  snap_pg_shard *sh = &b->shards[s];
  size_t n = strlen(conninfo) + 1;
  sh->conninfo = b->host->malloc(n);
  if (sh->conninfo == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  memcpy(sh->conninfo, conninfo, n);
  pthread_mutex_init(&sh->lock, NULL);
  pthread_cond_init(&sh->cond, NULL);
  pthread_mutex_init(&sh->ddl, NULL);
  atomic_init(&sh->ready, 0);
  atomic_init(&sh->swept, 0);
  /* The label names the shard by the parts of its conninfo that identify a
   * server and never by the string itself, which may hold a password. */
  PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
  if (opts == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  int len = snprintf(sh->label, sizeof sh->label, "shard %d/%d (", s, b->nshards);
  bool any = false;
  static const char *const shown[] = {"host", "hostaddr", "port", "dbname"};
  for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) {
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
      if (strcmp(o->keyword, shown[k]) != 0 || o->val == NULL || o->val[0] == '\0')
        continue;
      if (len > 0 && (size_t)len < sizeof sh->label)
        len += snprintf(sh->label + len, sizeof sh->label - (size_t)len, "%s%s=%s", any ? " " : "",
                        o->keyword, o->val);
      any = true;
    }
  }
  if (len > 0 && (size_t)len < sizeof sh->label)
    snprintf(sh->label + len, sizeof sh->label - (size_t)len, "%s)", any ? "" : "defaults");
  PQconninfoFree(opts);
  return SNAP_OK;
}

static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Connects within connect_ms, polling the socket ourselves: libpq's own
 * connect_timeout has a granularity of seconds and a minimum of two. */
static int connect_one(snap_pg *b, int s, PGconn **out) {
  snap_pg_shard *sh = &b->shards[s];
  const char *keys[] = {"fallback_application_name", "dbname", NULL};
  const char *vals[] = {"snapstore", sh->conninfo, NULL};
  PGconn *pg = PQconnectStartParams(keys, vals, 1);
  *out = NULL;
  if (pg == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres %s: out of memory connecting", sh->label);
  int64_t deadline = snap__pg_now_ms() + b->connect_ms;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (PQstatus(pg) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    int64_t left = deadline - snap__pg_now_ms();
    if (left <= 0) {
      PQfinish(pg);
      return b->host->error(SNAP_EIO, "postgres %s: cannot connect: no answer within %d ms",
                            sh->label, b->connect_ms);
    }
    struct pollfd p = {PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
    if (p.fd >= 0 && poll(&p, 1, (int)left) == 0)
      continue; /* the deadline check above ends it */
    st = PQconnectPoll(pg);
  }
  if (PQstatus(pg) != CONNECTION_OK) {
    /* The first line says what failed; the rest are hints. */
    char line[512];
    const char *msg = PQerrorMessage(pg);
    size_t n = strcspn(msg, "\n");
    if (n >= sizeof line)
      n = sizeof line - 1;
    memcpy(line, msg, n);
    line[n] = '\0';
    PQfinish(pg);
    return b->host->error(SNAP_EIO, "postgres %s: cannot connect: %s", sh->label, line);
  }
  /* Notices ("relation already exists, skipping") are not the caller's
   * business and must not reach its stderr. */
  PQsetNoticeProcessor(pg, ignore_notice, NULL);
  if (PQsetnonblocking(pg, 1) != 0 || PQenterPipelineMode(pg) != 1) {
    PQfinish(pg);
    return b->host->error(SNAP_EIO, "postgres %s: cannot enter pipeline mode", sh->label);
  }
  *out = pg;
  return SNAP_OK;
}

static int open_conn(snap_pg *b, int s, snap_pg_conn **out) {
  snap_pg_conn *c = b->host->malloc(sizeof *c);
  *out = NULL;
  if (c == NULL)
    return b->host->error(SNAP_ENOMEM, "postgres backend: out of memory");
  memset(c, 0, sizeof *c);
  int e = connect_one(b, s, &c->pg);
  snap_pg_shard *sh = &b->shards[s];
  if (e == SNAP_OK && !atomic_load_explicit(&sh->ready, memory_order_acquire)) {
    pthread_mutex_lock(&sh->ddl);
    if (!atomic_load_explicit(&sh->ready, memory_order_relaxed)) {
      e = snap__pg_schema(b, s, c);
      if (e == SNAP_OK)
        atomic_store_explicit(&sh->ready, 1, memory_order_release);
    }
    pthread_mutex_unlock(&sh->ddl);
  }
  if (e == SNAP_OK)
    e = snap__pg_prepare_all(b, s, c);
  if (e != SNAP_OK) {
    PQfinish(c->pg);
    b->host->free(c);
    return e;
  }
  /* The first connection of a shard reclaims what dead stream writers left
   * there (bounded; streams.c), as an SQLite store does when it opens. */
  if (!b->no_create && atomic_exchange(&sh->swept, 1) == 0)
    snap__pg_streams_open_sweep(b, s, c);
  *out = c;
  return SNAP_OK;
}

int snap__pg_connect(snap_pg *b, int s, snap_pg_conn **out) { return open_conn(b, s, out); }

static void close_conn(snap_pg *b, snap_pg_conn *c) {
  PQfinish(c->pg);
  b->host->free(c);
}

void snap__pg_disconnect(snap_pg *b, snap_pg_conn *c) {
  if (c != NULL)
    close_conn(b, c);
}

/* Whether an idle connection is still alive. An idle connection has nothing
 * to read; readable means the server closed it or sent a FATAL message. */
static bool alive(snap_pg_conn *c) {
  if (PQstatus(c->pg) != CONNECTION_OK)
    return false;
  struct pollfd p = {PQsocket(c->pg), POLLIN, 0};
  if (poll(&p, 1, 0) <= 0)
    return true;
  /* A notice or a parameter change is harmless; an end of file or a FATAL
   * message (administrator shutdown) leaves the connection bad. */
  return PQconsumeInput(c->pg) && PQstatus(c->pg) == CONNECTION_OK;
}

int snap__pg_acquire(snap_pg *b, int s, snap_pg_conn **out) {
  snap_pg_shard *sh = &b->shards[s];
  *out = NULL;
  pthread_mutex_lock(&sh->lock);
  for (;;) {
    if (sh->idle != NULL) {
      snap_pg_conn *c = sh->idle;
      sh->idle = c->next;
      pthread_mutex_unlock(&sh->lock);
      if (alive(c)) {
        *out = c;
        return SNAP_OK;
      }
      close_conn(b, c);
      pthread_mutex_lock(&sh->lock);
      sh->open--;
      continue;
    }
    if (sh->open < b->pool_size) {
      sh->open++;
      pthread_mutex_unlock(&sh->lock);
      int e = open_conn(b, s, out);
      if (e != SNAP_OK) {
        pthread_mutex_lock(&sh->lock);
        sh->open--;
        pthread_cond_signal(&sh->cond);
        pthread_mutex_unlock(&sh->lock);
      }
      return e;
    }
    /* Every connection is in use; each operation ends within its deadline. */
    pthread_cond_wait(&sh->cond, &sh->lock);
  }
}

void snap__pg_release(snap_pg *b, int s, snap_pg_conn *c) {
  snap_pg_shard *sh = &b->shards[s];
  if (c->broken || PQstatus(c->pg) != CONNECTION_OK) {
    close_conn(b, c);
    pthread_mutex_lock(&sh->lock);
    sh->open--;
  } else {
    pthread_mutex_lock(&sh->lock);
    c->next = sh->idle;
    sh->idle = c;
  }
  pthread_cond_signal(&sh->cond);
  pthread_mutex_unlock(&sh->lock);
}

void snap__pg_pool_free(snap_pg *b) {
  if (b->shards == NULL)
    return;
  for (int s = 0; s < b->nshards; s++) {
    snap_pg_shard *sh = &b->shards[s];
    if (sh->conninfo == NULL)
      continue; /* never initialised */
    while (sh->idle != NULL) {
      snap_pg_conn *c = sh->idle;
      sh->idle = c->next;
      close_conn(b, c);
    }
    /* Wipe the string: it may hold a password. */
    volatile char *p = sh->conninfo;
    while (*p != '\0')
      *p++ = '\0';
    b->host->free(sh->conninfo);
    pthread_mutex_destroy(&sh->ddl);
    pthread_cond_destroy(&sh->cond);
    pthread_mutex_destroy(&sh->lock);
  }
  b->host->free(b->shards);
  b->shards = NULL;
}
