"""What the group tests share besides fixtures: the broker fixtures module
(tests/python/broker/conftest.py, loaded once under its own name), the CLI path,
wait_until. Tests import this module, never `conftest`: several conftest.py files
live under tests/python and the name `conftest` means whichever was loaded last."""
import importlib.util
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_BROKER = os.path.join(os.path.dirname(_HERE), "broker")
sys.path.insert(0, _BROKER)
sys.path.insert(0, _HERE)

if "fjord_broker_fixtures" in sys.modules:
    bf = sys.modules["fjord_broker_fixtures"]
else:
    _spec = importlib.util.spec_from_file_location("fjord_broker_fixtures", os.path.join(_BROKER, "conftest.py"))
    bf = importlib.util.module_from_spec(_spec)
    sys.modules["fjord_broker_fixtures"] = bf
    _spec.loader.exec_module(bf)

GROUP_OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
    "num.partitions": 6,
}

FJORD_CLI = os.environ.get("FJORD_CLI") or os.path.join(bf.bin_dir(), "fjord")


def wait_until(pred, timeout, step=0.1, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
