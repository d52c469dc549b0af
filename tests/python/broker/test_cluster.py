"""Three brokers on one coordinator: leaders spread, clients bootstrapped at any
broker reach every partition; znode layout as docs/architecture.md says."""
import json
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from fjordtest.broker import Broker  # noqa: E402


def test_three_brokers_spread_leaders(make_cluster, topic_name):
    c = make_cluster(3)
    a = AdminClient({"bootstrap.servers": c.brokers[0].bootstrap})
    for f in a.create_topics([NewTopic(topic_name, num_partitions=6, replication_factor=1)]).values():
        f.result(30)
    deadline = time.time() + 15
    while True:
        md = a.list_topics(topic_name, timeout=10)
        leaders = [p.leader for p in md.topics[topic_name].partitions.values()]
        if all(l > 0 for l in leaders) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert sorted(md.brokers) == [1, 2, 3]
    assert sorted(set(leaders)) == [1, 2, 3], leaders
    assert md.controller_id in (1, 2, 3)
    for b in c.brokers:
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
        for part in range(6):
            p.produce(topic_name, value=b"from-%d-to-%d" % (b.id, part), partition=part)
        assert p.flush(30) == 0
    cons = Consumer({"bootstrap.servers": c.brokers[2].bootstrap, "group.id": "x"})
    cons.assign([TopicPartition(topic_name, p, 0) for p in range(6)])
    got = []
    deadline = time.time() + 30
    while len(got) < 18 and time.time() < deadline:
        for m in cons.consume(100, 1.0):
            assert m.error() is None
            got.append((m.partition(), m.value()))
    cons.close()
    assert len(got) == 18
    for part in range(6):
        vals = sorted(v for p, v in got if p == part)
        assert vals == sorted(b"from-%d-to-%d" % (b, part) for b in (1, 2, 3))


def test_znode_layout(make_cluster, topic_name):
    kazoo = pytest.importorskip("kazoo.client")
    c = make_cluster(2)
    a = AdminClient({"bootstrap.servers": c.bootstrap})
    for f in a.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1,
                                       config={"retention.ms": "1000"})]).values():
        f.result(30)
    zk = kazoo.KazooClient(hosts=c.coord.hosts)
    zk.start(15)
    try:
        assert sorted(zk.get_children("/brokers/ids")) == ["1", "2"]
        reg = json.loads(zk.get("/brokers/ids/1")[0])
        assert reg["endpoints"] == ["PLAINTEXT://127.0.0.1:%d" % c.brokers[0].port]
        assert zk.get("/brokers/ids/1")[1].ephemeralOwner != 0
        cid = json.loads(zk.get("/cluster/id")[0])
        assert len(cid["id"]) == 22
        ctl = json.loads(zk.get("/controller")[0])
        assert ctl["brokerid"] in (1, 2)
        assert int(zk.get("/controller_epoch")[0]) >= 1
        t = json.loads(zk.get("/brokers/topics/%s" % topic_name)[0])
        assert t["version"] == 3 and sorted(t["partitions"]) == ["0", "1"]
        st = json.loads(zk.get("/brokers/topics/%s/partitions/0/state" % topic_name)[0])
        assert st["leader"] in (1, 2) and st["isr"] == [st["leader"]]
        cfg = json.loads(zk.get("/config/topics/%s" % topic_name)[0])
        assert cfg["config"] == {"retention.ms": "1000"}
        for f in a.delete_topics([topic_name], operation_timeout=30).values():
            f.result(30)
        deadline = time.time() + 10
        while zk.exists("/brokers/topics/%s" % topic_name) and time.time() < deadline:
            time.sleep(0.2)
        assert not zk.exists("/brokers/topics/%s" % topic_name)
        assert not zk.exists("/admin/delete_topics/%s" % topic_name)
        # SIGTERM deregisters at once
        c.brokers[1].stop()
        assert zk.get_children("/brokers/ids") == ["1"]
    finally:
        zk.stop()


def test_duplicate_broker_id_exits(make_cluster):
    c = make_cluster(1)
    dup = Broker(c.dir, 1, c.coord.hosts)
    dup.log_dir += "-dup"
    dup.start(wait=False)
    rc = dup.proc.wait(30)
    assert rc != 0
    assert "/brokers/ids/1" in dup.log_tail()
