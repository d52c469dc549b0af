"""Brokers that also serve the Schema Registry's REST API on a free port of
their own (`schema.registry.listeners`), for every suite that needs a
registry: the registry's own, Connect's AvroConverter, the console."""
import requests

from fjordtest.broker import Broker, Cluster
from fjordtest.net import HOST, free_port
from fjordtest.waits import wait_until


class RegistryBroker(Broker):
    """A broker whose config also carries its registry listener."""

    def __init__(self, workdir, broker_id, zk_connect, overrides=None):
        super().__init__(workdir, broker_id, zk_connect, overrides)
        self.sr_port = free_port()

    def config(self):
        cfg = super().config()
        cfg["schema.registry.listeners"] = "http://%s:%d" % (HOST, self.sr_port)
        return cfg

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.sr_port)

    def wait_ready(self):
        super().wait_ready()
        self.wait_listening(self.sr_port)
        wait_until(lambda: requests.get(self.url + "/subjects", timeout=5).status_code == 200,
                   timeout=30, what="registry of broker %d answering" % self.id,
                   retry_on=(requests.RequestException,))


class RegistryCluster(Cluster):
    """A coordinator (none when standalone) and n registry brokers, started."""

    def __init__(self, n=1, overrides=None, coord=None):
        super().__init__(n, overrides, coord, broker=RegistryBroker,
                         prefix="fjord-registry-test-")

    @property
    def url(self):
        return self.brokers[0].url
