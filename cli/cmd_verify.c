/* snapctl verify: decode every stored body with the configured keys. */
#include <inttypes.h>

#include "snapctl.h"

typedef struct verify_ctx {
  ctl *c;
  snap_buf state;
  uint64_t ok, failed;
  uint64_t by_kind[6]; /* corrupt, format, auth, nokey, toobig, error (ctl_kind()) */
  ctl_progress prog;
} verify_ctx;

static size_t kind_index(int rc) {
  static const int codes[] = {SNAP_ECORRUPT, SNAP_EFORMAT, SNAP_EAUTH, SNAP_ENOKEY, SNAP_ETOOBIG};
  for (size_t i = 0; i < 5; i++)
    if (codes[i] == rc)
      return i;
  return 5;
}

static int verify_page(void *ud, snap_entry_page *page) {
  verify_ctx *v = ud;
  for (size_t i = 0; i < page->n; i++) {
    const snap_entry *e = &page->entries[i];
    int rc = ctl_is_stream_head(e->body, e->stored_len)
                 ? ctl_stream_check(v->c->st, e->pid, e->seq)
                 : snap_store_decode(v->c->st, e->pid, e->seq, e->body, e->stored_len, NULL,
                                     &v->state, NULL, NULL);
    if (rc == SNAP_OK) {
      v->ok++;
      continue;
    }
    v->failed++;
    v->by_kind[kind_index(rc)]++;
    ctl_report_body(stdout, e->pid, e->seq, rc, NULL);
  }
  ctl_progress_add(&v->prog, page->n);
  return 0;
}

int cmd_verify(ctl *c, int argc, char **argv) {
  int rc = ctl_begin(c, argc, argv, NULL, NULL, 0, 0, NULL);
  if (rc >= 0)
    return rc;
  verify_ctx v = {.c = c};
  rc = ctl_progress_counted(&v.prog, "verify", c);
  if (rc == SNAP_OK)
    rc = ctl_sweep(c->st, NULL, true, verify_page, &v);
  ctl_progress_end(&v.prog);
  snap_buf_dispose(&v.state);
  if (rc == CTL_INTERRUPTED)
    return ctl_interrupt_report("verify",
                                "%" PRIu64 " bodies decoded, %" PRIu64 " failed; verify checks "
                                "the whole store each time it runs",
                                v.ok + v.failed, v.failed);
  if (rc != SNAP_OK)
    return ctl_fail(EXIT_FOUND, "verify: %s (after %" PRIu64 " bodies)", ctl_error(rc),
                    v.ok + v.failed);
  fprintf(stderr,
          "verify: %" PRIu64 " bodies, %" PRIu64 " ok, %" PRIu64 " failed (corrupt %" PRIu64
          ", format %" PRIu64 ", auth %" PRIu64 ", nokey %" PRIu64 ", toobig %" PRIu64
          ", error %" PRIu64 ")\n",
          v.ok + v.failed, v.ok, v.failed, v.by_kind[0], v.by_kind[1], v.by_kind[2], v.by_kind[3],
          v.by_kind[4], v.by_kind[5]);
  return v.failed ? EXIT_FOUND : EXIT_OK;
}
