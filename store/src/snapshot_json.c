/* A JSON view of a snapshot (snap_snapshot_to_json), and the msgpack states
 * converted for it, for callers that want one tree type whatever
 * format a snapshot was stored in. */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "snap/error.h"
#include "snap/pipeline.h"
#include "store_internal.h"

/* Whether a msgpack string can become a JSON string unchanged: valid UTF-8
 * (JSON text is UTF-8, and the JSON validator refuses anything else) and no
 * NUL, which cJSON's C strings would silently cut the string at. */
static bool json_string_ok(const char *p, uint32_t n) {
  const uint8_t *s = (const uint8_t *)p;
  for (uint32_t i = 0; i < n;) {
    uint8_t c = s[i];
    if (c == 0)
      return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    uint32_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte: no overlongs, surrogates */
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      lo = c == 0xE0 ? 0xA0 : 0x80;
      hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      lo = c == 0xF0 ? 0x90 : 0x80;
      hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
      return false;
    for (uint32_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xC0) != 0x80)
        return false;
    i += need + 1;
  }
  return true;
}

/* A NUL-terminated copy of a msgpack str (`what` it is, for messages), or
 * NULL with `*rc` set; free it with snap_free(). */
static char *copy_str(const char *ptr, uint32_t size, const char *what, int *rc) {
  if (!json_string_ok(ptr, size)) {
    *rc = snap_error_set(SNAP_EFORMAT, "msgpack to JSON: %s is not valid UTF-8 or contains NUL",
                         what);
    return NULL;
  }
  char *tmp = snap_malloc((size_t)size + 1);
  if (tmp == NULL) {
    *rc = snap_error_set(SNAP_ENOMEM, "msgpack to JSON: out of memory");
    return NULL;
  }
  if (size > 0) /* an empty str may have a NULL ptr */
    memcpy(tmp, ptr, size);
  tmp[size] = '\0';
  return tmp;
}

static cJSON *convert(const msgpack_object *o, int depth, int *rc);

static cJSON *convert_array(const msgpack_object *o, int depth, int *rc) {
  cJSON *j = cJSON_CreateArray();
  for (uint32_t i = 0; j != NULL && i < o->via.array.size; i++) {
    cJSON *item = convert(&o->via.array.ptr[i], depth + 1, rc);
    if (item == NULL) {
      cJSON_Delete(j);
      return NULL;
    }
    cJSON_AddItemToArray(j, item);
  }
  return j;
}

static cJSON *convert_map(const msgpack_object *o, int depth, int *rc) {
  cJSON *j = cJSON_CreateObject();
  for (uint32_t i = 0; j != NULL && i < o->via.map.size; i++) {
    const msgpack_object_kv *kv = &o->via.map.ptr[i];
    if (kv->key.type != MSGPACK_OBJECT_STR) {
      cJSON_Delete(j);
      *rc = snap_error_set(SNAP_EFORMAT, "msgpack to JSON: a map key is not a string");
      return NULL;
    }
    char *key = copy_str(kv->key.via.str.ptr, kv->key.via.str.size, "a map key", rc);
    cJSON *val = key != NULL ? convert(&kv->val, depth + 1, rc) : NULL;
    if (val == NULL) {
      snap_free(key);
      cJSON_Delete(j);
      return NULL;
    }
    cJSON_AddItemToObject(j, key, val);
    snap_free(key);
  }
  return j;
}

/* Builds the cJSON counterpart of `o`; on failure returns NULL and sets `*rc`. */
static cJSON *convert(const msgpack_object *o, int depth, int *rc) {
  if (depth > SNAP__MSGPACK_MAX_DEPTH) {
    *rc = snap_error_set(SNAP_EFORMAT, "msgpack state nests deeper than %d levels",
                         SNAP__MSGPACK_MAX_DEPTH);
    return NULL;
  }
  cJSON *j = NULL;
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    j = cJSON_CreateNull();
    break;
  case MSGPACK_OBJECT_BOOLEAN:
    j = cJSON_CreateBool(o->via.boolean);
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    /* JSON numbers are doubles here: integers beyond 2^53 lose precision. */
    j = cJSON_CreateNumber((double)o->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    j = cJSON_CreateNumber((double)o->via.i64);
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    j = cJSON_CreateNumber(o->via.f64);
    break;
  case MSGPACK_OBJECT_STR: {
    char *tmp = copy_str(o->via.str.ptr, o->via.str.size, "a string", rc);
    if (tmp == NULL)
      return NULL;
    j = cJSON_CreateString(tmp);
    snap_free(tmp);
    break;
  }
  case MSGPACK_OBJECT_ARRAY:
    if ((j = convert_array(o, depth, rc)) == NULL && *rc != SNAP_OK)
      return NULL;
    break;
  case MSGPACK_OBJECT_MAP:
    if ((j = convert_map(o, depth, rc)) == NULL && *rc != SNAP_OK)
      return NULL;
    break;
  case MSGPACK_OBJECT_BIN:
  case MSGPACK_OBJECT_EXT:
  default:
    *rc = snap_error_set(SNAP_EFORMAT,
                         "msgpack to JSON: binary and ext values have no JSON counterpart");
    return NULL;
  }
  if (j == NULL)
    *rc = snap_error_set(SNAP_ENOMEM, "msgpack to JSON: out of memory");
  return j;
}

int snap__msgpack_to_json(const uint8_t *data, size_t len, struct cJSON **out) {
  /* msgpack-c reserves room for every element a container claims before
   * reading them: 13 bytes claiming 3.6 billion elements asked for 128 GiB.
   * The validator's structural pass refuses lengths the bytes cannot hold,
   * without allocating, so it runs first. */
  int vrc = len > 0 ? snap_payload_validate(SNAP_FORMAT_MSGPACK, data, len) : SNAP_OK;
  if (vrc != SNAP_OK)
    return vrc;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)data, len, &off);
  int rc = SNAP_OK;
  if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
    rc = snap_error_set(SNAP_ENOMEM, "msgpack to JSON: out of memory");
  } else if (r != MSGPACK_UNPACK_SUCCESS) {
    rc = snap_error_set(SNAP_EFORMAT, "msgpack to JSON: the state is not one msgpack value");
  } else if (off != len) {
    rc = snap_error_set(SNAP_EFORMAT,
                        "msgpack to JSON: %zu trailing bytes after the value at "
                        "byte %zu",
                        len - off, off);
  } else {
    *out = convert(&u.data, 0, &rc);
  }
  msgpack_unpacked_destroy(&u);
  return rc;
}

int snap_snapshot_to_json(const snap_snapshot *s, struct cJSON **out) {
  if (out == NULL)
    return snap_error_set(SNAP_EINVAL, "snapshot_to_json: out is NULL");
  *out = NULL;
  if (s == NULL || (s->data == NULL && s->len > 0))
    return snap_error_set(SNAP_EINVAL, "snapshot_to_json: snapshot is NULL");
  if (s->format == SNAP_FORMAT_MSGPACK)
    return snap__msgpack_to_json(s->data, s->len, out);
  if (s->format != SNAP_FORMAT_JSON)
    return snap_error_set(SNAP_EFORMAT, "snapshot_to_json: unknown format %d", (int)s->format);
  /* cJSON alone takes invalid UTF-8 and ignores what follows the value; the
   * validator refuses both, so a tree always stands for a valid state. */
  int vrc = snap_payload_validate(SNAP_FORMAT_JSON, s->data, s->len);
  if (vrc != SNAP_OK)
    return snap_error_set(vrc, "snapshot pid '%s' seq %" PRId64 ": %s", s->pid ? s->pid : "",
                          s->seq, snap_error_message());
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts((const char *)s->data, s->len, &end, false);
  if (j == NULL)
    return snap_error_set(
        SNAP_EFORMAT, "snapshot pid '%s' seq %" PRId64 ": state is not valid JSON (near byte %ld)",
        s->pid ? s->pid : "", s->seq, end ? (long)(end - (const char *)s->data) : -1L);
  *out = j;
  return SNAP_OK;
}
