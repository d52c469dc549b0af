"""The transaction coordinator's broker dies (kill -9) in the middle of a
transaction: the id moves to another broker (the rendezvous hash over the
live ones), which loads the record from the coordinator, and the same
confluent-kafka producer commits there; the offsets it sent appear, once.
The group's coordinator dies while the transaction holds offsets of the
group: its successor still tells read_committed consumers the offsets are
unstable (require_stable) until the commit, then answers them."""
import json
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from fjordtest.binaries import fjord_cli
from fjordtest.kafka import create_topic
from fjordtest.names import unique
from transactions import txnwire


def describe(bootstrap, tid):
    out = subprocess.run([fjord_cli(), "txn", "describe", "--bootstrap-server", bootstrap,
                          "--transactional-id", tid, "--output", "json"],
                         capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def test_commit_survives_the_death_of_the_transaction_coordinator(tcluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    g = unique("g-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    coord = txnwire.coordinator(tcluster.bootstrap, tid)
    victim = [b for b in tcluster.brokers if b.bootstrap == coord][0]
    p = Producer({"bootstrap.servers": tcluster.bootstrap, "transactional.id": tid,
                  "log_level": 0})
    p.init_transactions(30)
    cons = Consumer({"bootstrap.servers": tcluster.bootstrap, "group.id": g,
                     "enable.auto.commit": False, "log_level": 0})
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 5)], cons.consumer_group_metadata(), 30)
    before = describe(tcluster.bootstrap, tid)
    assert before["state"] == "Ongoing" and before["coordinator"] == victim.id

    victim.kill9()
    p.commit_transaction(60)
    survivors = ",".join(b.bootstrap for b in tcluster.brokers if b is not victim)
    deadline = time.time() + 20
    after = None
    while time.time() < deadline:
        after = describe(survivors, tid)
        if after and after["state"] == "CompleteCommit":
            break
        time.sleep(0.3)
    assert after["state"] == "CompleteCommit", after
    assert after["coordinator"] != victim.id
    assert (after["producer_id"], after["producer_epoch"]) == \
        (before["producer_id"], before["producer_epoch"])
    c2 = Consumer({"bootstrap.servers": survivors, "group.id": g, "log_level": 0})
    try:
        deadline = time.time() + 20
        off = None
        while time.time() < deadline:
            off = c2.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
            if off == 5:
                break
            time.sleep(0.3)
        assert off == 5
    finally:
        c2.close()
        cons.close()
        victim.start()
        victim.wait_ready()


def committed(bootstrap, group, topic, isolation, timeout=10):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0,
                  "enable.auto.commit": False, "isolation.level": isolation})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=timeout)[0].offset
    finally:
        c.close()


def test_pending_offsets_stay_unstable_after_the_group_coordinator_dies(tcluster, request):
    topic = unique("t-", request)
    create_topic(tcluster.bootstrap, topic, 1, rf=3)
    tid = unique("tx-", request)
    tcoord = txnwire.coordinator(tcluster.bootstrap, tid)
    # A group whose coordinator is another broker than the transaction's.
    for i in range(100):
        g = unique("g%d-" % i, request)
        gcoord = txnwire.coordinator(tcluster.bootstrap, g, key_type=0)
        if gcoord != tcoord:
            break
    victim = [b for b in tcluster.brokers if b.bootstrap == gcoord][0]
    p = Producer({"bootstrap.servers": tcluster.bootstrap, "transactional.id": tid,
                  "log_level": 0})
    p.init_transactions(30)
    cons = Consumer({"bootstrap.servers": tcluster.bootstrap, "group.id": g,
                     "enable.auto.commit": False, "log_level": 0})
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 7)], cons.consumer_group_metadata(), 30)
    victim.kill9()
    try:
        survivors = ",".join(b.bootstrap for b in tcluster.brokers if b is not victim)
        deadline = time.time() + 30
        while txnwire.coordinator(survivors, g, key_type=0) == gcoord:
            assert time.time() < deadline, "the group's coordinator did not move"
            time.sleep(0.2)
        # The new coordinator never took the TxnOffsetCommit, yet answers
        # UNSTABLE_OFFSET_COMMIT: librdkafka retries until its timeout.
        with pytest.raises(KafkaException):
            committed(survivors, g, topic, "read_committed", timeout=3)
        p.commit_transaction(60)
        assert committed(survivors, g, topic, "read_committed") == 7
    finally:
        cons.close()
        victim.start()
        victim.wait_ready()
