/* The key making and timing the rewrap programs share (rewrap_common.h). */
#define _POSIX_C_SOURCE 200809L
#include "rewrap_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap/sys/backend.h"

#define BATCH 1000

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int rw_fail(const char *what, const char *why) {
  fprintf(stderr, "%s: %s: %s\n", rw_prog, what, why);
  return 1;
}

snap_options *rw_envelope(uint8_t v2_fill, snap_keyring **kr) {
  uint8_t key[SNAP_KEY_BYTES];
  snap_keyring_new(kr);
  memset(key, 0x51, sizeof key);
  snap_keyring_add(*kr, 1, key, sizeof key);
  if (v2_fill) {
    memset(key, v2_fill, sizeof key);
    snap_keyring_add(*kr, 2, key, sizeof key);
    snap_keyring_set_active(*kr, 2);
  }
  snap_options *o = NULL;
  snap_options_new(&o);
  snap_options_set_encryption(o, *kr, RW_CTX);
  snap_options_set_key_mode(o, SNAP_KEYS_ENVELOPE);
  return o;
}

/* Keys under version 1 for units [from, to) in a sqlite store at `path`. */
static int make_keys(const char *path, long from, long to) {
  char cfg[1024];
  snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"synchronous\": \"normal\", \"keep\": 1}", path);
  snap_store *st = NULL;
  if (snap_store_open_backend(&st, snap_backend_sqlite(), cfg) != SNAP_OK)
    return rw_fail("open the sqlite store", snap_error_message());
  snap_keyring *kr;
  snap_options *o = rw_envelope(0, &kr);
  snap_store_set_default_options(st, o);
  char(*pids)[24] = malloc(BATCH * sizeof *pids);
  snap_save_req *reqs = malloc(BATCH * sizeof *reqs);
  int *status = malloc(BATCH * sizeof *status);
  int rc = SNAP_OK;
  for (long at = from; at < to && rc == SNAP_OK; at += BATCH) {
    size_t n = 0;
    for (long i = at; i < to && n < BATCH; i++, n++) {
      snprintf(pids[n], sizeof pids[n], "u-%07ld", i);
      reqs[n] = (snap_save_req){pids[n], 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON, "{}", 2, NULL};
    }
    rc = snap_save_batch(st, reqs, n, status, NULL);
  }
  if (rc != SNAP_OK)
    rw_fail("save", snap_error_message());
  free(pids);
  free(reqs);
  free(status);
  snap_store_close(st);
  snap_options_free(o);
  snap_keyring_free(kr);
  return rc != SNAP_OK;
}

static void *make_part(void *arg) {
  rw_maker *m = arg;
  m->bad = make_keys(m->path, m->from, m->to);
  return NULL;
}

int rw_make_all(const char *dir, long units, rw_maker *m) {
  int bad = 0;
  for (int i = 0; i < RW_MAKERS; i++) {
    snprintf(m[i].path, sizeof m[i].path, "%s/keys-%d.db", dir, i);
    m[i].from = units * i / RW_MAKERS;
    m[i].to = units * (i + 1) / RW_MAKERS;
    pthread_create(&m[i].t, NULL, make_part, &m[i]);
  }
  for (int i = 0; i < RW_MAKERS; i++) {
    pthread_join(m[i].t, NULL);
    bad |= m[i].bad;
  }
  return bad;
}

int rw_rewrap_timed(snap_store *st, const char *what, snap_rewrap_progress *pr) {
  /* The process's CPU time too: on a busy machine the wall time says more
   * about the neighbours than about the rewrap. */
  double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  int rc = snap_rewrap(st, NULL, NULL, NULL, NULL, pr);
  double dt = clock_s(CLOCK_MONOTONIC) - t0, dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
  if (rc != SNAP_OK)
    return rw_fail(what, snap_error_message());
  printf("%s: %.2f s, CPU %.2f s (seen %" PRIu64 ", rewrapped %" PRIu64 ", current %" PRIu64
         ", %.0f units/s)\n",
         what, dt, dc, pr->seen, pr->rewrapped, pr->current, (double)pr->seen / dt);
  return 0;
}
