# Store-layer registrations: the threaded tests run again under ThreadSanitizer (`make tsan`).
foreach(t test_concurrency test_keyring test_metrics test_stream_side)
  if(TARGET ${t})
    set_tests_properties(${t} PROPERTIES LABELS threads)
  endif()
endforeach()
