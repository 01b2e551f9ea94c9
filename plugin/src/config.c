/* The configuration document: one JSON object gives a store, its default
 * options and an executor (reference: docs/PLUGIN.md). */
#include <cjson/cJSON.h>
#include <math.h> /* isfinite(), a macro */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "snap/plugin.h"

struct snap_plugin {
  snap_store *store;
  snap_executor *executor;
  snap_options *options;
  snap_keyring *own_keyring; /* from a key file; the caller's keyring is only borrowed */
};

/* A key is accepted only if it is listed; the message names the full path. */
static int check_keys(const cJSON *obj, const char *path, const char *const *allowed) {
  for (const cJSON *it = obj->child; it; it = it->next) {
    bool ok = false;
    for (size_t i = 0; allowed[i]; i++)
      if (it->string && strcmp(it->string, allowed[i]) == 0)
        ok = true;
    if (!ok)
      return snap_error_set(SNAP_ECONFIG, "%s%s%s: unknown key", path, *path ? "." : "",
                            it->string ? it->string : "(unnamed)");
  }
  return SNAP_OK;
}

static int want_object(const cJSON *v, const char *path) {
  if (!cJSON_IsObject(v))
    return snap_error_set(SNAP_ECONFIG, "%s: must be an object", path);
  return SNAP_OK;
}

#define MAX_EXACT 9007199254740992.0 /* 2^53 */

/* An integer in [lo, hi]; JSON numbers are doubles, so 2^53 bounds what is exact. */
static int get_int(const cJSON *v, const char *path, double lo, double hi, int64_t *out) {
  if (!cJSON_IsNumber(v))
    return snap_error_set(SNAP_ECONFIG, "%s: must be a number", path);
  double d = v->valuedouble;
  /* Magnitude first, so that the integer test converts only values that fit
   * (and without libm: floor() would be the only reason to link it). */
  if (!isfinite(d) || d < -MAX_EXACT || d > MAX_EXACT)
    return snap_error_set(SNAP_ECONFIG, "%s: %g is out of range %.0f to %.0f", path, d, lo, hi);
  if (d != (double)(int64_t)d)
    return snap_error_set(SNAP_ECONFIG, "%s: must be an integer", path);
  if (d < lo || d > hi)
    return snap_error_set(SNAP_ECONFIG, "%s: %.0f is out of range %.0f to %.0f", path, d, lo, hi);
  *out = (int64_t)d;
  return SNAP_OK;
}

static int parse_required(const cJSON *v, unsigned *out) {
  const char *path = "options.required";
  if (!cJSON_IsArray(v))
    return snap_error_set(SNAP_ECONFIG, "%s: must be an array of option names", path);
  unsigned bits = 0;
  int i = 0;
  for (const cJSON *it = v->child; it; it = it->next, i++) {
    if (!cJSON_IsString(it))
      return snap_error_set(SNAP_ECONFIG, "%s[%d]: must be a string", path, i);
    const char *s = it->valuestring;
    if (strcmp(s, "compression") == 0)
      bits |= SNAP_OPT_COMPRESSION;
    else if (strcmp(s, "encryption") == 0)
      bits |= SNAP_OPT_ENCRYPTION;
    else if (strcmp(s, "integrity") == 0)
      bits |= SNAP_OPT_INTEGRITY;
    else
      return snap_error_set(SNAP_ECONFIG,
                            "%s[%d]: '%s' is not one of compression, encryption, integrity", path,
                            i, s);
  }
  *out = bits;
  return SNAP_OK;
}

static int parse_encryption(snap_plugin *p, const cJSON *enc, snap_keyring *keyring) {
  const char *path = "options.encryption";
  if (cJSON_IsFalse(enc))
    return snap_options_set_encryption(p->options, NULL, NULL);
  if (!cJSON_IsObject(enc))
    return snap_error_set(SNAP_ECONFIG, "%s: must be an object or false", path);
  static const char *const keys[] = {"key_file", "key_version", "context", NULL};
  int rc = check_keys(enc, path, keys);
  if (rc)
    return rc;
  const cJSON *file = cJSON_GetObjectItemCaseSensitive(enc, "key_file");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(enc, "key_version");
  const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(enc, "context");
  if (!ctx)
    return snap_error_set(SNAP_ECONFIG, "%s.context: missing (a context string is mandatory)",
                          path);
  if (!cJSON_IsString(ctx) || !ctx->valuestring[0])
    return snap_error_set(SNAP_ECONFIG, "%s.context: must be a non-empty string", path);
  int64_t version = 1;
  if (ver && (rc = get_int(ver, "options.encryption.key_version", 1, 4294967295.0, &version)))
    return rc;
  snap_keyring *kr;
  if (file) {
    if (!cJSON_IsString(file) || !file->valuestring[0])
      return snap_error_set(SNAP_ECONFIG, "%s.key_file: must be a non-empty path", path);
    if (keyring)
      return snap_error_set(
          SNAP_ECONFIG, "%s.key_file: a keyring was also supplied; give one or the other", path);
    if ((rc = snap_keyring_new(&p->own_keyring)))
      return rc;
    rc = snap_keyring_add_file(p->own_keyring, (uint32_t)version, file->valuestring);
    if (rc) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", snap_error_message());
      return snap_error_set(rc, "%s.key_file '%s': %s", path, file->valuestring, msg);
    }
    kr = p->own_keyring;
  } else {
    if (!keyring)
      return snap_error_set(SNAP_ECONFIG,
                            "%s.key_file: missing, and no keyring was supplied (keys never "
                            "travel inside the configuration)",
                            path);
    if (ver && snap_keyring_active(keyring) != (uint32_t)version)
      return snap_error_set(SNAP_ECONFIG,
                            "%s.key_version: version %lld is not the supplied keyring's active "
                            "key (%u)",
                            path, (long long)version, (unsigned)snap_keyring_active(keyring));
    if (snap_keyring_active(keyring) == 0)
      return snap_error_set(SNAP_ECONFIG, "%s: the supplied keyring is empty", path);
    kr = keyring;
  }
  rc = snap_options_set_encryption(p->options, kr, ctx->valuestring);
  if (rc)
    return snap_error_set(SNAP_ECONFIG, "%s.context: %s", path, snap_error_message());
  return SNAP_OK;
}

static int parse_options(snap_plugin *p, const cJSON *opts, snap_keyring *keyring) {
  static const char *const keys[] = {"compression",
                                     "compression_level",
                                     "compression_min_size",
                                     "encryption",
                                     "max_stored_size",
                                     "max_decoded_size",
                                     "accept_unauthenticated",
                                     "required",
                                     NULL};
  int rc = snap_options_new(&p->options);
  if (rc)
    return rc;
  if (!opts) {
    if (keyring)
      return snap_error_set(SNAP_ECONFIG, "options.encryption: a keyring was supplied but no "
                                          "encryption context is configured");
    return SNAP_OK;
  }
  if ((rc = want_object(opts, "options")) || (rc = check_keys(opts, "options", keys)))
    return rc;

  const cJSON *alg = cJSON_GetObjectItemCaseSensitive(opts, "compression");
  const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(opts, "compression_level");
  snap_compression c = SNAP_COMPRESSION_NONE;
  if (alg) {
    if (!cJSON_IsString(alg))
      return snap_error_set(SNAP_ECONFIG, "options.compression: must be \"none\" or \"zlib\"");
    if (strcmp(alg->valuestring, "zlib") == 0)
      c = SNAP_COMPRESSION_ZLIB;
    else if (strcmp(alg->valuestring, "none") != 0)
      return snap_error_set(SNAP_ECONFIG, "options.compression: '%s' is not \"none\" or \"zlib\"",
                            alg->valuestring);
  }
  int64_t level = 6;
  if (lvl && (rc = get_int(lvl, "options.compression_level", 0, 9, &level)))
    return rc;
  if (lvl && c != SNAP_COMPRESSION_ZLIB)
    return snap_error_set(SNAP_ECONFIG,
                          "options.compression_level: only meaningful with \"compression\": "
                          "\"zlib\"");
  if (alg && (rc = snap_options_set_compression(p->options, c, (int)level)))
    return rc;

  const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, "compression_min_size");
  int64_t n;
  if (v) {
    if ((rc = get_int(v, "options.compression_min_size", 0, MAX_EXACT, &n)))
      return rc;
    if ((rc = snap_options_set_compression_min_size(p->options, (size_t)n)))
      return rc;
  }
  int64_t max_stored = 0, max_decoded = 0;
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(opts, "max_stored_size");
  const cJSON *md = cJSON_GetObjectItemCaseSensitive(opts, "max_decoded_size");
  if (ms && (rc = get_int(ms, "options.max_stored_size", 1, MAX_EXACT, &max_stored)))
    return rc;
  if (md && (rc = get_int(md, "options.max_decoded_size", 1, MAX_EXACT, &max_decoded)))
    return rc;
  if ((ms || md) &&
      (rc = snap_options_set_limits(p->options, (size_t)max_stored, (size_t)max_decoded)))
    return rc;

  v = cJSON_GetObjectItemCaseSensitive(opts, "accept_unauthenticated");
  if (v) {
    if (!cJSON_IsBool(v))
      return snap_error_set(SNAP_ECONFIG, "options.accept_unauthenticated: must be true or false");
    if ((rc = snap_options_set_accept_unauthenticated(p->options, cJSON_IsTrue(v))))
      return rc;
  }
  v = cJSON_GetObjectItemCaseSensitive(opts, "required");
  if (v) {
    unsigned bits = 0;
    if ((rc = parse_required(v, &bits)) || (rc = snap_options_set_required(p->options, bits)))
      return rc;
  }
  v = cJSON_GetObjectItemCaseSensitive(opts, "encryption");
  if (v)
    return parse_encryption(p, v, keyring);
  if (keyring)
    return snap_error_set(SNAP_ECONFIG, "options.encryption: a keyring was supplied but no "
                                        "encryption context is configured");
  return SNAP_OK;
}

static int parse_executor(const cJSON *v, bool *enabled, snap_executor_config *cfg) {
  static const char *const keys[] = {"queue_capacity", "max_batch", "load_threads", NULL};
  *enabled = true;
  if (!v)
    return SNAP_OK;
  if (cJSON_IsFalse(v)) {
    *enabled = false;
    return SNAP_OK;
  }
  if (!cJSON_IsObject(v))
    return snap_error_set(SNAP_ECONFIG, "executor: must be an object or false");
  int rc = check_keys(v, "executor", keys);
  if (rc)
    return rc;
  int64_t n;
  const cJSON *q = cJSON_GetObjectItemCaseSensitive(v, "queue_capacity");
  if (q) {
    if ((rc = get_int(q, "executor.queue_capacity", 1, 1048576, &n)))
      return rc;
    cfg->queue_capacity = (size_t)n;
  }
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, "max_batch");
  if (b) {
    if ((rc = get_int(b, "executor.max_batch", 1, 65536, &n)))
      return rc;
    cfg->max_batch = (size_t)n;
  }
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "load_threads");
  if (t) {
    if ((rc = get_int(t, "executor.load_threads", 1, 64, &n)))
      return rc;
    cfg->load_threads = (size_t)n;
  }
  return SNAP_OK;
}

/* "observe": {"metrics": bool, "log": "off" | "error" | "warning" | "info"}; absent keys keep
 * the store's defaults (metrics on, warnings to stderr). */
typedef struct observe_cfg {
  int metrics; /* -1: default */
  int log;     /* -1: default, else a snap_log_level */
} observe_cfg;

static int parse_observe(const cJSON *v, observe_cfg *out) {
  static const char *const keys[] = {"metrics", "log", NULL};
  static const char *const levels[] = {"off", "error", "warning", "info"};
  *out = (observe_cfg){-1, -1};
  if (!v)
    return SNAP_OK;
  int rc;
  if ((rc = want_object(v, "observe")) || (rc = check_keys(v, "observe", keys)))
    return rc;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "metrics");
  if (m && !cJSON_IsBool(m))
    return snap_error_set(SNAP_ECONFIG, "observe.metrics: must be true or false");
  if (m)
    out->metrics = cJSON_IsTrue(m);
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(v, "log");
  for (int i = 0; l && i < 4 && out->log < 0; i++)
    if (cJSON_IsString(l) && strcmp(l->valuestring, levels[i]) == 0)
      out->log = i;
  if (l && out->log < 0)
    return snap_error_set(SNAP_ECONFIG,
                          "observe.log: must be \"off\", \"error\", \"warning\" or \"info\"");
  return SNAP_OK;
}

static int apply_observe(snap_store *st, const observe_cfg *c) {
  int rc = SNAP_OK;
  if (c->metrics >= 0)
    rc = snap_store_set_metrics(st, c->metrics);
  if (rc == SNAP_OK && c->log >= 0)
    rc = snap_store_set_log(st, (snap_log_level)c->log, NULL, NULL);
  return rc;
}

static int open_doc(snap_plugin *p, const cJSON *doc, snap_keyring *keyring) {
  static const char *const keys[] = {"backend", "config", "options", "executor", "observe", NULL};
  int rc;
  if ((rc = want_object(doc, "(document)")) || (rc = check_keys(doc, "", keys)))
    return rc;
  const cJSON *backend = cJSON_GetObjectItemCaseSensitive(doc, "backend");
  if (!backend)
    return snap_error_set(SNAP_ECONFIG, "backend: missing (e.g. \"sqlite\" or \"memory\")");
  if (!cJSON_IsString(backend))
    return snap_error_set(SNAP_ECONFIG, "backend: must be a string");
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(doc, "config");
  if (config && (rc = want_object(config, "config")))
    return rc;
  bool exec_on;
  snap_executor_config ecfg = SNAP_EXECUTOR_CONFIG_INIT;
  if ((rc = parse_executor(cJSON_GetObjectItemCaseSensitive(doc, "executor"), &exec_on, &ecfg)))
    return rc;
  observe_cfg obs;
  if ((rc = parse_observe(cJSON_GetObjectItemCaseSensitive(doc, "observe"), &obs)))
    return rc;
  /* Options first: a bad option or key file must not leave a database behind. */
  if ((rc = parse_options(p, cJSON_GetObjectItemCaseSensitive(doc, "options"), keyring)))
    return rc;

  char *config_text = NULL;
  if (config && !(config_text = cJSON_PrintUnformatted(config)))
    return snap_error_set(SNAP_ENOMEM, "out of memory printing \"config\"");
  rc = snap_store_open(&p->store, backend->valuestring, config_text);
  cJSON_free(config_text);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", snap_error_message());
    if (rc == SNAP_ENOTFOUND)
      return snap_error_set(SNAP_ECONFIG, "backend: %s", msg);
    if (rc == SNAP_ECONFIG)
      return snap_error_set(rc, "config: %s", msg);
    return snap_error_set(rc, "%s", msg);
  }
  if ((rc = snap_store_set_default_options(p->store, p->options)) ||
      (rc = apply_observe(p->store, &obs)))
    return rc;
  if (exec_on && (rc = snap_executor_new(&p->executor, p->store, &ecfg)))
    return rc;
  return SNAP_OK;
}

int snap_plugin_open(snap_plugin **out, const char *config_json, snap_keyring *keyring) {
  if (!out)
    return snap_error_set(SNAP_EINVAL, "snap_plugin_open: NULL output");
  *out = NULL;
  if (!config_json)
    return snap_error_set(SNAP_ECONFIG, "(document): no configuration given");
  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithOpts(config_json, &end, 1);
  if (!doc) {
    size_t off = end ? (size_t)(end - config_json) : 0;
    return snap_error_set(SNAP_ECONFIG, "(document): not valid JSON near byte %zu", off);
  }
  snap_plugin *p = snap_calloc(1, sizeof *p);
  if (!p) {
    cJSON_Delete(doc);
    return snap_error_set(SNAP_ENOMEM, "out of memory opening the configuration");
  }
  int rc = open_doc(p, doc, keyring);
  cJSON_Delete(doc);
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
  snap_options_free(p->options);
  snap_keyring_free(p->own_keyring);
  snap_free(p);
}

snap_store *snap_plugin_store(const snap_plugin *p) { return p ? p->store : NULL; }

snap_executor *snap_plugin_executor(const snap_plugin *p) { return p ? p->executor : NULL; }

const snap_options *snap_plugin_options(const snap_plugin *p) { return p ? p->options : NULL; }
