"""Topic helpers the Kafka-side suites share: create a topic and change one of
its configs through confluent-kafka's AdminClient, and read `fjord topic
describe --output json`."""
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


def set_topic_config(bootstrap, topic, key, value):
    """IncrementalAlterConfigs SET of one topic config (as kafka-configs --alter)."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
    a = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([res]).values():
        f.result(30)


def describe(bootstrap, topic):
    """`fjord topic describe --output json`: a list of topics, each with
    partitions [{partition, leader, isr, replicas, offline}]; and the process result."""
    out = subprocess.run([fjord_cli(), "topic", "describe", "--bootstrap-server", bootstrap,
                          "--topic", topic, "--output", "json", "--request-timeout-ms", "5000"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("fjord topic describe failed: %s %s" % (out.stdout, out.stderr))
    return json.loads(out.stdout), out
