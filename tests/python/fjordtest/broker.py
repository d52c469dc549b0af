"""fjord-brokers on free 127.0.0.1 ports, and a Cluster: one coordinator
(fjord-coord, or Apache ZooKeeper 3.8 when fjord-coord is missing or
FJORD_BROKER_COORD=zookeeper; none with FJORD_BROKER_COORD=standalone) plus N
brokers in one temp dir.

Env:
  FJORD_BROKER_COORD   fjord | zookeeper | standalone (default: fjord if built, else zookeeper)
"""
import os
import time

from fjordtest import cleanup
from fjordtest.binaries import broker_binary, coord_binary, require
from fjordtest.coord import Server
from fjordtest.net import HOST, free_port, hostport
from fjordtest.proc import Proc


def coord_kind():
    k = os.environ.get("FJORD_BROKER_COORD")
    if k:
        return k
    if os.access(coord_binary(), os.X_OK):
        return "fjord"
    return "zookeeper"


class Broker(Proc):
    stop_timeout = 20.0

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
            self.wait_ready()
        return self

    def wait_ready(self):
        self.wait_listening(self.port)
        self.wait_registered()

    def wait_registered(self, timeout=30.0):
        """The port opens before registration; wait until Metadata lists us."""
        from fjordtest.kafka_wire import metadata_brokers
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if not self.alive():
                raise AssertionError("broker %d died; log:\n%s" % (self.id, self.log_tail()))
            try:
                if self.id in metadata_brokers(HOST, self.port):
                    return
            except Exception as e:  # noqa: BLE001 - keep polling
                last = e
            time.sleep(0.1)
        raise AssertionError("broker %d not ready (%r); log:\n%s" % (self.id, last, self.log_tail()))

    @property
    def bootstrap(self):
        return hostport(self.port)


class Cluster:
    """A coordinator (None when standalone) and n brokers, all started.

    Suites whose brokers carry more (a registry or metrics listener) subclass
    Broker and pass a factory `broker(workdir, id, zk_connect, overrides)`."""

    def __init__(self, n=1, overrides=None, coord=None, broker=Broker,
                 prefix="fjord-broker-test-"):
        self.dir = cleanup.temp_dir(prefix)
        self.coord = None
        self.brokers = []
        try:
            kind = coord or coord_kind()
            zk = ""
            if kind != "standalone":
                self.coord = Server(kind, {"tickTime": 500, "maxClientCnxns": 0,
                                             # Kafka's 18 s session fits.
                                             "maxSessionTimeout": 60000},
                                    workdir=os.path.join(self.dir, "coord")).start()
                zk = self.coord.hosts
            self.brokers = [broker(self.dir, i + 1, zk, overrides) for i in range(n)]
            for b in self.brokers:
                b.start(wait=False)
            for b in self.brokers:
                b.wait_ready()
            self.wait_known()
        except BaseException:
            self.close()
            raise

    def wait_known(self, timeout=30.0):
        """Until every live broker's Metadata lists every live broker: each learns
        of the others through the coordinator's watch, and a topic with as many
        replicas as brokers is refused (INVALID_REPLICATION_FACTOR, as Kafka
        does) by a broker that has not yet seen them all."""
        from fjordtest.kafka_wire import metadata_brokers
        from fjordtest.waits import wait_until
        live = [b for b in self.brokers if b.alive()]
        ids = {b.id for b in live}
        wait_until(lambda: all(ids <= set(metadata_brokers(HOST, b.port)) for b in live),
                   timeout, "every broker to know all %d" % len(ids), retry_on=(OSError,))

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers if b.alive())

    def broker(self, broker_id):
        return [b for b in self.brokers if b.id == broker_id][0]

    def restart_all(self):
        """Stop every broker and the coordinator, then start them again."""
        for b in self.brokers:
            b.stop()
        if self.coord:
            self.coord.stop()
            self.coord.start()
        for b in self.brokers:
            b.start(wait=False)
        for b in self.brokers:
            b.wait_ready()
        self.wait_known()

    def close(self):
        for b in self.brokers:
            b.stop()
        if self.coord:
            self.coord.stop()
        cleanup.remove_dir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def require_brokers(*more):
    """fjord-broker (and any further binaries, e.g. the fjord CLI) built."""
    require(broker_binary(), *more)


def clusters(base_overrides=None):
    """A context manager yielding make(n=1, overrides=None, coord=None) -> Cluster:
    clusters started with base_overrides, then overrides; all closed on exit."""
    require_brokers()

    def make(n=1, overrides=None, coord=None):
        o = dict(base_overrides or {})
        o.update(overrides or {})
        return Cluster(n, o, coord)

    return cleanup.made_by(make, Cluster.close)
