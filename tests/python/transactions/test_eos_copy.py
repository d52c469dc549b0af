"""Consume-transform-produce exactly once under faults (issue 14): a
confluent-kafka processor (eos_processor.py, send_offsets_to_transaction)
copies EOS_RECORDS records (default 20,000, written at EOS_RATE/s while the
faults run; scripts/chaos-eos.sh runs 200,000) from a 3-partition input topic
to an output topic, RF 3 and min.insync.replicas 2, while a nemesis kills -9
and restarts the processor and the partitions' leaders in turn every
EOS_INTERVAL s. A read_committed
reader of the output must see every input record exactly once, in input order
per partition."""
import os
import random
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from fjordtest.kafka import create_topic
from fjordtest.names import unique

RECORDS = int(os.environ.get("EOS_RECORDS", "20000"))
RATE = int(os.environ.get("EOS_RATE", "1000"))   # input records/s while the faults run
INTERVAL = float(os.environ.get("EOS_INTERVAL", "3"))
PARTITIONS = 3
PROCESSOR = os.path.join(os.path.dirname(__file__), "eos_processor.py")


class Supervisor:
    """Runs the processor and starts it again whenever it exits; kill9()
    is the nemesis' handle on it."""

    def __init__(self, args, log_path):
        self.args = args
        self.log = open(log_path, "ab")
        self.proc = None
        self.starts = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            with self.lock:
                self.proc = subprocess.Popen([sys.executable, PROCESSOR] + self.args,
                                             stdout=self.log, stderr=self.log)
                self.starts += 1
            while self.proc.poll() is None and not self.stop.is_set():
                time.sleep(0.05)
            time.sleep(0.2)

    def kill9(self):
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()

    def close(self):
        self.stop.set()
        self.kill9()
        self.thread.join(10)
        self.log.close()


def leaders(bootstrap, topic):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return {p.id: p.leader for p in md.topics[topic].partitions.values()}


def test_copy_exactly_once_while_processor_and_leaders_die(tcluster, request, tmp_path):
    src, dst = unique("eos-in-", request), unique("eos-out-", request)
    group, tid = unique("eos-g-", request), unique("eos-tx-", request)
    for t in (src, dst):
        create_topic(tcluster.bootstrap, t, PARTITIONS, rf=3)
    def feed():
        """The input, written at RATE/s: the copy runs as long as the faults."""
        p = Producer({"bootstrap.servers": tcluster.bootstrap, "enable.idempotence": True,
                      "linger.ms": 5, "log_level": 0})
        t0 = time.time()
        for i in range(RECORDS):
            part = i % PARTITIONS
            p.produce(src, b"%d-%07d" % (part, i // PARTITIONS), partition=part)
            if i % 100 == 0:
                p.poll(0)
                ahead = i / RATE - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        fed.append(p.flush(120))

    fed = []
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    sup = Supervisor([tcluster.bootstrap, src, dst, group, tid], str(tmp_path / "processor.log"))
    sup.thread.start()
    rng = random.Random(14)
    stop = threading.Event()
    history = []

    def nemesis():
        k = 0
        while not stop.wait(INTERVAL):
            k += 1
            if k % 2:
                sup.kill9()
                history.append("kill -9 processor")
                continue
            try:
                led = leaders(tcluster.bootstrap, src)
            except Exception:
                continue
            ids = sorted({l for l in led.values() if l >= 0})
            if not ids:
                continue
            victim = tcluster.broker(rng.choice(ids))
            victim.kill9()
            history.append("kill -9 broker %d" % victim.id)
            time.sleep(1.0)
            victim.start()

    nem = threading.Thread(target=nemesis, daemon=True)
    nem.start()
    got = {q: [] for q in range(PARTITIONS)}
    reader = Consumer({"bootstrap.servers": tcluster.bootstrap, "group.id": unique("eos-r-", request),
                       "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                       "enable.auto.commit": False, "log_level": 0})
    try:
        reader.assign([TopicPartition(dst, q, 0) for q in range(PARTITIONS)])
        deadline = time.time() + max(180, RECORDS / RATE * 3)
        total = 0
        while total < RECORDS and time.time() < deadline:
            for m in reader.consume(1000, 0.5):
                if m.error() is None:
                    got[m.partition()].append(m.value())
                    total += 1
        # Faults over; whatever is still in flight must settle without duplicates.
        stop.set()
        nem.join(30)
        settle = time.time() + 10
        while time.time() < settle:
            for m in reader.consume(1000, 0.5):
                if m.error() is None:
                    got[m.partition()].append(m.value())
    finally:
        stop.set()
        sup.close()
        reader.close()
        for b in tcluster.brokers:
            if not b.alive():
                b.start()
    feeder.join(30)
    assert fed == [0], "input not all written: %s" % fed
    print("eos copy: %d records, %d processor starts, faults: %s" % (
        RECORDS, sup.starts, ", ".join(history)))
    assert sum(1 for h in history if "processor" in h) >= 2
    assert sum(1 for h in history if "broker" in h) >= 2
    for q in range(PARTITIONS):
        want = [b"%d-%07d" % (q, i) for i in range(len(range(q, RECORDS, PARTITIONS)))]
        have = got[q]
        dup = len(have) - len(set(have))
        assert dup == 0, "partition %d: %d duplicates" % (q, dup)
        missing = sorted(set(want) - set(have))
        assert not missing, "partition %d: %d lost, e.g. %s" % (q, len(missing), missing[:3])
        assert have == want, "partition %d: out of order" % q
