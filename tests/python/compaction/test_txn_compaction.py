"""Log compaction of a topic holding transactions (issue 14): two
confluent-kafka transactional producers and a plain idempotent one write
interleaved into one compacted partition over a set of keys: committed
transactions, aborted transactions (open at the same time as committed ones,
so their batches interleave) and plain records. After cleaning, a
read_committed consumer from the beginning reaches the end of the log within
a bounded time (a stall fails the test) and reads exactly the latest
committed record of each key at its original offset, nothing of any aborted
transaction; a read_uncommitted consumer reaches the end too and finds the
aborted records gone from the log. Then a transaction left open while the
cleaner runs: read_committed reads up to its first offset (the LSO),
nothing from there on is cleaned, and after the commit the consumer reads on
and the cleaner cleans past it. Last, the markers: once every record of a
transaction is cleaned away and delete.retention.ms has passed, its
COMMIT/ABORT marker goes too (raw fetches, which show control batches), and
an aborted transaction's entry with it, while read_committed still reads
exactly the latest committed values up to the high watermark."""
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from fjordtest.broker import Cluster, require_brokers  # noqa: E402
from fjordtest.kafka import create_topic, set_topic_config  # noqa: E402
from fjordtest.kafka_wire import fetch_batches  # noqa: E402
from fjordtest.names import unique  # noqa: E402
from fjordtest.waits import wait_until  # noqa: E402

KEYS = [b"k%02d" % i for i in range(12)]
ROUNDS = 8
READ_BOUND_S = 30


@pytest.fixture(scope="module")
def cluster():
    require_brokers()
    with Cluster(1, {"log.cleaner.backoff.ms": 100,
                     "offsets.topic.replication.factor": 1,
                     "transaction.state.log.replication.factor": 1,
                     "transaction.state.log.min.isr": 1}) as c:
        yield c


def read_to_end(bootstrap, topic, end, isolation):
    """Every record of partition 0 from the beginning until offset `end` is
    consumed: [(offset, key, value)]. Fails (a stall) if `end` is not reached
    within READ_BOUND_S."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-compaction-reader",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    out = []
    deadline = time.time() + READ_BOUND_S
    try:
        while time.time() < deadline:
            for m in c.consume(1000, 0.2):
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key(), m.value()))
            if out and out[-1][0] >= end:
                return out
    finally:
        c.close()
    raise AssertionError("%s consumer stalled at %s, end %d" %
                         (isolation, out[-1][0] if out else None, end))


class Written:
    """What each producer's delivery reports said: (key, value) -> offset."""

    def __init__(self):
        self.offsets = {}

    def report(self, err, msg):
        assert err is None, err
        self.offsets[(msg.key(), msg.value())] = msg.offset()


def txn_producer(bootstrap, tid):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "linger.ms": 0, "compression.type": "none", "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    return p


def markers_written(b, topic):
    """No transaction is open on partition 0: its last stable offset (what a
    read_committed consumer is told) has reached its high watermark."""
    tp = TopicPartition(topic, 0)
    rc = Consumer({"bootstrap.servers": b, "group.id": "lso", "isolation.level": "read_committed"})
    ru = Consumer({"bootstrap.servers": b, "group.id": "hw", "isolation.level": "read_uncommitted"})
    try:
        return rc.get_watermark_offsets(tp, timeout=10)[1] == ru.get_watermark_offsets(tp, timeout=10)[1]
    finally:
        rc.close()
        ru.close()


def produce_mix(b, topic, request):
    """Writes the interleaving; returns (plain, committed, aborted) as
    {(key, value): offset} and the offset of the closing plain record."""
    plain_w, ta_w, tb_w = Written(), Written(), Written()
    plain = Producer({"bootstrap.servers": b, "enable.idempotence": True, "linger.ms": 0,
                      "compression.type": "none"})
    ta = txn_producer(b, unique("tx-a", request))
    tb = txn_producer(b, unique("tx-b", request))
    committed, aborted = {}, {}
    for r in range(ROUNDS):
        for k in KEYS:
            plain.produce(topic, key=k, value=b"P-%d-%s" % (r, k), partition=0,
                          on_delivery=plain_w.report)
        assert plain.flush(30) == 0
        commit_a = r % 3 != 2
        ta.begin_transaction()
        tb.begin_transaction()
        before_a = set(ta_w.offsets)
        before_b = set(tb_w.offsets)
        for i, k in enumerate(KEYS[r % 2::2]):
            ta.produce(topic, key=k, value=b"A-%d-%s" % (r, k), partition=0,
                       on_delivery=ta_w.report)
            assert ta.flush(30) == 0
            tb.produce(topic, key=k, value=b"B-%d-%s" % (r, k), partition=0,
                       on_delivery=tb_w.report)
            assert tb.flush(30) == 0
            if i % 2 == 0:
                # A plain record of another key between the two open transactions.
                other = KEYS[(KEYS.index(k) + 1) % len(KEYS)]
                plain.produce(topic, key=other, value=b"Q-%d-%d-%s" % (r, i, other),
                              partition=0, on_delivery=plain_w.report)
                assert plain.flush(30) == 0
        if commit_a:
            ta.commit_transaction(30)
        else:
            ta.abort_transaction(30)
        tb.abort_transaction(30)
        new_a = {kv: o for kv, o in ta_w.offsets.items() if kv not in before_a}
        new_b = {kv: o for kv, o in tb_w.offsets.items() if kv not in before_b}
        (committed if commit_a else aborted).update(new_a)
        aborted.update(new_b)
    # EndTxn is answered before the coordinator's markers are in the log (as in
    # Kafka): wait for them, so the closing record is the partition's last.
    wait_until(lambda: markers_written(b, topic), 30, "the last transaction markers")
    # The closing record: the last batch is the active tail, never cleaned.
    plain.produce(topic, key=b"zz-close", value=b"P-close", partition=0,
                  on_delivery=plain_w.report)
    assert plain.flush(30) == 0
    return plain_w.offsets, committed, aborted, plain_w.offsets[(b"zz-close", b"P-close")]


def latest_per_key(records):
    """{key: (offset, value)} of the highest offset per key."""
    out = {}
    for (k, v), o in records.items():
        if k not in out or o > out[k][0]:
            out[k] = (o, v)
    return out


def fold(records):
    """A consumer's view of the table: the last value it read per key."""
    out = {}
    for _, k, v in records:
        out[k] = v
    return out


def test_compacted_topic_with_transactions_never_stalls_read_committed(cluster, request):
    topic = unique("compact-txn", request)
    b = cluster.bootstrap
    create_topic(b, topic, configs={"cleanup.policy": "compact", "segment.ms": "3600000",
                                    "min.cleanable.dirty.ratio": "0.01",
                                    "delete.retention.ms": "2000"})
    plain, committed, aborted, end = produce_mix(b, topic, request)
    assert committed and aborted
    everything = {}
    everything.update(plain)
    everything.update(committed)
    everything.update(aborted)
    by_offset = {o: kv for kv, o in everything.items()}
    assert len(by_offset) == len(everything)
    visible = dict(plain)
    visible.update(committed)
    want = {k: v for k, (_, v) in latest_per_key(visible).items()}

    lo, hi = Consumer({"bootstrap.servers": b, "group.id": "wm"}).get_watermark_offsets(
        TopicPartition(topic, 0), timeout=10)
    assert lo == 0 and hi == end + 1, (lo, hi, end)

    # Before cleaning: read_committed already sees exactly the committed table.
    rc = read_to_end(b, topic, end, "read_committed")
    assert fold(rc) == want
    assert not [r for r in rc if (r[1], r[2]) in aborted]
    ru_before = read_to_end(b, topic, end, "read_uncommitted")
    assert len(ru_before) == len(everything)

    set_topic_config(b, topic, "segment.ms", "500")

    # The cleaner has run once only the latest committed record of each key
    # is left: superseded plain and committed transactional records and every
    # record of an aborted transaction are gone (read_uncommitted shows every
    # record kept; the COMMIT/ABORT markers stay but are not delivered).
    want_records = sorted((o, k, v) for k, (o, v) in latest_per_key(visible).items())
    assert len(want_records) == len(KEYS) + 1

    def cleaned():
        got = read_to_end(b, topic, end, "read_uncommitted")
        return got if got == want_records else None
    wait_until(cleaned, 60, "the cleaner to keep only the latest committed record per key",
               interval=0.5)
    # Let it run some more passes over the cleaned log.
    time.sleep(2)
    for _ in range(3):
        ru = read_to_end(b, topic, end, "read_uncommitted")
        rc = read_to_end(b, topic, end, "read_committed")
        for got in (ru, rc):
            for o, k, v in got:
                assert by_offset.get(o) == (k, v), (o, k, v)
        # read_committed: nothing of an aborted transaction, exactly the
        # latest committed value of each key, at its original offset.
        assert rc == want_records
        assert not [r for r in rc if (r[1], r[2]) in aborted]
        assert fold(rc) == want
        assert ru == want_records
        time.sleep(0.5)

    # An open transaction while the cleaner runs: read_committed reads up to
    # its first offset (the LSO) and no further, and nothing at or past it
    # is cleaned; once committed, the consumer reads on to the new end.
    tc = txn_producer(b, unique("tx-c", request))
    tc_w, pl_w = Written(), Written()
    pl = Producer({"bootstrap.servers": b, "enable.idempotence": True, "linger.ms": 0})
    tc.begin_transaction()
    tc.produce(topic, key=KEYS[0], value=b"O-open", partition=0, on_delivery=tc_w.report)
    assert tc.flush(30) == 0
    open_first = tc_w.offsets[(KEYS[0], b"O-open")]
    assert open_first == end + 1
    pl.produce(topic, key=KEYS[0], value=b"P-after-open", partition=0, on_delivery=pl_w.report)
    pl.produce(topic, key=KEYS[1], value=b"P-after-open", partition=0, on_delivery=pl_w.report)
    assert pl.flush(30) == 0
    time.sleep(2)
    rc = read_to_end(b, topic, end, "read_committed")
    assert rc == want_records
    ru = read_to_end(b, topic, open_first + 2, "read_uncommitted")
    assert [r[0] for r in ru if r[0] >= open_first] == [open_first, open_first + 1, open_first + 2]
    tc.commit_transaction(30)
    pl.produce(topic, key=b"zz-close", value=b"P-close-2", partition=0, on_delivery=pl_w.report)
    assert pl.flush(30) == 0
    end2 = pl_w.offsets[(b"zz-close", b"P-close-2")]
    visible.update(tc_w.offsets)
    visible.update(pl_w.offsets)
    want2 = sorted((o, k, v) for k, (o, v) in latest_per_key(visible).items())
    assert fold(want2)[KEYS[0]] == b"P-after-open"
    rc = read_to_end(b, topic, end2, "read_committed")
    assert fold(rc) == fold(want2)
    wait_until(lambda: read_to_end(b, topic, end2, "read_committed") == want2, 60,
               "the cleaner to clean past the committed transaction", interval=0.5)
    assert read_to_end(b, topic, end2, "read_uncommitted") == want2


def test_markers_go_once_their_transactions_are_cleaned(cluster, request):
    topic = unique("compact-markers", request)
    b = cluster.bootstrap
    host, port = b.split(",")[0].rsplit(":", 1)
    port = int(port)
    create_topic(b, topic, configs={"cleanup.policy": "compact", "segment.ms": "3600000",
                                    "min.cleanable.dirty.ratio": "0.01",
                                    "delete.retention.ms": "2000"})
    plain, committed, aborted, end = produce_mix(b, topic, request)
    visible = dict(plain)
    visible.update(committed)
    want_records = sorted((o, k, v) for k, (o, v) in latest_per_key(visible).items())

    batches, hw, lso, _ = fetch_batches(host, port, topic)
    assert hw == lso == end + 1, (hw, lso, end)
    markers = [x for x in batches if x["control"]]
    # Two transactions a round, each ended by one marker here.
    assert len(markers) == 2 * ROUNDS, markers
    pids = {x["producer_id"] for x in markers}
    assert len(pids) == 2
    # Each producer's last transaction keeps its marker: its last data batch
    # stays (emptied or not) for the producer's sequence, and a marker goes
    # only once its transaction has no batch left.
    last_marker = {pid: max(x["base"] for x in markers if x["producer_id"] == pid)
                   for pid in pids}
    removable = {x["base"] for x in markers} - set(last_marker.values())

    set_topic_config(b, topic, "segment.ms", "500")

    def markers_gone():
        got, hw2, lso2, ab = fetch_batches(host, port, topic, read_committed=True)
        left = sorted(x["base"] for x in got if x["control"])
        return (got, hw2, lso2, ab) if left == sorted(last_marker.values()) else None
    got, hw2, lso2, ab = wait_until(
        markers_gone, 60, "the cleaner to remove the markers of fully cleaned transactions",
        interval=0.5)
    # The markers' offsets are gone from the log; no other offset moved.
    assert not [x for x in got if x["base"] in removable]
    assert (hw2, lso2) == (hw, lso)
    # Only an abort whose marker is still there is listed for read_committed.
    abort_left = [x for x in got if x["control"] and x["base"] == last_marker.get(x["producer_id"])]
    for pid, first in ab:
        assert any(m["producer_id"] == pid and m["base"] > first for m in abort_left), (pid, first)
    assert len(ab) == 1, ab
    # read_committed from the beginning: exactly the latest committed value
    # of each key at its original offset, reaching the high watermark.
    for _ in range(3):
        rc = read_to_end(b, topic, end, "read_committed")
        assert rc == want_records
        assert not [r for r in rc if (r[1], r[2]) in aborted]
        got, hw3, lso3, _ = fetch_batches(host, port, topic, read_committed=True)
        assert got[-1]["last"] + 1 == hw3 == lso3 == hw
        time.sleep(0.5)
