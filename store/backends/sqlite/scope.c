/*
 * Read scopes (backend ABI version 8): a thread that is about to make several
 * loads holds one reader of the pool in one read transaction for all of them.
 * Each load alone is a transaction of its own, and beginning and ending one
 * in WAL mode costs two lock calls on the shared memory and the statement's
 * transaction bookkeeping: about a third of an indexed read of a small row.
 * The executor's load threads take their loads in runs (plugin/src/
 * executor_loads.c) and read each run in one scope.
 *
 * A scope holds a reader for its whole run, so at most READERS - 1 are held
 * at once: the loads inside one may still need a reader of their own (a
 * streamed row's chunks, a data key, a dictionary), and one always stays for
 * them and for every other thread. When none can be spared the scope is
 * simply not begun.
 */
#include "internal.h"

/* The calling thread's scope: the backend it is on and the reader it holds. */
static _Thread_local const sql_backend *scope_backend;
static _Thread_local conn *scope_conn;

conn *snap__sqlite_scoped(const sql_backend *b) {
  return scope_backend == b ? scope_conn : NULL;
}

/* A free reader that is open already, if one can be spared for a scope. */
static conn *spare_reader(sql_backend *b) {
  conn *c = NULL;
  pthread_mutex_lock(&b->plock);
  int free_readers = 0, open_free = -1;
  for (int i = 0; i < READERS; i++) {
    if (b->busy[i])
      continue;
    free_readers++;
    if (open_free < 0 && b->readers[i].db != NULL)
      open_free = i;
  }
  if (open_free >= 0 && free_readers >= 2 && b->scoped < READERS - 1) {
    b->busy[open_free] = true;
    b->scoped++;
    c = &b->readers[open_free];
  }
  pthread_mutex_unlock(&b->plock);
  return c;
}

static void give_back(sql_backend *b, conn *c) {
  pthread_mutex_lock(&b->plock);
  b->scoped--;
  pthread_mutex_unlock(&b->plock);
  snap__sqlite_pool_give(b, c);
}

int snap__sqlite_scope_begin(void *self) {
  sql_backend *b = self;
  if (scope_backend != NULL)
    return SNAP_EBUSY; /* scopes never nest */
  /* Not before the first load: it checks the schema (snap__sqlite_read_ready())
   * and opens the readers a scope may then take. */
  if (!atomic_load_explicit(&b->ready, memory_order_acquire) &&
      !atomic_load_explicit(&b->read_ok, memory_order_acquire))
    return SNAP_EBUSY;
  conn *c = spare_reader(b);
  if (c == NULL)
    return SNAP_EBUSY;
  if (snap__sqlite_run(b, c, S_BEGIN_READ, "begin a read scope") != SNAP_OK) {
    give_back(b, c);
    return SNAP_EBUSY;
  }
  scope_backend = b;
  scope_conn = c;
  return SNAP_OK;
}

void snap__sqlite_scope_end(void *self) {
  sql_backend *b = self;
  if (scope_backend != b)
    return;
  conn *c = scope_conn;
  scope_backend = NULL;
  scope_conn = NULL;
  /* A read transaction commits nothing; a failure (or an error inside that
   * rolled it back already) leaves the reader in autocommit either way. */
  if (!sqlite3_get_autocommit(c->db) &&
      snap__sqlite_run(b, c, S_COMMIT, "end a read scope") != SNAP_OK &&
      !sqlite3_get_autocommit(c->db))
    (void)snap__sqlite_run(b, c, S_ROLLBACK, "end a read scope");
  give_back(b, c);
}
