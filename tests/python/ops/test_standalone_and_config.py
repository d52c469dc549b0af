"""The operations endpoints on a standalone broker (no coordinator: ready as
soon as it runs, its own controller), the text log format with its
slow-request line, and the configuration's answers to bad ops keys: an
invalid `log.format` exits 2 naming the key and file, a `metrics.listeners`
port already taken exits 1 naming the key."""
import socket
import subprocess
import time

import pytest

from fjordtest.binaries import broker_binary, require
from fjordtest.kafka import create_topic
from fjordtest.net import HOST
from ops.opsharness import OpsCluster, parse, value, values


@pytest.fixture(scope="module")
def standalone():
    require(broker_binary())
    with OpsCluster(1, {"log.slow.request.ms": 100}, coord=False) as c:
        yield c


def test_standalone_broker_is_ready_and_its_own_controller(standalone):
    b = standalone.brokers[0]
    st, body = b.get("/ready")
    assert st == 200, body
    create_topic(standalone.bootstrap, "solo", partitions=2)
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": standalone.bootstrap, "log_level": 3})
    for i in range(10):
        p.produce("solo", value=b"v%d" % i, partition=i % 2)
    assert p.flush(10) == 0
    s = parse(b.metrics())
    assert value(s, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(s, "kafka_server_replicamanager_leadercount") == 2
    assert value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic="solo") == 10
    assert values(s, "kafka_network_requestmetrics_requests_total", request="Produce")
    c = parse(b.metrics("/metrics/cluster"))
    assert value(c, "kafka_brokers") == 1
    cur = values(c, "kafka_topic_partition_current_offset", topic="solo")
    assert sorted(v for _, v in cur) == [5, 5]
    # Only GET (and HEAD) are served.
    req = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                          b.url("/metrics")], capture_output=True, text=True, timeout=10)
    if req.returncode == 0:
        assert req.stdout == "405"


def test_text_logs_carry_slow_request_lines(standalone):
    b = standalone.brokers[0]
    # A consumer at the end of a topic long-polls: each Fetch waits 500 ms > 100 ms.
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": standalone.bootstrap, "group.id": "g-slow",
                  "log_level": 3})
    c.assign([TopicPartition("solo", 0, 5)])
    deadline = time.time() + 2.0
    while time.time() < deadline:
        c.poll(0.2)
    c.close()
    with open(b.log_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if "slow request" in ln]
    assert lines, text[-2000:]
    assert any("api=" in ln and "client=127.0.0.1:" in ln and " ms=" in ln for ln in lines), lines[:3]
    assert not any(ln.startswith("{") for ln in text.splitlines())


def _config(tmp_path, extra):
    port = socket.socket()
    port.bind((HOST, 0))
    kport = port.getsockname()[1]
    port.close()
    cfg = tmp_path / "s.properties"
    cfg.write_text("broker.id=1\nlisteners=PLAINTEXT://%s:%d\nlog.dirs=%s\nzookeeper.connect=\n%s"
                   % (HOST, kport, tmp_path / "data", extra))
    return cfg


def test_bad_log_format_exits_2_naming_key(tmp_path):
    require(broker_binary())
    cfg = _config(tmp_path, "log.format=xml\n")
    r = subprocess.run([broker_binary(), str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "log.format" in r.stderr and str(cfg) in r.stderr, r.stderr


def test_metrics_port_taken_exits_1_naming_key(tmp_path):
    require(broker_binary())
    holder = socket.socket()
    holder.bind((HOST, 0))
    holder.listen(1)
    try:
        cfg = _config(tmp_path, "metrics.listeners=http://%s:%d\n"
                      % (HOST, holder.getsockname()[1]))
        r = subprocess.run([broker_binary(), str(cfg)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1, r.stderr
        assert "metrics.listeners" in r.stderr, r.stderr
    finally:
        holder.close()
