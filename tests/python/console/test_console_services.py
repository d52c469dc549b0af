"""fjord-console's optional pages against the real services, in Debian's
headless Chromium: a coordinator and a broker serving the Schema Registry
(schema.registry.listeners), and a fjord-connect standalone worker.

test_schemas: a subject registered over REST is listed with its version, id
and type; a compatible new version is checked then registered through the
form; an incompatible one is refused at the check (no Register button, the
registry still has two versions); versions 1 and 2 are diffed side by side;
a new subject is registered from the list page; the subject's compatibility
level set to NONE in the form is what the registry then reports, and the
schema refused before now passes the check.
test_avro_messages: records written by confluent-kafka's AvroSerializer show
as JSON with their schema id, and a substring filter finds exactly the
matching ones.
test_connect: a sink tolerating errors (DLQ) and a strict one on a topic with
poison records: the list shows their states, the DLQ count (3) links to its
records, pause and resume change the state, and the strict sink's failed
task shows its trace and a restart button.
test_missing_services: a console whose registry and worker URLs point at
closed ports: the other pages work and each of those pages says what is
missing; a console without the keys shows no links to them.
test_read_only: no forms on these pages (register, compatibility, connector
actions), and their POSTs are refused."""
import json
import os
import time

import pytest

ck = pytest.importorskip("confluent_kafka")
pytest.importorskip("selenium")
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from connect.conftest import Worker, connect_binary  # noqa: E402
from console.browser import (Browser, Console, chromium, http, require_console,  # noqa: E402
                             screenshot_dir, set_text)
from fjordtest.binaries import require  # noqa: E402
from fjordtest.broker import require_brokers  # noqa: E402
from fjordtest.kafka import create_topic  # noqa: E402
from fjordtest.net import HOST, free_port  # noqa: E402
from fjordtest.registry import RegistryCluster  # noqa: E402
from registry.conftest import avro_record, call  # noqa: E402

SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
GOOD_SCHEMA = {"type": "struct", "optional": False,
               "fields": [{"field": "id", "type": "int32", "optional": False}]}


@pytest.fixture(scope="module")
def svc():
    require_brokers()
    require_console()
    require(connect_binary())
    cluster = RegistryCluster(1, {"group.initial.rebalance.delay.ms": 0,
                                  "group.min.session.timeout.ms": 1000})
    made = []
    driver = None
    try:
        worker = Worker(cluster.dir, cluster.bootstrap)
        made.append(worker.start())
        base = {"bootstrap.servers": cluster.bootstrap,
                "zookeeper.connect": cluster.coord.hosts,
                "console.request.timeout.ms": 5000}
        full = dict(base, **{"schema.registry.url": cluster.url, "connect.url": worker.url})
        rw = Console(cluster.dir, "console-svc", full).start()
        ro = Console(cluster.dir, "console-svc-ro", dict(full, **{"console.read.only": "true"})).start()
        closed = "http://%s:%d" % (HOST, free_port())
        missing = Console(cluster.dir, "console-missing",
                          dict(base, **{"schema.registry.url": closed, "connect.url": closed + "/x"})).start()
        plain = Console(cluster.dir, "console-plain", base).start()
        made += [rw, ro, missing, plain]
        driver = chromium()
        shots = screenshot_dir()
        yield {"cluster": cluster, "worker": worker, "rw": rw, "ro": ro, "missing": missing,
               "plain": plain, "b": Browser(driver, rw.url, shots)}
    finally:
        if driver is not None:
            driver.quit()
        for p in made:
            p.stop()
        cluster.close()


def test_schemas(svc):
    b, url = svc["b"], svc["cluster"].url
    v1 = avro_record("Payment", [("id", "int")])
    st, got = call("POST", url + "/subjects/pay-value/versions", {"schema": v1})
    assert st == 200, got
    id1 = got["id"]
    b.go("/schemas")
    assert b.text("#global-compatibility") == "BACKWARD"
    assert ["pay-value", "1", str(id1), "AVRO"] in b.rows("subjects")
    b.shot("schemas")
    assert b.d.find_element(By.LINK_TEXT, "pay-value").get_attribute("href").endswith("/schemas/pay-value")
    b.go("/schemas/pay-value")
    assert b.text("#compatibility") == "BACKWARD"
    assert b.text("#schema-id") == str(id1) and b.text("#version") == "1"
    assert '"name": "id"' in b.text("#schema")

    # A compatible version: checked first, then registered.
    v2 = avro_record("Payment", [("id", "int"), ("memo", "string", "")])
    set_text(b, "new-schema", v2)
    b.click("check-schema")
    assert b.text("#compat-result") == "Compatible with the latest version of pay-value."
    b.shot("schema-check-ok")
    b.click("register-submit")
    assert "Registered: schema id" in b.body()
    assert b.text("#version") == "2"
    id2 = int(b.text("#schema-id"))
    assert id2 != id1
    st, versions = call("GET", url + "/subjects/pay-value/versions")
    assert versions == [1, 2]

    # An incompatible one stops at the check: nothing to register.
    set_text(b, "new-schema", avro_record("Payment", [("id", "string")]))
    b.click("check-schema")
    assert b.text("#compat-result").startswith("Not compatible with the latest version of pay-value")
    assert b.d.find_elements(By.ID, "register-submit") == []
    b.shot("schema-check-refused")
    assert call("GET", url + "/subjects/pay-value/versions")[1] == [1, 2]

    # Versions 1 and 2 side by side: the added field only on the right.
    b.go("/schemas/pay-value?left=1&right=2")
    cells = b.d.find_elements(By.CSS_SELECTOR, "#diff tbody td")
    added = [c for c in cells if "add" in (c.get_attribute("class") or "")]
    assert any('"name": "memo"' in c.text for c in added), [c.text for c in cells]
    assert not any("memo" in c.text for c in cells[0::2])  # left column: version 1
    assert "against version 2 (id %d)" % id2 in b.text("#diff-summary")
    b.shot("schema-diff")

    # A new subject from the list page: nothing to be compatible with yet.
    b.go("/schemas")
    set_text(b, "new-subject", "fresh-value")
    set_text(b, "new-schema", '"string"')
    b.click("check-schema")
    assert "has no version yet" in b.text("#compat-result")
    b.click("register-submit")
    assert b.text("#version") == "1" and "Registered" in b.body()

    # The subject's compatibility level, changed in the form, is the registry's.
    b.go("/schemas/pay-value")
    assert b.d.find_element(By.ID, "compatibility-level").get_attribute("value") == "BACKWARD"
    Select(b.d.find_element(By.ID, "compatibility-level")).select_by_value("NONE")
    b.click("set-compatibility")
    assert "Compatibility level saved." in b.body()
    assert b.text("#compatibility") == "NONE"
    assert call("GET", url + "/config/pay-value")[1]["compatibilityLevel"] == "NONE"
    assert call("GET", url + "/config")[1]["compatibilityLevel"] == "BACKWARD"
    b.shot("schema-compatibility")
    # What was refused under BACKWARD is now accepted at the check.
    set_text(b, "new-schema", avro_record("Payment", [("id", "string")]))
    b.click("check-schema")
    assert b.text("#compat-result") == "Compatible with the latest version of pay-value."


def test_avro_messages(svc):
    c, b = svc["cluster"], svc["b"]
    topic = "payments-avro"
    create_topic(c.bootstrap, topic, 1, 1)
    schema = avro_record("Pay", [("id", "int"), ("memo", "string")])
    sr = SchemaRegistryClient({"url": c.url})
    ser = AvroSerializer(sr, schema)
    p = Producer({"bootstrap.servers": c.bootstrap})
    memos = ["memo-%d" % i for i in range(40)]
    for i, m in enumerate(memos):
        p.produce(topic, value=ser({"id": i, "memo": m},
                                   SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0
    sid = sr.get_latest_version(topic + "-value").schema_id
    b.go("/topics/%s/messages?partition=0&offset=0&limit=40&format=schema" % topic)
    rows = b.rows("messages")
    assert len(rows) == 40
    for i, r in enumerate(rows):
        head, _, body = r[4].partition("\n")
        assert head == "[schema id %d, AVRO]" % sid, r[4]
        assert json.loads(body) == {"id": i, "memo": memos[i]}, r[4]
    b.shot("messages-avro")
    # Plain text shows the framing bytes instead: the decoding is the registry's.
    b.go("/topics/%s/messages?partition=0&offset=0&limit=1&format=hex" % topic)
    framing = " ".join("%02x" % x for x in b"\x00" + sid.to_bytes(4, "big"))
    assert b.rows("messages")[0][4].startswith(framing + " ")
    # The filter matches raw bytes while scanning: exactly memo-3 and memo-30..39.
    b.go("/topics/%s/messages?partition=0&offset=0&format=schema&filter=memo-3" % topic)
    ids = sorted(json.loads(r[4].partition("\n")[2])["id"] for r in b.rows("messages"))
    assert ids == [3] + list(range(30, 40)), ids


def produce_poison(bootstrap, topic):
    """7 good JsonConverter records and 3 that are not JSON."""
    create_topic(bootstrap, topic, 1, 1)
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        if i in (2, 5, 8):
            v = b"{not json %d" % i
        else:
            v = json.dumps({"schema": GOOD_SCHEMA, "payload": {"id": i}}).encode()
        p.produce(topic, key=b"k%d" % i, value=v)
    assert p.flush(30) == 0


def sink(tmp, name, topic, tolerance, dlq=None):
    cfg = {"connector.class": SINK, "tasks.max": "1", "topics": topic,
           "file": os.path.join(tmp, name + ".out"),
           "value.converter": "org.apache.kafka.connect.json.JsonConverter",
           "value.converter.schemas.enable": "true", "errors.tolerance": tolerance}
    if dlq:
        cfg.update({"errors.deadletterqueue.topic.name": dlq,
                    "errors.deadletterqueue.topic.replication.factor": "1"})
    return {"name": name, "config": cfg}


def test_connect(svc):
    c, w, b = svc["cluster"], svc["worker"], svc["b"]
    produce_poison(c.bootstrap, "poison")
    for body in (sink(c.dir, "sink-dlq", "poison", "all", "poison-dlq"),
                 sink(c.dir, "sink-strict", "poison", "none")):
        st, got = w.call("POST", "/connectors", body)
        assert st == 201, got
    w.wait_status("sink-strict", lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED")
    b.go("/connect")
    rows = {r[0]: r for r in b.rows("connectors")}
    assert rows["sink-dlq"][1] == "sink" and rows["sink-dlq"][2] == "RUNNING", rows
    assert rows["sink-strict"][3] == "0: FAILED", rows
    b.shot("connect")

    b.go("/connect/sink-dlq")
    b.wait(lambda: (b.go("/connect/sink-dlq"), b.text("#dlq-count") == "3")[1], 30,
           "3 records in the dead-letter topic")
    assert b.text("#dlq-topic") == "poison-dlq"
    href = b.d.find_element(By.LINK_TEXT, "browse them").get_attribute("href")
    assert href.endswith("/topics/poison-dlq/messages"), href
    assert [r[1] for r in b.rows("config") if r[0] == "errors.tolerance"] == ["all"]
    b.shot("connector-dlq")
    b.click("pause")
    assert "Asked the worker to pause." in b.body()
    b.wait(lambda: (b.go("/connect/sink-dlq"), b.text("#connector-state") == "PAUSED")[1], 20,
           "connector paused")
    assert w.call("GET", "/connectors/sink-dlq/status")[1]["connector"]["state"] == "PAUSED"
    b.click("resume")
    b.wait(lambda: (b.go("/connect/sink-dlq"), b.text("#connector-state") == "RUNNING")[1], 20,
           "connector running again")
    b.d.get(href)
    assert len(b.rows("messages")) == 3
    assert sorted(r[4] for r in b.rows("messages")) == ["{not json %d" % i for i in (2, 5, 8)]

    b.go("/connect/sink-strict")
    trace = b.text("#trace-0")
    want = w.call("GET", "/connectors/sink-strict/status")[1]["tasks"][0]["trace"]
    assert trace and trace.split() == want.split()  # the browser shows a tab as a space
    b.shot("connector-failed")
    b.click("restart-task-0")
    assert "Asked the worker to restart a task." in b.body()


def test_missing_services(svc):
    m, plain = svc["missing"], svc["plain"]
    for path in ("/", "/topics", "/groups", "/brokers"):
        st, page = http(m.url + path)
        assert st == 200, (path, st)
        assert 'href="/schemas"' in page and 'href="/connect"' in page
    st, page = http(m.url + "/schemas")
    assert st == 502 and "The Schema Registry could not be read" in page and "cannot connect" in page
    st, page = http(m.url + "/connect")
    assert st == 502 and "The Connect worker could not be read" in page
    st, page = http(m.url + "/schemas/anything")
    assert st == 502 and "The Schema Registry could not be read" in page
    b = Browser(svc["b"].d, m.url, svc["b"].shots)
    b.go("/schemas")
    assert "The Schema Registry could not be read" in b.body()
    b.shot("schemas-missing")
    st, page = http(plain.url + "/")
    assert st == 200 and 'href="/schemas"' not in page and 'href="/connect"' not in page
    st, page = http(plain.url + "/schemas")
    assert st == 200 and "schema.registry.url is not set" in page
    st, page = http(plain.url + "/connect")
    assert st == 200 and "connect.url is not set" in page


def test_read_only(svc):
    ro, rw = svc["ro"], svc["rw"]
    w = svc["worker"]
    st, got = w.call("POST", "/connectors", sink(svc["cluster"].dir, "sink-ro", "ro-topic", "all"))
    assert st == 201, got
    for con, forms in ((rw, True), (ro, False)):
        st, page = http(con.url + "/connect/sink-ro")
        assert st == 200 and ('id="pause"' in page) == forms
        st, page = http(con.url + "/schemas")
        assert st == 200 and ('id="register-form"' in page) == forms
    st, got = call("POST", svc["cluster"].url + "/subjects/ro-subject/versions", {"schema": '"int"'})
    assert st == 200, got
    for con, forms in ((rw, True), (ro, False)):
        st, page = http(con.url + "/schemas/ro-subject")
        assert st == 200 and ('id="compatibility-form"' in page) == forms
    for path, form in (("/connect/sink-ro/action", {"action": "pause"}),
                       ("/schemas/ro-subject/compatibility", {"level": "NONE"}),
                       ("/schemas/register", {"subject": "x", "schema": '"int"', "step": "register"})):
        st, page = http(ro.url + path, form)
        assert st == 403 and "read-only" in page
        st, page = http(rw.url + path, form)
        assert st == 403 and "CSRF" in page
    time.sleep(0.2)
    assert w.call("GET", "/connectors/sink-ro/status")[1]["connector"]["state"] == "RUNNING"
    assert call("GET", svc["cluster"].url + "/subjects/x/versions")[0] == 404
    assert call("GET", svc["cluster"].url + "/config/ro-subject?defaultToGlobal=true")[1][
        "compatibilityLevel"] == "BACKWARD"

