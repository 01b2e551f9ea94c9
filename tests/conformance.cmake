# The conformance suite runs the cases of conformance/ (snap_conformance_cases).
if(TARGET test_conformance)
  target_link_libraries(test_conformance PRIVATE snap_conformance_cases)
endif()

# The kit as a backend author runs it: on the example backend of tests/backends
# (ABI version 1, loaded from its shared object), and a run that must fail
# (the memory backend claimed to be persistent, which it is not). That one
# passes only when the kit reports the persistence case failed: any nonzero
# exit, a usage error or a crash included, would prove nothing.
if(TARGET snapstore-conformance)
  add_test(NAME conformance_kit_example
           COMMAND snapstore-conformance --backend-library $<TARGET_FILE:snap_backend_testmem>
                   --tmpdir ${CMAKE_CURRENT_BINARY_DIR}/tmp)
  add_test(NAME conformance_kit_reports_a_failure
           COMMAND snapstore-conformance --backend memory --persistent yes
                   --case persistent --tmpdir ${CMAKE_CURRENT_BINARY_DIR}/tmp)
  set_tests_properties(conformance_kit_reports_a_failure PROPERTIES
    PASS_REGULAR_EXPRESSION "FAIL  persistent_backends_keep_everything_across_reopen.*\n0 passed, 1 failed\n")
endif()
