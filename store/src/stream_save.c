/* Streamed saves (snap/store_stream.h): the pipeline's stream encoder turns
 * the state into sealed chunk records, which go straight to the backend's
 * staging (backend ABI version 6); the commit publishes the head as the
 * snapshot's row in one small transaction. Memory stays bounded by the
 * chunk size: nothing here holds more than one record. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "handle.h"
#include "snap/store_stream.h"

struct snap_save_stream {
  snap_store *st;
  snap_options *o; /* resolved for the pid: a copy this writer owns */
  snap_stream_encoder *enc;
  snap_backend_stream *staging;
  int64_t seq;
  int64_t timestamp; /* SNAP_TIMESTAMP_AUTO: the commit's time */
  snap_format format;
  int64_t expect_seq; /* SNAP_BACKEND_ANY_SEQ: unconditional */
  int failed;         /* sticky: the first failure, or SNAP_OK */
  uint64_t records;   /* bytes of chunk records staged */
  uint64_t t0;
  char manifest[SNAP_MANIFEST_MAX + 1];
  bool has_manifest;
  char pid[SNAP_PID_MAX + 1];
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool snap_store_streams(const snap_store *st) {
  return st != NULL && st->be.abi_version >= 6 && st->be.stream_begin != NULL &&
         st->be.stream_write != NULL && st->be.stream_publish != NULL &&
         st->be.stream_abort != NULL && st->be.stream_open != NULL &&
         st->be.stream_next != NULL && st->be.stream_close != NULL;
}

/* The encoder's sink: each sealed record to the backend's staging. */
static int sink(void *ud, uint64_t index, const void *record, size_t len) {
  (void)index;
  snap_save_stream *w = ud;
  int rc = w->st->be.stream_write(w->st->self, w->staging, record, len);
  if (rc == SNAP_OK)
    w->records += len;
  return rc;
}

static int check_begin(snap_store *st, const char *pid, int64_t seq, int64_t timestamp,
                       snap_format fmt, const snap_save_ext *x) {
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "stream save: store is NULL");
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK)
    return rc;
  if (seq < 0)
    return snap_error_set(SNAP_EINVAL, "stream save pid '%s': seq %" PRId64 " is negative", pid,
                          seq);
  if (fmt != SNAP_FORMAT_JSON && fmt != SNAP_FORMAT_MSGPACK)
    return snap_error_set(SNAP_EINVAL, "stream save pid '%s' seq %" PRId64 ": unknown format %d",
                          pid, seq, (int)fmt);
  if (timestamp != SNAP_TIMESTAMP_AUTO && timestamp < 0)
    return snap_error_set(SNAP_EINVAL, "stream save pid '%s' seq %" PRId64 ": timestamp %" PRId64
                          " is negative", pid, seq, timestamp);
  if (!snap_store_streams(st))
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "stream save pid '%s' seq %" PRId64 ": backend '%s' stores no streamed "
                          "snapshots (backend ABI version 6)",
                          pid, seq, st->be.name);
  if (x == NULL)
    return SNAP_OK;
  if ((x->flags & ~SNAP_SAVE_IF_LATEST) != 0)
    return snap_error_set(SNAP_EINVAL, "stream save pid '%s' seq %" PRId64 ": unknown flags 0x%x",
                          pid, seq, x->flags & ~SNAP_SAVE_IF_LATEST);
  if ((x->flags & SNAP_SAVE_IF_LATEST) && x->expected_seq < SNAP_SEQ_NONE)
    return snap_error_set(SNAP_EINVAL,
                          "stream save pid '%s' seq %" PRId64 ": expected seq %" PRId64
                          " is neither a seq nor SNAP_SEQ_NONE (-1)",
                          pid, seq, x->expected_seq);
  if (x->manifest != NULL && snap_manifest_check(x->manifest) != SNAP_OK) {
    char why[320];
    snprintf(why, sizeof why, "%s", snap_error_message());
    return snap_error_set(SNAP_EINVAL, "stream save pid '%s' seq %" PRId64 ": %s", pid, seq, why);
  }
  if (x->metadata_len > SNAP_METADATA_MAX || (x->metadata == NULL && x->metadata_len > 0))
    return snap_error_set(SNAP_EINVAL, "stream save pid '%s' seq %" PRId64 ": metadata of %zu "
                          "bytes %s", pid, seq, x->metadata_len,
                          x->metadata == NULL ? "is NULL" : "is over SNAP_METADATA_MAX (2048)");
  return SNAP_OK;
}

/* The encoder, sealed with the unit's data key in envelope mode. */
static int new_encoder(snap_save_stream *w, size_t chunk_size, const snap__typing *t) {
  snap_keyring *kr;
  const char *ctx;
  if (!snap__options_envelope(w->o, &kr, &ctx))
    return snap__stream_encoder_new_typed(&w->enc, w->pid, w->seq, w->format, w->o, chunk_size,
                                          NULL, t, sink, w);
  size_t ulen = snap__envelope_unit(&w->st->env, w->pid);
  char unit[SNAP_PID_MAX + 1];
  memcpy(unit, w->pid, ulen);
  unit[ulen] = 0;
  snap__unit u = {unit, ulen};
  snap__envelope_key k = {.unit = unit, .unit_len = ulen};
  int rc = snap__envelope_save_key(w->st, &u, kr, ctx, k.dek, &k.generation);
  if (rc == SNAP_OK)
    rc = snap__stream_encoder_new_typed(&w->enc, w->pid, w->seq, w->format, w->o, chunk_size, &k,
                                        t, sink, w);
  sodium_memzero(k.dek, sizeof k.dek);
  return rc;
}

static void writer_free(snap_save_stream *w) {
  snap_stream_encoder_free(w->enc);
  if (w->staging != NULL)
    w->st->be.stream_abort(w->st->self, w->staging);
  snap_options_free(w->o);
  snap_free(w);
}

/* A failed save, observed once. */
static void observe(snap_save_stream *w, int status, size_t state_len, size_t stored,
                    unsigned stages) {
  snap__obs_op(&w->st->obs, w->t0,
               &(snap__op){SNAP_EVENT_SAVE, status, w->pid, w->seq, state_len, stored, stages, 0,
                           0});
}

int snap_save_stream_begin(snap_store *st, const char *pid, int64_t seq, int64_t timestamp,
                           snap_format fmt, const snap_options *opts, const snap_save_ext *ext,
                           size_t chunk_size, snap_save_stream **out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "stream save: out is NULL");
  *out = NULL;
  int rc = check_begin(st, pid, seq, timestamp, fmt, ext);
  if (rc != SNAP_OK)
    return rc;
  snap_save_stream *w = snap_malloc(sizeof *w);
  if (w == NULL)
    return snap_error_set(SNAP_ENOMEM, "stream save pid '%s': out of memory", pid);
  memset(w, 0, sizeof *w);
  w->st = st;
  w->t0 = snap__obs_start(&st->obs);
  snprintf(w->pid, sizeof w->pid, "%s", pid);
  w->seq = seq;
  w->timestamp = timestamp;
  w->format = fmt;
  w->expect_seq = ext != NULL && (ext->flags & SNAP_SAVE_IF_LATEST) ? ext->expected_seq
                                                                     : SNAP_BACKEND_ANY_SEQ;
  snap__typing t = {NULL, 0, NULL, 0};
  if (ext != NULL && ext->manifest != NULL) {
    snprintf(w->manifest, sizeof w->manifest, "%s", ext->manifest);
    w->has_manifest = true;
    t.manifest = w->manifest;
    t.manifest_len = strlen(w->manifest);
  }
  if (ext != NULL && ext->metadata_len > 0) {
    t.metadata = ext->metadata;
    t.metadata_len = ext->metadata_len;
  }
  rc = snap__store_options(st, pid, opts, &w->o);
  if (rc == SNAP_OK)
    rc = st->be.stream_begin(st->self, pid, seq, &w->staging);
  if (rc == SNAP_OK)
    rc = new_encoder(w, chunk_size, &t);
  if (rc != SNAP_OK) {
    observe(w, rc, 0, 0, 0);
    writer_free(w);
    return rc;
  }
  *out = w;
  return SNAP_OK;
}

int snap_save_stream_write(snap_save_stream *w, const void *data, size_t len) {
  if (w == NULL || (data == NULL && len > 0))
    return snap_error_set(SNAP_EINVAL, "stream save: writer or data is NULL");
  if (w->failed != SNAP_OK)
    return snap_error_set(w->failed, "stream save pid '%s' seq %" PRId64 ": an earlier write "
                          "failed: abort the save", w->pid, w->seq);
  int rc = snap_stream_encoder_write(w->enc, data, len);
  if (rc != SNAP_OK)
    w->failed = rc;
  return rc;
}

uint64_t snap_save_stream_written(const snap_save_stream *w) {
  uint64_t plain = 0;
  if (w != NULL)
    snap_stream_encoder_progress(w->enc, &plain, NULL);
  return plain;
}

/* Finishes the encoder and publishes the head with its chunks. */
static int publish(snap_save_stream *w, snap_buf *head, unsigned *stages, int64_t *current) {
  uint64_t plain = 0;
  snap_stream_encoder_progress(w->enc, &plain, NULL);
  if (plain == 0)
    return snap_error_set(SNAP_EFORMAT,
                          "stream save pid '%s' seq %" PRId64 ": the state is empty (0 bytes), "
                          "which is neither JSON nor msgpack",
                          w->pid, w->seq);
  int rc = snap_stream_encoder_finish(w->enc, head, stages);
  uint32_t keep = 0;
  if (rc == SNAP_OK)
    rc = snap__retention_keep(&w->st->retention, &w->st->be, w->st->self, &keep);
  if (rc != SNAP_OK)
    return rc;
  if (w->timestamp == SNAP_TIMESTAMP_AUTO)
    w->timestamp = now_ms();
  snap_backend_row4 row = {
      .row = {w->pid, w->seq, w->timestamp, head->data, head->len, *stages, SNAP_OK},
      .manifest = w->has_manifest ? w->manifest : NULL,
      .expect_seq = w->expect_seq,
      .current_seq = SNAP_SEQ_NONE};
  snap_backend_stream *s = w->staging;
  w->staging = NULL; /* publish consumes it, whatever the outcome */
  rc = w->st->be.stream_publish(w->st->self, s, &row, keep);
  if (rc == SNAP_OK)
    rc = row.row.status;
  *current = row.current_seq;
  return rc;
}

int snap_save_stream_commit(snap_save_stream *w, snap_meta *meta) {
  if (w == NULL)
    return snap_error_set(SNAP_EINVAL, "stream save: writer is NULL");
  snap_buf head = SNAP_BUF_INIT;
  unsigned stages = 0;
  int64_t current = SNAP_SEQ_NONE;
  int rc = w->failed;
  if (rc != SNAP_OK)
    rc = snap_error_set(rc, "stream save pid '%s' seq %" PRId64 ": an earlier write failed: "
                        "nothing was stored", w->pid, w->seq);
  else
    rc = publish(w, &head, &stages, &current);
  uint64_t plain = 0;
  snap_stream_encoder_progress(w->enc, &plain, NULL);
  size_t stored = (size_t)(w->records + head.len);
  if (meta != NULL) {
    memset(meta, 0, sizeof *meta);
    meta->seq = w->seq;
    meta->current_seq = SNAP_SEQ_NONE;
    if (rc == SNAP_OK) {
      *meta = (snap_meta){w->seq, w->timestamp, w->format, stages, 0, (size_t)plain, stored,
                          w->expect_seq == SNAP_BACKEND_ANY_SEQ ? SNAP_SEQ_NONE : w->seq};
    } else if (rc == SNAP_ECONFLICT) {
      meta->current_seq = current;
    }
  }
  observe(w, rc, (size_t)plain, rc == SNAP_OK ? stored : 0, stages);
  snap_buf_dispose(&head);
  writer_free(w);
  return rc;
}

int snap__save_stream_finish(snap_save_stream *w, snap_buf *head, unsigned *stages,
                             snap_backend_stream **staging) {
  *staging = NULL;
  int rc = w->failed;
  if (rc == SNAP_OK)
    rc = snap_stream_encoder_finish(w->enc, head, stages);
  if (rc == SNAP_OK) {
    *staging = w->staging;
    w->staging = NULL; /* the caller's now */
  }
  writer_free(w);
  return rc;
}

void snap_save_stream_abort(snap_save_stream *w) {
  if (w != NULL)
    writer_free(w);
}

int snap_store_stream_sweep(snap_store *st, uint64_t max, uint64_t *reclaimed) {
  if (reclaimed != NULL)
    *reclaimed = 0;
  if (st == NULL)
    return snap_error_set(SNAP_EINVAL, "stream sweep: store is NULL");
  if (!snap_store_streams(st) || st->be.stream_sweep == NULL)
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "stream sweep: backend '%s' stores no streamed snapshots (backend ABI "
                          "version 6)",
                          st->be.name);
  return st->be.stream_sweep(st->self, max, reclaimed);
}

/* ---- copying a streamed snapshot as it is ---------------------------------- */

/* The head's manifest, for the target's column ("" for none). */
static void head_manifest(const void *head, size_t len, char out[SNAP_MANIFEST_MAX + 1]) {
  snap__typing t;
  out[0] = 0;
  if (snap__body_typing(head, len, &t) == SNAP_OK && t.manifest_len > 0 &&
      t.manifest_len <= SNAP_MANIFEST_MAX) {
    memcpy(out, t.manifest, t.manifest_len);
    out[t.manifest_len] = 0;
  }
}

/* Every record of `from`'s stream into `to`'s staging. */
static int copy_records(snap_store *from, snap_store *to, const char *pid, int64_t seq,
                        const void *head, size_t len, snap_backend_stream *s) {
  snap_backend_reader *r = NULL;
  int rc = from->be.stream_open(from->self, pid, seq, head, len, &r);
  while (rc == SNAP_OK) {
    const void *rec = NULL;
    size_t n = 0;
    if ((rc = from->be.stream_next(from->self, r, &rec, &n)) != SNAP_OK || rec == NULL)
      break;
    rc = to->be.stream_write(to->self, s, rec, n);
  }
  if (r != NULL)
    from->be.stream_close(from->self, r);
  return rc;
}

int snap_store_copy_stream(snap_store *from, snap_store *to, const char *pid, int64_t seq,
                           int64_t timestamp, const void *head, size_t head_len) {
  if (from == NULL || to == NULL || head == NULL)
    return snap_error_set(SNAP_EINVAL, "copy stream: store or head is NULL");
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK)
    return rc;
  if (seq < 0 || timestamp < 0)
    return snap_error_set(SNAP_EINVAL, "copy stream pid '%s': seq or timestamp is negative", pid);
  if (!snap__body_is_head(head, head_len))
    return snap_error_set(SNAP_EINVAL, "copy stream pid '%s' seq %" PRId64 ": the body is not "
                          "the head of a streamed snapshot", pid, seq);
  if (!snap_store_streams(from) || !snap_store_streams(to))
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "copy stream pid '%s' seq %" PRId64 ": backend '%s' stores no streamed "
                          "snapshots (backend ABI version 6)",
                          pid, seq, snap_store_streams(from) ? to->be.name : from->be.name);
  unsigned stages = 0;
  if ((rc = snap_body_inspect(head, head_len, NULL, &stages, NULL, NULL)) != SNAP_OK)
    return rc;
  snap_backend_stream *s = NULL;
  if ((rc = to->be.stream_begin(to->self, pid, seq, &s)) != SNAP_OK)
    return rc;
  rc = copy_records(from, to, pid, seq, head, head_len, s);
  if (rc != SNAP_OK) {
    to->be.stream_abort(to->self, s);
    return rc;
  }
  char manifest[SNAP_MANIFEST_MAX + 1];
  head_manifest(head, head_len, manifest);
  snap_backend_row4 row = {
      .row = {pid, seq, timestamp, head, head_len, stages, SNAP_OK},
      .manifest = manifest[0] ? manifest : NULL,
      .expect_seq = SNAP_BACKEND_ANY_SEQ,
      .current_seq = SNAP_SEQ_NONE};
  /* As a raw put: no retention, the copy keeps what the source kept. */
  rc = to->be.stream_publish(to->self, s, &row, 0);
  return rc == SNAP_OK ? row.row.status : rc;
}
