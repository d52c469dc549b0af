#!/usr/bin/env python3
"""Fault-injection checker for replication (issue 5): N fjord-brokers + one
fjord-coord, an idempotent confluent-kafka producer (acks=all) writing numbered
messages to an RF=3, min.insync.replicas=2 topic while a nemesis kills -9,
SIGSTOPs/SIGCONTs and restarts random brokers (leader and controller included:
the choice ignores roles). Afterwards everything is read back and compared with
what was acknowledged.

Reports (all must be 0 except the windows):
  lost        acknowledged but not in the log
  changed     acknowledged offset holds another message (or the message sits
              at another offset): a divergent acknowledgement
  duplicates  a message read more than once
  reordered   per partition, a message with a lower number after a higher one
  divergent   an offset read through one leader and then, after that leader was
              killed, through another holds different messages
  longest unavailability window: the longest time without any acknowledgement
              while the nemesis ran

Usable from pytest (run()) and from the command line / scripts/chaos.sh:
  PYTHONPATH=tests/python python3 tests/python/replication/checker.py --duration 1800
"""
import argparse
import itertools
import random
import sys
import threading
import time

from fjordtest import cleanup
from fjordtest.kafka import create_topic, describe
from fjordtest.nemesis import Nemesis, longest_gap, make_log, print_report
from replication.replharness import start_cluster, wait_until

log = make_log("checker")


class Workload:
    """One idempotent producer thread writing m<partition>-<seq> at a steady rate."""

    def __init__(self, bootstrap, topic, partitions, rate):
        from confluent_kafka import Producer
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.acked = {}            # value -> (partition, offset)
        self.ack_times = []
        self.errors = []
        self.sent = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                           "enable.idempotence": True, "linger.ms": 2,
                           "message.timeout.ms": 300000, "request.timeout.ms": 10000,
                           "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 1000,
                           "topic.metadata.refresh.interval.ms": 1000,
                           "log_level": 3})
        self.t = threading.Thread(target=self._run, daemon=True)

    def _dr(self, err, msg):
        now = time.time()
        with self.lock:
            if err is None:
                self.acked[msg.value()] = (msg.partition(), msg.offset())
                self.ack_times.append(now)
            else:
                self.errors.append(str(err))

    def _run(self):
        seq = [0] * self.partitions
        interval = 1.0 / self.rate
        nxt = time.time()
        while not self.stop.is_set():
            part = self.sent % self.partitions
            v = b"m%d-%09d" % (part, seq[part])
            try:
                self.p.produce(self.topic, value=v, partition=part, on_delivery=self._dr)
                seq[part] += 1
                self.sent += 1
            except BufferError:
                pass
            self.p.poll(0)
            nxt += interval
            d = nxt - time.time()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.time()

    def start(self):
        self.t.start()

    def finish(self, timeout):
        self.stop.set()
        self.t.join(10)
        left = self.p.flush(timeout)
        return left


def nemesis(cluster, interval, rng, eio=False):
    """Every `interval` seconds: heal what the last round broke, then break one
    random broker (kill -9, SIGSTOP, or a clean restart; with eio, every other
    round fails its disk writes and syncs with EIO instead). One broker at most
    is down at a time, so with RF=3 and min.insync.replicas=2 the topic stays
    writable."""
    rounds = itertools.count()

    def pick(rng):
        b = rng.choice(cluster.brokers)
        what = rng.choice(["kill", "stop", "restart"])
        if eio and next(rounds) % 2 == 1:       # every other round
            return b, "eio", "eio"
        if what == "kill":
            return b, "kill", "kill"
        if what == "stop":
            return b, "pause", "stop"
        return b, "restart", "restarted"

    return Nemesis(interval, rng, pick, lambda b: b.id, log, "broker")


def read_all(bootstrap, topic, partitions, timeout=120):
    """Every message of every partition up to its high watermark: {p: [(offset, value)]}."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "checker-%d" % random.randrange(1 << 30),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True, "log_level": 3})
    try:
        ends = {}
        for p in range(partitions):
            ends[p] = wait_until(lambda: c.get_watermark_offsets(TopicPartition(topic, p), 5)[1] + 1,
                                 60, "watermarks of %s-%d" % (topic, p)) - 1
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got = {p: [] for p in range(partitions)}
        done = {p for p in range(partitions) if ends[p] == 0}
        deadline = time.time() + timeout
        while len(done) < partitions and time.time() < deadline:
            for m in c.consume(10000, 1.0):
                if m.error():
                    if m.error().code() == -191:  # partition EOF
                        if m.offset() >= ends[m.partition()]:
                            done.add(m.partition())
                        continue
                    raise AssertionError("consume error: %s" % m.error())
                got[m.partition()].append((m.offset(), m.value()))
                if m.offset() + 1 >= ends[m.partition()]:
                    done.add(m.partition())
        if len(done) < partitions:
            raise AssertionError("could not read every partition to its end: %r of %r" % (
                {p: len(v) for p, v in got.items()}, ends))
        return got
    finally:
        c.close()


def leaders(bootstrap, topic):
    d, _ = describe(bootstrap, topic)
    return {p["partition"]: p for p in d[0]["partitions"]}


def wait_isr_full(cluster, topic, rf, timeout=60):
    def full():
        ps = leaders(cluster.bootstrap, topic)
        return all(p["leader"] >= 0 and len(p["isr"]) == rf for p in ps.values()) and ps
    return wait_until(full, timeout, "every partition's ISR back to %d" % rf, interval=0.5)


def analyse(acked, got):
    res = {"lost": 0, "changed": 0, "duplicates": 0, "reordered": 0}
    where = {}
    examples = []
    for p, msgs in got.items():
        last_seq = -1
        for off, v in msgs:
            if v in where:
                res["duplicates"] += 1
                examples.append(("duplicate", v))
            where[v] = (p, off)
            seq = int(v.split(b"-")[1])
            if seq < last_seq:
                res["reordered"] += 1
                examples.append(("reordered", p, off, v))
            last_seq = max(last_seq, seq)
    for v, po in acked.items():
        if v not in where:
            res["lost"] += 1
            examples.append(("lost", v, po))
        elif where[v] != po:
            res["changed"] += 1
            examples.append(("changed", v, po, where[v]))
    return res, examples[:10]


def compare(a, b):
    """Messages at the same offsets differing between two reads (prefix of a)."""
    bad = 0
    for p, msgs in a.items():
        other = dict(b.get(p, []))
        for off, v in msgs:
            if off in other and other[off] != v:
                bad += 1
            elif off not in other:
                bad += 1
    return bad


def run(cluster, duration=60.0, interval=5.0, partitions=3, rate=300, seed=None,
        verify_kills=1, topic="chaos", eio=False):
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    log("seed %d, %d brokers, %.0fs, nemesis every %.1fs" % (seed, len(cluster.brokers), duration, interval))
    create_topic(cluster.bootstrap, topic, partitions, 3, {"min.insync.replicas": "2"})
    wait_isr_full(cluster, topic, 3)
    w = Workload(cluster.bootstrap, topic, partitions, rate)
    w.start()
    time.sleep(2)
    nem = nemesis(cluster, interval, rng, eio)
    t0, t1 = nem.run_for(duration)
    log("nemesis done; healing and draining the producer")
    left = w.finish(300)
    gap, gap_at = longest_gap(w.ack_times, t0, t1)
    wait_isr_full(cluster, topic, 3, 120)
    got = read_all(cluster.bootstrap, topic, partitions)
    res, examples = analyse(w.acked, got)
    divergent = 0
    rounds = []
    for _ in range(verify_kills):
        ls = leaders(cluster.bootstrap, topic)
        victim_id = rng.choice(sorted({p["leader"] for p in ls.values()}))
        victim = cluster.broker(victim_id)
        victim.kill9()
        wait_until(lambda: all(p["leader"] not in (-1, victim_id)
                               for p in leaders(cluster.bootstrap, topic).values()),
                   60, "leaders off broker %d" % victim_id, interval=0.5)
        again = read_all(cluster.bootstrap, topic, partitions)
        d = compare(got, again)
        divergent += d
        rounds.append((victim_id, d))
        victim.start()
        wait_isr_full(cluster, topic, 3, 120)
    report = {
        "seed": seed,
        "duration_s": round(t1 - t0, 1),
        "sent": w.sent,
        "acknowledged": len(w.acked),
        "unacknowledged_at_end": left,
        "producer_errors": len(w.errors),
        "read": sum(len(v) for v in got.values()),
        "lost": res["lost"],
        "changed": res["changed"],
        "duplicates": res["duplicates"],
        "reordered": res["reordered"],
        "divergent": divergent,
        "divergence_checks": rounds,
        "longest_unavailability_s": round(gap, 2),
        "longest_unavailability_at_s": round(gap_at - t0, 1),
        "nemesis": [(round(t - t0, 1), a, b, x) for t, a, b, x in nem.history],
        "examples": [repr(e) for e in examples],
    }
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--interval", type=float, default=5)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rate", type=int, default=300, help="messages per second")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--verify-kills", type=int, default=3)
    ap.add_argument("--broker-config", action="append", default=[], metavar="KEY=VALUE",
                    help="server.properties override for every broker (repeatable), e.g. "
                         "zookeeper.session.timeout.ms=18000 to measure failover with Kafka's "
                         "default instead of the harness's 4000")
    ap.add_argument("--eio", action="store_true",
                    help="every other nemesis round fails a broker's disk writes and syncs with EIO "
                         "(the fjordfault LD_PRELOAD shim) until the next round")
    args = ap.parse_args()
    c = start_cluster(3, dict(kv.split("=", 1) for kv in args.broker_config), eio=args.eio)
    try:
        r = run(c, args.duration, args.interval, args.partitions, args.rate, args.seed,
                args.verify_kills, eio=args.eio)
    finally:
        if cleanup.keep_tmp():
            log("logs kept in %s" % c.dir)
        c.close()
    print_report(r)
    bad = r["lost"] + r["changed"] + r["duplicates"] + r["reordered"] + r["divergent"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
