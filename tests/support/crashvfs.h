/* A crash-simulating SQLite VFS for the power-loss tests, wrapping the default
 * ("unix") VFS the way SQLite's own crash tests do.
 *
 * Writes reach the real files at once (so reads see them), but the VFS
 * remembers, per file and at 512-byte sector granularity, what was written
 * since that file's last xSync, with the bytes it replaced. xSync only marks
 * a file's writes durable: it does not reach the disk, because the simulation
 * defines durability. At a power cut every sector written since its file's
 * last sync is, chosen by a seeded random generator, kept, dropped (its old
 * bytes restored) or torn (the bytes written to it replaced by garbage); a
 * file grown since its last sync is cut back to the end of what survived.
 * Bytes outside a write are never changed (SQLite's "powersafe overwrite").
 * Truncations and deletions are taken as durable at once. After the cut every
 * write, sync, truncation, deletion and read fails with SQLITE_IOERR until
 * crashvfs_reset(), as in a machine without power.
 *
 * Not thread-safe beyond what the tests need: one store, calls from one
 * thread (the sqlite backend's own connections included). */
#ifndef SNAP_TEST_CRASHVFS_H
#define SNAP_TEST_CRASHVFS_H

#include <stdbool.h>
#include <stdint.h>

/** Registers the VFS as "crashvfs" (once) and makes it SQLite's default when
 *  `make_default`, or the real "unix" VFS the default again otherwise. */
int crashvfs_install(bool make_default);

/** Arms a power cut before the `n`-th write, sync or truncation from now
 *  (n >= 1); 0 disarms. `seed` drives the choice of what survives. */
void crashvfs_arm(uint64_t n, uint64_t seed);

/** Cuts the power now (if it was not cut already). */
void crashvfs_cut(void);

/** Whether the power was cut. */
bool crashvfs_crashed(void);

/** Writes, syncs and truncations counted since the last crashvfs_arm(). */
uint64_t crashvfs_ops(void);

/** Sectors kept, dropped and torn over all power cuts so far. */
void crashvfs_stats(uint64_t *kept, uint64_t *dropped, uint64_t *torn);

/** Power is back: forgets every file's pending writes and the crash. Call
 *  with no connection open through the VFS. */
void crashvfs_reset(void);

#endif /* SNAP_TEST_CRASHVFS_H */
