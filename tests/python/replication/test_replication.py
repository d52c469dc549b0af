"""Replication and failover (issue 5) against real processes: one fjord-coord,
three fjord-brokers, confluent-kafka (librdkafka) clients, `fjord topic describe`.

- kill -9 of the leader mid-stream under an idempotent acks=all producer: every
  acknowledged message is read back once, in order, at its acknowledged offset,
  from the new leader; describe shows the new leader and the shrunken ISR; the
  restarted broker rejoins the ISR.
- min.insync.replicas: two of three down → NOT_ENOUGH_REPLICAS for acks=all
  (acks=1 still works); the leader of an ISR-of-one partition dying leaves the
  partition offline (unclean election off) until that broker returns, data intact.
- unclean.leader.election.enable=true: an out-of-sync replica leads when every ISR
  member is dead; only the old leader's unreplicated acks=1 write is lost, and the old
  leader truncates it on return (its log never diverges at an offset).
- a fault-injection run of the checker (kill -9 / SIGSTOP / restart every 5 s).
"""
import os
import threading
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaError, Producer  # noqa: E402

from fjordtest.kafka import create_topic, describe  # noqa: E402
from replication import checker  # noqa: E402
from replication.replharness import wait_until  # noqa: E402


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3)


def part0(c, topic):
    d, _ = describe(c.bootstrap, topic)
    return d[0]["partitions"][0]


def rf3_topic(c, topic, min_insync):
    """A one-partition topic on all three brokers, once its ISR holds all three."""
    create_topic(c.bootstrap, topic, 1, 3, {"min.insync.replicas": str(min_insync)})
    wait_until(lambda: len(part0(c, topic)["isr"]) == 3, 30, "ISR of 3")


def test_leader_kill_keeps_every_acknowledged_message(cluster):
    c = cluster
    topic = "failover"
    rf3_topic(c, topic, 2)
    old = part0(c, topic)["leader"]
    acked = {}
    errors = []
    lock = threading.Lock()

    def dr(err, msg):
        with lock:
            if err is None:
                acked[msg.value()] = msg.offset()
            else:
                errors.append(err)

    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 120000, "log_level": 3,
                  "topic.metadata.refresh.interval.ms": 1000})
    stop = threading.Event()
    sent = [0]

    def produce():
        while not stop.is_set():
            try:
                p.produce(topic, value=b"%09d" % sent[0], partition=0, on_delivery=dr)
                sent[0] += 1
            except BufferError:
                pass
            p.poll(0.001)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    wait_until(lambda: len(acked) >= 3000, 60, "3000 acknowledged before the kill")
    c.broker(old).kill9()
    killed_at = time.time()
    at_kill = len(acked)
    wait_until(lambda: len(acked) >= at_kill + 3000, 60, "acknowledgements from the new leader")
    resumed = time.time() - killed_at
    stop.set()
    t.join(10)
    assert p.flush(60) == 0
    assert not errors, errors[:3]
    st = part0(c, topic)
    assert st["leader"] not in (-1, old), st
    assert old not in st["isr"] and len(st["isr"]) == 2, st
    got = checker.read_all(c.bootstrap, topic, 1)[0]
    offsets = {}
    for off, v in got:
        assert v not in offsets, "duplicate %r" % v
        offsets[v] = off
    seqs = [int(v) for _, v in got]
    assert seqs == sorted(seqs), "reordered"
    missing = [v for v in acked if v not in offsets]
    moved = [(v, o, offsets[v]) for v, o in acked.items() if v in offsets and offsets[v] != o]
    assert not missing, "acknowledged but missing: %d e.g. %r" % (len(missing), missing[:3])
    assert not moved, "acknowledged offsets changed: %r" % moved[:3]
    print("acknowledged %d, first ack from the new leader %.2fs after kill -9" % (len(acked), resumed))
    # The restarted broker truncates, catches up and rejoins the ISR.
    c.broker(old).start()
    wait_until(lambda: old in part0(c, topic)["isr"], 60, "broker %d back in the ISR" % old)
    # And it holds the same log: make it the only survivor's peer and read through it.
    new = part0(c, topic)["leader"]
    c.broker(new).kill9()
    wait_until(lambda: part0(c, topic)["leader"] not in (-1, new), 60, "a third leader")
    again = checker.read_all(c.bootstrap, topic, 1)[0]
    assert again[:len(got)] == got


def test_min_insync_and_offline_without_unclean_election(cluster):
    c = cluster
    topic = "mis"
    rf3_topic(c, topic, 2)
    leader = part0(c, topic)["leader"]
    others = [b for b in c.brokers if b.id != leader]

    def send(acks, value):
        res = []
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": acks, "retries": 0,
                      "message.timeout.ms": 10000, "log_level": 3})
        p.produce(topic, value=value, partition=0, on_delivery=lambda e, m: res.append((e, m.offset())))
        p.flush(15)
        assert res, "no delivery report"
        return res[0]

    e, off = send("all", b"before")
    assert e is None and off == 0, e
    for b in others:
        b.kill9()
    wait_until(lambda: part0(c, topic)["isr"] == [leader], 30, "ISR shrunk to the leader")
    e, _ = send("all", b"refused")
    assert e is not None and e.code() == KafkaError.NOT_ENOUGH_REPLICAS, e
    e, off = send("1", b"acks1")
    assert e is None and off == 1, e
    # The last ISR member dies: offline, not an out-of-sync leader (unclean off).
    c.broker(leader).kill9()
    others[0].start()
    wait_until(lambda: part0(c, topic)["leader"] == -1, 30, "partition offline")
    time.sleep(2)
    st = part0(c, topic)
    assert st["leader"] == -1 and others[0].id not in st["isr"], st
    # It comes back: leader again, nothing lost; the follower rejoins the ISR.
    c.broker(leader).start()
    wait_until(lambda: part0(c, topic)["leader"] == leader, 30, "old leader back")
    wait_until(lambda: others[0].id in part0(c, topic)["isr"], 30, "follower back in the ISR")
    got = checker.read_all(c.bootstrap, topic, 1)[0]
    assert [v for _, v in got] == [b"before", b"acks1"]


def test_checker_under_nemesis(cluster):
    """kill -9 / SIGSTOP+SIGCONT / restart of random brokers every 5 s (the
    leaders and the controller included); longer runs: scripts/chaos.sh."""
    secs = float(os.environ.get("FJORD_CHAOS_SECONDS", "45"))
    r = checker.run(cluster, duration=secs, interval=5.0, partitions=3, rate=300, verify_kills=1)
    print("checker: %s" % {k: v for k, v in r.items() if k != "nemesis"})
    assert r["acknowledged"] > 0
    for k in ("lost", "changed", "duplicates", "reordered", "divergent"):
        assert r[k] == 0, (k, r)


def test_unclean_election_loses_only_unreplicated_and_truncates_old_leader(make_cluster):
    """unclean.leader.election.enable=true: with every ISR member dead, a returning
    out-of-sync replica leads; what only the old leader had (acks=1 after the ISR
    shrank) is the bounded loss, and the old leader, back as follower, truncates it
    (KIP-101) instead of keeping a divergent offset."""
    c = make_cluster(3, {"unclean.leader.election.enable": "true"})
    topic = "unclean"
    rf3_topic(c, topic, 1)
    leader = part0(c, topic)["leader"]
    f1, f2 = [b for b in c.brokers if b.id != leader]

    def send(acks, value):
        res = []
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": acks, "retries": 5,
                      "message.timeout.ms": 20000, "log_level": 3})
        p.produce(topic, value=value, partition=0,
                  on_delivery=lambda e, m: res.append((e, m.offset())))
        p.flush(25)
        assert res and res[0][0] is None, res
        return res[0][1]

    assert send("all", b"a") == 0
    f1.kill9()
    f2.kill9()
    wait_until(lambda: part0(c, topic)["isr"] == [leader], 30, "ISR shrunk to the leader")
    assert send("1", b"b") == 1
    c.broker(leader).kill9()
    f1.start()
    wait_until(lambda: part0(c, topic)["leader"] == f1.id, 30, "unclean election of %d" % f1.id)
    assert [v for _, v in checker.read_all(c.bootstrap, topic, 1)[0]] == [b"a"]
    assert send("all", b"c") == 1
    c.broker(leader).start()
    wait_until(lambda: leader in part0(c, topic)["isr"], 30, "old leader back in the ISR")
    f1.kill9()
    wait_until(lambda: part0(c, topic)["leader"] == leader, 30, "old leader leads again")
    assert [v for _, v in checker.read_all(c.bootstrap, topic, 1)[0]] == [b"a", b"c"]
