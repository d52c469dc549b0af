"""Differential test: one scripted, deterministic sequence of a few hundred operations
run against Apache ZooKeeper 3.8 and against fjord-coord; the records must be identical.

Recorded per op: the result (data, Stat version/cversion/aversion/numChildren/
dataLength, ephemeralOwner mapped to the owning session's name, zxids mapped to
their rank among all zxids seen (so the order of writes is compared, not the
values), sorted children, error name/code), and after every op the watch events
each session has received (type, state, path), in arrival order.
Times and absolute zxid values are excepted.

The reference is Debian's zookeeper 3.8.0-11+deb12u2, which carries the CVE-2024-23944
fix: a watch event is delivered only if the watcher may READ the znode it is about.
"""
import difflib
import os

import pytest

from fjordtest import zkwire
from fjordtest.zkwire import (ACL, ALL, CONTAINER, EPHEMERAL, EPHEMERAL_SEQUENTIAL, OPEN_ACL_UNSAFE,
                    PERSISTENT, PERSISTENT_SEQUENTIAL, PERSISTENT_SEQUENTIAL_WITH_TTL,
                    PERSISTENT_WITH_TTL, READ, WRITE, CREATE, DELETE, ADMIN, ZKError,
                    ConnectionClosed)
from fjordtest.coord import Server, selected_targets, skip_or_fail_unavailable


def digest(user, pw):
    import base64
    import hashlib
    return "%s:%s" % (user, base64.b64encode(hashlib.sha1(("%s:%s" % (user, pw)).encode()).digest()).decode())


class Recorder:
    def __init__(self, server):
        self.server = server
        self.sessions = {}
        self.records = []
        self.zxids = set()

    # -- sessions
    def open(self, name, **kw):
        c = self.server.wire(**kw)
        self.sessions[name] = c
        self.records.append(("open", name, "timeout=%s" % c.negotiated_timeout))
        return c

    def owner(self, eo):
        if eo == 0:
            return 0
        for name, c in self.sessions.items():
            if c.session_id == eo:
                return "session:" + name
        for name, sid in getattr(self, "closed_ids", {}).items():
            if sid == eo:
                return "session:" + name
        return "0x%x" % eo

    def stat(self, st):
        if st is None:
            return None
        for z in (st.czxid, st.mzxid, st.pzxid):
            self.zxids.add(z)
        return dict(version=st.version, cversion=st.cversion, aversion=st.aversion,
                    numChildren=st.numChildren, dataLength=st.dataLength,
                    ephemeralOwner=self.owner(st.ephemeralOwner),
                    czxid=("zxid", st.czxid), mzxid=("zxid", st.mzxid), pzxid=("zxid", st.pzxid))

    def norm(self, v):
        if isinstance(v, zkwire.Stat):
            return self.stat(v)
        if isinstance(v, ACL):
            return (v.perms, v.scheme, v.id)
        if isinstance(v, bytes):
            return v if len(v) <= 64 else ("bytes", len(v), __import__("hashlib").sha1(v).hexdigest()[:12])
        if isinstance(v, (list, tuple)):
            return type(v)(self.norm(x) for x in v)
        return v

    # -- ops
    def do(self, sess, opname, *args, sort=None, unordered_events=False, **kw):
        """Children lists are compared sorted: their order is unspecified."""
        if sort is None:
            sort = opname in ("children", "children2", "get_ephemerals", "who_am_i")
        c = self.sessions[sess]
        try:
            if c.sock is None:
                raise ConnectionClosed("not connected")
            res = getattr(c, opname)(*args, **kw)
            if sort and isinstance(res, list):
                res = sorted(res)
            if opname == "children2" and sort:
                res = (sorted(res[0]), res[1])
            out = ("ok", self.norm(res))
        except ZKError as e:
            out = ("error", e.name, e.code)
        except (ConnectionClosed, OSError):
            out = ("closed",)
        self.records.append(("op", sess, opname, repr(args)[:120], out))
        self.events(unordered=unordered_events)
        return out

    def multi(self, sess, ops, read=False):
        c = self.sessions[sess]
        try:
            err, results = (c.multi_read if read else c.multi)(ops)
            results = [("getChildren", sorted(r[1])) if r[0] == "getChildren" else r for r in results]
            out = ("ok", err, [self.norm(r) for r in results])
        except ZKError as e:
            out = ("error", e.name, e.code)
        except ConnectionClosed:
            out = ("closed",)
        desc = [(o[0], o[1]) + tuple(x for x in o[2:] if not isinstance(x, list)) for o in ops]
        self.records.append(("multi" if not read else "multiRead", sess, repr(desc)[:300], out))
        self.events()
        return out

    def events(self, unordered=False):
        for name in sorted(self.sessions):
            c = self.sessions[name]
            if c.sock is None:
                continue
            try:
                ev = c.drain()
            except (ConnectionClosed, OSError) as e:
                self.records.append(("events", name, "connection lost: %s" % type(e).__name__))
                c.sock = None
                continue
            ev = [(zkwire.EVENT_NAMES.get(e.type, e.type), e.state, e.path) for e in ev]
            if unordered:
                ev = sorted(ev)
            if ev:
                self.records.append(("events", name, ev))

    def finish(self):
        """Replace zxids by their rank among all zxids seen; return printable lines."""
        rank = {z: i for i, z in enumerate(sorted(self.zxids))}

        def fix(v):
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "zxid":
                return "z%d" % rank[v[1]]
            if isinstance(v, dict):
                return {k: fix(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return type(v)(fix(x) for x in v)
            return v
        return [str(fix(r)) for r in self.records]

    def close_all(self):
        for c in self.sessions.values():
            try:
                c.close()
            except Exception:
                pass


def script(r):
    """The scripted sequence. Deterministic: one thread, one request at a time,
    and every session drains its events after every op."""
    A = r.open("A", timeout_ms=10000)
    r.open("B", timeout_ms=10000)
    r.open("C", timeout_ms=10000)
    r.closed_ids = {}
    anyone = OPEN_ACL_UNSAFE

    # --- the initial tree
    r.do("A", "children", "/")
    r.do("A", "children2", "/zookeeper")
    r.do("A", "get", "/zookeeper/quota")
    r.do("A", "exists", "/")

    # --- creates of every mode, with watches
    r.do("A", "exists", "/d", watch=True)
    r.do("A", "children", "/", watch=True)
    r.do("B", "create", "/d", b"root-data")
    r.do("A", "exists", "/d", watch=True)
    r.do("B", "create", "/d/p", b"persistent", op="create")
    r.do("B", "create", "/d/p2", b"persistent2")
    r.do("B", "create", "/d/e", b"eph", flags=EPHEMERAL)
    r.do("B", "create", "/d/s-", b"seq", flags=PERSISTENT_SEQUENTIAL)
    r.do("B", "create", "/d/s-", b"seq", flags=PERSISTENT_SEQUENTIAL, op="create")
    r.do("B", "create", "/d/es-", b"eseq", flags=EPHEMERAL_SEQUENTIAL)
    r.do("B", "create", "/d/c", b"container", flags=CONTAINER)
    r.do("B", "create", "/d/ttl", b"ttl", flags=PERSISTENT_WITH_TTL, ttl=3600000)
    r.do("B", "create", "/d/ttls-", b"ttlseq", flags=PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=3600000)
    r.do("B", "create", "/d/", b"trailing-slash-seq", flags=PERSISTENT_SEQUENTIAL)
    r.do("B", "create", "/d/nulldata", None)
    r.do("A", "get", "/d/nulldata")
    r.do("A", "children2", "/d")
    for p in ("/d/p", "/d/e", "/d/c", "/d/ttl", "/d/s-0000000003"):
        r.do("A", "get", p)
    # --- creation errors
    r.do("B", "create", "/d/p", b"again")
    r.do("B", "create", "/d/missing/child", b"")
    r.do("B", "create", "/d/e/child", b"")
    r.do("B", "create", "/d/e/s-", b"", flags=PERSISTENT_SEQUENTIAL)
    r.do("B", "create", "/d/", b"")
    r.do("B", "create", "/d//x", b"")
    r.do("B", "create", "/d/./x", b"")
    r.do("B", "create", "/d/../x", b"")
    r.do("B", "create", "noslash", b"")
    r.do("B", "create", "/d/noacl", b"", acl=[])
    r.do("B", "create", "/d/badscheme", b"", acl=[ACL(ALL, "nosuch", "x")])
    r.do("B", "create", "/d/badworld", b"", acl=[ACL(ALL, "world", "someone")])
    r.do("B", "create", "/d/badip", b"", acl=[ACL(ALL, "ip", "300.1.2.3")])
    r.do("B", "create", "/d/authnone", b"", acl=[ACL(ALL, "auth", "")])
    r.do("B", "create", "/d/ttlzero", b"", flags=PERSISTENT_WITH_TTL, ttl=0)
    r.do("B", "create", "/d/ttlneg", b"", flags=PERSISTENT_WITH_TTL, ttl=-5)
    r.do("B", "create", "/d/ttlmode-create2", b"", flags=PERSISTENT_WITH_TTL, op="create2")
    r.do("B", "create", "/d/ttl-non-ttl-mode", b"", flags=PERSISTENT, op="createTTL", ttl=1000)
    r.do("B", "create", "/d/container-create2", b"", flags=CONTAINER, op="create2")
    r.do("B", "create", "/d/badflags", b"", flags=99)
    r.do("B", "create", "/d/c/kid", b"k")
    r.do("B", "create", "/d/ttl/kid", b"k")
    r.do("A", "children2", "/d")

    # --- data watches and sets with versions
    r.do("A", "get", "/d/p", watch=True)
    r.do("C", "get", "/d/p", watch=True)
    r.do("C", "exists", "/d/p", watch=True)       # same session: one event
    r.do("B", "set", "/d/p", b"v1", version=0)
    r.do("B", "set", "/d/p", b"v2", version=0)      # BadVersion
    r.do("B", "set", "/d/p", b"v2", version=1)      # no watch left
    r.do("B", "set", "/d/p", b"v3", version=-1)
    r.do("B", "set", "/d/p", b"", version=3)
    r.do("B", "set", "/d/missing", b"x")
    r.do("B", "set", "/", b"rootdata")
    r.do("A", "get", "/")
    r.do("B", "set", "/", b"")
    r.do("B", "set", "/d/p2", b"x" * 10000)
    r.do("A", "get", "/d/p2")
    r.do("A", "exists", "/d/p2")

    # --- child watches
    r.do("A", "children", "/d", watch=True)
    r.do("C", "children2", "/d", watch=True)
    r.do("B", "create", "/d/k1", b"")
    r.do("B", "create", "/d/k2", b"")                  # watches already fired
    r.do("A", "children", "/d/k1", watch=True)
    r.do("A", "get", "/d/k1", watch=True)
    r.do("C", "exists", "/d/k1", watch=True)
    r.do("B", "delete", "/d/k1")                       # A: one NodeDeleted; C: NodeDeleted
    r.do("A", "exists", "/d/k1", watch=True)
    r.do("B", "create", "/d/k1", b"again")
    r.do("B", "create", "/d/k1/g", b"")

    # --- deletes
    r.do("B", "delete", "/d/k1")                       # NotEmpty
    r.do("B", "delete", "/d/k1/g", version=5)          # BadVersion
    r.do("B", "delete", "/d/k1/g", version=0)
    r.do("B", "delete", "/d/k1/g")                     # NoNode
    r.do("B", "delete", "/d/k1", version=-1)
    r.do("B", "delete", "/")
    r.do("B", "delete", "/zookeeper")
    r.do("B", "delete", "/d/nonexistent/x")
    r.do("A", "children2", "/d")

    # --- multi: success
    r.multi("B", [("create", "/d/m", b"m", anyone, PERSISTENT),
                  ("create", "/d/m/a", b"", anyone, PERSISTENT),
                  ("create2", "/d/m/b", b"b", anyone, PERSISTENT),
                  ("create", "/d/m/s-", b"", anyone, PERSISTENT_SEQUENTIAL),
                  ("createContainer", "/d/m/c", b"", anyone),
                  ("createTTL", "/d/m/t", b"", anyone, PERSISTENT_WITH_TTL, 60000),
                  ("setData", "/d/m", b"m2", 0),
                  ("check", "/d/m", 1),
                  ("delete", "/d/m/a", 0),
                  ("setData", "/d/p", b"from-multi", -1)])
    r.do("A", "children2", "/d/m")
    r.do("A", "get", "/d/m", watch=True)
    r.do("C", "children", "/d/m", watch=True)
    # --- multi: failures at the start, middle and end
    r.multi("B", [("check", "/d/m", 7),
                  ("create", "/d/m/x", b"", anyone, PERSISTENT)])
    r.multi("B", [("create", "/d/m/x", b"", anyone, PERSISTENT),
                  ("setData", "/d/m", b"zz", -1),
                  ("delete", "/d/m", -1),
                  ("create", "/d/m/y", b"", anyone, PERSISTENT)])
    r.multi("B", [("create", "/d/m/x", b"", anyone, PERSISTENT),
                  ("setData", "/d/m", b"zz", -1),
                  ("create", "/d/m/x", b"", anyone, PERSISTENT)])
    r.multi("B", [("create", "/d/m/x", b"", anyone, PERSISTENT),
                  ("create", "/d/e/x", b"", anyone, PERSISTENT)])
    r.multi("B", [("delete", "/d/m/b", 3)])
    r.multi("B", [("setData", "/d/nothere", b"", -1), ("check", "/d/m", 1)])
    r.multi("B", [("createTTL", "/d/m/t0", b"", anyone, PERSISTENT_WITH_TTL, 0)])
    r.multi("B", [])
    r.do("A", "children2", "/d/m")
    # --- multi: success that fires the watches set above
    r.multi("B", [("create", "/d/m/x", b"", anyone, PERSISTENT),
                  ("setData", "/d/m", b"m3", 1),
                  ("delete", "/d/m/x", -1)])
    r.do("A", "get", "/d/m")
    # --- multiRead
    r.multi("A", [("getData", "/d/m"), ("getChildren", "/d/nothere"),
                  ("getChildren", "/d/m"), ("getData", "/d/p")], read=True)

    # --- persistent and persistent-recursive watches
    r.do("A", "add_watch", "/d/pw", zkwire.PERSISTENT_WATCH)
    r.do("C", "add_watch", "/d/rw", zkwire.PERSISTENT_RECURSIVE_WATCH)
    r.do("C", "add_watch", "/d/rw/x", zkwire.PERSISTENT_WATCH)
    for path in ("/d/pw", "/d/pw/a", "/d/pw/a/b"):
        r.do("B", "create", path, b"")
    r.do("B", "set", "/d/pw", b"1")
    r.do("B", "set", "/d/pw", b"2")
    r.do("B", "delete", "/d/pw/a/b")
    r.do("B", "delete", "/d/pw/a")
    for path in ("/d/rw", "/d/rw/x", "/d/rw/x/y"):
        r.do("B", "create", path, b"")
    r.do("B", "set", "/d/rw/x/y", b"1")
    r.do("B", "set", "/d/rw/x", b"1")
    r.do("B", "create", "/d/rwz", b"")                 # common prefix, not a descendant
    r.do("C", "get", "/d/rw/x", watch=True)            # one-shot on top of persistent
    r.do("B", "set", "/d/rw/x", b"2")
    r.do("B", "delete", "/d/rw/x/y")
    r.do("C", "check_watches", "/d/rw/x", zkwire.WT_ANY)
    r.do("C", "check_watches", "/d/nowatch", zkwire.WT_ANY)
    r.do("C", "remove_watches", "/d/rw/x", zkwire.WT_ANY)
    r.do("C", "remove_watches", "/d/rw/x", zkwire.WT_ANY)
    r.do("B", "set", "/d/rw/x", b"3")                  # only the recursive watch on /d/rw
    r.do("A", "get", "/d/k2", watch=True)
    r.do("A", "remove_watches", "/d/k2", zkwire.WT_DATA)
    r.do("A", "remove_watches", "/d/k2", zkwire.WT_CHILDREN)
    r.do("B", "set", "/d/k2", b"nobody-watches")
    r.do("A", "remove_watches", "/d/pw", zkwire.WT_ANY)
    r.do("B", "set", "/d/pw", b"3")

    # --- ACLs
    r.do("B", "create", "/d/acl", b"secret", acl=[ACL(ALL, "digest", digest("alice", "pw"))])
    r.do("A", "get", "/d/acl")
    r.do("A", "get_acl", "/d/acl")
    r.do("A", "exists", "/d/acl")
    r.do("A", "set", "/d/acl", b"x")
    r.do("A", "create", "/d/acl/kid", b"")
    r.do("A", "set_acl", "/d/acl", OPEN_ACL_UNSAFE)
    r.do("A", "children", "/d/acl")
    r.open("D")
    r.do("D", "add_auth", "digest", b"alice:pw")
    r.do("D", "who_am_i")
    r.do("D", "get", "/d/acl")
    r.do("D", "get_acl", "/d/acl")
    r.do("D", "create", "/d/acl/kid", b"k", acl=[ACL(ALL, "auth", "")])
    r.do("D", "get_acl", "/d/acl/kid")
    r.do("D", "set_acl", "/d/acl", [ACL(READ, "world", "anyone"),
                                    ACL(ALL, "digest", digest("alice", "pw"))], version=0)
    r.do("D", "set_acl", "/d/acl", OPEN_ACL_UNSAFE, version=0)   # BadVersion
    r.do("A", "get", "/d/acl")
    r.do("A", "get_acl", "/d/acl")
    r.do("A", "set", "/d/acl", b"y")
    r.do("A", "delete", "/d/acl/kid")
    r.do("D", "delete", "/d/acl/kid")
    r.do("B", "create", "/d/ro", b"ro", acl=[ACL(READ, "world", "anyone")])
    r.do("B", "set", "/d/ro", b"w")
    r.do("B", "create", "/d/ro/kid", b"")
    r.do("B", "create", "/d/cd", b"", acl=[ACL(CREATE | READ, "world", "anyone")])
    r.do("B", "create", "/d/cd/kid", b"")
    r.do("B", "delete", "/d/cd/kid")
    r.do("B", "set_acl", "/d/cd", OPEN_ACL_UNSAFE)
    r.do("B", "create", "/d/ipacl", b"", acl=[ACL(ALL, "ip", "127.0.0.1"), ACL(READ, "ip", "10.0.0.0/8")])
    r.do("A", "get_acl", "/d/ipacl")
    r.do("A", "set", "/d/ipacl", b"ip-ok")
    r.do("B", "create", "/d/ipdeny", b"", acl=[ACL(ALL, "ip", "10.1.2.3")])
    # Repeated entries are kept once, in first-seen order (ZooKeeper 3.5+).
    r.do("B", "create", "/d/dupacl", b"", acl=[ACL(ALL, "world", "anyone"), ACL(READ, "ip", "10.0.0.1"),
                                               ACL(ALL, "world", "anyone"), ACL(READ, "ip", "10.0.0.1")])
    r.do("A", "get_acl", "/d/dupacl")
    r.do("B", "set_acl", "/d/dupacl", [ACL(READ, "ip", "10.0.0.2"), ACL(ALL, "world", "anyone"),
                                       ACL(READ, "ip", "10.0.0.2"), ACL(READ | WRITE, "ip", "10.0.0.2")])
    r.do("A", "get_acl", "/d/dupacl")
    r.do("A", "get", "/d/ipdeny")
    r.do("A", "set_acl", "/d/missing", OPEN_ACL_UNSAFE)
    r.do("A", "get_acl", "/d/missing")
    r.do("A", "get_acl", "/d/p")
    r.do("B", "set_acl", "/d/p", [ACL(READ | WRITE | DELETE | ADMIN, "world", "anyone")], version=0)
    r.do("A", "exists", "/d/p")
    r.do("B", "set_acl", "/d/p", [ACL(ALL, "world", "anyone")], version=0)  # BadVersion

    # --- misc ops
    r.do("A", "sync", "/d")
    r.do("A", "sync", "/d/missing")
    r.do("B", "get_ephemerals", "/")
    r.do("B", "get_ephemerals", "/d/e")
    r.do("A", "get_ephemerals", "/")
    r.do("A", "all_children_number", "/d")
    r.do("A", "all_children_number", "/d/m")
    r.do("A", "all_children_number", "/d/missing")
    r.do("A", "who_am_i")
    r.do("A", "get", "/d/missing")
    r.do("A", "children", "/d/missing")
    r.do("A", "exists", "/d/missing")
    r.do("A", "get", "noslash")

    # --- volume: a loop of creates, versioned sets and deletes with watches
    r.do("B", "create", "/d/loop", b"")
    r.do("A", "children", "/d/loop", watch=True)
    for i in range(30):
        mode = [PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL, PERSISTENT][i % 3]
        name = "/d/loop/n-" if mode != PERSISTENT else "/d/loop/p%02d" % i
        out = r.do("BC"[i % 2], "create", name, b"%d" % i, flags=mode)
        path = out[1][0] if out[0] == "ok" else None
        if i % 4 == 0:
            r.do("A", "get", path, watch=True)
            r.do("A", "children", "/d/loop", watch=True)
        r.do("B", "set", path, b"s%d" % i, version=i % 2 - 1 if i % 5 else 3)
        if i % 3 == 2:
            r.do("C", "delete", path, version=0 if i % 2 else -1)
        if i % 7 == 0:
            r.do("A", "children2", "/d/loop")
    r.do("A", "children2", "/d/loop")
    for name in ("B", "C"):
        r.do(name, "get_ephemerals", "/d/loop")

    # --- sessions: C drops its connection and comes back with setWatches
    C = r.sessions["C"]
    r.do("C", "get", "/d/p2", watch=True)
    r.do("C", "exists", "/d/later", watch=True)
    r.do("C", "children", "/d/k2", watch=True)
    r.do("C", "get", "/d/k2", watch=True)
    r.do("B", "create", "/d/doomed", b"")
    r.do("B", "create", "/d/doomed/kid", b"")
    r.do("C", "get", "/d/doomed", watch=True)
    r.do("C", "children", "/d/doomed/kid", watch=True)
    r.do("C", "exists", "/d/stillnothere", watch=True)
    sid, pw, seen = C.session_id, C.passwd, C.last_reply_zxid
    C.close_socket()
    r.records.append(("disconnect", "C"))
    r.do("B", "set", "/d/p2", b"changed-while-away")
    r.do("B", "create", "/d/later", b"")
    r.do("B", "create", "/d/k2/kid", b"")
    r.do("B", "delete", "/d/k2/kid")
    r.do("B", "delete", "/d/doomed/kid")
    r.do("B", "delete", "/d/doomed")
    C2 = r.server.wire(timeout_ms=10000, session_id=sid, passwd=pw, last_zxid=seen)
    r.records.append(("reconnect", "C", C2.session_id == sid, "timeout=%s" % C2.negotiated_timeout))
    r.sessions["C"] = C2
    try:
        C2.set_watches(seen, data=["/d/p2", "/d/k2", "/d/doomed"],
                       exist=["/d/later", "/d/stillnothere"], child=["/d/k2", "/d/doomed/kid"],
                       persistent=[], recursive=["/d/rw"])
        r.records.append(("setWatches2", "C", "ok"))
    except ZKError as e:
        r.records.append(("setWatches2", "C", e.name))
    r.events(unordered=True)
    r.do("B", "set", "/d/rw/x", b"after-reconnect")   # the recursive watch was restored

    # --- closeSession of a session with ephemerals fires watches
    r.do("A", "exists", "/d/e", watch=True)
    r.do("A", "children", "/d", watch=True)
    r.do("A", "get_ephemerals", "/")
    r.closed_ids["B"] = r.sessions["B"].session_id
    B = r.sessions.pop("B")
    B.close()
    r.records.append(("closeSession", "B"))
    r.events(unordered=True)
    again = r.server.wire(timeout_ms=10000, session_id=B.session_id, passwd=B.passwd)
    r.records.append(("reconnect closed", "B", again.negotiated_timeout, again.expired))
    again.close_socket()
    r.do("A", "children2", "/d")
    r.do("A", "children2", "/d/loop")
    r.do("A", "exists", "/d/e")

    # --- a bad auth scheme: AuthFailed, then the server closes the connection
    r.open("E")
    r.do("E", "add_auth", "nosuchscheme", b"x")
    r.do("E", "exists", "/d")
    r.sessions.pop("E").close_socket()

    # --- more multi: several ops on one path, versions that depend on earlier ops
    r.do("A", "exists", "/d/mm", watch=True)
    r.do("A", "exists", "/d/never", watch=True)
    r.multi("A", [("create", "/d/never", b"", anyone, PERSISTENT),
                  ("check", "/d/nothere", -1)])                   # fails: no NodeCreated event
    r.multi("A", [("create", "/d/mm", b"0", anyone, PERSISTENT),
                  ("setData", "/d/mm", b"1", 0),
                  ("setData", "/d/mm", b"2", 1),
                  ("check", "/d/mm", 2),
                  ("create", "/d/mm/s-", b"", anyone, PERSISTENT_SEQUENTIAL),
                  ("create", "/d/mm/s-", b"", anyone, PERSISTENT_SEQUENTIAL),
                  ("create2", "/d/mm/e", b"", anyone, EPHEMERAL),
                  ("delete", "/d/mm/s-0000000000", 0),
                  ("create", "/d/mm/s-", b"", anyone, PERSISTENT_SEQUENTIAL)])
    r.do("A", "children2", "/d/mm")
    r.do("A", "get", "/d/mm")
    r.multi("A", [("delete", "/d/mm/s-0000000001", -1),
                  ("delete", "/d/mm/s-0000000004", -1),
                  ("delete", "/d/mm/e", -1),
                  ("delete", "/d/mm", 2)])
    r.do("A", "exists", "/d/mm")
    r.multi("A", [("check", "/d/nothere", -1)])
    r.multi("A", [("check", "/d/p", -1), ("check", "/d/p", 5), ("check", "/d/p", 6)])
    r.multi("A", [("create", "/d/mm", b"", anyone, PERSISTENT),
                  ("create", "/d/mm/x", b"", anyone, PERSISTENT),
                  ("delete", "/d/mm", -1)])                       # NotEmpty inside the multi

    # --- watches are not set when the read is refused
    r.do("A", "get", "/d/acl", watch=True)          # world has READ on /d/acl now
    r.do("A", "get", "/d/ipdeny", watch=True)       # NoAuth: no watch
    r.do("A", "children", "/d/ipdeny", watch=True)  # NoAuth: no watch
    r.do("A", "exists", "/d/ipdeny", watch=True)    # exists needs no permission: watch set
    r.do("C", "delete", "/d/ipdeny")

    # --- names: unicode, spaces, odd characters; the /zookeeper subtree; the root
    r.do("C", "create", "/d/\u00fcnic\u00f8de \u2603", b"snow")
    for path in ("/d/with space", "/d/a\u0000b", "/d/zookeeper"):
        r.do("C", "create", path, b"")
    r.do("A", "children", "/d")
    r.do("A", "get", "/d/\u00fcnic\u00f8de \u2603")
    r.do("C", "create", "/s-", b"", flags=PERSISTENT_SEQUENTIAL)
    r.do("C", "create", "/s-", b"", flags=PERSISTENT_SEQUENTIAL)
    r.do("A", "children2", "/")
    r.do("C", "delete", "/s-0000000001")
    r.do("C", "delete", "/s-0000000002")
    r.do("A", "exists", "/")
    r.do("C", "create", "/zookeeper/mine", b"")
    r.do("C", "set", "/zookeeper/config", b"x")
    r.do("C", "set", "/zookeeper", b"x")
    r.do("C", "delete", "/zookeeper/quota")
    r.do("A", "get_acl", "/")
    r.do("A", "get_acl", "/zookeeper")
    r.do("A", "get_acl", "/zookeeper/config")
    r.do("A", "exists", "/zookeeper/config")
    r.do("C", "set", "/d/nulldata", None)
    r.do("A", "get", "/d/nulldata")
    r.do("A", "add_watch", "/", zkwire.PERSISTENT_RECURSIVE_WATCH)
    r.do("C", "create", "/d/rootwatched", b"")
    r.do("C", "delete", "/d/rootwatched")
    r.do("A", "remove_watches", "/", zkwire.WT_ANY)
    r.do("A", "sync", "/")

    # --- ping, a malformed digest credential, addWatch corner cases
    r.do("A", "ping")
    r.open("G")
    r.do("G", "add_auth", "digest", b"nocolon")
    r.do("G", "exists", "/d")
    r.sessions.pop("G").close_socket()
    r.do("A", "add_watch", "/d/not-yet", zkwire.PERSISTENT_WATCH)
    r.do("A", "add_watch", "/d/k2", 7)
    r.do("C", "create", "/d/not-yet", b"")
    r.do("A", "remove_watches", "/d/not-yet", zkwire.WT_DATA)
    r.do("C", "set", "/d/not-yet", b"1")
    r.do("A", "remove_watches", "/d/not-yet", zkwire.WT_CHILDREN)
    r.do("C", "create", "/d/not-yet/kid", b"")

    # --- session expiry: F's client goes away; the server expires F, deletes its
    # ephemerals in one transaction and fires the watches
    F = r.open("F", timeout_ms=4000)
    r.do("F", "create", "/d/f-eph", b"", flags=EPHEMERAL)
    r.do("F", "create", "/d/loop/f-", b"", flags=EPHEMERAL_SEQUENTIAL)
    r.do("A", "exists", "/d/f-eph", watch=True)
    r.do("A", "children", "/d/loop", watch=True)
    r.closed_ids["F"] = F.session_id
    fsid, fpw = F.session_id, F.passwd
    r.sessions.pop("F").close_socket()
    got = sorted((zkwire.EVENT_NAMES.get(e.type, e.type), e.state, e.path)
                 for e in r.sessions["A"].wait_events(2, timeout=30))
    r.records.append(("expiry events", "A", got))
    r.do("A", "exists", "/d/f-eph")
    r.do("A", "get_ephemerals", "/d/loop")
    again = r.server.wire(timeout_ms=4000, session_id=fsid, passwd=fpw)
    r.records.append(("reconnect expired", "F", again.negotiated_timeout, again.expired))
    again.close_socket()

    # --- the final tree
    r.do("A", "children2", "/")
    r.do("A", "all_children_number", "/d")


def run_on(kind, tmp_overrides=None):
    s = Server(kind, tmp_overrides or {})
    r = None
    try:
        s.start()
        r = Recorder(s)
        try:
            script(r)
        finally:
            r.close_all()
        return r.finish()
    finally:
        s.cleanup()


def diff(a, b, na, nb):
    return "\n".join(difflib.unified_diff(a, b, na, nb, lineterm="", n=3))


def test_script_is_deterministic_on_zookeeper():
    """The script itself must give the same record twice on Apache ZooKeeper."""
    if "zookeeper" not in selected_targets():
        pytest.skip("zookeeper not among FJORD_TEST_TARGETS")
    skip_or_fail_unavailable("zookeeper")
    a = run_on("zookeeper")
    b = run_on("zookeeper")
    assert len(a) > 300
    assert a == b, "\n" + diff(a, b, "zookeeper-run-1", "zookeeper-run-2")


def test_differential_zookeeper_vs_fjord():
    if "fjord" not in selected_targets():
        pytest.skip("fjord not among FJORD_TEST_TARGETS")
    skip_or_fail_unavailable("zookeeper")
    skip_or_fail_unavailable("fjord")
    zk = run_on("zookeeper")
    fj = run_on("fjord")
    out_dir = os.environ.get("FJORD_DIFF_DIR", "/tmp")
    try:
        for name, rec in (("zookeeper", zk), ("fjord", fj)):
            with open(os.path.join(out_dir, "coord-differential-%s.txt" % name), "w") as f:
                f.write("".join("%04d %s\n" % (i, line) for i, line in enumerate(rec)))
    except OSError:
        pass
    if zk != fj:
        first = next(i for i, (x, y) in enumerate(zip(zk + [None], fj + [None])) if x != y)
        d = diff(zk, fj, "zookeeper", "fjord")
        pytest.fail("fjord-coord differs from Apache ZooKeeper 3.8 first at record %d of %d:\n"
                    "  zookeeper: %s\n  fjord:     %s\n(full records in %s/coord-differential-*.txt)\n\n%s"
                    % (first, len(zk),
                       zk[first] if first < len(zk) else "<end>",
                       fj[first] if first < len(fj) else "<end>", out_dir, d[:20000]), pytrace=False)
