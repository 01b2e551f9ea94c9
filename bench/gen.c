/*
 * The state generator: realistic actor states (a bank ledger of account
 * entries) from a fixed seed, so that every run measures the same bytes.
 * The shape follows the reference ledgers the project's figures are quoted
 * for: an owner, a version, a timestamp, accounts {id, name, balance,
 * currency, createdAt, updatedAt} and totals. JSON is printed by cJSON and
 * msgpack packed by msgpack-c, so both encodings hold the same ledger.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "bench.h"

static const char *const first_names[] = {"Alice", "Bob",    "Carol",  "Dave",   "Eve",   "Frank",
                                          "Grace", "Heidi",  "Ivan",   "Judy",   "Karl",  "Mallory",
                                          "Niaj",  "Olivia", "Peggy",  "Rupert", "Sybil", "Trent",
                                          "Uma",   "Victor", "Walter", "Xena",   "Yusuf", "Zoe"};
static const char *const last_names[] = {
    "Jensen", "Silva",  "Smith",  "Tanaka", "Kim",    "Kowalski", "Novak",  "Nowak",
    "Rossi",  "Muller", "Garcia", "Dubois", "Haddad", "Okafor",   "Larsen", "Moreau"};
static const char *const currencies[] = {"EUR", "USD", "CHF", "GBP", "JPY"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* 2024-01-01T00:00:00Z in ms: the ledger's dates fall in 2024. */
#define LEDGER_EPOCH_MS 1704067200000LL
#define LEDGER_YEAR_MS (366LL * 86400000LL)

/* splitmix64: small, fast and the same everywhere. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct account {
  char id[16];
  char name[32];
  double balance;
  const char *currency;
  char created[32];
  long long updated;
} account;

static void iso8601(char *buf, size_t cap, long long ms) {
  /* Days since 2024-01-01 to a calendar date (2024 is a leap year). */
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  long long off = ms - LEDGER_EPOCH_MS;
  int day = (int)(off / 86400000LL);
  long long rem = off % 86400000LL;
  int month = 0;
  while (month < 11 && day >= mdays[month]) {
    day -= mdays[month];
    month++;
  }
  /* Every field is in range by construction; the casts tell the compiler so. */
  snprintf(buf, cap, "2024-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(month + 1) % 100u,
           (unsigned)(day + 1) % 100u, (unsigned)(rem / 3600000) % 100u,
           (unsigned)(rem / 60000 % 60), (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
}

static account *make_accounts(int n) {
  account *a = calloc((size_t)(n > 0 ? n : 1), sizeof *a);
  if (!a) {
    return NULL;
  }
  uint64_t seed = 42;
  for (int i = 0; i < n; i++) {
    snprintf(a[i].id, sizeof a[i].id, "acc-%08d", i + 1);
    snprintf(a[i].name, sizeof a[i].name, "%s %s",
             first_names[rng_next(&seed) % COUNT(first_names)],
             last_names[rng_next(&seed) % COUNT(last_names)]);
    a[i].balance = (double)(rng_next(&seed) % 10000000u) / 100.0;
    a[i].currency = currencies[rng_next(&seed) % COUNT(currencies)];
    long long created = LEDGER_EPOCH_MS + (long long)(rng_next(&seed) % (uint64_t)LEDGER_YEAR_MS);
    iso8601(a[i].created, sizeof a[i].created, created);
    a[i].updated = created + (long long)(rng_next(&seed) % (60LL * 86400000LL));
  }
  return a;
}

static double total_balance(const account *a, int n) {
  double cents = 0;
  for (int i = 0; i < n; i++) {
    cents += round(a[i].balance * 100.0);
  }
  return cents / 100.0;
}

static char *print_json(const account *a, int n) {
  cJSON *root = cJSON_CreateObject();
  cJSON *arr = NULL, *totals = NULL;
  char *out = NULL;
  if (!root) {
    return NULL;
  }
  if (!cJSON_AddStringToObject(root, "ownerId", "owner-000042") ||
      !cJSON_AddNumberToObject(root, "version", 0) ||
      !cJSON_AddNumberToObject(root, "updatedAt", (double)LEDGER_EPOCH_MS) ||
      !(arr = cJSON_AddArrayToObject(root, "accounts"))) {
    goto done;
  }
  for (int i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
      goto done;
    }
    cJSON_AddItemToArray(arr, o);
    if (!cJSON_AddStringToObject(o, "id", a[i].id) ||
        !cJSON_AddStringToObject(o, "name", a[i].name) ||
        !cJSON_AddNumberToObject(o, "balance", a[i].balance) ||
        !cJSON_AddStringToObject(o, "currency", a[i].currency) ||
        !cJSON_AddStringToObject(o, "createdAt", a[i].created) ||
        !cJSON_AddNumberToObject(o, "updatedAt", (double)a[i].updated)) {
      goto done;
    }
  }
  if (!(totals = cJSON_AddObjectToObject(root, "totals")) ||
      !cJSON_AddNumberToObject(totals, "count", n) ||
      !cJSON_AddNumberToObject(totals, "balance", total_balance(a, n))) {
    goto done;
  }
  out = cJSON_PrintUnformatted(root);
done:
  cJSON_Delete(root);
  return out;
}

static void pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static int pack_msgpack(const account *a, int n, msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 5);
  pack_str(&pk, "ownerId");
  pack_str(&pk, "owner-000042");
  pack_str(&pk, "version");
  msgpack_pack_int(&pk, 0);
  pack_str(&pk, "updatedAt");
  msgpack_pack_int64(&pk, LEDGER_EPOCH_MS);
  pack_str(&pk, "accounts");
  msgpack_pack_array(&pk, (size_t)n);
  for (int i = 0; i < n; i++) {
    msgpack_pack_map(&pk, 6);
    pack_str(&pk, "id");
    pack_str(&pk, a[i].id);
    pack_str(&pk, "name");
    pack_str(&pk, a[i].name);
    pack_str(&pk, "balance");
    msgpack_pack_double(&pk, a[i].balance);
    pack_str(&pk, "currency");
    pack_str(&pk, a[i].currency);
    pack_str(&pk, "createdAt");
    pack_str(&pk, a[i].created);
    pack_str(&pk, "updatedAt");
    msgpack_pack_int64(&pk, a[i].updated);
  }
  pack_str(&pk, "totals");
  msgpack_pack_map(&pk, 2);
  pack_str(&pk, "count");
  msgpack_pack_int(&pk, n);
  pack_str(&pk, "balance");
  msgpack_pack_double(&pk, total_balance(a, n));
  /* msgpack_sbuffer_write reports allocation failure by returning -1 and
   * leaves the buffer short; a NULL data pointer is the symptom we can see. */
  return sb->data ? 0 : -1;
}

static size_t json_len_for(int n) {
  account *a = make_accounts(n);
  char *s = a ? print_json(a, n) : NULL;
  size_t len = s ? strlen(s) : 0;
  cJSON_free(s);
  free(a);
  return len;
}

size_t bench_size_bytes(bench_size s) {
  static const size_t sizes[SIZE_COUNT] = {256, 4096, 65536, 1048576};
  return sizes[s];
}

const char *bench_size_label(bench_size s) {
  static const char *const labels[SIZE_COUNT] = {"256 B", "4 KiB", "64 KiB", "1 MiB"};
  return labels[s];
}

int bench_state_make(bench_state *st, size_t target) {
  memset(st, 0, sizeof *st);
  /* The account records vary in length (names, balances), so estimate the
   * count from the mean record size of a sample and round to the nearest. */
  static size_t base, per64;
  if (!base) {
    base = json_len_for(0);
    per64 = json_len_for(64) - base;
  }
  int n = 1;
  if (target > base && per64) {
    n = (int)(((double)(target - base) * 64.0) / (double)per64 + 0.5);
  }
  if (n < 1) {
    n = 1;
  }
  account *a = make_accounts(n);
  if (!a) {
    return -1;
  }
  char *json = print_json(a, n);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  int rc = json ? pack_msgpack(a, n, &sb) : -1;
  free(a);
  if (rc != 0) {
    cJSON_free(json);
    msgpack_sbuffer_destroy(&sb);
    return -1;
  }
  st->json_len = strlen(json);
  st->json = malloc(st->json_len + 1);
  st->msgpack_len = sb.size;
  st->msgpack = (uint8_t *)msgpack_sbuffer_release(&sb);
  if (st->json) {
    memcpy(st->json, json, st->json_len + 1);
  }
  cJSON_free(json);
  st->accounts = n;
  if (!st->json || !st->msgpack) {
    bench_state_free(st);
    return -1;
  }
  return 0;
}

void bench_state_free(bench_state *st) {
  free(st->json);
  free(st->msgpack);
  memset(st, 0, sizeof *st);
}

static size_t bin_header_len(size_t body) { return body < 256 ? 2 : body < 65536 ? 3 : 5; }

uint8_t *bench_random_msgpack(size_t len) {
  /* Pick the body length whose bin header (2, 3 or 5 bytes, as msgpack-c
   * chooses it) brings the payload to exactly `len` bytes. */
  size_t body = len > 5 ? len - 5 : 1;
  for (size_t h = 2; h <= 5 && len > h; h++) {
    if (bin_header_len(len - h) == h) {
      body = len - h;
      break;
    }
  }
  uint8_t *bytes = malloc(body);
  if (!bytes) {
    return NULL;
  }
  uint64_t seed = 7;
  for (size_t i = 0; i < body; i += 8) {
    uint64_t r = rng_next(&seed);
    memcpy(bytes + i, &r, body - i < 8 ? body - i : 8);
  }
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_bin(&pk, body);
  msgpack_pack_bin_body(&pk, bytes, body);
  free(bytes);
  return (uint8_t *)msgpack_sbuffer_release(&sb);
}
