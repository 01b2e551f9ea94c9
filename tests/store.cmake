# Store-layer registrations: the threaded tests run again under ThreadSanitizer (`make tsan`).
if(TARGET test_concurrency)
  set_tests_properties(test_concurrency PROPERTIES LABELS threads)
endif()
