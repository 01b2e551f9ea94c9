/* One line of an import file, read and checked (import_line.c). */
#ifndef SNAPCTL_IMPORT_LINE_H
#define SNAPCTL_IMPORT_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapctl.h"

/* The most state bytes one part line may carry (export writes 768 KiB). */
#define PART_MAX (16u << 20)

/* One snapshot read from a line (owned strings). */
typedef struct jl_rec {
  char *pid;
  int64_t seq, timestamp;
  snap_format format;
  uint8_t *state;
  size_t len;
  char *manifest;    /* NULL: none */
  uint8_t *metadata; /* NULL: none */
  size_t metadata_len;
  char *dict_name; /* non-NULL: a dictionary line (no snapshot) */
  uint8_t *dict;
  size_t dict_len;
  uint64_t stream_len; /* non-zero: the first line of a streamed record (no state) */
  bool is_part;        /* a part line of a streamed record: only `part` */
  uint8_t *part;
  size_t part_len;
} jl_rec;

/* Parses and checks one line into `r` (zeroed first); false with `err` saying
 * why, and `r` holding nothing. */
bool ctl_import_parse_line(const char *line, size_t len, jl_rec *r, char *err, size_t errn);

/* Frees what `r` owns and zeroes it. */
void ctl_import_rec_dispose(jl_rec *r);

/* Writes why a line is bad into `err`; returns false. */
__attribute__((format(printf, 3, 4))) bool ctl_import_bad(char *err, size_t errn, const char *fmt,
                                                          ...);

#endif
