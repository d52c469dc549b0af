"""The TLS transport under load-shaped traffic (issue 16's throughput work):

  * the broker chooses the cipher suite (AES-128-GCM first), not the client:
    OpenSSL clients (librdkafka, Python) list AES-256-GCM first, which costs
    both ends more per byte;
  * requests and responses far larger than a TLS record (16 KiB) and than the
    broker's ciphertext read buffer cross intact: a 4 MiB produce of random
    bytes split by librdkafka into many small TLS records (it writes each
    buffer segment with its own SSL_write), and the fetches that return them,
    compared byte for byte;
  * a fetch response larger than the socket's send buffer arrives whole: a
    response's last ciphertext used to stay in rustls when the socket was
    full at its final write, until the connection's next response, so a
    consumer with one fetch in flight waited for socket.timeout.ms."""
import os
import socket
import ssl
import subprocess
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def negotiated(c, tls12=False, listener="SSL"):
    ctx = ssl.create_default_context(cafile=c.certs["ca.pem"])
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", c.brokers[0].ports[listener]), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version(), s.cipher()[0]


def test_server_prefers_aes128_gcm(secure):
    # Python's OpenSSL offers TLS_AES_256_GCM_SHA384 first; the broker's order wins.
    assert negotiated(secure) == ("TLSv1.3", "TLS_AES_128_GCM_SHA256")
    assert negotiated(secure, listener="SASL_SSL") == ("TLSv1.3", "TLS_AES_128_GCM_SHA256")
    assert negotiated(secure, tls12=True) == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")


def test_large_batches_cross_tls_intact(secure):
    topic = "tls-big-" + uuid.uuid4().hex[:8]
    a = AdminClient({"bootstrap.servers": secure.brokers[0].addr("PLAINTEXT")})
    for f in a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        f.result(30)
    cfg = {"bootstrap.servers": secure.brokers[0].addr("SSL"), "security.protocol": "SSL",
           "ssl.ca.location": secure.certs["ca.pem"]}
    n = 4096
    values = [os.urandom(1024) for _ in range(n)]
    # One linger window: the records leave in ~1 MiB produce requests.
    p = Producer({**cfg, "acks": 1, "linger.ms": 200, "batch.size": 1 << 20})
    for v in values:
        p.produce(topic, v)
    assert p.flush(30) == 0
    cons = Consumer({**cfg, "group.id": "g-" + uuid.uuid4().hex[:8], "enable.auto.commit": False,
                     "fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 4 << 20})
    cons.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        for m in cons.consume(1000, 0.5):
            assert m.error() is None, m.error()
            assert m.offset() == len(got), (m.offset(), len(got))
            got.append(m.value())
    cons.close()
    assert len(got) == n
    assert got == values


def test_large_fetches_never_stall_on_a_full_socket(secure):
    topic = "tls-fetch-" + uuid.uuid4().hex[:8]
    a = AdminClient({"bootstrap.servers": secure.brokers[0].addr("PLAINTEXT")})
    for f in a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        f.result(30)
    n = 48 * 1024  # 48 MiB of 1 KiB records, written over PLAINTEXT
    p = Producer({"bootstrap.servers": secure.brokers[0].addr("PLAINTEXT"), "acks": 1,
                  "linger.ms": 20, "batch.size": 1 << 20, "queue.buffering.max.kbytes": 1 << 20})
    for i in range(n):
        while True:
            try:
                p.produce(topic, b"%08d" % i + bytes(1016))
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    # kcat (Debian's librdkafka 2.0.2 keeps one fetch in flight) with 8 MiB
    # fetches: each response is several times the socket buffer, so its final
    # write often finds the socket full. Before the fix about one read in
    # three hung until socket.timeout.ms; a read takes under a second here.
    for attempt in range(8):
        try:
            out = subprocess.run(
                ["kcat", "-C", "-b", secure.brokers[0].addr("SSL"), "-X", "security.protocol=SSL",
                 "-X", "ssl.ca.location=" + secure.certs["ca.pem"],
                 "-X", "max.partition.fetch.bytes=%d" % (8 << 20), "-X", "fetch.max.bytes=%d" % (16 << 20),
                 "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o %s\\n"],
                capture_output=True, timeout=20, check=True).stdout
        except subprocess.TimeoutExpired:
            raise AssertionError("read %d stalled: a fetch response did not arrive whole" % attempt)
        lines = out.splitlines()
        assert len(lines) == n, (attempt, len(lines))
        for off in (0, n // 2, n - 1):
            o, v = lines[off].split(b" ", 1)
            assert int(o) == off and v[:8] == b"%08d" % off
