"""Fixtures for the ensemble suite: real fjord-coord members on free ports
(fjordtest.ensemble)."""
import pytest

from fjordtest.ensemble import running


@pytest.fixture
def ensemble3():
    with running(3) as e:
        yield e


@pytest.fixture
def ensemble5():
    with running(5) as e:
        yield e
