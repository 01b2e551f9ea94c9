/* snapctl import's reading of one JSON Lines line (the format export writes,
 * docs/OPERATIONS.md): strict keys, exact integers, base64 or JSON states,
 * the state validated in its format. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "import_line.h"

/* Integers in a JSON document are doubles: 2^53 is the last exact one. */
#define JSON_INT_MAX 9007199254740992.0

void ctl_import_rec_dispose(jl_rec *r) {
  free(r->pid);
  free(r->state);
  free(r->manifest);
  free(r->metadata);
  free(r->dict_name);
  free(r->dict);
  free(r->part);
  memset(r, 0, sizeof *r);
}

static bool get_int(const cJSON *v, int64_t *out) {
  if (!cJSON_IsNumber(v))
    return false;
  double d = v->valuedouble;
  if (!(d >= 0 && d <= JSON_INT_MAX) || d != (double)(int64_t)d)
    return false;
  *out = (int64_t)d;
  return true;
}

bool ctl_import_bad(char *err, size_t errn, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errn, fmt, ap);
  va_end(ap);
  return false;
}

/* The line as one JSON object with nothing after it; NULL when it is not. */
static cJSON *parse_object(const char *line, size_t len, char *err, size_t errn) {
  if (memchr(line, '\0', len) != NULL) {
    ctl_import_bad(err, errn, "a NUL byte inside the line");
    return NULL;
  }
  const char *end = NULL;
  cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, false);
  if (o == NULL || !cJSON_IsObject(o)) {
    ctl_import_bad(err, errn, "not a JSON object%s", o ? "" : " (malformed JSON)");
    cJSON_Delete(o);
    return NULL;
  }
  for (const char *p = end; p < line + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r') {
      ctl_import_bad(err, errn, "bytes after the JSON object");
      cJSON_Delete(o);
      return NULL;
    }
  return o;
}

enum {
  K_PID,
  K_SEQ,
  K_TIMESTAMP,
  K_FORMAT,
  K_STATE,
  K_STATE_BASE64,
  K_MANIFEST,
  K_METADATA_BASE64,
  K_STREAM_LENGTH,
  NKEYS
};

/* The object's members by key; an unknown or repeated key makes the line bad. */
static bool find_keys(const cJSON *o, const cJSON *f[NKEYS], char *err, size_t errn) {
  static const char *const keys[NKEYS] = {
      "pid",          "seq",      "timestamp",       "format",       "state",
      "state_base64", "manifest", "metadata_base64", "stream_length"};
  for (const cJSON *it = o->child; it; it = it->next) {
    size_t k = 0;
    while (k < NKEYS && strcmp(it->string, keys[k]) != 0)
      k++;
    if (k == NKEYS)
      return ctl_import_bad(err, errn, "unknown key '%s'", it->string);
    if (f[k] != NULL)
      return ctl_import_bad(err, errn, "duplicate key '%s'", it->string);
    f[k] = it;
  }
  return true;
}

/* "pid" (checked only), "seq", "timestamp" and "format". */
static bool read_header(const cJSON *const f[NKEYS], jl_rec *r, char *err, size_t errn) {
  if (!cJSON_IsString(f[K_PID]) || snap_pid_check(f[K_PID]->valuestring) != SNAP_OK)
    return ctl_import_bad(err, errn, "\"pid\" missing or not a valid persistence id");
  if (!get_int(f[K_SEQ], &r->seq))
    return ctl_import_bad(err, errn, "\"seq\" missing or not an integer in [0, 2^53]");
  if (!get_int(f[K_TIMESTAMP], &r->timestamp))
    return ctl_import_bad(err, errn, "\"timestamp\" missing or not an integer in [0, 2^53]");
  const char *format = cJSON_IsString(f[K_FORMAT]) ? f[K_FORMAT]->valuestring : "";
  if (strcmp(format, "json") == 0)
    r->format = SNAP_FORMAT_JSON;
  else if (strcmp(format, "msgpack") == 0)
    r->format = SNAP_FORMAT_MSGPACK;
  else
    return ctl_import_bad(err, errn, "\"format\" missing or not \"json\" or \"msgpack\"");
  return true;
}

/* The bytes a base64 string encodes, into a new `*out`; false when it is not
 * valid base64 or memory runs out. */
static bool from_base64(const char *text, uint8_t **out, size_t *len) {
  size_t blen = strlen(text), cap = blen / 4 * 3 + 3;
  if ((*out = malloc(cap)) == NULL)
    return false;
  return sodium_base642bin(*out, cap, text, blen, NULL, len, NULL,
                           sodium_base64_VARIANT_ORIGINAL) == 0;
}

/* The state's bytes: the compact form of "state" (a JSON state only), or
 * what "state_base64" encodes. */
static bool read_state(const cJSON *state, const cJSON *b64, jl_rec *r, char *err, size_t errn) {
  if ((state != NULL) == (b64 != NULL))
    return ctl_import_bad(err, errn, "exactly one of \"state\" and \"state_base64\" is needed");
  if (state != NULL) {
    if (r->format != SNAP_FORMAT_JSON)
      return ctl_import_bad(err, errn, "a msgpack state must be given as \"state_base64\"");
    char *text = cJSON_PrintUnformatted(state);
    r->len = text ? strlen(text) : 0;
    r->state = text ? malloc(r->len + 1) : NULL;
    if (r->state)
      memcpy(r->state, text, r->len);
    cJSON_free(text);
    return r->state != NULL || ctl_import_bad(err, errn, "out of memory");
  }
  if (!cJSON_IsString(b64))
    return ctl_import_bad(err, errn, "\"state_base64\" is not a string");
  if (!from_base64(b64->valuestring, &r->state, &r->len))
    return ctl_import_bad(err, errn, "\"state_base64\" is not valid base64");
  return true;
}

/* The first line of a streamed record: "stream_length" (>= 1) and no state. */
static bool read_stream_length(const cJSON *const f[NKEYS], jl_rec *r, char *err, size_t errn) {
  int64_t n = 0;
  if (f[K_STATE] != NULL || f[K_STATE_BASE64] != NULL)
    return ctl_import_bad(err, errn,
                          "a streamed record (\"stream_length\") has its state in part lines");
  if (!get_int(f[K_STREAM_LENGTH], &n) || n < 1)
    return ctl_import_bad(err, errn, "\"stream_length\" is not an integer in [1, 2^53]");
  r->stream_len = (uint64_t)n;
  return true;
}

/* A part line: exactly "part_base64", base64 of 1 to PART_MAX bytes. */
static bool parse_part(const cJSON *o, jl_rec *r, char *err, size_t errn) {
  const cJSON *b64 = o->child;
  if (b64 == NULL || b64->next != NULL || strcmp(b64->string, "part_base64") != 0)
    return ctl_import_bad(err, errn, "a part line holds \"part_base64\" and nothing else");
  if (!cJSON_IsString(b64) || strlen(b64->valuestring) > PART_MAX / 3 * 4 + 4 ||
      !from_base64(b64->valuestring, &r->part, &r->part_len) || r->part_len == 0 ||
      r->part_len > PART_MAX)
    return ctl_import_bad(err, errn, "\"part_base64\" is not base64 of 1 to %u bytes", PART_MAX);
  r->is_part = true;
  return true;
}

/* The optional "manifest" and "metadata_base64" (what export writes for a
 * body that states them). */
static bool read_typing(const cJSON *man, const cJSON *meta, jl_rec *r, char *err, size_t errn) {
  if (man != NULL) {
    if (!cJSON_IsString(man) || snap_manifest_check(man->valuestring) != SNAP_OK)
      return ctl_import_bad(err, errn,
                            "\"manifest\" is not a valid manifest (UTF-8, 1 to %u bytes)",
                            SNAP_MANIFEST_MAX);
    if ((r->manifest = strdup(man->valuestring)) == NULL)
      return ctl_import_bad(err, errn, "out of memory");
  }
  if (meta == NULL)
    return true;
  if (!cJSON_IsString(meta))
    return ctl_import_bad(err, errn, "\"metadata_base64\" is not a string");
  if (!from_base64(meta->valuestring, &r->metadata, &r->metadata_len) || r->metadata_len == 0 ||
      r->metadata_len > SNAP_METADATA_MAX)
    return ctl_import_bad(err, errn, "\"metadata_base64\" is not base64 of 1 to %u bytes",
                          SNAP_METADATA_MAX);
  return true;
}

/* A dictionary line: exactly "dictionary" (its name), "id" and
 * "bytes_base64", the id being the one the bytes have. */
static bool parse_dictionary(const cJSON *o, jl_rec *r, char *err, size_t errn) {
  const cJSON *name = NULL, *id = NULL, *b64 = NULL;
  for (const cJSON *it = o->child; it; it = it->next) {
    const cJSON **slot = strcmp(it->string, "dictionary") == 0     ? &name
                         : strcmp(it->string, "id") == 0           ? &id
                         : strcmp(it->string, "bytes_base64") == 0 ? &b64
                                                                   : NULL;
    if (slot == NULL)
      return ctl_import_bad(err, errn, "unknown key '%s' in a dictionary line", it->string);
    if (*slot != NULL)
      return ctl_import_bad(err, errn, "duplicate key '%s'", it->string);
    *slot = it;
  }
  int64_t want = 0;
  uint32_t have = 0;
  if (!cJSON_IsString(name) || name->valuestring[0] == 0)
    return ctl_import_bad(err, errn, "\"dictionary\" is not a non-empty name");
  if (!get_int(id, &want) || want < 1 || want > UINT32_MAX)
    return ctl_import_bad(err, errn, "\"id\" missing or not an integer in [1, 2^32)");
  if (!cJSON_IsString(b64) || !from_base64(b64->valuestring, &r->dict, &r->dict_len) ||
      r->dict_len < SNAP_DICT_MIN || r->dict_len > SNAP_DICT_MAX)
    return ctl_import_bad(err, errn, "\"bytes_base64\" is not base64 of %u to %u bytes",
                          SNAP_DICT_MIN, SNAP_DICT_MAX);
  if (snap_dict_id_of(r->dict, r->dict_len, &have) != SNAP_OK || have != (uint32_t)want)
    return ctl_import_bad(err, errn, "\"id\" %" PRId64 " is not the id of the bytes (%" PRIu32 ")",
                          want, have);
  if ((r->dict_name = strdup(name->valuestring)) == NULL)
    return ctl_import_bad(err, errn, "out of memory");
  return true;
}

bool ctl_import_parse_line(const char *line, size_t len, jl_rec *r, char *err, size_t errn) {
  memset(r, 0, sizeof *r);
  cJSON *o = parse_object(line, len, err, errn);
  if (o == NULL)
    return false;
  bool part = cJSON_GetObjectItemCaseSensitive(o, "part_base64") != NULL;
  if (part || cJSON_GetObjectItemCaseSensitive(o, "dictionary") != NULL) {
    bool ok = part ? parse_part(o, r, err, errn) : parse_dictionary(o, r, err, errn);
    cJSON_Delete(o);
    if (!ok)
      ctl_import_rec_dispose(r);
    return ok;
  }
  const cJSON *f[NKEYS] = {0};
  bool ok = find_keys(o, f, err, errn) && read_header(f, r, err, errn) &&
            (f[K_STREAM_LENGTH] ? read_stream_length(f, r, err, errn)
                                : read_state(f[K_STATE], f[K_STATE_BASE64], r, err, errn)) &&
            read_typing(f[K_MANIFEST], f[K_METADATA_BASE64], r, err, errn);
  /* A streamed state is validated across its parts (stream_step()). */
  if (ok && r->stream_len == 0 && snap_payload_validate(r->format, r->state, r->len) != SNAP_OK)
    ok = ctl_import_bad(err, errn, "the state is not valid %s: %s", ctl_format_name(r->format),
                        snap_error_message());
  if (ok && (r->pid = strdup(f[K_PID]->valuestring)) == NULL)
    ok = ctl_import_bad(err, errn, "out of memory");
  cJSON_Delete(o);
  if (!ok)
    ctl_import_rec_dispose(r);
  return ok;
}
