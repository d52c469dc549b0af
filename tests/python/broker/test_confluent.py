"""confluent-kafka (librdkafka from PyPI): admin, idempotent producer with every
compression, assign() consumer reading back bytes/keys/headers, offsets_for_times."""
import os
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

from fjordtest.kafka import create_topic  # noqa: E402

N = int(os.environ.get("FJORD_TEST_MESSAGES", "1000000"))


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def consume_all(bootstrap, topic, partitions, expect, timeout=120):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < expect and time.time() < deadline:
        for m in c.consume(10000, 1.0):
            assert m.error() is None, m.error()
            out.append(m)
    c.close()
    return out


def test_admin_create_list_describe_delete(cluster1, topic_name):
    a = admin(cluster1.bootstrap)
    create_topic(cluster1.bootstrap, topic_name, 3, configs={"retention.ms": "123456"})
    md = a.list_topics(timeout=10)
    assert topic_name in md.topics and len(md.topics[topic_name].partitions) == 3
    fs = a.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])
    with pytest.raises(ck.KafkaException) as e:
        list(fs.values())[0].result(10)
    assert e.value.args[0].code() == ck.KafkaError.TOPIC_ALREADY_EXISTS
    res = ConfigResource(ConfigResource.Type.TOPIC, topic_name)
    cfg = list(a.describe_configs([res]).values())[0].result(10)
    assert cfg["retention.ms"].value == "123456"
    assert cfg["retention.ms"].source == ck.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["cleanup.policy"].is_default
    fs = a.delete_topics([topic_name], operation_timeout=30)
    for f in fs.values():
        f.result(30)
    deadline = time.time() + 10
    while topic_name in a.list_topics(timeout=10).topics and time.time() < deadline:
        time.sleep(0.2)
    assert topic_name not in a.list_topics(timeout=10).topics


def test_replication_factor_too_large(cluster1, topic_name):
    a = admin(cluster1.bootstrap)
    fs = a.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=3)])
    with pytest.raises(ck.KafkaException) as e:
        list(fs.values())[0].result(10)
    assert e.value.args[0].code() == ck.KafkaError.INVALID_REPLICATION_FACTOR


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_idempotent_producer_roundtrip(cluster1, topic_name, compression):
    parts = 3
    create_topic(cluster1.bootstrap, topic_name, parts)
    p = Producer({"bootstrap.servers": cluster1.bootstrap, "enable.idempotence": True,
                  "compression.type": compression, "linger.ms": 5, "acks": "all"})
    errors = []

    def dr(err, msg):
        if err is not None:
            errors.append(err)

    for i in range(N):
        while True:
            try:
                p.produce(topic_name, value=b"v%08d" % i, key=b"k%d" % (i % 1000), headers=[("h", b"%d" % i)],
                          on_delivery=dr)
                break
            except BufferError:
                p.poll(0.01)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(120) == 0
    assert not errors, errors[:3]
    msgs = consume_all(cluster1.bootstrap, topic_name, parts, N)
    assert len(msgs) == N
    seen = set()
    per_part = {}
    for m in msgs:
        i = int(m.value()[1:])
        assert m.key() == b"k%d" % (i % 1000)
        assert m.headers() == [("h", b"%d" % i)]
        seen.add(i)
        last = per_part.get(m.partition(), -1)
        assert m.offset() == last + 1
        per_part[m.partition()] = m.offset()
    assert len(seen) == N


def test_offsets_for_times(cluster1, topic_name):
    create_topic(cluster1.bootstrap, topic_name, 1)
    p = Producer({"bootstrap.servers": cluster1.bootstrap, "linger.ms": 50})
    base = 1_700_000_000_000
    for i in range(100):
        p.produce(topic_name, value=b"%d" % i, timestamp=base + i * 1000)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": cluster1.bootstrap, "group.id": "unused"})
    for i in (0, 1, 37, 99):
        r = c.offsets_for_times([TopicPartition(topic_name, 0, base + i * 1000)], timeout=10)
        assert r[0].offset == i, (i, r)
        r = c.offsets_for_times([TopicPartition(topic_name, 0, base + i * 1000 - 1)], timeout=10)
        assert r[0].offset == i, (i, r)
    r = c.offsets_for_times([TopicPartition(topic_name, 0, base + 10_000_000)], timeout=10)
    assert r[0].offset == -1
    lo, hi = c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
    assert (lo, hi) == (0, 100)
    c.close()
