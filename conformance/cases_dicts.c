/* Trained zstd dictionaries (backend ABI version 4, dict_* slots): stored
 * with the data set, chosen by name for saves, found again by id by loads
 * (also after reopening), immutable, and removable only when no body uses
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fixture.h"
#include "snap/admin.h"
#include "snap/store.h"
#include "store_util.h"

/* Whether the backend keeps dictionaries; when not, the store says so
 * (SNAP_EUNSUPPORTED) and the case is skipped. */
static bool has_dicts(const cf_backend *bc, fx *f) {
  if (!cf_needs_abi(bc, 4, "dictionaries (dict_put, dict_get, dict_remove)"))
    return false;
  if (bc->backend()->dict_put != NULL)
    return true;
  uint32_t id;
  cf_assert_eq(snap_store_dict_add(f->st, "d", "0123456789", 10, &id), SNAP_EUNSUPPORTED,
               "[%s] %s", bc->name, snap_error_message());
  cf_skip(bc, "the backend leaves the dict_* slots (ABI version 4) NULL: no dictionaries");
  return false;
}

/* Raw-content dictionary bytes: what the states below repeat. */
static const char DICT[] = "{\"account\":\"acc-\",\"owner\":\"\",\"currency\":\"EUR\","
                           "\"balance_cents\":,\"active\":true,\"history\":[{\"kind\":\"deposit\","
                           "\"cents\":},{\"kind\":\"withdrawal\",\"memo\":\"salary\"}]}";

static void state_of(char *buf, size_t cap, int i) {
  snprintf(buf, cap,
           "{\"account\":\"acc-%04d\",\"owner\":\"owner %d\",\"currency\":\"EUR\","
           "\"balance_cents\":%d,\"active\":true,\"history\":[{\"kind\":\"deposit\","
           "\"cents\":%d},{\"kind\":\"withdrawal\",\"memo\":\"salary\"}]}",
           i, i, i * 37, i * 11);
}

void cf_case_dictionaries_are_kept_with_the_data_and_chosen_by_name(const cf_backend *bc) {
  fx f;
  fx_open(&f, bc, "\"keep\": 0, \"compression\": \"zstd\", \"dictionary\": \"accounts\"");
  if (!has_dicts(bc, &f)) {
    fx_close(&f);
    return;
  }
  /* A backend that does not compress stores the dictionaries all the same
   * (for the bodies other stores write to it: copies, imports) and saves
   * uncompressed, without one. */
  const bool comp = snap_store_capabilities(f.st) & SNAP_CAP_COMPRESSION;
  char state[512];
  state_of(state, sizeof state, 1);
  /* The document names a dictionary the store does not have yet. */
  if (comp) {
    cf_assert_eq(snap_save(f.st, "acc-1", 1, SNAP_FORMAT_JSON, state, strlen(state), NULL, NULL),
                 SNAP_ENOTFOUND, "[%s] %s", bc->name, snap_error_message());
    cf_assert(strstr(snap_error_message(), "accounts"), "[%s] %s", bc->name,
              snap_error_message());
  }
  uint32_t id = 0, want;
  cf_assert_eq(snap_dict_id_of(DICT, strlen(DICT), &want), SNAP_OK);
  cf_assert_eq(snap_store_dict_add(f.st, "accounts", DICT, strlen(DICT), &id), SNAP_OK, "[%s] %s",
               bc->name, snap_error_message());
  cf_assert_eq(id, want, "[%s]", bc->name);
  /* immutable: the same id or name again */
  cf_assert_eq(snap_store_dict_add(f.st, "other", DICT, strlen(DICT), NULL), SNAP_ECONFLICT,
               "[%s]", bc->name);
  cf_assert_eq(snap_store_dict_add(f.st, "accounts", "abcdefghijkl", 12, NULL), SNAP_ECONFLICT,
               "[%s]", bc->name);
  for (int i = 1; i <= 3; i++) {
    state_of(state, sizeof state, i);
    snap_meta m;
    cf_assert_eq(snap_save(f.st, "acc-1", i, SNAP_FORMAT_JSON, state, strlen(state), NULL, &m),
                 SNAP_OK, "[%s] %s", bc->name, snap_error_message());
  }
  /* Reopened (where anything survives that): the dictionary is loaded
   * again, found by the id in the bodies. */
  if (bc->persistent)
    fx_reopen(&f, "\"keep\": 0");
  snap_snapshot *s = NULL;
  cf_assert_eq(snap_load_latest(f.st, "acc-1", NULL, &s), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert(s && s->len == strlen(state) && memcmp(s->data, state, s->len) == 0, "[%s]",
            bc->name);
  snap_snapshot_free(s);
  snap_dict_info *list;
  size_t n;
  cf_assert_eq(snap_store_dict_list(f.st, &list, &n), SNAP_OK, "[%s]", bc->name);
  cf_assert(n == 1 && list[0].id == id && strcmp(list[0].name, "accounts") == 0 &&
                list[0].size == strlen(DICT),
            "[%s] %zu dictionaries", bc->name, n);
  snap_free(list);
  /* In use: removal is refused, and the bodies keep loading. */
  uint64_t uses = 0;
  cf_assert_eq(snap_store_dict_uses(f.st, id, &uses), SNAP_OK, "[%s]", bc->name);
  cf_assert_eq(uses, comp ? 3u : 0u, "[%s]", bc->name);
  if (!comp) {
    cf_assert_eq(snap_store_dict_remove(f.st, id, false), SNAP_OK, "[%s]", bc->name);
    fx_close(&f);
    return;
  }
  cf_assert_eq(snap_store_dict_remove(f.st, id, false), SNAP_EBUSY, "[%s]", bc->name);
  /* Forced: a body naming it is then an error naming the id, never damage. */
  cf_assert_eq(snap_store_dict_remove(f.st, id, true), SNAP_OK, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert_eq(snap_store_dict_remove(f.st, id, true), SNAP_ENOTFOUND, "[%s]", bc->name);
  if (bc->persistent)
    fx_reopen(&f, "\"keep\": 0");
  char idstr[16];
  snprintf(idstr, sizeof idstr, "%u", (unsigned)id);
  cf_assert_eq(snap_load_latest(f.st, "acc-1", NULL, &s), SNAP_ENOTFOUND, "[%s] %s", bc->name,
               snap_error_message());
  cf_assert(strstr(snap_error_message(), idstr), "[%s] %s", bc->name, snap_error_message());
  fx_close(&f);
}
