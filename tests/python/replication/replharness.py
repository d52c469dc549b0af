"""The replication suite's cluster: 3 brokers (and a coordinator) with a short
replica lag and session timeout, so a stopped follower leaves the ISR and a dead
leader is replaced within the tests' patience; `part0` and `Stream` (an
idempotent acks=all producer timing its acknowledgements) for the failover
tests. Also used by scripts/bench-replication.sh and
scripts/bench-failover-broker.sh."""
import os
import threading
import time

from fjordtest import waits
from fjordtest.broker import Broker, Cluster
from fjordtest.kafka import describe

DEFAULT_OVERRIDES = {
    "replica.lag.time.max.ms": 3000,
    "zookeeper.session.timeout.ms": 4000,
    "min.insync.replicas": 1,
}


def start_cluster(n=3, overrides=None, eio=False):
    """n brokers; with eio each carries `injector`, a fjordtest.faults
    Injector over its log dir (the checker's EIO nemesis arms it)."""
    o = dict(DEFAULT_OVERRIDES)
    o.update(overrides or {})
    if not eio:
        return Cluster(n, overrides=o)
    from fjordtest.faults import Injector

    def broker(workdir, bid, zk, overrides):
        b = Broker(workdir, bid, zk, overrides)
        ctl = os.path.join(workdir, "fault-%d" % bid)
        os.makedirs(ctl, exist_ok=True)
        b.injector = Injector(b.log_dir, ctl_dir=ctl)
        b.env.update(b.injector.env)
        return b

    return Cluster(n, overrides=o, broker=broker)


def wait_until(pred, timeout, what, interval=0.2):
    """fjordtest's wait_until, retrying through errors: `fjord topic describe`
    fails now and then while leaders move."""
    return waits.wait_until(pred, timeout, what, interval, retry_on=Exception)


def part0(c, topic, skip=()):
    """Partition 0 as `fjord topic describe` sees it, asking only brokers not
    in skip (a paused broker would hold the CLI up)."""
    d, _ = describe(",".join(b.bootstrap for b in c.brokers if b.alive() and b.id not in skip),
                    topic)
    return d[0]["partitions"][0]


class Stream:
    """An idempotent acks=all producer with the client's defaults, writing
    numbered messages every few ms; remembers when each was sent and acked."""

    def __init__(self, bootstrap, topic):
        from confluent_kafka import Producer
        self.topic = topic
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                           "enable.idempotence": True, "log_level": 3})
        self.sent_at = {}
        self.acked = {}          # value -> (offset, ack time)
        self.errors = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _dr(self, err, msg):
        now = time.time()
        with self.lock:
            if err is None:
                self.acked[msg.value()] = (msg.offset(), now)
            else:
                self.errors.append(err)

    def _run(self):
        n = 0
        while not self.stop_ev.is_set():
            v = b"%09d" % n
            try:
                self.p.produce(self.topic, value=v, partition=0, on_delivery=self._dr)
                self.sent_at[v] = time.time()
                n += 1
            except BufferError:
                pass
            self.p.poll(0.005)

    def first_ack_after(self, t0):
        """Seconds from t0 to the first ack of a message sent after t0."""
        with self.lock:
            acks = [at for v, (_, at) in self.acked.items() if self.sent_at.get(v, 0) > t0]
        return min(acks) - t0 if acks else None

    def close(self):
        self.stop_ev.set()
        self.t.join(10)
        assert self.p.flush(120) == 0
        assert not self.errors, self.errors[:3]
