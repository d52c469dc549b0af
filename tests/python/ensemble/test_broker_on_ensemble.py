"""A fjord-broker pointed at every member of a 3-member coordinator ensemble
(`zookeeper.connect=a,b,c`) keeps its session (its /brokers/ids ephemeral,
same owner) and keeps working through a kill -9 of the coordinator leader."""
import os
import subprocess
import time

import pytest

from ensharness import Ensemble, HOST, fjord_coord, free_ports


def test_broker_keeps_its_session_through_a_coordinator_leader_kill(tmp_path):
    bindir = os.path.dirname(fjord_coord())
    broker, cli = os.path.join(bindir, "fjord-broker"), os.path.join(bindir, "fjord")
    for b in (fjord_coord(), broker, cli):
        if not os.path.exists(b):
            pytest.skip("%s not built" % b)
    e = Ensemble(3)
    proc = None
    try:
        e.start()
        (kport,) = free_ports(1)
        cfg = tmp_path / "broker.properties"
        cfg.write_text("\n".join([
            "broker.id=0",
            "listeners=PLAINTEXT://%s:%d" % (HOST, kport),
            "advertised.listeners=PLAINTEXT://%s:%d" % (HOST, kport),
            "log.dirs=%s" % (tmp_path / "log"),
            "zookeeper.connect=%s" % e.hosts(),
            "zookeeper.session.timeout.ms=6000",
            "num.partitions=1",
        ]) + "\n")
        logf = open(tmp_path / "broker.log", "wb")
        proc = subprocess.Popen([broker, str(cfg)], stdout=logf, stderr=logf,
                                stdin=subprocess.DEVNULL)
        zk = e.kazoo()
        deadline = time.time() + 30
        while zk.exists("/brokers/ids/0") is None:
            assert time.time() < deadline, (tmp_path / "broker.log").read_text()[-3000:]
            time.sleep(0.1)
        owner = zk.exists("/brokers/ids/0").ephemeralOwner
        zk.stop()
        leader = e.leader()
        leader.kill9()
        e.wait_leader(timeout=10, exclude=leader)
        # Longer than the broker's session timeout: an expired session would show.
        time.sleep(7)
        assert proc.poll() is None, "broker exited"
        zk = e.kazoo()
        stat = zk.exists("/brokers/ids/0")
        assert stat is not None and stat.ephemeralOwner == owner, "broker session lost"
        # The broker still writes cluster state through the ensemble.
        out = subprocess.run([cli, "topic", "create", "--topic", "after-kill", "--partitions", "2",
                              "--bootstrap-server", "%s:%d" % (HOST, kport)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        deadline = time.time() + 20
        while zk.exists("/brokers/topics/after-kill") is None:
            assert time.time() < deadline
            time.sleep(0.1)
        zk.stop()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        e.cleanup()
