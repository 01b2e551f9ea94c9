/* The configuration reader's parsed document, shared by the reader's own
 * files (conf_parse.c, conf_read.c, conf_message.c, conf_host.c) and nothing
 * else: the layers above see only snap/store_layer.h. */
#ifndef SNAP_CONF_INTERNAL_H
#define SNAP_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "snap/store_layer.h"

/* One value of a parsed document. Strings are decoded and NUL-free. */
struct snap__jv {
  enum snap__jtype type;
  const char *src; /* the value's bytes in the document (numbers are read from here) */
  size_t src_len;
  const char *key_src; /* an object member's name as written, quotes included */
  size_t key_src_len;
  char *key; /* an object member's decoded name */
  char *str; /* a string's decoded value */
  struct snap__jv *child, *next;
  size_t n;          /* members or elements */
  const char **strs; /* an array's strings, built on first read as a list */
  bool used;         /* read by someone: not an unknown key */
  bool opaque;       /* handed on whole: its inside is checked by its reader */
};

struct snap__jdoc {
  snap__jv *root;
  snap__jv empty; /* the object a section that is absent reads as */
  int err;        /* the first error reported through any reader of this document */
  snap_conf reader;
};

/* A path for messages: the document itself has none. */
const char *snap__conf_shown(const char *path);

/* "<path>[<i>]", cut with "..." like snap__conf_join(). */
void snap__conf_join_index(char *dst, size_t cap, const char *path, size_t i);

/* An unread member of `obj` whose name is a likely typo of `key` (at most two
 * edits apart), or NULL. */
const snap__jv *snap__conf_near_miss(const snap__jv *obj, const char *key);

#endif /* SNAP_CONF_INTERNAL_H */
