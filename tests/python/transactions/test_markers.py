"""Transactions end to end through the markers: the coordinator's
WriteTxnMarkers reach the partition leaders (3 brokers, RF 3,
min.insync.replicas 2), so committed records reach read_committed and
read_uncommitted consumers, aborted ones only read_uncommitted ones, and a
read_committed consumer waits at an open transaction until it ends. EndTxn
answers before the markers are written, so back-to-back transactions check
that a transaction's marker never ends (commits or aborts) the next one."""
import time
import uuid

from confluent_kafka import Consumer, Producer

from fjordtest.kafka import create_topic
from fjordtest.names import unique


def producer(c, tid, **extra):
    conf = {"bootstrap.servers": c.bootstrap, "transactional.id": tid, "log_level": 3}
    conf.update(extra)
    return Producer(conf)


def read(c, topic, isolation, want, timeout=20, settle=0.0):
    """Values read from the beginning: until `want` of them (then `settle`
    seconds more, to catch extras) or the timeout."""
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "r-%s" % uuid.uuid4().hex,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "isolation.level": isolation, "log_level": 3})
    cons.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    extra_until = None
    try:
        while time.time() < deadline:
            m = cons.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m.value().decode())
            if len(got) >= want and extra_until is None:
                extra_until = time.time() + settle
            if extra_until is not None and time.time() >= extra_until:
                break
    finally:
        cons.close()
    return got


def test_commit_and_abort_as_each_isolation_level_sees_them(tcluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    p = producer(tcluster, tid)
    p.init_transactions(30)
    for label, commit in (("c1", True), ("a1", False), ("c2", True)):
        p.begin_transaction()
        for i in range(5):
            p.produce(topic, ("%s-%d" % (label, i)).encode())
        p.flush(30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    committed = ["c1-%d" % i for i in range(5)] + ["c2-%d" % i for i in range(5)]
    everything = committed[:5] + ["a1-%d" % i for i in range(5)] + committed[5:]
    assert read(tcluster, topic, "read_uncommitted", 15, settle=0.5) == everything
    assert read(tcluster, topic, "read_committed", 10, settle=1.0) == committed


def test_read_committed_waits_for_an_open_transaction(tcluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    p = producer(tcluster, tid)
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, b"open-0")
    p.flush(30)
    plain = Producer({"bootstrap.servers": tcluster.bootstrap, "log_level": 3})
    plain.produce(topic, b"after-open")
    plain.flush(30)
    assert read(tcluster, topic, "read_uncommitted", 2, settle=0.5) == ["open-0", "after-open"]
    # Stops at the open transaction: not even the later non-transactional record.
    assert read(tcluster, topic, "read_committed", 1, timeout=3) == []
    p.commit_transaction(30)
    assert read(tcluster, topic, "read_committed", 2, settle=0.5) == ["open-0", "after-open"]


def test_back_to_back_transactions_keep_their_own_outcome(tcluster, request):
    """Each transaction begins the moment the previous commit/abort returned,
    on the same 3 partitions, outcomes alternating: every record lands on the
    side of its own transaction's outcome, none on its predecessor's."""
    tid = unique("tx-", request)
    topic = unique("t-", request)
    create_topic(tcluster.bootstrap, topic, 3, rf=3)
    p = producer(tcluster, tid, **{"linger.ms": 0})
    p.init_transactions(30)
    committed, everything = [], []
    for t in range(30):
        p.begin_transaction()
        vals = ["t%d-%d" % (t, i) for i in range(6)]
        for i, v in enumerate(vals):
            p.produce(topic, v.encode(), partition=i % 3)
        everything += vals
        if t % 2 == 0:
            p.commit_transaction(30)
            committed += vals
        else:
            p.flush(30)  # abort_transaction drops what is still queued
            p.abort_transaction(30)
    assert sorted(read(tcluster, topic, "read_uncommitted", len(everything), settle=0.5)) \
        == sorted(everything)
    assert sorted(read(tcluster, topic, "read_committed", len(committed), settle=1.0)) \
        == sorted(committed)
