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
endif()
