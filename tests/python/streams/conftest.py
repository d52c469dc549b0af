"""Fixtures of the fjord-streams suite: a broker (fjordtest.broker) for the
payment-alerts example and a runner for the example's binary."""
import json
import os
import shutil

import pytest

from fjordtest import cleanup
from fjordtest.binaries import bin_dir, require
from fjordtest.broker import Cluster, require_brokers
from fjordtest.proc import Proc

OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
    "num.partitions": 1,
}


def app_binary():
    return os.path.join(bin_dir(), "payment-alerts")


class App(Proc):
    """One payment-alerts process with its own state dir."""
    stop_timeout = 30.0

    def __init__(self, workdir, name, bootstrap, app_id, guarantee, grace_ms, extra=()):
        super().__init__(name, workdir)
        self.state_dir = os.path.join(workdir, name + "-state")
        self.args = [app_binary(), "--bootstrap", bootstrap, "--application-id", app_id,
                     "--processing-guarantee", guarantee, "--state-dir", self.state_dir,
                     "--grace-ms", str(grace_ms)] + list(extra)

    def start(self):
        self.launch(self.args)
        return self

    def wait_exit(self, timeout=120):
        self.proc.wait(timeout)
        cleanup.untrack(self)
        return self.proc.returncode

    def stats(self):
        """The JSON stats line the binary prints when it stops (the last one)."""
        with open(self.log_path) as f:
            lines = [l for l in f if l.startswith('{"event":"stopped"')]
        assert lines, "no stats line; log:\n" + self.log_tail()
        return json.loads(lines[-1])["stats"]

    def wipe_state(self):
        shutil.rmtree(self.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def broker():
    require_brokers()
    require(app_binary())
    with Cluster(1, OVERRIDES) as c:
        yield c


@pytest.fixture
def workdir():
    d = cleanup.temp_dir("fjord-streams-test-")
    yield d
    cleanup.remove_dir(d)
