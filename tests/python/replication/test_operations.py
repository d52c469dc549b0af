"""Cluster operations without downtime (issue 5): controlled shutdown and a
rolling restart through scripts/broker-stop.sh / broker-start.sh under an
idempotent acks=all load, preferred-leader rebalancing, and online replica
reassignment with `fjord topic alter --replica-assignment` onto a new broker.
Real processes: one fjord-coord, fjord-brokers, confluent-kafka clients.
"""
import os
import subprocess
import threading
import time
import types

import pytest

pytest.importorskip("confluent_kafka")

from fjordtest.binaries import bin_dir, fjord_cli  # noqa: E402
from fjordtest.broker import Broker  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402
from fjordtest.nemesis import longest_gap  # noqa: E402
from replication import checker  # noqa: E402
from replication.replharness import DEFAULT_OVERRIDES, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPTS = os.path.join(ROOT, "scripts")

# A fast rebalance check so the test sees leadership return; Kafka's default is 300 s.
OVERRIDES = {"leader.imbalance.check.interval.seconds": 2, "min.insync.replicas": 2}


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3, OVERRIDES)


def every(c):
    """Every broker, alive or not: brokers restarted by broker-start.sh are
    not the harness's processes, so Cluster.bootstrap would miss them."""
    return types.SimpleNamespace(bootstrap=",".join(b.bootstrap for b in c.brokers))


def parts(c, topic):
    return checker.leaders(every(c).bootstrap, topic)


class Watcher:
    """Polls `fjord topic describe` and records every partition seen without a leader."""

    def __init__(self, c, topic):
        self.c, self.topic = c, topic
        self.offline = []
        self.samples = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.wait(0.2):
            try:
                ps = parts(self.c, self.topic)
            except Exception:  # noqa: BLE001 - a broker may be between lives
                continue
            self.samples += 1
            self.offline += [(time.time(), p["partition"]) for p in ps.values() if p["leader"] < 0]

    def finish(self):
        self.stop.set()
        self.t.join(10)


def script(name, *args, env):
    return subprocess.run([os.path.join(SCRIPTS, name)] + list(args), env=env,
                          capture_output=True, text=True, timeout=90)


def test_rolling_restart_with_controlled_shutdown_loses_nothing(cluster, tmp_path):
    c = cluster
    topic = "roll"
    create_topic(c.bootstrap, topic, 6, 3)
    checker.wait_isr_full(c, topic, 3)
    preferred = {p: v["replicas"][0] for p, v in parts(c, topic).items()}
    env = dict(os.environ, FJORD_RUN_DIR=str(tmp_path), FJORD_BIN=bin_dir())
    w = checker.Workload(c.bootstrap, topic, 6, 300)
    w.start()
    watch = Watcher(c, topic)
    daemons = []
    try:
        time.sleep(2)
        for b in c.brokers:
            # broker-stop.sh stops what broker-start.sh started: hand it our PID.
            (tmp_path / ("broker-%d.pid" % b.id)).write_text(str(b.pid))
            led = [p for p, v in parts(c, topic).items() if v["leader"] == b.id]
            # Reap our child as it exits, or the script's `kill -0` sees a zombie.
            stopper = subprocess.Popen([os.path.join(SCRIPTS, "broker-stop.sh"), b.cfg_path],
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
            b.proc.wait(40)
            out, _ = stopper.communicate(timeout=40)
            assert stopper.returncode == 0, out
            log = b.log_tail()
            assert "controlled shutdown complete" in log, log[-3000:]
            # Leadership moved while the broker still served, before it deregistered.
            assert log.rindex("controlled shutdown complete") < log.rindex("deregistered"), log[-3000:]
            now = parts(c, topic)
            assert all(v["leader"] != b.id for v in now.values()), now
            r = script("broker-start.sh", "-daemon", b.cfg_path, env=env)
            assert r.returncode == 0, r.stdout + r.stderr
            daemons.append(b.id)
            checker.wait_isr_full(every(c), topic, 3, 60)
            print("broker %d: handed over %d leaderships, restarted, back in every ISR" % (b.id, len(led)))
        # auto.leader.rebalance.enable: leadership returns to the preferred replicas.
        wait_until(lambda: {p: v["leader"] for p, v in parts(c, topic).items()} == preferred,
                   30, "preferred leaders restored")
        time.sleep(1)
        watch.finish()
        left = w.finish(120)
        got = checker.read_all(every(c).bootstrap, topic, 6)
    finally:
        watch.finish()
        w.finish(1)
        for bid in daemons:
            script("broker-stop.sh", str(bid), env=env)
    assert left == 0, "unacknowledged at end: %d" % left
    assert not w.errors, "produce errors reached the client: %r" % w.errors[:5]
    res, examples = checker.analyse(w.acked, got)
    gap, _ = longest_gap(w.ack_times, min(w.ack_times), max(w.ack_times))
    print("acknowledged %d, longest gap between acks %.2f s, describe samples %d" % (
        len(w.acked), gap, watch.samples))
    assert len(w.acked) > 1000
    assert res == {"lost": 0, "changed": 0, "duplicates": 0, "reordered": 0}, examples
    assert watch.samples > 10 and not watch.offline, watch.offline[:5]


def test_reassignment_moves_replicas_onto_a_new_broker_online(cluster):
    c = cluster
    topic = "moving"
    create_topic(c.bootstrap, topic, 2, 2)
    checker.wait_isr_full(c, topic, 2)
    w = checker.Workload(c.bootstrap, topic, 2, 200)
    w.start()
    try:
        time.sleep(2)
        # The cluster grows: broker 4 joins, then takes over a replica of each
        # partition, and the leaders' old replicas are dropped.
        b4 = Broker(c.dir, 4, c.coord.hosts, dict(DEFAULT_OVERRIDES, **OVERRIDES))
        c.brokers.append(b4)
        b4.start()
        before = parts(c, topic)
        target = {p: [4, v["leader"]] for p, v in before.items()}
        spec = ",".join(":".join(str(x) for x in target[p]) for p in sorted(target))
        out = subprocess.run([fjord_cli(), "topic", "alter", "--bootstrap-server", c.bootstrap,
                              "--topic", topic, "--replica-assignment", spec, "--wait"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "complete" in out.stdout, out.stdout
        after = parts(c, topic)
        for p, v in after.items():
            assert v["replicas"] == target[p], after
            assert set(v["isr"]) <= set(target[p]) and 4 in v["isr"], after
        time.sleep(2)
    finally:
        left = w.finish(60)
    assert left == 0 and not w.errors, (left, w.errors[:5])
    # The data is on the new broker: once it leads (preferred replica), every
    # other broker is killed and broker 4 alone serves every acked message.
    wait_until(lambda: all(v["leader"] == 4 for v in parts(c, topic).values()), 30,
               "preferred leader 4 after the move")
    for b in c.brokers:
        if b.id != 4:
            b.kill9()
    got = checker.read_all(c.bootstrap, topic, 2)
    res, examples = checker.analyse(w.acked, got)
    print("acknowledged %d during the reassignment" % len(w.acked))
    assert len(w.acked) > 500
    assert res == {"lost": 0, "changed": 0, "duplicates": 0, "reordered": 0}, examples
