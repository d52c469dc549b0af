"""Fixtures shared below tests/python: the coordinator targets (fjord-coord or
Apache ZooKeeper 3.8, fjordtest.coord) for the coord and cli suites, and the end
of the session, which cleans up whatever fjordtest's registry still holds.

Env:
  FJORD_TEST_TARGETS      comma list of targets for semantic tests (default fjord,zookeeper)
  FJORD_ONLY_TESTS_ON_ZK  1: also run the fjord-only modules against ZooKeeper (to validate them)
  (and fjordtest.binaries' FJORD_BIN, FJORD_REQUIRE_BINARIES, ZK_JAR)
"""
import os

import pytest

from fjordtest import cleanup
from fjordtest.coord import (ALL_TARGETS, Server, close_kazoo, selected_targets,
                             skip_or_fail_unavailable)


def pytest_sessionfinish(session, exitstatus):
    # Belt and braces: nothing we started survives the run.
    cleanup.clean_up()


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        allowed = getattr(metafunc.module, "TARGETS", ALL_TARGETS)
        if os.environ.get("FJORD_ONLY_TESTS_ON_ZK") == "1":
            # validate the fjord-only modules (crash, malformed) against ZooKeeper too
            allowed = ALL_TARGETS
        targets = [t for t in selected_targets() if t in allowed]
        if not targets:
            targets = [pytest.param("none", marks=pytest.mark.skip(
                reason="no selected target among %s" % allowed))]
        metafunc.parametrize("target", targets, scope="session")


@pytest.fixture(scope="session")
def server(target):
    """One shared server per target for the whole run (tickTime=500 so that
    sessions of 1 s are allowed: timeouts clamp to [2, 20] x tickTime)."""
    skip_or_fail_unavailable(target)
    s = Server(target, {"tickTime": 500})
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


@pytest.fixture
def make_server(target):
    """Factory for dedicated servers (custom config, restarts, kill -9)."""
    skip_or_fail_unavailable(target)
    made = []

    def make(overrides=None, start=True):
        s = Server(target, overrides)
        made.append(s)
        if start:
            s.start()
        return s

    try:
        yield make
    finally:
        for s in made:
            s.cleanup()


_root_counter = [0]


@pytest.fixture
def root(server, request):
    """A fresh persistent path per test on the shared server."""
    _root_counter[0] += 1
    name = "/t%d_%s" % (_root_counter[0], request.node.originalname[:40])
    c = server.wire()
    try:
        c.create(name)
    finally:
        c.close()
    return name


@pytest.fixture
def new_zk(server):
    """Factory of started kazoo clients; every one is stopped and closed at teardown."""
    with cleanup.made_by(server.kazoo, lambda c: close_kazoo([c])) as make:
        yield make


@pytest.fixture
def zk(new_zk):
    return new_zk()


@pytest.fixture
def new_wire(server):
    """Factory of raw zkwire sessions; closed at teardown."""
    with cleanup.made_by(server.wire, lambda c: c.close()) as make:
        yield make
