/* The store's own configuration keys (docs/STORE.md, "Configuration"): read
 * with the strict reader from the section the backend then reads its own
 * keys from, through snap_host (the document is parsed once). */
#include <stdint.h>
#include <string.h>

#include "snap/store_layer.h"
#include "store_internal.h"

int snap__store_config_read(snap__store_config *cfg, snap_conf *c) {
  memset(cfg, 0, sizeof *cfg);
  cfg->keep = SNAP__KEEP_DEFAULT;
  cfg->max_load_attempts = 3;
  static const char *const algs[] = {"none", "zlib", NULL};
  int64_t keep = 0, attempts = 0, level = 6, min_size = 0, max_stored = 0, max_decoded = 0;
  int alg = 0;
  bool keep_change = false;
  int has_keep = snap__conf_int(c, "keep", 0, 0, UINT32_MAX, &keep);
  if (snap__conf_bool(c, "keep_change", 0, &keep_change) > 0 && keep_change && has_keep == 0)
    snap__conf_error(c, "keep_change", "says to change the data set's retention, but \"keep\" "
                                       "does not say to what");
  snap__conf_int(c, "max_load_attempts", 0, 1, 1000000, &attempts);
  int has_alg = snap__conf_enum(c, "compression", 0, algs, &alg);
  int has_level = snap__conf_int(c, "compression_level", 0, 0, 9, &level);
  int has_min = snap__conf_int(c, "compression_min_size", 0, 0, INT64_MAX, &min_size);
  int has_ms = snap__conf_int(c, "max_stored_size", 0, 0, INT64_MAX, &max_stored);
  int has_md = snap__conf_int(c, "max_decoded_size", 0, 0, INT64_MAX, &max_decoded);
  if (has_level > 0 && !(has_alg > 0 && alg == 1))
    snap__conf_error(c, "compression_level", "only meaningful with \"compression\": \"zlib\"");
  /* A refusal sticks in the document: the first one is the answer. */
  int rc = snap__conf_status(c);
  if (rc == SNAP_OK && has_keep > 0) {
    cfg->keep = (uint32_t)keep;
    cfg->keep_set = true;
    cfg->keep_change = keep_change;
  }
  if (rc == SNAP_OK && attempts > 0)
    cfg->max_load_attempts = (unsigned)attempts;
  if (rc == SNAP_OK && (has_alg > 0 || has_min > 0 || has_ms > 0 || has_md > 0))
    rc = snap_options_new(&cfg->opts);
  if (rc == SNAP_OK && has_alg > 0)
    rc = snap_options_set_compression(
        cfg->opts, alg == 1 ? SNAP_COMPRESSION_ZLIB : SNAP_COMPRESSION_NONE, alg == 1 ? (int)level : 0);
  if (rc == SNAP_OK && has_min > 0)
    rc = snap_options_set_compression_min_size(cfg->opts, (size_t)min_size);
  if (rc == SNAP_OK && (has_ms > 0 || has_md > 0))
    rc = snap_options_set_limits(cfg->opts, (size_t)max_stored, (size_t)max_decoded);
  if (rc != SNAP_OK)
    snap__store_config_dispose(cfg);
  return rc;
}

void snap__store_config_dispose(snap__store_config *cfg) {
  snap_options_free(cfg->opts);
  cfg->opts = NULL;
}
