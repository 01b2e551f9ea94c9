/*
 * snap_bench rows: DEFLATE implementations, the codec on its own, and peak
 * RSS around one large state.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"

/* libdeflate against zlib on the JSON states: compression at levels 1 and 6
 * (µs, and the compressed size) and decompression of each one's stream. */
void deflate_rows(runner *rn, const states *s) {
  char name[128];
  for (int z = 0; z < SIZE_COUNT; z++) {
    payload p = ledger_json(s, (bench_size)z);
    for (int level = 1; level <= 6; level += 5) {
      for (int dec = 0; dec < 2; dec++) {
        deflate_case *c = deflate_case_new(p.data, p.len, level, dec);
        if (!c) {
          rn->failures++;
          return;
        }
        snprintf(name, sizeof name, "%s, level %d, %s: libdeflate", p.label, level,
                 dec ? "decompress" : "compress");
        run_row(rn, "deflate", name, dec ? "zlib inflate (raw, no Adler-32)" : "zlib deflate",
                "µs/op", KIND_TIME, deflate_libdeflate, c, deflate_zlib, c);
        if (!dec && wanted(rn, "deflate", name)) {
          bench_row *row;
          snprintf(name, sizeof name, "%s, level %d, compressed size: libdeflate", p.label, level);
          if ((row = bench_row_add(rn->report, "deflate", name, "zlib", "bytes", KIND_SIZE))) {
            bench_row_record(row, (double)deflate_case_size(c, 1), (double)deflate_case_size(c, 0));
          }
        }
        free(c);
      }
    }
  }
}

void codec_rows(runner *rn, const states *s) {
  char name[96];
  payload list[SIZE_COUNT + 3];
  int opts_all[SIZE_COUNT + 3];
  int n = 0;
  for (int z = 0; z < SIZE_COUNT; z++) {
    opts_all[n] = 1;
    list[n++] = ledger_json(s, (bench_size)z);
  }
  opts_all[n] = 0;
  list[n++] = ledger_msgpack(s, SIZE_4K);
  opts_all[n] = 0;
  list[n++] = ledger_msgpack(s, SIZE_1M);
  opts_all[n] = 0;
  list[n++] = random_4k(s);
  for (int i = 0; i < n; i++) {
    codec_case cc = {list[i].fmt, list[i].data, list[i].len, OPT_PLAIN};
    run_row(rn, "validate", list[i].label,
            list[i].fmt == SNAP_FORMAT_JSON ? "cJSON_ParseWithLengthOpts + cJSON_Delete"
                                            : "msgpack_unpack_next",
            "GB/s", KIND_RATE, side_val_snap, &cc, side_val_raw, &cc);
  }
  for (int dir = 0; dir < 2; dir++) {
    for (int i = 0; i < n; i++) {
      for (int opt = 0; opt < OPT_DIRECT_COUNT; opt += opts_all[i] ? 1 : OPT_ZLIB_ENC) {
        codec_case cc = {list[i].fmt, list[i].data, list[i].len, opt};
        snprintf(name, sizeof name, "%s, %s", list[i].label, opt_label(opt));
        if (dir == 0) {
          run_row(rn, "encode", name, "cJSON/msgpack-c + zlib + libsodium directly", "µs/op",
                  KIND_TIME, side_enc_snap, &cc, side_enc_raw, &cc);
        } else {
          run_row(rn, "decode", name, "libsodium + zlib directly", "µs/op", KIND_TIME,
                  side_dec_snap, &cc, side_dec_raw, &cc);
        }
      }
    }
  }
}

/* Writes the large state in a short-lived child so that its generation (the
 * cJSON tree of a 64 MiB ledger is several times its size) does not raise
 * this process's own peak. */
static int write_big_state(const char *path, size_t size) {
  fflush(stdout);
  fflush(stderr);
  pid_t child = fork();
  if (child < 0) {
    return -1;
  }
  if (child == 0) {
    bench_state st;
    if (bench_state_make(&st, size) != 0) {
      _exit(1);
    }
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(st.json, 1, st.json_len, f) == st.json_len;
    if (f && fclose(f) != 0) {
      ok = 0;
    }
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void rss_rows(runner *rn, double *state_kib) {
  const bench_cfg *cfg = rn->bx->cfg;
  char path[4096], name[96], err[160] = "";
  if (!wanted(rn, "rss", "")) {
    return;
  }
  bench_path(path, sizeof path, cfg, "rss-state.json");
  struct stat sb;
  if (write_big_state(path, cfg->rss_state) != 0 || stat(path, &sb) != 0) {
    bench_row *row = bench_row_add(rn->report, "rss", "state generation", "", "KiB", KIND_SIZE);
    if (row) {
      bench_row_fail(row, "could not write %s", path);
    }
    rn->failures++;
    return;
  }
  *state_kib = (double)sb.st_size / 1024.0;
  for (int opt = 0; opt < OPT_COUNT; opt += OPT_ZLIB_ENC) {
    snprintf(name, sizeof name, "%.0f MiB JSON, %s, save then load", *state_kib / 1024.0,
             opt_label(opt));
    bench_row *row = bench_row_add(rn->report, "rss", name, "raw INSERT then SELECT + copy",
                                   "KiB peak", KIND_SIZE);
    if (!row) {
      rn->failures++;
      break;
    }
    int reps = cfg->quick ? 1 : 3;
    for (int rep = 0; rep < reps; rep++) {
      long a = 0, b = 0;
      if (rss_measure(rn->bx, "/proc/self/exe", path, 0, opt, &a, err, sizeof err) != 0 ||
          rss_measure(rn->bx, "/proc/self/exe", path, 1, opt, &b, err, sizeof err) != 0) {
        bench_row_fail(row, "%s", err);
        rn->failures++;
        break;
      }
      bench_row_record(row, (double)a, (double)b);
    }
    progress(row);
  }
  unlink(path);
}

/* ------------------------------------------------------------------------ */
