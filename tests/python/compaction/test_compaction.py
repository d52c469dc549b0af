"""Log compaction with confluent-kafka against a real broker (RocksDB under
log.dirs): 100,000 records over 1,000 keys, then tombstones for 100 of them.
After cleaning, a consumer from the beginning sees exactly the latest record
of each key at its original offset (the tombstones too), then, once
delete.retention.ms has passed, nothing more of the 100 deleted keys; the
log's SST files shrink; keyless records are refused (INVALID_RECORD) without
failing the rest of the request; the configs show in DescribeConfigs."""
import glob
import os
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource  # noqa: E402

from fjordtest.broker import Cluster, require_brokers  # noqa: E402
from fjordtest.kafka import create_topic, set_topic_config  # noqa: E402
from fjordtest.names import unique  # noqa: E402
from fjordtest.waits import wait_until  # noqa: E402

KEYS = 1000
RECORDS = 100_000
DELETED = 100
DELETE_RETENTION_MS = 6000
VALUE_PAD = b"x" * 1000


@pytest.fixture(scope="module")
def cluster():
    require_brokers()
    with Cluster(1, {"log.cleaner.backoff.ms": 100}) as c:
        yield c


def sst_bytes(broker):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(broker.log_dir, "rocksdb", "*.sst")))


def read_all(bootstrap, topic, end):
    """Every record of partition 0 from the beginning up to offset `end`:
    [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-reader",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    c.assign([TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    out = []
    deadline = time.time() + 30
    try:
        while time.time() < deadline:
            for m in c.consume(1000, 0.2):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key(), m.value()))
            if out and out[-1][0] >= end:
                return out
    finally:
        c.close()
    raise AssertionError("read only up to %s of %d" % (out[-1][0] if out else None, end))


def test_compaction_keeps_latest_per_key_then_drops_tombstones(cluster, request):
    topic = unique("compact", request)
    b = cluster.bootstrap
    # The active tail is wide open (segment.ms of an hour) while producing, so
    # nothing is cleaned until segment.ms is lowered below.
    create_topic(b, topic, configs={"cleanup.policy": "compact", "segment.ms": "3600000",
                                    "min.cleanable.dirty.ratio": "0.01",
                                    "delete.retention.ms": str(DELETE_RETENTION_MS)})
    latest = {}  # key -> (offset, value)

    def report(err, msg):
        assert err is None, err
        latest[msg.key()] = (msg.offset(), msg.value())

    p = Producer({"bootstrap.servers": b, "linger.ms": 20, "batch.size": 256 * 1024,
                  "enable.idempotence": True, "compression.type": "none"})
    for i in range(RECORDS):
        key = b"k%03d" % (i % KEYS)
        while True:
            try:
                p.produce(topic, key=key, value=b"v%d-" % i + VALUE_PAD, partition=0, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0
    deleted = [b"k%03d" % i for i in range(DELETED)]
    for k in deleted:
        p.produce(topic, key=k, value=None, partition=0, on_delivery=report)
    assert p.flush(30) == 0
    # One more write after the tombstones: the last batch is the active tail,
    # never cleaned, so this closes the tombstones' "segment".
    p.produce(topic, key=b"k999", value=b"final", partition=0, on_delivery=report)
    assert p.flush(30) == 0
    end = max(o for o, _ in latest.values())
    assert end == RECORDS + DELETED
    before = read_all(b, topic, end)
    assert len(before) == RECORDS + DELETED + 1
    time.sleep(0.5)
    sst_before = sst_bytes(cluster.brokers[0])

    set_topic_config(b, topic, "segment.ms", "500")
    a = AdminClient({"bootstrap.servers": b})

    def described():
        fs = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        cfg = list(fs.values())[0].result(30)
        # The change reaches the broker through the coordinator's watch.
        return cfg if cfg["segment.ms"].value == "500" else None
    cfg = wait_until(described, 30, "segment.ms=500 in DescribeConfigs", interval=0.2)
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["delete.retention.ms"].value == str(DELETE_RETENTION_MS)
    assert cfg["segment.ms"].value == "500"
    assert cfg["min.compaction.lag.ms"].value == "0"

    want = sorted((o, k, v) for k, (o, v) in latest.items())
    assert len(want) == KEYS

    def cleaned():
        got = read_all(b, topic, end)
        return got if got == want else None
    got = wait_until(cleaned, 60, "the cleaner to keep only the latest record per key", interval=0.5)
    tombstones = [r for r in got if r[2] is None]
    assert sorted(r[1] for r in tombstones) == deleted
    # Offsets are the original ones: the gaps are where superseded records were.
    assert [r[0] for r in got] == sorted(latest[k][0] for k in latest)

    # Space: the log's SST files now hold ~1,000 records of ~1 KB, not 100,000.
    produced = RECORDS * (len(VALUE_PAD) + 10)
    wait_until(lambda: sst_bytes(cluster.brokers[0]) < produced // 10, 30,
               "RocksDB to reclaim the cleaned space", interval=0.5)
    sst_after = sst_bytes(cluster.brokers[0])
    assert sst_after < max(sst_before, produced // 2) // 5, (sst_before, sst_after)

    # After delete.retention.ms the tombstones are gone; the 900 live keys stay.
    live = [r for r in want if r[1] not in set(deleted)]
    wait_until(lambda: read_all(b, topic, end) == live, DELETE_RETENTION_MS / 1000 + 30,
               "tombstones to go after delete.retention.ms", interval=0.5)
    assert len(live) == KEYS - DELETED


def test_keyless_records_refused_rest_of_request_accepted(cluster, request):
    compacted = unique("keyless-c", request)
    plain = unique("keyless-p", request)
    b = cluster.bootstrap
    create_topic(b, compacted, configs={"cleanup.policy": "compact,delete"})
    create_topic(b, plain)
    results = {}

    def report(err, msg):
        results[(msg.topic(), msg.key())] = err

    p = Producer({"bootstrap.servers": b, "linger.ms": 200, "message.timeout.ms": 10000,
                  "retries": 0})
    p.produce(compacted, value=b"no key", partition=0, on_delivery=report)
    p.produce(plain, value=b"fine", partition=0, on_delivery=report)
    assert p.flush(30) == 0
    err = results[(compacted, None)]
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    assert results[(plain, None)] is None
    # Keyed records to the compacted topic are accepted.
    p.produce(compacted, key=b"k", value=b"v", partition=0, on_delivery=report)
    assert p.flush(30) == 0
    assert results[(compacted, b"k")] is None
    got = read_all(b, compacted, 0)
    assert got == [(0, b"k", b"v")]
