"""Workers: kazoo clients, each driven by its own thread until stopped (the
load of the ensemble tests and checker). A subclass fills self.clients and
self.threads; Writers is the load the ensemble's failover tests share."""
import threading
import time

from kazoo.exceptions import ConnectionLoss, NodeExistsError, OperationTimeoutError, SessionExpiredError
from kazoo.handlers.threading import KazooTimeoutError

from fjordtest.coord import close_kazoo


class Workers:
    join_timeout = 30

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.clients = []
        self.threads = []

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        """Stop the threads and wait for them (join_timeout s each at most)."""
        self.stop.set()
        for t in self.threads:
            t.join(self.join_timeout)

    def close(self):
        close_kazoo(self.clients)


class Writers(Workers):
    """n kazoo clients spread over the ensemble's live members, each creating
    unique znodes under `prefix` in a loop. Every acknowledged create is kept
    as (sent, acknowledged, path): a create whose reply was lost and whose
    retry finds the node counts as acknowledged then. Each client holds an
    ephemeral `prefix/eph-<i>` and its session id; kazoo state changes are
    kept as (client, state)."""

    def __init__(self, ens, n, prefix="/load", timeout=6.0):
        super().__init__()
        self.prefix = prefix
        self.acks = []
        self.errors = []
        self.states = []
        zk = ens.kazoo(timeout=10.0)
        zk.ensure_path(prefix)
        zk.stop()
        zk.close()
        members = ens.live()
        self.home = [members[i % len(members)] for i in range(n)]
        self.clients = [ens.kazoo(member=m, timeout=timeout) for m in self.home]
        self.sessions = [c.client_id[0] for c in self.clients]
        for i, c in enumerate(self.clients):
            c.create("%s/eph-%d" % (prefix, i), b"", ephemeral=True)
            c.add_listener(lambda state, i=i: self.states.append((i, state)))
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n)]

    def _run(self, i):
        zk = self.clients[i]
        k = 0
        while not self.stop.is_set():
            path = "%s/c%02d-%07d" % (self.prefix, i, k)
            k += 1
            sent = time.time()
            try:
                zk.create(path, b"x")
            except NodeExistsError:
                pass  # an earlier attempt whose reply was lost did commit
            except (ConnectionLoss, OperationTimeoutError, KazooTimeoutError):
                time.sleep(0.01)
                continue
            except SessionExpiredError as e:
                self.errors.append("client %d: %r" % (i, e))
                return
            with self.lock:
                self.acks.append((sent, time.time(), path))

    def paths(self):
        with self.lock:
            return [p for _, _, p in self.acks]

    def acked_after(self, t):
        """Acknowledgement times of the creates acknowledged after t."""
        with self.lock:
            return [a for _, a, _ in self.acks if a > t]

    def first_ack_sent_after(self, t):
        """When the first create sent after t was acknowledged (None: none yet)."""
        with self.lock:
            acks = [a for s, a, _ in self.acks if s >= t]
        return min(acks) if acks else None
