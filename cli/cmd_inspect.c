/* snapctl ls, show and stats: reading what is stored. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "snap/store_stream.h"
#include "snapctl.h"

/* ---- ls ------------------------------------------------------------------- */

static cJSON *entry_json(const snap_entry *e) {
  char stages[32];
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "pid", e->pid);
  cJSON_AddNumberToObject(o, "seq", (double)e->seq);
  cJSON_AddNumberToObject(o, "timestamp", (double)e->timestamp);
  cJSON_AddNumberToObject(o, "stored_size", (double)(e->stored_len + e->stream_bytes));
  if (e->streamed) {
    /* The state is in chunk records beside the row; the head is the row's body. */
    cJSON_AddBoolToObject(o, "streamed", true);
    cJSON_AddNumberToObject(o, "chunks", (double)e->chunk_count);
    cJSON_AddNumberToObject(o, "head_size", (double)e->stored_len);
  }
  if (e->header_status != SNAP_OK) {
    cJSON_AddStringToObject(o, "error", snap_strerror(e->header_status));
    return o;
  }
  cJSON_AddStringToObject(o, "format", ctl_format_name(e->format));
  cJSON_AddNumberToObject(o, "state_size", (double)e->orig_len);
  cJSON_AddStringToObject(
      o, "stages", ctl_codec_stages_name(e->stages, e->codec, e->dict_id, stages, sizeof stages));
  if (e->dict_id)
    cJSON_AddNumberToObject(o, "dictionary", e->dict_id);
  cJSON_AddNumberToObject(o, "key_version", e->key_version);
  if (e->manifest != NULL)
    cJSON_AddStringToObject(o, "manifest", e->manifest);
  return o;
}

typedef struct ls_ctx {
  bool json;
  size_t n;
} ls_ctx;

static int ls_page(void *ud, snap_entry_page *page) {
  ls_ctx *x = ud;
  for (size_t i = 0; i < page->n; i++, x->n++) {
    const snap_entry *e = &page->entries[i];
    if (x->json) {
      cJSON *o = entry_json(e);
      char *t = cJSON_PrintUnformatted(o);
      printf("%s  %s", x->n ? ",\n" : "", t ? t : "null");
      cJSON_free(t);
      cJSON_Delete(o);
      continue;
    }
    char when[40], stages[32], chunks[24] = "-";
    if (x->n == 0)
      printf("%-12s %-24s %-8s %10s %10s %7s %-14s %-5s %s\n", "SEQ", "TIMESTAMP", "FORMAT",
             "STATE", "STORED", "CHUNKS", "STAGES", "KEY", "MANIFEST");
    if (e->streamed)
      snprintf(chunks, sizeof chunks, "%" PRIu64, e->chunk_count);
    if (e->header_status != SNAP_OK)
      printf("%-12" PRId64 " %-24s %-8s %10s %10zu %7s unreadable header (%s)\n", e->seq,
             ctl_time(e->timestamp, when, sizeof when), "?", "?", e->stored_len, "?",
             snap_strerror(e->header_status));
    else
      printf("%-12" PRId64 " %-24s %-8s %10" PRIu64 " %10" PRIu64 " %7s %-14s %-5" PRIu32 " %s\n",
             e->seq, ctl_time(e->timestamp, when, sizeof when), ctl_format_name(e->format),
             e->orig_len, (uint64_t)e->stored_len + e->stream_bytes, chunks,
             ctl_codec_stages_name(e->stages, e->codec, e->dict_id, stages, sizeof stages),
             e->key_version, e->manifest ? e->manifest : "-");
  }
  return 0;
}

static int ls_pids(ctl *c, bool json) {
  snap_pid_page page = SNAP_PID_PAGE_INIT;
  char *after = NULL;
  size_t n = 0;
  int rc;
  if (json)
    printf("[");
  for (;;) {
    rc = snap_store_list_pids(c->st, after, CTL_PAGE, &page);
    if (rc != SNAP_OK)
      break;
    for (size_t i = 0; i < page.n; i++, n++) {
      if (json) {
        cJSON *s = cJSON_CreateString(page.pids[i]);
        char *t = cJSON_PrintUnformatted(s);
        printf("%s\n  %s", n ? "," : "", t ? t : "null");
        cJSON_free(t);
        cJSON_Delete(s);
      } else {
        printf("%s\n", page.pids[i]);
      }
    }
    if (page.n < CTL_PAGE)
      break;
    free(after);
    after = strdup(page.pids[page.n - 1]);
  }
  free(after);
  snap_pid_page_dispose(&page);
  if (json)
    printf("%s]\n", n ? "\n" : "");
  if (rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "ls: %s", ctl_error(rc));
  return EXIT_OK;
}

int cmd_ls(ctl *c, int argc, char **argv) {
  bool json = false;
  const ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
  const char *pos[1];
  int npos, rc = ctl_begin(c, argc, argv, opts, pos, 0, 1, &npos);
  if (rc >= 0)
    return rc;
  if (npos == 0)
    return ls_pids(c, json);
  if (snap_pid_check(pos[0]) != SNAP_OK)
    return ctl_fail(EXIT_USAGE, "ls: %s", ctl_error(SNAP_EINVAL));
  ls_ctx x = {json, 0};
  if (json)
    printf("[\n");
  rc = ctl_sweep(c->st, pos[0], false, ls_page, &x);
  if (json)
    printf("%s]\n", x.n ? "\n" : "");
  if (rc == CTL_INTERRUPTED)
    return ctl_interrupt_report("ls", "%zu snapshots listed", x.n);
  if (rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "ls: %s", ctl_error(rc));
  if (x.n == 0)
    return ctl_fail(EXIT_FOUND, "ls: pid '%s' has no snapshots", pos[0]);
  return EXIT_OK;
}

/* ---- show ----------------------------------------------------------------- */

/* Bytes of a streamed state `show` prints without --raw or --bytes. */
#define SHOW_STREAM_DEFAULT 4096u

/* 16 bytes a line: offset, then hex. */
static void hex_lines(const uint8_t *p, size_t n, uint64_t at) {
  for (size_t i = 0; i < n; i += 16) {
    printf("%08" PRIx64 " ", at + i);
    for (size_t k = i; k < n && k < i + 16; k++)
      printf(" %02x", p[k]);
    putchar('\n');
  }
}

/* The first `limit` bytes of a streamed state, read through its reader one
 * chunk at a time: only the chunks that hold them are read. JSON (and --raw)
 * as the bytes are, msgpack in hex. */
static int show_stream(ctl *c, snap_load_stream *r, const snap_stream_meta *m, const char *pid,
                       bool raw, uint64_t limit) {
  uint8_t buf[64u << 10];
  uint64_t shown = 0;
  size_t got = 1;
  int rc = SNAP_OK;
  const bool text = raw || m->format == SNAP_FORMAT_JSON;
  while (rc == SNAP_OK && got > 0 && shown < limit) {
    size_t want = limit - shown < sizeof buf ? (size_t)(limit - shown) : sizeof buf;
    rc = snap_load_stream_read(r, buf, want, &got);
    if (rc != SNAP_OK || got == 0)
      break;
    if (text && fwrite(buf, 1, got, stdout) != got)
      return ctl_fail(EXIT_FOUND, "show: cannot write the state");
    if (!text)
      hex_lines(buf, got, shown);
    shown += got;
  }
  if (rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "show: %s (discard what was written)", ctl_error(rc));
  if (!raw && text)
    putchar('\n');
  if (shown < m->length && !c->quiet)
    fprintf(stderr,
            "snapctl: show: pid '%s' seq %" PRId64 " is a streamed state of %" PRIu64
            " bytes: its first %" PRIu64 " shown (--bytes N for more, --raw for all)\n",
            pid, m->seq, m->length, shown);
  return EXIT_OK;
}

/* The streamed snapshot matching `cr`, if that is what it is: `*done` then
 * says show_stream() printed it (its status returned). An ordinary one, or
 * a failure to open, is left to the load that follows. */
static int try_stream(ctl *c, const char *pid, const snap_criteria *cr, bool raw,
                      uint64_t limit, bool *done) {
  snap_load_stream *r = NULL;
  snap_stream_meta m;
  *done = false;
  if (snap_load_stream_open(c->st, pid, cr, NULL, 0, &r, &m) != SNAP_OK || r == NULL ||
      !m.streamed) {
    snap_load_stream_close(r);
    return EXIT_OK;
  }
  *done = true;
  if (m.skipped > 0)
    fprintf(stderr, "snapctl: show: %u newer snapshot(s) of '%s' skipped as undecodable\n",
            m.skipped, pid);
  int rc = show_stream(c, r, &m, pid, raw, limit);
  snap_load_stream_close(r);
  return rc;
}

int cmd_show(ctl *c, int argc, char **argv) {
  bool raw = false;
  const char *bytes = NULL;
  const ctl_opt opts[] = {{"--raw", NULL, &raw}, {"--bytes", &bytes, NULL}, {NULL, NULL, NULL}};
  const char *pos[2];
  int npos, rc = ctl_args(c, argc, argv, opts, pos, 1, 2, &npos);
  if (rc >= 0)
    return rc;
  int64_t seq = -1, limit = raw ? INT64_MAX : SHOW_STREAM_DEFAULT;
  if (npos == 2 && (!ctl_parse_i64(pos[1], &seq) || seq < 0))
    return ctl_usage(c, "SEQ '%s' is not a sequence number (an integer >= 0)", pos[1]);
  if (bytes != NULL && (!ctl_parse_i64(bytes, &limit) || limit < 1))
    return ctl_usage(c, "--bytes '%s' is not a count of bytes (an integer >= 1)", bytes);
  if (snap_pid_check(pos[0]) != SNAP_OK)
    return ctl_fail(EXIT_USAGE, "show: %s", ctl_error(SNAP_EINVAL));
  if ((rc = ctl_open(c)) != EXIT_OK)
    return rc;
  snap_snapshot *s = NULL;
  snap_criteria cr = {seq < 0 ? 0 : seq, seq < 0 ? INT64_MAX : seq, INT64_MIN, INT64_MAX};
  bool streamed = false;
  rc = try_stream(c, pos[0], &cr, raw, (uint64_t)limit, &streamed);
  if (streamed)
    return rc;
  int s_rc = snap_load(c->st, pos[0], &cr, NULL, &s);
  if (s_rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "show: %s", ctl_error(s_rc));
  if (s == NULL) {
    if (seq < 0)
      return ctl_fail(EXIT_FOUND, "show: pid '%s' has no snapshots", pos[0]);
    return ctl_fail(EXIT_FOUND, "show: pid '%s' has no snapshot at seq %" PRId64, pos[0], seq);
  }
  if (s->skipped > 0)
    fprintf(stderr, "snapctl: show: %u newer snapshot(s) of '%s' skipped as undecodable\n",
            s->skipped, pos[0]);
  if (raw) {
    rc = fwrite(s->data, 1, s->len, stdout) == s->len
             ? EXIT_OK
             : ctl_fail(EXIT_FOUND, "show: cannot write the state");
  } else {
    cJSON *j = NULL;
    s_rc = snap_snapshot_to_json(s, &j);
    if (s_rc != SNAP_OK)
      rc = ctl_fail(EXIT_FOUND, "show: %s (try --raw)", ctl_error(s_rc));
    else
      rc = ctl_print_json(stdout, j, true);
    cJSON_Delete(j);
  }
  snap_snapshot_free(s);
  return rc;
}

/* ---- stats ---------------------------------------------------------------- */

#define MAX_KEYS 64
#define MAX_MANIFESTS 256

typedef struct stats {
  uint64_t snapshots, pids, state_bytes, stored_bytes, unreadable;
  uint64_t streamed, stream_chunks; /* streamed snapshots and their chunk records */
  char *last_pid;
  uint64_t by_stages[8];
  uint32_t key[MAX_KEYS];
  uint64_t key_n[MAX_KEYS];
  size_t nkeys;
  uint64_t other_keys;
  char *manifest[MAX_MANIFESTS]; /* the manifests seen, in order of appearance */
  uint64_t manifest_n[MAX_MANIFESTS];
  size_t nmanifests;
  uint64_t other_manifests, no_manifest;
  ctl_progress prog;
} stats;

/* Counts a snapshot under its manifest (the first MAX_MANIFESTS distinct ones
 * by name, the rest as "other"). */
static void count_manifest(stats *s, const char *manifest) {
  if (manifest == NULL) {
    s->no_manifest++;
    return;
  }
  size_t k = 0;
  while (k < s->nmanifests && strcmp(s->manifest[k], manifest) != 0)
    k++;
  if (k == s->nmanifests && s->nmanifests < MAX_MANIFESTS &&
      (s->manifest[k] = strdup(manifest)) != NULL)
    s->nmanifests++;
  if (k < s->nmanifests)
    s->manifest_n[k]++;
  else
    s->other_manifests++;
}

static int stats_page(void *ud, snap_entry_page *page) {
  stats *s = ud;
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    s->snapshots++;
    s->stored_bytes += e->stored_len + e->stream_bytes;
    s->streamed += e->streamed;
    s->stream_chunks += e->chunk_count;
    if (s->last_pid == NULL || strcmp(s->last_pid, e->pid) != 0) {
      s->pids++;
      free(s->last_pid);
      s->last_pid = strdup(e->pid);
    }
    if (e->header_status != SNAP_OK) {
      s->unreadable++;
      continue;
    }
    s->state_bytes += e->orig_len;
    s->by_stages[e->stages & 7u]++;
    count_manifest(s, e->manifest);
    size_t k = 0;
    while (k < s->nkeys && s->key[k] != e->key_version)
      k++;
    if (k == s->nkeys && s->nkeys < MAX_KEYS)
      s->key[s->nkeys++] = e->key_version;
    if (k < s->nkeys)
      s->key_n[k]++;
    else
      s->other_keys++;
  }
  ctl_progress_add(&s->prog, page->n);
  return 0;
}

int cmd_stats(ctl *c, int argc, char **argv) {
  bool json = false;
  const ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
  int rc = ctl_begin(c, argc, argv, opts, NULL, 0, 0, NULL);
  if (rc >= 0)
    return rc;
  stats s;
  memset(&s, 0, sizeof s);
  ctl_progress_start(&s.prog, "stats", 0, c->quiet);
  int s_rc = ctl_sweep(c->st, NULL, false, stats_page, &s);
  ctl_progress_end(&s.prog);
  free(s.last_pid);
  if (s_rc != SNAP_OK)
    for (size_t k = 0; k < s.nmanifests; k++)
      free(s.manifest[k]);
  if (s_rc == CTL_INTERRUPTED)
    return ctl_interrupt_report("stats", "%" PRIu64 " snapshots counted", s.snapshots);
  if (s_rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "stats: %s", ctl_error(s_rc));
  double ratio = s.stored_bytes ? (double)s.state_bytes / (double)s.stored_bytes : 0;
  char name[32], key[16];
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "snapshots", (double)s.snapshots);
  cJSON_AddNumberToObject(o, "pids", (double)s.pids);
  cJSON_AddNumberToObject(o, "state_bytes", (double)s.state_bytes);
  cJSON_AddNumberToObject(o, "stored_bytes", (double)s.stored_bytes);
  cJSON_AddNumberToObject(o, "compression_ratio", ratio);
  cJSON_AddNumberToObject(o, "unreadable_headers", (double)s.unreadable);
  cJSON_AddNumberToObject(o, "streamed", (double)s.streamed);
  cJSON_AddNumberToObject(o, "stream_chunks", (double)s.stream_chunks);
  cJSON *keys = cJSON_AddObjectToObject(o, "key_versions");
  for (size_t k = 0; k < s.nkeys; k++) {
    snprintf(key, sizeof key, "%" PRIu32, s.key[k]);
    cJSON_AddNumberToObject(keys, key, (double)s.key_n[k]);
  }
  if (s.other_keys)
    cJSON_AddNumberToObject(keys, "other", (double)s.other_keys);
  cJSON *st = cJSON_AddObjectToObject(o, "stages");
  for (unsigned m = 0; m < 8; m++)
    if (s.by_stages[m])
      cJSON_AddNumberToObject(st, ctl_stages_name(m, name, sizeof name), (double)s.by_stages[m]);
  cJSON *man = cJSON_AddObjectToObject(o, "manifests");
  for (size_t k = 0; k < s.nmanifests; k++)
    cJSON_AddNumberToObject(man, s.manifest[k], (double)s.manifest_n[k]);
  if (s.other_manifests)
    cJSON_AddNumberToObject(o, "other_manifests", (double)s.other_manifests);
  cJSON_AddNumberToObject(o, "without_manifest", (double)s.no_manifest);
  rc = EXIT_OK;
  if (json) {
    rc = ctl_print_json(stdout, o, true);
  } else {
    printf("snapshots          %" PRIu64 "\npids               %" PRIu64 "\n"
           "state bytes        %" PRIu64 "\nstored bytes       %" PRIu64 "\n"
           "compression ratio  %.2f\n",
           s.snapshots, s.pids, s.state_bytes, s.stored_bytes, ratio);
    if (s.unreadable)
      printf("unreadable headers %" PRIu64 "\n", s.unreadable);
    if (s.streamed)
      printf("streamed           %" PRIu64 " (%" PRIu64 " chunks)\n", s.streamed,
             s.stream_chunks);
    for (size_t k = 0; k < s.nkeys; k++)
      printf("key version %-6" PRIu32 " %" PRIu64 "%s\n", s.key[k], s.key_n[k],
             s.key[k] == 0 ? " (unauthenticated)" : "");
    for (unsigned m = 0; m < 8; m++)
      if (s.by_stages[m])
        printf("stages %-11s %" PRIu64 "\n", ctl_stages_name(m, name, sizeof name), s.by_stages[m]);
    for (size_t k = 0; k < s.nmanifests; k++)
      printf("manifest %-9s %" PRIu64 "\n", s.manifest[k], s.manifest_n[k]);
    if (s.other_manifests)
      printf("other manifests    %" PRIu64 "\n", s.other_manifests);
    if (s.nmanifests || s.other_manifests)
      printf("without manifest   %" PRIu64 "\n", s.no_manifest);
  }
  for (size_t k = 0; k < s.nmanifests; k++)
    free(s.manifest[k]);
  cJSON_Delete(o);
  return rc;
}
