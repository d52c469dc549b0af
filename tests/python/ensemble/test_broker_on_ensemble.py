"""A fjord-broker pointed at every member of a 3-member coordinator ensemble
(`zookeeper.connect=a,b,c`) keeps its session (its /brokers/ids ephemeral,
same owner) and keeps working through a kill -9 of the coordinator leader."""
import subprocess
import time

from fjordtest.binaries import broker_binary, fjord_cli, require
from fjordtest.broker import Broker
from fjordtest.ensemble import running


def test_broker_keeps_its_session_through_a_coordinator_leader_kill(tmp_path):
    cli = fjord_cli()
    require(broker_binary(), cli)
    with running(3) as e:
        b = Broker(str(tmp_path), 0, e.hosts())
        b.start(wait=False)
        try:
            zk = e.kazoo()
            deadline = time.time() + 30
            while zk.exists("/brokers/ids/0") is None:
                assert time.time() < deadline, b.log_tail(3000)
                time.sleep(0.1)
            owner = zk.exists("/brokers/ids/0").ephemeralOwner
            zk.stop()
            leader = e.leader()
            leader.kill9()
            e.wait_leader(timeout=10, exclude=leader)
            # Longer than the broker's session timeout: an expired session would show.
            time.sleep(7)
            assert b.alive(), "broker exited"
            zk = e.kazoo()
            stat = zk.exists("/brokers/ids/0")
            assert stat is not None and stat.ephemeralOwner == owner, "broker session lost"
            # The broker still writes cluster state through the ensemble.
            out = subprocess.run([cli, "topic", "create", "--topic", "after-kill", "--partitions", "2",
                                  "--bootstrap-server", b.bootstrap],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stdout + out.stderr
            deadline = time.time() + 20
            while zk.exists("/brokers/topics/after-kill") is None:
                assert time.time() < deadline
                time.sleep(0.1)
            zk.stop()
        finally:
            b.kill9()
