"""Broker-side schema validation: with `confluent.value.schema.validation=true`
on a topic, a Producer sending raw bytes gets INVALID_RECORD (and nothing is
stored); values framed with an id registered under `<topic>-value` are
accepted; an id registered only under another subject is refused."""
import struct

from confluent_kafka import KafkaError, Producer

from fjordtest.kafka import create_topic
from fjordtest.names import unique
from registry.conftest import avro_record, call


def produce(bootstrap, topic, values):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0,
                  "enable.idempotence": False})
    results = []

    def cb(err, msg):
        results.append(err)

    for v in values:
        p.produce(topic, value=v, on_delivery=cb)
    p.flush(30)
    return results


def framed(sid, payload=b"\x02x"):
    return b"\x00" + struct.pack(">i", sid) + payload


def test_validation(reg, request):
    topic = unique("val", request)
    create_topic(reg.bootstrap, topic, configs={"confluent.value.schema.validation": "true"})
    st, body = call("POST", "%s/subjects/%s-value/versions" % (reg.url, topic),
                    {"schema": avro_record("V", [("s", "string")])})
    assert st == 200
    sid = body["id"]
    st, other = call("POST", "%s/subjects/elsewhere-value/versions" % reg.url,
                     {"schema": avro_record("W", [("n", "long")])})
    assert st == 200 and other["id"] != sid
    errs = produce(reg.bootstrap, topic, [b"raw bytes"])
    assert len(errs) == 1 and errs[0] is not None and errs[0].code() == KafkaError.INVALID_RECORD, errs
    errs = produce(reg.bootstrap, topic, [framed(other["id"])])
    assert errs[0] is not None and errs[0].code() == KafkaError.INVALID_RECORD, errs
    errs = produce(reg.bootstrap, topic, [framed(sid) for _ in range(10)])
    assert errs == [None] * 10
    # Without the config the same raw bytes go through.
    plain = unique("plain", request)
    create_topic(reg.bootstrap, plain)
    assert produce(reg.bootstrap, plain, [b"raw bytes"]) == [None]
