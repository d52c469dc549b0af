"""Security benchmark (scripts/bench-security.sh): one coordinator and one
fjord-broker with PLAINTEXT, SSL and SASL_SSL listeners (the test suite's
certificates and broker, tests/python/security/conftest.py), then in the same
run:

  * produce and consume MB/s of 1 KiB records over PLAINTEXT, SSL and
    SASL_SSL (SCRAM-SHA-512), with confluent-kafka (librdkafka): fjord's own
    client (bench/kbench) does not speak TLS yet;
  * new authenticated connections per second: TCP + TLS handshake +
    SaslHandshake + the SCRAM-SHA-512 exchange, from Python's ssl module and
    hashlib (the client's PBKDF2 is counted too, as every client pays it).

Three rounds, the listeners alternating within each, medians reported.
Usage: bench_security.py [--quick]"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "python"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from fjordtest.binaries import fjord_cli  # noqa: E402
from fjordtest.kafka_wire import frame, recv_frame  # noqa: E402
from security.conftest import SecureCluster  # noqa: E402

QUICK = "--quick" in sys.argv
MB = 64 if QUICK else 256
ROUNDS = 3  # listeners alternate within each round; medians reported (the machine is shared)
CONN_SECS = 3 if QUICK else 10
USER, PASSWORD = "bench", "bench-secret"


def client_conf(c, listener):
    cfg = {"bootstrap.servers": c.brokers[0].addr(listener),
           "security.protocol": listener}
    if "SSL" in listener:
        cfg["ssl.ca.location"] = c.certs["ca.pem"]
    if listener.startswith("SASL"):
        cfg.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER,
                    "sasl.password": PASSWORD})
    return cfg


def produce(cfg, topic, n):
    p = Producer({**cfg, "acks": 1, "linger.ms": 5, "batch.size": 1 << 20,
                  "queue.buffering.max.kbytes": 1 << 20})
    val = os.urandom(1024)
    t0 = time.time()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, val)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    return time.time() - t0


def consume(cfg, topic, n):
    c = Consumer({**cfg, "group.id": "bench-" + uuid.uuid4().hex[:6], "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.max.bytes": 50 << 20})
    c.subscribe([topic])
    got = 0
    t0 = None
    deadline = time.time() + 300
    while got < n and time.time() < deadline:
        for m in c.consume(1000, 1.0):
            if m.error() is None:
                if t0 is None:
                    t0 = time.time()
                got += 1
    el = time.time() - (t0 or time.time())
    c.close()
    assert got >= n, (got, n)
    return el


def scram_connect(host, port, ctx):
    """One new SASL_SSL connection, authenticated with SCRAM-SHA-512."""
    raw = socket.create_connection((host, port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=host)
    s.sendall(frame(17, 1, 1, struct.pack(">h", 13) + b"SCRAM-SHA-512"))
    r = recv_frame(s)
    assert struct.unpack_from(">h", r, 4)[0] == 0
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (USER, cnonce)

    def auth(tok, corr):
        s.sendall(frame(36, 1, corr, struct.pack(">i", len(tok)) + tok))
        r = recv_frame(s)
        code = struct.unpack_from(">h", r, 4)[0]
        assert code == 0, code
        (ml,) = struct.unpack_from(">h", r, 6)
        off = 8 + max(ml, 0)
        (bl,) = struct.unpack_from(">i", r, off)
        return r[off + 4: off + 4 + bl].decode()

    server_first = auth(("n,," + first_bare).encode(), 2)
    parts = dict(p.split("=", 1) for p in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), base64.b64decode(parts["s"]), int(parts["i"]))
    ck = hmac.new(salted, b"Client Key", "sha512").digest()
    sk = hashlib.sha512(ck).digest()
    without = "c=biws,r=" + parts["r"]
    am = ",".join([first_bare, server_first, without]).encode()
    sig = hmac.new(sk, am, "sha512").digest()
    proof = bytes(a ^ b for a, b in zip(ck, sig))
    final = auth((without + ",p=" + base64.b64encode(proof).decode()).encode(), 3)
    assert final.startswith("v=")
    s.close()


def main():
    c = SecureCluster(n=1)
    try:
        subprocess.run([fjord_cli(), "user", "create", USER, "--mechanism", "SCRAM-SHA-512",
                        "--password", PASSWORD, "--bootstrap-server", c.brokers[0].addr("PLAINTEXT")],
                       check=True, capture_output=True)
        n = MB * 1024
        runs = {l: [] for l in ("PLAINTEXT", "SSL", "SASL_SSL")}
        a = AdminClient({"bootstrap.servers": c.brokers[0].addr("PLAINTEXT")})
        for r in range(ROUNDS):
            for listener in runs:
                topic = "bench-%s-%d" % (listener.lower(), r)
                for f in a.create_topics([NewTopic(topic, 1, 1)]).values():
                    f.result(30)
                cfg = client_conf(c, listener)
                pt = produce(cfg, topic, n)
                ct = consume(cfg, topic, n)
                runs[listener].append((MB / pt, MB / ct))
                print("security-bench: round %d %-9s produce %7.1f MB/s  consume %7.1f MB/s"
                      % (r + 1, listener, MB / pt, MB / ct), flush=True)
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        results = {}
        for listener, rs in runs.items():
            results[listener] = (med([p for p, _ in rs]), med([q for _, q in rs]))
            print("security-bench: %-9s produce %7.1f MB/s  consume %7.1f MB/s  (median of %d, %d x 1 KiB)"
                  % (listener, results[listener][0], results[listener][1], ROUNDS, n), flush=True)
        base = results["PLAINTEXT"]
        for listener in ("SSL", "SASL_SSL"):
            p, q = results[listener]
            print("security-bench: %-9s vs PLAINTEXT: produce %3.0f%%  consume %3.0f%%"
                  % (listener, 100 * p / base[0], 100 * q / base[1]), flush=True)
        ctx = ssl.create_default_context(cafile=c.certs["ca.pem"])
        port = c.brokers[0].ports["SASL_SSL"]
        t0, count = time.time(), 0
        while time.time() - t0 < CONN_SECS:
            scram_connect("127.0.0.1", port, ctx)
            count += 1
        print("security-bench: new SASL_SSL + SCRAM-SHA-512 connections: %.0f/s (%d in %.1f s, one client)"
              % (count / (time.time() - t0), count, time.time() - t0), flush=True)
    finally:
        c.close()


if __name__ == "__main__":
    main()
