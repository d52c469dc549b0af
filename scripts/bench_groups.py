#!/usr/bin/env python3
"""Helpers for scripts/bench-groups.sh (a program, not a test).

  bench_groups.py produce BOOTSTRAP TOPIC N
      N messages of 100 B, spread evenly over the topic's 6 partitions
      (partition = i % 6), so that 3 group members own exactly N/3 each.
  bench_groups.py commit-heavy BOOTSTRAP TOPIC N SECONDS BATCH [sync|async]
      3 confluent-kafka consumers in one new group, each polling up to BATCH
      messages and committing after every poll (sync: waiting for each commit;
      async: pipelined, at most 30,000 per consumer, counted when acknowledged), until the N
      messages are consumed or SECONDS pass. Prints one line:
      commit-heavy mode=.. consumers=3 batch=B msgs=.. commits=.. secs=.. msgs_per_s=.. commits_per_s=..
  bench_groups.py join BOOTSTRAP TOPIC PARTITIONS N ROUNDS
      Group join time: N confluent-kafka consumer processes (range assignor, Kafka's
      default timeouts) subscribe to TOPIC in a new group at the same moment; the time
      from that moment until every member holds partitions and together they hold each
      of the PARTITIONS exactly once (the time to a generation including all N).
      ROUNDS rounds, a new group each; prints one line:
      group-join consumers=N rounds=R median_s=.. min_s=.. max_s=..
"""
import multiprocessing as mp
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer


# Async runs stop issuing after this many commits per consumer: the backlog a
# faster client builds delays the heartbeats queued behind it on the
# coordinator connection (requests on a connection are answered in order).
ASYNC_MAX = 30000


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


def member(bs, topic, group, seconds, batch, mode, ready, go, out):
    acked = {"ok": 0, "failed": 0, "last": None}

    def on_commit(err, _parts):
        acked["failed" if err else "ok"] += 1
        acked["last"] = time.time()

    c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 30000,
                  "heartbeat.interval.ms": 1000, "fetch.wait.max.ms": 50, "on_commit": on_commit})
    assigned = []

    def on_assign(cons, ps):
        # Hold still until every member is in: paused partitions fetch nothing,
        # but polling goes on, so the member takes part in rebalances.
        cons.assign(ps)
        if not go.is_set():
            cons.pause(ps)
        assigned.append(len(ps))

    c.subscribe([topic], on_assign=on_assign)
    while not assigned:
        c.poll(0.1)
    ready.put(1)
    while not go.is_set():
        c.poll(0.1)
    c.resume(c.assignment())
    msgs = issued = 0
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
        if mode != "sync" and issued >= ASYNC_MAX:
            break
        c.commit(asynchronous=(mode != "sync"))
        issued += 1
        last = time.time()
    if mode != "sync":
        # Pipelined commits: count them once acknowledged.
        until = time.time() + 30
        while time.time() < until and acked["ok"] + acked["failed"] < issued:
            c.poll(0.05)
        last = acked["last"] or last
    commits = acked["ok"] if mode != "sync" else issued
    c.close()
    out.put((msgs, commits, (last - first) if first and last else 0.0))


def commit_heavy(bs, topic, n, seconds, batch, mode):
    group = "bench-commit-" + uuid.uuid4().hex[:8]
    ready, out, go = mp.Queue(), mp.Queue(), mp.Event()
    procs = [mp.Process(target=member, args=(bs, topic, group, seconds, batch, mode, ready, go, out))
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
    print("commit-heavy mode=%s consumers=3 partitions=6 batch=%d msgs=%d commits=%d secs=%.3f "
          "msgs_per_s=%.1f commits_per_s=%.1f" % (mode, batch, msgs, commits, secs, msgs / secs, commits / secs),
          flush=True)


def joiner(bs, topic, group, go, events, stop):
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    me = mp.current_process().name

    def on_assign(cons, ps):
        events.put((me, time.time(), sorted(p.partition for p in ps)))

    def on_revoke(cons, ps):
        events.put((me, time.time(), []))

    go.wait()
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    while not stop.is_set():
        c.poll(0.05)
    c.close()


def join_round(bs, topic, partitions, n):
    """Seconds from the common start until the group first covers every partition
    once with all n members holding some (None if not within 60 s)."""
    group = "bench-join-" + uuid.uuid4().hex[:8]
    go, stop, events = mp.Event(), mp.Event(), mp.Queue()
    procs = [mp.Process(target=joiner, args=(bs, topic, group, go, events, stop), name="m%d" % i)
             for i in range(n)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every process is up and waiting on `go`
    t0 = time.time()
    go.set()
    held, done = {}, None
    while done is None and time.time() < t0 + 60:
        try:
            who, at, parts = events.get(timeout=1)
        except Exception:  # noqa: BLE001 - queue.Empty: keep waiting
            continue
        held[who] = parts
        every = [p for ps in held.values() for p in ps]
        if (len(held) == n and all(held.values()) and sorted(every) == list(range(partitions))):
            done = at - t0
    stop.set()
    for p in procs:
        p.join(30)
    return done


def join(bs, topic, partitions, n, rounds):
    times = []
    for _ in range(rounds):
        t = join_round(bs, topic, partitions, n)
        times.append(t if t is not None else float("inf"))
    times.sort()
    print("group-join consumers=%d partitions=%d rounds=%d median_s=%.3f min_s=%.3f max_s=%.3f"
          % (n, partitions, rounds, times[len(times) // 2], times[0], times[-1]), flush=True)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) >= 7 and sys.argv[1] == "commit-heavy":
        mode = sys.argv[7] if len(sys.argv) > 7 else "sync"
        commit_heavy(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), mode)
    elif len(sys.argv) >= 7 and sys.argv[1] == "join":
        join(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
