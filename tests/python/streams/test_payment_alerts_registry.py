"""payment-alerts with its payments and alerts in each Schema Registry format (fjord-streams'
RegistrySerde: Avro, JSON Schema, Protobuf) against a real fjord-broker serving the
registry: confluent-kafka's serializer of that format writes the payments, the example
reads them and writes its alerts in Confluent's wire format, and confluent-kafka's
deserializer reads those back. Every expected alert once; records that are not in the
format go to the dead-letter topic.
"""
import json

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

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
PAYMENT_AVRO = {"type": "record", "name": "Payment", "namespace": "fjord.examples", "fields": [
    {"name": "customer_id", "type": "string"}, {"name": "amount", "type": "double"},
    {"name": "ts", "type": "long"}]}
PAYMENT_JSON = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Payment",
                "type": "object", "properties": {
                    "customer_id": {"type": "string"}, "amount": {"type": "number"},
                    "ts": {"type": "integer"}},
                "required": ["customer_id", "amount", "ts"]}
ALERT_JSON = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Alert",
              "type": "object", "properties": {
                  "customer_id": {"type": "string"}, "day": {"type": "string"},
                  "count": {"type": "integer"}},
              "required": ["customer_id", "day", "count"]}
# Not in any of the formats: a record without the magic byte, one cut short, an empty one.
NOT_FRAMED = [b'{"customer_id": "c00001", "amount": 1, "ts": 1}', b"\x00\x00", b""]


def proto_classes():
    """fjord.examples' Payment and Alert, each in its own file as the example's schemas are,
    built at run time (no protoc needed)."""
    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    out = []
    for name, fields in (("Payment", [("customer_id", F.TYPE_STRING), ("amount", F.TYPE_DOUBLE),
                                      ("ts", F.TYPE_INT64)]),
                         ("Alert", [("customer_id", F.TYPE_STRING), ("day", F.TYPE_STRING),
                                    ("count", F.TYPE_INT64)])):
        fdp = descriptor_pb2.FileDescriptorProto(name="fjord_%s.proto" % name.lower(),
                                                 package="fjord.examples", syntax="proto3")
        m = fdp.message_type.add(name=name)
        for i, (f, t) in enumerate(fields, 1):
            m.field.add(name=f, number=i, type=t, label=F.LABEL_OPTIONAL)
        pool.Add(fdp)
        out.append(message_factory.GetMessageClass(
            pool.FindMessageTypeByName("fjord.examples." + name)))
    return out


def serdes(fmt, sr):
    """(payment serializer taking a dict, alert deserializer returning a dict)."""
    if fmt == "avro":
        return AvroSerializer(sr, json.dumps(PAYMENT_AVRO)), AvroDeserializer(sr)
    if fmt == "json_schema":
        return (JSONSerializer(json.dumps(PAYMENT_JSON), sr),
                JSONDeserializer(json.dumps(ALERT_JSON), schema_registry_client=sr))
    Payment, Alert = proto_classes()
    conf = {"use.deprecated.format": False}
    ser = ProtobufSerializer(Payment, sr, conf)
    de = ProtobufDeserializer(Alert, conf, schema_registry_client=sr)
    return ((lambda d, ctx: ser(Payment(**d), ctx)),
            (lambda b, ctx: {"customer_id": (m := de(b, ctx)).customer_id, "day": m.day,
                             "count": m.count}))


@pytest.fixture(scope="module")
def reg():
    require(app_binary())
    with RegistryCluster(1, OVERRIDES) as c:
        yield c


@pytest.mark.parametrize("fmt", ["avro", "json_schema", "protobuf"])
def test_registry_payments_in_registry_alerts_out(reg, tmp_path, request, fmt):
    t = {n: unique(n, request, 20) for n in ("pay", "alerts", "dlq")}
    create_topic(reg.bootstrap, t["pay"], partitions=2)
    create_topic(reg.bootstrap, t["alerts"], partitions=1)
    create_topic(reg.bootstrap, t["dlq"], partitions=1)
    sr = SchemaRegistryClient({"url": reg.url})
    ser, de = serdes(fmt, sr)
    recs = generate(N, CUSTOMERS, days=1, jitter_ms=0)
    p = Producer({"bootstrap.servers": reg.bootstrap, "enable.idempotence": True})
    for k, v, _ in recs:
        p.produce(t["pay"], key=k,
                  value=ser(json.loads(v), SerializationContext(t["pay"], MessageField.VALUE)))
        p.poll(0)
    for bad in NOT_FRAMED:
        p.produce(t["pay"], key=b"bad", value=bad)
    assert p.flush(30) == 0

    a = App(str(tmp_path), "app", reg.bootstrap, unique("pa", request, 20), "at_least_once",
            3_600_000, ["--input", t["pay"], "--output", t["alerts"], "--dlq", t["dlq"],
                        "--value-format", fmt, "--schema-registry-url", reg.url,
                        "--exit-when-idle-ms", "3000"]).start()
    assert a.wait_exit(120) == 0, a.log_tail()

    got = [de(v, SerializationContext(t["alerts"], MessageField.VALUE))
           for _, v in read_all(reg.bootstrap, t["alerts"])]
    pairs = [(x["customer_id"], x["day"]) for x in got]
    assert all(x["count"] == 11 for x in got), got[:3]
    assert len(pairs) == len(set(pairs)), "an alert twice"
    assert set(pairs) == expected_alerts(recs) and pairs, (len(pairs), len(expected_alerts(recs)))
    # The alerts' schema is registered under <output>-value in the format asked for, as
    # Confluent's serializer would.
    latest = sr.get_latest_version(t["alerts"] + "-value").schema
    assert latest.schema_type == {"avro": "AVRO", "json_schema": "JSON",
                                  "protobuf": "PROTOBUF"}[fmt], latest.schema_type
    assert sorted(v for _, v in read_all(reg.bootstrap, t["dlq"])) == sorted(NOT_FRAMED)
    assert a.stats()["tasks"]["dead_lettered"] == len(NOT_FRAMED)
