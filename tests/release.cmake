# Release-packaging registrations: the version the build installs, known to
# test_version so the headers and the package files cannot drift apart.
if(TARGET test_version)
  target_compile_definitions(test_version PRIVATE SNAP_TEST_PROJECT_VERSION="${PROJECT_VERSION}")
endif()

# The shared object exports exactly the SNAP_API declarations of the public headers.
if(BUILD_SHARED_LIBS)
  add_test(NAME exports
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/release/check-exports.sh
                   $<TARGET_FILE:snapstore> ${PROJECT_SOURCE_DIR}/pipeline/include
                   ${PROJECT_SOURCE_DIR}/store/include ${PROJECT_SOURCE_DIR}/plugin/include)
endif()

# Documents link and cite only what the repository holds.
add_test(NAME doc_references
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/release/doc-references.sh ${PROJECT_SOURCE_DIR})

# The throw-away PostgreSQL cluster's template lives under the build directory
# (tests/support/pg_fixture.c), not in /tmp once per user.
if(TARGET snap_test_support)
  target_compile_definitions(snap_test_support PRIVATE PGFX_TEMPLATE_DIR="${CMAKE_BINARY_DIR}/pg-template")
endif()
