"""A tiny synchronous ZooKeeper wire-protocol (jute) client used by the tests.

kazoo 2.11 has no addWatch, containers, TTL nodes, multiRead, getEphemerals,
getAllChildrenNumber or whoAmI, and it hides the exact order of watch events
relative to replies.  This client speaks the protocol directly: one socket,
requests answered in order, and every watch event (xid -1) that arrives while
waiting for a reply is appended to ``self.events`` in arrival order.

Sources of truth: zookeeper.jute, ZooDefs.java, KeeperException.java,
Watcher.java (Apache ZooKeeper 3.8).
"""
import socket
import struct
import time
from collections import namedtuple

# ---- constants -----------------------------------------------------------------
OP = dict(
    notification=0, create=1, delete=2, exists=3, getData=4, setData=5, getACL=6,
    setACL=7, getChildren=8, sync=9, ping=11, getChildren2=12, check=13, multi=14,
    create2=15, reconfig=16, checkWatches=17, removeWatches=18, createContainer=19,
    deleteContainer=20, createTTL=21, multiRead=22, auth=100, setWatches=101,
    sasl=102, getEphemerals=103, getAllChildrenNumber=104, setWatches2=105,
    addWatch=106, whoAmI=107, createSession=-10, closeSession=-11, error=-1,
)

ERR = {
    0: "OK", -1: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency",
    -4: "ConnectionLoss", -5: "MarshallingError", -6: "Unimplemented",
    -7: "OperationTimeout", -8: "BadArguments", -12: "UnknownSession",
    -13: "NewConfigNoQuorum", -14: "ReconfigInProgress", -100: "APIError",
    -101: "NoNode", -102: "NoAuth", -103: "BadVersion",
    -108: "NoChildrenForEphemerals", -110: "NodeExists", -111: "NotEmpty",
    -112: "SessionExpired", -113: "InvalidCallback", -114: "InvalidACL",
    -115: "AuthFailed", -118: "SessionMoved", -119: "NotReadOnly",
    -120: "EphemeralOnLocalSession", -121: "NoWatcher", -123: "ReconfigDisabled",
    -124: "SessionClosedRequireSasl", -125: "QuotaExceeded", -127: "Throttled",
}

# CreateMode flags
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6

# Watcher.Event.EventType
EV_NONE, EV_CREATED, EV_DELETED, EV_DATA, EV_CHILD = -1, 1, 2, 3, 4
EV_DATA_WATCH_REMOVED, EV_CHILD_WATCH_REMOVED, EV_PERSISTENT_WATCH_REMOVED = 5, 6, 7
EVENT_NAMES = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
               4: "NodeChildrenChanged", 5: "DataWatchRemoved", 6: "ChildWatchRemoved",
               7: "PersistentWatchRemoved"}
# KeeperState
ST_DISCONNECTED, ST_SYNC_CONNECTED, ST_AUTH_FAILED, ST_EXPIRED, ST_CLOSED = 0, 3, 4, -112, 7

# AddWatchMode
PERSISTENT_WATCH, PERSISTENT_RECURSIVE_WATCH = 0, 1
# WatcherType for removeWatches/checkWatches
WT_CHILDREN, WT_DATA, WT_ANY = 1, 2, 3

# Perms
READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31

ACL = namedtuple("ACL", "perms scheme id")
OPEN_ACL_UNSAFE = [ACL(ALL, "world", "anyone")]
Stat = namedtuple("Stat", "czxid mzxid ctime mtime version cversion aversion "
                          "ephemeralOwner dataLength numChildren pzxid")
Event = namedtuple("Event", "type state path")
STAT_FMT = ">qqqqiiiqiiq"
STAT_SIZE = struct.calcsize(STAT_FMT)


class ZKError(Exception):
    def __init__(self, code, op=None, path=None):
        self.code = code
        self.name = ERR.get(code, "Unknown(%d)" % code)
        super().__init__("%s (%d) op=%s path=%s" % (self.name, code, op, path))


class ConnectionClosed(Exception):
    pass


# ---- encoding ------------------------------------------------------------------
def e_int(v):
    return struct.pack(">i", v)


def e_long(v):
    return struct.pack(">q", v)


def e_bool(v):
    return b"\x01" if v else b"\x00"


def e_buf(b):
    if b is None:
        return e_int(-1)
    return e_int(len(b)) + b


def e_str(s):
    if s is None:
        return e_int(-1)
    return e_buf(s.encode("utf-8"))


def e_strvec(v):
    if v is None:
        return e_int(-1)
    return e_int(len(v)) + b"".join(e_str(s) for s in v)


def e_acls(acls):
    if acls is None:
        return e_int(-1)
    out = e_int(len(acls))
    for a in acls:
        out += e_int(a.perms) + e_str(a.scheme) + e_str(a.id)
    return out


class Reader:
    def __init__(self, data, off=0):
        self.d = data
        self.o = off

    def int(self):
        v = struct.unpack_from(">i", self.d, self.o)[0]
        self.o += 4
        return v

    def long(self):
        v = struct.unpack_from(">q", self.d, self.o)[0]
        self.o += 8
        return v

    def bool(self):
        v = self.d[self.o] != 0
        self.o += 1
        return v

    def buf(self):
        n = self.int()
        if n < 0:
            return None
        v = bytes(self.d[self.o:self.o + n])
        if len(v) != n:
            raise ValueError("short buffer")
        self.o += n
        return v

    def str(self):
        b = self.buf()
        return None if b is None else b.decode("utf-8")

    def strvec(self):
        n = self.int()
        if n < 0:
            return None
        return [self.str() for _ in range(n)]

    def stat(self):
        v = Stat._make(struct.unpack_from(STAT_FMT, self.d, self.o))
        self.o += STAT_SIZE
        return v

    def acls(self):
        n = self.int()
        if n < 0:
            return None
        out = []
        for _ in range(n):
            perms = self.int()
            out.append(ACL(perms, self.str(), self.str()))
        return out

    def remaining(self):
        return len(self.d) - self.o


def frame(payload):
    return e_int(len(payload)) + payload


def connect_request(timeout_ms=10000, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                    read_only=False, with_ro_byte=True):
    b = e_int(0) + e_long(last_zxid) + e_int(timeout_ms) + e_long(session_id) + e_buf(passwd)
    if with_ro_byte:
        b += e_bool(read_only)
    return b


def multi_op_bytes(op):
    """op: tuple (kind, args...) -> (opcode, body)."""
    kind = op[0]
    if kind == "create":
        _, path, data, acl, flags = op
        return OP["create"], e_str(path) + e_buf(data) + e_acls(acl) + e_int(flags)
    if kind == "create2":
        _, path, data, acl, flags = op
        return OP["create2"], e_str(path) + e_buf(data) + e_acls(acl) + e_int(flags)
    if kind == "createContainer":
        _, path, data, acl = op
        return OP["createContainer"], e_str(path) + e_buf(data) + e_acls(acl) + e_int(CONTAINER)
    if kind == "createTTL":
        _, path, data, acl, flags, ttl = op
        return OP["createTTL"], e_str(path) + e_buf(data) + e_acls(acl) + e_int(flags) + e_long(ttl)
    if kind == "delete":
        _, path, version = op
        return OP["delete"], e_str(path) + e_int(version)
    if kind == "setData":
        _, path, data, version = op
        return OP["setData"], e_str(path) + e_buf(data) + e_int(version)
    if kind == "check":
        _, path, version = op
        return OP["check"], e_str(path) + e_int(version)
    if kind == "getChildren":
        _, path = op
        return OP["getChildren"], e_str(path) + e_bool(False)
    if kind == "getData":
        _, path = op
        return OP["getData"], e_str(path) + e_bool(False)
    raise ValueError(kind)


# ---- the client ----------------------------------------------------------------
class Conn:
    def __init__(self, host, port, timeout_ms=10000, session_id=0, passwd=b"\0" * 16,
                 last_zxid=0, sock_timeout=10.0, connect=True):
        self.host, self.port = host, port
        self.req_timeout = timeout_ms
        self.session_id = session_id
        self.passwd = passwd
        self.last_zxid = last_zxid
        self.sock_timeout = sock_timeout
        self.xid = 0
        self.events = []
        self.sock = None
        self.negotiated_timeout = None
        self.last_reply_zxid = None
        self.buf = b""
        if connect:
            self.connect()

    # -- transport
    def _open(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=self.sock_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionClosed("server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        n = struct.unpack(">i", self._read_exact(4))[0]
        return self._read_exact(n)

    def send_raw(self, data):
        self.sock.sendall(data)

    def connect(self):
        self._open()
        self.send_raw(frame(connect_request(self.req_timeout, self.session_id, self.passwd,
                                            self.last_zxid)))
        r = Reader(self.read_frame())
        proto = r.int()
        self.negotiated_timeout = r.int()
        sid = r.long()
        pw = r.buf()
        self.connect_response = (proto, self.negotiated_timeout, sid, pw)
        if self.negotiated_timeout <= 0:
            # Expired/unknown session: ZooKeeper answers timeout 0 and closes.
            self.expired = True
            return self
        self.expired = False
        self.session_id, self.passwd = sid, pw
        return self

    def close_socket(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def close(self):
        """closeSession then close the socket."""
        try:
            self.call(OP["closeSession"], b"")
        except (ConnectionClosed, OSError, ZKError):
            pass
        self.close_socket()

    # -- request/response
    def _next_xid(self):
        self.xid += 1
        return self.xid

    def send_request(self, opcode, body, xid=None):
        if xid is None:
            xid = self._next_xid()
        self.send_raw(frame(e_int(xid) + e_int(opcode) + body))
        return xid

    def read_reply(self, xid):
        """Read frames until the reply for xid; collect watch events on the way."""
        while True:
            r = Reader(self.read_frame())
            rxid, zxid, err = r.int(), r.long(), r.int()
            if rxid == -1:
                ev = Event(r.int(), r.int(), r.str())
                self.events.append(ev)
                continue
            if rxid != xid:
                raise AssertionError("reply for xid %d while waiting for %d (err %d)" % (rxid, xid, err))
            self.last_reply_zxid = zxid
            return zxid, err, r

    def call(self, opcode, body, xid=None):
        x = self.send_request(opcode, body, xid)
        return self.read_reply(x)

    def _check(self, err, op, path):
        if err != 0:
            raise ZKError(err, op, path)

    def _ok(self, op, path, body, xid=None):
        """The reply to `op` (named as in OP) on `path`; ZKError unless it succeeded."""
        _, err, r = self.call(OP[op], body, xid)
        self._check(err, op, path)
        return r

    # -- operations
    def create(self, path, data=b"", acl=OPEN_ACL_UNSAFE, flags=PERSISTENT, ttl=None, op=None):
        """create2-style: returns (path, stat). op defaults to create2 / createTTL /
        createContainer depending on flags."""
        if op is None:
            if flags in (PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL):
                op = "createTTL"
            elif flags == CONTAINER:
                op = "createContainer"
            else:
                op = "create2"
        body = e_str(path) + e_buf(data) + e_acls(acl) + e_int(flags)
        if op == "createTTL":
            body += e_long(ttl if ttl is not None else 0)
        r = self._ok(op, path, body)
        if op == "create":
            return r.str(), None
        return r.str(), r.stat()

    def delete(self, path, version=-1):
        self._ok("delete", path, e_str(path) + e_int(version))

    def exists(self, path, watch=False):
        _, err, r = self.call(OP["exists"], e_str(path) + e_bool(watch))
        if err == -101:
            return None
        self._check(err, "exists", path)
        return r.stat()

    def get(self, path, watch=False):
        r = self._ok("getData", path, e_str(path) + e_bool(watch))
        return r.buf(), r.stat()

    def set(self, path, data, version=-1):
        return self._ok("setData", path, e_str(path) + e_buf(data) + e_int(version)).stat()

    def get_acl(self, path):
        r = self._ok("getACL", path, e_str(path))
        return r.acls(), r.stat()

    def set_acl(self, path, acls, version=-1):
        return self._ok("setACL", path, e_str(path) + e_acls(acls) + e_int(version)).stat()

    def children(self, path, watch=False):
        return self._ok("getChildren", path, e_str(path) + e_bool(watch)).strvec()

    def children2(self, path, watch=False):
        r = self._ok("getChildren2", path, e_str(path) + e_bool(watch))
        return r.strvec(), r.stat()

    def sync(self, path):
        return self._ok("sync", path, e_str(path)).str()

    def ping(self):
        self._ok("ping", None, b"", xid=-2)

    def add_auth(self, scheme, auth):
        self._ok("auth", scheme, e_int(0) + e_str(scheme) + e_buf(auth), xid=-4)

    def add_watch(self, path, mode):
        self._ok("addWatch", path, e_str(path) + e_int(mode))

    def remove_watches(self, path, wtype):
        self._ok("removeWatches", path, e_str(path) + e_int(wtype))

    def check_watches(self, path, wtype):
        self._ok("checkWatches", path, e_str(path) + e_int(wtype))

    def get_ephemerals(self, prefix="/"):
        return self._ok("getEphemerals", prefix, e_str(prefix)).strvec()

    def all_children_number(self, path):
        return self._ok("getAllChildrenNumber", path, e_str(path)).int()

    def who_am_i(self):
        r = self._ok("whoAmI", None, b"")
        n = r.int()
        return [(r.str(), r.str()) for _ in range(max(n, 0))]

    def set_watches(self, rel_zxid, data=(), exist=(), child=(), persistent=None, recursive=None):
        body = e_long(rel_zxid) + e_strvec(list(data)) + e_strvec(list(exist)) + e_strvec(list(child))
        op = "setWatches"
        if persistent is not None or recursive is not None:
            op = "setWatches2"
            body += e_strvec(list(persistent or [])) + e_strvec(list(recursive or []))
        self._ok(op, None, body, xid=-8)

    def multi(self, ops):
        """Returns a list of per-op results: ('create', path) / ('create2', path, stat) /
        ('delete',) / ('setData', stat) / ('check',) / ('error', code).
        Raises nothing for op failures: the caller inspects results; the reply
        header's err is returned as the first element of the tuple (err, results)."""
        return self._multi(OP["multi"], ops)

    def multi_read(self, ops):
        return self._multi(OP["multiRead"], ops)

    def _multi(self, opcode, ops):
        body = b""
        for op in ops:
            code, b = multi_op_bytes(op)
            body += e_int(code) + e_bool(False) + e_int(-1) + b
        body += e_int(-1) + e_bool(True) + e_int(-1)
        _, err, r = self.call(opcode, body)
        results = []
        if r.remaining() == 0:
            return err, results
        while True:
            t, done, e = r.int(), r.bool(), r.int()
            if done:
                break
            if t == OP["create"]:
                results.append(("create", r.str()))
            elif t in (OP["create2"], OP["createContainer"], OP["createTTL"]):
                results.append(("create2", r.str(), r.stat()))
            elif t == OP["delete"]:
                results.append(("delete",))
            elif t == OP["setData"]:
                results.append(("setData", r.stat()))
            elif t == OP["check"]:
                results.append(("check",))
            elif t == OP["getChildren"]:
                results.append(("getChildren", r.strvec()))
            elif t == OP["getData"]:
                results.append(("getData", r.buf(), r.stat()))
            elif t == -1:
                results.append(("error", r.int()))
            else:
                raise AssertionError("unknown multi result type %d" % t)
        return err, results

    # -- events
    def drain(self):
        """Make sure every event queued for this session before now has been read:
        a round trip (exists /) cannot overtake events queued before it."""
        self.exists("/")
        ev, self.events = self.events, []
        return ev

    def wait_events(self, n, timeout=10.0):
        """Wait until at least n events are buffered (reading with pings)."""
        deadline = time.time() + timeout
        while len(self.events) < n and time.time() < deadline:
            self.sock.settimeout(max(0.05, min(0.5, deadline - time.time())))
            try:
                r = Reader(self.read_frame())
            except socket.timeout:
                continue
            finally:
                self.sock.settimeout(self.sock_timeout)
            rxid, zxid, err = r.int(), r.long(), r.int()
            if rxid == -1:
                self.events.append(Event(r.int(), r.int(), r.str()))
        ev, self.events = self.events, []
        return ev


def four_letter(port, cmd, host="127.0.0.1", timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(cmd.encode() if isinstance(cmd, str) else cmd)
        out = b""
        while True:
            try:
                c = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not c:
                break
            out += c
        return out.decode("utf-8", "replace")
    finally:
        s.close()
