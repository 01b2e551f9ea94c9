/* The entry points of the built-in backends this build leaves out
 * (-DSNAP_WITH_SQLITE=OFF, -DSNAP_WITH_POSTGRES=OFF): each returns NULL, as
 * snap/sys/backend.h documents, so a program linked against any build of the
 * library finds the same symbols and asks at run time. The registry skips a
 * NULL table; snap_store_open_backend() refuses it with SNAP_EINVAL. */
#include <stddef.h>

#include "snap/sys/backend.h"

#ifndef SNAP_WITH_SQLITE
const snap_backend *snap_backend_sqlite(void) { return NULL; }
#endif

#ifndef SNAP_WITH_POSTGRES
const snap_backend *snap_backend_postgres(void) { return NULL; }
#endif
