"""kill -9 mid-stream with acks=all: every acknowledged message is read back after
restart, offsets unchanged, nothing duplicated."""
import os
import threading
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

N = int(os.environ.get("FJORD_CRASH_MESSAGES", "1000000"))


def test_kill9_keeps_acknowledged(make_cluster, topic_name):
    c = make_cluster(1)
    b = c.brokers[0]
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1)]).values():
        f.result(30)
    acked = {}
    lock = threading.Lock()

    def dr(err, msg):
        if err is None:
            with lock:
                acked[(msg.partition(), msg.offset())] = msg.value()

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                  "enable.idempotence": True, "message.timeout.ms": 60000})
    killed = False
    for i in range(N):
        while True:
            try:
                p.produce(topic_name, value=b"m%09d" % i, partition=i % 2, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.05)
        if i % 5000 == 0:
            p.poll(0)
        if not killed and i == N // 2:
            p.flush(30)
            b.kill9()
            killed = True
            b.start()
    assert p.flush(120) == 0
    assert len(acked) >= N // 2
    # Restart once more (clean), then read everything back.
    b.kill9()
    b.start()
    cons = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x", "enable.auto.commit": False})
    cons.assign([TopicPartition(topic_name, p, 0) for p in range(2)])
    got = {}
    deadline = time.time() + 120
    idle = 0
    while time.time() < deadline and idle < 5:
        ms = cons.consume(10000, 1.0)
        idle = idle + 1 if not ms else 0
        for m in ms:
            assert m.error() is None, m.error()
            k = (m.partition(), m.offset())
            assert k not in got
            got[k] = m.value()
    cons.close()
    missing = [k for k in acked if got.get(k) != acked[k]]
    assert not missing, "acknowledged but missing/changed: %d e.g. %r" % (len(missing), missing[:5])
    values = list(got.values())
    assert len(values) == len(set(values)), "duplicates"
