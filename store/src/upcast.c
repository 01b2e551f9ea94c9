/* Upcasters: registered steps from one manifest to the next, run on load
 * (snap_load_as()) until the state has the reader's target manifest. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"

/* The longest chain followed: a longer one is a loop or a mistake. */
#define MAX_STEPS 64

typedef struct snap__upcaster {
  char from[SNAP_MANIFEST_MAX + 1];
  char to[SNAP_MANIFEST_MAX + 1];
  snap_upcaster_fn fn;
  void *ud;
} snap__upcaster;

void snap__upcasters_free(snap_store *st) {
  snap_free(st->upcasters);
  st->upcasters = NULL;
  st->nupcasters = 0;
}

/* The upcaster from `from`, copied (NULL: none). Read lock held by the caller. */
static const snap__upcaster *find(const snap_store *st, const char *from) {
  for (size_t i = 0; i < st->nupcasters; i++)
    if (strcmp(st->upcasters[i].from, from) == 0)
      return &st->upcasters[i];
  return NULL;
}

int snap_store_add_upcaster(snap_store *st, const char *from, const char *to, snap_upcaster_fn fn,
                            void *ud) {
  if (st == NULL || fn == NULL)
    return snap_error_set(SNAP_EINVAL, "add_upcaster: store or function is NULL");
  int rc = snap_manifest_check(from);
  if (rc == SNAP_OK)
    rc = snap_manifest_check(to);
  if (rc != SNAP_OK)
    return snap_error_set(rc, "add_upcaster: %s", snap_error_message());
  if (strcmp(from, to) == 0)
    return snap_error_set(SNAP_EINVAL, "add_upcaster: '%s' to itself", from);
  pthread_rwlock_wrlock(&st->lock);
  const snap__upcaster *old = find(st, from);
  if (old != NULL) {
    rc = snap_error_set(SNAP_EINVAL,
                        "add_upcaster: '%s' already has an upcaster (to '%s'); one step leaves "
                        "each manifest",
                        from, old->to);
  } else {
    snap__upcaster *u = snap_realloc(st->upcasters, (st->nupcasters + 1) * sizeof *u);
    if (u == NULL) {
      rc = snap_error_set(SNAP_ENOMEM, "add_upcaster: out of memory");
    } else {
      st->upcasters = u;
      u += st->nupcasters++;
      snprintf(u->from, sizeof u->from, "%s", from);
      snprintf(u->to, sizeof u->to, "%s", to);
      u->fn = fn;
      u->ud = ud;
    }
  }
  pthread_rwlock_unlock(&st->lock);
  return rc;
}

/* One step on `state` (replaced by the step's output). */
static int run_step(const snap__upcaster *u, const char *verb, const char *pid, int64_t seq,
                    snap_buf *state, snap_format *fmt) {
  snap_buf out = SNAP_BUF_INIT;
  snap_format out_fmt = *fmt;
  snap_error_clear();
  int rc = u->fn(u->ud, u->from, u->to, *fmt, state->data, state->len, &out, &out_fmt);
  if (rc != SNAP_OK) {
    char why[320];
    snprintf(why, sizeof why, "%s", snap_error_message()[0] ? snap_error_message() : "no message");
    snap_buf_dispose(&out);
    return snap_error_set(rc < 0 ? rc : SNAP_EINVAL,
                          "%s pid '%s' seq %" PRId64 ": upcaster '%s' -> '%s' failed: %s", verb,
                          pid, seq, u->from, u->to, why);
  }
  rc = out_fmt == SNAP_FORMAT_JSON || out_fmt == SNAP_FORMAT_MSGPACK
           ? snap_payload_validate(out_fmt, out.data, out.len)
           : SNAP_EFORMAT;
  if (rc != SNAP_OK || out.len == 0) {
    char why[320];
    snprintf(why, sizeof why, "%s", out.len == 0 ? "it is empty" : snap_error_message());
    snap_buf_dispose(&out);
    return snap_error_set(SNAP_EFORMAT,
                          "%s pid '%s' seq %" PRId64 ": upcaster '%s' -> '%s' returned a state "
                          "that is not valid %s: %s",
                          verb, pid, seq, u->from, u->to,
                          out_fmt == SNAP_FORMAT_MSGPACK ? "msgpack" : "JSON", why);
  }
  snap_buf_dispose(state);
  *state = out;
  *fmt = out_fmt;
  return SNAP_OK;
}

/* The upcaster from `at`, copied into `*u`; false when there is none. */
static bool step_from(snap_store *st, const char *at, snap__upcaster *u) {
  pthread_rwlock_rdlock(&st->lock);
  const snap__upcaster *found = find(st, at);
  if (found != NULL)
    *u = *found;
  pthread_rwlock_unlock(&st->lock);
  return found != NULL;
}

int snap__upcast_chain(snap_store *st, const char *verb, const char *pid, int64_t seq,
                       const char *stored, const char *target, snap_buf *state, snap_format *fmt) {
  char at[SNAP_MANIFEST_MAX + 1];
  snprintf(at, sizeof at, "%s", stored);
  for (int n = 0; strcmp(at, target) != 0; n++) {
    if (n == MAX_STEPS)
      return snap_error_set(SNAP_EINVAL,
                            "%s pid '%s' seq %" PRId64 ": no way from '%s' to '%s' in %d "
                            "upcaster steps (a loop?)",
                            verb, pid, seq, stored, target, MAX_STEPS);
    snap__upcaster u;
    if (!step_from(st, at, &u))
      return snap_error_set(SNAP_ENOTFOUND,
                            "%s pid '%s' seq %" PRId64 ": no upcaster from '%s' (the step "
                            "after '%s' on the way from '%s' to '%s')",
                            verb, pid, seq, at, n ? at : stored, stored, target);
    int rc = run_step(&u, verb, pid, seq, state, fmt);
    if (rc != SNAP_OK)
      return rc;
    snprintf(at, sizeof at, "%s", u.to);
  }
  return SNAP_OK;
}

bool snap__upcast_reaches(snap_store *st, const char *from, const char *target) {
  char at[SNAP_MANIFEST_MAX + 1];
  snprintf(at, sizeof at, "%s", from);
  for (int n = 0; n < MAX_STEPS; n++) {
    snap__upcaster u;
    if (!step_from(st, at, &u))
      return false;
    if (strcmp(u.to, target) == 0)
      return true;
    snprintf(at, sizeof at, "%s", u.to);
  }
  return false;
}

/* The snapshot `s` with its state `state` and `manifest` = target: a new
 * allocation (the pid, manifests and metadata live after the struct). */
static int rebuild(snap_snapshot **s, snap_buf *state, snap_format fmt, const char *target) {
  snap_snapshot *o = *s;
  size_t pl = strlen(o->pid) + 1, sl = strlen(o->stored_manifest) + 1, tl = strlen(target) + 1;
  snap_snapshot *n = snap_malloc(sizeof *n + pl + sl + tl + o->metadata_len);
  if (n == NULL || snap_buf_reserve(state, state->len + 1) != SNAP_OK) {
    snap_free(n);
    return snap_error_set(SNAP_ENOMEM, "load pid '%s': out of memory", o->pid);
  }
  *n = *o;
  char *tail = (char *)(n + 1);
  n->pid = memcpy(tail, o->pid, pl);
  n->stored_manifest = memcpy(tail + pl, o->stored_manifest, sl);
  n->manifest = memcpy(tail + pl + sl, target, tl);
  n->metadata = o->metadata_len ? memcpy(tail + pl + sl + tl, o->metadata, o->metadata_len) : NULL;
  state->data[state->len] = 0;
  n->format = fmt;
  n->data = snap_buf_detach(state, &n->len);
  snap_snapshot_free(o);
  *s = n;
  return SNAP_OK;
}

int snap_load_as(snap_store *st, const char *pid, const snap_criteria *c, const char *target,
                 const snap_options *opts, snap_snapshot **out) {
  if (target != NULL && snap_manifest_check(target) != SNAP_OK) {
    if (out != NULL)
      *out = NULL;
    return snap_error_set(SNAP_EINVAL, "load_as: target %s", snap_error_message());
  }
  int rc = snap_load(st, pid, c, opts, out);
  if (rc != SNAP_OK || *out == NULL || target == NULL)
    return rc;
  snap_snapshot *s = *out;
  if (s->manifest != NULL && strcmp(s->manifest, target) == 0)
    return SNAP_OK;
  if (s->manifest == NULL)
    rc = snap_error_set(SNAP_ENOTFOUND,
                        "load pid '%s' seq %" PRId64 ": the snapshot states no manifest, so no "
                        "upcaster leads from it to '%s'",
                        pid, s->seq, target);
  snap_buf state = SNAP_BUF_INIT;
  snap_format fmt = s->format;
  if (rc == SNAP_OK)
    rc = snap_buf_set(&state, s->data, s->len);
  if (rc == SNAP_OK)
    rc = snap__upcast_chain(st, "load", pid, s->seq, s->stored_manifest, target, &state, &fmt);
  if (rc == SNAP_OK)
    rc = rebuild(out, &state, fmt, target);
  snap_buf_dispose(&state);
  if (rc != SNAP_OK) {
    snap_snapshot_free(*out);
    *out = NULL;
  }
  return rc;
}
