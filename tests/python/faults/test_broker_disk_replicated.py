"""One broker of three runs out of disk (issue 19): 3 brokers, RF 3,
min.insync.replicas 2, broker 3's log dir on a 64 MB tmpfs with
log.dir.min.free.bytes 16 MiB, an idempotent confluent-kafka producer
(acks=all, the client's default retries) writing to 3 partitions throughout.
Idempotence is what makes "exactly once" below a promise: without it a batch
the old leader had already replicated when it answered NOT_LEADER is written
again by the client's retry, in Kafka as here.

- A file filling broker 3's tmpfs trips its free-space guard; the broker
  withdraws (`/admin/log_dir_offline/3`) and within 15 s the controller has
  moved every leadership it held to an in-sync replica on a healthy broker
  and taken it out of every ISR.
- The producer sees no error at all, before, during or after.
- Once the file is gone the broker resumes on its own, catches up and is back
  in every ISR within 30 s, and leads again through the preferred-leader
  rebalance; a consumer then reads every acknowledged record exactly once,
  at its acknowledged offset.
"""
import os
import threading
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from fjordtest import cleanup  # noqa: E402
from fjordtest.binaries import broker_binary, coord_binary, require  # noqa: E402
from fjordtest.broker import Broker, Cluster  # noqa: E402
from fjordtest.faults import Tmpfs  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402

TOPIC = "orders"
PARTITIONS = 3
FULL = 3  # the broker whose disk fills


def states(bootstrap):
    """{partition: (leader, isr)} from Metadata."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(TOPIC, timeout=10)
    return {p.id: (p.leader, sorted(p.isrs)) for p in md.topics[TOPIC].partitions.values()}


def wait_for(what, pred, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
            if last is True:
                return time.time()
        except Exception as e:  # metadata while a broker moves: ask again
            last = e
        time.sleep(0.25)
    raise AssertionError("%s: not within %d s (last: %r)" % (what, timeout, last))


class Feeder:
    """Produces keyed records at a steady pace until stopped, tallying
    delivery reports: acknowledged (value -> (partition, offset)) and errors."""

    def __init__(self, bootstrap):
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                           "enable.idempotence": True,
                           "message.timeout.ms": 60000, "log_level": 0})
        self.acked = {}
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _cb(self, err, msg):
        if err is None:
            self.acked[msg.value()] = (msg.partition(), msg.offset())
        else:
            self.errors.append(err)

    def _run(self):
        i = 0
        while not self.stop.is_set():
            for _ in range(20):
                self.p.produce(TOPIC, b"v-%08d" % i + b"." * 1000, partition=i % PARTITIONS,
                               on_delivery=self._cb)
                i += 1
            self.p.poll(0)
            time.sleep(0.02)
        self.p.flush(60)

    def close(self):
        self.stop.set()
        self.thread.join(90)


def test_full_disk_on_one_broker_moves_leadership_and_it_returns():
    require(broker_binary(), coord_binary())
    d = cleanup.temp_dir("fjord-disk3-")
    fs = Tmpfs(os.path.join(d, "logs"), "64m")
    fs.mount()
    cluster = feeder = None
    filler = os.path.join(fs.path, "filler")

    def broker(workdir, bid, zk, overrides):
        b = Broker(workdir, bid, zk, overrides)
        if bid == FULL:
            b.log_dir = os.path.join(fs.path, "data")
        return b

    try:
        cluster = Cluster(3, overrides={"log.dir.min.free.bytes": 16 << 20,
                                        "min.insync.replicas": 2,
                                        "leader.imbalance.check.interval.seconds": 2},
                          broker=broker)
        create_topic(cluster.bootstrap, TOPIC, PARTITIONS, rf=3)
        wait_for("every replica in sync",
                 lambda: all(len(isr) == 3 for _, isr in states(cluster.bootstrap).values()), 20)
        led = [p for p, (l, _) in states(cluster.bootstrap).items() if l == FULL]
        assert led, "broker %d leads nothing: %r" % (FULL, states(cluster.bootstrap))

        feeder = Feeder(cluster.bootstrap)
        feeder.thread.start()
        time.sleep(2)
        # Leave 8 MiB free: under the 16 MiB floor, far from ENOSPC.
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, fs.free_bytes() - (8 << 20)))
        filled = time.time()

        def withdrawn():
            s = states(cluster.bootstrap)
            return all(l != FULL and FULL not in isr for l, isr in s.values()) or s

        moved = wait_for("leadership and ISRs off the full broker", withdrawn, 15)
        time.sleep(3)  # produce on, through the new leaders
        log = cluster.broker(FULL).log_tail(1 << 20)
        assert "below its free-space floor" in log, log[-3000:]
        assert "withdrawing from leadership" in log, log[-3000:]

        os.unlink(filler)
        freed = time.time()

        def rejoined():
            s = states(cluster.bootstrap)
            return all(len(isr) == 3 for _, isr in s.values()) or s

        back = wait_for("the full broker back in every ISR", rejoined, 30)
        wait_for("the full broker leading again (preferred leader)",
                 lambda: all(states(cluster.bootstrap)[p][0] == FULL for p in led) or
                 states(cluster.bootstrap), 30)
        time.sleep(2)
        feeder.close()
        print("one full broker: leadership moved %.1f s after the disk filled, "
              "back in every ISR %.1f s after space returned; %d acknowledged" % (
                  moved - filled, back - freed, len(feeder.acked)))
        assert not feeder.errors, "the producer saw errors: %r" % feeder.errors[:5]
        assert cluster.broker(FULL).starts == 1 and cluster.broker(FULL).alive()

        # Every acknowledged record, exactly once, at its offset.
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "disk3-reader",
                      "enable.auto.commit": False, "log_level": 0})
        try:
            seen = {}
            for q in range(PARTITIONS):
                lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, q), timeout=10)
                c.assign([TopicPartition(TOPIC, q, lo)])
                deadline = time.time() + 60
                while hi > lo and time.time() < deadline:
                    m = c.poll(1.0)
                    if m is None or m.error():
                        continue
                    assert m.value() not in seen, "record twice: %r" % m.value()[:10]
                    seen[m.value()] = (q, m.offset())
                    if m.offset() + 1 >= hi:
                        break
        finally:
            c.close()
        missing = set(feeder.acked) - set(seen)
        assert not missing, "%d acknowledged records missing" % len(missing)
        for v, at in feeder.acked.items():
            assert seen[v] == at, (v[:10], seen[v], at)
    finally:
        if feeder:
            feeder.stop.set()
        if cluster:
            cluster.close()
        if os.path.exists(filler):
            os.unlink(filler)
        fs.umount()
        cleanup.remove_dir(d)
