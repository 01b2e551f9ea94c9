/* The "dict" rows: a deterministic corpus of small JSON states of one entity
 * type (accounts with varied names, amounts, timestamps and a history of
 * varying length) at about 256 B, 1 KiB and 4 KiB; a zstd dictionary trained
 * on the first 1,000 states; and the compression ratio (state bytes / body
 * bytes, whole bodies) on the other 9,000 with zstd-3 and the dictionary
 * against zlib-1 (docs/PERFORMANCE.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zdict.h>

#include "dict_corpus.h"
#include "snap/pipeline.h"

#define CORPUS_N 10000
#define TRAIN_N 1000

static const char *const FIRST[] = {"Ada",   "Alan",  "Grace",  "Edsger", "Barbara", "Donald",
                                    "Ken",   "Dennis", "Frances", "John",  "Margaret", "Niklaus"};
static const char *const LAST[] = {"Lovelace", "Turing", "Hopper",  "Dijkstra", "Liskov",
                                   "Knuth",    "Thompson", "Ritchie", "Allen",   "Backus",
                                   "Hamilton", "Wirth"};
static const char *const MEMO[] = {"salary", "rent", "groceries", "atm", "refund", "transfer",
                                   "utilities", "insurance"};

static uint32_t next(uint32_t *x) {
  *x = *x * 1664525u + 1013904223u;
  return *x >> 8;
}

/* State i of the corpus, about `target` bytes. */
static size_t account(char *dst, size_t cap, unsigned i, size_t target) {
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

static int dict_source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  (void)name;
  if (id != snap_dict_id(ud))
    return SNAP_ENOTFOUND;
  *out = snap_dict_ref(ud);
  return SNAP_OK;
}

/* Sum of the body bytes of states [TRAIN_N, CORPUS_N) encoded with `o`. */
static int body_bytes(const char *buf, const size_t *sizes, const snap_options *o, uint64_t *out) {
  snap_buf b = SNAP_BUF_INIT;
  size_t at = 0;
  *out = 0;
  for (unsigned i = 0; i < CORPUS_N; at += sizes[i++]) {
    if (i < TRAIN_N)
      continue;
    if (snap_body_encode("acc", 1, SNAP_FORMAT_JSON, buf + at, sizes[i], o, &b, NULL) != SNAP_OK) {
      snap_buf_dispose(&b);
      return -1;
    }
    *out += b.len;
  }
  snap_buf_dispose(&b);
  return 0;
}

int bench_dict_corpus(size_t target, bench_dict_result *r, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  const size_t cap = (size_t)CORPUS_N * (target + 512);
  char *buf = malloc(cap);
  size_t *sizes = malloc(CORPUS_N * sizeof *sizes), at = 0;
  uint8_t *d = malloc(DICT_CAPACITY);
  int rc = -1;
  snap_dict *dict = NULL;
  snap_options *zl = NULL, *zd = NULL;
  if (!buf || !sizes || !d) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  for (unsigned i = 0; i < CORPUS_N; i++) {
    sizes[i] = account(buf + at, cap - at, i, target);
    at += sizes[i];
  }
  size_t dn = ZDICT_trainFromBuffer(d, DICT_CAPACITY, buf, sizes, TRAIN_N);
  if (ZDICT_isError(dn) || snap_dict_new(&dict, d, dn) != SNAP_OK) {
    snprintf(err, errlen, "training: %s", ZDICT_isError(dn) ? ZDICT_getErrorName(dn) : "dict");
    goto out;
  }
  if (snap_options_new(&zl) || snap_options_new(&zd) ||
      snap_options_set_compression(zl, SNAP_COMPRESSION_ZLIB, 1) ||
      snap_options_set_compression(zd, SNAP_COMPRESSION_ZSTD, 3) ||
      snap_options_set_dictionary(zd, snap_dict_id(dict), NULL) ||
      snap_options_set_dictionary_source(zd, dict_source, dict)) {
    snprintf(err, errlen, "options: %s", snap_error_message());
    goto out;
  }
  for (unsigned i = TRAIN_N; i < CORPUS_N; i++)
    r->state_bytes += sizes[i];
  if (body_bytes(buf, sizes, zl, &r->zlib_bytes) || body_bytes(buf, sizes, zd, &r->dict_bytes)) {
    snprintf(err, errlen, "encode: %s", snap_error_message());
    goto out;
  }
  r->dict_len = dn;
  r->mean_state = (double)r->state_bytes / (CORPUS_N - TRAIN_N);
  rc = 0;
out:
  snap_options_free(zl);
  snap_options_free(zd);
  snap_dict_free(dict);
  free(d);
  free(sizes);
  free(buf);
  return rc;
}
