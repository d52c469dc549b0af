"""Workers: kazoo clients, each driven by its own thread until stopped (the
load of the ensemble tests and checker). A subclass fills self.clients and
self.threads."""
import threading

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
