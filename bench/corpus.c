/*
 * The small-state corpus (corpus.h): account states of about 256 B, 1 KiB or
 * 4 KiB, no two alike (names, amounts, times and the length of the history
 * vary), from a fixed seed; msgpack holds the same values as the JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <msgpack.h>
#include <zdict.h>

#include "corpus.h"

static const char *const FIRST[] = {"Ada",   "Alan",  "Grace",  "Edsger", "Barbara", "Donald",
                                    "Ken",   "Dennis", "Frances", "John",  "Margaret", "Niklaus"};
static const char *const LAST[] = {"Lovelace", "Turing", "Hopper",  "Dijkstra", "Liskov",
                                   "Knuth",    "Thompson", "Ritchie", "Allen",   "Backus",
                                   "Hamilton", "Wirth"};
static const char *const MEMO[] = {"salary", "rent", "groceries", "atm", "refund", "transfer",
                                   "utilities", "insurance"};
static const char *const PARTY[] = {"ACME GmbH", "Globex Corp",      "Initech",
                                    "Umbrella plc", "Hooli Inc",     "Stark Industries",
                                    "Wayne Enterprises", "Cyberdyne Systems"};

static uint32_t next(uint32_t *x) {
  *x = *x * 1664525u + 1013904223u;
  return *x >> 8;
}

/* Seconds since 2024-01-01T00:00:00Z as ISO-8601 (2024 is a leap year). */
static void iso8601(char *b, size_t cap, uint32_t t) {
  static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  unsigned day = t / 86400 % 366, s = t % 86400, m = 0;
  while (m < 11 && day >= mdays[m])
    day -= mdays[m++];
  snprintf(b, cap, "2024-%02u-%02uT%02u:%02u:%02uZ", (m + 1) % 100u, (day + 1) % 100u,
           s / 3600 % 100u, s / 60 % 60, s % 60);
}

/* State i of the ACCOUNT shape, about `target` bytes. */
static size_t account(char *dst, size_t cap, unsigned i, size_t target) {
  uint32_t x = i * 2654435761u + (uint32_t)target, t = 0;
  char when[32];
  t = next(&x) % 20000000;
  iso8601(when, sizeof when, t);
  const char *first = FIRST[next(&x) % 12], *last = LAST[next(&x) % 12];
  int n = snprintf(dst, cap,
                   "{\"id\":\"acc-%06u\",\"owner\":{\"first\":\"%s\",\"last\":\"%s\","
                   "\"email\":\"%s.%s@example.com\"},\"currency\":\"%s\",\"balance\":\"%u.%02u\","
                   "\"opened\":\"%s\",\"status\":\"%s\",\"history\":[",
                   i, first, last, first, last, next(&x) % 3 ? "EUR" : "USD", next(&x) % 100000,
                   next(&x) % 100, when, next(&x) % 7 ? "active" : "frozen");
  for (unsigned k = 0; (size_t)n + 60 < target && (size_t)n + 300 < cap; k++) {
    t += next(&x) % 259200; /* the history is chronological: up to 3 days apart */
    iso8601(when, sizeof when, t);
    n += snprintf(dst + n, cap - (size_t)n,
                  "%s{\"seq\":%u,\"at\":\"%s\",\"kind\":\"%s\",\"amount\":\"%u.%02u\","
                  "\"counterparty\":\"%s\",\"memo\":\"%s\",\"state\":\"%s\"}",
                  k ? "," : "", k + 1, when, next(&x) % 2 ? "deposit" : "withdrawal",
                  next(&x) % 2000, next(&x) % 100, PARTY[next(&x) % 8], MEMO[next(&x) % 8],
                  next(&x) % 20 ? "settled" : "pending");
  }
  n += snprintf(dst + n, cap - (size_t)n, "]}");
  return (size_t)n;
}

/* State i of the ACCOUNT_EPOCH shape, about `target` bytes. */
static size_t account_epoch(char *dst, size_t cap, unsigned i, size_t target) {
  uint32_t x = i * 2654435761u + (uint32_t)target;
  int n = snprintf(dst, cap,
                   "{\"id\":\"acc-%06u\",\"owner\":{\"first\":\"%s\",\"last\":\"%s\"},"
                   "\"currency\":\"%s\",\"balance_cents\":%u,\"opened\":%u,\"active\":%s,"
                   "\"history\":[",
                   i, FIRST[next(&x) % 12], LAST[next(&x) % 12], next(&x) % 3 ? "EUR" : "USD",
                   next(&x) % 10000000, 1600000000u + next(&x) % 100000000,
                   next(&x) % 7 ? "true" : "false");
  for (unsigned k = 0; (size_t)n + 50 < target && (size_t)n + 200 < cap; k++)
    n += snprintf(dst + n, cap - (size_t)n,
                  "%s{\"seq\":%u,\"ts\":%u,\"kind\":\"%s\",\"cents\":%d,\"memo\":\"%s\"}",
                  k ? "," : "", k + 1, 1600000000u + next(&x) % 100000000,
                  next(&x) % 2 ? "deposit" : "withdrawal", (int)(next(&x) % 200000) - 100000,
                  MEMO[next(&x) % 8]);
  n += snprintf(dst + n, cap - (size_t)n, "]}");
  return (size_t)n;
}

/* The same value as msgpack (the corpus holds strings, integers, booleans,
 * objects and arrays only). */
static void pack(msgpack_packer *pk, const cJSON *v) {
  if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
    int n = cJSON_GetArraySize(v);
    if (cJSON_IsObject(v))
      msgpack_pack_map(pk, (size_t)n);
    else
      msgpack_pack_array(pk, (size_t)n);
    for (const cJSON *e = v->child; e; e = e->next) {
      if (cJSON_IsObject(v)) {
        size_t kl = strlen(e->string);
        msgpack_pack_str(pk, kl);
        msgpack_pack_str_body(pk, e->string, kl);
      }
      pack(pk, e);
    }
  } else if (cJSON_IsString(v)) {
    size_t l = strlen(v->valuestring);
    msgpack_pack_str(pk, l);
    msgpack_pack_str_body(pk, v->valuestring, l);
  } else if (cJSON_IsBool(v)) {
    cJSON_IsTrue(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
  } else if (cJSON_IsNumber(v)) {
    msgpack_pack_int64(pk, (int64_t)v->valuedouble);
  } else {
    msgpack_pack_nil(pk);
  }
}

/* Appends state `json` (len bytes) to the corpus as its format wants it. */
static int append(corpus *c, unsigned i, const char *json, size_t len, size_t *at, size_t cap) {
  c->off[i] = *at;
  if (c->fmt == SNAP_FORMAT_JSON) {
    memcpy(c->buf + *at, json, len);
    c->len[i] = len;
  } else {
    cJSON *v = cJSON_ParseWithLength(json, len);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (v)
      pack(&pk, v);
    cJSON_Delete(v);
    if (!v || sb.size > cap - *at) {
      msgpack_sbuffer_destroy(&sb);
      return -1;
    }
    memcpy(c->buf + *at, sb.data, sb.size);
    c->len[i] = sb.size;
    msgpack_sbuffer_destroy(&sb);
  }
  *at += c->len[i];
  return 0;
}

static int train(corpus *c, char *err, size_t errlen) {
  uint8_t *d = malloc(DICT_CAPACITY);
  size_t dn = d ? ZDICT_trainFromBuffer(d, DICT_CAPACITY, c->buf, c->len, CORPUS_TRAIN) : 0;
  int rc = d && !ZDICT_isError(dn) && snap_dict_new(&c->dict, d, dn) == SNAP_OK ? 0 : -1;
  if (rc)
    snprintf(err, errlen, "training: %s", !d ? "out of memory" : ZDICT_isError(dn) ? ZDICT_getErrorName(dn) : snap_error_message());
  free(d);
  return rc;
}

int corpus_make(corpus *c, size_t target, corpus_style style, snap_format fmt, char *err,
                size_t errlen) {
  memset(c, 0, sizeof *c);
  c->fmt = fmt;
  const size_t cap = (size_t)CORPUS_N * (target + 512);
  char *json = malloc(target + 512);
  c->buf = malloc(cap);
  c->off = calloc(CORPUS_N, sizeof *c->off);
  c->len = calloc(CORPUS_N, sizeof *c->len);
  size_t at = 0, sum = 0;
  int rc = json && c->buf && c->off && c->len ? 0 : -1;
  for (unsigned i = 0; i < CORPUS_N && rc == 0; i++) {
    size_t n = style == CORPUS_ACCOUNT ? account(json, target + 512, i, target)
                                       : account_epoch(json, target + 512, i, target);
    rc = append(c, i, json, n, &at, cap);
  }
  free(json);
  if (rc) {
    snprintf(err, errlen, "out of memory");
    corpus_free(c);
    return -1;
  }
  for (unsigned i = CORPUS_TRAIN; i < CORPUS_N; i++)
    sum += c->len[i];
  c->mean = (double)sum / (CORPUS_N - CORPUS_TRAIN);
  if (train(c, err, errlen) != 0) {
    corpus_free(c);
    return -1;
  }
  return 0;
}

void corpus_free(corpus *c) {
  snap_dict_free(c->dict);
  free(c->buf);
  free(c->off);
  free(c->len);
  memset(c, 0, sizeof *c);
}

int corpus_body_bytes(const corpus *c, const snap_options *o, uint64_t *out) {
  snap_buf b = SNAP_BUF_INIT;
  *out = 0;
  for (unsigned i = CORPUS_TRAIN; i < CORPUS_N; i++) {
    if (snap_body_encode("acc", 1, c->fmt, c->buf + c->off[i], c->len[i], o, &b, NULL) !=
        SNAP_OK) {
      snap_buf_dispose(&b);
      return -1;
    }
    *out += b.len;
  }
  snap_buf_dispose(&b);
  return 0;
}

static int dict_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  (void)name;
  if (id != snap_dict_id(ud))
    return SNAP_ENOTFOUND;
  *out = snap_dict_ref(ud);
  return SNAP_OK;
}

snap_options *corpus_zstd_options(const corpus *c, int dict) {
  snap_options *o = NULL;
  if (snap_options_new(&o) != SNAP_OK)
    return NULL;
  if (snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, 3) != SNAP_OK ||
      (dict && (snap_options_set_dictionary(o, snap_dict_id(c->dict), NULL) != SNAP_OK ||
                snap_options_set_dictionary_source(o, dict_source, c->dict) != SNAP_OK))) {
    snap_options_free(o);
    return NULL;
  }
  return o;
}
