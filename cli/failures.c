/* snapctl: a bound on failures in a row against the store being written.
 * When a shard dies or a target turns read-only, every following row fails
 * the same way; listing each one drowns the output and helps nobody. Rows are
 * written in batches: a batch in which every row went through ends a streak,
 * a batch with failures adds them to it (so a dead shard among live ones,
 * whose rows fail in every batch, is caught too). The first few failures of
 * a streak are listed; once the streak reaches the bound the run stops with
 * one summary line, and a new run resumes. */
#include <inttypes.h>
#include <string.h>

#include "snapctl.h"

#define LISTED 10 /* failed rows of a streak listed one by one */

int ctl_failures_option(ctl *c, const char *arg, ctl_failures *f) {
  memset(f, 0, sizeof *f);
  int64_t max = CTL_MAX_FAILURES;
  if (arg != NULL && (!ctl_parse_i64(arg, &max) || max < 0))
    return ctl_usage(c, "--max-failures '%s' is not a count (an integer >= 0; 0: no bound)", arg);
  f->max = (uint64_t)max;
  return -1;
}

bool ctl_failures_row(ctl_failures *f, const char *msg) {
  f->batch++;
  snprintf(f->last, sizeof f->last, "%s", msg);
  if (f->streak_listed < LISTED) {
    f->streak_listed++;
    return true;
  }
  f->unlisted++;
  return false;
}

bool ctl_failures_batch(ctl_failures *f) {
  if (f->batch == 0) {
    f->streak = 0;
    f->streak_listed = 0;
    return false;
  }
  f->streak += f->batch;
  f->batch = 0;
  return ctl_failures_stopped(f);
}

bool ctl_failures_stopped(const ctl_failures *f) { return f->max > 0 && f->streak >= f->max; }

void ctl_failures_report(const ctl_failures *f, const char *cmd, const char *store) {
  fprintf(stderr,
          "snapctl: %s: stopped after %" PRIu64 " failures in a row writing to %s (%" PRIu64
          " not listed; --max-failures sets the bound); last error: %s\n",
          cmd, f->streak, store, f->unlisted, f->last);
}
