/* Status codes, snap_strerror() and the thread-local detailed message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snap/error.h"

#define SNAP_ERRMSG_MAX 512

/* Thread-local, so one handle shared by several threads never mixes messages. */
static _Thread_local char last_msg[SNAP_ERRMSG_MAX];
static _Thread_local int last_code;

const char *snap_strerror(int code) {
  switch (code) {
  case SNAP_OK:
    return "success";
#define SNAP__ERR_CASE(name, value, text)                                                          \
  case SNAP_##name:                                                                                \
    return text;
    SNAP_ERRNO_MAP(SNAP__ERR_CASE)
#undef SNAP__ERR_CASE
  default:
    return "unknown error";
  }
}

const char *snap_error_message(void) { return last_msg; }

int snap_error_code(void) { return last_code; }

void snap_error_clear(void) {
  last_msg[0] = '\0';
  last_code = SNAP_OK;
}

int snap_error_set(int code, const char *fmt, ...) {
  char tmp[SNAP_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  /* Format into a scratch buffer: a message may quote the previous one. */
  /* (No `fmt ? fmt : ""`: clang's -Wformat-zero-length rejects it under -Werror.) */
  int n = fmt ? vsnprintf(tmp, sizeof tmp, fmt, ap) : 0;
  va_end(ap);
  if (n <= 0)
    tmp[0] = '\0';
  memcpy(last_msg, tmp, sizeof last_msg);
  last_code = code;
  return code;
}
