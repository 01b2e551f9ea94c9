/* The crash-simulating VFS: see crashvfs.h for the model. */
#define _XOPEN_SOURCE 700
#include "crashvfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 512

/* One sector written since its file's last sync: its bytes before the first
 * such write, and which of its bytes were written. */
typedef struct unit {
  int64_t idx;
  uint8_t pre[SECTOR];
  uint8_t mask[SECTOR / 8];
} unit;

/* What the VFS knows of one file, shared by every handle open on it. */
typedef struct fstate {
  char *path;
  int64_t synced_size;
  unit *units;
  size_t n, cap;
  struct fstate *next;
} fstate;

typedef struct cfile {
  sqlite3_file base;
  fstate *fs; /* NULL for files without a name (temporary) */
  sqlite3_file *real;
} cfile;

static sqlite3_vfs *real_vfs;
static fstate *files;
static bool crashed;
static uint64_t ops, target, rng;
static uint64_t n_kept, n_dropped, n_torn;

static uint64_t next_random(void) {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int64_t size_of(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static fstate *state_for(const char *path) {
  for (fstate *f = files; f; f = f->next)
    if (strcmp(f->path, path) == 0)
      return f;
  fstate *f = calloc(1, sizeof *f);
  f->path = strdup(path);
  f->synced_size = size_of(path);
  f->next = files;
  files = f;
  return f;
}

static void forget(const char *path) {
  for (fstate **p = &files; *p; p = &(*p)->next) {
    if (strcmp((*p)->path, path) == 0) {
      fstate *f = *p;
      *p = f->next;
      free(f->units);
      free(f->path);
      free(f);
      return;
    }
  }
}

static unit *unit_for(fstate *f, sqlite3_file *real, int64_t idx) {
  /* Linear: a transaction dirties tens of sectors, rarely thousands. Search
   * from the end, where consecutive writes land. */
  for (size_t i = f->n; i-- > 0;)
    if (f->units[i].idx == idx)
      return &f->units[i];
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 64;
    f->units = realloc(f->units, f->cap * sizeof *f->units);
  }
  unit *u = &f->units[f->n++];
  u->idx = idx;
  memset(u->mask, 0, sizeof u->mask);
  /* Unwritten since the last sync, so these are its durable bytes; a short
   * read zero-fills past the end. */
  int rc = real->pMethods->xRead(real, u->pre, SECTOR, idx * SECTOR);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
    memset(u->pre, 0, SECTOR);
  return u;
}

static void record(fstate *f, sqlite3_file *real, int64_t off, int amt) {
  for (int64_t idx = off / SECTOR; idx <= (off + amt - 1) / SECTOR; idx++) {
    unit *u = unit_for(f, real, idx);
    int64_t lo = off > idx * SECTOR ? off : idx * SECTOR;
    int64_t hi = off + amt < (idx + 1) * SECTOR ? off + amt : (idx + 1) * SECTOR;
    for (int64_t b = lo; b < hi; b++) {
      int k = (int)(b - idx * SECTOR);
      u->mask[k / 8] |= (uint8_t)(1u << (k % 8));
    }
  }
}

static bool written(const unit *u, int k) { return u->mask[k / 8] & (1u << (k % 8)); }

/* Power cut: what was not synced is kept, dropped or torn, sector by sector. */
static void cut(void) {
  if (crashed)
    return;
  crashed = true;
  for (fstate *f = files; f; f = f->next) {
    if (f->n == 0)
      continue;
    int fd = open(f->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
      continue;
    int64_t end = f->synced_size;
    for (size_t i = 0; i < f->n; i++) {
      const unit *u = &f->units[i];
      uint64_t r = next_random() % 3;
      uint8_t data[SECTOR];
      int last = -1;
      for (int k = 0; k < SECTOR; k++) {
        if (!written(u, k))
          continue;
        last = k;
        data[k] = r == 1 ? u->pre[k] : (uint8_t)next_random();
      }
      if (r == 0) {
        n_kept++;
      } else {
        r == 1 ? n_dropped++ : n_torn++;
        /* Only the written bytes change: runs of them. */
        for (int k = 0; k < SECTOR;) {
          if (!written(u, k)) {
            k++;
            continue;
          }
          int j = k;
          while (j < SECTOR && written(u, j))
            j++;
          if (pwrite(fd, data + k, (size_t)(j - k), u->idx * SECTOR + k) != j - k)
            abort(); /* the test's own machinery failed: not a result */
          k = j;
        }
      }
      if (r != 1 && last >= 0 && u->idx * SECTOR + last + 1 > end)
        end = u->idx * SECTOR + last + 1;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && sb.st_size > end && ftruncate(fd, end) != 0)
      abort();
    close(fd);
    f->n = 0;
  }
}

/* Counts one write, sync or truncation; true when the power goes now. */
static bool tick(void) {
  ops++;
  if (target != 0 && ops >= target)
    cut();
  return crashed;
}

/* ---- sqlite3_io_methods -------------------------------------------------- */

static sqlite3_file *R(sqlite3_file *f) { return ((cfile *)f)->real; }

static int c_close(sqlite3_file *f) { return R(f)->pMethods->xClose(R(f)); }

static int c_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
  if (crashed)
    return SQLITE_IOERR_READ;
  return R(f)->pMethods->xRead(R(f), buf, amt, off);
}

static int c_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
  if (crashed || tick())
    return SQLITE_IOERR_WRITE;
  cfile *c = (cfile *)f;
  if (c->fs && amt > 0)
    record(c->fs, c->real, off, amt);
  return R(f)->pMethods->xWrite(R(f), buf, amt, off);
}

static int c_truncate(sqlite3_file *f, sqlite3_int64 size) {
  if (crashed || tick())
    return SQLITE_IOERR_TRUNCATE;
  cfile *c = (cfile *)f;
  int rc = R(f)->pMethods->xTruncate(R(f), size);
  if (rc == SQLITE_OK && c->fs) {
    fstate *s = c->fs;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
      if (s->units[i].idx * SECTOR < size)
        s->units[k++] = s->units[i];
    s->n = k;
    s->synced_size = size;
  }
  return rc;
}

static int c_sync(sqlite3_file *f, int flags) {
  (void)flags;
  if (crashed || tick())
    return SQLITE_IOERR_FSYNC;
  cfile *c = (cfile *)f;
  if (c->fs) {
    sqlite3_int64 sz = 0;
    if (R(f)->pMethods->xFileSize(R(f), &sz) != SQLITE_OK)
      return SQLITE_IOERR_FSYNC;
    c->fs->n = 0;
    c->fs->synced_size = sz;
  }
  /* Durable by definition of the simulation: no fsync of the real file. */
  return SQLITE_OK;
}

static int c_size(sqlite3_file *f, sqlite3_int64 *out) {
  return R(f)->pMethods->xFileSize(R(f), out);
}
static int c_lock(sqlite3_file *f, int l) { return R(f)->pMethods->xLock(R(f), l); }
static int c_unlock(sqlite3_file *f, int l) { return R(f)->pMethods->xUnlock(R(f), l); }
static int c_reserved(sqlite3_file *f, int *out) {
  return R(f)->pMethods->xCheckReservedLock(R(f), out);
}
static int c_fcntl(sqlite3_file *f, int op, void *arg) {
  return R(f)->pMethods->xFileControl(R(f), op, arg);
}
static int c_sector(sqlite3_file *f) { return R(f)->pMethods->xSectorSize(R(f)); }
static int c_devchar(sqlite3_file *f) { return R(f)->pMethods->xDeviceCharacteristics(R(f)); }
static int c_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp) {
  return R(f)->pMethods->xShmMap(R(f), pg, sz, ext, pp);
}
static int c_shmlock(sqlite3_file *f, int off, int n, int flags) {
  return R(f)->pMethods->xShmLock(R(f), off, n, flags);
}
static void c_shmbarrier(sqlite3_file *f) { R(f)->pMethods->xShmBarrier(R(f)); }
static int c_shmunmap(sqlite3_file *f, int del) { return R(f)->pMethods->xShmUnmap(R(f), del); }
static int c_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp) {
  *pp = NULL; /* no memory-mapped reads: every read goes through c_read */
  (void)f, (void)off, (void)amt;
  return SQLITE_OK;
}
static int c_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
  (void)f, (void)off, (void)p;
  return SQLITE_OK;
}

static const sqlite3_io_methods methods = {
    3,         c_close,  c_read,       c_write,    c_truncate,   c_sync,
    c_size,    c_lock,   c_unlock,     c_reserved, c_fcntl,      c_sector,
    c_devchar, c_shmmap, c_shmlock,    c_shmbarrier, c_shmunmap, c_fetch,
    c_unfetch,
};

/* ---- sqlite3_vfs --------------------------------------------------------- */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out) {
  (void)vfs;
  cfile *c = (cfile *)f;
  c->real = (sqlite3_file *)(c + 1);
  c->fs = NULL;
  int rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out);
  if (rc != SQLITE_OK) {
    f->pMethods = NULL;
    return rc;
  }
  if (name != NULL)
    c->fs = state_for(name);
  f->pMethods = &methods;
  return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int dirsync) {
  (void)vfs;
  if (crashed)
    return SQLITE_IOERR_DELETE;
  int rc = real_vfs->xDelete(real_vfs, name, dirsync);
  if (rc == SQLITE_OK)
    forget(name);
  return rc;
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int v_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static void *v_dlopen(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return real_vfs->xDlOpen(real_vfs, name);
}
static void v_dlerror(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  real_vfs->xDlError(real_vfs, n, out);
}
static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void) {
  (void)vfs;
  return real_vfs->xDlSym(real_vfs, h, sym);
}
static void v_dlclose(sqlite3_vfs *vfs, void *h) {
  (void)vfs;
  real_vfs->xDlClose(real_vfs, h);
}
static int v_random(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return real_vfs->xRandomness(real_vfs, n, out);
}
static int v_sleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  return real_vfs->xSleep(real_vfs, us);
}
static int v_time(sqlite3_vfs *vfs, double *out) {
  (void)vfs;
  return real_vfs->xCurrentTime(real_vfs, out);
}
static int v_lasterr(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return real_vfs->xGetLastError(real_vfs, n, out);
}
static int v_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static sqlite3_vfs crash_vfs = {
    2,        0,           0,        NULL,     "crashvfs", NULL,     v_open,
    v_delete, v_access,    v_fullpath, v_dlopen, v_dlerror, v_dlsym, v_dlclose,
    v_random, v_sleep,     v_time,   v_lasterr, v_time64,  NULL,     NULL,
    NULL,
};

int crashvfs_install(bool make_default) {
  if (real_vfs == NULL) {
    real_vfs = sqlite3_vfs_find("unix");
    if (real_vfs == NULL)
      return SQLITE_ERROR;
    crash_vfs.szOsFile = (int)sizeof(cfile) + real_vfs->szOsFile;
    crash_vfs.mxPathname = real_vfs->mxPathname;
    int rc = sqlite3_vfs_register(&crash_vfs, 0);
    if (rc != SQLITE_OK)
      return rc;
  }
  return sqlite3_vfs_register(make_default ? &crash_vfs : real_vfs, 1);
}

void crashvfs_arm(uint64_t n, uint64_t seed) {
  ops = 0;
  target = n;
  rng = seed;
}

void crashvfs_cut(void) { cut(); }
bool crashvfs_crashed(void) { return crashed; }
uint64_t crashvfs_ops(void) { return ops; }

void crashvfs_stats(uint64_t *kept, uint64_t *dropped, uint64_t *torn) {
  *kept = n_kept;
  *dropped = n_dropped;
  *torn = n_torn;
}

void crashvfs_reset(void) {
  while (files != NULL)
    forget(files->path);
  crashed = false;
  target = 0;
  ops = 0;
}
