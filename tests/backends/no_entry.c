/* A shared object that is not a backend: it lacks the entry symbol, so the
 * loader must refuse it and register nothing. */
#include "snap/sys/backend.h"

__attribute__((visibility("default"))) int snap_not_a_backend(void);

__attribute__((visibility("default"))) int snap_not_a_backend(void) { return 42; }
