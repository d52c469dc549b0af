"""Broker failure detection and the high-watermark checkpoint (issue 18)
against real processes: one fjord-coord, three fjord-brokers, confluent-kafka.

- kill -9 of the leader, Kafka's default timeouts (zookeeper.session.timeout.ms
  18000, replica.lag.time.max.ms 30000, client defaults): the first write
  acknowledged by the new leader comes within 3 s of the kill (median of 3
  kills, broker.failure.detection.ms 3000), nothing acknowledged lost or
  duplicated.
- SIGSTOP of the leader for 20 s: it is replaced while paused (acks=all writes
  go on through the new leader), a produce it finds waiting on its socket when it wakes is refused
  (it acknowledges nothing) and it rejoins the ISR as a follower.
- The HW checkpoint: a leader killed with acks=1 records above its HW comes
  back with the checkpointed HW, so no consumer reads them until they are
  committed (followers back); then everything is readable. An RF=1 partition
  serves all its acknowledged data after a kill -9.
"""
import socket
import statistics
import struct
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition  # noqa: E402

from fjordtest.kafka import create_topic  # noqa: E402
from fjordtest.kafka_wire import frame, recv_frame  # noqa: E402
from replication import checker  # noqa: E402
from replication.replharness import Stream, part0, wait_until  # noqa: E402

# Timing assertions: scripts/test.sh runs this module alone (not beside other workers).
pytestmark = pytest.mark.serial

# Kafka's own defaults, not the suite's short ones.
KAFKA_DEFAULTS = {
    "zookeeper.session.timeout.ms": 18000,
    "replica.lag.time.max.ms": 30000,
}
NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, FENCED_LEADER_EPOCH = 6, 7, 74


def rf3_topic(c, topic, min_insync):
    create_topic(c.bootstrap, topic, 1, 3, {"min.insync.replicas": str(min_insync)})
    wait_until(lambda: len(part0(c, topic)["isr"]) == 3, 60, "ISR of 3")


def check_log(c, topic, s):
    got = checker.read_all(c.bootstrap, topic, 1)[0]
    offsets = {}
    for off, v in got:
        assert v not in offsets, "duplicate %r" % v
        offsets[v] = off
    missing = [v for v in s.acked if v not in offsets]
    assert not missing, "acknowledged but missing: %d e.g. %r" % (len(missing), missing[:3])
    moved = [v for v, (o, _) in s.acked.items() if offsets[v] != o]
    assert not moved, "acknowledged offsets changed: %r" % moved[:3]
    seqs = [int(v) for _, v in got if v.isdigit()]
    assert seqs == sorted(seqs), "reordered"


def test_leader_kill_first_ack_within_3s(make_cluster):
    c = make_cluster(3, KAFKA_DEFAULTS)
    topic = "detect-kill"
    rf3_topic(c, topic, 2)
    s = Stream(c.bootstrap, topic)
    times = []
    for _ in range(3):
        wait_until(lambda: len(s.acked) >= 200, 60, "acks before the kill")
        old = part0(c, topic)["leader"]
        c.broker(old).kill9()
        t0 = time.time()
        wait_until(lambda: s.first_ack_after(t0) is not None, 60, "an ack after the kill")
        times.append(s.first_ack_after(t0))
        st = part0(c, topic)
        assert st["leader"] not in (-1, old), st
        c.broker(old).start()
        wait_until(lambda: len(part0(c, topic)["isr"]) == 3, 90, "broker %d back in the ISR" % old)
        # Steady state before the next kill: librdkafka's reconnect backoff
        # towards the broker it just saw die is the client's, not ours.
        time.sleep(5)
    s.close()
    print("first ack after kill -9 of the leader: %s s (median %.2f)"
          % (["%.2f" % t for t in times], statistics.median(times)))
    assert statistics.median(times) <= 3.0, times
    check_log(c, topic, s)


def raw_produce_send(host, port, topic, value, acks=-1, timeout_ms=5000):
    """Send a Produce v3 with one record to host:port; return the socket to
    read the answer from (the broker may be paused: the kernel queues it)."""
    from kafka.record.memory_records import MemoryRecordsBuilder
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    b.append(timestamp=int(time.time() * 1000), key=None, value=value, headers=[])
    b.close()
    records = b.buffer()
    t = topic.encode()
    body = (struct.pack(">hhi", -1, acks, timeout_ms) + struct.pack(">i", 1)
            + struct.pack(">h", len(t)) + t + struct.pack(">i", 1)
            + struct.pack(">ii", 0, len(records)) + records)
    sock = socket.create_connection((host, port), timeout=5)
    sock.sendall(frame(0, 3, 7, body))
    return sock


def raw_produce_answer(sock, timeout=40.0):
    """The partition error code of the Produce v3 answer read from sock."""
    sock.settimeout(timeout)
    resp = recv_frame(sock)
    sock.close()
    pos = 4 + 4  # correlation id, topic array length
    (tl,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + tl + 4 + 4  # topic name, partition array length, partition
    (code,) = struct.unpack_from(">h", resp, pos)
    return code


def test_paused_leader_is_replaced_acknowledges_nothing_and_rejoins(make_cluster):
    c = make_cluster(3, KAFKA_DEFAULTS)
    topic = "detect-stop"
    rf3_topic(c, topic, 2)
    s = Stream(c.bootstrap, topic)
    wait_until(lambda: len(s.acked) >= 200, 60, "acks before the pause")
    old = part0(c, topic)["leader"]
    ob = c.broker(old)
    ob.pause()
    t0 = time.time()
    try:
        wait_until(lambda: part0(c, topic, skip=(old,))["leader"] not in (-1, old), 15,
                   "a new leader while the old one is paused")
        replaced = time.time() - t0
        # A fresh client writes through the new leader during the pause (the
        # stream's producer waits out its request.timeout.ms on the old one).
        live = ",".join(b.bootstrap for b in c.brokers if b.id != old)
        produce(live, topic, [b"during-pause"], "all")
        # A produce for the old leader queued on its socket while it sleeps:
        # the first thing it handles when it wakes, with its stale leadership.
        time.sleep(max(0.0, 20 - (time.time() - t0)))
        sock = raw_produce_send("127.0.0.1", ob.port, topic, b"to-the-old-leader")
    finally:
        ob.resume()
    code = raw_produce_answer(sock)
    assert code in (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, REQUEST_TIMED_OUT), code
    wait_until(lambda: old in part0(c, topic)["isr"], 90, "broker %d back in the ISR" % old)
    s.close()
    print("paused leader replaced %.2f s after SIGSTOP; stale produce -> %d"
          % (replaced, code))
    check_log(c, topic, s)
    got = checker.read_all(c.bootstrap, topic, 1)[0]
    assert b"during-pause" in [v for _, v in got]
    assert b"to-the-old-leader" not in [v for _, v in got]


def consume_values(bootstrap, topic, secs):
    """Every value a plain consumer reads from the start within secs."""
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-%f" % time.time(),
                     "enable.auto.commit": False, "log_level": 3})
    # assign, not subscribe: no group coordinator needed (it may be paused).
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    end = time.time() + secs
    try:
        while time.time() < end:
            m = cons.poll(0.2)
            if m is not None and not m.error():
                out.append(m.value())
    finally:
        cons.close()
    return out


def produce(bootstrap, topic, values, acks):
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "log_level": 3,
                  "message.timeout.ms": 20000})
    res = []
    for v in values:
        p.produce(topic, value=v, partition=0, on_delivery=lambda e, m: res.append(e))
    p.flush(30)
    assert len(res) == len(values) and all(e is None for e in res), res[:3]


def test_restarted_leader_uses_checkpointed_high_watermark(make_cluster):
    # Followers paused stay in the ISR for the test's length (nothing takes
    # them out), so the acks=1 records stay above the HW.
    long = {"zookeeper.session.timeout.ms": 60000, "replica.lag.time.max.ms": 60000,
            "broker.failure.detection.ms": 60000,
            "replica.high.watermark.checkpoint.interval.ms": 200}
    c = make_cluster(3, long)
    topic = "hwck"
    rf3_topic(c, topic, 1)
    committed = [b"c%d" % i for i in range(10)]
    uncommitted = [b"u%d" % i for i in range(10)]
    produce(c.bootstrap, topic, committed, "all")
    leader = part0(c, topic)["leader"]
    lb = c.broker(leader)
    followers = [b for b in c.brokers if b.id != leader]
    for f in followers:
        f.pause()
    try:
        produce(lb.bootstrap, topic, uncommitted, "1")
        time.sleep(1.0)   # a few checkpoints: all of them at the HW, 10
        lb.kill9()
        lb.start()
        paused = [f.id for f in followers]
        wait_until(lambda: part0(c, topic, paused)["leader"] == leader, 30, "leader back")
        seen = consume_values(lb.bootstrap, topic, 4)
        assert seen == committed, "read before committed: %r" % seen
    finally:
        for f in followers:
            f.resume()
    # Followers back: they fetch the rest, the HW moves, all of it is readable.
    wait_until(lambda: len(part0(c, topic)["isr"]) == 3, 60, "ISR of 3 again")
    wait_until(lambda: consume_values(c.bootstrap, topic, 3) == committed + uncommitted,
               60, "every record readable once committed")
    # RF=1: the HW is the log end as soon as it leads again.
    create_topic(c.bootstrap, "solo", 1, 1)
    wait_until(lambda: part0(c, "solo")["leader"] >= 0, 30, "solo leader")
    produce(c.bootstrap, "solo", committed, "all")
    sb = c.broker(part0(c, "solo")["leader"])
    sb.kill9()
    sb.start()
    wait_until(lambda: consume_values(c.bootstrap, "solo", 3) == committed, 60,
               "RF=1 data served after kill -9")
