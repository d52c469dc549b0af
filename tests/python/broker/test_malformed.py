"""Malformed frames close only that connection; the broker keeps serving."""
import random
import socket
import struct

from fjordtest.kafka_wire import api_versions, frame, metadata_brokers, recv_frame
from fjordtest.net import HOST


def send_and_expect_close(port, data):
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(data)
        # Half-close: a frame the broker answers (random bytes can be a valid
        # request) ends at EOF instead of at the timeout.
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            pass


def test_malformed_frames(cluster1):
    port = cluster1.brokers[0].port
    rnd = random.Random(42)
    cases = [
        struct.pack(">i", -1),
        struct.pack(">i", 2_000_000_000),             # huge: refused before allocation
        struct.pack(">i", 3) + b"abc",                 # too short for a header
        frame(9999, 0, 1),                             # unknown api key
        frame(3, 99, 1),                               # unadvertised version
        frame(0, 7, 1, b"\xff" * 11),                  # produce garbage
        frame(1, 11, 1, b"\x00" * 7),                  # truncated fetch
        frame(3, 9, 1, b"\x05\x01\x02"),               # truncated flexible metadata
    ]
    for _ in range(200):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 64)))
        cases.append(frame(rnd.choice([0, 1, 2, 3, 18, 19, 20, 22, 23, 32, 37, 44, 60]), rnd.randint(0, 12), 1, body))
    for c in cases:
        send_and_expect_close(port, c)
    assert 1 in metadata_brokers(HOST, port)


def test_api_versions_fallback_and_v0(cluster1):
    port = cluster1.brokers[0].port
    r = api_versions(HOST, port, version=0)
    (corr, err) = struct.unpack_from(">ih", r, 0)
    assert (corr, err) == (1, 0)
    r = api_versions(HOST, port, version=99)
    (corr, err) = struct.unpack_from(">ih", r, 0)
    assert (corr, err) == (1, 35)


def test_pipelined_requests_answered_in_order(cluster1):
    port = cluster1.brokers[0].port
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(b"".join(frame(18, 2, i) for i in range(50)))
        for i in range(50):
            (corr,) = struct.unpack_from(">i", recv_frame(s), 0)
            assert corr == i
