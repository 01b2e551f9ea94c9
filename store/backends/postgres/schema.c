/* The "postgres" backend's schema: its version per data set and shard, and
 * the numbered steps that bring a data set from any earlier version to the
 * one this code writes (docs/POSTGRES.md, section 2).
 *
 * snapstore_meta 'schema_version:<table>' holds the version of one data set
 * in one database (shard). A store first looks without a lock or a write; a
 * data set at this code's version needs nothing more, so a role without
 * CREATE privilege can use a prepared database. Otherwise one transaction
 * takes the schema's advisory lock, reads the version again under it, runs
 * the steps after it, records the new version and commits: many nodes
 * starting together queue on the lock, the first upgrades, the others find
 * the work done. A data set one of whose tables is missing is at version 0:
 * every step is idempotent, so running them all again recreates what is
 * missing and touches no row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The advisory lock key of the schema work: ASCII "snapstor". */
#define SCHEMA_LOCK_KEY "7165135455183433586"

/* Step 1: the data table (and snapstore_meta, which the upgrade transaction
 * creates before it reads the version, so that it can read it). */
static const char *const step_tables[] = {
    "CREATE TABLE IF NOT EXISTS snapstore_meta (name text PRIMARY KEY, value bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS \"%s\" (persistence_id text COLLATE \"C\" NOT NULL, "
    "seq bigint NOT NULL, ts bigint NOT NULL, slice integer NOT NULL, "
    "body bytea NOT NULL, PRIMARY KEY (persistence_id, seq))",
    /* Bodies are compressed (or not) by the pipeline, encrypted ones do not
     * compress at all: PostgreSQL's own TOAST compression would only spend
     * CPU, so large bodies are stored out of line uncompressed. */
    "ALTER TABLE \"%s\" ALTER COLUMN body SET STORAGE EXTERNAL",
    NULL,
};

/* Step 2: settings kept with the data set, per data table (settings.c). */
static const char *const step_settings[] = {
    "CREATE TABLE IF NOT EXISTS snapstore_settings (table_name text NOT NULL, name text NOT "
    "NULL, value bigint NOT NULL, PRIMARY KEY (table_name, name))",
    NULL,
};

/* Step 3: the manifest column (NULL in older rows), which load4() selects by. */
static const char *const step_manifest[] = {
    "ALTER TABLE \"%s\" ADD COLUMN IF NOT EXISTS manifest text",
    NULL,
};

/* Step 4: the key table of envelope encryption (keys.c): one row per shred
 * unit of this shard, its wrapped data key or, once forgotten, a tombstone.
 * Units sort in byte order, as pids do. */
static const char *const step_keys[] = {
    "CREATE TABLE IF NOT EXISTS \"%s\" (unit text COLLATE \"C\" PRIMARY KEY, generation bigint "
    "NOT NULL, master_version bigint NOT NULL, wrapped bytea)",
    /* A rewrap updates every row: room on each page lets the new row
     * version stay there (a HOT update, no index entry to add). */
    "ALTER TABLE \"%s\" SET (fillfactor = 50)",
    NULL,
};

/* Step 5: the dictionary table of zstd compression (dicts.c): one row per
 * trained dictionary, its bytes sealed like a body; the same rows on every
 * shard. */
static const char *const step_dicts[] = {
    "CREATE TABLE IF NOT EXISTS \"%s\" (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, "
    "created bigint NOT NULL, body bytea NOT NULL)",
    NULL,
};

/* Step 6: streamed snapshots (streams.c). A streamed row's body is the
 * stream's head and its stream column names the chunk records in
 * "<table>_chunks", one row per record (each at most 64 MiB; never the
 * state in one value). Records keep TOAST's default storage (EXTENDED,
 * stated): pglz gives up after the first KiB of a compressed or sealed
 * record, so those are not compressed twice at any measurable cost, while
 * a plain stream's records shrink (docs/POSTGRES.md section 2b has the
 * measurement).
 * "<table>_staging" lists the streams being written, each leased to its
 * writer by a session advisory lock. Triggers delete a row's chunks in the
 * transaction that deletes, prunes or replaces the row. Templates name
 * {T} the data table, {C} the chunk table, {S} the staging table and {F}
 * the trigger function. */
static const char *const step_streams[] = {
    "ALTER TABLE \"{T}\" ADD COLUMN IF NOT EXISTS stream bigint",
    "CREATE TABLE IF NOT EXISTS \"{C}\" (stream bigint NOT NULL, n bigint NOT NULL, "
    "record bytea NOT NULL, PRIMARY KEY (stream, n))",
    "ALTER TABLE \"{C}\" ALTER COLUMN record SET STORAGE EXTENDED",
    "CREATE TABLE IF NOT EXISTS \"{S}\" (stream bigint PRIMARY KEY, persistence_id text "
    "COLLATE \"C\" NOT NULL, seq bigint NOT NULL, started bigint NOT NULL)",
    "CREATE OR REPLACE FUNCTION \"{F}\"() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
    "DELETE FROM \"{C}\" WHERE stream = OLD.stream; RETURN NULL; END $f$",
    "DROP TRIGGER IF EXISTS snap_unchunk_delete ON \"{T}\"",
    "CREATE TRIGGER snap_unchunk_delete AFTER DELETE ON \"{T}\" FOR EACH ROW WHEN "
    "(OLD.stream IS NOT NULL) EXECUTE FUNCTION \"{F}\"()",
    "DROP TRIGGER IF EXISTS snap_unchunk_update ON \"{T}\"",
    "CREATE TRIGGER snap_unchunk_update AFTER UPDATE OF stream ON \"{T}\" FOR EACH ROW WHEN "
    "(OLD.stream IS NOT NULL AND OLD.stream IS DISTINCT FROM NEW.stream) EXECUTE FUNCTION "
    "\"{F}\"()",
    NULL,
};

/* The table a step's templates name (ON_STREAMS: several, by {X}). */
enum { ON_DATA, ON_KEYS, ON_DICTS, ON_STREAMS };

/* One upgrade step, from `version - 1` to `version`: statements run in the
 * upgrade transaction, each a template whose every %s is the name of the
 * step's table (`on`: the data table, the key table or the dictionary
 * table). Each must be idempotent (IF NOT EXISTS, ADD COLUMN IF NOT
 * EXISTS...) and none may end the transaction. */
typedef struct schema_step {
  int version;
  const char *what;
  const char *const *sql;
  int on;
} schema_step;

/* Append a step here, numbered one more than the last, and raise
 * SNAP_PG_SCHEMA_VERSION to it (internal.h; docs/POSTGRES.md). */
static const schema_step steps[] = {
    {1, "create the data table and snapstore_meta", step_tables, ON_DATA},
    {2, "create snapstore_settings", step_settings, ON_DATA},
    {3, "add the manifest column", step_manifest, ON_DATA},
    {4, "create the key table of envelope encryption", step_keys, ON_KEYS},
    {5, "create the dictionary table of zstd compression", step_dicts, ON_DICTS},
    {6, "create the chunk and staging tables of streamed snapshots", step_streams, ON_STREAMS},
};

#define STEP_COUNT ((int)(sizeof steps / sizeof steps[0]))

_Static_assert(sizeof steps / sizeof steps[0] == SNAP_PG_SCHEMA_VERSION,
               "one step per schema version");

/* How many of step 6's two triggers the data table (named by the template's
 * next %s) has. A restore of its tables alone (pg_dump -t never dumps
 * functions) brings the tables back without them, and then deleting or
 * pruning a streamed row would leave its chunk rows behind: the schema
 * counts as not current, and the next open that may write runs the steps
 * again (each idempotent), which puts them back. */
#define STREAM_TRIGGERS_TPL                                                                        \
  "(SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('\"%s\"') AND tgname IN "        \
  "('snap_unchunk_delete', 'snap_unchunk_update'))"

/* The version of the data set in this database as the upgrade transaction
 * reads it: 0 when one of its tables is missing (or no version is recorded),
 * otherwise the recorded value. The key and dictionary tables count from
 * the version that creates them. $1 is the version row's name. */
static const char version_tpl[] =
    "SELECT CASE WHEN to_regclass('\"%s\"') IS NULL OR to_regclass('snapstore_settings') IS NULL "
    "THEN 0 ELSE COALESCE((SELECT CASE WHEN (value >= 4 AND to_regclass('\"%s\"') IS NULL) OR "
    "(value >= 5 AND to_regclass('\"%s\"') IS NULL) OR (value >= 6 AND (to_regclass('\"%s\"') "
    "IS NULL OR to_regclass('\"%s\"') IS NULL OR " STREAM_TRIGGERS_TPL " < 2)) THEN 0 ELSE value "
    "END FROM snapstore_meta WHERE name = $1), 0) END";

/* Records the version reached. Raises an older known version only: a newer
 * or an unknown one stays for the checks of snap__pg_schema() to refuse. */
static const char record_tpl[] =
    "INSERT INTO snapstore_meta (name, value) VALUES ($1, %d) ON CONFLICT (name) DO "
    "UPDATE SET value = EXCLUDED.value WHERE snapstore_meta.value BETWEEN 1 AND EXCLUDED.value";

/* The read-only look: which tables exist (`*tables`: 1 the data table and
 * snapstore_meta, 2 snapstore_settings, 4 the key table, 8 the dictionary
 * table, 16 the chunk table, 32 the staging table; 64 the data table has
 * both stream triggers) and, when the first two do, the data set's
 * recorded version (-1: none). */
static int schema_look(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline, const char *key,
                       int64_t *tables, int64_t *version) {
  char regclass[SNAP_PG_TABLE_MAX + 8], sql[2048];
  snprintf(regclass, sizeof regclass, "\"%s\"", b->table);
  snprintf(sql, sizeof sql,
           "SELECT (to_regclass('snapstore_meta') IS NOT NULL AND to_regclass($1) IS NOT "
           "NULL)::int + 2 * (to_regclass('snapstore_settings') IS NOT NULL)::int + 4 * "
           "(to_regclass('\"%s\"') IS NOT NULL)::int + 8 * (to_regclass('\"%s\"') IS NOT "
           "NULL)::int + 16 * (to_regclass('\"%s\"') IS NOT NULL)::int + 32 * "
           "(to_regclass('\"%s\"') IS NOT NULL)::int + 64 * (" STREAM_TRIGGERS_TPL " = 2)::int",
           b->keys, b->dicts, b->chunks, b->staging, b->table);
  int e = snap__pg_send_text(b, s, c, sql, regclass);
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, c);
  if (e == SNAP_OK)
    e = snap__pg_read_results(b, s, c, deadline, tables);
  if (e == SNAP_OK && (*tables & 1)) {
    e = snap__pg_send_text(b, s, c, "SELECT value FROM snapstore_meta WHERE name = $1", key);
    if (e == SNAP_OK)
      e = snap__pg_sync(b, s, c);
    if (e == SNAP_OK)
      e = snap__pg_read_results(b, s, c, deadline, version);
  }
  return e;
}

/* Ends a failed or refused upgrade transaction, leaving the connection usable. */
static void roll_back(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline) {
  if (c->broken || PQtransactionStatus(c->pg) == PQTRANS_IDLE)
    return;
  if (snap__pg_send_text(b, s, c, "ROLLBACK", NULL) == SNAP_OK &&
      snap__pg_sync(b, s, c) == SNAP_OK)
    (void)snap__pg_drain(b, s, c, deadline);
}

/* Expands a template of an ON_STREAMS step ({T}, {C}, {S}, {F}). */
static void expand(const snap_pg *b, const char *tpl, char *out, size_t cap) {
  size_t o = 0;
  for (const char *p = tpl; *p != '\0' && o + 1 < cap; p++) {
    const char *name = NULL;
    if (p[0] == '{' && p[1] != '\0' && p[2] == '}')
      name = p[1] == 'T' ? b->table : p[1] == 'C' ? b->chunks : p[1] == 'S' ? b->staging
             : p[1] == 'F' ? b->unchunk : NULL;
    if (name == NULL) {
      out[o++] = *p;
      continue;
    }
    for (const char *q = name; *q != '\0' && o + 1 < cap; q++)
      out[o++] = *q;
    p += 2;
  }
  out[o] = '\0';
}

/* Sends the statements of the steps after `from`, then records the version
 * and reads it back. */
static int send_steps(snap_pg *b, int s, snap_pg_conn *c, const char *key, int64_t from) {
  int e = SNAP_OK;
  char sql[1024];
  for (int i = 0; i < STEP_COUNT && e == SNAP_OK; i++) {
    if (steps[i].version <= from)
      continue;
    const char *name = steps[i].on == ON_KEYS    ? b->keys
                       : steps[i].on == ON_DICTS ? b->dicts
                                                 : b->table;
    for (const char *const *t = steps[i].sql; *t != NULL && e == SNAP_OK; t++) {
      if (steps[i].on == ON_STREAMS)
        expand(b, *t, sql, sizeof sql);
      else
        snprintf(sql, sizeof sql, *t, name, name);
      e = snap__pg_send_text(b, s, c, sql, NULL);
    }
  }
  if (e == SNAP_OK) {
    snprintf(sql, sizeof sql, record_tpl, SNAP_PG_SCHEMA_VERSION);
    e = snap__pg_send_text(b, s, c, sql, key);
  }
  if (e == SNAP_OK)
    e = snap__pg_send_text(b, s, c, "SELECT value FROM snapstore_meta WHERE name = $1", key);
  if (e == SNAP_OK)
    e = snap__pg_send_text(b, s, c, "COMMIT", NULL);
  return e == SNAP_OK ? snap__pg_sync(b, s, c) : e;
}

static int newer(snap_pg *b, int s, int64_t version) {
  return b->host->error(SNAP_EFORMAT,
                        "postgres %s table \"%s\": schema version %lld is newer than the version "
                        "%d this snapstore understands; upgrade snapstore to use it",
                        b->shards[s].label, b->table, (long long)version, SNAP_PG_SCHEMA_VERSION);
}

/* The upgrade transaction (see the top of this file). The version it leaves
 * goes to `*version`. */
static int upgrade(snap_pg *b, int s, snap_pg_conn *c, int64_t deadline, const char *key,
                   int64_t *version) {
  char sql[2048];
  snprintf(sql, sizeof sql, version_tpl, b->table, b->keys, b->dicts, b->chunks, b->staging,
           b->table);
  const char *head[] = {
      "BEGIN",
      "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")",
      step_tables[0], /* snapstore_meta, to read the version from */
      sql,
  };
  int e = SNAP_OK;
  for (size_t i = 0; i < sizeof head / sizeof head[0] && e == SNAP_OK; i++)
    e = snap__pg_send_text(b, s, c, head[i], i == 3 ? key : NULL);
  if (e == SNAP_OK)
    e = snap__pg_sync(b, s, c);
  int64_t from = 0;
  if (e == SNAP_OK)
    e = snap__pg_read_results(b, s, c, deadline, &from);
  if (e == SNAP_OK && from > SNAP_PG_SCHEMA_VERSION)
    e = newer(b, s, from);
  if (e == SNAP_OK)
    e = send_steps(b, s, c, key, from);
  if (e == SNAP_OK)
    e = snap__pg_read_results(b, s, c, deadline, version);
  if (e != SNAP_OK)
    roll_back(b, s, c, deadline);
  return e;
}

int snap__pg_schema(snap_pg *b, int s, snap_pg_conn *c) {
  int64_t deadline = snap__pg_deadline(b);
  char key[SNAP_PG_TABLE_MAX + 32];
  snprintf(key, sizeof key, "schema_version:%s", b->table);
  int64_t tables = 0, version = -1;
  int e = schema_look(b, s, c, deadline, key, &tables, &version);
  if (e == SNAP_OK && version > SNAP_PG_SCHEMA_VERSION)
    return newer(b, s, version);
  /* Every table at the current version: enough to read. Current: the
   * triggers too, or an open that may write repairs them. */
  const bool whole = (tables & 63) == 63 && version == SNAP_PG_SCHEMA_VERSION;
  const bool current = whole && (tables & 64);
  /* Opened to read an existing store: create or upgrade nothing. */
  if (e == SNAP_OK && b->no_create && version >= 1 && version < SNAP_PG_SCHEMA_VERSION)
    return b->host->error(SNAP_EFORMAT,
                          "postgres %s table \"%s\": schema version %lld needs an upgrade to "
                          "version %d, which only a store that may write does (open it once "
                          "without the read-only flag); a read-only open changes nothing",
                          b->shards[s].label, b->table, (long long)version,
                          SNAP_PG_SCHEMA_VERSION);
  if (e == SNAP_OK && b->no_create && !whole)
    return b->host->error(SNAP_ENOTFOUND,
                          "postgres %s: no snapstore table \"%s\" (with snapstore_meta and "
                          "snapstore_settings), and the store was opened without creating one",
                          b->shards[s].label, b->table);
  if (e == SNAP_OK && !current && !b->no_create && (version < 0 || version >= 1))
    e = upgrade(b, s, c, deadline, key, &version);
  if (e == SNAP_OK && version > SNAP_PG_SCHEMA_VERSION)
    e = newer(b, s, version);
  else if (e == SNAP_OK && version < 1)
    e = b->host->error(SNAP_EFORMAT, "postgres %s table \"%s\": schema version %lld is unknown",
                       b->shards[s].label, b->table, (long long)version);
  return e;
}
