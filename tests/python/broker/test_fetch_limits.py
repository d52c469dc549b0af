"""Fetch byte limits as Kafka applies them (KIP-74), through librdkafka (confluent-kafka):
a response never exceeds the consumer's fetch.max.bytes and each partition's share never
exceeds max.partition.fetch.bytes, except the first batch of the first non-empty
partition, which always comes so the consumer makes progress. A consumer whose
receive.message.max.bytes is just above fetch.max.bytes reads everything: before, a
second partition's batch pushed the response past it and librdkafka dropped it, forever."""
import hashlib
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from fjordtest.kafka import create_topic  # noqa: E402

PARTS = 3
MSG = 10_000
PER_PART = 130  # ~1.3 MB per partition, ~3.9 MB in all
BATCH = 600_000  # batches of ~600 KB: two never fit in a 1 MB response


def produce(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "batch.size": BATCH, "linger.ms": 200,
                  "acks": "all"})
    sent = {}
    errors = []

    def dr(err, msg):
        if err is not None:
            errors.append(err)

    for i in range(PER_PART):
        for part in range(PARTS):
            v = hashlib.sha256(f"{part}-{i}".encode()).digest() * (MSG // 32)
            sent[(part, i)] = v
            p.produce(topic, value=v, partition=part, on_delivery=dr)
            p.poll(0)
    assert p.flush(30) == 0 and not errors, errors
    return sent


@pytest.mark.parametrize("partition_max", [65_536, 1_048_576])
def test_fetch_max_bytes_and_partition_max_bytes(cluster1, topic_name, partition_max):
    create_topic(cluster1.bootstrap, topic_name, PARTS)
    sent = produce(cluster1.bootstrap, topic_name)
    c = Consumer({"bootstrap.servers": cluster1.bootstrap, "group.id": "unused",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                  "fetch.max.bytes": 1_000_000, "receive.message.max.bytes": 1_100_000,
                  "max.partition.fetch.bytes": partition_max})
    c.assign([TopicPartition(topic_name, p, 0) for p in range(PARTS)])
    got = {}
    deadline = time.time() + 30
    try:
        while len(got) < len(sent) and time.time() < deadline:
            for m in c.consume(1000, 0.5):
                assert m.error() is None, m.error()
                got[(m.partition(), m.offset())] = m.value()
    finally:
        c.close()
    assert len(got) == len(sent), f"consumed {len(got)} of {len(sent)} records"
    # Per partition, offsets 0.. carry the values in the order they were produced.
    for (part, i), v in sent.items():
        assert got[(part, i)] == v, (part, i)
    assert sum(map(len, got.values())) == sum(map(len, sent.values()))
