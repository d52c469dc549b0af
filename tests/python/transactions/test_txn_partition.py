"""The partition side of transactions with real consumers, without a
transaction coordinator: transactional batches and COMMIT/ABORT markers are
written with raw frames (transactions/partwire.py), then confluent-kafka
(librdkafka) and kafka-python consumers read them.

- read_committed skips an aborted transaction's records, delivers committed
  and non-transactional ones, never delivers a marker, and stops at an open
  transaction (the last stable offset), continuing once its marker is in;
- read_uncommitted delivers every data record (never a marker);
- ListOffsets latest is the LSO for read_committed, the HW otherwise;
- a marker from an older producer epoch is refused (INVALID_PRODUCER_EPOCH),
  as is a control batch sent through Produce (INVALID_RECORD);
- after a restart of the broker the aborted index and the open transaction
  are still there (same answers).
"""
import time

import pytest

from fjordtest.broker import Cluster, require_brokers
import itertools
import os

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")

from transactions.partwire import Conn, batch, control  # noqa: E402

INVALID_PRODUCER_EPOCH, INVALID_RECORD = 47, 87
_n = itertools.count()


def unique(prefix):
    return "%s%d-%d" % (prefix, next(_n), os.getpid())


@pytest.fixture(scope="module")
def cluster():
    require_brokers()
    with Cluster(1, coord="standalone") as c:
        yield c


def create(cluster, topic):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": cluster.bootstrap})
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)


def confluent_read(cluster, topic, isolation, until_offset, expect=None, timeout=20.0):
    """Values and offsets a confluent-kafka consumer at `isolation` delivers
    from offset 0 until its position reaches `until_offset` (then a further
    moment to show nothing more comes), plus its final position."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique("g"),
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "fetch.wait.max.ms": 50})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.time() + timeout
        settle = None
        while time.time() < deadline:
            m = c.poll(0.1)
            if m is not None and not m.error():
                got.append((m.offset(), m.value()))
            pos = c.position([TopicPartition(topic, 0)])[0].offset
            if pos >= until_offset and (expect is None or len(got) >= expect):
                settle = settle or time.time() + 1.0
                if time.time() >= settle:
                    break
        pos = c.position([TopicPartition(topic, 0)])[0].offset
        return got, pos
    finally:
        c.close()


def kafka_python_read(cluster, topic, isolation, expect, timeout=20.0):
    from kafka import KafkaConsumer, TopicPartition
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False,
                      isolation_level=isolation, fetch_max_wait_ms=50)
    try:
        c.assign([tp])
        c.seek(tp, 0)
        got = []
        deadline = time.time() + timeout
        while time.time() < deadline and len(got) < expect:
            for recs in c.poll(timeout_ms=200).values():
                got += [(r.offset, r.value) for r in recs]
        # Nothing more arrives.
        for recs in c.poll(timeout_ms=1000).values():
            got += [(r.offset, r.value) for r in recs]
        return got, c.position(tp), c.end_offsets([tp])[tp]
    finally:
        c.close()


def write_scenario(conn, topic):
    """offsets: 0-2 txn A (pid 1000, aborted at 6), 3 plain, 4-5 txn B (pid
    2000, committed at 7), 8 txn C (pid 3000, left open), 9 plain."""
    assert conn.produce(topic, 0, batch([b"a0", b"a1", b"a2"], 1000, 0, 0, True), "tx-a") == (0, 0)
    assert conn.produce(topic, 0, batch([b"p0"])) == (0, 3)
    assert conn.produce(topic, 0, batch([b"b0", b"b1"], 2000, 0, 0, True), "tx-b") == (0, 4)
    assert conn.markers(1000, 0, False, topic, [0], version=0) == {0: 0}
    assert conn.markers(2000, 0, True, topic, [0], version=1) == {0: 0}
    assert conn.produce(topic, 0, batch([b"c0"], 3000, 0, 0, True), "tx-c") == (0, 8)
    assert conn.produce(topic, 0, batch([b"p1"])) == (0, 9)


ALL_DATA = [(0, b"a0"), (1, b"a1"), (2, b"a2"), (3, b"p0"), (4, b"b0"), (5, b"b1"),
            (8, b"c0"), (9, b"p1")]
STABLE = [(3, b"p0"), (4, b"b0"), (5, b"b1")]


def check_open_state(cluster, conn, topic):
    assert conn.latest(topic, 0, 1) == 8, "read_committed latest is the LSO"
    assert conn.latest(topic, 0, 0) == 10, "read_uncommitted latest is the HW"
    got, pos = confluent_read(cluster, topic, "read_committed", 8, expect=3)
    assert got == STABLE
    assert pos == 8, "markers at 6 and 7 are consumed, the open transaction at 8 is not"
    got, pos = confluent_read(cluster, topic, "read_uncommitted", 10, expect=8)
    assert got == ALL_DATA and pos == 10
    got, pos, end = kafka_python_read(cluster, topic, "read_committed", 3)
    assert got == STABLE and pos == 8 and end == 8


def test_read_committed_with_librdkafka_and_kafka_python(cluster):
    topic = unique("txp")
    create(cluster, topic)
    conn = Conn(cluster.bootstrap)
    try:
        write_scenario(conn, topic)
        check_open_state(cluster, conn, topic)
        # A marker for a producer with nothing open is an empty transaction.
        assert conn.markers(2000, 0, False, topic, [0]) == {0: 0}
        # Producer 2000 moves to epoch 1 (as after a fencing InitProducerId):
        # a marker of its epoch 0 is refused, one of epoch 1 ends it.
        assert conn.produce(topic, 0, batch([b"x"], 2000, 1, 0, True), "tx-b") == (0, 11)
        assert conn.markers(2000, 0, False, topic, [0]) == {0: INVALID_PRODUCER_EPOCH}
        assert conn.markers(2000, 1, False, topic, [0], version=1) == {0: 0}
        # A data batch of epoch 0 after that is fenced too.
        assert conn.produce(topic, 0, batch([b"y"], 2000, 0, 0, True), "tx-b")[0] == \
            INVALID_PRODUCER_EPOCH
        # Markers come only from WriteTxnMarkers, never through Produce.
        assert conn.produce(topic, 0, control(batch([b"z"], 5000, 0, 0, True)), "tx-z")[0] == \
            INVALID_RECORD
        assert conn.latest(topic, 0, 0) == 13
        assert conn.latest(topic, 0, 1) == 8, "transaction C still open"
    finally:
        conn.close()


def test_open_transaction_blocks_then_commits_and_survives_restart():
    require_brokers()
    with Cluster(1, coord="standalone") as c:
        topic = unique("txr")
        create(c, topic)
        conn = Conn(c.bootstrap)
        write_scenario(conn, topic)
        conn.close()
        b = c.brokers[0]
        b.stop()
        b.start()
        conn = Conn(c.bootstrap)
        try:
            check_open_state(c, conn, topic)
            # A read_committed consumer waiting at the open transaction
            # continues once its marker is in.
            from confluent_kafka import Consumer, TopicPartition
            cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": unique("g"),
                             "enable.auto.commit": False, "isolation.level": "read_committed",
                             "fetch.wait.max.ms": 50})
            cons.assign([TopicPartition(topic, 0, 0)])
            got = []
            deadline = time.time() + 3
            while time.time() < deadline:
                m = cons.poll(0.1)
                if m is not None and not m.error():
                    got.append((m.offset(), m.value()))
            assert got == STABLE
            assert conn.markers(3000, 0, True, topic, [0], coordinator_epoch=1) == {0: 0}
            deadline = time.time() + 10
            while time.time() < deadline and len(got) < 5:
                m = cons.poll(0.1)
                if m is not None and not m.error():
                    got.append((m.offset(), m.value()))
            cons.close()
            assert got == STABLE + [(8, b"c0"), (9, b"p1")]
            assert conn.latest(topic, 0, 1) == 11
        finally:
            conn.close()
