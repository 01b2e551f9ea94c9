/* snapctl: Ctrl-C (SIGINT) and SIGTERM. The first one only raises a flag that
 * the long commands look at between two pages (or batches): they stop there,
 * say what was done and how to go on, and exit 128 + the signal's number. A
 * second one acts as if no handler were installed (it kills the process). */
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "snapctl.h"

static volatile sig_atomic_t caught;

static void on_signal(int sig) { caught = sig; }

void ctl_interrupt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  const int sigs[] = {SIGINT, SIGTERM};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    /* A signal ignored when we started (nohup, a background job of a shell
     * without job control) stays ignored. */
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    sigaction(sigs[i], &sa, NULL);
  }
}

bool ctl_interrupted(void) { return caught != 0; }

int ctl_interrupt_report(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "snapctl: %s: interrupted (%s): ", cmd, caught == SIGTERM ? "SIGTERM" : "Ctrl-C");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 128 + (caught ? (int)caught : SIGINT);
}
