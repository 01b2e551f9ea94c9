/* snapctl rekey --wrap-only: rewrap every data key of envelope encryption
 * under the active master key (snap_rewrap()): O(units), no body rewritten,
 * resumable by running it again, safe beside live writers. */
#include <inttypes.h>

#include "snapctl.h"

typedef struct rewrap_ctx {
  ctl_progress prog;
  uint64_t seen;
} rewrap_ctx;

static int on_page(void *ud, const snap_rewrap_progress *p) {
  rewrap_ctx *r = ud;
  ctl_progress_add(&r->prog, p->seen - r->seen);
  r->seen = p->seen;
  return ctl_interrupted() ? CTL_INTERRUPTED : SNAP_OK;
}

int ctl_rewrap(ctl *c) {
  rewrap_ctx r = {0};
  ctl_progress_start(&r.prog, "rekey --wrap-only (units)", 0, c->quiet);
  snap_rewrap_progress tot;
  int s = snap_rewrap(c->st, NULL, NULL, on_page, &r, &tot);
  ctl_progress_end(&r.prog);
  if (s == CTL_INTERRUPTED)
    return ctl_interrupt_report("rekey --wrap-only",
                                "%" PRIu64 " data keys rewrapped; a new run continues where this "
                                "one stopped",
                                tot.rewrapped);
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "rekey --wrap-only: %s (%" PRIu64
                                " rewrapped before; a new run continues)",
                    ctl_error(s), tot.rewrapped);
  fprintf(stderr,
          "rekey --wrap-only: %" PRIu64 " data keys read: %" PRIu64 " rewrapped, %" PRIu64
          " already under the active master key, %" PRIu64 " forgotten, %" PRIu64
          " changed meanwhile\n",
          tot.seen, tot.rewrapped, tot.current, tot.forgotten, tot.changed);
  return EXIT_OK;
}
