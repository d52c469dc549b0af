"""kafka-python: producer → consumer round trip, admin create/list/describe_configs,
describe_log_dirs."""
import json
import subprocess

import pytest

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic  # noqa: E402

from fjordtest.binaries import fjord_cli  # noqa: E402


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


def log_dirs(admin, broker, **kw):
    """kafka-python's describe_log_dirs for one broker: {path: {(topic, partition): size}}
    and each directory's (total, usable) bytes."""
    got = admin.describe_log_dirs(brokers=[broker], **kw)
    assert [r["broker"] for r in got] == [broker], got
    sizes, space = {}, {}
    for d in got[0]["log_dirs"]:
        assert d["error_code"] == 0, d
        sizes[d["log_dir"]] = {(t["name"], p["partition_index"]): p["partition_size"]
                               for t in d["topics"] for p in t["partitions"]}
        space[d["log_dir"]] = (d["total_bytes"], d["usable_bytes"])
    return sizes, space


def test_describe_log_dirs(make_cluster, topic_name):
    """DescribeLogDirs as kafka-log-dirs and kafka-python send it: each broker names
    its log directory, its volume's size and free space, and every replica it holds
    with its size; both replicas of a partition hold the same bytes, the size grows
    with what is produced, and a request naming partitions gets only those; fjord
    log-dirs prints the same as kafka-log-dirs --describe does.
    DescribeConfigs on a broker never shows a password's value."""
    c = make_cluster(2, overrides={"ssl.key.password": "hunter2"})
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap, request_timeout_ms=20000)
    a.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=2)])
    p = KafkaProducer(bootstrap_servers=c.bootstrap, acks="all")
    for i in range(1000):
        p.send(topic_name, value=b"x" * 1000, partition=0)
    p.flush(30)
    p.close()

    def replicas(broker):
        sizes, space = log_dirs(a, broker)
        (path, parts), = sizes.items()
        assert path == c.broker(broker).log_dir
        (total, usable), = space.values()
        assert 0 < usable < total, space
        return {k: v for k, v in parts.items() if k[0] == topic_name}

    one = replicas(1)
    # The follower holds what the leader acknowledged (acks=all): the same bytes.
    assert replicas(2) == one, (replicas(2), one)
    assert one[(topic_name, 1)] == 0
    assert 1000 * 1000 < one[(topic_name, 0)] < 1000 * 1000 * 1.2, one

    sizes, _ = log_dirs(a, 1, topic_partitions={topic_name: [1]})
    assert list(sizes.values()) == [{(topic_name, 1): 0}], sizes

    # fjord log-dirs (kafka-log-dirs --describe) reads the same figures.
    out = subprocess.run([fjord_cli(), "log-dirs", "--describe", "--bootstrap-server", c.bootstrap,
                          "--topic-list", topic_name], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["Querying brokers for log directories information",
                         "Received log directory information from brokers 1,2"], lines
    doc = json.loads(lines[2])
    for b in doc["brokers"]:
        (d,) = b["logDirs"]
        assert d["logDir"] == c.broker(b["broker"]).log_dir
        assert {p["partition"]: p["size"] for p in d["partitions"]} == {
            "%s-%d" % (t, i): size for (t, i), size in one.items()}, d

    cfg = a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
    (entries,) = [e for by_name in cfg.values() for e in by_name.values()]
    assert entries["ssl.key.password"]["value"] is None, entries["ssl.key.password"]
    assert entries["ssl.key.password"]["is_sensitive"] is True
    assert entries["broker.id"]["value"] == "1", entries["broker.id"]
    a.close()
