"""The JDBC sink (io.confluent.connect.jdbc.JdbcSinkConnector) into a real PostgreSQL
and a real MariaDB: JSON-with-schema records produced with confluent-kafka become rows
with the declared column types (auto.create), a record of an existing key updates its
row (upsert), a tombstone deletes it (delete.enabled), a new optional field adds a
column (auto.evolve); rows the database refuses go to the dead-letter queue with
errors.tolerance=all; a wrong password, an unreachable database and a bad URL give a
FAILED task with a readable trace (or a 400), never a crash."""
import base64
import json
import time

from confluent_kafka import Producer

from .conftest import Worker, consume_all, create_topic, wait_for
from .jdbc_dbs import PASSWORD, database, mariadb, postgres  # noqa: F401 (fixtures)

DEC = {"type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal",
       "version": 1, "parameters": {"scale": "2"}}
TS = {"type": "int64", "optional": True, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}
KEY_SCHEMA = {"type": "struct", "optional": False, "fields": [{"field": "id", "type": "int64", "optional": False}]}
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def dec(cents):
    """Kafka's Decimal encoding: base64 of the unscaled big-endian two's complement."""
    n = (cents.bit_length() + 8) // 8
    return base64.b64encode(cents.to_bytes(n, "big", signed=True)).decode()


def value(i, name, color=None):
    fields = [
        {"field": "id", "type": "int64", "optional": False},
        {"field": "name", "type": "string", "optional": False},
        {"field": "qty", "type": "int32", "optional": True},
        {"field": "price", **DEC},
        {"field": "created", **TS},
        {"field": "active", "type": "boolean", "optional": False},
        {"field": "note", "type": "string", "optional": True},
        {"field": "ratio", "type": "double", "optional": True},
    ]
    payload = {"id": i, "name": name, "qty": i * 3, "price": dec(i * 101 - 250),
               "created": BASE_MS + i * 1000, "active": i % 2 == 0,
               "note": None if i % 5 == 0 else "n%d" % i, "ratio": i / 4}
    if color is not None:
        fields.append({"field": "color", "type": "string", "optional": True})
        payload["color"] = color
    return {"schema": {"type": "struct", "name": "product", "optional": False, "fields": fields},
            "payload": payload}


def key(i):
    return {"schema": KEY_SCHEMA, "payload": {"id": i}}


def produce(bs, topic, items):
    """items: (key dict, value dict or None for a tombstone)."""
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    for k, v in items:
        p.produce(topic, key=json.dumps(k).encode(),
                  value=None if v is None else json.dumps(v).encode())
    assert p.flush(30) == 0


def sink_config(db, topic, **extra):
    c = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "connection.url": db.url,
        "connection.user": db.user,
        "connection.password": PASSWORD,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
        "connection.attempts": "1",
        "retry.backoff.ms": "200",
    }
    c.update(extra)
    return c


def create(worker, name, config):
    code, body = worker.call("POST", "/connectors", {"name": name, "config": config})
    assert code == 201, body
    return body


def count(db, table):
    return int(db.sql("SELECT COUNT(*) FROM %s" % table)[0][0])


def test_upsert_tombstone_autocreate_autoevolve(broker, workdir, database):
    db = database
    bs = broker.bootstrap
    topic = "products_%s" % db.name
    create_topic(bs, topic)
    w = Worker(workdir, bs).start()
    try:
        produce(bs, topic, [(key(i), value(i, "item-%d" % i)) for i in range(200)])
        create(w, "jdbc-sink", sink_config(db, topic, **{
            "insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id",
            "auto.create": "true", "auto.evolve": "true", "delete.enabled": "true",
            "batch.size": "64"}))
        wait_for(lambda: count_or_zero(db, topic) == 200, 60, "200 rows in %s" % db.name)
        types = db.column_types(topic)
        if db.name == "postgres":
            assert types == {"id": "bigint", "name": "text", "qty": "integer", "price": "numeric",
                             "created": "timestamp without time zone", "active": "boolean",
                             "note": "text", "ratio": "double precision"}, types
        else:
            assert types == {"id": "bigint(20)", "name": "text", "qty": "int(11)", "price": "decimal(65,2)",
                             "created": "datetime(3)", "active": "tinyint(4)", "note": "text",
                             "ratio": "double"}, types
        row = db.sql("SELECT id, name, qty, price, created, active, note, ratio FROM %s WHERE id = 7" % topic)[0]
        active_false = "f" if db.name == "postgres" else "0"
        created = "2026-01-01 00:00:07" if db.name == "postgres" else "2026-01-01 00:00:07.000"
        assert row == ["7", "item-7", "21", "4.57", created, active_false, "n7", "1.75"], row
        neg = db.sql("SELECT price, note FROM %s WHERE id = 0" % topic)[0]
        assert neg == ["-2.50", None], neg

        # Updates of 50 keys, tombstones for 10, and a new optional field (auto.evolve).
        items = [(key(i), value(i, "renamed-%d" % i)) for i in range(50)]
        items += [(key(i), None) for i in range(50, 60)]
        items += [(key(300), value(300, "with-color", color="blue"))]
        produce(bs, topic, items)
        wait_for(lambda: count_or_zero(db, topic) == 191 and
                 db.sql("SELECT name FROM %s WHERE id = 49" % topic) == [["renamed-49"]], 60,
                 "updates, deletes and the new row")
        assert db.sql("SELECT COUNT(*) FROM %s WHERE id BETWEEN 50 AND 59" % topic) == [["0"]]
        assert db.sql("SELECT COUNT(*) FROM %s WHERE name LIKE 'renamed-%%'" % topic) == [["50"]]
        assert db.sql("SELECT name, color FROM %s WHERE id = 300" % topic) == [["with-color", "blue"]]
        assert db.sql("SELECT color FROM %s WHERE id = 1" % topic) == [[None]]
        st = w.call("GET", "/connectors/jdbc-sink/status")[1]
        assert st["tasks"][0]["state"] == "RUNNING", st
    finally:
        w.stop()


def count_or_zero(db, table):
    try:
        return count(db, table)
    except Exception:
        return 0


def test_postgres_copy_path_keeps_record_order_and_escapes(broker, workdir, postgres):
    """PostgreSQL batches go by COPY (straight into the table while keys are new, else
    through a stage table): one batch repeating keys, deleting and re-creating rows
    ends as the records applied in order would leave it, text with tabs, newlines,
    carriage returns, backslashes and a literal \\N round-trips byte for byte, NULLs
    stay NULL; insert.mode=update keeps the last update of a key in a batch."""
    db = postgres
    bs = broker.bootstrap
    topic, upd = "copy_order", "copy_update"
    create_topic(bs, topic)
    create_topic(bs, upd)
    odd = ["tab\there", "line\nbreak", "cr\rlf\r\n", "back\\slash \\N \\t", "\\", "", "é ü 中"]
    expected = {}
    items = []

    def put(i, name, note="x"):
        v = value(i, name)
        v["payload"]["note"] = note
        items.append((key(i), v))
        expected[i] = (name, note)

    def delete(i):
        items.append((key(i), None))
        expected.pop(i, None)
    # Batch 1 (new keys, then repeats and deletes of them in the same batch).
    for i in range(60):
        put(i, "first-%d" % i, odd[i % len(odd)] if i % 3 else None)
    put(1, "second-1")
    put(1, "third-1", odd[0])
    delete(2)
    delete(3)
    put(3, "reborn-3", odd[3])
    put(4, "fourth-4")
    delete(4)
    produce(bs, topic, items)
    # Update mode over a table holding keys 0..9: key 5 updated twice (the last wins),
    # key 99 unknown (nothing to update).
    db.sql("CREATE TABLE copy_update (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
    db.sql("INSERT INTO copy_update SELECT g, 'orig-' || g FROM generate_series(0, 9) g")
    sch = {"type": "struct", "fields": [{"field": "id", "type": "int64", "optional": False},
                                        {"field": "name", "type": "string", "optional": False}]}
    produce(bs, upd, [(key(i), {"schema": sch, "payload": {"id": i, "name": n}})
                      for i, n in [(5, "u1"), (6, "u\t6"), (5, "u2"), (99, "ghost"), (7, "u7")]])
    w = Worker(workdir, bs).start()
    try:
        create(w, "jdbc-copy", sink_config(db, topic, **{
            "insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id",
            "auto.create": "true", "delete.enabled": "true", "batch.size": "500"}))
        create(w, "jdbc-update", sink_config(db, upd, **{
            "insert.mode": "update", "pk.mode": "record_value", "pk.fields": "id"}))

        def table():
            rows = db.sql("SELECT id, name, encode(convert_to(note, 'UTF8'), 'hex') FROM %s ORDER BY id" % topic)
            return {int(r[0]): (r[1], None if r[2] is None else bytes.fromhex(r[2]).decode()) for r in rows}
        want = dict(sorted(expected.items()))
        wait_for(lambda: count_or_zero(db, topic) == len(want) and table() == want, 60, "batch 1 as applied in order")
        # Batch 2: every key again (all exist: the stage path), with repeats and a delete.
        items.clear()
        for i in sorted(expected):
            put(i, "again-%d" % i, odd[(i + 1) % len(odd)])
        put(10, "last-10", None)
        delete(11)
        produce(bs, topic, items)
        want = dict(sorted(expected.items()))
        wait_for(lambda: table() == want, 60, "batch 2 as applied in order")
        wait_for(lambda: db.sql("SELECT id, name FROM copy_update WHERE id BETWEEN 4 AND 8 ORDER BY id") ==
                 [["4", "orig-4"], ["5", "u2"], ["6", "u\t6"], ["7", "u7"], ["8", "orig-8"]], 60, "the updates")
        assert db.sql("SELECT COUNT(*) FROM copy_update") == [["10"]]
        for name in ("jdbc-copy", "jdbc-update"):
            st = w.call("GET", "/connectors/%s/status" % name)[1]
            assert st["tasks"][0]["state"] == "RUNNING", st
    finally:
        w.stop()


def test_rows_the_database_refuses_go_to_the_dlq(broker, workdir, postgres):
    db = postgres
    bs = broker.bootstrap
    topic, dlq = "payments", "payments-dlq"
    create_topic(bs, topic)
    db.sql("CREATE TABLE payments (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty INT CHECK (qty < 1000), "
           "price NUMERIC(10,2), created TIMESTAMP, active BOOLEAN NOT NULL, note TEXT, ratio DOUBLE PRECISION)")
    bad = {5, 17, 33}  # 5 and 17 repeat the primary key 1 (insert mode), 33 fails the CHECK
    items = []
    for i in range(40):
        v = value(i, "p-%d" % i)
        if i in (5, 17):
            v["payload"]["id"] = 1
        if i == 33:
            v["payload"]["qty"] = 5000
        items.append((key(i), v))
    produce(bs, topic, items)
    w = Worker(workdir, bs).start()
    try:
        create(w, "jdbc-dlq", sink_config(db, topic, **{
            "insert.mode": "insert", "pk.mode": "none", "auto.create": "false",
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true"}))
        wait_for(lambda: count(db, "payments") == 40 - len(bad), 60, "37 rows")
        msgs = consume_all(bs, dlq, len(bad), timeout=30)
        assert len(msgs) == len(bad), [m.offset() for m in msgs]
        offsets = sorted(int(dict(m.headers())["__connect.errors.offset"]) for m in msgs)
        assert offsets == sorted(bad)
        for m in msgs:
            h = {k: v.decode() for k, v in m.headers()}
            assert h["__connect.errors.topic"] == topic
            assert h["__connect.errors.stage"] == "TASK_PUT"
            assert h["__connect.errors.connector.name"] == "jdbc-dlq"
            assert h["__connect.errors.exception.class.name"] == "java.sql.SQLException"
            assert ("check constraint" in h["__connect.errors.exception.message"]
                    or "duplicate key" in h["__connect.errors.exception.message"]), h
            # The original record, byte for byte.
            i = json.loads(m.key())["payload"]["id"]
            assert json.loads(m.value())["payload"]["name"] == "p-%d" % i
        assert db.sql("SELECT COUNT(*) FROM payments WHERE name IN ('p-5','p-17','p-33')") == [["0"]]
        assert w.call("GET", "/connectors/jdbc-dlq/status")[1]["tasks"][0]["state"] == "RUNNING"
    finally:
        w.stop()


def test_refused_row_without_tolerance_fails_the_task(broker, workdir, mariadb):
    db = mariadb
    bs = broker.bootstrap
    topic = "strict"
    create_topic(bs, topic)
    db.sql("CREATE TABLE strict (id BIGINT PRIMARY KEY, name VARCHAR(3) NOT NULL)")
    schema = {"type": "struct", "fields": [{"field": "id", "type": "int64", "optional": False},
                                           {"field": "name", "type": "string", "optional": False}]}
    produce(bs, topic, [(key(i), {"schema": schema, "payload": {"id": i, "name": "ok" if i != 3 else "too long"}})
                        for i in range(6)])
    w = Worker(workdir, bs).start()
    try:
        create(w, "jdbc-strict", sink_config(db, topic, **{"pk.mode": "record_value", "pk.fields": "id",
                                                          "insert.mode": "upsert"}))
        st = w.wait_status("jdbc-strict", lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED")
        trace = st["tasks"][0]["trace"]
        assert "Tolerance exceeded" in trace and "Data too long" in trace, trace
        assert "strict-0@3" in trace, trace
        # The rows before and after the refused one were written (one by one after the refusal).
        assert db.sql("SELECT id FROM strict ORDER BY id") == [["0"], ["1"], ["2"], ["4"], ["5"]]
    finally:
        w.stop()


def test_wrong_password_unreachable_and_bad_url(broker, workdir, postgres, mariadb):
    bs = broker.bootstrap
    create_topic(bs, "nowhere")
    w = Worker(workdir, bs).start()
    try:
        for name, db in (("pg-badpw", postgres), ("my-badpw", mariadb)):
            c = sink_config(db, "nowhere", **{"connection.password": "wrong"})
            create(w, name, c)
            st = w.wait_status(name, lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED")
            trace = st["tasks"][0]["trace"]
            assert "java.sql.SQLException" in trace and "cannot connect to" in trace, trace
            assert ("password authentication failed" in trace or "Access denied" in trace), trace
            assert "wrong" not in trace
        c = sink_config(postgres, "nowhere", **{"connection.url": "jdbc:postgresql://127.0.0.1:1/x"})
        create(w, "pg-down", c)
        st = w.wait_status("pg-down", lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED")
        assert "after 1 connection attempts" in st["tasks"][0]["trace"], st
        code, body = w.call("POST", "/connectors", {"name": "bad-url", "config": sink_config(
            postgres, "nowhere", **{"connection.url": "jdbc:oracle:thin:@h:1521:db"})})
        assert code == 400 and "connection.url" in body["message"], body
        code, body = w.call("POST", "/connectors", {"name": "bad-mode", "config": sink_config(
            postgres, "nowhere", **{"insert.mode": "merge"})})
        assert code == 400 and "insert.mode" in body["message"], body
        # The worker is still serving.
        assert w.call("GET", "/connectors")[0] == 200
        time.sleep(0.1)
    finally:
        w.stop()
