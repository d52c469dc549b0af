"""Transaction suite fixtures: one 3-broker cluster (and a coordinator) per
module, with a short timed-out-transaction check so timeouts show in seconds
and a max transaction timeout the bad-input test can exceed."""
import pytest

from fjordtest.binaries import fjord_cli, require
from fjordtest.broker import Cluster, require_brokers

TXN_OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
    "transaction.max.timeout.ms": 120000,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
    "min.insync.replicas": 2,
    "default.replication.factor": 3,
}


@pytest.fixture(scope="module")
def tcluster():
    require_brokers()
    require(fjord_cli())
    with Cluster(3, TXN_OVERRIDES) as c:
        yield c
