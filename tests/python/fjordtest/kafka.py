"""Topic helpers the Kafka-side suites share: create a topic through
confluent-kafka's AdminClient, and read `fjord topic describe --output json`."""
import json
import subprocess

from fjordtest.binaries import fjord_cli


def create_topic(bootstrap, name, partitions=1, rf=1, configs=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the futures
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf,
                                   config=dict(configs or {}))])
    for f in fs.values():
        f.result(30)
    del a


def describe(bootstrap, topic):
    """`fjord topic describe --output json`: a list of topics, each with
    partitions [{partition, leader, isr, replicas, offline}]; and the process result."""
    out = subprocess.run([fjord_cli(), "topic", "describe", "--bootstrap-server", bootstrap,
                          "--topic", topic, "--output", "json", "--request-timeout-ms", "5000"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("fjord topic describe failed: %s %s" % (out.stdout, out.stderr))
    return json.loads(out.stdout), out
