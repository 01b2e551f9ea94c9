/* An upcaster shared by the tests of upcasting and migration. */
#ifndef SNAP_TEST_UPCAST_UTIL_H
#define SNAP_TEST_UPCAST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "snap/store.h"

/** A snap_upcaster_fn that wraps the state S as {"v<N>":S}, N being what
 *  follows the last '/' of `to`, so that a state shows every step it went
 *  through. `ud`, when not NULL, is an int counting the calls. */
int st_upcast_wrap(void *ud, const char *from, const char *to, snap_format fmt,
                   const uint8_t *state, size_t len, snap_buf *out, snap_format *out_fmt);

#endif
