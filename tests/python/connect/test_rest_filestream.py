"""Kafka Connect's REST API on a real worker, and the FileStream connectors through it:
a file → FileStreamSource → topic → FileStreamSink → a file, byte for byte; status
codes and error bodies as Connect's (201/200/202/204, 400 malformed, 404 unknown,
409 existing); pause/resume/stop; offsets (KIP-875: PATCH/DELETE only when STOPPED);
and source offsets surviving a restart of the worker (no line sent twice after a
graceful stop)."""
import json
import os
import time

from .conftest import Worker, consume_all, create_topic, lines_of, wait_for

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


def test_filestream_pipeline_and_rest(broker, workdir):
    bs = broker.bootstrap
    create_topic(bs, "fs-lines", 1)
    src_file = os.path.join(workdir, "in.txt")
    out_file = os.path.join(workdir, "out.txt")
    with open(src_file, "w") as f:
        for i in range(500):
            f.write("line %d\n" % i)
    w = Worker(workdir, bs, extra={"key.converter": "org.apache.kafka.connect.storage.StringConverter",
                                   "value.converter": "org.apache.kafka.connect.storage.StringConverter"}).start()
    try:
        code, root = w.call("GET", "/")
        assert code == 200 and "version" in root
        code, plugins = w.call("GET", "/connector-plugins")
        assert code == 200
        assert {p["class"] for p in plugins} == {SOURCE, SINK, "io.confluent.connect.s3.S3SinkConnector",
                                                 "io.confluent.connect.jdbc.JdbcSinkConnector",
                                                 "io.confluent.connect.jdbc.JdbcSourceConnector"}

        src = {"connector.class": SOURCE, "file": src_file, "topic": "fs-lines", "tasks.max": "1"}
        code, info = w.call("POST", "/connectors", {"name": "src", "config": src})
        assert code == 201, info
        assert info["name"] == "src" and info["type"] == "source" and info["tasks"] == [{"connector": "src", "task": 0}]
        # existing name → 409; malformed body → 400; unknown class → 400 naming the key
        code, err = w.call("POST", "/connectors", {"name": "src", "config": src})
        assert code == 409 and err["error_code"] == 409 and "already exists" in err["message"]
        code, err = w.call("POST", "/connectors", b"{not json")
        assert code == 400 and err["error_code"] == 400
        code, err = w.call("POST", "/connectors", {"name": "x", "config": {"connector.class": "com.example.Nope"}})
        assert code == 400 and "connector.class" in err["message"]
        code, err = w.call("POST", "/connectors", {"name": "x", "config": {"connector.class": SINK, "topics": "a", "file": out_file, "tasks.max": "two"}})
        assert code == 400 and "tasks.max" in err["message"]
        code, err = w.call("GET", "/connectors/nope/status")
        assert code == 404 and err == {"error_code": 404, "message": "Connector nope not found"}

        # sink via PUT /config (201 created)
        sink = {"connector.class": SINK, "file": out_file, "topics": "fs-lines"}
        code, info = w.call("PUT", "/connectors/sink/config", sink)
        assert code == 201 and info["type"] == "sink", info
        wait_for(lambda: len(lines_of(out_file)) >= 500, 60, "sink file")
        time.sleep(1.0)
        assert lines_of(out_file) == ["line %d" % i for i in range(500)]

        code, names = w.call("GET", "/connectors")
        assert code == 200 and sorted(names) == ["sink", "src"]
        code, exp = w.call("GET", "/connectors?expand=status&expand=info")
        code, exp = w.call("GET", "/connectors?expand=status")
        assert exp["src"]["status"]["connector"]["state"] == "RUNNING"
        code, exp = w.call("GET", "/connectors?expand=info")
        assert exp["sink"]["info"]["config"]["topics"] == "fs-lines"
        code, st = w.call("GET", "/connectors/sink/status")
        assert st["connector"]["state"] == "RUNNING" and st["tasks"][0]["state"] == "RUNNING" and st["type"] == "sink"
        code, ts = w.call("GET", "/connectors/sink/tasks/0/status")
        assert code == 200 and ts["id"] == 0 and ts["state"] == "RUNNING"
        assert w.call("GET", "/connectors/sink/tasks/7/status")[0] == 404
        code, tasks = w.call("GET", "/connectors/sink/tasks")
        assert tasks[0]["id"] == {"connector": "sink", "task": 0} and tasks[0]["config"]["file"] == out_file
        code, cfg = w.call("GET", "/connectors/sink/config")
        assert cfg["file"] == out_file and cfg["name"] == "sink"
        code, topics = w.call("GET", "/connectors/sink/topics")
        assert topics == {"sink": {"topics": ["fs-lines"]}}
        code, topics = w.call("GET", "/connectors/src/topics")
        assert topics == {"src": {"topics": ["fs-lines"]}}
        assert w.call("PUT", "/connectors/sink/topics/reset")[0] == 200
        assert w.call("GET", "/connectors/sink/topics")[1] == {"sink": {"topics": []}}

        # pause: new lines wait; resume: they arrive
        assert w.call("PUT", "/connectors/src/pause")[0] == 202
        w.wait_status("src", lambda s: s["connector"]["state"] == "PAUSED" and s["tasks"][0]["state"] == "PAUSED")
        with open(src_file, "a") as f:
            for i in range(500, 600):
                f.write("line %d\n" % i)
        time.sleep(1.5)
        assert len(lines_of(out_file)) == 500
        assert w.call("PUT", "/connectors/src/resume")[0] == 202
        wait_for(lambda: len(lines_of(out_file)) >= 600, 30, "after resume")

        # offsets: source positions; sink consumer offsets
        code, offs = w.call("GET", "/connectors/src/offsets")
        assert code == 200
        wait_for(lambda: w.call("GET", "/connectors/src/offsets")[1]["offsets"]
                 == [{"partition": {"filename": src_file}, "offset": {"position": os.path.getsize(src_file)}}], 10, "source offsets")
        wait_for(lambda: w.call("GET", "/connectors/sink/offsets")[1]["offsets"]
                 == [{"partition": {"kafka_topic": "fs-lines", "kafka_partition": 0}, "offset": {"kafka_offset": 600}}], 20, "sink offsets")
        # PATCH/DELETE only when STOPPED
        code, err = w.call("DELETE", "/connectors/src/offsets")
        assert code == 400 and "STOPPED" in err["message"]
        assert w.call("PUT", "/connectors/src/stop")[0] == 204
        st = w.wait_status("src", lambda s: s["connector"]["state"] == "STOPPED")
        assert st["tasks"] == []
        # rewind the source to line 590 (position of its start)
        pos590 = sum(len("line %d\n" % i) for i in range(590))
        code, msg = w.call("PATCH", "/connectors/src/offsets",
                           {"offsets": [{"partition": {"filename": src_file}, "offset": {"position": pos590}}]})
        assert code == 200 and "altered" in msg["message"], msg
        assert w.call("GET", "/connectors/src/offsets")[1]["offsets"][0]["offset"] == {"position": pos590}
        code, _ = w.call("PUT", "/connectors/src/resume")
        assert code == 202
        w.wait_status("src", lambda s: s["connector"]["state"] == "RUNNING" and s["tasks"] and s["tasks"][0]["state"] == "RUNNING")
        wait_for(lambda: len(lines_of(out_file)) >= 610, 30, "replayed lines")
        time.sleep(1.0)
        assert lines_of(out_file)[600:] == ["line %d" % i for i in range(590, 600)]

        # sink offsets: stop, reset (DELETE → the group's offsets go), resume → all again
        assert w.call("PUT", "/connectors/sink/stop")[0] == 204
        w.wait_status("sink", lambda s: s["connector"]["state"] == "STOPPED")
        code, msg = w.call("PATCH", "/connectors/sink/offsets",
                           {"offsets": [{"partition": {"kafka_topic": "fs-lines", "kafka_partition": 0}, "offset": {"kafka_offset": 605}}]})
        assert code == 200, msg
        assert w.call("GET", "/connectors/sink/offsets")[1]["offsets"][0]["offset"] == {"kafka_offset": 605}
        os.remove(out_file)
        assert w.call("PUT", "/connectors/sink/resume")[0] == 202
        wait_for(lambda: len(lines_of(out_file)) >= 5, 30, "sink after offsets altered")
        time.sleep(1.0)
        assert lines_of(out_file) == ["line %d" % i for i in range(595, 600)]

        # restarts
        assert w.call("POST", "/connectors/sink/restart")[0] == 204
        code, st = w.call("POST", "/connectors/sink/restart?includeTasks=true")
        assert code == 202 and st["name"] == "sink"
        assert w.call("POST", "/connectors/sink/restart?includeTasks=maybe")[0] == 400
        assert w.call("POST", "/connectors/sink/tasks/0/restart")[0] == 204
        assert w.call("POST", "/connectors/sink/tasks/9/restart")[0] == 404

        # validate
        code, v = w.call("PUT", "/connector-plugins/FileStreamSinkConnector/config/validate",
                         {"connector.class": SINK, "name": "v", "tasks.max": "x", "file": "/tmp/x"})
        assert code == 200 and v["error_count"] == 2, v
        errs = {c["value"]["name"]: c["value"]["errors"] for c in v["configs"] if c["value"]["errors"]}
        assert set(errs) == {"tasks.max", "topics"}, errs
        code, v = w.call("PUT", "/connector-plugins/FileStreamSinkConnector/config/validate",
                         {"connector.class": SINK, "name": "v", "topics": "a", "file": "/tmp/x"})
        assert v["error_count"] == 0

        # PUT config updates (200), DELETE (204), then 404
        code, info = w.call("PUT", "/connectors/sink/config", dict(sink, **{"tasks.max": "1"}))
        assert code == 200 and info["config"]["tasks.max"] == "1"
        assert w.call("DELETE", "/connectors/sink")[0] == 204
        assert w.call("GET", "/connectors/sink")[0] == 404
        assert w.call("DELETE", "/connectors/sink")[0] == 404
        assert w.call("GET", "/no/such/path")[0] == 404
    finally:
        w.stop()
    assert w.proc.returncode == 0, w.log_tail()


def test_source_offsets_survive_restart(broker, workdir):
    """Standalone: offsets in offset.storage.file.filename; after a graceful stop and a
    start, the source goes on where it was: every line once in the topic."""
    bs = broker.bootstrap
    create_topic(bs, "fs-restart", 1)
    src_file = os.path.join(workdir, "in.txt")
    with open(src_file, "w") as f:
        for i in range(1000):
            f.write(json.dumps({"n": i}) + "\n")
    conn = os.path.join(workdir, "src.properties")
    with open(conn, "w") as f:
        f.write("name=src\nconnector.class=FileStreamSource\ntopic=fs-restart\nfile=%s\nbatch.size=100\n" % src_file)
    w = Worker(workdir, bs, [conn], extra={"value.converter": "org.apache.kafka.connect.storage.StringConverter"}).start()
    wait_for(lambda: os.path.exists(os.path.join(workdir, "connect.offsets"))
             and str(os.path.getsize(src_file)) in open(os.path.join(workdir, "connect.offsets")).read(), 30, "offsets flushed")
    w.stop()
    assert w.proc.returncode == 0, w.log_tail()
    with open(src_file, "a") as f:
        for i in range(1000, 1200):
            f.write(json.dumps({"n": i}) + "\n")
    w.restart()
    try:
        msgs = consume_all(bs, "fs-restart", 1200, 60)
        got = [json.loads(m.value())["n"] for m in msgs]
        assert got == list(range(1200))
    finally:
        w.stop()
