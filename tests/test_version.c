/* The version macros, snap_version() and the project version the build
 * installs (CMake package, pkg-config file, SONAME) all say the same. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "snapstore.h"

Test(version, runtime_string_matches_the_headers) {
  cr_assert_str_eq(snap_version(), SNAPSTORE_VERSION_STRING);
}

Test(version, string_is_built_from_the_three_numbers) {
  char want[64];
  snprintf(want, sizeof want, "%d.%d.%d", SNAPSTORE_VERSION_MAJOR, SNAPSTORE_VERSION_MINOR,
           SNAPSTORE_VERSION_PATCH);
  cr_assert_str_eq(SNAPSTORE_VERSION_STRING, want);
  cr_assert_eq(SNAPSTORE_VERSION_NUMBER, SNAPSTORE_VERSION_MAJOR * 10000 +
                                             SNAPSTORE_VERSION_MINOR * 100 +
                                             SNAPSTORE_VERSION_PATCH);
}

Test(version, headers_agree_with_the_project_version_the_build_installs) {
  cr_assert_str_eq(SNAPSTORE_VERSION_STRING, SNAP_TEST_PROJECT_VERSION);
}
