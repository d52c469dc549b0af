"""The cooperative-sticky assignor (incremental rebalances) when a subscribed
topic is deleted: the consumer's close() returns promptly, and a consumer of
two topics keeps the surviving one's partitions."""
import threading
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from fjordtest.kafka import create_topic
from groups.gutil import consumer_conf, produce


def close_within(c, seconds):
    """Seconds close() took, or None if it had not returned after `seconds`."""
    done = []
    t0 = time.time()
    th = threading.Thread(target=lambda: (c.close(), done.append(time.time() - t0)), daemon=True)
    th.start()
    th.join(seconds)
    return done[0] if done else None


def test_close_returns_after_subscribed_topic_deleted(gcluster, topic_name, group_name):
    other = topic_name + "-keep"
    create_topic(gcluster.bootstrap, topic_name, 3)
    create_topic(gcluster.bootstrap, other, 3)
    produce(gcluster.bootstrap, topic_name, 30, partitions=3)
    produce(gcluster.bootstrap, other, 30, partitions=3)
    c = Consumer(consumer_conf(gcluster.bootstrap, group_name,
                               **{"partition.assignment.strategy": "cooperative-sticky"}))
    c.subscribe([topic_name, other])
    seen = set()
    deadline = time.time() + 30
    while len(seen) < 2 and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            seen.add(m.topic())
    assert seen == {topic_name, other}
    a = AdminClient({"bootstrap.servers": gcluster.bootstrap})
    for f in a.delete_topics([topic_name], operation_timeout=30).values():
        f.result(30)
    # Keep polling past a metadata refresh (2 s in consumer_conf): the client
    # notices the topic is gone and rebalances incrementally.
    deadline = time.time() + 6
    while time.time() < deadline:
        c.poll(0.2)
    left = {(p.topic, p.partition) for p in c.assignment()}
    assert left == {(other, p) for p in range(3)}, left
    took = close_within(c, 10)
    assert took is not None, "close() still blocked after 10 s"
    assert took < 5, "close() took %.1f s" % took


def test_close_returns_when_only_topic_deleted(gcluster, topic_name, group_name):
    create_topic(gcluster.bootstrap, topic_name, 3)
    produce(gcluster.bootstrap, topic_name, 30, partitions=3)
    c = Consumer(consumer_conf(gcluster.bootstrap, group_name,
                               **{"partition.assignment.strategy": "cooperative-sticky"}))
    c.subscribe([topic_name])
    got = None
    deadline = time.time() + 30
    while got is None and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got = m
    assert got is not None
    a = AdminClient({"bootstrap.servers": gcluster.bootstrap})
    for f in a.delete_topics([topic_name], operation_timeout=30).values():
        f.result(30)
    deadline = time.time() + 6
    while time.time() < deadline:
        c.poll(0.2)
    took = close_within(c, 10)
    assert took is not None, "close() still blocked after 10 s"
    assert took < 5, "close() took %.1f s" % took
