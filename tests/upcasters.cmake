# A library of upcasters loaded from a configuration document ("upcasters"):
# a loadable module that links nothing of snapstore, as a user's would be.
# Used by tests/test_migrate.c and tests/cli/snapctl_migrate.sh.
add_library(snap_upcasters_wrap MODULE ${CMAKE_CURRENT_SOURCE_DIR}/upcasters/wrap.c)
target_include_directories(snap_upcasters_wrap PRIVATE
  ${PROJECT_SOURCE_DIR}/pipeline/include
  ${PROJECT_SOURCE_DIR}/store/include
  ${PROJECT_SOURCE_DIR}/plugin/include)
target_compile_definitions(snap_upcasters_wrap PRIVATE _GNU_SOURCE)
set_target_properties(snap_upcasters_wrap PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
if(TARGET test_migrate)
  target_compile_definitions(test_migrate PRIVATE
    SNAP_WRAP_UPCASTERS_SO="$<TARGET_FILE:snap_upcasters_wrap>")
  add_dependencies(test_migrate snap_upcasters_wrap)
endif()
# snapctl migrate from the shell: a mixed store, dry run, failures, and a run
# killed with SIGKILL and resumed beside a live writer.
if(TARGET snapctl)
  add_test(NAME snapctl_migrate
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/snapctl_migrate.sh $<TARGET_FILE:snapctl>
                   $<TARGET_FILE:snapctl_mkstore> ${CMAKE_CURRENT_BINARY_DIR}/tmp/snapctl_migrate
                   $<TARGET_FILE:snap_upcasters_wrap>)
  set_tests_properties(snapctl_migrate PROPERTIES TIMEOUT 300)
endif()
