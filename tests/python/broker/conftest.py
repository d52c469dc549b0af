"""Broker fixtures: one coordinator (fjord-coord, or Apache ZooKeeper 3.8 when
fjord-coord is missing or FJORD_BROKER_COORD=zookeeper) plus fjord-brokers on free
127.0.0.1 ports in temp dirs, always stopped by PID.

Env:
  FJORD_BIN            dir with fjord-broker / fjord-coord
                       (default ${CARGO_TARGET_DIR:-~/.cache/fjord-target}/release)
  FJORD_BROKER_COORD   fjord | zookeeper | standalone (default: fjord if built, else zookeeper)
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HOST = "127.0.0.1"
ZK_JAR = os.environ.get("ZK_JAR", "/usr/share/java/zookeeper.jar")
ZK_CP_EXTRA = ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar",
               "/usr/share/java/slf4j-api.jar"]
_LIVE = set()


def bin_dir():
    if os.environ.get("FJORD_BIN"):
        return os.environ["FJORD_BIN"]
    tgt = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/fjord-target")
    return os.path.join(tgt, "release")


def broker_binary():
    return os.path.join(bin_dir(), "fjord-broker")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, log_path, timeout=30.0, what="server"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s; log:\n%s" % (what, proc.returncode, tail(log_path)))
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("%s did not listen on %d; log:\n%s" % (what, port, tail(log_path)))


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def coord_kind():
    k = os.environ.get("FJORD_BROKER_COORD")
    if k:
        return k
    if os.access(os.path.join(bin_dir(), "fjord-coord"), os.X_OK):
        return "fjord"
    return "zookeeper"


class Proc:
    def __init__(self, name, workdir):
        self.name = name
        self.dir = workdir
        self.proc = None
        self.log_path = os.path.join(workdir, name + ".log")

    def launch(self, cmd):
        log = open(self.log_path, "ab")
        log.write(("\n==== start: %s\n" % " ".join(cmd)).encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, env=env)
        log.close()
        _LIVE.add(self)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        _LIVE.discard(self)

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        _LIVE.discard(self)

    def log(self):
        return tail(self.log_path)


class Coord(Proc):
    def __init__(self, workdir, kind):
        super().__init__("coord", workdir)
        self.kind = kind
        self.port = free_port()

    def start(self):
        data = os.path.join(self.dir, "coord-data")
        os.makedirs(data, exist_ok=True)
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=500\ndataDir=%s\nclientPort=%d\nclientPortAddress=%s\n"
                    "4lw.commands.whitelist=*\nmaxClientCnxns=0\nadmin.enableServer=false\n"
                    % (data, self.port, HOST))
        if self.kind == "fjord":
            cmd = [os.path.join(bin_dir(), "fjord-coord"), cfg]
        else:
            cp = ":".join([ZK_JAR] + [p for p in ZK_CP_EXTRA if os.path.exists(p)])
            cmd = ["java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                   "-Dzookeeper.admin.enableServer=false", "-Dzookeeper.root.logger=WARN,CONSOLE",
                   "-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        self.launch(cmd)
        wait_port(self.port, self.proc, self.log_path, what="coordinator")
        time.sleep(0.3)
        return self

    @property
    def connect(self):
        return "%s:%d" % (HOST, self.port)


class Broker(Proc):
    def __init__(self, workdir, broker_id, zk_connect, overrides=None):
        super().__init__("broker-%d" % broker_id, workdir)
        self.id = broker_id
        self.port = free_port()
        self.log_dir = os.path.join(workdir, "broker-%d-data" % broker_id)
        self.cfg_path = os.path.join(workdir, "broker-%d.properties" % broker_id)
        self.zk_connect = zk_connect
        self.overrides = dict(overrides or {})

    def config(self):
        cfg = {
            "broker.id": self.id,
            "listeners": "PLAINTEXT://%s:%d" % (HOST, self.port),
            "advertised.listeners": "PLAINTEXT://%s:%d" % (HOST, self.port),
            "log.dirs": self.log_dir,
            "zookeeper.connect": self.zk_connect,
            "zookeeper.session.timeout.ms": 6000,
            "num.partitions": 1,
            "log.retention.check.interval.ms": 1000,
        }
        cfg.update(self.overrides)
        return cfg

    def start(self, wait=True):
        with open(self.cfg_path, "w") as f:
            for k, v in self.config().items():
                f.write("%s=%s\n" % (k, v))
        self.launch([broker_binary(), self.cfg_path])
        if wait:
            wait_port(self.port, self.proc, self.log_path, what="fjord-broker %d" % self.id)
            self.wait_registered()
        return self

    def wait_registered(self, timeout=30.0):
        """The port opens before registration; wait until Metadata lists us."""
        from kafka_wire import metadata_brokers
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if not self.alive():
                raise AssertionError("broker %d died; log:\n%s" % (self.id, self.log()))
            try:
                if self.id in metadata_brokers(HOST, self.port):
                    return
            except Exception as e:  # noqa: BLE001 - keep polling
                last = e
            time.sleep(0.1)
        raise AssertionError("broker %d not ready (%r); log:\n%s" % (self.id, last, self.log()))

    @property
    def bootstrap(self):
        return "%s:%d" % (HOST, self.port)


class Cluster:
    def __init__(self, n=1, overrides=None, coord=None):
        self.dir = tempfile.mkdtemp(prefix="fjord-broker-test-")
        kind = coord or coord_kind()
        self.coord = None
        if kind != "standalone":
            self.coord = Coord(self.dir, kind).start()
            zk = self.coord.connect
        else:
            zk = ""
        self.brokers = [Broker(self.dir, i + 1, zk, overrides) for i in range(n)]
        for b in self.brokers:
            b.start(wait=False)
        for b in self.brokers:
            wait_port(b.port, b.proc, b.log_path, what="fjord-broker %d" % b.id)
            b.wait_registered()

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers if b.alive())

    def close(self):
        for b in self.brokers:
            b.stop()
        if self.coord:
            self.coord.stop()
        if os.environ.get("FJORD_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    for p in list(_LIVE):
        try:
            p.kill9()
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture(scope="module")
def cluster1():
    if not os.access(broker_binary(), os.X_OK):
        pytest.skip("fjord-broker not built at %s" % broker_binary())
    c = Cluster(1)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def make_cluster():
    if not os.access(broker_binary(), os.X_OK):
        pytest.skip("fjord-broker not built at %s" % broker_binary())
    made = []

    def make(n=1, overrides=None, coord=None):
        c = Cluster(n, overrides, coord)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.close()


_topic_counter = [0]


@pytest.fixture
def topic_name(request):
    _topic_counter[0] += 1
    return "t%d-%s-%d" % (_topic_counter[0], request.node.originalname[:30].replace("_", "-"), os.getpid())
