"""kafka-python: producer → consumer round trip, admin create/list/describe_configs."""
import pytest

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic  # noqa: E402


def test_admin_and_roundtrip(cluster1, topic_name):
    a = KafkaAdminClient(bootstrap_servers=cluster1.bootstrap, request_timeout_ms=20000)
    a.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1,
                              topic_configs={"retention.ms": "600000"})])
    assert topic_name in a.list_topics()
    r = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name)])
    text = repr(r)
    assert "retention.ms" in text and "600000" in text
    a.close()

    p = KafkaProducer(bootstrap_servers=cluster1.bootstrap, acks="all", linger_ms=5)
    futs = [p.send(topic_name, key=b"k%d" % (i % 7), value=b"value-%d" % i) for i in range(5000)]
    p.flush(30)
    metas = [f.get(timeout=30) for f in futs]
    assert all(m.offset >= 0 for m in metas)
    p.close()

    c = KafkaConsumer(bootstrap_servers=cluster1.bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=5000, auto_offset_reset="earliest")
    c.assign([TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)])
    c.seek_to_beginning()
    got = [m for m in c]
    c.close()
    assert sorted(int(m.value.split(b"-")[1]) for m in got) == list(range(5000))
