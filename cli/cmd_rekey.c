/* snapctl rekey: bring every body under the active key, batch by batch,
 * with conditional replaces (snap_store_rewrite()), so that it is safe beside
 * live writers and a killed run is simply run again. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapctl.h"

typedef struct rekey_ctx {
  ctl *c;
  bool dry_run, force;
  unsigned want_stage; /* what a save writes now (dry run) */
  uint32_t want_kv;
  uint64_t done, current, changed, gone, failed;
  snap_rewrite *items;
  snap_buf state; /* a failed body decoded again for its own message */
  ctl_progress prog;
} rekey_ctx;

/* A body that cannot be decoded is a finding: reported, and the run goes on.
 * Anything else (the backend failing) ends the run. */
static bool body_finding(int rc) {
  return rc == SNAP_ECORRUPT || rc == SNAP_EFORMAT || rc == SNAP_EAUTH || rc == SNAP_ENOKEY ||
         rc == SNAP_ETOOBIG || rc == SNAP_EINVAL;
}

/* Reports a body that was not rewritten with its own message. The batch has
 * one last error (`batch_msg`), its last failure's: a failed body is decoded
 * again alone for its own (a decoding failure repeats); another failure is
 * named by the batch's message when it is the batch's only one, else by its
 * code. */
static void report_item(rekey_ctx *r, const snap_rewrite *it, bool only, const char *batch_msg) {
  char detail[1024];
  const char *own = only ? batch_msg : snap_strerror(it->status);
  if (body_finding(it->status) &&
      snap_store_decode(r->c->st, it->pid, it->seq, it->body, it->body_len, NULL, &r->state, NULL,
                        NULL) == it->status) {
    snprintf(detail, sizeof detail, "rewrite pid '%s' seq %" PRId64 ": %s", it->pid, it->seq,
             ctl_error(it->status));
    own = detail;
  }
  ctl_report_body(stdout, it->pid, it->seq, it->status, own);
}

static int rekey_page(void *ud, snap_entry_page *page) {
  rekey_ctx *r = ud;
  if (r->dry_run) {
    for (size_t i = 0; i < page->n; i++) {
      const snap_entry *e = &page->entries[i];
      bool current = e->header_status == SNAP_OK &&
                     (e->stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC)) == r->want_stage &&
                     e->key_version == r->want_kv;
      if (current && !r->force)
        r->current++;
      else
        r->done++;
    }
    ctl_progress_add(&r->prog, page->n);
    return 0;
  }
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    r->items[i] = (snap_rewrite){e->pid, e->seq, e->body, e->stored_len, SNAP_OK, 0, 0, 0};
  }
  (void)snap_store_rewrite(r->c->st, r->items, page->n, NULL, r->force);
  char batch_msg[1024];
  snprintf(batch_msg, sizeof batch_msg, "%s", snap_error_message());
  size_t nfailed = 0;
  for (size_t i = 0; i < page->n; i++)
    nfailed += r->items[i].status != SNAP_OK;
  int stop = 0;
  for (size_t i = 0; i < page->n; i++) {
    const snap_rewrite *it = &r->items[i];
    if (it->status != SNAP_OK) {
      r->failed++;
      report_item(r, it, nfailed == 1, batch_msg);
      if (!body_finding(it->status) && stop == 0)
        stop = it->status;
      continue;
    }
    switch (it->outcome) {
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
  ctl_progress_add(&r->prog, page->n);
  return stop;
}

int cmd_rekey(ctl *c, int argc, char **argv) {
  bool dry = false, force = false;
  const ctl_opt opts[] = {{"--dry-run", NULL, &dry}, {"--force", NULL, &force}, {NULL, NULL, NULL}};
  const char *pos[1];
  int npos, rc = ctl_begin(c, argc, argv, opts, pos, 0, 0, &npos);
  if (rc >= 0)
    return rc;
  rekey_ctx r;
  memset(&r, 0, sizeof r);
  r.c = c;
  r.dry_run = dry;
  r.force = force;
  /* What a save writes now, on this backend (dropping what it cannot store). */
  snap_options *o = NULL;
  unsigned dropped;
  int s = snap_options_copy(&o, c->opts);
  if (s == SNAP_OK)
    s = snap_options_restrict(o, snap_store_capabilities(c->st) & 7u, &dropped);
  if (s == SNAP_OK)
    s = snap_options_auth_target(o, &r.want_stage, &r.want_kv);
  snap_options_free(o);
  if (s != SNAP_OK)
    return ctl_fail(EXIT_USAGE, "rekey: %s", ctl_error(s));
  if (r.want_stage == 0 && !force)
    fprintf(stderr, "snapctl: rekey: the configuration has no key: bodies stay as they are\n");
  r.items = calloc(CTL_PAGE, sizeof *r.items);
  if (r.items == NULL)
    return ctl_fail(EXIT_FOUND, "rekey: out of memory");
  s = ctl_progress_counted(&r.prog, dry ? "rekey (dry run)" : "rekey", c);
  if (s == SNAP_OK)
    s = ctl_sweep(c->st, NULL, !dry, rekey_page, &r);
  ctl_progress_end(&r.prog);
  free(r.items);
  snap_buf_dispose(&r.state);
  if (s == CTL_INTERRUPTED)
    return ctl_interrupt_report("rekey",
                                "%" PRIu64 " bodies %s, %" PRIu64 " failed; a new run continues "
                                "where this one stopped",
                                r.done, dry ? "to rewrite so far" : "rewritten", r.failed);
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "rekey: %s (a new run continues where this one stopped)",
                    ctl_error(s));
  char target[64];
  if (r.want_stage)
    snprintf(target, sizeof target, "%s key version %" PRIu32,
             r.want_stage == SNAP_STAGE_ENCRYPTED ? "encrypted under" : "MAC'd with", r.want_kv);
  else
    snprintf(target, sizeof target, "unauthenticated");
  fprintf(stderr,
          "rekey%s: target %s; %" PRIu64 " %s, %" PRIu64 " already current, %" PRIu64
          " replaced by newer saves, %" PRIu64 " deleted meanwhile, %" PRIu64 " failed\n",
          dry ? " (dry run)" : "", target, r.done, dry ? "to rewrite" : "rewritten", r.current,
          r.changed, r.gone, r.failed);
  return r.failed ? EXIT_FOUND : EXIT_OK;
}
