"""Consumer groups with confluent-kafka (librdkafka 2.16): balanced assignment,
idle members, rebalance on close and on kill -9, exactly-once consumption with
synchronous commits, pub-sub vs queue."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytest.importorskip("confluent_kafka")
from fjordtest.kafka import create_topic  # noqa: E402
from groups.gutil import Member, committed, members, produce, wait_balanced  # noqa: E402

# Timing assertions: scripts/test.sh runs this module alone (not beside other workers).
pytestmark = pytest.mark.serial


def test_three_consumers_six_partitions_get_two_each(gcluster, topic_name, group_name):
    create_topic(gcluster.bootstrap, topic_name, 6)
    with members(3, gcluster.bootstrap, group_name, topic_name) as ms:
        a = wait_balanced(ms, 6, sizes=[2, 2, 2])
        assert all(len(x) == 2 for x in a)


def test_eight_consumers_six_busy_two_idle(gcluster, topic_name, group_name):
    create_topic(gcluster.bootstrap, topic_name, 6)
    with members(8, gcluster.bootstrap, group_name, topic_name) as ms:
        wait_balanced(ms, 6, sizes=[0, 0, 1, 1, 1, 1, 1, 1])


def test_closing_a_member_moves_its_partitions(gcluster, topic_name, group_name):
    create_topic(gcluster.bootstrap, topic_name, 6)
    with members(3, gcluster.bootstrap, group_name, topic_name) as ms:
        wait_balanced(ms, 6, sizes=[2, 2, 2])
        gone = ms.pop()
        t0 = time.time()
        gone.stop()  # close() sends LeaveGroup
        wait_balanced(ms, 6, sizes=[3, 3], timeout=20)
        # A LeaveGroup rebalances at once, not after session.timeout.ms.
        assert time.time() - t0 < 6, time.time() - t0


CHILD = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    def on_assign(c, parts):
        print("ASSIGNED %d" % len(parts), flush=True)
    c.subscribe([sys.argv[3]], on_assign=on_assign)
    while True:
        c.poll(0.2)
""")


def test_kill9_member_moves_partitions_within_session_timeout(gcluster, topic_name, group_name, tmp_path):
    create_topic(gcluster.bootstrap, topic_name, 6)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), gcluster.bootstrap, group_name, topic_name],
                             stdout=subprocess.PIPE, text=True)
    ms = [Member(gcluster.bootstrap, group_name, topic_name)]
    try:
        ms[0].start()
        wait_balanced(ms, 3, sizes=[3], timeout=60)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        t0 = time.time()
        wait_balanced(ms, 6, sizes=[6], timeout=30)
        took = time.time() - t0
        # session.timeout.ms is 6 s; allow the rebalance itself on top.
        assert took < 6 + 4, took
    finally:
        if child.poll() is None:
            child.kill()
        for m in ms:
            m.stop()


def test_exactly_once_with_synchronous_commits(gcluster, topic_name, group_name):
    n = 3000
    create_topic(gcluster.bootstrap, topic_name, 6)
    produce(gcluster.bootstrap, topic_name, n)
    a = Member(gcluster.bootstrap, group_name, topic_name, commit_sync=True)
    a.start()
    ms = [a]
    try:
        while len(a.values) < 300:
            time.sleep(0.05)
        for _ in range(2):  # members join mid-stream
            m = Member(gcluster.bootstrap, group_name, topic_name, commit_sync=True)
            m.start()
            ms.append(m)
            time.sleep(1.0)
        ms[1].stop()  # and one leaves
        deadline = time.time() + 90
        while sum(len(m.values) for m in ms) < n and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        allv = [v for m in ms for v in m.values]
        assert len(allv) == n, (len(allv), n)
        assert len(set(allv)) == n
    finally:
        for m in ms:
            m.stop()
    offs = committed(gcluster.bootstrap, group_name, topic_name)
    assert sum(offs.values()) == n, offs


def test_pubsub_two_groups_each_get_everything_queue_shares(gcluster, topic_name, group_name):
    n = 600
    create_topic(gcluster.bootstrap, topic_name, 6)
    with members(2, gcluster.bootstrap, group_name + "-a", topic_name, commit_sync=True) as g1, \
            members(1, gcluster.bootstrap, group_name + "-b", topic_name) as g2:
        # Produce once the queue group has formed, so that it is the group that
        # shares the messages (not one member that got there first).
        wait_balanced(g1, 6, sizes=[3, 3])
        wait_balanced(g2, 6, sizes=[6])
        produce(gcluster.bootstrap, topic_name, n)
        deadline = time.time() + 60
        while time.time() < deadline and (sum(len(m.values) for m in g1) < n or len(g2[0].values) < n):
            time.sleep(0.2)
        time.sleep(0.5)
        a = [v for m in g1 for v in m.values]
        assert sorted(a) == sorted(set(a)) and len(a) == n       # queue: shared, once each
        assert all(len(m.values) > 0 for m in g1)
        assert set(g2[0].values) == set(a)                       # pub-sub: everything again
