"""ACL benchmark (scripts/bench-acl.sh): the authorizer's cost.

One coordinator and two fjord-brokers (the security suite's broker with
PLAINTEXT and SASL_PLAINTEXT listeners): broker 1 without an authorizer,
broker 2 with `authorizer.class.name=kafka.security.authorizer.AclAuthorizer`
and 10,000 ACLs in the coordinator (8,000 literal topic ACLs, 1,000
prefixed, 1,000 group ACLs, plus WRITE on the bench topics for the bench
user). The same producer (confluent-kafka, SASL_PLAINTEXT PLAIN user
`bench`, not a super user, 1 KiB records, acks=1) writes to a topic led by
broker 1, then to one led by broker 2, alternating for ROUNDS rounds;
medians of MB/s and the ratio. Then `fjord-acl-bench` times single
decisions against a 10,000-entry cache (ns per decision).

Besides MB/s, each round prints the serving broker's CPU seconds per GiB (utime + stime
from /proc): on a shared machine throughput swings between rounds far more than an
authorizer could move it, while the broker's own CPU per GiB is what a decision adds to.

Usage: bench_acl.py [--quick]   (--quick: 1,000 ACLs and 32 MiB per round, else 10,000
ACLs and 128 MiB; ROUNDS rounds, default 3, 5 in a full run)"""
import os
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "python"))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,  # noqa: E402
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

from fjordtest import cleanup  # noqa: E402
from fjordtest.kafka_wire import frame, recv_frame  # noqa: E402
from fjordtest.binaries import broker_binary  # noqa: E402
from fjordtest.broker import coord_kind  # noqa: E402
from fjordtest.coord import Server  # noqa: E402
from security.conftest import SecureBroker, make_certs  # noqa: E402

QUICK = "--quick" in sys.argv
MB = 32 if QUICK else 128
ROUNDS = int(os.environ.get("ROUNDS", 3 if QUICK else 5))
ACLS = 1_000 if QUICK else 10_000
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_bench="bench-secret";')


class Bench(SecureBroker):
    def __init__(self, *a, extra):
        super().__init__(*a, inline=False)
        self.extra = extra

    def config(self):
        cfg = super().config()
        cfg["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = JAAS
        cfg.update(self.extra)
        return cfg


def wstr(v):
    b = v.encode()
    return struct.pack(">h", len(b)) + b


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(addr, topic, n):
    p = Producer({"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "bench", "sasl.password": "bench-secret",
                  "acks": 1, "linger.ms": 5, "batch.size": 1 << 20,
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


def main():
    d = cleanup.temp_dir("fjord-acl-bench-")
    coord, brokers = None, []
    try:
        certdir = os.path.join(d, "certs")
        os.makedirs(certdir)
        certs = make_certs(certdir)
        coord = Server(coord_kind(), {"tickTime": 500, "maxClientCnxns": 0},
                       workdir=os.path.join(d, "coord")).start()
        on = {"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
              "super.users": "User:admin;User:ANONYMOUS"}
        brokers = [Bench(d, 1, coord.hosts, certs, extra={}),
                   Bench(d, 2, coord.hosts, certs, extra=on)]
        for b in brokers:
            b.start(wait=False)
        for b in brokers:
            b.wait_ready()
        admin = AdminClient({"bootstrap.servers": brokers[0].addr("PLAINTEXT")})
        topics = {}
        for b in brokers:
            for r in range(ROUNDS):
                t = "acl-bench-%d-%d" % (b.id, r)
                topics[(b.id, r)] = t
                for f in admin.create_topics([NewTopic(t, num_partitions=1, replica_assignment=[[b.id]])]).values():
                    f.result(30)
        t0 = time.time()
        bindings = []
        for i in range(ACLS):
            if i < ACLS * 8 // 10:
                bindings.append(AclBinding(ResourceType.TOPIC, "topic-%d" % i, ResourcePatternType.LITERAL,
                                           "User:u%d" % (i % 500), "*", AclOperation.WRITE,
                                           AclPermissionType.ALLOW))
            elif i < ACLS * 9 // 10:
                bindings.append(AclBinding(ResourceType.TOPIC, "fam%d-" % i, ResourcePatternType.PREFIXED,
                                           "User:u%d" % (i % 500), "*", AclOperation.READ,
                                           AclPermissionType.ALLOW))
            else:
                bindings.append(AclBinding(ResourceType.GROUP, "group-%d" % i, ResourcePatternType.LITERAL,
                                           "User:u%d" % (i % 500), "*", AclOperation.READ,
                                           AclPermissionType.ALLOW))
        bindings.append(AclBinding(ResourceType.TOPIC, "acl-bench-", ResourcePatternType.PREFIXED,
                                   "User:bench", "*", AclOperation.WRITE, AclPermissionType.ALLOW))
        # CreateAcls v1 straight to broker 2 (broker 1 has no authorizer and
        # would answer SECURITY_DISABLED; an AdminClient picks any broker).
        host, port = brokers[1].addr("PLAINTEXT").split(":")
        with socket.create_connection((host, int(port)), timeout=120) as sock:
            for i in range(0, len(bindings), 1000):
                chunk = bindings[i:i + 1000]
                body = struct.pack(">i", len(chunk))
                for b in chunk:
                    body += struct.pack(">b", b.restype.value) + wstr(b.name)
                    body += struct.pack(">b", b.resource_pattern_type.value)
                    body += wstr(b.principal) + wstr(b.host)
                    body += struct.pack(">bb", b.operation.value, b.permission_type.value)
                sock.sendall(frame(30, 1, i + 1, body))
                r = recv_frame(sock)
                (n,) = struct.unpack_from(">i", r, 8)
                off = 12
                for _ in range(n):
                    (code,) = struct.unpack_from(">h", r, off)
                    assert code == 0, code
                    (ml,) = struct.unpack_from(">h", r, off + 2)
                    off += 4 + max(ml, 0)
        print("acl-bench: %d ACLs created in %.1f s (CreateAcls, 1,000 a request)"
              % (len(bindings), time.time() - t0), flush=True)
        n = MB * 1024
        runs = {1: [], 2: []}
        cpu = {1: [], 2: []}
        for r in range(ROUNDS):
            for b in brokers:
                c0 = cpu_s(b.pid)
                el = produce(b.addr("SASL_PLAINTEXT"), topics[(b.id, r)], n)
                per_gib = (cpu_s(b.pid) - c0) * 1024 / MB
                runs[b.id].append(MB / el)
                cpu[b.id].append(per_gib)
                print("acl-bench: round %d %-22s produce %7.1f MB/s  broker CPU %.2f s/GiB" %
                      (r + 1, "no authorizer" if b.id == 1 else "authorizer, %d ACLs" % ACLS,
                       MB / el, per_gib), flush=True)
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        off, on_ = med(runs[1]), med(runs[2])
        print("acl-bench: produce no authorizer %7.1f MB/s, authorizer with %d ACLs %7.1f MB/s "
              "(%.0f%%; medians of %d, %d x 1 KiB)" % (off, ACLS, on_, 100 * on_ / off, ROUNDS, n), flush=True)
        print("acl-bench: broker CPU no authorizer %.2f s/GiB, authorizer with %d ACLs %.2f s/GiB "
              "(medians of %d)" % (med(cpu[1]), ACLS, med(cpu[2]), ROUNDS), flush=True)
    finally:
        for b in brokers:
            b.stop()
        if coord:
            coord.stop()
        cleanup.remove_dir(d)
    exe = os.path.join(os.path.dirname(broker_binary()), "fjord-acl-bench")
    subprocess.run([exe, str(ACLS), "500000" if QUICK else "2000000"], check=True)


if __name__ == "__main__":
    main()
