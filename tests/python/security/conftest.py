"""Security fixtures: test certificates made with `openssl` in a temp dir
(a CA, the brokers' certificate for 127.0.0.1, a client certificate
CN=alice, and a second, untrusted CA with its own client), and a cluster of
one coordinator plus two brokers, each with five listeners:

  PLAINTEXT (inter-broker), SSL, SASL_PLAINTEXT, SASL_SSL and MTLS (an SSL
  listener with ssl.client.auth=required and a CN mapping rule).

Broker 1 reads its keystore from a PEM file (ssl.keystore.location), broker 2
from inline PEM values (ssl.keystore.certificate.chain / ssl.keystore.key).
PLAIN users come from the listeners' JAAS configs; SCRAM users are created by
the tests."""
import os
import subprocess

import pytest

from fjordtest import cleanup
from fjordtest.binaries import broker_binary, fjord_cli, require
from fjordtest.broker import Broker, coord_kind
from fjordtest.coord import Server
from fjordtest.net import HOST, free_ports

LISTENERS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", "MTLS"]
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" '
        'user_admin="admin-secret" user_alice="alice-secret";')


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    """CA, server (SAN 127.0.0.1/localhost), client alice; rogue CA + client."""
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", ca + ".key", "-out", ca + ".pem", "-subj", "/CN=fjord-test-" + ca, cwd=d)

    def leaf(name, subj, ca, ext):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                "-out", name + ".csr", "-subj", subj, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext", cwd=d)

    leaf("server", "/CN=localhost", "ca",
         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    leaf("alice", "/O=fjord/CN=alice", "ca", "extendedKeyUsage=clientAuth\n")
    leaf("mallory", "/CN=mallory", "rogue-ca", "extendedKeyUsage=clientAuth\n")
    # ssl.keystore.location: key and chain in one PEM file.
    with open(os.path.join(d, "keystore.pem"), "w") as out:
        for f in ("server.key", "server.pem"):
            out.write(open(os.path.join(d, f)).read())
    return {k: os.path.join(d, k) for k in os.listdir(d)}


class SecureBroker(Broker):
    """A fjord-broker with the five listeners above."""

    def __init__(self, workdir, broker_id, zk_connect, certs, inline, extra=None):
        super().__init__(workdir, broker_id, zk_connect)
        self.extra = dict(extra or {})
        self.ports = dict(zip(LISTENERS, [self.port] + free_ports(4)))
        self.certs = certs
        self.inline = inline

    def config(self):
        cfg = super().config()
        eps = ",".join("%s://%s:%d" % (n, HOST, p) for n, p in self.ports.items())
        cfg.update({
            "listeners": eps,
            "advertised.listeners": eps,
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
            "inter.broker.listener.name": "PLAINTEXT",
            "ssl.truststore.location": self.certs["ca.pem"],
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
            "listener.name.mtls.ssl.client.auth": "required",
            "listener.name.mtls.ssl.principal.mapping.rules": "RULE:^.*CN=(.*?)$/$1/L,DEFAULT",
            "connection.failed.authentication.delay.ms": 100,
        })
        if self.inline:
            one_line = lambda f: " ".join(open(self.certs[f]).read().split("\n"))  # noqa: E731
            cfg["ssl.keystore.type"] = "PEM"
            cfg["ssl.keystore.certificate.chain"] = one_line("server.pem")
            cfg["ssl.keystore.key"] = one_line("server.key")
        else:
            cfg["ssl.keystore.location"] = self.certs["keystore.pem"]
        cfg.update(self.extra)
        return cfg

    def addr(self, listener):
        return "%s:%d" % (HOST, self.ports[listener])


class SecureCluster:
    def __init__(self, n=2, extra=None):
        self.dir = cleanup.temp_dir("fjord-security-test-")
        self.brokers = []
        self.coord = None
        try:
            certdir = os.path.join(self.dir, "certs")
            os.makedirs(certdir)
            self.certs = make_certs(certdir)
            self.coord = Server(coord_kind(), {"tickTime": 500, "maxClientCnxns": 0,
                                               "maxSessionTimeout": 60000},
                                workdir=os.path.join(self.dir, "coord")).start()
            self.brokers = [SecureBroker(self.dir, i + 1, self.coord.hosts, self.certs,
                                         inline=(i == 1), extra=extra)
                            for i in range(n)]
            for b in self.brokers:
                b.start(wait=False)
            for b in self.brokers:
                b.wait_ready()
        except BaseException:
            self.close()
            raise

    def bootstrap(self, listener):
        return ",".join(b.addr(listener) for b in self.brokers)

    def close(self):
        for b in self.brokers:
            b.stop()
        if self.coord:
            self.coord.stop()
        cleanup.remove_dir(self.dir)


@pytest.fixture(scope="package")
def secure():
    require(broker_binary(), fjord_cli())
    c = SecureCluster()
    try:
        yield c
    finally:
        c.close()
