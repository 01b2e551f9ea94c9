/**
 * @file snap/error.h
 * @brief Status codes and the detailed message of the last failure.
 *
 * Every snapstore function that can fail returns an `int`: SNAP_OK (0) on
 * success or one of the negative SNAP_E* codes below. snap_strerror() names a
 * code; snap_error_message() gives the detail of the calling thread's last
 * failure (which pid, key version, option, config key or byte offset).
 */
#ifndef SNAP_ERROR_H
#define SNAP_ERROR_H

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One list feeds the enum and snap_strerror(): X(name, value, description). */
#define SNAP_ERRNO_MAP(X)                                                                          \
  X(EINVAL, -1, "invalid argument")                                                                \
  X(ENOMEM, -2, "out of memory")                                                                   \
  X(EIO, -3, "I/O error")                                                                          \
  X(EBUSY, -4, "resource busy")                                                                    \
  X(ECORRUPT, -5, "corrupt data")                                                                  \
  X(EAUTH, -6, "authentication failed")                                                            \
  X(ENOKEY, -7, "no such key")                                                                     \
  X(ETOOBIG, -8, "too big")                                                                        \
  X(EUNSUPPORTED, -9, "unsupported option")                                                        \
  X(ECONFIG, -10, "configuration error")                                                           \
  X(ECLOSED, -11, "closed")                                                                        \
  X(EABI, -12, "ABI version mismatch")                                                             \
  X(EFORMAT, -13, "bad format")                                                                    \
  X(EAGAIN, -14, "queue full, try again")                                                          \
  X(EFULL, -15, "storage full")                                                                    \
  X(ENOTFOUND, -16, "not found")                                                                  \
  X(ECONFLICT, -17, "conflict")

/** Status codes. SNAP_OK is 0; every failure is negative. */
typedef enum snap_status {
  SNAP_OK = 0,
#define SNAP__ERR_ENUM(name, value, text) SNAP_##name = (value),
  SNAP_ERRNO_MAP(SNAP__ERR_ENUM)
#undef SNAP__ERR_ENUM
} snap_status;

/**
 * Names a status code ("invalid argument", ...). Never returns NULL; an
 * unknown code gives "unknown error". The string is static.
 */
SNAP_API const char *snap_strerror(int code);

/**
 * The detailed message of the calling thread's most recent failure, e.g.
 * "decode pid 'account-42' seq 7: key version 3 is not in the keyring".
 * Returns "" when this thread has seen no failure since the last
 * snap_error_clear(). The string belongs to the thread and stays valid until
 * the thread's next snapstore call. Thread-safe (the message is thread-local).
 */
SNAP_API const char *snap_error_message(void);

/** The status code of the calling thread's most recent failure (SNAP_OK if none). */
SNAP_API int snap_error_code(void);

/** Forgets the calling thread's last failure. */
SNAP_API void snap_error_clear(void);

/**
 * Records `code` and a printf-style detailed message as the calling thread's
 * last failure, and returns `code` (so `return snap_error_set(...)` reads
 * naturally). For layers above the pipeline and for wrappers.
 */
SNAP_API int snap_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif /* SNAP_ERROR_H */
