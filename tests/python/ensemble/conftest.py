"""Fixtures for the ensemble suite: real fjord-coord members on free ports."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensharness import Ensemble, fjord_coord  # noqa: E402


def _require():
    if not os.path.exists(fjord_coord()):
        if os.environ.get("FJORD_REQUIRE_BINARIES") == "1":
            pytest.fail("fjord-coord not built: %s" % fjord_coord())
        pytest.skip("fjord-coord not built: %s" % fjord_coord())
    try:
        import kazoo  # noqa: F401
    except ImportError:
        pytest.skip("kazoo not installed")


@pytest.fixture
def ensemble3():
    _require()
    e = Ensemble(3)
    try:
        yield e.start()
    finally:
        e.cleanup()


@pytest.fixture
def ensemble5():
    _require()
    e = Ensemble(5)
    try:
        yield e.start()
    finally:
        e.cleanup()
