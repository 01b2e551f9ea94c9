/* Test helper for tests/cli/snapctl_streams.sh: writes streamed snapshots
 * with the library's stream writer, and prints the states it writes.
 *
 *   mkstream save DB PID SEQ KIB [KEYFILE]   a streamed save of the state of KIB KiB
 *                                            (1 MiB chunks), zlib-1 + encrypted under
 *                                            KEYFILE (context test/snapctl/v1) if given,
 *                                            plain otherwise
 *   mkstream print KIB                       that state on stdout
 *
 * The state is a JSON array of the numbers 0, 1, 2, ... filling KIB KiB, written
 * in pieces of 64 KiB: the helper never holds it. Stores are opened with keep = 0
 * and synchronous = normal. Exit 0 on success, 2 on a usage or library error. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapstore.h"

#define PIECE (64u << 10)

typedef int (*sink_fn)(void *ud, const void *p, size_t n);

/* The state of `kib` KiB, in pieces to `sink`: "[0,1,2,...,N]" padded with
 * spaces to the exact size. */
static int produce(uint64_t kib, sink_fn sink, void *ud) {
  static char buf[PIECE + 32];
  uint64_t total = kib << 10, done = 0, k = 0;
  size_t n = 1;
  buf[0] = '[';
  int rc = 0;
  while (rc == 0 && done + n + 24 < total) {
    n += (size_t)sprintf(buf + n, "%" PRIu64 ",", k++);
    if (n >= PIECE) {
      rc = sink(ud, buf, n);
      done += n;
      n = 0;
    }
  }
  n += (size_t)sprintf(buf + n, "%" PRIu64 "]", k);
  while (rc == 0 && done + n < total)
    buf[n++] = ' ';
  return rc != 0 ? rc : sink(ud, buf, n);
}

static int to_stdout(void *ud, const void *p, size_t n) {
  (void)ud;
  return fwrite(p, 1, n, stdout) == n ? 0 : 2;
}

static int to_writer(void *ud, const void *p, size_t n) {
  return snap_save_stream_write(ud, p, n) == SNAP_OK ? 0 : 2;
}

static int die(const char *what) {
  fprintf(stderr, "mkstream: %s: %s\n", what, snap_error_message());
  return 2;
}

static int save(int argc, char **argv) {
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"keep\": 0, \"synchronous\": \"normal\"}",
           argv[2]);
  snap_store *st = NULL;
  snap_keyring *kr = NULL;
  snap_options *o = NULL;
  if (snap_store_open(&st, "sqlite", cfg) != SNAP_OK || snap_options_new(&o) != SNAP_OK)
    return die("open");
  if (argc > 6 && (snap_keyring_new(&kr) || snap_keyring_add_file(kr, 1, argv[6]) ||
                   snap_options_set_compression(o, SNAP_COMPRESSION_ZLIB, 1) ||
                   snap_options_set_encryption(o, kr, "test/snapctl/v1")))
    return die("key");
  snap_save_stream *w = NULL;
  if (snap_save_stream_begin(st, argv[3], strtoll(argv[4], NULL, 10), SNAP_TIMESTAMP_AUTO,
                             SNAP_FORMAT_JSON, o, NULL, 0, &w) != SNAP_OK)
    return die("begin");
  if (produce(strtoull(argv[5], NULL, 10), to_writer, w) != 0) {
    snap_save_stream_abort(w);
    return die("write");
  }
  if (snap_save_stream_commit(w, NULL) != SNAP_OK)
    return die("commit");
  snap_options_free(o);
  snap_keyring_free(kr);
  snap_store_close(st);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 6 && strcmp(argv[1], "save") == 0)
    return save(argc, argv);
  if (argc == 3 && strcmp(argv[1], "print") == 0)
    return produce(strtoull(argv[2], NULL, 10), to_stdout, NULL);
  fprintf(stderr, "usage: mkstream save DB PID SEQ KIB [KEYFILE] | mkstream print KIB\n");
  return 2;
}
