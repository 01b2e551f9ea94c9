# The configuration reader's duplicate-key check must stay linear: the test
# with 80,000 members also runs on its own under a tight limit, which a
# quadratic check (tens of seconds for that document) runs into. The test
# itself asserts only the answer; the limit is the suite's, as for any hang.
if(TARGET test_config)
  add_test(NAME test_config_large_document
           COMMAND test_config --filter "config/a_duplicate_after_80000_members_is_refused")
  set_tests_properties(test_config_large_document PROPERTIES TIMEOUT 20
                       ENVIRONMENT "SNAP_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp")
endif()
