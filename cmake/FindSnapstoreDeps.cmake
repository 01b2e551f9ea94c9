# FindSnapstoreDeps: the pkg-config dependencies of libsnapstore as imported
# targets PkgConfig::<COMPONENT>. The build uses it and the installed CMake
# package ships it, so both name the dependencies the same way and
# `find_package(snapstore QUIET)` reports a missing one as snapstore_FOUND
# false (through find_dependency) instead of stopping the configure.
#
#   find_package(SnapstoreDeps REQUIRED COMPONENTS SQLITE3 SODIUM ...)
#
# To add a dependency: one line in the table below (component = target suffix,
# then its pkg-config module name), then list the component in
# SNAP_DEPS_PUBLIC or SNAP_DEPS_PRIVATE in the top-level CMakeLists.txt.
set(_snapdep_SQLITE3 sqlite3)
set(_snapdep_CJSON libcjson)
set(_snapdep_MSGPACK msgpack)
set(_snapdep_ZLIB zlib)
set(_snapdep_SODIUM libsodium)
set(_snapdep_PQ libpq)
set(_snapdep_LIBDEFLATE libdeflate)
set(_snapdep_ZSTD libzstd)

find_package(PkgConfig QUIET)
set(_snapdep_missing)
foreach(comp IN LISTS SnapstoreDeps_FIND_COMPONENTS)
  if(NOT DEFINED _snapdep_${comp})
    message(FATAL_ERROR "FindSnapstoreDeps: unknown component ${comp}")
  endif()
  if(PKG_CONFIG_FOUND AND NOT TARGET PkgConfig::${comp})
    pkg_check_modules(${comp} QUIET IMPORTED_TARGET ${_snapdep_${comp}})
  endif()
  if(TARGET PkgConfig::${comp})
    set(SnapstoreDeps_${comp}_FOUND TRUE)
  else()
    set(SnapstoreDeps_${comp}_FOUND FALSE)
    list(APPEND _snapdep_missing ${_snapdep_${comp}})
  endif()
endforeach()

include(FindPackageHandleStandardArgs)
set(SnapstoreDeps_REASON "")
if(_snapdep_missing)
  string(REPLACE ";" ", " _snapdep_list "${_snapdep_missing}")
  set(SnapstoreDeps_REASON "pkg-config found no ${_snapdep_list}")
endif()
find_package_handle_standard_args(SnapstoreDeps REQUIRED_VARS PKG_CONFIG_EXECUTABLE
                                  HANDLE_COMPONENTS REASON_FAILURE_MESSAGE "${SnapstoreDeps_REASON}")
