"""The payment-alerts workload, shared by tests/python/streams and
scripts/bench-streams.sh: a deterministic generator of payments over simulated UTC
days, the expected alerts computed from it independently of the example (plain
counting), a runner for the payment-alerts binary, and readers of its topics.

Run as a program (the benchmark does): `python3 -m streams.payments produce ...`.
"""
import argparse
import datetime
import json
import os
import random
import subprocess
import sys
import time

DAY_MS = 86_400_000
# Simulated day 0: the UTC midnight three days ago, so that the example's outputs (stamped
# with event time) are inside the broker's default 7-day retention.
D0 = (int(time.time() * 1000) // DAY_MS - 3) * DAY_MS


def day_of(ts):
    return datetime.datetime.fromtimestamp(ts // 1000, datetime.timezone.utc).strftime("%Y-%m-%d")


def generate(n, customers, days=3, seed=1, jitter_ms=600_000):
    """n payments of `customers` customers over `days` days, as (key, value bytes, ts)
    in roughly increasing ts (each shifted by up to jitter_ms: out of order, within any
    grace larger than that). Customers' activity differs: a quarter pay rarely (never
    reaching 11 a day on average)."""
    rnd = random.Random(seed)
    weights = [(0.05 if i % 4 == 0 else 1.0) for i in range(customers)]
    ids = ["c%05d" % i for i in range(customers)]
    chosen = rnd.choices(range(customers), weights=weights, k=n)
    span = days * DAY_MS
    out = []
    for i, c in enumerate(chosen):
        base = D0 + (i * span) // n
        ts = max(D0, min(D0 + span - 1, base + rnd.randint(-jitter_ms, jitter_ms)))
        p = {"customer_id": ids[c], "amount": round(rnd.uniform(1, 500), 2), "ts": ts}
        out.append((ids[c].encode(), json.dumps(p).encode(), ts))
    return out


def expected_alerts(records, threshold=11):
    """{(customer_id, day)} for every customer-day with at least `threshold` valid payments."""
    counts = {}
    for _, v, _ in records:
        try:
            p = json.loads(v)
            key = (p["customer_id"], day_of(int(p["ts"])))
        except (ValueError, KeyError, TypeError):
            continue
        counts[key] = counts.get(key, 0) + 1
    return {k for k, c in counts.items() if c >= threshold}


def produce(bootstrap, topic, records, partitions=None):
    """Sends the records (keyed by customer); returns how many. Idempotent, acks=all."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "linger.ms": 20, "batch.num.messages": 10000,
                  "queue.buffering.max.messages": 1000000})
    errors = []

    def cb(err, _msg):
        if err is not None:
            errors.append(err)

    for k, v, _ts in records:
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(60)
    assert left == 0 and not errors, "produce failed: %d left, %r" % (left, errors[:3])
    return len(records)


def read_all(bootstrap, topic, isolation="read_committed", timeout=30.0):
    """Every record of every partition of `topic` up to its end: [(key, value)]."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-%d-%f" % (os.getpid(), time.time()),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": isolation, "enable.partition.eof": True})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = list(md.topics[topic].partitions)
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        done, out = set(), []
        deadline = time.time() + timeout
        while len(done) < len(parts) and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    done.add(m.partition())
                    continue
                raise AssertionError("read %s: %s" % (topic, m.error()))
            out.append((m.key(), m.value()))
        assert len(done) == len(parts), "did not reach the end of %s" % topic
        return out
    finally:
        c.close()


def alerts_of(records):
    """[(customer_id, day, count)] of payment-alerts records."""
    out = []
    for _k, v in records:
        a = json.loads(v)
        out.append((a["customer_id"], a["day"], a["count"]))
    return out


def transactions_supported(bootstrap):
    """True when the broker accepts InitProducerId with a transactional.id."""
    from confluent_kafka import KafkaException, Producer
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "probe-%d" % os.getpid(),
                  "transaction.timeout.ms": 10000})
    try:
        p.init_transactions(15)
        return True
    except KafkaException:
        return False
    finally:
        del p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["produce", "restore-keys"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="payments")
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--days", type=int, default=3)
    a = ap.parse_args()
    t0 = time.time()
    if a.cmd == "produce":
        recs = generate(a.n, a.customers, a.days)
    else:
        # One payment per customer: N distinct keys in the count store (a restore benchmark).
        recs = [(("r%07d" % i).encode(),
                 json.dumps({"customer_id": "r%07d" % i, "amount": 1.0, "ts": D0 + i % DAY_MS}).encode(),
                 D0) for i in range(a.n)]
    produce(a.bootstrap, a.topic, recs)
    print("produced %d records to %s in %.1f s" % (len(recs), a.topic, time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
