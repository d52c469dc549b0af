"""Bad input (fjord-coord): a corpus of malformed frames, generated here, sent over raw
sockets. After each one the server must still answer ruok, an existing kazoo session
and a new one must still work; the offending connection is closed. Also
maxClientCnxns and an invalid config value.

FJORD_ONLY_TESTS_ON_ZK=1 runs it against Apache ZooKeeper too (to validate the test).
"""
import random
import socket
import struct
import subprocess
import time

import pytest

from fjordtest import zkwire
from fjordtest.binaries import coord_binary
from fjordtest.coord import skip_or_fail_unavailable
from fjordtest.net import HOST
from fjordtest.zkwire import e_int, e_long, e_bool, e_buf, e_str, frame, connect_request

TARGETS = ["fjord"]
MAXBUF = 1048575  # jute.maxbuffer default


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect_frame():
    return frame(connect_request(timeout_ms=10000))


def request(xid, op, body):
    return frame(e_int(xid) + e_int(op) + body)


def build_corpus():
    """(name, bytes to send, expectation) with expectation one of
    'close' (server closes the connection), 'client-close' (we close),
    'unimplemented' (reply err -6 then close),
    'reject' (a well-framed request whose string/vector lengths run past the frame:
    the connection is closed, or -- what Apache ZooKeeper 3.8 does -- the request is
    answered with MarshallingError (-5))."""
    c = []
    c.append(("len_over_maxbuffer", e_int(MAXBUF + 1) + b"\0" * 64, "close"))
    c.append(("len_2GiB", e_int(0x7FFFFFFF) + b"\0" * 64, "close"))
    c.append(("len_minus_1", e_int(-1) + b"\0" * 64, "close"))
    c.append(("len_int_min", e_int(-2 ** 31) + b"\0" * 64, "close"))
    c.append(("lying_len_then_close", e_int(4000) + b"\1" * 100, "client-close"))
    cr = connect_request(timeout_ms=10000)
    c.append(("truncated_connect", frame(cr[:20]), "close"))
    c.append(("truncated_connect_in_passwd", frame(cr[:30]), "close"))
    bad_pw = e_int(0) + e_long(0) + e_int(10000) + e_long(0) + e_int(1000) + b"p" * 16
    c.append(("connect_passwd_len_past_frame", frame(bad_pw), "close"))
    huge_pw = e_int(0) + e_long(0) + e_int(10000) + e_long(0) + e_int(0x7FFFFFF0) + b"p" * 16
    c.append(("connect_passwd_len_huge", frame(huge_pw), "close"))
    rnd = random.Random(20261122)
    for i in range(6):
        n = rnd.randint(8, 300)
        body = bytes(rnd.getrandbits(8) for _ in range(n))
        c.append(("garbage_framed_%d" % i, frame(body), "close"))
    for i in range(3):
        c.append(("garbage_raw_%d" % i, bytes(rnd.getrandbits(8) | 0x80 for _ in range(64)), "close"))
    cf = connect_frame()
    c.append(("zero_length_request", cf + e_int(0), "close"))
    c.append(("request_header_truncated", cf + frame(b"\0\0\0"), "close"))
    c.append(("request_over_maxbuffer", cf + e_int(MAXBUF + 1) + b"\0" * 1024, "close"))
    c.append(("path_len_past_frame", cf + request(1, 1, e_int(5000) + b"/abc"), "reject"))
    c.append(("path_len_huge", cf + request(1, 4, e_int(0x7FFFFFF0) + b"/abc" + e_bool(False)), "reject"))
    c.append(("data_len_past_frame",
              cf + request(1, 1, e_str("/m") + e_int(100000) + b"xx"), "reject"))
    c.append(("acl_vector_count_huge",
              cf + request(1, 1, e_str("/m") + e_buf(b"") + e_int(0x7FFFFFFF) + e_int(0)), "reject"))
    c.append(("acl_vector_count_past_frame",
              cf + request(1, 1, e_str("/m") + e_buf(b"") + e_int(1000) + e_int(31) + e_str("world")),
              "reject"))
    c.append(("setwatches_vector_huge",
              cf + request(-8, 101, e_long(0) + e_int(0x7FFFFFFF) + e_str("/")), "reject"))
    c.append(("multi_truncated",
              cf + request(1, 14, e_int(1) + e_bool(False) + e_int(-1) + e_str("/m") + e_int(40)),
              "reject"))
    c.append(("auth_len_past_frame",
              cf + request(-4, 100, e_int(0) + e_str("digest") + e_int(9999) + b"a:b"), "reject"))
    c.append(("unknown_opcode", cf + request(1, 999, b""), "unimplemented"))
    c.append(("unknown_opcode_negative", cf + request(1, -77, b"\0" * 8), "unimplemented"))
    return c


CORPUS = build_corpus()


def read_until_closed(s, timeout, enough=None):
    """Read everything until the peer closes (or enough(data)); returns (closed, data)."""
    s.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if enough is not None and enough(data):
            return False, data
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False, data
        except (ConnectionResetError, BrokenPipeError):
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def split_frames(data):
    out = []
    while len(data) >= 4:
        n = struct.unpack(">i", data[:4])[0]
        if n < 0 or len(data) < 4 + n:
            break
        out.append(data[4:4 + n])
        data = data[4 + n:]
    return out


def reply_err(data):
    """err of the first reply after the ConnectResponse, or None."""
    frames = split_frames(data)
    if len(frames) < 2 or len(frames[1]) < 16:
        return None
    return struct.unpack(">i", frames[1][12:16])[0]


def assert_healthy(server, zk, tag):
    assert server.alive(), "server process died after %s; log:\n%s" % (tag, server.log_tail())
    assert server.four("ruok") == "imok", "no imok after %s" % tag
    p = "/malformed-check"
    # the session opened before the bad frame still works
    zk.set(p, tag.encode())
    assert zk.get(p)[0] == tag.encode()
    # and so does a new one
    c = server.wire(timeout_ms=4000)
    try:
        assert c.get(p)[0] == tag.encode()
    finally:
        c.close()


@pytest.fixture
def checked(server, zk):
    zk.ensure_path("/malformed-check")
    return server, zk


@pytest.mark.parametrize("name,payload,expect", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_frame(checked, name, payload, expect):
    server, zk = checked
    rss0 = vm_rss_kib(server.pid)
    s = socket.create_connection((HOST, server.port), timeout=5)
    try:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: fine
        if expect == "client-close":
            s.close()
        else:
            closed, data = read_until_closed(
                s, 6.0, (lambda d: reply_err(d) == -5) if expect == "reject" else None)
            if expect == "reject":
                assert closed or reply_err(data) == -5, (
                    "%s: neither closed nor answered MarshallingError (got %r)" % (name, data[:80]))
            else:
                assert closed, "%s: the server kept the connection open (got %r)" % (name, data[:80])
            if expect == "unimplemented":
                frames = split_frames(data)
                assert len(frames) >= 2, "%s: expected ConnectResponse + error reply, got %r" % (name, data)
                r = zkwire.Reader(frames[1])
                xid, zxid, err = r.int(), r.long(), r.int()
                assert (xid, err) == (1, -6), "%s: expected reply xid 1 err -6 (UNIMPLEMENTED), got xid %d err %d" % (name, xid, err)
    finally:
        s.close()
    assert_healthy(server, zk, name)
    if server.kind == "fjord":
        grew = vm_rss_kib(server.pid) - rss0
        assert grew < 64 * 1024, "%s: server RSS grew by %d KiB" % (name, grew)


def test_many_bad_connections_at_once(checked):
    """Every corpus entry on its own connection, all open at the same time."""
    server, zk = checked
    socks = []
    try:
        for name, payload, _ in CORPUS:
            s = socket.create_connection((HOST, server.port), timeout=5)
            try:
                s.sendall(payload)
            except OSError:
                pass
            socks.append(s)
        assert_healthy(server, zk, "all-at-once")
    finally:
        for s in socks:
            s.close()
    assert_healthy(server, zk, "all-at-once-closed")


def test_max_client_cnxns(make_server):
    server = make_server({"maxClientCnxns": 5})
    conns = [server.wire(timeout_ms=10000) for _ in range(5)]
    try:
        for c in conns:
            assert c.exists("/") is not None
        with pytest.raises((zkwire.ConnectionClosed, ConnectionResetError, BrokenPipeError,
                            socket.timeout)):
            extra = zkwire.Conn(HOST, server.port, timeout_ms=10000, sock_timeout=5)
            extra.exists("/")
        # the five are still served
        for c in conns:
            assert c.exists("/") is not None
        conns.pop().close()
        time.sleep(0.3)
        again = server.wire(timeout_ms=10000)
        assert again.exists("/") is not None
        conns.append(again)
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize("key,value", [("tickTime", "abc"), ("clientPort", "notaport"),
                                       ("maxClientCnxns", "-x")])
def test_invalid_config_value(tmp_path, target, key, value):
    if target != "fjord":
        pytest.skip("fjord-coord's own exit-code contract")
    skip_or_fail_unavailable("fjord")
    cfg = tmp_path / "bad.cfg"
    lines = {"tickTime": "2000", "dataDir": str(tmp_path / "data"), "clientPort": "0",
             "clientPortAddress": HOST}
    lines[key] = value
    cfg.write_text("".join("%s=%s\n" % kv for kv in lines.items()))
    p = subprocess.Popen([coord_binary(), str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 2, "exit code %r (want 2); stderr: %s" % (p.returncode, err)
    assert key in err, "stderr does not name the key %s: %r" % (key, err)
    assert str(cfg) in err, "stderr does not name the file %s: %r" % (cfg, err)


def test_jute_maxbuffer_config(make_server, target):
    """jute.maxbuffer in the config file (Apache ZooKeeper only reads it as a Java
    system property, so this is fjord-only): a frame over it closes that connection."""
    if target != "fjord":
        pytest.skip("ZooKeeper reads jute.maxbuffer from -Djute.maxbuffer, not zoo.cfg")
    server = make_server({"jute.maxbuffer": 200000})
    ok = server.wire()
    ok.create("/fits", b"x" * 150000)
    assert ok.get("/fits")[0] == b"x" * 150000
    big = server.wire()
    with pytest.raises((zkwire.ConnectionClosed, ConnectionResetError, BrokenPipeError)):
        big.create("/too-big", b"x" * 250000)
    assert ok.exists("/too-big") is None
    assert ok.get("/fits")[1].dataLength == 150000
    assert server.four("ruok") == "imok"
    ok.close()
