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
  are still there (same answers);
- with RF 3, after a kill -9 of the leader the new leader (whose state was
  built from the batches it replicated) gives the same answers;
- kcat (Debian's librdkafka 2.0.2) reads the same at both isolation levels.
"""
import time

import pytest

from fjordtest.broker import Cluster, require_brokers
import itertools
import os
import shutil
import subprocess

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


def kcat_read(cluster, topic, isolation):
    """kcat (Debian's librdkafka 2.0.2) from the beginning to the partition's
    end at `isolation` (-e): (offset, value) per delivered message."""
    out = subprocess.run(
        ["kcat", "-b", cluster.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e",
         "-q", "-X", "isolation.level=" + isolation, "-f", "%o %s\\n"],
        capture_output=True, timeout=30, check=True)
    return [(int(o), v.encode()) for o, v in
            (line.split(" ", 1) for line in out.stdout.decode().splitlines() if line)]


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
        if shutil.which("kcat"):
            assert kcat_read(cluster, topic, "read_committed") == STABLE
            assert kcat_read(cluster, topic, "read_uncommitted") == ALL_DATA
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


def partition0(bootstrap, topic):
    """(leader, isr) of partition 0 as Metadata shows it."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    p = md.topics[topic].partitions[0]
    return p.leader, sorted(p.isrs)


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception:  # noqa: BLE001 - leaders move meanwhile
            pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def test_a_new_leader_answers_the_same_lso_and_aborted_transactions():
    """RF 3: the followers build the transaction state from the batches they
    replicate, so after a kill -9 of the leader the new one serves the same
    read_committed view (aborted records skipped, the stop at the open
    transaction) and the same ListOffsets answers."""
    require_brokers()
    with Cluster(3, {"replica.lag.time.max.ms": 3000, "zookeeper.session.timeout.ms": 4000}) as c:
        topic = unique("txl")
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": c.bootstrap})
        a.create_topics([NewTopic(topic, 1, 3)])[topic].result(20)
        leader, _ = wait_for(lambda: (lambda p: p if len(p[1]) == 3 and p[0] >= 0 else None)(
            partition0(c.bootstrap, topic)), 20, "a leader with the full ISR")
        conn = Conn(c.broker(leader).bootstrap)
        write_scenario(conn, topic)  # acks=all and markers: every replica has them
        conn.close()
        c.broker(leader).kill9()
        new = wait_for(lambda: (lambda p: p[0] if p[0] not in (-1, leader) else None)(
            partition0(c.bootstrap, topic)), 30, "a new leader")
        conn = Conn(c.broker(new).bootstrap)
        try:
            wait_for(lambda: conn.latest(topic, 0, 0) == 10, 20, "the new leader's HW")
            check_open_state(c, conn, topic)
            assert conn.markers(3000, 0, False, topic, [0]) == {0: 0}
            assert conn.latest(topic, 0, 1) == 11
            got, pos = confluent_read(c, topic, "read_committed", 11, expect=3)
            assert got == STABLE + [(9, b"p1")], "C aborted on the new leader"
        finally:
            conn.close()
