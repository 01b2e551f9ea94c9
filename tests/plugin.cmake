# Plugin-layer registrations: test backends built as loadable modules that
# link nothing of snapstore (they get everything through snap_host), and the
# threaded label for the executor tests so they also run under TSan.
set(SNAP_TEST_BACKEND_INCLUDES
  ${PROJECT_SOURCE_DIR}/pipeline/include
  ${PROJECT_SOURCE_DIR}/store/include
  ${PROJECT_SOURCE_DIR}/plugin/include)

foreach(tb testmem bad_abi no_entry)
  add_library(snap_backend_${tb} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/backends/${tb}.c)
  target_include_directories(snap_backend_${tb} PRIVATE ${SNAP_TEST_BACKEND_INCLUDES})
  set_target_properties(snap_backend_${tb} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
endforeach()
target_link_libraries(snap_backend_testmem PRIVATE Threads::Threads)

set(SNAP_TEST_BACKEND_DEFS
  SNAP_TESTMEM_SO="$<TARGET_FILE:snap_backend_testmem>"
  SNAP_BAD_ABI_SO="$<TARGET_FILE:snap_backend_bad_abi>"
  SNAP_NO_ENTRY_SO="$<TARGET_FILE:snap_backend_no_entry>")
foreach(t test_loader test_executor test_config test_registry)
  if(TARGET ${t})
    target_compile_definitions(${t} PRIVATE ${SNAP_TEST_BACKEND_DEFS})
    add_dependencies(${t} snap_backend_testmem snap_backend_bad_abi snap_backend_no_entry)
  endif()
endforeach()

# Under TSan these files are their own runner (tests/support/criterion_or_tsan.h).
foreach(t test_executor test_executor_delivery test_executor_scope test_registry)
  if(TARGET ${t})
    set_tests_properties(${t} PROPERTIES LABELS "threads")
  endif()
endforeach()
