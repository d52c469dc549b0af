"""Inter-broker security (issue 16): three brokers whose inter-broker
listener is SASL_SSL with SCRAM-SHA-512 (`security.inter.broker.protocol`,
`sasl.mechanism.inter.broker.protocol`, the listener's
`scram-sha-512.sasl.jaas.config`). The broker user is created first, straight
in the coordinator (`fjord user create --coord`, Kafka's `kafka-configs
--zookeeper` answer to the chicken-and-egg of SCRAM users living in the
coordinator). Replica fetchers, liveness probes and controller traffic then
authenticate as that user over TLS: a topic with replication factor 3
takes acks=all writes (which need every follower to fetch over SASL_SSL),
a kill -9 of a partition leader fails over with no acknowledged record
lost, and confluent-kafka, kafka-python, kcat and fjord's own CLI read
everything back over SASL_SSL. A second case runs PLAIN for inter-broker
traffic, with PEM stores and with PKCS12 keystores and truststores.

Each broker also has a PLAINTEXT listener, used only by the harness's
readiness check."""
import os
import socket
import ssl
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fjordtest import cleanup
from fjordtest.binaries import broker_binary, fjord_cli, require
from fjordtest.broker import Broker, coord_kind
from fjordtest.coord import Server
from fjordtest.net import HOST, free_ports
from security.conftest import make_certs, openssl
from security.rawkafka import plain_auth, replica_fetch_errors

SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule required "
PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule required "


def fjord(*args, check=True):
    r = subprocess.run([fjord_cli(), *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("fjord %s: %s %s" % (args, r.stdout, r.stderr))
    return r


class InterBroker(Broker):
    def __init__(self, workdir, broker_id, zk, extra):
        super().__init__(workdir, broker_id, zk)
        self.sasl_port = free_ports(1)[0]
        self.extra = extra

    def config(self):
        cfg = super().config()
        eps = "PLAINTEXT://%s:%d,SASL_SSL://%s:%d" % (HOST, self.port, HOST, self.sasl_port)
        cfg.update({"listeners": eps, "advertised.listeners": eps,
                    "security.inter.broker.protocol": "SASL_SSL",
                    "default.replication.factor": 3, "min.insync.replicas": 2,
                    "offsets.topic.replication.factor": 3,
                    "broker.failure.detection.ms": 3000})
        cfg.update(self.extra)
        return cfg


class InterBrokerCluster:
    def __init__(self, extra_fn, users=()):
        self.dir = cleanup.temp_dir("fjord-interbroker-test-")
        self.brokers, self.coord = [], None
        try:
            d = os.path.join(self.dir, "certs")
            os.makedirs(d)
            self.certs = make_certs(d)
            self.coord = Server(coord_kind(), {"tickTime": 500, "maxClientCnxns": 0,
                                               "maxSessionTimeout": 60000},
                                workdir=os.path.join(self.dir, "coord")).start()
            for user, pw in users:
                fjord("user", "create", user, "--mechanism", "SCRAM-SHA-512", "--password", pw,
                      "--coord", self.coord.hosts)
            extra = extra_fn(self.certs)
            self.brokers = [InterBroker(self.dir, i + 1, self.coord.hosts, extra) for i in range(3)]
            for b in self.brokers:
                b.start(wait=False)
            for b in self.brokers:
                b.wait_ready()
        except BaseException:
            self.close()
            raise

    def sasl_bootstrap(self):
        return ",".join("%s:%d" % (HOST, b.sasl_port) for b in self.brokers if b.alive())

    def close(self):
        for b in self.brokers:
            b.stop()
        if self.coord:
            self.coord.stop()
        cleanup.remove_dir(self.dir)


def scram_extra(certs):
    return {
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            SCRAM + 'username="broker" password="broker-secret";',
        "ssl.keystore.location": certs["keystore.pem"],
        "ssl.truststore.location": certs["ca.pem"],
    }


@pytest.fixture(scope="module")
def cluster():
    require(broker_binary(), fjord_cli())
    c = InterBrokerCluster(scram_extra, users=[("broker", "broker-secret"),
                                               ("alice", "alice-secret")])
    try:
        yield c
    finally:
        c.close()


def client_conf(c, user="alice", pw="alice-secret", mech="SCRAM-SHA-512"):
    return {"bootstrap.servers": c.sasl_bootstrap(), "security.protocol": "SASL_SSL",
            "ssl.ca.location": c.certs["ca.pem"], "sasl.mechanism": mech,
            "sasl.username": user, "sasl.password": pw}


def command_config(c, path, user="alice", pw="alice-secret", mech="SCRAM-SHA-512"):
    module = SCRAM if mech.startswith("SCRAM") else PLAIN
    with open(path, "w") as f:
        f.write("security.protocol=SASL_SSL\nsasl.mechanism=%s\n" % mech)
        f.write('sasl.jaas.config=%susername="%s" password="%s";\n' % (module, user, pw))
        f.write("ssl.truststore.location=%s\n" % c.certs["ca.pem"])
    return path


def produce_all(cfg, topic, values):
    p = Producer({**cfg, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 30000})
    acked = []

    def cb(err, msg):
        if err is None:
            acked.append(msg.value())
    for v in values:
        p.produce(topic, value=v, callback=cb)
        p.poll(0)
    p.flush(40)
    return acked


def consume_all(cfg, topic, n, timeout=40):
    cons = Consumer({**cfg, "group.id": "g-" + uuid.uuid4().hex[:8],
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    cons.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        m = cons.poll(0.5)
        if m is None or m.error():
            continue
        got.append(m.value())
    cons.close()
    return got


def leader_of(cfg, topic):
    md = AdminClient(cfg).list_topics(topic, timeout=15)
    return md.topics[topic].partitions[0].leader, md.topics[topic].partitions[0].isrs


def test_replicates_fails_over_and_reads_back_everywhere(cluster, tmp_path):
    cfg = client_conf(cluster)
    topic = "ib-" + uuid.uuid4().hex[:8]
    # fjord's own client over SASL_SSL + SCRAM-SHA-512 creates the topic.
    cc = command_config(cluster, str(tmp_path / "client.properties"))
    fjord("topic", "create", "--topic", topic, "--partitions", "1", "--replication-factor", "3",
          "--bootstrap-server", cluster.sasl_bootstrap(), "--command-config", cc)
    assert topic in fjord("topic", "list", "--bootstrap-server", cluster.sasl_bootstrap(),
                          "--command-config", cc).stdout.split()
    # The ISR reaches all three: every follower fetches over SASL_SSL.
    deadline = time.time() + 30
    while time.time() < deadline:
        leader, isr = leader_of(cfg, topic)
        if len(isr) == 3:
            break
        time.sleep(0.5)
    assert len(isr) == 3, isr
    first = [b"a%03d" % i for i in range(100)]
    assert produce_all(cfg, topic, first) == first
    # kill -9 the leader: a follower takes over, nothing acknowledged is lost.
    victim = [b for b in cluster.brokers if b.id == leader][0]
    victim.kill9()
    deadline = time.time() + 40
    while time.time() < deadline:
        try:
            new_leader, _ = leader_of(cfg, topic)
            if new_leader not in (leader, -1):
                break
        except Exception:  # noqa: BLE001 - metadata while electing
            pass
        time.sleep(0.5)
    assert new_leader not in (leader, -1)
    second = [b"b%03d" % i for i in range(100)]
    assert produce_all(cfg, topic, second) == second
    want = first + second
    assert consume_all(cfg, topic, len(want)) == want
    # kafka-python over SASL_SSL reads the same records in the same order.
    from kafka import KafkaConsumer
    kc = KafkaConsumer(topic, bootstrap_servers=cluster.sasl_bootstrap().split(","),
                       security_protocol="SASL_SSL", ssl_cafile=cluster.certs["ca.pem"],
                       sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice",
                       sasl_plain_password="alice-secret", auto_offset_reset="earliest",
                       consumer_timeout_ms=15000)
    got = []
    for m in kc:
        got.append(m.value)
        if len(got) == len(want):
            break
    kc.close()
    assert got == want
    # kcat (librdkafka 2.0.2) too.
    out = subprocess.run(["kcat", "-b", cluster.sasl_bootstrap(), "-C", "-t", topic, "-p", "0",
                          "-o", "beginning", "-e", "-q",
                          "-X", "security.protocol=SASL_SSL",
                          "-X", "ssl.ca.location=" + cluster.certs["ca.pem"],
                          "-X", "sasl.mechanism=SCRAM-SHA-512",
                          "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"],
                         capture_output=True, timeout=60)
    assert out.stdout.split(b"\n")[:-1] == want, out.stderr
    # fjord consume over SASL_SSL.
    r = fjord("consume", topic, "--from-beginning", "--max-messages", str(len(want)),
              "--bootstrap-server", cluster.sasl_bootstrap(), "--command-config", cc)
    assert r.stdout.split("\n")[:len(want)] == [v.decode() for v in want]
    # The restarted broker catches up over SASL_SSL and rejoins the ISR.
    victim.start()
    deadline = time.time() + 40
    while time.time() < deadline:
        _, isr = leader_of(cfg, topic)
        if len(isr) == 3:
            break
        time.sleep(0.5)
    assert len(isr) == 3, isr


def test_fjord_cli_wrong_password_is_an_authentication_error(cluster, tmp_path):
    cc = command_config(cluster, str(tmp_path / "bad.properties"), pw="wrong")
    r = fjord("topic", "list", "--bootstrap-server", cluster.sasl_bootstrap(),
              "--command-config", cc, check=False)
    assert r.returncode != 0
    assert "SASL_AUTHENTICATION_FAILED" in r.stderr, r.stderr


def plain_extra(certs, p12):
    extra = {
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config":
            PLAIN + 'username="broker" password="b-pw" user_broker="b-pw" user_carol="c-pw";',
        "ssl.keystore.location": certs["keystore.pem"],
        "ssl.truststore.location": certs["ca.pem"],
    }
    if p12:
        d = os.path.dirname(certs["ca.pem"])
        openssl("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key",
                "-certfile", "ca.pem", "-out", "server.p12", "-passout", "pass:ks-pass",
                "-name", "broker", cwd=d)
        # A truststore of the CA alone (keytool's trustedCertEntry, made by openssl).
        openssl("pkcs12", "-export", "-nokeys", "-in", "ca.pem", "-out", "trust.p12",
                "-passout", "pass:ts-pass", cwd=d)
        extra.update({
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": os.path.join(d, "server.p12"),
            "ssl.keystore.password": "ks-pass",
            "ssl.key.password": "ks-pass",
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": os.path.join(d, "trust.p12"),
            "ssl.truststore.password": "ts-pass",
        })
    return extra


@pytest.mark.parametrize("p12", [False, True], ids=["pem", "pkcs12"])
def test_plain_inter_broker(tmp_path, p12):
    """PLAIN between brokers (no user to create first), with PEM stores or
    PKCS12 ones (`ssl.keystore.type=PKCS12`, `ssl.truststore.type=PKCS12`)."""
    require(broker_binary(), fjord_cli())
    c = InterBrokerCluster(lambda certs: plain_extra(certs, p12))
    try:
        cfg = client_conf(c, user="carol", pw="c-pw", mech="PLAIN")
        topic = "plain-" + uuid.uuid4().hex[:8]
        a = AdminClient(cfg)
        for f in a.create_topics([NewTopic(topic, num_partitions=1,
                                           replication_factor=3)]).values():
            f.result(30)
        vals = [b"p%02d" % i for i in range(30)]
        assert produce_all(cfg, topic, vals) == vals
        assert consume_all(cfg, topic, len(vals)) == vals
        cc = tmp_path / "client.properties"
        trust = ("ssl.truststore.type=PKCS12\nssl.truststore.location=%s\n"
                 "ssl.truststore.password=ts-pass\n"
                 % os.path.join(os.path.dirname(c.certs["ca.pem"]), "trust.p12")) if p12 else \
            "ssl.ca.location=%s\n" % c.certs["ca.pem"]
        cc.write_text("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
                      "sasl.username=carol\nsasl.password=c-pw\n" + trust)
        r = fjord("consume", topic, "--from-beginning", "--max-messages", str(len(vals)),
                  "--bootstrap-server", c.sasl_bootstrap(), "--command-config", str(cc))
        assert r.stdout.split("\n")[:len(vals)] == [v.decode() for v in vals]
    finally:
        c.close()


def test_authorizer_admits_the_broker_principal_and_refuses_other_followers():
    """The same SASL_SSL inter-broker cluster with AclAuthorizer on and only
    `User:broker` and `User:admin` as super users (no ANONYMOUS): replica
    fetchers authenticate as the broker user, so a replication factor 3 topic
    reaches a full ISR and takes alice's acks=all writes (she holds ACLs); a
    follower Fetch (replica_id set) from alice over SASL_SSL is refused."""
    require(broker_binary(), fjord_cli())

    def extra(certs):
        e = scram_extra(certs)
        e.update({"sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
                  "listener.name.sasl_ssl.plain.sasl.jaas.config":
                      PLAIN + 'user_alice="alice-secret";',
                  "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
                  "super.users": "User:broker;User:admin"})
        return e
    c = InterBrokerCluster(extra, users=[("broker", "broker-secret"), ("admin", "admin-secret"),
                                         ("alice", "alice-secret")])
    try:
        from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                           ResourcePatternType, ResourceType)
        admin_cfg = client_conf(c, user="admin", pw="admin-secret")
        alice_cfg = client_conf(c)
        topic = "authz-" + uuid.uuid4().hex[:8]
        admin = AdminClient(admin_cfg)
        admin.create_topics([NewTopic(topic, 2, 3)])[topic].result(30)
        acls = [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice",
                           "*", op, AclPermissionType.ALLOW)
                for op in (AclOperation.WRITE, AclOperation.READ)]
        acls.append(AclBinding(ResourceType.GROUP, "g-", ResourcePatternType.PREFIXED,
                               "User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW))
        for f in admin.create_acls(acls).values():
            f.result(30)
        deadline = time.time() + 30
        isr = []
        while time.time() < deadline:
            _, isr = leader_of(admin_cfg, topic)
            if len(isr) == 3:
                break
            time.sleep(0.5)
        assert len(isr) == 3, isr
        values = [b"z%03d" % i for i in range(50)]
        assert sorted(produce_all(alice_cfg, topic, values)) == values
        assert sorted(consume_all(alice_cfg, topic, 50)) == values
        ctx = ssl.create_default_context(cafile=c.certs["ca.pem"])
        ctx.check_hostname = False
        for b in c.brokers:
            def connect(b=b):
                raw = socket.create_connection((HOST, b.sasl_port), timeout=10)
                return plain_auth(ctx.wrap_socket(raw), "alice", "alice-secret")
            other = 1 if b.id != 1 else 2
            assert replica_fetch_errors(connect, topic, other) == [29, 29]  # TOPIC_AUTHORIZATION_FAILED
    finally:
        c.close()
