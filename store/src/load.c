/* Loads: the youngest snapshot of a pid matching the criteria, decoded with
 * its resolved options; a body that does not decode as damage (corrupt,
 * bad format) is skipped for the next older one, up to the store's
 * "max_load_attempts", and reported. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "snap/store_layer.h"

typedef struct load_ctx {
  const char *pid;
  const snap_options *o;
  snap_keyring *kr; /* the encryption keyring of `o`, or NULL */
  const char *kctx;
  bool deferred;     /* an envelope body copied to `pending`: decoded once its key is fetched */
  bool streamed;     /* a stream head copied to `pending`: its chunks read once the backend
                        returned (stream_load.c) */
  snap_buf pending;
  snap_buf state;
  int found;
  int status;
  int64_t seq;
  int64_t timestamp;
  snap_format format;
  unsigned stages;
  size_t body_len;
  const char *want_manifest; /* snap_load_manifest(): the column's value selected */
  bool mismatch;             /* the body states another manifest than the column */
  size_t manifest_len;       /* 0: the body states none */
  char manifest[SNAP_MANIFEST_MAX + 1];
  snap_buf metadata;
} load_ctx;

/* Keeps what the body states (it points into the backend's buffer, valid
 * during the emit only) and checks it against the column a load selected by. */
static void keep_typing(load_ctx *c, const snap__typing *t) {
  c->manifest_len = t->manifest_len;
  memcpy(c->manifest, t->manifest ? t->manifest : "", t->manifest_len);
  c->manifest[t->manifest_len] = 0;
  c->metadata.len = 0;
  if (t->metadata_len > 0 && snap_buf_set(&c->metadata, t->metadata, t->metadata_len) != SNAP_OK)
    c->status = snap_error_set(SNAP_ENOMEM, "load pid '%s': out of memory", c->pid);
  c->mismatch = c->want_manifest != NULL &&
                (t->manifest_len == 0 || strcmp(c->manifest, c->want_manifest) != 0);
  if (c->mismatch)
    c->status = snap_error_set(
        SNAP_ECORRUPT,
        "load pid '%s' seq %" PRId64 ": the manifest column says '%s' but the body states %s%s%s: "
        "the column was altered (the body's manifest is the one bound by the frame)",
        c->pid, c->seq, c->want_manifest, c->manifest_len ? "'" : "no manifest",
        c->manifest_len ? c->manifest : "", c->manifest_len ? "'" : "");
}

/* After a successful decode: what the (now authenticated) header states. */
static void keep_typing_of(load_ctx *c, const void *body, size_t body_len) {
  snap__typing t;
  if (c->status == SNAP_OK && snap__body_typing(body, body_len, &t) == SNAP_OK)
    keep_typing(c, &t);
}

/* Decodes straight from the backend's buffer into the future snapshot's buffer. */
static int load_emit(void *vctx, int64_t seq, int64_t timestamp, const void *body,
                     size_t body_len) {
  load_ctx *c = vctx;
  c->found = 1;
  c->seq = seq;
  c->timestamp = timestamp;
  c->body_len = body_len;
  snap__envelope_ref ref;
  if (snap__body_is_head(body, body_len)) {
    /* Its chunks come from the very backend that is emitting. */
    c->streamed = true;
    c->status = snap_buf_set(&c->pending, body, body_len);
    return SNAP_OK;
  }
  if (c->kr && snap__body_envelope_ref(c->pid, seq, body, body_len, &ref)) {
    /* Its key may have to come from the key table, which may be the very
     * backend that is emitting: fetch it once the backend has returned. */
    c->deferred = true;
    c->status = snap_buf_set(&c->pending, body, body_len);
    return SNAP_OK;
  }
  c->status = snap__body_decode_checked(c->pid, seq, body, body_len, c->o, &c->state, &c->format,
                                        &c->stages);
  keep_typing_of(c, body, body_len);
  /* Decoding failures are the host's business, not the backend's. */
  return SNAP_OK;
}

/* Decodes the envelope body in c->pending with its unit's data key, or
 * reads the streamed snapshot whose head is there. */
static int decode_deferred(snap_store *st, load_ctx *c) {
  if (c->status != SNAP_OK)
    return c->status; /* the copy failed */
  if (c->streamed)
    return snap__stream_load_whole(st, c->pid, c->seq, c->pending.data, c->pending.len, c->o,
                                   &c->state, &c->format, &c->stages);
  return snap__store_decode(st, c->pid, c->seq, c->pending.data, c->pending.len, c->o, &c->state,
                            &c->format, &c->stages);
}

bool snap__criteria_empty(const snap_criteria *c) {
  return c->min_seq > c->max_seq || c->min_ts > c->max_ts || c->max_seq < 0;
}

static int make_snapshot(load_ctx *c, unsigned skipped, int skip_reason, snap_snapshot **out) {
  size_t pid_len = strlen(c->pid);
  /* Room for the terminating NUL promised to callers; usually already there. */
  int rc = snap_buf_reserve(&c->state, c->state.len + 1);
  if (rc != SNAP_OK)
    return rc;
  /* One allocation: the snapshot, its pid, manifest and metadata. */
  size_t extra = (c->manifest_len ? c->manifest_len + 1 : 0) + c->metadata.len;
  snap_snapshot *s = snap_malloc(sizeof *s + pid_len + 1 + extra);
  if (s == NULL)
    return snap_error_set(SNAP_ENOMEM, "load pid '%s': out of memory", c->pid);
  c->state.data[c->state.len] = 0;
  s->pid = (char *)(s + 1);
  memcpy(s->pid, c->pid, pid_len + 1);
  char *tail = s->pid + pid_len + 1;
  s->manifest = NULL;
  s->stored_manifest = NULL;
  if (c->manifest_len) {
    s->manifest = s->stored_manifest = tail;
    memcpy(tail, c->manifest, c->manifest_len + 1);
    tail += c->manifest_len + 1;
  }
  s->metadata = c->metadata.len ? (uint8_t *)tail : NULL;
  s->metadata_len = c->metadata.len;
  if (c->metadata.len)
    memcpy(tail, c->metadata.data, c->metadata.len);
  s->seq = c->seq;
  s->timestamp = c->timestamp;
  s->format = c->format;
  s->data = snap_buf_detach(&c->state, &s->len);
  s->stages = c->stages;
  s->skipped = skipped;
  s->skip_reason = skip_reason;
  *out = s;
  return SNAP_OK;
}

/* One backend load: load4() when selecting by manifest. */
static int backend_load(snap_store *st, const char *pid, const snap_criteria *c, load_ctx *ctx) {
  if (ctx->want_manifest == NULL)
    return st->be.load(st->self, pid, c, load_emit, ctx);
  return st->be.load4(st->self, pid, c, ctx->want_manifest, load_emit, ctx);
}

/* The pid, the manifest selected by, and whether the backend can select by it. */
static int check_load(const snap_store *st, const char *pid, const char *manifest) {
  int rc = snap_pid_check(pid);
  if (rc != SNAP_OK || manifest == NULL)
    return rc;
  if ((rc = snap_manifest_check(manifest)) != SNAP_OK)
    return rc;
  if (st->be.abi_version < 4 || st->be.load4 == NULL)
    return snap_error_set(SNAP_EUNSUPPORTED,
                          "load pid '%s' by manifest: backend '%s' cannot select by manifest (it "
                          "has no load4, backend ABI version 4)",
                          pid, st->be.name);
  return SNAP_OK;
}

/* snap_load() once its pointers are checked; `op` receives what was read. */
/* The bodies a load skipped as damaged: how many, and the first one's
 * status, seq and message (for the error when no decodable one is left). */
typedef struct skips {
  unsigned n;
  int reason;
  int64_t first_seq;
  char first_msg[256];
} skips;

static void skip_note(skips *k, snap_store *st, const char *pid, int64_t seq, int status) {
  snap__obs_skip(&st->obs, pid, seq, status, snap_error_message());
  if (k->n++ == 0) {
    k->reason = status;
    k->first_seq = seq;
    snprintf(k->first_msg, sizeof k->first_msg, "%s", snap_error_message());
  }
}

static int load(snap_store *st, const char *pid, const snap_criteria *c, const char *manifest,
                const snap_options *opts, snap_snapshot **out, snap__op *op) {
  int rc = check_load(st, pid, manifest);
  if (rc != SNAP_OK)
    return rc;
  if (snap__criteria_empty(c))
    return SNAP_OK; /* nothing can match: none, like any other miss */

  load_ctx ctx = {.pid = pid,
                  .pending = SNAP_BUF_INIT,
                  .state = SNAP_BUF_INIT,
                  .format = SNAP_FORMAT_JSON,
                  .want_manifest = manifest,
                  .metadata = SNAP_BUF_INIT};
  snap__resolution owned = {NULL, NULL};
  unsigned ignored = 0;
  snap_criteria cc = *c;
  /* Sequence numbers are never negative: a row that claims one was written
   * behind the store's back and is not ours to return. */
  if (cc.min_seq < 0)
    cc.min_seq = 0;
  skips sk = {0, SNAP_OK, -1, ""};

  pthread_rwlock_rdlock(&st->lock);
  rc = snap__store_resolve(st, pid, opts, &owned, &ctx.o, &ignored);
  if (rc == SNAP_OK && !snap__options_encryption(ctx.o, &ctx.kr, &ctx.kctx))
    ctx.kr = NULL;
  for (unsigned attempt = 0; rc == SNAP_OK && attempt < st->max_load_attempts; attempt++) {
    ctx.found = 0;
    ctx.deferred = false;
    ctx.streamed = false;
    rc = backend_load(st, pid, &cc, &ctx);
    if (rc != SNAP_OK || !ctx.found)
      break;
    if (ctx.deferred || ctx.streamed) {
      ctx.status = decode_deferred(st, &ctx);
      keep_typing_of(&ctx, ctx.pending.data, ctx.pending.len);
    }
    if (ctx.status == SNAP_OK) {
      rc = make_snapshot(&ctx, sk.n, sk.reason, out);
      break;
    }
    if ((ctx.status != SNAP_ECORRUPT && ctx.status != SNAP_EFORMAT) || ctx.mismatch) {
      /* A wrong or missing key is not damage: falling back would silently
       * hand out older state. Nor is an altered manifest column. */
      rc = ctx.status;
      break;
    }
    skip_note(&sk, st, pid, ctx.seq, ctx.status);
    if (ctx.seq == 0 || ctx.seq - 1 < cc.min_seq)
      break;
    cc.max_seq = ctx.seq - 1;
  }
  pthread_rwlock_unlock(&st->lock);
  snap__resolution_done(st, &owned);
  snap_buf_dispose(&ctx.state);
  snap_buf_dispose(&ctx.pending);
  snap_buf_dispose(&ctx.metadata);
  *op = (snap__op){SNAP_EVENT_LOAD,
                   rc,
                   pid,
                   ctx.found ? ctx.seq : -1,
                   *out ? (*out)->len : 0,
                   ctx.found ? ctx.body_len : 0,
                   ctx.found ? ctx.stages : 0,
                   ignored,
                   sk.n};
  if (rc == SNAP_OK && *out == NULL && sk.n > 0)
    rc = snap_error_set(SNAP_ECORRUPT,
                        "load pid '%s': %u matching snapshot(s) skipped as undecodable (first at "
                        "seq %" PRId64 ": %s) and no decodable one found",
                        pid, sk.n, sk.first_seq, sk.first_msg);
  return rc;
}

int snap_load_manifest(snap_store *st, const char *pid, const snap_criteria *c,
                       const char *manifest, const snap_options *opts, snap_snapshot **out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "load: out is NULL");
  *out = NULL;
  if (st == NULL || c == NULL)
    return snap_error_set(SNAP_EINVAL, "load: store or criteria is NULL");
  uint64_t t0 = snap__obs_start(&st->obs);
  snap__op op = {SNAP_EVENT_LOAD, SNAP_OK, pid, -1, 0, 0, 0, 0, 0};
  op.status = load(st, pid, c, manifest, opts, out, &op);
  snap__obs_op(&st->obs, t0, &op);
  return op.status;
}

int snap_load(snap_store *st, const char *pid, const snap_criteria *c, const snap_options *opts,
              snap_snapshot **out) {
  return snap_load_manifest(st, pid, c, NULL, opts, out);
}

int snap_load_latest(snap_store *st, const char *pid, const snap_options *opts,
                     snap_snapshot **out) {
  snap_criteria c = SNAP_CRITERIA_LATEST;
  c.min_ts = INT64_MIN;
  return snap_load(st, pid, &c, opts, out);
}

int snap_load_before(snap_store *st, const char *pid, int64_t seq, const snap_options *opts,
                     snap_snapshot **out) {
  /* seq - 1 only once seq > 0: INT64_MIN - 1 would overflow. */
  snap_criteria c = {0, seq > 0 ? seq - 1 : 0, INT64_MIN, INT64_MAX};
  if (seq <= 0) {
    /* Nothing is older than seq 0; still validate the arguments. */
    c.min_seq = 1;
    c.max_seq = 0;
  }
  return snap_load(st, pid, &c, opts, out);
}

bool snap__store_read_scope_begin(snap_store *st) {
  return st->be.abi_version >= 8 && st->be.read_scope_begin != NULL &&
         st->be.read_scope_end != NULL && st->be.read_scope_begin(st->self) == SNAP_OK;
}

void snap__store_read_scope_end(snap_store *st) {
  if (st->be.abi_version >= 8 && st->be.read_scope_end != NULL)
    st->be.read_scope_end(st->self);
}

void snap_snapshot_free(snap_snapshot *s) {
  if (s == NULL)
    return;
  snap_free(s->data);
  snap_free(s);
}

