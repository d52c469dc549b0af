"""ACLs (issue 16, Build 4) with real clients over SASL_PLAINTEXT: a
two-broker cluster with `authorizer.class.name=kafka.security.authorizer.AclAuthorizer`,
`super.users=User:admin;User:ANONYMOUS` (the PLAINTEXT inter-broker
listener authenticates nobody), SCRAM users alice and bob, PLAIN users from
the listener's JAAS config. The same scenario runs with
`allow.everyone.if.no.acl.found` false and true:

* alice may write `orders` but not read it (confluent-kafka, kafka-python);
* bob may read `orders` with group `billing` only (other group →
  GROUP_AUTHORIZATION_FAILED unless the group has no ACL and the setting is true);
* a prefixed ACL `logs-` grants bob a family of topics (kcat); a DENY on
  `logs-web` overrides it;
* the super user does everything (and only it may change ACLs);
* Metadata shows bob only the topics he may describe;
* ACLs are stored in Kafka's znodes (`/kafka-acl/Topic/orders`, ...);
* removing an ACL on broker 1 takes effect on both brokers (polled on each,
  the measured delay is printed; more than 5 s fails: it must be watched);
* a replica fetch (FetchRequest replica_id=1) from a non-super principal is
  refused: TOPIC_AUTHORIZATION_FAILED on every partition, as Kafka's
  KafkaApis answers a follower without CLUSTER_ACTION.
"""
import base64  # noqa: F401  (kept for debugging znode bodies)
import json
import os
import socket
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

from fjordtest import cleanup
from fjordtest.binaries import broker_binary, fjord_cli, require
from fjordtest.broker import coord_kind
from fjordtest.coord import Server
from fjordtest.kafka_wire import frame, recv_frame
from fjordtest.net import HOST

from .conftest import SecureBroker, make_certs
from .rawkafka import plain_auth, replica_fetch_errors, string

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret" user_bob="bob-secret";')
SCRAM = {"alice": "alice-scram", "bob": "bob-scram"}
TOPIC_AUTH_FAILED = 29
GROUP_AUTH_FAILED = 30
CLUSTER_AUTH_FAILED = 31


def fjord(*args, check=True):
    r = subprocess.run([fjord_cli(), *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("fjord %s: %s %s" % (args, r.stdout, r.stderr))
    return r


class AclBroker(SecureBroker):
    """SecureBroker plus the authorizer keys (applied after its own)."""

    def __init__(self, *a, acl_keys):
        super().__init__(*a, inline=False)
        self.acl_keys = acl_keys

    def config(self):
        cfg = super().config()
        cfg.update(self.acl_keys)
        return cfg


class AclCluster:
    def __init__(self, allow_everyone):
        self.dir = cleanup.temp_dir("fjord-acl-test-")
        self.brokers = []
        self.coord = None
        try:
            certdir = os.path.join(self.dir, "certs")
            os.makedirs(certdir)
            certs = make_certs(certdir)
            self.coord = Server(coord_kind(), {"tickTime": 500, "maxClientCnxns": 0,
                                               "maxSessionTimeout": 60000},
                                workdir=os.path.join(self.dir, "coord")).start()
            for i in range(2):
                b = AclBroker(self.dir, i + 1, self.coord.hosts, certs, acl_keys={
                    "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
                    "super.users": "User:admin;User:ANONYMOUS",
                    "allow.everyone.if.no.acl.found": "true" if allow_everyone else "false",
                    "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
                })
                self.brokers.append(b)
            for b in self.brokers:
                b.start(wait=False)
            for b in self.brokers:
                b.wait_ready()
        except BaseException:
            self.close()
            raise

    def plaintext(self):
        return ",".join(b.addr("PLAINTEXT") for b in self.brokers)

    def sasl(self):
        return ",".join(b.addr("SASL_PLAINTEXT") for b in self.brokers)

    def conf(self, user, mech="SCRAM-SHA-256"):
        pw = "admin-secret" if user == "admin" else SCRAM[user]
        if mech == "PLAIN" and user != "admin":
            pw = user + "-secret"
        return {"bootstrap.servers": self.sasl(), "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": mech if user != "admin" else "PLAIN",
                "sasl.username": user, "sasl.password": pw}

    def close(self):
        for b in self.brokers:
            if b.proc is not None and b.proc.poll() is not None:
                print("%s exited early:\n%s" % (b.name, b.log_tail()))
            b.stop()
        if self.coord:
            self.coord.stop()
        cleanup.remove_dir(self.dir)


@pytest.fixture(scope="module", params=[False, True], ids=["no-acl-denies", "no-acl-allows"])
def acl(request):
    require(broker_binary(), fjord_cli())
    c = AclCluster(request.param)
    c.allow_everyone = request.param
    try:
        for user, pw in SCRAM.items():
            fjord("user", "create", user, "--mechanism", "SCRAM-SHA-256", "--password", pw,
                  "--bootstrap-server", c.brokers[0].addr("PLAINTEXT"))
        admin = AdminClient(c.conf("admin"))
        topics = [NewTopic(t, num_partitions=2, replication_factor=2)
                  for t in ("orders", "logs-app", "logs-web", "secret", "open")]
        for f in admin.create_topics(topics).values():
            f.result(30)
        # ACLs through confluent-kafka's AdminClient, as the super user...
        bindings = [
            AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.WRITE, AclPermissionType.ALLOW),
            AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:bob", "*",
                       AclOperation.READ, AclPermissionType.ALLOW),
            AclBinding(ResourceType.GROUP, "billing", ResourcePatternType.LITERAL, "User:bob", "*",
                       AclOperation.READ, AclPermissionType.ALLOW),
        ]
        for f in admin.create_acls(bindings).values():
            f.result(30)
        # ... and through `fjord acl add` (kafka-acls.sh's options).
        fjord("acl", "add", "--allow-principal", "User:bob", "--operation", "Read",
              "--operation", "Describe", "--topic", "logs-", "--resource-pattern-type", "prefixed",
              "--bootstrap-server", c.brokers[1].addr("PLAINTEXT"))
        fjord("acl", "add", "--deny-principal", "User:bob", "--operation", "Read",
              "--topic", "logs-web", "--bootstrap-server", c.brokers[0].addr("PLAINTEXT"))
        # Both brokers' caches hold all five entries (watch delivery).
        wait_until(lambda: all(metadata_error(c, b, "bob", "logs-app") == 0 for b in c.brokers), 10)
        produce(c, "admin", "logs-app", [b"log-1", b"log-2"])
        produce(c, "admin", "logs-web", [b"web-1"])
        yield c
    finally:
        c.close()


def wait_until(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    raise AssertionError("condition not met within %ss" % timeout)


def produce(c, user, topic, values):
    p = Producer({**c.conf(user), "acks": "all", "message.timeout.ms": 10000})
    errs = []
    for v in values:
        p.produce(topic, value=v, partition=0,
                  on_delivery=lambda e, m: errs.append(e) if e else None)
    p.flush(15)
    return errs


# ------------------------------------------------------------ raw wire (PLAIN)

def sasl_socket(broker, user):
    """A socket on broker's SASL_PLAINTEXT listener authenticated as `user` (PLAIN)."""
    host, port = broker.addr("SASL_PLAINTEXT").split(":")
    return plain_auth(socket.create_connection((host, int(port)), timeout=10),
                      user, user + "-secret")


def metadata_error(c, broker, user, topic):
    """Metadata v1 for one topic, on this broker only: the topic's error code."""
    with sasl_socket(broker, user) as s:
        t = topic.encode()
        s.sendall(frame(3, 1, 3, struct.pack(">ih", 1, len(t)) + t))
        r = recv_frame(s)
    off = 4
    (nb,) = struct.unpack(">i", r[off:off + 4])
    off += 4
    for _ in range(nb):
        off += 4
        _, off = string(r, off)
        off += 4
        _, off = string(r, off)
    off += 4  # controller id
    (nt,) = struct.unpack(">i", r[off:off + 4])
    off += 4
    assert nt == 1
    (code,) = struct.unpack(">h", r[off:off + 2])
    name, _ = string(r, off + 2)
    assert name == topic
    return code


# ------------------------------------------------------------------- scenario

def test_alice_writes_orders_but_cannot_read_it(acl):
    assert produce(acl, "alice", "orders", [b"o-%d" % i for i in range(5)]) == []
    # kafka-python (SCRAM): reading is refused with TOPIC_AUTHORIZATION_FAILED.
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import TopicAuthorizationFailedError
    cons = KafkaConsumer(bootstrap_servers=acl.sasl(), security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice",
                         sasl_plain_password=SCRAM["alice"], auto_offset_reset="earliest",
                         enable_auto_commit=False)
    try:
        cons.assign([TopicPartition("orders", 0)])
        with pytest.raises(TopicAuthorizationFailedError):
            deadline = time.time() + 15
            while time.time() < deadline:
                cons.poll(timeout_ms=500)
    finally:
        cons.close()
    # alice may not write elsewhere (secret has no ACL: only with the setting).
    errs = produce(acl, "alice", "secret", [b"x"])
    if acl.allow_everyone:
        assert errs == []
    else:
        assert [e.code() for e in errs] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def consume(acl, user, topic, group, n, timeout=20):
    cons = Consumer({**acl.conf(user), "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    cons.subscribe([topic])
    got, errors = [], []
    deadline = time.time() + timeout
    try:
        while len(got) < n and not errors and time.time() < deadline:
            m = cons.poll(0.5)
            if m is None:
                continue
            if m.error():
                errors.append(m.error().code())
                continue
            got.append(m.value())
        if got and not errors:
            cons.commit(asynchronous=False)
    finally:
        cons.close()
    return got, errors


def test_bob_reads_orders_in_billing_only(acl):
    assert produce(acl, "admin", "orders", [b"b-%d" % i for i in range(3)]) == []
    got, errors = consume(acl, "bob", "orders", "billing", 3)
    assert errors == [] and len(got) >= 3, (got, errors)
    got, errors = consume(acl, "bob", "orders", "other-" + uuid.uuid4().hex[:6], 1, timeout=15)
    if acl.allow_everyone:
        # That group has no ACL at all: allowed by the setting.
        assert errors == [] and got, (got, errors)
    else:
        assert errors and errors[0] == KafkaError.GROUP_AUTHORIZATION_FAILED, (got, errors)
    # bob may not write orders.
    assert [e.code() for e in produce(acl, "bob", "orders", [b"no"])] == \
        [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def kcat(acl, user, *args):
    cfg = acl.conf(user)
    x = []
    for k, v in cfg.items():
        if k != "bootstrap.servers":
            x += ["-X", "%s=%s" % (k, v)]
    return subprocess.run(["kcat", "-b", cfg["bootstrap.servers"], *args, *x],
                          capture_output=True, text=True, timeout=60)


def test_prefixed_acl_grants_a_family_and_deny_wins(acl):
    r = kcat(acl, "bob", "-C", "-t", "logs-app", "-p", "0", "-o", "beginning", "-e", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["log-1", "log-2"]
    r = kcat(acl, "bob", "-C", "-t", "logs-web", "-p", "0", "-o", "beginning", "-e", "-q")
    assert r.returncode != 0 or r.stdout.strip() == ""
    assert "authorization failed" in r.stderr.lower(), r.stderr


def test_metadata_shows_bob_only_what_he_may_describe(acl):
    md = AdminClient(acl.conf("bob")).list_topics(timeout=20)
    seen = set(md.topics)
    # READ on orders, READ/DESCRIBE on logs-* (a DENY READ does not deny DESCRIBE).
    assert {"orders", "logs-app", "logs-web"} <= seen
    if acl.allow_everyone:
        assert {"secret", "open"} <= seen
    else:
        assert not seen & {"secret", "open"}
    # Asking for a topic explicitly: TOPIC_AUTHORIZATION_FAILED, on each broker.
    for b in acl.brokers:
        assert metadata_error(acl, b, "bob", "secret") == (0 if acl.allow_everyone else TOPIC_AUTH_FAILED)
        assert metadata_error(acl, b, "bob", "orders") == 0


def test_super_user_does_everything_and_only_it_changes_acls(acl):
    admin = AdminClient(acl.conf("admin"))
    t = "adm-" + uuid.uuid4().hex[:6]
    for f in admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=2)]).values():
        f.result(30)
    assert produce(acl, "admin", t, [b"a"]) == []
    got, errors = consume(acl, "admin", t, "adm-group", 1)
    assert got == [b"a"] and errors == []
    for f in admin.delete_topics([t]).values():
        f.result(30)
    # alice (not super, no ALTER on the cluster) may not create ACLs. (With
    # no ACL on the cluster, allow.everyone.if.no.acl.found=true would let
    # her: give the cluster one first.)
    for f in admin.create_acls([AclBinding(ResourceType.BROKER, "kafka-cluster",
                                           ResourcePatternType.LITERAL, "User:admin", "*",
                                           AclOperation.ALL, AclPermissionType.ALLOW)]).values():
        f.result(30)
    alice = AdminClient(acl.conf("alice"))
    fut = alice.create_acls([AclBinding(ResourceType.TOPIC, "secret", ResourcePatternType.LITERAL,
                                        "User:alice", "*", AclOperation.READ,
                                        AclPermissionType.ALLOW)])
    for f in fut.values():
        with pytest.raises(Exception) as e:
            f.result(30)
        assert "CLUSTER_AUTHORIZATION_FAILED" in str(e.value) or "uthoriz" in str(e.value)
    # DescribeAcls through confluent-kafka: a MATCH filter finds literal and prefixed.
    found = admin.describe_acls(AclBindingFilter(
        ResourceType.TOPIC, "logs-web", ResourcePatternType.MATCH, None, None,
        AclOperation.ANY, AclPermissionType.ANY)).result(30)
    kinds = {(b.name, b.resource_pattern_type, b.permission_type) for b in found}
    assert kinds == {("logs-", ResourcePatternType.PREFIXED, AclPermissionType.ALLOW),
                     ("logs-web", ResourcePatternType.LITERAL, AclPermissionType.DENY)}, kinds


def test_acls_are_stored_in_kafkas_znodes(acl):
    zk = acl.coord.hosts
    out = fjord("znode", "get", "/kafka-acl/Topic/orders", "--coord", zk).stdout
    body = json.loads(out.strip().splitlines()[0])
    assert body["version"] == 1
    assert {"principal": "User:alice", "permissionType": "Allow", "operation": "Write",
            "host": "*"} in body["acls"]
    out = fjord("znode", "get", "/kafka-acl-extended/prefixed/Topic/logs-", "--coord", zk).stdout
    ops = {a["operation"] for a in json.loads(out.strip().splitlines()[0])["acls"]}
    assert ops == {"Read", "Describe"}
    def children(path):
        out = fjord("znode", "ls", path, "--coord", zk).stdout.strip()
        return [n.strip() for n in out.strip("[]").split(",") if n.strip()]
    # Kafka's change notifications, with Kafka's bodies.
    notes = children("/kafka-acl-changes")
    assert notes and all(n.startswith("acl_changes_") and len(n) == 22 for n in notes), notes
    bodies = {fjord("znode", "get", "/kafka-acl-changes/" + n, "--coord", zk).stdout.splitlines()[0]
              for n in notes}
    assert "TOPIC:orders" in bodies, bodies
    ext = children("/kafka-acl-extended-changes")
    assert ext and all(n.startswith("acl_changes_") for n in ext), ext
    note = json.loads(fjord("znode", "get", "/kafka-acl-extended-changes/" + ext[0], "--coord",
                            zk).stdout.splitlines()[0])
    assert note == {"version": 1, "resourceType": "TOPIC", "name": "logs-",
                    "patternType": "PREFIXED"}, note
    # `fjord acl list` prints kafka-acls.sh's text.
    out = fjord("acl", "list", "--topic", "orders", "--bootstrap-server",
                acl.brokers[0].addr("PLAINTEXT")).stdout
    assert "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)" in out
    assert "(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)" in out


def test_replica_fetch_from_a_non_broker_principal_is_refused(acl):
    for b in acl.brokers:
        assert replica_fetch_errors(lambda: sasl_socket(b, "alice"), "orders", 1) == \
            [TOPIC_AUTH_FAILED] * 2
    # The super user's follower fetch is served (NONE, or NOT_LEADER_OR_FOLLOWER
    # where the other broker leads): never an authorization error.
    for b in acl.brokers:
        codes = replica_fetch_errors(lambda: sasl_socket(b, "admin"), "orders",
                                     1 if b.id == 2 else 2)
        assert TOPIC_AUTH_FAILED not in codes and CLUSTER_AUTH_FAILED not in codes, codes


def test_transactional_and_idempotent_producers(acl):
    # Idempotent: alice has WRITE on a topic (KIP-679), no IDEMPOTENT_WRITE needed.
    p = Producer({**acl.conf("alice"), "enable.idempotence": True, "message.timeout.ms": 10000})
    errs = []
    p.produce("orders", b"idem", partition=1, on_delivery=lambda e, m: errs.append(e))
    p.flush(15)
    assert errs == [None], errs
    tid = "tx-alice-" + uuid.uuid4().hex[:6]
    if not acl.allow_everyone:
        p = Producer({**acl.conf("alice"), "transactional.id": tid})
        with pytest.raises(Exception) as e:
            p.init_transactions(15)
        assert "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in str(e.value) or \
            "uthoriz" in str(e.value), e.value
    admin = AdminClient(acl.conf("admin"))
    for f in admin.create_acls([AclBinding(ResourceType.TRANSACTIONAL_ID, tid,
                                           ResourcePatternType.LITERAL, "User:alice", "*",
                                           AclOperation.WRITE, AclPermissionType.ALLOW)]).values():
        f.result(30)
    p = Producer({**acl.conf("alice"), "transactional.id": tid})
    p.init_transactions(20)
    p.begin_transaction()
    p.produce("orders", b"in-txn", partition=0)
    p.commit_transaction(20)


def test_removing_an_acl_reaches_every_broker(acl):
    # Runs last in the module: it takes bob's READ on orders away.
    for b in acl.brokers:
        assert metadata_error(acl, b, "bob", "orders") == 0
    r = fjord("acl", "remove", "--allow-principal", "User:bob", "--operation", "Read",
              "--topic", "orders", "--bootstrap-server", acl.brokers[0].addr("PLAINTEXT"))
    assert "User:bob" in r.stdout
    start = time.time()
    took = {}
    pending = {b.id: b for b in acl.brokers}
    while pending and time.time() - start < 5:
        for bid, b in list(pending.items()):
            if metadata_error(acl, b, "bob", "orders") == TOPIC_AUTH_FAILED:
                took[bid] = time.time() - start
                del pending[bid]
        time.sleep(0.02)
    print("ACL removal visible after (s):", {k: round(v, 3) for k, v in took.items()})
    assert not pending, "brokers %s still allow bob after 5 s" % list(pending)
    # And bob's group consumer is now refused the topic.
    got, errors = consume(acl, "bob", "orders", "billing", 1, timeout=15)
    assert not got and errors and errors[0] == KafkaError.TOPIC_AUTHORIZATION_FAILED, (got, errors)
