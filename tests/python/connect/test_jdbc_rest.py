"""A JDBC connector driven over the REST API as users do, with kafka-connect-py (its
Python client and its `kc` command): create a JDBC sink into a real PostgreSQL, see it
listed, RUNNING, with its config, writing rows; validate a bad config (the errors name
the keys); delete it."""
import json
import shutil
import subprocess

import pytest

from .conftest import Worker, create_topic, wait_for
from .jdbc_dbs import PASSWORD, postgres  # noqa: F401 (fixture)
from .test_jdbc_sink import count_or_zero, key, produce, value


def kafka_connect_py():
    try:
        from kafka_connect import KafkaConnect
        return KafkaConnect
    except ImportError:
        import os
        if os.environ.get("FJORD_REQUIRE_BINARIES") == "1":
            pytest.fail("kafka-connect-py is not installed (tests/python/requirements.txt)")
        pytest.skip("kafka-connect-py is not installed")


def test_jdbc_sink_through_kafka_connect_py(broker, workdir, postgres):
    KafkaConnect = kafka_connect_py()
    bs = broker.bootstrap
    topic = "rest_products"
    create_topic(bs, topic)
    w = Worker(workdir, bs).start()
    try:
        kc = KafkaConnect(url=w.url)
        plugins = [p["class"] for p in json.loads(_get(w, "/connector-plugins"))]
        assert "io.confluent.connect.jdbc.JdbcSinkConnector" in plugins
        assert "io.confluent.connect.jdbc.JdbcSourceConnector" in plugins
        config = {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "topics": topic,
            "connection.url": postgres.url,
            "connection.user": "postgres",
            "connection.password": PASSWORD,
            "insert.mode": "upsert",
            "pk.mode": "record_key",
            "auto.create": "true",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "true",
        }
        info = kc.create_connector({"name": "rest-jdbc", "config": config})
        assert info["name"] == "rest-jdbc" and info["type"] == "sink", info
        assert "rest-jdbc" in kc.list_connectors()
        wait_for(lambda: kc.get_connector_status("rest-jdbc")["tasks"]
                 and kc.get_connector_status("rest-jdbc")["tasks"][0]["state"] == "RUNNING", 30, "RUNNING")
        got = kc.get_connector_config("rest-jdbc")
        assert got["connection.url"] == postgres.url and got["insert.mode"] == "upsert", got
        produce(bs, topic, [(key(i), value(i, "r%d" % i)) for i in range(25)])
        wait_for(lambda: count_or_zero(postgres, topic) == 25, 60, "25 rows")

        # The `kc` command, as an operator would type it.
        kc_bin = shutil.which("kc")
        if kc_bin:
            out = subprocess.run([kc_bin, "--url", w.url, "status", "rest-jdbc"], capture_output=True,
                                 text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["connector"]["state"] == "RUNNING", out.stdout

        # Validation names the keys.
        code, body = w.call("PUT", "/connector-plugins/JdbcSinkConnector/config/validate",
                            dict(config, **{"name": "x", "pk.mode": "sometimes"}))
        assert code == 200 and body["error_count"] == 1, body
        bad = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]}
        assert list(bad) == ["pk.mode"] and "sometimes" in bad["pk.mode"][0], bad

        kc.delete_connector("rest-jdbc")
        wait_for(lambda: "rest-jdbc" not in kc.list_connectors(), 30, "deleted")
    finally:
        w.stop()


def _get(w, path):
    code, body = w.call("GET", path)
    assert code == 200
    return json.dumps(body)
