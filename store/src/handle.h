/* The store handle, shared by the store core's files: opening and closing
 * (store.c), option resolution (resolve.c), saves (save.c), loads (load.c)
 * and deletes (delete.c). Internal to the store layer: never installed. */
#ifndef SNAP_STORE_HANDLE_H
#define SNAP_STORE_HANDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "observe_internal.h"
#include "snap/store.h"
#include "snap/sys/backend.h"
#include "store_internal.h"

/* Encoding buffers kept for reuse (save.c). */
#define SNAP__POOL_SLOTS 8

struct snap__cached_opts;

/* Envelope keys of a store (envelope.c). */
typedef struct snap__envelope {
  bool by_prefix;
  char separator[9];
  size_t cache_size;
  bool lock_init;
  pthread_mutex_t lock;   /* guards the cache's creation */
  snap__dek_cache *cache; /* created on first use */
  snap_backend ks_be;     /* the key store's backend, when separate */
  void *ks_self;          /* NULL: the key table is the store's backend's */
  atomic_uint_fast64_t created, unwrapped, forgotten, rewrapped;
} snap__envelope;

/* A shred unit: `len` bytes at `name`, NUL-terminated. */
typedef struct snap__unit {
  const char *name;
  size_t len;
} snap__unit;

/* The dictionaries a store has loaded (dicts.c): immutable, kept for its
 * lifetime. */
typedef struct snap__dicts {
  pthread_mutex_t lock;
  bool lock_init;
  struct {
    snap_dict *d;
    char *name;
  } *v;
  size_t n, cap;
} snap__dicts;

struct snap_store {
  snap_backend be; /* our own copy of the table */
  void *self;
  snap__host host; /* the backend's snap_host, and where its reports go */
  snap__obs obs;
  snap__retention retention;
  bool retention_init;
  unsigned max_load_attempts;

  /* Guarded by `lock`: written only by set_default_options / set_resolver. */
  pthread_rwlock_t lock;
  snap_options *config_opts; /* from the configuration keys */
  snap_options *defaults;    /* snap_store_set_default_options() copy, or NULL */
  snap_options *effective; /* defaults over config, restricted: used when no other layer applies */
  unsigned effective_dropped;
  snap_options_resolver resolver;
  void *resolver_ud;

  /* The last caller's options resolved over the store's layers (when no
   * resolver applies): a steady stream of calls with the same options object
   * resolves it once. Entries are shared by reference count; `cache_lock`
   * guards the slot and the counts. */
  pthread_mutex_t cache_lock;
  const snap_options *cache_key;
  uint64_t cache_gen;
  struct snap__cached_opts *cache;

  pthread_mutex_t pool_lock;
  snap_buf pool[SNAP__POOL_SLOTS];
  size_t pool_n;

  snap__envelope env;

  /* Upcasters (upcast.c), appended under the write lock of `lock`. */
  struct snap__upcaster *upcasters;
  size_t nupcasters;
  snap__dicts dicts;
};

/* ---- upcast.c ---- */

/* Frees the store's upcasters (snap_store_close()). */
void snap__upcasters_free(snap_store *st);

/* Runs the registered upcasters from manifest `stored` to `target` on
 * `state` (replaced by the last step's output, `*fmt` its format); messages
 * start with "<verb> pid '<pid>' seq <seq>". Errors as for snap_load_as(). */
int snap__upcast_chain(snap_store *st, const char *verb, const char *pid, int64_t seq,
                       const char *stored, const char *target, snap_buf *state, snap_format *fmt);

/* Whether the registered steps lead from `from` to `target` (a different
 * manifest) in at most the chain's step bound. */
bool snap__upcast_reaches(snap_store *st, const char *from, const char *target);

/* ---- resolve.c ---- */

/* Recomputes the options used when neither the call nor the resolver gives
 * any. Called with the write lock held (or before the store is shared). */
int snap__store_refresh_effective(snap_store *st);

/* Empties the resolution cache: the layers below the caller's changed. */
void snap__store_cache_clear(snap_store *st);

/* A resolution in use: either nothing to release (the store's effective
 * options), a fresh object (`owned`) or a reference to the cache (`held`). */
typedef struct snap__resolution {
  snap_options *owned;
  struct snap__cached_opts *held;
} snap__resolution;

/* `*use` receives the options to encode or decode `pid` with, valid until
 * snap__resolution_done(st, res): the store's shared effective options, a
 * cached resolution of the caller's options, or a fresh one. The caller
 * holds the read lock. */
int snap__store_resolve(snap_store *st, const char *pid, const snap_options *call,
                        snap__resolution *res, const snap_options **use, unsigned *ignored);
void snap__resolution_done(snap_store *st, snap__resolution *r);

/* ---- envelope.c ---- */

/* The most generations one unit's key record holds (keyset.c). */
#define SNAP__KEYSET_MAX 4u
#define SNAP__KEYSET_BYTES (SNAP__KEYSET_MAX * SNAP_WRAPPED_KEY_BYTES)

int snap__envelope_init(snap__envelope *ev, const snap__envelope_config *ec);
void snap__envelope_dispose(snap__envelope *ev);
/* The length of the shred unit of `pid` (a prefix of it). */
size_t snap__envelope_unit(const snap__envelope *ev, const char *pid);
/* The key table in use (the key store's or the backend's); SNAP_EUNSUPPORTED
 * when it has no key slots. */
int snap__envelope_keys(snap_store *st, const snap_backend **be, void **self);
/* The data key a save of unit `u` seals with (created when the unit has
 * none), and its generation. `dek` is the caller's to wipe. */
int snap__envelope_save_key(snap_store *st, const snap__unit *u, snap_keyring *kr,
                            const char *ctx, uint8_t dek[SNAP_DEK_BYTES], uint32_t *gen);
/* The data key of generation `gen` of unit `u`, for a load; SNAP_ENOKEY
 * saying the unit was forgotten when it was. */
int snap__envelope_load_key(snap_store *st, const snap__unit *u, uint32_t gen, snap_keyring *kr,
                            const char *ctx, uint8_t dek[SNAP_DEK_BYTES]);
/* The data key an envelope body's reference `ref` names (its unit and
 * generation), as snap__envelope_load_key(). */
int snap__envelope_ref_key(snap_store *st, const snap__envelope_ref *ref, snap_keyring *kr,
                           const char *ctx, uint8_t dek[SNAP_DEK_BYTES]);
/* Wipes the unit's cached key. */
void snap__envelope_drop(snap_store *st, const snap__unit *u);
/* A unit's key record as read from the key table. */
typedef struct snap__key_row {
  int found;
  bool live;
  uint32_t gen, mv;
  size_t len; /* of the key set as stored (only up to the largest set is kept) */
  uint8_t wrapped[SNAP__KEYSET_BYTES];
} snap__key_row;
/* Reads the record of `unit` (r->found 0: none). */
int snap__key_row_read(const snap_backend *kbe, void *ks, const char *unit, snap__key_row *r);
/* The encryption keyring and context the store writes with, resolved from
 * `opts` and the store's defaults (`*res` is the caller's to free);
 * SNAP_EINVAL naming `verb` when there is none. */
int snap__envelope_keyring(snap_store *st, const char *verb, const snap_options *opts,
                           snap_options **res, snap_keyring **kr, const char **ctx);
/* Calls `fn` for every pid of unit `u` that has snapshots (for a prefix
 * unit, listed page by page; the pid may be deleted by `fn`). */
typedef int (*snap__unit_pid_fn)(snap_store *st, const char *pid, void *ud);
int snap__envelope_unit_pids(snap_store *st, const snap__unit *u, snap__unit_pid_fn fn, void *ud);

/* ---- keyset.c: a unit's key set (docs/FORMAT.md "Key sets") ---- */

/* Checks a stored set against its row's generation and master key version:
 * whole records, the first of generation `gen`, the others older in
 * descending order, all under `mv`. `*n` receives the number of records. */
int snap__keyset_check(const char *unit, const uint8_t *set, size_t len, uint32_t gen,
                       uint32_t mv, size_t *n);
/* The record of generation `gen` in a checked set of `n` records, or NULL. */
const uint8_t *snap__keyset_find(const uint8_t *set, size_t n, uint32_t gen);

/* ---- dicts.c, dicts_admin.c ---- */

/* The pid a dictionary's bytes are sealed under (its id is the seq). */
#define SNAP__DICT_PID "snapstore/dictionary"
int snap__dicts_init(snap__dicts *c);
void snap__dicts_dispose(snap__dicts *c);
void snap__dicts_forget(snap__dicts *c, uint32_t id);
/* Sets the store's dictionary source on its configuration layer (created
 * when the configuration set no option). */
int snap__dicts_attach(snap_store *st, snap_options **config_opts);
/* SNAP_EUNSUPPORTED unless the backend has the dict_* slots. */
int snap__dicts_need_slots(const snap_store *st);
/* The options a dictionary is sealed and opened with. */
int snap__dicts_seal_options(snap_store *st, snap_options **out);

/* ---- stream_load.c ---- */

/* Reads the streamed snapshot (pid, seq) whose head is `head` into `out`,
 * when its state fits the limit of `o` (SNAP_ETOOBIG naming the stream
 * reader otherwise); every chunk authenticated before it returns. */
int snap__stream_load_whole(snap_store *st, const char *pid, int64_t seq, const void *head,
                            size_t len, const snap_options *o, snap_buf *out, snap_format *fmt,
                            unsigned *stages);

/* ---- stream_save.c, for stream_rewrite.c ---- */

/* Ends `w`'s state without publishing it: the head into `head`, its stages,
 * and the backend's staging handed to the caller, who publishes it in place
 * of a row (stream_replace()) or aborts it. Frees `w` whatever the outcome;
 * on failure `*staging` is NULL and nothing is left staged. */
struct snap_save_stream;
int snap__save_stream_finish(struct snap_save_stream *w, snap_buf *head, unsigned *stages,
                             snap_backend_stream **staging);

/* ---- stream_rewrite.c ---- */

/* Re-encodes the streamed snapshot of `it` (its body is the head) chunk by
 * chunk with the options resolved from `call`, and publishes it in place of
 * the row only if the row still holds that head (a live writer wins): sets
 * it->outcome, stages and key_version. With `target` (a migration), the state
 * is decoded whole within the reader's limit, upcast from `stored` and the
 * new head states `target`; otherwise it states what the old one stated.
 * Messages start with `verb`. */
int snap__stream_rewrite(snap_store *st, struct snap_rewrite *it, const snap_options *call,
                         const char *verb, const char *stored, const char *target);

/* ---- load.c ---- */

/* Whether no row can match `c`. */
bool snap__criteria_empty(const snap_criteria *c);

#endif /* SNAP_STORE_HANDLE_H */
