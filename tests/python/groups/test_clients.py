"""Other clients in groups: kcat -G (Debian, librdkafka 2.0.2) and kafka-python's
KafkaConsumer(group_id=...) join, consume and commit."""
import shutil
import subprocess

import pytest

from fjordtest.kafka import create_topic
from groups.gutil import committed, produce


def test_kcat_balanced_consumer_joins_consumes_commits(gcluster, topic_name, group_name):
    if not shutil.which("kcat"):
        pytest.skip("kcat not installed")
    n = 500
    create_topic(gcluster.bootstrap, topic_name, 6)
    produce(gcluster.bootstrap, topic_name, n)
    # -u: unbuffered output (a pipe is otherwise block-buffered and a short run
    # shows nothing until exit); -e: exit once every assigned partition is at its
    # end, which closes the consumer and so commits what it consumed.
    p = subprocess.run(["kcat", "-b", gcluster.bootstrap, "-G", group_name, "-o", "beginning",
                        "-u", "-e", "-X", "auto.commit.interval.ms=200", "-f", "%s\n", topic_name],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=90)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.split()
    assert len(lines) == n and len(set(lines)) == n
    offs = committed(gcluster.bootstrap, group_name, topic_name)
    assert sum(o for o in offs.values() if o > 0) == n, offs


def test_kafka_python_group_consumer(gcluster, topic_name, group_name):
    kafka = pytest.importorskip("kafka")
    n = 300
    create_topic(gcluster.bootstrap, topic_name, 6)
    produce(gcluster.bootstrap, topic_name, n)
    c = kafka.KafkaConsumer(topic_name, bootstrap_servers=gcluster.bootstrap, group_id=group_name,
                            auto_offset_reset="earliest", enable_auto_commit=False,
                            consumer_timeout_ms=15000, session_timeout_ms=6000,
                            heartbeat_interval_ms=500)
    got = []
    try:
        for m in c:
            got.append(m.value)
            if len(got) == n:
                break
        c.commit()
        assert len(got) == n and len(set(got)) == n
        parts = c.assignment()
        assert len(parts) == 6
        total = sum(c.committed(tp) or 0 for tp in parts)
        assert total == n
    finally:
        c.close()
    offs = committed(gcluster.bootstrap, group_name, topic_name)
    assert sum(offs.values()) == n, offs
