/* snapctl rekey: bring every body under the active key, batch by batch,
 * with conditional replaces (snap_store_rewrite()), so that it is safe beside
 * live writers and a killed run is simply run again. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapctl.h"

typedef struct rekey_ctx {
  ctl *c;
  bool dry_run, force, recompress;
  unsigned want_stage; /* what a save writes now (dry run) */
  uint32_t want_kv;
  uint64_t done, current, changed, gone, failed;
  snap_rewrite *items;
  snap_buf state; /* a failed body decoded again for its own message */
  ctl_failures fails;
  ctl_progress prog;
} rekey_ctx;

/* A body that cannot be decoded (a finding, not the store failing). */
static bool body_finding(int rc) {
  return rc == SNAP_ECORRUPT || rc == SNAP_EFORMAT || rc == SNAP_EAUTH || rc == SNAP_ENOKEY ||
         rc == SNAP_ETOOBIG || rc == SNAP_EINVAL;
}

/* Reports a body that was not rewritten with its own message. The batch has
 * one last error (`batch_msg`), its last failure's, which is the body's own
 * when it is the batch's only failure. Otherwise a body that cannot be decoded
 * is decoded again alone for its own (a decoding failure repeats), and another
 * failure is named by its code. */
static void report_item(rekey_ctx *r, const snap_rewrite *it, bool only, const char *batch_msg) {
  char detail[1024];
  const char *own = only ? batch_msg : snap_strerror(it->status);
  if (!only && body_finding(it->status) &&
      snap_store_decode(r->c->st, it->pid, it->seq, it->body, it->body_len, NULL, &r->state, NULL,
                        NULL) == it->status) {
    snprintf(detail, sizeof detail, "rewrite pid '%s' seq %" PRId64 ": %s", it->pid, it->seq,
             ctl_error(it->status));
    own = detail;
  }
  ctl_report_body(stdout, it->pid, it->seq, it->status, own);
}

/* --recompress: whether the body already names the codec and dictionary a
 * save of its pid writes now. An uncompressed body counts as to rewrite (the
 * save may leave it uncompressed: the count is then an upper bound). */
static bool codec_current(rekey_ctx *r, const snap_entry *e) {
  snap_compression want;
  uint32_t want_dict;
  return snap_store_codec_target(r->c->st, e->pid, NULL, &want, &want_dict) == SNAP_OK &&
         e->codec == want && e->dict_id == want_dict;
}

/* --dry-run: what would be rewritten, from the headers alone. */
static void count_page(rekey_ctx *r, const snap_entry_page *page) {
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    bool current = e->header_status == SNAP_OK &&
                   (e->stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC)) == r->want_stage &&
                   e->key_version == r->want_kv && (!r->recompress || codec_current(r, e));
    if (current && !r->force)
      r->current++;
    else
      r->done++;
  }
}

static void count_outcome(rekey_ctx *r, int outcome) {
  switch (outcome) {
  case SNAP_REWRITE_DONE:
    r->done++;
    break;
  case SNAP_REWRITE_CURRENT:
    r->current++;
    break;
  case SNAP_REWRITE_CHANGED:
    r->changed++;
    break;
  default:
    r->gone++;
    break;
  }
}

/* A body that cannot be decoded is a finding: always reported, and the run
 * goes on. The store failing a row counts towards the failure bound: the
 * first few of a streak are listed, and the run stops at the bound. */
static int rekey_page(void *ud, snap_entry_page *page) {
  rekey_ctx *r = ud;
  if (r->dry_run) {
    count_page(r, page);
    ctl_progress_add(&r->prog, page->n);
    return 0;
  }
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    r->items[i] = (snap_rewrite){e->pid, e->seq, e->body, e->stored_len, SNAP_OK, 0, 0, 0};
  }
  unsigned flags = (r->force ? SNAP_REWRITE_FORCE : 0u) | (r->recompress ? SNAP_REWRITE_RECOMPRESS : 0u);
  int brc = snap_store_rewrite_ex(r->c->st, r->items, page->n, NULL, flags);
  char batch_msg[512];
  snprintf(batch_msg, sizeof batch_msg, "%s", brc == SNAP_OK ? "" : ctl_error(brc));
  size_t nfailed = 0;
  for (size_t i = 0; i < page->n; i++)
    nfailed += r->items[i].status != SNAP_OK;
  for (size_t i = 0; i < page->n; i++) {
    const snap_rewrite *it = &r->items[i];
    if (it->status == SNAP_OK) {
      count_outcome(r, it->outcome);
      continue;
    }
    r->failed++;
    if (body_finding(it->status) || ctl_failures_row(&r->fails, batch_msg))
      report_item(r, it, nfailed == 1, batch_msg);
  }
  ctl_progress_add(&r->prog, page->n);
  return ctl_failures_batch(&r->fails) ? CTL_STOPPED : 0;
}

/* What a save writes now, on this backend (dropping what it cannot store). */
static int save_target(ctl *c, rekey_ctx *r) {
  snap_options *o = NULL;
  unsigned dropped;
  int s = snap_options_copy(&o, c->opts);
  if (s == SNAP_OK)
    s = snap_options_restrict(o, snap_store_capabilities(c->st) & 7u, &dropped);
  if (s == SNAP_OK)
    s = snap_options_auth_target(o, &r->want_stage, &r->want_kv);
  snap_options_free(o);
  return s;
}

static int rekey_summary(const rekey_ctx *r) {
  char target[64];
  if (r->want_stage)
    snprintf(target, sizeof target, "%s key version %" PRIu32,
             r->want_stage == SNAP_STAGE_ENCRYPTED ? "encrypted under" : "MAC'd with", r->want_kv);
  else
    snprintf(target, sizeof target, "unauthenticated");
  fprintf(stderr,
          "rekey%s: target %s; %" PRIu64 " %s, %" PRIu64 " already current, %" PRIu64
          " replaced by newer saves, %" PRIu64 " deleted meanwhile, %" PRIu64 " failed\n",
          r->dry_run ? " (dry run)" : "", target, r->done, r->dry_run ? "to rewrite" : "rewritten",
          r->current, r->changed, r->gone, r->failed);
  return r->failed ? EXIT_FOUND : EXIT_OK;
}

int cmd_rekey(ctl *c, int argc, char **argv) {
  rekey_ctx r;
  memset(&r, 0, sizeof r);
  const char *max_failures = NULL, *after = NULL;
  bool wrap_only = false, new_keys = false, all = false;
  const ctl_opt opts[] = {{"--wrap-only", NULL, &wrap_only},
                          {"--new-keys", NULL, &new_keys},
                          {"--all", NULL, &all},
                          {"--after", &after, NULL},
                          {"--recompress", NULL, &r.recompress},
                          {"--dry-run", NULL, &r.dry_run},
                          {"--force", NULL, &r.force},
                          {"--max-failures", &max_failures, NULL},
                          {NULL, NULL, NULL}};
  const char *units[64];
  int nunits = 0;
  int rc = ctl_args(c, argc, argv, opts, units, 0, 64, &nunits);
  if (rc >= 0)
    return rc;
  bool rewrites = r.dry_run || r.force || r.recompress || max_failures;
  if (wrap_only && (rewrites || new_keys))
    return ctl_usage(c, "--wrap-only takes none of --new-keys, --dry-run, --force, "
                        "--recompress, --max-failures");
  if (new_keys && rewrites)
    return ctl_usage(c, "--new-keys takes none of --dry-run, --force, --recompress, "
                        "--max-failures");
  if (new_keys && (nunits > 0) == all)
    return ctl_usage(c, "--new-keys takes either UNIT... or --all");
  if (!new_keys && (all || after || nunits > 0))
    return ctl_usage(c, "UNIT..., --all and --after go with --new-keys");
  if (after && !all)
    return ctl_usage(c, "--after goes with --all");
  for (int i = 0; i < nunits; i++)
    if (snap_pid_check(units[i]) != SNAP_OK)
      return ctl_usage(c, "'%s' is not a unit: %s", units[i], snap_error_message());
  if ((rc = ctl_failures_option(c, max_failures, &r.fails)) >= 0 || (rc = ctl_open(c)) != EXIT_OK)
    return rc;
  if (wrap_only)
    return ctl_rewrap(c);
  if (new_keys)
    return ctl_renew(c, units, nunits, after);
  r.c = c;
  int s = save_target(c, &r);
  if (s != SNAP_OK)
    return ctl_fail(EXIT_USAGE, "rekey: %s", ctl_error(s));
  if (r.want_stage == 0 && !r.force && !r.recompress)
    fprintf(stderr, "snapctl: rekey: the configuration has no key: bodies stay as they are\n");
  r.items = calloc(CTL_PAGE, sizeof *r.items);
  if (r.items == NULL)
    return ctl_fail(EXIT_FOUND, "rekey: out of memory");
  s = ctl_progress_counted(&r.prog, r.dry_run ? "rekey (dry run)" : "rekey", c);
  if (s == SNAP_OK)
    s = ctl_sweep(c->st, NULL, !r.dry_run, rekey_page, &r);
  ctl_progress_end(&r.prog);
  free(r.items);
  snap_buf_dispose(&r.state);
  if (s == CTL_INTERRUPTED)
    return ctl_interrupt_report("rekey",
                                "%" PRIu64 " bodies %s, %" PRIu64 " failed; a new run continues "
                                "where this one stopped",
                                r.done, r.dry_run ? "to rewrite so far" : "rewritten", r.failed);
  if (s == CTL_STOPPED) {
    ctl_failures_report(&r.fails, "rekey", "the store");
    return ctl_fail(EXIT_FOUND,
                    "rekey: %" PRIu64 " bodies rewritten before it stopped; a new run "
                    "continues where this one stopped",
                    r.done);
  }
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "rekey: %s (a new run continues where this one stopped)",
                    ctl_error(s));
  return rekey_summary(&r);
}
