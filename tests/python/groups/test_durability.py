"""Committed offsets live in the coordinator: they survive restarts of every
broker and the coordinator, are visible with `fjord znode get`, and a group
survives the kill -9 of its coordinator broker."""
import json
import os
import subprocess
import time

import pytest

pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaException  # noqa: E402

from fjordtest.binaries import fjord_cli  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402
from groups.gutil import committed, consumer_conf, members, produce  # noqa: E402

FJORD_CLI = fjord_cli()


def consume_n(bootstrap, group, topic, n, timeout=60):
    c = Consumer(consumer_conf(bootstrap, group))
    c.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    try:
        while len(out) < n and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append(m.value().decode())
            c.commit(message=m, asynchronous=False)
    finally:
        c.close()
    return out


def test_offsets_survive_restart_of_brokers_and_coordinator(make_gcluster, topic_name, group_name):
    c = make_gcluster(1)
    create_topic(c.bootstrap, topic_name, 1)
    produce(c.bootstrap, topic_name, 100, partitions=1)
    first = consume_n(c.bootstrap, group_name, topic_name, 40)
    assert len(first) == 40
    assert committed(c.bootstrap, group_name, topic_name, 1) == {0: 40}
    if os.access(FJORD_CLI, os.X_OK) and c.coord is not None:
        p = subprocess.run([FJORD_CLI, "znode", "--coord", c.coord.hosts, "get",
                            "/consumers/%s/offsets/%s/0" % (group_name, topic_name)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout.strip().splitlines()[0])
        assert doc["version"] == 1 and doc["offset"] == 40 and "timestamp" in doc
    # Restart everything.
    for b in c.brokers:
        b.stop()
    if c.coord is not None:
        c.coord.stop()
        c.coord.start()
    for b in c.brokers:
        b.start()
    rest = consume_n(c.bootstrap, group_name, topic_name, 60)
    assert rest == ["m-%d" % i for i in range(40, 100)]
    assert committed(c.bootstrap, group_name, topic_name, 1) == {0: 100}


def coordinator_of(admin, group, timeout=30):
    """The group's coordinator id, retrying retriable answers (a broker that has
    just started answers COORDINATOR_LOAD_IN_PROGRESS until its offsets are loaded)."""
    deadline = time.time() + timeout
    while True:
        try:
            return admin.describe_consumer_groups([group])[group].result(20).coordinator.id
        except KafkaException:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_group_coordinator_failover_three_brokers(make_gcluster, topic_name, group_name):
    """kill -9 the group's coordinator broker (which holds none of the topic's
    partitions, since the log is not replicated yet): the group re-forms on
    another broker and continues from its committed offsets, skipping nothing."""
    from confluent_kafka.admin import AdminClient, NewTopic
    c = make_gcluster(3)
    a = AdminClient({"bootstrap.servers": c.bootstrap})
    coord_id = coordinator_of(a, group_name)
    others = [b.id for b in c.brokers if b.id != coord_id]
    assign = [[others[i % 2]] for i in range(6)]
    for f in a.create_topics([NewTopic(topic_name, num_partitions=6, replica_assignment=assign)]).values():
        f.result(30)
    n = 6000
    produce(c.bootstrap, topic_name, n)
    victim = c.broker(coord_id)
    with members(2, c.bootstrap, group_name, topic_name, commit_sync=True) as ms:
        deadline = time.time() + 60
        while sum(len(m.values) for m in ms) < n // 4 and time.time() < deadline:
            time.sleep(0.02)
        victim.kill9()
        deadline = time.time() + 120
        while len(set(v for m in ms for v in m.values)) < n and time.time() < deadline:
            time.sleep(0.2)
        allv = [v for m in ms for v in m.values]
        assert set(allv) == set("m-%d" % i for i in range(n)), len(set(allv))
    live = ",".join(b.bootstrap for b in c.brokers if b.alive())
    new_coord = coordinator_of(a, group_name)
    assert new_coord != coord_id
    offs = committed(live, group_name, topic_name)
    assert sum(offs.values()) == n, offs
