/* The configuration reader's parser: strict JSON (RFC 8259) into a tree of
 * snap__jv values, refusing what the reader's rules refuse (docs/PLUGIN.md,
 * "Reading configuration").
 *
 * Its own small parser rather than cJSON, because the rules need what cJSON
 * throws away: which keys repeat (cJSON keeps both and its lookups take the
 * first), whether a string held "\u0000" (cJSON decodes it and the C string
 * ends there), where the document ends (cJSON_Parse ignores what follows) and
 * the digits of a number (its double turns 2^63 + 1 and -0 into other
 * values). Every refusal is SNAP_ECONFIG naming the full key path; a syntax
 * error also says where, as line:column. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf_internal.h"
#include "snap/error.h"

/* Nesting deeper than any configuration needs is refused, not recursed into. */
#define MAX_DEPTH 64

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct parser {
  const char *start, *p, *end;
} parser;

static int out_of_memory(const char *path) {
  return snap_error_set(SNAP_ENOMEM, "%s: out of memory reading the configuration",
                        snap__conf_shown(path));
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int syntax(const parser *ps, const char *path, const char *what) {
  size_t line = 1, col = 1;
  for (const char *q = ps->start; q < ps->p; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else if (((unsigned char)*q & 0xC0) != 0x80) {
      col++; /* columns count characters, not UTF-8 continuation bytes */
    }
  }
  return snap_error_set(SNAP_ECONFIG, "%s: not valid JSON at line %zu, column %zu (byte %zu): %s",
                        snap__conf_shown(path), line, col, (size_t)(ps->p - ps->start), what);
}

/* Refuses what was found where `expected` was: the usual slips of a hand
 * written document (a comment, a comma before a closing bracket) by name. */
static int unexpected(const parser *ps, const char *path, const char *expected) {
  if (ps->p < ps->end && *ps->p == '/')
    return syntax(ps, path, "comments (// or /* */) are not allowed in JSON");
  return syntax(ps, path, expected);
}

/* After a ',' in an object or array: a closing bracket next is a trailing
 * comma, reported at the comma. */
static int trailing_comma(parser *ps, const char *path, char close) {
  const char *comma = ps->p - 1;
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != close)
    return SNAP_OK;
  ps->p = comma;
  return syntax(ps, path, close == '}' ? "trailing comma before '}' (JSON allows none)"
                                       : "trailing comma before ']' (JSON allows none)");
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

/* Decodes the escape at `*qp` (on its backslash) into `d + *n`, advancing
 * both; ps->p stays on the backslash for messages. */
static int decode_escape(parser *ps, const char *path, const char **qp, char *d, size_t *n) {
  const char *q = *qp;
  if (q + 1 >= ps->end)
    return syntax(ps, path, "unterminated string");
  char e = q[1];
  const char *simple = strchr("\"\\/bfnrt", e);
  if (e != '\0' && simple != NULL) {
    static const char to[] = "\"\\/\b\f\n\r\t";
    d[(*n)++] = to[simple - "\"\\/bfnrt"];
    *qp = q + 2;
    return SNAP_OK;
  }
  unsigned cp;
  if (e != 'u' || ps->end - q < 6 || hex4(q + 2, &cp) != 0)
    return syntax(ps, path, "bad escape in a string");
  q += 6;
  if (cp == 0)
    /* Decoded, it would end the C string there: "a.db\u0000x" would read as
     * "a.db", and two contexts differing after it would become one. */
    return snap_error_set(SNAP_ECONFIG, "%s: a string must not contain NUL (\\u0000)",
                          snap__conf_shown(path));
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    return syntax(ps, path, "unpaired surrogate escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    unsigned lo;
    if (ps->end - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, &lo) != 0 || lo < 0xDC00 ||
        lo > 0xDFFF)
      return syntax(ps, path, "unpaired surrogate escape");
    q += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  *n += put_utf8(d + *n, cp);
  *qp = q;
  return SNAP_OK;
}

/* Decodes the characters after the opening quote into `d` up to the closing
 * quote; ps->p ends after it. */
static int decode_string(parser *ps, const char *path, char *d, size_t *n) {
  const char *q = ps->p + 1;
  for (;;) {
    ps->p = q;
    if (q >= ps->end)
      return syntax(ps, path, "unterminated string");
    unsigned char c = (unsigned char)*q;
    if (c == '"') {
      ps->p = q + 1;
      return SNAP_OK;
    }
    if (c < 0x20)
      return syntax(ps, path, "control character inside a string (escape it)");
    if (c >= 0x80) {
      size_t len = utf8_len((const unsigned char *)q, (const unsigned char *)ps->end);
      if (len == 0)
        return snap_error_set(SNAP_ECONFIG, "%s: the string is not valid UTF-8 (byte %zu)",
                              snap__conf_shown(path), (size_t)(q - ps->start));
      memcpy(d + *n, q, len);
      *n += len;
      q += len;
    } else if (c != '\\') {
      d[(*n)++] = (char)c;
      q++;
    } else {
      int rc = decode_escape(ps, path, &q, d, n);
      if (rc != SNAP_OK)
        return rc;
    }
  }
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
    return out_of_memory(path);
  size_t n = 0;
  int rc = decode_string(ps, path, d, &n);
  if (rc != SNAP_OK) {
    snap_free(d);
    return rc;
  }
  d[n] = '\0';
  *out = d;
  return SNAP_OK;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *ps, const char *path) {
  const char *q = ps->p;
  if (q < ps->end && *q == '-')
    q++;
  if (q >= ps->end || !is_digit(*q))
    return unexpected(ps, path, "expected a value");
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

/* The names of one object's members seen so far, for the duplicate check:
 * open addressing over a power-of-two table, so that the check stays linear
 * (a document of 80,000 members is read at once). */
typedef struct keyset {
  const snap__jv **slot;
  size_t cap, n;
} keyset;

static uint64_t key_hash(const char *s) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

/* Adds `m`; 1 when a member of that name was there already, 0, or ENOMEM. */
static int keyset_add(keyset *ks, const snap__jv *m) {
  if (2 * (ks->n + 1) > ks->cap) {
    size_t cap = ks->cap ? 2 * ks->cap : 64;
    const snap__jv **slot = snap_calloc(cap, sizeof *slot);
    if (slot == NULL)
      return SNAP_ENOMEM;
    for (size_t i = 0; i < ks->cap; i++) {
      if (ks->slot[i] == NULL)
        continue;
      size_t j = key_hash(ks->slot[i]->key) & (cap - 1);
      while (slot[j] != NULL)
        j = (j + 1) & (cap - 1);
      slot[j] = ks->slot[i];
    }
    snap_free(ks->slot);
    ks->slot = slot;
    ks->cap = cap;
  }
  size_t j = key_hash(m->key) & (ks->cap - 1);
  for (; ks->slot[j] != NULL; j = (j + 1) & (ks->cap - 1))
    if (strcmp(ks->slot[j]->key, m->key) == 0)
      return 1;
  ks->slot[j] = m;
  ks->n++;
  return 0;
}

/* One "key": value of the object `v`, appended at `*tail`. */
static int parse_member(parser *ps, const char *path, int depth, snap__jv *v, snap__jv ***tail,
                        keyset *ks) {
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '"')
    return unexpected(ps, path, "expected a key in quotes");
  snap__jv *m = snap_calloc(1, sizeof *m);
  if (m == NULL)
    return out_of_memory(path);
  **tail = m;
  *tail = &m->next;
  v->n++;
  m->key_src = ps->p;
  int rc = parse_string(ps, path, &m->key);
  if (rc != SNAP_OK)
    return rc;
  m->key_src_len = (size_t)(ps->p - m->key_src);
  char sub[SNAP__CONF_PATH_MAX];
  snap__conf_join(sub, sizeof sub, path, m->key);
  int dup = keyset_add(ks, m);
  if (dup == SNAP_ENOMEM)
    return out_of_memory(path);
  if (dup)
    return snap_error_set(SNAP_ECONFIG, "%s: duplicate key", sub);
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != ':')
    return unexpected(ps, sub, "expected ':' after the key");
  ps->p++;
  return parse_value(ps, sub, depth + 1, m);
}

static int parse_members(parser *ps, const char *path, int depth, snap__jv *v) {
  ps->p++; /* '{' */
  snap__jv **tail = &v->child;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
    return SNAP_OK;
  }
  keyset ks = {NULL, 0, 0};
  int rc;
  for (;;) {
    if ((rc = parse_member(ps, path, depth, v, &tail, &ks)) != SNAP_OK)
      break;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      if ((rc = trailing_comma(ps, path, '}')) != SNAP_OK)
        break;
      continue;
    }
    if (ps->p < ps->end && *ps->p == '}') {
      ps->p++;
      break;
    }
    rc = unexpected(ps, path, "expected ',' or '}'");
    break;
  }
  snap_free(ks.slot);
  return rc;
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
      return out_of_memory(path);
    *tail = e;
    tail = &e->next;
    char sub[SNAP__CONF_PATH_MAX];
    snap__conf_join_index(sub, sizeof sub, path, v->n++);
    int rc = parse_value(ps, sub, depth + 1, e);
    if (rc != SNAP_OK)
      return rc;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      if ((rc = trailing_comma(ps, path, ']')) != SNAP_OK)
        return rc;
      continue;
    }
    if (ps->p < ps->end && *ps->p == ']') {
      ps->p++;
      return SNAP_OK;
    }
    return unexpected(ps, path, "expected ',' or ']'");
  }
}

static int literal(parser *ps, const char *path, const char *word, snap__jv *v,
                   enum snap__jtype t) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return unexpected(ps, path, "expected a value");
  ps->p += n;
  v->type = t;
  return SNAP_OK;
}

static int parse_value(parser *ps, const char *path, int depth, snap__jv *v) {
  if (depth > MAX_DEPTH)
    return snap_error_set(SNAP_ECONFIG, "%s: nested deeper than %d levels", snap__conf_shown(path),
                          MAX_DEPTH);
  skip_ws(ps);
  if (ps->p >= ps->end)
    return unexpected(ps, path, "expected a value");
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
    return out_of_memory(prefix);
  }
  doc->root = root;
  root->type = SNAP__J_OBJ;
  doc->empty.type = SNAP__J_OBJ;
  int rc = SNAP_OK;
  if (text != NULL) {
    parser ps = {text, text, text + strlen(text)};
    rc = parse_value(&ps, prefix, 0, root);
    if (rc == SNAP_OK) {
      skip_ws(&ps);
      if (ps.p != ps.end)
        rc = unexpected(&ps, prefix, "unexpected bytes after the end of the document");
    }
    if (rc == SNAP_OK && root->type != SNAP__J_OBJ)
      rc = snap_error_set(SNAP_ECONFIG, "%s: must be a JSON object", snap__conf_shown(prefix));
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
