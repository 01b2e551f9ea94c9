# snapctl from the shell, against real files: tests/cli/snapctl.sh with the
# mkstore helper that writes stores through the library.
if(TARGET snapctl)
  add_executable(snapctl_mkstore ${CMAKE_CURRENT_SOURCE_DIR}/cli/mkstore.c)
  target_link_libraries(snapctl_mkstore PRIVATE snap::plugin)
  add_test(NAME snapctl_cli
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/snapctl.sh $<TARGET_FILE:snapctl>
                   $<TARGET_FILE:snapctl_mkstore> ${CMAKE_CURRENT_BINARY_DIR}/tmp/snapctl)
  set_tests_properties(snapctl_cli PROPERTIES TIMEOUT 300)
endif()
# snapctl copy from SQLite into a postgres store of 3 shards, against a
# throw-away cluster that tests/cli/pgcluster.c starts around the script.
if(TARGET snapctl AND TARGET snap_test_support AND SNAP_WITH_POSTGRES)
  add_executable(snapctl_pgcluster ${CMAKE_CURRENT_SOURCE_DIR}/cli/pgcluster.c)
  target_link_libraries(snapctl_pgcluster PRIVATE snap_test_support)
  add_test(NAME snapctl_postgres
           COMMAND $<TARGET_FILE:snapctl_pgcluster> 3
                   bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/snapctl_postgres.sh $<TARGET_FILE:snapctl>
                   $<TARGET_FILE:snapctl_mkstore> ${CMAKE_CURRENT_BINARY_DIR}/tmp/snapctl_postgres)
  set_tests_properties(snapctl_postgres PROPERTIES TIMEOUT 300)
endif()
# What an operator relies on besides the data: clean and private exports, the
# exit-status rule, messages that name the right row (tests/cli/snapctl_trust.sh).
if(TARGET snapctl)
  add_test(NAME snapctl_trust
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/snapctl_trust.sh $<TARGET_FILE:snapctl>
                   $<TARGET_FILE:snapctl_mkstore> ${CMAKE_CURRENT_BINARY_DIR}/tmp/snapctl_trust)
  set_tests_properties(snapctl_trust PROPERTIES TIMEOUT 300)
endif()
# snapctl dict: training, listing, removing (tests/cli/snapctl_dict.sh).
if(TARGET snapctl)
  add_test(NAME snapctl_dict
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/snapctl_dict.sh $<TARGET_FILE:snapctl>
                   $<TARGET_FILE:snapctl_mkstore> ${CMAKE_CURRENT_BINARY_DIR}/tmp/snapctl_dict)
  set_tests_properties(snapctl_dict PROPERTIES TIMEOUT 300)
endif()
# snapctl and a separate key store: backup of data and keys, forgetting and
# backups, rekey --wrap-only killed beside a writer (tests/cli/snapctl_keys.sh).
if(TARGET snapctl)
  add_test(NAME snapctl_keys
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/snapctl_keys.sh $<TARGET_FILE:snapctl>
                   $<TARGET_FILE:snapctl_mkstore> ${CMAKE_CURRENT_BINARY_DIR}/tmp/snapctl_keys)
  set_tests_properties(snapctl_keys PROPERTIES TIMEOUT 300)
endif()
# snapctl on streamed snapshots: ls/stats/show/verify/export/import/rekey/copy/
# backup/delete of streams written by tests/cli/mkstream.c, a rekey killed
# mid-stream, and export and rekey of a large stream in bounded memory
# (tests/cli/snapctl_streams.sh).
if(TARGET snapctl)
  add_executable(snapctl_mkstream ${CMAKE_CURRENT_SOURCE_DIR}/cli/mkstream.c)
  target_link_libraries(snapctl_mkstream PRIVATE snap::plugin)
  add_test(NAME snapctl_streams
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/snapctl_streams.sh $<TARGET_FILE:snapctl>
                   $<TARGET_FILE:snapctl_mkstream> ${CMAKE_CURRENT_BINARY_DIR}/tmp/snapctl_streams)
  set_tests_properties(snapctl_streams PROPERTIES TIMEOUT 300)
endif()
