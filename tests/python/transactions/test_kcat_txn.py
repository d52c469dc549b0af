"""kcat's transactional producer (Debian's kcat 1.7.1 on librdkafka 2.0.2,
`-X transactional.id=`: every message of a run in one transaction,
committed when the input ends, aborted when kcat is interrupted) against 3
fjord-brokers, RF 3: a read_committed kcat consumer sees exactly the
committed run and nothing of the interrupted one, which a read_uncommitted
consumer does see."""
import shutil
import signal
import subprocess
import time

import pytest

from fjordtest.kafka import create_topic
from fjordtest.names import unique


def kcat_read(bootstrap, topic, isolation):
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
         "-X", "isolation.level=" + isolation, "-f", "%s\n"],
        capture_output=True, timeout=60, check=True)
    return out.stdout.decode().split()


def test_kcat_transactional_producer_commit_and_abort(tcluster, request):
    if not shutil.which("kcat"):
        pytest.skip("kcat not installed")
    topic = unique("kcat-tx-", request)
    create_topic(tcluster.bootstrap, topic, 3, rf=3)
    committed = ["c%04d" % i for i in range(1000)]
    subprocess.run(["kcat", "-b", tcluster.bootstrap, "-P", "-t", topic,
                    "-X", "transactional.id=" + unique("kcat-c-", request)],
                   input=("\n".join(committed) + "\n").encode(), timeout=60, check=True)

    # A second run whose input stays open: its messages are written (a
    # read_uncommitted reader sees them), then kcat is interrupted: abort.
    # (kcat reads its input in 2 KiB chunks: with the pipe open, only the
    # lines of the first chunks are sent, so a prefix of them is expected.)
    aborted = ["a%04d" % i for i in range(500)]
    p = subprocess.Popen(["kcat", "-b", tcluster.bootstrap, "-P", "-t", topic,
                          "-X", "transactional.id=" + unique("kcat-a-", request),
                          "-X", "linger.ms=5"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(("\n".join(aborted) + "\n").encode())
        p.stdin.flush()
        deadline = time.time() + 30
        seen = []
        while time.time() < deadline:
            seen = kcat_read(tcluster.bootstrap, topic, "read_uncommitted")
            if len(seen) >= len(committed) + 300:
                break
            time.sleep(0.5)
        sent = sorted(set(seen) - set(committed))
        assert len(seen) == len(set(seen)) and set(committed) <= set(seen)
        assert len(sent) >= 300 and set(sent) <= set(aborted), sent[:5]
        # The open transaction holds read_committed readers at its first offset.
        assert set(kcat_read(tcluster.bootstrap, topic, "read_committed")) <= set(committed)
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)
        p.stdin.close()  # kcat notices the signal when its input read returns
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert sorted(kcat_read(tcluster.bootstrap, topic, "read_committed")) == sorted(committed)
    assert sorted(kcat_read(tcluster.bootstrap, topic, "read_uncommitted")) == sorted(committed + sent)
