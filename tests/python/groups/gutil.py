"""Helpers for group tests: producing, and consumer-group members running in
threads (confluent-kafka) that record assignments and messages."""
import contextlib
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def produce(bootstrap, topic, n, partitions=6, prefix="m"):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, value=("%s-%d" % (prefix, i)).encode(), partition=i % partitions)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def consumer_conf(bootstrap, group, **extra):
    c = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    c.update(extra)
    return c


class Member(threading.Thread):
    """A group member polling in a thread. `assignment` is its current set of
    (topic, partition); `values` every message value it processed."""

    def __init__(self, bootstrap, group, topic, commit_sync=False, **extra):
        super().__init__(daemon=True)
        self.conf = consumer_conf(bootstrap, group, **extra)
        self.topic = topic
        self.commit_sync = commit_sync
        self.assignment = set()
        self.values = []
        self.errors = []
        self.commit_errors = []
        self.stop_flag = threading.Event()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.c = None

    def _on_assign(self, c, parts):
        with self.lock:
            self.assignment = set((p.topic, p.partition) for p in parts)
        self.ready.set()

    def _on_revoke(self, c, parts):
        with self.lock:
            self.assignment = set()

    def run(self):
        self.c = Consumer(self.conf)
        self.c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self.stop_flag.is_set():
                m = self.c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    self.errors.append(m.error())
                    continue
                with self.lock:
                    self.values.append(m.value().decode())
                if self.commit_sync:
                    try:
                        self.c.commit(message=m, asynchronous=False)
                    except KafkaException as e:
                        # A commit the group refuses (the member was fenced by a
                        # rebalance or its coordinator moved) is what an app sees
                        # too: the message comes again, at least once.
                        self.commit_errors.append(e.args[0])
        finally:
            self.c.close()

    def stop(self):
        self.stop_flag.set()
        self.join(30)

    def parts(self):
        with self.lock:
            return set(self.assignment)


@contextlib.contextmanager
def members(n, bootstrap, group, topic, **kw):
    """n started Members of one group (Member's keyword arguments); on exit every
    one still in the yielded list is stopped."""
    ms = [Member(bootstrap, group, topic, **kw) for _ in range(n)]
    for m in ms:
        m.start()
    try:
        yield ms
    finally:
        for m in ms:
            m.stop()


def assignments(members):
    return [m.parts() for m in members]


def wait_balanced(members, total, timeout=60, sizes=None):
    """Wait until the members' assignments are disjoint, cover `total`
    partitions and (optionally) have the given sorted sizes."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        a = assignments(members)
        last = a
        union = set().union(*a) if a else set()
        if len(union) == total and sum(len(x) for x in a) == total:
            if sizes is None or sorted(len(x) for x in a) == sorted(sizes):
                return a
        time.sleep(0.1)
    raise AssertionError("not balanced after %ss: %r" % (timeout, last))


def committed(bootstrap, group, topic, partitions=6):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()
