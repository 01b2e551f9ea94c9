/* The bytes this process has caused to be written to storage, from /proc/self/io. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

long long bench_io_written(void) {
  FILE *f = fopen("/proc/self/io", "r");
  if (!f) {
    return -1;
  }
  char line[128];
  long long write_bytes = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "write_bytes:", 12) == 0) {
      write_bytes = strtoll(line + 12, NULL, 10);
    }
  }
  fclose(f);
  return write_bytes;
}
