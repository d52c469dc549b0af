"""`fjord produce --value-format avro|protobuf|json-schema` of 1,000 JSON
lines, then `fjord consume --value-format ...` prints the same 1,000
documents; confluent-kafka's deserializer reads what the CLI wrote; a raw
record among framed ones is printed with a marker; `fjord schema` covers
the API for scripts."""
import json
import subprocess

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fjordtest.binaries import fjord_cli, require
from fjordtest.kafka import create_topic
from fjordtest.names import unique

AVRO = json.dumps({"type": "record", "name": "Doc", "namespace": "cli",
                   "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"},
                              {"name": "tags", "type": {"type": "array", "items": "string"}},
                              {"name": "score", "type": ["null", "double"], "default": None}]})
PROTO = 'syntax = "proto3"; package cli; message Doc { int64 id = 1; string name = 2; repeated string tags = 3; }'
JSONS = json.dumps({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                                     "tags": {"type": "array", "items": {"type": "string"}}},
                    "required": ["id", "name"], "additionalProperties": False})


def docs(fmt):
    out = []
    for i in range(1000):
        d = {"id": i, "name": "n%d" % i, "tags": ["a"] * (i % 3)}
        if fmt == "avro":
            d["score"] = None if i % 2 else i / 4
        if fmt == "protobuf":
            # proto3 JSON: int64 as a string, empty repeated fields left out.
            d["id"] = str(i)
            if not d["tags"]:
                del d["tags"]
            if i == 0:
                del d["id"]
        out.append(d)
    return out


def run_cli(args, stdin=None):
    r = subprocess.run([fjord_cli()] + args, input=stdin, capture_output=True, timeout=120)
    assert r.returncode == 0, (args, r.stderr.decode())
    return r.stdout.decode()


def round_trip(reg, tmp_path, request, fmt, schema):
    require(fjord_cli())
    topic = unique("cli" + fmt[:5], request)
    create_topic(reg.bootstrap, topic)
    f = tmp_path / ("schema." + fmt)
    f.write_text(schema)
    sent = docs(fmt)
    lines = "".join(json.dumps(d) + "\n" for d in sent).encode()
    run_cli(["produce", topic, "--bootstrap-server", reg.bootstrap, "--value-format", fmt,
             "--value-schema-file", str(f), "--schema-registry", reg.url], lines)
    out = run_cli(["consume", topic, "--bootstrap-server", reg.bootstrap, "--from-beginning",
                   "--max-messages", "1000", "--timeout-ms", "20000", "--value-format", fmt,
                   "--schema-registry", reg.url])
    got = [json.loads(line) for line in out.splitlines()]
    assert got == sent
    return topic


def test_avro(reg, tmp_path, request):
    topic = round_trip(reg, tmp_path, request, "avro", AVRO)
    # confluent-kafka reads the CLI's records.
    sr = SchemaRegistryClient({"url": reg.url})
    de = AvroDeserializer(sr)
    c = Consumer({"bootstrap.servers": reg.bootstrap, "group.id": topic + "-g",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    m = None
    for _ in range(30):
        m = c.poll(1)
        if m is not None and m.error() is None:
            break
    c.close()
    assert m is not None
    assert de(m.value(), SerializationContext(topic, MessageField.VALUE)) == {"id": 0, "name": "n0", "tags": [], "score": 0.0}


def test_protobuf(reg, tmp_path, request):
    round_trip(reg, tmp_path, request, "protobuf", PROTO)


def test_json_schema(reg, tmp_path, request):
    round_trip(reg, tmp_path, request, "json-schema", JSONS)


def test_bad_lines_and_markers(reg, tmp_path, request):
    require(fjord_cli())
    topic = unique("climark", request)
    create_topic(reg.bootstrap, topic)
    f = tmp_path / "s.avsc"
    f.write_text(AVRO)
    # A document that does not fit the schema fails the command, naming the line.
    r = subprocess.run([fjord_cli(), "produce", topic, "--bootstrap-server", reg.bootstrap,
                        "--value-format", "avro", "--value-schema-file", str(f), "--schema-registry", reg.url],
                       input=b'{"id": "x"}\n', capture_output=True, timeout=60)
    assert r.returncode != 0 and b"line 1" in r.stderr
    run_cli(["produce", topic, "--bootstrap-server", reg.bootstrap], b"plain text\n")
    run_cli(["produce", topic, "--bootstrap-server", reg.bootstrap, "--value-format", "avro",
             "--value-schema-file", str(f), "--schema-registry", reg.url],
            b'{"id": 1, "name": "x", "tags": [], "score": null}\n')
    out = run_cli(["consume", topic, "--bootstrap-server", reg.bootstrap, "--from-beginning",
                   "--max-messages", "2", "--timeout-ms", "20000", "--value-format", "avro",
                   "--schema-registry", reg.url]).splitlines()
    assert out[0].startswith("!undecodable(") and out[0].endswith("plain text")
    assert json.loads(out[1]) == {"id": 1, "name": "x", "tags": [], "score": None}


def test_schema_command(reg, tmp_path):
    require(fjord_cli())
    f = tmp_path / "s.avsc"
    f.write_text(AVRO)
    base = ["--output", "json", "schema", "--schema-registry", reg.url]
    reg_out = json.loads(run_cli(base + ["register", "cli-sub", "--file", str(f)]))
    assert reg_out["id"] >= 1
    assert json.loads(run_cli(base + ["list"])) and "cli-sub" in json.loads(run_cli(base + ["list"]))
    assert json.loads(run_cli(base + ["versions", "cli-sub"])) == [1]
    got = json.loads(run_cli(base + ["get", "cli-sub"]))
    assert got["id"] == reg_out["id"] and got["version"] == 1
    assert json.loads(run_cli(base + ["get", "--id", str(reg_out["id"])]))["schema"]
    chk = json.loads(run_cli(base + ["check", "cli-sub", "--file", str(f)]))
    assert chk["is_compatible"] is True
    assert json.loads(run_cli(base + ["config", "cli-sub", "--set", "FULL"])) == {"compatibility": "FULL"}
    assert json.loads(run_cli(base + ["config", "cli-sub"])) == {"compatibilityLevel": "FULL"}
    assert json.loads(run_cli(base + ["mode"])) == {"mode": "READWRITE"}
    assert json.loads(run_cli(base + ["delete", "cli-sub"])) == [1]
    assert json.loads(run_cli(base + ["delete", "cli-sub", "--permanent"])) == [1]
