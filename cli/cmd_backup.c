/* snapctl backup: the backend's consistent online copy of a live store, and
 * of its separate key store (--keys) when its envelope keys live apart. */
#include <string.h>

#include "snapctl.h"

/* Exit status and message of a failed backup (library status `s`). */
static int backup_failed(ctl *c, int s, const char *what) {
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
  return ctl_fail(s == SNAP_EINVAL ? EXIT_USAGE : EXIT_FOUND, "backup%s: %s", what, msg);
}

int cmd_backup(ctl *c, int argc, char **argv) {
  const char *pos[1], *keys = NULL;
  bool data_only = false;
  const ctl_opt opts[] = {
      {"--keys", &keys, NULL}, {"--data-only", NULL, &data_only}, {NULL, NULL, NULL}};
  int rc = ctl_begin(c, argc, argv, opts, pos, 1, 1, NULL);
  if (rc >= 0)
    return rc;
  bool apart = false;
  int s = snap_store_keys_apart(c->st, &apart);
  if (s != SNAP_OK)
    return backup_failed(c, s, "");
  if (keys != NULL && data_only)
    return ctl_fail(EXIT_USAGE, "backup: --keys and --data-only exclude each other");
  if (keys != NULL && !apart)
    return ctl_fail(EXIT_USAGE,
                    "backup: --keys: the store keeps its data keys in its own database (no "
                    "envelope.keystore), so %s will hold them",
                    pos[0]);
  if (apart && keys == NULL && !data_only)
    return ctl_fail(EXIT_USAGE,
                    "backup: the store keeps its data keys in a separate key store: give --keys "
                    "FILE to back it up too (keep those copies short: forgetting a unit must "
                    "reach them), or --data-only (docs/OPERATIONS.md, \"Backup and restore\")");
  if (keys != NULL && strcmp(keys, pos[0]) == 0)
    return ctl_fail(EXIT_USAGE, "backup: --keys names the data's backup file %s", pos[0]);
  /* The data first: the key store copied after it holds every key its bodies need. */
  if ((s = snap_store_backup(c->st, pos[0])) != SNAP_OK)
    return backup_failed(c, s, "");
  if (keys != NULL && (s = snap_store_backup_keys(c->st, keys)) != SNAP_OK) {
    rc = backup_failed(c, s, " --keys");
    fprintf(stderr, "backup: the data's backup %s was written, the key store's was not\n",
            pos[0]);
    return rc;
  }
  if (!c->quiet) {
    fprintf(stderr, "backup: written to %s\n", pos[0]);
    if (keys != NULL)
      fprintf(stderr, "backup: key store written to %s (expire it within your erasure deadline)\n",
              keys);
  }
  return EXIT_OK;
}
