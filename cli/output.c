/* snapctl: messages, names of formats and stages, times and JSON output. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "snapctl.h"

int ctl_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("snapctl: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return status;
}

const char *ctl_error(int rc) {
  const char *m = snap_error_message();
  return (m && m[0]) ? m : snap_strerror(rc);
}

const char *ctl_format_name(snap_format f) {
  switch (f) {
  case SNAP_FORMAT_JSON:
    return "json";
  case SNAP_FORMAT_MSGPACK:
    return "msgpack";
  default:
    return "?";
  }
}

const char *ctl_stages_name(unsigned stages, char *buf, size_t n) {
  return ctl_codec_stages_name(stages, SNAP_COMPRESSION_ZLIB, 0, buf, n);
}

const char *ctl_codec_stages_name(unsigned stages, snap_compression codec, uint32_t dict_id,
                                  char *buf, size_t n) {
  const char *comp = !(stages & SNAP_STAGE_COMPRESSED)      ? ""
                     : codec != SNAP_COMPRESSION_ZSTD ? "zlib"
                     : dict_id                        ? "zstd+dict"
                                                      : "zstd";
  snprintf(buf, n, "%s%s%s%s", comp,
           (stages & SNAP_STAGE_COMPRESSED) && (stages & (SNAP_STAGE_ENCRYPTED | SNAP_STAGE_MAC))
               ? "+"
               : "",
           (stages & SNAP_STAGE_ENCRYPTED) ? "aead"
           : (stages & SNAP_STAGE_MAC)     ? "mac"
                                           : "",
           stages == 0 ? "none" : "");
  return buf;
}

const char *ctl_time(int64_t ms, char *buf, size_t n) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  if (ms < 0 || gmtime_r(&secs, &tm) == NULL) {
    snprintf(buf, n, "%" PRId64, ms);
    return buf;
  }
  char day[32];
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, n, "%s.%03dZ", day, (int)(ms % 1000));
  return buf;
}

bool ctl_parse_i64(const char *s, int64_t *out) {
  if (s == NULL || *s == '\0')
    return false;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s)
    return false;
  *out = (int64_t)v;
  return true;
}

int ctl_print_json(FILE *f, const cJSON *j, bool pretty) {
  char *text = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
  if (text == NULL)
    return ctl_fail(EXIT_FOUND, "out of memory printing JSON");
  fputs(text, f);
  fputc('\n', f);
  cJSON_free(text);
  return EXIT_OK;
}

const char *ctl_kind(int rc) {
  switch (rc) {
  case SNAP_ECORRUPT:
    return "corrupt";
  case SNAP_EFORMAT:
    return "format";
  case SNAP_EAUTH:
    return "auth";
  case SNAP_ENOKEY:
    return "nokey";
  case SNAP_ETOOBIG:
    return "toobig";
  default:
    return "error";
  }
}

void ctl_print_pid(FILE *f, const char *pid) {
  cJSON *s = cJSON_CreateString(pid);
  char *q = s ? cJSON_PrintUnformatted(s) : NULL;
  fputs(q ? q : pid, f);
  cJSON_free(q);
  cJSON_Delete(s);
}

void ctl_report_body(FILE *f, const char *pid, int64_t seq, int rc, const char *detail) {
  ctl_print_pid(f, pid);
  fprintf(f, " %" PRId64 " %s: %s\n", seq, ctl_kind(rc), detail ? detail : ctl_error(rc));
}
