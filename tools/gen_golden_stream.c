/*
 * gen_golden_stream: writes the golden vectors of streamed states,
 * tests/data/golden/stream/.
 *
 *   snap_gen_golden_stream <golden-dir>     (normally tests/data/golden)
 *
 * Reads <golden-dir>/state.json, state.msgpack and dict.zdict (written by
 * gen_golden) and writes <golden-dir>/stream/: for every stage combination a
 * head (<name>.head) and its chunk records, concatenated (<name>.records; a
 * record's length follows from the head), with the fixed master key,
 * context, pid, seq and nonce of the other golden vectors (MANIFEST.txt
 * there and here). Run once, by hand; the tests only read the committed
 * files. Never regenerate them to make a failing test pass.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "snap/stream.h"

#include "golden.h"

#define G_KEY_VERSION 1u
#define G_PID "golden/pid-\xc3\xa9"
#define G_SEQ 42
#define G_LEVEL 6
#define G_ZSTD_LEVEL 3
#define G_CHUNK 64
#define G_UNIT "golden"
#define G_MANIFEST "bank.Account/3"
#define G_METADATA "origin=golden"
/* The worked example of docs/FORMAT.md: a small state in chunks of 4 bytes. */
#define G_EXAMPLE "{\"n\":1}"
#define G_EXAMPLE_CHUNK 4

static void die(const char *what) {
  fprintf(stderr, "gen_golden_stream: %s: %s\n", what, snap_error_message());
  exit(1);
}


static uint8_t *read_file(const char *dir, const char *name, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f)
    die(path);
  static uint8_t buf[1 << 20];
  *len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  uint8_t *p = malloc(*len ? *len : 1);
  memcpy(p, buf, *len);
  return p;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/stream/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
    die(path);
  printf("wrote stream/%-32s %5zu bytes\n", name, n);
}

static snap_dict *g_dict;

static snap_dict *g_dict;

static const struct combo {
  const char *name;
  snap_compression comp;
  bool dict, aead, mac, envelope, typed;
} COMBOS[] = {
    {"none", SNAP_COMPRESSION_NONE, false, false, false, false, false},
    {"zlib", SNAP_COMPRESSION_ZLIB, false, false, false, false, false},
    {"zstd", SNAP_COMPRESSION_ZSTD, false, false, false, false, false},
    {"zstd-dict", SNAP_COMPRESSION_ZSTD, true, false, false, false, false},
    {"aead", SNAP_COMPRESSION_NONE, false, true, false, false, false},
    {"zlib-aead", SNAP_COMPRESSION_ZLIB, false, true, false, false, false},
    {"zstd-aead", SNAP_COMPRESSION_ZSTD, false, true, false, false, false},
    {"zstd-dict-aead", SNAP_COMPRESSION_ZSTD, true, true, false, false, false},
    {"mac", SNAP_COMPRESSION_NONE, false, false, true, false, false},
    {"zlib-mac", SNAP_COMPRESSION_ZLIB, false, false, true, false, false},
    {"zstd-mac", SNAP_COMPRESSION_ZSTD, false, false, true, false, false},
    {"zstd-dict-mac", SNAP_COMPRESSION_ZSTD, true, false, true, false, false},
    /* envelope keys (field 3) and a manifest with metadata (fields 4, 5) */
    {"zlib-envelope", SNAP_COMPRESSION_ZLIB, false, true, false, true, false},
    {"typed-zstd-mac", SNAP_COMPRESSION_ZSTD, false, false, true, false, true}};

typedef struct collected {
  snap_buf all;
} collected;

static int collect(void *ud, uint64_t index, const void *p, size_t len) {
  (void)index;
  collected *c = ud;
  if (snap_buf_reserve(&c->all, c->all.len + len))
    return SNAP_ENOMEM;
  memcpy(c->all.data + c->all.len, p, len);
  c->all.len += len;
  return SNAP_OK;
}

static snap_options *options_for(const struct combo *c, snap_keyring *kr) {
  const int level = c->comp == SNAP_COMPRESSION_ZSTD   ? G_ZSTD_LEVEL
                    : c->comp == SNAP_COMPRESSION_ZLIB ? G_LEVEL
                                                       : 0;
  snap_options *o =
      golden_options(c->comp, level, g_dict, c->dict, c->aead ? kr : NULL, c->mac ? kr : NULL);
  if (!o)
    die("options");
  return o;
}

/* One stream of `c`'s stages: <name>.head and <name>.records. */
static void stream_to(const char *dir, const char *name, snap_format fmt, const uint8_t *state,
                      size_t len, size_t chunk, const struct combo *c, snap_keyring *kr,
                      bool dump) {
  snap_options *o = options_for(c, kr);
  snap__envelope_key k = {.unit = G_PID, .unit_len = strlen(G_PID), .generation = 1};
  for (unsigned i = 0; i < SNAP_DEK_BYTES; i++)
    k.dek[i] = (uint8_t)(0xa0 + i); /* the data key of the other golden vectors */
  const snap__typing t = {G_MANIFEST, strlen(G_MANIFEST), (const uint8_t *)G_METADATA,
                          strlen(G_METADATA)};
  collected recs = {SNAP_BUF_INIT};
  snap_buf head = SNAP_BUF_INIT;
  snap_stream_encoder *e;
  if (snap__stream_encoder_new_typed(&e, G_PID, G_SEQ, fmt, o, chunk, c->envelope ? &k : NULL,
                                     c->typed ? &t : NULL, collect, &recs) ||
      snap_stream_encoder_write(e, state, len) || snap_stream_encoder_finish(e, &head, NULL))
    die(name);
  snap_stream_encoder_free(e);
  char file[128];
  snprintf(file, sizeof file, "%s.head", name);
  write_file(dir, file, head.data, head.len);
  snprintf(file, sizeof file, "%s.records", name);
  write_file(dir, file, recs.all.data, recs.all.len);
  if (dump) {
    for (size_t i = 0; i < head.len; i++)
      printf("%s%02x", i % 16 ? " " : i ? "\n    " : "    ", head.data[i]);
    printf("\n  records:\n");
    for (size_t i = 0; i < recs.all.len; i++)
      printf("%s%02x", i % 16 ? " " : i ? "\n    " : "    ", recs.all.data[i]);
    printf("\n");
  }
  snap_buf_dispose(&head);
  snap_buf_dispose(&recs.all);
  snap_options_free(o);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <golden-dir>   (normally tests/data/golden)\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  if (sodium_init() < 0)
    die("sodium_init");
  uint8_t key[SNAP_KEY_BYTES];
  for (unsigned i = 0; i < SNAP_KEY_BYTES; i++)
    key[i] = (uint8_t)i;
  snap_keyring *kr;
  if (snap_keyring_new(&kr) || snap_keyring_add(kr, G_KEY_VERSION, key, sizeof key))
    die("keyring");
  size_t json_len, mp_len, dict_len;
  uint8_t *json = read_file(dir, "state.json", &json_len);
  uint8_t *mp = read_file(dir, "state.msgpack", &mp_len);
  uint8_t *dict = read_file(dir, "dict.zdict", &dict_len);
  if (snap_dict_new(&g_dict, dict, dict_len))
    die("dict.zdict");
  char name[96];
  for (size_t i = 0; i < sizeof COMBOS / sizeof *COMBOS; i++) {
    snprintf(name, sizeof name, "json-%s", COMBOS[i].name);
    stream_to(dir, name, SNAP_FORMAT_JSON, json, json_len, G_CHUNK, &COMBOS[i], kr, false);
    snprintf(name, sizeof name, "msgpack-%s", COMBOS[i].name);
    stream_to(dir, name, SNAP_FORMAT_MSGPACK, mp, mp_len, G_CHUNK, &COMBOS[i], kr, false);
  }
  /* The empty state: a head and no records. */
  stream_to(dir, "empty-mac", SNAP_FORMAT_JSON, (const uint8_t *)"", 0, G_CHUNK, &COMBOS[8], kr,
            false);
  /* The worked examples of docs/FORMAT.md. */
  printf("\nexample-none:\n");
  stream_to(dir, "example-none", SNAP_FORMAT_JSON, (const uint8_t *)G_EXAMPLE, strlen(G_EXAMPLE),
            G_EXAMPLE_CHUNK, &COMBOS[0], kr, true);
  printf("\nexample-aead:\n");
  stream_to(dir, "example-aead", SNAP_FORMAT_JSON, (const uint8_t *)G_EXAMPLE, strlen(G_EXAMPLE),
            G_EXAMPLE_CHUNK, &COMBOS[4], kr, true);
  printf("\nexample-mac:\n");
  stream_to(dir, "example-mac", SNAP_FORMAT_JSON, (const uint8_t *)G_EXAMPLE, strlen(G_EXAMPLE),
            G_EXAMPLE_CHUNK, &COMBOS[8], kr, true);

  static const char manifest[] =
      "# Golden vectors of streamed states: written once by tools/gen_golden_stream.c,\n"
      "# read by tests/test_stream_golden.c. Never regenerate them to make a test pass.\n"
      "# The master key, context, pid, seq, nonce (stream nonce and head nonce alike),\n"
      "# levels, data key and dictionary are those of ../MANIFEST.txt.\n"
      "chunk_size          64 (the examples: 4)\n"
      "# <name>.head = the head body; <name>.records = its chunk records, concatenated\n"
      "json-<c>            ../state.json     for each <c> below\n"
      "msgpack-<c>         ../state.msgpack\n"
      "<c>                 none zlib zstd zstd-dict aead zlib-aead zstd-aead zstd-dict-aead\n"
      "                    mac zlib-mac zstd-mac zstd-dict-mac\n"
      "                    zlib-envelope (AEAD with the data key, unit = the pid, generation 1)\n"
      "                    typed-zstd-mac (manifest bank.Account/3, metadata origin=golden)\n"
      "empty-mac           the empty state: a head, no records\n"
      "example-none        {\"n\":1} in chunks of 4 (docs/FORMAT.md worked example)\n"
      "example-aead        the same, AEAD\n"
      "example-mac         the same, MAC\n";
  write_file(dir, "MANIFEST.txt", manifest, sizeof manifest - 1);
  snap_dict_free(g_dict);
  free(json);
  free(mp);
  free(dict);
  snap_keyring_free(kr);
  return 0;
}
