/* snapctl rekey --new-keys: give shred units new data keys (snap_renew_keys())
 * for a data key that may have been exposed: each unit's bodies are
 * rewritten under its new key and its older keys deleted. Resumable by
 * running it again, safe beside live writers. */
#include <inttypes.h>

#include "snapctl.h"

typedef struct renew_ctx {
  ctl_progress prog;
} renew_ctx;

static int on_unit(void *ud, const snap_renew_progress *p) {
  renew_ctx *r = ud;
  (void)p;
  ctl_progress_add(&r->prog, 1);
  return ctl_interrupted() ? CTL_INTERRUPTED : SNAP_OK;
}

int ctl_renew(ctl *c, const char *const *units, int n, const char *after) {
  renew_ctx r;
  ctl_progress_start(&r.prog, "rekey --new-keys (units)", n > 0 ? (uint64_t)n : 0, c->quiet);
  snap_renew_progress tot;
  int s = snap_renew_keys(c->st, NULL, n > 0 ? units : NULL, (size_t)n, after, on_unit, &r, &tot);
  ctl_progress_end(&r.prog);
  if (s == CTL_INTERRUPTED)
    return ctl_interrupt_report("rekey --new-keys",
                                "%" PRIu64 " units renewed; a new run finishes a unit left half "
                                "way (--all --after %s continues after the last one done)",
                                tot.units, tot.last ? tot.last : "UNIT");
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND,
                    "rekey --new-keys: %s (%" PRIu64 " units renewed before; every body still "
                    "loads, a new run continues)",
                    ctl_error(s), tot.units);
  fprintf(stderr,
          "rekey --new-keys: %" PRIu64 " units renewed, %" PRIu64 " without a data key, %" PRIu64
          " bodies rewritten, %" PRIu64 " changed meanwhile\n",
          tot.units, tot.skipped, tot.bodies, tot.changed);
  return EXIT_OK;
}
