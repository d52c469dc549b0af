"""payment-alerts with Avro payments and alerts through the Schema Registry (fjord-streams'
RegistrySerde) against a real fjord-broker serving the registry: confluent-kafka's
AvroSerializer writes the payments, the example reads them and writes its alerts in
Confluent's wire format, and confluent-kafka's AvroDeserializer reads those back. Every
expected alert once; records that are not Avro go to the dead-letter topic.
"""
import json

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fjordtest.binaries import require
from fjordtest.kafka import create_topic
from fjordtest.names import unique
from fjordtest.registry import RegistryCluster
from streams.conftest import OVERRIDES, App, app_binary
from streams.payments import expected_alerts, generate, read_all

N = 6000
CUSTOMERS = 100
# The example's schemas (examples/payment-alerts/src/lib.rs), as a Python producer of
# payments and a reader of alerts would carry them.
PAYMENT = {"type": "record", "name": "Payment", "namespace": "fjord.examples", "fields": [
    {"name": "customer_id", "type": "string"}, {"name": "amount", "type": "double"},
    {"name": "ts", "type": "long"}]}
NOT_AVRO = [b'{"customer_id": "c00001", "amount": 1, "ts": 1}', b"\x00\x00", b""]


@pytest.fixture(scope="module")
def reg():
    require(app_binary())
    with RegistryCluster(1, OVERRIDES) as c:
        yield c


def test_avro_payments_in_avro_alerts_out(reg, tmp_path, request):
    t = {n: unique(n, request, 20) for n in ("pay", "alerts", "dlq")}
    create_topic(reg.bootstrap, t["pay"], partitions=2)
    create_topic(reg.bootstrap, t["alerts"], partitions=1)
    create_topic(reg.bootstrap, t["dlq"], partitions=1)
    sr = SchemaRegistryClient({"url": reg.url})
    ser = AvroSerializer(sr, json.dumps(PAYMENT))
    recs = generate(N, CUSTOMERS, days=1, jitter_ms=0)
    p = Producer({"bootstrap.servers": reg.bootstrap, "enable.idempotence": True})
    for k, v, _ in recs:
        p.produce(t["pay"], key=k,
                  value=ser(json.loads(v), SerializationContext(t["pay"], MessageField.VALUE)))
        p.poll(0)
    for bad in NOT_AVRO:
        p.produce(t["pay"], key=b"bad", value=bad)
    assert p.flush(30) == 0

    a = App(str(tmp_path), "app", reg.bootstrap, unique("pa", request, 20), "at_least_once",
            3_600_000, ["--input", t["pay"], "--output", t["alerts"], "--dlq", t["dlq"],
                        "--value-format", "avro", "--schema-registry-url", reg.url,
                        "--exit-when-idle-ms", "3000"]).start()
    assert a.wait_exit(120) == 0, a.log_tail()

    de = AvroDeserializer(sr)
    got = [de(v, SerializationContext(t["alerts"], MessageField.VALUE))
           for _, v in read_all(reg.bootstrap, t["alerts"])]
    pairs = [(x["customer_id"], x["day"]) for x in got]
    assert all(x["count"] == 11 for x in got), got[:3]
    assert len(pairs) == len(set(pairs)), "an alert twice"
    assert set(pairs) == expected_alerts(recs) and pairs, (len(pairs), len(expected_alerts(recs)))
    # The alerts' schema is registered under <output>-value, as Confluent's serializer would.
    assert sr.get_latest_version(t["alerts"] + "-value").schema.schema_str
    assert sorted(v for _, v in read_all(reg.bootstrap, t["dlq"])) == sorted(NOT_AVRO)
    assert a.stats()["tasks"]["dead_lettered"] == len(NOT_AVRO)
