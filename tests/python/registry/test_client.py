"""confluent-kafka's SchemaRegistryClient against fjord-broker's registry:
register, get by id, latest, versions, lookup, soft and hard delete, config,
mode and compatibility tests, each answer checked field by field."""
import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from registry.conftest import avro_record, call

V1 = avro_record("User", [("name", "string")])
V2 = avro_record("User", [("name", "string"), ("age", "int", 0)])


@pytest.fixture
def client(reg):
    return SchemaRegistryClient({"url": reg.url})


def test_register_get_latest_versions_lookup(reg, client):
    sid = client.register_schema("users-value", Schema(V1, "AVRO"))
    assert isinstance(sid, int) and sid >= 1
    # The same schema again (other whitespace and key order): the same id, no new version.
    again = json.dumps(json.loads(V1), indent=2, sort_keys=True)
    assert client.register_schema("users-value", Schema(again, "AVRO")) == sid
    got = client.get_schema(sid)
    assert got.schema_type == "AVRO"
    assert json.loads(got.schema_str) == json.loads(V1)
    sid2 = client.register_schema("users-value", Schema(V2, "AVRO"))
    assert sid2 != sid
    latest = client.get_latest_version("users-value")
    assert (latest.schema_id, latest.version, latest.subject) == (sid2, 2, "users-value")
    assert client.get_versions("users-value") == [1, 2]
    v1 = client.get_version("users-value", 1)
    assert (v1.schema_id, v1.version) == (sid, 1)
    found = client.lookup_schema("users-value", Schema(V1, "AVRO"))
    assert (found.schema_id, found.version) == (sid, 1)
    assert "users-value" in client.get_subjects()
    # The same schema under another subject shares the id.
    assert client.register_schema("other-value", Schema(V1, "AVRO")) == sid
    st, subjects = call("GET", "%s/schemas/ids/%d/subjects" % (reg.url, sid))
    assert st == 200 and sorted(subjects) == ["other-value", "users-value"]
    st, vs = call("GET", "%s/schemas/ids/%d/versions" % (reg.url, sid))
    assert st == 200 and {"subject": "users-value", "version": 1} in vs
    st, types = call("GET", reg.url + "/schemas/types")
    assert st == 200 and sorted(types) == ["AVRO", "JSON", "PROTOBUF"]
    st, raw = call("GET", "%s/subjects/users-value/versions/latest/schema" % reg.url)
    assert st == 200 and raw == json.loads(V2)
    st, listed = call("GET", reg.url + "/schemas?subjectPrefix=users-&latestOnly=true")
    assert st == 200 and [(x["subject"], x["version"], x["id"]) for x in listed] == [("users-value", 2, sid2)]


def test_lookup_unknown(reg, client):
    client.register_schema("lk-value", Schema(V1, "AVRO"))
    with pytest.raises(SchemaRegistryError) as e:
        client.lookup_schema("lk-value", Schema(avro_record("Other", [("x", "long")]), "AVRO"))
    assert e.value.http_status_code == 404 and e.value.error_code == 40403
    with pytest.raises(SchemaRegistryError) as e:
        client.lookup_schema("no-such-subject", Schema(V1, "AVRO"))
    assert e.value.error_code == 40401


def test_soft_then_hard_delete(reg, client):
    s = "del-value"
    client.register_schema(s, Schema(V1, "AVRO"))
    client.register_schema(s, Schema(V2, "AVRO"))
    # Hard before soft: refused.
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_version(s, 1, permanent=True)
    assert e.value.error_code == 40407
    assert client.delete_version(s, 1) == 1
    assert client.get_versions(s) == [2]
    with pytest.raises(SchemaRegistryError) as e:
        client.get_version(s, 1)
    assert e.value.error_code == 40402
    st, body = call("GET", "%s/subjects/%s/versions/1?deleted=true" % (reg.url, s))
    assert st == 200 and body["version"] == 1
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_version(s, 1)
    assert e.value.error_code == 40406
    assert client.delete_version(s, 1, permanent=True) == 1
    st, body = call("GET", "%s/subjects/%s/versions?deleted=true" % (reg.url, s))
    assert (st, body) == (200, [2])
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_subject(s, permanent=True)
    assert e.value.error_code == 40405
    assert client.delete_subject(s) == [2]
    assert s not in client.get_subjects()
    st, body = call("GET", reg.url + "/subjects?deleted=true")
    assert s in body
    with pytest.raises(SchemaRegistryError) as e:
        client.delete_subject(s)
    assert e.value.error_code == 40404
    assert client.delete_subject(s, permanent=True) == [2]
    st, body = call("GET", reg.url + "/subjects?deleted=true")
    assert s not in body
    with pytest.raises(SchemaRegistryError) as e:
        client.get_versions(s)
    assert e.value.error_code == 40401
    # Registering again starts over at version 1 and keeps the content's id.
    sid = client.register_schema(s, Schema(V1, "AVRO"))
    assert client.get_latest_version(s).version == 1
    assert client.get_schema(sid).schema_str


def test_config_and_compatibility(reg, client):
    s = "cfg-value"
    assert client.get_compatibility() == "BACKWARD"
    client.register_schema(s, Schema(V1, "AVRO"))
    with pytest.raises(SchemaRegistryError) as e:
        client.get_compatibility(s)
    assert e.value.error_code == 40408
    st, body = call("GET", "%s/config/%s?defaultToGlobal=true" % (reg.url, s))
    assert (st, body) == (200, {"compatibilityLevel": "BACKWARD"})
    no_default = avro_record("User", [("name", "string"), ("age", "int")])
    assert client.test_compatibility(s, Schema(V2, "AVRO")) is True
    assert client.test_compatibility(s, Schema(no_default, "AVRO")) is False
    st, body = call("POST", "%s/compatibility/subjects/%s/versions/latest?verbose=true" % (reg.url, s),
                    {"schema": no_default})
    assert st == 200 and body["is_compatible"] is False and body["messages"]
    assert client.set_compatibility(s, "NONE") == {"compatibility": "NONE"}
    assert client.get_compatibility(s) == "NONE"
    assert client.test_compatibility(s, Schema(no_default, "AVRO")) is True
    st, body = call("DELETE", "%s/config/%s" % (reg.url, s))
    assert (st, body) == (200, {"compatibilityLevel": "NONE"})
    assert client.set_compatibility(level="FULL") == {"compatibility": "FULL"}
    assert client.get_compatibility() == "FULL"
    st, body = call("DELETE", reg.url + "/config")
    assert (st, body) == (200, {"compatibilityLevel": "FULL"})
    assert client.get_compatibility() == "BACKWARD"


def test_mode(reg, client):
    s = "mode-value"
    st, body = call("GET", reg.url + "/mode")
    assert (st, body) == (200, {"mode": "READWRITE"})
    st, body = call("PUT", "%s/mode/%s" % (reg.url, s), {"mode": "READONLY"})
    assert (st, body) == (200, {"mode": "READONLY"})
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(s, Schema(V1, "AVRO"))
    assert e.value.error_code == 42205
    st, body = call("DELETE", "%s/mode/%s" % (reg.url, s))
    assert (st, body) == (200, {"mode": "READONLY"})
    client.register_schema(s, Schema(V1, "AVRO"))
    # IMPORT keeps the given id and version.
    imp = "import-value"
    st, body = call("PUT", "%s/mode/%s" % (reg.url, imp), {"mode": "IMPORT"})
    assert (st, body) == (200, {"mode": "IMPORT"})
    schema = avro_record("Imported", [("k", "string")])
    st, body = call("POST", "%s/subjects/%s/versions" % (reg.url, imp),
                    {"schema": schema, "id": 5000, "version": 7})
    assert st == 200 and body["id"] == 5000, body
    st, body = call("GET", "%s/subjects/%s/versions/7" % (reg.url, imp))
    assert st == 200 and body["id"] == 5000
    # Outside IMPORT an id cannot be chosen.
    st, body = call("POST", "%s/subjects/%s/versions" % (reg.url, s), {"schema": schema, "id": 6000})
    assert st == 422 and body["error_code"] == 42205
    # New ids after an import never collide with imported ones.
    st, body = call("POST", "%s/subjects/after-import/versions" % reg.url,
                    {"schema": avro_record("After", [("z", "int")])})
    assert st == 200 and body["id"] > 5000


def test_references(reg, client):
    addr = json.dumps({"type": "record", "name": "Address", "namespace": "ex",
                       "fields": [{"name": "city", "type": "string"}]})
    client.register_schema("address", Schema(addr, "AVRO"))
    person = json.dumps({"type": "record", "name": "Person", "namespace": "ex",
                         "fields": [{"name": "home", "type": "ex.Address"}]})
    st, body = call("POST", reg.url + "/subjects/person-value/versions",
                    {"schema": person, "references": [{"name": "ex.Address", "subject": "address", "version": 1}]})
    assert st == 200, body
    pid = body["id"]
    st, body = call("GET", reg.url + "/subjects/address/versions/1/referencedby")
    assert (st, body) == (200, [pid])
    st, body = call("DELETE", reg.url + "/subjects/address/versions/1")
    assert st == 422 and body["error_code"] == 42206
    st, body = call("GET", "%s/schemas/ids/%d" % (reg.url, pid))
    assert body["references"] == [{"name": "ex.Address", "subject": "address", "version": 1}]
    # A reference to nothing is an invalid schema.
    st, body = call("POST", reg.url + "/subjects/person2-value/versions",
                    {"schema": person, "references": [{"name": "ex.Address", "subject": "nope", "version": 1}]})
    assert st == 422 and body["error_code"] == 42201
