"""transactional.id.expiration.ms on a real broker and coordinator: a
confluent-kafka transactional producer commits one transaction and goes
away; a moment past the expiration (1.5 s, looked for every 0.3 s) the
coordinator forgets the id: its znode is gone, `fjord txn list` leaves it
out and `fjord txn describe` gets TRANSACTIONAL_ID_NOT_FOUND. A new
producer with the same id then starts over (a new producer id, epoch 0)
and commits; read_committed readers see both transactions' records."""
import json
import subprocess
import time

import pytest
from confluent_kafka import Producer

from fjordtest.binaries import fjord_cli, require
from fjordtest.broker import Cluster, require_brokers
from fjordtest.coord import close_kazoo
from fjordtest.kafka import create_topic
from fjordtest.names import unique
from transactions.test_markers import read

EXPIRATION_MS = 1500

OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "transactional.id.expiration.ms": EXPIRATION_MS,
    "transaction.remove.expired.transaction.cleanup.interval.ms": 300,
}


@pytest.fixture(scope="module")
def ecluster():
    require_brokers()
    require(fjord_cli())
    with Cluster(1, OVERRIDES) as c:
        if c.coord is None:
            pytest.skip("needs a coordinator (FJORD_BROKER_COORD=standalone)")
        yield c


def cli(c, *args):
    return subprocess.run([fjord_cli(), "txn", *args, "--bootstrap-server", c.bootstrap,
                           "--output", "json"], capture_output=True, text=True, timeout=30)


def describe(c, tid):
    out = cli(c, "describe", "--transactional-id", tid)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def listed(c):
    out = cli(c, "list")
    assert out.returncode == 0, out.stderr
    return [r["transactional_id"] for r in json.loads(out.stdout)]


def commit_one(c, tid, topic, value):
    """Init, one transaction with `value`, commit; the state just after init."""
    p = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": tid,
                  "acks": "all", "log_level": 3})
    p.init_transactions(30)
    after_init = describe(c, tid)
    p.begin_transaction()
    p.produce(topic, value.encode())
    p.commit_transaction(30)
    return p, after_init


def test_an_idle_transactional_id_expires_and_starts_over(ecluster, request):
    tid = unique("tx-", request)
    topic = unique("t-", request)
    create_topic(ecluster.bootstrap, topic, 1, rf=1)
    path = "/transactions/" + tid
    zk = ecluster.coord.kazoo()
    try:
        p, first = commit_one(ecluster, tid, topic, "first")
        # Still there just after the commit (well within the expiration).
        assert zk.exists(path) is not None
        assert first["producer_epoch"] == 0
        p.flush(10)
        del p  # closed: nothing uses the id any more

        deadline = time.time() + 10
        while zk.exists(path) is not None and time.time() < deadline:
            time.sleep(0.1)
        assert zk.exists(path) is None, "the expired id's znode is still there"
        assert tid not in listed(ecluster)
        out = cli(ecluster, "describe", "--transactional-id", tid)
        assert out.returncode != 0
        assert "TRANSACTIONAL_ID_NOT_FOUND" in out.stderr or "105" in out.stderr, out.stderr

        # The same id again: as never seen, a new producer id at epoch 0.
        p2, second = commit_one(ecluster, tid, topic, "second")
        assert second["producer_epoch"] == 0
        assert second["producer_id"] != first["producer_id"]
        p2.flush(10)
        del p2
        assert read(ecluster, topic, "read_committed", 2, settle=0.5) == ["first", "second"]
    finally:
        close_kazoo([zk])
