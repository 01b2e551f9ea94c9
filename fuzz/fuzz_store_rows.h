/*
 * The rows fuzz_store_load writes into the sqlite table, shared with
 * gen_corpus so that the seeds follow the same input layout.
 */
#ifndef SNAP_FUZZ_STORE_ROWS_H
#define SNAP_FUZZ_STORE_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

#define MAX_ROWS 8
#define ROW_KINDS 8 /* 0: raw bytes from the input; 1..7: row_bodies */

/* Row flag bits. */
#define ROW_PID 0x01u      /* fuzz_pids[1] instead of fuzz_pids[0] */
#define ROW_KIND_SHIFT 1   /* 3 bits: the body kind */
#define ROW_FLIP 0x10u     /* flip a byte of the valid body */
#define ROW_ODD 0x20u      /* store one column with another SQL type */
#define ROW_WIDE_SEQ 0x40u /* the seq is 8 bytes, else 1 */
#define ROW_TS_WIDE 0x80u  /* (in the ts byte) the ts is 8 more bytes, else byte * 1000 */

enum { ODD_NONE, ODD_REAL_SEQ, ODD_TEXT_TS, ODD_TEXT_BODY, ODD_EMPTY_BODY };

/* A valid body: the state, how it was encoded and the (pid, seq) it is bound to. */
typedef struct row_body {
  unsigned sel; /* FUZZ_OPT_* of the encode */
  int pid;
  int64_t seq;
  snap_format fmt;
  const char *state;
} row_body;

#define ROW_LEDGER                                                                                 \
  "{\"entries\":[{\"id\":1,\"amount\":100},{\"id\":2,\"amount\":100},{\"id\":3,\"amount\":100},"   \
  "{\"id\":4,\"amount\":100},{\"id\":5,\"amount\":100}],\"balance\":500}"

__attribute__((unused)) static const row_body row_bodies[ROW_KINDS] = {
    {0, 0, 0, SNAP_FORMAT_JSON, ""},
    {0, 0, 1, SNAP_FORMAT_JSON, "{\"balance\":1}"},
    {FUZZ_OPT_ZLIB, 0, 2, SNAP_FORMAT_JSON, ROW_LEDGER},
    {FUZZ_OPT_ENCRYPT, 0, 3, SNAP_FORMAT_JSON, "{\"balance\":3}"},
    {FUZZ_OPT_ENCRYPT | FUZZ_OPT_ZLIB, 0, 4, SNAP_FORMAT_JSON, ROW_LEDGER},
    {FUZZ_OPT_MAC, 0, 5, SNAP_FORMAT_MSGPACK,
     "\x81\xa7"
     "balance"
     "\x05"},
    {0, 1, 1, SNAP_FORMAT_MSGPACK, "\x92\xc3\xa1x"},
    {FUZZ_OPT_ENCRYPT | FUZZ_OPT_ACTIVE2, 1, 2, SNAP_FORMAT_JSON, "[\"p\",2]"},
};

typedef struct row_spec {
  int pid;
  int kind;
  int flip;
  uint16_t flip_pos;
  uint8_t flip_mask;
  int odd;
  int64_t seq;
  int64_t ts;
} row_spec;

/* Reads one row; a raw body (kind 0) goes to raw[0..*raw_len), at most 255 bytes. */
static inline void row_read(fuzz_reader *r, row_spec *rs, uint8_t raw[256], size_t *raw_len) {
  uint8_t f = fuzz_u8(r);
  rs->pid = (f & ROW_PID) ? 1 : 0;
  rs->kind = (f >> ROW_KIND_SHIFT) & 7;
  rs->flip = (f & ROW_FLIP) != 0;
  rs->seq = (f & ROW_WIDE_SEQ) ? (int64_t)fuzz_u64(r) : (int64_t)fuzz_u8(r);
  uint8_t t = fuzz_u8(r);
  rs->ts = (t & ROW_TS_WIDE) ? (int64_t)fuzz_u64(r) : (int64_t)t * 1000;
  *raw_len = 0;
  if (rs->kind == 0) {
    size_t n = fuzz_u8(r);
    while (*raw_len < n && r->n > 0)
      raw[(*raw_len)++] = fuzz_u8(r);
  }
  rs->flip_pos = 0;
  rs->flip_mask = 0;
  if (rs->flip) {
    rs->flip_pos = (uint16_t)(fuzz_u8(r) << 8);
    rs->flip_pos |= fuzz_u8(r);
    rs->flip_mask = fuzz_u8(r);
  }
  rs->odd = (f & ROW_ODD) ? 1 + fuzz_u8(r) % 4 : ODD_NONE;
}

#endif
