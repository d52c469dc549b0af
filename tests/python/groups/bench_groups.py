"""Group throughput probe (a program, not a test): N messages on a 6-partition
topic; (1) 3 confluent-kafka consumers in one group consume everything
(msgs/s); (2) one consumer commits synchronously after every poll (commits/s).
Usage: python3 bench_groups.py BOOTSTRAP [messages]"""
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer

from gutil import create_topic, produce


def main():
    bs = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300000
    topic = "bench-" + uuid.uuid4().hex[:8]
    create_topic(bs, topic, 6)
    t0 = time.time()
    produce(bs, topic, n)
    print("produced %d in %.2fs" % (n, time.time() - t0), flush=True)
    group = "bench-g-" + uuid.uuid4().hex[:6]
    counts = [0, 0, 0]
    done = threading.Event()
    start = [None]

    def run(i):
        c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": True, "session.timeout.ms": 6000,
                      "heartbeat.interval.ms": 500})
        c.subscribe([topic])
        while not done.is_set():
            ms = c.consume(10000, 0.5)
            for m in ms:
                if m.error() is None:
                    if start[0] is None:
                        start[0] = time.time()
                    counts[i] += 1
            if sum(counts) >= n:
                done.set()
        c.close()

    th = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    t1 = time.time()
    for t in th:
        t.start()
    for t in th:
        t.join(300)
    end = time.time()
    print("group-consume consumers=3 partitions=6 msgs=%d secs=%.2f msgs_per_s=%.0f (from first msg: %.0f) split=%s"
          % (sum(counts), end - t1, sum(counts) / (end - t1), sum(counts) / (end - (start[0] or t1)), counts), flush=True)
    # Commit-heavy: synchronous commit after every poll.
    group2 = "bench-c-" + uuid.uuid4().hex[:6]
    c = Consumer({"bootstrap.servers": bs, "group.id": group2, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000})
    c.subscribe([topic])
    commits = 0
    got = 0
    t2 = None
    deadline = time.time() + 60
    while time.time() < deadline and commits < 20000:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        if t2 is None:
            t2 = time.time()
        got += 1
        c.commit(message=m, asynchronous=False)
        commits += 1
    secs = time.time() - (t2 or time.time())
    c.close()
    print("commit-heavy commits=%d secs=%.2f commits_per_s=%.0f" % (commits, secs, commits / max(secs, 1e-9)), flush=True)


if __name__ == "__main__":
    main()
