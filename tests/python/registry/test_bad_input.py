"""Every error answer the registry gives: status, Confluent error code and a
message, never a 500 for bad input; a refused register leaves nothing behind."""
import socket

import requests

from registry.conftest import CT, avro_record, call

GOOD = avro_record("Bad", [("a", "string")])


def test_unparsable_schemas_are_42201(reg):
    for schema, kind in [("{not json", "AVRO"), ('{"type": "record", "name": "X"}', "AVRO"),
                         ('{"type": "nosuchtype"}', "AVRO"),
                         ("message { broken", "PROTOBUF"), ('{"type": 12}', "JSON"), ("", "AVRO")]:
        st, body = call("POST", reg.url + "/subjects/bad-value/versions",
                        {"schema": schema, "schemaType": kind})
        assert st == 422 and body["error_code"] == 42201 and body["message"], (schema, body)
    st, body = call("GET", reg.url + "/subjects/bad-value/versions")
    assert st == 404 and body["error_code"] == 40401
    st, body = call("GET", reg.url + "/subjects")
    assert "bad-value" not in body


def test_incompatible_is_409_with_reasons(reg):
    s = "inc-value"
    assert call("POST", reg.url + "/subjects/%s/versions" % s, {"schema": GOOD})[0] == 200
    bad = avro_record("Bad", [("a", "string"), ("b", "int")])
    st, body = call("POST", reg.url + "/subjects/%s/versions" % s, {"schema": bad})
    assert st == 409 and body["error_code"] == 409
    assert "incompatible" in body["message"] and "oldSchemaVersion" in body["message"]
    st, body = call("GET", reg.url + "/subjects/%s/versions" % s)
    assert body == [1]


def test_too_large_is_413(reg):
    big = "x" * (16 * 1024 * 1024 + 10)
    r = requests.post(reg.url + "/subjects/big-value/versions", data=big,
                      headers={"Content-Type": CT}, timeout=60)
    assert r.status_code == 413 and r.json()["error_code"] == 413


def test_malformed_json(reg):
    st, body = call("POST", reg.url + "/subjects/mal-value/versions", raw="{\"schema\": ")
    assert st == 400 and body["error_code"] == 400
    st, body = call("POST", reg.url + "/subjects/mal-value/versions", raw="[1,2]")
    assert st == 422 and body["error_code"] == 422
    st, body = call("POST", reg.url + "/subjects/mal-value/versions", raw="")
    assert st == 422
    st, body = call("PUT", reg.url + "/config", raw="nope")
    assert st == 400


def test_not_found_codes(reg):
    st, body = call("GET", reg.url + "/schemas/ids/987654")
    assert (st, body["error_code"]) == (404, 40403)
    st, body = call("GET", reg.url + "/subjects/none-value/versions/1")
    assert (st, body["error_code"]) == (404, 40401)
    call("POST", reg.url + "/subjects/nf-value/versions", {"schema": GOOD})
    st, body = call("GET", reg.url + "/subjects/nf-value/versions/9")
    assert (st, body["error_code"]) == (404, 40402)
    st, body = call("GET", reg.url + "/subjects/nf-value/versions/zero")
    assert (st, body["error_code"]) == (422, 42202)
    st, body = call("GET", reg.url + "/subjects/nf-value/versions/0")
    assert (st, body["error_code"]) == (422, 42202)
    st, body = call("PUT", reg.url + "/config/nf-value", {"compatibility": "SIDEWAYS"})
    assert (st, body["error_code"]) == (422, 42203)
    st, body = call("PUT", reg.url + "/mode/nf-value", {"mode": "FAST"})
    assert (st, body["error_code"]) == (422, 42204)
    st, body = call("GET", reg.url + "/mode/nf-value")
    assert (st, body["error_code"]) == (404, 40409)
    st, body = call("POST", reg.url + "/subjects/nf-value/versions", {"schema": GOOD, "schemaType": "XML"})
    assert st == 422


def test_unknown_paths_are_quick_404s(reg):
    for path in ["/contexts", "/exporters", "/associations/resources/x", "/nothing/here",
                 "/subjects/a/b/c/d/e", "/schemas/ids/abc"]:
        st, body = call("GET", reg.url + path)
        assert st == 404 and body["error_code"] == 404, (path, body)
    st, body = call("PATCH", reg.url + "/subjects")
    assert st == 405 and body["error_code"] == 405


def test_garbage_on_the_socket_does_not_hurt(reg):
    port = int(reg.url.rsplit(":", 1)[1])
    for junk in [b"\x00\x01\x02garbage\r\n\r\n", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
                 b"POST /subjects/x/versions HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(junk)
            try:
                s.recv(1000)
            except OSError:
                pass
    st, _ = call("GET", reg.url + "/subjects")
    assert st == 200
