/**
 * @file snap/export.h
 * @brief SNAP_API, the one marker of snapstore's exported functions.
 *
 * The library is compiled with hidden visibility: a function is part of the
 * shared object's interface only if its public declaration starts with
 * SNAP_API. Every public function carries it; internal functions shared
 * between source files (the `snap__` prefix) never do, so they stay out of
 * libsnapstore.so. The build checks that the exported symbols are exactly the
 * SNAP_API declarations of the installed headers (tests/release/check-exports.sh).
 */
#ifndef SNAP_EXPORT_H
#define SNAP_EXPORT_H

#if defined(_WIN32) || defined(__CYGWIN__)
/* SNAP_BUILDING_LIBRARY is defined while compiling snapstore itself;
 * SNAP_STATIC by users of the static library. */
#if defined(SNAP_STATIC)
#define SNAP_API
#elif defined(SNAP_BUILDING_LIBRARY)
#define SNAP_API __declspec(dllexport)
#else
#define SNAP_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define SNAP_API __attribute__((visibility("default")))
#else
#define SNAP_API
#endif

#endif /* SNAP_EXPORT_H */
