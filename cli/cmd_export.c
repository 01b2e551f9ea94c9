/* snapctl export: every snapshot as JSON Lines, one object a line:
 *   {"pid": "...", "seq": N, "timestamp": N, "format": "json" | "msgpack",
 *    ["manifest": "...", "metadata_base64": "...",]
 *    "state": <the JSON state>} or {..., "state_base64": "..."}.
 * (manifest and metadata when the body states them, docs/STORE.md),
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

#include <cjson/cJSON.h>
#include <sodium.h>

#include "snapctl.h"

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

/* ,"<key>":"<base64 of data>" */
static int put_base64(export_ctx *x, const char *key, const uint8_t *data, size_t len) {
  size_t need = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  if (need > x->b64_cap) {
    char *g = realloc(x->b64, need);
    if (g == NULL)
      return snap_error_set(SNAP_ENOMEM, "out of memory for %zu bytes of %s", len, key);
    x->b64 = g;
    x->b64_cap = need;
  }
  sodium_bin2base64(x->b64, need, data, len, sodium_base64_VARIANT_ORIGINAL);
  fprintf(x->out, ",\"%s\":\"%s\"", key, x->b64);
  return SNAP_OK;
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

static int export_page(void *ud, snap_entry_page *page) {
  export_ctx *x = ud;
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    snap_format fmt = SNAP_FORMAT_JSON;
    int rc = snap_store_decode(x->c->st, e->pid, e->seq, e->body, e->stored_len, NULL, &x->state,
                               &fmt, NULL);
    if (rc != SNAP_OK) {
      x->failed++;
      fputs("snapctl: export: not exported: ", stderr);
      ctl_report_body(stderr, e->pid, e->seq, rc, NULL);
      continue;
    }
    fputs("{\"pid\":", x->out);
    ctl_print_pid(x->out, e->pid);
    fprintf(x->out, ",\"seq\":%" PRId64 ",\"timestamp\":%" PRId64 ",\"format\":\"%s\"", e->seq,
            e->timestamp, ctl_format_name(fmt));
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
