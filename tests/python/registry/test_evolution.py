"""Schema evolution as users meet it: BACKWARD accepts a field added with a
default and refuses one without; NONE accepts it; FULL_TRANSITIVE refuses a
change compatible only with the latest version; the same for JSON Schema's
content models and Protobuf field numbers."""
import json

from registry.conftest import avro_record, call


def reg_schema(url, subject, schema, kind="AVRO"):
    return call("POST", "%s/subjects/%s/versions" % (url, subject), {"schema": schema, "schemaType": kind})


def test_backward_add_field(reg):
    s = "evo-backward-value"
    assert reg_schema(reg.url, s, avro_record("E", [("a", "string")]))[0] == 200
    st, body = reg_schema(reg.url, s, avro_record("E", [("a", "string"), ("b", "int", 7)]))
    assert st == 200, body
    st, body = reg_schema(reg.url, s, avro_record("E", [("a", "string"), ("b", "int", 7), ("c", "string")]))
    assert st == 409 and body["error_code"] == 409
    assert call("PUT", "%s/config/%s" % (reg.url, s), {"compatibility": "NONE"})[0] == 200
    st, body = reg_schema(reg.url, s, avro_record("E", [("a", "string"), ("b", "int", 7), ("c", "string")]))
    assert st == 200, body
    assert call("GET", "%s/subjects/%s/versions" % (reg.url, s))[1] == [1, 2, 3]


def test_full_transitive_checks_every_version(reg):
    s = "evo-fulltrans-value"
    assert call("PUT", "%s/config/%s" % (reg.url, s), {"compatibility": "FULL_TRANSITIVE"})[0] == 200
    v1 = avro_record("T", [("a", "string")])
    v2 = avro_record("T", [("a", "string"), ("b", "int", 1)])
    assert reg_schema(reg.url, s, v1)[0] == 200
    assert reg_schema(reg.url, s, v2)[0] == 200
    # v3 makes b mandatory: fine with v2 (b in both), not with v1 (no b, no default).
    v3 = avro_record("T", [("a", "string"), ("b", "int")])
    st, body = call("POST", "%s/compatibility/subjects/%s/versions/latest" % (reg.url, s), {"schema": v3})
    assert body["is_compatible"] is True  # v3 <-> v2: b present in both
    st, body = reg_schema(reg.url, s, v3)
    assert st == 409, body  # v3 cannot read v1 (b has no default in v3)
    assert call("PUT", "%s/config/%s" % (reg.url, s), {"compatibility": "FULL"})[0] == 200
    st, body = reg_schema(reg.url, s, v3)
    assert st == 200, body


def test_json_schema_content_models(reg):
    s = "evo-json-value"
    closed = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    assert reg_schema(reg.url, s, json.dumps(closed), "JSON")[0] == 200
    # Adding an optional property to a closed model is backward compatible.
    more = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "additionalProperties": False}
    st, body = reg_schema(reg.url, s, json.dumps(more), "JSON")
    assert st == 200, body
    # Requiring it is not.
    req = dict(more, required=["b"])
    st, body = reg_schema(reg.url, s, json.dumps(req), "JSON")
    assert st == 409, body
    o = "evo-json-open-value"
    opened = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert reg_schema(reg.url, o, json.dumps(opened), "JSON")[0] == 200
    # An open model may already hold 'b' of any type: adding it typed is a change.
    st, body = reg_schema(reg.url, o, json.dumps({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}), "JSON")
    assert st == 409, body


def test_protobuf_field_numbers(reg):
    s = "evo-proto-value"
    v1 = 'syntax = "proto3"; package evo; message M { string a = 1; int32 b = 2; }'
    assert reg_schema(reg.url, s, v1, "PROTOBUF")[0] == 200
    v2 = 'syntax = "proto3"; package evo; message M { string a = 1; int64 b = 2; string c = 3; }'
    st, body = reg_schema(reg.url, s, v2, "PROTOBUF")
    assert st == 200, body
    v3 = 'syntax = "proto3"; package evo; message M { string a = 1; string b = 2; string c = 3; }'
    st, body = reg_schema(reg.url, s, v3, "PROTOBUF")
    assert st == 409 and "FIELD_KIND_CHANGED" in body["message"], body
    st, body = call("GET", "%s/subjects/%s/versions/2" % (reg.url, s))
    assert body["schemaType"] == "PROTOBUF" and "int64 b = 2" in body["schema"]
