/*
 * Payload validation and the JSON view of a snapshot. Input: one byte whose
 * low bit picks the format (JSON or msgpack), then the state. Both
 * snap_payload_validate() and snap_snapshot_to_json() must answer SNAP_OK or
 * an error. A tree they produce must print to JSON that validates, and a
 * non-empty JSON state that validates must convert to a tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "snap/store.h"
#include "snap/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  snap_format fmt = (data[0] & 1) ? SNAP_FORMAT_MSGPACK : SNAP_FORMAT_JSON;
  const uint8_t *state = data + 1;
  size_t len = size - 1;

  int vrc = snap_payload_validate(fmt, state, len);
  FUZZ_CHECK(vrc == SNAP_OK || vrc == SNAP_EFORMAT || vrc == SNAP_ENOMEM || vrc == SNAP_ETOOBIG,
             "validate returned %d", vrc);
  /* The incremental validator (snap/stream.h) gives the same verdict over
   * pieces cut where the input's first byte says. */
  snap_payload_validator *v;
  if (snap_payload_validator_new(&v, fmt) == SNAP_OK) {
    const size_t step = 1 + (data[0] >> 1);
    int irc = SNAP_OK;
    for (size_t at = 0; at < len && irc == SNAP_OK; at += step)
      irc = snap_payload_validator_push(v, state + at, len - at < step ? len - at : step);
    if (irc == SNAP_OK)
      irc = snap_payload_validator_finish(v);
    snap_payload_validator_free(v);
    FUZZ_CHECK(vrc == SNAP_ENOMEM || irc == vrc, "incremental %d, whole %d", irc, vrc);
  }

  /* A snapshot filled by hand, as a load would return it: the state is
   * NUL-terminated one byte past its length. */
  uint8_t *copy = malloc(len + 1);
  if (!copy)
    return 0;
  if (len)
    memcpy(copy, state, len);
  copy[len] = 0;
  char pid[] = "account-42";
  snap_snapshot s;
  memset(&s, 0, sizeof s);
  s.pid = pid;
  s.seq = 7;
  s.format = fmt;
  s.data = copy;
  s.len = len;
  cJSON *tree = NULL;
  int jrc = snap_snapshot_to_json(&s, &tree);
  FUZZ_CHECK(fuzz_known_code(jrc), "to_json returned %d", jrc);
  FUZZ_CHECK((jrc == SNAP_OK) == (tree != NULL), "to_json returned %d with tree %p", jrc,
             (void *)tree);
  /* The empty state is valid but is no JSON value: it has no tree. */
  if (fmt == SNAP_FORMAT_JSON && vrc == SNAP_OK && len > 0)
    FUZZ_CHECK(jrc == SNAP_OK || jrc == SNAP_ENOMEM,
               "a JSON state that validates does not convert (%d)", jrc);
  if (tree) {
    char *printed = cJSON_PrintUnformatted(tree);
    if (printed) {
      int prc = snap_payload_validate(SNAP_FORMAT_JSON, printed, strlen(printed));
      FUZZ_CHECK(prc == SNAP_OK || prc == SNAP_ENOMEM,
                 "the tree printed to JSON that does not validate (%d): %.200s", prc, printed);
      cJSON_free(printed);
    }
    cJSON_Delete(tree);
  }
  free(copy);
  return 0;
}
