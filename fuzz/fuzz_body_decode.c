/*
 * Arbitrary bytes decoded as a body. Input: one byte choosing the reader's
 * options (keys, integrity, accept_unauthenticated, limits, context), one
 * byte choosing the (pid, seq) the body is decoded for (its top bit: first
 * recompute the CRC-32 trailer, so plaintext bodies get past the checksum),
 * then the body.
 * The decoder must answer SNAP_OK or an error; on SNAP_OK what it returns
 * must agree with the frame header, stay within the limits, and never be an
 * unauthenticated body when the reader holds a key and refuses those.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_keyrings_init();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_keyrings_init();
  if (size < 2)
    return 0;
  unsigned sel = data[0];
  const char *pid = fuzz_pids[(data[1] & 0x0f) % (sizeof fuzz_pids / sizeof fuzz_pids[0])];
  int64_t seq = fuzz_seqs[((data[1] >> 4) & 3u) % (sizeof fuzz_seqs / sizeof fuzz_seqs[0])];
  size_t body_len;
  uint8_t *body = fuzz_body_copy(data, size, &body_len);
  if (!body)
    return 0;

  /* Once with the selected options, once with none at all. */
  for (int pass = 0; pass < 2; pass++) {
    snap_options *o = NULL;
    if (pass == 0 && (o = fuzz_options(sel, 0)) == NULL)
      continue;
    snap_buf out = SNAP_BUF_INIT;
    snap_format fmt = 0;
    unsigned stages = 0xdead;
    int rc = snap_body_decode(pid, seq, body, body_len, o, &out, &fmt, &stages);
    FUZZ_CHECK(fuzz_known_code(rc), "decode returned %d", rc);
    if (rc == SNAP_OK) {
      snap_format hfmt = 0;
      unsigned hstages = 0;
      uint32_t kv = 0;
      uint64_t orig = 0;
      int hrc = snap_body_inspect(body, body_len, &hfmt, &hstages, &kv, &orig);
      FUZZ_CHECK(hrc == SNAP_OK, "decoded a body whose header inspect refuses (%d)", hrc);
      FUZZ_CHECK(fmt == SNAP_FORMAT_JSON || fmt == SNAP_FORMAT_MSGPACK, "format %d", (int)fmt);
      FUZZ_CHECK(fmt == hfmt && stages == hstages, "decode fmt %d stages %#x, inspect %d %#x",
                 (int)fmt, stages, (int)hfmt, hstages);
      FUZZ_CHECK(orig == out.len, "header declares %llu bytes, decode gave %zu",
                 (unsigned long long)orig, out.len);
      /* The empty state is valid (snap_payload_validate), so len 0 is too. */
      FUZZ_CHECK(out.data != NULL || out.len == 0, "%zu bytes decoded without a buffer", out.len);
      if (pass == 0 && (sel & FUZZ_OPT_LIMITS))
        FUZZ_CHECK(out.len <= FUZZ_LIMIT && body_len <= FUZZ_LIMIT, "over the limits: %zu",
                   out.len);
      if (pass == 0 && (sel & (FUZZ_OPT_ENCRYPT | FUZZ_OPT_MAC)) && !(sel & FUZZ_OPT_ACCEPT))
        FUZZ_CHECK(stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC),
                   "keyed reader accepted an unauthenticated body (stages %#x)", stages);
      /* Without a key nothing encrypted can be opened. */
      if (pass == 1)
        FUZZ_CHECK(!(stages & SNAP_STAGE_ENCRYPTED), "keyless reader decrypted a body (stages %#x)",
                   stages);
      /* Touch every byte so ASan sees a short buffer. */
      volatile uint8_t sink = 0;
      for (size_t i = 0; i < out.len; i++)
        sink ^= out.data[i];
      (void)sink;
    } else {
      FUZZ_CHECK(out.len == 0, "failed decode (%d) left %zu bytes", rc, out.len);
    }
    snap_buf_dispose(&out);
    snap_options_free(o);
  }
  /* inspect alone must be safe on anything. */
  snap_format f;
  unsigned s;
  uint32_t kv;
  uint64_t ol;
  int irc = snap_body_inspect(body, body_len, &f, &s, &kv, &ol);
  FUZZ_CHECK(fuzz_known_code(irc), "inspect returned %d", irc);
  free(body);
  return 0;
}
