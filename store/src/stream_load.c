/* Streamed loads (snap/store_stream.h): the pipeline's stream decoder fed
 * with the chunk records the backend reads back (backend ABI version 6),
 * one record at a time. Used by the stream reader and by snap_load() for a
 * streamed snapshot that fits the reader's limit. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "snap/store_stream.h"

/* Scratch for a verify-first pass: decoded bytes are counted, not kept. */
#define VERIFY_BUF (64u << 10)

bool snap__body_is_head(const void *body, size_t len) {
  snap_stream_info info;
  return snap_body_inspect_stream(body, len, &info) == SNAP_OK && info.chunked;
}

int snap__stream_refused(const char *verb, const char *pid, int64_t seq, const char *why) {
  return snap_error_set(SNAP_EUNSUPPORTED,
                        "%s pid '%s' seq %" PRId64 ": a streamed snapshot (its state is in chunk "
                        "records beside the row): %s",
                        verb, pid, seq, why);
}

/* A decoder for the head, with its unit's data key for an envelope head. */
static int open_decoder(snap_store *st, const char *pid, int64_t seq, const void *head,
                        size_t len, const snap_options *o, uint64_t max_plain,
                        snap_stream_decoder **d, snap_stream_info *info) {
  snap_keyring *kr;
  const char *ctx;
  snap__envelope_ref ref;
  if (!snap__options_encryption(o, &kr, &ctx) ||
      !snap__body_envelope_ref(pid, seq, head, len, &ref))
    return snap_stream_decoder_open(d, pid, seq, head, len, o, max_plain, info);
  uint8_t dek[SNAP_DEK_BYTES];
  int rc = snap__envelope_ref_key(st, &ref, kr, ctx, dek);
  if (rc == SNAP_OK)
    rc = snap__stream_decoder_open_envelope(d, pid, seq, head, len, o, dek, max_plain, info);
  sodium_memzero(dek, sizeof dek);
  return rc;
}

/* A streamed snapshot being read: its decoder and the backend's reader. */
typedef struct pump {
  snap_store *st;
  snap_stream_decoder *dec;
  snap_backend_reader *br;
  bool end;   /* every record was pushed */
  bool keyed; /* the head states AEAD or a MAC */
  const char *pid;
  int64_t seq;
} pump;

static void pump_close(pump *p) {
  snap_stream_decoder_free(p->dec);
  if (p->br != NULL)
    p->st->be.stream_close(p->st->self, p->br);
  p->dec = NULL;
  p->br = NULL;
}

static int pump_open(pump *p, snap_store *st, const char *pid, int64_t seq, const void *head,
                     size_t len, const snap_options *o, uint64_t max_plain,
                     snap_stream_info *info) {
  *p = (pump){st, NULL, NULL, false, false, pid, seq};
  int rc = open_decoder(st, pid, seq, head, len, o, max_plain, &p->dec, info);
  p->keyed = rc == SNAP_OK && (info->stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC)) != 0;
  if (rc == SNAP_OK)
    rc = st->be.stream_open(st->self, pid, seq, head, len, &p->br);
  if (rc != SNAP_OK)
    pump_close(p);
  return rc;
}

/* A keyed stream whose chunks the backend finds damaged (a truncated or
 * garbled record framing) cannot be told from a tampered one: as for a
 * keyed body (docs/FORMAT.md, "Reading a body"), that is SNAP_EAUTH, never
 * a fallback to older state. */
static int unverifiable(const pump *p, int rc) {
  if (rc != SNAP_ECORRUPT || !p->keyed)
    return rc;
  char why[512];
  snprintf(why, sizeof why, "%s", snap_error_message());
  return snap_error_set(SNAP_EAUTH,
                        "stream decode pid '%s' seq %" PRId64 ": the chunks of a keyed stream "
                        "cannot be authenticated: %s",
                        p->pid, p->seq, why);
}

/* Up to `cap` decoded bytes; `*got` = 0 once the stream ended and verified. */
static int pump_read(pump *p, void *buf, size_t cap, size_t *got) {
  for (;;) {
    int rc = snap_stream_decoder_read(p->dec, buf, cap, got);
    if (rc != SNAP_OK || *got > 0)
      return rc;
    if (p->end)
      return snap_stream_decoder_finish(p->dec);
    const void *rec = NULL;
    size_t len = 0;
    if ((rc = p->st->be.stream_next(p->st->self, p->br, &rec, &len)) != SNAP_OK)
      return unverifiable(p, rc);
    if (rec == NULL) {
      p->end = true;
      continue;
    }
    if ((rc = snap_stream_decoder_push(p->dec, rec, len)) != SNAP_OK)
      return rc;
  }
}

/* Reads the whole stream without keeping it: every chunk authenticated. */
static int verify_all(snap_store *st, const char *pid, int64_t seq, const void *head, size_t len,
                      const snap_options *o) {
  pump p;
  snap_stream_info info;
  int rc = pump_open(&p, st, pid, seq, head, len, o, 0, &info);
  uint8_t *scratch = rc == SNAP_OK ? snap_malloc(VERIFY_BUF) : NULL;
  if (rc == SNAP_OK && scratch == NULL)
    rc = snap_error_set(SNAP_ENOMEM, "stream load pid '%s': out of memory", pid);
  size_t got = 1;
  while (rc == SNAP_OK && got > 0)
    rc = pump_read(&p, scratch, VERIFY_BUF, &got);
  snap_free(scratch);
  pump_close(&p);
  return rc;
}

int snap__stream_load_whole(snap_store *st, const char *pid, int64_t seq, const void *head,
                            size_t len, const snap_options *o, snap_buf *out, snap_format *fmt,
                            unsigned *stages) {
  if (!snap_store_streams(st))
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "load pid '%s' seq %" PRId64 ": a streamed snapshot, and backend '%s' "
                          "reads no streams",
                          pid, seq, st->be.name);
  uint64_t limit = snap__options_max_decoded(o);
  snap_stream_info info;
  if (snap_body_inspect_stream(head, len, &info) == SNAP_OK && info.plain_len > limit)
    return snap_error_set(SNAP_ETOOBIG,
                          "load pid '%s' seq %" PRId64 ": the streamed state of %" PRIu64
                          " bytes exceeds the reader's limit of %" PRIu64
                          " bytes: read it with snap_load_stream_open()",
                          pid, seq, info.plain_len, limit);
  pump p;
  int rc = pump_open(&p, st, pid, seq, head, len, o, limit, &info);
  if (rc == SNAP_OK) {
    out->len = 0;
    rc = snap_buf_reserve(out, (size_t)info.plain_len + 1);
  }
  size_t got = 1;
  while (rc == SNAP_OK && got > 0) {
    size_t room = out->cap - out->len;
    if (room == 0 && (rc = snap_buf_reserve(out, out->cap + 1)) != SNAP_OK)
      break;
    rc = pump_read(&p, out->data + out->len, out->cap - out->len, &got);
    if (rc == SNAP_OK)
      out->len += got;
  }
  pump_close(&p);
  if (rc != SNAP_OK) {
    out->len = 0;
    return rc;
  }
  *fmt = info.fmt;
  *stages = info.stages;
  return SNAP_OK;
}

/* ---- the stream reader ---------------------------------------------------- */

struct snap_load_stream {
  snap_store *st;
  snap_options *o;
  pump p;           /* a streamed snapshot */
  snap_buf state;   /* an ordinary one, decoded whole */
  size_t pos;
  int failed;       /* sticky */
  bool done;
  char pid[SNAP_PID_MAX + 1]; /* the decoder's messages name it after open returned */
};

/* The body the backend emitted, copied (it is valid during the emit only). */
typedef struct found_row {
  int found;
  int64_t seq, timestamp;
  snap_buf body;
  int status;
} found_row;

static int found_emit(void *ctx, int64_t seq, int64_t timestamp, const void *body, size_t len) {
  found_row *f = ctx;
  f->found = 1;
  f->seq = seq;
  f->timestamp = timestamp;
  f->status = snap_buf_set(&f->body, body, len);
  return SNAP_OK;
}

/* Opens the row `f` for reading into `r` and `m`. */
static int open_row(snap_load_stream *r, const char *pid, const found_row *f, unsigned flags,
                    snap_stream_meta *m) {
  snap_stream_info info;
  const void *b = f->body.data;
  size_t n = f->body.len;
  m->seq = f->seq;
  m->timestamp = f->timestamp;
  if (!snap__body_is_head(b, n)) {
    snap_format fmt = SNAP_FORMAT_JSON;
    unsigned stages = 0;
    int rc = snap__store_decode(r->st, pid, f->seq, b, n, r->o, &r->state, &fmt, &stages);
    *m = (snap_stream_meta){f->seq, f->timestamp, fmt, stages, r->state.len, false, 0, SNAP_OK};
    return rc;
  }
  if (!snap_store_streams(r->st))
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "stream load pid '%s' seq %" PRId64 ": backend '%s' reads no streams",
                          pid, f->seq, r->st->be.name);
  int rc = SNAP_OK;
  if (flags & SNAP_LOAD_STREAM_VERIFY_FIRST)
    rc = verify_all(r->st, pid, f->seq, b, n, r->o);
  if (rc == SNAP_OK)
    rc = pump_open(&r->p, r->st, pid, f->seq, b, n, r->o, 0, &info);
  if (rc == SNAP_OK)
    *m = (snap_stream_meta){f->seq, f->timestamp, info.fmt, info.stages, info.plain_len, true,
                            0, SNAP_OK};
  return rc;
}

/* The selection loop of snap_load(): the youngest match, skipping damage. */
static int select_row(snap_load_stream *r, const char *pid, const snap_criteria *c,
                      unsigned flags, snap_stream_meta *m, bool *opened) {
  snap_criteria cc = *c;
  if (cc.min_seq < 0)
    cc.min_seq = 0;
  found_row f = {0, 0, 0, SNAP_BUF_INIT, SNAP_OK};
  int rc = SNAP_OK;
  unsigned skipped = 0;
  int reason = SNAP_OK;
  for (unsigned attempt = 0; attempt < r->st->max_load_attempts; attempt++) {
    f.found = 0;
    rc = r->st->be.load(r->st->self, pid, &cc, found_emit, &f);
    if (rc == SNAP_OK)
      rc = f.status;
    if (rc != SNAP_OK || !f.found)
      break;
    rc = open_row(r, pid, &f, flags, m);
    if (rc == SNAP_OK) {
      *opened = true;
      break;
    }
    if (rc == SNAP_ENOTFOUND)
      continue; /* deleted or replaced since it was selected: select again */
    if (rc != SNAP_ECORRUPT && rc != SNAP_EFORMAT)
      break; /* keys and authentication are errors, never a fallback */
    snap__obs_skip(&r->st->obs, pid, f.seq, rc, snap_error_message());
    if (skipped++ == 0)
      reason = rc;
    rc = SNAP_OK;
    if (f.seq == 0 || f.seq - 1 < cc.min_seq)
      break;
    cc.max_seq = f.seq - 1;
  }
  snap_buf_dispose(&f.body);
  m->skipped = skipped;
  m->skip_reason = reason;
  if (rc == SNAP_OK && !*opened && skipped > 0)
    rc = snap_error_set(SNAP_ECORRUPT,
                        "stream load pid '%s': %u matching snapshot(s) skipped as undecodable "
                        "and no decodable one found",
                        pid, skipped);
  return rc;
}

int snap_load_stream_open(snap_store *st, const char *pid, const snap_criteria *c,
                          const snap_options *opts, unsigned flags, snap_load_stream **out,
                          snap_stream_meta *meta) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "stream load: out is NULL");
  *out = NULL;
  if (st == NULL || c == NULL)
    return snap_error_set(SNAP_EINVAL, "stream load: store or criteria is NULL");
  if ((flags & ~SNAP_LOAD_STREAM_VERIFY_FIRST) != 0)
    return snap_error_set(SNAP_EINVAL, "stream load: unknown flags 0x%x",
                          flags & ~SNAP_LOAD_STREAM_VERIFY_FIRST);
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK || snap__criteria_empty(c))
    return rc;
  snap_load_stream *r = snap_malloc(sizeof *r);
  if (r == NULL)
    return snap_error_set(SNAP_ENOMEM, "stream load pid '%s': out of memory", pid);
  memset(r, 0, sizeof *r);
  r->st = st;
  r->state = (snap_buf)SNAP_BUF_INIT;
  snprintf(r->pid, sizeof r->pid, "%s", pid);
  snap_stream_meta m;
  memset(&m, 0, sizeof m);
  bool opened = false;
  rc = snap__store_options(st, pid, opts, &r->o);
  if (rc == SNAP_OK)
    rc = select_row(r, r->pid, c, flags, &m, &opened);
  if (rc != SNAP_OK || !opened) {
    snap_load_stream_close(r);
    return rc;
  }
  if (meta != NULL)
    *meta = m;
  *out = r;
  return SNAP_OK;
}

int snap_load_stream_read(snap_load_stream *r, void *buf, size_t cap, size_t *got) {
  if (got != NULL)
    *got = 0;
  if (r == NULL || got == NULL || (buf == NULL && cap > 0))
    return snap_error_set(SNAP_EINVAL, "stream read: reader, buffer or count is NULL");
  if (r->failed != SNAP_OK)
    return snap_error_set(r->failed, "stream read: an earlier read failed: discard what was "
                          "read");
  if (r->done || cap == 0)
    return SNAP_OK;
  if (r->p.dec == NULL) {
    size_t n = r->state.len - r->pos < cap ? r->state.len - r->pos : cap;
    memcpy(buf, r->state.data + r->pos, n);
    r->pos += n;
    *got = n;
    r->done = n == 0;
    return SNAP_OK;
  }
  int rc = pump_read(&r->p, buf, cap, got);
  if (rc != SNAP_OK) {
    *got = 0;
    r->failed = rc;
  } else if (*got == 0) {
    r->done = true;
  }
  return rc;
}

void snap_load_stream_close(snap_load_stream *r) {
  if (r == NULL)
    return;
  pump_close(&r->p);
  snap_buf_dispose(&r->state);
  snap_options_free(r->o);
  snap_free(r);
}
