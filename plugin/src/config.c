/* The configuration document: one JSON object gives a store, its default
 * options and an executor (reference: docs/PLUGIN.md). It is read with the
 * store layer's strict reader (store/layer/snap/store_layer.h), the same one that
 * reads the store's and the backends' keys. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "snap/store_layer.h"
#include "plugin_internal.h"
#include "snap/plugin.h"

struct snap_plugin {
  snap_store *store;
  snap_executor *executor;
  snap_options *options;
  /* From key files, for encryption [0] and integrity [1]; the caller's
   * keyring is only borrowed. */
  snap_keyring *own_keyring[2];
  /* "upcasters": its library stays loaded until the store is closed. */
  snap__upcasters upcasters;
};

/* Sizes in bytes: what a size_t holds, and a JSON integer can say. */
#define SIZE_LIMIT ((int64_t)(SIZE_MAX > INT64_MAX ? INT64_MAX : SIZE_MAX))

/* Most keys a document may name in options.encryption.keys (or integrity's). */
#define MAX_KEYS 64

/* The flags snap_plugin_open_ex() knows. */
#define SNAP_PLUGIN_FLAGS_KNOWN                                                                    \
  (SNAP_PLUGIN_NO_EXECUTOR | SNAP_PLUGIN_NO_CREATE | SNAP_PLUGIN_NO_CHECK)

/* A key file named by the document, read once the whole document is known
 * to be valid (so a bad document reads no key material at all). */
typedef struct key_spec {
  uint32_t version;
  const char *file;               /* in the document */
  char path[SNAP__CONF_PATH_MAX]; /* where the document names it, for messages */
} key_spec;

/* options.encryption or options.integrity: the same shape, a context and
 * the key files (or the caller's keyring). */
typedef struct keyed_spec {
  const char *group; /* "encryption" or "integrity" */
  bool present;      /* an object */
  bool off;          /* false */
  const char *context;
  key_spec keys[MAX_KEYS];
  size_t nkeys;
  uint32_t active; /* 0: not said */
  char active_path[SNAP__CONF_PATH_MAX];
  int mode; /* encryption only: -1 not said, else a snap_key_mode */
} keyed_spec;

static int read_required(snap_conf *opts, unsigned *out) {
  static const char *const groups[] = {"compression", "encryption", "integrity"};
  static const unsigned bits[] = {SNAP_OPT_COMPRESSION, SNAP_OPT_ENCRYPTION, SNAP_OPT_INTEGRITY};
  const char *const *names;
  size_t n;
  int rc = snap__conf_strs(opts, "required", 0, &names, &n);
  if (rc <= 0)
    return rc;
  unsigned acc = 0;
  for (size_t i = 0; i < n; i++) {
    size_t g = 0;
    while (g < 3 && strcmp(names[i], groups[g]) != 0)
      g++;
    char item[32];
    snprintf(item, sizeof item, "required[%zu]", i);
    if (g == 3)
      return snap__conf_error(opts, item, "'%s' is not one of compression, encryption, integrity",
                              names[i]);
    acc |= bits[g];
  }
  *out = acc;
  return 1;
}

/* The single-key form {"key_file", "key_version"} is the keys list with one
 * entry; the two forms together would be ambiguous and are refused. */
static int read_keys(snap_conf *enc, keyed_spec *es) {
  const char *file = NULL;
  int64_t version = 1, active = 0;
  int has_file = snap__conf_str(enc, "key_file", SNAP_CONF_NONEMPTY, &file);
  int has_version = snap__conf_int(enc, "key_version", 0, 1, UINT32_MAX, &version);
  size_t n = 0;
  int has_keys = snap__conf_arr(enc, "keys", 0, &n);
  int has_active = snap__conf_int(enc, "active", 0, 1, UINT32_MAX, &active);
  if (has_file < 0 || has_version < 0 || has_keys < 0 || has_active < 0)
    return snap__conf_done(enc);
  if (has_keys > 0 && (has_file > 0 || has_version > 0))
    return snap__conf_error(enc, has_file > 0 ? "key_file" : "key_version",
                            "give either \"keys\" (with \"active\") or the single-key "
                            "\"key_file\"/\"key_version\", not both");
  if (has_active > 0 && has_keys == 0 && has_file > 0)
    return snap__conf_error(enc, "active",
                            "only meaningful with \"keys\" (the single-key form "
                            "names its version with \"key_version\")");
  if (has_file > 0) {
    es->keys[0].version = (uint32_t)version;
    es->keys[0].file = file;
    snap__conf_join(es->keys[0].path, sizeof es->keys[0].path, enc->path, "key_file");
    es->nkeys = 1;
    es->active = (uint32_t)version;
    snap__conf_join(es->active_path, sizeof es->active_path, enc->path, "key_version");
    return SNAP_OK;
  }
  if (has_version > 0) {
    /* With a caller's keyring: the version its active key must have. */
    es->active = (uint32_t)version;
    snap__conf_join(es->active_path, sizeof es->active_path, enc->path, "key_version");
  }
  if (has_active > 0) {
    es->active = (uint32_t)active;
    snap__conf_join(es->active_path, sizeof es->active_path, enc->path, "active");
  }
  if (has_keys == 0)
    return SNAP_OK;
  if (n == 0)
    return snap__conf_error(enc, "keys", "must name at least one key");
  if (n > MAX_KEYS)
    return snap__conf_error(enc, "keys", "names %zu keys; at most %d are allowed", n, MAX_KEYS);
  for (size_t i = 0; i < n; i++) {
    snap_conf k;
    int64_t v = 0;
    const char *f = NULL;
    if (snap__conf_item(enc, "keys", i, &k) < 0 ||
        snap__conf_int(&k, "version", SNAP_CONF_REQUIRED, 1, UINT32_MAX, &v) < 0 ||
        snap__conf_str(&k, "file", SNAP_CONF_REQUIRED | SNAP_CONF_NONEMPTY, &f) < 0)
      return snap__conf_done(enc);
    for (size_t j = 0; j < i; j++)
      if (es->keys[j].version == (uint32_t)v)
        return snap__conf_error(&k, "version", "version %lld is also given by keys[%zu]",
                                (long long)v, j);
    es->keys[i].version = (uint32_t)v;
    es->keys[i].file = f;
    snap__conf_join(es->keys[i].path, sizeof es->keys[i].path, k.path, "file");
  }
  es->nkeys = n;
  if (has_active == 0) {
    if (n > 1)
      return snap__conf_error(enc, "active",
                              "missing: with several keys, say which one new snapshots use");
    es->active = es->keys[0].version;
    return SNAP_OK;
  }
  for (size_t i = 0; i < n; i++)
    if (es->keys[i].version == es->active)
      return SNAP_OK;
  return snap__conf_error(enc, "active", "version %lld is not among \"keys\"", (long long)active);
}

static int read_keyed(snap_conf *opts, keyed_spec *es) {
  int t = snap__conf_type(opts, es->group);
  if (t < 0)
    return SNAP_OK;
  if (t == SNAP__J_FALSE) {
    bool b;
    snap__conf_bool(opts, es->group, 0, &b);
    es->off = true;
    return SNAP_OK;
  }
  if (t != SNAP__J_OBJ)
    return snap__conf_error(opts, es->group, "must be an object or false");
  snap_conf enc;
  /* Fails when an earlier key already failed (the error is sticky): the
   * section is then not opened and must not be read. */
  int rc = snap__conf_obj(opts, es->group, 0, &enc);
  if (rc <= 0)
    return rc < 0 ? rc : SNAP_OK;
  es->present = true;
  /* A context is mandatory: it names what the key protects. */
  if (snap__conf_str(&enc, "context", SNAP_CONF_REQUIRED | SNAP_CONF_NONEMPTY, &es->context) < 0)
    return snap__conf_done(&enc);
  static const char *const modes[] = {"direct", "envelope", NULL};
  es->mode = -1;
  if (strcmp(es->group, "encryption") == 0 && snap__conf_enum(&enc, "mode", 0, modes, &es->mode) < 0)
    return snap__conf_done(&enc);
  return read_keys(&enc, es);
}

/* Reads "options" into `o` (key files not yet read: see load_keys()). */
static int read_options(snap_conf *doc, snap_options *o, keyed_spec *es) {
  snap_conf opts;
  int rc = snap__conf_obj(doc, "options", 0, &opts);
  if (rc <= 0)
    return rc;
  snap_compression alg = SNAP_COMPRESSION_NONE;
  int level = 0;
  int64_t min_size = 0, max_stored = 0, max_decoded = 0;
  bool accept = false;
  unsigned required = 0;
  int has_alg = snap__conf_compression(&opts, &alg, &level);
  const char *dict = NULL;
  int has_dict = snap__conf_str(&opts, "dictionary", SNAP_CONF_NONEMPTY, &dict);
  int has_min = snap__conf_int(&opts, "compression_min_size", 0, 0, SIZE_LIMIT, &min_size);
  int has_ms = snap__conf_int(&opts, "max_stored_size", 0, 1, SIZE_LIMIT, &max_stored);
  int has_md = snap__conf_int(&opts, "max_decoded_size", 0, 1, SIZE_LIMIT, &max_decoded);
  int has_accept = snap__conf_bool(&opts, "accept_unauthenticated", 0, &accept);
  int has_required = read_required(&opts, &required);
  if ((rc = read_keyed(&opts, &es[0])) != SNAP_OK || (rc = read_keyed(&opts, &es[1])) != SNAP_OK ||
      (rc = snap__conf_done(&opts)) != SNAP_OK)
    return rc;
  if (has_alg > 0 && (rc = snap_options_set_compression(o, alg, level)))
    return rc;
  if (has_dict > 0 && (rc = snap_options_set_dictionary(o, 0, dict)))
    return rc;
  if (has_min > 0 && (rc = snap_options_set_compression_min_size(o, (size_t)min_size)))
    return rc;
  if ((has_ms > 0 || has_md > 0) &&
      (rc = snap_options_set_limits(o, (size_t)max_stored, (size_t)max_decoded)))
    return rc;
  if (has_accept > 0 && (rc = snap_options_set_accept_unauthenticated(o, accept)))
    return rc;
  if (has_required > 0 && (rc = snap_options_set_required(o, required)))
    return rc;
  return SNAP_OK;
}

/* Sets encryption (k == 0) or integrity (k == 1) of `o`. */
static int set_keyed(snap_options *o, int k, snap_keyring *kr, const char *context) {
  return k == 0 ? snap_options_set_encryption(o, kr, context)
                : snap_options_set_integrity(o, kr, context);
}

/* Builds the keyring one group names (or checks the caller's) and turns the
 * group on. The caller's keyring serves each group that names no key file. */
static int apply_keyed(snap_plugin *p, int k, const keyed_spec *es, snap_keyring *keyring) {
  char path[32];
  snprintf(path, sizeof path, "options.%s", es->group);
  if (es->off)
    return set_keyed(p->options, k, NULL, NULL);
  if (!es->present)
    return SNAP_OK;
  snap_keyring *kr;
  int rc;
  if (es->nkeys > 0) {
    if ((rc = snap_keyring_new(&p->own_keyring[k])))
      return rc;
    for (size_t i = 0; i < es->nkeys; i++) {
      rc = snap_keyring_add_file(p->own_keyring[k], es->keys[i].version, es->keys[i].file);
      if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", snap_error_message());
        return snap_error_set(rc, "%s '%s': %s", es->keys[i].path, es->keys[i].file, msg);
      }
    }
    if ((rc = snap_keyring_set_active(p->own_keyring[k], es->active)))
      return rc;
    kr = p->own_keyring[k];
  } else {
    if (!keyring)
      return snap_error_set(SNAP_ECONFIG,
                            "%s.keys: missing, and no keyring was supplied (keys never travel "
                            "inside the configuration)",
                            path);
    if (snap_keyring_active(keyring) == 0)
      return snap_error_set(SNAP_ECONFIG, "%s: the supplied keyring is empty", path);
    if (es->active && snap_keyring_active(keyring) != es->active)
      return snap_error_set(
          SNAP_ECONFIG, "%s: version %u is not the supplied keyring's active key (%u)",
          es->active_path, (unsigned)es->active, (unsigned)snap_keyring_active(keyring));
    kr = keyring;
  }
  rc = set_keyed(p->options, k, kr, es->context);
  if (rc)
    return snap_error_set(SNAP_ECONFIG, "%s.context: %s", path, snap_error_message());
  if (es->mode >= 0)
    return snap_options_set_key_mode(p->options, (snap_key_mode)es->mode);
  return SNAP_OK;
}

/* Encryption and integrity from the document. A supplied keyring must serve
 * a group that names no key file: otherwise it would go unused and the
 * caller would believe its keys protect the snapshots. */
static int apply_keys(snap_plugin *p, const keyed_spec es[2], snap_keyring *keyring) {
  if (keyring) {
    bool served = false;
    for (int k = 0; k < 2; k++)
      served |= es[k].present && es[k].nkeys == 0;
    if (!served) {
      for (int k = 0; k < 2; k++)
        if (es[k].present)
          return snap_error_set(SNAP_ECONFIG,
                                "%s: a keyring was also supplied; give key files or a keyring, "
                                "not both",
                                es[k].keys[0].path);
      return snap_error_set(SNAP_ECONFIG,
                            "options.encryption: a keyring was supplied but no encryption (or "
                            "integrity) context is configured");
    }
  }
  int rc = apply_keyed(p, 0, &es[0], keyring);
  return rc ? rc : apply_keyed(p, 1, &es[1], keyring);
}

static int read_executor(snap_conf *doc, bool *enabled, snap_executor_config *cfg) {
  *enabled = true;
  int type = snap__conf_type(doc, "executor");
  if (type < 0)
    return SNAP_OK;
  if (type == SNAP__J_FALSE) {
    bool b;
    *enabled = false;
    return snap__conf_bool(doc, "executor", 0, &b) < 0 ? snap__conf_done(doc) : SNAP_OK;
  }
  if (type != SNAP__J_OBJ)
    return snap__conf_error(doc, "executor", "must be an object or false");
  snap_conf ex;
  int64_t q = 0, b = 0, t = 0;
  snap__conf_obj(doc, "executor", 0, &ex);
  if (snap__conf_int(&ex, "queue_capacity", 0, 1, 1048576, &q) > 0)
    cfg->queue_capacity = (size_t)q;
  if (snap__conf_int(&ex, "max_batch", 0, 1, 65536, &b) > 0)
    cfg->max_batch = (size_t)b;
  if (snap__conf_int(&ex, "load_threads", 0, 1, 64, &t) > 0)
    cfg->load_threads = (size_t)t;
  return snap__conf_done(&ex);
}

/* "observe": {"metrics": bool, "log": "off" | "error" | "warning" | "info"}; absent keys keep
 * the store's defaults (metrics on, warnings to stderr). */
typedef struct observe_cfg {
  int metrics; /* -1: default */
  int log;     /* -1: default, else a snap_log_level */
} observe_cfg;

static int read_observe(snap_conf *doc, observe_cfg *out) {
  static const char *const levels[] = {"off", "error", "warning", "info", NULL};
  *out = (observe_cfg){-1, -1};
  snap_conf ob;
  int rc = snap__conf_obj(doc, "observe", 0, &ob);
  if (rc <= 0)
    return rc;
  bool metrics;
  if (snap__conf_bool(&ob, "metrics", 0, &metrics) > 0)
    out->metrics = metrics;
  snap__conf_enum(&ob, "log", 0, levels, &out->log);
  return snap__conf_done(&ob);
}

static int apply_observe(snap_store *st, const observe_cfg *c) {
  int rc = SNAP_OK;
  if (c->metrics >= 0)
    rc = snap_store_set_metrics(st, c->metrics);
  if (rc == SNAP_OK && c->log >= 0)
    rc = snap_store_set_log(st, (snap_log_level)c->log, NULL, NULL);
  return rc;
}

/* The store's own check at open (snap_store_check()), its findings named by
 * where the document says what was wrong. */
static int check_store(snap_store *st) {
  int rc = snap_store_check(st);
  if (rc == SNAP_EUNSUPPORTED) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", snap_error_message());
    return snap_error_set(SNAP_ECONFIG, "options.required: %s", msg);
  }
  return rc;
}

static int open_doc(snap_plugin *p, snap_conf *doc, snap_keyring *keyring, unsigned flags) {
  const char *backend = NULL, *library = NULL;
  bool check = true;
  int rc = snap__conf_str(doc, "backend", SNAP_CONF_REQUIRED | SNAP_CONF_NONEMPTY, &backend);
  if (rc < 0)
    return rc;
  if (snap__conf_str(doc, "backend_library", SNAP_CONF_NONEMPTY, &library) < 0 ||
      snap__conf_bool(doc, "check", 0, &check) < 0)
    return snap__conf_done(doc);
  /* The store and its backend read "config" with the same reader, naming
   * keys "config.<key>", once the rest of the document is known to be good. */
  snap_conf config;
  if ((rc = snap__conf_section(doc, "config", &config)) < 0)
    return rc;
  bool exec_on;
  snap_executor_config ecfg = SNAP_EXECUTOR_CONFIG_INIT;
  observe_cfg obs;
  keyed_spec *es = snap_calloc(2, sizeof *es);
  if (!es)
    return snap_error_set(SNAP_ENOMEM, "out of memory reading the configuration");
  es[0].group = "encryption";
  es[1].group = "integrity";
  if ((rc = snap_options_new(&p->options)) == SNAP_OK &&
      (rc = read_executor(doc, &exec_on, &ecfg)) == SNAP_OK &&
      (rc = read_observe(doc, &obs)) == SNAP_OK &&
      (rc = read_options(doc, p->options, es)) == SNAP_OK &&
      (rc = snap__upcasters_read(doc, &p->upcasters)) == SNAP_OK &&
      (rc = snap__conf_done(doc)) == SNAP_OK)
    /* The document is valid: only now read key files, and only then open the
     * store, so that a bad document or key file leaves no database behind. */
    rc = apply_keys(p, es, keyring);
  snap_free(es);
  if (rc)
    return rc;

  if (library && (rc = snap__registry_load_for(library, backend))) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", snap_error_message());
    return snap_error_set(rc, "backend_library: %s", msg);
  }
  const snap_backend *b;
  if ((rc = snap_registry_find(backend, &b))) {
    if (rc == SNAP_ENOTFOUND)
      return snap_error_set(SNAP_ECONFIG, "backend: no backend named '%s' is registered", backend);
    return rc;
  }
  /* Before the store: a missing library or symbol leaves no database behind. */
  if ((rc = snap__upcasters_load(&p->upcasters)))
    return rc;
  unsigned open_flags = (flags & SNAP_PLUGIN_NO_CREATE) ? SNAP_BACKEND_NO_CREATE : 0u;
  if ((rc = snap__store_open_conf(&p->store, b, &config, open_flags)))
    return rc;
  if ((rc = snap__upcasters_register(&p->upcasters, p->store)) ||
      (rc = snap_store_set_default_options(p->store, p->options)) ||
      (rc = apply_observe(p->store, &obs)) ||
      (check && !(flags & SNAP_PLUGIN_NO_CHECK) && (rc = check_store(p->store))))
    return rc;
  if (exec_on && !(flags & SNAP_PLUGIN_NO_EXECUTOR) &&
      (rc = snap_executor_new(&p->executor, p->store, &ecfg)))
    return rc;
  return SNAP_OK;
}

int snap_plugin_open(snap_plugin **out, const char *config_json, snap_keyring *keyring) {
  return snap_plugin_open_ex(out, config_json, keyring, 0);
}

int snap_plugin_open_ex(snap_plugin **out, const char *config_json, snap_keyring *keyring,
                        unsigned flags) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_plugin_open: NULL output");
  *out = NULL;
  if (flags & ~SNAP_PLUGIN_FLAGS_KNOWN)
    return snap_error_set(SNAP_EINVAL, "snap_plugin_open_ex: unknown flags 0x%x",
                          flags & ~SNAP_PLUGIN_FLAGS_KNOWN);
  if (!config_json)
    return snap_error_set(SNAP_ECONFIG, "(document): no configuration given");
  snap_conf *doc;
  int rc = snap__conf_parse(&doc, config_json, "");
  if (rc)
    return rc;
  snap_plugin *p = snap_calloc(1, sizeof *p);
  if (!p) {
    snap__conf_free(doc);
    return snap_error_set(SNAP_ENOMEM, "out of memory opening the configuration");
  }
  rc = open_doc(p, doc, keyring, flags);
  snap__conf_free(doc);
  if (rc) {
    snap_plugin_close(p);
    return rc;
  }
  *out = p;
  return SNAP_OK;
}

void snap_plugin_close(snap_plugin *p) {
  if (!p)
    return;
  snap_executor_free(p->executor);
  snap_store_close(p->store);
  snap__upcasters_unload(&p->upcasters);
  snap_options_free(p->options);
  snap_keyring_free(p->own_keyring[0]);
  snap_keyring_free(p->own_keyring[1]);
  snap_free(p);
}

snap_store *snap_plugin_store(const snap_plugin *p) { return p ? p->store : NULL; }

snap_executor *snap_plugin_executor(const snap_plugin *p) { return p ? p->executor : NULL; }

const snap_options *snap_plugin_options(const snap_plugin *p) { return p ? p->options : NULL; }
