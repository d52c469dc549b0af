"""The coordinator's security (issue 16, build 5) with real clients:

- kazoo with use_ssl=True against secureClientPort (PKCS12 keystore made with
  openssl, PKCS12 truststore made with keytool, ssl.clientAuth=need), the
  client certificate's x509 ACL id enforced, four-letter words over TLS;
- kazoo with SASL DIGEST-MD5 (pure-sasl): the right password authenticates
  and a `sasl:bob` ACL is enforced; a wrong password fails;
- Debian's zkCli.sh over TLS (ClientCnxnSocketNetty, PKCS12 stores via
  CLIENT_JVMFLAGS);
- a broker with zookeeper.ssl.client.enable + zookeeper.set.acl registers over
  mutual TLS, and an unauthenticated client can read but not change /brokers;
- bad input: a plaintext client on the TLS port, a TLS client on the plaintext
  port, a truncated TLS handshake, a SASL packet before the handshake, an
  oversized SASL token, a SASL response with no challenge, a wrong password:
  each closed and logged once with its address, while a normal kazoo client
  is served throughout.

Certificates are made here, in a temp dir, never committed."""
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest

from fjordtest import cleanup, zkwire
from fjordtest.binaries import require, skip_or_fail
from fjordtest.broker import Broker
from fjordtest.coord import Server
from fjordtest.net import HOST, free_port, hostport
from fjordtest.zkcli import ZKCLI, ZKCLI_ENV

PASS = "changeit"
JAAS = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super-secret"
    user_bob="bob-secret";
};
"""


def run(*cmd, cwd):
    subprocess.run(list(cmd), cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    """A CA; the coordinator (SAN 127.0.0.1), a kazoo client and a broker,
    each as PEM and as PKCS12; the CA as a keytool PKCS12 truststore."""
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=fjord-zk-test-ca", cwd=d)
    for name, subj, ext in [
        ("coord", "/CN=localhost",
         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"),
        ("kazoo", "/O=fjord/CN=kazoo", "extendedKeyUsage=clientAuth\n"),
        ("broker", "/O=fjord/CN=broker", "extendedKeyUsage=clientAuth\n"),
    ]:
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", subj, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext", cwd=d)
        run("openssl", "pkcs12", "-export", "-in", name + ".pem", "-inkey", name + ".key",
            "-certfile", "ca.pem", "-name", name, "-out", name + ".p12", "-passout", "pass:" + PASS,
            cwd=d)
    run("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem",
        "-keystore", "truststore.p12", "-storetype", "PKCS12", "-storepass", PASS, cwd=d)
    with open(os.path.join(d, "jaas.conf"), "w") as f:
        f.write(JAAS)
    return {k: os.path.join(d, k) for k in os.listdir(d)}


@pytest.fixture(scope="module")
def certs():
    require("/usr/bin/openssl", "/usr/bin/keytool")
    d = cleanup.temp_dir("fjord-zk-certs-")
    try:
        yield make_certs(d)
    finally:
        cleanup.remove_dir(d)


@pytest.fixture(scope="module")
def coord(certs):
    """fjord-coord with a plaintext and a secure client port, PKCS12 stores,
    mutual TLS required, and SASL DIGEST-MD5 from the JAAS file."""
    secure = free_port()
    s = Server("fjord", {
        "secureClientPort": secure,
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": certs["coord.p12"],
        "ssl.keyStore.password": PASS,
        "ssl.keyStore.type": "PKCS12",
        "ssl.trustStore.location": certs["truststore.p12"],
        "ssl.trustStore.password": PASS,
        "ssl.clientAuth": "need",
        "authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        "jaasLoginConfig": certs["jaas.conf"],
    })
    s.secure_port = secure
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


def tls_kazoo(coord, certs, **kw):
    from kazoo.client import KazooClient
    c = KazooClient(hosts=hostport(coord.secure_port), use_ssl=True, ca=certs["ca.pem"],
                    certfile=certs["kazoo.pem"], keyfile=certs["kazoo.key"], timeout=10, **kw)
    c.start(timeout=15)
    return c


def sasl_kazoo(coord, user, password, timeout=15):
    from kazoo.client import KazooClient
    c = KazooClient(hosts=coord.hosts, timeout=10, connection_retry={"max_tries": 0},
                    sasl_options={"mechanism": "DIGEST-MD5", "username": user,
                                  "password": password})
    try:
        c.start(timeout=timeout)
    except BaseException:
        c.stop()
        c.close()
        raise
    return c


def log_count(server, text):
    with open(server.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace").count(text)


def wait_log(server, text, n=1, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log_count(server, text) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("log never showed %r %d times:\n%s" % (text, n, server.log_tail()))


def test_kazoo_tls_with_x509_identity(coord, certs):
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_acl
    zk = tls_kazoo(coord, certs)
    plain = coord.kazoo()
    try:
        zk.create("/tls-node", b"over tls")
        assert plain.get("/tls-node")[0] == b"over tls"
        # The client certificate is this connection's x509 id (RFC 2253 subject).
        acl = make_acl("x509", "CN=kazoo,O=fjord", all=True)
        zk.create("/tls-x509", b"mine", acl=[acl])
        assert zk.get("/tls-x509")[0] == b"mine"
        assert zk.get_acls("/tls-x509")[0][0].id.id == "CN=kazoo,O=fjord"
        with pytest.raises(NoAuthError):
            plain.get("/tls-x509")
        # "auth" expands to the certificate's id, as ZooKeeper does.
        zk.create("/tls-auth", b"", acl=[make_acl("auth", "", all=True)])
        assert [(a.id.scheme, a.id.id) for a in zk.get_acls("/tls-auth")[0]] == \
            [("x509", "CN=kazoo,O=fjord")]
    finally:
        for c in (zk, plain):
            c.stop()
            c.close()


def test_four_letter_words_on_the_secure_port(coord, certs):
    ctx = ssl.create_default_context(cafile=certs["ca.pem"])
    ctx.load_cert_chain(certs["kazoo.pem"], certs["kazoo.key"])
    with socket.create_connection((HOST, coord.secure_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            s.sendall(b"ruok")
            out = b""
            while True:
                chunk = s.recv(100)
                if not chunk:
                    break
                out += chunk
    assert out == b"imok"


def test_kazoo_sasl_digest_md5(coord):
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_acl
    bob = sasl_kazoo(coord, "bob", "bob-secret")
    anon = coord.kazoo()
    try:
        bob.create("/sasl-bob", b"bob's", acl=[make_acl("sasl", "bob", all=True)])
        assert bob.get("/sasl-bob")[0] == b"bob's"
        with pytest.raises(NoAuthError):
            anon.get("/sasl-bob")
        with pytest.raises(NoAuthError):
            anon.set("/sasl-bob", b"x")
        # auth expands to sasl:bob.
        bob.create("/sasl-auth", b"", acl=[make_acl("auth", "", all=True)])
        assert [(a.id.scheme, a.id.id) for a in bob.get_acls("/sasl-auth")[0]] == [("sasl", "bob")]
    finally:
        for c in (bob, anon):
            c.stop()
            c.close()
    # A wrong password: the server answers AuthFailed and closes; kazoo
    # (which may report CONNECTED before its SASL exchange ends) ends in
    # AUTH_FAILED and is never connected afterwards.
    from kazoo.client import KazooClient
    before = log_count(coord, "failed to SASL authenticate")
    bad = KazooClient(hosts=coord.hosts, timeout=5, connection_retry={"max_tries": 0},
                      sasl_options={"mechanism": "DIGEST-MD5", "username": "bob",
                                    "password": "wrong"})
    try:
        try:
            bad.start(timeout=5)
        except Exception:  # noqa: BLE001 - either way it must end unauthenticated
            pass
        deadline = time.time() + 10
        while bad.connected and time.time() < deadline:
            time.sleep(0.05)
        assert not bad.connected
    finally:
        bad.stop()
        bad.close()
    wait_log(coord, "failed to SASL authenticate", before + 1)
    assert 'wrong password for "bob"' in coord.log_tail(20000)


def test_zkcli_over_tls(coord, certs):
    require(ZKCLI)
    # Debian's zookeeper.jar lists only some of Netty's jars in its manifest
    # Class-Path: ClientCnxnSocketNetty then fails with NoClassDefFoundError
    # io/netty/resolver/AddressResolverGroup (a packaging bug, not ours).
    # Debian's libnetty-java ships the missing jars; they go on the boot
    # class path with every other Netty jar so that one loader sees them all.
    netty = ["/usr/share/java/netty-%s.jar" % j for j in
             ("common", "buffer", "resolver", "transport", "codec", "handler",
              "transport-native-unix-common")]
    missing = [j for j in netty if not os.path.exists(j)]
    if missing:
        skip_or_fail("Netty jars missing: %s" % missing)
    flags = " ".join([
        ZKCLI_ENV["CLIENT_JVMFLAGS"],
        "-Xbootclasspath/a:" + ":".join(netty),
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.ssl.keyStore.location=" + certs["kazoo.p12"],
        "-Dzookeeper.ssl.keyStore.password=" + PASS,
        "-Dzookeeper.ssl.keyStore.type=PKCS12",
        "-Dzookeeper.ssl.trustStore.location=" + certs["truststore.p12"],
        "-Dzookeeper.ssl.trustStore.password=" + PASS,
        "-Dzookeeper.ssl.trustStore.type=PKCS12",
    ])
    env = dict(ZKCLI_ENV, CLIENT_JVMFLAGS=flags)

    def cli(*args):
        p = subprocess.run([ZKCLI, "-server", hostport(coord.secure_port)] + list(args), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=90)
        return p.returncode, p.stdout

    rc, out = cli("create", "/zkcli-tls", "hello")
    assert rc == 0 and "Created /zkcli-tls" in out, out
    rc, out = cli("get", "/zkcli-tls")
    assert rc == 0 and "hello" in out.splitlines(), out
    w = coord.wire()
    try:
        assert w.get("/zkcli-tls")[0] == b"hello"
    finally:
        w.close()


def test_broker_set_acl_over_mutual_tls(coord, certs):
    from kazoo.exceptions import NoAuthError
    d = cleanup.temp_dir("fjord-zk-broker-")
    b = Broker(d, 1, hostport(coord.secure_port) + "/kafka", {
        "zookeeper.ssl.client.enable": "true",
        "zookeeper.clientCnxnSocket": "org.apache.zookeeper.ClientCnxnSocketNetty",
        "zookeeper.ssl.keystore.location": certs["broker.p12"],
        "zookeeper.ssl.keystore.password": PASS,
        "zookeeper.ssl.keystore.type": "PKCS12",
        "zookeeper.ssl.truststore.location": certs["ca.pem"],
        "zookeeper.ssl.truststore.type": "PEM",
        "zookeeper.set.acl": "true",
    })
    anon = coord.kazoo()
    try:
        b.start()
        acl = anon.get_acls("/kafka/brokers")[0]
        assert sorted((a.id.scheme, a.id.id, a.perms) for a in acl) == [
            ("world", "anyone", 1), ("x509", "CN=broker,O=fjord", 31)]
        data, _ = anon.get("/kafka/brokers/ids/1")
        assert b'"port"' in data
        with pytest.raises(NoAuthError):
            anon.set("/kafka/brokers", b"mine now")
        with pytest.raises(NoAuthError):
            anon.create("/kafka/brokers/ids/99", b"{}")
        with pytest.raises(NoAuthError):
            anon.delete("/kafka/brokers/topics")
        assert anon.exists("/kafka/brokers/ids/1") is not None
    finally:
        anon.stop()
        anon.close()
        b.stop()
        cleanup.remove_dir(d)


def sasl_frame(xid, token):
    return zkwire.frame(struct.pack(">ii", xid, 102) + zkwire.e_buf(token))


def closed(sock, timeout=5.0):
    """True once the server closed `sock` (EOF or reset), reading what it sent."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True, data
            data += chunk
    except (ConnectionResetError, ssl.SSLError):
        return True, data
    except socket.timeout:
        return False, data


def test_bad_input_is_refused_and_logged_once(coord, certs):
    zk = coord.kazoo()
    served = [0]

    def still_served():
        served[0] += 1
        zk.set("/bad-input", str(served[0]).encode())
        assert zk.get("/bad-input")[0] == str(served[0]).encode()

    zk.create("/bad-input", b"0")
    try:
        # 1. A plaintext ZooKeeper client on the TLS port.
        with socket.create_connection((HOST, coord.secure_port)) as s:
            addr = "%s:%d" % s.getsockname()
            s.sendall(zkwire.frame(zkwire.connect_request()))
            assert closed(s)[0]
        wait_log(coord, "peer=%s" % addr)
        assert log_count(coord, "peer=%s" % addr) == 1
        assert "TLS handshake failed" in coord.log_tail(20000)
        still_served()

        # 2. A TLS client on the plaintext port.
        ctx = ssl.create_default_context(cafile=certs["ca.pem"])
        with socket.create_connection((HOST, coord.port)) as raw:
            addr = "%s:%d" % raw.getsockname()
            with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
                ctx.wrap_socket(raw, server_hostname=HOST).recv(10)
        wait_log(coord, "peer=%s" % addr)
        assert log_count(coord, "peer=%s" % addr) == 1
        assert "TLS handshake on the plaintext client port" in coord.log_tail(20000)
        still_served()

        # 3. A truncated TLS handshake: the first bytes of a ClientHello, then EOF.
        hello = ssl.MemoryBIO()
        obj = ctx.wrap_bio(ssl.MemoryBIO(), hello, server_hostname=HOST)
        with pytest.raises(ssl.SSLWantReadError):
            obj.do_handshake()
        first = hello.read()
        with socket.create_connection((HOST, coord.secure_port)) as s:
            addr = "%s:%d" % s.getsockname()
            s.sendall(first[:20])
            s.shutdown(socket.SHUT_WR)
            assert closed(s)[0]
        wait_log(coord, "peer=%s" % addr)
        assert log_count(coord, "peer=%s" % addr) == 1
        still_served()

        # 4. A SASL packet instead of the handshake (ConnectRequest).
        with socket.create_connection((HOST, coord.port)) as s:
            s.sendall(sasl_frame(1, b""))
            assert closed(s)[0]
        still_served()

        # 5. An oversized SASL token after the handshake: AuthFailed, closed.
        w = coord.wire()
        addr = "%s:%d" % w.sock.getsockname()
        w.send_raw(sasl_frame(1, b"a" * 5000))
        _, err, _ = w.read_reply(1)
        assert err == -115  # AuthFailed
        assert closed(w.sock)[0]
        w.close_socket()
        wait_log(coord, "peer=%s" % addr)
        assert log_count(coord, "peer=%s" % addr) == 1
        assert "exceeds 4096" in coord.log_tail(20000)
        still_served()

        # 6. A digest-response without the challenge first (an initial response).
        w = coord.wire()
        addr = "%s:%d" % w.sock.getsockname()
        w.send_raw(sasl_frame(1, b'username="bob",response=00'))
        _, err, _ = w.read_reply(1)
        assert err == -115
        assert closed(w.sock)[0]
        w.close_socket()
        wait_log(coord, "peer=%s" % addr)
        assert log_count(coord, "peer=%s" % addr) == 1
        still_served()

        # 7. A wrong password through the full exchange (raw, to know the address).
        w = coord.wire()
        addr = "%s:%d" % w.sock.getsockname()
        w.send_raw(sasl_frame(1, b""))
        _, err, r = w.read_reply(1)
        assert err == 0
        challenge = r.buf().decode()
        assert 'realm="zk-sasl-md5"' in challenge and 'qop="auth"' in challenge
        nonce = challenge.split('nonce="')[1].split('"')[0]
        resp = ('username="bob",realm="zk-sasl-md5",nonce="%s",nc=00000001,cnonce="x",'
                'digest-uri="zookeeper/zk-sasl-md5",maxbuf=65536,'
                'response=00000000000000000000000000000000,qop=auth' % nonce)
        w.send_raw(sasl_frame(2, resp.encode()))
        _, err, _ = w.read_reply(2)
        assert err == -115
        assert closed(w.sock)[0]
        w.close_socket()
        wait_log(coord, "peer=%s" % addr)
        assert log_count(coord, "peer=%s" % addr) == 1
        assert 'wrong password for "bob"' in coord.log_tail(20000)
        still_served()

        assert coord.alive()
        assert zk.connected
    finally:
        zk.stop()
        zk.close()


def test_ssl_quorum_ensemble_elects_and_replicates(certs):
    """sslQuorum=true: three members whose peer links are mutual TLS (PKCS12
    stores) elect a leader and replicate; a peer without the quorum's
    certificate is refused."""
    from fjordtest.ensemble import running
    extra = {
        "sslQuorum": "true",
        "ssl.quorum.keyStore.location": certs["coord.p12"],
        "ssl.quorum.keyStore.password": PASS,
        "ssl.quorum.trustStore.location": certs["truststore.p12"],
        "ssl.quorum.trustStore.password": PASS,
    }
    with running(3, extra) as ens:
        lead = ens.wait_leader()
        for m in ens.members:
            assert "listening for ensemble peers" in m.log_tail(200000)
        zk = ens.kazoo(lead)
        try:
            zk.create("/quorum-tls", b"replicated")
        finally:
            zk.stop()
            zk.close()
        for m in ens.members:
            c = ens.kazoo(m)
            try:
                c.sync("/quorum-tls")
                assert c.get("/quorum-tls")[0] == b"replicated"
            finally:
                c.stop()
                c.close()
        # A plaintext peer connection is refused at the TLS handshake.
        with socket.create_connection((HOST, lead.peer_port)) as s:
            s.sendall(b"\x00\x00\x00\x04abcd")
            assert closed(s)[0]
        wait_log(lead, "peer TLS handshake failed")


def test_fjord_znode_over_tls(coord, certs):
    """`fjord znode --zk-tls-config` with zookeeper.ssl.* keys (PKCS12 keystore,
    PEM truststore) on the secure port."""
    from fjordtest.binaries import fjord_cli
    fjord = fjord_cli()
    require(fjord)
    props = os.path.join(os.path.dirname(certs["ca.pem"]), "zk-tls.properties")
    with open(props, "w") as f:
        f.write("zookeeper.client.secure=true\n"
                "zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\n"
                "zookeeper.ssl.keyStore.location=%s\nzookeeper.ssl.keyStore.password=%s\n"
                "zookeeper.ssl.keyStore.type=PKCS12\nzookeeper.ssl.trustStore.location=%s\n"
                % (certs["kazoo.p12"], PASS, certs["ca.pem"]))

    def fj(*args):
        p = subprocess.run([fjord, "znode", "--coord", hostport(coord.secure_port),
                            "--zk-tls-config", props] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        return p.returncode, p.stdout.splitlines(), p.stderr.strip()

    assert fj("create", "/fj-tls", "via fjord") == (0, ["Created /fj-tls"], "")
    assert fj("get", "/fj-tls") == (0, ["via fjord"], "")
    rc, out, _ = fj("stat", "/fj-tls")
    assert rc == 0 and "dataLength = 9" in out, out
    # Without the TLS config the secure port refuses the plaintext client.
    p = subprocess.run([fjord, "znode", "--coord", hostport(coord.secure_port),
                        "--session-timeout-ms", "3000", "ls", "/"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode != 0


def test_require_client_auth_scheme_sasl(certs):
    """requireClientAuthScheme=sasl: before SASL only ping/auth/sasl pass;
    anything else is SESSIONCLOSEDREQUIRESASLAUTH (-124) and the connection
    closes; after DIGEST-MD5 requests are served."""
    s = Server("fjord", {
        "authProvider.sasl": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        "jaasLoginConfig": certs["jaas.conf"],
        "requireClientAuthScheme": "sasl",
    })
    try:
        s.start()
        w = s.wire()
        x = w.send_request(zkwire.OP["getData"], zkwire.e_str("/") + zkwire.e_bool(False))
        _, err, _ = w.read_reply(x)
        assert err == -124
        assert closed(w.sock)[0]
        w.close_socket()
        bob = sasl_kazoo(s, "bob", "bob-secret")
        try:
            bob.create("/after-sasl", b"ok")
            assert bob.get("/after-sasl")[0] == b"ok"
        finally:
            bob.stop()
            bob.close()
    finally:
        s.cleanup()
