/* snapctl: walking every snapshot of a store page by page, with the cursor
 * of snap_store_list(). */
#include <stdlib.h>
#include <string.h>

#include "snapctl.h"

int ctl_sweep(snap_store *st, const char *pid, bool bodies, ctl_page_fn fn, void *ud) {
  snap_entry_page page = SNAP_ENTRY_PAGE_INIT;
  char *after = NULL;
  int64_t after_seq = 0;
  int rc = 0;
  for (;;) {
    if (ctl_interrupted()) {
      rc = CTL_INTERRUPTED;
      break;
    }
    rc = snap_store_list(st, pid, after, after_seq, CTL_PAGE, bodies, &page);
    if (rc != SNAP_OK || page.n == 0)
      break;
    /* The cursor is taken before the callback, which may change the store. */
    free(after);
    after = strdup(page.entries[page.n - 1].pid);
    after_seq = page.entries[page.n - 1].seq;
    size_t n = page.n;
    if (after == NULL) {
      rc = snap_error_set(SNAP_ENOMEM, "out of memory");
      break;
    }
    if ((rc = fn(ud, &page)) != 0 || n < CTL_PAGE)
      break;
  }
  snap_entry_page_dispose(&page);
  free(after);
  return rc;
}

static int count_page(void *ud, snap_entry_page *page) {
  *(uint64_t *)ud += page->n;
  return 0;
}

int ctl_count(snap_store *st, uint64_t *n) {
  *n = 0;
  return ctl_sweep(st, NULL, false, count_page, n);
}
