/* The stream encoder (snap/stream.h): validate incrementally -> compress as
 * one stream -> cut into chunks -> seal each -> the sink; at the end, the
 * head body that states and binds them. docs/FORMAT.md, "Streamed states". */
#include <string.h>

#include "snap/pipeline_layer.h"
#include "stream_internal.h"

/* Compressor output is drained through a buffer of this size. */
#define STAGE_BYTES ((size_t)128 << 10)

/* What must not leak: in guarded memory, wiped when freed. */
typedef struct enc_secrets {
  uint8_t subkey[SNAP__SUBKEY_BYTES]; /* seals the head */
  chunk_seal seal;                    /* seals the chunks */
} enc_secrets;

struct snap_stream_encoder {
  where w;
  char *pid; /* owned: w.pid */
  size_t pid_len;
  snap_format fmt;
  snap__eff e;
  unsigned kind; /* ST_AEAD, ST_MAC or 0 */
  uint32_t kv;   /* key version (or data key generation); 0 for neither */
  char *unit;    /* envelope mode: the unit (owned), else NULL */
  size_t unit_len;
  char *manifest; /* owned copies of what the head states, or NULL */
  size_t manifest_len;
  uint8_t *metadata;
  size_t metadata_len;
  unsigned codec; /* FRAME_CODEC_* configured, 0 for none */
  snap_dict *dict;
  stream_codec *cz;
  snap_payload_validator *val;
  snap__side_validator *side; /* started by the first large piece, or NULL */
  enc_secrets *sec;
  uint8_t nonce[STREAM_NONCE_LEN];
  size_t chunk_size, overhead;
  uint8_t *chunk; /* chunk_size + overhead: the payload, sealed in place */
  uint8_t *rec;   /* AEAD: the sealed record (chunk_size + overhead), else NULL */
  uint8_t *stage; /* compressor output, STAGE_BYTES */
  size_t chunk_len;
  uint64_t index, plain, stored;
  snap_chunk_sink sink;
  void *ud;
  int failed; /* sticky: the first failure, or SNAP_OK */
  bool finished;
};

/* ---- creating --------------------------------------------------------------- */

/* The options' required groups, key and dictionary, as a body encode checks them. */
static int enc_keys(snap_stream_encoder *x, const snap_options *o, const snap__envelope_key *env) {
  const snap__eff *e = &x->e;
  const unsigned required = (o && (o->set & SNAP__F_REQUIRED)) ? o->required : 0;
  if ((required & SNAP_OPT_ENCRYPTION) && !e->enc_kr)
    return snap__frame_fail(&x->w, SNAP_EINVAL,
                            "encryption is required but no encryption keyring is set");
  if ((required & SNAP_OPT_INTEGRITY) && !e->enc_kr && !e->mac_kr)
    return snap__frame_fail(&x->w, SNAP_EINVAL, "integrity is required but no keyring is set");
  if ((required & SNAP_OPT_COMPRESSION) && e->comp == SNAP_COMPRESSION_NONE)
    return snap__frame_fail(&x->w, SNAP_EINVAL, "compression is required but none is set");
  if (e->envelope && !env)
    return snap__frame_fail(&x->w, SNAP_EINVAL,
                            "envelope key mode needs a store: the unit's data key lives in its "
                            "key table (snap_stream_encoder_new() encrypts in direct mode only)");
  if (env) {
    x->kind = ST_AEAD;
    x->kv = env->generation;
    memcpy(x->sec->subkey, env->dek, SNAP_DEK_BYTES);
    if (!(x->unit = snap_malloc(env->unit_len + 1)))
      return snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory");
    memcpy(x->unit, env->unit, env->unit_len);
    x->unit_len = env->unit_len;
    return SNAP_OK;
  }
  x->kind = e->enc_kr ? ST_AEAD : e->mac_kr ? ST_MAC : 0;
  if (x->kind && snap__keyring_derive(frame_keyring(e, x->kind), 0, frame_label(x->kind),
                                      frame_context(e, x->kind), x->pid, x->pid_len,
                                      x->sec->subkey, &x->kv) != SNAP_OK)
    return snap__frame_fail(&x->w, SNAP_ENOKEY, "the %s keyring is empty",
                            x->kind == ST_AEAD ? "encryption" : "integrity");
  return SNAP_OK;
}

/* The codec and its dictionary (looked up through the options' source). */
static int enc_codec(snap_stream_encoder *x) {
  const snap__eff *e = &x->e;
  const bool dict = e->dict_id || e->dict_name;
  if (dict && e->comp != SNAP_COMPRESSION_ZSTD)
    return snap__frame_fail(&x->w, SNAP_EINVAL,
                            "a dictionary is set but the compression is not zstd");
  if (e->comp == SNAP_COMPRESSION_NONE)
    return SNAP_OK;
  x->codec = e->comp == SNAP_COMPRESSION_ZSTD ? FRAME_CODEC_ZSTD : FRAME_CODEC_ZLIB;
  if (dict) {
    if (!e->dict_src)
      return snap__frame_fail(&x->w, SNAP_EINVAL,
                              "a dictionary is set but no dictionary source to find it");
    const int rc = snap__stream_dict(&x->w, e, e->dict_id, e->dict_name, &x->dict);
    if (rc)
      return rc;
  }
  if (!(x->cz = snap__codec_new_compress(x->codec, e->level, x->dict)) ||
      !(x->stage = snap_malloc(STAGE_BYTES)))
    return snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory for the compressor");
  return SNAP_OK;
}

/* Copies of the manifest and metadata the head will state. */
static int enc_typing(snap_stream_encoder *x, const snap__typing *t) {
  if (!t)
    return SNAP_OK;
  if (t->manifest_len && !(x->manifest = snap_malloc(t->manifest_len)))
    return snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory");
  if (t->metadata_len && !(x->metadata = snap_malloc(t->metadata_len)))
    return snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory");
  if (t->manifest_len)
    memcpy(x->manifest, t->manifest, t->manifest_len);
  if (t->metadata_len)
    memcpy(x->metadata, t->metadata, t->metadata_len);
  x->manifest_len = t->manifest_len;
  x->metadata_len = t->metadata_len;
  return SNAP_OK;
}

static int enc_setup(snap_stream_encoder *x, const snap_options *o, const snap__envelope_key *env,
                     const snap__typing *t) {
  int rc;
  if (!(x->sec = sodium_malloc(sizeof *x->sec)))
    return snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory for the keys");
  sodium_memzero(x->sec, sizeof *x->sec);
  if ((rc = enc_keys(x, o, env)) || (rc = enc_codec(x)) || (rc = enc_typing(x, t)))
    return rc;
  if ((rc = snap_payload_validator_new(&x->val, x->fmt)) != SNAP_OK)
    return snap__frame_fail(&x->w, rc, "%s", snap_error_message());
  x->overhead = snap__chunk_overhead(x->kind);
  if (!(x->chunk = snap_malloc(x->chunk_size + x->overhead)) ||
      (x->kind == ST_AEAD && !(x->rec = snap_malloc(x->chunk_size + x->overhead))))
    return snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory for a %zu-byte chunk",
                            x->chunk_size);
  x->e.nonce_fn(x->nonce, STREAM_NONCE_LEN, x->e.nonce_ud);
  snap__seal_init(&x->sec->seal, x->kind, x->sec->subkey, x->nonce, x->w.seq, x->pid,
                  x->pid_len);
  return SNAP_OK;
}

int snap__stream_encoder_new_typed(snap_stream_encoder **out, const char *pid, int64_t seq,
                                   snap_format fmt, const snap_options *o, size_t chunk_size,
                                   const snap__envelope_key *env, const snap__typing *t,
                                   snap_chunk_sink sink, void *ud) {
  where w = {"stream encode", pid, seq};
  snap_buf none = SNAP_BUF_INIT;
  if (!out)
    return snap_error_set(SNAP_EINVAL, "stream encode: NULL output");
  *out = NULL;
  int rc = snap__body_check_call(&w, pid, false, seq, &none);
  if (rc)
    return rc;
  if (fmt != SNAP_FORMAT_JSON && fmt != SNAP_FORMAT_MSGPACK)
    return snap__frame_fail(&w, SNAP_EINVAL, "unknown payload format %d", (int)fmt);
  if (!sink)
    return snap__frame_fail(&w, SNAP_EINVAL, "NULL chunk sink");
  if (chunk_size == 0)
    chunk_size = SNAP_STREAM_CHUNK_DEFAULT;
  if (chunk_size < SNAP_STREAM_CHUNK_MIN || chunk_size > SNAP_STREAM_CHUNK_MAX)
    return snap__frame_fail(&w, SNAP_EINVAL, "chunk size %zu is not 1..%zu", chunk_size,
                            SNAP_STREAM_CHUNK_MAX);
  snap_stream_encoder *x = snap_calloc(1, sizeof *x);
  if (!x)
    return snap__frame_fail(&w, SNAP_ENOMEM, "out of memory");
  x->pid_len = strlen(pid);
  if (!(x->pid = snap_malloc(x->pid_len + 1))) {
    snap_free(x);
    return snap__frame_fail(&w, SNAP_ENOMEM, "out of memory");
  }
  memcpy(x->pid, pid, x->pid_len + 1);
  x->w = (where){"stream encode", x->pid, seq};
  x->fmt = fmt;
  x->chunk_size = chunk_size;
  x->sink = sink;
  x->ud = ud;
  snap__options_effective(o, &x->e);
  if ((rc = enc_setup(x, o, env, t)) != SNAP_OK) {
    snap_stream_encoder_free(x);
    return rc;
  }
  *out = x;
  return SNAP_OK;
}

int snap_stream_encoder_new(snap_stream_encoder **out, const char *pid, int64_t seq,
                            snap_format fmt, const snap_options *o, size_t chunk_size,
                            snap_chunk_sink sink, void *ud) {
  return snap__stream_encoder_new_typed(out, pid, seq, fmt, o, chunk_size, NULL, NULL, sink, ud);
}

void snap_stream_encoder_free(snap_stream_encoder *x) {
  if (!x)
    return;
  if (x->sec)
    sodium_free(x->sec); /* wipes */
  snap__codec_free(x->cz);
  snap_dict_free(x->dict);
  snap__side_free(x->side);
  snap_payload_validator_free(x->val);
  if (x->chunk)
    sodium_memzero(x->chunk, x->chunk_size + x->overhead);
  if (x->rec)
    sodium_memzero(x->rec, x->chunk_size + x->overhead);
  if (x->stage)
    sodium_memzero(x->stage, STAGE_BYTES);
  snap_free(x->chunk);
  snap_free(x->rec);
  snap_free(x->stage);
  snap_free(x->unit);
  snap_free(x->manifest);
  snap_free(x->metadata);
  snap_free(x->pid);
  snap_free(x);
}

void snap_stream_encoder_progress(const snap_stream_encoder *x, uint64_t *plain,
                                  uint64_t *records) {
  if (plain)
    *plain = x ? x->plain : 0;
  if (records)
    *records = x ? x->index : 0;
}

/* ---- chunks ----------------------------------------------------------------- */

static int enc_fail(snap_stream_encoder *x, int rc) {
  x->failed = rc;
  return rc;
}

/* Seals the buffered chunk and hands it to the sink. */
static int emit(snap_stream_encoder *x, bool last) {
  uint8_t *rec = x->kind == ST_AEAD ? x->rec : x->chunk;
  snap__seal_chunk(&x->sec->seal, x->index, last, x->chunk, x->chunk_len, rec);
  snap_error_clear();
  int rc = x->sink(x->ud, x->index, rec, x->chunk_len + x->overhead);
  if (rc != SNAP_OK) {
    if (rc > 0)
      rc = SNAP_EIO;
    if (snap_error_code() == SNAP_OK)
      snap__frame_fail(&x->w, rc, "the chunk sink refused record %llu",
                       (unsigned long long)x->index);
    return enc_fail(x, rc);
  }
  x->index++;
  x->stored += x->chunk_len;
  x->chunk_len = 0;
  return SNAP_OK;
}

/* Appends payload bytes; a full chunk is sealed only once more bytes follow,
 * so the last one is always sealed by finish (secretstream's FINAL tag). */
static int put(snap_stream_encoder *x, const uint8_t *p, size_t n) {
  while (n) {
    if (x->chunk_len == x->chunk_size) {
      int rc = emit(x, false);
      if (rc)
        return rc;
    }
    const size_t k = n < x->chunk_size - x->chunk_len ? n : x->chunk_size - x->chunk_len;
    memcpy(x->chunk + x->chunk_len, p, k);
    x->chunk_len += k;
    p += k;
    n -= k;
  }
  return SNAP_OK;
}

/* Feeds the compressor (end: finishes its stream) and puts its output. */
static int compress_put(snap_stream_encoder *x, const uint8_t *p, size_t n, bool end) {
  for (;;) {
    size_t got = 0;
    codec_result r = snap__codec_step(x->cz, &p, &n, x->stage, STAGE_BYTES, &got, end);
    if (r == CODEC_NOMEM || r == CODEC_BAD)
      return enc_fail(x, snap__frame_fail(&x->w, SNAP_ENOMEM, "out of memory compressing"));
    int rc = put(x, x->stage, got);
    if (rc)
      return rc;
    if (end ? r == CODEC_END : (n == 0 && got < STAGE_BYTES))
      return SNAP_OK;
  }
}

static int usable(snap_stream_encoder *x) {
  if (!x)
    return snap_error_set(SNAP_EINVAL, "stream encode: NULL encoder");
  if (x->failed || x->finished)
    return snap__frame_fail(&x->w, SNAP_EINVAL, "the stream %s",
                            x->finished ? "is finished" : "already failed");
  return SNAP_OK;
}

int snap_stream_encoder_write(snap_stream_encoder *x, const void *data, size_t len) {
  int rc = usable(x);
  if (rc)
    return rc;
  if (!data && len)
    return snap__frame_fail(&x->w, SNAP_EINVAL, "data is NULL but its length is %zu", len);
  if (!len)
    return SNAP_OK;
  /* A large piece is validated beside its encoding (stream_validate.c): its
   * records may reach the sink before the verdict, and a refused piece then
   * fails the stream all the same, so no head ever publishes them. */
  if (!x->side && snap__side_worthwhile(len))
    x->side = snap__side_start(x->val);
  const bool beside = x->side && len >= SNAP__SIDE_MIN;
  if (beside)
    snap__side_post(x->side, data, len);
  else if ((rc = snap_payload_validator_push(x->val, data, len)) != SNAP_OK)
    return enc_fail(x, snap__frame_fail(&x->w, rc, "%s", snap_error_message()));
  rc = x->cz ? compress_put(x, data, len, false) : put(x, data, len);
  const int verdict = beside ? snap__side_verdict(x->side) : SNAP_OK;
  if (verdict != SNAP_OK)
    return enc_fail(x, snap__frame_fail(&x->w, verdict, "%s", snap_error_message()));
  x->plain += len;
  return rc;
}

/* ---- the head ----------------------------------------------------------------- */

/* The head's fields: codec and dictionary (when compressed with zstd), the
 * envelope key reference, manifest, metadata, and chunking. */
static int head_fields(snap_stream_encoder *x, frame_fields *ff, unsigned st,
                       const chunking *c) {
  int rc = SNAP_OK;
  if ((st & ST_COMP) && x->codec == FRAME_CODEC_ZSTD) {
    const uint8_t codec = FRAME_CODEC_ZSTD;
    rc = snap__frame_fields_add(&x->w, ff, FIELD_CODEC, &codec, 1);
    uint8_t id[4];
    snap__put_u32le(id, snap_dict_id(x->dict));
    if (rc == SNAP_OK && x->dict)
      rc = snap__frame_fields_add(&x->w, ff, FIELD_DICT, id, 4);
  }
  if (rc == SNAP_OK && x->unit) {
    const bool is_pid = x->unit_len == x->pid_len && memcmp(x->unit, x->pid, x->pid_len) == 0;
    rc = snap__frame_fields_add(&x->w, ff, FIELD_ENVELOPE, x->unit, is_pid ? 0 : x->unit_len);
  }
  if (rc == SNAP_OK && x->manifest_len)
    rc = snap__frame_fields_add(&x->w, ff, FIELD_MANIFEST, x->manifest, x->manifest_len);
  if (rc == SNAP_OK && x->metadata_len)
    rc = snap__frame_fields_add(&x->w, ff, FIELD_METADATA, x->metadata, x->metadata_len);
  uint8_t val[CHUNKING_LEN_MAC];
  const size_t n = snap__chunking_write(c, st, val);
  return rc ? rc : snap__frame_fields_add(&x->w, ff, FIELD_CHUNKING, val, n);
}

/* Writes the head into `out`: header, then the AEAD nonce and tag of an empty
 * body, its MAC, or its CRC-32. */
static int write_head(snap_stream_encoder *x, unsigned st, snap_buf *out) {
  chunking c = {.chunk_size = (uint32_t)x->chunk_size, .count = x->index, .stored = x->stored};
  memcpy(c.nonce, x->nonce, STREAM_NONCE_LEN);
  snap__seal_digest(&x->sec->seal, c.digest);
  frame_fields ff;
  ff.len = 0;
  ff.last_type = 0;
  int rc = head_fields(x, &ff, st, &c);
  if (rc)
    return rc;
  const size_t hdr = snap__frame_header_len(&ff), pre = hdr + (x->kind == ST_AEAD ? NONCE_LEN : 0);
  const size_t total = pre + snap__frame_trailer_len(st);
  if ((rc = snap_buf_reserve(out, total)) != SNAP_OK)
    return snap__frame_fail(&x->w, rc, "out of memory for the head");
  uint8_t *b = out->data;
  snap__frame_write_header(b, &ff, x->fmt, st, x->kv, x->plain);
  if (!x->kind) {
    snap__put_u32le(b + pre, snap__crc32(b, pre));
  } else {
    uint8_t bind[BIND_MAX];
    const size_t bind_len = snap__frame_binding(bind, b, hdr, x->w.seq, x->pid, x->pid_len);
    if (x->kind == ST_MAC) {
      snap__frame_mac(b + pre, x->sec->subkey, bind, bind_len, NULL, 0);
    } else {
      static const uint8_t empty = 0;
      x->e.nonce_fn(b + hdr, NONCE_LEN, x->e.nonce_ud);
      crypto_aead_xchacha20poly1305_ietf_encrypt_detached(b + pre, b + pre, NULL, &empty, 0, bind,
                                                          bind_len, NULL, b + hdr, x->sec->subkey);
    }
  }
  out->len = total;
  return SNAP_OK;
}

int snap_stream_encoder_finish(snap_stream_encoder *x, snap_buf *head, unsigned *stages) {
  if (stages)
    *stages = 0;
  int rc = usable(x);
  if (rc)
    return rc;
  if (!head)
    return snap__frame_fail(&x->w, SNAP_EINVAL, "NULL head buffer");
  head->len = 0;
  if ((rc = snap_payload_validator_finish(x->val)) != SNAP_OK)
    return enc_fail(x, snap__frame_fail(&x->w, rc, "%s", snap_error_message()));
  /* The empty state has no records and is never compressed. */
  const bool comp = x->cz && x->plain > 0;
  if (comp && (rc = compress_put(x, NULL, 0, true)) != SNAP_OK)
    return rc;
  if (x->chunk_len && (rc = emit(x, true)) != SNAP_OK)
    return rc;
  const unsigned st = (comp ? ST_COMP : 0) | x->kind;
  if ((rc = write_head(x, st, head)) != SNAP_OK)
    return enc_fail(x, rc);
  x->finished = true;
  if (stages)
    *stages = st;
  return SNAP_OK;
}
