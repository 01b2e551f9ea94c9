/* snapctl export: every snapshot as JSON Lines, one object a line:
 *   {"pid": "...", "seq": N, "timestamp": N, "format": "json" | "msgpack",
 *    ["manifest": "...", "metadata_base64": "...",]
 *    "state": <the JSON state>} or {..., "state_base64": "..."}.
 * (manifest and metadata when the body states them, docs/STORE.md),
 * except that a streamed snapshot (docs/STREAMS.md), whatever its size, is
 * a record of several lines written in bounded memory: the same first line
 * with "stream_length": N (the state's bytes) in place of the state, then
 * the state in order as lines {"part_base64": "..."} of at most 768 KiB of
 * state each, N bytes in all;
 * preceded by one line per trained dictionary of the store:
 *   {"dictionary": "<name>", "id": N, "bytes_base64": "..."}
 * so that an import can store them before the states whose saves name them.
 * A JSON state is written inline only when its bytes are exactly its own
 * compact form (what import will store), so export | import is byte-exact.
 * The output holds nothing but records: a body that cannot be decoded is
 * reported on stderr and counted, never written into the data. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "snap/store_stream.h"
#include "snapctl.h"

/* State bytes per part line of a streamed record: a multiple of 3, so that
 * only the last part's base64 has padding; its base64 is 1 MiB. */
#define PART_BYTES (768u << 10)

typedef struct export_ctx {
  ctl *c;
  FILE *out;
  snap_buf state;
  char *b64;
  size_t b64_cap;
  uint64_t written, failed, dicts;
  ctl_progress prog;
} export_ctx;

/* Writes the state inline when it is exactly its own compact JSON form. */
static bool write_inline(FILE *out, const snap_buf *state) {
  if (state->len == 0)
    return false;
  cJSON *j = cJSON_ParseWithLength((const char *)state->data, state->len);
  char *compact = j ? cJSON_PrintUnformatted(j) : NULL;
  bool same =
      compact && strlen(compact) == state->len && memcmp(compact, state->data, state->len) == 0;
  if (same)
    fprintf(out, ",\"state\":%s}\n", compact);
  cJSON_free(compact);
  cJSON_Delete(j);
  return same;
}

/* "<key>":"<base64 of data>", after `lead` ("," or "{"). */
static int put_base64_after(export_ctx *x, const char *lead, const char *key,
                            const uint8_t *data, size_t len) {
  size_t need = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  if (need > x->b64_cap) {
    char *g = realloc(x->b64, need);
    if (g == NULL)
      return snap_error_set(SNAP_ENOMEM, "out of memory for %zu bytes of %s", len, key);
    x->b64 = g;
    x->b64_cap = need;
  }
  sodium_bin2base64(x->b64, need, data, len, sodium_base64_VARIANT_ORIGINAL);
  fprintf(x->out, "%s\"%s\":\"%s\"", lead, key, x->b64);
  return SNAP_OK;
}

/* ,"<key>":"<base64 of data>" */
static int put_base64(export_ctx *x, const char *key, const uint8_t *data, size_t len) {
  return put_base64_after(x, ",", key, data, len);
}

static int write_base64(export_ctx *x, const snap_buf *state) {
  int rc = put_base64(x, "state_base64", state->data, state->len);
  if (rc == SNAP_OK)
    fputs("}\n", x->out);
  return rc;
}

/* The manifest and metadata the (decoded, so authenticated) body states. */
static int write_typing(export_ctx *x, const snap_entry *e) {
  const char *m = NULL;
  const uint8_t *md = NULL;
  size_t ml = 0, mdl = 0;
  if (snap_body_typing(e->body, e->stored_len, &m, &ml, &md, &mdl) != SNAP_OK)
    return SNAP_OK; /* it decoded: its header parses */
  if (ml > 0) {
    char name[SNAP_MANIFEST_MAX + 1];
    memcpy(name, m, ml);
    name[ml] = 0;
    fputs(",\"manifest\":", x->out);
    ctl_print_pid(x->out, name); /* printed as a JSON string */
  }
  return mdl > 0 ? put_base64(x, "metadata_base64", md, mdl) : SNAP_OK;
}

/* {"pid":...,"seq":...,"timestamp":...,"format":... (no closing brace). */
static void write_key(export_ctx *x, const char *pid, int64_t seq, int64_t ts, snap_format fmt) {
  fputs("{\"pid\":", x->out);
  ctl_print_pid(x->out, pid);
  fprintf(x->out, ",\"seq\":%" PRId64 ",\"timestamp\":%" PRId64 ",\"format\":\"%s\"", seq, ts,
          ctl_format_name(fmt));
}

/* The state of an opened stream reader as part lines. */
static int write_parts(export_ctx *x, snap_load_stream *r) {
  int rc = snap_buf_reserve(&x->state, PART_BYTES);
  size_t got = 1;
  while (rc == SNAP_OK && got > 0) {
    /* A full part before it is written: parts are PART_BYTES but the last. */
    x->state.len = 0;
    while (rc == SNAP_OK && got > 0 && x->state.len < PART_BYTES) {
      rc = snap_load_stream_read(r, x->state.data + x->state.len, PART_BYTES - x->state.len,
                                 &got);
      x->state.len += rc == SNAP_OK ? got : 0;
    }
    if (rc == SNAP_OK && x->state.len > 0) {
      rc = put_base64_after(x, "{", "part_base64", x->state.data, x->state.len);
      fputs("}\n", x->out);
    }
  }
  return rc;
}

/* A streamed snapshot as a record of several lines, read through a stream
 * reader one chunk at a time. A failure after its first line was written
 * takes back what was written of it when the output can be cut (a file);
 * otherwise it fails the export (`*fatal`), the record left incomplete for
 * an import to refuse. */
static int export_stream(export_ctx *x, const snap_entry *e, bool *fatal) {
  snap_criteria c = {e->seq, e->seq, INT64_MIN, INT64_MAX};
  snap_load_stream *r = NULL;
  snap_stream_meta m;
  *fatal = false;
  int rc = snap_load_stream_open(x->c->st, e->pid, &c, NULL, 0, &r, &m);
  if (rc == SNAP_OK && r == NULL)
    rc = snap_error_set(SNAP_ENOTFOUND, "deleted since it was listed");
  if (rc != SNAP_OK)
    return rc;
  fflush(x->out);
  off_t at = ftello(x->out);
  write_key(x, e->pid, m.seq, m.timestamp, m.format);
  if ((rc = write_typing(x, e)) == SNAP_OK) {
    fprintf(x->out, ",\"stream_length\":%" PRIu64 "}\n", m.length);
    rc = write_parts(x, r);
  }
  snap_load_stream_close(r);
  if (rc != SNAP_OK) {
    char why[1024];
    snprintf(why, sizeof why, "%s", snap_error_message());
    *fatal = fflush(x->out) != 0 || at < 0 || ftruncate(fileno(x->out), at) != 0 ||
             fseeko(x->out, at, SEEK_SET) != 0;
    snap_error_set(rc, "%s%s", why,
                   *fatal ? "; the output holds an incomplete streamed record" : "");
  }
  return rc;
}

static int export_page(void *ud, snap_entry_page *page) {
  export_ctx *x = ud;
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    if (e->streamed) {
      bool fatal = false;
      int rc = export_stream(x, e, &fatal);
      if (rc != SNAP_OK && fatal)
        return rc;
      if (rc != SNAP_OK) {
        x->failed++;
        fputs("snapctl: export: not exported: ", stderr);
        ctl_report_body(stderr, e->pid, e->seq, rc, NULL);
      } else {
        x->written++;
      }
      continue;
    }
    snap_format fmt = SNAP_FORMAT_JSON;
    int rc = snap_store_decode(x->c->st, e->pid, e->seq, e->body, e->stored_len, NULL, &x->state,
                               &fmt, NULL);
    if (rc != SNAP_OK) {
      x->failed++;
      fputs("snapctl: export: not exported: ", stderr);
      ctl_report_body(stderr, e->pid, e->seq, rc, NULL);
      continue;
    }
    write_key(x, e->pid, e->seq, e->timestamp, fmt);
    if ((rc = write_typing(x, e)) != SNAP_OK)
      return rc;
    if (!(fmt == SNAP_FORMAT_JSON && write_inline(x->out, &x->state)) &&
        (rc = write_base64(x, &x->state)) != SNAP_OK)
      return rc;
    x->written++;
  }
  ctl_progress_add(&x->prog, page->n);
  return ferror(x->out) ? snap_error_set(SNAP_EIO, "cannot write the output") : 0;
}

/* One line per stored dictionary (none when the backend keeps none). */
static int write_dictionaries(export_ctx *x) {
  snap_dict_info *list = NULL;
  size_t n = 0;
  int rc = snap_store_dict_list(x->c->st, &list, &n);
  if (rc == SNAP_EUNSUPPORTED)
    return SNAP_OK;
  for (size_t i = 0; rc == SNAP_OK && i < n; i++) {
    snap_dict *d = NULL;
    size_t len = 0;
    if ((rc = snap_store_dict_get(x->c->st, list[i].id, NULL, &d)) != SNAP_OK)
      break;
    const uint8_t *bytes = snap_dict_bytes(d, &len);
    fputs("{\"dictionary\":", x->out);
    ctl_print_pid(x->out, list[i].name); /* printed as a JSON string */
    fprintf(x->out, ",\"id\":%" PRIu32, list[i].id);
    rc = put_base64(x, "bytes_base64", bytes, len);
    fputs("}\n", x->out);
    snap_dict_free(d);
    x->dicts++;
  }
  snap_free(list);
  return rc;
}

/* The sweep, into x->out; SNAP_OK, a snapstore error or CTL_INTERRUPTED. */
static int export_all(ctl *c, export_ctx *x) {
  int s = write_dictionaries(x);
  if (s != SNAP_OK)
    return s;
  s = ctl_progress_counted(&x->prog, "export", c);
  if (s == SNAP_OK)
    s = ctl_sweep(c->st, NULL, true, export_page, x);
  ctl_progress_end(&x->prog);
  snap_buf_dispose(&x->state);
  free(x->b64);
  return s;
}

int cmd_export(ctl *c, int argc, char **argv) {
  const char *out_path = NULL;
  const ctl_opt opts[] = {{"--out", &out_path, NULL}, {NULL, NULL, NULL}};
  int rc = ctl_begin(c, argc, argv, opts, NULL, 0, 0, NULL);
  if (rc >= 0)
    return rc;
  export_ctx x = {.c = c, .out = stdout};
  ctl_outfile of;
  if (out_path != NULL) {
    if ((rc = ctl_outfile_open(&of, out_path)) != EXIT_OK)
      return rc;
    x.out = of.f;
  }
  int s = export_all(c, &x);
  if (out_path != NULL) {
    if (s == SNAP_OK)
      s = ctl_outfile_commit(&of);
    else
      ctl_outfile_abort(&of);
  }
  const char *where = out_path ? "; nothing was written to the file" : "";
  if (s == CTL_INTERRUPTED)
    return ctl_interrupt_report("export", "%" PRIu64 " snapshots exported%s; run it again",
                                x.written, where);
  if (s != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "export: %s (after %" PRIu64 " snapshots%s)", ctl_error(s),
                    x.written, where);
  if (!c->quiet || x.failed)
    fprintf(stderr, "export: %" PRIu64 " snapshots written, %" PRIu64 " could not be decoded%s\n",
            x.written, x.failed, x.failed ? " (listed above, not exported)" : "");
  if (!c->quiet && x.dicts)
    fprintf(stderr, "export: %" PRIu64 " dictionaries written\n", x.dicts);
  return x.failed ? EXIT_FOUND : EXIT_OK;
}
