/* Validation beside the stream encoder (snap/stream.h, snap_stream_encoder_write()):
 * large pieces are validated on a thread of the encoder's own while the
 * caller encodes them. The verdict, its message and the encoder's state must
 * not depend on how the state was split, and streams encoded at once in
 * several threads stay independent. Also run under ThreadSanitizer. */
#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap/pipeline.h"
#include "snap/stream.h"

#define PID "acct/side"
#define BIG ((size_t)512 << 10) /* validated beside the encoding */
#define SMALL ((size_t)4 << 10) /* validated in the caller */

/* A JSON array of `n` bytes (n >= 64): members of one item, padded with
 * spaces before the closing bracket. */
static uint8_t *state_of(size_t n) {
  static const char item[] = "{\"id\":123456,\"owner\":\"account-000042\",\"tags\":[\"a\",\"b\"]},";
  const size_t il = sizeof item - 1;
  uint8_t *p = malloc(n);
  cr_assert_not_null(p);
  size_t k = 0;
  p[k++] = '[';
  while (k + il + 3 <= n) {
    memcpy(p + k, item, il);
    k += il;
  }
  memcpy(p + k, "0", 1);
  k++;
  memset(p + k, ' ', n - k - 1);
  p[n - 1] = ']';
  return p;
}

typedef struct sink_state {
  uint8_t *bytes; /* the records, back to back (plain: the payload and its CRC) */
  size_t len, cap;
  size_t records;
  long threads_seen; /* the most threads in this process during a sink call */
} sink_state;

static long threads_now(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long n = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %ld", &n) == 1)
      break;
  if (f)
    fclose(f);
  return n;
}

static int sink(void *ud, uint64_t index, const void *rec, size_t len) {
  sink_state *s = ud;
  cr_assert_eq(index, s->records, "records arrive in order");
  if (s->len + len > s->cap) {
    s->cap = 2 * (s->len + len);
    s->bytes = realloc(s->bytes, s->cap);
    cr_assert_not_null(s->bytes);
  }
  memcpy(s->bytes + s->len, rec, len);
  s->len += len;
  s->records++;
  const long t = threads_now();
  if (t > s->threads_seen)
    s->threads_seen = t;
  return SNAP_OK;
}

/* A fixed nonce, so that two encodings of one state are byte-identical. */
static void fixed_nonce(uint8_t *out, size_t len, void *ud) {
  (void)ud;
  memset(out, 0x5a, len);
}

static snap_options *fixed_options(void) {
  snap_options *o = NULL;
  cr_assert_eq(snap_options_new(&o), SNAP_OK);
  cr_assert_eq(snap_options_set_nonce_source(o, fixed_nonce, NULL), SNAP_OK);
  return o;
}

/* Encodes p[0..n) in calls of `piece` bytes; returns the first failing
 * call's code (its message in `msg`) or finish's. */
static int encode(const uint8_t *p, size_t n, size_t piece, sink_state *s, snap_buf *head,
                  char *msg, size_t cap) {
  snap_options *o = fixed_options();
  snap_stream_encoder *e = NULL;
  cr_assert_eq(snap_stream_encoder_new(&e, PID, 7, SNAP_FORMAT_JSON, o, 0, sink, s), SNAP_OK);
  int rc = SNAP_OK;
  for (size_t k = 0; rc == SNAP_OK && k < n; k += piece)
    rc = snap_stream_encoder_write(e, p + k, n - k < piece ? n - k : piece);
  if (rc == SNAP_OK)
    rc = snap_stream_encoder_finish(e, head, NULL);
  if (msg)
    snprintf(msg, cap, "%s", rc == SNAP_OK ? "" : snap_error_message());
  if (rc != SNAP_OK) { /* a failed encoder stays failed */
    cr_assert_eq(snap_stream_encoder_write(e, "1", 1), SNAP_EINVAL);
    cr_assert_eq(snap_stream_encoder_finish(e, head, NULL), SNAP_EINVAL);
  }
  snap_stream_encoder_free(e);
  snap_options_free(o);
  return rc;
}

Test(stream_side, encoding_does_not_depend_on_the_split) {
  const size_t n = (size_t)3 << 20;
  uint8_t *p = state_of(n);
  sink_state big = {0}, small = {0};
  snap_buf hb = SNAP_BUF_INIT, hs = SNAP_BUF_INIT;
  cr_assert_eq(encode(p, n, BIG, &big, &hb, NULL, 0), SNAP_OK);
  cr_assert_eq(encode(p, n, SMALL, &small, &hs, NULL, 0), SNAP_OK);
  cr_assert_eq(big.records, small.records);
  cr_assert_eq(big.len, small.len);
  cr_assert_eq(memcmp(big.bytes, small.bytes, big.len), 0, "the same records");
  cr_assert_eq(hb.len, hs.len);
  cr_assert_eq(memcmp(hb.data, hs.data, hb.len), 0, "the same head");
  /* ... and the records read back as the state. */
  snap_stream_decoder *d = NULL;
  snap_stream_info info;
  cr_assert_eq(snap_stream_decoder_open(&d, PID, 7, hb.data, hb.len, NULL, 0, &info), SNAP_OK);
  uint8_t *out = malloc(n + 1), *rec = big.bytes; /* room for one byte too many */
  size_t have = 0;
  for (uint64_t i = 0; i < info.chunk_count; i++) {
    const size_t len = snap_stream_record_len(&info, i);
    cr_assert_eq(snap_stream_decoder_push(d, rec, len), SNAP_OK);
    rec += len;
    size_t got;
    do {
      cr_assert_eq(snap_stream_decoder_read(d, out + have, n + 1 - have, &got), SNAP_OK);
      have += got;
    } while (got);
  }
  cr_assert_eq(snap_stream_decoder_finish(d), SNAP_OK);
  cr_assert_eq(have, n);
  cr_assert_eq(memcmp(out, p, n), 0);
  snap_stream_decoder_free(d);
  free(out);
  snap_buf_dispose(&hb);
  snap_buf_dispose(&hs);
  free(big.bytes);
  free(small.bytes);
  free(p);
}

/* The faults a piece can hold, each deep inside a large piece. */
Test(stream_side, a_refusal_names_the_same_byte_whatever_the_split) {
  static const struct {
    const char *bytes;
    size_t after_quote; /* where, from a member name's opening quote */
    const char *what;
  } faults[] = {
      {"\x01", 1, "a control byte in a string"},
      {"\xc3\x28", 1, "invalid UTF-8"},
      {"\\q", 1, "a bad escape"},
      {":", 0, "a misplaced ':'"},
  };
  const size_t n = (size_t)2 << 20, at = ((size_t)1 << 20) + 333;
  for (size_t f = 0; f < sizeof faults / sizeof faults[0]; f++) {
    uint8_t *p = state_of(n);
    size_t k = at;
    while (p[k] != '"' || p[k - 1] != '{')
      k++;
    memcpy(p + k + faults[f].after_quote, faults[f].bytes, strlen(faults[f].bytes));
    char m_big[512], m_small[512], m_one[512];
    sink_state a = {0}, b = {0}, c = {0};
    snap_buf h = SNAP_BUF_INIT;
    cr_assert_eq(encode(p, n, BIG, &a, &h, m_big, sizeof m_big), SNAP_EFORMAT, "%s",
                 faults[f].what);
    cr_assert_eq(encode(p, n, SMALL, &b, &h, m_small, sizeof m_small), SNAP_EFORMAT);
    cr_assert_eq(encode(p, n, n, &c, &h, m_one, sizeof m_one), SNAP_EFORMAT);
    cr_assert_str_eq(m_big, m_small, "%s", faults[f].what);
    cr_assert_str_eq(m_one, m_small, "%s", faults[f].what);
    cr_assert(strstr(m_small, "byte offset") != NULL, "%s: %s", faults[f].what, m_small);
    snap_buf_dispose(&h);
    free(a.bytes);
    free(b.bytes);
    free(c.bytes);
    free(p);
  }
}

Test(stream_side, a_large_piece_is_validated_on_a_second_thread_where_there_is_a_core) {
  const size_t n = (size_t)4 << 20;
  uint8_t *p = state_of(n);
  sink_state big = {0}, small = {0};
  snap_buf h = SNAP_BUF_INIT;
  cr_assert_eq(encode(p, n, SMALL, &small, &h, NULL, 0), SNAP_OK);
  cr_assert_eq(encode(p, n, BIG, &big, &h, NULL, 0), SNAP_OK);
  /* (ThreadSanitizer's runtime adds a thread of its own at the first
   * pthread_create(): counts are compared, not stated.) */
  if (sysconf(_SC_NPROCESSORS_ONLN) > 1) {
    cr_assert_gt(big.threads_seen, small.threads_seen, "%ld against %ld threads",
                 big.threads_seen, small.threads_seen);
    cr_assert_lt(threads_now(), big.threads_seen, "the thread is gone with its encoder");
  } else {
    cr_assert_eq(big.threads_seen, small.threads_seen, "one core: no thread is started");
  }
  snap_buf_dispose(&h);
  free(big.bytes);
  free(small.bytes);
  free(p);
}

/* Streams encoded at once in several threads, each with its own validator
 * thread; the verdicts stay each stream's own. */
typedef struct job {
  const uint8_t *p;
  size_t n;
  int rc;
} job;

static void *encode_job(void *arg) {
  job *j = arg;
  sink_state s = {0};
  snap_buf h = SNAP_BUF_INIT;
  j->rc = encode(j->p, j->n, BIG / 2, &s, &h, NULL, 0);
  snap_buf_dispose(&h);
  free(s.bytes);
  return NULL;
}

Test(stream_side, streams_in_several_threads_keep_their_own_verdicts) {
  const size_t n = (size_t)2 << 20;
  uint8_t *good = state_of(n), *bad = state_of(n);
  bad[n / 2] = 0x02;
  job jobs[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (job){i % 2 ? bad : good, n, -1};
    cr_assert_eq(pthread_create(&t[i], NULL, encode_job, &jobs[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(jobs[i].rc, i % 2 ? SNAP_EFORMAT : SNAP_OK, "stream %d", i);
  free(good);
  free(bad);
}
