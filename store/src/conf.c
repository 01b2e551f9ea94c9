/* The one strict JSON reader behind every configuration document.
 *
 * Its own small parser rather than cJSON, because the rules need what cJSON
 * throws away: which keys repeat (cJSON keeps both and its lookups take the
 * first), whether a string held "\u0000" (cJSON decodes it and the C string
 * ends there), where the document ends (cJSON_Parse ignores what follows) and
 * the digits of a number (its double turns 2^63 + 1 and -0 into other
 * values). Every refusal is SNAP_ECONFIG naming the full key path. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "snap/error.h"

/* Nesting deeper than any configuration needs is refused, not recursed into. */
#define MAX_DEPTH 64

struct snap__jdoc {
  snap__jv *root;
  int err; /* the first error reported through any reader of this document */
  snap_conf reader;
};

static _Thread_local const char *backend_prefix;

void snap__conf_set_backend_prefix(const char *prefix) { backend_prefix = prefix; }

void snap__conf_join(char *dst, size_t cap, const char *prefix, const char *key) {
  int n;
  if (prefix == NULL || prefix[0] == '\0')
    n = snprintf(dst, cap, "%s", key);
  else
    n = snprintf(dst, cap, "%s.%s", prefix, key);
  if (n >= 0 && (size_t)n >= cap && cap > 4)
    memcpy(dst + cap - 4, "...", 4);
}

static void join_index(char *dst, size_t cap, const char *path, size_t i) {
  int n = snprintf(dst, cap, "%s[%zu]", path, i);
  if (n >= 0 && (size_t)n >= cap && cap > 4)
    memcpy(dst + cap - 4, "...", 4);
}

/* A path for messages: the document itself has none. */
static const char *shown(const char *path) { return path[0] ? path : "(document)"; }

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct parser {
  const char *start, *p, *end;
} parser;

static int syntax(const parser *ps, const char *path, const char *what) {
  return snap_error_set(SNAP_ECONFIG, "%s: not valid JSON at byte %zu: %s", shown(path),
                        (size_t)(ps->p - ps->start), what);
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *d, unsigned cp) {
  if (cp < 0x80) {
    d[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (char)(0xC0 | (cp >> 6));
    d[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (char)(0xE0 | (cp >> 12));
    d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  d[0] = (char)(0xF0 | (cp >> 18));
  d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  d[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the well-formed UTF-8 sequence at `s` (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end) {
  unsigned c = s[0];
  size_t n;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if ((size_t)(end - s) < n)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return n;
}

/* Decodes the string at ps->p (on its opening quote) into a new buffer. */
static int parse_string(parser *ps, const char *path, char **out) {
  const char *q = ps->p + 1;
  /* Escapes never grow when decoded, so the raw length bounds the result. */
  const char *close = q;
  while (close < ps->end && *close != '"')
    close += (*close == '\\' && close + 1 < ps->end) ? 2 : 1;
  char *d = snap_malloc((size_t)(close - q) + 1);
  if (d == NULL)
    return snap_error_set(SNAP_ENOMEM, "%s: out of memory reading the configuration", shown(path));
  size_t n = 0;
  int rc = SNAP_OK;
  for (;;) {
    ps->p = q;
    if (q >= ps->end) {
      rc = syntax(ps, path, "unterminated string");
      break;
    }
    unsigned char c = (unsigned char)*q;
    if (c == '"') {
      q++;
      break;
    }
    if (c < 0x20) {
      rc = syntax(ps, path, "control character inside a string (escape it)");
      break;
    }
    if (c >= 0x80) {
      size_t len = utf8_len((const unsigned char *)q, (const unsigned char *)ps->end);
      if (len == 0) {
        rc = snap_error_set(SNAP_ECONFIG, "%s: the string is not valid UTF-8 (byte %zu)",
                            shown(path), (size_t)(q - ps->start));
        break;
      }
      memcpy(d + n, q, len);
      n += len;
      q += len;
      continue;
    }
    if (c != '\\') {
      d[n++] = (char)c;
      q++;
      continue;
    }
    if (q + 1 >= ps->end) {
      rc = syntax(ps, path, "unterminated string");
      break;
    }
    char e = q[1];
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e != '\0' && simple != NULL) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      d[n++] = to[simple - "\"\\/bfnrt"];
      q += 2;
      continue;
    }
    unsigned cp;
    if (e != 'u' || ps->end - q < 6 || hex4(q + 2, &cp) != 0) {
      rc = syntax(ps, path, "bad escape in a string");
      break;
    }
    q += 6;
    if (cp == 0) {
      /* Decoded, it would end the C string there: "a.db\u0000x" would read as
       * "a.db", and two contexts differing after it would become one. */
      rc = snap_error_set(SNAP_ECONFIG, "%s: a string must not contain NUL (\\u0000)", shown(path));
      break;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      rc = syntax(ps, path, "unpaired surrogate escape");
      break;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      unsigned lo;
      if (ps->end - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, &lo) != 0 || lo < 0xDC00 ||
          lo > 0xDFFF) {
        rc = syntax(ps, path, "unpaired surrogate escape");
        break;
      }
      q += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    n += put_utf8(d + n, cp);
  }
  if (rc != SNAP_OK) {
    snap_free(d);
    return rc;
  }
  d[n] = '\0';
  ps->p = q;
  *out = d;
  return SNAP_OK;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *ps, const char *path) {
  const char *q = ps->p;
  if (q < ps->end && *q == '-')
    q++;
  if (q >= ps->end || !is_digit(*q))
    return syntax(ps, path, "expected a value");
  if (*q == '0')
    q++;
  else
    while (q < ps->end && is_digit(*q))
      q++;
  if (q < ps->end && *q == '.') {
    q++;
    if (q >= ps->end || !is_digit(*q)) {
      ps->p = q;
      return syntax(ps, path, "expected a digit after the decimal point");
    }
    while (q < ps->end && is_digit(*q))
      q++;
  }
  if (q < ps->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < ps->end && (*q == '+' || *q == '-'))
      q++;
    if (q >= ps->end || !is_digit(*q)) {
      ps->p = q;
      return syntax(ps, path, "expected a digit in the exponent");
    }
    while (q < ps->end && is_digit(*q))
      q++;
  }
  ps->p = q;
  return SNAP_OK;
}

static void free_values(snap__jv *v) {
  while (v != NULL) {
    snap__jv *next = v->next;
    free_values(v->child);
    snap_free(v->key);
    snap_free(v->str);
    snap_free(v->strs);
    snap_free(v);
    v = next;
  }
}

static int parse_value(parser *ps, const char *path, int depth, snap__jv *v);

static int parse_members(parser *ps, const char *path, int depth, snap__jv *v) {
  ps->p++; /* '{' */
  snap__jv **tail = &v->child;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
    return SNAP_OK;
  }
  for (;;) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"')
      return syntax(ps, path, "expected a key in quotes");
    snap__jv *m = snap_calloc(1, sizeof *m);
    if (m == NULL)
      return snap_error_set(SNAP_ENOMEM, "%s: out of memory reading the configuration",
                            shown(path));
    *tail = m;
    tail = &m->next;
    v->n++;
    m->key_src = ps->p;
    int rc = parse_string(ps, path, &m->key);
    if (rc != SNAP_OK)
      return rc;
    m->key_src_len = (size_t)(ps->p - m->key_src);
    char sub[SNAP__CONF_PATH_MAX];
    snap__conf_join(sub, sizeof sub, path, m->key);
    for (const snap__jv *o = v->child; o != m; o = o->next)
      if (strcmp(o->key, m->key) == 0)
        return snap_error_set(SNAP_ECONFIG, "%s: duplicate key", sub);
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':')
      return syntax(ps, sub, "expected ':' after the key");
    ps->p++;
    if ((rc = parse_value(ps, sub, depth + 1, m)) != SNAP_OK)
      return rc;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == '}') {
      ps->p++;
      return SNAP_OK;
    }
    return syntax(ps, path, "expected ',' or '}'");
  }
}

static int parse_elements(parser *ps, const char *path, int depth, snap__jv *v) {
  ps->p++; /* '[' */
  snap__jv **tail = &v->child;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
    return SNAP_OK;
  }
  for (;;) {
    snap__jv *e = snap_calloc(1, sizeof *e);
    if (e == NULL)
      return snap_error_set(SNAP_ENOMEM, "%s: out of memory reading the configuration",
                            shown(path));
    *tail = e;
    tail = &e->next;
    char sub[SNAP__CONF_PATH_MAX];
    join_index(sub, sizeof sub, path, v->n++);
    int rc = parse_value(ps, sub, depth + 1, e);
    if (rc != SNAP_OK)
      return rc;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == ']') {
      ps->p++;
      return SNAP_OK;
    }
    return syntax(ps, path, "expected ',' or ']'");
  }
}

static int literal(parser *ps, const char *path, const char *word, snap__jv *v,
                   enum snap__jtype t) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return syntax(ps, path, "expected a value");
  ps->p += n;
  v->type = t;
  return SNAP_OK;
}

static int parse_value(parser *ps, const char *path, int depth, snap__jv *v) {
  if (depth > MAX_DEPTH)
    return snap_error_set(SNAP_ECONFIG, "%s: nested deeper than %d levels", shown(path), MAX_DEPTH);
  skip_ws(ps);
  if (ps->p >= ps->end)
    return syntax(ps, path, "expected a value");
  v->src = ps->p;
  int rc;
  switch (*ps->p) {
  case '{':
    v->type = SNAP__J_OBJ;
    rc = parse_members(ps, path, depth, v);
    break;
  case '[':
    v->type = SNAP__J_ARR;
    rc = parse_elements(ps, path, depth, v);
    break;
  case '"':
    v->type = SNAP__J_STR;
    rc = parse_string(ps, path, &v->str);
    break;
  case 't':
    rc = literal(ps, path, "true", v, SNAP__J_TRUE);
    break;
  case 'f':
    rc = literal(ps, path, "false", v, SNAP__J_FALSE);
    break;
  case 'n':
    rc = literal(ps, path, "null", v, SNAP__J_NULL);
    break;
  default:
    v->type = SNAP__J_NUM;
    rc = parse_number(ps, path);
    break;
  }
  v->src_len = (size_t)(ps->p - v->src);
  return rc;
}

int snap__conf_parse(snap_conf **out, const char *text, const char *prefix) {
  *out = NULL;
  if (prefix == NULL)
    prefix = "";
  snap__jdoc *doc = snap_calloc(1, sizeof *doc);
  snap__jv *root = snap_calloc(1, sizeof *root);
  if (doc == NULL || root == NULL) {
    snap_free(doc);
    snap_free(root);
    return snap_error_set(SNAP_ENOMEM, "%s: out of memory reading the configuration",
                          shown(prefix));
  }
  doc->root = root;
  root->type = SNAP__J_OBJ;
  int rc = SNAP_OK;
  if (text != NULL) {
    parser ps = {text, text, text + strlen(text)};
    rc = parse_value(&ps, prefix, 0, root);
    if (rc == SNAP_OK) {
      skip_ws(&ps);
      if (ps.p != ps.end)
        rc = syntax(&ps, prefix, "unexpected bytes after the end of the document");
    }
    if (rc == SNAP_OK && root->type != SNAP__J_OBJ)
      rc = snap_error_set(SNAP_ECONFIG, "%s: must be a JSON object", shown(prefix));
  }
  snap_conf *c = &doc->reader;
  c->doc = doc;
  c->obj = root;
  snprintf(c->path, sizeof c->path, "%s", prefix);
  if (rc != SNAP_OK) {
    snap__conf_free(c);
    return rc;
  }
  *out = c;
  return SNAP_OK;
}

void snap__conf_free(snap_conf *root) {
  if (root == NULL)
    return;
  snap__jdoc *doc = root->doc;
  free_values(doc->root);
  snap_free(doc);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
/* ------------------------------------------------------------------------ */

static int verror(snap_conf *c, const char *key, const char *fmt, va_list ap) {
  if (c->doc->err != SNAP_OK)
    return c->doc->err; /* the first error's message stands */
  char path[SNAP__CONF_PATH_MAX];
  if (key != NULL)
    snap__conf_join(path, sizeof path, c->path, key);
  else
    snprintf(path, sizeof path, "%s", c->path);
  char msg[384];
  if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
    msg[0] = '\0';
  return c->doc->err = snap_error_set(SNAP_ECONFIG, "%s: %s", shown(path), msg);
}

int snap__conf_error(snap_conf *c, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = verror(c, key, fmt, ap);
  va_end(ap);
  return rc;
}

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
    if (flags & SNAP_CONF_REQUIRED)
      return snap__conf_error(c, key, "missing (this key is required)");
    return 0;
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
      join_index(item, sizeof item, key, i);
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
  join_index(item, sizeof item, key, i);
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
      join_index(sub, sizeof sub, path, i);
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

int snap__conf_done(snap_conf *c) {
  if (c->doc->err != SNAP_OK)
    return c->doc->err;
  return check_unread(c, c->obj, c->path);
}

static void hand_on(snap__jv *m) {
  m->used = true;
  m->opaque = true;
}

const char *snap__conf_raw(snap_conf *c, const char *key, size_t *len) {
  snap__jv *m = find(c, key);
  if (m == NULL)
    return NULL;
  const char *src = m->src;
  *len = m->src_len;
  hand_on(m);
  return src;
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

/* ------------------------------------------------------------------------ */
/* The reader as host services for backends                                  */
/* ------------------------------------------------------------------------ */

static int host_conf_open(snap_conf **out, const char *config_json) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "conf_open: out is NULL");
  return snap__conf_parse(out, config_json, backend_prefix);
}

static int host_conf_error(snap_conf *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int host_conf_error(snap_conf *c, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = verror(c, key, fmt, ap);
  va_end(ap);
  return rc;
}

static int host_conf_finish(snap_conf *c) {
  if (c == NULL)
    return SNAP_OK;
  int rc = snap__conf_done(c);
  snap__conf_free(c);
  return rc;
}

void snap__conf_host_fill(snap_host *h) {
  h->conf_open = host_conf_open;
  h->conf_string = snap__conf_str;
  h->conf_int = snap__conf_int;
  h->conf_bool = snap__conf_bool;
  h->conf_enum = snap__conf_enum;
  h->conf_strings = snap__conf_strs;
  h->conf_error = host_conf_error;
  h->conf_finish = host_conf_finish;
}
