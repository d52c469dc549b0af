"""The S3 sink's partitioners under Confluent's class names and keys, against
moto's S3 server, read back with boto3:

  * TimeBasedPartitioner (hourly directories from the Kafka timestamp, Joda's
    `path.format`): every record in the directory of its own hour, every record
    exactly once across a kill -9 of the worker, objects named by their first
    offset;
  * FieldPartitioner: one directory per field value, each object holding only
    its value's records, the partition's chunk uploaded together;
  * DailyPartitioner with `timestamp.extractor=RecordField` (a nested ISO-8601
    field) in a fixed-offset time zone: days begin at local midnight;
  * bad keys refused with a 400 naming the key."""
import datetime
import json
import os
import re
import time

from .conftest import Worker, create_topic, wait_for, write_props
from .test_s3_sink import objects

BASE = {
    "connector.class": "io.confluent.connect.s3.S3SinkConnector",
    "s3.region": "us-east-1",
    "aws.access.key.id": "testing",
    "aws.secret.access.key": "testing",
    "storage.class": "io.confluent.connect.s3.storage.S3Storage",
    "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "false",
}
HOUR_MS = 3_600_000


def lake(bs, s3, topic, bucket, partitions):
    """The topic, and an empty bucket for it; the S3 client."""
    create_topic(bs, topic, partitions)
    s3c = s3.client()
    s3c.create_bucket(Bucket=bucket)
    return s3c


def lines(s3c, bucket, key):
    body = s3c.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return [json.loads(x) for x in body.split("\n") if x]


def test_time_based_partitioner_hourly_exactly_once_across_kill9(broker, workdir, s3):
    from confluent_kafka import Producer
    bs, topic, bucket = broker.bootstrap, "clicks", "clicks-lake"
    n, parts, flush = 3000, 2, 150
    # Recent times: the topic's retention (7 days) would delete older records.
    t0 = (int(time.time() * 1000) // HOUR_MS - 4) * HOUR_MS
    s3c = lake(bs, s3, topic, bucket, parts)

    def produce(a, b):
        p = Producer({"bootstrap.servers": bs, "linger.ms": 10, "enable.idempotence": True})
        for i in range(a, b):
            ts = t0 + i * 3600  # 3,000 records over 3 hours
            p.produce(topic, value=json.dumps({"id": i, "ts": ts}).encode(), partition=i % parts,
                      timestamp=ts)
        assert p.flush(30) == 0

    conn = write_props(os.path.join(workdir, "hourly.properties"), dict(BASE, **{
        "name": "hourly", "topics": topic, "s3.bucket.name": bucket, "store.url": s3.url,
        "flush.size": str(flush),
        "partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
        "partition.duration.ms": str(HOUR_MS),
        "path.format": "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH",
        "locale": "en-US", "timezone": "UTC", "timestamp.extractor": "Record"}))
    produce(0, n // 2)
    w = Worker(workdir, bs, [conn], extra={"consumer.session.timeout.ms": "6000",
                                          "consumer.heartbeat.interval.ms": "1000"}).start()
    name = re.compile(r"^topics/clicks/(year=\d{4}/month=\d\d/day=\d\d/hour=\d\d)/clicks\+(\d)\+(\d{10})\.json$")
    try:
        wait_for(lambda: len(objects(s3c, bucket)) >= 4, 60, "first objects")
        w.kill9()
        produce(n // 2, n)
        w.restart()
        # 10 chunks a partition; two of them cross an hour, and are two objects each.
        want_objects = parts * (n // parts // flush) + 2 * parts
        try:
            wait_for(lambda: len(objects(s3c, bucket)) >= want_objects, 120, "all objects")
        except AssertionError:
            raise AssertionError("%s\n%s" % (sorted(objects(s3c, bucket)), w.log_tail()))
        time.sleep(1.0)
        per_part = {}
        for k in objects(s3c, bucket):
            m = name.match(k)
            assert m, "object name not Confluent's: " + k
            hour, p, start = m[1], int(m[2]), int(m[3])
            recs = lines(s3c, bucket, k)
            # every record in its own hour; the object named by its first offset
            assert all(datetime.datetime.fromtimestamp(r["ts"] / 1000, datetime.timezone.utc)
                       .strftime("year=%Y/month=%m/day=%d/hour=%H") == hour for r in recs), k
            assert recs[0]["id"] == start * parts + p, (k, recs[0])
            per_part.setdefault(p, []).extend(recs)
        for p in range(parts):
            ids = sorted(r["id"] for r in per_part[p])
            assert ids == list(range(p, n, parts)), "partition %d: %d records" % (p, len(ids))
        assert len(objects(s3c, bucket)) == want_objects
    finally:
        w.stop()


def test_field_partitioner_writes_a_directory_per_value(broker, workdir, s3):
    from confluent_kafka import Producer
    bs, topic, bucket = broker.bootstrap, "orders", "orders-lake"
    s3c = lake(bs, s3, topic, bucket, 1)
    regions = ["eu", "us", "ap"]
    p = Producer({"bootstrap.servers": bs})
    for i in range(90):
        p.produce(topic, value=json.dumps({"id": i, "region": regions[i % 3]}).encode())
    assert p.flush(30) == 0
    w = Worker(workdir, bs).start()
    try:
        code, info = w.call("POST", "/connectors", {"name": "by-region", "config": dict(BASE, **{
            "topics": topic, "s3.bucket.name": bucket, "store.url": s3.url, "flush.size": "30",
            "partitioner.class": "io.confluent.connect.storage.partitioner.FieldPartitioner",
            "partition.field.name": "region"})})
        assert code == 201, info
        wait_for(lambda: len(objects(s3c, bucket)) >= 9, 60, "nine objects")
        time.sleep(1.0)
        keys = sorted(objects(s3c, bucket))
        want = sorted("topics/orders/region=%s/orders+0+%010d.json" % (regions[o % 3], o)
                      for c in (0, 30, 60) for o in (c, c + 1, c + 2))
        assert keys == want, keys
        for k in keys:
            region = k.split("/")[2].split("=")[1]
            start = int(k[-15:-5])
            recs = lines(s3c, bucket, k)
            assert [r["id"] for r in recs] == [i for i in range(start, start - start % 30 + 30)
                                               if regions[i % 3] == region], k
        # committed once the chunk's three objects are all in S3
        wait_for(lambda: [o["offset"]["kafka_offset"] for o in
                          w.call("GET", "/connectors/by-region/offsets")[1]["offsets"]] == [90],
                 30, "offset 90 committed")
    finally:
        w.stop()


def test_daily_partitioner_from_a_nested_iso_field_in_a_fixed_zone(broker, workdir, s3):
    from confluent_kafka import Producer
    bs, topic, bucket = broker.bootstrap, "visits", "visits-lake"
    s3c = lake(bs, s3, topic, bucket, 1)
    # 21:30 UTC on 28 Feb is 23:30 in UTC+2; 22:30 UTC is already 29 Feb there.
    ats = ["2024-02-28T21:30:00Z", "2024-02-28T21:59:59.999Z", "2024-02-28T22:30:00Z",
           "2024-02-29T12:00:00+02:00"]
    p = Producer({"bootstrap.servers": bs})
    for i, at in enumerate(ats):
        p.produce(topic, value=json.dumps({"id": i, "meta": {"at": at}}).encode())
    assert p.flush(30) == 0
    w = Worker(workdir, bs).start()
    try:
        code, info = w.call("POST", "/connectors", {"name": "daily", "config": dict(BASE, **{
            "topics": topic, "s3.bucket.name": bucket, "store.url": s3.url, "flush.size": "4",
            "partitioner.class": "io.confluent.connect.storage.partitioner.DailyPartitioner",
            "locale": "en-US", "timezone": "UTC+02:00",
            "timestamp.extractor": "RecordField", "timestamp.field": "meta.at"})})
        assert code == 201, info
        wait_for(lambda: len(objects(s3c, bucket)) >= 2, 60, "two objects")
        time.sleep(0.5)
        keys = sorted(objects(s3c, bucket))
        assert keys == ["topics/visits/year=2024/month=02/day=28/visits+0+0000000000.json",
                        "topics/visits/year=2024/month=02/day=29/visits+0+0000000002.json"], keys
        assert [r["id"] for r in lines(s3c, bucket, keys[1])] == [2, 3]
    finally:
        w.stop()


def test_bad_partitioner_keys_are_named(broker, workdir, s3):
    w = Worker(workdir, broker.bootstrap).start()
    try:
        base = dict(BASE, **{"topics": "t", "s3.bucket.name": "b", "store.url": s3.url, "flush.size": "3",
                             "partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
                             "partition.duration.ms": "3600000", "path.format": "'hour'=HH",
                             "locale": "en-US", "timezone": "UTC"})
        for key, bad in (("timezone", {"timezone": ""}), ("timezone", {"timezone": "Europe/Paris"}),
                         ("path.format", {"path.format": "'week'=ww"}),
                         ("partition.duration.ms", {"partition.duration.ms": "0"}),
                         ("timestamp.extractor", {"timestamp.extractor": "Header"}),
                         ("partition.field.name", {"partitioner.class":
                                                   "io.confluent.connect.storage.partitioner.FieldPartitioner"})):
            code, err = w.call("POST", "/connectors", {"name": "bad", "config": dict(base, **bad)})
            assert code == 400 and key in err["message"], (key, code, err)
        code, _ = w.call("GET", "/connectors/bad")
        assert code == 404
    finally:
        w.stop()
