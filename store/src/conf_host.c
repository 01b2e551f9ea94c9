/* The configuration reader as services of the backend ABI (snap_host's
 * conf_* slots), and the key path a backend of ABI version 1 or 2 reads its
 * lent JSON text at. A backend of version 3 gets the reader itself
 * (snap_backend.open_conf): its section of the document, parsed once. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "conf_internal.h"
#include "snap/error.h"
#include "store_internal.h"

/* Texts lent to backends right now. A backend calls conf_open() with the
 * text it was given, on any thread: the text itself says where it sits. */
static pthread_mutex_t loans_lock = PTHREAD_MUTEX_INITIALIZER;
static snap__conf_loan *loans;

void snap__conf_lend(snap__conf_loan *loan, const char *text, const char *prefix) {
  loan->text = text;
  loan->prefix = prefix;
  pthread_mutex_lock(&loans_lock);
  loan->next = loans;
  loans = loan;
  pthread_mutex_unlock(&loans_lock);
}

void snap__conf_return(snap__conf_loan *loan) {
  pthread_mutex_lock(&loans_lock);
  for (snap__conf_loan **p = &loans; *p != NULL; p = &(*p)->next)
    if (*p == loan) {
      *p = loan->next;
      break;
    }
  pthread_mutex_unlock(&loans_lock);
}

/* The key path of a lent `text`: "" for a text the host did not lend (a
 * backend reading a document of its own). */
static void loan_prefix(const char *text, char *dst, size_t cap) {
  dst[0] = '\0';
  pthread_mutex_lock(&loans_lock);
  for (const snap__conf_loan *l = loans; l != NULL; l = l->next)
    if (l->text == text) {
      snprintf(dst, cap, "%s", l->prefix);
      break;
    }
  pthread_mutex_unlock(&loans_lock);
}

static int host_conf_open(snap_conf **out, const char *config_json) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "conf_open: out is NULL");
  char prefix[SNAP__CONF_PATH_MAX];
  loan_prefix(config_json, prefix, sizeof prefix);
  return snap__conf_parse(out, config_json, prefix);
}

static int host_conf_finish(snap_conf *c) {
  if (c == NULL)
    return SNAP_OK;
  int rc = snap__conf_done(c);
  snap__conf_free(c);
  return rc;
}

static int host_conf_check(snap_conf *c) {
  if (c == NULL)
    return snap_error_set(SNAP_EINVAL, "conf_check: reader is NULL");
  return snap__conf_done(c);
}

void snap__conf_host_fill(snap_host *h) {
  h->conf_open = host_conf_open;
  h->conf_string = snap__conf_str;
  h->conf_int = snap__conf_int;
  h->conf_bool = snap__conf_bool;
  h->conf_enum = snap__conf_enum;
  h->conf_strings = snap__conf_strs;
  h->conf_error = snap__conf_error;
  h->conf_finish = host_conf_finish;
  h->conf_check = host_conf_check;
}
