/* snapctl: opening the store of a plugin configuration document. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapctl.h"

/* Reads a whole file into a NUL-terminated malloc'd string. */
static int read_file(const char *path, char **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return ctl_fail(EXIT_USAGE, "cannot read the configuration '%s': %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      char *g = realloc(buf, cap * 2);
      if (g == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = g;
      cap *= 2;
    }
  }
  bool err = ferror(f) != 0;
  fclose(f);
  if (buf == NULL || err) {
    free(buf);
    return ctl_fail(EXIT_USAGE, "cannot read the configuration '%s'", path);
  }
  buf[n] = '\0';
  *out = buf;
  return EXIT_OK;
}

/* A failure that says nothing about the document: the store could not be
 * reached or read at run time (exit 1, not 2). */
static bool runtime_failure(int rc) {
  return rc == SNAP_EIO || rc == SNAP_ENOMEM || rc == SNAP_EBUSY || rc == SNAP_EFULL ||
         rc == SNAP_EAGAIN || rc == SNAP_ECLOSED || rc == SNAP_ECORRUPT;
}

/* The open itself, without an executor (snapctl calls the store directly)
 * and without the check at open, which check_doc() runs apart: inside one
 * open a key file and a server that cannot be reached are both SNAP_EIO. So
 * what fails here is the document or what it names (key files, the backend,
 * a store that does not exist); the document is otherwise read as the
 * application reads it. */
static int open_doc(const char *path, const char *text, unsigned flags, snap_plugin **out) {
  int s =
      snap_plugin_open_ex(out, text, NULL, SNAP_PLUGIN_NO_EXECUTOR | SNAP_PLUGIN_NO_CHECK | flags);
  if (s == SNAP_OK)
    return EXIT_OK;
  if (s == SNAP_ENOTFOUND) /* the message says where it looked */
    return ctl_fail(EXIT_USAGE, "%s (configuration '%s')", ctl_error(s), path);
  return ctl_fail(s == SNAP_ENOMEM ? EXIT_FOUND : EXIT_USAGE, "configuration '%s': %s", path,
                  ctl_error(s));
}

/* What snap_plugin_open() checks by default, here so that its answer can be
 * classified: a store that cannot be reached is exit 1, a document that does
 * not fit the store (a stored keep, a required option the backend lacks, a
 * file that is no database) exit 2. */
static int check_doc(const char *path, snap_plugin *p) {
  int s = snap_store_check(snap_plugin_store(p));
  if (s == SNAP_OK)
    return EXIT_OK;
  if (runtime_failure(s))
    return ctl_fail(EXIT_FOUND, "the store of '%s' cannot be reached: %s", path, ctl_error(s));
  return ctl_fail(EXIT_USAGE, "configuration '%s': %s%s", path,
                  s == SNAP_EUNSUPPORTED ? "options.required: " : "", ctl_error(s));
}

int ctl_open_config(const char *path, ctl_open_mode mode, snap_plugin **out) {
  *out = NULL;
  char *text;
  int rc = read_file(path, &text);
  if (rc != EXIT_OK)
    return rc;
  /* A store to change must exist: it is looked for without creating
   * anything first, then opened to write. */
  if (mode == CTL_OPEN_WRITE &&
      (rc = open_doc(path, text, SNAP_PLUGIN_NO_CREATE, out)) == EXIT_OK) {
    snap_plugin_close(*out);
    *out = NULL;
  }
  if (rc == EXIT_OK)
    rc = open_doc(path, text, mode == CTL_OPEN_READ ? SNAP_PLUGIN_NO_CREATE : 0, out);
  free(text);
  if (rc == EXIT_OK && (rc = check_doc(path, *out)) != EXIT_OK) {
    snap_plugin_close(*out);
    *out = NULL;
  }
  return rc;
}

int ctl_open(ctl *c) {
  if (c->config_path == NULL)
    return ctl_usage(c, "no configuration: give --config FILE (or set SNAPCTL_CONFIG)");
  int rc = ctl_open_config(c->config_path, c->create ? CTL_OPEN_CREATE : c->cmd->mode, &c->plugin);
  if (rc != EXIT_OK)
    return rc;
  c->st = snap_plugin_store(c->plugin);
  c->opts = snap_plugin_options(c->plugin);
  return EXIT_OK;
}
int ctl_begin(ctl *c, int argc, char **argv, const ctl_opt *opts, const char **pos, int min_pos,
              int max_pos, int *npos) {
  int rc = ctl_args(c, argc, argv, opts, pos, min_pos, max_pos, npos);
  if (rc >= 0)
    return rc;
  rc = ctl_open(c);
  return rc == EXIT_OK ? -1 : rc;
}

void ctl_close(ctl *c) {
  snap_plugin_close(c->plugin);
  c->plugin = NULL;
  c->st = NULL;
  c->opts = NULL;
}
