"""The JDBC source (io.confluent.connect.jdbc.JdbcSourceConnector) out of a real
PostgreSQL and a real MariaDB, run by `fjord-connect standalone` from a properties file:
rows become JSON-with-schema records on `<topic.prefix><table>` (decimals, timestamps
and NULLs included), in incrementing, timestamp and timestamp+incrementing modes; rows
inserted while the worker is killed with SIGKILL and restarted all arrive, in order,
from the worker's stored source offsets (at most the batch in flight at the kill twice);
an updated row (timestamp modes) comes again.
Then the issue's pipeline in small, from config/jdbc-{source,sink}-connector.properties:
MariaDB → JDBC source → Kafka → JDBC sink (upsert, pk.mode=record_value, auto.create) →
an equal PostgreSQL table, inserts and updates included, across a kill -9 of the worker;
once with JsonConverter and once with Confluent's AvroConverter against the broker's
Schema Registry (the topic then read back with confluent-kafka's AvroDeserializer).
500 rows, 100 inserts and 50 updates by default; FJORD_CONNECT_FULL=1 runs the issue's
50,000 rows, 1,000 inserts and 500 updates."""
import base64
import json
import os
import threading
import time

from .conftest import Worker, create_topic, wait_for, write_props
from .jdbc_dbs import PASSWORD, mariadb, postgres  # noqa: F401 (fixtures)

import pytest


def decimal_of(b64, scale):
    raw = base64.b64decode(b64)
    n = int.from_bytes(raw, "big", signed=True)
    s = "%d" % abs(n)
    s = s.rjust(scale + 1, "0")
    return ("-" if n < 0 else "") + s[:-scale] + "." + s[-scale:]


def make_table(db, table):
    if db.name == "postgres":
        db.sql("CREATE TABLE %s (id SERIAL PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(10,2), note TEXT, "
               "updated_at TIMESTAMP NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC'))" % table)
    else:
        db.sql("CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
               "amount DECIMAL(10,2), note TEXT, updated_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)))" % table)


def insert(db, table, start, n):
    for s in range(start, start + n, 2000):  # statements small enough for one argument
        rows = ",".join("('row-%d', %s, %s)" % (i, "%d.%02d" % (i, i % 100) if i % 7 else "NULL",
                                                  "NULL" if i % 3 == 0 else "'note %d'" % i)
                        for i in range(s, min(start + n, s + 2000)))
        db.sql("INSERT INTO %s (name, amount, note) VALUES %s" % (table, rows))


def source_props(db, name, table, mode, **extra):
    p = {
        "name": name,
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "tasks.max": "1",
        "connection.url": db.url,
        "connection.user": db.user,
        "connection.password": PASSWORD,
        "mode": mode,
        "incrementing.column.name": "id",
        "timestamp.column.name": "updated_at",
        "table.whitelist": table,
        "topic.prefix": "%s-" % db.name,
        "poll.interval.ms": "200",
        "batch.max.rows": "40",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
    }
    p.update(extra)
    return p


class Reader:
    """Keeps consuming a topic in the background (from the start, its own group);
    with `registry`, the values are Avro and read with confluent-kafka's
    AvroDeserializer (each becomes {"payload": the record}, as JsonConverter's).

    Standalone Connect is at least once for sources, as Kafka's: a batch Kafka
    acknowledged just before a SIGKILL, whose offsets had not reached the offset file
    yet, is read again after the restart. `distinct()` is what arrived less such
    repeats (records equal to an earlier one); `repeats()` counts them."""

    def __init__(self, bs, topic, registry=None):
        from confluent_kafka import Consumer
        self.avro = None
        if registry:
            from confluent_kafka.schema_registry import SchemaRegistryClient
            from confluent_kafka.schema_registry.avro import AvroDeserializer
            self.avro = AvroDeserializer(SchemaRegistryClient({"url": registry}))
        self.c = Consumer({"bootstrap.servers": bs, "group.id": "reader-%d" % time.time_ns(),
                           "auto.offset.reset": "earliest", "enable.auto.commit": False,
                           "topic.metadata.refresh.interval.ms": 500})
        self.c.subscribe([topic])
        self.records = []
        self.seen = set()
        self.unique = []

    def _take(self, m):
        if m is not None and not m.error():
            if self.avro:
                from confluent_kafka.serialization import MessageField, SerializationContext
                r = {"payload": self.avro(m.value(), SerializationContext(m.topic(), MessageField.VALUE))}
            else:
                r = json.loads(m.value())
            self.records.append(r)
            k = json.dumps(r["payload"], sort_keys=True, default=str)
            if k not in self.seen:
                self.seen.add(k)
                self.unique.append(r)

    def poll_until(self, n, timeout=60.0):
        """Distinct records, once n of them arrived (and a little longer, to see more)."""
        deadline = time.time() + timeout
        while len(self.unique) < n and time.time() < deadline:
            self._take(self.c.poll(0.3))
        end = time.time() + 1.5
        while time.time() < end:
            self._take(self.c.poll(0.2))
        return self.unique

    def repeats(self):
        return len(self.records) - len(self.unique)

    def close(self):
        self.c.close()


CASES = [("postgres", "incrementing"), ("mariadb", "timestamp+incrementing"),
         ("postgres", "timestamp"), ("mariadb", "incrementing")]


@pytest.mark.parametrize("engine,mode", CASES, ids=["-".join(c) for c in CASES])
def test_source_modes_survive_kill9(broker, workdir, request, engine, mode):
    db = request.getfixturevalue(engine)
    bs = broker.bootstrap
    table = "src_" + mode.replace("+", "_")
    topic = "%s-%s" % (db.name, table)
    make_table(db, table)
    insert(db, table, 1, 150)
    create_topic(bs, topic)
    conn = write_props(os.path.join(workdir, "jdbc-source.properties"),
                       source_props(db, "jdbc-src", table, mode))
    w = Worker(workdir, bs, [conn]).start()
    reader = Reader(bs, topic)
    try:
        recs = reader.poll_until(150)
        assert [r["payload"]["id"] for r in recs] == list(range(1, 151)), [r["payload"]["id"] for r in recs][:20]
        schema = recs[0]["schema"]
        assert schema["type"] == "struct" and schema["name"] == table
        fields = {f["field"]: f for f in schema["fields"]}
        assert fields["id"]["type"] == "int32" and fields["name"]["type"] == "string"
        assert fields["amount"]["name"] == "org.apache.kafka.connect.data.Decimal"
        assert fields["amount"]["parameters"] == {"scale": "2"}
        assert fields["updated_at"]["name"] == "org.apache.kafka.connect.data.Timestamp"
        assert fields["updated_at"]["type"] == "int64"
        r14 = recs[13]["payload"]
        assert (r14["name"], r14["amount"], r14["note"]) == ("row-14", None, "note 14")
        r12 = recs[11]["payload"]
        assert decimal_of(r12["amount"], 2) == "12.12" and r12["note"] is None
        assert abs(r12["updated_at"] / 1000 - time.time()) < 600

        # Rows keep coming while the worker is killed with SIGKILL and restarted.
        def more():
            for k in range(6):
                insert(db, table, 151 + 25 * k, 25)
                time.sleep(0.25)
        t = threading.Thread(target=more)
        t.start()
        time.sleep(0.6)
        w.kill9()
        time.sleep(0.3)
        w.restart()
        t.join()
        if mode != "incrementing":
            time.sleep(0.05)
            db.sql("UPDATE %s SET name = 'changed', updated_at = %s WHERE id = 5" % (
                table, "clock_timestamp() AT TIME ZONE 'UTC'" if db.name == "postgres" else "UTC_TIMESTAMP(6)"))
        expect = 300 + (0 if mode == "incrementing" else 1)
        recs = reader.poll_until(expect, timeout=60)
        ids = [r["payload"]["id"] for r in recs]
        if mode == "incrementing":
            assert ids == list(range(1, 301)), ids
        else:
            assert ids[:-1] == list(range(1, 301)) and ids[-1] == 5, ids
            assert recs[-1]["payload"]["name"] == "changed"
        # At most the rows of the batch in flight at the kill came twice (a restart that
        # lost the stored offsets would send 150 or more again).
        assert reader.repeats() < 150, reader.repeats()
        st = w.call("GET", "/connectors/jdbc-src/status")[1]
        assert st["tasks"][0]["state"] == "RUNNING", st
        code, offs = w.call("GET", "/connectors/jdbc-src/offsets")
        assert code == 200
        (o,) = offs["offsets"]
        assert o["partition"] == {"protocol": "1", "table": "%s.%s" % (db.database, table)}
        if mode == "incrementing":
            assert o["offset"]["incrementing"] == 300
        elif mode == "timestamp+incrementing":
            # The last row read is the updated one: its timestamp and id.
            assert o["offset"]["incrementing"] == 5
        if "timestamp" in mode:
            assert {"timestamp", "timestamp_nanos"} <= set(o["offset"])
    finally:
        reader.close()
        w.stop()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def read_props(name):
    """A .properties file of config/ as a dict."""
    out = {}
    with open(os.path.join(ROOT, "config", name)) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out[k.strip()] = v.strip()
    return out


AVRO = "io.confluent.connect.avro.AvroConverter"
# The sizes with FJORD_CONNECT_FULL=1: 50,000 rows, then 1,000 inserts and 500 updates.
FULL = os.environ.get("FJORD_CONNECT_FULL") == "1"
ROWS, MORE, UPDATED = (50_000, 1_000, 500) if FULL else (500, 100, 50)


@pytest.mark.parametrize("converter", ["json", "avro"])
def test_mariadb_to_postgres_pipeline(broker, workdir, mariadb, postgres, converter):
    """config/jdbc-source-connector.properties and config/jdbc-sink-connector.properties
    as shipped (only where the databases are, and a shorter poll): MariaDB → Kafka →
    PostgreSQL, with inserts and updates while the worker is killed with SIGKILL; with
    `avro`, both connectors' value.converter is Confluent's AvroConverter instead."""
    bs = broker.bootstrap
    table = "orders" if converter == "json" else "orders_avro"
    make_table(mariadb, table)
    insert(mariadb, table, 1, ROWS)
    src_p = read_props("jdbc-source-connector.properties")
    sink_p = read_props("jdbc-sink-connector.properties")
    assert src_p["table.whitelist"] == "orders" and src_p["mode"] == "timestamp+incrementing"
    assert sink_p["topics"] == src_p["topic.prefix"] + "orders" and sink_p["insert.mode"] == "upsert"
    topic = src_p["topic.prefix"] + table
    src_p["table.whitelist"] = table
    sink_p["topics"] = topic
    registry = None
    if converter == "avro":
        registry = broker.registry_url
        for p in (src_p, sink_p):
            p.pop("value.converter.schemas.enable")
            p.update({"value.converter": AVRO, "value.converter.schema.registry.url": registry})
    create_topic(bs, topic)
    src_p.update({"connection.url": mariadb.url, "connection.user": mariadb.user,
                  "connection.password": PASSWORD, "poll.interval.ms": "200"})
    sink_p.update({"connection.url": postgres.url, "connection.user": postgres.user,
                   "connection.password": PASSWORD})
    src = write_props(os.path.join(workdir, "src.properties"), src_p)
    sink = write_props(os.path.join(workdir, "sink.properties"), sink_p)
    # A short session: the killed worker's sink consumer leaves the group sooner.
    w = Worker(workdir, bs, [src, sink], extra={"consumer.session.timeout.ms": "6000",
                                                     "consumer.heartbeat.interval.ms": "1000"}).start()
    target = topic  # table.name.format=${topic}
    q = "SELECT id, name, amount, note, %s FROM %s ORDER BY id"
    my_q = q % ("DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f')", table)
    pg_q = q % ("to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US')", '"%s"' % target)

    def same(n):
        try:
            a, b = mariadb.sql(my_q), postgres.sql(pg_q)
        except Exception:
            return False
        # DATETIME(6) → Connect Timestamp keeps milliseconds.
        trim = [[*r[:4], r[4][:23]] for r in a]
        return len(a) == n and [[*r[:4], r[4][:23]] for r in b] == trim

    reader = Reader(bs, topic, registry)
    try:
        wait_for(lambda: same(ROWS), 300 if FULL else 60, "%d equal rows in PostgreSQL" % ROWS)
        types = postgres.column_types(target)
        assert types["amount"] == "numeric" and types["updated_at"] == "timestamp without time zone", types
        assert types["id"] == "integer", types
        if registry:
            # Registered under TopicNameStrategy's subject, shaped as Confluent's AvroData.
            import requests
            latest = requests.get("%s/subjects/%s-value/versions/latest" % (registry, topic), timeout=10).json()
            s = json.loads(latest["schema"])
            fields = {f["name"]: f["type"] for f in s["fields"]}
            assert s["type"] == "record" and s["name"] == table, s
            assert fields["id"] == "int" and fields["name"] == "string", fields
            assert fields["amount"][0] == "null", fields
            assert (fields["amount"][1]["logicalType"], fields["amount"][1]["scale"]) == ("decimal", 2), fields
            assert fields["updated_at"]["logicalType"] == "timestamp-millis", fields

        # Inserts and updates while the worker is killed with SIGKILL and restarted.
        def more():
            for k in range(4):
                insert(mariadb, table, ROWS + 1 + (MORE // 4) * k, MORE // 4)
                time.sleep(0.2)
        t = threading.Thread(target=more)
        t.start()
        time.sleep(0.3)
        w.kill9()
        time.sleep(0.2)
        w.restart()
        t.join()
        time.sleep(0.05)
        mariadb.sql("UPDATE %s SET name = CONCAT(name, '-v2'), updated_at = UTC_TIMESTAMP(6) WHERE id <= %d"
                    % (table, UPDATED))
        wait_for(lambda: same(ROWS + MORE), 300 if FULL else 60, "inserts and updates in PostgreSQL")
        assert postgres.sql('SELECT name FROM "%s" WHERE id = %d' % (target, UPDATED)) == [["row-%d-v2" % UPDATED]]
        # The topic holds each row, and each updated row once more: nothing lost (and at
        # most the batch in flight at the kill twice; PostgreSQL's upsert absorbs it).
        ids = sorted(r["payload"]["id"] for r in reader.poll_until(ROWS + MORE + UPDATED, 300 if FULL else 60))
        assert ids == sorted(list(range(1, ROWS + MORE + 1)) + list(range(1, UPDATED + 1))), len(ids)
        # At most the batches in flight at the kill (batch.max.rows=500 in the file) twice.
        assert reader.repeats() < (1000 if FULL else 100), reader.repeats()
    finally:
        reader.close()
        w.stop()
