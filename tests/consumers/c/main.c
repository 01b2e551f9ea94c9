/* An out-of-tree C program built against an installed snapstore through
 * pkg-config: it saves an encrypted, compressed snapshot to a SQLite file and
 * loads it back. Usage: consumer-c DIR (a writable scratch directory). */
#include <snapstore.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, int rc) {
  fprintf(stderr, "consumer-c: %s: %s (%s)\n", what, snap_strerror(rc), snap_error_message());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  if (strcmp(snap_version(), SNAPSTORE_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer-c: headers %s, library %s\n", SNAPSTORE_VERSION_STRING,
            snap_version());
    return 1;
  }
  char config[512];
  snprintf(config, sizeof config, "{\"path\": \"%s/consumer-c.db\", \"keep\": 3}", argv[1]);
  static const char state[] = "{\"account\": \"42\", \"balance\": 1200, \"owner\": \"ada\"}";
  uint8_t key[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 7 + 1);

  snap_store *st = NULL;
  snap_keyring *kr = NULL;
  snap_options *o = NULL;
  snap_snapshot *snap = NULL;
  snap_meta meta;
  int rc, status = 1;
  if ((rc = snap_store_open(&st, "sqlite", config)) != SNAP_OK) {
    status = fail("snap_store_open", rc);
    goto out;
  }
  if ((rc = snap_keyring_new(&kr)) != SNAP_OK || (rc = snap_keyring_add(kr, 1, key, sizeof key)) ||
      (rc = snap_options_new(&o)) || (rc = snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1)) ||
      (rc = snap_options_set_encryption(o, kr, "consumer/c/v1"))) {
    status = fail("options", rc);
    goto out;
  }
  if ((rc = snap_save(st, "account-42", 7, SNAP_FORMAT_JSON, state, strlen(state), o, &meta))) {
    status = fail("snap_save", rc);
    goto out;
  }
  if ((rc = snap_load_latest(st, "account-42", o, &snap)) != SNAP_OK || snap == NULL) {
    status = fail("snap_load_latest", rc);
    goto out;
  }
  if (snap->seq != 7 || snap->len != strlen(state) || memcmp(snap->data, state, snap->len) != 0 ||
      !(snap->stages & SNAP_STAGE_ENCRYPTED)) {
    fprintf(stderr, "consumer-c: loaded snapshot differs from the saved one\n");
    goto out;
  }
  printf("consumer-c: snapstore %s: saved %zu bytes as %zu (encrypted%s), loaded seq %lld back\n",
         snap_version(), meta.state_len, meta.stored_len,
         (meta.stages & SNAP_STAGE_COMPRESSED) ? ", compressed" : "", (long long)snap->seq);
  status = 0;
out:
  snap_snapshot_free(snap);
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
  return status;
}
