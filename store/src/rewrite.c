/* Re-encoding stored bodies in place (snap_store_rewrite()): decode with the
 * options of the day, encode again, and swap each body in only if the stored
 * one is still the body that was read, so that a rotation run beside live
 * writers never overwrites a newer save nor brings a deleted one back. */
#include <inttypes.h>
#include <string.h>

#include "snap/admin.h"
#include "handle.h"

/* Swaps per backend call without a heap-allocated array. */
#define STACK_SWAPS 16

/* Encodes the decoded state again, stating what the old body stated (its
 * manifest and metadata, read once it decoded, so authenticated): a rewrite
 * changes how a state is sealed, never what it says it is. */
static int rewrite_encode(snap_store *st, const snap_rewrite *it, snap_format fmt,
                          const snap_buf *state, const snap_options *o, snap_buf *body,
                          unsigned *stages) {
  snap__typing t;
  int rc = snap__body_typing(it->body, it->body_len, &t);
  if (rc == SNAP_OK)
    rc = snap__store_encode(st, it->pid, it->seq, fmt, state->data, state->len, o, &t, body,
                            stages);
  return rc;
}

int snap__rewrite_item_check(const snap_rewrite *it, const char *verb) {
  int rc = snap_pid_check(it->pid);
  if (rc != SNAP_OK)
    return rc;
  if (it->seq < 0 || (it->body == NULL && it->body_len > 0))
    return snap_error_set(SNAP_EINVAL, "%s pid '%s' seq %" PRId64 ": %s", verb, it->pid, it->seq,
                          it->seq < 0 ? "seq is negative" : "body is NULL");
  return SNAP_OK;
}

/* Decides and, when needed, re-encodes one item into `body`; `*swap` says
 * whether it goes to the backend. */
/* With SNAP_REWRITE_RECOMPRESS: whether the body names the codec and
 * dictionary a save writes now (`*current`), and whether it is an
 * uncompressed body that an encode may leave uncompressed again (under the
 * minimum size, or not made smaller), which is then not swapped. */
static int codec_current(const snap_rewrite *it, const snap_options *o, bool *current,
                         bool *maybe_same) {
  snap_compression want = SNAP_COMPRESSION_NONE, have = SNAP_COMPRESSION_NONE;
  uint32_t want_dict = 0, have_dict = 0;
  int rc = snap_options_codec_target(o, &want, &want_dict);
  if (rc == SNAP_OK)
    rc = snap_body_inspect_codec(it->body, it->body_len, &have, &have_dict);
  *current = rc == SNAP_OK && have == want && have_dict == want_dict;
  *maybe_same = rc == SNAP_OK && have == SNAP_COMPRESSION_NONE;
  return rc;
}

static int prepare_one(snap_store *st, snap_rewrite *it, const snap_options *call, unsigned flags,
                       snap_buf *state, snap_buf *body, bool *swap) {
  const bool force = (flags & SNAP_REWRITE_FORCE) != 0;
  *swap = false;
  int rc = snap__rewrite_item_check(it, "rewrite");
  if (rc != SNAP_OK)
    return rc;
  snap_options *o = NULL;
  if ((rc = snap__store_options(st, it->pid, call, &o)) != SNAP_OK)
    return rc;
  unsigned want_stage = 0, stages = 0;
  uint32_t want_kv = 0, kv = 0;
  rc = snap_options_auth_target(o, &want_stage, &want_kv);
  if (rc == SNAP_OK)
    rc = snap_body_inspect(it->body, it->body_len, NULL, &stages, &kv, NULL);
  /* An envelope body under envelope options is current: its data key is
   * rotated by rewrapping (snap_rewrap()), not by rewriting it. */
  bool current = (stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC)) == want_stage && kv == want_kv;
  if (rc == SNAP_OK && !current)
    current = snap__store_envelope_current(it->pid, it->seq, it->body, it->body_len, o);
  bool auth_current = current, maybe_same = false;
  if (rc == SNAP_OK && (flags & SNAP_REWRITE_RECOMPRESS)) {
    bool codec_ok = false;
    rc = codec_current(it, o, &codec_ok, &maybe_same);
    current = current && codec_ok;
  }
  if (rc == SNAP_OK && !force && current) {
    it->outcome = SNAP_REWRITE_CURRENT;
    it->stages = stages;
    it->key_version = kv;
    snap_options_free(o);
    return SNAP_OK;
  }
  if (rc == SNAP_OK && snap__body_is_head(it->body, it->body_len)) {
    /* A streamed snapshot: rewritten and published on its own, chunk by
     * chunk (stream_rewrite.c), never swapped for an ordinary body. */
    snap_options_free(o);
    return snap__stream_rewrite(st, it, call, "rewrite", NULL, NULL);
  }
  snap_format fmt = SNAP_FORMAT_JSON;
  if (rc == SNAP_OK)
    rc = snap__store_decode(st, it->pid, it->seq, it->body, it->body_len, o, state, &fmt, NULL);
  if (rc == SNAP_OK)
    rc = rewrite_encode(st, it, fmt, state, o, body, &stages);
  snap_options_free(o);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "rewrite pid '%s' seq %" PRId64 ": %s", it->pid, it->seq,
                          snap_error_message());
  it->stages = stages;
  (void)snap_body_inspect(body->data, body->len, NULL, NULL, &it->key_version, NULL);
  snap_compression now = SNAP_COMPRESSION_NONE;
  if (!force && auth_current && maybe_same &&
      snap_body_inspect_codec(body->data, body->len, &now, NULL) == SNAP_OK &&
      now == SNAP_COMPRESSION_NONE) {
    it->outcome = SNAP_REWRITE_CURRENT; /* the encode left it as it was stored */
    return SNAP_OK;
  }
  *swap = true;
  return SNAP_OK;
}

void snap__rewrite_conclude(snap_rewrite *items, const snap_backend_swap *sw,
                            const size_t *index, size_t m, int rc) {
  bool any_marked = false;
  for (size_t j = 0; j < m; j++)
    any_marked |= sw[j].status != SNAP_OK;
  for (size_t j = 0; j < m; j++) {
    snap_rewrite *it = &items[index[j]];
    it->status = (rc != SNAP_OK && !any_marked) ? rc : sw[j].status;
    it->outcome = sw[j].outcome == SNAP_SWAP_DONE      ? SNAP_REWRITE_DONE
                  : sw[j].outcome == SNAP_SWAP_CHANGED ? SNAP_REWRITE_CHANGED
                                                       : SNAP_REWRITE_GONE;
    if (it->status != SNAP_OK || it->outcome != SNAP_REWRITE_DONE) {
      /* Nothing of ours is stored: report the body as it was read. */
      it->stages = 0;
      it->key_version = 0;
    }
  }
}

int snap_store_rewrite(snap_store *st, snap_rewrite *items, size_t n, const snap_options *opts,
                       bool force) {
  return snap_store_rewrite_ex(st, items, n, opts, force ? SNAP_REWRITE_FORCE : 0u);
}

int snap_store_rewrite_ex(snap_store *st, snap_rewrite *items, size_t n, const snap_options *opts,
                          unsigned flags) {
  if (st == NULL || (n > 0 && items == NULL))
    return snap_error_set(SNAP_EINVAL, "rewrite: store or items is NULL");
  if (flags & ~(SNAP_REWRITE_FORCE | SNAP_REWRITE_RECOMPRESS))
    return snap_error_set(SNAP_EINVAL, "rewrite: unknown flags 0x%x", flags);
  void *self;
  const snap_backend *be = snap__store_backend(st, &self);
  if (be->replace == NULL)
    return snap__store_unsupported(be, "conditional replace");
  if (n == 0)
    return SNAP_OK;
  snap_backend_swap stack_swaps[STACK_SWAPS];
  snap_buf stack_bufs[STACK_SWAPS];
  size_t stack_index[STACK_SWAPS];
  snap_backend_swap *sw = stack_swaps;
  snap_buf *bufs = stack_bufs;
  size_t *index = stack_index;
  if (n > STACK_SWAPS) {
    uint8_t *block = snap_calloc(n, sizeof *sw + sizeof *bufs + sizeof *index);
    if (block == NULL) {
      int rc = snap_error_set(SNAP_ENOMEM, "rewrite: out of memory for %zu bodies", n);
      for (size_t i = 0; i < n; i++)
        items[i].status = rc;
      return rc;
    }
    sw = (snap_backend_swap *)block;
    bufs = (snap_buf *)(sw + n);
    index = (size_t *)(bufs + n);
  } else {
    memset(stack_bufs, 0, sizeof stack_bufs);
  }
  snap_buf state = SNAP_BUF_INIT;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    snap_rewrite *it = &items[i];
    it->outcome = SNAP_REWRITE_CURRENT;
    it->stages = 0;
    it->key_version = 0;
    bool swap = false;
    it->status = prepare_one(st, it, opts, flags, &state, &bufs[m], &swap);
    if (it->status != SNAP_OK || !swap)
      continue;
    sw[m] = (snap_backend_swap){it->pid,     it->seq,    it->body,       it->body_len, bufs[m].data,
                                bufs[m].len, it->stages, SNAP_SWAP_DONE, SNAP_OK};
    index[m++] = i;
  }
  snap_buf_dispose(&state);
  if (m > 0)
    snap__rewrite_conclude(items, sw, index, m, be->replace(self, sw, m));
  /* Every slot, not only the m used: a failed encode may have left memory in the next one. */
  for (size_t j = 0; j < n; j++)
    snap_buf_dispose(&bufs[j]);
  if (sw != stack_swaps)
    snap_free(sw);
  int first = SNAP_OK;
  for (size_t i = 0; i < n && first == SNAP_OK; i++)
    first = items[i].status;
  return first;
}

int snap_store_codec_target(snap_store *st, const char *pid, const snap_options *opts,
                            snap_compression *codec, uint32_t *dict_id) {
  if (st == NULL || pid == NULL)
    return snap_error_set(SNAP_EINVAL, "codec target: store or pid is NULL");
  snap_options *o = NULL;
  int rc = snap__store_options(st, pid, opts, &o);
  if (rc == SNAP_OK)
    rc = snap_options_codec_target(o, codec, dict_id);
  snap_options_free(o);
  return rc;
}
