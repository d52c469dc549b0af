"""Membership changes and read-only mode of a fjord-coord ensemble, with kazoo
against real processes: ZooKeeper 3.5+ `reconfig` (add a member started with
the current servers plus itself, remove one, replace one, membership kept
across restarts, /zookeeper/config in ZooKeeper's format), ZRECONFIGDISABLED
without `reconfigEnabled`, and `readonlymode.enabled` (a member cut off from
the quorum serves read-only clients until the quorum is back)."""
import base64
import hashlib
import os
import subprocess
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NewConfigNoQuorumError, NoAuthError,
                              NotReadOnlyCallError, ReconfigDisabledError)

from fjordtest import zkwire
from fjordtest.ensemble import running
from fjordtest.net import HOST
from fjordtest.waits import wait_until
from fjordtest.zkcli import ZKCLI, ZKCLI_ENV

SUPER = "super:secret"
DIGEST = "super:" + base64.b64encode(hashlib.sha1(SUPER.encode()).digest()).decode()
RECONFIG = {"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": DIGEST}


def client(members, read_only=False, auth=True, timeout=10):
    zk = KazooClient(hosts=",".join("%s:%d" % (HOST, m.port) for m in members), timeout=6.0,
                     randomize_hosts=False, read_only=read_only,
                     auth_data=[("digest", SUPER)] if auth else None)
    zk.start(timeout=timeout)
    return zk


def config_members(data):
    """{id: line} of a /zookeeper/config text, plus its version."""
    text = data.decode() if isinstance(data, bytes) else data
    out, version = {}, None
    for line in text.splitlines():
        k, _, v = line.partition("=")
        if k.startswith("server."):
            out[int(k[len("server."):])] = v
        elif k == "version":
            version = int(v, 16)
    return out, version


def retry_write(zk, path, timeout=15):
    def attempt():
        try:
            zk.create(path, b"x")
        except Exception:  # noqa: BLE001
            if zk.exists(path):
                return True
            raise
        return True
    return wait_until(attempt, timeout, "write " + path, retry_on=Exception)


@pytest.fixture
def ens_reconfig():
    with running(3, RECONFIG) as e:
        yield e


def test_add_then_remove_a_member(ens_reconfig):
    e = ens_reconfig
    m1, m2, m3 = e.members
    zk = client([m1, m2])
    data, stat = zk.get("/zookeeper/config")
    members, version = config_members(data)
    assert sorted(members) == [1, 2, 3], data
    assert members[1] == "%s:%d:%d:participant;%s:%d" % (
        HOST, m1.peer_port, m1.election_port, HOST, m1.port)
    for i in range(50):
        zk.create("/before/n%03d" % i, b"v%d" % i, makepath=True)

    # A joiner that never comes up: ZNEWCONFIGNOQUORUM after initLimit ticks
    # (5 s here, longer than kazoo's read timeout: pings are answered meanwhile).
    t0 = time.time()
    with pytest.raises(NewConfigNoQuorumError):
        zk.reconfig(joining="server.9=%s:1:2;%s:3" % (HOST, HOST), leaving=None,
                    new_members=None)
    assert time.time() - t0 > 4.5
    assert zk.connected and zk.client_id is not None
    # (Adding and dropping the learner were membership entries: a new version.)
    members, version = config_members(zk.get("/zookeeper/config")[0])
    assert sorted(members) == [1, 2, 3]

    m4 = e.add_member(RECONFIG)
    # A joiner with an empty log must not start its own ensemble.
    time.sleep(1.0)
    assert m4.mode() in (None, "observer"), m4.mode()
    with pytest.raises(BadVersionError):
        zk.reconfig(joining="server.4=" + m4.spec(), leaving=None, new_members=None,
                    from_config=version + 1)
    with pytest.raises(NoAuthError):
        anon = client([m1], auth=False)
        try:
            anon.reconfig(joining="server.4=" + m4.spec(), leaving=None, new_members=None)
        finally:
            anon.stop()
    data, stat = zk.reconfig(joining="server.4=" + m4.spec(), leaving=None, new_members=None,
                             from_config=version)
    members, version2 = config_members(data)
    assert sorted(members) == [1, 2, 3, 4], data
    assert members[4].endswith(":participant;%s:%d" % (HOST, m4.port)), data
    assert version2 > version
    assert stat.mzxid == version2

    # Writes made before are on the new member, and new ones reach it.
    zk4 = client([m4])
    assert len(zk4.get_children("/before")) == 50
    assert zk4.get("/before/n007")[0] == b"v7"
    zk4.create("/via4", b"4")
    assert zk.get("/via4")[0] == b"4"
    assert m4.mode() in ("leader", "follower")
    zk4.stop()

    # Remove member 3 (ZooKeeper's -remove 3), then stop it.
    data, _ = zk.reconfig(joining=None, leaving="3", new_members=None)
    members, _ = config_members(data)
    assert sorted(members) == [1, 2, 4], data
    m3.kill9()
    # {1,2,4} survives the loss of one more: kill -9 member 1.
    zk.stop()
    m1.kill9()
    e.wait_leader(15)
    zk = client([m2, m4])
    retry_write(zk, "/after-removal")
    for i in range(20):
        zk.create("/after/n%02d" % i, b"", makepath=True)
    members, _ = config_members(zk.get("/zookeeper/config")[0])
    assert sorted(members) == [1, 2, 4]
    zk.stop()


def test_replace_a_member_and_restart(ens_reconfig):
    e = ens_reconfig
    m1, m2, m3 = e.members
    zk = client([m1, m2])
    zk.create("/kept", b"k")
    m4 = e.add_member(RECONFIG)
    # One reconfig swaps 3 for 4 (joint consensus underneath), with
    # ZooKeeper's own zkCli.sh when installed: `reconfig -add ... -remove 3`.
    if os.access(ZKCLI, os.X_OK):
        cmds = "addauth digest %s\nreconfig -add server.4=%s -remove 3\nconfig\nquit\n" % (
            SUPER, m4.spec())
        p = subprocess.run([ZKCLI, "-server", e.hosts([m1, m2])], input=cmds, env=ZKCLI_ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        assert "Committed new configuration:" in p.stdout, p.stdout
        printed = [l for l in p.stdout.splitlines() if l.startswith("server.")]
        # zkCli prints the new config twice: after reconfig, then for `config`.
        assert sorted({int(l.split("=")[0][7:]) for l in printed}) == [1, 2, 4], p.stdout
        assert "server.4=%s:%d:%d:participant;%s:%d" % (
            HOST, m4.peer_port, m4.election_port, HOST, m4.port) in printed, p.stdout
    else:
        data, _ = zk.reconfig(joining="server.4=" + m4.spec(), leaving="3", new_members=None)
        assert sorted(config_members(data)[0]) == [1, 2, 4], data
    m3.kill9()
    retry_write(zk, "/replaced")
    zk.stop()

    # The membership is in the Raft log: restart everyone, members 1 and 2
    # still with their original files (which name 3, not 4).
    for m in (m1, m2, m4):
        m.kill9()
    for m in (m1, m2, m4):
        m.start()
    e.wait_leader(20)
    zk = client([m2, m4])
    retry_write(zk, "/after-restart")
    assert zk.get("/kept")[0] == b"k"
    members, _ = config_members(zk.get("/zookeeper/config")[0])
    assert sorted(members) == [1, 2, 4]
    zk.stop()
    # Member 4 alone with member 1 is a quorum of {1,2,4}.
    m2.kill9()
    e.wait_leader(15)
    zk = client([m1, m4])
    retry_write(zk, "/two-of-three")
    zk.stop()


def test_reconfig_disabled(ensemble3):
    zk = client(ensemble3.members[:1])
    try:
        with pytest.raises(ReconfigDisabledError):
            zk.reconfig(joining=None, leaving="3", new_members=None)
        assert zk.exists("/zookeeper/config") is not None
    finally:
        zk.stop()


@pytest.mark.parametrize("survivor", ["leader", "follower"])
def test_read_only_mode(survivor):
    """The member left alone goes read-only whether it led or followed. A
    follower is the harder case: its pre-votes are refused, so it never
    starts an election and Raft keeps naming the dead leader; only the
    leader's silence tells it that it is cut off."""
    with running(3, {"readonlymode.enabled": "true"}) as e:
        lead = e.wait_leader()
        others = [m for m in e.members if m is not lead]
        m1 = lead if survivor == "leader" else others[0]
        m2, m3 = [m for m in e.members if m is not m1]
        zk = client([m1])
        zk.create("/ro", b"data")
        zk.stop()
        m2.kill9()
        m3.kill9()
        wait_until(lambda: m1.mode() == "read-only", 15, "Mode: read-only", retry_on=Exception)
        assert "ro" == zkwire.four_letter(m1.port, "isro", HOST, 2.0).strip()

        # A client that cannot take read-only is refused, as today.
        rw = KazooClient(hosts="%s:%d" % (HOST, m1.port), timeout=6.0)
        try:
            with pytest.raises(Exception):
                rw.start(timeout=3)
        finally:
            rw.stop()
            rw.close()

        ro = client([m1], read_only=True)
        try:
            assert ro.get("/ro")[0] == b"data"
            assert "ro" in ro.get_children("/")
            with pytest.raises(NotReadOnlyCallError):
                ro.create("/nope", b"")
            with pytest.raises(NotReadOnlyCallError):
                ro.set("/ro", b"new")

            # Quorum back: read-only sessions are closed, the client comes
            # back read-write (a new session) and writes work again.
            m2.start()
            wait_until(lambda: m1.mode() in ("leader", "follower"), 20, "quorum back",
                       retry_on=Exception)
            retry_write(ro, "/after-ro", timeout=20)
            assert ro.get("/ro")[0] == b"data"
        finally:
            ro.stop()
