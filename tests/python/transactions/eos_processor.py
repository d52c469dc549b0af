"""A consume-transform-produce processor with confluent-kafka, exactly once
(KIP-447): reads `in_topic` read_committed in group `group`, writes each
record's value to the same partition of `out_topic`, and commits its outputs
with the consumed offsets (send_offsets_to_transaction) in one transaction
per poll batch. Any error ends the process (exit 1): the test restarts it,
and its init_transactions fences and aborts whatever the last one left open.

    python3 eos_processor.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP TRANSACTIONAL_ID
"""
import sys

from confluent_kafka import Consumer, KafkaException, Producer


def main():
    bootstrap, src, dst, group, tid = sys.argv[1:6]
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group,
        "isolation.level": "read_committed", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
        "topic.metadata.refresh.interval.ms": 2000, "log_level": 0,
    })
    producer = Producer({
        "bootstrap.servers": bootstrap, "transactional.id": tid,
        "transaction.timeout.ms": 20000, "linger.ms": 5, "log_level": 0,
    })
    producer.init_transactions(60)
    consumer.subscribe([src])
    try:
        while True:
            msgs = consumer.consume(500, 0.2)
            msgs = [m for m in msgs if m.error() is None]
            if not msgs:
                continue
            producer.begin_transaction()
            for m in msgs:
                producer.produce(dst, m.value(), key=m.key(), partition=m.partition())
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(), 60)
            producer.commit_transaction(60)
    except KafkaException as e:
        sys.stderr.write("processor: %s\n" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
