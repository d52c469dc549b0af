"""Raw transaction requests for the bad-input tests, at old non-flexible
versions so the bytes stay simple: FindCoordinator v1 (key type
TRANSACTION), InitProducerId v1, AddPartitionsToTxn v1, EndTxn v1,
TxnOffsetCommit v2. Each returns the error code(s) the broker answered."""
import socket
import struct

from fjordtest.kafka_wire import frame, recv_frame


def _s(v):
    b = v.encode()
    return struct.pack(">h", len(b)) + b


def _call(addr, api_key, version, body):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(frame(api_key, version, 5, body))
        r = recv_frame(s)
    return r[4:]  # drop the correlation id


def coordinator(bootstrap, key, key_type=1):
    """host:port of key's coordinator (key type 1: transaction, 0: group)."""
    r = _call(bootstrap.split(",")[0], 10, 1, _s(key) + struct.pack(">b", key_type))
    _throttle, err = struct.unpack(">ih", r[:6])
    assert err == 0, "FindCoordinator error %d" % err
    off = 6
    (mlen,) = struct.unpack(">h", r[off:off + 2])
    off += 2 + max(mlen, 0)
    _node, hlen = struct.unpack(">ih", r[off:off + 6])
    off += 6
    host = r[off:off + hlen].decode()
    off += hlen
    (port,) = struct.unpack(">i", r[off:off + 4])
    return "%s:%d" % (host, port)


def init_producer_id(addr, txn_id, timeout_ms):
    """(error, producer id, epoch)."""
    r = _call(addr, 22, 1, _s(txn_id) + struct.pack(">i", timeout_ms))
    _t, err, pid, epoch = struct.unpack(">ihqh", r[:16])
    return err, pid, epoch


def end_txn(addr, txn_id, pid, epoch, commit):
    r = _call(addr, 26, 1, _s(txn_id) + struct.pack(">qhb", pid, epoch, 1 if commit else 0))
    _t, err = struct.unpack(">ih", r[:6])
    return err


def add_partitions(addr, txn_id, pid, epoch, topic, partition):
    """The one partition's error code."""
    body = _s(txn_id) + struct.pack(">qh", pid, epoch) + struct.pack(">i", 1) + _s(topic)
    body += struct.pack(">ii", 1, partition)
    r = _call(addr, 24, 1, body)
    off = 4 + 4  # throttle, topic array length
    (tlen,) = struct.unpack(">h", r[off:off + 2])
    off += 2 + tlen + 4  # name, partition array length
    _p, err = struct.unpack(">ih", r[off:off + 6])
    return err


def txn_offset_commit(addr, txn_id, group, pid, epoch, topic, partition, offset):
    """TxnOffsetCommit v2 (no member fields): the one partition's error code."""
    body = _s(txn_id) + _s(group) + struct.pack(">qh", pid, epoch)
    body += struct.pack(">i", 1) + _s(topic) + struct.pack(">i", 1)
    body += struct.pack(">iqi", partition, offset, -1) + struct.pack(">h", -1)
    r = _call(addr, 28, 2, body)
    off = 4 + 4
    (tlen,) = struct.unpack(">h", r[off:off + 2])
    off += 2 + tlen + 4
    _p, err = struct.unpack(">ih", r[off:off + 6])
    return err
