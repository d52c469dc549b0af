"""The transaction coordinator end to end with confluent-kafka (librdkafka)
against 3 brokers: a second producer with the same transactional.id fences
the first; a transaction left open past its timeout is aborted with its
producer fenced (`fjord txn describe` shows it) and its records never
reach read_committed consumers; offsets sent with
send_offsets_to_transaction reach the group only when the transaction
commits, never when it aborts, and a read_committed consumer's committed()
waits while one is pending (require_stable); bad input gets Kafka's codes."""
import json
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from fjordtest.binaries import fjord_cli
from fjordtest.kafka import create_topic
from fjordtest.names import unique
from transactions import txnwire
from transactions.test_markers import read

FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def producer(c, tid, **extra):
    conf = {"bootstrap.servers": c.bootstrap, "transactional.id": tid, "log_level": 3,
            "acks": "all"}
    conf.update(extra)
    return Producer(conf)


def consumer(c, group, isolation="read_committed"):
    return Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "enable.auto.commit": False, "isolation.level": isolation,
                     "log_level": 3})


def describe(c, tid):
    out = subprocess.run([fjord_cli(), "txn", "describe", "--bootstrap-server", c.bootstrap,
                          "--transactional-id", tid, "--output", "json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def committed(c, group, topic, isolation="read_uncommitted", timeout=10):
    cons = consumer(c, group, isolation)
    try:
        return cons.committed([TopicPartition(topic, 0)], timeout=timeout)[0].offset
    finally:
        cons.close()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last %r)" % (what, last))


def test_a_second_producer_fences_the_first(tcluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    p1 = producer(tcluster, tid)
    p1.init_transactions(30)
    d1 = describe(tcluster, tid)
    assert d1["state"] == "Empty"
    p2 = producer(tcluster, tid)
    p2.init_transactions(30)
    d2 = describe(tcluster, tid)
    assert d2["producer_id"] == d1["producer_id"]
    assert d2["producer_epoch"] == d1["producer_epoch"] + 1
    # The first producer's next transactional call fails as fenced, fatally.
    p1.begin_transaction()
    p1.produce(topic, b"from the zombie")
    with pytest.raises(KafkaException) as e:
        p1.commit_transaction(30)
    err = e.value.args[0]
    assert err.code() in FENCED, err
    assert err.fatal(), err
    # The new producer goes on (a transaction of offsets only).
    g = unique("g-", request)
    cons = consumer(tcluster, g)
    p2.begin_transaction()
    p2.send_offsets_to_transaction([TopicPartition(topic, 0, 3)], cons.consumer_group_metadata(), 30)
    p2.commit_transaction(30)
    cons.close()
    assert wait_for(lambda: committed(tcluster, g, topic) == 3, 15, "offset 3 committed")


def test_offsets_appear_only_when_the_transaction_commits(tcluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    g = unique("g-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    p = producer(tcluster, tid)
    p.init_transactions(30)
    cons = consumer(tcluster, g)
    meta = cons.consumer_group_metadata()

    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 10)], meta, 30)
    assert committed(tcluster, g, topic) < 0  # nothing committed yet
    # read_committed clients ask with require_stable: the broker answers
    # UNSTABLE_OFFSET_COMMIT while the transaction holds an offset, and the
    # client keeps retrying until it gives up.
    with pytest.raises(KafkaException):
        committed(tcluster, g, topic, "read_committed", timeout=2)
    d = describe(tcluster, tid)
    assert d["state"] == "Ongoing" and d["start_ms"] > 0
    p.commit_transaction(30)
    assert wait_for(lambda: committed(tcluster, g, topic) == 10, 15, "offset 10 committed")
    assert committed(tcluster, g, topic, "read_committed") == 10
    assert describe(tcluster, tid)["state"] == "CompleteCommit"

    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 20)], meta, 30)
    p.abort_transaction(30)
    assert describe(tcluster, tid)["state"] == "CompleteAbort"
    time.sleep(1)
    assert committed(tcluster, g, topic) == 10
    assert committed(tcluster, g, topic, "read_committed") == 10
    cons.close()


def test_a_transaction_left_open_is_aborted_at_its_timeout(tcluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    g = unique("g-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    p = producer(tcluster, tid, **{"transaction.timeout.ms": 3000})
    p.init_transactions(30)
    epoch = describe(tcluster, tid)["producer_epoch"]
    cons = consumer(tcluster, g)
    p.begin_transaction()
    p.produce(topic, b"never committed")
    p.flush(10)
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 7)], cons.consumer_group_metadata(), 30)
    cons.close()
    assert describe(tcluster, tid)["state"] == "Ongoing"
    d = wait_for(lambda: (lambda d: d if d["state"] == "CompleteAbort" else None)(
        describe(tcluster, tid)), 20, "the timed-out transaction aborted")
    assert d["producer_epoch"] == epoch + 1  # the producer is fenced
    assert d["start_ms"] == -1
    with pytest.raises(KafkaException):
        p.commit_transaction(10)
    assert committed(tcluster, g, topic) < 0
    # The record is there, aborted: read_committed consumers never see it.
    assert read(tcluster, topic, "read_uncommitted", 1, settle=0.5) == ["never committed"]
    assert read(tcluster, topic, "read_committed", 1, timeout=3) == []
    listed = subprocess.run([fjord_cli(), "txn", "list", "--bootstrap-server", tcluster.bootstrap,
                             "--output", "json"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout) if r["transactional_id"] == tid]
    assert [r["state"] for r in rows] == ["CompleteAbort"]


def test_bad_input_gets_kafkas_error_codes(tcluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    # transaction.timeout.ms above transaction.max.timeout.ms.
    p = producer(tcluster, tid, **{"transaction.timeout.ms": 200000})
    with pytest.raises(KafkaException) as e:
        p.init_transactions(20)
    assert e.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT
    del p

    coord = txnwire.coordinator(tcluster.bootstrap, tid)
    # Asking another broker is NOT_COORDINATOR.
    other = [b.bootstrap for b in tcluster.brokers if b.bootstrap != coord][0]
    assert txnwire.init_producer_id(other, tid, 60000)[0] == 16
    err, pid, epoch = txnwire.init_producer_id(coord, tid, 60000)
    assert err == 0 and epoch == 0
    # EndTxn with no transaction: INVALID_TXN_STATE.
    assert txnwire.end_txn(coord, tid, pid, epoch, True) == 48
    # A producer id the coordinator never gave: INVALID_PRODUCER_ID_MAPPING.
    assert txnwire.end_txn(coord, tid, pid + 1, epoch, True) == 49
    # An unknown partition.
    assert txnwire.add_partitions(coord, tid, pid, epoch, topic, 9) == 3
    # After a fence (a new init), AddPartitions with the old epoch:
    # INVALID_PRODUCER_EPOCH at v1 (PRODUCER_FENCED is v2+).
    err, _, epoch2 = txnwire.init_producer_id(coord, tid, 60000)
    assert (err, epoch2) == (0, epoch + 1)
    assert txnwire.add_partitions(coord, tid, pid, epoch, topic, 0) == 47
    # TxnOffsetCommit for a group the transaction never added
    # (AddOffsetsToTxn): INVALID_TXN_STATE; at a broker that is not the
    # group's coordinator: NOT_COORDINATOR.
    g = unique("nogroup-", request)
    gcoord = txnwire.coordinator(tcluster.bootstrap, g, 0)
    assert txnwire.txn_offset_commit(gcoord, tid, g, pid, epoch2, topic, 0, 5) == 48
    gother = [b.bootstrap for b in tcluster.brokers if b.bootstrap != gcoord][0]
    assert txnwire.txn_offset_commit(gother, tid, g, pid, epoch2, topic, 0, 5) == 16
