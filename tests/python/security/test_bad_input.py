"""Bad input against the secured listeners of a running broker, with a
normal client served throughout: a plaintext client on a TLS port, a TLS
client on a plaintext port, a truncated TLS handshake, a SaslAuthenticate
before SaslHandshake, an oversized SASL token, a request before
authentication, an unknown mechanism, raw garbage after a v0 handshake.
Each gets the protocol's error or a closed connection, is logged with the
client's address, and the broker keeps serving."""
import socket
import ssl
import struct
import time

from confluent_kafka import Consumer, Producer

from fjordtest.kafka_wire import frame, recv_frame


def closed(s, timeout=5.0):
    """True when the peer closes (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def sock(c, listener, b=0):
    return socket.create_connection(("127.0.0.1", c.brokers[b].ports[listener]), timeout=5)


def handshake(s, mech, version=1, corr=1):
    s.sendall(frame(17, version, corr, struct.pack(">h", len(mech)) + mech))
    r = recv_frame(s)
    (got_corr, code) = struct.unpack_from(">ih", r)
    assert got_corr == corr
    return code


def normal_client_works(c, topic, i):
    p = Producer({"bootstrap.servers": c.bootstrap("PLAINTEXT")})
    p.produce(topic, value=b"ok%d" % i)
    assert p.flush(15) == 0


def test_bad_input_is_refused_and_others_are_served(secure):
    c = secure
    topic = "sec-bad-input"
    normal_client_works(c, topic, 0)
    # 1. A plaintext Kafka request on the TLS port.
    s = sock(c, "SSL")
    s.sendall(frame(18, 0, 1))
    assert closed(s)
    s.close()
    normal_client_works(c, topic, 1)
    # 2. A TLS client on the plaintext port.
    ctx = ssl.create_default_context(cafile=c.certs["ca.pem"])
    raw = sock(c, "PLAINTEXT")
    try:
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        assert False, "TLS handshake succeeded on a plaintext port"
    except (ssl.SSLError, ConnectionError, OSError):
        pass
    raw.close()
    # 3. A truncated TLS handshake: the first bytes of a ClientHello, then silence.
    s = sock(c, "SASL_SSL")
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    s.shutdown(socket.SHUT_WR)
    assert closed(s)
    s.close()
    normal_client_works(c, topic, 2)
    # 4. SaslAuthenticate before SaslHandshake: ILLEGAL_SASL_STATE (34), closed.
    s = sock(c, "SASL_PLAINTEXT")
    tok = b"\0alice\0alice-secret"
    s.sendall(frame(36, 1, 5, struct.pack(">i", len(tok)) + tok))
    r = recv_frame(s)
    assert struct.unpack_from(">ih", r) == (5, 34)
    assert closed(s)
    s.close()
    # 5. An oversized SASL token: closed before we send it all.
    s = sock(c, "SASL_PLAINTEXT")
    assert handshake(s, b"PLAIN") == 0
    s.sendall(struct.pack(">i", 100 * 1024 * 1024) + b"\0" * 1024)
    assert closed(s)
    s.close()
    # 6. A Metadata request before authentication: closed, no answer.
    s = sock(c, "SASL_PLAINTEXT")
    s.sendall(frame(3, 1, 9, struct.pack(">i", -1)))
    assert closed(s)
    s.close()
    # 7. An unknown mechanism: UNSUPPORTED_SASL_MECHANISM (33) with the list, closed.
    s = sock(c, "SASL_PLAINTEXT")
    s.sendall(frame(17, 1, 3, struct.pack(">h", 6) + b"GSSAPI"))
    r = recv_frame(s)
    assert struct.unpack_from(">ih", r) == (3, 33)
    assert b"SCRAM-SHA-256" in r
    assert closed(s)
    s.close()
    # 8. v0 handshake, then a malformed raw SCRAM token: closed after the delay.
    s = sock(c, "SASL_PLAINTEXT")
    assert handshake(s, b"SCRAM-SHA-256", version=0) == 0
    t0 = time.time()
    s.sendall(struct.pack(">i", 5) + b"\xff\x00=,x")
    assert closed(s)
    assert time.time() - t0 >= 0.09  # connection.failed.authentication.delay.ms=100
    s.close()
    # 9. ApiVersions is served before authentication.
    s = sock(c, "SASL_PLAINTEXT")
    s.sendall(frame(18, 0, 11))
    r = recv_frame(s)
    assert struct.unpack_from(">ih", r) == (11, 0)
    s.close()
    normal_client_works(c, topic, 3)
    # The broker is alive, served everything, and logged the refusals with addresses.
    cons = Consumer({"bootstrap.servers": c.bootstrap("PLAINTEXT"), "group.id": "bad-input",
                     "auto.offset.reset": "earliest"})
    cons.subscribe([topic])
    got = []
    deadline = time.time() + 20
    while len(got) < 4 and time.time() < deadline:
        m = cons.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    cons.close()
    assert got == [b"ok0", b"ok1", b"ok2", b"ok3"]
    for b in c.brokers:
        assert b.alive()
    log = c.brokers[0].log_tail(400000)
    assert "panicked" not in log
    assert "TLS handshake failed peer=127.0.0.1:" in log
    assert "SaslAuthenticate before SaslHandshake" in log
    assert "a TLS handshake on a plaintext listener?" in log
    assert "Metadata before authentication" in log
    assert 'mechanism \\"GSSAPI\\" not enabled' in log


def test_v0_raw_plain_flow(secure):
    """SaslHandshake v0, then the PLAIN token as a bare frame (old clients);
    authenticated, the connection serves Metadata."""
    s = sock(secure, "SASL_PLAINTEXT", b=1)
    assert handshake(s, b"PLAIN", version=0) == 0
    tok = b"\0alice\0alice-secret"
    s.sendall(struct.pack(">i", len(tok)) + tok)
    assert recv_frame(s) == b""
    s.sendall(frame(3, 1, 21, struct.pack(">i", 0)))
    r = recv_frame(s)
    (corr, nbrokers) = struct.unpack_from(">ii", r)
    assert (corr, nbrokers) == (21, 2)
    s.close()
