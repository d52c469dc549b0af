"""kcat (Debian, librdkafka 2.0.2) against fjord-broker: metadata, 100k-line round trip,
murmur2 keyed produce."""
import shutil
import subprocess

import pytest

from fjordtest.kafka import create_topic
from fjordtest.murmur2 import partition_for

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")


def kcat(args, stdin=None, timeout=120):
    return subprocess.run(["kcat"] + args, input=stdin, capture_output=True, timeout=timeout, check=False)


def test_metadata_lists_broker_and_topics(cluster1, topic_name):
    create_topic(cluster1.bootstrap, topic_name, 3)
    r = kcat(["-b", cluster1.bootstrap, "-L", "-t", topic_name])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "1 brokers:" in out and "broker 1 at 127.0.0.1:%d" % cluster1.brokers[0].port in out, out
    assert 'topic "%s" with 3 partitions' % topic_name in out, out
    for p in range(3):
        assert "partition %d, leader 1" % p in out, out


def test_produce_consume_100k_lines(cluster1, topic_name, tmp_path):
    n = 100_000
    lines = ["line-%06d %s" % (i, "x" * (i % 50)) for i in range(n)]
    f = tmp_path / "in.txt"
    f.write_text("\n".join(lines) + "\n")
    r = kcat(["-b", cluster1.bootstrap, "-P", "-t", topic_name, "-l", str(f)])
    assert r.returncode == 0, r.stderr.decode()
    r = kcat(["-b", cluster1.bootstrap, "-C", "-t", topic_name, "-o", "beginning", "-e", "-q"])
    assert r.returncode == 0, r.stderr.decode()
    got = r.stdout.decode().splitlines()
    assert len(got) == n
    assert got == lines


def test_keyed_produce_lands_on_murmur2_partitions(cluster1, topic_name):
    parts = 4
    create_topic(cluster1.bootstrap, topic_name, parts)
    keys = ["key-%d" % i for i in range(200)]
    data = "".join("%s:value-of-%s\n" % (k, k) for k in keys).encode()
    r = kcat(["-b", cluster1.bootstrap, "-P", "-t", topic_name, "-K:", "-X", "topic.partitioner=murmur2_random"],
             stdin=data)
    assert r.returncode == 0, r.stderr.decode()
    for p in range(parts):
        r = kcat(["-b", cluster1.bootstrap, "-C", "-t", topic_name, "-p", str(p), "-o", "beginning", "-e", "-q",
                  "-f", "%k\\n"])
        assert r.returncode == 0, r.stderr.decode()
        got = [k for k in r.stdout.decode().splitlines() if k]
        want = [k for k in keys if partition_for(k.encode(), parts) == p]
        assert got == want, "partition %d" % p
