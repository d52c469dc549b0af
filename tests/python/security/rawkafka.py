"""Raw Kafka requests the security suites send where no client library can:
PLAIN authentication on a bare socket, and a follower's Fetch (replica_id
set), parsed to its partition error codes."""
import struct

from fjordtest.kafka_wire import frame, recv_frame


def plain_auth(s, user, password):
    """SaslHandshake v1 (PLAIN) and SaslAuthenticate v0 on a connected socket."""
    mech = b"PLAIN"
    s.sendall(frame(17, 1, 1, struct.pack(">h", len(mech)) + mech))
    r = recv_frame(s)
    assert struct.unpack(">h", r[4:6])[0] == 0
    tok = b"\0" + user.encode() + b"\0" + password.encode()
    s.sendall(frame(36, 0, 2, struct.pack(">i", len(tok)) + tok))
    r = recv_frame(s)
    assert struct.unpack(">h", r[4:6])[0] == 0, r
    return s


def string(b, off):
    (n,) = struct.unpack(">h", b[off:off + 2])
    off += 2
    if n < 0:
        return None, off
    return b[off:off + n].decode(), off + n


def replica_fetch_errors(connect, topic, replica_id):
    """Fetch v4 with replica_id (a follower's fetch) for partitions 0 and 1 on
    the socket `connect()` gives (authenticated): their error codes."""
    with connect() as s:
        t = topic.encode()
        body = struct.pack(">iiiib", replica_id, 100, 1, 1 << 20, 0)
        body += struct.pack(">ih", 1, len(t)) + t
        body += struct.pack(">i", 2)
        for p in (0, 1):
            body += struct.pack(">iqi", p, 0, 1 << 20)
        s.sendall(frame(1, 4, 9, body))
        r = recv_frame(s)
    off = 4 + 4  # correlation id, throttle
    (nt,) = struct.unpack(">i", r[off:off + 4])
    off += 4
    codes = []
    for _ in range(nt):
        _, off = string(r, off)
        (np_,) = struct.unpack(">i", r[off:off + 4])
        off += 4
        for _ in range(np_):
            _, code = struct.unpack(">ih", r[off:off + 6])
            codes.append(code)
            off += 4 + 2 + 8 + 8  # partition, error, high watermark, last stable (v4)
            (na,) = struct.unpack(">i", r[off:off + 4])
            off += 4 + max(na, 0) * 16
            (nrec,) = struct.unpack(">i", r[off:off + 4])
            off += 4 + max(nrec, 0)
    return codes
