# Every public header compiles on its own, first and twice, as C11 with
# -pedantic-errors, and as C++11, C++17 and C++20 with -Wall -Wextra -pedantic
# (warnings are errors): one generated translation unit per header and
# language. One more unit per language expands every public macro
# (headers/use_macros.inc), since an unused macro is never compiled.
file(GLOB_RECURSE SNAP_PUBLIC_HEADERS CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/pipeline/include/*.h
  ${PROJECT_SOURCE_DIR}/store/include/*.h
  ${PROJECT_SOURCE_DIR}/plugin/include/*.h)

include(CheckLanguage)
check_language(CXX)
set(SNAP_HEADERTEST_LANGS c)
if(CMAKE_CXX_COMPILER)
  enable_language(CXX)
  list(APPEND SNAP_HEADERTEST_LANGS cxx11 cxx17 cxx20)
else()
  message(WARNING "No C++ compiler: the public headers are not tested as C++")
endif()

foreach(lang ${SNAP_HEADERTEST_LANGS})
  if(lang STREQUAL "c")
    set(ext c)
  else()
    set(ext cpp)
  endif()
  set(sources)
  foreach(h ${SNAP_PUBLIC_HEADERS})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${h})
    string(MAKE_C_IDENTIFIER ${rel} id)
    set(src ${CMAKE_CURRENT_BINARY_DIR}/headertest/${lang}/${id}.${ext})
    file(CONFIGURE OUTPUT ${src} CONTENT
"#include \"${h}\"
#include \"${h}\"
int snap_headertest_${id}(void);
int snap_headertest_${id}(void) { return 0; }
")
    list(APPEND sources ${src})
  endforeach()
  set(src ${CMAKE_CURRENT_BINARY_DIR}/headertest/${lang}/use_macros.${ext})
  file(CONFIGURE OUTPUT ${src} CONTENT
"#include \"snapstore.h\"
#include \"snap/sys/backend.h\"
#include \"snap/sys/plugin_entry.h\"
#include \"${CMAKE_CURRENT_SOURCE_DIR}/headers/use_macros.inc\"
")
  list(APPEND sources ${src})
  add_library(snap_headertest_${lang} OBJECT ${sources})
  target_link_libraries(snap_headertest_${lang} PRIVATE snapstore::snapstore)
  if(lang STREQUAL "c")
    target_compile_options(snap_headertest_${lang} PRIVATE -pedantic-errors)
  else()
    string(REPLACE "cxx" "" std ${lang})
    set_target_properties(snap_headertest_${lang} PROPERTIES
      CXX_STANDARD ${std} CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    target_compile_options(snap_headertest_${lang} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -pedantic -Werror>)
  endif()
endforeach()
