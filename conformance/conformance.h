/*
 * The backend conformance cases: one source for the Criterion suite
 * (tests/test_conformance.c, which runs them on the built-in backends) and the
 * installed kit (conformance/main.c, `snapstore-conformance`, which runs them
 * on any backend, built in or loaded from a shared object). A case is a plain
 * function of one backend; it checks with the cf_assert* vocabulary below,
 * which mirrors Criterion's cr_assert*, and the program it is linked into
 * decides what a failure does (cf_fail) and how a skip is reported (cf_skip).
 */
#ifndef SNAP_CONFORMANCE_H
#define SNAP_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/store.h"
#include "snap/sys/backend.h"

/* ---- the backend under test --------------------------------------------- */

typedef struct cf_backend cf_backend;

/* Damages the stored body of (pid, seq), flipping one byte past its header;
 * `st` is the open store, `dir` the case's temporary directory. */
typedef void (*cf_corrupt_fn)(const cf_backend *bc, snap_store *st, const char *dir,
                              const char *pid, int64_t seq);

/* Writes the backend's own configuration keys for the case's directory. */
typedef void (*cf_keys_fn)(const char *dir, char *buf, size_t cap);

struct cf_backend {
  const char *name;                     /* in every message */
  const snap_backend *(*backend)(void); /* the table the stores are opened on */
  /* The backend's own keys, the members of a JSON object without its braces
   * ("" for none). Each case gets fresh values for two placeholders: @DIR@, a
   * new empty directory, and @ID@, a short name unique to the case (for a
   * table, say). */
  const char *config;
  bool persistent;       /* snapshots survive closing and reopening the store */
  cf_corrupt_fn corrupt; /* NULL when the kit cannot damage a stored body */
  cf_keys_fn keys;       /* when set, writes the keys instead of `config` */
  bool file_backup;      /* snap_store_backup() writes a file the backend opens as {"path"} */
};

/* ---- the cases ---------------------------------------------------------- */

/* Every case, in the order they run. A new case: a function
 * cf_case_<name>(const cf_backend *) in one of conformance/cases_*.c and a
 * line here. */
#define CF_CASES(X)                                                                                \
  X(unknown_pid_loads_none)                                                                        \
  X(timestamp_bound_below_every_snapshot_loads_none)                                               \
  X(seq_bound_below_every_snapshot_loads_none)                                                     \
  X(latest_is_the_youngest_snapshot)                                                               \
  X(max_seq_selects_the_youngest_at_or_below_it)                                                   \
  X(delete_one_removes_exactly_that_snapshot)                                                      \
  X(delete_matching_removes_everything_matching_both_bounds)                                       \
  X(delete_matching_by_timestamp_keeps_younger_snapshots)                                          \
  X(saving_the_same_seq_again_replaces_the_payload)                                                \
  X(ten_megabyte_state_round_trips_byte_for_byte)                                                  \
  X(lower_bounds_limit_loads)                                                                      \
  X(lower_bounds_limit_deletes)                                                                    \
  X(seq_zero_is_a_valid_sequence_number)                                                           \
  X(empty_states_are_refused_and_one_byte_states_round_trip)                                       \
  X(unusual_pids_are_kept_apart)                                                                   \
  X(deleting_a_missing_snapshot_succeeds)                                                          \
  X(persistent_backends_keep_everything_across_reopen)                                             \
  X(keep_n_holds_after_many_saves)                                                                 \
  X(corrupt_newest_body_falls_back_and_reports_the_skip)                                           \
  X(too_many_corrupt_bodies_is_an_error_not_none)                                                  \
  X(mixed_plain_compressed_and_encrypted_rows_all_load)                                            \
  X(zstd_rows_load_beside_zlib_and_plain_ones)                                                     \
  X(unsupported_options_are_ignored_and_reported)                                                  \
  X(required_options_the_backend_lacks_fail_the_save)                                              \
  X(a_wrong_key_is_an_error_never_a_fallback)                                                      \
  X(store_defaults_and_resolver_layer_under_call_options)                                          \
  X(invalid_input_is_refused_and_stores_nothing)                                                   \
  X(bad_configuration_names_the_key)                                                               \
  X(batch_rows_succeed_or_fail_on_their_own)                                                       \
  X(prepared_saves_commit_together)                                                                \
  X(snapshots_convert_to_json_whatever_their_format)                                               \
  X(pids_are_listed_in_byte_order_and_pages_resume_from_the_cursor)                                \
  X(snapshots_are_listed_with_their_metadata_without_decoding)                                     \
  X(rewrite_moves_bodies_to_the_active_key_keeping_state_and_timestamp)                            \
  X(rewrite_never_overwrites_a_newer_save_nor_revives_a_deleted_snapshot)                          \
  X(rewrite_reports_bodies_it_cannot_decode_and_leaves_them)                                       \
  X(raw_puts_copy_bodies_as_they_are_with_pid_seq_and_timestamp)                                   \
  X(backups_are_complete_stores_or_unsupported)                                                    \
  X(conditional_saves_store_only_over_the_newest_seq_read)                                         \
  X(conditional_batches_check_in_order_and_conflicts_fail_alone)                                   \
  X(eight_threads_racing_conditionally_leave_one_winner_per_seq)                                   \
  X(manifests_and_metadata_round_trip_in_the_frame)                                                \
  X(loads_select_by_manifest)                                                                      \
  X(dictionaries_are_kept_with_the_data_and_chosen_by_name)                                        \
  X(a_forgotten_unit_loses_its_key_and_its_snapshots_on_every_shard)                               \
  X(rewrap_moves_every_data_key_to_the_active_master_key)                                          \
  X(new_data_keys_move_a_units_bodies_and_delete_the_old_key)                                       \
  X(migration_moves_body_and_column_and_never_a_newer_save)                                        \
  X(recompress_moves_bodies_to_the_codec_and_dictionary_a_save_writes_now)                       \
  X(streamed_states_round_trip_at_every_chunk_boundary)                                            \
  X(a_streamed_snapshot_is_visible_only_after_its_commit)                                          \
  X(aborted_and_failed_streamed_saves_change_nothing)                                              \
  X(retention_and_deletes_remove_streamed_snapshots)                                               \
  X(a_damaged_streamed_head_is_never_delivered)

#define CF_DECLARE_CASE(name) void cf_case_##name(const cf_backend *bc);
CF_CASES(CF_DECLARE_CASE)
#undef CF_DECLARE_CASE

typedef struct cf_case {
  const char *name;
  void (*run)(const cf_backend *bc);
} cf_case;

/* The table of CF_CASES, and its length. */
extern const cf_case cf_cases[];
extern const size_t cf_ncases;

/* ---- what the driver provides ------------------------------------------- */

/* Fails the running case: `what` is the failed check, the message (`fmt`,
 * which starts with a space) follows. Never returns. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
_Noreturn void
cf_fail(const char *file, int line, const char *what, const char *fmt, ...);

/* Notes that the running case does not apply to this backend, and why; the
 * case returns right after. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void cf_skip(const cf_backend *bc, const char *fmt, ...);

/* Whether the backend implements ABI version `version` (what the case needs
 * from it: `what`); skips the case when not. */
bool cf_needs_abi(const cf_backend *bc, unsigned version, const char *what);

/* ---- checks ------------------------------------------------------------- */

bool cf_str_eq(const char *a, const char *b);

/* The message is optional: a printf format (a string literal) and its
 * arguments. Each operand is evaluated once. The format reaches cf_fail()
 * behind one space, so that it is never empty. */
#define CF_CHECK_(cond, what, ...)                                                                 \
  ((cond) ? (void)0 : cf_fail(__FILE__, __LINE__, what, " " __VA_ARGS__))
#define cf_assert(c, ...) CF_CHECK_(c, #c, __VA_ARGS__)
#define cf_assert_eq(a, b, ...) CF_CHECK_((a) == (b), #a " == " #b, __VA_ARGS__)
#define cf_assert_null(p, ...) CF_CHECK_((p) == NULL, #p " is NULL", __VA_ARGS__)
#define cf_assert_not_null(p, ...) CF_CHECK_((p) != NULL, #p " is not NULL", __VA_ARGS__)
#define cf_assert_str_eq(a, b, ...) CF_CHECK_(cf_str_eq((a), (b)), #a " equals " #b, __VA_ARGS__)

/* ---- helpers for drivers ------------------------------------------------ */

/* The backend keys of one case: `bc->keys` or `bc->config` with @DIR@ and
 * @ID@ replaced for the case directory `dir`. False when they do not fit. */
bool cf_backend_keys(const cf_backend *bc, const char *dir, char *buf, size_t cap);

/* The @ID@ of the case directory `dir`: a short name unique to the case. */
void cf_case_id(const char *dir, char *buf, size_t cap);

#endif
