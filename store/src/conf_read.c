/* The configuration reader's getters: each reads one key of an object of a
 * parsed document, marks it read and refuses a wrong value naming its path;
 * what nobody read is an unknown key. The rules are docs/PLUGIN.md's
 * "Reading configuration". */
#include <stdio.h>
#include <string.h>

#include "conf_internal.h"
#include "snap/error.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static snap__jv *find(const snap_conf *c, const char *key) {
  for (snap__jv *m = c->obj->child; m != NULL; m = m->next)
    if (strcmp(m->key, key) == 0)
      return m;
  return NULL;
}

static const char *type_name(enum snap__jtype t) {
  switch (t) {
  case SNAP__J_NULL:
    return "null";
  case SNAP__J_FALSE:
  case SNAP__J_TRUE:
    return "a boolean";
  case SNAP__J_NUM:
    return "a number";
  case SNAP__J_STR:
    return "a string";
  case SNAP__J_ARR:
    return "an array";
  default:
    return "an object";
  }
}

/* Finds `key` for a getter: 1 present (and marked read), 0 absent, or the
 * error (sticky, or missing while required). */
static int lookup(snap_conf *c, const char *key, unsigned flags, snap__jv **out) {
  *out = NULL;
  if (c->doc->err != SNAP_OK)
    return c->doc->err;
  snap__jv *m = find(c, key);
  if (m == NULL) {
    if (!(flags & SNAP_CONF_REQUIRED))
      return 0;
    /* "paht" for "path": name the key that was written, not only the one
     * that is missing. */
    const snap__jv *typo = snap__conf_near_miss(c->obj, key);
    if (typo != NULL)
      return snap__conf_error(c, typo->key, "unknown key (did you mean '%s'?)", key);
    return snap__conf_error(c, key, "missing (this key is required)");
  }
  m->used = true;
  *out = m;
  return 1;
}

int snap__conf_type(const snap_conf *c, const char *key) {
  const snap__jv *m = find(c, key);
  return m ? (int)m->type : -1;
}

int snap__conf_str(snap_conf *c, const char *key, unsigned flags, const char **out) {
  snap__jv *m;
  int rc = lookup(c, key, flags, &m);
  if (rc <= 0)
    return rc;
  if (m->type != SNAP__J_STR)
    return snap__conf_error(c, key, "must be a%s string, not %s",
                            (flags & SNAP_CONF_NONEMPTY) ? " non-empty" : "", type_name(m->type));
  if ((flags & SNAP_CONF_NONEMPTY) && m->str[0] == '\0')
    return snap__conf_error(c, key, "must be a non-empty string");
  *out = m->str;
  return 1;
}

/* The exact integer a JSON number token stands for. Returns 0 and sets
 * `*value` when it is one within int64_t; otherwise 1 when it is not an
 * integer at all (2.5, 1e-3), 2 for -0, 3 when it is beyond int64_t. */
static int exact_int(const char *s, size_t len, int64_t *value) {
  const char *end = s + len;
  bool neg = s < end && *s == '-';
  if (neg)
    s++;
  /* Significant digits (leading zeros dropped) and the power of ten after them. */
  char digits[24];
  size_t nd = 0;
  long exp10 = 0;
  bool dropped_nonzero = false, frac = false;
  for (; s < end && (is_digit(*s) || *s == '.'); s++) {
    if (*s == '.') {
      frac = true;
      continue;
    }
    if (frac)
      exp10--;
    if (nd == 0 && *s == '0')
      continue;
    if (nd < sizeof digits)
      digits[nd++] = *s;
    else {
      exp10++; /* beyond 24 digits the value is out of range anyway */
      dropped_nonzero |= *s != '0';
    }
  }
  if (s < end && (*s == 'e' || *s == 'E')) {
    s++;
    bool eneg = *s == '-';
    if (*s == '-' || *s == '+')
      s++;
    long e = 0;
    for (; s < end; s++)
      if (e < 100000)
        e = e * 10 + (*s - '0');
    exp10 += eneg ? -e : e;
  }
  while (nd > 0 && digits[nd - 1] == '0') {
    nd--;
    exp10++;
  }
  if (nd == 0 && !dropped_nonzero) {
    if (neg)
      return 2;
    *value = 0;
    return 0;
  }
  if (exp10 < 0)
    return 1;
  if ((long)nd + exp10 > 19 || dropped_nonzero)
    return 3;
  uint64_t mag = 0;
  for (size_t i = 0; i < nd; i++)
    mag = mag * 10 + (uint64_t)(digits[i] - '0');
  for (long i = 0; i < exp10; i++) {
    if (mag > UINT64_MAX / 10)
      return 3;
    mag *= 10;
  }
  if (neg) {
    if (mag > (uint64_t)INT64_MAX + 1)
      return 3;
    *value = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  } else {
    if (mag > (uint64_t)INT64_MAX)
      return 3;
    *value = (int64_t)mag;
  }
  return 0;
}

int snap__conf_int(snap_conf *c, const char *key, unsigned flags, int64_t min, int64_t max,
                   int64_t *out) {
  snap__jv *m;
  int rc = lookup(c, key, flags, &m);
  if (rc <= 0)
    return rc;
  if (m->type != SNAP__J_NUM)
    return snap__conf_error(c, key, "must be an integer from %lld to %lld, not %s", (long long)min,
                            (long long)max, type_name(m->type));
  int64_t v = 0;
  int kind = exact_int(m->src, m->src_len, &v);
  int shown_len = m->src_len > 40 ? 40 : (int)m->src_len;
  if (kind == 1 || kind == 2)
    return snap__conf_error(c, key, "%.*s%s is not an integer (from %lld to %lld)", shown_len,
                            m->src, m->src_len > 40 ? "..." : "", (long long)min, (long long)max);
  if (kind == 3 || v < min || v > max)
    return snap__conf_error(c, key, "%.*s%s is out of range %lld to %lld", shown_len, m->src,
                            m->src_len > 40 ? "..." : "", (long long)min, (long long)max);
  *out = v;
  return 1;
}

int snap__conf_bool(snap_conf *c, const char *key, unsigned flags, bool *out) {
  snap__jv *m;
  int rc = lookup(c, key, flags, &m);
  if (rc <= 0)
    return rc;
  if (m->type != SNAP__J_TRUE && m->type != SNAP__J_FALSE)
    return snap__conf_error(c, key, "must be true or false, not %s", type_name(m->type));
  *out = m->type == SNAP__J_TRUE;
  return 1;
}

int snap__conf_enum(snap_conf *c, const char *key, unsigned flags, const char *const *names,
                    int *out) {
  snap__jv *m;
  int rc = lookup(c, key, flags, &m);
  if (rc <= 0)
    return rc;
  for (int i = 0; m->type == SNAP__J_STR && names[i] != NULL; i++)
    if (strcmp(m->str, names[i]) == 0) {
      *out = i;
      return 1;
    }
  char choices[256] = "";
  size_t n = 0;
  for (int i = 0; names[i] != NULL && n < sizeof choices; i++) {
    int w = snprintf(choices + n, sizeof choices - n, "%s\"%s\"",
                     i == 0 ? "" : (names[i + 1] == NULL ? " or " : ", "), names[i]);
    if (w < 0)
      break;
    n += (size_t)w;
  }
  if (m->type != SNAP__J_STR)
    return snap__conf_error(c, key, "must be one of %s, not %s", choices, type_name(m->type));
  return snap__conf_error(c, key, "'%s' is not one of %s", m->str, choices);
}

int snap__conf_strs(snap_conf *c, const char *key, unsigned flags, const char *const **out,
                    size_t *n) {
  snap__jv *m;
  int rc = lookup(c, key, flags, &m);
  if (rc <= 0)
    return rc;
  if (m->type != SNAP__J_ARR)
    return snap__conf_error(c, key, "must be an array of strings, not %s", type_name(m->type));
  if (m->strs == NULL) {
    m->strs = snap_calloc(m->n + 1, sizeof *m->strs);
    if (m->strs == NULL) {
      rc = snap_error_set(SNAP_ENOMEM, "out of memory reading the configuration");
      c->doc->err = rc;
      return rc;
    }
    size_t i = 0;
    for (const snap__jv *e = m->child; e != NULL; e = e->next, i++) {
      char item[SNAP__CONF_PATH_MAX];
      snap__conf_join_index(item, sizeof item, key, i);
      if (e->type != SNAP__J_STR || ((flags & SNAP_CONF_NONEMPTY) && e->str[0] == '\0')) {
        snap_free(m->strs);
        m->strs = NULL;
        return snap__conf_error(c, item, "must be a%s string",
                                (flags & SNAP_CONF_NONEMPTY) ? " non-empty" : "");
      }
      m->strs[i] = e->str;
    }
  }
  *out = m->strs;
  *n = m->n;
  return 1;
}

static void sub_reader(const snap_conf *c, snap__jv *obj, const char *path, snap_conf *sub) {
  sub->doc = c->doc;
  sub->obj = obj;
  snprintf(sub->path, sizeof sub->path, "%s", path);
}

int snap__conf_obj(snap_conf *c, const char *key, unsigned flags, snap_conf *sub) {
  snap__jv *m;
  int rc = lookup(c, key, flags, &m);
  if (rc <= 0)
    return rc;
  if (m->type != SNAP__J_OBJ)
    return snap__conf_error(c, key, "must be an object, not %s", type_name(m->type));
  char path[SNAP__CONF_PATH_MAX];
  snap__conf_join(path, sizeof path, c->path, key);
  sub_reader(c, m, path, sub);
  return 1;
}

int snap__conf_arr(snap_conf *c, const char *key, unsigned flags, size_t *n) {
  snap__jv *m;
  int rc = lookup(c, key, flags, &m);
  if (rc <= 0)
    return rc;
  if (m->type != SNAP__J_ARR)
    return snap__conf_error(c, key, "must be an array, not %s", type_name(m->type));
  *n = m->n;
  return 1;
}

int snap__conf_item(snap_conf *c, const char *key, size_t i, snap_conf *sub) {
  snap__jv *m;
  int rc = lookup(c, key, SNAP_CONF_REQUIRED, &m);
  if (rc < 0)
    return rc;
  snap__jv *e = m->type == SNAP__J_ARR ? m->child : NULL;
  for (size_t k = 0; e != NULL && k < i; k++)
    e = e->next;
  char item[SNAP__CONF_PATH_MAX];
  snap__conf_join_index(item, sizeof item, key, i);
  if (e == NULL)
    return snap__conf_error(c, item, "missing");
  if (e->type != SNAP__J_OBJ)
    return snap__conf_error(c, item, "must be an object, not %s", type_name(e->type));
  e->used = true;
  char path[SNAP__CONF_PATH_MAX];
  snap__conf_join(path, sizeof path, c->path, item);
  sub_reader(c, e, path, sub);
  return 1;
}

/* First member nobody read, looking inside the objects and arrays that were
 * read (a value handed on whole, by snap__conf_raw() or _rest(), is someone
 * else's to check). */
static int check_unread(snap_conf *c, const snap__jv *v, const char *path) {
  size_t i = 0;
  for (const snap__jv *m = v->child; m != NULL; m = m->next, i++) {
    char sub[SNAP__CONF_PATH_MAX];
    if (v->type == SNAP__J_OBJ) {
      snap__conf_join(sub, sizeof sub, path, m->key);
      if (!m->used) {
        int rc = snap_error_set(SNAP_ECONFIG, "%s: unknown key", sub);
        c->doc->err = rc;
        return rc;
      }
    } else {
      snap__conf_join_index(sub, sizeof sub, path, i);
      if (!m->used)
        continue;
    }
    if (!m->opaque && (m->type == SNAP__J_OBJ || m->type == SNAP__J_ARR)) {
      int rc = check_unread(c, m, sub);
      if (rc != SNAP_OK)
        return rc;
    }
  }
  return SNAP_OK;
}

int snap__conf_status(const snap_conf *c) { return c->doc->err; }

int snap__conf_done(snap_conf *c) {
  if (c->doc->err != SNAP_OK)
    return c->doc->err;
  return check_unread(c, c->obj, c->path);
}

static void hand_on(snap__jv *m) {
  m->used = true;
  m->opaque = true;
}

int snap__conf_section(snap_conf *c, const char *key, snap_conf *sub) {
  if (c->doc->err != SNAP_OK)
    return c->doc->err;
  snap__jv *m = find(c, key);
  char path[SNAP__CONF_PATH_MAX];
  snap__conf_join(path, sizeof path, c->path, key);
  if (m == NULL) {
    sub_reader(c, &c->doc->empty, path, sub);
    return 0;
  }
  if (m->type != SNAP__J_OBJ)
    return snap__conf_error(c, key, "must be an object");
  hand_on(m);
  sub_reader(c, m, path, sub);
  return 1;
}

int snap__conf_rest(snap_conf *c, char **json) {
  *json = NULL;
  if (c->doc->err != SNAP_OK)
    return c->doc->err;
  size_t need = 3;
  for (const snap__jv *m = c->obj->child; m != NULL; m = m->next)
    if (!m->used)
      need += m->key_src_len + 1 + m->src_len + 1;
  char *s = snap_malloc(need);
  if (s == NULL)
    return snap_error_set(SNAP_ENOMEM, "out of memory reading the configuration");
  size_t n = 0;
  s[n++] = '{';
  for (snap__jv *m = c->obj->child; m != NULL; m = m->next) {
    if (m->used)
      continue;
    if (n > 1)
      s[n++] = ',';
    memcpy(s + n, m->key_src, m->key_src_len);
    n += m->key_src_len;
    s[n++] = ':';
    memcpy(s + n, m->src, m->src_len);
    n += m->src_len;
    hand_on(m);
  }
  s[n++] = '}';
  s[n] = '\0';
  *json = s;
  return SNAP_OK;
}

