/* snap_version(): the version compiled into the library (snap/version.h). */
#include "snap/version.h"

const char *snap_version(void) { return SNAPSTORE_VERSION_STRING; }
