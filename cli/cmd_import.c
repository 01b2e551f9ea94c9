/* snapctl import: the snapshots (and trained dictionaries) of a JSON Lines
 * file as written by export (cmd_export.c), every line checked before
 * anything is stored. A streamed record (a first line with "stream_length",
 * then its part lines) is checked as one state and stored as a streamed
 * save, one part at a time: memory stays bounded by a part. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snap/store_stream.h"

#include "import_line.h"
#include "snapctl.h"

#define MAX_REPORTED 20

/* Pass 1's view of the streamed record being read. */
typedef struct stream_check {
  snap_payload_validator *v; /* non-NULL inside a record */
  uint64_t left;             /* state bytes its part lines still owe */
  uint64_t line;             /* its first line */
} stream_check;

static void stream_check_end(stream_check *sc) {
  snap_payload_validator_free(sc->v);
  sc->v = NULL;
}

/* The record structure around `r` (parsed from line `lineno`): part lines
 * only inside a streamed record and adding up to its length, its state
 * valid. False with `err` set when the line breaks it. */
static bool stream_step(stream_check *sc, const jl_rec *r, uint64_t lineno, char *err,
                        size_t errn) {
  if (!r->is_part) {
    bool open = sc->v != NULL;
    stream_check_end(sc);
    if (open)
      return ctl_import_bad(
          err, errn, "the streamed record of line %" PRIu64 " ends before its length", sc->line);
    if (r->stream_len == 0)
      return true;
    if (snap_payload_validator_new(&sc->v, r->format) != SNAP_OK)
      return ctl_import_bad(err, errn, "out of memory");
    sc->left = r->stream_len;
    sc->line = lineno;
    return true;
  }
  if (sc->v == NULL)
    return ctl_import_bad(err, errn, "a part line outside a streamed record");
  bool ok =
      r->part_len <= sc->left ||
      ctl_import_bad(err, errn, "more state than the \"stream_length\" of line %" PRIu64, sc->line);
  if (ok && snap_payload_validator_push(sc->v, r->part, r->part_len) != SNAP_OK)
    ok = ctl_import_bad(err, errn, "the streamed state of line %" PRIu64 " is not valid: %s",
                        sc->line, snap_error_message());
  sc->left -= ok ? r->part_len : 0;
  if (ok && sc->left == 0 && snap_payload_validator_finish(sc->v) != SNAP_OK)
    ok = ctl_import_bad(err, errn, "the streamed state of line %" PRIu64 " is not valid: %s",
                        sc->line, snap_error_message());
  if (!ok || sc->left == 0)
    stream_check_end(sc);
  return ok;
}

/* Pass 1: checks every line of `in`, copying it to `spool` when not NULL. */
static uint64_t check_all(FILE *in, FILE *spool, const char *name, uint64_t *lines) {
  char *line = NULL, err[512];
  size_t cap = 0;
  ssize_t n;
  uint64_t bad = 0;
  stream_check sc = {NULL, 0, 0};
  *lines = 0;
  while ((n = getline(&line, &cap, in)) > 0) {
    ++*lines;
    if (spool)
      fwrite(line, 1, (size_t)n, spool);
    size_t len = (size_t)n;
    if (line[len - 1] == '\n')
      len--;
    if (len == 0)
      continue; /* blank lines carry nothing */
    jl_rec r;
    if (ctl_import_parse_line(line, len, &r, err, sizeof err)) {
      bool ok = stream_step(&sc, &r, *lines, err, sizeof err);
      ctl_import_rec_dispose(&r);
      if (ok)
        continue;
    }
    if (bad++ < MAX_REPORTED)
      fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": %s\n", name, *lines, err);
  }
  if (sc.v != NULL && bad++ < MAX_REPORTED)
    fprintf(stderr,
            "snapctl: import: %s: line %" PRIu64 ": the streamed record ends before its "
            "length (the file is cut short)\n",
            name, sc.line);
  stream_check_end(&sc);
  free(line);
  return bad;
}

typedef struct import_ctx {
  ctl *c;
  jl_rec recs[CTL_PAGE];
  uint64_t line_of[CTL_PAGE];
  snap_save_req reqs[CTL_PAGE];
  snap_save_ext ext[CTL_PAGE];
  int status[CTL_PAGE];
  size_t n;
  uint64_t stored, failed, dicts;
  ctl_failures fails;
  snap_save_stream *w; /* the streamed record being saved, or NULL */
  uint64_t w_left;     /* state bytes its part lines still owe */
  uint64_t w_line;     /* its first line */
} import_ctx;

/* Stores a dictionary line's dictionary; one the store holds already under
 * the same name counts as stored. */
static void store_dictionary(import_ctx *x, jl_rec *r, const char *name, uint64_t lineno) {
  uint32_t id = 0;
  int rc = snap_store_dict_add(x->c->st, r->dict_name, r->dict, r->dict_len, &id);
  if (rc == SNAP_ECONFLICT) {
    snap_dict *d = NULL;
    uint32_t want = 0;
    (void)snap_dict_id_of(r->dict, r->dict_len, &want);
    if (snap_store_dict_get(x->c->st, 0, r->dict_name, &d) == SNAP_OK && snap_dict_id(d) == want)
      rc = SNAP_OK;
    snap_dict_free(d);
  }
  if (rc == SNAP_OK) {
    x->dicts++;
  } else {
    x->failed++;
    fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": dictionary '%s' not stored: %s\n", name,
            lineno, r->dict_name, ctl_error(rc));
  }
  ctl_import_rec_dispose(r);
}

/* Saves the batch; returns true when the failure bound stops the import. */
static bool flush_batch(import_ctx *x, const char *name) {
  if (x->n == 0)
    return false;
  for (size_t i = 0; i < x->n; i++) {
    jl_rec *r = &x->recs[i];
    x->reqs[i] = (snap_save_req){r->pid, r->seq, r->timestamp, r->format, r->state, r->len, NULL};
    x->ext[i] = (snap_save_ext){
        .manifest = r->manifest, .metadata = r->metadata, .metadata_len = r->metadata_len};
  }
  int brc = snap_save_batch_ex(x->c->st, x->reqs, x->ext, x->n, x->status, NULL);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", brc == SNAP_OK ? "" : ctl_error(brc));
  for (size_t i = 0; i < x->n; i++) {
    ctl_import_rec_dispose(&x->recs[i]);
    if (x->status[i] == SNAP_OK) {
      x->stored++;
      continue;
    }
    x->failed++;
    if (ctl_failures_row(&x->fails, msg))
      fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": not stored: %s\n", name,
              x->line_of[i], snap_strerror(x->status[i]));
  }
  x->n = 0;
  return ctl_failures_batch(&x->fails);
}

/* A streamed save that failed: counted and reported once. */
static void stream_failed(import_ctx *x, const char *name, int rc) {
  snap_save_stream_abort(x->w);
  x->w = NULL;
  x->failed++;
  if (ctl_failures_row(&x->fails, snap_error_message()))
    fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": not stored: %s\n", name, x->w_line,
            ctl_error(rc));
}

/* The first line of a streamed record: a streamed save begins. */
static void stream_begin(import_ctx *x, jl_rec *r, const char *name, uint64_t lineno) {
  snap_save_ext ext = {
      .manifest = r->manifest, .metadata = r->metadata, .metadata_len = r->metadata_len};
  x->w_left = r->stream_len;
  x->w_line = lineno;
  int rc = snap_save_stream_begin(x->c->st, r->pid, r->seq, r->timestamp, r->format, NULL, &ext, 0,
                                  &x->w);
  if (rc != SNAP_OK)
    stream_failed(x, name, rc);
  ctl_import_rec_dispose(r);
}

/* A part line: its bytes into the save, committed after the last. */
static void stream_part(import_ctx *x, jl_rec *r, const char *name) {
  int rc = SNAP_OK;
  if (x->w != NULL && (rc = snap_save_stream_write(x->w, r->part, r->part_len)) != SNAP_OK)
    stream_failed(x, name, rc);
  x->w_left -= r->part_len <= x->w_left ? r->part_len : x->w_left;
  ctl_import_rec_dispose(r);
  if (x->w == NULL || x->w_left > 0)
    return;
  snap_save_stream *w = x->w;
  x->w = NULL;
  if ((rc = snap_save_stream_commit(w, NULL)) == SNAP_OK)
    x->stored++;
  else
    stream_failed(x, name, rc);
}

/* Pass 1 over FILE (or stdin, spooled: it cannot be read twice). On success
 * `*src` is the input rewound for pass 2; otherwise an exit status. */
static int check_input(const char *path, const char *name, FILE **src, uint64_t *lines) {
  *src = NULL;
  FILE *in = path && strcmp(path, "-") != 0 ? fopen(path, "rb") : stdin;
  if (in == NULL)
    return ctl_fail(EXIT_USAGE, "import: cannot read '%s'", path);
  FILE *spool = in == stdin ? tmpfile() : NULL;
  if (in == stdin && spool == NULL)
    return ctl_fail(EXIT_USAGE, "import: cannot create a temporary file to hold stdin");
  uint64_t bad = check_all(in, spool, name, lines);
  bool read_err = ferror(in) != 0;
  FILE *f = spool ? spool : in;
  rewind(f);
  if (!read_err && bad == 0) {
    *src = f;
    return -1;
  }
  if (bad > MAX_REPORTED)
    fprintf(stderr, "snapctl: import: %" PRIu64 " more bad lines not shown\n", bad - MAX_REPORTED);
  if (f != stdin)
    fclose(f);
  if (read_err)
    return ctl_fail(EXIT_USAGE, "import: cannot read '%s'", name);
  return ctl_fail(EXIT_USAGE, "import: %" PRIu64 " of %" PRIu64 " lines are bad; nothing stored",
                  bad, *lines);
}

/* Pass 2: saves every line in batches. Returns the last line number read. */
static uint64_t store_all(import_ctx *x, FILE *src, const char *name, uint64_t lines) {
  ctl_progress prog;
  ctl_progress_start(&prog, "import", lines, x->c->quiet);
  char *line = NULL, err[512];
  size_t cap = 0;
  ssize_t n;
  uint64_t lineno = 0;
  bool stop = false;
  while (!stop && !ctl_interrupted() && (n = getline(&line, &cap, src)) > 0) {
    lineno++;
    size_t len = (size_t)n;
    if (line[len - 1] == '\n')
      len--;
    ctl_progress_add(&prog, 1);
    if (len == 0)
      continue;
    if (!ctl_import_parse_line(line, len, &x->recs[x->n], err, sizeof err)) {
      /* Checked already: only a change of the file in between gets here. */
      x->failed++;
      fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": %s\n", name, lineno, err);
      continue;
    }
    if (x->recs[x->n].is_part) {
      stream_part(x, &x->recs[x->n], name);
      continue;
    }
    if (x->w != NULL) /* the record ended early: only a file changed since pass 1 */
      stream_failed(x, name, snap_error_set(SNAP_EFORMAT, "the streamed record is cut short"));
    if (x->recs[x->n].stream_len > 0) {
      stop = flush_batch(x, name);
      stream_begin(x, &x->recs[x->n], name, lineno);
      continue;
    }
    if (x->recs[x->n].dict_name != NULL) {
      /* Stored before any later line's save, which may name it. */
      stop = flush_batch(x, name);
      store_dictionary(x, &x->recs[x->n], name, lineno);
      continue;
    }
    x->line_of[x->n++] = lineno;
    if (x->n == CTL_PAGE)
      stop = flush_batch(x, name);
  }
  if (!stop)
    flush_batch(x, name);
  if (x->w != NULL) /* interrupted, or the file changed: nothing of it is visible */
    stream_failed(x, name,
                  snap_error_set(SNAP_EFORMAT, "%s",
                                 ctl_interrupted() ? "interrupted before its end"
                                                   : "the streamed record is cut short"));
  for (size_t i = 0; i < x->n; i++)
    ctl_import_rec_dispose(&x->recs[i]);
  ctl_progress_end(&prog);
  free(line);
  return lineno;
}

int cmd_import(ctl *c, int argc, char **argv) {
  const char *pos[1], *max_failures = NULL;
  const ctl_opt opts[] = {{"--max-failures", &max_failures, NULL}, {NULL, NULL, NULL}};
  int npos, rc = ctl_args(c, argc, argv, opts, pos, 0, 1, &npos);
  if (rc >= 0)
    return rc;
  import_ctx *x = calloc(1, sizeof *x);
  if (x == NULL)
    return ctl_fail(EXIT_FOUND, "import: out of memory");
  const char *name = npos ? pos[0] : "(stdin)";
  FILE *src = NULL;
  uint64_t lines = 0, lineno = 0;
  if ((rc = ctl_failures_option(c, max_failures, &x->fails)) < 0 &&
      (rc = check_input(npos ? pos[0] : NULL, name, &src, &lines)) < 0 &&
      (rc = ctl_open(c)) == EXIT_OK) {
    x->c = c;
    lineno = store_all(x, src, name, lines);
  }
  if (src != NULL && src != stdin)
    fclose(src);
  uint64_t stored = x->stored, failed = x->failed, dicts = x->dicts;
  bool stopped = ctl_failures_stopped(&x->fails);
  if (stopped)
    ctl_failures_report(&x->fails, "import", "the store");
  free(x);
  if (rc != EXIT_OK)
    return rc;
  if (ctl_interrupted() || stopped) {
    const char *what = "%" PRIu64 " snapshots stored (up to line %" PRIu64 "), %" PRIu64
                       " failed; running it again stores them all (a save of the same pid and "
                       "seq replaces)";
    if (stopped)
      return ctl_fail(EXIT_FOUND, what, stored, lineno, failed);
    return ctl_interrupt_report("import", what, stored, lineno, failed);
  }
  if (!c->quiet || failed)
    fprintf(stderr, "import: %" PRIu64 " snapshots stored, %" PRIu64 " failed\n", stored, failed);
  if (!c->quiet && dicts)
    fprintf(stderr, "import: %" PRIu64 " dictionaries stored\n", dicts);
  return failed ? EXIT_FOUND : EXIT_OK;
}
