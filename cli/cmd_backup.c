/* snapctl backup: the backend's consistent online copy of a live store. */
#include <string.h>

#include "snapctl.h"

int cmd_backup(ctl *c, int argc, char **argv) {
  const char *pos[1];
  int rc = ctl_begin(c, argc, argv, NULL, pos, 1, 1, NULL);
  if (rc >= 0)
    return rc;
  int s = snap_store_backup(c->st, pos[0]);
  if (s == SNAP_EUNSUPPORTED)
    return ctl_fail(EXIT_USAGE,
                    "backup: the %s backend has no online backup; back it up with 'snapctl "
                    "export --out FILE', or 'snapctl copy --to CONFIG' into a SQLite store "
                    "(docs/OPERATIONS.md, \"Backup and restore\")",
                    snap_store_backend_name(c->st));
  /* The library's messages of a backup already say "backup: ". */
  const char *msg = ctl_error(s);
  if (strncmp(msg, "backup: ", 8) == 0)
    msg += 8;
  if (s == SNAP_EINVAL)
    return ctl_fail(EXIT_USAGE, "backup: %s", msg);
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "backup: %s", msg);
  if (!c->quiet)
    fprintf(stderr, "backup: written to %s\n", pos[0]);
  return EXIT_OK;
}
