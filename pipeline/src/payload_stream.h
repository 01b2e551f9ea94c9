/* Internal to incremental payload validation (payload_stream*.c): the state
 * machines of each format, carried between pieces. */
#ifndef SNAP_PAYLOAD_STREAM_H
#define SNAP_PAYLOAD_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/stream.h"

#define JSON_DEPTH_MAX 512 /* as payload.c: containers nested at most this deep */
#define JSON_NUMBER_MAX 63 /* characters of a number */
#define MP_DEPTH_MAX 32    /* msgpack-c's unpack stack */

/* Where the JSON machine is. */
typedef enum jstate {
  J_VALUE,       /* a value is due (whitespace first) */
  J_FIRST_ELEM,  /* after '[': a value or ']' */
  J_FIRST_KEY,   /* after '{': a member name or '}' */
  J_KEY,         /* after ',' in an object: a member name */
  J_COLON,       /* after a member name: ':' */
  J_AFTER,       /* after a value: ',' or a close, or (at the top) only whitespace */
  J_STR,         /* inside a string */
  J_ESC,         /* after '\' */
  J_HEX,         /* inside the four digits of a \u escape */
  J_LOW_BS,      /* after a high surrogate escape: '\' of the low one */
  J_LOW_U,       /* then its 'u' */
  J_NUM,         /* inside a number (nstate says where) */
  J_LIT          /* inside true, false or null */
} jstate;

/* Inside a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
typedef enum nstate { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP } nstate;

typedef struct json_machine {
  jstate st;
  nstate num;
  bool key;          /* the string being read is a member name */
  bool low;          /* the \u escape being read must be a low surrogate */
  unsigned hex_left; /* digits of the \u escape still due */
  unsigned hex;      /* its value so far */
  unsigned num_len;  /* characters of the number so far */
  const char *lit;   /* the literal being matched, and how much of it */
  unsigned lit_pos;
  unsigned u8_need;  /* continuation bytes of a UTF-8 sequence still due */
  uint8_t u8_lo, u8_hi; /* range of the next one */
  unsigned depth;
  uint8_t objects[JSON_DEPTH_MAX / 8]; /* bit per level: 1 = object, 0 = array */
} json_machine;

typedef struct mp_machine {
  uint64_t owed[MP_DEPTH_MAX]; /* values still due in each open non-empty container */
  unsigned top;
  bool done;          /* the one value is complete */
  uint8_t hdr[5];     /* a type byte and its length field, while split */
  unsigned hdr_have, hdr_need;
  uint64_t skip;      /* payload bytes of the current value still to pass */
} mp_machine;

struct snap_payload_validator {
  snap_format fmt;
  int failed;     /* the sticky verdict, or SNAP_OK */
  uint64_t total; /* bytes pushed so far: offsets in messages */
  union {
    json_machine j;
    mp_machine m;
  } u;
};

/* The JSON machine's fast path (payload_stream_fast.c): whole tokens from
 * p[i], while at least 64 bytes are left, with the machine's state kept in
 * step. It stops (returning where) at anything unusual: an escape or UTF-8
 * sequence it cannot finish, a token it cannot finish, anything that may be
 * an error; the byte machine reads on from there. */
size_t snap__json_fast(json_machine *j, const uint8_t *p, size_t n, size_t i);

/* The end of a run of plain string bytes (printable ASCII other than '"' and
 * '\') from p[i]. */
size_t snap__json_plain_run(const uint8_t *p, size_t n, size_t i);

/* msgpack (payload_stream_msgpack.c): SNAP_OK or SNAP_EFORMAT (message set,
 * v->failed too). */
int snap__msgpack_push(snap_payload_validator *v, const uint8_t *p, size_t n);
int snap__msgpack_finish(snap_payload_validator *v);

#endif
