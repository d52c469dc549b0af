"""The cooperative-sticky assignor (incremental rebalances) when a subscribed
topic is deleted: the consumer's close() returns promptly, and a consumer of
two topics keeps the surviving one's partitions."""
import threading
import time

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from fjordtest.kafka import create_topic
from groups.gutil import consumer_conf, produce

# Timing assertions: scripts/test.sh runs this module alone (not beside other workers).
pytestmark = pytest.mark.serial


def close_within(c, seconds):
    """Seconds close() took, or None if it had not returned after `seconds`."""
    done = []
    t0 = time.time()
    th = threading.Thread(target=lambda: (c.close(), done.append(time.time() - t0)), daemon=True)
    th.start()
    th.join(seconds)
    return done[0] if done else None


def cooperative_consumer(gcluster, group, topics):
    """A cooperative-sticky consumer of `topics`, polled until it has read a
    message of each."""
    c = Consumer(consumer_conf(gcluster.bootstrap, group,
                               **{"partition.assignment.strategy": "cooperative-sticky"}))
    c.subscribe(topics)
    seen = set()
    deadline = time.time() + 30
    while seen != set(topics) and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            seen.add(m.topic())
    assert seen == set(topics)
    return c


def delete_topic_and_poll(gcluster, c, topic):
    """Delete `topic`, then keep polling past a metadata refresh (2 s in
    consumer_conf): the client notices the topic is gone and rebalances
    incrementally."""
    a = AdminClient({"bootstrap.servers": gcluster.bootstrap})
    for f in a.delete_topics([topic], operation_timeout=30).values():
        f.result(30)
    deadline = time.time() + 6
    while time.time() < deadline:
        c.poll(0.2)


def assert_closes_promptly(c):
    took = close_within(c, 10)
    assert took is not None, "close() still blocked after 10 s"
    assert took < 5, "close() took %.1f s" % took


def test_close_returns_after_subscribed_topic_deleted(gcluster, topic_name, group_name):
    other = topic_name + "-keep"
    for t in (topic_name, other):
        create_topic(gcluster.bootstrap, t, 3)
        produce(gcluster.bootstrap, t, 30, partitions=3)
    c = cooperative_consumer(gcluster, group_name, [topic_name, other])
    delete_topic_and_poll(gcluster, c, topic_name)
    left = {(p.topic, p.partition) for p in c.assignment()}
    assert left == {(other, p) for p in range(3)}, left
    assert_closes_promptly(c)


def test_close_returns_when_only_topic_deleted(gcluster, topic_name, group_name):
    create_topic(gcluster.bootstrap, topic_name, 3)
    produce(gcluster.bootstrap, topic_name, 30, partitions=3)
    c = cooperative_consumer(gcluster, group_name, [topic_name])
    delete_topic_and_poll(gcluster, c, topic_name)
    assert_closes_promptly(c)
