/*
 * The small-state corpus of the "dict" rows and of the zstd+dict save, load,
 * encode and decode rows (corpus.c, dict.c): 10,000 distinct states of one
 * entity type, generated deterministically, the first 1,000 for training a
 * dictionary and the other 9,000 measured.
 */
#ifndef SNAP_BENCH_CORPUS_H
#define SNAP_BENCH_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "snap/pipeline.h"

#define CORPUS_N 10000
#define CORPUS_TRAIN 1000
/* The dictionary's capacity in bytes (snapctl dict train's default size). */
#define DICT_CAPACITY 16384

/* The entity's shape. CORPUS_ACCOUNT: an account with its owner, ISO-8601
 * times, decimal-string amounts and a chronological history of transactions
 * (counterparty, memo, state), as a service's JSON would hold it.
 * CORPUS_ACCOUNT_EPOCH: the earlier, terser shape: integer epoch seconds and
 * cents drawn independently for every entry, fewer keys per value. */
typedef enum corpus_style { CORPUS_ACCOUNT, CORPUS_ACCOUNT_EPOCH } corpus_style;

typedef struct corpus {
  snap_format fmt;
  uint8_t *buf;      /* the states, back to back */
  size_t *off, *len; /* state i is buf[off[i] .. off[i] + len[i]) */
  snap_dict *dict;   /* trained on states [0, CORPUS_TRAIN) */
  double mean;       /* mean length of the measured states */
} corpus;

/* Generates the corpus (JSON, or the same states as msgpack) of states of
 * about `target` bytes and trains its dictionary. 0, or -1 with `err` set. */
int corpus_make(corpus *c, size_t target, corpus_style style, snap_format fmt, char *err,
                size_t errlen);
void corpus_free(corpus *c);

/* Sum of the body bytes of the measured states encoded with `o`; -1 on error. */
int corpus_body_bytes(const corpus *c, const snap_options *o, uint64_t *out);
/* Options: zstd level 3, with the corpus's dictionary when `dict`. NULL on
 * error. */
snap_options *corpus_zstd_options(const corpus *c, int dict);

#endif
