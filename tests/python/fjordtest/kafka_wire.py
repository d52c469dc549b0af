"""Minimal raw Kafka wire helpers for tests that must control the bytes
(readiness probe, malformed frames, ApiVersions fallback)."""
import socket
import struct


def frame(api_key, version, corr, body=b"", client_id=b"test"):
    hdr = struct.pack(">hhi", api_key, version, corr)
    hdr += struct.pack(">h", len(client_id)) + client_id
    msg = hdr + body
    return struct.pack(">i", len(msg)) + msg


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_frame(sock):
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, n)


def api_versions(host, port, version=0, timeout=5.0):
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(frame(18, version, 1))
        return recv_frame(s)


def metadata_brokers(host, port, timeout=2.0):
    """Broker ids from a Metadata v1 request (all topics)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(frame(3, 1, 7, struct.pack(">i", 0)))
        r = recv_frame(s)
    off = 4  # correlation id
    (n,) = struct.unpack_from(">i", r, off)
    off += 4
    ids = []
    for _ in range(n):
        (node,) = struct.unpack_from(">i", r, off)
        off += 4
        (hl,) = struct.unpack_from(">h", r, off)
        off += 2 + hl + 4  # host, port
        (rl,) = struct.unpack_from(">h", r, off)
        off += 2 + max(rl, 0)
        ids.append(node)
    return ids


def _fetch_v4(host, port, topic, partition, offset, isolation, timeout):
    """One Fetch v4 request: (high watermark, last stable offset, aborted
    [(producer id, first offset)], raw record bytes)."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 100, 0, 16 << 20, isolation)
    body += struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">iiqi", 1, partition, offset, 16 << 20)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(frame(1, 4, 11, body))
        r = recv_frame(s)
    off = 4 + 4  # correlation id, throttle time
    (ntopics,) = struct.unpack_from(">i", r, off)
    assert ntopics == 1, ntopics
    (tlen,) = struct.unpack_from(">h", r, off + 4)
    off += 6 + tlen
    (nparts,) = struct.unpack_from(">i", r, off)
    assert nparts == 1, nparts
    _, err, hw, lso, naborted = struct.unpack_from(">ihqqi", r, off + 4)
    assert err == 0, "fetch error %d" % err
    off += 4 + 26
    aborted = []
    for _ in range(max(naborted, 0)):
        aborted.append(struct.unpack_from(">qq", r, off))
        off += 16
    (n,) = struct.unpack_from(">i", r, off)
    off += 4
    return hw, lso, aborted, r[off:off + max(n, 0)]


def fetch_batches(host, port, topic, partition=0, read_committed=False, timeout=10.0):
    """Every record batch of a partition from offset 0, by raw Fetch v4
    requests, which unlike a client's consumer show control batches (the
    COMMIT/ABORT markers): ([{base, last, producer_id, control,
    transactional, records}], high watermark, last stable offset, aborted
    transactions [(producer id, first offset)] of every response)."""
    batches, aborted, offset = [], [], 0
    while True:
        hw, lso, ab, raw = _fetch_v4(host, port, topic, partition, offset,
                                     1 if read_committed else 0, timeout)
        aborted.extend(a for a in ab if a not in aborted)
        at, got = 0, 0
        while at + 61 <= len(raw):
            base, length = struct.unpack_from(">qi", raw, at)
            if at + 12 + length > len(raw):
                break  # a partial batch at the end of the response
            attrs, delta = struct.unpack_from(">hi", raw, at + 21)
            pid = struct.unpack_from(">q", raw, at + 43)[0]
            count = struct.unpack_from(">i", raw, at + 57)[0]
            batches.append({"base": base, "last": base + delta, "producer_id": pid,
                            "transactional": bool(attrs & 0x10), "control": bool(attrs & 0x20),
                            "records": count})
            offset = base + delta + 1
            at += 12 + length
            got += 1
        if got == 0:
            return batches, hw, lso, aborted
