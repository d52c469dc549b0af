"""One coordinator server: fjord-coord or Apache ZooKeeper 3.8, in its own work
dir on a free 127.0.0.1 port; which targets a run tests; the four-letter words.

Env:
  FJORD_TEST_TARGETS  comma list of targets for the semantic tests (default fjord,zookeeper)
"""
import os
import time

from fjordtest import cleanup, zkwire
from fjordtest.binaries import (coord_binary, skip_or_fail, zookeeper_available,
                                zookeeper_classpath)
from fjordtest.net import HOST, free_port, hostport
from fjordtest.proc import Proc

ALL_TARGETS = ["fjord", "zookeeper"]


def selected_targets():
    env = os.environ.get("FJORD_TEST_TARGETS")
    if not env:
        return list(ALL_TARGETS)
    return [t.strip() for t in env.split(",") if t.strip()]


def target_available(target):
    if target == "fjord":
        return os.access(coord_binary(), os.X_OK), "fjord-coord binary not found at %s" % coord_binary()
    if target == "zookeeper":
        return zookeeper_available()
    return False, "unknown target %r" % target


def skip_or_fail_unavailable(target):
    ok, why = target_available(target)
    if not ok:
        skip_or_fail(why)


def four_letter(port, cmd, timeout=5.0):
    return zkwire.four_letter(port, cmd, HOST, timeout)


def zookeeper_command(workdir, cfg_path):
    """The command running Apache ZooKeeper (QuorumPeerMain) on cfg_path,
    logging WARN and above to its output (log4j config under workdir/conf)."""
    conf_dir = os.path.join(workdir, "conf")
    os.makedirs(conf_dir, exist_ok=True)
    with open(os.path.join(conf_dir, "log4j.properties"), "w") as f:
        f.write("log4j.rootLogger=WARN, CONSOLE\n"
                "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
                "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.CONSOLE.layout.ConversionPattern=%d %-5p [%t] %c{1}: %m%n\n")
    return ["java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dznode.container.checkIntervalMs=1000",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.root.logger=WARN,CONSOLE",
            "-cp", zookeeper_classpath(conf_dir),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg_path]


class Server(Proc):
    """One server process (fjord-coord or Apache ZooKeeper) in a work dir: its
    own temp dir (removed by cleanup()), or `workdir` (kept)."""

    def __init__(self, kind, overrides=None, workdir=None):
        self.own_dir = workdir is None
        super().__init__("server", workdir or cleanup.temp_dir("fjord-%s-" % kind))
        self.kind = kind
        self.port = free_port()
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.overrides = dict(overrides or {})
        self.cfg_path = os.path.join(self.dir, "zoo.cfg")

    # -- config
    def config(self):
        cfg = {
            "tickTime": "2000",
            "dataDir": self.data_dir,
            "clientPort": str(self.port),
            "clientPortAddress": HOST,
            "4lw.commands.whitelist": "*",
            "maxClientCnxns": "60",
            # Both kinds serve an AdminServer on 8080 by default: parallel
            # servers would fight over it (tests that want one set a free port).
            "admin.enableServer": "false",
        }
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
        return hostport(self.port)

    def command(self):
        if self.kind == "fjord":
            return [coord_binary(), self.cfg_path]
        return zookeeper_command(self.dir, self.cfg_path)

    # -- lifecycle
    def start(self, wait=True, timeout=30.0):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.write_config()
        self.launch(self.command())
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

    def restart(self, wait=True):
        self.stop()
        return self.start(wait=wait)

    def cleanup(self):
        self.stop()
        if self.own_dir:
            cleanup.remove_dir(self.dir)

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


def close_kazoo(clients):
    """Stop and close kazoo clients, ignoring errors (teardown)."""
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:  # noqa: BLE001 - teardown goes on
            pass
