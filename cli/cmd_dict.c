/* snapctl dict: the store's trained zstd dictionaries (docs/STORE.md,
 * "Dictionaries"): train one from the newest snapshots of the pids matching
 * a glob, list them, show one, remove one no snapshot uses. */
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <zdict.h>

#include "snapctl.h"

/* The newest state of each pid matching the glob, as training samples. */
typedef struct samples {
  ctl *c;
  const char *glob;
  size_t max;
  char *buf;
  size_t len, cap;
  size_t *sizes;
  size_t n;
} samples;

static int take_newest(samples *s, const char *pid) {
  snap_snapshot *snap = NULL;
  int rc = snap_load_latest(s->c->st, pid, s->c->opts, &snap);
  if (rc != SNAP_OK || snap == NULL)
    return rc;
  if (s->len + snap->len > s->cap) {
    size_t cap = (s->cap + snap->len) * 2;
    char *b = realloc(s->buf, cap);
    if (!b) {
      snap_snapshot_free(snap);
      return SNAP_ENOMEM;
    }
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, snap->data, snap->len);
  s->len += snap->len;
  s->sizes[s->n++] = snap->len;
  snap_snapshot_free(snap);
  return SNAP_OK;
}

static int collect(samples *s) {
  snap_pid_page page = SNAP_PID_PAGE_INIT;
  char *after = NULL;
  int rc;
  while ((rc = snap_store_list_pids(s->c->st, after, CTL_PAGE, &page)) == SNAP_OK) {
    for (size_t i = 0; i < page.n && s->n < s->max && rc == SNAP_OK; i++)
      if (fnmatch(s->glob, page.pids[i], 0) == 0)
        rc = take_newest(s, page.pids[i]);
    if (rc != SNAP_OK || page.n < CTL_PAGE || s->n >= s->max)
      break;
    free(after);
    after = strdup(page.pids[page.n - 1]);
  }
  free(after);
  snap_pid_page_dispose(&page);
  return rc;
}

/* A source serving the one dictionary being evaluated. */
static int one_dict(void *ud, uint32_t id, const char *name, snap_dict **out) {
  (void)name;
  if (id != snap_dict_id(ud))
    return SNAP_ENOTFOUND;
  *out = snap_dict_ref(ud);
  return SNAP_OK;
}

/* State bytes over body bytes of samples [from, n) encoded with `o`. */
static double ratio(const samples *s, size_t from, const snap_options *o) {
  snap_buf b = SNAP_BUF_INIT;
  uint64_t in = 0, out = 0;
  size_t at = 0;
  for (size_t i = 0; i < s->n; at += s->sizes[i++]) {
    if (i < from)
      continue;
    if (snap_body_encode("sample", 1, SNAP_FORMAT_JSON, s->buf + at, s->sizes[i], o, &b, NULL) ==
            SNAP_OK ||
        snap_body_encode("sample", 1, SNAP_FORMAT_MSGPACK, s->buf + at, s->sizes[i], o, &b,
                         NULL) == SNAP_OK) {
      in += s->sizes[i];
      out += b.len;
    }
  }
  snap_buf_dispose(&b);
  return out ? (double)in / (double)out : 0;
}

/* Trains on 9 in 10 samples, reports the ratio on the others against zlib-6
 * (the default codec) and zstd-3 alone, and stores the dictionary. */
static int dict_train(ctl *c, const char *name, const char *glob, size_t max, size_t size) {
  samples s = {c, glob, max, NULL, 0, 0, calloc(max, sizeof(size_t)), 0};
  int rc = s.sizes ? collect(&s) : SNAP_ENOMEM;
  if (rc != SNAP_OK || s.n < 10) {
    free(s.buf);
    free(s.sizes);
    return rc != SNAP_OK ? ctl_fail(EXIT_FOUND, "dict train: %s", ctl_error(rc))
                         : ctl_fail(EXIT_FOUND, "dict train: %zu pid(s) match '%s', 10 needed",
                                    s.n, glob);
  }
  const size_t train_n = s.n - s.n / 10;
  uint8_t *d = malloc(size);
  size_t dn = d ? ZDICT_trainFromBuffer(d, size, s.buf, s.sizes, (unsigned)train_n) : 0;
  snap_dict *dict = NULL;
  if (!d || ZDICT_isError(dn))
    rc = ctl_fail(EXIT_FOUND, "dict train: %s", d ? ZDICT_getErrorName(dn) : "out of memory");
  else if ((rc = snap_dict_new(&dict, d, dn)) != SNAP_OK)
    rc = ctl_fail(EXIT_FOUND, "dict train: %s", ctl_error(rc));
  if (rc == SNAP_OK) {
    snap_options *zl, *zs, *zd;
    snap_options_new(&zl), snap_options_new(&zs), snap_options_new(&zd);
    snap_options_set_compression(zl, SNAP_COMPRESSION_ZLIB, 6);
    snap_options_set_compression(zs, SNAP_COMPRESSION_ZSTD, 3);
    snap_options_set_compression(zd, SNAP_COMPRESSION_ZSTD, 3);
    snap_options_set_dictionary(zd, snap_dict_id(dict), NULL);
    snap_options_set_dictionary_source(zd, one_dict, dict);
    printf("%s\tid %" PRIu32 "\t%zu bytes\ttrained on %zu\theld out %zu\tratio zstd-3+dict %.2f"
           "\tzstd-3 %.2f\tzlib-6 %.2f\n",
           name, snap_dict_id(dict), dn, train_n, s.n - train_n, ratio(&s, train_n, zd),
           ratio(&s, train_n, zs), ratio(&s, train_n, zl));
    snap_options_free(zl), snap_options_free(zs), snap_options_free(zd);
    if ((rc = snap_store_dict_add(c->st, name, d, dn, NULL)) != SNAP_OK)
      rc = ctl_fail(EXIT_FOUND, "dict train: %s", ctl_error(rc));
  }
  snap_dict_free(dict);
  free(d);
  free(s.buf);
  free(s.sizes);
  return rc;
}

static int dict_ls(ctl *c) {
  snap_dict_info *v;
  size_t n;
  int rc = snap_store_dict_list(c->st, &v, &n);
  if (rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "dict ls: %s", ctl_error(rc));
  for (size_t i = 0; i < n; i++) {
    char when[40], stages[32];
    printf("%" PRIu32 "\t%s\t%" PRIu64 " bytes\tstored %zu\t%s\t%s\n", v[i].id, v[i].name,
           v[i].size, v[i].stored_len, ctl_stages_name(v[i].stages, stages, sizeof stages),
           ctl_time(v[i].created / 1000, when, sizeof when));
  }
  snap_free(v);
  return EXIT_OK;
}

/* A dictionary named by its id (digits) or its name. */
static int find(ctl *c, const char *what, snap_dict **d) {
  int64_t id = 0;
  bool by_id = ctl_parse_i64(what, &id) && id > 0 && id <= UINT32_MAX;
  return snap_store_dict_get(c->st, by_id ? (uint32_t)id : 0, by_id ? NULL : what, d);
}

static int dict_show(ctl *c, const char *what) {
  snap_dict *d;
  int rc = find(c, what, &d);
  if (rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "dict show: %s", ctl_error(rc));
  uint64_t uses = 0;
  rc = snap_store_dict_uses(c->st, snap_dict_id(d), &uses);
  size_t len;
  snap_dict_bytes(d, &len);
  printf("id %" PRIu32 "\t%zu bytes\tused by %" PRIu64 " snapshot(s)\n", snap_dict_id(d), len,
         uses);
  snap_dict_free(d);
  return rc == SNAP_OK ? EXIT_OK : ctl_fail(EXIT_FOUND, "dict show: %s", ctl_error(rc));
}

static int dict_rm(ctl *c, const char *what, bool force) {
  snap_dict *d;
  int rc = find(c, what, &d);
  if (rc == SNAP_OK) {
    rc = snap_store_dict_remove(c->st, snap_dict_id(d), force);
    snap_dict_free(d);
  }
  return rc == SNAP_OK ? EXIT_OK : ctl_fail(EXIT_FOUND, "dict rm: %s", ctl_error(rc));
}

int cmd_dict(ctl *c, int argc, char **argv) {
  const char *name = NULL, *pids = NULL, *samples_s = NULL, *size_s = NULL;
  bool force = false;
  const ctl_opt opts[] = {{"--name", &name, NULL},       {"--pids", &pids, NULL},
                          {"--samples", &samples_s, NULL}, {"--size", &size_s, NULL},
                          {"--force", NULL, &force},     {NULL, NULL, NULL}};
  const char *pos[2];
  int n = 0;
  int rc = ctl_args(c, argc, argv, opts, pos, 1, 2, &n);
  if (rc >= 0)
    return rc;
  int64_t max = 1000, size = 16384;
  if (samples_s && (!ctl_parse_i64(samples_s, &max) || max < 10 || max > 1000000))
    return ctl_usage(c, "--samples '%s' is not 10 to 1000000", samples_s);
  if (size_s && (!ctl_parse_i64(size_s, &size) || size < 256 || size > SNAP_DICT_MAX))
    return ctl_usage(c, "--size '%s' is not 256 to %u bytes", size_s, SNAP_DICT_MAX);
  const char *sub = pos[0];
  const bool train = strcmp(sub, "train") == 0, ls = strcmp(sub, "ls") == 0;
  const bool one = strcmp(sub, "show") == 0 || strcmp(sub, "rm") == 0;
  if (!train && !ls && !one)
    return ctl_usage(c, "unknown dict command '%s' (train, ls, show, rm)", sub);
  if (train && (!name || !pids || n != 1))
    return ctl_usage(c, "dict train needs --name NAME and --pids GLOB");
  if (one != (n == 2) || (ls && n != 1))
    return ctl_usage(c, "dict %s takes %s", sub, one ? "one ID or NAME" : "no argument");
  if ((rc = ctl_open(c)) != EXIT_OK)
    return rc;
  if (train)
    return dict_train(c, name, pids, (size_t)max, (size_t)size);
  if (ls)
    return dict_ls(c);
  return sub[0] == 's' ? dict_show(c, pos[1]) : dict_rm(c, pos[1], force);
}
