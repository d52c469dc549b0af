"""Debian's zkCli.sh (Apache ZooKeeper 3.8) against the server, non-interactively.

Each zkCli.sh start is a JVM start (~0.7 s here), so the number of invocations is
kept small. Output shapes were taken from runs against Apache ZooKeeper 3.8.
"""
import os
import re
import subprocess
import time

import pytest

from fjordtest.binaries import require
from fjordtest.zkcli import STAT_KEYS, ZKCLI, ZKCLI_ENV, check_stat, parse_stat


@pytest.fixture(autouse=True)
def need_zkcli():
    require(ZKCLI)


def cli(server, *args, timeout=60):
    p = subprocess.run([ZKCLI, "-server", server.hosts] + list(args), env=ZKCLI_ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    # drop JVM/log noise; keep what zkCli prints for the command
    lines = [l for l in p.stdout.splitlines()
             if l and not l.startswith("SLF4J:") and l != "WATCHER::"
             and not l.startswith("Connecting to ")
             and l != "WatchedEvent state:SyncConnected type:None path:null"]
    return p.returncode, lines


def test_zkcli_commands(server, new_wire, root):
    p = root + "/zc"
    w = new_wire()

    rc, out = cli(server, "create", p, "hello")
    assert (rc, out) == (0, ["Created " + p])
    assert w.get(p)[0] == b"hello"

    rc, out = cli(server, "create", p, "again")
    assert rc != 0 and out == ["Node already exists: " + p], out

    rc, out = cli(server, "create", "-s", p + "/s", "x")
    assert (rc, out) == (0, ["Created %s/s0000000000" % p])

    w.create(p + "/gone")
    w.delete(p + "/gone")

    rc, out = cli(server, "ls", p)
    assert (rc, out) == (0, ["[s0000000000]"])

    rc, out = cli(server, "set", p, "world")
    assert (rc, out) == (0, [])

    rc, out = cli(server, "get", "-s", p)
    assert rc == 0 and out[0] == "world", out
    st = parse_stat(out[1:])
    check_stat(st, w.exists(p), ("3", "1", "0"), ("0x0", "5", "1"))
    assert re.match(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}$", st["ctime"]), st["ctime"]

    rc, out = cli(server, "delete", p)
    assert rc != 0 and out == ["Node not empty: " + p], out

    rc, out = cli(server, "delete", p + "/s0000000000")
    assert (rc, out) == (0, [])
    assert w.children(p) == []

    w.create(p + "/a")
    w.create(p + "/a/b")
    rc, out = cli(server, "deleteall", p)
    assert (rc, out) == (0, [])
    assert w.exists(p) is None

    rc, out = cli(server, "get", p)
    assert rc != 0 and out == ["Node does not exist: " + p], out

    # zkCli's one-shot mode exits without closeSession: the ephemeral lives until expiry
    rc, out = cli(server, "create", "-e", root + "/eph", "x")
    assert (rc, out) == (0, ["Created %s/eph" % root])
    st = w.exists(root + "/eph")
    assert st is not None and st.ephemeralOwner != 0

    rc, out = cli(server, "ls", "/")
    assert rc == 0 and len(out) == 1 and out[0].startswith("[") and "zookeeper" in out[0], out
    names = out[0].strip("[]").split(", ")
    assert root.lstrip("/") in names


def watched_paths(server):
    m = re.search(r"watching (\d+) paths", server.four("wchs"))
    assert m, server.four("wchs")
    return int(m.group(1))


def test_zkcli_addwatch(server, new_wire, root):
    """addWatch (default mode PERSISTENT_RECURSIVE) and -m PERSISTENT in one zkCli
    process fed through stdin, while another client changes the tree."""
    a = new_wire()
    base = root + "/w"
    a.create(base)
    w0 = watched_paths(server)
    p = subprocess.Popen([ZKCLI, "-server", server.hosts], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ZKCLI_ENV)
    try:
        p.stdin.write("addWatch %s\naddWatch -m PERSISTENT %s/z\nls %s\n" % (base, base, base))
        p.stdin.flush()
        # wait until zkCli has registered both watches
        deadline = time.time() + 30
        while time.time() < deadline:
            if watched_paths(server) >= w0 + 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("zkCli never registered its watches; wchs: %r" % server.four("wchs"))
        a.create(base + "/a")
        a.set(base + "/a", b"1")
        a.create(base + "/a/b")
        a.delete(base + "/a/b")
        a.create(base + "/z")
        a.create(base + "/z/q")
        a.set(base + "/z", b"2")
        a.create(base + "/zz-last")
        # wait until zkCli has printed the last event (or 20 s)
        deadline = time.time() + 20
        buf = ""
        os.set_blocking(p.stdout.fileno(), False)
        while time.time() < deadline and base + "/zz-last" not in buf:
            try:
                chunk = p.stdout.read()
            except (BlockingIOError, TypeError):
                chunk = None
            if chunk:
                buf += chunk
            else:
                time.sleep(0.1)
        os.set_blocking(p.stdout.fileno(), True)
        p.stdin.write("quit\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=30)
        out = buf + out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    events = re.findall(r"^WatchedEvent state:(\w+) type:(\w+) path:(\S+)$", out, re.M)
    events = [e for e in events if e[1] != "None"]
    assert events == [
        ("SyncConnected", "NodeCreated", base + "/a"),
        ("SyncConnected", "NodeDataChanged", base + "/a"),
        ("SyncConnected", "NodeCreated", base + "/a/b"),
        ("SyncConnected", "NodeDeleted", base + "/a/b"),
        ("SyncConnected", "NodeCreated", base + "/z"),
        ("SyncConnected", "NodeCreated", base + "/z/q"),
        ("SyncConnected", "NodeChildrenChanged", base + "/z"),
        ("SyncConnected", "NodeDataChanged", base + "/z"),
        ("SyncConnected", "NodeCreated", base + "/zz-last"),
    ], out
