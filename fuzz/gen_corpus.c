/*
 * Writes the seed corpora of the fuzz targets: valid inputs that reach deep
 * into each parser from the first execution. The committed files under
 * fuzz/corpus/ came from this program; rerun it after a frame or input
 * layout change:  build/fuzz/gen_corpus fuzz/corpus
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "fuzz_store_rows.h"
#include "snap/stream.h"

static const char *root;

static void write_file(const char *target, const char *name, const void *a, size_t alen,
                       const void *b, size_t blen) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, target);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
  snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) ||
      fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

static void encode(unsigned sel, snap_format fmt, const char *state, size_t len, const char *pid,
                   int64_t seq, snap_buf *out) {
  snap_options *o = fuzz_options(sel, 0);
  int rc = o ? snap_body_encode(pid, seq, fmt, state, len, o, out, NULL) : SNAP_ENOMEM;
  snap_options_free(o);
  if (rc != SNAP_OK) {
    fprintf(stderr, "gen_corpus: encode failed: %s\n", snap_error_message());
    exit(1);
  }
}

static const char json_state[] =
    "{\"account\":\"account-42\",\"entries\":[{\"id\":1,\"amount\":100},{\"id\":2,\"amount\":100},"
    "{\"id\":3,\"amount\":100},{\"id\":4,\"amount\":100}],\"balance\":400}";
static const char msgpack_state[] = "\x82\xa7"
                                    "balance"
                                    "\xcd\x01\x90\xa7"
                                    "entries"
                                    "\x92\x81\xa2id\x01\x81\xa2id\x02";

static void body_decode(void) {
  static const struct {
    const char *name;
    unsigned sel;
    snap_format fmt;
  } seeds[] = {
      {"plain-json", 0, SNAP_FORMAT_JSON},
      {"zlib-json", FUZZ_OPT_ZLIB, SNAP_FORMAT_JSON},
      {"aead-json", FUZZ_OPT_ENCRYPT, SNAP_FORMAT_JSON},
      {"aead-zlib-json", FUZZ_OPT_ENCRYPT | FUZZ_OPT_ZLIB, SNAP_FORMAT_JSON},
      {"mac-json", FUZZ_OPT_MAC, SNAP_FORMAT_JSON},
      {"mac-zlib-msgpack", FUZZ_OPT_MAC | FUZZ_OPT_ZLIB, SNAP_FORMAT_MSGPACK},
      {"plain-msgpack-accept", FUZZ_OPT_ENCRYPT | FUZZ_OPT_ACCEPT, SNAP_FORMAT_MSGPACK},
      {"aead-key2-limits", FUZZ_OPT_ENCRYPT | FUZZ_OPT_ACTIVE2 | FUZZ_OPT_LIMITS, SNAP_FORMAT_JSON},
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    snap_buf body = SNAP_BUF_INIT;
    const char *state = seeds[i].fmt == SNAP_FORMAT_JSON ? json_state : msgpack_state;
    size_t len =
        seeds[i].fmt == SNAP_FORMAT_JSON ? sizeof json_state - 1 : sizeof msgpack_state - 1;
    /* The accept seed is written without keys: a plaintext body a keyed
     * reader takes only with accept_unauthenticated. */
    unsigned enc_sel = (seeds[i].sel & FUZZ_OPT_ACCEPT) ? 0 : seeds[i].sel;
    uint8_t head[2] = {(uint8_t)seeds[i].sel, (uint8_t)(0x10 * (i % 4) + i % 3)};
    encode(enc_sel, seeds[i].fmt, state, len, fuzz_pids[(head[1] & 0x0f) % 3],
           fuzz_seqs[(head[1] >> 4) & 3u], &body);
    write_file("fuzz_body_decode", seeds[i].name, head, 2, body.data, body.len);
    snap_buf_dispose(&body);
  }
}

static void body_mutate(void) {
  /* [encode options][decode options][state][pid/seq][mutations] */
  static const struct {
    const char *name;
    uint8_t bytes[32];
    size_t len;
  } seeds[] = {
      {"unchanged-aead", {FUZZ_OPT_ENCRYPT, FUZZ_OPT_ENCRYPT, 0, 0x11}, 4},
      {"flip-tag-aead-zlib",
       {FUZZ_OPT_ENCRYPT | FUZZ_OPT_ZLIB, FUZZ_OPT_ENCRYPT, 1, 0x02, 3, 0, 5, 0x80},
       8},
      {"stages-downgrade",
       {FUZZ_OPT_ENCRYPT, FUZZ_OPT_ENCRYPT, 5, 0x00, 13, 0, 3, 0x00, 0, 0, 0, 0, 0, 0, 0, 0},
       16},
      {"key-version-mac",
       {FUZZ_OPT_MAC, FUZZ_OPT_MAC, 3, 0x21, 13, 0, 5, 0x02, 0, 0, 0, 0, 0, 0, 0, 0},
       16},
      /* A key version the reader lacks (3): still EAUTH, the header was changed. */
      {"key-version-absent-aead",
       {FUZZ_OPT_ENCRYPT, FUZZ_OPT_ENCRYPT, 0, 0x00, 13, 0, 5, 0x03, 0, 0, 0, 0, 0, 0, 0, 0},
       16},
      {"orig-len-plain-crc",
       {FUZZ_OPT_ZLIB,
        0,
        1,
        0x01,
        13,
        0,
        6,
        0x21,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        13,
        0,
        9,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0},
       28},
      {"truncate-plain", {0, FUZZ_OPT_ACCEPT | FUZZ_OPT_MAC, 0, 0x00, 8, 0, 30, 0}, 8},
      {"other-seq-mac", {FUZZ_OPT_MAC, FUZZ_OPT_MAC, 2, 0x90}, 4},
      {"splice-header",
       {FUZZ_OPT_ZLIB, FUZZ_OPT_ENCRYPT | FUZZ_OPT_ACCEPT, 5, 0x00, 12, 0, 20, 0},
       8},
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
    write_file("fuzz_body_mutate", seeds[i].name, seeds[i].bytes, seeds[i].len, NULL, 0);
}

static void payload(void) {
  static const struct {
    const char *name;
    uint8_t fmt;
    const char *bytes;
    size_t len;
  } seeds[] = {
#define P(name, fmt, lit) {name, fmt, lit, sizeof(lit) - 1}
      P("json-object", 0, "{\"a\":[1,2.5,-3e2,true,false,null],\"b\":{\"c\":\"\\u00e9\\n\"}}"),
      P("json-array", 0, "[[],{},\"\",0]"),
      P("json-string", 0, "\"snapshot\""),
      P("json-number", 0, " -12.5e-3 "),
      P("json-trailing", 0, "{} {}"),
      P("msgpack-map", 1,
        "\x82\xa1"
        "a"
        "\x93\x01\xcb\x40\x04\x00\x00\x00\x00\x00\x00\xc3\xa1"
        "b"
        "\x81\xa1"
        "c"
        "\xc0"),
      P("msgpack-ints", 1, "\x95\x00\x7f\xe0\xcc\xff\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
      P("msgpack-str16", 1, "\xda\x00\x03xyz"),
      P("msgpack-bin", 1, "\x92\xc4\x02\x00\x01\xd4\x01\x02"),
      P("msgpack-array32", 1, "\xdd\x00\x00\x00\x02\xc2\xc3"),
#undef P
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
    write_file("fuzz_payload", seeds[i].name, &seeds[i].fmt, 1, seeds[i].bytes, seeds[i].len);
}

static void config(void) {
  static const struct {
    const char *name;
    uint8_t mode;
    const char *text;
  } seeds[] = {
      {"memory-all-keys", 0,
       "{\"keep\":2,\"max_load_attempts\":3,\"compression\":\"zlib\",\"compression_level\":6,"
       "\"compression_min_size\":16,\"max_stored_size\":65536,\"max_decoded_size\":65536}"},
      {"memory-empty", 0, "{}"},
      {"sqlite-all-keys", 1,
       "{\"path\":\"state.db\",\"table\":\"snaps_1\",\"synchronous\":\"normal\","
       "\"busy_timeout_ms\":100,\"secure_delete\":\"auto\",\"max_page_count\":1000,\"keep\":0}"},
      {"sqlite-unknown-key", 1, "{\"path\":\"x.db\",\"colour\":\"blue\"}"},
      {"by-name-memory", 2, "{\"keep\":0,\"compression\":\"none\"}"},
      {"plugin-memory", 3,
       "{\"backend\":\"memory\",\"config\":{\"keep\":1},\"options\":{\"compression\":\"zlib\","
       "\"compression_level\":1,\"compression_min_size\":0,\"max_stored_size\":4096,"
       "\"max_decoded_size\":4096,\"accept_unauthenticated\":false,\"required\":"
       "[\"compression\"]},\"executor\":false}"},
      {"plugin-encrypted-keyring", 0x83,
       "{\"backend\":\"memory\",\"options\":{\"encryption\":{\"key_version\":1,"
       "\"context\":\"acme/prod/snapshots/v1\"},\"required\":[\"encryption\"]},"
       "\"executor\":{\"queue_capacity\":4,\"max_batch\":2}}"},
      {"plugin-sqlite", 4,
       "{\"backend\":\"sqlite\",\"config\":{\"path\":\"p.db\",\"busy_timeout_ms\":10},"
       "\"executor\":false}"},
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
    write_file("fuzz_config", seeds[i].name, &seeds[i].mode, 1, seeds[i].text,
               strlen(seeds[i].text));
}

/* A byte string under construction. */
typedef struct bytes {
  uint8_t b[512];
  size_t n;
} bytes;

static void put(bytes *x, int count, ...) {
  va_list ap;
  va_start(ap, count);
  for (int i = 0; i < count; i++)
    x->b[x->n++] = (uint8_t)va_arg(ap, int);
  va_end(ap);
}

static void put_u64(bytes *x, uint64_t v) {
  for (int i = 7; i >= 0; i--)
    x->b[x->n++] = (uint8_t)(v >> (8 * i));
}

/* A criteria value byte (fuzz_store_load.c, crit_value): small n, or the extremes. */
#define CRIT(n) (((n) << 3) | 4)
#define CRIT_MIN 0
#define CRIT_MAX 1

/* A row with a valid body of `kind` at (pid, seq), ts = ts_k * 1000. */
static void valid_row(bytes *x, int pid, int kind, int seq, int ts_k) {
  put(x, 3, (pid ? ROW_PID : 0) | (kind << ROW_KIND_SHIFT), seq, ts_k);
}

static void store_load(void) {
  const unsigned all_keys = FUZZ_OPT_ENCRYPT | FUZZ_OPT_MAC;
  bytes x = {{0}, 0};
  /* Every valid body at its own place; load them all, the latest and before 4. */
  put(&x, 2, all_keys, 5);
  for (int k = 1; k <= 5; k++)
    valid_row(&x, 0, k, k, k);
  put(&x, 6, CRIT(0), CRIT_MAX, CRIT_MIN, CRIT_MAX, 2, CRIT(4));
  write_file("fuzz_store_load", "valid-rows", x.b, x.n, NULL, 0);

  /* The newest is garbage: the load falls back to seq 2; then delete 2..3. */
  x.n = 0;
  put(&x, 2, all_keys, 3);
  valid_row(&x, 0, 1, 1, 1);
  valid_row(&x, 0, 2, 2, 2);
  put(&x, 3, 0, 3, 3);
  put(&x, 8, 7, 'g', 'a', 'r', 'b', 'a', 'g', 'e');
  put(&x, 6, CRIT(0), CRIT(9), CRIT(0), CRIT(9), 2 | 4, CRIT(3));
  write_file("fuzz_store_load", "corrupt-newest-fallback", x.b, x.n, NULL, 0);

  /* An encrypted body with a flipped byte: an authentication error, no fallback. */
  x.n = 0;
  put(&x, 2, all_keys, 2);
  valid_row(&x, 0, 1, 1, 1);
  put(&x, 3, (3 << ROW_KIND_SHIFT) | ROW_FLIP, 3, 3);
  put(&x, 3, 0, 40, 0x04);
  put(&x, 6, CRIT(0), CRIT_MAX, CRIT_MIN, CRIT_MAX, 2, CRIT(9));
  write_file("fuzz_store_load", "flipped-aead", x.b, x.n, NULL, 0);

  /* Columns of the wrong SQL type. */
  x.n = 0;
  put(&x, 2, all_keys, 4);
  for (int odd = 1; odd <= 4; odd++) {
    put(&x, 3, ((odd & 1 ? 1 : 2) << ROW_KIND_SHIFT) | ROW_ODD, odd, odd);
    put(&x, 1, odd - 1);
  }
  put(&x, 6, CRIT(0), CRIT_MAX, CRIT_MIN, CRIT_MAX, 2 | 4, CRIT(3));
  write_file("fuzz_store_load", "odd-sql-types", x.b, x.n, NULL, 0);

  /* The second pid, its key-2 body, wide seqs and timestamps, no options. */
  x.n = 0;
  put(&x, 2, 0, 3);
  valid_row(&x, 1, 6, 1, 1);
  valid_row(&x, 1, 7, 2, 2);
  put(&x, 1, ROW_PID | ROW_WIDE_SEQ | (6 << ROW_KIND_SHIFT));
  put_u64(&x, (uint64_t)INT64_MAX);
  put(&x, 1, ROW_TS_WIDE);
  put_u64(&x, (uint64_t)INT64_MIN);
  put(&x, 6, CRIT_MIN, CRIT_MAX, CRIT_MIN, CRIT_MAX, 1 | 4, CRIT_MAX);
  write_file("fuzz_store_load", "second-pid-wide-values", x.b, x.n, NULL, 0);
}

/* ---- fuzz_stream: round trips, tampering and encoded streams to decode ------ */

typedef struct stream_bytes {
  uint8_t b[8192];
  size_t n;
} stream_bytes;

static int stream_collect(void *ud, uint64_t index, const void *p, size_t len) {
  (void)index;
  stream_bytes *x = ud;
  if (x->n + 2 + len > sizeof x->b)
    return SNAP_EFULL;
  x->b[x->n++] = (uint8_t)len;
  x->b[x->n++] = (uint8_t)(len >> 8);
  memcpy(x->b + x->n, p, len);
  x->n += len;
  return SNAP_OK;
}

static void stream_corpus(void) {
  static const unsigned sels[] = {0, FUZZ_OPT_ENCRYPT, FUZZ_OPT_MAC, FUZZ_OPT_ZLIB,
                                  FUZZ_OPT_ZLIB | FUZZ_OPT_ENCRYPT, FUZZ_OPT_ZLIB | FUZZ_OPT_MAC};
  char name[64];
  for (size_t i = 0; i < sizeof sels / sizeof *sels; i++) {
    for (unsigned zstd = 0; zstd < 2; zstd++) {
      if (zstd && !(sels[i] & FUZZ_OPT_ZLIB))
        continue;
      /* mode 1 and 2: selector, mode, chunk size - 1 (15: JSON, 16: msgpack), cap - 1 */
      const uint8_t rt[] = {(uint8_t)sels[i], (uint8_t)(1 | zstd << 7), 15, 63};
      snprintf(name, sizeof name, "round-trip-json-%02x%s", sels[i], zstd ? "-zstd" : "");
      write_file("fuzz_stream", name, rt, sizeof rt, json_state, sizeof json_state - 1);
      const uint8_t mp[] = {(uint8_t)sels[i], (uint8_t)(1 | zstd << 7), 16, 9};
      snprintf(name, sizeof name, "round-trip-msgpack-%02x%s", sels[i], zstd ? "-zstd" : "");
      write_file("fuzz_stream", name, mp, sizeof mp, msgpack_state, sizeof msgpack_state - 1);
      const uint8_t tp[] = {(uint8_t)sels[i], (uint8_t)(2 | zstd << 7), 15, 63, 40, 0, 0x20};
      snprintf(name, sizeof name, "tamper-%02x%s", sels[i], zstd ? "-zstd" : "");
      write_file("fuzz_stream", name, tp, sizeof tp, json_state, sizeof json_state - 1);
      /* mode 0: a stream written with the same options, as u16le-framed head and records */
      snap_options *o = fuzz_options(sels[i], 0);
      if (!o || (zstd && snap_options_set_compression(o, SNAP_COMPRESSION_ZSTD, 1)))
        exit(1);
      stream_bytes recs = {{0}, 0};
      snap_buf head = SNAP_BUF_INIT;
      snap_stream_encoder *e;
      if (snap_stream_encoder_new(&e, "account-42", 7, SNAP_FORMAT_JSON, o, 16, stream_collect,
                                  &recs) ||
          snap_stream_encoder_write(e, json_state, sizeof json_state - 1) ||
          snap_stream_encoder_finish(e, &head, NULL)) {
        fprintf(stderr, "gen_corpus: stream failed: %s\n", snap_error_message());
        exit(1);
      }
      snap_stream_encoder_free(e);
      uint8_t pre[4] = {(uint8_t)sels[i], (uint8_t)(zstd << 7), (uint8_t)head.len,
                        (uint8_t)(head.len >> 8)};
      uint8_t all[9000];
      memcpy(all, pre, 4);
      memcpy(all + 4, head.data, head.len);
      memcpy(all + 4 + head.len, recs.b, recs.n);
      snprintf(name, sizeof name, "decode-%02x%s", sels[i], zstd ? "-zstd" : "");
      write_file("fuzz_stream", name, all, 4 + head.len + recs.n, NULL, 0);
      snap_buf_dispose(&head);
      snap_options_free(o);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS-ROOT\n", argv[0]);
    return 2;
  }
  root = argv[1];
  if (mkdir(root, 0755) != 0 && errno != EEXIST) {
    perror(root);
    return 1;
  }
  fuzz_keyrings_init();
  body_decode();
  body_mutate();
  payload();
  config();
  store_load();
  stream_corpus();
  return 0;
}
