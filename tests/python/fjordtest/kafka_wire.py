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
