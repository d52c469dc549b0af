"""`fjord znode` end to end, against fjord-coord and Apache ZooKeeper 3.8 (the
`server` fixture runs each test on every selected target). Output shapes are
zkCli.sh's (ZooKeeper 3.8), checked against real zkCli runs.
"""
import json
import re
import subprocess
import time

import pytest

from fjordtest.binaries import fjord_cli, require
from fjordtest.zkcli import STAT_KEYS, check_stat, parse_stat

FJORD = fjord_cli()


@pytest.fixture(autouse=True)
def need_fjord():
    require(FJORD)


def fj(server, *args, coord=None, timeout=30):
    p = subprocess.run([FJORD, "znode", "--coord", coord or server.hosts] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout.splitlines(), p.stderr.strip()


def test_crud_shapes(server, zk, root):
    p = root + "/a"
    assert fj(server, "create", p, "hello") == (0, ["Created " + p], "")
    rc, out, err = fj(server, "create", p, "again")
    assert (rc != 0, out, err) == (True, [], "Node already exists: " + p)
    assert fj(server, "create", "-s", p + "/s", "x") == (0, ["Created %s/s0000000000" % p], "")
    assert fj(server, "create", p + "/b") == (0, ["Created %s/b" % p], "")
    assert fj(server, "ls", p) == (0, ["[b, s0000000000]"], "")
    assert fj(server, "get", p + "/b") == (0, ["null"], "")
    assert fj(server, "get", p) == (0, ["hello"], "")

    rc, out, _ = fj(server, "get", "-s", p)
    assert rc == 0 and out[0] == "hello"
    st = parse_stat(out[1:])
    check_stat(st, zk.exists(p), ("2", "0", "0"), ("0x0", "5", "2"))
    assert re.match(r"^\w{3} \w{3} \d\d \d\d:\d\d:\d\d \S+ \d{4}$", st["ctime"]), st["ctime"]

    rc, out, _ = fj(server, "ls", "-s", p)
    assert rc == 0 and out[0] == "[b, s0000000000]" and list(parse_stat(out[1:])) == STAT_KEYS
    rc, out, _ = fj(server, "stat", p)
    assert rc == 0 and list(parse_stat(out)) == STAT_KEYS and len(out) == 11

    assert fj(server, "set", p, "world") == (0, [], "")
    assert zk.get(p)[0] == b"world"
    rc, out, err = fj(server, "set", "-v", "9", p, "x")
    assert (rc != 0, err) == (True, "version No is not valid : " + p)
    assert fj(server, "set", "-v", "1", p, "x")[0] == 0

    rc, _, err = fj(server, "delete", p)
    assert (rc != 0, err) == (True, "Node not empty: " + p)
    rc, _, err = fj(server, "delete", "-v", "3", p + "/b")
    assert (rc != 0, err) == (True, "version No is not valid : %s/b" % p)
    assert fj(server, "delete", p + "/b") == (0, [], "")
    for cmd in (["get", root + "/nope"], ["stat", root + "/nope"], ["ls", root + "/nope"],
                ["delete", root + "/nope"], ["deleteall", root + "/nope"],
                ["create", root + "/x/y"]):
        rc, out, err = fj(server, *cmd)
        path = cmd[1]
        assert (rc != 0, out, err) == (True, [], "Node does not exist: " + path), cmd
    rc, _, err = fj(server, "create", "nopath")
    assert (rc != 0, err) == (True, "Path must start with / character")

    zk.ensure_path(p + "/d/e/f")
    zk.ensure_path(p + "/c")
    # Breadth first, children sorted, like zkCli's ls -R.
    assert fj(server, "ls", "-R", p) == (
        0, [p, p + "/c", p + "/d", p + "/s0000000000", p + "/d/e", p + "/d/e/f"], "")
    assert fj(server, "deleteall", p) == (0, [], "")
    assert zk.exists(p) is None


def test_ephemeral_and_container(server, zk, root):
    rc, out, _ = fj(server, "create", "-e", root + "/e", "x")
    assert (rc, out) == (0, ["Created %s/e" % root])
    # The command's session is closed on exit: its ephemeral is gone.
    assert zk.exists(root + "/e") is None
    rc, out, _ = fj(server, "create", "-e", "-s", root + "/es")
    assert (rc, out) == (0, ["Created %s/es0000000001" % root])
    assert fj(server, "create", "-c", root + "/c")[:2] == (0, ["Created %s/c" % root])
    assert zk.exists(root + "/c") is not None
    rc, _, err = fj(server, "create", "-c", "-e", root + "/c2")
    assert rc != 0 and err
    # TTL nodes (the fixture's servers enable extended types, as ZooKeeper needs).
    assert fj(server, "create", "-t", "60000", root + "/ttl", "v")[:2] == (
        0, ["Created %s/ttl" % root])
    assert zk.get(root + "/ttl")[0] == b"v"
    rc, out, _ = fj(server, "create", "-s", "-t", "60000", root + "/ttls")
    assert rc == 0 and re.match(r"^Created %s/ttls\d{10}$" % root, out[0]), out


def test_json_output(server, zk, root):
    p = root + "/j"
    rc, out, _ = fj(server, "--output", "json", "create", p, "v")
    assert rc == 0 and json.loads(out[0])["created"] == p
    zk.create(p + "/k")
    rc, out, _ = fj(server, "ls", p, "--output", "json")
    assert (rc, json.loads(out[0])) == (0, ["k"])
    rc, out, _ = fj(server, "--output", "json", "get", p)
    obj = json.loads(out[0])
    assert obj["data"] == "v" and obj["stat"]["numChildren"] == 1
    assert obj["stat"]["mZxid"] == zk.exists(p).mzxid
    rc, out, _ = fj(server, "--output", "json", "get", p + "/k")
    assert json.loads(out[0])["data"] in (None, "")
    rc, out, err = fj(server, "--output", "json", "get", root + "/nope")
    assert rc != 0 and out == []
    e = json.loads(err)
    assert e["code"] == "NoNode" and e["error"] == "Node does not exist: %s/nope" % root
    rc, out, _ = fj(server, "--output", "json", "ls", "-R", p)
    assert json.loads(out[0]) == [p, p + "/k"]


def test_chroot(server, zk, root):
    coord = server.hosts + root
    assert fj(server, "create", "/x", "1", coord=coord) == (0, ["Created /x"], "")
    assert zk.get(root + "/x")[0] == b"1"
    assert fj(server, "ls", "/", coord=coord) == (0, ["[x]"], "")
    assert fj(server, "ls", "-R", "/", coord=coord) == (0, ["/", "/x"], "")


def test_unreachable_coordinator():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.run([FJORD, "znode", "--coord", "127.0.0.1:%d" % port,
                        "--session-timeout-ms", "1000", "ls", "/"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode != 0 and "Unable to connect" in p.stderr


def test_refused_connection_is_reported_at_once():
    """Port 1 refuses at once: no 10 s wait (the default session timeout
    would allow one) before saying so."""
    t0 = time.monotonic()
    p = subprocess.run([FJORD, "znode", "--coord", "127.0.0.1:1", "ls", "/"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    took = time.monotonic() - t0
    assert p.returncode != 0, p
    assert "Unable to connect to 127.0.0.1:1" in p.stderr and "refused" in p.stderr.lower(), p.stderr
    assert took < 3.0, "took %.1fs to report a refused connection" % took


def read_lines(proc, n, timeout=10.0):
    """Up to n stdout lines within timeout (a reader thread: select() cannot see
    lines already sitting in Python's buffer)."""
    import queue
    import threading
    q = queue.Queue()

    def pump():
        for l in proc.stdout:
            q.put(l.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    lines = []
    deadline = time.time() + timeout
    while len(lines) < n and time.time() < deadline:
        try:
            lines.append(q.get(timeout=max(0.01, deadline - time.time())))
        except queue.Empty:
            break
    return lines


@pytest.mark.parametrize("output", ["text", "json"])
def test_watch_prints_events(server, zk, root, output):
    proc = subprocess.Popen([FJORD, "znode", "--coord", server.hosts, "--output", output,
                             "watch", "--recursive", root],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The watch is armed once the process has connected; give it a moment.
        time.sleep(1.0)
        zk.create(root + "/w", b"1")
        zk.set(root + "/w", b"2")
        zk.delete(root + "/w")
        lines = read_lines(proc, 3)
    finally:
        proc.terminate()
        proc.wait(10)
    if output == "text":
        assert lines == [
            "WatchedEvent state:SyncConnected type:NodeCreated path:%s/w" % root,
            "WatchedEvent state:SyncConnected type:NodeDataChanged path:%s/w" % root,
            "WatchedEvent state:SyncConnected type:NodeDeleted path:%s/w" % root,
        ], lines
    else:
        evs = [json.loads(l) for l in lines]
        assert [(e["type"], e["path"]) for e in evs] == [
            ("NodeCreated", root + "/w"), ("NodeDataChanged", root + "/w"),
            ("NodeDeleted", root + "/w")]
