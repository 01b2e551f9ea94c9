/* snapctl: an output file that appears whole or not at all. It is written
 * under a temporary name in the final file's directory (mode 0600: what is
 * written may be decrypted state) and linked to its final name only when
 * everything was written and synced, so an interrupted or failed run leaves
 * nothing under the final name (a killed one may leave the temporary file,
 * named ".NAME.tmp-XXXXXX" beside it). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapctl.h"

int ctl_outfile_open(ctl_outfile *o, const char *path) {
  memset(o, 0, sizeof *o);
  struct stat sb;
  if (lstat(path, &sb) == 0)
    return ctl_fail(EXIT_USAGE, "'%s' exists; give a new file", path);
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
  size_t n = strlen(path) + sizeof ".tmp-XXXXXX" + 1;
  o->tmp = malloc(n);
  if (o->tmp == NULL)
    return ctl_fail(EXIT_FOUND, "out of memory");
  snprintf(o->tmp, n, "%.*s.%s.tmp-XXXXXX", (int)dir_len, path, path + dir_len);
  int fd = mkstemp(o->tmp); /* O_EXCL, mode 0600 whatever the umask */
  if (fd < 0 || fchmod(fd, S_IRUSR | S_IWUSR) != 0 || (o->f = fdopen(fd, "w")) == NULL) {
    int e = errno;
    if (fd >= 0) {
      close(fd);
      unlink(o->tmp);
    }
    free(o->tmp);
    o->tmp = NULL;
    return ctl_fail(EXIT_FOUND, "cannot create a file beside '%s': %s", path, strerror(e));
  }
  o->path = path;
  return EXIT_OK;
}

void ctl_outfile_abort(ctl_outfile *o) {
  if (o->f != NULL)
    fclose(o->f);
  if (o->tmp != NULL)
    unlink(o->tmp);
  free(o->tmp);
  memset(o, 0, sizeof *o);
}

/* Syncs the directory that holds `path`, so that the new name survives a crash. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
  int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

int ctl_outfile_commit(ctl_outfile *o) {
  int rc = SNAP_OK;
  if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0)
    rc = snap_error_set(SNAP_EIO, "cannot write '%s': %s", o->path, strerror(errno));
  if (fclose(o->f) != 0 && rc == SNAP_OK)
    rc = snap_error_set(SNAP_EIO, "cannot write '%s': %s", o->path, strerror(errno));
  o->f = NULL;
  /* link() never replaces a file that appeared meanwhile; rename() is for
   * file systems without hard links. */
  if (rc == SNAP_OK && link(o->tmp, o->path) != 0) {
    if (errno == EEXIST)
      rc = snap_error_set(SNAP_EIO, "'%s' was created by someone else meanwhile", o->path);
    else if (rename(o->tmp, o->path) != 0)
      rc = snap_error_set(SNAP_EIO, "cannot name the file '%s': %s", o->path, strerror(errno));
  }
  if (rc == SNAP_OK)
    sync_dir(o->path);
  ctl_outfile_abort(o); /* removes the temporary name */
  return rc;
}
