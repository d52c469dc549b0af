#!/usr/bin/env python3
"""Helpers for scripts/bench-groups.sh (a program, not a test).

  bench_groups.py produce BOOTSTRAP TOPIC N
      N messages of 100 B, spread evenly over the topic's 6 partitions
      (partition = i % 6), so that 3 group members own exactly N/3 each.
  bench_groups.py commit-heavy BOOTSTRAP TOPIC N SECONDS BATCH
      3 confluent-kafka consumers in one new group, each polling up to BATCH
      messages and committing synchronously after every poll, until the N
      messages are consumed or SECONDS pass. Prints one line:
      commit-heavy consumers=3 batch=B msgs=.. commits=.. secs=.. msgs_per_s=.. commits_per_s=..
"""
import multiprocessing as mp
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer


def produce(bs, topic, n):
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "batch.size": 1000000,
                  "queue.buffering.max.messages": 1000000})
    payload = b"x" * 100
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=payload, partition=i % 6)
                break
            except BufferError:
                p.poll(0.05)
        if i % 20000 == 0:
            p.poll(0)
    assert p.flush(120) == 0, "messages left unflushed"


def member(bs, topic, group, seconds, batch, ready, go, out):
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 1000, "fetch.wait.max.ms": 50})
    assigned = []
    c.subscribe([topic], on_assign=lambda _c, ps: assigned.append(len(ps)))
    while not assigned:
        c.poll(0.1)
    ready.put(1)
    go.wait()
    msgs = commits = 0
    first = last = None
    deadline = time.time() + seconds
    idle_since = time.time()
    while time.time() < deadline and time.time() - idle_since < 3:
        ms = c.consume(batch, 0.5)
        ms = [m for m in ms if m.error() is None]
        if not ms:
            continue
        now = time.time()
        first = first or now
        idle_since = now
        msgs += len(ms)
        c.commit(asynchronous=False)
        commits += 1
        last = time.time()
    c.close()
    out.put((msgs, commits, (last - first) if first and last else 0.0))


def commit_heavy(bs, topic, n, seconds, batch):
    group = "bench-commit-" + uuid.uuid4().hex[:8]
    ready, out, go = mp.Queue(), mp.Queue(), mp.Event()
    procs = [mp.Process(target=member, args=(bs, topic, group, seconds, batch, ready, go, out))
             for _ in range(3)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    time.sleep(1.0)  # let the last rebalance settle: every member holds its 2 partitions
    go.set()
    res = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    msgs = sum(r[0] for r in res)
    commits = sum(r[1] for r in res)
    secs = max(r[2] for r in res) or 1e-9
    print("commit-heavy consumers=3 partitions=6 batch=%d msgs=%d commits=%d secs=%.3f "
          "msgs_per_s=%.1f commits_per_s=%.1f" % (batch, msgs, commits, secs, msgs / secs, commits / secs),
          flush=True)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) >= 7 and sys.argv[1] == "commit-heavy":
        commit_heavy(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
