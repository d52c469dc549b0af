"""Consumer-group fixtures: broker clusters (fjordtest.broker) with group
settings suited to tests: no initial rebalance delay and short session timeouts
allowed."""
import pytest

from fjordtest.broker import Cluster, clusters, require_brokers
from fjordtest.names import unique

GROUP_OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
    "num.partitions": 6,
}


@pytest.fixture(scope="module")
def gcluster():
    """One coordinator + one broker for a whole module."""
    require_brokers()
    with Cluster(1, GROUP_OVERRIDES) as c:
        yield c


@pytest.fixture
def make_gcluster():
    """make(n=1, overrides=None, coord=None) -> a started Cluster; all closed at teardown."""
    with clusters(GROUP_OVERRIDES) as make:
        yield make


@pytest.fixture
def topic_name(request):
    return unique("g", request)


@pytest.fixture
def group_name(request):
    return unique("grp", request, 24)
