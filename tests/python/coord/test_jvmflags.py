"""ZooKeeper's system properties given as `-D` flags in SERVER_JVMFLAGS /
JVMFLAGS (as zkServer.sh passes them to java) are honoured by fjord-coord for
the properties it implements, the config file winning: a super user defined
only there runs `reconfig`; `zookeeper.skipACL=yes` lets anyone past any ACL;
`zookeeper.maxCnxns` caps the connections; unknown flags are ignored."""
import base64
import hashlib

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

from fjordtest.binaries import coord_binary, require
from fjordtest.coord import Server
from fjordtest.ensemble import Ensemble, require_ensemble
from fjordtest.net import HOST

SUPER = "super:secret"
DIGEST = "super:" + base64.b64encode(hashlib.sha1(SUPER.encode()).digest()).decode()


def kazoo(port, auth=None):
    zk = KazooClient(hosts="%s:%d" % (HOST, port), timeout=6.0,
                     auth_data=[("digest", auth)] if auth else None)
    zk.start(timeout=10)
    return zk


def started(flags, overrides=None, var="SERVER_JVMFLAGS"):
    require(coord_binary())
    s = Server("fjord", dict({"tickTime": 500}, **(overrides or {})))
    s.env_defaults = {"RUST_BACKTRACE": "1", var: flags}
    return s.start()


def test_super_digest_from_server_jvmflags_can_reconfig():
    require_ensemble()
    e = Ensemble(3, {"reconfigEnabled": "true"})
    flags = "-Xmx256m -Dzookeeper.DigestAuthenticationProvider.superDigest=%s -Dnot.a.fjord.property=1" % DIGEST
    for m in e.members:
        m.env_defaults = {"RUST_BACKTRACE": "1", "SERVER_JVMFLAGS": flags}
    try:
        e.start()
        m1 = e.members[0]
        anyone = kazoo(m1.port)
        with pytest.raises(NoAuthError):
            anyone.reconfig(joining=None, leaving="3", new_members=None)
        anyone.stop()
        su = kazoo(m1.port, auth=SUPER)
        data, _ = su.reconfig(joining=None, leaving="3", new_members=None)
        assert "server.3=" not in data.decode() and "server.2=" in data.decode(), data
        su.stop()
    finally:
        e.cleanup()


def test_skip_acl_and_max_cnxns_from_jvmflags_file_wins():
    s = started("-Dzookeeper.skipACL=yes -Dzookeeper.maxCnxns=3 -Djute.maxbuffer=2048",
                {"jute.maxbuffer": 100000}, var="JVMFLAGS")
    try:
        owner = kazoo(s.port)
        owner.create("/private", b"s3cr3t", acl=[make_digest_acl("alice", "pw", all=True)])
        stranger = kazoo(s.port)
        assert stranger.get("/private")[0] == b"s3cr3t"
        stranger.set("/private", b"changed")
        # The file's jute.maxbuffer (100000) wins over the flag's 2048.
        stranger.create("/big", b"x" * 50000)
        third = kazoo(s.port)
        fourth = KazooClient(hosts="%s:%d" % (HOST, s.port), timeout=2.0)
        try:
            with pytest.raises(fourth.handler.timeout_exception):
                fourth.start(timeout=2)
        finally:
            fourth.stop()
        for zk in (owner, stranger, third):
            zk.stop()
    finally:
        s.cleanup()


def test_without_the_flags_acls_hold():
    s = started("-Dzookeeper.skipACL=no")
    try:
        owner = kazoo(s.port)
        owner.create("/private", b"s3cr3t", acl=[make_digest_acl("alice", "pw", all=True)])
        with pytest.raises(NoAuthError):
            owner.get("/private")
        owner.stop()
    finally:
        s.cleanup()
