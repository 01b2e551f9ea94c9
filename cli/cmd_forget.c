/* snapctl forget: crypto-shredding of shred units (snap_forget()): each
 * unit's data key is deleted (a tombstone stays) and its snapshots with it. */
#include <inttypes.h>

#include "snapctl.h"

int cmd_forget(ctl *c, int argc, char **argv) {
  const char *pos[64];
  int n = 0;
  int rc = ctl_args(c, argc, argv, NULL, pos, 1, 64, &n);
  if (rc >= 0)
    return rc;
  for (int i = 0; i < n; i++)
    if (snap_pid_check(pos[i]) != SNAP_OK)
      return ctl_fail(EXIT_USAGE, "forget: %s", ctl_error(SNAP_EINVAL));
  if ((rc = ctl_open(c)) != EXIT_OK)
    return rc;
  int status = EXIT_OK;
  for (int i = 0; i < n && !ctl_interrupted(); i++) {
    snap_forget_report rep;
    int s = snap_forget(c->st, pos[i], &rep);
    if (s != SNAP_OK) {
      status = ctl_fail(EXIT_FOUND, "forget '%s': %s", pos[i], ctl_error(s));
      continue;
    }
    /* Data on stdout: one line per unit, what was removed. */
    printf("%s\tkeys %" PRIu32 "\tgeneration %" PRIu32 "\tpids %" PRIu64 "\n", pos[i], rep.keys,
           rep.generation, rep.pids);
  }
  if (ctl_interrupted())
    return ctl_interrupt_report("forget", "the units listed on stdout were forgotten");
  return status;
}
