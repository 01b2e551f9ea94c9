/**
 * @file snap/version.h
 * @brief The version of the snapstore headers, and snap_version() for the
 *        version of the library actually linked.
 *
 * These three numbers are the project's only record of its version: the build
 * (CMakeLists.txt) reads them from this file, so the shared object's name
 * (libsnapstore.so.MAJOR), the CMake package and the pkg-config file always
 * agree with the headers.
 */
#ifndef SNAP_VERSION_H
#define SNAP_VERSION_H

#include "snap/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Major version: changes when the API or ABI breaks (the SONAME's number). */
#define SNAPSTORE_VERSION_MAJOR 0
/** Minor version: changes when functions are added compatibly. */
#define SNAPSTORE_VERSION_MINOR 1
/** Patch version: fixes only. */
#define SNAPSTORE_VERSION_PATCH 0

#define SNAP__VERSION_STR2(x) #x
#define SNAP__VERSION_STR(x) SNAP__VERSION_STR2(x)
/** The version as a string, "MAJOR.MINOR.PATCH". */
#define SNAPSTORE_VERSION_STRING                                                                   \
  SNAP__VERSION_STR(SNAPSTORE_VERSION_MAJOR)                                                       \
  "." SNAP__VERSION_STR(SNAPSTORE_VERSION_MINOR) "." SNAP__VERSION_STR(SNAPSTORE_VERSION_PATCH)

/** The version as one comparable number: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define SNAPSTORE_VERSION_NUMBER                                                                   \
  (SNAPSTORE_VERSION_MAJOR * 10000 + SNAPSTORE_VERSION_MINOR * 100 + SNAPSTORE_VERSION_PATCH)

/**
 * The version of the library the program runs against, "MAJOR.MINOR.PATCH".
 * Compare it with SNAPSTORE_VERSION_STRING (the headers the program was built
 * with) to detect a program running against another build of the shared
 * object. The string is static; never fails. Thread-safe.
 */
SNAP_API const char *snap_version(void);

#ifdef __cplusplus
}
#endif
#endif /* SNAP_VERSION_H */
