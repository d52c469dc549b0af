"""Helpers shared by the coordinator tests (and conftest.py): start fjord-coord or
Apache ZooKeeper 3.8 on free 127.0.0.1 ports in temp dirs, always stop them by PID.
Import from here, not from `conftest`: several conftest.py files exist under
tests/python and `import conftest` may name another one.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zkwire  # noqa: E402

ALL_TARGETS = ["fjord", "zookeeper"]
HOST = "127.0.0.1"


def fjord_bin_dir():
    if os.environ.get("FJORD_BIN"):
        return os.environ["FJORD_BIN"]
    tgt = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/fjord-target")
    return os.path.join(tgt, "release")


def fjord_binary():
    return os.path.join(fjord_bin_dir(), "fjord-coord")


ZK_JAR = os.environ.get("ZK_JAR", "/usr/share/java/zookeeper.jar")
ZK_CP_EXTRA = ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar",
               "/usr/share/java/slf4j-api.jar"]


def require_binaries():
    return os.environ.get("FJORD_REQUIRE_BINARIES") == "1"


def selected_targets():
    env = os.environ.get("FJORD_TEST_TARGETS")
    if not env:
        return list(ALL_TARGETS)
    return [t.strip() for t in env.split(",") if t.strip()]


def target_available(target):
    if target == "fjord":
        return os.access(fjord_binary(), os.X_OK), "fjord-coord binary not found at %s" % fjord_binary()
    if target == "zookeeper":
        ok = os.path.exists(ZK_JAR) and shutil.which("java") is not None
        return ok, "Apache ZooKeeper (%s) or java not found" % ZK_JAR
    return False, "unknown target %r" % target


def skip_or_fail_unavailable(target):
    ok, why = target_available(target)
    if ok:
        return
    if require_binaries():
        pytest.fail("FJORD_REQUIRE_BINARIES=1: " + why, pytrace=False)
    pytest.skip(why)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def four_letter(port, cmd, timeout=5.0):
    return zkwire.four_letter(port, cmd, HOST, timeout)


class Server:
    """One server process (fjord-coord or Apache ZooKeeper) in its own temp dir."""

    def __init__(self, kind, overrides=None, workdir=None):
        self.kind = kind
        self.port = free_port()
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="fjord-%s-" % kind)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.overrides = dict(overrides or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")
        self.cfg_path = os.path.join(self.dir, "zoo.cfg")
        self.starts = 0

    # -- config
    def config(self):
        cfg = {
            "tickTime": "2000",
            "dataDir": self.data_dir,
            "clientPort": str(self.port),
            "clientPortAddress": HOST,
            "4lw.commands.whitelist": "*",
            "maxClientCnxns": "60",
        }
        if self.kind == "zookeeper":
            cfg["admin.enableServer"] = "false"
        for k, v in self.overrides.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = str(v)
        return cfg

    def write_config(self):
        with open(self.cfg_path, "w") as f:
            for k, v in self.config().items():
                f.write("%s=%s\n" % (k, v))

    @property
    def hosts(self):
        return "%s:%d" % (HOST, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def command(self):
        if self.kind == "fjord":
            return [fjord_binary(), self.cfg_path]
        conf_dir = os.path.join(self.dir, "conf")
        os.makedirs(conf_dir, exist_ok=True)
        with open(os.path.join(conf_dir, "log4j.properties"), "w") as f:
            f.write("log4j.rootLogger=WARN, CONSOLE\n"
                    "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
                    "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.CONSOLE.layout.ConversionPattern=%d %-5p [%t] %c{1}: %m%n\n")
        cp = ":".join([conf_dir, ZK_JAR] + [p for p in ZK_CP_EXTRA if os.path.exists(p)])
        return ["java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Dzookeeper.extendedTypesEnabled=true",
                "-Dznode.container.checkIntervalMs=1000",
                "-Dzookeeper.admin.enableServer=false",
                "-Dzookeeper.root.logger=WARN,CONSOLE",
                "-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg_path]

    # -- lifecycle
    def start(self, wait=True, timeout=30.0):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.write_config()
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(("\n==== start %d: %s\n" % (self.starts, " ".join(self.command()))).encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, env=env)
        log.close()
        _LIVE.add(self)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30.0):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s during start-up; log:\n%s"
                                     % (self.kind, self.proc.returncode, self.log_tail()))
            try:
                last = four_letter(self.port, "ruok", timeout=1.0)
                if last == "imok":
                    # ZooKeeper says imok before it serves sessions: also open one.
                    c = zkwire.Conn(HOST, self.port, timeout_ms=4000, sock_timeout=2.0)
                    c.close()
                    return
            except (OSError, zkwire.ConnectionClosed) as e:
                last = repr(e)
            time.sleep(0.1)
        raise AssertionError("%s did not answer ruok with imok within %.0fs (last: %r); log:\n%s"
                             % (self.kind, timeout, last, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL: always leaves the process dead."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        _LIVE.discard(self)

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        _LIVE.discard(self)

    def restart(self, wait=True):
        self.stop()
        return self.start(wait=wait)

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
            return data[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def four(self, cmd):
        return four_letter(self.port, cmd)

    def wire(self, **kw):
        return zkwire.Conn(HOST, self.port, **kw)

    def kazoo(self, timeout=10.0, start=True, **kw):
        from kazoo.client import KazooClient
        c = KazooClient(hosts=self.hosts, timeout=timeout, **kw)
        if start:
            c.start(timeout=15)
        return c


_LIVE = set()



class TcpProxy:
    """127.0.0.1 TCP forwarder that can cut every connection and refuse new ones
    (a network partition between one client and the server)."""

    def __init__(self, target_port):
        import threading
        self.target_port = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.port = self.lsock.getsockname()[1]
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.blocked = False
        self.closed = False
        self.socks = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def hosts(self):
        return "%s:%d" % (HOST, self.port)

    def _accept(self):
        import threading
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.blocked:
                c.close()
                continue
            try:
                u = socket.create_connection((HOST, self.target_port), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a, b):
        try:
            a.settimeout(None)
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def block(self):
        """Cut current connections and refuse new ones."""
        self.blocked = True
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def unblock(self):
        self.blocked = False

    def close(self):
        self.closed = True
        self.block()
        self.lsock.close()
