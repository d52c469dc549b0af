"""Certificate rotation without a restart: the keystore file is replaced
(a new certificate from the same CA, another subject) and the broker serves
the new certificate to new connections — on SIGHUP at once, and by itself
when the file's modification time changes (checked every 5 s)."""
import os
import signal
import socket
import ssl
import time

from security.conftest import openssl


def served_cn(c, listener="SSL"):
    ctx = ssl.create_default_context(cafile=c.certs["ca.pem"])
    with socket.create_connection(("127.0.0.1", c.brokers[0].ports[listener]), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def rotate(c, cn):
    d = os.path.dirname(c.certs["ca.pem"])
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", cn + ".key", "-out", cn + ".csr",
            "-subj", "/CN=" + cn, cwd=d)
    openssl("x509", "-req", "-in", cn + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", cn + ".pem", "-extfile", "server.ext", cwd=d)
    tmp = os.path.join(d, "keystore.pem.new")
    with open(tmp, "w") as out:
        for f in (cn + ".key", cn + ".pem"):
            out.write(open(os.path.join(d, f)).read())
    os.replace(tmp, c.certs["keystore.pem"])


def test_rotation_on_sighup_and_on_file_change(secure):
    assert served_cn(secure) == "localhost"
    rotate(secure, "rotated-by-sighup")
    os.kill(secure.brokers[0].pid, signal.SIGHUP)
    deadline = time.time() + 3
    while served_cn(secure) != "rotated-by-sighup" and time.time() < deadline:
        time.sleep(0.1)
    assert served_cn(secure) == "rotated-by-sighup"
    # SASL_SSL shares the keystore settings: reloaded too.
    assert served_cn(secure, "SASL_SSL") == "rotated-by-sighup"
    time.sleep(1.1)  # a later modification time
    rotate(secure, "rotated-by-watch")
    deadline = time.time() + 12
    while served_cn(secure) != "rotated-by-watch" and time.time() < deadline:
        time.sleep(0.5)
    assert served_cn(secure) == "rotated-by-watch"
    assert "TLS certificates reloaded" in secure.brokers[0].log_tail(400000)
