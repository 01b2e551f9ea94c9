/*
 * options_tour: one real state through every option combination of the body
 * pipeline, with the stored size of each.
 *
 *   options_tour [state.json]
 *
 * Without an argument it uses a built-in bank-account state of about 4 KiB.
 * The state is also converted to msgpack, so both formats are shown. Every
 * body is decoded again and compared byte for byte with the state.
 */
#include <cjson/cJSON.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap/pipeline.h"

/* A realistic actor state: an account with its recent transactions. */
static char *builtin_state(void) {
  static const char *const kinds[] = {"deposit",      "withdrawal",   "transfer-in",
                                      "transfer-out", "card-payment", "fee"};
  static const char *const memos[] = {
      "salary", "rent", "groceries", "atm", "refund", "utilities", "transfer from savings",
      "coffee"};
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "account", "acc-000042");
  cJSON_AddStringToObject(root, "owner", "Ada Lovelace");
  cJSON_AddStringToObject(root, "currency", "EUR");
  cJSON_AddNumberToObject(root, "balance_cents", 1234567);
  cJSON_AddNumberToObject(root, "overdraft_limit_cents", 50000);
  cJSON_AddBoolToObject(root, "frozen", 0);
  cJSON_AddNumberToObject(root, "interest_rate", 0.0125);
  cJSON *tags = cJSON_AddArrayToObject(root, "tags");
  cJSON_AddItemToArray(tags, cJSON_CreateString("premium"));
  cJSON_AddItemToArray(tags, cJSON_CreateString("eu"));
  cJSON *hist = cJSON_AddArrayToObject(root, "history");
  unsigned x = 42;
  for (int i = 0; i < 47; i++) {
    x = x * 1103515245u + 12345u;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "seq", 1000 + i);
    cJSON_AddNumberToObject(t, "ts", 1735689600000.0 + i * 3600000.0);
    cJSON_AddStringToObject(t, "kind", kinds[(x >> 8) % 6]);
    cJSON_AddNumberToObject(t, "cents", (double)((int)((x >> 4) % 200000) - 100000));
    cJSON_AddStringToObject(t, "memo", memos[(x >> 16) % 8]);
    cJSON_AddItemToArray(hist, t);
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return s;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *p = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 65536;
      char *q = realloc(p, cap);
      if (!q) {
        free(p);
        fclose(f);
        return NULL;
      }
      p = q;
    }
    size_t r = fread(p + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  fclose(f);
  *len = n;
  return p;
}

/* JSON -> msgpack: objects, arrays, strings, integral numbers as integers. */
static void pack(msgpack_packer *pk, const cJSON *j) {
  if (cJSON_IsObject(j)) {
    msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(j));
    for (const cJSON *c = j->child; c; c = c->next) {
      msgpack_pack_str_with_body(pk, c->string, strlen(c->string));
      pack(pk, c);
    }
  } else if (cJSON_IsArray(j)) {
    msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(j));
    for (const cJSON *c = j->child; c; c = c->next)
      pack(pk, c);
  } else if (cJSON_IsString(j)) {
    msgpack_pack_str_with_body(pk, j->valuestring, strlen(j->valuestring));
  } else if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (d > -9.0e15 && d < 9.0e15 && d == (double)(int64_t)d)
      msgpack_pack_int64(pk, (int64_t)d);
    else
      msgpack_pack_double(pk, d);
  } else if (cJSON_IsTrue(j)) {
    msgpack_pack_true(pk);
  } else if (cJSON_IsFalse(j)) {
    msgpack_pack_false(pk);
  } else {
    msgpack_pack_nil(pk);
  }
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static const char *stage_names(unsigned st) {
  static char buf[32];
  snprintf(buf, sizeof buf, "%s%s%s%s", st & SNAP_STAGE_COMPRESSED ? "zlib " : "",
           st & SNAP_STAGE_ENCRYPTED ? "aead " : "", st & SNAP_STAGE_MAC ? "mac " : "",
           st ? "" : "crc32");
  return buf;
}

int main(int argc, char **argv) {
  size_t json_len = 0;
  char *json = argc > 1 ? read_file(argv[1], &json_len) : builtin_state();
  if (!json) {
    fprintf(stderr, "options_tour: cannot read %s\n", argv[1]);
    return 1;
  }
  if (argc <= 1)
    json_len = strlen(json);
  if (snap_payload_validate(SNAP_FORMAT_JSON, json, json_len) != SNAP_OK) {
    fprintf(stderr, "options_tour: %s\n", snap_error_message());
    return 1;
  }
  cJSON *tree = cJSON_ParseWithLength(json, json_len);
  msgpack_sbuffer mp;
  msgpack_sbuffer_init(&mp);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &mp, msgpack_sbuffer_write);
  pack(&pk, tree);
  cJSON_Delete(tree);

  /* A demo key. Real deployments load theirs: snap_keyring_add_file(). */
  uint8_t key[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(0xa0 + i);
  snap_keyring *kr;
  if (snap_keyring_new(&kr) || snap_keyring_add(kr, 1, key, sizeof key)) {
    fprintf(stderr, "options_tour: %s\n", snap_error_message());
    return 1;
  }

  const struct {
    const char *name;
    snap_format fmt;
    const void *p;
    size_t n;
  } formats[] = {{"json", SNAP_FORMAT_JSON, json, json_len},
                 {"msgpack", SNAP_FORMAT_MSGPACK, mp.data, mp.size}};
  const struct {
    const char *name;
    snap_compression alg;
    int level;
  } comps[] = {{"none", SNAP_COMPRESSION_NONE, 0},
               {"zlib-1", SNAP_COMPRESSION_ZLIB, 1},
               {"zlib-6", SNAP_COMPRESSION_ZLIB, 6},
               {"zlib-9", SNAP_COMPRESSION_ZLIB, 9}};
  const char *prots[] = {"checksum", "integrity", "encryption"};

  printf("%-8s %-7s %-11s %-16s %8s %8s %7s %9s %9s\n", "format", "zlib", "protection", "stages",
         "state", "stored", "ratio", "enc us", "dec us");
  snap_buf body = SNAP_BUF_INIT, back = SNAP_BUF_INIT;
  int failures = 0;
  for (size_t f = 0; f < 2; f++) {
    for (size_t c = 0; c < 4; c++) {
      for (size_t p = 0; p < 3; p++) {
        snap_options *o;
        snap_options_new(&o);
        snap_options_set_compression(o, comps[c].alg, comps[c].level);
        if (p == 1)
          snap_options_set_integrity(o, kr, "example/options-tour/v1");
        if (p == 2)
          snap_options_set_encryption(o, kr, "example/options-tour/v1");
        unsigned st = 0;
        enum { ITER = 200 };
        double t0 = now_us();
        int rc = SNAP_OK;
        for (int i = 0; i < ITER && rc == SNAP_OK; i++)
          rc = snap_body_encode("account-42", 7, formats[f].fmt, formats[f].p, formats[f].n, o,
                                &body, &st);
        double t1 = now_us();
        for (int i = 0; i < ITER && rc == SNAP_OK; i++)
          rc = snap_body_decode("account-42", 7, body.data, body.len, o, &back, NULL, NULL);
        double t2 = now_us();
        if (rc != SNAP_OK || back.len != formats[f].n ||
            memcmp(back.data, formats[f].p, back.len) != 0) {
          printf("%-8s %-7s %-11s FAILED: %s\n", formats[f].name, comps[c].name, prots[p],
                 rc ? snap_error_message() : "bytes differ");
          failures++;
        } else {
          printf("%-8s %-7s %-11s %-16s %8zu %8zu %6.1f%% %9.2f %9.2f\n", formats[f].name,
                 comps[c].name, prots[p], stage_names(st), formats[f].n, body.len,
                 100.0 * (double)body.len / (double)formats[f].n, (t1 - t0) / ITER,
                 (t2 - t1) / ITER);
        }
        snap_options_free(o);
      }
    }
  }
  snap_buf_dispose(&body);
  snap_buf_dispose(&back);
  snap_keyring_free(kr);
  msgpack_sbuffer_destroy(&mp);
  if (argc > 1)
    free(json);
  else
    cJSON_free(json);
  return failures ? 1 : 0;
}
