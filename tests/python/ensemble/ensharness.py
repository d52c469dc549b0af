"""Start, kill and restart a fjord-coord ensemble: N real processes on free
127.0.0.1 ports, each with its own dataDir/myid, configured with ZooKeeper's
`server.N=host:peerPort:electionPort` lines. Processes are stopped by PID."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "coord"))
import zkwire  # noqa: E402

HOST = "127.0.0.1"


def fjord_coord():
    d = os.environ.get("FJORD_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/fjord-target")), "release")
    return os.path.join(d, "fjord-coord")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def four(port, cmd, timeout=2.0):
    try:
        return zkwire.four_letter(port, cmd, HOST, timeout)
    except OSError:
        return ""


class Member:
    def __init__(self, ens, sid, client_port, peer_port, election_port):
        self.ens = ens
        self.sid = sid
        self.port = client_port
        self.peer_port = peer_port
        self.election_port = election_port
        self.dir = os.path.join(ens.dir, "m%d" % sid)
        self.data_dir = os.path.join(self.dir, "data")
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        self.log = os.path.join(self.dir, "coord.log")
        self.proc = None

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
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([fjord_coord(), self.cfg], stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL)
        logf.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def srvr(self):
        out = {}
        for line in four(self.port, "srvr").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    def mode(self):
        return self.srvr().get("Mode")

    def zxid(self):
        z = self.srvr().get("Zxid")
        return int(z, 16) if z else None

    def log_tail(self, n=3000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


class Ensemble:
    def __init__(self, n, extra=None):
        self.dir = tempfile.mkdtemp(prefix="fjord-ensemble-")
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
        for m in self.members:
            m.start()
        self.wait_leader(timeout)
        return self

    def hosts(self, members=None):
        return ",".join("%s:%d" % (HOST, m.port) for m in (members or self.members))

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
            + "\n" + "\n".join(m.log_tail() for m in self.members)))

    def kazoo(self, member=None, timeout=5.0, **kw):
        from kazoo.client import KazooClient
        hosts = self.hosts([member] if member else None)
        if member is not None:
            # Own member first, then the others, so it can fail over.
            hosts = ",".join(["%s:%d" % (HOST, member.port)] + [
                "%s:%d" % (HOST, m.port) for m in self.members if m is not member])
        zk = KazooClient(hosts=hosts, timeout=timeout, randomize_hosts=False, **kw)
        zk.start(timeout=10)
        return zk

    def cleanup(self):
        for m in self.members:
            m.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)
