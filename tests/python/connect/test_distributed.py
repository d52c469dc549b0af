"""`fjord-connect distributed`: two workers with one group.id share a connector's
tasks (tasks.max=4 → 2 each); a REST call to either reaches the tasks on both; a
worker killed with -9 loses its tasks to the other within the session timeout, and
nothing sent is lost; both stopped and started again still have their connectors'
configs, statuses and source offsets (no line read twice). The state is in the
coordinator under /connect/<group.id>/, read here with kazoo as `fjord znode`
would."""
import json
import os
import time

from confluent_kafka import Producer

from .conftest import (Worker, consume_all, create_topic, lines_of, run_standalone, wait_for,
                       write_props)

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
SESSION_TIMEOUT_S = 6.0
# The workers' converters, and their sink tasks' consumers' session timeout: a killed
# worker's consumers leave the group this soon.
WORKER_PROPS = {"key.converter": "org.apache.kafka.connect.storage.StringConverter",
                "value.converter": "org.apache.kafka.connect.storage.StringConverter",
                "consumer.session.timeout.ms": "6000"}


def produce(bs, topic, values):
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    for i, v in enumerate(values):
        p.produce(topic, key=str(i).encode(), value=v.encode())
    assert p.flush(30) == 0


def placement(st):
    """worker_id → task ids RUNNING there."""
    out = {}
    for t in st["tasks"]:
        if t["state"] == "RUNNING":
            out.setdefault(t["worker_id"], []).append(t["id"])
    return out


def test_two_workers_share_tasks_survive_kill9_and_a_full_restart(broker, workdir):
    bs = broker.bootstrap
    group = "dist-%d" % time.time_ns()
    create_topic(bs, "dist-in", 4)
    create_topic(bs, "dist-src", 1)
    out_file = os.path.join(workdir, "out.txt")
    src_file = os.path.join(workdir, "in.txt")
    w1 = Worker(workdir, bs, extra=WORKER_PROPS, name="w1", group=group).start()
    w2 = Worker(workdir, bs, extra=WORKER_PROPS, name="w2", group=group).start()
    ids = {w1: "%s:%d" % ("127.0.0.1", w1.port), w2: "%s:%d" % ("127.0.0.1", w2.port)}
    try:
        sink = {"connector.class": SINK, "topics": "dist-in", "file": out_file, "tasks.max": "4"}
        code, info = w1.call("POST", "/connectors", {"name": "sink", "config": sink})
        assert code == 201, info
        assert [t["task"] for t in info["tasks"]] == [0, 1, 2, 3]
        # The other worker sees it, refuses it twice, and the tasks split 2 + 2.
        code, err = w2.call("POST", "/connectors", {"name": "sink", "config": sink})
        assert code == 409, err
        st = w2.wait_status("sink", lambda s: sorted(len(v) for v in placement(s).values()) == [2, 2])
        assert set(placement(st)) == set(ids.values()), st
        assert w1.call("GET", "/connectors/sink/status")[1]["tasks"] == st["tasks"]

        produce(bs, "dist-in", ["a%d" % i for i in range(2000)])
        wait_for(lambda: len(lines_of(out_file)) >= 2000, 60, "2,000 lines in the sink's file")
        assert sorted(lines_of(out_file)) == sorted("a%d" % i for i in range(2000))

        # pause through one worker: the tasks on both pause; resume runs them again.
        assert w2.call("PUT", "/connectors/sink/pause")[0] == 202
        w1.wait_status("sink", lambda s: [t["state"] for t in s["tasks"]] == ["PAUSED"] * 4
                       and s["connector"]["state"] == "PAUSED")
        assert w1.call("PUT", "/connectors/sink/resume")[0] == 202
        w2.wait_status("sink", lambda s: [t["state"] for t in s["tasks"]] == ["RUNNING"] * 4)

        # kill -9 one worker: the survivor runs all four within the session timeout.
        t0 = time.time()
        w1.kill9()
        st = w2.wait_status("sink", lambda s: placement(s) == {ids[w2]: [0, 1, 2, 3]},
                            timeout=SESSION_TIMEOUT_S + 20)
        took = time.time() - t0
        assert took < SESSION_TIMEOUT_S + 10, "tasks moved after %.1f s" % took
        produce(bs, "dist-in", ["b%d" % i for i in range(2000)])
        want = {"a%d" % i for i in range(2000)} | {"b%d" % i for i in range(2000)}
        # At least once (FileStreamSink's guarantee): nothing lost.
        wait_for(lambda: want <= set(lines_of(out_file)), 60, "every line after the kill")

        w1.start()
        w2.wait_status("sink", lambda s: sorted(len(v) for v in placement(s).values()) == [2, 2])

        # A source connector: its offsets go to the coordinator.
        with open(src_file, "w") as f:
            f.writelines("line %d\n" % i for i in range(500))
        src = {"connector.class": SOURCE, "file": src_file, "topic": "dist-src", "tasks.max": "1"}
        assert w2.call("PUT", "/connectors/src/config", src)[0] == 201
        assert len(consume_all(bs, "dist-src", 500)) == 500
        w1.wait_status("src", lambda s: [t["state"] for t in s["tasks"]] == ["RUNNING"])

        # The layout in the coordinator, as `fjord znode` shows it.
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=broker.coord.hosts)
        zk.start(timeout=15)
        try:
            root = "/connect/%s" % group
            assert sorted(zk.get_children(root + "/workers")) == sorted(ids.values())
            rec = json.loads(zk.get(root + "/connectors/sink")[0])
            assert rec["config"]["topics"] == "dist-in" and rec["target"] == "RUNNING" and len(rec["tasks"]) == 4
            assert sorted(zk.get_children(root + "/status/sink")) == ["0", "1", "2", "3"]
            offs = [json.loads(zk.get(root + "/offsets/src/" + n)[0]) for n in zk.get_children(root + "/offsets/src")]
            assert [o["partition"] for o in offs] == [{"filename": src_file}]
        finally:
            zk.stop()

        # Both stopped (gracefully) and started again: everything is still there.
        code, before = w1.call("GET", "/connectors/src/offsets")
        assert code == 200 and before["offsets"][0]["offset"]["position"] > 0, before
        w1.stop()
        w2.stop()
        w1.start()
        w2.start()
        code, names = w2.call("GET", "/connectors")
        assert code == 200 and sorted(names) == ["sink", "src"]
        assert w1.call("GET", "/connectors/sink/config")[1] == dict(sink, name="sink")
        st = w1.wait_status("sink", lambda s: sorted(len(v) for v in placement(s).values()) == [2, 2])
        assert w2.call("GET", "/connectors/src/offsets")[1] == before
        with open(src_file, "a") as f:
            f.writelines("line %d\n" % i for i in range(500, 600))
        got = [m.value().decode() for m in consume_all(bs, "dist-src", 600)]
        assert got == ["line %d" % i for i in range(600)], "the source read lines again: %d" % len(got)

        # Delete through one worker: gone from both, its statuses too.
        assert w1.call("DELETE", "/connectors/sink")[0] == 204
        assert w2.call("GET", "/connectors")[1] == ["src"]
        assert w2.call("GET", "/connectors/sink/status")[0] == 404
        # ... and nothing of it stays in the coordinator once its tasks are released.
        zk = KazooClient(hosts=broker.coord.hosts)
        zk.start(timeout=15)
        try:
            root = "/connect/%s" % group
            wait_for(lambda: all(zk.exists("%s/%s/sink" % (root, d)) is None
                                 for d in ("connectors", "owners", "status", "topics")),
                     20, "the deleted connector's znodes to go")
            assert zk.get_children(root + "/owners") == ["src"]
        finally:
            zk.stop()
    finally:
        w1.stop()
        w2.stop()


def test_distributed_needs_a_group_id(workdir):
    f = write_props(os.path.join(workdir, "w.properties"),
                    {"bootstrap.servers": "127.0.0.1:1", "listeners": "http://127.0.0.1:0",
                     "key.converter": "org.apache.kafka.connect.storage.StringConverter",
                     "value.converter": "org.apache.kafka.connect.storage.StringConverter"})
    code, err = run_standalone(["distributed", f])
    assert code == 2 and "group.id" in err and f in err, err
    code, err = run_standalone(["distributed"])
    assert code == 2 and "usage" in err, err


def test_a_paused_worker_loses_its_tasks_and_rejoins_with_a_new_session(broker, workdir):
    """SIGSTOP a worker past the session timeout: the other takes all four tasks; on
    SIGCONT the paused one finds its session expired, stops what it ran, registers
    again, and the tasks split 2 + 2 once more, with no record lost."""
    import signal
    bs = broker.bootstrap
    group = "dist-pause-%d" % time.time_ns()
    create_topic(bs, "dist-pause", 4)
    out_file = os.path.join(workdir, "out.txt")
    w1 = Worker(workdir, bs, extra=WORKER_PROPS, name="p1", group=group).start()
    w2 = Worker(workdir, bs, extra=WORKER_PROPS, name="p2", group=group).start()
    id1, id2 = "127.0.0.1:%d" % w1.port, "127.0.0.1:%d" % w2.port
    try:
        sink = {"connector.class": SINK, "topics": "dist-pause", "file": out_file, "tasks.max": "4"}
        assert w2.call("POST", "/connectors", {"name": "psink", "config": sink})[0] == 201
        w2.wait_status("psink", lambda s: sorted(placement(s)) == sorted([id1, id2]))
        os.kill(w1.proc.pid, signal.SIGSTOP)
        try:
            w2.wait_status("psink", lambda s: placement(s) == {id2: [0, 1, 2, 3]},
                           timeout=SESSION_TIMEOUT_S + 20)
            produce(bs, "dist-pause", ["p%d" % i for i in range(1000)])
        finally:
            os.kill(w1.proc.pid, signal.SIGCONT)
        st = w1.wait_status("psink", lambda s: sorted(placement(s)) == sorted([id1, id2])
                            and sum(len(v) for v in placement(s).values()) == 4,
                            timeout=SESSION_TIMEOUT_S + 20)
        assert sorted(len(v) for v in placement(st).values()) == [2, 2], st
        produce(bs, "dist-pause", ["q%d" % i for i in range(1000)])
        want = {"p%d" % i for i in range(1000)} | {"q%d" % i for i in range(1000)}
        wait_for(lambda: want <= set(lines_of(out_file)), 60, "every line after the pause")
        assert "session expired" in w1.log_tail(20000)
    finally:
        w1.stop()
        w2.stop()
