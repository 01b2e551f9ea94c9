/**
 * @file snap/observe.h
 * @brief Observability of a store: an observer callback for every operation
 *        outcome and incident, built-in metrics (counters and latency
 *        histograms) rendered as Prometheus text, and a log callback for the
 *        warnings that must not go unnoticed. docs/OBSERVABILITY.md has the
 *        reasoning and the metric names.
 *
 * Defaults, with nothing configured: metrics on, no observer, warnings to
 * stderr. All three are per store.
 *
 * The layers above the store add figures of their own through named series
 * (snap_store_series_register()); this header names none of them.
 * Changes in 0.x: the executor's `exec_*` fields of snap_metrics, the
 * snap_exec_metric enum and snap_store_metrics_executor() are gone; the
 * executor's figures are read with snap_executor_metrics_get()
 * (snap/executor.h), and are in snap_metrics.series and the Prometheus text
 * under the same `snapstore_executor_*` names as before.
 */
#ifndef SNAP_OBSERVE_H
#define SNAP_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct snap_store snap_store;

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

/**
 * What an event reports. Operation outcomes come first (SNAP_EVENT_SAVE to
 * SNAP_EVENT_PRUNE), then incidents (SNAP_EVENT_CORRUPT_SKIPPED onwards).
 * New kinds are only ever appended.
 */
typedef enum snap_event_kind {
  SNAP_EVENT_SAVE = 1,   /**< one save, alone or in a batch (snap_save*, snap_save_commit) */
  SNAP_EVENT_BATCH = 2,  /**< one snap_save_batch() or snap_save_commit() call; `count` saves */
  SNAP_EVENT_LOAD = 3,   /**< one snap_load*() call; `seq` -1 when nothing matched */
  SNAP_EVENT_DELETE = 4, /**< one snap_delete*() call */
  SNAP_EVENT_PRUNE = 5,  /**< retention removed `count` snapshots of `pid` after a save */
  SNAP_EVENT_CORRUPT_SKIPPED = 6, /**< a load skipped an undecodable body; `detail` says why */
  SNAP_EVENT_OPTION_IGNORED = 7,  /**< requested option groups (`groups`) the backend lacks */
  SNAP_EVENT_OPTION_REFUSED = 8,  /**< a required option the backend lacks failed the call */
  SNAP_EVENT_PRUNE_FAILED = 9,    /**< retention failed for `pid` (the save still succeeded) */
  SNAP_EVENT_BUSY_RETRY = 10,     /**< the backend found its database locked and waits */
  SNAP_EVENT_AUTH_FAILED = 11,    /**< a body failed authentication (SNAP_EAUTH) */
  SNAP_EVENT_KEY_MISSING = 12     /**< a key version was not in the keyring (SNAP_ENOKEY) */
} snap_event_kind;

/** The first incident kind; every kind from here on is an incident. */
#define SNAP_EVENT_FIRST_INCIDENT SNAP_EVENT_CORRUPT_SKIPPED
/** One past the last kind. */
#define SNAP_EVENT_KIND_END 13

/**
 * One event. Every pointer in it is valid during the observer call only.
 * Fields that do not apply to a kind are 0 (pointers NULL, `seq` -1).
 */
typedef struct snap_event {
  snap_event_kind kind;
  int status;           /**< SNAP_OK or the SNAP_E* code of the outcome or incident */
  const char *backend;  /**< the store's backend name */
  const char *pid;      /**< the persistence id, NULL when the event is about no single one */
  int64_t seq;          /**< the sequence number concerned, or -1 */
  uint64_t duration_ns; /**< operations: wall time of the call (monotonic clock) */
  size_t state_bytes;   /**< save: state given; load: state returned */
  size_t body_bytes;    /**< save: body stored; load: body read */
  unsigned stages;      /**< SNAP_STAGE_* bits applied to the body saved or loaded */
  unsigned groups;      /**< SNAP_OPT_* groups ignored (OPTION_IGNORED) */
  uint64_t count; /**< BATCH: saves; PRUNE: snapshots removed; LOAD: bodies skipped; BUSY: wait */
  const char *detail; /**< incidents: a readable reason (never NULL for them) */
} snap_event;

/**
 * An observer. It is called on the thread that made the store call, before
 * that call returns (for requests of an executor: the executor's worker);
 * backend incidents (busy retry, prune failed) are reported from inside the
 * backend, possibly with the backend's locks held. Hence it must be quick,
 * must not block, and must not call any function on the same store (it may
 * deadlock); copy what it needs and hand it to another thread. It may be
 * called from several threads at once.
 */
typedef void (*snap_observer_fn)(void *ud, const snap_event *ev);

/**
 * Installs (fn != NULL) or removes (fn == NULL) the store's observer; `ud` is
 * passed to it. Not concurrent with other calls on the store: install it
 * right after opening, before the store is shared (or an executor started).
 * SNAP_EINVAL for a NULL store.
 */
SNAP_API int snap_store_set_observer(snap_store *st, snap_observer_fn fn, void *ud);

/** The name of an event kind ("save", "corrupt_skipped", ...); "unknown" otherwise. */
SNAP_API const char *snap_event_kind_name(int kind);

/* ------------------------------------------------------------------------ */
/* Warnings                                                                  */
/* ------------------------------------------------------------------------ */

/** Log levels, most severe first. */
typedef enum snap_log_level {
  SNAP_LOG_OFF = 0, /**< as a threshold: log nothing */
  SNAP_LOG_ERROR = 1,
  SNAP_LOG_WARNING = 2,
  SNAP_LOG_INFO = 3
} snap_log_level;

/** A log callback: one complete line, without the newline. Same rules as an observer. */
typedef void (*snap_log_fn)(void *ud, snap_log_level level, const char *message);

/**
 * Sets where the store's warnings go: messages at `threshold` or more severe
 * go to `fn(ud, ...)`, or to stderr when fn is NULL. SNAP_LOG_OFF silences
 * them. The default is stderr at SNAP_LOG_WARNING. The store warns (level
 * SNAP_LOG_WARNING) the first time it ignores a requested encryption option,
 * the first time it ignores a requested integrity option, the first time a
 * load skips a corrupt snapshot, and on every failed prune; the calls
 * themselves still succeed. Not concurrent with other calls on the store.
 * SNAP_EINVAL for a NULL store or a level outside the enum.
 */
SNAP_API int snap_store_set_log(snap_store *st, snap_log_level threshold, snap_log_fn fn, void *ud);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */
/* ------------------------------------------------------------------------ */

/** The measured operations, indexes of snap_metrics arrays. */
typedef enum snap_metrics_op {
  SNAP_OP_SAVE = 0,
  SNAP_OP_BATCH = 1,
  SNAP_OP_LOAD = 2,
  SNAP_OP_DELETE = 3,
  SNAP_OP_PRUNE = 4,
  SNAP_OP_COUNT = 5
} snap_metrics_op;

/** Status slots: index 0 is SNAP_OK, index i is the code -i; the last slot is any other code. */
#define SNAP_METRICS_STATUSES 18

/** Histogram buckets: bucket i < SNAP_METRICS_BUCKETS - 1 counts values <= 2^i (µs for
 *  latencies, saves for batch sizes); the last counts the rest. */
#define SNAP_METRICS_BUCKETS 26

/** A histogram; `buckets` are not cumulative. */
typedef struct snap_histogram {
  uint64_t count;
  uint64_t sum; /**< ns for latencies, saves for batch sizes */
  uint64_t buckets[SNAP_METRICS_BUCKETS];
} snap_histogram;

/** How many series the layers above a store may register on it (snap_store_series_register). */
#define SNAP_METRICS_SERIES_MAX 12
/** The longest series name, NUL included. */
#define SNAP_SERIES_NAME_MAX 64
/** The longest HELP text of a series, NUL included. */
#define SNAP_SERIES_HELP_MAX 256

/** The kind of a registered series; it fixes its Prometheus TYPE and units. */
typedef enum snap_series_type {
  SNAP_SERIES_GAUGE = 1,     /**< a value set or raised (TYPE gauge) */
  SNAP_SERIES_HISTOGRAM = 2, /**< counts such as sizes: buckets <= 2^i, sum of the values */
  SNAP_SERIES_DURATION = 3   /**< nanoseconds: buckets <= 2^i µs; rendered in seconds */
} snap_series_type;

/** A registered series as copied by snap_store_metrics(). */
typedef struct snap_series {
  char name[SNAP_SERIES_NAME_MAX]; /**< the Prometheus family name */
  char help[SNAP_SERIES_HELP_MAX]; /**< its HELP text */
  snap_series_type type;
  int64_t gauge;       /**< SNAP_SERIES_GAUGE: the value */
  snap_histogram hist; /**< SNAP_SERIES_HISTOGRAM, SNAP_SERIES_DURATION: the values */
} snap_series;

/** A copy of a store's metrics (snap_store_metrics()). Counters only grow. */
typedef struct snap_metrics {
  uint64_t ops[SNAP_OP_COUNT][SNAP_METRICS_STATUSES]; /**< operation outcomes by status */
  snap_histogram latency[SNAP_OP_COUNT];              /**< duration of each operation */
  uint64_t state_bytes[SNAP_OP_COUNT]; /**< successful SAVE: state given; LOAD: returned */
  uint64_t body_bytes[SNAP_OP_COUNT];  /**< SAVE: bodies stored; LOAD: bodies read */
  uint64_t pruned;                     /**< snapshots removed by retention */
  uint64_t incidents[SNAP_EVENT_KIND_END - SNAP_EVENT_FIRST_INCIDENT]; /**< by kind - first */
  size_t nseries;                              /**< series registered on the store, in order */
  snap_series series[SNAP_METRICS_SERIES_MAX]; /**< their values (snap_store_series_register) */
  /* Envelope keys (snap/envelope.h); counted whether metrics are on or off. */
  uint64_t keys_created;     /**< data keys created (the first envelope save of a unit) */
  uint64_t key_cache_misses; /**< data key lookups the cache could not answer */
  uint64_t keys_unwrapped;   /**< data keys read from the key table and unwrapped */
  uint64_t units_forgotten;  /**< units whose key snap_forget() turned into a tombstone */
  uint64_t keys_rewrapped;   /**< data keys snap_rewrap() rewrapped */
} snap_metrics;

/**
 * Turns the store's built-in metrics on or off (on by default). Turning them
 * off keeps the counts so far. Not concurrent with other calls on the store.
 * SNAP_EINVAL for a NULL store.
 */
SNAP_API int snap_store_set_metrics(snap_store *st, int enabled);

/**
 * Copies the store's metrics into `*out` (zeros when metrics were never on).
 * Thread-safe, lock-free: each counter is exact once the calls it counts have
 * returned, but counters of calls still running may be caught half-way.
 * SNAP_EINVAL for a NULL argument.
 */
SNAP_API int snap_store_metrics(const snap_store *st, snap_metrics *out);

/** The status code counted in slot `i` of snap_metrics.ops (SNAP_OK for 0). */
SNAP_API int snap_metrics_status_code(int i);

/**
 * Estimates the `q` quantile (0..1) of a histogram by linear interpolation
 * inside the bucket that holds it, in the buckets' unit: microseconds for the
 * latency histograms, saves for batch sizes. 0 for an empty histogram; a
 * quantile in the last (unbounded) bucket gives that bucket's lower bound.
 */
SNAP_API double snap_histogram_quantile(const snap_histogram *h, double q);

/**
 * Registers a named series on the store, for a layer above it to feed (the
 * plugin layer's executor registers its `snapstore_executor_*` series when
 * it starts), and gives its handle in `*id`. The series then appears in
 * snap_metrics.series and in the Prometheus text after the built-in
 * families, in registration order, with `help` as its HELP line. Registering
 * a name again with the same type gives the same handle (so two executors
 * over one store share their series). Registration takes a lock; the
 * updates below are lock-free and cost one or two relaxed atomics each.
 * `name` must match [a-zA-Z_:][a-zA-Z0-9_:]* and be shorter than
 * SNAP_SERIES_NAME_MAX, not one of the built-in families; `help` shorter
 * than SNAP_SERIES_HELP_MAX, without newline or backslash. SNAP_EINVAL for a
 * NULL or invalid argument or a name registered with another type, SNAP_EFULL
 * when SNAP_METRICS_SERIES_MAX series are registered already.
 */
SNAP_API int snap_store_series_register(snap_store *st, const char *name, const char *help,
                                        snap_series_type type, int *id);

/**
 * Sets the gauge `id` to `value`. Lock-free, thread-safe; does nothing while
 * metrics are off. SNAP_EINVAL for a NULL store or an id that is not a gauge.
 */
SNAP_API int snap_store_gauge_set(snap_store *st, int id, int64_t value);

/**
 * Raises the gauge `id` to `value` if it is lower (a high-water mark).
 * Same rules as snap_store_gauge_set().
 */
SNAP_API int snap_store_gauge_raise(snap_store *st, int id, int64_t value);

/**
 * Adds one value to the histogram `id`: nanoseconds for a
 * SNAP_SERIES_DURATION, a count for a SNAP_SERIES_HISTOGRAM. Lock-free,
 * thread-safe; does nothing while metrics are off. SNAP_EINVAL for a NULL
 * store or an id that is not a histogram.
 */
SNAP_API int snap_store_histogram_observe(snap_store *st, int id, uint64_t value);

/**
 * Finds the series `name` in a copy of metrics: `*out` points into `m`.
 * SNAP_EINVAL for a NULL argument, SNAP_ENOTFOUND when no such series was
 * registered.
 */
SNAP_API int snap_metrics_series(const snap_metrics *m, const char *name, const snap_series **out);

/**
 * Renders metrics in the Prometheus text exposition format (version 0.0.4):
 * `snapstore_operations_total{op,status}`, `snapstore_operation_duration_seconds`
 * (histogram by op), `snapstore_state_bytes_total{op}`, `snapstore_body_bytes_total{op}`,
 * `snapstore_pruned_snapshots_total`, `snapstore_incidents_total{kind}`,
 * `snapstore_envelope_keys_total{event}` and
 * `snapstore_envelope_key_cache_misses_total`, then
 * every registered series (snap_store_series_register(); the executor's
 * `snapstore_executor_*`): docs/OBSERVABILITY.md lists them all.
 * `labels` (may be NULL or "") is added to every sample, e.g. `store="orders"`;
 * it must be a comma-separated list of name="value" with a valid name and no
 * raw quote, backslash or newline inside values (SNAP_EINVAL otherwise).
 * `*text` receives a NUL-terminated string (free it with snap_free()) and
 * `*len` (may be NULL) its length. SNAP_EINVAL, SNAP_ENOMEM.
 */
SNAP_API int snap_metrics_prometheus(const snap_metrics *m, const char *labels, char **text,
                                     size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_OBSERVE_H */
