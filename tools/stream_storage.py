#!/usr/bin/env python3
"""Where the sqlite backend keeps the chunks of streamed snapshots, decided by
measurement (docs/STREAMS.md, "Where SQLite's chunks live").

Writes SIZE MiB (default 1024) of 1 MiB chunks, durably, four ways on the disk of
DIR and prints each one's time against a raw sequential write + fdatasync of the
same bytes:
  - a file beside the database, published by a row (what the backend does);
  - a side table in the WAL database, sync=full, 16 and 64 chunks per transaction,
    then the checkpoint that copies them into the database (WAL writes every byte
    twice);
  - a side database with journal_mode=OFF, sync=full, 16 chunks per transaction;
then reads the raw file and the side table back with the page cache dropped (when
this process may drop it).

usage: tools/stream_storage.py [SIZE_MIB] [DIR]
"""
import os
import shutil
import sqlite3
import sys
import time

MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
DIR = sys.argv[2] if len(sys.argv) > 2 else "stream-storage.tmp"
CHUNK = os.urandom(1 << 20)


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        return True
    except OSError:
        return False


def raw_write():
    t = time.time()
    fd = os.open(os.path.join(DIR, "raw"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(MIB):
        os.write(fd, CHUNK)
    os.fdatasync(fd)
    os.close(fd)
    return time.time() - t


def file_beside():
    db = sqlite3.connect(os.path.join(DIR, "f.db"), isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=full")
    db.execute("create table if not exists s(pid text, seq int, stream text, body blob)")
    side = os.path.join(DIR, "f.db.streams")
    os.makedirs(side, exist_ok=True)
    t = time.time()
    fd = os.open(os.path.join(side, "x"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(MIB):
        os.write(fd, len(CHUNK).to_bytes(4, "little") + CHUNK)
    os.fdatasync(fd)
    os.close(fd)
    dfd = os.open(side, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    db.execute("insert into s values('p', 1, 'x', x'00')")
    el = time.time() - t
    return el, os.path.getsize(os.path.join(DIR, "f.db-wal"))


def side_table(name, per_txn, journal):
    path = os.path.join(DIR, name + ".db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode=" + journal)
    db.execute("pragma synchronous=full")
    db.execute("create table c(pid text, seq int, n int, data blob, primary key(pid, seq, n))")
    t = time.time()
    peak = 0
    for i in range(MIB):
        if i % per_txn == 0:
            db.execute("begin")
        db.execute("insert into c values('p', 1, ?, ?)", (i, CHUNK))
        if i % per_txn == per_txn - 1:
            db.execute("commit")
            if os.path.exists(path + "-wal"):
                peak = max(peak, os.path.getsize(path + "-wal"))
    if db.in_transaction:
        db.execute("commit")
    if journal == "wal":
        db.execute("pragma wal_checkpoint(truncate)")
    return time.time() - t, peak


def main():
    os.makedirs(DIR, exist_ok=True)
    raw = raw_write()
    print(f"raw write + fdatasync, {MIB} MiB: {raw:.2f} s ({MIB / raw:.0f} MiB/s)")
    el, wal = file_beside()
    print(f"file beside the database: {el:.2f} s, ratio {raw / el:.2f}, WAL {wal} bytes")
    for per in (16, 64):
        el, peak = side_table(f"wal{per}", per, "wal")
        print(f"side table, WAL, {per} chunks per transaction, with the checkpoint: "
              f"{el:.2f} s, ratio {raw / el:.2f}, peak WAL {peak >> 20} MiB")
    el, _ = side_table("off", 16, "off")
    print(f"side database, journal_mode=OFF, 16 chunks per transaction: {el:.2f} s, "
          f"ratio {raw / el:.2f}")
    dropped = drop_caches()
    t = time.time()
    fd = os.open(os.path.join(DIR, "raw"), os.O_RDONLY)
    while os.read(fd, 1 << 20):
        pass
    os.close(fd)
    rr = time.time() - t
    drop_caches()
    t = time.time()
    db = sqlite3.connect(os.path.join(DIR, "wal16.db"))
    for (_,) in db.execute("select data from c where pid = 'p' and seq = 1 order by n"):
        pass
    rs = time.time() - t
    print(f"read back ({'page cache dropped' if dropped else 'warm'}): raw {rr:.2f} s, "
          f"side table {rs:.2f} s, ratio {rr / rs:.2f}")
    shutil.rmtree(DIR)


main()
