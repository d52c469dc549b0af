"""Confluent's AvroConverter (`io.confluent.connect.avro.AvroConverter`) and
JsonSchemaConverter (`io.confluent.connect.json.JsonSchemaConverter`) against the
broker's Schema Registry, checked against confluent-kafka's own serdes:

- a sink reads what confluent-kafka's AvroSerializer wrote (records with an optional
  field) and writes each value once, in order; records that are not Avro (plain
  JSON, a schema id the registry does not have) are poison: dead-lettered at stage
  VALUE_CONVERTER under the converter's class name, the task keeps running;
- a source's records are Avro that confluent-kafka's AvroDeserializer reads, under
  the subject `<topic>-value` (TopicNameStrategy);
- a registry that does not answer is not the record's fault: the task FAILS with
  the reason (after its retries) and nothing goes to the DLQ;
- the same both ways with the JsonSchemaConverter and confluent-kafka's
  JSONSerializer/JSONDeserializer (decimals written as exact JSON numbers)."""
import json
import os
import struct
import time

import pytest
import requests

from fjordtest.net import free_port

from .conftest import Worker, consume_all, create_topic, wait_for

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

AVRO = "io.confluent.connect.avro.AvroConverter"
JSON_SCHEMA = "io.confluent.connect.json.JsonSchemaConverter"
SCHEMA = json.dumps({"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "int"},
    {"name": "name", "type": "string"},
    {"name": "note", "type": ["null", "string"], "default": None}]})
TOTAL = 60
NOT_AVRO = {7, 23, 41}
UNKNOWN_ID = {50}


def avro_converter(registry, cls=AVRO, **extra):
    c = {"value.converter": cls, "value.converter.schema.registry.url": registry}
    c.update(extra)
    return c


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(x) for x in f.read().splitlines()]
    except FileNotFoundError:
        return []


def test_sink_reads_confluent_avro_and_dead_letters_the_rest(broker, workdir):
    bs, reg = broker.bootstrap, broker.registry_url
    topic = "avro-orders"
    create_topic(bs, topic)
    ser = AvroSerializer(SchemaRegistryClient({"url": reg}), SCHEMA)
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    good = []
    for i in range(TOTAL):
        if i in NOT_AVRO:
            v = json.dumps({"id": i}).encode()
        elif i in UNKNOWN_ID:
            v = b"\0" + struct.pack(">i", 99999) + b"\x02"
        else:
            rec = {"id": i, "name": "order-%d" % i, "note": None if i % 3 else "n%d" % i}
            good.append(rec)
            v = ser(rec, SerializationContext(topic, MessageField.VALUE))
        p.produce(topic, key=b"k%d" % i, value=v)
    assert p.flush(30) == 0

    out = os.path.join(workdir, "orders.txt")
    w = Worker(workdir, bs).start()
    try:
        cfg = {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
               "file": out, "topics": topic, "errors.tolerance": "all",
               "errors.deadletterqueue.topic.name": "avro-dlq",
               "errors.deadletterqueue.topic.replication.factor": "1",
               "errors.deadletterqueue.context.headers.enable": "true"}
        cfg.update(avro_converter(reg))
        code, info = w.call("POST", "/connectors", {"name": "avro-sink", "config": cfg})
        assert code == 201, info
        wait_for(lambda: len(lines(out)) >= len(good), 60, "the Avro records in the file")
        time.sleep(1.0)
        assert lines(out) == good
        dead = consume_all(bs, "avro-dlq", len(NOT_AVRO | UNKNOWN_ID), 60)
        assert sorted(int(m.key()[1:]) for m in dead) == sorted(NOT_AVRO | UNKNOWN_ID)
        for m in dead:
            h = {k: v.decode() for k, v in (m.headers() or [])}
            assert h["__connect.errors.stage"] == "VALUE_CONVERTER", h
            assert h["__connect.errors.class.name"] == AVRO, h
            if int(m.key()[1:]) in UNKNOWN_ID:
                assert "99999" in h["__connect.errors.exception.message"], h
        assert w.call("GET", "/connectors/avro-sink/status")[1]["tasks"][0]["state"] == "RUNNING"
    finally:
        w.stop()


def test_source_writes_avro_confluent_reads(broker, workdir):
    bs, reg = broker.bootstrap, broker.registry_url
    topic = "avro-lines"
    create_topic(bs, topic)
    src = os.path.join(workdir, "in.txt")
    want = ["line %d, with ünïcode" % i for i in range(25)]
    with open(src, "w") as f:
        f.write("\n".join(want) + "\n")
    w = Worker(workdir, bs).start()
    try:
        cfg = {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
               "file": src, "topic": topic}
        cfg.update(avro_converter(reg))
        code, info = w.call("POST", "/connectors", {"name": "avro-source", "config": cfg})
        assert code == 201, info
        msgs = consume_all(bs, topic, len(want), 60)
        de = AvroDeserializer(SchemaRegistryClient({"url": reg}))
        got = [de(m.value(), SerializationContext(topic, MessageField.VALUE)) for m in msgs]
        assert got == want
        latest = requests.get("%s/subjects/%s-value/versions/latest" % (reg, topic), timeout=10).json()
        assert json.loads(latest["schema"]) == "string", latest
    finally:
        w.stop()


def test_registry_down_fails_the_task_and_dead_letters_nothing(broker, workdir):
    bs, reg = broker.bootstrap, broker.registry_url
    topic = "avro-noreg"
    create_topic(bs, topic)
    ser = AvroSerializer(SchemaRegistryClient({"url": reg}), SCHEMA)
    p = Producer({"bootstrap.servers": bs})
    p.produce(topic, value=ser({"id": 1, "name": "x", "note": None},
                               SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    w = Worker(workdir, bs).start()
    try:
        cfg = {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
               "file": os.path.join(workdir, "never.txt"), "topics": topic, "errors.tolerance": "all",
               "errors.deadletterqueue.topic.name": "avro-noreg-dlq",
               "errors.deadletterqueue.topic.replication.factor": "1"}
        cfg.update(avro_converter("http://127.0.0.1:%d" % free_port()))
        code, info = w.call("POST", "/connectors", {"name": "no-registry", "config": cfg})
        assert code == 201, info
        st = w.wait_status("no-registry", lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED",
                           timeout=60)
        assert "schema registry is unavailable" in st["tasks"][0]["trace"], st
        assert consume_all(bs, "avro-noreg-dlq", 1, 3) == []
        assert not os.path.exists(os.path.join(workdir, "never.txt")) or lines(os.path.join(workdir, "never.txt")) == []
    finally:
        w.stop()


ORDER_JSON_SCHEMA = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                   "price": {"type": "number"}},
    "required": ["id", "name", "price"]})


def test_json_schema_both_ways_with_confluent_serdes(broker, workdir):
    bs, reg = broker.bootstrap, broker.registry_url
    src_topic, out_topic = "js-orders", "js-lines"
    create_topic(bs, src_topic)
    create_topic(bs, out_topic)
    ser = JSONSerializer(ORDER_JSON_SCHEMA, SchemaRegistryClient({"url": reg}))
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    want = [{"id": i, "name": "o%d" % i, "price": i + 0.25} for i in range(30)]
    for i, rec in enumerate(want):
        p.produce(src_topic, key=b"k%d" % i, value=ser(rec, SerializationContext(src_topic, MessageField.VALUE)))
    p.produce(src_topic, key=b"k-bad", value=b"not framed")
    assert p.flush(30) == 0

    out = os.path.join(workdir, "js.txt")
    src = os.path.join(workdir, "js-in.txt")
    lines_in = ["first", "second line", "third"]
    with open(src, "w") as f:
        f.write("\n".join(lines_in) + "\n")
    w = Worker(workdir, bs).start()
    try:
        sink = {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "file": out, "topics": src_topic, "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": "js-dlq",
                "errors.deadletterqueue.topic.replication.factor": "1",
                "errors.deadletterqueue.context.headers.enable": "true"}
        sink.update(avro_converter(reg, JSON_SCHEMA))
        code, info = w.call("POST", "/connectors", {"name": "js-sink", "config": sink})
        assert code == 201, info
        source = {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                  "file": src, "topic": out_topic}
        source.update(avro_converter(reg, JSON_SCHEMA))
        code, info = w.call("POST", "/connectors", {"name": "js-source", "config": source})
        assert code == 201, info

        wait_for(lambda: len(lines(out)) >= len(want), 60, "the JSON Schema records in the file")
        time.sleep(1.0)
        assert lines(out) == want
        dead = consume_all(bs, "js-dlq", 1, 30)
        assert [m.key() for m in dead] == [b"k-bad"]
        h = {k: v.decode() for k, v in (dead[0].headers() or [])}
        assert (h["__connect.errors.stage"], h["__connect.errors.class.name"]) == ("VALUE_CONVERTER", JSON_SCHEMA), h

        msgs = consume_all(bs, out_topic, len(lines_in), 60)
        de = JSONDeserializer(None, schema_registry_client=SchemaRegistryClient({"url": reg}))
        assert [de(m.value(), SerializationContext(out_topic, MessageField.VALUE)) for m in msgs] == lines_in
        latest = requests.get("%s/subjects/%s-value/versions/latest" % (reg, out_topic), timeout=10).json()
        assert latest.get("schemaType") == "JSON" and json.loads(latest["schema"])["type"] == "string", latest
    finally:
        w.stop()
