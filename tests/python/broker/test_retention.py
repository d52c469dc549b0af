"""retention.ms=3000: old data dropped, log start offset advances, a consumer from
the beginning starts at the new start."""
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def test_retention_ms(cluster1, topic_name):
    a = AdminClient({"bootstrap.servers": cluster1.bootstrap})
    for f in a.create_topics([NewTopic(topic_name, 1, 1, config={"retention.ms": "3000"})]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": cluster1.bootstrap, "linger.ms": 10})
    for i in range(1000):
        p.produce(topic_name, value=b"old-%d" % i)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": cluster1.bootstrap, "group.id": "x"})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
    assert (lo, hi) == (0, 1000)
    time.sleep(4.5)
    for i in range(10):
        p.produce(topic_name, value=b"new-%d" % i)
    assert p.flush(30) == 0
    deadline = time.time() + 10
    while time.time() < deadline:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
        if lo == 1000:
            break
        time.sleep(0.3)
    assert (lo, hi) == (1000, 1010)
    c.assign([TopicPartition(topic_name, 0, ck.OFFSET_BEGINNING)])
    got = []
    deadline = time.time() + 20
    while len(got) < 10 and time.time() < deadline:
        got += [m.value() for m in c.consume(100, 1.0) if m.error() is None]
    c.close()
    assert got == [b"new-%d" % i for i in range(10)]
