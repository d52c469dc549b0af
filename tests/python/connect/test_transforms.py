"""Single message transforms and predicates from a connector config, as Kafka Connect
takes them (`transforms=`, `transforms.<t>.type` with Kafka's class names, `predicates=`):
a FileStream sink behind InsertField$Value (the record's topic and a static field),
ReplaceField$Value (a field dropped, one renamed), MaskField$Value, Cast$Value and a Filter whose
HasHeaderKey predicate drops the records carrying a header writes exactly the
transformed records of the others; a value a transform cannot handle (not a struct) is
a poison record in the DLQ at stage TRANSFORMATION naming the transform's class; a
transform that is not built in (HoistField) is refused at POST with its key named."""
import json
import os
import time

from confluent_kafka import Producer

from .conftest import Worker, consume_all, create_topic, wait_for

SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
T = "org.apache.kafka.connect.transforms."
SCHEMA = {"type": "struct", "optional": False, "fields": [
    {"field": "id", "type": "int32", "optional": False},
    {"field": "secret", "type": "string", "optional": False},
    {"field": "card", "type": "string", "optional": False}]}
N = 40
SKIPPED = set(range(5, N, 10))      # carry a "skip" header: filtered out
NOT_STRUCT = {7, 23}                # a plain string value: poison at TRANSFORMATION


def value_of(i):
    if i in NOT_STRUCT:
        return json.dumps({"schema": {"type": "string", "optional": False}, "payload": "x%d" % i}).encode()
    return json.dumps({"schema": SCHEMA, "payload": {"id": i, "secret": "s%d" % i, "card": "4111-%d" % i}}).encode()


def config(out):
    return {
        "connector.class": SINK, "file": out, "topics": "tx-in",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "tx-dlq",
        "errors.deadletterqueue.topic.replication.factor": "1",
        "errors.deadletterqueue.context.headers.enable": "true",
        "transforms": "skip,ins,drop,mask,cast",
        "transforms.skip.type": T + "Filter",
        "transforms.skip.predicate": "marked",
        "transforms.ins.type": T + "InsertField$Value",
        "transforms.ins.topic.field": "src_topic",
        "transforms.ins.static.field": "dc",
        "transforms.ins.static.value": "eu-1",
        "transforms.drop.type": T + "ReplaceField$Value",
        "transforms.drop.exclude": "secret",
        "transforms.drop.renames": "id:order_id",
        "transforms.mask.type": T + "MaskField$Value",
        "transforms.mask.fields": "card",
        "transforms.cast.type": T + "Cast$Value",
        "transforms.cast.spec": "order_id:string",
        "predicates": "marked",
        "predicates.marked.type": T + "predicates.HasHeaderKey",
        "predicates.marked.name": "skip",
    }


def test_transforms_filter_and_dead_letter(broker, workdir):
    bs = broker.bootstrap
    create_topic(bs, "tx-in", 1)
    p = Producer({"bootstrap.servers": bs})
    for i in range(N):
        p.produce("tx-in", key=b"k%d" % i, value=value_of(i),
                  headers=[("skip", b"1")] if i in SKIPPED else [])
    assert p.flush(30) == 0
    out = os.path.join(workdir, "out.txt")
    w = Worker(workdir, bs).start()
    try:
        bad = dict(config(out), **{"transforms.mask.type": T + "HoistField$Value"})
        code, err = w.call("POST", "/connectors", {"name": "bad", "config": bad})
        assert code == 400 and "transforms.mask.type" in err["message"], (code, err)

        code, info = w.call("POST", "/connectors", {"name": "smt", "config": config(out)})
        assert code == 201, info
        want = [i for i in range(N) if i not in SKIPPED | NOT_STRUCT]

        def lines():
            try:
                with open(out) as f:
                    return [json.loads(x) for x in f.read().splitlines()]
            except FileNotFoundError:
                return []
        wait_for(lambda: len(lines()) >= len(want), 60, "transformed records")
        time.sleep(1.0)
        assert lines() == [{"order_id": str(i), "card": "", "src_topic": "tx-in", "dc": "eu-1"} for i in want]

        dead = consume_all(bs, "tx-dlq", len(NOT_STRUCT), 30)
        assert sorted(int(m.key()[1:]) for m in dead) == sorted(NOT_STRUCT)
        for m in dead:
            h = {k: v.decode() for k, v in m.headers()}
            assert h["__connect.errors.stage"] == "TRANSFORMATION", h
            assert h["__connect.errors.class.name"] == T + "InsertField$Value", h
            assert "Only Struct objects supported" in h["__connect.errors.exception.message"], h
        assert w.call("GET", "/connectors/smt/status")[1]["tasks"][0]["state"] == "RUNNING"
    finally:
        w.stop()
