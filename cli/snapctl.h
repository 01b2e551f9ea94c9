/* snapctl: shared declarations of the operator tool's files. */
#ifndef SNAPCTL_H
#define SNAPCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "snapstore.h"

/* Exit statuses (documented in snapctl.1). */
#define EXIT_OK 0
#define EXIT_FOUND 1 /* a problem in the data, or the store unreachable at run time */
#define EXIT_USAGE 2 /* the command or the document is wrong */

/* Snapshots per page of a sweep, and per batch of a write. */
#define CTL_PAGE 256

/* ---- the command table (main.c) and an invocation ------------------------- */

typedef struct ctl ctl;

/* One option of a command: "--name" with a value (`value`) or a flag (`flag`). */
typedef struct ctl_opt {
  const char *name;
  const char **value;
  bool *flag;
} ctl_opt;

/* What opening a command's store may do. Only import, the target of copy and
 * an explicit --create create a store; any other command on a store that
 * does not exist is exit 2, with nothing left on disk. */
typedef enum ctl_open_mode {
  CTL_OPEN_READ,   /* an existing store, read-only */
  CTL_OPEN_WRITE,  /* an existing store, to change it */
  CTL_OPEN_CREATE, /* created when missing */
} ctl_open_mode;

typedef struct ctl_cmd {
  const char *name;
  const char *synopsis; /* arguments after the command name */
  const char *summary;  /* one line */
  const char *help;     /* what the command does, its options */
  int (*run)(ctl *c, int argc, char **argv);
  ctl_open_mode mode; /* of the --config store */
} ctl_cmd;

/* The state of one invocation. */
struct ctl {
  const ctl_cmd *cmd;
  const char *config_path;
  bool quiet;
  bool create;         /* --create: the store may be created, whatever the command */
  snap_plugin *plugin; /* open once ctl_open() succeeded */
  snap_store *st;
  const snap_options *opts;
};

/* ---- arguments (args.c) -------------------------------------------------- */

/* Parses argv[1..] of a command: the options in `opts` (NULL-terminated by
 * name), the common --config/--quiet/--help, and up to `max_pos` positional
 * arguments into `pos` (their number in `*npos`; both may be NULL when
 * `max_pos` is 0). Returns -1 to go on, or an exit status (help printed, or a
 * usage error reported). */
int ctl_args(ctl *c, int argc, char **argv, const ctl_opt *opts, const char **pos, int min_pos,
             int max_pos, int *npos);

/* A common option (--config, --quiet, --create) at argv[*i]: 1 if consumed, 0 if not,
 * or -(exit status + 1) after a usage error. */
int ctl_common_opt(ctl *c, int argc, char **argv, int *i);

/* Reports a usage error for the current command; returns EXIT_USAGE. */
int ctl_usage(ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- configuration (config.c) -------------------------------------------- */

/* Opens the store of a configuration document file (no executor), as `mode`
 * allows. EXIT_OK, or the exit status of a failure (reported): EXIT_USAGE
 * for the document (or a store that does not exist), EXIT_FOUND for a store
 * that cannot be reached. */
int ctl_open_config(const char *path, ctl_open_mode mode, snap_plugin **out);

/* Opens c->config_path into c, as its command's mode (or --create) allows. */
int ctl_open(ctl *c);
void ctl_close(ctl *c);

/* ctl_args(), then ctl_open() of the configuration: -1 to go on, or an exit status. */
int ctl_begin(ctl *c, int argc, char **argv, const ctl_opt *opts, const char **pos, int min_pos,
              int max_pos, int *npos);

/* ---- output (output.c) --------------------------------------------------- */

/* Prints "snapctl: <message>" on stderr; returns `status`. */
int ctl_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The detail of a failed snapstore call: the last-error message or the code's name. */
const char *ctl_error(int rc);

const char *ctl_format_name(snap_format f);
/* "zlib+aead", "mac", "none": the stage set in words, into buf. */
const char *ctl_stages_name(unsigned stages, char *buf, size_t n);
/* The same, naming a compressed body's codec ("zlib", "zstd", "zstd+dict"). */
const char *ctl_codec_stages_name(unsigned stages, snap_compression codec, uint32_t dict_id,
                                  char *buf, size_t n);
/* An ISO 8601 UTC time of a timestamp in ms, into buf. */
const char *ctl_time(int64_t ms, char *buf, size_t n);
/* Parses a decimal int64 with nothing after it. */
bool ctl_parse_i64(const char *s, int64_t *out);
/* A body's failure in one word: corrupt, format, auth, nokey, toobig, error. */
const char *ctl_kind(int rc);
/* Prints a pid as a JSON string (quoted, escaped). */
void ctl_print_pid(FILE *f, const char *pid);
/* Reports a body that failed on `f`: "PID" SEQ KIND: detail (PID as a JSON
 * string); the detail is the last-error message when `detail` is NULL. */
void ctl_report_body(FILE *f, const char *pid, int64_t seq, int rc, const char *detail);
/* Prints a cJSON tree (pretty or compact) and a newline to `f`. */
int ctl_print_json(FILE *f, const struct cJSON *j, bool pretty);

/* ---- interruption (interrupt.c) ------------------------------------------ */

/* What ctl_sweep() returns when a signal asked to stop (never a snapstore code). */
#define CTL_INTERRUPTED 1
/* What a sweep's callback returns to stop once the failure bound is reached. */
#define CTL_STOPPED 2

/* Catches SIGINT and SIGTERM once: they raise the flag ctl_interrupted() reads. */
void ctl_interrupt_install(void);
bool ctl_interrupted(void);
/* Prints "snapctl: CMD: interrupted (Ctrl-C): <message>" on stderr, where the
 * message says what was done and how to go on; returns 128 + the signal. */
int ctl_interrupt_report(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- output files (outfile.c) -------------------------------------------- */

/* A file written under a temporary name beside its final one, mode 0600. */
typedef struct ctl_outfile {
  FILE *f;          /* write here */
  const char *path; /* the final name (borrowed) */
  char *tmp;
} ctl_outfile;

/* Creates the temporary file; `path` must not exist. EXIT_OK or an exit
 * status (reported). */
int ctl_outfile_open(ctl_outfile *o, const char *path);
/* Flushes, syncs and gives the file its final name (never replacing a file
 * that appeared meanwhile). SNAP_OK or SNAP_EIO (with a message); the
 * temporary file is gone either way. */
int ctl_outfile_commit(ctl_outfile *o);
/* Closes and removes the temporary file. */
void ctl_outfile_abort(ctl_outfile *o);

/* ---- failures in a row (failures.c) -------------------------------------- */

/* The default of --max-failures. */
#define CTL_MAX_FAILURES 100

typedef struct ctl_failures {
  uint64_t max;    /* 0: no bound */
  uint64_t batch;  /* rows failed in the current batch */
  uint64_t streak; /* rows failed since the last batch without a failure */
  uint64_t streak_listed, unlisted;
  char last[512]; /* the last failed row's message */
} ctl_failures;

/* Reads --max-failures (NULL: the default): -1 to go on, or EXIT_USAGE. */
int ctl_failures_option(ctl *c, const char *arg, ctl_failures *f);
/* One row of the current batch failed against the store (`msg` its error, or
 * its batch's). Returns whether to list it (the first few of a streak are). */
bool ctl_failures_row(ctl_failures *f, const char *msg);
/* The current batch is written: one without a failed row ends the streak.
 * Returns true when the streak reached the bound. */
bool ctl_failures_batch(ctl_failures *f);
bool ctl_failures_stopped(const ctl_failures *f);
/* The one line that ends a run stopped by the bound. */
void ctl_failures_report(const ctl_failures *f, const char *cmd, const char *store);

/* ---- sweeps (sweep.c) ---------------------------------------------------- */

/* Called once per page of a sweep; return non-zero to stop it with that value. */
typedef int (*ctl_page_fn)(void *ud, snap_entry_page *page);

/* Walks every snapshot of `st` (of `pid` if not NULL) in (pid, seq) order, in
 * pages of CTL_PAGE, with their bodies if asked. Returns 0, the callback's
 * value, a snapstore error code (negative), or CTL_INTERRUPTED when a signal
 * asked to stop (checked before each page). */
int ctl_sweep(snap_store *st, const char *pid, bool bodies, ctl_page_fn fn, void *ud);

/* Streamed snapshots (stream_check.c): whether a listed body is a stream
 * head, and the check of one through a stream reader in bounded memory
 * (SNAP_OK once every chunk authenticated; the errors of a load). */
bool ctl_is_stream_head(const void *body, size_t len);
int ctl_stream_check(snap_store *st, const char *pid, int64_t seq);

/* Counts the snapshots of `st` (for progress totals). */
int ctl_count(snap_store *st, uint64_t *n);

/* ---- progress (progress.c) ----------------------------------------------- */

typedef struct ctl_progress {
  const char *what;
  uint64_t total; /* 0: unknown */
  uint64_t done;
  bool quiet, tty;
  double start, last;
} ctl_progress;

void ctl_progress_start(ctl_progress *p, const char *what, uint64_t total, bool quiet);
/* Counts the store's snapshots for the total (unless --quiet), then starts. */
int ctl_progress_counted(ctl_progress *p, const char *what, ctl *c);
void ctl_progress_add(ctl_progress *p, uint64_t n);
void ctl_progress_end(ctl_progress *p);

/* ---- commands ------------------------------------------------------------ */

int cmd_ls(ctl *c, int argc, char **argv);      /* cmd_inspect.c */
int cmd_show(ctl *c, int argc, char **argv);    /* cmd_inspect.c */
int cmd_stats(ctl *c, int argc, char **argv);   /* cmd_inspect.c */
int cmd_verify(ctl *c, int argc, char **argv);  /* cmd_verify.c */
int cmd_rekey(ctl *c, int argc, char **argv);   /* cmd_rekey.c */
int cmd_migrate(ctl *c, int argc, char **argv); /* cmd_migrate.c */
int cmd_copy(ctl *c, int argc, char **argv);    /* cmd_copy.c */
int cmd_backup(ctl *c, int argc, char **argv);  /* cmd_backup.c */
int cmd_export(ctl *c, int argc, char **argv);  /* cmd_export.c */
int cmd_import(ctl *c, int argc, char **argv);  /* cmd_import.c */
int cmd_delete(ctl *c, int argc, char **argv);  /* cmd_delete.c */
int cmd_forget(ctl *c, int argc, char **argv);  /* cmd_forget.c */
int cmd_dict(ctl *c, int argc, char **argv);    /* cmd_dict.c */
/* rekey --wrap-only (cmd_rewrap.c): the store is open. */
int ctl_rewrap(ctl *c);
/* rekey --new-keys (cmd_renew.c) of `n` units, or every unit after `after`
 * when `n` is 0: the store is open. */
int ctl_renew(ctl *c, const char *const *units, int n, const char *after);

#endif
