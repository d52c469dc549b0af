"""The replication suite's cluster: 3 brokers (and a coordinator) with a short
replica lag and session timeout, so a stopped follower leaves the ISR and a dead
leader is replaced within the tests' patience. Also used by
scripts/bench-replication.sh."""
from fjordtest import waits
from fjordtest.broker import Cluster

DEFAULT_OVERRIDES = {
    "replica.lag.time.max.ms": 3000,
    "zookeeper.session.timeout.ms": 4000,
    "min.insync.replicas": 1,
}


def start_cluster(n=3, overrides=None):
    o = dict(DEFAULT_OVERRIDES)
    o.update(overrides or {})
    return Cluster(n, overrides=o)


def wait_until(pred, timeout, what, interval=0.2):
    """fjordtest's wait_until, retrying through errors: `fjord topic describe`
    fails now and then while leaders move."""
    return waits.wait_until(pred, timeout, what, interval, retry_on=Exception)
