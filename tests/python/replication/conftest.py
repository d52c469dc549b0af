"""Fixtures of the replication suite: clusters of fjord-brokers with the
suite's short replica lag and session timeout (replharness.DEFAULT_OVERRIDES)."""
import pytest

from fjordtest.binaries import fjord_cli, require
from fjordtest.broker import clusters
from replication.replharness import DEFAULT_OVERRIDES


@pytest.fixture
def make_cluster():
    """make(n=1, overrides=None) -> a started Cluster; all closed at teardown."""
    require(fjord_cli())
    with clusters(DEFAULT_OVERRIDES) as make:
        yield make
