"""Poison records and the dead-letter queue, as Kafka Connect: a sink fed good records
with poison ones among them (invalid JSON, a payload that does not match its schema).
`errors.tolerance=all` → exactly the good ones arrive and exactly the poison ones are
in the DLQ topic, original key/value kept, with `__connect.errors.*` headers naming
topic, partition, offset, stage and exception; `none` → the task is FAILED at the first
one with the trace in /status, nothing after it is written, and after the fix (the
config now tolerates) a restart resumes there: nothing lost, nothing twice.
`fjord dlq inspect` lists the 37 with their origin, stage and exception decoded;
`fjord dlq replay --to` sends them back (original key, value and headers, the error
headers removed) once the cause is fixed, and `--where-stage` picks one stage's."""
import json
import os
import subprocess
import time

from confluent_kafka import Producer

from fjordtest.binaries import fjord_cli

from .conftest import Worker, consume_all, create_topic, wait_for

SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
GOOD_SCHEMA = {"type": "struct", "optional": False,
               "fields": [{"field": "id", "type": "int32", "optional": False}]}
TOTAL = 2000
POISON = set(range(13, TOTAL, 53))  # 37 of them


def value_of(i):
    if i in POISON:
        if i % 2:
            return b"{not json %d" % i
        # valid JSON, wrong schema: id is a string
        return json.dumps({"schema": GOOD_SCHEMA, "payload": {"id": "x%d" % i}}).encode()
    return json.dumps({"schema": GOOD_SCHEMA, "payload": {"id": i}}).encode()


def produce(bs, topic):
    p = Producer({"bootstrap.servers": bs, "linger.ms": 10})
    for i in range(TOTAL):
        p.produce(topic, key=b"k%d" % i, value=value_of(i), headers=[("origin", b"h%d" % i)])
    assert p.flush(30) == 0


def sink_config(out_file, topic, tolerance, dlq=None):
    c = {"connector.class": SINK, "file": out_file, "topics": topic,
         "value.converter": "org.apache.kafka.connect.json.JsonConverter",
         "value.converter.schemas.enable": "true",
         "errors.tolerance": tolerance, "errors.log.enable": "true", "errors.log.include.messages": "true"}
    if dlq:
        c.update({"errors.deadletterqueue.topic.name": dlq,
                  "errors.deadletterqueue.topic.replication.factor": "1",
                  "errors.deadletterqueue.context.headers.enable": "true"})
    return c


def ids_in(path):
    try:
        with open(path) as f:
            return [json.loads(line)["id"] for line in f.read().splitlines()]
    except FileNotFoundError:
        return []


def check_dlq(bs, dlq, topic):
    msgs = consume_all(bs, dlq, len(POISON), 60)
    assert len(msgs) == len(POISON), len(msgs)
    seen = set()
    for m in msgs:
        h = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        i = int(m.key().decode()[1:])
        assert i in POISON and m.value() == value_of(i)
        assert h["origin"] == "h%d" % i
        assert h["__connect.errors.topic"] == topic
        assert h["__connect.errors.partition"] == "0"
        assert h["__connect.errors.offset"] == str(i)
        assert h["__connect.errors.stage"] == "VALUE_CONVERTER"
        assert h["__connect.errors.class.name"] == "org.apache.kafka.connect.json.JsonConverter"
        assert h["__connect.errors.exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
        assert h["__connect.errors.exception.message"]
        assert "DataException" in h["__connect.errors.exception.stacktrace"]
        assert h["__connect.errors.task.id"] == "0"
        seen.add(i)
    assert seen == POISON


def fjord(*args):
    r = subprocess.run([fjord_cli(), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def check_inspect_and_replay(bs, dlq, topic):
    """fjord dlq inspect and replay over the DLQ check_dlq has just checked."""
    listed = json.loads(fjord("dlq", "inspect", dlq, "--bootstrap-server", bs,
                              "--output", "json").stdout)
    assert sorted(int(d["key"][1:]) for d in listed) == sorted(POISON), listed[:2]
    for d in listed:
        i = int(d["key"][1:])
        assert d["error"]["topic"] == topic and d["error"]["offset"] == str(i), d
        assert d["error"]["stage"] == "VALUE_CONVERTER", d
        assert d["error"]["exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
        assert d["headers"] == {"origin": "h%d" % i}, d
    text = fjord("dlq", "inspect", dlq, "--bootstrap-server", bs).stdout
    assert "from %s[0]@13" % topic in text and "stage=VALUE_CONVERTER" in text, text[:500]

    # The cause fixed, the 37 go back: to a topic of their own here, so they can be counted.
    back = dlq + "-replayed"
    create_topic(bs, back, 2)
    r = fjord("dlq", "replay", dlq, "--to", back, "--where-stage", "TRANSFORMATION",
              "--bootstrap-server", bs)
    assert "Replayed 0 record(s)" in r.stdout, r.stdout
    r = fjord("dlq", "replay", dlq, "--to", back, "--bootstrap-server", bs, "--output", "json")
    assert json.loads(r.stdout) == {"from": dlq, "to": back, "replayed": len(POISON), "skipped": 0}
    msgs = consume_all(bs, back, len(POISON), 60)
    assert len(msgs) == len(POISON)
    for m in msgs:
        i = int(m.key().decode()[1:])
        assert m.value() == value_of(i)
        assert m.headers() == [("origin", b"h%d" % i)], m.headers()
    # From an offset on: the records after it only.
    r = fjord("dlq", "replay", dlq, "--to", back, "--from-offset", "30",
              "--bootstrap-server", bs, "--output", "json")
    assert json.loads(r.stdout)["replayed"] == len(POISON) - 30


def test_tolerance_all_sends_exactly_the_poison_to_the_dlq(broker, workdir):
    bs = broker.bootstrap
    create_topic(bs, "dlq-in", 1)
    produce(bs, "dlq-in")
    out = os.path.join(workdir, "out.txt")
    w = Worker(workdir, bs).start()
    try:
        code, info = w.call("POST", "/connectors", {"name": "tolerant", "config": sink_config(out, "dlq-in", "all", "dlq-all")})
        assert code == 201, info
        good = [i for i in range(TOTAL) if i not in POISON]
        wait_for(lambda: len(ids_in(out)) >= len(good), 60, "good records")
        time.sleep(1.0)
        assert ids_in(out) == good
        check_dlq(bs, "dlq-all", "dlq-in")
        assert w.call("GET", "/connectors/tolerant/status")[1]["tasks"][0]["state"] == "RUNNING"
        check_inspect_and_replay(bs, "dlq-all", "dlq-in")
    finally:
        w.stop()


def test_tolerance_none_fails_then_resumes_after_fix(broker, workdir):
    bs = broker.bootstrap
    create_topic(bs, "none-in", 1)
    produce(bs, "none-in")
    out = os.path.join(workdir, "out.txt")
    w = Worker(workdir, bs).start()
    try:
        code, _ = w.call("POST", "/connectors", {"name": "strict", "config": sink_config(out, "none-in", "none")})
        assert code == 201
        st = w.wait_status("strict", lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED")
        trace = st["tasks"][0]["trace"]
        assert "Tolerance exceeded in error handler" in trace and "DataException" in trace and "none-in-0@13" in trace, trace
        assert st["connector"]["state"] == "RUNNING"
        time.sleep(1.0)
        first = min(POISON)
        assert ids_in(out) == list(range(first))[: len(ids_in(out))] and all(i < first for i in ids_in(out))
        # the fix: tolerate and dead-letter; the task restarts where it failed
        code, _ = w.call("PUT", "/connectors/strict/config", sink_config(out, "none-in", "all", "dlq-none"))
        assert code == 200
        good = [i for i in range(TOTAL) if i not in POISON]
        wait_for(lambda: len(ids_in(out)) >= len(good), 60, "good records after fix")
        time.sleep(1.0)
        assert ids_in(out) == good
        check_dlq(bs, "dlq-none", "none-in")
    finally:
        w.stop()
