"""confluent-kafka's Avro, Protobuf and JSON Schema serializers and
deserializers through a real Producer and Consumer against fjord-broker, its
registry answering them: 10,000 records each, every one equal after the round
trip, every value framed with the id the registry gave."""
import struct

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from fjordtest.kafka import create_topic
from fjordtest.names import unique

N = 10_000

AVRO = """{"type": "record", "name": "Reading", "namespace": "fjord.test",
 "fields": [{"name": "sensor", "type": "string"}, {"name": "seq", "type": "long"},
            {"name": "value", "type": "double"}, {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "note", "type": ["null", "string"], "default": null}]}"""

JSON_SCHEMA = """{"$schema": "http://json-schema.org/draft-07/schema#", "title": "Reading", "type": "object",
 "properties": {"sensor": {"type": "string"}, "seq": {"type": "integer"}, "value": {"type": "number"},
                "tags": {"type": "array", "items": {"type": "string"}}},
 "required": ["sensor", "seq"]}"""


def records():
    for i in range(N):
        yield {"sensor": "s-%d" % (i % 17), "seq": i, "value": i * 0.5,
               "tags": ["t%d" % (i % 3)] * (i % 4), "note": None if i % 2 else "n%d" % i}


def proto_class():
    """A Protobuf message class built at run time (no protoc needed)."""
    fdp = descriptor_pb2.FileDescriptorProto(name="fjord_reading.proto", package="fjordtest", syntax="proto3")
    m = fdp.message_type.add(name="Reading")
    F = descriptor_pb2.FieldDescriptorProto
    m.field.add(name="sensor", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    m.field.add(name="seq", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    m.field.add(name="value", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    m.field.add(name="tags", number=4, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("fjordtest.Reading"))


def round_trip(cluster, topic, ser, de, values):
    create_topic(cluster.bootstrap, topic, partitions=1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 5})
    sent = []
    for v in values:
        b = ser(v, SerializationContext(topic, MessageField.VALUE))
        sent.append(b)
        while True:
            try:
                p.produce(topic, value=b)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": topic + "-g",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    try:
        while len(got) < len(sent):
            msgs = c.consume(1000, timeout=10)
            assert msgs, "no records after %d of %d" % (len(got), len(sent))
            for m in msgs:
                assert m.error() is None, m.error()
                got.append(m.value())
    finally:
        c.close()
    assert got == sent
    return [de(b, SerializationContext(topic, MessageField.VALUE)) for b in got], sent


def framed_id(b):
    assert b[0] == 0
    return struct.unpack(">i", b[1:5])[0]


def test_avro_round_trip(reg, request):
    sr = SchemaRegistryClient({"url": reg.url})
    topic = unique("avro", request)
    values = list(records())
    out, raw = round_trip(reg, topic, AvroSerializer(sr, AVRO), AvroDeserializer(sr), values)
    assert out == values
    sid = sr.get_latest_version(topic + "-value").schema_id
    assert {framed_id(b) for b in raw} == {sid}


def test_json_round_trip(reg, request):
    sr = SchemaRegistryClient({"url": reg.url})
    topic = unique("json", request)
    values = [{k: v for k, v in r.items() if k != "note"} for r in records()]
    out, raw = round_trip(reg, topic, JSONSerializer(JSON_SCHEMA, sr), JSONDeserializer(JSON_SCHEMA, schema_registry_client=sr), values)
    assert out == values
    latest = sr.get_latest_version(topic + "-value")
    assert latest.schema.schema_type == "JSON"
    assert {framed_id(b) for b in raw} == {latest.schema_id}


def test_protobuf_round_trip(reg, request):
    sr = SchemaRegistryClient({"url": reg.url})
    Reading = proto_class()
    topic = unique("proto", request)
    values = [Reading(sensor=r["sensor"], seq=r["seq"], value=r["value"], tags=r["tags"]) for r in records()]
    ser = ProtobufSerializer(Reading, sr, {"use.deprecated.format": False})
    de = ProtobufDeserializer(Reading, {"use.deprecated.format": False}, schema_registry_client=sr)
    out, raw = round_trip(reg, topic, ser, de, values)
    assert out == values
    latest = sr.get_latest_version(topic + "-value")
    assert latest.schema.schema_type == "PROTOBUF"
    # Magic, id, then the message index path [0] as one zero byte.
    assert {framed_id(b) for b in raw} == {latest.schema_id}
    assert all(b[5] == 0 for b in raw)
