"""A client that pipelines requests and never reads its replies must not make
fjord-coord buffer without bound: the server stops reading that connection once
a few MiB of replies are queued, and keeps serving everyone else."""
import socket
import struct
import time

import pytest  # noqa: F401

TARGETS = ["fjord"]


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def frame(body):
    return struct.pack(">i", len(body)) + body


def jstr(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def test_unread_replies_do_not_grow_memory(make_server, target):
    srv = make_server()
    kz = srv.kazoo()
    try:
        big = b"x" * (512 * 1024)
        kz.create("/big", big)
        before = rss_mib(srv.pid)
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(frame(struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16))
        # 400 getData of 512 KiB = 200 MiB of replies, never read.
        req = b"".join(frame(struct.pack(">ii", i + 1, 4) + jstr("/big") + b"\0") for i in range(400))
        s.setblocking(False)
        sent = 0
        deadline = time.time() + 5
        while sent < len(req) and time.time() < deadline:
            try:
                sent += s.send(req[sent:])
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(1.0)
        grown = rss_mib(srv.pid) - before
        assert grown < 64, "server RSS grew by %.0f MiB for one unread client" % grown
        # Everyone else is still served.
        assert kz.get("/big")[0] == big
        s.close()
    finally:
        kz.stop()
        kz.close()
