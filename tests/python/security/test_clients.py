"""Real clients on every listener type (issue 16): confluent-kafka
(librdkafka), kafka-python and kcat produce and consume over SSL,
SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SASL_SSL and mutual
TLS against a two-broker cluster; wrong passwords and untrusted certificates
fail with the clients' authentication errors; SCRAM users made with
`fjord user create` or AlterUserScramCredentials log in on every broker."""
import json
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramMechanism,
                                   UserScramCredentialUpsertion, ScramCredentialInfo)

from fjordtest.binaries import fjord_cli
from fjordtest.waits import wait_until

USERS = {"SCRAM-SHA-256": ("sam", "sam-secret"), "SCRAM-SHA-512": ("sally", "sally-secret")}


def fjord(*args, check=True):
    r = subprocess.run([fjord_cli(), *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("fjord %s: %s %s" % (args, r.stdout, r.stderr))
    return r


@pytest.fixture(scope="module")
def cluster(secure):
    # SCRAM users through the CLI (over PLAINTEXT, to broker 1 only).
    for mech, (user, pw) in USERS.items():
        fjord("user", "create", user, "--mechanism", mech, "--password", pw,
              "--bootstrap-server", secure.brokers[0].addr("PLAINTEXT"))
    return secure


def conf(c, listener, mech=None, user=None, pw=None, ca="ca.pem", cert=None):
    cfg = {"bootstrap.servers": c.bootstrap(listener), "security.protocol":
           {"MTLS": "SSL"}.get(listener, listener)}
    if listener in ("SSL", "SASL_SSL", "MTLS"):
        cfg["ssl.ca.location"] = c.certs[ca]
    if cert:
        cfg["ssl.certificate.location"] = c.certs[cert + ".pem"]
        cfg["ssl.key.location"] = c.certs[cert + ".key"]
    if mech:
        cfg.update({"sasl.mechanism": mech, "sasl.username": user, "sasl.password": pw})
    return cfg


def topic_on_both(c, name):
    a = AdminClient({"bootstrap.servers": c.bootstrap("PLAINTEXT")})
    for f in a.create_topics([NewTopic(name, num_partitions=2, replication_factor=2)]).values():
        f.result(30)


def round_trip(cfg, topic, n=20):
    """Produce n records (both partitions, so both brokers), consume them back."""
    p = Producer({**cfg, "acks": "all", "message.timeout.ms": 15000})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, key=b"k%d" % i, partition=i % 2)
    assert p.flush(20) == 0
    cons = Consumer({**cfg, "group.id": "g-" + uuid.uuid4().hex[:8], "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    cons.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = cons.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append(m.value())
    cons.close()
    assert sorted(got) == sorted(b"v%d" % i for i in range(n))


CASES = [
    ("SSL", None),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SASL_SSL", "PLAIN"),
    ("SASL_SSL", "SCRAM-SHA-512"),
]


def creds(mech):
    if mech is None:
        return None, None
    if mech == "PLAIN":
        return "alice", "alice-secret"
    return USERS[mech]


@pytest.mark.parametrize("listener,mech", CASES)
def test_confluent_round_trip(cluster, listener, mech):
    t = "sec-ck-%s-%s" % (listener.lower(), (mech or "none").lower())
    topic_on_both(cluster, t)
    user, pw = creds(mech)
    cfg = conf(cluster, listener, mech, user, pw)
    round_trip(cfg, t)
    # Metadata answers with the listener the client came in on.
    md = AdminClient(cfg).list_topics(timeout=10)
    want = {b.id: b.ports[listener] for b in cluster.brokers}
    assert {i: m.port for i, m in md.brokers.items()} == want


def test_mutual_tls(cluster):
    topic_on_both(cluster, "sec-mtls")
    round_trip(conf(cluster, "MTLS", cert="alice"), "sec-mtls")


def auth_error(cfg):
    """The error librdkafka reports for a connection that cannot authenticate."""
    errors = []
    p = Producer({**cfg, "error_cb": errors.append, "message.timeout.ms": 3000,
                  "reconnect.backoff.max.ms": 1000})
    p.produce("sec-never", b"x")
    deadline = time.time() + 10
    while not errors and time.time() < deadline:
        p.poll(0.2)
    p.flush(0)
    assert errors, "no error reported"
    return errors[0]


def test_wrong_password_is_authentication_error(cluster):
    for listener, mech in [("SASL_PLAINTEXT", "PLAIN"), ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
                           ("SASL_SSL", "SCRAM-SHA-512")]:
        user, _ = creds(mech)
        e = auth_error(conf(cluster, listener, mech, user, "wrong"))
        assert e.code() == KafkaError._AUTHENTICATION, (listener, mech, e)
        assert "Authentication failed" in e.str(), e.str()


def test_unknown_user_and_disabled_mechanism(cluster):
    e = auth_error(conf(cluster, "SASL_PLAINTEXT", "SCRAM-SHA-256", "nobody", "x"))
    assert e.code() == KafkaError._AUTHENTICATION, e
    # A SCRAM-SHA-256 user has no SCRAM-SHA-512 credential.
    e = auth_error(conf(cluster, "SASL_PLAINTEXT", "SCRAM-SHA-512", "sam", "sam-secret"))
    assert e.code() == KafkaError._AUTHENTICATION, e


def test_untrusted_certificates(cluster):
    # The client does not trust the broker (its CA is another).
    e = auth_error(conf(cluster, "SSL", ca="rogue-ca.pem"))
    assert e.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), e
    # The broker does not trust the client's certificate.
    e = auth_error(conf(cluster, "MTLS", cert="mallory"))
    assert e.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), e
    # No client certificate on a listener that requires one.
    e = auth_error(conf(cluster, "MTLS"))
    assert e.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), e
    # The bootstrap list names both brokers: the client tried one of them, which logs
    # the failure (just after the client gave up on the alert).
    wait_until(lambda: any("TLS handshake failed" in b.log_tail(200000) for b in cluster.brokers),
               10, "a broker's log line for the failed handshake")


def test_fjord_user_list_and_delete(cluster):
    out = fjord("user", "list", "--output", "json",
                "--bootstrap-server", cluster.brokers[1].addr("PLAINTEXT")).stdout
    users = {u["user"]: u["credentials"] for u in json.loads(out)}
    assert users["sam"] == [{"mechanism": "SCRAM-SHA-256", "iterations": 4096}]
    assert users["sally"] == [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]
    fjord("user", "create", "temp", "--mechanism", "SCRAM-SHA-256", "--password", "tmp-pw",
          "--bootstrap-server", cluster.brokers[0].addr("PLAINTEXT"))
    cfg = conf(cluster, "SASL_PLAINTEXT", "SCRAM-SHA-256", "temp", "tmp-pw")
    AdminClient(cfg).list_topics(timeout=10)
    fjord("user", "delete", "temp", "--mechanism", "SCRAM-SHA-256",
          "--bootstrap-server", cluster.brokers[1].addr("PLAINTEXT"))
    e = auth_error(cfg)
    assert e.code() == KafkaError._AUTHENTICATION, e
    r = fjord("user", "delete", "temp", "--bootstrap-server",
              cluster.brokers[1].addr("PLAINTEXT"), check=False)
    assert r.returncode != 0 and "error 91" in r.stderr  # RESOURCE_NOT_FOUND
    # The znode is Kafka's.
    zk = cluster.coord.kazoo()
    try:
        data, _ = zk.get("/config/users/sam")
        body = json.loads(data)
        assert body["version"] == 1
        assert body["config"]["SCRAM-SHA-256"].startswith("salt=")
        assert ",iterations=4096" in body["config"]["SCRAM-SHA-256"]
        changes = zk.get_children("/config/changes")
        assert any(c.startswith("config_change_") for c in changes)
    finally:
        zk.stop()
        zk.close()


def test_alter_user_scram_credentials_from_confluent(cluster):
    a = AdminClient({"bootstrap.servers": cluster.bootstrap("PLAINTEXT")})
    up = UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                      b"carol-secret")
    for f in a.alter_user_scram_credentials([up]).values():
        f.result(30)
    desc = a.describe_user_scram_credentials(["carol"])
    d = desc["carol"].result(30) if isinstance(desc, dict) else desc.result(30)["carol"]
    assert [(i.mechanism, i.iterations) for i in d.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_512, 8192)]
    # Every broker accepts the new user.
    for b in cluster.brokers:
        cfg = conf(cluster, "SASL_SSL", "SCRAM-SHA-512", "carol", "carol-secret")
        cfg["bootstrap.servers"] = b.addr("SASL_SSL")
        md = AdminClient(cfg).list_topics(timeout=10)
        assert len(md.brokers) == 2


# ------------------------------------------------------------- kafka-python

def kp_conf(c, listener, mech=None, user=None, pw=None):
    cfg = {"bootstrap_servers": c.bootstrap(listener),
           "security_protocol": {"MTLS": "SSL"}.get(listener, listener),
           "request_timeout_ms": 15000}
    if "SSL" in listener or listener == "MTLS":
        cfg["ssl_cafile"] = c.certs["ca.pem"]
        cfg["ssl_check_hostname"] = True
    if listener == "MTLS":
        cfg["ssl_certfile"] = c.certs["alice.pem"]
        cfg["ssl_keyfile"] = c.certs["alice.key"]
    if mech:
        cfg.update({"sasl_mechanism": mech, "sasl_plain_username": user, "sasl_plain_password": pw})
    return cfg


@pytest.mark.parametrize("listener,mech", [("SSL", None), ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
                                           ("SASL_PLAINTEXT", "PLAIN"),
                                           ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
                                           ("SASL_SSL", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-512"),
                                           ("MTLS", None)])
def test_kafka_python_round_trip(cluster, listener, mech):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    t = "sec-kp-%s-%s" % (listener.lower(), (mech or "none").lower())
    topic_on_both(cluster, t)
    user, pw = creds(mech)
    cfg = kp_conf(cluster, listener, mech, user, pw)
    p = KafkaProducer(acks="all", **cfg)
    for i in range(10):
        p.send(t, value=b"kp%d" % i, partition=i % 2).get(timeout=20)
    p.close()
    c = KafkaConsumer(**cfg, auto_offset_reset="earliest", consumer_timeout_ms=10000)
    c.assign([TopicPartition(t, 0), TopicPartition(t, 1)])
    got = sorted(m.value for _, m in zip(range(10), c))
    c.close()
    assert got == sorted(b"kp%d" % i for i in range(10))


def test_kafka_python_wrong_password(cluster, caplog):
    """kafka-python 3 retries a refused bootstrap until max_block_ms; the
    refusal it logs is the broker's SASL_AUTHENTICATION_FAILED (58)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KPError
    caplog.set_level("WARNING", logger="kafka")
    with pytest.raises(KPError):
        KafkaProducer(max_block_ms=3000,
                      **kp_conf(cluster, "SASL_PLAINTEXT", "SCRAM-SHA-512", "sally", "nope"))
    assert "[Error 58] SaslAuthenticationFailedError" in caplog.text


# --------------------------------------------------------------------- kcat

@pytest.mark.parametrize("listener,mech", [("SSL", None), ("SASL_SSL", "SCRAM-SHA-256"),
                                           ("SASL_PLAINTEXT", "PLAIN"),
                                           ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
                                           ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
                                           ("SASL_SSL", "PLAIN"), ("MTLS", None)])
def test_kcat_round_trip(cluster, listener, mech):
    t = "sec-kcat-%s-%s" % (listener.lower(), (mech or "none").lower())
    topic_on_both(cluster, t)
    user, pw = creds(mech)
    props = conf(cluster, listener, mech, user, pw,
                 cert="alice" if listener == "MTLS" else None)
    args = []
    for k, v in props.items():
        if k != "bootstrap.servers":
            args += ["-X", "%s=%s" % (k, v)]
    lines = "\n".join("kc%d" % i for i in range(10)) + "\n"
    subprocess.run(["kcat", "-b", props["bootstrap.servers"], "-P", "-t", t, "-p", "0", *args],
                   input=lines, text=True, check=True, timeout=60)
    out = subprocess.run(["kcat", "-b", props["bootstrap.servers"], "-C", "-t", t, "-p", "0",
                          "-o", "beginning", "-e", "-q", *args],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.split() == ["kc%d" % i for i in range(10)]


def test_kcat_wrong_password(cluster):
    props = conf(cluster, "SASL_SSL", "SCRAM-SHA-256", "sam", "bad")
    args = []
    for k, v in props.items():
        if k != "bootstrap.servers":
            args += ["-X", "%s=%s" % (k, v)]
    r = subprocess.run(["kcat", "-b", props["bootstrap.servers"], "-L", "-m", "5", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "Authentication failed" in r.stderr, r.stderr


# ------------------------------------------------------------ fjord's client

def test_fjord_cli_over_scram_and_mutual_tls(cluster, tmp_path):
    """fjord topic list / produce / consume with --command-config over
    SASL_SSL + SCRAM-SHA-512 and over mutual TLS (PEM cert and key); an
    untrusted CA and a wrong password fail with TLS / SASL errors."""
    user, pw = USERS["SCRAM-SHA-512"]
    scram = tmp_path / "scram.properties"
    scram.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="%s" password="%s";\nssl.ca.location=%s\n' % (user, pw, cluster.certs["ca.pem"]))
    mtls = tmp_path / "mtls.properties"
    mtls.write_text("security.protocol=SSL\nssl.ca.location=%s\nssl.certificate.location=%s\n"
                    "ssl.key.location=%s\n" % (cluster.certs["ca.pem"], cluster.certs["alice.pem"],
                                               cluster.certs["alice.key"]))
    for listener, props in (("SASL_SSL", scram), ("MTLS", mtls)):
        t = "sec-fjord-%s" % listener.lower()
        topic_on_both(cluster, t)
        bs = ["--bootstrap-server", cluster.bootstrap(listener), "--command-config", str(props)]
        assert t in fjord("topic", "list", *bs).stdout.split()
        vals = ["%s-%d" % (listener, i) for i in range(10)]
        subprocess.run([fjord_cli(), "produce", t, *bs], input="\n".join(vals) + "\n",
                       text=True, check=True, capture_output=True, timeout=60)
        out = fjord("consume", t, "--from-beginning", "--max-messages", "10", *bs).stdout
        assert sorted(out.split()) == sorted(vals)
    rogue = tmp_path / "rogue.properties"
    rogue.write_text("security.protocol=SSL\nssl.ca.location=%s\n" % cluster.certs["rogue-ca.pem"])
    r = fjord("topic", "list", "--bootstrap-server", cluster.bootstrap("SSL"),
              "--command-config", str(rogue), check=False)
    assert r.returncode != 0 and "TLS handshake" in r.stderr, r.stderr
    bad = tmp_path / "bad.properties"
    bad.write_text(scram.read_text().replace(pw, "nope"))
    r = fjord("topic", "list", "--bootstrap-server", cluster.bootstrap("SASL_SSL"),
              "--command-config", str(bad), check=False)
    assert r.returncode != 0 and "SASL_AUTHENTICATION_FAILED" in r.stderr, r.stderr


def test_expired_client_certificate_is_refused(cluster, tmp_path):
    """A client certificate from the trusted CA that expired yesterday is
    refused on the mutual-TLS listener; a valid one is served right after."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    ca_key = serialization.load_pem_private_key(
        open(cluster.certs["ca.key"], "rb").read(), password=None)
    ca = x509.load_pem_x509_certificate(open(cluster.certs["ca.pem"], "rb").read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=3))
            .not_valid_after(now - datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "exp.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "exp.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    cfg = conf(cluster, "MTLS")
    cfg.update({"ssl.certificate.location": str(tmp_path / "exp.pem"),
                "ssl.key.location": str(tmp_path / "exp.key")})
    errors = []
    p = Producer({**cfg, "error_cb": errors.append})
    deadline = time.time() + 15
    while not any("expired" in e.str() for e in errors) and time.time() < deadline:
        p.poll(0.2)
    assert any(e.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
               and "certificate expired" in e.str() for e in errors), errors
    md = AdminClient(conf(cluster, "MTLS", cert="alice")).list_topics(timeout=10)
    assert len(md.brokers) == 2
