"""Storage faults for tests (issue 19): a small tmpfs (ENOSPC for real) and
the fjordfault LD_PRELOAD shim (tests/faults/fjordfault.c: EIO or ENOSPC on
writes and syncs of files under a path prefix, armed by a control file).

    with Tmpfs(path, "30m") as fs:      # mounts; fs.resize("200m"); unmounts on exit
    inj = Injector(prefix)              # builds the shim once per session
    proc.env.update(inj.env)            # before proc.start()
    inj.arm("eio", ops="sync", after=0) # ...; inj.disarm()

A machine that cannot mount (not root, no tmpfs) skips the tmpfs tests; a
missing C compiler skips the injector's (fails them under
FJORD_REQUIRE_BINARIES=1: the build needs one anyway).
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from fjordtest.binaries import require_binaries

_HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_SOURCE = os.path.normpath(os.path.join(_HERE, "..", "..", "faults", "fjordfault.c"))
_built = {}


def _unable(why):
    if require_binaries():
        pytest.fail(why)
    pytest.skip(why)


def shim_path():
    """Compile fjordfault.c into a private temp dir (once per session)."""
    if "so" in _built:
        return _built["so"]
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        _unable("no C compiler to build the fault injector")
    out_dir = tempfile.mkdtemp(prefix="fjordfault-")
    so = os.path.join(out_dir, "fjordfault.so")
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", so, SHIM_SOURCE, "-ldl", "-lpthread"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        _unable("building the fault injector failed: " + r.stderr[-2000:])
    _built["so"] = so
    return so


class Injector:
    """EIO/ENOSPC for files under `prefix` in processes started with `env`."""

    def __init__(self, prefix, ctl_dir=None):
        self.prefix = os.path.abspath(prefix)
        self.ctl = os.path.join(ctl_dir or tempfile.mkdtemp(prefix="fjordfault-ctl-"), "armed")
        self.env = {"LD_PRELOAD": shim_path(), "FJORDFAULT_PREFIX": self.prefix,
                    "FJORDFAULT_CTL": self.ctl}

    def arm(self, error="eio", ops=None, after=None):
        """Fail writes and/or syncs ("write", "sync", None = both) with `error`
        ("eio" | "enospc"), after `after` more bytes."""
        words = [error]
        if ops:
            words.append(ops)
        if after is not None:
            words.append("after=%d" % after)
        with open(self.ctl, "w") as f:
            f.write(" ".join(words))
        time.sleep(0.05)        # the shim re-reads the file every 20 ms

    def disarm(self):
        try:
            os.remove(self.ctl)
        except FileNotFoundError:
            pass
        time.sleep(0.05)


class Tmpfs:
    """A tmpfs of `size` (mount's syntax, e.g. "30m") mounted on `path`."""

    def __init__(self, path, size):
        self.path = path
        self.size = size
        self.mounted = False

    def mount(self):
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        os.makedirs(self.path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % self.size, "tmpfs", self.path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip("mount -t tmpfs failed: " + r.stderr)
        self.mounted = True
        return self

    def resize(self, size):
        """Grow (or shrink) the mounted filesystem in place: what an operator
        freeing or adding space looks like to the process."""
        subprocess.run(["mount", "-o", "remount,size=%s" % size, self.path], check=True)
        self.size = size

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def umount(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], check=False)
            self.mounted = False

    def __enter__(self):
        return self.mount()

    def __exit__(self, *exc):
        self.umount()
