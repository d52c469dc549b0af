"""`fjord connect` over a real worker's REST API: create from a .properties file,
list/status/config, pause/resume/stop, offsets (altered only when stopped), restart,
delete, and Connect's error messages with a failing exit code."""
import json
import os
import subprocess

from fjordtest.binaries import fjord_cli, require

from .conftest import Worker, create_topic, wait_for

SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


def fjord(w, *args, ok=True):
    p = subprocess.run([fjord_cli(), "--output", "json", "connect", "--connect-url", w.url] + list(args),
                       capture_output=True, text=True, timeout=60)
    if ok:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else None
    assert p.returncode != 0, p.stdout
    return p.stderr


def test_fjord_connect_cli(broker, workdir):
    require(fjord_cli())
    bs = broker.bootstrap
    create_topic(bs, "cli-t", 1)
    out = os.path.join(workdir, "out.txt")
    props = os.path.join(workdir, "sink.properties")
    with open(props, "w") as f:
        f.write("# a sink\nname=cli-sink\nconnector.class=%s\ntopics=cli-t\nfile=%s\n" % (SINK, out))
    w = Worker(workdir, bs).start()
    try:
        info = fjord(w, "create", props)
        assert info["name"] == "cli-sink" and info["type"] == "sink"
        assert "already exists" in fjord(w, "create", props, ok=False)
        assert fjord(w, "list") == ["cli-sink"]
        assert fjord(w, "list", "--expand", "status")["cli-sink"]["status"]["connector"]["state"] == "RUNNING"
        assert fjord(w, "config", "cli-sink")["file"] == out
        wait_for(lambda: fjord(w, "status", "cli-sink")["tasks"][0]["state"] == "RUNNING", 20, "running")
        fjord(w, "pause", "cli-sink")
        wait_for(lambda: fjord(w, "status", "cli-sink")["tasks"][0]["state"] == "PAUSED", 20, "paused")
        fjord(w, "resume", "cli-sink")
        assert "STOPPED" in fjord(w, "offsets", "cli-sink", "--reset", ok=False)
        fjord(w, "stop", "cli-sink")
        assert fjord(w, "status", "cli-sink")["connector"]["state"] == "STOPPED"
        patch = os.path.join(workdir, "offsets.json")
        with open(patch, "w") as f:
            json.dump({"offsets": [{"partition": {"kafka_topic": "cli-t", "kafka_partition": 0},
                                    "offset": {"kafka_offset": 0}}]}, f)
        assert "altered" in fjord(w, "offsets", "cli-sink", "--set", patch)["message"]
        assert fjord(w, "offsets", "cli-sink")["offsets"] == [
            {"partition": {"kafka_topic": "cli-t", "kafka_partition": 0}, "offset": {"kafka_offset": 0}}]
        assert "reset" in fjord(w, "offsets", "cli-sink", "--reset")["message"]
        fjord(w, "resume", "cli-sink")
        st = fjord(w, "restart", "cli-sink", "--include-tasks")
        assert st["name"] == "cli-sink"
        fjord(w, "restart", "cli-sink", "--task", "0")
        fjord(w, "delete", "cli-sink")
        assert "Connector cli-sink not found" in fjord(w, "status", "cli-sink", ok=False)
        assert fjord(w, "list") == []
    finally:
        w.stop()
