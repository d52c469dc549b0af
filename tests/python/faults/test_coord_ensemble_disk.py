"""A coordinator ensemble member whose disk fails or fills (issue 19), on
real processes with kazoo: 3 fjord-coord members.

- EIO on the leader's Raft log (the fjordfault injector): it stops leading
  and voting, the other two elect a leader and writes through them go on
  (a write in flight to the leader as it leaves gets ConnectionLoss, its
  outcome unknown as with any leader loss: kazoo's retry carries it);
  the member (same pid: it re-execs itself) waits without joining while its
  disk refuses writes, a client that was connected to it keeps its session
  on another member, and once the disk heals it rejoins and has every
  acknowledged znode.
- A follower's dataDir on a 20 MB tmpfs filled past its free-space floor
  (fjord.minFreeBytes=4 MB): the same, with no client error at all, and back
  when the filler is removed.
"""
import os
import threading
import time

import pytest

kazoo = pytest.importorskip("kazoo")
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import ConnectionLoss, NodeExistsError  # noqa: E402

from fjordtest import zkwire  # noqa: E402
from fjordtest.coord import close_kazoo  # noqa: E402
from fjordtest.ensemble import Ensemble, require_ensemble  # noqa: E402
from fjordtest.faults import Injector, Tmpfs, shim_path  # noqa: E402
from fjordtest.net import HOST  # noqa: E402


def wait_for(what, pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("not within %.0fs: %s" % (timeout, what))


def serving(m):
    try:
        return zkwire.four_letter(m.port, "ruok", HOST, 1.0) == "imok"
    except OSError:
        return False


class Writer(threading.Thread):
    """Creates /w/<n> one after another through the given members. Strict:
    every error counts. Retrying (for a leader that leaves): a ConnectionLoss
    (the write was in flight to the leader: outcome unknown, as with any
    leader loss) is retried with kazoo's retry, a NodeExists then meaning the
    first try went through; other errors count."""

    def __init__(self, hosts, retrying=False):
        super().__init__(daemon=True)
        self.zk = KazooClient(hosts=hosts, timeout=6.0)
        self.zk.start(timeout=10)
        self.zk.ensure_path("/w")
        self.retrying = retrying
        self.acked = []
        self.errors = []
        self.losses = 0
        self.stop_at = None

    def create(self, path, value):
        if not self.retrying:
            return self.zk.create(path, value)
        try:
            return self.zk.create(path, value)
        except ConnectionLoss:
            self.losses += 1
        try:
            return self.zk.retry(self.zk.create, path, value)
        except NodeExistsError:
            assert self.zk.get(path)[0] == value

    def run(self):
        i = 0
        while self.stop_at is None or time.time() < self.stop_at:
            try:
                self.create("/w/%06d" % i, b"v%d" % i)
                self.acked.append(i)
            except Exception as e:   # noqa: BLE001 - any failure is the finding
                self.errors.append(repr(e))
            i += 1
            time.sleep(0.01)


def leave_and_rejoin(e, victim, break_disk, heal_disk, expect_log, retrying=False):
    others = [m for m in e.members if m is not victim]
    pid = victim.pid
    w = Writer(e.hosts(others), retrying)
    mover = e.kazoo(member=victim, timeout=6.0)
    session = mover.client_id[0]
    clients = [w.zk, mover]
    try:
        w.start()
        time.sleep(1.0)
        break_disk()
        wait_for("the member to stop serving", lambda: not serving(victim), 20)
        wait_for("a leader among the others", lambda: any(m.mode() == "leader" for m in others), 20)
        time.sleep(3.0)                       # writes go on through the others meanwhile
        assert victim.alive() and victim.pid == pid, "the member exited instead of re-executing"
        assert not serving(victim), "the member serves clients while its disk refuses writes"
        log = victim.log_tail(1 << 20)
        assert "cannot persist" in log and expect_log in log, log[-3000:]
        assert "not joining the ensemble" in log, log[-3000:]
        # The client that was on the member moved with its session.
        assert mover.exists("/w") is not None
        assert mover.client_id[0] == session

        heal_disk()
        wait_for("the member to serve again", lambda: serving(victim), 30)
        w.stop_at = time.time() + 1.0
        w.join(30)
        assert not w.errors, w.errors[:5]
        assert len(w.acked) > 100, len(w.acked)
        last = "/w/%06d" % w.acked[-1]
        direct = KazooClient(hosts="%s:%d" % (HOST, victim.port), timeout=6.0)
        direct.start(timeout=10)
        clients.append(direct)
        direct.sync("/w")
        wait_for("the member to have the last write", lambda: direct.exists(last), 20)
        names = set(direct.get_children("/w"))
        missing = [i for i in w.acked if "%06d" % i not in names]
        assert not missing, missing[:10]
        assert victim.mode() in ("follower", "leader")
        print("acknowledged %d writes, 0 errors (%d in flight to the leader retried), "
              "while member %d left and rejoined" % (len(w.acked), w.losses, victim.sid))
    finally:
        w.stop_at = 0
        close_kazoo(clients)


def test_ensemble_leader_with_eio_leaves_and_rejoins():
    require_ensemble()
    shim_path()
    e = Ensemble(3)
    try:
        injectors = {}
        for m in e.members:
            injectors[m.sid] = Injector(m.data_dir, ctl_dir=m.dir)
            m.env.update(injectors[m.sid].env)
        e.start()
        victim = e.wait_leader()
        inj = injectors[victim.sid]
        leave_and_rejoin(e, victim, lambda: inj.arm("eio"), inj.disarm,
                         "Raft log could not be written", retrying=True)
    finally:
        e.cleanup()


def test_ensemble_member_with_full_disk_leaves_and_rejoins():
    require_ensemble()
    e = Ensemble(3, {"fjord.minFreeBytes": str(4 << 20)})
    victim = e.members[2]
    fs = Tmpfs(victim.data_dir, "20m")
    filler = os.path.join(victim.data_dir, "filler")
    try:
        fs.mount()
        victim.write_config({"fjord.minFreeBytes": str(4 << 20)})   # myid on the tmpfs
        e.start()
        if e.leader() is victim:         # a follower's disk: its leaving costs no client a thing
            victim.stop()
            victim.start()
            e.wait_leader(exclude=victim)
            wait_for("the member to serve", lambda: serving(victim), 20)

        def fill():
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, fs.free_bytes() - (2 << 20)))

        leave_and_rejoin(e, victim, fill, lambda: os.unlink(filler), "free-space floor")
    finally:
        for m in e.members:
            m.kill9()
        fs.umount()
        e.cleanup()
