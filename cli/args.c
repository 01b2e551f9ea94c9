/* snapctl: the arguments of a command (its options, the common ones and its
 * positional arguments), its --help, and usage errors. Nothing here opens a
 * store: config.c does, after the arguments are read. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snapctl.h"

static void cmd_help(const ctl_cmd *cmd) {
  printf("usage: snapctl %s [--config FILE] [--quiet] %s\n\n%s\n", cmd->name, cmd->synopsis,
         cmd->help);
}

int ctl_usage(ctl *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "snapctl%s%s: ", c->cmd ? " " : "", c->cmd ? c->cmd->name : "");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'snapctl %s%s--help'.\n", c->cmd ? c->cmd->name : "", c->cmd ? " " : "");
  if (c->cmd)
    fprintf(stderr, "usage: snapctl %s %s\n", c->cmd->name, c->cmd->synopsis);
  return EXIT_USAGE;
}

int ctl_common_opt(ctl *c, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  if (strcmp(a, "--config") == 0) {
    if (*i + 1 >= argc)
      return -(ctl_usage(c, "--config needs a file") + 1);
    c->config_path = argv[++*i];
    return 1;
  }
  if (strncmp(a, "--config=", 9) == 0) {
    c->config_path = a + 9;
    return 1;
  }
  if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
    c->quiet = true;
    return 1;
  }
  if (strcmp(a, "--create") == 0) {
    c->create = true;
    return 1;
  }
  return 0;
}

int ctl_args(ctl *c, int argc, char **argv, const ctl_opt *opts, const char **pos, int min_pos,
             int max_pos, int *npos) {
  int n = 0;
  bool only_pos = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    if (!only_pos && a[0] == '-' && a[1] != '\0') {
      if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        cmd_help(c->cmd);
        return EXIT_OK;
      }
      int r = ctl_common_opt(c, argc, argv, &i);
      if (r < 0)
        return -r - 1;
      if (r > 0)
        continue;
      const ctl_opt *o = opts;
      size_t eq = strcspn(a, "=");
      for (; o && o->name; o++)
        if (strlen(o->name) == eq && strncmp(a, o->name, eq) == 0)
          break;
      if (!o || !o->name)
        return ctl_usage(c, "unknown option '%s'", a);
      if (o->flag) {
        if (a[eq] == '=')
          return ctl_usage(c, "%s takes no value", o->name);
        *o->flag = true;
      } else if (a[eq] == '=') {
        *o->value = a + eq + 1;
      } else {
        if (i + 1 >= argc)
          return ctl_usage(c, "%s needs a value", o->name);
        *o->value = argv[++i];
      }
      continue;
    }
    if (n >= max_pos)
      return ctl_usage(c, "unexpected argument '%s'", a);
    pos[n++] = a;
  }
  if (n < min_pos)
    return ctl_usage(c, "missing argument (%s)", c->cmd->synopsis);
  if (npos != NULL)
    *npos = n;
  return -1;
}
