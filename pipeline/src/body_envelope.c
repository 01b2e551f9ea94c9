/* What the store reads of an envelope body before it decodes it: the shred
 * unit and the key generation its frame names (docs/FORMAT.md, "Envelope
 * key reference"), so that it can fetch the unit's data key first. */
#include <string.h>

#include "snap/pipeline_layer.h"
#include "frame.h"

int snap__body_envelope_ref(const char *pid, int64_t seq, const void *body, size_t len,
                            snap__envelope_ref *ref) {
  where w = {"decode", pid, seq};
  frame f;
  /* A header that does not parse is the decoder's to report, with the
   * keyed reader's rules (body_decode.c), which the caller runs next: here
   * it is simply not a reference. */
  if (body == NULL || snap__frame_parse(&w, body, len, &f) != SNAP_OK)
    return 0;
  const frame_field *k = &f.field[FIELD_ENVELOPE];
  if (!k->present)
    return 0;
  ref->generation = f.key_version;
  ref->unit = k->len ? (const char *)k->val : pid;
  ref->unit_len = k->len ? k->len : strlen(pid);
  return 1;
}
