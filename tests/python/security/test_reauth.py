"""KIP-368 re-authentication against one broker with
`connections.max.reauth.ms=3000` (and 0 on its SASL_SSL listener, per
listener): confluent-kafka re-authenticates a producer's connections while it
keeps producing; a raw client is told session_lifetime_ms=3000, is served
before expiry and disconnected at its first request after it; a raw
re-authentication as the same user extends the session; one as another user
is refused with SASL_AUTHENTICATION_FAILED; a client that authenticated with
SaslAuthenticate v0 gets no lifetime and is never disconnected."""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest
from confluent_kafka import Producer, libversion

from fjordtest.binaries import broker_binary, fjord_cli, require
from fjordtest.kafka_wire import frame, recv_frame

from .conftest import SecureCluster

LIFETIME_MS = 3000
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33


@pytest.fixture(scope="module")
def reauth():
    require(broker_binary(), fjord_cli())
    c = SecureCluster(n=1, extra={"connections.max.reauth.ms": LIFETIME_MS,
                                  "listener.name.sasl_ssl.connections.max.reauth.ms": 0})
    try:
        for user in ("rita", "ralph"):
            r = subprocess.run([fjord_cli(), "user", "create", user, "--mechanism", "SCRAM-SHA-512",
                                "--password", user + "-secret",
                                "--bootstrap-server", c.brokers[0].addr("PLAINTEXT")],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
        yield c
    finally:
        c.close()


def connect(c, listener="SASL_PLAINTEXT"):
    s = socket.create_connection(("127.0.0.1", c.brokers[0].ports[listener]), timeout=5)
    if listener == "SASL_SSL":
        ctx = ssl.create_default_context(cafile=c.certs["ca.pem"])
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def handshake(s, mech, corr, version=1):
    s.sendall(frame(17, version, corr, struct.pack(">h", len(mech)) + mech))
    (got, code) = struct.unpack_from(">ih", recv_frame(s))
    assert got == corr
    return code


def authenticate(s, token, corr, version=1):
    """SaslAuthenticate v0/v1: (error_code, error_message, auth_bytes, session_lifetime_ms)."""
    s.sendall(frame(36, version, corr, struct.pack(">i", len(token)) + token))
    r = recv_frame(s)
    (got, code, mlen) = struct.unpack_from(">ihh", r)
    assert got == corr
    off = 8
    msg = None
    if mlen >= 0:
        msg = r[off:off + mlen].decode()
        off += mlen
    (blen,) = struct.unpack_from(">i", r, off)
    off += 4
    auth = r[off:off + blen]
    off += blen
    life = struct.unpack_from(">q", r, off)[0] if version >= 1 else None
    return code, msg, auth, life


def plain(s, user, pw, corr, version=1):
    return authenticate(s, b"\0" + user + b"\0" + pw, corr, version)


def scram512(s, user, pw, corr):
    """A SCRAM-SHA-512 exchange (RFC 5802) in two SaslAuthenticate v1 rounds;
    checks the server's signature; returns the last response."""
    cnonce = base64.b64encode(os.urandom(18)).decode()
    bare = "n=%s,r=%s" % (user, cnonce)
    code, msg, sfirst, _ = authenticate(s, ("n,," + bare).encode(), corr)
    assert code == 0, msg
    sfirst = sfirst.decode()
    attrs = dict(kv.split("=", 1) for kv in sfirst.split(","))
    assert attrs["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac("sha512", pw, base64.b64decode(attrs["s"]), int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", "sha512").digest()
    without = "c=biws,r=" + attrs["r"]
    am = ",".join([bare, sfirst, without]).encode()
    sig = hmac.new(hashlib.sha512(ckey).digest(), am, "sha512").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig))).decode()
    code, msg, final, life = authenticate(s, ("%s,p=%s" % (without, proof)).encode(), corr + 1)
    if code == 0:
        skey = hmac.new(salted, b"Server Key", "sha512").digest()
        assert final.decode() == "v=" + base64.b64encode(hmac.new(skey, am, "sha512").digest()).decode()
    return code, msg, life


def metadata(s, corr):
    """Metadata v1 (no topics): the broker count."""
    s.sendall(frame(3, 1, corr, struct.pack(">i", 0)))
    (got, nbrokers) = struct.unpack_from(">ii", recv_frame(s))
    assert got == corr
    return nbrokers


def closed_without_answer(s, timeout=5.0):
    """True when the peer closes before sending a single byte."""
    s.settimeout(timeout)
    try:
        return s.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def log_lines(c, *needles):
    with open(c.brokers[0].log_path, errors="replace") as f:
        return [ln for ln in f if all(n in ln for n in needles)]


def test_confluent_kafka_producer_reauthenticates(reauth):
    """One producer, a record every 100 ms for 12 s: every delivery succeeds
    while its connections re-authenticate (librdkafka >= 2.2 does KIP-368)."""
    major, minor = (int(x) for x in libversion()[0].split(".")[:2])
    assert (major, minor) >= (2, 2), libversion()
    errors, delivered, failed = [], [], []
    p = Producer({"bootstrap.servers": reauth.bootstrap("SASL_PLAINTEXT"),
                  "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                  "sasl.username": "rita", "sasl.password": "rita-secret",
                  "error_cb": lambda e: errors.append(str(e))})

    def done(err, msg):
        (failed if err else delivered).append(err or msg.offset())

    n = 0
    end = time.time() + 12
    while time.time() < end:
        p.produce("reauth-topic", value=b"r%d" % n, on_delivery=done)
        n += 1
        p.poll(0.1)
    assert p.flush(20) == 0
    assert failed == []
    assert len(delivered) == n and n >= 100
    assert sorted(delivered) == list(range(n))
    assert errors == [], errors
    reauths = log_lines(reauth, "SASL re-authenticated", "User:rita")
    assert len(reauths) >= 2, reauths
    assert log_lines(reauth, "SASL session expired", "User:rita") == []


def test_raw_client_told_lifetime_and_disconnected_after_expiry(reauth):
    s = connect(reauth)
    assert handshake(s, b"SCRAM-SHA-512", 1) == 0
    code, msg, life = scram512(s, "ralph", b"ralph-secret", 2)
    assert (code, life) == (0, LIFETIME_MS), msg
    assert metadata(s, 4) == 1
    time.sleep(LIFETIME_MS / 1000 + 0.5)
    port = s.getsockname()[1]
    s.sendall(frame(3, 1, 5, struct.pack(">i", 0)))
    assert closed_without_answer(s)
    s.close()
    lines = log_lines(reauth, "SASL session expired", "User:ralph", "127.0.0.1:%d" % port)
    assert len(lines) == 1, lines


def test_raw_reauthentication_extends_the_session(reauth):
    s = connect(reauth)
    assert handshake(s, b"SCRAM-SHA-512", 1) == 0
    assert scram512(s, "ralph", b"ralph-secret", 2)[::2] == (0, LIFETIME_MS)
    time.sleep(2.0)
    # Re-authenticate as the same user: a new lifetime from now.
    assert handshake(s, b"SCRAM-SHA-512", 10) == 0
    assert scram512(s, "ralph", b"ralph-secret", 11)[::2] == (0, LIFETIME_MS)
    time.sleep(2.0)  # 4 s after the first authentication, 2 s after the second
    assert metadata(s, 20) == 1
    s.close()


def test_reauthentication_as_another_user_is_refused(reauth):
    s = connect(reauth)
    assert handshake(s, b"PLAIN", 1) == 0
    assert plain(s, b"alice", b"alice-secret", 2)[::3] == (0, LIFETIME_MS)
    assert handshake(s, b"PLAIN", 3) == 0
    code, msg, _, _ = plain(s, b"admin", b"admin-secret", 4)
    assert code == SASL_AUTHENTICATION_FAILED
    assert "Cannot change principals during re-authentication" in msg
    assert closed_without_answer(s)
    s.close()
    # Another mechanism than the first is refused too.
    s = connect(reauth)
    assert handshake(s, b"PLAIN", 1) == 0
    assert plain(s, b"alice", b"alice-secret", 2)[0] == 0
    assert handshake(s, b"SCRAM-SHA-512", 3) == UNSUPPORTED_SASL_MECHANISM
    s.close()
    # A wrong password on re-authentication: the generic message.
    s = connect(reauth)
    assert handshake(s, b"SCRAM-SHA-512", 1) == 0
    assert scram512(s, "ralph", b"ralph-secret", 2)[0] == 0
    assert handshake(s, b"SCRAM-SHA-512", 3) == 0
    code, msg, _ = scram512(s, "ralph", b"wrong", 4)
    assert code == SASL_AUTHENTICATION_FAILED
    assert "during re-authentication due to invalid credentials" in msg, msg
    s.close()


def test_no_lifetime_for_v0_clients_and_listeners_without_reauth(reauth):
    # SaslAuthenticate v0 cannot carry a lifetime: the session never expires.
    s = connect(reauth)
    assert handshake(s, b"PLAIN", 1) == 0
    assert plain(s, b"alice", b"alice-secret", 2, version=0)[0] == 0
    time.sleep(LIFETIME_MS / 1000 + 0.5)
    assert metadata(s, 3) == 1
    # ... and it cannot re-authenticate (Kafka's ILLEGAL_SASL_STATE).
    assert handshake(s, b"PLAIN", 4) == 34
    s.close()
    # listener.name.sasl_ssl.connections.max.reauth.ms=0 overrides the broker's 3000.
    s = connect(reauth, "SASL_SSL")
    assert handshake(s, b"PLAIN", 1) == 0
    assert plain(s, b"alice", b"alice-secret", 2)[::3] == (0, 0)
    s.close()
