"""examples/payment-enrich (fjord-streams' stream–table join) against a real
fjord-broker: the payments and the customers table are both written before the
app starts, payments first, so arrival order is the opposite of event time. The
join is right only if each task takes the two topics' records in timestamp order
(payments by the `ts` field the app extracts, customers by record timestamp):
each payment must carry the tier its customer had at the payment's time. With
max.task.idle.ms=-1 (arrival order) the same run fails: every payment gets the last tier.
"""
import json
import os
import time

import pytest
from confluent_kafka import Producer

from fjordtest.binaries import bin_dir, require
from fjordtest.kafka import create_topic
from fjordtest.names import unique
from fjordtest.proc import Proc
from streams.payments import read_all

DAY_MS = 86_400_000
CUSTOMERS = 12
# (event time offset, tier) of each customer's table updates, and its payments' offsets.
UPDATES = [(500, "silver"), (2000, "gold"), (4000, "platinum")]
PAYMENTS = [100, 1000, 3000, 5000]
EXPECTED = {100: None, 1000: "silver", 3000: "gold", 5000: "platinum"}


class Enrich(Proc):
    stop_timeout = 30.0

    def __init__(self, workdir, bootstrap, t, extra=()):
        super().__init__("payment-enrich", workdir)
        self.args = [os.path.join(bin_dir(), "payment-enrich"), "--bootstrap", bootstrap,
                     "--application-id", t["app"], "--state-dir",
                     os.path.join(workdir, "enrich-state"), "--payments", t["pay"],
                     "--customers", t["cust"], "--output", t["out"],
                     "--exit-when-idle-ms", "3000", *extra]

    def run(self, timeout=120):
        self.launch(self.args)
        self.proc.wait(timeout)
        assert self.proc.returncode == 0, self.log_tail()
        with open(self.log_path) as f:
            lines = [l for l in f if l.startswith('{"event":"stopped"')]
        assert lines, self.log_tail()
        return json.loads(lines[-1])["stats"]


def send(bootstrap, topic, records):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value, ts in records:
        if ts is None:
            p.produce(topic, key=key, value=value)
        else:
            p.produce(topic, key=key, value=value, timestamp=ts)
    assert p.flush(30) == 0


# The second run pauses a partition as soon as two of its records wait (and resumes it as
# they drain), so the pause/resume path is taken many times.
@pytest.mark.parametrize("extra", [(), ("-p", "buffered.records.per.partition=2")],
                         ids=["default", "paused-at-2"])
def test_join_takes_table_and_stream_in_event_time_order(broker, workdir, request, extra):
    require(os.path.join(bin_dir(), "payment-enrich"))
    t = {"pay": unique("pay", request, 20), "cust": unique("cust", request, 20),
         "out": unique("enriched", request, 20), "app": unique("enrich", request, 20)}
    for name in ("pay", "cust"):
        create_topic(broker.bootstrap, t[name], partitions=2)
    create_topic(broker.bootstrap, t["out"], partitions=1)
    d0 = (int(time.time() * 1000) // DAY_MS - 1) * DAY_MS
    ids = ["c%02d" % i for i in range(CUSTOMERS)]
    # Payments first, with record timestamps of now: only the extracted `ts` orders them.
    send(broker.bootstrap, t["pay"], [
        (c.encode(), json.dumps({"customer_id": c, "amount": 1.0, "ts": d0 + off}).encode(), None)
        for off in PAYMENTS for c in ids])
    send(broker.bootstrap, t["cust"], [
        (c.encode(), json.dumps({"tier": tier}).encode(), d0 + off)
        for off, tier in UPDATES for c in ids])

    stats = Enrich(workdir, broker.bootstrap, t, extra).run()
    assert stats["input_records"] == CUSTOMERS * (len(PAYMENTS) + len(UPDATES)), stats

    got = {}
    for key, value in read_all(broker.bootstrap, t["out"]):
        e = json.loads(value)
        assert key.decode() == e["customer_id"]
        got.setdefault(e["customer_id"], []).append((e["ts"] - d0, e["tier"]))
    assert sorted(got) == ids, "customers with output: %r" % sorted(got)
    for c in ids:
        assert sorted(got[c]) == sorted(EXPECTED.items()), (c, got[c])
