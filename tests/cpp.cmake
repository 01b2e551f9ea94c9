# The C++ API (snap/snapstore.hpp): its Criterion suite built twice, as C++17
# and as C++20, and the header compiled alone in both, all with -pedantic.
if(SNAP_BUILD_CXX)
  set(SNAP_CPP_HEADERTEST ${CMAKE_CURRENT_BINARY_DIR}/headertest/snapstore_hpp.cpp)
  file(CONFIGURE OUTPUT ${SNAP_CPP_HEADERTEST} CONTENT
"#include \"snap/snapstore.hpp\"
#include \"snap/snapstore.hpp\"
int snap_headertest_snapstore_hpp();
int snap_headertest_snapstore_hpp() { return snap::store_ref().capabilities() == 0u ? 0 : 1; }
")
  foreach(std 17 20)
    add_executable(test_cpp${std} test_cpp.cpp)
    target_link_libraries(test_cpp${std} PRIVATE snap::plugin snap_test_support ${CRITERION_LIB})
    set_target_properties(test_cpp${std} PROPERTIES CXX_STANDARD ${std} CXX_STANDARD_REQUIRED ON
                                                    CXX_EXTENSIONS OFF)
    target_compile_options(test_cpp${std} PRIVATE -pedantic)
    add_test(NAME test_cpp${std} COMMAND test_cpp${std} --jobs 2)
    set_tests_properties(test_cpp${std} PROPERTIES TIMEOUT 120
                         ENVIRONMENT "SNAP_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp")

    add_library(snap_headertest_cpp${std} OBJECT ${SNAP_CPP_HEADERTEST})
    target_link_libraries(snap_headertest_cpp${std} PRIVATE snap::plugin)
    set_target_properties(snap_headertest_cpp${std} PROPERTIES CXX_STANDARD ${std}
                          CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    target_compile_options(snap_headertest_cpp${std} PRIVATE -pedantic-errors)
  endforeach()

  # Each part of the API (snap/cpp/*.hpp) compiles alone, included twice.
  foreach(part status bytes upcast options store executor)
    set(src ${CMAKE_CURRENT_BINARY_DIR}/headertest/cpp_${part}_hpp.cpp)
    file(CONFIGURE OUTPUT ${src} CONTENT
"#include \"snap/cpp/${part}.hpp\"
#include \"snap/cpp/${part}.hpp\"
int snap_headertest_cpp_${part}_hpp();
int snap_headertest_cpp_${part}_hpp() { return snap::status().ok() ? 0 : 1; }
")
    add_library(snap_headertest_cpp_${part} OBJECT ${src})
    target_link_libraries(snap_headertest_cpp_${part} PRIVATE snap::plugin)
    set_target_properties(snap_headertest_cpp_${part} PROPERTIES CXX_STANDARD 17
                          CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    target_compile_options(snap_headertest_cpp_${part} PRIVATE -pedantic-errors)
  endforeach()

  # Streamed saves and loads (snap/snapstore_stream.hpp): their suite, and the
  # header compiled alone.
  set(SNAP_CPP_STREAM_HEADERTEST ${CMAKE_CURRENT_BINARY_DIR}/headertest/snapstore_stream_hpp.cpp)
  file(CONFIGURE OUTPUT ${SNAP_CPP_STREAM_HEADERTEST} CONTENT
"#include \"snap/snapstore_stream.hpp\"
#include \"snap/snapstore_stream.hpp\"
int snap_headertest_snapstore_stream_hpp();
int snap_headertest_snapstore_stream_hpp() { return snap::stream_writer().written() == 0u ? 0 : 1; }
")
  add_library(snap_headertest_cpp_stream OBJECT ${SNAP_CPP_STREAM_HEADERTEST})
  target_link_libraries(snap_headertest_cpp_stream PRIVATE snap::plugin)
  set_target_properties(snap_headertest_cpp_stream PROPERTIES CXX_STANDARD 17
                        CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  target_compile_options(snap_headertest_cpp_stream PRIVATE -pedantic-errors)
  add_executable(test_cpp_stream test_cpp_stream.cpp)
  target_link_libraries(test_cpp_stream PRIVATE snap::plugin snap_test_support ${CRITERION_LIB})
  set_target_properties(test_cpp_stream PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
                                                   CXX_EXTENSIONS OFF)
  target_compile_options(test_cpp_stream PRIVATE -pedantic)
  add_test(NAME test_cpp_stream COMMAND test_cpp_stream --jobs 2)
  set_tests_properties(test_cpp_stream PROPERTIES TIMEOUT 120
                       ENVIRONMENT "SNAP_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp")
endif()
