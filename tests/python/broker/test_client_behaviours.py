"""Kafka behaviours librdkafka-based clients rely on (confluent-kafka): invalid
topic names are refused at once with INVALID_TOPIC_EXCEPTION (Metadata with
auto-create, Produce, CreateTopics) instead of the producer waiting out its
message timeout; legacy topic configs Kafka 3.x still accepts (for example
message.format.version) are accepted, unknown names still fail INVALID_CONFIG."""
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaError, KafkaException, Producer  # noqa: E402
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,  # noqa: E402
                                   ConfigResource, NewTopic)

from fjordtest.kafka import create_topic  # noqa: E402

INVALID = ["foo$#!", "x" * 250, ".", ".."]
MESSAGE_TIMEOUT_MS = 30000


@pytest.mark.parametrize("name", INVALID, ids=["chars", "long", "dot", "dotdot"])
def test_produce_to_invalid_topic_fails_at_once(cluster1, name):
    p = Producer({"bootstrap.servers": cluster1.bootstrap, "message.timeout.ms": MESSAGE_TIMEOUT_MS})
    got = []
    t0 = time.time()
    p.produce(name, b"v", on_delivery=lambda e, m: got.append((e, time.time() - t0)))
    p.flush(MESSAGE_TIMEOUT_MS / 1000 + 5)
    assert len(got) == 1
    e, after = got[0]
    assert e is not None and e.code() == KafkaError.TOPIC_EXCEPTION, e
    # Answered by the broker, not by the client giving up.
    assert after < 5, "delivery report after %.1f s" % after


def test_metadata_and_create_topics_refuse_invalid_names(cluster1):
    a = AdminClient({"bootstrap.servers": cluster1.bootstrap})
    for name in INVALID:
        # A consumer-style Metadata request naming the topic (auto-create allowed).
        md = a.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        assert t is not None and t.error is not None and t.error.code() == KafkaError.TOPIC_EXCEPTION
        f = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name]
        with pytest.raises(KafkaException) as e:
            f.result(10)
        assert e.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    listed = a.list_topics(timeout=10).topics
    assert not any(n in listed for n in INVALID)


def describe(a, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return list(a.describe_configs([res]).values())[0].result(10)


def wait_config(a, topic, want, timeout=10):
    """Alterations reach every broker's metadata cache shortly after the ack."""
    deadline = time.time() + timeout
    while True:
        cfg = describe(a, topic)
        got = {k: cfg[k].value if k in cfg else None for k in want}
        if got == want or time.time() > deadline:
            assert got == want
            return
        time.sleep(0.1)


def test_legacy_topic_configs_accepted_unknown_rejected(cluster1, topic_name):
    a = AdminClient({"bootstrap.servers": cluster1.bootstrap})
    # CreateTopics with a legacy config.
    create_topic(cluster1.bootstrap, topic_name, 1, configs={"message.format.version": "0.10.0.0"})
    wait_config(a, topic_name, {"message.format.version": "0.10.0.0"})
    # AlterConfigs (whole set) with legacy names.
    res = ConfigResource(ConfigResource.Type.TOPIC, topic_name,
                         set_config={"message.format.version": "2.8-IV1", "retention.ms": "60000",
                                     "message.timestamp.difference.max.ms": "1000"})
    list(a.alter_configs([res]).values())[0].result(10)
    wait_config(a, topic_name, {"message.format.version": "2.8-IV1", "retention.ms": "60000"})
    # IncrementalAlterConfigs.
    inc = ConfigResource(ConfigResource.Type.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("preallocate", "true", incremental_operation=AlterConfigOpType.SET)])
    list(a.incremental_alter_configs([inc]).values())[0].result(10)
    wait_config(a, topic_name, {"preallocate": "true"})
    # Unknown names and bad values of known ones still fail.
    for bad in ({"no.such.config": "1"}, {"message.format.version": "ten"}):
        res = ConfigResource(ConfigResource.Type.TOPIC, topic_name, set_config=bad)
        with pytest.raises(KafkaException) as e:
            list(a.alter_configs([res]).values())[0].result(10)
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, bad
    f = a.create_topics([NewTopic(topic_name + "-u", 1, 1, config={"no.such.config": "1"})])
    with pytest.raises(KafkaException) as e:
        list(f.values())[0].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_back_to_back_incremental_alters_both_land(cluster1, topic_name):
    """Each IncrementalAlterConfigs edits what is stored, not the broker's cached
    view: alters sent one right after the other (each after the previous one's
    answer, before the change notification reached the cache) all stay."""
    a = AdminClient({"bootstrap.servers": cluster1.bootstrap})
    create_topic(cluster1.bootstrap, topic_name, 1)
    want = {}
    for i, key in enumerate(["retention.ms", "segment.bytes", "max.message.bytes",
                             "min.insync.replicas", "retention.bytes", "segment.ms"]):
        value = str([600000, 1048576, 2000000, 1, 104857600, 3600000][i])
        inc = ConfigResource(ConfigResource.Type.TOPIC, topic_name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
        list(a.incremental_alter_configs([inc]).values())[0].result(10)
        want[key] = value
    wait_config(a, topic_name, want)
