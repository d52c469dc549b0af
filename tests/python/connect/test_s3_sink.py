"""The seed's S3 pipeline: records produced with confluent-kafka, the S3 sink
(config/s3-sink-connector.properties' keys) run by `fjord-connect standalone` against
moto's S3 server, read back with boto3: exactly those records, in offset order per
partition, under Confluent's object names — across a kill -9 of the worker in the
middle and a restart (no record missing, none twice). Even ids carry an integer
`amount` (written by json.dumps with its spaces: the sink's compact-JSON path, no
parse), odd ids a float (parsed and re-written): every line must be the compact JSON
of its record, byte for byte, either way.

20,000 records by default; FJORD_CONNECT_FULL=1 runs the issue's 100,000."""
import json
import os
import re
import time

from .conftest import Worker, consume_all, create_topic, wait_for, write_props

N = 100_000 if os.environ.get("FJORD_CONNECT_FULL") == "1" else 20_000
PARTS = 4  # N / PARTS is a multiple of FLUSH: every record ends in a full object
FLUSH = 1000
NAME = re.compile(r"^topics/(?P<t>[^/]+)/partition=(?P<p>\d+)/(?P=t)\+(?P=p)\+(?P<o>\d{10})\.json$")


def amount(i):
    """i * 1.5: an integer for even ids (compact-JSON path), a float for odd ones."""
    return i * 3 // 2 if i % 2 == 0 else i * 1.5


def produce(bs, topic, start, end):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "enable.idempotence": True})
    for i in range(start, end):
        p.produce(topic, key=json.dumps({"id": i}).encode(),
                  value=json.dumps({"id": i, "name": "rec-%d" % i, "amount": amount(i)}).encode(),
                  partition=i % PARTS)
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def objects(s3c, bucket):
    keys = []
    for page in s3c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def read_back(s3c, bucket):
    """partition -> [(start offset of object, [records])] in offset order."""
    out = {}
    for k in objects(s3c, bucket):
        m = NAME.match(k)
        assert m, "object name not Confluent's: " + k
        body = s3c.get_object(Bucket=bucket, Key=k)["Body"].read().decode()
        recs = [json.loads(line) for line in body.split("\n") if line]
        # JsonFormat's bytes: compact, keys sorted (what the converter + format write)
        for line, r in zip([ln for ln in body.split("\n") if ln], recs):
            assert line == json.dumps(r, separators=(",", ":"), sort_keys=True), (k, line)
        out.setdefault(int(m["p"]), []).append((int(m["o"]), recs))
    for p in out:
        out[p].sort()
    return out


def test_s3_sink_exactly_once_across_kill9(broker, workdir, s3):
    bs = broker.bootstrap
    topic = "events"
    bucket = "fjord-lake"
    create_topic(bs, topic, PARTS)
    s3c = s3.client()
    s3c.create_bucket(Bucket=bucket)
    conn = write_props(os.path.join(workdir, "s3-sink-connector.properties"), {
        "name": "s3-sink-connector",
        "connector.class": "io.confluent.connect.s3.S3SinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "s3.region": "us-east-1",
        "s3.bucket.name": bucket,
        "store.url": s3.url,
        "aws.access.key.id": "testing",
        "aws.secret.access.key": "testing",
        "flush.size": str(FLUSH),
        "storage.class": "io.confluent.connect.s3.storage.S3Storage",
        "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
        "partitioner.class": "io.confluent.connect.storage.partitioner.DefaultPartitioner",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    })
    half = N // 2
    produce(bs, topic, 0, half)
    # a short session: the killed worker's consumer leaves the group sooner
    w = Worker(workdir, bs, [conn], extra={"consumer.session.timeout.ms": "6000",
                                          "consumer.heartbeat.interval.ms": "1000"}).start()
    try:
        # let some objects land, then kill -9 in the middle
        wait_for(lambda: len(objects(s3c, bucket)) >= 3, 60, "first objects")
        w.kill9()
        before = len(objects(s3c, bucket))
        produce(bs, topic, half, N)
        w.restart()
        per_part = {p: len(range(p, N, PARTS)) for p in range(PARTS)}
        full = N // FLUSH
        assert all(c % FLUSH == 0 for c in per_part.values())
        wait_for(lambda: len(objects(s3c, bucket)) >= full, 120, "all full objects")
        time.sleep(1.0)
        got = read_back(s3c, bucket)
        assert before >= 3
        for p in range(PARTS):
            objs = got.get(p, [])
            # objects follow one another: each starts where the previous ended
            offset = 0
            ids = []
            for start, recs in objs:
                assert start == offset, (p, start, offset)
                assert len(recs) == FLUSH
                offset += len(recs)
                ids += [r["id"] for r in recs]
            want = list(range(p, N, PARTS))
            assert ids == want, "partition %d: %d ids, first mismatch at %s" % (
                p, len(ids), next((i for i, (a, b) in enumerate(zip(ids, want)) if a != b), None))
            assert all(r["name"] == "rec-%d" % r["id"] and r["amount"] == r["id"] * 1.5
                       for _, recs in objs for r in recs)
        # committed offsets: the end of what is in S3
        code, offs = w.call("GET", "/connectors/s3-sink-connector/offsets")
        assert code == 200
        committed = {o["partition"]["kafka_partition"]: o["offset"]["kafka_offset"] for o in offs["offsets"]}
        assert committed == {p: (per_part[p] // FLUSH) * FLUSH for p in range(PARTS)}, committed
    finally:
        w.stop()


def test_s3_rotate_schedule_flushes_idle_partition_and_bytearray(broker, workdir, s3):
    """rotate.schedule.interval.ms uploads a partial object of an idle partition;
    ByteArrayFormat writes the raw values with the separator, as `.bin`."""
    bs = broker.bootstrap
    create_topic(bs, "raw", 1)
    s3c = s3.client()
    s3c.create_bucket(Bucket="raw-bucket")
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bs})
    for i in range(25):
        p.produce("raw", value=b"\x00bin-%d" % i)
    p.flush(30)
    conn = write_props(os.path.join(workdir, "raw.properties"), {
        "name": "raw", "connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": "raw",
        "s3.bucket.name": "raw-bucket", "s3.region": "us-east-1", "store.url": s3.url,
        "aws.access.key.id": "testing", "aws.secret.access.key": "testing",
        "flush.size": "10", "rotate.schedule.interval.ms": "1500", "topics.dir": "lake",
        "storage.class": "io.confluent.connect.s3.storage.S3Storage",
        "format.class": "io.confluent.connect.s3.format.bytearray.ByteArrayFormat",
        "format.bytearray.separator": "|",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
    })
    w = Worker(workdir, bs, [conn]).start()
    try:
        wait_for(lambda: len(objects(s3c, "raw-bucket")) >= 3, 30, "three objects")
        keys = sorted(objects(s3c, "raw-bucket"))
        assert keys == ["lake/raw/partition=0/raw+0+0000000000.bin", "lake/raw/partition=0/raw+0+0000000010.bin",
                        "lake/raw/partition=0/raw+0+0000000020.bin"], keys
        last = s3c.get_object(Bucket="raw-bucket", Key=keys[2])["Body"].read()
        assert last == b"".join(b"\x00bin-%d|" % i for i in range(20, 25))
    finally:
        w.stop()


def test_s3_missing_bucket_fails_task_with_trace(broker, workdir, s3):
    bs = broker.bootstrap
    w = Worker(workdir, bs).start()
    try:
        code, _ = w.call("POST", "/connectors", {"name": "nob", "config": {
            "connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": "nob-t",
            "s3.bucket.name": "no-such-bucket", "store.url": s3.url, "flush.size": "10",
            "aws.access.key.id": "testing", "aws.secret.access.key": "testing",
            "storage.class": "io.confluent.connect.s3.storage.S3Storage",
            "format.class": "io.confluent.connect.s3.format.json.JsonFormat"}})
        assert code == 201
        st = w.wait_status("nob", lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED")
        assert "no-such-bucket" in st["tasks"][0]["trace"]
        # the worker and its REST API stay up
        assert w.call("GET", "/connectors")[1] == ["nob"]
    finally:
        w.stop()


def test_s3_outage_retries_then_fails_and_resumes_without_loss(broker, workdir, s3):
    """S3 stopped under load: the upload is retried (not dead-lettered) for
    errors.retry.timeout, then the task FAILS; nothing past what is in S3 is committed;
    with S3 back (moto restarted, empty) a task restart writes exactly the rest."""
    bs = broker.bootstrap
    create_topic(bs, "outage", 1)
    s3c = s3.client()
    s3c.create_bucket(Bucket="ob-bucket")
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bs})

    def send(a, b):
        for i in range(a, b):
            p.produce("outage", value=json.dumps({"id": i}).encode())
        assert p.flush(30) == 0

    send(0, 300)
    w = Worker(workdir, bs).start()
    try:
        code, _ = w.call("POST", "/connectors", {"name": "ob", "config": {
            "connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": "outage",
            "s3.bucket.name": "ob-bucket", "store.url": s3.url, "flush.size": "100",
            "aws.access.key.id": "testing", "aws.secret.access.key": "testing",
            "storage.class": "io.confluent.connect.s3.storage.S3Storage",
            "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
            "value.converter.schemas.enable": "false",
            "errors.retry.timeout": "3000", "errors.retry.delay.max.ms": "500",
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "ob-dlq",
            "errors.deadletterqueue.topic.replication.factor": "1"}})
        assert code == 201
        wait_for(lambda: len(objects(s3c, "ob-bucket")) == 3, 30, "first three objects")
        s3.stop()
        send(300, 500)
        st = w.wait_status("ob", lambda s: s["tasks"][0]["state"] == "FAILED", 60)
        assert "PUT object failed after" in st["tasks"][0]["trace"], st
        offs = w.call("GET", "/connectors/ob/offsets")[1]["offsets"]
        assert offs == [{"partition": {"kafka_topic": "outage", "kafka_partition": 0}, "offset": {"kafka_offset": 300}}]
        s3.start()
        s3c = s3.client()
        s3c.create_bucket(Bucket="ob-bucket")
        assert w.call("POST", "/connectors/ob/restart?includeTasks=true&onlyFailed=true")[0] == 202
        wait_for(lambda: len(objects(s3c, "ob-bucket")) == 2, 30, "the rest")
        got = read_back(s3c, "ob-bucket")[0]
        assert [s for s, _ in got] == [300, 400]
        assert [r["id"] for _, recs in got for r in recs] == list(range(300, 500))
        # nothing was dead-lettered
        assert consume_all(bs, "ob-dlq", 0, 5) == []
    finally:
        w.stop()


def test_s3_avro_format_from_confluent_avro_records(broker, workdir, s3):
    """format.class=...AvroFormat with value.converter=AvroConverter: records written
    by confluent-kafka's AvroSerializer land as Avro container files (`.avro`, read
    back with fastavro) holding exactly those records in offset order; the schema
    gaining a field closes the open object, so each object has one schema."""
    import fastavro
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    bs, reg = broker.bootstrap, broker.registry_url
    topic, bucket = "avro-events", "avro-lake"
    create_topic(bs, topic, 1)
    s3c = s3.client()
    s3c.create_bucket(Bucket=bucket)
    v1 = json.dumps({"type": "record", "name": "Event", "namespace": "shop", "fields": [
        {"name": "id", "type": "long"}, {"name": "name", "type": "string"}]})
    v2 = json.dumps({"type": "record", "name": "Event", "namespace": "shop", "fields": [
        {"name": "id", "type": "long"}, {"name": "name", "type": "string"},
        {"name": "tag", "type": ["null", "string"], "default": None}]})
    src = SchemaRegistryClient({"url": reg})
    ctx = SerializationContext(topic, MessageField.VALUE)
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5, "enable.idempotence": True})
    ser1, ser2 = AvroSerializer(src, v1), AvroSerializer(src, v2)
    want = []
    for i in range(25):  # 10 of v1, then 15 of v2
        rec = {"id": i, "name": "e%d" % i} if i < 10 else {"id": i, "name": "e%d" % i, "tag": "t%d" % i}
        want.append(rec)
        p.produce(topic, value=(ser1 if i < 10 else ser2)(rec, ctx))
    assert p.flush(30) == 0
    w = Worker(workdir, bs).start()
    try:
        code, info = w.call("POST", "/connectors", {"name": "s3-avro", "config": {
            "connector.class": "io.confluent.connect.s3.S3SinkConnector",
            "topics": topic, "s3.region": "us-east-1", "s3.bucket.name": bucket, "store.url": s3.url,
            "aws.access.key.id": "testing", "aws.secret.access.key": "testing",
            "flush.size": "6", "storage.class": "io.confluent.connect.s3.storage.S3Storage",
            "format.class": "io.confluent.connect.s3.format.avro.AvroFormat",
            "partitioner.class": "io.confluent.connect.storage.partitioner.DefaultPartitioner",
            "value.converter": "io.confluent.connect.avro.AvroConverter",
            "value.converter.schema.registry.url": reg}})
        assert code == 201, info
        # v1: 6 + 4 (closed by the new schema); v2: 6 + 6 (+ 3 left open).
        wait_for(lambda: len(objects(s3c, bucket)) >= 4, 60, "four Avro objects")
        time.sleep(1.0)
        keys = sorted(objects(s3c, bucket))
        assert keys == ["topics/%s/partition=0/%s+0+%010d.avro" % (topic, topic, o) for o in (0, 6, 10, 16)], keys
        got = []
        for k in keys:
            reader = fastavro.reader(s3c.get_object(Bucket=bucket, Key=k)["Body"])
            fields = [f["name"] for f in reader.writer_schema["fields"]]
            recs = list(reader)
            assert fields == (["id", "name"] if recs[0]["id"] < 10 else ["id", "name", "tag"]), (k, fields)
            got += recs
        assert got == want[:22]
    finally:
        w.stop()
