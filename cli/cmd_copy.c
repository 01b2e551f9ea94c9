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
  snap_store *src;
  bool fix;    /* store what differs (copy pass) or only count it (verify pass) */
  bool mirror; /* --delete: rows only in the target are removed (copy) or differences (verify) */
  bool decode_all; /* --decode-all: the verify pass decodes every row, not one per pid */
  uint64_t same, written, differ, failed, extra, deleted;
  ctl_failures fails;
  uint64_t decoded, unreadable, unreadable_src; /* the verify pass's decoding in the target */
  char *sampled_pid;                            /* the pid whose row was decoded last */
  snap_buf state;
  snap_raw_row rows[CTL_PAGE];
  ctl_progress prog;
} copy_ctx;

/* The verify pass decodes an identical row through the target's own
 * configuration (its keys, context and switches): identical bytes say nothing
 * about whether the target can read them. One row per pid, or every row. A
 * row the target cannot read is listed; when the source cannot read it
 * either, it is counted apart (the copy is faithful; verify the source). */
static void read_back(copy_ctx *x, const snap_entry *t) {
  if (!x->decode_all && x->sampled_pid != NULL && strcmp(x->sampled_pid, t->pid) == 0)
    return;
  free(x->sampled_pid);
  x->sampled_pid = strdup(t->pid);
  x->decoded++;
  bool streamed = ctl_is_stream_head(t->body, t->stored_len);
  int rc = streamed ? ctl_stream_check(x->t.st, t->pid, t->seq)
                    : snap_store_decode(x->t.st, t->pid, t->seq, t->body, t->stored_len, NULL,
                                        &x->state, NULL, NULL);
  if (rc == SNAP_OK)
    return;
  char detail[1024];
  snprintf(detail, sizeof detail, "%s", ctl_error(rc));
  int src_rc = streamed ? ctl_stream_check(x->src, t->pid, t->seq)
                        : snap_store_decode(x->src, t->pid, t->seq, t->body, t->stored_len, NULL,
                                            &x->state, NULL, NULL);
  if (src_rc != SNAP_OK) {
    x->unreadable_src++;
    return;
  }
  x->unreadable++;
  ctl_print_pid(stdout, t->pid);
  printf(" %" PRId64 " cannot be read in the target: %s: %s\n", t->seq, ctl_kind(rc), detail);
}

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
      if (ctl_failures_row(&x->fails, ctl_error(rc)))
        ctl_report_body(stdout, t->pid, t->seq, rc, NULL);
    }
    return;
  }
  x->extra++;
  ctl_print_pid(stdout, t->pid);
  printf(" %" PRId64 " is only in the target\n", t->seq);
}

/* Stores the first `n` of x->rows in the target. The batch has one last
 * error: a row is given it only when it is the batch's only failure. */
static void put_rows(copy_ctx *x, size_t n) {
  (void)snap_store_put_raw(x->t.st, x->rows, n);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", snap_error_message());
  uint64_t nfailed = 0;
  for (size_t j = 0; j < n; j++)
    nfailed += x->rows[j].status != SNAP_OK;
  for (size_t j = 0; j < n; j++) {
    const snap_raw_row *r = &x->rows[j];
    if (r->status == SNAP_OK) {
      x->written++;
      continue;
    }
    x->failed++;
    if (ctl_failures_row(&x->fails, msg))
      ctl_report_body(stdout, r->pid, r->seq, r->status,
                      nfailed == 1 ? msg : snap_strerror(r->status));
  }
}

/* A streamed snapshot: its chunk records copied one at a time, then its head. */
static void copy_stream(copy_ctx *x, const snap_entry *e) {
  int rc = snap_store_copy_stream(x->src, x->t.st, e->pid, e->seq, e->timestamp, e->body,
                                  e->stored_len);
  if (rc == SNAP_OK) {
    x->written++;
    return;
  }
  x->failed++;
  if (ctl_failures_row(&x->fails, snap_error_message()))
    ctl_report_body(stdout, e->pid, e->seq, rc, snap_error_message());
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
      if (!x->fix)
        read_back(x, t);
      continue;
    }
    if (!x->fix) {
      x->differ++;
      ctl_print_pid(stdout, e->pid);
      printf(" %" PRId64 " %s in the target\n", e->seq, there ? "differs" : "is missing");
      continue;
    }
    if (ctl_is_stream_head(e->body, e->stored_len)) {
      copy_stream(x, e); /* its chunks, record by record; the head published last */
      continue;
    }
    x->rows[n++] = (snap_raw_row){e->pid, e->seq, e->timestamp, e->body, e->stored_len, SNAP_OK};
  }
  if (n > 0)
    put_rows(x, n);
  ctl_progress_add(&x->prog, page->n);
  if (x->fix && ctl_failures_batch(&x->fails))
    return CTL_STOPPED;
  return 0;
}

/* One merge pass of the source against the target: the copy (`fix`) or the
 * comparison. Counters start from 0; the options (mirror, decode_all, the
 * failure bound) are kept. */
static int copy_pass(ctl *c, bool fix, uint64_t total, copy_ctx *x) {
  x->same = x->written = x->differ = x->failed = x->extra = x->deleted = 0;
  x->fix = fix;
  memset(&x->t.page, 0, sizeof x->t.page);
  x->t.i = 0;
  x->t.after = NULL;
  x->t.after_seq = 0;
  x->t.end = false;
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

/* The last line of a copy that went through both passes. */
static int copy_summary(const copy_ctx *x, uint64_t written, uint64_t same, uint64_t deleted) {
  char sample[64];
  snprintf(sample, sizeof sample, "%s", x->decode_all ? "every row" : "one row per pid");
  fprintf(stderr,
          "copy: %" PRIu64 " rows written, %" PRIu64 " already present, %" PRIu64
          " deleted from the target; verified: %" PRIu64 " identical, %" PRIu64
          " different or missing, %" PRIu64
          " only in the target%s; read in the target (%s): %" PRIu64 " decoded, %" PRIu64
          " cannot be read there",
          written, same, deleted, x->same, x->differ, x->extra,
          x->extra && !x->mirror ? " (kept: --delete removes them)" : "", sample, x->decoded,
          x->unreadable + x->unreadable_src);
  if (x->unreadable_src)
    fprintf(stderr, " (%" PRIu64 " of them not in the source either: 'snapctl verify' lists them)",
            x->unreadable_src);
  fputc('\n', stderr);
  if (x->unreadable)
    fprintf(stderr,
            "snapctl: copy: the target cannot read %" PRIu64 " of the rows it was given "
            "(listed above): its document needs the source's keys and context\n",
            x->unreadable);
  bool bad = x->differ || (x->mirror && x->extra) || x->unreadable || x->unreadable_src;
  return bad ? EXIT_FOUND : EXIT_OK;
}

/* Both passes, once the stores are open. */
static int copy_run(ctl *c, copy_ctx *x) {
  uint64_t total = 0;
  int s = c->quiet ? SNAP_OK : ctl_count(c->st, &total);
  if (s == SNAP_OK)
    s = copy_pass(c, true, total, x);
  uint64_t written = x->written, failed = x->failed, same = x->same, deleted = x->deleted;
  if (s == SNAP_OK && failed == 0)
    s = copy_pass(c, false, total, x);
  if (s == CTL_INTERRUPTED)
    return ctl_interrupt_report("copy", "%" PRIu64 " rows written; running it again resumes",
                                written);
  if (s == CTL_STOPPED) {
    ctl_failures_report(&x->fails, "copy", "the target");
    return ctl_fail(EXIT_FOUND,
                    "copy: %" PRIu64 " rows written before it stopped; running it "
                    "again resumes",
                    written);
  }
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "copy: %s (running it again resumes)", ctl_error(s));
  if (failed > 0)
    return ctl_fail(EXIT_FOUND,
                    "copy: %" PRIu64 " rows could not be stored in (or deleted from) "
                    "the target (%" PRIu64 " not listed); last error: %s",
                    failed, x->fails.unlisted, x->fails.last);
  return copy_summary(x, written, same, deleted);
}

/* The source's dictionaries, opened with its keys and stored in the target
 * sealed with the target's (docs/STORE.md, "Dictionaries"), before any body
 * that may name one: a dictionary the target already has (same id, hence
 * same bytes) is left as it is. A source without dictionaries has none to
 * copy. */
static int copy_dicts(snap_store *src, snap_store *dst) {
  snap_dict_info *v = NULL;
  size_t n = 0;
  int rc = snap_store_dict_list(src, &v, &n);
  if (rc == SNAP_EUNSUPPORTED)
    return EXIT_OK;
  if (rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "copy: dictionaries: %s", ctl_error(rc));
  for (size_t i = 0; i < n && rc == SNAP_OK; i++) {
    snap_dict *d;
    if ((rc = snap_store_dict_get(src, v[i].id, NULL, &d)) != SNAP_OK)
      break;
    size_t len;
    const void *bytes = snap_dict_bytes(d, &len);
    rc = snap_store_dict_add(dst, v[i].name, bytes, len, NULL);
    snap_dict *there = NULL;
    if (rc == SNAP_ECONFLICT && snap_store_dict_get(dst, v[i].id, NULL, &there) == SNAP_OK)
      rc = SNAP_OK; /* the target has it already */
    snap_dict_free(there);
    snap_dict_free(d);
  }
  snap_free(v);
  return rc == SNAP_OK ? EXIT_OK : ctl_fail(EXIT_FOUND, "copy: dictionaries: %s", ctl_error(rc));
}

int cmd_copy(ctl *c, int argc, char **argv) {
  const char *to = NULL, *max_failures = NULL;
  bool mirror = false, decode_all = false;
  const ctl_opt opts[] = {{"--to", &to, NULL},
                          {"--delete", NULL, &mirror},
                          {"--decode-all", NULL, &decode_all},
                          {"--max-failures", &max_failures, NULL},
                          {NULL, NULL, NULL}};
  int rc = ctl_args(c, argc, argv, opts, NULL, 0, 0, NULL);
  if (rc >= 0)
    return rc;
  if (to == NULL)
    return ctl_usage(c, "--to CONFIG2 is required");
  copy_ctx *x = calloc(1, sizeof *x);
  if (x == NULL)
    return ctl_fail(EXIT_FOUND, "copy: out of memory");
  snap_plugin *target = NULL;
  if ((rc = ctl_failures_option(c, max_failures, &x->fails)) < 0 && (rc = ctl_open(c)) == EXIT_OK &&
      (rc = ctl_open_config(to, CTL_OPEN_CREATE, &target)) == EXIT_OK) {
    x->src = c->st;
    x->t.st = snap_plugin_store(target);
    x->mirror = mirror;
    x->decode_all = decode_all;
    rc = copy_dicts(x->src, x->t.st);
    if (rc == EXIT_OK)
      rc = copy_run(c, x);
  }
  snap_buf_dispose(&x->state);
  free(x->sampled_pid);
  free(x);
  snap_plugin_close(target);
  return rc;
}
