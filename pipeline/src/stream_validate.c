/* Validation beside the encoder (stream_internal.h): a large piece of a
 * streamed state is validated on a thread of the encoder's own while the
 * caller compresses, seals and hands its records to the sink, and the write
 * returns only once the verdict is in. A plain streamed save is otherwise the
 * validator and the kernel's copy taking turns on one thread; on two cores
 * they overlap. */
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "snap/alloc.h"
#include "pipeline_internal.h"
#include "stream_internal.h"

typedef enum side_state {
  SIDE_IDLE,    /* no piece */
  SIDE_POSTED,  /* a piece waits for the thread (the caller may take it back) */
  SIDE_RUNNING, /* the thread validates it */
  SIDE_DONE     /* its verdict is in rc / msg */
} side_state;

struct snap__side_validator {
  pthread_mutex_t mu;
  pthread_cond_t work; /* the thread waits here for a piece */
  pthread_cond_t done; /* the caller, for the verdict */
  pthread_t thread;
  side_state state;
  bool quit;
  snap_payload_validator *v; /* borrowed from the encoder */
  const void *data;
  size_t len;
  int rc;
  char msg[512];               /* the thread's message: errors are thread-local */
};

static void *side_main(void *arg) {
  snap__side_validator *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (s->state != SIDE_POSTED && !s->quit)
      pthread_cond_wait(&s->work, &s->mu);
    if (s->quit)
      break;
    s->state = SIDE_RUNNING;
    pthread_mutex_unlock(&s->mu);
    const int rc = snap_payload_validator_push(s->v, s->data, s->len);
    pthread_mutex_lock(&s->mu);
    s->rc = rc;
    if (rc != SNAP_OK)
      snprintf(s->msg, sizeof s->msg, "%s", snap_error_message());
    s->state = SIDE_DONE;
    pthread_cond_signal(&s->done);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

bool snap__side_worthwhile(size_t len) {
  static long cores; /* the same answer every time: a benign race */
  if (len < SNAP__SIDE_MIN)
    return false;
  if (!__atomic_load_n(&cores, __ATOMIC_RELAXED))
    __atomic_store_n(&cores, sysconf(_SC_NPROCESSORS_ONLN), __ATOMIC_RELAXED);
  return __atomic_load_n(&cores, __ATOMIC_RELAXED) > 1;
}

snap__side_validator *snap__side_start(snap_payload_validator *v) {
  snap__side_validator *s = snap_calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->v = v;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    snap_free(s);
    return NULL;
  }
  if (pthread_cond_init(&s->work, NULL) != 0)
    goto no_work;
  if (pthread_cond_init(&s->done, NULL) != 0)
    goto no_done;
  if (pthread_create(&s->thread, NULL, side_main, s) != 0)
    goto no_thread;
  return s;
no_thread:
  pthread_cond_destroy(&s->done);
no_done:
  pthread_cond_destroy(&s->work);
no_work:
  pthread_mutex_destroy(&s->mu);
  snap_free(s);
  return NULL;
}

void snap__side_post(snap__side_validator *s, const void *data, size_t len) {
  pthread_mutex_lock(&s->mu);
  s->data = data;
  s->len = len;
  s->state = SIDE_POSTED;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
}

int snap__side_verdict(snap__side_validator *s) {
  pthread_mutex_lock(&s->mu);
  if (s->state == SIDE_POSTED) {
    /* The thread has not started it (a busy machine): validating it here
     * costs no more than waiting would. */
    s->state = SIDE_IDLE;
    pthread_mutex_unlock(&s->mu);
    return snap_payload_validator_push(s->v, s->data, s->len);
  }
  while (s->state != SIDE_DONE)
    pthread_cond_wait(&s->done, &s->mu);
  s->state = SIDE_IDLE;
  const int rc = s->rc;
  pthread_mutex_unlock(&s->mu);
  if (rc != SNAP_OK)
    snap_error_set(rc, "%s", s->msg);
  return rc;
}

void snap__side_free(snap__side_validator *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->quit = true;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_cond_destroy(&s->done);
  pthread_cond_destroy(&s->work);
  pthread_mutex_destroy(&s->mu);
  snap_free(s);
}
