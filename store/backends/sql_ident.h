/* SQL identifiers the built-in backends splice into statements: a table name
 * is checked against [A-Za-z_][A-Za-z0-9_]* and a length bound, so that it can
 * never carry SQL (docs/STORE.md). Shared by the sqlite and postgres backends
 * (store/backends/<name>/), never installed. */
#ifndef SNAP_SQL_IDENT_H
#define SNAP_SQL_IDENT_H

#include <stdbool.h>
#include <string.h>

/* Whether `t` is a plain identifier of 1 to `max` bytes. */
static inline bool snap__sql_ident_ok(const char *t, size_t max) {
  size_t n = strlen(t);
  if (n == 0 || n > max)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = t[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

#endif
