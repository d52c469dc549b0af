"""Broker operations endpoints against a real 3-broker cluster (fjord-coord,
three fjord-brokers with `metrics.listeners`, JSON logs, a 200 ms slow-request
threshold) under a confluent-kafka producer and a consumer group:

* every metric name the issue lists is on /metrics (the JMX exporter's Kafka
  names and the process metrics) and /metrics/cluster (kafka_exporter's), and
  `promtool check metrics` accepts both;
* messages in / bytes in count exactly what was produced, bytes out what was
  consumed;
* consumer lag rises by exactly what was produced while the group's consumer
  is stopped and falls to 0 when it resumes; members follow the consumer;
* under-replicated partitions become 1 after kill -9 of a replica and 0 after
  it returns (and ISR expansions are counted);
* a real Prometheus server scrapes the brokers and answers dashboard PromQL;
* log lines are JSON, with a slow-request line naming API, client, duration;
* /health is 200 throughout; /ready is 200, then 503 with the reason once the
  coordinator is stopped.
Tests run in file order on one module-scoped cluster."""
import json
import os
import threading
import time

import pytest

from fjordtest.binaries import broker_binary, coord_binary, require
from fjordtest.kafka import create_topic
from ops.opsharness import (OpsCluster, PromServer, parse, promtool_available, promtool_check,
                            value, values, wait_for)

OVERRIDES = {
    "replica.lag.time.max.ms": 3000,
    "zookeeper.session.timeout.ms": 4000,
    "min.insync.replicas": 1,
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
    "log.format": "json",
    "log.slow.request.ms": 200,
}

BROKER_NAMES = [
    "kafka_server_brokertopicmetrics_messagesin_total",
    "kafka_server_brokertopicmetrics_bytesin_total",
    "kafka_server_brokertopicmetrics_bytesout_total",
    "kafka_server_replicamanager_underreplicatedpartitions",
    "kafka_server_replicamanager_partitioncount",
    "kafka_server_replicamanager_leadercount",
    "kafka_controller_kafkacontroller_activecontrollercount",
    "kafka_controller_kafkacontroller_offlinepartitionscount",
    "kafka_server_replicamanager_isrshrinks_total",
    "kafka_server_replicamanager_isrexpands_total",
    "kafka_network_requestmetrics_requests_total",
    "kafka_network_requestmetrics_totaltimems_bucket",
    "kafka_network_requestmetrics_totaltimems_sum",
    "kafka_network_requestmetrics_totaltimems_count",
    "kafka_log_log_size",
    "kafka_server_kafkaserver_brokerstate",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
]

CLUSTER_NAMES = [
    "kafka_brokers",
    "kafka_broker_info",
    "kafka_topic_partitions",
    "kafka_topic_partition_current_offset",
    "kafka_topic_partition_oldest_offset",
    "kafka_topic_partition_in_sync_replica",
    "kafka_topic_partition_leader",
    "kafka_topic_partition_leader_is_preferred",
    "kafka_topic_partition_replicas",
    "kafka_topic_partition_under_replicated_partition",
    "kafka_consumergroup_current_offset",
    "kafka_consumergroup_current_offset_sum",
    "kafka_consumergroup_lag",
    "kafka_consumergroup_lag_sum",
    "kafka_consumergroup_members",
]

GROUP = "g-ops"

KAFKA_EXPORTER_LINT = sorted(
    '%s non-histogram and non-summary metrics should not have "_sum" suffix' % n
    for n in ("kafka_consumergroup_current_offset_sum", "kafka_consumergroup_lag_sum"))


def produce(bootstrap, topic, n, size=100, partition=None):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "log_level": 3})
    errors = []
    for i in range(n):
        kw = {} if partition is None else {"partition": partition}
        p.produce(topic, key=b"k%d" % i, value=b"x" * size,
                  on_delivery=lambda e, m: errors.append(e) if e else None, **kw)
        p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors


def consumer(bootstrap):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 6000, "log_level": 3})
    c.subscribe(["load"])
    return c


def consume_and_commit(c, n, timeout=30.0):
    got = 0
    deadline = time.time() + timeout
    while got < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got += 1
    assert got == n, "consumed %d of %d" % (got, n)
    c.commit(asynchronous=False)


def cluster_samples(env):
    """/metrics/cluster of the first live broker (any broker serves it)."""
    live = [b for b in env.c.brokers if b.alive()]
    return parse(live[0].metrics("/metrics/cluster"))


def sum_over_brokers(env, name, **labels):
    total = 0.0
    for b in env.c.brokers:
        if b.alive():
            v = value(parse(b.metrics()), name, **labels)
            total += v or 0.0
    return total


class Env:
    pass


@pytest.fixture(scope="module")
def env():
    require(broker_binary(), coord_binary())
    if not promtool_available():
        pytest.fail("promtool/prometheus missing: Debian package `prometheus` (scripts/env.sh)")
    c = OpsCluster(3, OVERRIDES)
    try:
        e = Env()
        e.c = c
        create_topic(c.bootstrap, "load", partitions=3, rf=1)
        create_topic(c.bootstrap, "urp", partitions=1, rf=3)
        produce(c.bootstrap, "load", 300)
        produce(c.bootstrap, "urp", 50)
        e.consumer = consumer(c.bootstrap)
        consume_and_commit(e.consumer, 300)
        yield e
        try:
            e.consumer.close()
        except Exception:  # noqa: BLE001 - closed by a test already
            pass
    finally:
        c.close()


def test_every_name_present_and_promtool_passes(env):
    for b in env.c.brokers:
        text = b.metrics()
        rc, out = promtool_check(text)
        assert rc == 0 and out.strip() == "", "promtool on broker %d /metrics:\n%s" % (b.id, out)
        s = parse(text)
        names = {n for n, _, _ in s}
        missing = [n for n in BROKER_NAMES if n not in names]
        assert not missing, "broker %d lacks %s" % (b.id, missing)
        # The JMX exporter's two shapes: all topics (no label) and per topic.
        assert value(s, "kafka_server_brokertopicmetrics_bytesin_total") is not None
        assert value(s, "kafka_server_kafkaserver_brokerstate") == 3
        assert value(s, "process_resident_memory_bytes") > 1 << 20
        assert value(s, "process_open_fds") > 3
        assert values(s, "kafka_network_requestmetrics_requests_total", request="Metadata")
        assert values(s, "kafka_network_requestmetrics_totaltimems_bucket", request="Metadata",
                      le="+Inf")
        sizes = values(s, "kafka_log_log_size", topic="urp", partition="0")
        assert len(sizes) == 1 and sizes[0][1] > 50 * 100, sizes
    s = parse(env.c.brokers[0].metrics())
    assert values(s, "kafka_server_brokertopicmetrics_messagesin_total", topic="load") or \
        any(values(parse(b.metrics()), "kafka_server_brokertopicmetrics_messagesin_total",
                   topic="load") for b in env.c.brokers[1:])
    # Leaders and the controller, across the cluster.
    assert sum_over_brokers(env, "kafka_server_replicamanager_leadercount") == 4
    assert sum_over_brokers(env, "kafka_server_replicamanager_partitioncount") == 3 + 3
    assert sum_over_brokers(env, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert sum_over_brokers(env, "kafka_server_replicamanager_underreplicatedpartitions") == 0

    for b in env.c.brokers:
        text = b.metrics("/metrics/cluster")
        rc, out = promtool_check(text)
        # kafka_exporter's own names end in `_sum` without being summaries:
        # promtool's linter flags exactly those two (it flags kafka_exporter's
        # output the same way); anything else (a parse error, another
        # complaint) fails.
        problems = [ln for ln in out.splitlines() if ln.strip()]
        assert sorted(problems) == KAFKA_EXPORTER_LINT, \
            "promtool on broker %d /metrics/cluster (rc %d):\n%s" % (b.id, rc, out)
        s = parse(text)
        names = {n for n, _, _ in s}
        missing = [n for n in CLUSTER_NAMES if n not in names]
        assert not missing, "broker %d /metrics/cluster lacks %s" % (b.id, missing)
        assert value(s, "kafka_brokers") == 3
        assert value(s, "kafka_topic_partitions", topic="load") == 3
        # Offsets of every partition, the two this broker does not lead
        # asked of their leaders: they add up to what was produced.
        cur = values(s, "kafka_topic_partition_current_offset", topic="load")
        assert len(cur) == 3 and sum(v for _, v in cur) == 300, cur
        assert value(s, "kafka_topic_partition_current_offset", topic="urp", partition="0") == 50
        assert value(s, "kafka_topic_partition_oldest_offset", topic="urp", partition="0") == 0
        assert value(s, "kafka_topic_partition_replicas", topic="urp", partition="0") == 3
        assert value(s, "kafka_topic_partition_in_sync_replica", topic="urp", partition="0") == 3
        assert value(s, "kafka_topic_partition_leader_is_preferred", topic="urp",
                     partition="0") == 1
        assert value(s, "kafka_consumergroup_current_offset_sum", consumergroup=GROUP,
                     topic="load") == 300
        assert value(s, "kafka_consumergroup_lag_sum", consumergroup=GROUP, topic="load") == 0
        assert value(s, "kafka_consumergroup_members", consumergroup=GROUP) == 1


def test_messages_in_and_bytes_count_what_was_produced(env):
    c = env.c
    create_topic(c.bootstrap, "mi", partitions=1, rf=1)
    assert sum_over_brokers(env, "kafka_server_brokertopicmetrics_messagesin_total",
                            topic="mi") == 0
    before = sum_over_brokers(env, "kafka_server_brokertopicmetrics_messagesin_total")
    produce(c.bootstrap, "mi", 500, size=100)
    assert sum_over_brokers(env, "kafka_server_brokertopicmetrics_messagesin_total",
                            topic="mi") == 500
    assert sum_over_brokers(env, "kafka_server_brokertopicmetrics_messagesin_total") \
        == before + 500
    assert sum_over_brokers(env, "kafka_server_brokertopicmetrics_bytesin_total",
                            topic="mi") >= 500 * 100
    from confluent_kafka import Consumer
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g-mi",
                     "auto.offset.reset": "earliest", "log_level": 3})
    cons.subscribe(["mi"])
    got = 0
    deadline = time.time() + 30
    while got < 500 and time.time() < deadline:
        m = cons.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
    cons.close()
    assert got == 500
    assert sum_over_brokers(env, "kafka_server_brokertopicmetrics_bytesout_total",
                            topic="mi") >= 500 * 100


def test_lag_rises_while_stopped_and_falls_when_resumed(env):
    c = env.c

    def lag():
        return value(cluster_samples(env), "kafka_consumergroup_lag_sum",
                     consumergroup=GROUP, topic="load")

    def members():
        return value(cluster_samples(env), "kafka_consumergroup_members", consumergroup=GROUP)

    assert lag() == 0
    env.consumer.close()
    wait_for(lambda: members() == 0, 15, "members 0 after close")
    produce(c.bootstrap, "load", 200)
    wait_for(lambda: lag() == 200, 15, "lag 200 while the consumer is stopped")
    per = values(cluster_samples(env), "kafka_consumergroup_lag", consumergroup=GROUP,
                 topic="load")
    assert len(per) == 3 and sum(v for _, v in per) == 200, per
    env.consumer = consumer(c.bootstrap)
    consume_and_commit(env.consumer, 200)
    wait_for(lambda: lag() == 0, 15, "lag 0 after the consumer resumed")
    wait_for(lambda: members() == 1, 15, "members 1 after resuming")


def test_prometheus_scrapes_and_answers_dashboard_queries(env):
    c = env.c
    jobs = {"kafka": ("/metrics", ["127.0.0.1:%d" % b.metrics_port for b in c.brokers]),
            "kafka_exporter": ("/metrics/cluster", ["127.0.0.1:%d" % c.brokers[0].metrics_port])}
    prom = PromServer(os.path.join(c.dir, "prometheus"), jobs).start()
    stop = threading.Event()

    def load():
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 5, "log_level": 3})
        while not stop.is_set():
            for _ in range(50):
                p.produce("load", value=b"y" * 100)
            p.poll(0)
            time.sleep(0.05)
        p.flush(10)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        wait_for(lambda: len(prom.targets_up()) == 4, 30, "4 targets up")

        def positive(q):
            r = prom.query(q)
            return r if r and all(float(x["value"][1]) > 0 for x in r) else None

        wait_for(lambda: positive("sum(rate(kafka_server_brokertopicmetrics_messagesin_total[1m]))"),
                 30, "messages-in rate > 0")
        r = wait_for(lambda: prom.query("sum(kafka_consumergroup_lag) by (consumergroup)"), 30,
                     "lag by group")
        assert GROUP in {x["metric"].get("consumergroup") for x in r}, r
        r = wait_for(lambda: prom.query("kafka_brokers"), 30, "kafka_brokers")
        assert float(r[0]["value"][1]) == 3
        r = prom.query("sum(kafka_server_replicamanager_leadercount)")
        assert float(r[0]["value"][1]) >= 4
        wait_for(lambda: prom.query(
            'histogram_quantile(0.99, sum(rate(kafka_network_requestmetrics_totaltimems_bucket'
            '{request="Produce"}[1m])) by (le))'), 30, "produce p99")
        wait_for(lambda: positive("sum(rate(process_cpu_seconds_total[1m]))"), 30, "cpu rate")
        assert prom.query("sum(kafka_topic_partition_current_offset) by (topic)")
    finally:
        stop.set()
        t.join(15)
        prom.stop()


def test_under_replicated_after_kill9_and_back(env):
    c = env.c

    def urp():
        return sum_over_brokers(env, "kafka_server_replicamanager_underreplicatedpartitions")

    def urp_cluster():
        live = [b for b in c.brokers if b.alive()]
        return value(parse(live[0].metrics("/metrics/cluster")),
                     "kafka_topic_partition_under_replicated_partition", topic="urp",
                     partition="0")

    expands_before = sum_over_brokers(env, "kafka_server_replicamanager_isrexpands_total")
    assert urp() == 0
    # A broker that is neither the controller nor urp's leader, so nothing else moves.
    leader = value(cluster_samples(env), "kafka_topic_partition_leader", topic="urp",
                   partition="0")
    victim = [b for b in c.brokers if b.id != leader and value(
        parse(b.metrics()), "kafka_controller_kafkacontroller_activecontrollercount") == 0][0]
    victim.kill9()
    wait_for(lambda: urp() == 1, 30, "under-replicated partitions 1 after kill -9")
    assert urp_cluster() == 1
    # Registered brokers: the victim's entry goes when its session expires.
    wait_for(lambda: value(cluster_samples(env), "kafka_brokers") == 2, 30, "kafka_brokers 2")
    victim.start()
    wait_for(lambda: urp() == 0, 60, "under-replicated partitions 0 after the broker returned")
    assert urp_cluster() == 0
    assert sum_over_brokers(env, "kafka_server_replicamanager_isrexpands_total") > expands_before
    wait_for(lambda: victim.get("/ready")[0] == 200, 30, "restarted broker ready")


def test_logs_are_json_with_slow_request_lines(env):
    b = env.c.brokers[0]
    with open(b.log_path, encoding="utf-8", errors="replace") as f:
        lines = [ln for ln in f.read().splitlines() if ln and not ln.startswith("==== start")]
    assert lines
    records = []
    for ln in lines:
        try:
            records.append(json.loads(ln))
        except ValueError:
            pytest.fail("not a JSON log line: %r" % ln)
    assert all("level" in r and "fields" in r for r in records)
    slow = [r["fields"] for r in records if r["fields"].get("message") == "slow request"]
    assert slow, "no slow-request line (consumers' fetches wait 500 ms > 200 ms)"
    s = slow[0]
    assert s["api"] and s["client"].startswith("127.0.0.1:") and int(s["ms"]) >= 200, s


def test_health_and_ready_follow_the_coordinator(env):
    c = env.c
    for b in c.brokers:
        assert b.get("/health")[0] == 200
        st, body = b.get("/ready")
        assert st == 200 and json.loads(body)["ready"] is True, body
    st, body = c.brokers[0].get("/nope")
    assert st == 404
    c.coord.stop()
    for b in c.brokers:
        st, body = wait_for(lambda b=b: (lambda r: r if r[0] == 503 else None)(b.get("/ready")),
                            30, "broker %d not ready without its coordinator" % b.id)
        doc = json.loads(body)
        assert doc["ready"] is False
        assert any("coordinator session" in r for r in doc["reasons"]), doc
        assert b.get("/health")[0] == 200
