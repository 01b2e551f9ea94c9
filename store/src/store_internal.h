/* Internal declarations shared by the store layer's source files (never installed). */
#ifndef SNAP_STORE_INTERNAL_H
#define SNAP_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/sys/backend.h"
#include "snap/pipeline_layer.h"
#include "snap/store_layer.h"

/* A configuration text lent to a backend of ABI version 1 or 2 (whose open()
 * takes JSON text): while it is lent, the host's conf_open() of exactly that
 * text names keys by `prefix`, their path in the caller's document. Lives on
 * the lender's stack from snap__conf_lend() to snap__conf_return()
 * (conf_host.c). */
typedef struct snap__conf_loan {
  const char *text;
  const char *prefix;
  struct snap__conf_loan *next;
} snap__conf_loan;

void snap__conf_lend(snap__conf_loan *loan, const char *text, const char *prefix);
void snap__conf_return(snap__conf_loan *loan);

/* The host services of the reader, filled into a snap_host (conf_host.c). */
void snap__conf_host_fill(snap_host *h);

/* Longest nesting of a msgpack value converted to JSON: deeper input is refused
 * rather than recursing without bound. */
#define SNAP__MSGPACK_MAX_DEPTH 512

/* Converts a msgpack state to a cJSON tree (snapshot_json.c). */
int snap__msgpack_to_json(const uint8_t *data, size_t len, struct cJSON **out);

/* The store's copy of its backend table; `*self` receives the instance. */
const snap_backend *snap__store_backend(const snap_store *st, void **self);

/** The online copy of one backend instance (`what`: "its data", "a key
 *  store") to the new file `path` (enumerate.c). SNAP_EUNSUPPORTED without a
 *  backup slot, SNAP_EINVAL when `path` exists, else the backend's status. */
int snap__store_backup_to(const snap_backend *be, void *self, const char *path, const char *what);

/* Resolves the options a save or load of `pid` with `call` would use, already
 * restricted to the backend's capabilities, into `*out` (a copy the caller
 * frees). Errors as for a save's resolution (SNAP_EUNSUPPORTED, SNAP_ENOMEM). */
int snap__store_options(snap_store *st, const char *pid, const snap_options *call,
                        snap_options **out);

/* The store's body codec (codec.c): the pipeline's, with envelope bodies
 * sealed and opened with their unit's data key (pid checked by the caller). */
int snap__store_encode(snap_store *st, const char *pid, int64_t seq, snap_format fmt,
                       const void *state, size_t len, const snap_options *o,
                       const snap__typing *t, snap_buf *body, unsigned *stages);
int snap__store_decode(snap_store *st, const char *pid, int64_t seq, const void *body,
                       size_t body_len, const snap_options *o, snap_buf *out, snap_format *fmt,
                       unsigned *stages);
/* Whether `o` is in envelope mode and the body already an envelope body. */
bool snap__store_envelope_current(const char *pid, int64_t seq, const void *body, size_t len,
                                  const snap_options *o);

/* The pid, seq and body of an item of snap_store_rewrite() or
 * snap_store_migrate() (rewrite.c): SNAP_EINVAL naming them, messages
 * starting with `verb`. */
struct snap_rewrite;
int snap__rewrite_item_check(const struct snap_rewrite *it, const char *verb);
/* The backend's outcomes of swaps sw[0..m), whose items are items[index[j]],
 * back on the items; `rc` is the backend call's status (rewrite.c, migrate.c). */
struct snap_backend_swap;
void snap__rewrite_conclude(struct snap_rewrite *items, const struct snap_backend_swap *sw,
                            const size_t *index, size_t m, int rc);

/* Whether `body` is the head of a streamed snapshot (frame field 6,
 * stream_load.c): its state is in chunk records beside the row, so a path
 * that moves bodies must move the chunks too or refuse it. */
bool snap__body_is_head(const void *body, size_t len);

/* The refusal of `verb` for the streamed snapshot (pid, seq): SNAP_EUNSUPPORTED
 * saying what is left as it is. */
int snap__stream_refused(const char *verb, const char *pid, int64_t seq, const char *why);

/* Fails with SNAP_EUNSUPPORTED: `be` lacks the optional operation `what`. */
int snap__store_unsupported(const snap_backend *be, const char *what);

/* Snapshots kept per pid when neither the configuration nor the data set says. */
#define SNAP__KEEP_DEFAULT 3u

/* Default size of the cache of unwrapped data keys: a recovery storm of
 * 100,000 actors (each its own unit) fits, in a 4 MiB guarded slab. */
#define SNAP__DEK_CACHE_DEFAULT 131072u

/* "envelope" of a store configuration (docs/STORE.md, "Envelope keys"). */
typedef struct snap__envelope_config {
  bool by_prefix;     /* "unit": "prefix" */
  char separator[9];  /* with by_prefix */
  size_t cache_size;  /* "cache_size" */
  bool has_keystore;  /* "keystore": the key table in another database */
  snap_conf keystore; /* its section, valid while the document is */
} snap__envelope_config;

int snap__envelope_config_read(snap__envelope_config *ec, snap_conf *c);

/* The store's own configuration keys, read from a store configuration. */
typedef struct snap__store_config {
  uint32_t keep;
  bool keep_set;    /* the document says "keep" */
  bool keep_change; /* "keep_change": true: the data set's retention becomes "keep" */
  unsigned max_load_attempts;
  snap_options *opts; /* from the option keys, or NULL */
  snap__envelope_config envelope;
} snap__store_config;

/* Reads the store's keys from `section` (the rest are the backend's).
 * SNAP_ECONFIG naming the key's full path, SNAP_ENOMEM. On success dispose
 * of `cfg` after use. */
int snap__store_config_read(snap__store_config *cfg, snap_conf *section);
void snap__store_config_dispose(snap__store_config *cfg);

/* The retention a store's puts use, agreed with the data set (retention.c). */
typedef struct snap__retention {
  pthread_mutex_t lock;
  atomic_bool settled; /* agreed with the data set: `keep` no longer changes */
  uint32_t keep;
  bool keep_set, keep_change;
  char prefix[64]; /* the key path of the store configuration, for messages */
} snap__retention;

int snap__retention_init(snap__retention *r, const snap__store_config *cfg, const char *prefix);
void snap__retention_dispose(snap__retention *r);

/* The `keep` for a put: on first use stores the opener's value with the data
 * set or adopts the stored one (SNAP_ECONFIG naming both values when they
 * differ and the opener did not ask to change it). */
int snap__retention_keep(snap__retention *r, const snap_backend *be, void *self, uint32_t *keep);

/* The same agreement, read only (for snap_store_check()). */
int snap__retention_check(snap__retention *r, const snap_backend *be, void *self);

/* The store's retention. */
snap__retention *snap__store_retention(snap_store *st);

/* Fails (SNAP_EUNSUPPORTED) when the store's default and configured options
 * require a group the backend cannot honour. */
int snap__store_defaults_check(snap_store *st);

#endif /* SNAP_STORE_INTERNAL_H */
