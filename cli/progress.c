/* snapctl: progress of long operations on stderr: a line redrawn in place on
 * a terminal (done/total, rate, ETA), plain lines every few seconds
 * otherwise, nothing with --quiet. */
#include <time.h>
#include <unistd.h>

#include "snapctl.h"

#define TTY_EVERY 0.2   /* seconds between redraws on a terminal */
#define PLAIN_EVERY 5.0 /* seconds between lines otherwise */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void draw(const ctl_progress *p, bool final) {
  double t = now() - p->start;
  double rate = t > 0 ? (double)p->done / t : 0;
  char eta[32] = "";
  if (!final && p->total > p->done && rate > 0)
    snprintf(eta, sizeof eta, ", ETA %.0fs", (double)(p->total - p->done) / rate);
  char total[32] = "";
  if (p->total > 0)
    snprintf(total, sizeof total, "/%llu", (unsigned long long)p->total);
  fprintf(stderr, "%s%s: %llu%s (%.0f/s%s)%s", p->tty ? "\r\033[K" : "", p->what,
          (unsigned long long)p->done, total, rate, eta, (p->tty && !final) ? "" : "\n");
  fflush(stderr);
}

void ctl_progress_start(ctl_progress *p, const char *what, uint64_t total, bool quiet) {
  p->what = what;
  p->total = total;
  p->done = 0;
  p->quiet = quiet;
  p->tty = isatty(STDERR_FILENO) != 0;
  p->start = p->last = now();
}

void ctl_progress_add(ctl_progress *p, uint64_t n) {
  p->done += n;
  if (p->quiet)
    return;
  double t = now();
  if (t - p->last >= (p->tty ? TTY_EVERY : PLAIN_EVERY)) {
    p->last = t;
    draw(p, false);
  }
}

void ctl_progress_end(ctl_progress *p) {
  if (!p->quiet)
    draw(p, true);
}

int ctl_progress_counted(ctl_progress *p, const char *what, ctl *c) {
  uint64_t total = 0;
  int rc = c->quiet ? SNAP_OK : ctl_count(c->st, &total);
  ctl_progress_start(p, what, total, c->quiet);
  return rc;
}
