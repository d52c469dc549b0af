"""Joining a group: consumers started together share the first generation (all
assigned within 1 s with group.initial.rebalance.delay.ms=0), and no join is
lost in the join/sync state machine: consumers join and leave in random order
and every change completes a generation that assigns each partition to exactly
one live member.

The stress test runs FJORD_GROUP_STRESS_SECS seconds (default 20);
scripts/group-stress.sh runs it for longer (default 10 minutes)."""
import os
import random
import statistics
import threading
import time

import pytest
from confluent_kafka import Consumer

from fjordtest.kafka import create_topic
from fjordtest.names import unique
from groups.gutil import Member, consumer_conf

# Timing assertions: scripts/test.sh runs this module alone (not beside other workers).
pytestmark = pytest.mark.serial

PARTITIONS = 6
STRESS_SECS = float(os.environ.get("FJORD_GROUP_STRESS_SECS", "20"))


def start_together(bootstrap, group, topic, n):
    """Seconds from a common start until n consumers hold every partition once
    with none left empty (None if not within 20 s)."""
    go = threading.Event()
    held = {}
    lock = threading.Lock()
    done = threading.Event()
    stop = threading.Event()
    t0 = [0.0]
    result = [None]

    def run(i):
        # Kafka's default heartbeat interval (3 s): joining must not wait for it.
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})

        def on_assign(_c, ps):
            with lock:
                held[i] = sorted(p.partition for p in ps)
                every = sorted(p for v in held.values() for p in v)
                if (result[0] is None and len(held) == n and all(held.values())
                        and every == list(range(PARTITIONS))):
                    result[0] = time.time() - t0[0]
                    done.set()

        def on_revoke(_c, _ps):
            with lock:
                held[i] = []

        go.wait()
        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        while not stop.is_set():
            c.poll(0.05)
        c.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    t0[0] = time.time()
    go.set()
    done.wait(20)
    stop.set()
    for t in threads:
        t.join(30)
    return result[0]


def test_three_consumers_started_together_assigned_within_a_second(gcluster, topic_name, request):
    create_topic(gcluster.bootstrap, topic_name, PARTITIONS)
    times = [start_together(gcluster.bootstrap, unique("gj%d" % i, request, 24), topic_name, 3)
             for i in range(5)]
    assert all(t is not None for t in times), times
    assert statistics.median(times) <= 1.0, times


def balanced(members, timeout):
    """Wait until every live member holds partitions and together they hold each
    partition exactly once; returns the seconds it took or raises."""
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        a = [m.parts() for m in members]
        last = a
        every = sorted(p for s in a for (_, p) in s)
        if every == list(range(PARTITIONS)) and all(a) and all(m.ready.is_set() for m in members):
            return time.time() - t0
        time.sleep(0.05)
    raise AssertionError("group not rebalanced after %ss: %r" % (timeout, last))


def test_random_joins_and_leaves_each_complete_a_generation(gcluster, topic_name, group_name):
    """Random order, sometimes two changes back to back (a join right after the
    previous generation completed): after each change the group must settle with
    every live member assigned. A lost join shows as a member never assigned."""
    create_topic(gcluster.bootstrap, topic_name, PARTITIONS)
    rnd = random.Random(os.environ.get("FJORD_GROUP_STRESS_SEED", str(time.time())))
    live = []
    steps, slowest = 0, 0.0
    deadline = time.time() + STRESS_SECS
    try:
        while time.time() < deadline or not live:
            for _ in range(rnd.choice([1, 1, 2])):
                if len(live) < 2 or (len(live) < PARTITIONS and rnd.random() < 0.6):
                    m = Member(gcluster.bootstrap, group_name, topic_name)
                    m.start()
                    live.append(m)
                else:
                    m = live.pop(rnd.randrange(len(live)))
                    m.stop()
                time.sleep(rnd.choice([0, 0.05, 0.2]))
            slowest = max(slowest, balanced(live, 30))
            steps += 1
    finally:
        for m in live:
            m.stop()
    print("group stress: %d changes settled, slowest %.2f s" % (steps, slowest))
    assert steps >= 3
