"""Corruption in the coordinator's transaction log (issue 19, Build 4), on
the real binary: a flipped byte in a record in the middle of a log file, in
its payload or in its length field, stops the start-up with the file and the byte offset named (the file is left
as it was); the same file with only a torn tail (a record cut short, as
kill -9 leaves) starts and serves every whole record. The Raft log's check
is a unit test (coord/src/raft/log.rs)."""
import os
import struct
import time

import pytest

kazoo = pytest.importorskip("kazoo")

from fjordtest import cleanup  # noqa: E402
from fjordtest.binaries import coord_binary, require  # noqa: E402
from fjordtest.coord import Server, close_kazoo  # noqa: E402


def records(data):
    """(offset, length) of each framed record: [u32 len][u32 crc][payload]."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        if n == 0 or pos + 8 + n > len(data):
            break
        out.append((pos, n))
        pos += 8 + n
    return out


def test_txn_log_flipped_byte_refuses_start_torn_tail_recovers():
    require(coord_binary())
    d = cleanup.temp_dir("fjord-corrupt-")
    srv = None
    clients = []
    try:
        srv = Server("fjord", {"tickTime": 500}, workdir=os.path.join(d, "coord"))
        srv.start()
        zk = srv.kazoo(timeout=4.0)
        clients.append(zk)
        for i in range(20):
            zk.create("/c%02d" % i, b"value-%02d" % i)
        close_kazoo(clients)
        clients.clear()
        srv.stop()

        log_dir = os.path.join(srv.data_dir, "fjord-log")
        files = [os.path.join(log_dir, f) for f in os.listdir(log_dir)]
        path = max(files, key=os.path.getsize)
        with open(path, "rb") as f:
            good = f.read()
        recs = records(good)
        assert len(recs) >= 10, recs
        off, n = recs[len(recs) // 2]
        # A flipped payload byte, then a flipped length field (it points
        # past the next record's start: no longer a record boundary).
        for where in (off + 8 + n // 2, off + 2):
            bad = bytearray(good)
            bad[where] ^= 0x5A
            with open(path, "wb") as f:
                f.write(bad)

            srv.start(wait=False)
            deadline = time.time() + 15
            while srv.alive() and time.time() < deadline:
                time.sleep(0.1)
            assert not srv.alive(), "started on a log damaged at byte %d" % where
            assert srv.proc.returncode != 0
            log = srv.log_tail(1 << 16).rsplit("==== start", 1)[-1]   # this start only
            assert path in log and "offset %d" % off in log, log[-2000:]
            with open(path, "rb") as f:
                assert f.read() == bytes(bad), "the damaged file was changed"

        # A torn tail only (the last record cut short): it starts, every whole record served.
        last_off, last_n = recs[-1]
        with open(path, "wb") as f:
            f.write(good[:last_off + 8 + last_n // 2])
        srv.start()
        zk = srv.kazoo(timeout=4.0)
        clients.append(zk)
        present = [i for i in range(20) if zk.exists("/c%02d" % i)]
        # The cut record was the session's close (or the last create): the
        # creates before it are all there, with their data.
        assert present[:19] == list(range(19)), present
        for i in present:
            assert zk.get("/c%02d" % i)[0] == b"value-%02d" % i
    finally:
        close_kazoo(clients)
        if srv:
            srv.stop()
        cleanup.remove_dir(d)
