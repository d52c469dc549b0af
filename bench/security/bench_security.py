"""Security benchmark (scripts/bench-security.sh): one coordinator and one
fjord-broker with PLAINTEXT, SSL and SASL_SSL listeners (the test suite's
certificates and broker, tests/python/security/conftest.py), then in the same
run:

  * produce and consume MB/s of 1 KiB records over PLAINTEXT, SSL and
    SASL_SSL (SCRAM-SHA-512), and the CPU each side spent per GB moved (the
    broker's from /proc, the client's from its rusage): on a small shared
    machine the client's own TLS cost decides the ratio as much as the
    broker's, and the CPU figures show which side pays what. The client is
    kbench-system (bench/, librdkafka with OpenSSL, a Rust loop) when it is
    built (KBENCH_SYSTEM), else confluent-kafka from Python, whose per-message
    Python work caps consume far below the broker (about 60 MB/s, the same on
    every listener, so the ratio says nothing); fjord's own kbench links a
    librdkafka built without TLS;
  * new authenticated connections per second: TCP + TLS handshake +
    SaslHandshake + the SCRAM-SHA-512 exchange, from Python's ssl module and
    hashlib (the client's PBKDF2 is counted too, as every client pays it).

Rounds alternate the listeners (PLAINTEXT, SSL, SASL_SSL, PLAINTEXT, ...);
medians reported, and each round's ratio to PLAINTEXT beside them (less
disturbed by other work). With BEFORE_BIN=dir a second coordinator + broker
from an older build runs too, each round going through both (before/after in
one run).
Usage: bench_security.py [--quick]"""
import base64
import hashlib
import hmac
import json
import os
import resource
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
MB = 256 if QUICK else 512  # MiB per listener and round (less is over before the client is warm)
ROUNDS = 3 if QUICK else 5  # listeners alternate within each round; medians (the machine is shared)
KBENCH = os.environ.get("KBENCH_SYSTEM", "")
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


def cpu_of(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    k = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + k.ru_utime + k.ru_stime


def kbench(mode, cfg, topic, n):
    """kbench-system's measured window (s) for n records of 1 KiB."""
    args = [KBENCH, "--mode", mode, "--brokers", cfg["bootstrap.servers"], "--topic", topic,
            "--messages", str(n), "--size", "1024", "--timeout-s", "120", "--json"]
    for k, v in cfg.items():
        if k != "bootstrap.servers":
            args += ["--set", "%s=%s" % (k, v)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("kbench-system %s failed: %s %s" % (mode, out.stdout[-2000:], out.stderr[-2000:]))
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["msgs"] == n and res["verify"] == "ok", res
    return res["secs"]


def produce(cfg, topic, n):
    if KBENCH:
        return kbench("produce", cfg, topic, n)
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
    if KBENCH:
        return kbench("consume", cfg, topic, n)
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


def measured(fn, broker_pid, cfg, topic, n):
    """(MiB/s, broker CPU s per GiB, client CPU s per GiB) of one run."""
    b0, c0 = cpu_of(broker_pid), own_cpu()
    secs = fn(cfg, topic, n)
    b1, c1 = cpu_of(broker_pid), own_cpu()
    gib = n / (1024 * 1024)
    return n / 1024 / secs, (b1 - b0) / gib, (c1 - c0) / gib


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


def start_cluster(bin_dir):
    """One coordinator + broker from bin_dir (None: FJORD_BIN), with the bench user."""
    old = os.environ.get("FJORD_BIN")
    if bin_dir:
        os.environ["FJORD_BIN"] = bin_dir
    try:
        c = SecureCluster(n=1)
    finally:
        if old is None:
            os.environ.pop("FJORD_BIN", None)
        else:
            os.environ["FJORD_BIN"] = old
    subprocess.run([fjord_cli(), "user", "create", USER, "--mechanism", "SCRAM-SHA-512",
                    "--password", PASSWORD, "--bootstrap-server", c.brokers[0].addr("PLAINTEXT")],
                   check=True, capture_output=True)
    return c


def report(label, runs, listeners):
    """Medians, ratios to PLAINTEXT, and the CPU figures behind them."""
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    res = {k: tuple(med([x[i] for x in rs]) for i in range(3)) for k, rs in runs.items()}
    for listener in listeners:
        (p, pb, pc), (q, qb, qc) = res[(listener, "produce")], res[(listener, "consume")]
        print("security-bench: %s%-9s produce %7.1f MiB/s  consume %7.1f MiB/s  (median of %d, %d MiB of 1 KiB)"
              % (label, listener, p, q, ROUNDS, MB), flush=True)
        print("security-bench: %s%-9s CPU s/GiB produce broker %5.2f client %5.2f  consume broker %5.2f client %5.2f"
              % (label, listener, pb, pc, qb, qc), flush=True)
    base_p, base_q = res[("PLAINTEXT", "produce")], res[("PLAINTEXT", "consume")]
    # On a CPU-bound box MiB/s is about cores / (CPU per GiB of broker and client
    # together): PLAINTEXT's sum over this listener's is the ceiling of the ratio.
    ceil = lambda b, x: 100 * (b[1] + b[2]) / (x[1] + x[2])  # noqa: E731
    for listener in listeners[1:]:
        p, q = res[(listener, "produce")], res[(listener, "consume")]
        print("security-bench: %s%-9s vs PLAINTEXT: produce %3.0f%%  consume %3.0f%%"
              "  (CPU-bound ceiling: produce %3.0f%%, consume %3.0f%%; extra CPU s/GiB over PLAINTEXT:"
              " broker %+.2f / %+.2f, client %+.2f / %+.2f)"
              % (label, listener, 100 * p[0] / base_p[0], 100 * q[0] / base_q[0],
                 ceil(base_p, p), ceil(base_q, q), p[1] - base_p[1], q[1] - base_q[1],
                 p[2] - base_p[2], q[2] - base_q[2]), flush=True)
    # The same ratio round by round: a listener and PLAINTEXT of one round run
    # seconds apart, so load from other work on a shared machine, which drifts
    # over minutes, weighs on both sides of each ratio alike.
    for listener in listeners[1:]:
        per = {w: [100 * t[0] / b[0] for t, b in zip(runs[(listener, w)], runs[("PLAINTEXT", w)])]
               for w in ("produce", "consume")}
        print("security-bench: %s%-9s vs PLAINTEXT round by round:"
              " produce %s (median %3.0f%%)  consume %s (median %3.0f%%)"
              % (label, listener, " ".join("%.0f%%" % x for x in per["produce"]), med(per["produce"]),
                 " ".join("%.0f%%" % x for x in per["consume"]), med(per["consume"])), flush=True)


def main():
    # BEFORE_BIN=dir: also an older build's broker, rounds alternating with this one.
    builds = [("", None)]
    if os.environ.get("BEFORE_BIN"):
        builds = [("before ", os.environ["BEFORE_BIN"]), ("after  ", None)]
    clusters = []
    try:
        for label, bin_dir in builds:
            clusters.append((label, start_cluster(bin_dir)))
        n = MB * 1024
        client = ("kbench-system (librdkafka %s)" % KBENCH) if KBENCH else "confluent-kafka (Python)"
        print("security-bench: client %s, %d MiB of 1 KiB records per listener and round, %d rounds"
              % (client, MB, ROUNDS), flush=True)
        listeners = ("PLAINTEXT", "SSL", "SASL_SSL")
        runs = {label: {(l, w): [] for l in listeners for w in ("produce", "consume")}
                for label, _ in clusters}
        for r in range(ROUNDS):
            for label, c in clusters:
                a = AdminClient({"bootstrap.servers": c.brokers[0].addr("PLAINTEXT")})
                for listener in listeners:
                    topic = "bench-%s-%d" % (listener.lower(), r)
                    for f in a.create_topics([NewTopic(topic, 1, 1)]).values():
                        f.result(30)
                    cfg = client_conf(c, listener)
                    for what, fn in (("produce", produce), ("consume", consume)):
                        m = measured(fn, c.brokers[0].pid, cfg, topic, n)
                        runs[label][(listener, what)].append(m)
                        print("security-bench: round %d %s%-9s %-7s %7.1f MiB/s  CPU s/GiB broker %5.2f client %5.2f"
                              % (r + 1, label, listener, what, *m), flush=True)
                    # Rounds would otherwise pile up GiBs on a shared disk.
                    for f in a.delete_topics([topic]).values():
                        f.result(30)
        for label, _ in clusters:
            report(label, runs[label], listeners)
        for label, c in clusters:
            ctx = ssl.create_default_context(cafile=c.certs["ca.pem"])
            port = c.brokers[0].ports["SASL_SSL"]
            t0, count = time.time(), 0
            while time.time() - t0 < CONN_SECS:
                scram_connect("127.0.0.1", port, ctx)
                count += 1
            print("security-bench: %snew SASL_SSL + SCRAM-SHA-512 connections: %.0f/s (%d in %.1f s, one client)"
                  % (label, count / (time.time() - t0), count, time.time() - t0), flush=True)
    finally:
        for _, c in clusters:
            c.close()


if __name__ == "__main__":
    main()
