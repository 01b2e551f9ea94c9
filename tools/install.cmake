# Installation details of the release (included by the top-level
# CMakeLists.txt, after the library's own install rules):
#
# - Installed programs find the installed library without ldconfig or
#   LD_LIBRARY_PATH: a RUNPATH relative to their own directory
#   ($ORIGIN/../lib, or whatever CMAKE_INSTALL_LIBDIR makes it), so a private
#   prefix works, and /usr/local works before `ldconfig` has run.
# - When both libraries are installed, `snapstore.pc` links the shared one
#   (the linker prefers libsnapstore.so even under `pkg-config --static`), so
#   a second file, `snapstore-static.pc`, names libsnapstore.a itself and
#   everything a static link needs: `pkg-config --libs snapstore-static`.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_snap_runpath "${CMAKE_INSTALL_LIBDIR}")
elseif(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  set(_snap_runpath "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _snap_rel "/${CMAKE_INSTALL_BINDIR}" "/${CMAKE_INSTALL_LIBDIR}")
  set(_snap_runpath "$ORIGIN/${_snap_rel}")
endif()
foreach(tool snapctl snapstore-conformance)
  if(TARGET ${tool})
    set_target_properties(${tool} PROPERTIES INSTALL_RPATH "${_snap_runpath}")
  endif()
endforeach()

if(TARGET snapstore_static OR NOT BUILD_SHARED_LIBS)
  set(SNAP_PC_STATIC_REQUIRES "${SNAP_PC_REQUIRES} ${SNAP_PC_REQUIRES_PRIVATE}")
  string(STRIP "${SNAP_PC_STATIC_REQUIRES}" SNAP_PC_STATIC_REQUIRES)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/snapstore-static.pc.in snapstore-static.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/snapstore-static.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
