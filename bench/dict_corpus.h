/* The "dict" rows' corpus and measurement (dict.c). */
#ifndef SNAP_BENCH_DICT_CORPUS_H
#define SNAP_BENCH_DICT_CORPUS_H

#include <stddef.h>
#include <stdint.h>

/* The dictionary's capacity in bytes. */
#define DICT_CAPACITY 16384

typedef struct bench_dict_result {
  uint64_t state_bytes; /* the 9,000 measured states */
  uint64_t zlib_bytes;  /* their bodies with zlib-1 */
  uint64_t dict_bytes;  /* their bodies with zstd-3 and the dictionary */
  size_t dict_len;      /* the trained dictionary */
  double mean_state;    /* mean state size */
} bench_dict_result;

/* Generates 10,000 states of about `target` bytes, trains on the first
 * 1,000 and encodes the other 9,000 both ways. 0, or -1 with `err` set. */
int bench_dict_corpus(size_t target, bench_dict_result *r, char *err, size_t errlen);

#endif
