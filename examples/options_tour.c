/*
 * options_tour: one real state through every option combination of the body
 * pipeline, with the stored size of each.
 *
 *   options_tour [state.json]
 *
 * Without an argument it uses a built-in bank-account state of about 4 KiB.
 * The state is also converted to msgpack, so both formats are shown. Every
 * body is decoded again and compared byte for byte with the state. A second
 * table shows the same account with fewer transactions, from 16 bytes up:
 * where compression starts to pay, for choosing its minimum size. Times are
 * per call, the fastest of 5 rounds of 200 (a busy machine slows rounds down,
 * never speeds one up). docs/OPTIONS.md explains the choices.
 */
#include <cjson/cJSON.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap/pipeline.h"

/* A realistic actor state: an account with its `entries` most recent
 * transactions (47: about 4 KiB of JSON). */
static char *builtin_state(int entries) {
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
  for (int i = 0; i < entries; i++) {
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

typedef struct sample {
  const char *name;
  snap_format fmt;
  const void *p;
  size_t n;
} sample;

enum { ITER = 200, ROUNDS = 5 };

/* Encodes and decodes `s` under `o`, checks the round trip byte for byte and
 * gives the fastest round's time per call. SNAP_OK, or the failure. */
static int measure(const sample *s, const snap_options *o, snap_buf *body, unsigned *st,
                   double *enc_us, double *dec_us) {
  snap_buf back = SNAP_BUF_INIT;
  int rc = SNAP_OK;
  *enc_us = *dec_us = 1e30;
  for (int round = 0; round < ROUNDS && rc == SNAP_OK; round++) {
    double t0 = now_us();
    for (int i = 0; i < ITER && rc == SNAP_OK; i++)
      rc = snap_body_encode("account-42", 7, s->fmt, s->p, s->n, o, body, st);
    double t1 = now_us();
    for (int i = 0; i < ITER && rc == SNAP_OK; i++)
      rc = snap_body_decode("account-42", 7, body->data, body->len, o, &back, NULL, NULL);
    double t2 = now_us();
    *enc_us = (t1 - t0) / ITER < *enc_us ? (t1 - t0) / ITER : *enc_us;
    *dec_us = (t2 - t1) / ITER < *dec_us ? (t2 - t1) / ITER : *dec_us;
  }
  if (rc == SNAP_OK && (back.len != s->n || memcmp(back.data, s->p, back.len) != 0))
    rc = snap_error_set(SNAP_ECORRUPT, "the decoded state differs from the saved one");
  snap_buf_dispose(&back);
  return rc;
}

/* Every format x compression level x protection. Returns the failures. */
static int options_table(const sample formats[2], snap_keyring *kr) {
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
  snap_buf body = SNAP_BUF_INIT;
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
        double enc, dec;
        if (measure(&formats[f], o, &body, &st, &enc, &dec) != SNAP_OK) {
          printf("%-8s %-7s %-11s FAILED: %s\n", formats[f].name, comps[c].name, prots[p],
                 snap_error_message());
          failures++;
        } else {
          printf("%-8s %-7s %-11s %-16s %8zu %8zu %6.1f%% %9.2f %9.2f\n", formats[f].name,
                 comps[c].name, prots[p], stage_names(st), formats[f].n, body.len,
                 100.0 * (double)body.len / (double)formats[f].n, enc, dec);
        }
        snap_options_free(o);
      }
    }
  }
  snap_buf_dispose(&body);
  return failures;
}

/* One JSON state without and with zlib-6 (no key): stored sizes and times. */
static int size_row(const char *json, size_t len, snap_buf *body) {
  sample s = {"json", SNAP_FORMAT_JSON, json, len};
  size_t stored[2];
  double enc[2], dec[2];
  for (int z = 0; z < 2; z++) {
    snap_options *o;
    snap_options_new(&o);
    snap_options_set_compression(o, z ? SNAP_COMPRESSION_ZLIB : SNAP_COMPRESSION_NONE, z ? 6 : 0);
    unsigned st = 0;
    int rc = measure(&s, o, body, &st, &enc[z], &dec[z]);
    snap_options_free(o);
    if (rc != SNAP_OK) {
      printf("%8zu FAILED: %s\n", len, snap_error_message());
      return 1;
    }
    stored[z] = body->len;
  }
  long saved = (long)stored[0] - (long)stored[1];
  printf("%8zu %8zu %8zu %+8ld %9.2f %9.2f %9.2f %9.2f\n", len, stored[0], stored[1], -saved, enc[0],
         enc[1], dec[0], dec[1]);
  return 0;
}

/* The account with 0, 1, 2, 4 ... transactions, and a 16-byte state: where
 * zlib starts to pay. Returns the failures. */
static int size_table(void) {
  printf("\nstate sizes (json, no key): stored without and with zlib-6\n");
  printf("%8s %8s %8s %8s %9s %9s %9s %9s\n", "state", "none", "zlib-6", "diff", "enc us",
         "enc us z", "dec us", "dec us z");
  snap_buf body = SNAP_BUF_INIT;
  int failures = size_row("{\"balance\":1234}", 16, &body);
  for (int entries = 0; entries <= 32; entries = entries ? entries * 2 : 1) {
    char *json = builtin_state(entries);
    failures += size_row(json, strlen(json), &body);
    cJSON_free(json);
  }
  snap_buf_dispose(&body);
  return failures;
}

int main(int argc, char **argv) {
  size_t json_len = 0;
  char *json = argc > 1 ? read_file(argv[1], &json_len) : builtin_state(47);
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
  const sample formats[2] = {{"json", SNAP_FORMAT_JSON, json, json_len},
                             {"msgpack", SNAP_FORMAT_MSGPACK, mp.data, mp.size}};
  int failures = options_table(formats, kr);
  failures += size_table();
  snap_keyring_free(kr);
  msgpack_sbuffer_destroy(&mp);
  if (argc > 1)
    free(json);
  else
    cJSON_free(json);
  return failures ? 1 : 0;
}
