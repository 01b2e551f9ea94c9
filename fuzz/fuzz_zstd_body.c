/*
 * Arbitrary bytes decoded as a zstd body (frame version 2, docs/FORMAT.md):
 * the codec and dictionary fields, the zstd frame, dictionaries present,
 * missing and swapped. Input: one byte choosing what the reader's dictionary
 * source does (bit 0: it holds dictionary A, bit 1: dictionary B, bit 2: it
 * answers every id with B, a source that swaps dictionaries), one byte whose
 * top bit says to recompute the CRC-32 trailer first, then the body.
 * The decoder must answer SNAP_OK or an error. On SNAP_OK a body naming a
 * dictionary was decoded with exactly that one (its id is the dictionary's;
 * a source answering every id with B is right for a body naming B);
 * a body naming one the source lacks is SNAP_ENOTFOUND; a swapped answer is
 * refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char DICT_A[] = "{\"account\":\"acc-\",\"owner\":\"\",\"currency\":\"EUR\","
                             "\"history\":[{\"kind\":\"deposit\",\"cents\":}]}";
static const char DICT_B[] = "{\"session\":\"s-\",\"user\":\"\",\"expires\":,\"roles\":[\"admin\"]}";
static snap_dict *dict_a, *dict_b;

typedef struct shelf {
  unsigned mode;
  unsigned asked;
  uint32_t last_id;
} shelf;

static int source(void *ud, uint32_t id, const char *name, snap_dict **out) {
  shelf *s = ud;
  (void)name;
  s->asked++;
  s->last_id = id;
  if (s->mode & 4) {
    *out = snap_dict_ref(dict_b);
    return SNAP_OK;
  }
  if ((s->mode & 1) && id == snap_dict_id(dict_a))
    *out = snap_dict_ref(dict_a);
  else if ((s->mode & 2) && id == snap_dict_id(dict_b))
    *out = snap_dict_ref(dict_b);
  else
    return SNAP_ENOTFOUND;
  return SNAP_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (!dict_a && (snap_dict_new(&dict_a, DICT_A, strlen(DICT_A)) != SNAP_OK ||
                  snap_dict_new(&dict_b, DICT_B, strlen(DICT_B)) != SNAP_OK))
    abort(); /* the fixed dictionaries are valid: a broken build */
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  LLVMFuzzerInitialize(NULL, NULL);
  if (size < 2)
    return 0;
  shelf sh = {data[0] & 7u, 0, 0};
  size_t body_len;
  uint8_t *body = fuzz_body_copy(data, size, &body_len);
  if (!body)
    return 0;
  snap_options *o = NULL;
  if (snap_options_new(&o) != SNAP_OK ||
      snap_options_set_dictionary_source(o, source, &sh) != SNAP_OK) {
    snap_options_free(o);
    free(body);
    return 0;
  }
  snap_buf out = SNAP_BUF_INIT;
  int rc = snap_body_decode("fuzz", 1, body, body_len, o, &out, NULL, NULL);
  FUZZ_CHECK(fuzz_known_code(rc), "decode returned %d", rc);
  snap_compression codec = SNAP_COMPRESSION_NONE;
  uint32_t named = 0;
  int hrc = snap_body_inspect_codec(body, body_len, &codec, &named);
  if (rc == SNAP_OK) {
    FUZZ_CHECK(hrc == SNAP_OK, "decoded a body whose header inspect refuses (%d)", hrc);
    FUZZ_CHECK(named == 0 || codec == SNAP_COMPRESSION_ZSTD, "a dictionary without zstd");
    if (named) {
      /* A source answering every id with B swaps every dictionary but B's
       * own: a body naming B decodes with the right one. */
      FUZZ_CHECK(!(sh.mode & 4) || named == snap_dict_id(dict_b),
                 "decoded with a swapped dictionary");
      FUZZ_CHECK(sh.last_id == named, "looked up %u for a body naming %u", sh.last_id, named);
      FUZZ_CHECK((sh.mode & 4) || ((sh.mode & 1) && named == snap_dict_id(dict_a)) ||
                     ((sh.mode & 2) && named == snap_dict_id(dict_b)),
                 "decoded with dictionary %u the source does not hold", named);
    }
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < out.len; i++)
      sink ^= out.data[i];
    (void)sink;
  } else {
    FUZZ_CHECK(out.len == 0, "%zu bytes returned with an error", out.len);
  }
  if (rc == SNAP_ENOTFOUND)
    FUZZ_CHECK(hrc == SNAP_OK && named != 0 && sh.asked > 0,
               "SNAP_ENOTFOUND for a body that names no dictionary");
  snap_buf_dispose(&out);
  snap_options_free(o);
  free(body);
  return 0;
}
