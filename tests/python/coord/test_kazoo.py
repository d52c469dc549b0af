"""Acceptance: kazoo (PyPI) against fjord-coord, checked first against Apache ZooKeeper 3.8.

Parametrized over targets (fjord, zookeeper); see conftest.py.
"""
import queue
import socket
import threading
import time

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (BadVersionError, ConnectionLoss, NoAuthError,
                              NoChildrenForEphemeralsError, NodeExistsError,
                              NoNodeError, NotEmptyError, RolledBackError,
                              RuntimeInconsistency, SessionExpiredError)
from kazoo.security import make_digest_acl, make_acl, OPEN_ACL_UNSAFE
from kazoo.protocol.states import EventType

from fjordtest import zkwire
from fjordtest.proxy import TcpProxy
from fjordtest.waits import wait_until


def settle(zk):
    """A round trip on zk's connection: every event queued before it has been
    read by kazoo; give its callback thread a moment to run the watchers."""
    zk.exists("/")
    time.sleep(0.3)


# ---------------------------------------------------------------- CRUD + Stat
def test_crud_stat_fields(zk, root):
    p = root + "/node"
    path = zk.create(p, b"hello")
    assert path == p
    data, st = zk.get(p)
    assert data == b"hello"
    assert (st.version, st.cversion, st.aversion) == (0, 0, 0)
    assert st.numChildren == 0 and st.dataLength == 5 and st.ephemeralOwner == 0
    assert st.czxid == st.mzxid == st.pzxid and st.czxid > 0
    assert st.ctime == st.mtime and st.ctime > 1_600_000_000_000  # ms since epoch

    # create2 (include_data) returns the same stat as exists
    p2, st2 = zk.create(root + "/node2", b"", include_data=True)
    assert p2 == root + "/node2"
    assert st2 == zk.exists(p2)
    assert st2.czxid > st.czxid and st2.dataLength == 0

    # setData bumps version and mzxid only
    st3 = zk.set(p, b"hello world!")
    assert st3.version == 1 and st3.dataLength == 12
    assert st3.czxid == st.czxid and st3.ctime == st.ctime
    assert st3.mzxid > st2.czxid and st3.mtime >= st.mtime
    assert st3.cversion == 0 and st3.pzxid == st.pzxid
    assert zk.get(p) == (b"hello world!", st3)

    # a child bumps cversion, numChildren and pzxid, not version or mzxid
    _, cst = zk.create(p + "/c1", b"x", include_data=True)
    pst = zk.exists(p)
    assert (pst.version, pst.cversion, pst.numChildren) == (1, 1, 1)
    assert pst.pzxid == cst.czxid and pst.mzxid == st3.mzxid
    zk.create(p + "/c2")
    assert sorted(zk.get_children(p)) == ["c1", "c2"]
    zk.delete(p + "/c1")
    pst2 = zk.exists(p)
    assert (pst2.cversion, pst2.numChildren) == (3, 1)
    assert pst2.pzxid > pst.pzxid and pst2.mzxid == st3.mzxid
    # get_children with include_data returns the parent's stat
    kids, kst = zk.get_children(p, include_data=True)
    assert kids == ["c2"] and kst == pst2

    # setACL bumps aversion only
    ast = zk.set_acls(p, OPEN_ACL_UNSAFE)
    assert ast.aversion == 1 and ast.version == 1 and ast.cversion == 3
    acls, ast2 = zk.get_acls(p)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "world", "anyone")]
    assert ast2 == ast

    # versioned set/delete
    assert zk.set(p, b"v2", version=1).version == 2
    zk.delete(p + "/c2", version=0)
    zk.delete(p, version=2)
    assert zk.exists(p) is None
    assert zk.exists(root).numChildren == 1


def test_empty_and_none_data(zk, root):
    zk.create(root + "/e")
    d, st = zk.get(root + "/e")
    assert d == b"" and st.dataLength == 0
    zk.set(root + "/e", b"\x00\xff\x00")
    d, st = zk.get(root + "/e")
    assert d == b"\x00\xff\x00" and st.dataLength == 3


# ---------------------------------------------------------------- ephemerals
def test_ephemeral_gone_after_close(zk, new_zk, root):
    other = new_zk()
    p = other.create(root + "/eph", b"e", ephemeral=True)
    ps = other.create(root + "/eseq-", b"", ephemeral=True, sequence=True)
    st = zk.exists(p)
    assert st is not None and st.ephemeralOwner == other.client_id[0]
    assert zk.exists(ps).ephemeralOwner == other.client_id[0]
    with pytest.raises(NoChildrenForEphemeralsError):
        other.create(p + "/child")
    events = queue.Queue()
    zk.exists(p, watch=events.put)
    other.stop()
    other.close()
    # closeSession is synchronous: the ephemerals are gone when stop() returns
    assert zk.exists(p) is None
    assert zk.exists(ps) is None
    ev = events.get(timeout=5)
    assert ev.type == EventType.DELETED and ev.path == p


def test_ephemeral_gone_after_expiry(server, zk, root):
    """Partition a kazoo client (timeout 1 s) from the server; the session
    expires, its ephemeral goes, watchers fire, and on reconnection kazoo is
    told the session expired (state LOST)."""
    proxy = TcpProxy(server.port)
    states = []
    c = KazooClient(hosts=proxy.hosts, timeout=1.0)
    c.add_listener(states.append)
    try:
        c.start(timeout=15)
        sid = c.client_id[0]
        p = c.create(root + "/eph", b"", ephemeral=True)
        assert zk.exists(p).ephemeralOwner == sid
        events = queue.Queue()
        zk.exists(p, watch=events.put)
        proxy.block()
        ev = events.get(timeout=15)
        assert ev.type == EventType.DELETED and ev.path == p
        assert zk.exists(p) is None
        proxy.unblock()
        wait_until(lambda: KazooState.LOST in states, 20, what="kazoo to report LOST (expired)")
        wait_until(lambda: c.connected, 20, what="kazoo to open a new session")
        assert c.client_id[0] != sid
    finally:
        c.stop()
        c.close()
        proxy.close()


def test_expired_and_bad_password_get_timeout_zero(server, new_wire, root):
    """An expired session, or a wrong password, gets a ConnectResponse with timeout 0."""
    a = new_wire(timeout_ms=1000)
    assert 1000 <= a.negotiated_timeout <= 2000
    sid, pw = a.session_id, a.passwd
    a.create(root + "/e", flags=zkwire.EPHEMERAL)
    # wrong password for a live session
    bad = zkwire.Conn("127.0.0.1", server.port, timeout_ms=1000, session_id=sid,
                      passwd=bytes(16 - len(pw)) + bytes(b ^ 0xFF for b in pw)[:len(pw)])
    assert bad.negotiated_timeout == 0, bad.connect_response
    bad.close_socket()
    a.close_socket()  # no closeSession: let it expire
    b = new_wire()
    wait_until(lambda: b.exists(root + "/e") is None, 15, what="ephemeral of expired session to go")
    c = zkwire.Conn("127.0.0.1", server.port, timeout_ms=1000, session_id=sid, passwd=pw)
    assert c.negotiated_timeout == 0 and c.expired, c.connect_response
    c.close_socket()


def test_session_timeout_negotiation(server, new_wire):
    # server has tickTime=500: clamp to [1000, 10000]
    assert new_wire(timeout_ms=10).negotiated_timeout == 1000
    assert new_wire(timeout_ms=3000).negotiated_timeout == 3000
    assert new_wire(timeout_ms=600000).negotiated_timeout == 10000


def test_session_resumption_keeps_ephemerals(server, zk, root):
    a = server.wire(timeout_ms=4000)
    sid, pw = a.session_id, a.passwd
    a.create(root + "/mine", b"", flags=zkwire.EPHEMERAL)
    a.close_socket()  # drop the TCP connection without closeSession
    c = KazooClient(hosts=server.hosts, client_id=(sid, pw), timeout=4.0)
    try:
        c.start(timeout=15)
        assert c.client_id[0] == sid
        st = zk.exists(root + "/mine")
        assert st is not None and st.ephemeralOwner == sid
        c.create(root + "/mine2", ephemeral=True)
        assert zk.exists(root + "/mine2").ephemeralOwner == sid
    finally:
        c.stop()
        c.close()
    assert zk.exists(root + "/mine") is None
    assert zk.exists(root + "/mine2") is None


# ---------------------------------------------------------------- sequential
def seq_counter(st):
    """ZooKeeper keeps a per-parent count of child creations and reports
    cversion = 2*creations - numChildren (DataNode.copyStat: "translate from the
    count of the creates to the count of the changes"); the sequential suffix is
    that creation count, which equals the reported cversion only while no child
    has been deleted."""
    assert (st.cversion + st.numChildren) % 2 == 0
    return (st.cversion + st.numChildren) // 2


def test_sequential_naming(zk, root):
    p = root + "/seq"
    zk.create(p)
    a = zk.create(p + "/n-", b"", sequence=True)
    assert a == p + "/n-0000000000"
    b = zk.create(p + "/n-", b"", sequence=True)
    assert b == p + "/n-0000000001"
    st = zk.exists(p)
    assert st.cversion == 2
    c = zk.create(p + "/", b"", sequence=True)  # bare suffix
    assert c == p + "/%010d" % st.cversion
    zk.create(p + "/plain")          # cversion 4
    zk.delete(p + "/plain")          # cversion 5, but only 4 creations
    st = zk.exists(p)
    assert (st.cversion, st.numChildren) == (5, 3)
    d = zk.create(p + "/e-", b"", sequence=True, ephemeral=True)
    assert d == p + "/e-%010d" % 4 == p + "/e-%010d" % seq_counter(st)
    assert sorted(zk.get_children(p)) == sorted(x.rsplit("/", 1)[1] for x in (a, b, c, d))
    zk.delete(a)
    zk.delete(b)
    st = zk.exists(p)
    assert (st.cversion, st.numChildren) == (8, 2)
    t = zk.transaction()
    t.create(p + "/t-", b"", sequence=True)
    t.create(p + "/t-", b"", sequence=True)
    r = t.commit()
    assert r == [p + "/t-0000000005", p + "/t-0000000006"]
    st = zk.exists(p)
    assert (st.cversion, st.numChildren, seq_counter(st)) == (10, 4, 7)


# ---------------------------------------------------------------- watches
def test_data_exists_child_watches_fire_once(zk, new_zk, root):
    w = new_zk()
    p = root + "/w"
    got = {"data": [], "exists": [], "child": [], "del": []}
    w.exists(p, watch=got["exists"].append)           # exists watch on a missing node
    zk.create(p, b"0")
    settle(w)
    w.get(p, watch=got["data"].append)
    w.get_children(p, watch=got["child"].append)
    zk.set(p, b"1")
    zk.set(p, b"2")                                     # no second data event
    zk.create(p + "/c")
    zk.create(p + "/d")                                 # no second child event
    zk.delete(p + "/c")
    settle(w)
    w.exists(p + "/d", watch=got["del"].append)
    zk.delete(p + "/d")
    zk.delete(p)
    settle(w)
    zk.create(p)                                        # nothing is watching any more
    wait_until(lambda: all(got[k] for k in got), 10, what="all four watches to fire")
    settle(w)
    assert [(e.type, e.path, e.state) for e in got["exists"]] == [(EventType.CREATED, p, "CONNECTED")]
    assert [(e.type, e.path) for e in got["data"]] == [(EventType.CHANGED, p)]
    assert [(e.type, e.path) for e in got["child"]] == [(EventType.CHILD, p)]
    assert [(e.type, e.path) for e in got["del"]] == [(EventType.DELETED, p + "/d")]


def test_watch_on_delete_fires_data_and_child(zk, new_zk, root):
    w = new_zk()
    p = root + "/x"
    zk.create(p)
    data_ev, child_ev = [], []
    w.get(p, watch=data_ev.append)
    w.get_children(p, watch=child_ev.append)
    zk.delete(p)
    wait_until(lambda: data_ev and child_ev, 10, what="both watches to fire")
    settle(w)
    assert [(e.type, e.path) for e in data_ev] == [(EventType.DELETED, p)]
    assert [(e.type, e.path) for e in child_ev] == [(EventType.DELETED, p)]


def test_event_precedes_new_data(server, new_wire, root):
    """A client sees the watch event before it sees the new data (raw wire order)."""
    a, b = new_wire(), new_wire()
    p = root + "/o"
    a.create(p, b"0")
    b.get(p, watch=True)
    a.set(p, b"1")
    data, st = b.get(p)
    assert data == b"1"
    assert b.events == [zkwire.Event(zkwire.EV_DATA, zkwire.ST_SYNC_CONNECTED, p)]


# ---------------------------------------------------------------- multi
def test_transaction_atomic_success(zk, root):
    zk.create(root + "/a", b"a")
    t = zk.transaction()
    t.create(root + "/b", b"b")
    t.set_data(root + "/a", b"a2", version=0)
    t.check(root + "/a", 1)
    t.create(root + "/b/c")
    t.delete(root + "/b/c")
    r = t.commit()
    assert r[0] == root + "/b"
    assert r[1].version == 1
    assert r[2:] == [True, root + "/b/c", True]
    bst = zk.exists(root + "/b")
    # all at one zxid
    assert bst.czxid == r[1].mzxid
    assert bst.cversion == 2 and bst.numChildren == 0 and bst.pzxid == bst.czxid
    assert zk.get(root + "/a")[0] == b"a2"


def test_transaction_atomic_failure(zk, root):
    zk.create(root + "/a", b"a")
    before = zk.exists(root)
    t = zk.transaction()
    t.create(root + "/b", b"b")
    t.set_data(root + "/a", b"a2")
    t.set_data(root + "/missing", b"x")
    t.create(root + "/c")
    t.delete(root + "/a")
    r = t.commit()
    assert len(r) == 5
    assert isinstance(r[0], RolledBackError) and isinstance(r[1], RolledBackError)
    assert isinstance(r[2], NoNodeError)
    assert isinstance(r[3], RuntimeInconsistency) and isinstance(r[4], RuntimeInconsistency)
    assert zk.exists(root + "/b") is None and zk.exists(root + "/c") is None
    assert zk.get(root + "/a")[0] == b"a"
    assert zk.exists(root) == before

    t = zk.transaction()
    t.check(root + "/a", 5)
    t.create(root + "/a")
    r = t.commit()
    assert isinstance(r[0], BadVersionError) and isinstance(r[1], RuntimeInconsistency)

    t = zk.transaction()
    t.create(root + "/n")
    t.create(root + "/a")
    r = t.commit()
    assert isinstance(r[0], RolledBackError) and isinstance(r[1], NodeExistsError)
    assert zk.exists(root + "/n") is None


# ---------------------------------------------------------------- errors + ACL
def test_errors(zk, root):
    with pytest.raises(NoNodeError):
        zk.get(root + "/missing")
    with pytest.raises(NoNodeError):
        zk.delete(root + "/missing")
    with pytest.raises(NoNodeError):
        zk.set(root + "/missing", b"")
    with pytest.raises(NoNodeError):
        zk.create(root + "/missing/child")
    with pytest.raises(NoNodeError):
        zk.get_children(root + "/missing")
    zk.create(root + "/a", b"")
    with pytest.raises(NodeExistsError):
        zk.create(root + "/a")
    with pytest.raises(BadVersionError):
        zk.set(root + "/a", b"x", version=3)
    with pytest.raises(BadVersionError):
        zk.delete(root + "/a", version=1)
    with pytest.raises(BadVersionError):
        zk.set_acls(root + "/a", OPEN_ACL_UNSAFE, version=2)
    zk.create(root + "/a/b")
    with pytest.raises(NotEmptyError):
        zk.delete(root + "/a")
    zk.create(root + "/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(root + "/eph/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(root + "/eph/s-", sequence=True)
    assert zk.exists(root + "/a").version == 0


def test_duplicate_acl_entries_are_kept_once(zk, root):
    """ZooKeeper 3.5+ removes repeated entries on create and setACL."""
    acl = make_acl("world", "anyone", all=True)
    ip = make_acl("ip", "10.0.0.1", read=True)
    p = root + "/dupacl"
    zk.create(p, b"", acl=[acl, acl])
    assert zk.get_acls(p)[0] == [acl]
    zk.set_acls(p, [ip, acl, ip, acl])
    assert zk.get_acls(p)[0] == [ip, acl]


def test_digest_acl_noauth(server, zk, new_zk, root):
    acl = make_digest_acl("alice", "secret", all=True)
    p = root + "/private"
    zk.create(p, b"s3cr3t", acl=[acl])
    with pytest.raises(NoAuthError):
        zk.get_acls(p)  # getACL needs READ or ADMIN since ZooKeeper 3.4.14/3.5.5
    assert acl.id.id == "alice:" + __import__("base64").b64encode(
        __import__("hashlib").sha1(b"alice:secret").digest()).decode()
    with pytest.raises(NoAuthError):
        zk.get(p)
    with pytest.raises(NoAuthError):
        zk.set(p, b"x")
    with pytest.raises(NoAuthError):
        zk.create(p + "/c")
    with pytest.raises(NoAuthError):
        zk.set_acls(p, OPEN_ACL_UNSAFE)
    assert zk.exists(p) is not None  # exists needs no permission

    other = new_zk()
    other.add_auth("digest", "alice:wrong")
    with pytest.raises(NoAuthError):
        other.get(p)

    alice = new_zk()
    alice.add_auth("digest", "alice:secret")
    assert alice.get(p)[0] == b"s3cr3t"
    acls, st = alice.get_acls(p)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "digest", acl.id.id)]
    alice.set(p, b"new")
    alice.create(p + "/c")
    # the "auth" scheme: ACL for every identity the session has
    alice.create(p + "/authed", b"", acl=[make_acl("auth", "", all=True)])
    acls, _ = alice.get_acls(p + "/authed")
    assert [(a.id.scheme, a.id.id) for a in acls] == [("digest", acl.id.id)]
    with pytest.raises(NoAuthError):
        zk.get(p + "/authed")
    # read-only world ACL
    ro = root + "/ro"
    zk.create(ro, b"r", acl=[make_acl("world", "anyone", read=True)])
    assert zk.get(ro)[0] == b"r"
    with pytest.raises(NoAuthError):
        zk.set(ro, b"w")
    # delete permission is checked on the parent
    alice.delete(p + "/c")
    with pytest.raises(NoAuthError):
        zk.delete(p + "/authed")
    # ip ACL
    zk.create(root + "/ip", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)])
    assert zk.get(root + "/ip")[0] == b"i"
    zk.create(root + "/ip2", b"i", acl=[make_acl("ip", "10.9.9.9", all=True)])
    with pytest.raises(NoAuthError):
        zk.get(root + "/ip2")


# ---------------------------------------------------------------- sizes
def test_512k_value_works_2m_value_connection_loss(server, zk, new_zk, root):
    big = bytes(range(256)) * (512 * 1024 // 256)
    zk.create(root + "/big", big)
    d, st = zk.get(root + "/big")
    assert d == big and st.dataLength == 512 * 1024
    zk.set(root + "/big", big[::-1])
    assert zk.get(root + "/big")[0] == big[::-1]

    victim = new_zk()
    with pytest.raises(ConnectionLoss):
        victim.create(root + "/huge", b"x" * (2 * 1024 * 1024))
    # everybody else is still served
    assert zk.exists(root + "/huge") is None
    zk.create(root + "/after", b"ok")
    assert zk.get(root + "/after")[0] == b"ok"
    assert server.four("ruok") == "imok"
    fresh = new_zk()
    assert fresh.get(root + "/after")[0] == b"ok"
    # the victim's session reconnects and keeps working
    wait_until(lambda: victim.connected, 15, what="victim to reconnect")
    assert victim.get(root + "/after")[0] == b"ok"


# ---------------------------------------------------------------- recipes
def blocks_until(wait, release, pause):
    """`wait(timeout=15)` run in a thread must still block after `pause`
    seconds, then return true once `release()` has run."""
    done = threading.Event()

    def waiter():
        if wait(timeout=15):
            done.set()
    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(pause)
    assert not done.is_set()
    release()
    t.join(20)
    assert done.is_set()


def test_lock_recipe(new_zk, root):
    c1, c2 = new_zk(), new_zk()
    l1, l2 = c1.Lock(root + "/lock", "one"), c2.Lock(root + "/lock", "two")
    assert l1.acquire(timeout=5)
    assert not l2.acquire(blocking=False)
    assert l2.contenders() == ["one"]
    blocks_until(l2.acquire, l1.release, 0.5)
    assert l2.is_acquired
    l2.release()


def test_election_recipe(new_zk, root):
    c1, c2 = new_zk(), new_zk()
    e1, e2 = c1.Election(root + "/elect", "c1"), c2.Election(root + "/elect", "c2")
    leader = queue.Queue()
    stop1, stop2 = threading.Event(), threading.Event()

    def lead(name, stop):
        leader.put(name)
        stop.wait(20)
    t1 = threading.Thread(target=e1.run, args=(lead, "c1", stop1))
    t1.start()
    assert leader.get(timeout=10) == "c1"
    t2 = threading.Thread(target=e2.run, args=(lead, "c2", stop2))
    t2.start()
    wait_until(lambda: len(e1.contenders()) == 2, 10, what="two contenders")
    assert e2.contenders() == ["c1", "c2"]
    assert leader.empty()
    stop1.set()
    t1.join(10)
    assert leader.get(timeout=10) == "c2"
    stop2.set()
    t2.join(10)


def test_counter_recipe(new_zk, root):
    c1, c2 = new_zk(), new_zk()
    k1, k2 = c1.Counter(root + "/count"), c2.Counter(root + "/count")

    def bump(k, n):
        for _ in range(n):
            k += 1
    ts = [threading.Thread(target=bump, args=(k1, 20)), threading.Thread(target=bump, args=(k2, 20))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert k1.value == 40 and k2.value == 40
    k2 -= 5
    assert k1.value == 35


def test_barrier_recipe(new_zk, root):
    c1, c2 = new_zk(), new_zk()
    b1, b2 = c1.Barrier(root + "/barrier"), c2.Barrier(root + "/barrier")
    b1.create()
    assert b2.wait(timeout=0.5) is False
    blocks_until(b2.wait, b1.remove, 0.3)
    # double barrier across the two clients
    d1 = c1.DoubleBarrier(root + "/dbl", 2)
    d2 = c2.DoubleBarrier(root + "/dbl", 2)
    th = threading.Thread(target=d1.enter)
    th.start()
    d2.enter()
    th.join(15)
    assert not th.is_alive()
    th = threading.Thread(target=d1.leave)
    th.start()
    d2.leave()
    th.join(15)
    assert not th.is_alive()


def test_queue_recipe(new_zk, root):
    c1, c2 = new_zk(), new_zk()
    q1, q2 = c1.Queue(root + "/q"), c2.Queue(root + "/q")
    for i in range(5):
        q1.put(b"item-%d" % i)
    q1.put(b"urgent", priority=10)  # lower number = higher priority; 100 is default
    assert len(q2) == 6
    got = [q2.get() for _ in range(6)]
    assert got == [b"urgent"] + [b"item-%d" % i for i in range(5)]
    assert q2.get() is None
    lq1, lq2 = c1.LockingQueue(root + "/lq"), c2.LockingQueue(root + "/lq")
    lq1.put(b"job")
    assert lq2.get(timeout=5) == b"job"
    assert lq1.get(timeout=0.3) is None  # taken by c2
    assert lq2.consume()
    assert len(lq1) == 0


# ---------------------------------------------------------------- extended ops (raw wire)
def test_persistent_watch(server, new_wire, root):
    w, a = new_wire(), new_wire()
    p = root + "/pw"
    w.add_watch(p, zkwire.PERSISTENT_WATCH)
    a.create(p, b"")
    a.set(p, b"1")
    a.set(p, b"2")
    a.create(p + "/c")
    a.create(p + "/c/d")       # grandchild: not seen by a non-recursive watch
    a.set(p + "/c", b"x")      # child's data: not seen
    a.delete(p + "/c/d")
    a.delete(p + "/c")
    a.delete(p)
    a.create(p)                # still registered after the delete
    E = zkwire.Event
    S = zkwire.ST_SYNC_CONNECTED
    assert w.drain() == [E(1, S, p), E(3, S, p), E(3, S, p), E(4, S, p), E(4, S, p),
                         E(2, S, p), E(1, S, p)]
    w.remove_watches(p, zkwire.WT_ANY)
    a.set(p, b"3")
    assert w.drain() == []
    with pytest.raises(zkwire.ZKError) as ei:
        w.remove_watches(p, zkwire.WT_ANY)
    assert ei.value.code == -121  # NoWatcher


def test_persistent_recursive_watch(server, new_wire, root):
    w, a = new_wire(), new_wire()
    p = root + "/rw"
    w.add_watch(p, zkwire.PERSISTENT_RECURSIVE_WATCH)
    a.create(p)
    a.create(p + "/a")
    a.create(p + "/a/b", b"")
    a.set(p + "/a/b", b"1")
    a.delete(p + "/a/b")
    a.create(root + "/rwx")    # sibling with a common prefix: not under p
    a.set(p, b"z")
    E = zkwire.Event
    S = zkwire.ST_SYNC_CONNECTED
    assert w.drain() == [E(1, S, p), E(1, S, p + "/a"), E(1, S, p + "/a/b"), E(3, S, p + "/a/b"),
                         E(2, S, p + "/a/b"), E(3, S, p)]
    # kazoo-style one-shot watch on the same path from the same session: one event per change
    w.get(p + "/a", watch=True)
    a.set(p + "/a", b"q")
    assert w.drain() == [E(3, S, p + "/a")]


def test_container_and_ttl_nodes(server, new_wire, root):
    a = new_wire()
    cont = root + "/cont"
    path, st = a.create(cont, b"", flags=zkwire.CONTAINER)
    assert path == cont and st.ephemeralOwner == 0
    a.create(cont + "/child")
    a.delete(cont + "/child")
    keep = root + "/cont_never_had_children"
    a.create(keep, flags=zkwire.CONTAINER)
    ttl = root + "/ttl"
    path, st = a.create(ttl, b"t", flags=zkwire.PERSISTENT_WITH_TTL, ttl=500)
    assert path == ttl and st.ephemeralOwner == 0 and st.dataLength == 1
    cv = seq_counter(a.exists(root))
    sq, _ = a.create(root + "/ttlseq-", b"", flags=zkwire.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=500)
    assert sq == root + "/ttlseq-%010d" % cv
    ttl_busy = root + "/ttl_busy"
    a.create(ttl_busy, flags=zkwire.PERSISTENT_WITH_TTL, ttl=500)
    a.create(ttl_busy + "/kid")
    with pytest.raises(zkwire.ZKError) as ei:
        a.create(root + "/badttl", flags=zkwire.PERSISTENT_WITH_TTL, ttl=0)
    assert ei.value.code == -8  # BadArguments
    # the empty container and the expired TTL nodes are removed by the server
    # (ZooKeeper checks every znode.container.checkIntervalMs: 1 s in these tests, 60 s by default)
    wait_until(lambda: a.exists(cont) is None and a.exists(ttl) is None and a.exists(sq) is None,
               75, what="empty container and expired TTL nodes to be deleted", interval=0.5)
    assert a.exists(keep) is not None
    assert a.exists(ttl_busy) is not None


def test_get_ephemerals_and_all_children_number(server, new_wire, root):
    a, b = new_wire(), new_wire()
    a.create(root + "/x")
    a.create(root + "/x/y")
    a.create(root + "/e1", flags=zkwire.EPHEMERAL)
    a.create(root + "/x/e2", flags=zkwire.EPHEMERAL)
    b.create(root + "/x/y/other", flags=zkwire.EPHEMERAL)
    assert sorted(a.get_ephemerals(root)) == [root + "/e1", root + "/x/e2"]
    assert sorted(a.get_ephemerals(root + "/x")) == [root + "/x/e2"]
    assert b.get_ephemerals(root) == [root + "/x/y/other"]
    assert a.all_children_number(root) == 5
    assert a.all_children_number(root + "/x") == 3
    assert a.all_children_number(root + "/e1") == 0
    assert ("ip", "127.0.0.1") in a.who_am_i()
    a.add_auth("digest", b"bob:pw")
    assert ("digest", "bob") in a.who_am_i()


def test_set_watches_on_reconnect_fires_missed_events(server, new_wire, root):
    a = new_wire(timeout_ms=5000)
    other = new_wire()
    p = root + "/sw"
    other.create(p, b"0")
    other.create(p + "/kid")
    zxid = a.exists("/").czxid  # any
    a.get(p, watch=True)
    seen = a.last_reply_zxid
    sid, pw = a.session_id, a.passwd
    a.close_socket()
    other.set(p, b"1")             # missed while disconnected
    other.create(root + "/born")   # missed: exists watch on a path that now exists
    other.delete(p + "/kid")
    b = new_wire(timeout_ms=5000, session_id=sid, passwd=pw, last_zxid=seen)
    assert b.session_id == sid
    b.set_watches(seen, data=[p], exist=[root + "/born"], child=[p])
    evs = b.drain()
    E, S = zkwire.Event, zkwire.ST_SYNC_CONNECTED
    assert sorted(evs) == sorted([E(3, S, p), E(1, S, root + "/born"), E(4, S, p)])
    del zxid


def test_watch_events_respect_read_acl(server, new_wire, root):
    """CVE-2024-23944 (fixed in Debian's zookeeper 3.8.0-11+deb12u2, ZooKeeper 3.8.4):
    a watch event is delivered only when the watcher may READ the znode it is about,
    so a persistent-recursive watch on a readable parent does not reveal unreadable
    children's paths, and an exists watch on an unreadable node stays silent."""
    w, a = new_wire(), new_wire()
    pub = root + "/pub"
    a.create(pub)
    w.add_watch(pub, zkwire.PERSISTENT_RECURSIVE_WATCH)
    deny = [zkwire.ACL(zkwire.ALL, "ip", "10.1.2.3")]
    a.create(pub + "/secret-user-name", b"", acl=deny)
    a.create(pub + "/open", b"")
    E, S = zkwire.Event, zkwire.ST_SYNC_CONNECTED
    assert w.drain() == [E(zkwire.EV_CREATED, S, pub + "/open")]
    a.create(root + "/hidden", b"", acl=deny)
    assert w.exists(root + "/hidden", watch=True) is not None
    a.delete(root + "/hidden")
    a.delete(pub + "/secret-user-name")
    assert w.drain() == []


def test_min_max_session_timeout_config(make_server):
    s = make_server({"tickTime": 500, "minSessionTimeout": 3000, "maxSessionTimeout": 6000})
    for asked, got in ((100, 3000), (4000, 4000), (60000, 6000)):
        c = s.wire(timeout_ms=asked)
        try:
            assert c.negotiated_timeout == got, "asked %d ms" % asked
        finally:
            c.close()


def test_pipelined_requests_answered_in_order(server, new_wire, root):
    """Many requests sent back to back on one connection: replies come in xid order,
    and every read sees the writes sent before it (read-your-writes per session)."""
    c = new_wire()
    Z = zkwire
    plan = []
    for i in range(150):
        p = "%s/p%03d" % (root, i)
        plan.append(("create", Z.OP["create"], Z.e_str(p) + Z.e_buf(b"c%d" % i) + Z.e_acls(Z.OPEN_ACL_UNSAFE) + Z.e_int(0)))
        plan.append(("get", Z.OP["getData"], Z.e_str(p) + Z.e_bool(False)))
        plan.append(("set", Z.OP["setData"], Z.e_str(p) + Z.e_buf(b"s%d" % i) + Z.e_int(0)))
        plan.append(("get", Z.OP["getData"], Z.e_str(p) + Z.e_bool(False)))
        plan.append(("exists", Z.OP["exists"], Z.e_str(p + "/none") + Z.e_bool(False)))
    blob = b""
    xids = []
    for kind, op, body in plan:
        xid = c._next_xid()
        xids.append(xid)
        blob += Z.frame(Z.e_int(xid) + Z.e_int(op) + body)
    c.send_raw(blob)
    got = []
    last_zxid = 0
    for (kind, _, _), xid in zip(plan, xids):
        r = Z.Reader(c.read_frame())
        rxid, zxid, err = r.int(), r.long(), r.int()
        assert rxid == xid, "reply for xid %d arrived when %d was due" % (rxid, xid)
        assert zxid >= last_zxid, "reply zxid went back"
        last_zxid = zxid
        if kind == "get":
            assert err == 0
            got.append(r.buf())
        elif kind == "exists":
            assert err == -101
        else:
            assert err == 0, (kind, err)
    assert got == [x for i in range(150) for x in (b"c%d" % i, b"s%d" % i)]


def test_requests_pipelined_behind_connect(server, root):
    """Clients send auth, setWatches and requests right behind the ConnectRequest,
    before the ConnectResponse: the server must buffer and answer them in order.
    Also a ConnectRequest without the trailing readOnly byte (old clients)."""
    Z = zkwire
    for ro_byte in (True, False):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            blob = Z.frame(Z.connect_request(timeout_ms=10000, with_ro_byte=ro_byte))
            blob += Z.frame(Z.e_int(-4) + Z.e_int(100) + Z.e_int(0) + Z.e_str("digest") + Z.e_buf(b"pipe:pw"))
            blob += Z.frame(Z.e_int(-8) + Z.e_int(101) + Z.e_long(0) + Z.e_strvec([root]) +
                            Z.e_strvec([]) + Z.e_strvec([]))
            blob += Z.frame(Z.e_int(1) + Z.e_int(107) + b"")
            blob += Z.frame(Z.e_int(2) + Z.e_int(3) + Z.e_str(root) + Z.e_bool(False))
            s.sendall(blob)
            c = Z.Conn("127.0.0.1", server.port, connect=False)
            c.sock = s
            r = Z.Reader(c.read_frame())
            proto, to, sid = r.int(), r.int(), r.long()
            assert to == 10000 and sid != 0
            seen, events = [], []
            while len(seen) < 4:
                r = Z.Reader(c.read_frame())
                xid, zxid, err = r.int(), r.long(), r.int()
                if xid == -1:  # setWatches with relative zxid 0: the root's data changed
                    events.append((r.int(), r.int(), r.str()))
                    continue
                seen.append((xid, err))
                if xid == 1:
                    n = r.int()
                    ids = sorted((r.str(), r.str()) for _ in range(n))
                    assert ("digest", "pipe") in ids, ids
            assert seen == [(-4, 0), (-8, 0), (1, 0), (2, 0)], seen
            assert events == [(Z.EV_DATA, Z.ST_SYNC_CONNECTED, root)], events
        finally:
            s.close()


def test_kazoo_watch_recipes_and_treecache(zk, new_zk, root):
    from kazoo.recipe.cache import TreeCache
    other = new_zk()
    data_seen, kids_seen = [], []
    zk.create(root + "/dw", b"0")
    zk.DataWatch(root + "/dw")(lambda d, st: data_seen.append(d))
    zk.ChildrenWatch(root)(lambda ch: kids_seen.append(sorted(ch)))
    cache = TreeCache(zk, root)
    cache.start()
    try:
        other.set(root + "/dw", b"1")
        other.create(root + "/a/b", b"ab", makepath=True)
        other.set(root + "/dw", b"2")
        wait_until(lambda: data_seen[-1:] == [b"2"], 10, what="DataWatch to see b'2'")
        wait_until(lambda: kids_seen[-1:] == [["a", "dw"]], 10, what="ChildrenWatch to see [a, dw]")
        wait_until(lambda: cache.get_data(root + "/a/b") is not None, 10, what="TreeCache to see /a/b")
        assert cache.get_data(root + "/a/b").data == b"ab"
        assert sorted(cache.get_children(root)) == ["a", "dw"]
        other.delete(root + "/a/b")
        wait_until(lambda: cache.get_data(root + "/a/b") is None, 10, what="TreeCache to drop /a/b")
        assert b"1" in data_seen or data_seen[-1] == b"2"
        party = zk.Party(root + "/party", "me")
        party2 = other.Party(root + "/party", "you")
        party.join()
        party2.join()
        assert sorted(party) == ["me", "you"]
        party2.leave()
        assert list(party) == ["me"]
    finally:
        cache.close()


def test_super_digest_and_ip_cidr(make_server):
    """DigestAuthenticationProvider.superDigest in the config (ZooKeeper turns the
    zoo.cfg key into the system property it reads): the super user passes every ACL."""
    import base64
    import hashlib
    sd = "super:" + base64.b64encode(hashlib.sha1(b"super:s3cret").digest()).decode()
    s = make_server({"DigestAuthenticationProvider.superDigest": sd})
    owner, nobody, admin = s.wire(), s.wire(), s.wire()
    try:
        owner.add_auth("digest", b"alice:pw")
        locked = [zkwire.ACL(zkwire.ALL, "auth", "")]
        owner.create("/locked", b"mine", acl=locked)
        owner.create("/locked/kid", b"", acl=locked)
        with pytest.raises(zkwire.ZKError) as ei:
            nobody.get("/locked")
        assert ei.value.code == -102
        admin.add_auth("digest", b"super:s3cret")
        assert admin.get("/locked")[0] == b"mine"
        acl, _ = admin.get_acl("/locked")
        assert acl[0].id.startswith("alice:") and acl[0].id != "alice:x"
        admin.set("/locked", b"taken")
        admin.set_acl("/locked/kid", zkwire.OPEN_ACL_UNSAFE)
        assert nobody.get("/locked/kid")[0] == b""
        admin.delete("/locked/kid")
        admin.delete("/locked")
        bad = s.wire()
        bad.add_auth("digest", b"super:wrong")
        owner.create("/locked2", b"", acl=locked)
        with pytest.raises(zkwire.ZKError) as ei:
            bad.get("/locked2")
        assert ei.value.code == -102
        bad.close()
        # ip ACLs with a CIDR mask
        owner.create("/cidr", b"c", acl=[zkwire.ACL(zkwire.ALL, "ip", "127.0.0.0/8")])
        assert nobody.get("/cidr")[0] == b"c"
        owner.create("/cidr2", b"c", acl=[zkwire.ACL(zkwire.ALL, "ip", "10.0.0.0/8")])
        with pytest.raises(zkwire.ZKError):
            nobody.get("/cidr2")
    finally:
        for c in (owner, nobody, admin):
            c.close()


def test_client_ahead_of_server_is_refused(server):
    """A client that has seen a zxid the server has not (it talked to a newer
    member) is refused: ZooKeeper closes the connection without a ConnectResponse."""
    with pytest.raises((zkwire.ConnectionClosed, ConnectionResetError)):
        zkwire.Conn("127.0.0.1", server.port, timeout_ms=4000, last_zxid=(1 << 62))
    c = server.wire()
    assert c.exists("/") is not None
    c.close()
