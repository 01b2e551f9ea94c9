/* The stream entry points the store uses (pipeline_layer.h): streams sealed
 * with a shred unit's data key (envelope mode) and heads that state a
 * manifest and metadata, written and read back, and the golden vectors of
 * both read by the library. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap/pipeline.h"
#include "snap/pipeline_layer.h"
#include "snap/stream.h"

#define PID "tenant-7/acct-1"

typedef struct recs {
  snap_buf all;
  size_t len[256];
  size_t n;
} recs;

static int collect(void *ud, uint64_t index, const void *p, size_t len) {
  recs *r = ud;
  cr_assert_eq(index, r->n);
  cr_assert_eq(snap_buf_reserve(&r->all, r->all.len + len), SNAP_OK);
  memcpy(r->all.data + r->all.len, p, len);
  r->all.len += len;
  r->len[r->n++] = len;
  return SNAP_OK;
}

/* Decodes with the data key `dek` (NULL: the public decoder); the state into `out`. */
static int decode(const snap_options *o, const char *pid, int64_t seq, const snap_buf *head,
                  const recs *r, const uint8_t *dek, snap_buf *out) {
  snap_stream_decoder *d;
  int rc = dek ? snap__stream_decoder_open_envelope(&d, pid, seq, head->data, head->len, o, dek, 0,
                                                    NULL)
               : snap_stream_decoder_open(&d, pid, seq, head->data, head->len, o, 0, NULL);
  if (rc)
    return rc;
  out->len = 0;
  const uint8_t *p = r->all.data;
  for (size_t i = 0; i < r->n && rc == SNAP_OK; i++) {
    rc = snap_stream_decoder_push(d, p, r->len[i]);
    p += r->len[i];
    size_t got = 1;
    while (rc == SNAP_OK && got) {
      cr_assert_eq(snap_buf_reserve(out, out->len + 64), SNAP_OK);
      rc = snap_stream_decoder_read(d, out->data + out->len, 64, &got);
      out->len += got;
    }
  }
  if (rc == SNAP_OK)
    rc = snap_stream_decoder_finish(d);
  snap_stream_decoder_free(d);
  return rc;
}

Test(layer, envelope_streams_open_with_their_data_key_only) {
  snap_keyring *kr;
  uint8_t master[32] = {1};
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, master, 32), SNAP_OK);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_encryption(o, kr, "ctx"), SNAP_OK);
  cr_assert_eq(snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1), SNAP_OK);
  cr_assert_eq(snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE), SNAP_OK);
  snap__envelope_key k = {.unit = "tenant-7", .unit_len = 8, .generation = 4};
  for (int i = 0; i < 32; i++)
    k.dek[i] = (uint8_t)(0x40 + i);
  const snap__typing t = {"bank.Account/3", 14, (const uint8_t *)"m=1", 3};
  recs r = {SNAP_BUF_INIT, {0}, 0};
  snap_buf head = SNAP_BUF_INIT, out = SNAP_BUF_INIT;
  static char state[3000];
  memset(state, 'q', sizeof state);
  state[0] = '"';
  state[sizeof state - 1] = '"';
  snap_stream_encoder *e;
  cr_assert_eq(snap__stream_encoder_new_typed(&e, PID, 3, SNAP_FORMAT_JSON, o, 16, &k, &t,
                                              collect, &r),
               SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_stream_encoder_write(e, state, sizeof state), SNAP_OK);
  cr_assert_eq(snap_stream_encoder_finish(e, &head, NULL), SNAP_OK);
  snap_stream_encoder_free(e);
  cr_assert_gt(r.n, 1u);
  /* The head names the unit and its generation, states the manifest. */
  snap__envelope_ref ref;
  cr_assert_eq(snap__body_envelope_ref(PID, 3, head.data, head.len, &ref), 1);
  cr_assert_eq(ref.unit_len, 8u);
  cr_assert_eq(memcmp(ref.unit, "tenant-7", 8), 0);
  cr_assert_eq(ref.generation, 4u);
  snap__typing got;
  cr_assert_eq(snap__body_typing(head.data, head.len, &got), SNAP_OK);
  cr_assert_eq(got.manifest_len, 14u);
  cr_assert_eq(memcmp(got.manifest, "bank.Account/3", 14), 0);
  cr_assert_eq(got.metadata_len, 3u);
  cr_assert_eq(decode(o, PID, 3, &head, &r, k.dek, &out), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(out.len, sizeof state);
  cr_assert_eq(memcmp(out.data, state, sizeof state), 0);
  /* Without the data key, with another one, or bound to another pid: refused. */
  cr_assert_eq(decode(o, PID, 3, &head, &r, NULL, &out), SNAP_ENOKEY);
  uint8_t other[32];
  memcpy(other, k.dek, 32);
  other[5] ^= 1;
  cr_assert_eq(decode(o, PID, 3, &head, &r, other, &out), SNAP_EAUTH);
  cr_assert_eq(decode(o, "tenant-7/acct-2", 3, &head, &r, k.dek, &out), SNAP_EAUTH);
  snap_buf_dispose(&head);
  snap_buf_dispose(&out);
  snap_buf_dispose(&r.all);
  snap_options_free(o);
  snap_keyring_free(kr);
}

static uint8_t *slurp(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/golden/stream/%s", SNAP_TEST_DATA_DIR, name);
  FILE *f = fopen(path, "rb");
  cr_assert(f, "%s", path);
  static uint8_t buf[1 << 16];
  *len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  uint8_t *p = malloc(*len + 1);
  memcpy(p, buf, *len);
  return p;
}

Test(layer, the_golden_envelope_and_typed_streams_decode) {
  uint8_t master[32], dek[32];
  for (int i = 0; i < 32; i++) {
    master[i] = (uint8_t)i;
    dek[i] = (uint8_t)(0xa0 + i);
  }
  snap_keyring *kr;
  cr_assert_eq(snap_keyring_new(&kr), SNAP_OK);
  cr_assert_eq(snap_keyring_add(kr, 1, master, 32), SNAP_OK);
  snap_options *o;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_integrity(o, kr, "snapstore/golden/v1"), SNAP_OK);
  const char *const names[] = {"json-zlib-envelope", "json-typed-zstd-mac"};
  size_t sn;
  uint8_t *want = slurp("../state.json", &sn);
  for (int i = 0; i < 2; i++) {
    char file[96];
    size_t hn, rn;
    snprintf(file, sizeof file, "%s.head", names[i]);
    uint8_t *h = slurp(file, &hn);
    snprintf(file, sizeof file, "%s.records", names[i]);
    uint8_t *rb = slurp(file, &rn);
    snap_stream_info info;
    cr_assert_eq(snap_body_inspect_stream(h, hn, &info), SNAP_OK);
    recs r = {SNAP_BUF_INIT, {0}, 0};
    const uint8_t *p = rb;
    for (uint64_t k = 0; k < info.chunk_count; k++) {
      const size_t len = snap_stream_record_len(&info, k);
      collect(&r, k, p, len);
      p += len;
    }
    snap_buf head = {h, hn, hn}, out = SNAP_BUF_INIT;
    cr_assert_eq(decode(o, "golden/pid-\xc3\xa9", 42, &head, &r, i == 0 ? dek : NULL, &out),
                 SNAP_OK, "%s: %s", names[i], snap_error_message());
    cr_assert_eq(out.len, sn);
    cr_assert_eq(memcmp(out.data, want, sn), 0, "%s", names[i]);
    snap_buf_dispose(&out);
    snap_buf_dispose(&r.all);
    free(h);
    free(rb);
  }
  free(want);
  snap_options_free(o);
  snap_keyring_free(kr);
}
