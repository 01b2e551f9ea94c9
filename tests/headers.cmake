# Every public header compiles on its own, first and twice, as C11 with
# -pedantic: one generated translation unit per header.
file(GLOB_RECURSE SNAP_PUBLIC_HEADERS CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/pipeline/include/*.h
  ${PROJECT_SOURCE_DIR}/store/include/*.h
  ${PROJECT_SOURCE_DIR}/plugin/include/*.h)
set(SNAP_HEADERTEST_SOURCES)
foreach(h ${SNAP_PUBLIC_HEADERS})
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${h})
  string(MAKE_C_IDENTIFIER ${rel} id)
  set(src ${CMAKE_CURRENT_BINARY_DIR}/headertest/${id}.c)
  file(CONFIGURE OUTPUT ${src} CONTENT
"#include \"${h}\"
#include \"${h}\"
int snap_headertest_${id}(void);
int snap_headertest_${id}(void) { return 0; }
")
  list(APPEND SNAP_HEADERTEST_SOURCES ${src})
endforeach()
add_library(snap_headertest OBJECT ${SNAP_HEADERTEST_SOURCES})
target_link_libraries(snap_headertest PRIVATE snap::plugin)
target_compile_options(snap_headertest PRIVATE -pedantic-errors)
