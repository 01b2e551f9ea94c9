/*
 * Configuration parsing. Input: one byte choosing what parses the rest, then
 * a JSON text:
 *   0: store config on the memory backend (snap_store_open_backend), and when
 *      it opens, a save and a load through it must round-trip;
 *   1: store config on the sqlite backend, which opens its file lazily: the
 *      store is closed without any save, and the "path" it names must not
 *      have been created;
 *   2: the same two by name through the registry (snap_store_open);
 *   3: the plugin's configuration document (snap_plugin_open).
 * Every call must answer SNAP_OK or an error with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/sys/backend.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void init_once(void) { fuzz_keyrings_init(); }

/* The "path" a config names if it is a file that does not exist yet (a copy,
 * freed by the caller), else NULL. */
static char *absent_path(const char *text) {
  cJSON *doc = cJSON_Parse(text);
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "path");
  char *path = NULL;
  if (cJSON_IsString(p) && p->valuestring[0] && access(p->valuestring, F_OK) != 0)
    path = strdup(p->valuestring);
  cJSON_Delete(doc);
  return path;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  init_once();
  return 0;
}

static void check_failure(int rc, const char *what) {
  FUZZ_CHECK(fuzz_known_code(rc) && rc != SNAP_OK, "%s returned %d", what, rc);
  FUZZ_CHECK(snap_error_message()[0] != '\0', "%s failed (%d) without a message", what, rc);
}

/* A store that opened must work: save one state and read it back. */
static void round_trip(snap_store *st) {
  static const char state[] = "{\"n\":1}";
  int rc = snap_save(st, "fuzz-config", 3, SNAP_FORMAT_JSON, state, sizeof state - 1, NULL, NULL);
  if (rc != SNAP_OK) {
    /* The configuration may legitimately forbid it (a tiny max_stored_size). */
    check_failure(rc, "save");
    return;
  }
  snap_snapshot *s = NULL;
  rc = snap_load_latest(st, "fuzz-config", NULL, &s);
  if (rc != SNAP_OK) {
    check_failure(rc, "load");
    return;
  }
  FUZZ_CHECK(s != NULL, "a saved snapshot is missing");
  FUZZ_CHECK(s->seq == 3 && s->len == sizeof state - 1 && memcmp(s->data, state, s->len) == 0,
             "a saved snapshot came back different (seq %lld, %zu bytes)", (long long)s->seq,
             s->len);
  snap_snapshot_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 1)
    return 0;
  char *text = malloc(size);
  if (!text)
    return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  unsigned mode = data[0] % 5;
  snap_error_clear();
  int rc;
  if (mode <= 2) {
    snap_store *st = NULL;
    char *path = mode == 1 ? absent_path(text) : NULL;
    switch (mode) {
    case 0:
      rc = snap_store_open_backend(&st, snap_backend_memory(), text);
      break;
    case 1:
      rc = snap_store_open_backend(&st, snap_backend_sqlite(), text);
      break;
    default:
      rc = snap_store_open(&st, (data[0] & 0x80) ? "sqlite" : "memory", text);
      break;
    }
    if (rc == SNAP_OK) {
      FUZZ_CHECK(st != NULL, "open succeeded without a store");
      if (strcmp(snap_store_backend_name(st), "memory") == 0)
        round_trip(st);
      snap_store_close(st);
    } else {
      check_failure(rc, "store open");
    }
    /* Opening is lazy: configuring a store never creates its file. */
    if (path)
      FUZZ_CHECK(access(path, F_OK) != 0, "opening a store created '%s'", path);
    free(path);
  } else {
    snap_plugin *p = NULL;
    rc = snap_plugin_open(&p, text, (data[0] & 0x80) ? fuzz_kr_active1 : NULL);
    if (rc == SNAP_OK) {
      FUZZ_CHECK(p != NULL && snap_plugin_store(p) != NULL && snap_plugin_options(p) != NULL,
                 "plugin open succeeded without a store or options");
      if (strcmp(snap_store_backend_name(snap_plugin_store(p)), "memory") == 0)
        round_trip(snap_plugin_store(p));
      snap_plugin_close(p);
    } else {
      check_failure(rc, "plugin open");
    }
  }
  free(text);
  return 0;
}
