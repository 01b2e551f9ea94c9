/*
 * Entry points of the store layer for the layer above it (plugin) and nothing
 * else: not part of the public API, not exported, not installed. Backends
 * never see it (they get the reader through snap_host).
 *
 * The one strict JSON reader behind every configuration document (the plugin
 * document, the store's keys and, through snap_host, every backend's keys),
 * and opening a store on a section of a document it already parsed. The
 * reference for the reader's rules is docs/PLUGIN.md ("Reading
 * configuration").
 */
#ifndef SNAP_STORE_LAYER_H
#define SNAP_STORE_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap/sys/backend.h"

/* Longest key path kept for messages; longer ones end in "...". */
#define SNAP__CONF_PATH_MAX 192

enum snap__jtype { SNAP__J_NULL, SNAP__J_FALSE, SNAP__J_TRUE, SNAP__J_NUM, SNAP__J_STR,
                   SNAP__J_ARR, SNAP__J_OBJ };

typedef struct snap__jv snap__jv;
typedef struct snap__jdoc snap__jdoc;

/* A reader over one JSON object of a document. The root reader is allocated
 * by snap__conf_parse(); readers of nested objects are the caller's structs
 * (snap__conf_obj()) and share the root's document and first error. */
struct snap_conf {
  snap__jdoc *doc;
  snap__jv *obj;
  char path[SNAP__CONF_PATH_MAX]; /* "" at the top, else "options.encryption" */
};

/* Parses `text` (NUL-terminated; NULL reads as an empty object) strictly into
 * a root reader. `prefix` is the key path the object sits at ("" or NULL at
 * the top of a document, "config" for the plugin document's backend keys).
 * SNAP_ECONFIG naming the path, SNAP_ENOMEM. Free with snap__conf_free(). */
int snap__conf_parse(snap_conf **out, const char *text, const char *prefix);

/* Frees a root reader and its document. NULL is a no-op. */
void snap__conf_free(snap_conf *root);

/* Getters: return 1 when the key is present and `*out` was set, 0 when it is
 * absent (`*out` untouched), a negative SNAP_ECONFIG naming the key's full
 * path when it is wrong (wrong type, out of range, missing with
 * SNAP_CONF_REQUIRED). The first error sticks: once one was reported every
 * later call returns it and does nothing. Strings stay valid until the root
 * reader is freed. */
int snap__conf_str(snap_conf *c, const char *key, unsigned flags, const char **out);
int snap__conf_int(snap_conf *c, const char *key, unsigned flags, int64_t min, int64_t max,
                   int64_t *out);
int snap__conf_bool(snap_conf *c, const char *key, unsigned flags, bool *out);
int snap__conf_enum(snap_conf *c, const char *key, unsigned flags, const char *const *names,
                    int *out);
int snap__conf_strs(snap_conf *c, const char *key, unsigned flags, const char *const **out,
                    size_t *n);

/* `*sub` reads the object at `key`. */
int snap__conf_obj(snap_conf *c, const char *key, unsigned flags, snap_conf *sub);

/* The type of `key`'s value without marking it read; -1 when absent. */
int snap__conf_type(const snap_conf *c, const char *key);

/* The array at `key`: its length in `*n`. Elements that are objects are read
 * with snap__conf_item(). */
int snap__conf_arr(snap_conf *c, const char *key, unsigned flags, size_t *n);
int snap__conf_item(snap_conf *c, const char *key, size_t i, snap_conf *sub);

/* Records SNAP_ECONFIG "<path of key>: <message>" (key NULL: the object's own
 * path) as the reader's first error and returns it. */
int snap__conf_error(snap_conf *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The document's first error so far, or SNAP_OK. */
int snap__conf_status(const snap_conf *c);

/* Refuses keys of this object nobody read, and returns the first error. */
int snap__conf_done(snap_conf *c);

/* The members of this object nobody read, as a JSON object text (their bytes
 * as written), for the next reader in line; free with snap_free(). Marks
 * them read. */
int snap__conf_rest(snap_conf *c, char **json);

/* `*sub` reads the object at `key` for another reader in line (the store and
 * then its backend read the plugin document's "config" this way): it is
 * marked handed on, so that snap__conf_done() on `c` leaves its inside to the
 * check that reader makes with snap__conf_done(sub). An absent key gives an
 * empty object at that path (returns 0); a value that is not an object is
 * refused. */
int snap__conf_section(snap_conf *c, const char *key, snap_conf *sub);

/* "compression" ("none", "zlib" or "zstd") and "compression_level" (in that
 * algorithm's range, default its own default) of an options object: 1 when
 * "compression" is present (`*alg` and `*level` set), 0 when absent, the
 * reader's first error (negative) when either is wrong. A level without an
 * algorithm that takes one is refused. The store's keys and the plugin
 * document's "options" read them the same way. */
int snap__conf_compression(snap_conf *c, snap_compression *alg, int *level);

/* Key path formatting shared with callers that report on their own:
 * "<prefix>.<key>" (or "<key>" at the top). */
void snap__conf_join(char *dst, size_t cap, const char *prefix, const char *key);

/* snap_store_open_backend() for a configuration already parsed: `section` is
 * the reader of the store's object in its document (the plugin document's
 * "config"), so messages name keys by their full path there; `flags` are
 * SNAP_BACKEND_* open flags for a backend of ABI version 3. The caller keeps
 * the reader. */
int snap__store_open_conf(snap_store **out, const struct snap_backend *backend,
                          snap_conf *section, unsigned flags);

/* snap_save_prepare() into the memory of an earlier prepared save, so that a
 * caller encoding many saves (the executor) reuses its buffers instead of
 * allocating on one thread and freeing on another (`ext` as for
 * snap_save_prepare_ex()): `*p` is NULL (one is
 * allocated) or a prepared save of the same store, committed or not. On
 * failure `*p` stays valid (it may have been allocated) and holds no save. */
int snap__save_prepare_reuse(snap_store *st, const snap_save_req *req, const snap_save_ext *ext,
                             snap_prepared **p);

/* The bytes a prepared save holds allocated (struct, pid and body capacity). */
size_t snap__prepared_bytes(const snap_prepared *p);

/* A read scope on the calling thread (the backend's read_scope_begin(),
 * ABI version 8): the loads it makes until snap__store_read_scope_end() may
 * share one read transaction, and then see the data as it was at the first
 * of them. Only for loads that were all submitted before the scope began,
 * with no callback run inside it. True when a scope was begun; false (no
 * such slot, or none could be held now) is no error: the loads run alone. */
bool snap__store_read_scope_begin(snap_store *st);
void snap__store_read_scope_end(snap_store *st);

#endif /* SNAP_STORE_LAYER_H */
