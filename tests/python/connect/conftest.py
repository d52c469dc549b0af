"""Fixtures of the fjord-connect suite: a one-broker fjordtest cluster (its broker
serving the Schema Registry too, at `broker.registry_url`), an S3-compatible
server (moto's, `python3 -m moto.server`) on a free port, and Worker, a real
`fjord-connect standalone` (or, with `group`, `distributed`) process on a free REST
port beside them.

Env: FJORD_CONNECT_FULL=1 runs the S3 acceptance with 100,000 records (default 20,000).
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from fjordtest import cleanup
from fjordtest.binaries import bin_dir, require
from fjordtest.broker import Cluster, require_brokers
from fjordtest.net import HOST, free_port
from fjordtest.proc import Proc
from fjordtest.registry import RegistryBroker

OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
    "num.partitions": 1,
}


def connect_binary():
    return os.path.join(bin_dir(), "fjord-connect")


def write_props(path, props):
    with open(path, "w") as f:
        for k, v in props.items():
            f.write("%s=%s\n" % (k, v))
    return path


class Worker(Proc):
    """One fjord-connect worker, standalone, or distributed in `group` (its state in
    the brokers' coordinator, found through them); its REST API at self.url."""
    stop_timeout = 30.0

    def __init__(self, workdir, bootstrap, connector_files=(), extra=None, name="connect", group=None):
        super().__init__(name, workdir)
        self.port = free_port()
        self.url = "http://%s:%d" % (HOST, self.port)
        props = {
            "bootstrap.servers": bootstrap,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            "offset.storage.file.filename": os.path.join(workdir, "connect.offsets"),
            "offset.flush.interval.ms": "500",
            "listeners": self.url,
            "plugin.path": "/nonexistent",
        }
        if group is not None:
            # Kafka's connect-distributed.properties as it is: the storage topics'
            # keys are accepted (the coordinator holds that state here).
            del props["offset.storage.file.filename"]
            props.update({"group.id": group, "session.timeout.ms": "6000",
                          "config.storage.topic": "connect-configs",
                          "offset.storage.topic": "connect-offsets",
                          "status.storage.topic": "connect-status"})
        props.update(extra or {})
        self.worker_file = write_props(os.path.join(workdir, name + "-worker.properties"), props)
        self.cmd = ([connect_binary(), "standalone", self.worker_file] + list(connector_files)
                    if group is None else [connect_binary(), "distributed", self.worker_file])

    def start(self):
        self.launch(self.cmd)
        self.wait_listening(self.port)
        return self

    restart = start

    def call(self, method, path, body=None):
        """(status, parsed JSON body or None)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def wait_status(self, name, pred, timeout=60.0):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            code, st = self.call("GET", "/connectors/%s/status" % name)
            last = st
            if code == 200 and pred(st):
                return st
            time.sleep(0.2)
        raise AssertionError("status of %s never matched; last %s; log:\n%s" % (name, last, self.log_tail()))


class S3Server(Proc):
    """moto's S3 server (real HTTP, SigV4 checked)."""

    def __init__(self, workdir):
        super().__init__("moto", workdir)
        self.port = free_port()
        self.url = "http://%s:%d" % (HOST, self.port)

    def start(self):
        self.launch([sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)])
        self.wait_listening(self.port, timeout=60)
        return self

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def require_moto():
    try:
        import moto.server  # noqa: F401
        import boto3  # noqa: F401
    except ImportError:
        if os.environ.get("FJORD_REQUIRE_BINARIES") == "1":
            pytest.fail("moto[server] is not installed (tests/python/requirements.txt)")
        pytest.skip("moto[server] is not installed")


@pytest.fixture(scope="module")
def broker():
    require_brokers()
    require(connect_binary())
    with Cluster(1, OVERRIDES, broker=RegistryBroker) as c:
        c.registry_url = c.brokers[0].url
        yield c


@pytest.fixture
def workdir():
    d = cleanup.temp_dir("fjord-connect-test-")
    yield d
    cleanup.remove_dir(d)


@pytest.fixture
def s3(workdir):
    require_moto()
    s = S3Server(workdir).start()
    try:
        yield s
    finally:
        s.stop()


def create_topic(bootstrap, topic, partitions=1):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for f in fs.values():
        f.result(30)


def consume_all(bootstrap, topic, expect, timeout=60.0):
    """Every record of topic (until `expect` arrived), with headers."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-%d" % time.time_ns(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    try:
        while len(out) < expect and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append(m)
        # a little longer, to see any extra record
        end = time.time() + 1.0
        while time.time() < end:
            m = c.poll(0.2)
            if m is not None and not m.error():
                out.append(m)
    finally:
        c.close()
    return out


def lines_of(path):
    """The lines of a file a FileStream sink writes; none until it exists."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_for(pred, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def run_standalone(args, timeout=30):
    """Run fjord-connect to its exit (config errors): (code, stderr)."""
    p = subprocess.run([connect_binary()] + args, capture_output=True, timeout=timeout, text=True)
    return p.returncode, p.stderr
