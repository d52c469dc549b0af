"""A fjord-coord ensemble replicated with Raft, tested with kazoo against real
processes: one leader, writes through any member, kill -9 of the leader under
load (no acknowledged write lost, sessions and ephemerals kept, clients of the
dead member resume elsewhere), a restarted member catching up (through a
snapshot when it missed more than the log keeps), quorum loss stopping writes."""
import os
import subprocess
import sys
import time

import pytest
from kazoo.exceptions import ConnectionLoss, OperationTimeoutError

from fjordtest.binaries import coord_binary, require
from fjordtest.coord import four_letter
from fjordtest.ensemble import running
from fjordtest.workers import Writers


def all_children(ens, member, path):
    zk = ens.kazoo(member=member)
    try:
        zk.sync(path)
        return set(zk.get_children(path))
    finally:
        zk.stop()


def test_one_leader_and_writes_through_every_member(ensemble3):
    e = ensemble3
    modes = sorted(m.mode() for m in e.members)
    assert modes == ["follower", "follower", "leader"], modes
    states = sorted(dict(l.split("\t", 1) for l in four_letter(m.port, "mntr", timeout=2.0).splitlines() if "\t" in l)
                    ["zk_server_state"] for m in e.members)
    assert states == ["follower", "follower", "leader"]
    for m in e.members:
        zk = e.kazoo(member=m)
        zk.create("/via%d" % m.sid, b"m%d" % m.sid)
        seq = zk.create("/seq-", b"", sequence=True)
        zk.set("/via%d" % m.sid, b"again")
        # Read-your-writes on a follower.
        assert zk.get("/via%d" % m.sid)[0] == b"again"
        assert seq.startswith("/seq-")
        zk.stop()
    # Every member applied the same entries: same zxid and same tree.
    deadline = time.time() + 5
    while len({m.zxid() for m in e.members}) != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert len({m.zxid() for m in e.members}) == 1
    for m in e.members:
        zk = e.kazoo(member=m)
        assert {"via1", "via2", "via3"} <= set(zk.get_children("/"))
        assert zk.get("/via2")[0] == b"again"
        assert zk.get("/via2")[1].version == 1
        zk.stop()


def test_leader_kill_loses_no_acknowledged_write_and_no_session(ensemble3):
    e = ensemble3
    w = Writers(e, 9)
    try:
        w.start()
        time.sleep(1.5)
        leader = e.leader()
        assert leader is not None
        killed_at = time.time()
        leader.kill9()
        new = e.wait_leader(timeout=10, exclude=leader)
        assert new is not leader
        time.sleep(2.5)
        w.finish()
        assert not w.errors, w.errors
        after = w.acked_after(killed_at)
        assert after, "no write acknowledged after the leader was killed"
        resumed = min(after) - killed_at
        print("writes resumed %.2fs after kill -9 of the leader; %d acknowledged" % (
            resumed, len(w.paths())))
        assert resumed < 3.0, resumed
        # Zero acknowledged writes lost, on every surviving member.
        for m in e.live():
            have = all_children(e, m, "/load")
            missing = [p for p in w.paths() if p.rsplit("/", 1)[1] not in have]
            assert not missing, "member %d lost %d acknowledged writes, e.g. %s" % (
                m.sid, len(missing), missing[:3])
        # Sessions all alive, the killed member's clients included (they moved).
        for i, c in enumerate(w.clients):
            assert c.connected, "client %d disconnected" % i
            assert c.client_id[0] == w.sessions[i]
            assert c.exists("/load/eph-%d" % i) is not None, "ephemeral of client %d gone" % i
        moved = [i for i, h in enumerate(w.home) if h is leader]
        assert moved
        for i in moved:
            assert w.clients[i]._connection._socket.getpeername()[1] != leader.port
    finally:
        w.close()
    # The killed member comes back and catches up.
    leader.start()
    deadline = time.time() + 15
    while time.time() < deadline:
        zs = {m.zxid() for m in e.members}
        if len(zs) == 1 and None not in zs:
            break
        time.sleep(0.1)
    assert len({m.zxid() for m in e.members}) == 1, [m.zxid() for m in e.members]
    assert leader.mode() == "follower"
    assert all_children(e, leader, "/load") == all_children(e, e.leader(), "/load")


def test_closed_and_expired_sessions_delete_ephemerals_everywhere(ensemble3):
    e = ensemble3
    a = e.kazoo(member=e.members[0], timeout=2.0)
    a.create("/gone", b"", ephemeral=True)
    # A client process that dies without closing: its session must expire
    # (the leader owns expiry, wherever the client was connected).
    follower = [m for m in e.members if m.mode() == "follower"][0]
    code = ("from kazoo.client import KazooClient; import os, signal; "
            "z = KazooClient(hosts='127.0.0.1:%d', timeout=2.0); z.start(10); "
            "z.create('/expires', b'', ephemeral=True); os.kill(os.getpid(), signal.SIGKILL)"
            % follower.port)
    subprocess.run([sys.executable, "-c", code], timeout=30)
    z = e.kazoo(member=e.members[2])
    assert z.exists("/expires") is not None
    a.stop()
    deadline = time.time() + 10
    while time.time() < deadline and (z.exists("/gone") or z.exists("/expires")):
        time.sleep(0.1)
    assert z.exists("/gone") is None
    assert z.exists("/expires") is None
    z.stop()


def test_five_members_survive_two_losses_and_stop_at_three(ensemble5):
    e = ensemble5
    zk = e.kazoo()
    zk.create("/five", b"0")
    zk.stop()
    leader = e.leader()
    others = [m for m in e.members if m is not leader]
    leader.kill9()
    others[0].kill9()
    e.wait_leader(timeout=10)
    survivors = e.live()
    zk = e.kazoo(member=survivors[0])
    zk.set("/five", b"1")
    assert zk.get("/five")[0] == b"1"
    zk.stop()
    # A third loss leaves 2 of 5: no quorum, so no write may succeed (and no
    # new session can be created: that is a write too).
    third = e.leader()
    rest = [m for m in e.live() if m is not third]
    zk = e.kazoo(member=rest[0], timeout=4.0)
    third.kill9()
    assert len(e.live()) == 2
    ok = False
    try:
        zk.set_async("/five", b"2").get(timeout=5)
        ok = True
    except Exception:
        pass
    assert not ok, "a write succeeded without a quorum"
    from kazoo.client import KazooClient
    fresh = KazooClient(hosts=e.hosts(rest), timeout=4.0)
    with pytest.raises(Exception):
        fresh.start(timeout=3)
    fresh.stop()
    zk.stop()
    # One member back: quorum again, writes resume, nothing acknowledged lost.
    third.start()
    e.wait_leader(timeout=15)
    zk = e.kazoo(member=third)
    deadline = time.time() + 10
    while True:
        try:
            zk.set("/five", b"3")
            break
        except (ConnectionLoss, OperationTimeoutError):
            assert time.time() < deadline
            time.sleep(0.1)
    assert zk.get("/five")[0] == b"3"
    zk.stop()


def test_member_down_for_100k_writes_catches_up_from_a_snapshot():
    """Issue 6: a member down while 100,000 writes commit restarts and catches
    up through a snapshot (the log it missed was purged), with every write."""
    n = int(os.environ.get("FJORD_CATCHUP_WRITES", "100000"))
    with running(3, {"snapCount": "2000"}) as e:
        follower = [m for m in e.members if m.mode() == "follower"][0]
        follower.kill9()
        zk = e.kazoo(member=[m for m in e.live()][0])
        zk.ensure_path("/bulk")
        started = time.time()
        # Pipelined: up to 1,000 creates in flight (concurrent writes share
        # Raft entries; snapCount counts entries).
        pending = []
        for i in range(n):
            pending.append(zk.create_async("/bulk/n%06d" % i, b"y"))
            if len(pending) >= 1000:
                for p in pending:
                    p.get(timeout=60)
                pending = []
        for p in pending:
            p.get(timeout=60)
        wrote = time.time() - started
        zk.stop()
        restarted = time.time()
        follower.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            if len({m.zxid() for m in e.members}) == 1:
                break
            time.sleep(0.1)
        caught_up = time.time() - restarted
        assert len({m.zxid() for m in e.members}) == 1, [m.zxid() for m in e.members]
        assert "installed a snapshot" in follower.log_tail(2000000)
        assert len(all_children(e, follower, "/bulk")) == n
        print("%d writes in %.1fs while a follower was down; it caught up in %.1fs" % (
            n, wrote, caught_up))


@pytest.mark.parametrize("case", ["no-myid", "unknown-id", "bad-myid"])
def test_bad_ensemble_config_exits_2_naming_the_file(case, tmp_path):
    require(coord_binary())
    data = tmp_path / "data"
    data.mkdir()
    if case == "unknown-id":
        (data / "myid").write_text("9\n")
    elif case == "bad-myid":
        (data / "myid").write_text("one\n")
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=%s\nclientPort=0\nserver.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n" % data)
    p = subprocess.run([coord_binary(), str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, p.stderr
    assert "myid" in p.stderr, p.stderr


def test_paused_leader_is_replaced_and_rejoins_without_losses(ensemble3):
    """SIGSTOP the leader (a GC pause, a frozen VM): the others elect a new
    leader; after SIGCONT the old one steps down and catches up."""
    import signal
    e = ensemble3
    w = Writers(e, 6, prefix="/pause")
    leader = e.leader()
    try:
        w.start()
        time.sleep(1.0)
        paused_at = time.time()
        os.kill(leader.proc.pid, signal.SIGSTOP)
        try:
            deadline = time.time() + 10
            new = None
            while time.time() < deadline:
                ls = [m for m in e.members if m is not leader and m.mode() == "leader"]
                if ls:
                    new = ls[0]
                    break
                time.sleep(0.05)
            assert new is not None, "no new leader while the old one is paused"
            time.sleep(4.0)
        finally:
            os.kill(leader.proc.pid, signal.SIGCONT)
        time.sleep(2.0)
        w.finish()
        assert not w.errors, w.errors
        assert w.acked_after(paused_at + 0.5), "writes did not resume"
        deadline = time.time() + 10
        while time.time() < deadline and len({m.zxid() for m in e.members}) != 1:
            time.sleep(0.1)
        assert sorted(m.mode() for m in e.members) == ["follower", "follower", "leader"]
        for m in e.members:
            have = all_children(e, m, "/pause")
            missing = [p for p in w.paths() if p.rsplit("/", 1)[1] not in have]
            assert not missing, "member %d lost %d acknowledged writes" % (m.sid, len(missing))
        for i, c in enumerate(w.clients):
            assert c.client_id[0] == w.sessions[i]
            assert c.exists("/pause/eph-%d" % i) is not None, "ephemeral of client %d gone" % i
    finally:
        w.close()
