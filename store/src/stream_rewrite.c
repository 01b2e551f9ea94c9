/* Re-encoding a streamed snapshot in place (snap_store_rewrite(),
 * snap_store_migrate() on a stream head): the old stream is decoded through
 * a stream reader and encoded through a stream writer with the options of
 * the day, one piece at a time, into a new staging; the staging is then
 * published in place of the row only if the row still holds the head that
 * was read (the backend's stream_replace(), ABI version 7), the rule
 * rewrite.c applies to ordinary bodies: a live writer's save or delete wins
 * and nothing changes. A run killed midway leaves the old snapshot as it was
 * and the new staging as an orphan the backend reclaims; a rerun starts that
 * snapshot over. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "snap/admin.h"
#include "snap/store_stream.h"

/* The state goes from reader to writer in pieces of this size. */
#define PIPE_BUF_BYTES (256u << 10)

/* What stays the same across the rewrite: the old stream's chunk size, its
 * format, and (copied, NUL-terminated) its manifest and metadata. */
typedef struct old_stream {
  size_t chunk_size;
  snap_format fmt;
  char manifest[SNAP_MANIFEST_MAX + 1];
  uint8_t metadata[SNAP_METADATA_MAX];
  size_t metadata_len;
} old_stream;

static int read_old(const snap_rewrite *it, const char *verb, old_stream *old) {
  snap_stream_info info;
  snap__typing t;
  int rc = snap_body_inspect_stream(it->body, it->body_len, &info);
  if (rc == SNAP_OK)
    rc = snap__body_typing(it->body, it->body_len, &t);
  if (rc == SNAP_OK && (t.manifest_len > SNAP_MANIFEST_MAX || t.metadata_len > SNAP_METADATA_MAX))
    rc = snap_error_set(SNAP_EFORMAT, "the head's manifest or metadata is too long");
  if (rc != SNAP_OK)
    return snap_error_set(rc, "%s pid '%s' seq %" PRId64 ": %s", verb, it->pid, it->seq,
                          snap_error_message());
  old->chunk_size = (size_t)info.chunk_size;
  old->fmt = info.fmt;
  memcpy(old->manifest, t.manifest ? t.manifest : "", t.manifest_len);
  old->manifest[t.manifest_len] = 0;
  if (t.metadata_len > 0)
    memcpy(old->metadata, t.metadata, t.metadata_len);
  old->metadata_len = t.metadata_len;
  return SNAP_OK;
}

/* Pipes the stored state of (pid, seq) into `w` through a stream reader
 * (every chunk authenticated before its bytes are written). `*gone` says
 * the row is no longer there. */
static int pipe_state(snap_store *st, const snap_rewrite *it, const snap_options *call,
                      snap_save_stream *w, bool *gone) {
  snap_criteria c = {it->seq, it->seq, INT64_MIN, INT64_MAX};
  snap_load_stream *r = NULL;
  *gone = false;
  int rc = snap_load_stream_open(st, it->pid, &c, call, 0, &r, NULL);
  if (rc == SNAP_OK && r == NULL) {
    *gone = true;
    return SNAP_OK;
  }
  uint8_t *buf = rc == SNAP_OK ? snap_malloc(PIPE_BUF_BYTES) : NULL;
  if (rc == SNAP_OK && buf == NULL)
    rc = snap_error_set(SNAP_ENOMEM, "out of memory");
  size_t got = 1;
  while (rc == SNAP_OK && got > 0) {
    rc = snap_load_stream_read(r, buf, PIPE_BUF_BYTES, &got);
    if (rc == SNAP_OK && got > 0)
      rc = snap_save_stream_write(w, buf, got);
  }
  snap_free(buf);
  snap_load_stream_close(r);
  return rc;
}

/* A migration: the state whole (within the reader's limit: the upcasters
 * take a whole state), upcast from `stored` to `target`, into `state`. */
static int upcast_state(snap_store *st, const snap_rewrite *it, const snap_options *call,
                        const char *stored, const char *target, snap_buf *state,
                        snap_format *fmt) {
  snap_options *o = NULL;
  unsigned stages = 0;
  int rc = snap__store_options(st, it->pid, call, &o);
  if (rc == SNAP_OK)
    rc = snap__stream_load_whole(st, it->pid, it->seq, it->body, it->body_len, o, state, fmt,
                                 &stages);
  snap_options_free(o);
  /* Checked from the head before anything is read. */
  if (rc == SNAP_ETOOBIG)
    rc = snap_error_set(rc, "%s: the upcasters take a whole state, so a streamed state is "
                        "migrated only within the reader's limit (raise it with "
                        "options.max_decoded_size or snap_options_set_limits()); it is left as "
                        "it is", snap_error_message());
  if (rc == SNAP_OK)
    rc = snap__upcast_chain(st, "migrate", it->pid, it->seq, stored, target, state, fmt);
  return rc;
}

/* The new stream's head and staging, written from the old one; `*left`
 * says the row was deleted or replaced before it could be read (nothing is
 * staged then). */
static int write_new(snap_store *st, snap_rewrite *it, const snap_options *call,
                     const old_stream *old, const char *stored, const char *target,
                     snap_buf *head, unsigned *stages, snap_backend_stream **staging,
                     int *left) {
  snap_save_ext x = {.manifest = target ? target : old->manifest[0] ? old->manifest : NULL,
                     .metadata = old->metadata_len ? old->metadata : NULL,
                     .metadata_len = old->metadata_len};
  snap_format fmt = old->fmt;
  snap_buf state = SNAP_BUF_INIT;
  bool gone = false;
  int rc = SNAP_OK;
  *left = 0;
  if (target != NULL && (rc = upcast_state(st, it, call, stored, target, &state, &fmt)) ==
                            SNAP_ENOTFOUND) {
    *left = SNAP_REWRITE_CHANGED; /* no longer the head that was read */
    rc = SNAP_OK;
  }
  snap_save_stream *w = NULL;
  /* The timestamp is the row's: stream_replace() keeps it. */
  if (rc == SNAP_OK && *left == 0)
    rc = snap_save_stream_begin(st, it->pid, it->seq, SNAP_TIMESTAMP_AUTO, fmt, call, &x,
                                old->chunk_size, &w);
  if (rc == SNAP_OK && w != NULL)
    rc = target ? snap_save_stream_write(w, state.data, state.len)
                : pipe_state(st, it, call, w, &gone);
  snap_buf_dispose(&state);
  if (gone)
    *left = SNAP_REWRITE_GONE;
  if (rc != SNAP_OK || w == NULL || gone) {
    snap_save_stream_abort(w);
    return rc;
  }
  return snap__save_stream_finish(w, head, stages, staging);
}

int snap__stream_rewrite(snap_store *st, snap_rewrite *it, const snap_options *call,
                         const char *verb, const char *stored, const char *target) {
  if (!snap_store_streams(st) || st->be.abi_version < 7 || st->be.stream_replace == NULL)
    return snap__stream_refused(verb, it->pid, it->seq,
                                "the backend cannot replace a stream in place (backend ABI "
                                "version 7, stream_replace); it is left as it is");
  old_stream old;
  int rc = read_old(it, verb, &old);
  if (rc != SNAP_OK)
    return rc;
  snap_buf head = SNAP_BUF_INIT;
  unsigned stages = 0;
  snap_backend_stream *staging = NULL;
  int left = 0;
  rc = write_new(st, it, call, &old, stored, target, &head, &stages, &staging, &left);
  if (rc == SNAP_OK && left != 0) {
    it->outcome = left;
    snap_buf_dispose(&head);
    return SNAP_OK;
  }
  if (rc != SNAP_OK) {
    snap_buf_dispose(&head);
    return snap_error_set(rc, "%s pid '%s' seq %" PRId64 ": %s", verb, it->pid, it->seq,
                          snap_error_message());
  }
  snap_backend_swap w = {it->pid,  it->seq, it->body,       it->body_len,
                         head.data, head.len, stages, SNAP_SWAP_GONE, SNAP_OK};
  const char *manifest = target ? target : old.manifest[0] ? old.manifest : NULL;
  rc = st->be.stream_replace(st->self, staging, &w, manifest);
  if (rc == SNAP_OK)
    rc = w.status;
  if (rc == SNAP_OK) {
    it->outcome = w.outcome == SNAP_SWAP_DONE      ? SNAP_REWRITE_DONE
                  : w.outcome == SNAP_SWAP_CHANGED ? SNAP_REWRITE_CHANGED
                                                   : SNAP_REWRITE_GONE;
    if (it->outcome == SNAP_REWRITE_DONE) {
      it->stages = stages;
      (void)snap_body_inspect(head.data, head.len, NULL, NULL, &it->key_version, NULL);
    }
  } else {
    rc = snap_error_set(rc, "%s pid '%s' seq %" PRId64 ": the new stream was not published, "
                        "the old one is left as it is: %s", verb, it->pid, it->seq,
                        snap_error_message());
  }
  snap_buf_dispose(&head);
  return rc;
}
