"""Bad configuration never starts anything: `fjord-connect standalone` exits 2 naming
the key and the file (unknown connector class, a missing required key, a value of the
wrong type, a bad converter), before it binds its REST port."""
import os
import socket

import pytest

from fjordtest.binaries import require
from fjordtest.net import HOST, free_port

from .conftest import connect_binary, run_standalone, write_props

SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"


@pytest.fixture
def files(tmp_path):
    require(connect_binary())
    port = free_port()
    worker = write_props(str(tmp_path / "worker.properties"), {
        "bootstrap.servers": "127.0.0.1:9",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": str(tmp_path / "offsets"),
        "listeners": "http://%s:%d" % (HOST, port),
    })
    return tmp_path, worker, port


CASES = [
    ({"connector.class": "com.example.NoSuchConnector", "topics": "t"}, "connector.class"),
    ({"connector.class": SINK}, "topics"),
    ({"connector.class": SINK, "topics": "t", "file": "/tmp/x", "tasks.max": "many"}, "tasks.max"),
    ({"connector.class": SINK, "topics": "t", "file": "/tmp/x", "errors.tolerance": "some"}, "errors.tolerance"),
    ({"connector.class": SINK, "topics": "t", "file": "/tmp/x",
      "value.converter": "io.example.NoConverter"}, "value.converter"),
    ({"connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": "t",
      "storage.class": "io.confluent.connect.s3.storage.S3Storage",
      "format.class": "io.confluent.connect.s3.format.json.JsonFormat", "flush.size": "1000"},
     "s3.bucket.name"),
    ({"connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": "t", "s3.bucket.name": "b",
      "storage.class": "io.confluent.connect.s3.storage.S3Storage",
      "format.class": "io.confluent.connect.s3.format.json.JsonFormat", "flush.size": "ten"},
     "flush.size"),
]


@pytest.mark.parametrize("props,key", CASES, ids=[c[1] for c in CASES])
def test_bad_connector_config_exits_2_naming_key_and_file(files, props, key):
    tmp, worker, port = files
    conn = write_props(str(tmp / "bad.properties"), dict({"name": "bad"}, **props))
    code, err = run_standalone(["standalone", worker, conn])
    assert code == 2, err
    assert key in err and "bad.properties" in err, err
    # nothing started: the REST port was never bound
    s = socket.socket()
    try:
        s.bind((HOST, port))
    finally:
        s.close()


def test_bad_worker_config_exits_2(files):
    tmp, worker, _ = files
    w = write_props(str(tmp / "w2.properties"), {
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": str(tmp / "offsets"),
        "offset.flush.interval.ms": "often",
    })
    code, err = run_standalone(["standalone", w])
    assert code == 2 and "offset.flush.interval.ms" in err and "w2.properties" in err, err
    w3 = write_props(str(tmp / "w3.properties"), {
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": str(tmp / "offsets"),
    })
    code, err = run_standalone(["standalone", w3])
    assert code == 2 and "key.converter" in err, err
    code, err = run_standalone(["standalone", str(tmp / "missing.properties")])
    assert code == 2 and "missing.properties" in err, err
    code, err = run_standalone(["bogus"])
    assert code == 2 and "usage" in err, err


def test_sample_files_parse(files):
    """config/s3-sink-connector.properties passes validation (it fails later, at S3,
    not at parsing): checked through the validate endpoint's rules by a dry run with
    an unreachable bootstrap server is not possible; so run it with a bogus worker port
    and look for the startup line instead of an exit 2."""
    import subprocess
    import time
    tmp, worker, port = files
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    p = subprocess.Popen([connect_binary(), "standalone", worker,
                          os.path.join(root, "config", "s3-sink-connector.properties")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and p.poll() is None:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        assert p.poll() is None, p.stdout.read().decode()
    finally:
        p.terminate()
        p.wait(30)
