"""A coordinator whose data dir fills up or fails (issue 19), on real
processes with kazoo.

- Full disk (dataDir on a 20 MB tmpfs, fjord.minFreeBytes=4 MB): once the
  free-space guard trips, writes are answered ZSYSTEMERROR (kazoo's
  SystemZookeeperError: a failed call, never success); the session survives
  (pings answered past several session timeouts, same session id, no
  SUSPENDED/LOST), reads work; after `mount -o remount,size=...` writes
  succeed again within 10 s, no restart; every acknowledged znode is there
  with its data, no refused one.
- EIO on fsync (the fjordfault injector): the member never retries the
  fsync: the write in flight is not acknowledged (the client sees the
  connection drop), the process exits, and a restart on a healthy disk has
  every acknowledged write.
"""
import os
import time

import pytest

kazoo = pytest.importorskip("kazoo")
from kazoo.exceptions import ConnectionLoss, SystemZookeeperError  # noqa: E402
from kazoo.protocol.states import KazooState  # noqa: E402

from fjordtest import cleanup  # noqa: E402
from fjordtest.binaries import coord_binary, require  # noqa: E402
from fjordtest.coord import Server, close_kazoo, four_letter  # noqa: E402
from fjordtest.faults import Injector, Tmpfs  # noqa: E402

VALUE = 256 * 1024


def data(i):
    return (b"%08d" % i) * (VALUE // 8)


def mntr(port):
    out = {}
    for line in four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def test_coord_full_disk_refuses_writes_keeps_session_and_resumes():
    require(coord_binary())
    d = cleanup.temp_dir("fjord-coord-disk-")
    srv = None
    clients = []
    fs = None
    try:
        srv = Server("fjord", {"tickTime": 500, "fjord.minFreeBytes": 4 << 20,
                               "minSessionTimeout": 1000}, workdir=os.path.join(d, "coord"))
        fs = Tmpfs(srv.data_dir, "20m").mount()
        srv.start()
        zk = srv.kazoo(timeout=4.0)
        clients.append(zk)
        states = []
        zk.add_listener(lambda s: states.append(s))
        session = zk.client_id[0]
        zk.create("/fill")
        acked, refused = [], None
        for i in range(200):
            try:
                zk.create("/fill/n%04d" % i, data(i))
                acked.append(i)
            except SystemZookeeperError as e:
                refused = (i, e)
                break
        assert refused is not None, "20 MB took %d x 256 KB znodes" % len(acked)
        assert len(acked) >= 20, acked
        assert srv.alive()
        assert mntr(srv.port).get("zk_fjord_disk_below_min_free") == "1"

        def multi():
            t = zk.transaction()
            t.create("/t")
            return t.commit()

        # Every write kind is refused, nothing is applied.
        for call in (lambda: zk.set("/fill/n0000", b"x"), lambda: zk.delete("/fill/n0000"),
                     lambda: zk.create("/other"), multi):
            try:
                r = call()
            except SystemZookeeperError:
                continue
            if isinstance(r, list) and r and isinstance(r[0], SystemZookeeperError):
                continue
            raise AssertionError("a write went through below the floor: %r" % (r,))
        assert zk.get("/fill/n0000")[0] == data(0)
        assert zk.exists("/other") is None and zk.exists("/t") is None

        # The session lives on (pings answered) past 3 session timeouts; reads work.
        time.sleep(3 * 4.0)
        assert zk.state == KazooState.CONNECTED and zk.client_id[0] == session
        assert KazooState.SUSPENDED not in states and KazooState.LOST not in states, states
        kids = sorted(zk.get_children("/fill"))
        assert kids == ["n%04d" % i for i in acked]
        assert zk.get("/fill/n%04d" % acked[-1])[0] == data(acked[-1])

        # Room again: writes succeed within 10 s, no restart.
        fs.resize("200m")
        grown = time.time()
        ok = False
        while time.time() < grown + 10 and not ok:
            try:
                zk.create("/after", b"ok")
                ok = True
            except SystemZookeeperError:
                time.sleep(0.2)
        assert ok, "writes still refused 10 s after the remount; log:\n" + srv.log_tail()
        assert srv.starts == 1 and srv.alive()
        assert mntr(srv.port).get("zk_fjord_disk_below_min_free") == "0"
        assert zk.client_id[0] == session
        for i in acked:
            assert zk.get("/fill/n%04d" % i)[0] == data(i)
        assert zk.exists("/fill/n%04d" % refused[0]) is None
        log = srv.log_tail(1 << 20)
        assert "below its free-space floor" in log and "back above its floor" in log
    finally:
        close_kazoo(clients)
        if srv:
            srv.stop()
        if fs:
            fs.umount()
        cleanup.remove_dir(d)


def test_coord_fsync_eio_stops_without_acknowledging_and_recovers():
    require(coord_binary())
    d = cleanup.temp_dir("fjord-coord-eio-")
    srv = None
    clients = []
    try:
        srv = Server("fjord", {"tickTime": 500}, workdir=os.path.join(d, "coord"))
        inj = Injector(srv.data_dir, ctl_dir=d)
        srv.env.update(inj.env)
        srv.start()
        zk = srv.kazoo(timeout=4.0)
        clients.append(zk)
        for i in range(50):
            zk.create("/k%02d" % i, b"v%d" % i)
        inj.arm("eio", ops="sync")
        with pytest.raises(ConnectionLoss):
            zk.create("/lost", b"never acknowledged")
        deadline = time.time() + 10
        while srv.alive() and time.time() < deadline:
            time.sleep(0.1)
        assert not srv.alive(), "the member went on after a failed fsync"
        assert srv.proc.returncode != 0
        assert "fsync of the transaction log" in srv.log_tail(1 << 20)
        close_kazoo(clients)
        clients.clear()

        inj.disarm()
        srv.env.clear()
        srv.start()
        zk = srv.kazoo(timeout=4.0)
        clients.append(zk)
        for i in range(50):
            assert zk.get("/k%02d" % i)[0] == b"v%d" % i
        zk.create("/again", b"ok")
    finally:
        close_kazoo(clients)
        if srv:
            srv.stop()
        cleanup.remove_dir(d)
