"""A fjord-coord ensemble (or, with kind="zookeeper", an Apache ZooKeeper 3.8
one for comparison): N real processes on free 127.0.0.1 ports, each with
its own dataDir/myid, configured with ZooKeeper's
`server.N=host:peerPort:electionPort;clientHost:clientPort` lines; started,
killed, paused and restarted by PID."""
import contextlib
import os
import time

from fjordtest import cleanup, zkwire
from fjordtest.binaries import coord_binary, require
from fjordtest.coord import zookeeper_command
from fjordtest.net import HOST, free_ports, hostport
from fjordtest.proc import Proc


class Member(Proc):
    def __init__(self, ens, sid, client_port, peer_port, election_port):
        super().__init__("coord", os.path.join(ens.dir, "m%d" % sid))
        self.ens = ens
        self.sid = sid
        self.port = client_port
        self.peer_port = peer_port
        self.election_port = election_port
        self.data_dir = os.path.join(self.dir, "data")
        self.cfg = os.path.join(self.dir, "zoo.cfg")

    def write_config(self, extra):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write("%d\n" % self.sid)
        lines = {
            "tickTime": "500",
            "dataDir": self.data_dir,
            "clientPort": str(self.port),
            "clientPortAddress": HOST,
            "initLimit": "10",
            "syncLimit": "5",
            "4lw.commands.whitelist": "*",
            "maxClientCnxns": "0",
            # No AdminServer on the shared default port 8080 (both kinds).
            "admin.enableServer": "false",
        }
        lines.update(extra)
        with open(self.cfg, "w") as f:
            for k, v in lines.items():
                f.write("%s=%s\n" % (k, v))
            for m in self.ens.members:
                f.write("server.%d=%s\n" % (m.sid, m.spec()))

    def spec(self):
        """ZooKeeper's `host:peer:election;clientHost:clientPort` (reconfig syntax)."""
        return "%s:%d:%d;%s:%d" % (HOST, self.peer_port, self.election_port, HOST, self.port)

    def start(self):
        if self.ens.kind == "zookeeper":
            self.launch(zookeeper_command(self.dir, self.cfg))
        else:
            self.launch([coord_binary(), self.cfg])

    def srvr(self):
        out = {}
        try:
            text = zkwire.four_letter(self.port, "srvr", HOST, 2.0)
        except OSError:
            return out
        for line in text.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    def mode(self):
        return self.srvr().get("Mode")

    def zxid(self):
        z = self.srvr().get("Zxid")
        return int(z, 16) if z else None


class Ensemble:
    def __init__(self, n, extra=None, kind="fjord"):
        self.kind = kind
        self.dir = cleanup.temp_dir("fjord-ensemble-" if kind == "fjord" else "zk-ensemble-")
        ports = free_ports(3 * n)
        self.members = [Member(self, i + 1, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2])
                        for i in range(n)]
        for m in self.members:
            m.write_config(extra or {})

    def add_member(self, extra=None):
        """A new member (next id, fresh ports) whose config lists every member
        so far plus itself, as ZooKeeper's docs say to start a joining server;
        it is started and waits until a `reconfig` adds it."""
        ports = free_ports(3)
        m = Member(self, max(x.sid for x in self.members) + 1, *ports)
        self.members.append(m)
        m.write_config(extra or {})
        m.start()
        return m

    def start(self, timeout=20.0):
        """Starts every member; returns once one leads and every other one
        follows (a member that did not vote in the first election says
        `observer` until the membership entry reaches it)."""
        for m in self.members:
            m.start()
        self.wait_leader(timeout)
        deadline = time.time() + timeout
        while time.time() < deadline and any(
                m.mode() not in ("leader", "follower") for m in self.members):
            time.sleep(0.05)
        return self

    def hosts(self, members=None):
        return ",".join(hostport(m.port) for m in (members or self.members))

    def live(self):
        return [m for m in self.members if m.alive()]

    def leader(self):
        leaders = [m for m in self.live() if m.mode() == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_leader(self, timeout=20.0, exclude=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            lead = self.leader()
            if lead is not None and lead is not exclude:
                return lead
            time.sleep(0.05)
        raise AssertionError("no single leader within %.0fs:\n%s" % (
            timeout, "\n".join("m%d %s %s" % (m.sid, m.alive(), m.mode()) for m in self.members)
            + "\n" + "\n".join(m.log_tail(3000) for m in self.members)))

    def kazoo(self, member=None, timeout=5.0, **kw):
        from kazoo.client import KazooClient
        hosts = self.hosts([member] if member else None)
        if member is not None:
            # Own member first, then the others, so it can fail over.
            hosts = ",".join([hostport(member.port)] + [
                hostport(m.port) for m in self.members if m is not member])
        zk = KazooClient(hosts=hosts, timeout=timeout, randomize_hosts=False, **kw)
        zk.start(timeout=10)
        return zk

    def cleanup(self):
        for m in self.members:
            m.kill9()
        cleanup.remove_dir(self.dir)


def require_ensemble():
    """fjord-coord built and kazoo installed (skip_or_fail / skip otherwise)."""
    require(coord_binary())
    import pytest
    pytest.importorskip("kazoo")


@contextlib.contextmanager
def running(n, extra=None):
    """A started ensemble of n members, cleaned up on exit (for fixtures)."""
    require_ensemble()
    e = Ensemble(n, extra)
    try:
        yield e.start()
    finally:
        e.cleanup()
