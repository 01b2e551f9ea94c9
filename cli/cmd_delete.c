/* snapctl delete: delete the snapshots of a pid, as snap_delete() does. */
#include <inttypes.h>

#include "snapctl.h"

int cmd_delete(ctl *c, int argc, char **argv) {
  const char *to_s = NULL;
  const ctl_opt opts[] = {{"--to", &to_s, NULL}, {NULL, NULL, NULL}};
  const char *pos[1];
  int rc = ctl_args(c, argc, argv, opts, pos, 1, 1, NULL);
  if (rc >= 0)
    return rc;
  int64_t to = INT64_MAX;
  if (to_s != NULL && (!ctl_parse_i64(to_s, &to) || to < 0))
    return ctl_usage(c, "--to '%s' is not a sequence number (an integer >= 0)", to_s);
  if (snap_pid_check(pos[0]) != SNAP_OK)
    return ctl_fail(EXIT_USAGE, "delete: %s", ctl_error(SNAP_EINVAL));
  if ((rc = ctl_open(c)) != EXIT_OK)
    return rc;
  /* Count first: deleting nothing is not an error for the store, but an
   * operator who names a pid that has nothing to delete wants to know. */
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  uint64_t n = 0;
  int s;
  int64_t after = 0;
  for (bool first = true;; first = false) {
    s = snap_store_list(c->st, pos[0], first ? NULL : pos[0], after, CTL_PAGE, false, &page);
    if (s != SNAP_OK || page.n == 0)
      break;
    for (size_t i = 0; i < page.n; i++)
      n += page.entries[i].seq <= to;
    after = page.entries[page.n - 1].seq;
    if (page.n < CTL_PAGE || after > to)
      break;
  }
  snap_entry_page_dispose(&page);
  if (s == SNAP_OK && n == 0)
    return ctl_fail(EXIT_FOUND, "delete: pid '%s' has no snapshots%s%s", pos[0],
                    to_s ? " at or below seq " : "", to_s ? to_s : "");
  if (s == SNAP_OK)
    s = snap_delete(c->st, pos[0], to);
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "delete: %s", ctl_error(s));
  if (!c->quiet)
    fprintf(stderr, "delete: %" PRIu64 " snapshot(s) of '%s' deleted\n", n, pos[0]);
  return EXIT_OK;
}
