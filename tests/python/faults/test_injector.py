"""The fault injector itself (tests/faults/fjordfault.c) on a real child
process: writes and syncs of files under the prefix fail with the armed
error, after the byte budget, and only while the control file exists; files
elsewhere are untouched."""
import os
import subprocess
import sys

from fjordtest import cleanup
from fjordtest.faults import Injector, Tmpfs

CHILD = r"""
import os, sys, time
d = sys.argv[1]
def attempt(what, f):
    try:
        f(); print(what, "ok")
    except OSError as e:
        print(what, e.errno)
    sys.stdout.flush()
f = os.open(os.path.join(d, "a"), os.O_WRONLY | os.O_CREAT, 0o644)
g = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "w":
        attempt("w", lambda: os.write(f, b"x" * int(cmd[1])))
    elif cmd[0] == "s":
        attempt("s", lambda: os.fdatasync(f))
    elif cmd[0] == "o":
        attempt("o", lambda: os.write(g, b"y"))
"""


def run(inj, d, other, script):
    env = dict(os.environ, **inj.env)
    p = subprocess.Popen([sys.executable, "-c", CHILD, d, other], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env)
    out = []
    for step in script:
        if callable(step):
            step()
            continue
        p.stdin.write(step + "\n")
        p.stdin.flush()
        out.append(p.stdout.readline().strip())
    p.stdin.close()
    p.wait(10)
    return out


def test_eio_enospc_budget_and_disarm():
    d = cleanup.temp_dir("fjordfault-")
    try:
        data = os.path.join(d, "data")
        os.makedirs(data)
        inj = Injector(data, ctl_dir=d)
        other = os.path.join(d, "other")
        out = run(inj, data, other, [
            "w 10", "s",
            lambda: inj.arm("enospc", after=100),
            "w 60", "w 60", "s", "o",
            inj.disarm,
            "w 10", "s",
            lambda: inj.arm("eio", ops="sync"),
            "w 10", "s",
            inj.disarm,
            "s",
        ])
        assert out == ["w ok", "s ok",
                       "w ok", "w 28", "s 28", "o ok",
                       "w ok", "s ok",
                       "w ok", "s 5",
                       "s ok"], out
    finally:
        cleanup.remove_dir(d)


def test_tmpfs_fills_and_grows():
    d = cleanup.temp_dir("fjordfault-tmpfs-")
    try:
        with Tmpfs(os.path.join(d, "mnt"), "1m") as fs:
            path = os.path.join(fs.path, "fill")
            with open(path, "wb", buffering=0) as f:
                try:
                    for _ in range(2048):
                        f.write(b"z" * 1024)
                    raise AssertionError("a 1 MB tmpfs took 2 MB")
                except OSError as e:
                    assert e.errno == 28
            fs.resize("4m")
            assert fs.free_bytes() > 2 << 20
    finally:
        cleanup.remove_dir(d)
