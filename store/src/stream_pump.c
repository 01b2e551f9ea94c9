/* The writer thread of a streamed save: the backend's stream_write() of
 * chunk record N runs on a thread of its own while the caller validates and
 * seals record N + 1, so the copy into the kernel (and the disk's waits)
 * overlap the encoder instead of taking turns with it on one thread.
 *
 * No copy: the encoder holds its records (snap__stream_encoder_hold_records()),
 * sealing each into the other of two buffers, and snap__pump_write() returns
 * only once the previous record's write is done, so the buffer the encoder
 * fills next is never the one being written. One record in flight at most:
 * memory grows by one chunk, and the backend sees its calls one at a time,
 * in order, as from one thread.
 *
 * The thread starts with the second record: a state of one chunk is written
 * on the caller's thread, as before. A failed write is kept with its message
 * and returned by the next snap__pump_write() or snap__pump_drain(), in the
 * caller's thread; nothing is written after it. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"

struct snap__pump {
  snap_store *st;
  snap_backend_stream *s;
  pthread_t th;
  bool started;
  bool solo; /* no thread could be started: every write on the caller's */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Under mu: */
  const void *rec; /* the record handed over and not written yet, or NULL */
  size_t len;
  bool busy; /* a record is handed over or being written */
  bool quit;
  int status; /* the first failed write, or SNAP_OK */
  char msg[512];
};

static void *run(void *arg) {
  snap__pump *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->busy && !p->quit)
      pthread_cond_wait(&p->cv, &p->mu);
    if (!p->busy)
      break;
    const void *rec = p->rec;
    size_t len = p->len;
    pthread_mutex_unlock(&p->mu);
    snap_error_clear();
    int rc = p->st->be.stream_write(p->st->self, p->s, rec, len);
    pthread_mutex_lock(&p->mu);
    if (rc != SNAP_OK && p->status == SNAP_OK) {
      p->status = rc;
      snprintf(p->msg, sizeof p->msg, "%s", snap_error_message());
    }
    p->rec = NULL;
    p->busy = false;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int snap__pump_new(snap_store *st, snap_backend_stream *s, snap__pump **out) {
  *out = NULL;
  snap__pump *p = snap_malloc(sizeof *p);
  if (p == NULL)
    return snap_error_set(SNAP_ENOMEM, "stream save: out of memory");
  memset(p, 0, sizeof *p);
  p->st = st;
  p->s = s;
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    snap_free(p);
    return snap_error_set(SNAP_ENOMEM, "stream save: no mutex for the writer");
  }
  if (pthread_cond_init(&p->cv, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    snap_free(p);
    return snap_error_set(SNAP_ENOMEM, "stream save: no condition variable for the writer");
  }
  *out = p;
  return SNAP_OK;
}

/* Waits for the record in flight; mu held. The kept failure, set as this
 * thread's message, or SNAP_OK. */
static int settle(snap__pump *p) {
  while (p->busy)
    pthread_cond_wait(&p->cv, &p->mu);
  if (p->status != SNAP_OK)
    return snap_error_set(p->status, "%s", p->msg);
  return SNAP_OK;
}

int snap__pump_write(snap__pump *p, uint64_t index, const void *rec, size_t len) {
  if (!p->started && (index == 0 || p->solo ||
                      (p->solo = pthread_create(&p->th, NULL, run, p) != 0)))
    return p->st->be.stream_write(p->st->self, p->s, rec, len); /* on this thread */
  p->started = true;
  pthread_mutex_lock(&p->mu);
  int rc = settle(p);
  if (rc == SNAP_OK) {
    p->rec = rec;
    p->len = len;
    p->busy = true;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

int snap__pump_drain(snap__pump *p) {
  if (p == NULL || !p->started)
    return SNAP_OK;
  pthread_mutex_lock(&p->mu);
  int rc = settle(p);
  pthread_mutex_unlock(&p->mu);
  return rc;
}

void snap__pump_free(snap__pump *p) {
  if (p == NULL)
    return;
  if (p->started) {
    pthread_mutex_lock(&p->mu);
    while (p->busy)
      pthread_cond_wait(&p->cv, &p->mu); /* a write under way finishes */
    p->quit = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
  }
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  snap_free(p);
}
