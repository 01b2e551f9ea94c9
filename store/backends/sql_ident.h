/* SQL identifiers the built-in backends splice into statements: a table name
 * is checked against [A-Za-z_][A-Za-z0-9_]* and a length bound, so that it can
 * never carry SQL (docs/STORE.md). Shared by the sqlite and postgres backends
 * (store/backends/<name>/), never installed. */
#ifndef SNAP_SQL_IDENT_H
#define SNAP_SQL_IDENT_H

#include <stdbool.h>
#include <string.h>
#include <strings.h>

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

/* Whether a data set's table named `t` would collide with a table of the
 * store's own (every one any schema version creates, in either backend) or,
 * with `system_prefix`, with the database's own (SQLite: "sqlite_").
 * `fold_case`: the database compares names without case (SQLite). */
static inline bool snap__sql_reserved_table(const char *t, const char *system_prefix,
                                            bool fold_case) {
  static const char *const own[] = {"snapstore_meta", "snapstore_settings", NULL};
  for (const char *const *o = own; *o; o++)
    if ((fold_case ? strcasecmp(t, *o) : strcmp(t, *o)) == 0)
      return true;
  size_t n = system_prefix ? strlen(system_prefix) : 0;
  return n > 0 &&
         (fold_case ? strncasecmp(t, system_prefix, n) : strncmp(t, system_prefix, n)) == 0;
}

#endif
