"""Consumer-group fixtures: reuse the broker fixtures (tests/python/broker/conftest.py,
loaded under its own module name) with group settings suited to tests:
no initial rebalance delay and short session timeouts allowed.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gconf import GROUP_OVERRIDES, bf  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    for p in list(bf._LIVE):
        try:
            p.kill9()
        except Exception:  # noqa: BLE001
            pass


def _need_broker():
    if not os.access(bf.broker_binary(), os.X_OK):
        pytest.skip("fjord-broker not built at %s" % bf.broker_binary())


@pytest.fixture(scope="module")
def gcluster():
    """One coordinator + one broker for a whole module."""
    _need_broker()
    c = bf.Cluster(1, dict(GROUP_OVERRIDES))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def make_gcluster():
    _need_broker()
    made = []

    def make(n=1, overrides=None, coord=None):
        o = dict(GROUP_OVERRIDES)
        o.update(overrides or {})
        c = bf.Cluster(n, o, coord)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.close()


_counter = [0]


@pytest.fixture
def topic_name(request):
    _counter[0] += 1
    return "g%d-%s-%d" % (_counter[0], request.node.originalname[:30].replace("_", "-"), os.getpid())


@pytest.fixture
def group_name(request):
    _counter[0] += 1
    return "grp%d-%s-%d" % (_counter[0], request.node.originalname[:24].replace("_", "-"), os.getpid())
