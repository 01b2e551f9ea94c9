/* snapctl copy and backup: moving whole stores. copy walks the source and the
 * target together in (pid, seq) order (a merge of two sorted sweeps), stores
 * in the target what is missing or different (and with --delete removes what
 * the source does not have), then walks both again to compare every row. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapctl.h"

/* A cursor over the target's rows, page by page. */
typedef struct tcursor {
  snap_store *st;
  snap_entry_page page;
  size_t i;
  char *after;
  int64_t after_seq;
  bool end;
} tcursor;

/* The target's current row (NULL at the end); `*rc` receives a listing error. */
static const snap_entry *tc_peek(tcursor *t, int *rc) {
  *rc = SNAP_OK;
  if (t->i < t->page.n)
    return &t->page.entries[t->i];
  if (t->end)
    return NULL;
  if (t->page.n > 0) {
    free(t->after);
    t->after = strdup(t->page.entries[t->page.n - 1].pid);
    t->after_seq = t->page.entries[t->page.n - 1].seq;
    if (t->after == NULL) {
      *rc = snap_error_set(SNAP_ENOMEM, "out of memory");
      return NULL;
    }
  }
  *rc = snap_store_list(t->st, NULL, t->after, t->after_seq, CTL_PAGE, true, &t->page);
  t->i = 0;
  if (*rc != SNAP_OK || t->page.n < CTL_PAGE)
    t->end = true;
  return t->page.n ? &t->page.entries[0] : NULL;
}

static void tc_dispose(tcursor *t) {
  snap_entry_page_dispose(&t->page);
  free(t->after);
}

static int cmp_key(const snap_entry *a, const snap_entry *b) {
  int c = strcmp(a->pid, b->pid);
  if (c != 0)
    return c;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static bool same_row(const snap_entry *a, const snap_entry *b) {
  return a->timestamp == b->timestamp && a->stored_len == b->stored_len &&
         memcmp(a->body, b->body, a->stored_len) == 0;
}

typedef struct copy_ctx {
  tcursor t;
  bool fix;    /* store what differs (copy pass) or only count it (verify pass) */
  bool mirror; /* --delete: rows only in the target are removed (copy) or differences (verify) */
  uint64_t same, written, differ, failed, extra, deleted;
  snap_raw_row rows[CTL_PAGE];
  ctl_progress prog;
} copy_ctx;

/* A target row the source does not have: removed with --delete, else counted. */
static void extra_row(copy_ctx *x, const snap_entry *t) {
  if (!x->mirror) {
    x->extra++;
    return;
  }
  if (x->fix) {
    int rc = snap_delete_one(x->t.st, t->pid, t->seq);
    if (rc == SNAP_OK) {
      x->deleted++;
    } else {
      x->failed++;
      ctl_report_body(stdout, t->pid, t->seq, rc, NULL);
    }
    return;
  }
  x->extra++;
  ctl_print_pid(stdout, t->pid);
  printf(" %" PRId64 " is only in the target\n", t->seq);
}

static int copy_page(void *ud, snap_entry_page *page) {
  copy_ctx *x = ud;
  size_t n = 0;
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    int rc;
    const snap_entry *t;
    /* Target rows before this source row are not in the source. */
    while ((t = tc_peek(&x->t, &rc)) != NULL && cmp_key(t, e) < 0) {
      extra_row(x, t);
      x->t.i++;
    }
    if (rc != SNAP_OK)
      return rc;
    bool there = t != NULL && cmp_key(t, e) == 0;
    if (there)
      x->t.i++; /* this source row's counterpart: not an extra row */
    if (there && same_row(t, e)) {
      x->same++;
      continue;
    }
    if (!x->fix) {
      x->differ++;
      ctl_print_pid(stdout, e->pid);
      printf(" %" PRId64 " %s in the target\n", e->seq, there ? "differs" : "is missing");
      continue;
    }
    x->rows[n++] = (snap_raw_row){e->pid, e->seq, e->timestamp, e->body, e->stored_len, SNAP_OK};
  }
  if (n > 0) {
    (void)snap_store_put_raw(x->t.st, x->rows, n);
    for (size_t j = 0; j < n; j++) {
      if (x->rows[j].status == SNAP_OK) {
        x->written++;
        continue;
      }
      x->failed++;
      ctl_report_body(stdout, x->rows[j].pid, x->rows[j].seq, x->rows[j].status, NULL);
    }
  }
  ctl_progress_add(&x->prog, page->n);
  return 0;
}

/* One merge pass of the source against the target. */
static int copy_pass(ctl *c, snap_store *dst, bool fix, bool mirror, uint64_t total,
                     copy_ctx *x) {
  memset(x, 0, sizeof *x);
  x->t.st = dst;
  x->fix = fix;
  x->mirror = mirror;
  ctl_progress_start(&x->prog, fix ? "copy" : "compare", total, c->quiet);
  int rc = ctl_sweep(c->st, NULL, true, copy_page, x);
  /* The target's rows after the source's last one. */
  const snap_entry *t;
  int trc = SNAP_OK;
  while (rc == SNAP_OK && (t = tc_peek(&x->t, &trc)) != NULL) {
    extra_row(x, t);
    x->t.i++;
  }
  if (rc == SNAP_OK)
    rc = trc;
  ctl_progress_end(&x->prog);
  tc_dispose(&x->t);
  return rc;
}

int cmd_copy(ctl *c, int argc, char **argv) {
  const char *to = NULL;
  bool mirror = false;
  const ctl_opt opts[] = {{"--to", &to, NULL}, {"--delete", NULL, &mirror}, {NULL, NULL, NULL}};
  const char *pos[1];
  int npos, rc = ctl_args(c, argc, argv, opts, pos, 0, 0, &npos);
  if (rc >= 0)
    return rc;
  if (to == NULL)
    return ctl_usage(c, "--to CONFIG2 is required");
  if ((rc = ctl_open(c)) != EXIT_OK)
    return rc;
  snap_plugin *target = NULL;
  if ((rc = ctl_open_config(to, &target)) != EXIT_OK)
    return rc;
  snap_store *dst = snap_plugin_store(target);
  copy_ctx *x = malloc(sizeof *x);
  uint64_t total = 0;
  int s = x ? SNAP_OK : snap_error_set(SNAP_ENOMEM, "out of memory");
  if (s == SNAP_OK && !c->quiet)
    s = ctl_count(c->st, &total);
  if (s == SNAP_OK)
    s = copy_pass(c, dst, true, mirror, total, x);
  uint64_t written = x ? x->written : 0, failed = x ? x->failed : 0, same = x ? x->same : 0;
  uint64_t deleted = x ? x->deleted : 0;
  if (s == SNAP_OK && failed == 0)
    s = copy_pass(c, dst, false, mirror, total, x);
  if (s == CTL_INTERRUPTED)
    rc = ctl_interrupt_report("copy", "%" PRIu64 " rows written; running it again resumes",
                              written);
  else if (s != SNAP_OK)
    rc = ctl_fail(EXIT_FOUND, "copy: %s (running it again resumes)", ctl_error(s));
  else if (failed > 0)
    rc = ctl_fail(EXIT_FOUND, "copy: %" PRIu64 " rows could not be stored in (or deleted from) "
                              "the target", failed);
  else {
    fprintf(stderr,
            "copy: %" PRIu64 " rows written, %" PRIu64 " already present, %" PRIu64
            " deleted from the target; verified: %" PRIu64 " identical, %" PRIu64
            " different or missing, %" PRIu64 " only in the target%s\n",
            written, same, deleted, x->same, x->differ, x->extra,
            x->extra && !mirror ? " (kept: --delete removes them)" : "");
    rc = x->differ || (mirror && x->extra) ? EXIT_FOUND : EXIT_OK;
  }
  free(x);
  snap_plugin_close(target);
  return rc;
}

int cmd_backup(ctl *c, int argc, char **argv) {
  const char *pos[1];
  int npos, rc = ctl_begin(c, argc, argv, NULL, pos, 1, 1, &npos);
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
