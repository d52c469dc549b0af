"""Crash test (fjord-coord): 16 clients make 10,000 acknowledged creates; the server is
killed with SIGKILL after about half of them were acknowledged and restarted on the
same dataDir. Every acknowledged node must be there, zxids keep rising, sequential
counters continue, and a session that has not timed out is still alive with its
ephemeral.

FJORD_ONLY_TESTS_ON_ZK=1 runs it against Apache ZooKeeper too (to validate the test).
"""
import collections
import threading
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

from fjordtest import zkwire
from fjordtest.coord import close_kazoo

TARGETS = ["fjord"]
CLIENTS = 16
TOTAL = 10000
WINDOW = 32          # in-flight creates per client


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = collections.defaultdict(list)   # tid -> [(path, czxid, phase)]
        self.count = 0
        self.failed = 0
        self.phase = 0          # 0 before the kill, 1 after the restart
        self.paused = threading.Event()
        self.stop = threading.Event()
        self.idle = [threading.Event() for _ in range(CLIENTS)]
        self.errors = []


def writer(client, tid, st):
    base = "/crash/seq/s-" if tid == 0 else "/crash/t%02d/n" % tid
    n = 0
    paused_at = None
    inflight = collections.deque()
    try:
        while not st.stop.is_set():
            while (len(inflight) < WINDOW and not st.paused.is_set() and not st.stop.is_set()
                   and st.count + len(inflight) < TOTAL + CLIENTS * WINDOW):
                path = base if tid == 0 else "%s%06d" % (base, n)
                n += 1
                inflight.append((st.phase, client.create_async(path, b"x" * 16, sequence=(tid == 0),
                                                               include_data=True)))
            if not inflight:
                st.idle[tid].set()
                time.sleep(0.01)
                continue
            st.idle[tid].clear()
            phase, ar = inflight.popleft()
            # When the server is dead, what was sent fails with ConnectionLoss at once,
            # but a request kazoo queued after it noticed the drop waits for the
            # reconnection: after 3 s of pause stop tracking it (unacknowledged).
            give_up = time.time() + 60
            while not ar.wait(0.2):
                now = time.time()
                if st.paused.is_set():
                    if paused_at is None:
                        paused_at = now
                    give_up = min(give_up, paused_at + 3.0)
                else:
                    paused_at = None
                if now > give_up:
                    break
            try:
                path, stat = ar.get(block=False)
            except Exception:
                with st.lock:
                    st.failed += 1
                continue
            with st.lock:
                st.acked[tid].append((path, stat.czxid, phase))
                st.count += 1
                if st.count >= TOTAL:
                    st.stop.set()
    except Exception as e:  # pragma: no cover - reported by the test
        st.errors.append("writer %d: %r" % (tid, e))
    finally:
        st.idle[tid].set()


def kazoo_client(server, **kw):
    retry = dict(max_tries=-1, delay=0.1, backoff=1, max_delay=0.3)
    return KazooClient(hosts=server.hosts, timeout=10.0, connection_retry=KazooRetry(**retry), **kw)


def test_crash_kill9_restart(make_server, target):
    # snapCount=1000: several snapshots (and a likely kill during one) in the stream
    server = make_server({"tickTime": 2000, "snapCount": 1000})
    admin = server.wire(timeout_ms=20000)
    admin.create("/crash")
    admin.create("/crash/seq")
    for t in range(1, CLIENTS):
        admin.create("/crash/t%02d" % t)
    # a session that will outlive the crash: 30 s timeout, ephemeral, socket kept open
    keeper = server.wire(timeout_ms=30000)
    assert keeper.negotiated_timeout == 30000
    keeper.create("/crash/keeper", b"alive", flags=zkwire.EPHEMERAL)
    sid, pw = keeper.session_id, keeper.passwd
    admin.close()

    st = State()
    clients = [kazoo_client(server) for _ in range(CLIENTS)]
    threads = []
    try:
        for c in clients:
            c.start(timeout=20)
        for tid, c in enumerate(clients):
            t = threading.Thread(target=writer, args=(c, tid, st), daemon=True)
            t.start()
            threads.append(t)
        started_at = time.time()
        deadline = time.time() + 120
        while st.count < TOTAL // 2 and time.time() < deadline and not st.stop.is_set():
            time.sleep(0.005)
        assert st.count >= TOTAL // 2, "only %d creates acknowledged in 120 s" % st.count

        server.kill9()
        killed_at = time.time()
        st.paused.set()
        for ev in st.idle:
            assert ev.wait(90), "a writer did not drain its in-flight requests"
        with st.lock:
            before = {tid: list(v) for tid, v in st.acked.items()}
        n_before = sum(len(v) for v in before.values())
        keeper.close_socket()

        t0 = time.time()
        server.start()
        restarted_in = time.time() - killed_at
        print("kill -9 at %.1fs after start-up, writers drained in %.1fs, restart took %.1fs"
              % (killed_at - started_at, t0 - killed_at, time.time() - t0))

        # 1. every acknowledged node is there
        check = server.wire(timeout_ms=20000)
        missing = []
        for tid, items in before.items():
            parent = "/crash/seq" if tid == 0 else "/crash/t%02d" % tid
            have = set(check.children(parent))
            missing += [p for p, _, _ in items if p.rsplit("/", 1)[1] not in have]
        assert not missing, "%d of %d acknowledged creates lost after kill -9, e.g. %s" % (
            len(missing), n_before, missing[:5])

        # 2. the session that had not timed out is alive, with its ephemeral
        assert restarted_in < 25, "restart took %.1fs: the keeper session may have timed out" % restarted_in
        k = KazooClient(hosts=server.hosts, client_id=(sid, pw), timeout=30.0)
        states = []
        k.add_listener(states.append)
        try:
            k.start(timeout=20)
            assert k.client_id[0] == sid, "session 0x%x not resumed (got 0x%x)" % (sid, k.client_id[0])
            est = check.exists("/crash/keeper")
            assert est is not None, "ephemeral of a live session lost in the restart"
            assert est.ephemeralOwner == sid
            assert k.get("/crash/keeper")[0] == b"alive"
            assert "LOST" not in states
        finally:
            k.stop()
            k.close()
        assert check.exists("/crash/keeper") is None  # closing the session removes it

        # 3. writers continue to TOTAL acknowledged creates
        st.phase = 1
        st.paused.clear()
        assert st.stop.wait(180), "only %d creates acknowledged after the restart" % st.count
        for t in threads:
            t.join(60)
        assert not st.errors, st.errors

        # 4. everything acknowledged, before and after, is there
        total = 0
        missing = []
        for tid, items in st.acked.items():
            parent = "/crash/seq" if tid == 0 else "/crash/t%02d" % tid
            have = set(check.children(parent))
            total += len(items)
            missing += [p for p, _, _ in items if p.rsplit("/", 1)[1] not in have]
        assert total >= TOTAL
        assert not missing, "%d acknowledged creates missing at the end, e.g. %s" % (len(missing), missing[:5])

        # 5. zxids keep rising across the restart
        max_before = max(z for v in before.values() for _, z, _ in v)
        after = [z for v in st.acked.values() for _, z, ph in v if ph == 1]
        assert after, "no creates acknowledged after the restart"
        assert min(after) > max_before, "zxid went back: %d after the restart <= %d before" % (
            min(after), max_before)
        p, s = check.create("/crash/last")
        assert s.czxid > max(max_before, max(after))

        # 6. sequential counters continue
        seq_before = [int(p[-10:]) for p, _, _ in before.get(0, [])]
        seq_after = [int(p[-10:]) for p, _, ph in st.acked[0] if ph == 1]
        assert seq_before and seq_after
        assert min(seq_after) > max(seq_before), "sequential suffix restarted: %d <= %d" % (
            min(seq_after), max(seq_before))
        p, _ = check.create("/crash/seq/s-", flags=zkwire.PERSISTENT_SEQUENTIAL)
        assert int(p[-10:]) > max(seq_after)
        assert len(set(seq_before + seq_after)) == len(seq_before) + len(seq_after)
        print("crash test: %d acked before kill -9, %d in total, %d failed (unacknowledged), "
              "restart %.1fs, seq %d..%d" % (n_before, total, st.failed, restarted_in,
                                             min(seq_before), max(seq_after)))
        check.close()
    finally:
        st.stop.set()
        st.paused.clear()
        close_kazoo(clients)
        keeper.close_socket()


def dump_tree(c, path="/"):
    """Every znode except ephemerals: path -> (data, full Stat, ACL)."""
    out = {}
    data, st = c.get(path)
    if st.ephemeralOwner == 0:
        acl, _ = c.get_acl(path)
        out[path] = (data, tuple(st), tuple(acl))
    for k in sorted(c.children(path)):
        out.update(dump_tree(c, (path.rstrip("/") + "/" + k)))
    return out


def build_history(server):
    """A few thousand writes of every kind, pipelined through kazoo."""
    from kazoo.security import make_digest_acl
    k = kazoo_client(server)
    k.start(timeout=20)
    try:
        k.create("/h")
        k.create("/h/seq")
        k.create("/h/acl", b"a", acl=[make_digest_acl("u", "p", read=True, write=True, create=True,
                                                       delete=True, admin=True),
                                      make_digest_acl("v", "q", read=True)])
        k.add_auth("digest", "u:p")
        ars = [k.create_async("/h/n%04d" % i, b"v%d" % i) for i in range(1500)]
        [a.get(30) for a in ars]
        ars = [k.set_async("/h/n%04d" % (i % 1500), b"w%d" % i) for i in range(1500)]
        [a.get(30) for a in ars]
        ars = [k.delete_async("/h/n%04d" % i) for i in range(0, 1500, 7)]
        [a.get(30) for a in ars]
        ars = [k.create_async("/h/seq/s-", b"", sequence=True) for _ in range(300)]
        names = [a.get(30) for a in ars]
        ars = [k.delete_async(p) for p in names[::3]]
        [a.get(30) for a in ars]
        t = k.transaction()
        t.create("/h/multi", b"m")
        t.create("/h/multi/a")
        t.set_data("/h/n0001", b"in-multi")
        t.delete("/h/n0002")
        assert all(not isinstance(r, Exception) for r in t.commit())
        k.set_acls("/h/n0003", [make_digest_acl("u", "p", all=True)])
        k.create("/h/acl/kid", b"k")
        w = server.wire(timeout_ms=20000)
        w.create("/h/container", flags=zkwire.CONTAINER)
        w.create("/h/container/kid")
        w.create("/h/ttl", flags=zkwire.PERSISTENT_WITH_TTL, ttl=3600000)
        w.close()
    finally:
        k.stop()
        k.close()


def authed_wire(server):
    c = server.wire(timeout_ms=20000)
    c.add_auth("digest", b"u:p")
    return c


def test_tree_identical_after_restart_and_kill9(make_server, target):
    """The whole tree (data, every Stat field including zxids and times, ACLs) is the
    same after a clean restart and after kill -9; new writes continue above it.
    snapCount=1000 so that recovery goes through snapshots plus log replay."""
    server = make_server({"tickTime": 2000, "snapCount": 1000})
    build_history(server)
    c = authed_wire(server)
    before = dump_tree(c)
    c.close()
    assert len(before) > 1300
    max_zxid = max(max(st[0], st[1], st[10]) for _, st, _ in before.values())

    server.stop()            # SIGTERM
    server.start()
    c = authed_wire(server)
    after = dump_tree(c)
    c.close()
    diff = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not diff, "after a clean restart %d znodes differ, e.g. %s: %r != %r" % (
        len(diff), diff[0], before.get(diff[0]), after.get(diff[0]))

    server.kill9()
    server.start()
    c = authed_wire(server)
    after = dump_tree(c)
    diff = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not diff, "after kill -9 %d znodes differ, e.g. %s: %r != %r" % (
        len(diff), diff[0], before.get(diff[0]), after.get(diff[0]))

    p, st = c.create("/h/seq/s-", flags=zkwire.PERSISTENT_SEQUENTIAL)
    assert p == "/h/seq/s-%010d" % 300, p     # 300 creations before, whatever was deleted
    assert st.czxid > max_zxid
    c.close()


def test_dead_session_expires_after_restart(make_server, target):
    """A session whose client went away before the crash is restored and then expires
    after its timeout: its ephemeral does not live forever."""
    server = make_server({"tickTime": 2000})
    s = server.wire(timeout_ms=4000)
    assert s.negotiated_timeout == 4000
    s.create("/gone-soon", b"", flags=zkwire.EPHEMERAL)
    s.close_socket()
    server.kill9()
    server.start()
    c = server.wire(timeout_ms=20000)
    t0 = time.time()
    while c.exists("/gone-soon") is not None and time.time() - t0 < 30:
        time.sleep(0.2)
    assert c.exists("/gone-soon") is None, "ephemeral of a dead session still there 30 s after restart"
    r = zkwire.Conn("127.0.0.1", server.port, timeout_ms=4000, session_id=s.session_id, passwd=s.passwd)
    assert r.negotiated_timeout == 0, "expired session was resumed after restart"
    r.close_socket()
    c.close()


def test_watches_reregistered_after_restart(make_server, target):
    """A session survives a restart; its client re-registers its watches with
    setWatches (relative zxid) and gets the events of later changes, once."""
    server = make_server({"tickTime": 2000})
    w = server.wire(timeout_ms=20000)
    other = server.wire(timeout_ms=20000)
    other.create("/watched", b"0")
    other.create("/dir")
    w.get("/watched", watch=True)
    w.children("/dir", watch=True)
    seen = w.last_reply_zxid
    sid, pw = w.session_id, w.passwd
    other.close()
    server.stop()
    w.close_socket()
    server.start()
    w2 = server.wire(timeout_ms=20000, session_id=sid, passwd=pw, last_zxid=seen)
    assert w2.session_id == sid and w2.negotiated_timeout == 20000
    w2.set_watches(seen, data=["/watched"], child=["/dir"])
    assert w2.drain() == []                 # nothing changed meanwhile
    o2 = server.wire()
    o2.set("/watched", b"1")
    o2.create("/dir/kid")
    o2.set("/watched", b"2")
    E, S = zkwire.Event, zkwire.ST_SYNC_CONNECTED
    assert w2.drain() == [E(zkwire.EV_DATA, S, "/watched"), E(zkwire.EV_CHILD, S, "/dir")]
    o2.close()
    w2.close()


def newest_log_file(data_dir):
    """The newest transaction log file under dataDir (ZooKeeper: version-2/log.N,
    fjord-coord: any file named log* under dataDir)."""
    import os
    cands = []
    for d, _, files in os.walk(data_dir):
        for f in files:
            if f.startswith("log"):
                p = os.path.join(d, f)
                cands.append((os.path.getmtime(p), p))
    assert cands, "no transaction log file under %s" % data_dir
    return max(cands)[1]


def test_torn_log_tail_then_more_writes(make_server, target):
    """A crash can leave a partly written record at the end of the log (never
    acknowledged). Recovery must skip it, and writes acknowledged after that
    recovery must survive the next crash too (no appending behind garbage)."""
    server = make_server({"tickTime": 2000})
    c = server.wire(timeout_ms=20000)
    c.create("/torn")
    for i in range(200):
        c.create("/torn/a%03d" % i, b"x" * 50)
    before = dump_tree(c)
    c.close_socket()
    server.kill9()
    log = newest_log_file(server.data_dir)
    with open(log, "ab") as f:
        f.write(bytes(range(7, 7 + 41)))   # a torn, never-acknowledged record
    server.start()
    c = server.wire(timeout_ms=20000)
    after = dump_tree(c)
    diff = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not diff, "after a torn tail %d znodes differ, e.g. %s" % (len(diff), diff[:3])
    for i in range(50):
        c.create("/torn/b%03d" % i, b"y")
    c.close_socket()
    server.kill9()
    server.start()
    c = server.wire(timeout_ms=20000)
    kids = set(c.children("/torn"))
    lost = [n for n in ("b%03d" % i for i in range(50)) if n not in kids]
    assert not lost, "%d writes acknowledged after recovering from a torn tail were lost, e.g. %s" % (
        len(lost), lost[:3])
    assert len(kids) == 250
    c.close()
