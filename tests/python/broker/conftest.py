"""Broker fixtures: clusters of one coordinator plus fjord-brokers
(fjordtest.broker; FJORD_BROKER_COORD picks the coordinator)."""
import pytest

from fjordtest.broker import Cluster, clusters, require_brokers
from fjordtest.names import unique


@pytest.fixture(scope="module")
def cluster1():
    """One coordinator + one broker for a whole module."""
    require_brokers()
    with Cluster(1) as c:
        yield c


@pytest.fixture
def make_cluster():
    """make(n=1, overrides=None, coord=None) -> a started Cluster; all closed at teardown."""
    with clusters() as make:
        yield make


@pytest.fixture
def topic_name(request):
    return unique("t", request)
