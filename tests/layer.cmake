# Tests of the pipeline's entry points for the layers above (pipeline_layer.h),
# which the library does not export: linked with the pipeline's objects, as
# tools/ is. One executable per file of tests/layer/.
file(GLOB SNAP_LAYER_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/layer/test_*.c)
foreach(src ${SNAP_LAYER_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE snap_pipeline ${CRITERION_LIB} PkgConfig::LIBDEFLATE
                        PkgConfig::ZLIB PkgConfig::MSGPACK PkgConfig::SODIUM PkgConfig::ZSTD
                        PkgConfig::CJSON Threads::Threads)
  target_compile_definitions(${name} PRIVATE SNAP_TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data")
  add_test(NAME ${name} COMMAND ${name} --jobs 2)
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endforeach()
