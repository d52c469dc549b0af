"""A broker whose log dir fills up (issue 19), on real processes: one
fjord-coord, one fjord-broker with log.dirs on a 30 MB tmpfs, confluent-kafka
with acks=all producing until the disk is full.

- The first refused write is answered with KAFKA_STORAGE_ERROR (56) by the
  broker, not left to time out: the producer runs with retries=0 and
  message.timeout.ms=5000, so a broker that hangs shows up as _MSG_TIMED_OUT.
- While the disk is still full, a consumer reads every acknowledged record
  at its acknowledged offset, and nothing else (no refused record visible).
- After `mount -o remount,size=...` a produce succeeds again within 10 s,
  without a restart; at the end every acknowledged record is there once and
  no refused one is.

Two ways to fill it: with the free-space guard (log.dir.min.free.bytes, the
writes are refused before the filesystem fails) and with the guard off
(min.free.bytes=0: RocksDB itself hits ENOSPC, the broker answers with the
storage error, rolls the failed writes back and resumes when there is room).
"""
import os
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402

from fjordtest import cleanup  # noqa: E402
from fjordtest.binaries import broker_binary, coord_binary, require  # noqa: E402
from fjordtest.broker import Broker  # noqa: E402
from fjordtest.coord import Server  # noqa: E402
from fjordtest.faults import Injector, Tmpfs  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402

STORAGE_ERROR = 56
PAYLOAD = 4096


def value(i):
    head = b"%08d:" % i
    return head + os.urandom(PAYLOAD // 2).hex().encode()[:PAYLOAD - len(head)]


class Tally:
    """Delivery reports: acknowledged (value -> offset) and refused (value -> error)."""

    def __init__(self):
        self.acked = {}
        self.refused = {}
        self.first_refusal = None

    def cb(self, err, msg):
        if err is None:
            self.acked[msg.value()[:8]] = msg.offset()
        else:
            self.refused[msg.value()[:8]] = err
            if self.first_refusal is None:
                self.first_refusal = err


def producer(bootstrap):
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                     "message.timeout.ms": 5000, "linger.ms": 5,
                     "batch.num.messages": 64, "max.in.flight": 1})


def read_all(bootstrap, topic):
    """Every record of partition 0 up to its high watermark: {key8: offset}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-%f" % time.time(),
                  "enable.auto.commit": False, "fetch.max.bytes": 4 << 20})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, lo)])
        seen = {}
        deadline = time.time() + 60
        while hi > lo and time.time() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            k = m.value()[:8]
            assert k not in seen, "record %r twice (offsets %d, %d)" % (k, seen[k], m.offset())
            seen[k] = m.offset()
            if m.offset() + 1 >= hi:
                break
        return seen, hi
    finally:
        c.close()


@pytest.mark.parametrize("min_free", ["4194304", "0"], ids=["guard", "enospc"])
def test_broker_full_disk_refuses_serves_and_resumes(min_free):
    require(broker_binary(), coord_binary())
    d = cleanup.temp_dir("fjord-disk-")
    fs = Tmpfs(os.path.join(d, "logs"), "30m")
    coord = broker = None
    try:
        fs.mount()
        coord = Server("fjord", {"tickTime": 500, "maxClientCnxns": 0},
                       workdir=os.path.join(d, "coord")).start()
        broker = Broker(d, 1, coord.hosts, {"log.dirs": os.path.join(fs.path, "data"),
                                            "log.dir.min.free.bytes": min_free})
        broker.start()
        topic = "full"
        create_topic(broker.bootstrap, topic)

        t = Tally()
        p = producer(broker.bootstrap)
        i = 0
        deadline = time.time() + 90
        while t.first_refusal is None and time.time() < deadline:
            for _ in range(64):
                p.produce(topic, value(i), partition=0, on_delivery=t.cb)
                i += 1
            p.poll(0)
            if i % 1024 == 0:
                p.flush(10)
        sent_at_refusal = i
        p.flush(15)
        assert t.first_refusal is not None, "30 MB took %d x 4 KB without a refusal" % i
        assert t.first_refusal.code() == STORAGE_ERROR, \
            "first refusal %r, not KAFKA_STORAGE_ERROR; broker log:\n%s" % (
                t.first_refusal, broker.log_tail())
        assert len(t.acked) > 2000, "only %d acknowledged before the disk filled" % len(t.acked)
        assert len(t.acked) + len(t.refused) == sent_at_refusal
        assert broker.alive()

        # Still full: every acknowledged record is readable, nothing refused is.
        seen, hw = read_all(broker.bootstrap, topic)
        assert seen == t.acked, "read %d records, %d acknowledged; missing %r, extra %r" % (
            len(seen), len(t.acked), sorted(set(t.acked) - set(seen))[:5],
            sorted(set(seen) - set(t.acked))[:5])
        assert hw == max(t.acked.values()) + 1

        # Still full: a new write is refused again, promptly.
        t2 = Tally()
        p.produce(topic, value(10 ** 7), partition=0, on_delivery=t2.cb)
        p.flush(15)
        assert t2.first_refusal is not None and t2.first_refusal.code() == STORAGE_ERROR, \
            (t2.first_refusal, t2.acked)

        # Room again: produce succeeds within 10 s, no restart.
        fs.resize("300m")
        grown = time.time()
        t3 = Tally()
        n = 10 ** 7 + 1
        while not t3.acked and time.time() < grown + 10:
            p.produce(topic, value(n), partition=0, on_delivery=t3.cb)
            n += 1
            p.flush(6)
            if not t3.acked:
                time.sleep(0.25)
        assert t3.acked, "no write acknowledged within 10 s of the remount (%r); log:\n%s" % (
            list(t3.refused.values())[-1:], broker.log_tail())
        assert broker.starts == 1 and broker.alive()
        for _ in range(200):
            p.produce(topic, value(n), partition=0, on_delivery=t3.cb)
            n += 1
        p.flush(15)
        refused_later = set(t3.refused)

        # The path taken, from the broker's log lines.
        log = broker.log_tail(1 << 20)
        if min_free == "0":
            assert "log store write failed" in log and "log store resumed" in log, log[-3000:]
        else:
            assert "below its free-space floor" in log and "back above its floor" in log, log[-3000:]
            assert "log store write failed" not in log

        seen, _ = read_all(broker.bootstrap, topic)
        want = dict(t.acked)
        want.update(t3.acked)
        missing = set(want) - set(seen)
        assert not missing, "acknowledged records missing: %r" % sorted(missing)[:5]
        for k, off in want.items():
            assert seen[k] == off, (k, seen[k], off)
        extra = set(seen) - set(want)
        assert not extra, "refused records visible: %r" % sorted(extra)[:5]
        assert not (refused_later | set(t.refused) | set(t2.refused)) & set(seen)
    finally:
        if broker:
            broker.stop()
        if coord:
            coord.stop()
        fs.umount()
        cleanup.remove_dir(d)


def test_broker_eio_refuses_serves_and_resumes_after_reopen():
    """EIO on the log dir's writes (the fjordfault injector), which RocksDB
    does not clear by itself: produce answers KAFKA_STORAGE_ERROR, fetches
    of what is stored go on, and once the disk writes again the broker
    reopens its store and takes writes, without a restart; nothing
    acknowledged missing, nothing refused visible."""
    require(broker_binary(), coord_binary())
    d = cleanup.temp_dir("fjord-eio-")
    coord = broker = None
    try:
        coord = Server("fjord", {"tickTime": 500, "maxClientCnxns": 0},
                       workdir=os.path.join(d, "coord")).start()
        data = os.path.join(d, "data")
        inj = Injector(data, ctl_dir=d)
        broker = Broker(d, 1, coord.hosts, {"log.dirs": data})
        broker.env.update(inj.env)
        broker.start()
        topic = "eio"
        create_topic(broker.bootstrap, topic)
        p = producer(broker.bootstrap)
        t = Tally()
        for i in range(500):
            p.produce(topic, value(i), partition=0, on_delivery=t.cb)
        p.flush(15)
        assert len(t.acked) == 500, (len(t.acked), list(t.refused.values())[:3])

        inj.arm("eio", ops="write")
        t2 = Tally()
        for i in range(500, 520):
            p.produce(topic, value(i), partition=0, on_delivery=t2.cb)
        p.flush(15)
        assert not t2.acked and t2.first_refusal is not None
        assert t2.first_refusal.code() == STORAGE_ERROR, t2.first_refusal
        seen, _ = read_all(broker.bootstrap, topic)
        assert seen == t.acked, (len(seen), len(t.acked))

        inj.disarm()
        healed = time.time()
        t3 = Tally()
        n = 1000
        while not t3.acked and time.time() < healed + 15:
            p.produce(topic, value(n), partition=0, on_delivery=t3.cb)
            n += 1
            p.flush(6)
            if not t3.acked:
                time.sleep(0.25)
        assert t3.acked, "no write acknowledged 15 s after the disk healed; log:\n" + broker.log_tail()
        assert broker.starts == 1 and broker.alive()
        assert "log store reopened" in broker.log_tail(1 << 20)
        seen, _ = read_all(broker.bootstrap, topic)
        want = dict(t.acked)
        want.update(t3.acked)
        assert seen == want, (sorted(set(want) - set(seen))[:5], sorted(set(seen) - set(want))[:5])
    finally:
        if broker:
            broker.stop()
        if coord:
            coord.stop()
        cleanup.remove_dir(d)


def test_topic_deletion_frees_space_below_the_floor():
    """Below the free-space floor deletes still run and give their space back:
    deleting the topic that filled the disk lets produce to another topic
    succeed again, with no remount and no restart."""
    require(broker_binary(), coord_binary())
    from confluent_kafka.admin import AdminClient
    d = cleanup.temp_dir("fjord-disk-del-")
    fs = Tmpfs(os.path.join(d, "logs"), "30m")
    coord = broker = None
    try:
        fs.mount()
        coord = Server("fjord", {"tickTime": 500, "maxClientCnxns": 0},
                       workdir=os.path.join(d, "coord")).start()
        broker = Broker(d, 1, coord.hosts, {"log.dirs": os.path.join(fs.path, "data"),
                                            "log.dir.min.free.bytes": 4 << 20})
        broker.start()
        create_topic(broker.bootstrap, "filler")
        create_topic(broker.bootstrap, "keep")
        p = producer(broker.bootstrap)
        keep = Tally()
        for i in range(10):
            p.produce("keep", value(i), partition=0, on_delivery=keep.cb)
        p.flush(10)
        assert len(keep.acked) == 10
        t = Tally()
        i = 0
        while t.first_refusal is None and i < 20000:
            for _ in range(64):
                p.produce("filler", value(i), partition=0, on_delivery=t.cb)
                i += 1
            p.poll(0)
            if i % 1024 == 0:
                p.flush(10)
        p.flush(15)
        assert t.first_refusal is not None and t.first_refusal.code() == STORAGE_ERROR
        free_full = fs.free_bytes()

        a = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in a.delete_topics(["filler"]).values():
            f.result(30)
        deadline = time.time() + 20
        after = Tally()
        n = 100
        while not after.acked and time.time() < deadline:
            p.produce("keep", value(n), partition=0, on_delivery=after.cb)
            n += 1
            p.flush(6)
            if not after.acked:
                time.sleep(0.5)
        assert after.acked, "still refused 20 s after deleting the topic (free %d -> %d); log:\n%s" % (
            free_full, fs.free_bytes(), broker.log_tail())
        assert fs.free_bytes() > free_full + (10 << 20), (free_full, fs.free_bytes())
        assert broker.starts == 1
        seen, _ = read_all(broker.bootstrap, "keep")
        want = dict(keep.acked)
        want.update(after.acked)
        assert seen == want
    finally:
        if broker:
            broker.stop()
        if coord:
            coord.stop()
        fs.umount()
        cleanup.remove_dir(d)
