/* snapctl migrate: bring every body whose manifest is older than the target
 * to the target, through the upcasters the configuration document registers
 * ("upcasters"), batch by batch with conditional replaces
 * (snap_store_migrate()), so that it is safe beside live writers and a killed
 * run is simply run again. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapctl.h"

/* Distinct manifests a dry run counts one by one; the rest are summed. */
#define MAX_MANIFESTS 64

typedef struct migrate_ctx {
  ctl *c;
  const char *target;
  bool dry_run;
  uint64_t done, current, skipped, changed, gone, failed;
  snap_rewrite *items;
  ctl_failures fails;
  ctl_progress prog;
  /* --dry-run: rows per manifest ("" for none), in order of appearance. */
  char *manifest[MAX_MANIFESTS];
  uint64_t manifest_n[MAX_MANIFESTS];
  int manifest_kind[MAX_MANIFESTS];
  size_t nmanifests;
  uint64_t other_manifests;
} migrate_ctx;

/* A failure of the store rather than of one body: it counts towards the
 * bound. Anything else (a body that does not decode, a missing step, an
 * upcaster that fails or returns an invalid state) is a finding about that
 * body: always listed, and the run goes on. */
static bool store_failure(int rc) {
  return rc == SNAP_EIO || rc == SNAP_EBUSY || rc == SNAP_ENOMEM || rc == SNAP_EUNSUPPORTED;
}

static const char *kind_word(int kind) {
  switch (kind) {
  case SNAP_MIGRATE_CURRENT:
    return "current";
  case SNAP_MIGRATE_OLDER:
    return "migrate";
  case SNAP_MIGRATE_NEWER:
    return "newer";
  default:
    return "other";
  }
}

/* --dry-run: one row counted under its manifest, from the header alone. */
static int count_row(migrate_ctx *m, const snap_entry *e) {
  const char *name = e->manifest ? e->manifest : "";
  size_t k = 0;
  while (k < m->nmanifests && strcmp(m->manifest[k], name) != 0)
    k++;
  if (k == m->nmanifests && k < MAX_MANIFESTS) {
    int kind;
    int s = snap_store_migrate_kind(m->c->st, e->manifest, m->target, &kind);
    if (s != SNAP_OK)
      return s;
    if ((m->manifest[k] = strdup(name)) == NULL)
      return snap_error_set(SNAP_ENOMEM, "out of memory");
    m->manifest_kind[k] = kind;
    m->nmanifests++;
  }
  if (k == m->nmanifests) {
    m->other_manifests++;
    int kind;
    if (snap_store_migrate_kind(m->c->st, e->manifest, m->target, &kind) == SNAP_OK &&
        kind == SNAP_MIGRATE_OLDER)
      m->done++;
    else
      m->skipped++;
    return SNAP_OK;
  }
  m->manifest_n[k]++;
  int kind = m->manifest_kind[k];
  if (kind == SNAP_MIGRATE_OLDER)
    m->done++;
  else if (kind == SNAP_MIGRATE_CURRENT)
    m->current++;
  else
    m->skipped++;
  return SNAP_OK;
}

static void count_outcome(migrate_ctx *m, int outcome) {
  switch (outcome) {
  case SNAP_REWRITE_DONE:
    m->done++;
    break;
  case SNAP_REWRITE_CURRENT:
    m->current++;
    break;
  case SNAP_REWRITE_SKIPPED:
    m->skipped++;
    break;
  case SNAP_REWRITE_CHANGED:
    m->changed++;
    break;
  default:
    m->gone++;
    break;
  }
}

/* One failed row. The batch's message is its first failure's: with several,
 * the row is migrated again alone for its own (a finding repeats; a row that
 * now goes through is counted as it went). */
static void failed_row(migrate_ctx *m, snap_rewrite *it, bool only, const char *batch_msg) {
  char own[1024];
  snprintf(own, sizeof own, "%s", batch_msg);
  if (!only) {
    int s = snap_store_migrate(m->c->st, it, 1, m->target, NULL);
    if (s == SNAP_OK) {
      count_outcome(m, it->outcome);
      return;
    }
    snprintf(own, sizeof own, "%s", ctl_error(s));
  }
  m->failed++;
  if (!store_failure(it->status) || ctl_failures_row(&m->fails, own))
    ctl_report_body(stdout, it->pid, it->seq, it->status, own);
}

static int migrate_page(void *ud, snap_entry_page *page) {
  migrate_ctx *m = ud;
  if (m->dry_run) {
    for (size_t i = 0; i < page->n; i++) {
      int s = count_row(m, &page->entries[i]);
      if (s != SNAP_OK)
        return s;
    }
    ctl_progress_add(&m->prog, page->n);
    return 0;
  }
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    m->items[i] = (snap_rewrite){e->pid, e->seq, e->body, e->stored_len, SNAP_OK, 0, 0, 0};
  }
  int brc = snap_store_migrate(m->c->st, m->items, page->n, m->target, NULL);
  char batch_msg[512];
  snprintf(batch_msg, sizeof batch_msg, "%s", brc == SNAP_OK ? "" : ctl_error(brc));
  size_t nfailed = 0;
  for (size_t i = 0; i < page->n; i++)
    nfailed += m->items[i].status != SNAP_OK;
  for (size_t i = 0; i < page->n; i++) {
    snap_rewrite *it = &m->items[i];
    if (it->status == SNAP_OK)
      count_outcome(m, it->outcome);
    else
      failed_row(m, it, nfailed == 1 || store_failure(it->status), batch_msg);
  }
  ctl_progress_add(&m->prog, page->n);
  return ctl_failures_batch(&m->fails) ? CTL_STOPPED : 0;
}

/* --dry-run's table on stdout: MANIFEST ROWS ACTION, "-" for no manifest. */
static void print_plan(const migrate_ctx *m) {
  for (size_t k = 0; k < m->nmanifests; k++)
    printf("%s\t%" PRIu64 "\t%s\n", m->manifest[k][0] ? m->manifest[k] : "-", m->manifest_n[k],
           kind_word(m->manifest_kind[k]));
  if (m->other_manifests)
    printf("(%" PRIu64 " rows of further manifests)\n", m->other_manifests);
}

static int migrate_summary(const migrate_ctx *m) {
  if (m->dry_run)
    print_plan(m);
  fprintf(stderr,
          "migrate%s: target %s; %" PRIu64 " %s, %" PRIu64 " already at the target, %" PRIu64
          " left alone (other types or newer), %" PRIu64 " replaced by newer saves, %" PRIu64
          " deleted meanwhile, %" PRIu64 " failed\n",
          m->dry_run ? " (dry run)" : "", m->target, m->done,
          m->dry_run ? "to migrate" : "migrated", m->current, m->skipped, m->changed, m->gone,
          m->failed);
  return m->failed ? EXIT_FOUND : EXIT_OK;
}

static int migrate_run(migrate_ctx *m) {
  int s = ctl_progress_counted(&m->prog, m->dry_run ? "migrate (dry run)" : "migrate", m->c);
  if (s == SNAP_OK)
    s = ctl_sweep(m->c->st, NULL, !m->dry_run, migrate_page, m);
  ctl_progress_end(&m->prog);
  if (s == CTL_INTERRUPTED)
    return ctl_interrupt_report("migrate",
                                "%" PRIu64 " bodies %s, %" PRIu64 " failed; a new run continues "
                                "where this one stopped",
                                m->done, m->dry_run ? "to migrate so far" : "migrated", m->failed);
  if (s == CTL_STOPPED) {
    ctl_failures_report(&m->fails, "migrate", "the store");
    return ctl_fail(EXIT_FOUND,
                    "migrate: %" PRIu64 " bodies migrated before it stopped; a new run "
                    "continues where this one stopped",
                    m->done);
  }
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "migrate: %s (a new run continues where this one stopped)",
                    ctl_error(s));
  return migrate_summary(m);
}

int cmd_migrate(ctl *c, int argc, char **argv) {
  migrate_ctx m;
  memset(&m, 0, sizeof m);
  const char *max_failures = NULL;
  const ctl_opt opts[] = {{"--to", &m.target, NULL},
                          {"--dry-run", NULL, &m.dry_run},
                          {"--max-failures", &max_failures, NULL},
                          {NULL, NULL, NULL}};
  int rc = ctl_args(c, argc, argv, opts, NULL, 0, 0, NULL);
  if (rc >= 0)
    return rc;
  if (m.target == NULL)
    return ctl_usage(c, "--to MANIFEST is required (e.g. --to bank.Account/3)");
  if (snap_manifest_check(m.target) != SNAP_OK)
    return ctl_usage(c, "--to '%s': %s", m.target, snap_error_message());
  if ((rc = ctl_failures_option(c, max_failures, &m.fails)) >= 0 || (rc = ctl_open(c)) != EXIT_OK)
    return rc;
  m.c = c;
  /* A backend that cannot replace a body with its manifest column fails here,
   * before anything is read. */
  if (!m.dry_run && (rc = snap_store_migrate(c->st, NULL, 0, m.target, NULL)) != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "migrate: %s", ctl_error(rc));
  m.items = calloc(CTL_PAGE, sizeof *m.items);
  if (m.items == NULL)
    return ctl_fail(EXIT_FOUND, "migrate: out of memory");
  rc = migrate_run(&m);
  free(m.items);
  for (size_t k = 0; k < m.nmanifests; k++)
    free(m.manifest[k]);
  return rc;
}
