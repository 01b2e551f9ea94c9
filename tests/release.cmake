# Release-packaging registrations: the version the build installs, known to
# test_version so the headers and the package files cannot drift apart.
if(TARGET test_version)
  target_compile_definitions(test_version PRIVATE SNAP_TEST_PROJECT_VERSION="${PROJECT_VERSION}")
endif()
