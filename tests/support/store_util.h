/* Shared helpers for the store tests: per-test temporary directories and file scans. */
#ifndef SNAP_TEST_STORE_UTIL_H
#define SNAP_TEST_STORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Creates a fresh, empty directory for one test under $SNAP_TEST_TMP (or /tmp).
 *  Returns a malloc'd path (free() it after st_rmtree()), or NULL on failure. */
char *st_tmpdir(void);

/** Removes a directory made by st_tmpdir() and everything in it. */
void st_rmtree(const char *dir);

/** Joins `dir` and `name` into a malloc'd path. */
char *st_join(const char *dir, const char *name);

/** Reads a whole file into a malloc'd buffer. Returns false when it cannot be read
 *  (a missing file reads as empty and returns true). */
bool st_read_file(const char *path, uint8_t **data, size_t *len);

/** Writes a file of text that is no SQLite database (8 KiB). Returns false on failure. */
bool st_write_not_a_database(const char *path);

/** Whether `needle` occurs in `hay`. */
bool st_contains(const uint8_t *hay, size_t hay_len, const void *needle, size_t needle_len);

struct snap_store;

/** Whether the latest snapshot of `pid` in `st` is (seq, ts, state); when not,
 *  false with the difference (or the load's error) in `why`. */
bool st_latest_is(struct snap_store *st, const char *pid, int64_t seq, int64_t ts,
                  const char *state, char *why, size_t cap);

/**
 * Races `threads` threads over conditional saves (SNAP_SAVE_IF_LATEST) of
 * `pid` until its newest seq reaches `upto`: each reads the newest seq L
 * (SNAP_SEQ_NONE for a new pid, so that the first save is seq 0),
 * saves L + 1 expecting L, with the state {"by":<id>,"seq":L+1} where <id>
 * is tag * 100 + the thread's number (1-based), and on SNAP_ECONFLICT reads
 * again. `won_by` (upto + 1 entries, zeroed by the caller) receives, for each
 * seq this call's threads won, the winner's id. Returns false with the reason
 * in `why` when a save failed otherwise, a conflict reported a current seq
 * below the expected one, or two of its threads won the same seq.
 */
bool st_race_conditional(struct snap_store *st, const char *pid, int threads, int64_t upto,
                         int tag, int *won_by, char *why, size_t cap);

/** Checks the outcome of races on `pid`: every seq 0..upto won exactly once
 *  in `won_by` and stored with its winner's state (the store keeps all).
 *  False with the reason in `why` otherwise. */
bool st_race_check(struct snap_store *st, const char *pid, int64_t upto, const int *won_by,
                   char *why, size_t cap);

struct snap_backend;

/** Two processes of `threads` threads each race (st_race_conditional()) on
 *  `pid` of a store opened on `backend` with `config` (a fresh handle in
 *  each process), up to seq `upto` (at most 1000); then every seq must have
 *  been won once, by one thread of one process, and be stored with its
 *  winner's state. False with the reason in `why` otherwise. */
bool st_race_two_processes(const struct snap_backend *backend, const char *config,
                           const char *pid, int threads, int64_t upto, char *why, size_t cap);

#endif /* SNAP_TEST_STORE_UTIL_H */
