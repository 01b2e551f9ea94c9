/* The store's own configuration keys (docs/STORE.md, "Configuration"): read
 * with the strict reader from the section the backend then reads its own
 * keys from, through snap_host (the document is parsed once). */
#include <stdint.h>
#include <string.h>

#include "snap/pipeline_layer.h"
#include "snap/store_layer.h"
#include "store_internal.h"

int snap__conf_compression(snap_conf *c, snap_compression *alg, int *level) {
  static const char *const algs[] = {"none", "zlib", "zstd", NULL};
  int a = 0, lo = 0, hi = 0, dflt = 0;
  const int has_alg = snap__conf_enum(c, "compression", 0, algs, &a);
  const bool leveled =
      has_alg > 0 && snap__compression_levels((snap_compression)a, &lo, &hi, &dflt) == SNAP_OK;
  int64_t lv = dflt;
  /* Without an algorithm that takes a level, zlib's range is checked first,
   * as it always was. */
  if (snap__conf_int(c, "compression_level", 0, leveled ? lo : 0, leveled ? hi : 9, &lv) > 0 &&
      !leveled)
    snap__conf_error(c, "compression_level",
                     "only meaningful with \"compression\": \"zlib\" or \"zstd\"");
  int rc = snap__conf_status(c);
  if (rc != SNAP_OK)
    return rc;
  if (has_alg <= 0)
    return 0;
  *alg = (snap_compression)a;
  *level = leveled ? (int)lv : 0;
  return 1;
}

int snap__store_config_read(snap__store_config *cfg, snap_conf *c) {
  memset(cfg, 0, sizeof *cfg);
  cfg->keep = SNAP__KEEP_DEFAULT;
  cfg->max_load_attempts = 3;
  int64_t keep = 0, attempts = 0, min_size = 0, max_stored = 0, max_decoded = 0;
  snap_compression alg = SNAP_COMPRESSION_NONE;
  int level = 0;
  bool keep_change = false;
  int has_keep = snap__conf_int(c, "keep", 0, 0, UINT32_MAX, &keep);
  if (snap__conf_bool(c, "keep_change", 0, &keep_change) > 0 && keep_change && has_keep == 0)
    snap__conf_error(c, "keep_change", "says to change the data set's retention, but \"keep\" "
                                       "does not say to what");
  snap__conf_int(c, "max_load_attempts", 0, 1, 1000000, &attempts);
  int has_alg = snap__conf_compression(c, &alg, &level);
  const char *dict = NULL;
  int has_dict = snap__conf_str(c, "dictionary", SNAP_CONF_NONEMPTY, &dict);
  int has_min = snap__conf_int(c, "compression_min_size", 0, 0, INT64_MAX, &min_size);
  int has_ms = snap__conf_int(c, "max_stored_size", 0, 0, INT64_MAX, &max_stored);
  int has_md = snap__conf_int(c, "max_decoded_size", 0, 0, INT64_MAX, &max_decoded);
  snap__envelope_config_read(&cfg->envelope, c);
  /* A refusal sticks in the document: the first one is the answer. */
  int rc = snap__conf_status(c);
  if (rc == SNAP_OK && has_keep > 0) {
    cfg->keep = (uint32_t)keep;
    cfg->keep_set = true;
    cfg->keep_change = keep_change;
  }
  if (rc == SNAP_OK && attempts > 0)
    cfg->max_load_attempts = (unsigned)attempts;
  if (rc == SNAP_OK && (has_alg > 0 || has_min > 0 || has_ms > 0 || has_md > 0 || has_dict > 0))
    rc = snap_options_new(&cfg->opts);
  if (rc == SNAP_OK && has_dict > 0)
    rc = snap_options_set_dictionary(cfg->opts, 0, dict);
  if (rc == SNAP_OK && has_alg > 0)
    rc = snap_options_set_compression(cfg->opts, alg, level);
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
