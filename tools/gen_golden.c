/*
 * gen_golden: writes the golden body vectors of tests/data/golden/.
 *
 *   snap_gen_golden <output-dir>
 *
 * Run once, by hand, when the vectors are (re)created; the tests only read the
 * committed files and never run this program. Every body is produced with a
 * fixed master key, context, pid, seq and nonce (listed in MANIFEST.txt and
 * repeated in tests/test_pipeline.c), so encoding again reproduces them byte
 * for byte. A change that stops these bodies from decoding breaks stored data:
 * never regenerate the vectors to make a failing test pass.
 *
 * It also prints the worked example of docs/FORMAT.md (hex dump and derived
 * subkey, the latter computed straight from the spec with libsodium).
 */
#include <errno.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h" /* envelope and typed bodies: the store's entry points */

#include "golden.h"

/* Keep in step with MANIFEST.txt and tests/test_pipeline.c. */
#define G_KEY_VERSION 1u
#define G_PID "golden/pid-\xc3\xa9" /* "golden/pid-é": a multi-byte pid */
#define G_SEQ 42
#define G_LEVEL 6
#define G_ZSTD_LEVEL 3
/* Envelope bodies: the data set the data key is wrapped for (the sqlite
 * backend's default table), the shred unit of the worked example (a prefix
 * unit), and the manifest and metadata of typed bodies. */
#define G_DATASET "snapshots"
#define G_UNIT "golden"
#define G_MANIFEST "bank.Account/3"
#define G_METADATA "origin=golden"

static const char G_JSON[] =
    "{\"account\":\"acc-0042\",\"owner\":\"Ada Lovelace\",\"currency\":\"EUR\","
    "\"balance_cents\":1234567,\"active\":true,\"closed_at\":null,\"rate\":0.0125,"
    "\"tags\":[\"premium\",\"eu\"],\"history\":["
    "{\"seq\":1,\"kind\":\"deposit\",\"cents\":100000,\"memo\":\"opening deposit\"},"
    "{\"seq\":2,\"kind\":\"withdrawal\",\"cents\":-2500,\"memo\":\"atm\"},"
    "{\"seq\":3,\"kind\":\"deposit\",\"cents\":50000,\"memo\":\"salary\"},"
    "{\"seq\":4,\"kind\":\"withdrawal\",\"cents\":-12000,\"memo\":\"rent\"},"
    "{\"seq\":5,\"kind\":\"deposit\",\"cents\":50000,\"memo\":\"salary\"},"
    "{\"seq\":6,\"kind\":\"withdrawal\",\"cents\":-12000,\"memo\":\"rent\"}]}";

static const char G_EXAMPLE[] = "{\"n\":1}";
/* The worked example of a version 2 frame: a state zstd shrinks. */
static const char G_EXAMPLE_V2[] = "{\"ok\":[true,true,true,true,true,true,true,true]}";

static void key_bytes(uint8_t k[SNAP_KEY_BYTES]) {
  for (unsigned i = 0; i < SNAP_KEY_BYTES; i++)
    k[i] = (uint8_t)i; /* 00 01 02 .. 1f */
}


/* The unit's data key (a0 a1 .. bf) and the nonce of its wrapped record
 * (c0 c1 .. d7): fixed test values, never do this outside tests. */
static void fixed_dek(uint8_t dek[SNAP_DEK_BYTES]) {
  for (unsigned i = 0; i < SNAP_DEK_BYTES; i++)
    dek[i] = (uint8_t)(0xa0 + i);
}

static void wrap_nonce(uint8_t *nonce, size_t n, void *ud) {
  (void)ud;
  for (size_t i = 0; i < n; i++)
    nonce[i] = (uint8_t)(0xc0 + i);
}

static void die(const char *what) {
  fprintf(stderr, "gen_golden: %s: %s (%s)\n", what, snap_error_message(),
          errno ? strerror(errno) : "");
  exit(1);
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
    die(path);
  printf("wrote %-24s %5zu bytes\n", name, n);
}

/* The same account as G_JSON, packed as msgpack. */
static void pack_state(msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
#define STR(s) msgpack_pack_str_with_body(&pk, s, strlen(s))
  msgpack_pack_map(&pk, 9);
  STR("account"), STR("acc-0042");
  STR("owner"), STR("Ada Lovelace");
  STR("currency"), STR("EUR");
  STR("balance_cents"), msgpack_pack_int64(&pk, 1234567);
  STR("active"), msgpack_pack_true(&pk);
  STR("closed_at"), msgpack_pack_nil(&pk);
  STR("rate"), msgpack_pack_double(&pk, 0.0125);
  STR("tags"), msgpack_pack_array(&pk, 2), STR("premium"), STR("eu");
  STR("history"), msgpack_pack_array(&pk, 6);
  static const struct {
    int seq;
    const char *kind;
    int cents;
    const char *memo;
  } h[6] = {{1, "deposit", 100000, "opening deposit"}, {2, "withdrawal", -2500, "atm"},
            {3, "deposit", 50000, "salary"},           {4, "withdrawal", -12000, "rent"},
            {5, "deposit", 50000, "salary"},           {6, "withdrawal", -12000, "rent"}};
  for (int i = 0; i < 6; i++) {
    msgpack_pack_map(&pk, 4);
    STR("seq"), msgpack_pack_int(&pk, h[i].seq);
    STR("kind"), STR(h[i].kind);
    STR("cents"), msgpack_pack_int(&pk, h[i].cents);
    STR("memo"), STR(h[i].memo);
  }
#undef STR
}

static const struct combo {
  const char *name;
  bool zlib, aead, mac, zstd, dict, envelope;
} COMBOS[] = {{"none", false, false, false, false, false, false},
              {"zlib", true, false, false, false, false, false},
              {"aead", false, true, false, false, false, false},
              {"zlib-aead", true, true, false, false, false, false},
              {"mac", false, false, true, false, false, false},
              {"zlib-mac", true, false, true, false, false, false},
              {"zstd", false, false, false, true, false, false},
              {"zstd-aead", false, true, false, true, false, false},
              {"zstd-mac", false, false, true, true, false, false},
              {"zstd-dict", false, false, false, true, true, false},
              {"zstd-dict-aead", false, true, false, true, true, false},
              {"zstd-dict-mac", false, false, true, true, true, false},
              /* envelope keys (frame field 3): always AEAD, with the data key */
              {"envelope", false, true, false, false, false, true},
              {"zlib-envelope", true, true, false, false, false, true},
              {"zstd-envelope", false, true, false, true, false, true},
              {"zstd-dict-envelope", false, true, false, true, true, true}};
#define N_PLAIN_COMBOS 12 /* the first twelve: what snap_body_encode() writes */

/* ---- the golden dictionary (dict.zdict) ------------------------------------ */

#define G_DICT_SAMPLES 400
#define G_DICT_CAPACITY 2048

/* Account state number i, of the shape of G_JSON with varied values. */
static size_t account_sample(char *dst, size_t cap, unsigned i) {
  static const char *const owners[] = {"Ada Lovelace", "Alan Turing", "Grace Hopper",
                                       "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth"};
  static const char *const kinds[] = {"deposit", "withdrawal"};
  static const char *const memos[] = {"salary", "rent", "atm", "groceries", "refund"};
  int n = snprintf(dst, cap,
                   "{\"account\":\"acc-%04u\",\"owner\":\"%s\",\"currency\":\"%s\","
                   "\"balance_cents\":%u,\"active\":%s,\"closed_at\":null,\"rate\":0.0%u,"
                   "\"tags\":[\"premium\",\"eu\"],\"history\":[",
                   i, owners[i % 6], i % 3 ? "EUR" : "USD", (i * 7919u) % 5000000u,
                   i % 5 ? "true" : "false", 100 + i % 300);
  for (unsigned k = 0; k < 1 + i % 6; k++)
    n += snprintf(dst + n, cap - (size_t)n,
                  "%s{\"seq\":%u,\"kind\":\"%s\",\"cents\":%d,\"memo\":\"%s\"}",
                  k ? "," : "", k + 1, kinds[(i + k) % 2], (int)((i * 31 + k * 977) % 90000) - 45000,
                  memos[(i + k) % 5]);
  n += snprintf(dst + n, cap - (size_t)n, "]}");
  return (size_t)n;
}

/* A zstd dictionary trained on G_DICT_SAMPLES account states (deterministic:
 * zstd's trainer is, on the same samples). */
static snap_dict *train_dict(void) {
  static char samples[G_DICT_SAMPLES * 768];
  size_t sizes[G_DICT_SAMPLES], at = 0;
  for (unsigned i = 0; i < G_DICT_SAMPLES; i++) {
    sizes[i] = account_sample(samples + at, sizeof samples - at, i);
    at += sizes[i];
  }
  static uint8_t buf[G_DICT_CAPACITY];
  size_t n = ZDICT_trainFromBuffer(buf, sizeof buf, samples, sizes, G_DICT_SAMPLES);
  if (ZDICT_isError(n)) {
    fprintf(stderr, "gen_golden: training: %s\n", ZDICT_getErrorName(n));
    exit(1);
  }
  snap_dict *d;
  if (snap_dict_new(&d, buf, n))
    die("dictionary");
  return d;
}

static snap_dict *g_dict;

static snap_options *options_for(const struct combo *c, snap_keyring *kr) {
  const snap_compression alg = c->zstd   ? SNAP_COMPRESSION_ZSTD
                               : c->zlib ? SNAP_COMPRESSION_ZLIB
                                         : SNAP_COMPRESSION_NONE;
  snap_options *o = golden_options(alg, c->zstd ? G_ZSTD_LEVEL : c->zlib ? G_LEVEL : 0, g_dict,
                                   c->dict, c->aead ? kr : NULL, c->mac ? kr : NULL);
  if (!o)
    die("options");
  return o;
}

/* A body of `c`'s stages; an envelope body is sealed with the fixed data key
 * of `unit` (generation 1), a typed one states G_MANIFEST and G_METADATA. */
static void encode_to(const char *dir, const char *name, snap_format fmt, const void *state,
                      size_t len, const struct combo *c, snap_keyring *kr, const char *unit,
                      bool typed, snap_buf *out) {
  snap_options *o = options_for(c, kr);
  if (c->envelope && snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE))
    die("key mode");
  snap__envelope_key k = {.unit = unit, .unit_len = strlen(unit), .generation = 1};
  fixed_dek(k.dek);
  const snap__typing t = {G_MANIFEST, strlen(G_MANIFEST), (const uint8_t *)G_METADATA,
                          strlen(G_METADATA)};
  unsigned st = 0;
  if (snap_pid_check(G_PID) ||
      snap__body_encode_typed(G_PID, G_SEQ, fmt, state, len, o, c->envelope ? &k : NULL,
                              typed ? &t : NULL, out, &st))
    die(name);
  unsigned want = (c->zlib || c->zstd ? SNAP_STAGE_COMPRESSED : 0) | (c->aead ? SNAP_STAGE_ENCRYPTED : 0) |
                  (c->mac ? SNAP_STAGE_MAC : 0);
  if (st != want) {
    fprintf(stderr, "gen_golden: %s: stages 0x%x, wanted 0x%x\n", name, st, want);
    exit(1);
  }
  write_file(dir, name, out->data, out->len);
  snap_options_free(o);
}

/* The wrapped-key record of `unit`'s fixed data key (generation 1). */
static void wrap_to(const char *dir, const char *name, snap_keyring *kr, const char *unit,
                    uint8_t rec[SNAP_WRAPPED_KEY_BYTES]) {
  uint8_t dek[SNAP_DEK_BYTES];
  fixed_dek(dek);
  uint32_t mv = 0;
  if (snap__dek_wrap(kr, G_CONTEXT, G_DATASET, unit, strlen(unit), 1, dek, wrap_nonce, NULL, rec,
                     &mv) ||
      mv != G_KEY_VERSION)
    die(name);
  write_file(dir, name, rec, SNAP_WRAPPED_KEY_BYTES);
}

static void hexdump(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    printf("  %04zx ", i);
    for (size_t k = i; k < i + 16 && k < n; k++)
      printf(" %02x", p[k]);
    printf("\n");
  }
}

/* subkey = BLAKE2b-256(key = master, LP(label) || LP(context) || LP(pid)),
 * LP(x) = u32le(len(x)) || x -- straight from docs/FORMAT.md. */
static void spec_subkey(uint8_t out[32], const uint8_t master[32], const char *label,
                        const char *last) {
  const char *parts[3] = {label, G_CONTEXT, last};
  crypto_generichash_state st;
  crypto_generichash_init(&st, master, 32, 32);
  for (int i = 0; i < 3; i++) {
    uint32_t n = (uint32_t)strlen(parts[i]);
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    crypto_generichash_update(&st, le, 4);
    crypto_generichash_update(&st, (const uint8_t *)parts[i], n);
  }
  crypto_generichash_final(&st, out, 32);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <output-dir>   (normally tests/data/golden)\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  if (sodium_init() < 0)
    die("sodium_init");
  uint8_t key[SNAP_KEY_BYTES];
  key_bytes(key);
  snap_keyring *kr;
  if (snap_keyring_new(&kr) || snap_keyring_add(kr, G_KEY_VERSION, key, sizeof key))
    die("keyring");

  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  pack_state(&sb);
  if (snap_payload_validate(SNAP_FORMAT_JSON, G_JSON, strlen(G_JSON)) ||
      snap_payload_validate(SNAP_FORMAT_MSGPACK, sb.data, sb.size))
    die("payload");
  write_file(dir, "state.json", G_JSON, strlen(G_JSON));
  write_file(dir, "state.msgpack", sb.data, sb.size);
  write_file(dir, "example.json", G_EXAMPLE, strlen(G_EXAMPLE));
  write_file(dir, "example-v2.json", G_EXAMPLE_V2, strlen(G_EXAMPLE_V2));
  g_dict = train_dict();
  size_t dict_len;
  const void *dict_bytes = snap_dict_bytes(g_dict, &dict_len);
  write_file(dir, "dict.zdict", dict_bytes, dict_len);
  printf("dictionary id %u (0x%08x)\n", snap_dict_id(g_dict), snap_dict_id(g_dict));

  snap_buf out = SNAP_BUF_INIT;
  char name[64];
  const size_t ncombos = sizeof COMBOS / sizeof COMBOS[0];
  for (size_t i = 0; i < ncombos; i++) {
    /* Envelope bodies of the pid's own unit, then every combination again
     * with a manifest and metadata ("typed"). */
    for (int typed = 0; typed < 2; typed++) {
      if (!typed && i < N_PLAIN_COMBOS) {
        snprintf(name, sizeof name, "json-%s.body", COMBOS[i].name);
        encode_to(dir, name, SNAP_FORMAT_JSON, G_JSON, strlen(G_JSON), &COMBOS[i], kr, G_PID,
                  false, &out);
        snprintf(name, sizeof name, "msgpack-%s.body", COMBOS[i].name);
        encode_to(dir, name, SNAP_FORMAT_MSGPACK, sb.data, sb.size, &COMBOS[i], kr, G_PID, false,
                  &out);
        continue;
      }
      const char *t = typed ? "typed-" : "";
      snprintf(name, sizeof name, "json-%s%s.body", t, COMBOS[i].name);
      encode_to(dir, name, SNAP_FORMAT_JSON, G_JSON, strlen(G_JSON), &COMBOS[i], kr, G_PID, typed,
                &out);
      snprintf(name, sizeof name, "msgpack-%s%s.body", t, COMBOS[i].name);
      encode_to(dir, name, SNAP_FORMAT_MSGPACK, sb.data, sb.size, &COMBOS[i], kr, G_PID, typed,
                &out);
    }
  }
  uint8_t rec[SNAP_WRAPPED_KEY_BYTES];
  wrap_to(dir, "envelope-pid.key", kr, G_PID, rec);

  /* The worked examples of docs/FORMAT.md. */
  const struct combo ex_aead = {"aead", false, true, false, false, false, false},
                     ex_none = {"none", false, false, false, false, false, false},
                     ex_mac = {"mac", false, false, true, false, false, false},
                     ex_zstd = {"zstd", false, false, false, true, false, false},
                     ex_env = {"envelope", false, true, false, false, false, true};
  encode_to(dir, "example-aead.body", SNAP_FORMAT_JSON, G_EXAMPLE, strlen(G_EXAMPLE), &ex_aead, kr,
            G_PID, false, &out);
  printf("\nexample-aead.body:\n");
  hexdump(out.data, out.len);
  encode_to(dir, "example-mac.body", SNAP_FORMAT_JSON, G_EXAMPLE, strlen(G_EXAMPLE), &ex_mac, kr,
            G_PID, false, &out);
  printf("\nexample-mac.body:\n");
  hexdump(out.data, out.len);
  encode_to(dir, "example-none.body", SNAP_FORMAT_JSON, G_EXAMPLE, strlen(G_EXAMPLE), &ex_none, kr,
            G_PID, false, &out);
  printf("\nexample-none.body:\n");
  hexdump(out.data, out.len);
  encode_to(dir, "example-zstd.body", SNAP_FORMAT_JSON, G_EXAMPLE_V2, strlen(G_EXAMPLE_V2),
            &ex_zstd, kr, G_PID, false, &out);
  printf("\nexample-zstd.body:\n");
  hexdump(out.data, out.len);
  encode_to(dir, "example-envelope.body", SNAP_FORMAT_JSON, G_EXAMPLE, strlen(G_EXAMPLE), &ex_env,
            kr, G_UNIT, false, &out);
  printf("\nexample-envelope.body (unit \"%s\"):\n", G_UNIT);
  hexdump(out.data, out.len);
  wrap_to(dir, "example-envelope.key", kr, G_UNIT, rec);
  printf("\nexample-envelope.key:\n");
  hexdump(rec, sizeof rec);
  encode_to(dir, "example-typed.body", SNAP_FORMAT_JSON, G_EXAMPLE, strlen(G_EXAMPLE), &ex_mac, kr,
            G_PID, true, &out);
  printf("\nexample-typed.body:\n");
  hexdump(out.data, out.len);

  uint8_t sk[32];
  spec_subkey(sk, key, "snapstore/v1/aead", G_PID);
  printf("\nAEAD subkey:\n");
  hexdump(sk, 32);
  spec_subkey(sk, key, "snapstore/v1/mac", G_PID);
  printf("MAC subkey:\n");
  hexdump(sk, 32);
  /* The key-encryption key of wrapped data keys: LP(label) || LP(context) || LP(data set). */
  spec_subkey(sk, key, "snapstore/v1/wrap", G_DATASET);
  printf("KEK (data set \"%s\"):\n", G_DATASET);
  hexdump(sk, 32);

  char manifest[6144];
  int mn = snprintf(
      manifest, sizeof manifest,
      "# Golden body vectors: written once by tools/gen_golden.c, decoded by\n"
      "# tests/test_pipeline.c. Never regenerate them to make a test pass: a body\n"
      "# that stops decoding is stored data that stops loading.\n"
      "master_key_version  %u\n"
      "master_key_hex      000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
      "context             %s   (encryption and integrity)\n"
      "pid_hex             676f6c64656e2f7069642dc3a9   (\"golden/pid-\\u00e9\")\n"
      "seq                 %d\n"
      "nonce_hex           808182838485868788898a8b8c8d8e8f9091929394959697\n"
      "zlib_level          %d   (min size 0)\n"
      "zstd_level          %d   (min size 0)\n"
      "# file                payload          stages\n"
      "json-none.body        state.json       -\n"
      "json-zlib.body        state.json       zlib\n"
      "json-aead.body        state.json       aead\n"
      "json-zlib-aead.body   state.json       zlib+aead\n"
      "json-mac.body         state.json       mac\n"
      "json-zlib-mac.body    state.json       zlib+mac\n"
      "json-zstd.body        state.json       zstd       (frame version 2)\n"
      "json-zstd-aead.body   state.json       zstd+aead  (frame version 2)\n"
      "json-zstd-mac.body    state.json       zstd+mac   (frame version 2)\n"
      "json-zstd-dict.body   state.json       zstd+dict  (frame version 2, dict.zdict)\n"
      "json-zstd-dict-aead.body state.json    zstd+dict+aead\n"
      "json-zstd-dict-mac.body  state.json    zstd+dict+mac\n"
      "msgpack-*.body        state.msgpack    (the same twelve)\n"
      "example-aead.body     example.json     aead       (docs/FORMAT.md worked example)\n"
      "example-mac.body      example.json     mac\n"
      "example-none.body     example.json     -\n"
      "example-zstd.body     example-v2.json  zstd       (docs/FORMAT.md, frame version 2)\n"
      "# Envelope keys (frame field 3): sealed with the unit's data key, generation 1,\n"
      "# wrapped under master key version 1 for data set \"%s\".\n"
      "dek_hex             a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n"
      "wrap_nonce_hex      c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7\n"
      "dataset             %s\n"
      "envelope-pid.key    the wrapped-key record of the unit = the pid (field 3 empty)\n"
      "json-envelope.body            state.json  aead, envelope (frame version 2)\n"
      "json-zlib-envelope.body       state.json  zlib+aead, envelope\n"
      "json-zstd-envelope.body       state.json  zstd+aead, envelope\n"
      "json-zstd-dict-envelope.body  state.json  zstd+dict+aead, envelope\n"
      "msgpack-*envelope.body        state.msgpack (the same four)\n"
      "# Manifest (field 4) and metadata (field 5): every combination above again.\n"
      "manifest            %s\n"
      "metadata            %s\n"
      "json-typed-<c>.body           state.json  for each <c> of the sixteen above\n"
      "msgpack-typed-<c>.body        state.msgpack\n"
      "example-envelope.body example.json     aead, envelope, unit \"%s\" (docs/FORMAT.md)\n"
      "example-envelope.key  the wrapped-key record of unit \"%s\"\n"
      "example-typed.body    example.json     mac, manifest and metadata (docs/FORMAT.md)\n",
      G_KEY_VERSION, G_CONTEXT, G_SEQ, G_LEVEL, G_ZSTD_LEVEL, G_DATASET, G_DATASET, G_MANIFEST,
      G_METADATA, G_UNIT, G_UNIT);
  write_file(dir, "MANIFEST.txt", manifest, (size_t)mn);

  snap_buf_dispose(&out);
  snap_dict_free(g_dict);
  msgpack_sbuffer_destroy(&sb);
  snap_keyring_free(kr);
  return 0;
}
