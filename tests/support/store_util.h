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

#endif /* SNAP_TEST_STORE_UTIL_H */
