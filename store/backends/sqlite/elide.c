/* Which rows of a put retention would delete before the put's COMMIT.
 *
 * With "keep": K, a row of a put is gone by the end of the put's own
 * transaction when at least K later rows of the same put, of the same pid,
 * with greater seqs, are stored: the prune after them deletes it. Nobody can
 * read it in between (the transaction commits all or nothing), so the write
 * path does not insert it at all. An executor's group commonly holds dozens
 * of saves of one busy pid; with keep 3 all but its last three are such rows.
 *
 * The plan is conservative. Only a pid whose rows in the put have strictly
 * increasing seqs, none of them conditional (snap_backend_row4.expect_seq
 * reads what the rows before it stored), has rows elided. Whether the later
 * rows were in fact stored is known only after their inserts: write.c
 * inserts every elided row of a pid whose later rows did not all succeed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int by_pid_then_position(const void *a, const void *b) {
  const snap__sqlite_elided *x = a, *y = b;
  int c = strcmp(x->pid, y->pid);
  if (c != 0)
    return c;
  return x->row < y->row ? -1 : x->row > y->row;
}

/* Whether the `m` rows of one pid starting at `e` may have rows elided. */
static bool run_qualifies(const snap__sqlite_elided *e, size_t m, const snap_backend_row *rows,
                          size_t stride, bool conditional, uint32_t keep) {
  if (m <= keep)
    return false;
  for (size_t j = 0; j < m; j++) {
    const snap_backend_row *r = snap__sqlite_row_of(rows, stride, e[j].row);
    if (conditional &&
        ((const snap_backend_row4 *)(const void *)r)->expect_seq != SNAP_BACKEND_ANY_SEQ)
      return false;
    if (j > 0 && r->seq <= snap__sqlite_row_of(rows, stride, e[j - 1].row)->seq)
      return false;
  }
  return true;
}

int snap__sqlite_elide_plan(sql_backend *b, const snap_backend_row *rows, size_t stride,
                            bool conditional, size_t n, uint32_t keep, snap__sqlite_elision *el) {
  memset(el, 0, sizeof *el);
  if (keep == 0 || n <= keep || n > UINT32_MAX)
    return SNAP_OK;
  el->entry = b->host->malloc(n * sizeof *el->entry);
  el->skip = b->host->malloc(n);
  if (el->entry == NULL || el->skip == NULL) {
    snap__sqlite_elide_free(b, el);
    return SNAP_ENOMEM; /* the put inserts every row, as without a plan */
  }
  memset(el->skip, 0, n);
  for (size_t i = 0; i < n; i++)
    el->entry[i] = (snap__sqlite_elided){snap__sqlite_row_of(rows, stride, i)->pid, (uint32_t)i, 0};
  qsort(el->entry, n, sizeof *el->entry, by_pid_then_position);
  el->n = n;
  for (size_t s = 0, m; s < n; s += m) {
    for (m = 1; s + m < n && strcmp(el->entry[s].pid, el->entry[s + m].pid) == 0; m++)
      ;
    el->entry[s].run = (uint32_t)m;
    if (!run_qualifies(&el->entry[s], m, rows, stride, conditional, keep))
      continue;
    for (size_t j = 0; j + keep < m; j++)
      el->skip[el->entry[s + j].row] = 1;
    el->skipped += m - keep;
  }
  return SNAP_OK;
}

void snap__sqlite_elide_free(sql_backend *b, snap__sqlite_elision *el) {
  b->host->free(el->entry);
  b->host->free(el->skip);
  memset(el, 0, sizeof *el);
}
