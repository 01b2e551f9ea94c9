/* snapctl import: the snapshots (and trained dictionaries) of a JSON Lines
 * file as written by export (cmd_export.c), every line checked before
 * anything is stored. A streamed record (a first line with "stream_length",
 * then its part lines) is checked as one state and stored as a streamed
 * save, one part at a time: memory stays bounded by a part. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "snap/store_stream.h"
#include "snapctl.h"

/* Integers in a JSON document are doubles: 2^53 is the last exact one. */
#define JSON_INT_MAX 9007199254740992.0

/* The most state bytes one part line may carry (export writes 768 KiB). */
#define PART_MAX (16u << 20)

/* One snapshot read from a line (owned strings). */
typedef struct jl_rec {
  char *pid;
  int64_t seq, timestamp;
  snap_format format;
  uint8_t *state;
  size_t len;
  char *manifest;    /* NULL: none */
  uint8_t *metadata; /* NULL: none */
  size_t metadata_len;
  char *dict_name; /* non-NULL: a dictionary line (no snapshot) */
  uint8_t *dict;
  size_t dict_len;
  uint64_t stream_len; /* non-zero: the first line of a streamed record (no state) */
  bool is_part;        /* a part line of a streamed record: only `part` */
  uint8_t *part;
  size_t part_len;
} jl_rec;

static void rec_dispose(jl_rec *r) {
  free(r->pid);
  free(r->state);
  free(r->manifest);
  free(r->metadata);
  free(r->dict_name);
  free(r->dict);
  free(r->part);
  memset(r, 0, sizeof *r);
}

static bool get_int(const cJSON *v, int64_t *out) {
  if (!cJSON_IsNumber(v))
    return false;
  double d = v->valuedouble;
  if (!(d >= 0 && d <= JSON_INT_MAX) || d != (double)(int64_t)d)
    return false;
  *out = (int64_t)d;
  return true;
}

/* Writes why a line is bad into `err`; returns false. */
__attribute__((format(printf, 3, 4))) static bool bad(char *err, size_t errn, const char *fmt,
                                                      ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errn, fmt, ap);
  va_end(ap);
  return false;
}

/* The line as one JSON object with nothing after it; NULL when it is not. */
static cJSON *parse_object(const char *line, size_t len, char *err, size_t errn) {
  if (memchr(line, '\0', len) != NULL) {
    bad(err, errn, "a NUL byte inside the line");
    return NULL;
  }
  const char *end = NULL;
  cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, false);
  if (o == NULL || !cJSON_IsObject(o)) {
    bad(err, errn, "not a JSON object%s", o ? "" : " (malformed JSON)");
    cJSON_Delete(o);
    return NULL;
  }
  for (const char *p = end; p < line + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r') {
      bad(err, errn, "bytes after the JSON object");
      cJSON_Delete(o);
      return NULL;
    }
  return o;
}

enum {
  K_PID,
  K_SEQ,
  K_TIMESTAMP,
  K_FORMAT,
  K_STATE,
  K_STATE_BASE64,
  K_MANIFEST,
  K_METADATA_BASE64,
  K_STREAM_LENGTH,
  NKEYS
};

/* The object's members by key; an unknown or repeated key makes the line bad. */
static bool find_keys(const cJSON *o, const cJSON *f[NKEYS], char *err, size_t errn) {
  static const char *const keys[NKEYS] = {"pid",          "seq",      "timestamp",
                                          "format",       "state",    "state_base64",
                                          "manifest",     "metadata_base64", "stream_length"};
  for (const cJSON *it = o->child; it; it = it->next) {
    size_t k = 0;
    while (k < NKEYS && strcmp(it->string, keys[k]) != 0)
      k++;
    if (k == NKEYS)
      return bad(err, errn, "unknown key '%s'", it->string);
    if (f[k] != NULL)
      return bad(err, errn, "duplicate key '%s'", it->string);
    f[k] = it;
  }
  return true;
}

/* "pid" (checked only), "seq", "timestamp" and "format". */
static bool read_header(const cJSON *const f[NKEYS], jl_rec *r, char *err, size_t errn) {
  if (!cJSON_IsString(f[K_PID]) || snap_pid_check(f[K_PID]->valuestring) != SNAP_OK)
    return bad(err, errn, "\"pid\" missing or not a valid persistence id");
  if (!get_int(f[K_SEQ], &r->seq))
    return bad(err, errn, "\"seq\" missing or not an integer in [0, 2^53]");
  if (!get_int(f[K_TIMESTAMP], &r->timestamp))
    return bad(err, errn, "\"timestamp\" missing or not an integer in [0, 2^53]");
  const char *format = cJSON_IsString(f[K_FORMAT]) ? f[K_FORMAT]->valuestring : "";
  if (strcmp(format, "json") == 0)
    r->format = SNAP_FORMAT_JSON;
  else if (strcmp(format, "msgpack") == 0)
    r->format = SNAP_FORMAT_MSGPACK;
  else
    return bad(err, errn, "\"format\" missing or not \"json\" or \"msgpack\"");
  return true;
}

/* The bytes a base64 string encodes, into a new `*out`; false when it is not
 * valid base64 or memory runs out. */
static bool from_base64(const char *text, uint8_t **out, size_t *len) {
  size_t blen = strlen(text), cap = blen / 4 * 3 + 3;
  if ((*out = malloc(cap)) == NULL)
    return false;
  return sodium_base642bin(*out, cap, text, blen, NULL, len, NULL,
                           sodium_base64_VARIANT_ORIGINAL) == 0;
}

/* The state's bytes: the compact form of "state" (a JSON state only), or
 * what "state_base64" encodes. */
static bool read_state(const cJSON *state, const cJSON *b64, jl_rec *r, char *err, size_t errn) {
  if ((state != NULL) == (b64 != NULL))
    return bad(err, errn, "exactly one of \"state\" and \"state_base64\" is needed");
  if (state != NULL) {
    if (r->format != SNAP_FORMAT_JSON)
      return bad(err, errn, "a msgpack state must be given as \"state_base64\"");
    char *text = cJSON_PrintUnformatted(state);
    r->len = text ? strlen(text) : 0;
    r->state = text ? malloc(r->len + 1) : NULL;
    if (r->state)
      memcpy(r->state, text, r->len);
    cJSON_free(text);
    return r->state != NULL || bad(err, errn, "out of memory");
  }
  if (!cJSON_IsString(b64))
    return bad(err, errn, "\"state_base64\" is not a string");
  if (!from_base64(b64->valuestring, &r->state, &r->len))
    return bad(err, errn, "\"state_base64\" is not valid base64");
  return true;
}

/* The first line of a streamed record: "stream_length" (>= 1) and no state. */
static bool read_stream_length(const cJSON *const f[NKEYS], jl_rec *r, char *err, size_t errn) {
  int64_t n = 0;
  if (f[K_STATE] != NULL || f[K_STATE_BASE64] != NULL)
    return bad(err, errn, "a streamed record (\"stream_length\") has its state in part lines");
  if (!get_int(f[K_STREAM_LENGTH], &n) || n < 1)
    return bad(err, errn, "\"stream_length\" is not an integer in [1, 2^53]");
  r->stream_len = (uint64_t)n;
  return true;
}

/* A part line: exactly "part_base64", base64 of 1 to PART_MAX bytes. */
static bool parse_part(const cJSON *o, jl_rec *r, char *err, size_t errn) {
  const cJSON *b64 = o->child;
  if (b64 == NULL || b64->next != NULL || strcmp(b64->string, "part_base64") != 0)
    return bad(err, errn, "a part line holds \"part_base64\" and nothing else");
  if (!cJSON_IsString(b64) || strlen(b64->valuestring) > PART_MAX / 3 * 4 + 4 ||
      !from_base64(b64->valuestring, &r->part, &r->part_len) || r->part_len == 0 ||
      r->part_len > PART_MAX)
    return bad(err, errn, "\"part_base64\" is not base64 of 1 to %u bytes", PART_MAX);
  r->is_part = true;
  return true;
}

/* The optional "manifest" and "metadata_base64" (what export writes for a
 * body that states them). */
static bool read_typing(const cJSON *man, const cJSON *meta, jl_rec *r, char *err, size_t errn) {
  if (man != NULL) {
    if (!cJSON_IsString(man) || snap_manifest_check(man->valuestring) != SNAP_OK)
      return bad(err, errn, "\"manifest\" is not a valid manifest (UTF-8, 1 to %u bytes)",
                 SNAP_MANIFEST_MAX);
    if ((r->manifest = strdup(man->valuestring)) == NULL)
      return bad(err, errn, "out of memory");
  }
  if (meta == NULL)
    return true;
  if (!cJSON_IsString(meta))
    return bad(err, errn, "\"metadata_base64\" is not a string");
  if (!from_base64(meta->valuestring, &r->metadata, &r->metadata_len) ||
      r->metadata_len == 0 || r->metadata_len > SNAP_METADATA_MAX)
    return bad(err, errn, "\"metadata_base64\" is not base64 of 1 to %u bytes",
               SNAP_METADATA_MAX);
  return true;
}

/* A dictionary line: exactly "dictionary" (its name), "id" and
 * "bytes_base64", the id being the one the bytes have. */
static bool parse_dictionary(const cJSON *o, jl_rec *r, char *err, size_t errn) {
  const cJSON *name = NULL, *id = NULL, *b64 = NULL;
  for (const cJSON *it = o->child; it; it = it->next) {
    const cJSON **slot = strcmp(it->string, "dictionary") == 0     ? &name
                         : strcmp(it->string, "id") == 0           ? &id
                         : strcmp(it->string, "bytes_base64") == 0 ? &b64
                                                                   : NULL;
    if (slot == NULL)
      return bad(err, errn, "unknown key '%s' in a dictionary line", it->string);
    if (*slot != NULL)
      return bad(err, errn, "duplicate key '%s'", it->string);
    *slot = it;
  }
  int64_t want = 0;
  uint32_t have = 0;
  if (!cJSON_IsString(name) || name->valuestring[0] == 0)
    return bad(err, errn, "\"dictionary\" is not a non-empty name");
  if (!get_int(id, &want) || want < 1 || want > UINT32_MAX)
    return bad(err, errn, "\"id\" missing or not an integer in [1, 2^32)");
  if (!cJSON_IsString(b64) || !from_base64(b64->valuestring, &r->dict, &r->dict_len) ||
      r->dict_len < SNAP_DICT_MIN || r->dict_len > SNAP_DICT_MAX)
    return bad(err, errn, "\"bytes_base64\" is not base64 of %u to %u bytes", SNAP_DICT_MIN,
               SNAP_DICT_MAX);
  if (snap_dict_id_of(r->dict, r->dict_len, &have) != SNAP_OK || have != (uint32_t)want)
    return bad(err, errn, "\"id\" %" PRId64 " is not the id of the bytes (%" PRIu32 ")", want,
               have);
  if ((r->dict_name = strdup(name->valuestring)) == NULL)
    return bad(err, errn, "out of memory");
  return true;
}

/* Parses and checks one line; on failure `err` says why. */
static bool parse_line(const char *line, size_t len, jl_rec *r, char *err, size_t errn) {
  memset(r, 0, sizeof *r);
  cJSON *o = parse_object(line, len, err, errn);
  if (o == NULL)
    return false;
  bool part = cJSON_GetObjectItemCaseSensitive(o, "part_base64") != NULL;
  if (part || cJSON_GetObjectItemCaseSensitive(o, "dictionary") != NULL) {
    bool ok = part ? parse_part(o, r, err, errn) : parse_dictionary(o, r, err, errn);
    cJSON_Delete(o);
    if (!ok)
      rec_dispose(r);
    return ok;
  }
  const cJSON *f[NKEYS] = {0};
  bool ok = find_keys(o, f, err, errn) && read_header(f, r, err, errn) &&
            (f[K_STREAM_LENGTH] ? read_stream_length(f, r, err, errn)
                                : read_state(f[K_STATE], f[K_STATE_BASE64], r, err, errn)) &&
            read_typing(f[K_MANIFEST], f[K_METADATA_BASE64], r, err, errn);
  /* A streamed state is validated across its parts (stream_step()). */
  if (ok && r->stream_len == 0 && snap_payload_validate(r->format, r->state, r->len) != SNAP_OK)
    ok = bad(err, errn, "the state is not valid %s: %s", ctl_format_name(r->format),
             snap_error_message());
  if (ok && (r->pid = strdup(f[K_PID]->valuestring)) == NULL)
    ok = bad(err, errn, "out of memory");
  cJSON_Delete(o);
  if (!ok)
    rec_dispose(r);
  return ok;
}

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
      return bad(err, errn, "the streamed record of line %" PRIu64 " ends before its length",
                 sc->line);
    if (r->stream_len == 0)
      return true;
    if (snap_payload_validator_new(&sc->v, r->format) != SNAP_OK)
      return bad(err, errn, "out of memory");
    sc->left = r->stream_len;
    sc->line = lineno;
    return true;
  }
  if (sc->v == NULL)
    return bad(err, errn, "a part line outside a streamed record");
  bool ok = r->part_len <= sc->left ||
            bad(err, errn, "more state than the \"stream_length\" of line %" PRIu64, sc->line);
  if (ok && snap_payload_validator_push(sc->v, r->part, r->part_len) != SNAP_OK)
    ok = bad(err, errn, "the streamed state of line %" PRIu64 " is not valid: %s", sc->line,
             snap_error_message());
  sc->left -= ok ? r->part_len : 0;
  if (ok && sc->left == 0 && snap_payload_validator_finish(sc->v) != SNAP_OK)
    ok = bad(err, errn, "the streamed state of line %" PRIu64 " is not valid: %s", sc->line,
             snap_error_message());
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
    if (parse_line(line, len, &r, err, sizeof err)) {
      bool ok = stream_step(&sc, &r, *lines, err, sizeof err);
      rec_dispose(&r);
      if (ok)
        continue;
    }
    if (bad++ < MAX_REPORTED)
      fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": %s\n", name, *lines, err);
  }
  if (sc.v != NULL && bad++ < MAX_REPORTED)
    fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": the streamed record ends before its "
            "length (the file is cut short)\n", name, sc.line);
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
    fprintf(stderr, "snapctl: import: %s: line %" PRIu64 ": dictionary '%s' not stored: %s\n",
            name, lineno, r->dict_name, ctl_error(rc));
  }
  rec_dispose(r);
}

/* Saves the batch; returns true when the failure bound stops the import. */
static bool flush_batch(import_ctx *x, const char *name) {
  if (x->n == 0)
    return false;
  for (size_t i = 0; i < x->n; i++) {
    jl_rec *r = &x->recs[i];
    x->reqs[i] = (snap_save_req){r->pid, r->seq, r->timestamp, r->format, r->state, r->len, NULL};
    x->ext[i] = (snap_save_ext){.manifest = r->manifest,
                                .metadata = r->metadata,
                                .metadata_len = r->metadata_len};
  }
  int brc = snap_save_batch_ex(x->c->st, x->reqs, x->ext, x->n, x->status, NULL);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", brc == SNAP_OK ? "" : ctl_error(brc));
  for (size_t i = 0; i < x->n; i++) {
    rec_dispose(&x->recs[i]);
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
  snap_save_ext ext = {.manifest = r->manifest,
                       .metadata = r->metadata,
                       .metadata_len = r->metadata_len};
  x->w_left = r->stream_len;
  x->w_line = lineno;
  int rc = snap_save_stream_begin(x->c->st, r->pid, r->seq, r->timestamp, r->format, NULL, &ext,
                                  0, &x->w);
  if (rc != SNAP_OK)
    stream_failed(x, name, rc);
  rec_dispose(r);
}

/* A part line: its bytes into the save, committed after the last. */
static void stream_part(import_ctx *x, jl_rec *r, const char *name) {
  int rc = SNAP_OK;
  if (x->w != NULL && (rc = snap_save_stream_write(x->w, r->part, r->part_len)) != SNAP_OK)
    stream_failed(x, name, rc);
  x->w_left -= r->part_len <= x->w_left ? r->part_len : x->w_left;
  rec_dispose(r);
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
    if (!parse_line(line, len, &x->recs[x->n], err, sizeof err)) {
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
    stream_failed(x, name, snap_error_set(SNAP_EFORMAT, "%s",
                                          ctl_interrupted() ? "interrupted before its end"
                                                            : "the streamed record is cut short"));
  for (size_t i = 0; i < x->n; i++)
    rec_dispose(&x->recs[i]);
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
