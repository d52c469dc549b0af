"""Shared fixtures: start fjord-coord or Apache ZooKeeper 3.8 on free 127.0.0.1 ports
in temp dirs, and always stop them by PID.

Env:
  FJORD_BIN               directory holding fjord-coord
                          (default ${CARGO_TARGET_DIR:-~/.cache/fjord-target}/release)
  FJORD_TEST_TARGETS      comma list of targets for semantic tests (default fjord,zookeeper)
  FJORD_REQUIRE_BINARIES  1: a missing fjord-coord / ZooKeeper is a failure, not a skip
  FJORD_ONLY_TESTS_ON_ZK  1: also run the fjord-only modules against ZooKeeper (to validate them)
  ZK_JAR                  Apache ZooKeeper jar (default /usr/share/java/zookeeper.jar)
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "coord"))
import zkwire  # noqa: E402,F401
from coordharness import (  # noqa: E402,F401  (re-exported for `from conftest import ...`)
    ALL_TARGETS, HOST, Server, TcpProxy, ZK_JAR, _LIVE, fjord_bin_dir, fjord_binary,
    four_letter, free_port, require_binaries, selected_targets, skip_or_fail_unavailable,
    target_available)

_THIS = sys.modules[__name__]
_HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collectstart(collector):
    """Several conftest.py files live under tests/python (broker/ has its own) and all
    are importable as `conftest`; make `from conftest import ...` in a test module
    below this directory (and not below another conftest.py) mean this one."""
    path = str(getattr(collector, "path", "") or getattr(collector, "fspath", ""))
    if not path.endswith(".py"):
        return
    d = os.path.dirname(path)
    while d.startswith(_HERE) and d != _HERE:
        if os.path.exists(os.path.join(d, "conftest.py")):
            return
        d = os.path.dirname(d)
    if d == _HERE:
        sys.modules["conftest"] = _THIS



def pytest_sessionfinish(session, exitstatus):
    # Belt and braces: nothing we started survives the run.
    for s in list(_LIVE):
        try:
            s.kill9()
        except Exception:
            pass


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
    clients = []

    def make(**kw):
        c = server.kazoo(**kw)
        clients.append(c)
        return c

    try:
        yield make
    finally:
        for c in clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass


@pytest.fixture
def zk(new_zk):
    return new_zk()


@pytest.fixture
def new_wire(server):
    """Factory of raw zkwire sessions; closed at teardown."""
    conns = []

    def make(**kw):
        c = server.wire(**kw)
        conns.append(c)
        return c

    try:
        yield make
    finally:
        for c in conns:
            try:
                c.close()
            except Exception:
                pass


