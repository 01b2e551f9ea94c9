/*
 * snapstore-conformance: runs the conformance cases (conformance.h) on one
 * backend, built in (--backend NAME) or loaded from a shared object
 * (--backend-library PATH), and prints one line per case and then
 * "N passed, N failed". Exit 0 only when every case passed (a case that does
 * not apply to the backend is skipped, and said so); 1 when one failed; 2 for
 * a usage or setup error. Each case runs in a child process of its own, so a
 * backend that crashes or hangs fails that case and the run goes on.
 * docs/PLUGIN.md ("Writing a backend") walks through it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "conformance.h"
#include "snap/admin.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/version.h"
#include "store_util.h"

enum { EXIT_PASS = 0, EXIT_FAIL = 1, EXIT_SKIP = 3, EXIT_USAGE = 2 };

static const char USAGE[] =
    "usage: snapstore-conformance (--backend NAME | --backend-library PATH) [options]\n"
    "\n"
    "Runs the snapstore conformance cases on one backend and prints\n"
    "'N passed, N failed'. Exit 0 only when every case passed.\n"
    "\n"
    "  --backend NAME           a built-in backend: memory, sqlite, postgres\n"
    "  --backend-library PATH   a backend in a shared object (snap/sys/plugin_entry.h)\n"
    "  --config JSON            the backend's own keys, a JSON object; in it @DIR@ is a\n"
    "                           fresh empty directory and @ID@ a short name unique to\n"
    "                           each case (default: {} ; for sqlite\n"
    "                           {\"path\": \"@DIR@/conformance.db\"})\n"
    "  --persistent yes|no      whether snapshots survive closing and reopening a store\n"
    "                           (default: yes when the backend reports SNAP_CAP_DURABLE)\n"
    "  --file-backup yes|no     whether snap_store_backup() writes a file the backend\n"
    "                           opens as {\"path\": FILE} (default: yes for sqlite only)\n"
    "  --case TEXT              run only the cases whose name contains TEXT\n"
    "  --timeout SECONDS        fail a case that runs longer (default 600)\n"
    "  --tmpdir DIR             where the cases' directories go (default $TMPDIR or /tmp)\n"
    "  --list                   list the cases and exit\n"
    "  --list-backends          list the built-in backends of this library and exit\n"
    "  --version, --help\n";

/* ---- the backend under test ----------------------------------------------- */

static const snap_backend *g_table;
static const snap_backend *table_of_run(void) { return g_table; }

/*
 * Damages the stored body of (pid, seq) through the store itself, so that it
 * works for any backend: the snapshot is read back, encoded again as the plain
 * body it was saved as (the cases damage only bodies saved without options),
 * its CRC-32 trailer altered, and the row put back raw with its timestamp.
 */
static void store_corrupt(const cf_backend *bc, snap_store *st, const char *dir, const char *pid,
                          int64_t seq) {
  (void)dir;
  snap_criteria c = {seq, seq, 0, INT64_MAX};
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load(st, pid, &c, NULL, &s), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_not_null(s, "[%s] no snapshot %s/%" PRId64 " to damage", bc->name, pid, seq);
  cf_assert_eq(s->stages, 0u, "[%s] only a body saved without options can be rebuilt", bc->name);
  snap_buf body = SNAP_BUF_INIT;
  cf_assert_eq(snap_body_encode(pid, seq, s->format, s->data, s->len, NULL, &body, NULL), SNAP_OK,
               "%s", snap_error_message());
  body.data[body.len - 1] ^= 0x5a; /* the checksum: the frame still parses */
  snap_raw_row row = {pid, seq, s->timestamp, body.data, body.len, -1};
  cf_assert_eq(snap_store_put_raw(st, &row, 1), SNAP_OK, "[%s] put back: %s", bc->name,
               snap_error_message());
  snap_buf_dispose(&body);
  snap_snapshot_free(s);
}

/* ---- what the cases call back ---------------------------------------------- */

/* In the child running a case: where its report goes, and whether it skipped. */
static int g_report = -1;
static int g_skipped;

static void report(const char *fmt, va_list ap) {
  char msg[2048];
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
  for (size_t off = 0; off < len;) {
    ssize_t w = write(g_report, msg + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    off += (size_t)w;
  }
}

static void reportf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
}

void cf_fail(const char *file, int line, const char *what, const char *fmt, ...) {
  const char *base = strrchr(file, '/');
  reportf("%s:%d: %s%s", base ? base + 1 : file, line, what, fmt[1] ? ":" : "");
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
  _exit(EXIT_FAIL);
}

void cf_skip(const cf_backend *bc, const char *fmt, ...) {
  (void)bc;
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
  g_skipped = 1;
}

/* ---- running the cases ----------------------------------------------------- */

typedef struct run {
  const cf_backend *bc;
  const char *only; /* substring of the case names to run, or NULL */
  unsigned timeout;
  size_t passed, failed, skipped;
} run;

/* The case in a child process; its exit status says how it went. */
static void child(const cf_case *c, const cf_backend *bc, int fd, unsigned timeout) {
  g_report = fd;
  signal(SIGALRM, SIG_DFL);
  alarm(timeout);
  c->run(bc);
  _exit(g_skipped ? EXIT_SKIP : EXIT_PASS);
}

/* Reads what the child reported until it closes its end. */
static void drain(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    char tmp[512];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    size_t take = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
    memcpy(buf + n, tmp, take);
    n += take;
  }
  buf[n] = 0;
}

static void run_one(run *r, const cf_case *c) {
  int fds[2];
  if (pipe(fds) != 0) {
    printf("FAIL  %s\n      cannot make a pipe: %s\n", c->name, strerror(errno));
    r->failed++;
    return;
  }
  fflush(stdout);
  fflush(stderr);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    child(c, r->bc, fds[1], r->timeout);
  }
  close(fds[1]);
  char msg[4096] = "";
  int status = 0;
  if (pid > 0) {
    drain(fds[0], msg, sizeof msg);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  close(fds[0]);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (pid < 0) {
    printf("FAIL  %s\n      cannot fork: %s\n", c->name, strerror(errno));
    r->failed++;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_PASS) {
    printf("ok    %s (%.2f s)\n", c->name, secs);
    r->passed++;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP) {
    printf("skip  %s: %s\n", c->name, msg);
    r->skipped++;
  } else {
    printf("FAIL  %s (%.2f s)\n", c->name, secs);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
      printf("      timed out after %u s\n", r->timeout);
    else if (WIFSIGNALED(status))
      printf("      the process died of signal %d (%s)\n", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
    else if (!msg[0])
      printf("      exited with status %d\n", WEXITSTATUS(status));
    if (msg[0])
      printf("      %s\n", msg);
    r->failed++;
  }
}

static void run_all(run *r) {
  for (size_t i = 0; i < cf_ncases; i++)
    if (!r->only || strstr(cf_cases[i].name, r->only))
      run_one(r, &cf_cases[i]);
  if (r->skipped)
    printf("%zu skipped: they do not apply to this backend (see above)\n", r->skipped);
  printf("%zu passed, %zu failed\n", r->passed, r->failed);
}

/* ---- setting up ------------------------------------------------------------ */

typedef struct args {
  const char *backend, *library, *config, *persistent, *file_backup, *only, *tmpdir;
  unsigned timeout;
  int list; /* 1: the cases, 2: the backends */
} args;

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "snapstore-conformance: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nTry 'snapstore-conformance --help'.\n");
  return EXIT_USAGE;
}

/* -1: go on; otherwise the exit status. */
static int parse_args(int argc, char **argv, args *a) {
  *a = (args){.timeout = 600};
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
      fputs(USAGE, stdout);
      return EXIT_PASS;
    }
    if (strcmp(o, "--version") == 0) {
      printf("snapstore-conformance %s\n", snap_version());
      return EXIT_PASS;
    }
    if (strcmp(o, "--list") == 0 || strcmp(o, "--list-backends") == 0) {
      a->list = strcmp(o, "--list") == 0 ? 1 : 2;
      continue;
    }
    const char **slot = strcmp(o, "--backend") == 0           ? &a->backend
                        : strcmp(o, "--backend-library") == 0 ? &a->library
                        : strcmp(o, "--config") == 0          ? &a->config
                        : strcmp(o, "--persistent") == 0      ? &a->persistent
                        : strcmp(o, "--file-backup") == 0     ? &a->file_backup
                        : strcmp(o, "--case") == 0            ? &a->only
                        : strcmp(o, "--tmpdir") == 0          ? &a->tmpdir
                        : NULL;
    if (!slot && strcmp(o, "--timeout") != 0)
      return usage_error("unknown option '%s'", o);
    if (i + 1 >= argc)
      return usage_error("%s needs a value", o);
    const char *v = argv[++i];
    if (slot) {
      *slot = v;
      continue;
    }
    char *end;
    unsigned long t = strtoul(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || t == 0 || t > 86400)
      return usage_error("--timeout: '%s' is not a number of seconds (1-86400)", v);
    a->timeout = (unsigned)t;
  }
  if (!a->list && !a->backend == !a->library)
    return usage_error("%s", "give one of --backend NAME and --backend-library PATH");
  return -1;
}

/* "yes" / "no" (or unset: `dflt`) into `*out`; false for anything else. */
static bool yes_no(const char *v, bool dflt, bool *out) {
  *out = v ? strcmp(v, "yes") == 0 : dflt;
  return !v || strcmp(v, "yes") == 0 || strcmp(v, "no") == 0;
}

/* The members of the JSON object `json` (its text without the braces). */
static char *object_members(const char *json) {
  cJSON *doc = cJSON_Parse(json);
  bool ok = doc && cJSON_IsObject(doc);
  cJSON_Delete(doc);
  if (!ok)
    return NULL;
  const char *open = strchr(json, '{'), *close = strrchr(json, '}');
  size_t n = (size_t)(close - open - 1);
  char *m = malloc(n + 1);
  if (m) {
    memcpy(m, open + 1, n);
    m[n] = 0;
  }
  return m;
}

/* The backend table, from the registry (built-ins) or a shared object. */
static int find_table(const args *a, const char **name) {
  if (a->library) {
    if (snap_registry_load(a->library, name) != SNAP_OK) {
      fprintf(stderr, "snapstore-conformance: %s\n", snap_error_message());
      return EXIT_USAGE;
    }
  } else {
    *name = a->backend;
  }
  if (snap_registry_find(*name, &g_table) != SNAP_OK) {
    fprintf(stderr, "snapstore-conformance: %s\n", snap_error_message());
    return EXIT_USAGE;
  }
  return -1;
}

/* The capability bits of a store opened with the backend's keys. */
static int probe_capabilities(const cf_backend *bc, unsigned *caps) {
  char *dir = st_tmpdir();
  char keys[2048], config[2100];
  int rc = SNAP_EIO;
  if (dir && cf_backend_keys(bc, dir, keys, sizeof keys)) {
    snprintf(config, sizeof config, "{%s}", keys);
    snap_store *st = NULL;
    rc = snap_store_open_backend(&st, bc->backend(), config);
    if (rc == SNAP_OK)
      *caps = snap_store_capabilities(st);
    else
      fprintf(stderr, "snapstore-conformance: cannot open a store on '%s': %s\n", bc->name,
              snap_error_message());
    snap_store_close(st);
  } else {
    fprintf(stderr, "snapstore-conformance: cannot make a temporary directory\n");
  }
  if (dir)
    st_rmtree(dir);
  free(dir);
  return rc;
}

static int setup(const args *a, cf_backend *bc, char **members) {
  const char *name = NULL;
  int rc = find_table(a, &name);
  if (rc >= 0)
    return rc;
  const bool is_sqlite = strcmp(name, "sqlite") == 0;
  const char *config = a->config ? a->config
                       : is_sqlite ? "{\"path\": \"@DIR@/conformance.db\"}"
                                   : "{}";
  if (!(*members = object_members(config)))
    return usage_error("--config: '%s' is not a JSON object", config);
  *bc = (cf_backend){.name = name,
                     .backend = table_of_run,
                     .config = *members,
                     .corrupt = store_corrupt};
  if (!yes_no(a->file_backup, is_sqlite, &bc->file_backup))
    return usage_error("--file-backup: '%s' is neither yes nor no", a->file_backup);
  unsigned caps = 0;
  if (probe_capabilities(bc, &caps) != SNAP_OK)
    return EXIT_USAGE;
  if (!yes_no(a->persistent, (caps & SNAP_CAP_DURABLE) != 0, &bc->persistent))
    return usage_error("--persistent: '%s' is neither yes nor no", a->persistent);
  printf("backend '%s' (ABI version %u, capabilities %#x), %s, %s backups\n", name,
         g_table->abi_version, caps, bc->persistent ? "persistent" : "not persistent",
         bc->file_backup ? "file" : "no file");
  return -1;
}

static int list_backends(void) {
  char **names = NULL;
  if (snap_registry_list(&names, NULL) != SNAP_OK) {
    fprintf(stderr, "snapstore-conformance: %s\n", snap_error_message());
    return EXIT_USAGE;
  }
  for (char **n = names; *n; n++)
    printf("%s\n", *n);
  snap_registry_list_free(names);
  return EXIT_PASS;
}

int main(int argc, char **argv) {
  args a;
  int rc = parse_args(argc, argv, &a);
  if (rc >= 0)
    return rc;
  if (a.list == 1) {
    for (size_t i = 0; i < cf_ncases; i++)
      printf("%s\n", cf_cases[i].name);
    return EXIT_PASS;
  }
  if (a.list == 2)
    return list_backends();
  if (a.tmpdir)
    setenv("SNAP_TEST_TMP", a.tmpdir, 1);
  else if (getenv("TMPDIR") && !getenv("SNAP_TEST_TMP"))
    setenv("SNAP_TEST_TMP", getenv("TMPDIR"), 1);
  cf_backend bc;
  char *members = NULL;
  rc = setup(&a, &bc, &members);
  if (rc >= 0) {
    free(members);
    return rc;
  }
  run r = {.bc = &bc, .only = a.only, .timeout = a.timeout};
  run_all(&r);
  free(members);
  return r.failed || !r.passed ? EXIT_FAIL : EXIT_PASS;
}
