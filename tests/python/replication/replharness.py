"""Shared helpers for the replication suite and the fault-injection checker:
the broker fixtures (tests/python/broker/conftest.py, loaded under their own
module name), topic creation, `fjord topic describe` as JSON, and waits."""
import importlib.util
import json
import os
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_BROKER = os.path.join(os.path.dirname(_HERE), "broker")
sys.path.insert(0, _BROKER)
_spec = importlib.util.spec_from_file_location("fjord_broker_fixtures_repl",
                                               os.path.join(_BROKER, "conftest.py"))
bf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bf)

FJORD = os.environ.get("FJORD_CLI") or os.path.join(bf.bin_dir(), "fjord")

# Short lag so a stopped follower leaves the ISR within the test's patience.
DEFAULT_OVERRIDES = {
    "replica.lag.time.max.ms": 3000,
    "zookeeper.session.timeout.ms": 4000,
    "min.insync.replicas": 1,
}


def start_cluster(n=3, overrides=None):
    o = dict(DEFAULT_OVERRIDES)
    o.update(overrides or {})
    return bf.Cluster(n, overrides=o)


def describe(bootstrap, topic):
    """`fjord topic describe --output json`: a list of topics, each with
    partitions [{partition, leader, isr, replicas, offline}]; and the process result."""
    out = subprocess.run([FJORD, "topic", "describe", "--bootstrap-server", bootstrap,
                          "--topic", topic, "--output", "json", "--request-timeout-ms", "5000"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("fjord topic describe failed: %s %s" % (out.stdout, out.stderr))
    return json.loads(out.stdout), out


def create_topic(bootstrap, topic, partitions=1, rf=3, configs=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf,
                                   config=dict(configs or {}))])
    for f in fs.values():
        f.result(30)


def wait_until(pred, timeout, what, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last one
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last error %r)" % (what, last))
