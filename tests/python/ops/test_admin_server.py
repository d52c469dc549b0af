"""fjord-coord's AdminServer against Apache ZooKeeper 3.8's, in the same test:
both started with `admin.enableServer=true` on free ports, the same kazoo
workload on each, then `GET /commands/<name>` compared key by key (srvr, conf,
cons, stat, wchs, isro, ruok, dump, envi, leader, voting_view; mntr: every key
fjord reports is one ZooKeeper reports, typed alike, and the keys dashboards
read are in both). Also: aliases, unknown commands, the /commands page,
methods other than GET, and leader/voting_view on a 3-member fjord ensemble.
"""
import json
import os
import time
import urllib.error
import urllib.request

import pytest

from fjordtest.binaries import ZK_JAR, coord_binary, require, skip_or_fail, zookeeper_available
from fjordtest.coord import Server
from fjordtest.ensemble import Ensemble, require_ensemble
from fjordtest.net import HOST, free_port, free_ports

# ZooKeeper's AdminServer runs on Jetty and Jackson, which Debian ships apart.
ADMIN_JARS = ["jetty9-server.jar", "jetty9-servlet.jar", "jetty9-http.jar", "jetty9-io.jar",
              "jetty9-util.jar", "jetty9-security.jar", "servlet-api.jar", "jackson-core.jar",
              "jackson-databind.jar", "jackson-annotations.jar"]

# What monitoring reads from mntr/monitor; both must report these.
MNTR_CORE = ["version", "server_state", "znode_count", "watch_count", "ephemerals_count",
             "approximate_data_size", "outstanding_requests", "num_alive_connections",
             "avg_latency", "min_latency", "max_latency", "packets_received", "packets_sent",
             "open_file_descriptor_count", "max_file_descriptor_count", "global_sessions",
             "local_sessions", "uptime", "last_client_response_size",
             "min_client_response_size", "max_client_response_size",
             "avg_readlatency", "p99_readlatency", "cnt_updatelatency", "p50_updatelatency",
             "avg_fsynctime", "cnt_fsynctime", "sum_fsynctime", "avg_election_time",
             "command", "error"]


class AdminZooKeeper(Server):
    """Apache ZooKeeper 3.8 with its AdminServer on (Jetty on the classpath)."""

    def command(self):
        cmd = super().command()
        cp = cmd.index("-cp") + 1
        extra = [os.path.join("/usr/share/java", j) for j in ADMIN_JARS]
        cmd[cp] = ":".join([cmd[cp]] + [p for p in extra if os.path.exists(p)])
        return [c for c in cmd if c != "-Dzookeeper.admin.enableServer=false"]


def admin_overrides():
    port = free_port()
    return port, {"admin.enableServer": "true", "admin.serverAddress": HOST,
                  "admin.serverPort": port}


@pytest.fixture(scope="module")
def pair():
    """(fjord, zookeeper) with AdminServers, after the same client workload."""
    require(coord_binary())
    ok, why = zookeeper_available()
    if not ok:
        skip_or_fail(why)
    missing = [j for j in ADMIN_JARS if not os.path.exists(os.path.join("/usr/share/java", j))]
    if missing:
        skip_or_fail("ZooKeeper's AdminServer needs %s (Debian: libjetty9-java, "
                     "libjackson2-databind-java)" % missing)
    servers, clients = [], []
    try:
        for cls, kind in ((Server, "fjord"), (AdminZooKeeper, "zookeeper")):
            port, ov = admin_overrides()
            s = cls(kind, ov)
            s.admin_port = port
            servers.append(s)
            s.start(timeout=60)
        for s in servers:
            zk = s.kazoo()
            clients.append(zk)
            zk.create("/adm", b"x" * 10)
            zk.create("/adm/e", b"y", ephemeral=True)
            zk.get("/adm", watch=lambda e: None)
            zk.exists("/adm/none", watch=lambda e: None)
        for s in servers:
            wait_admin(s.admin_port)
        yield servers[0], servers[1]
    finally:
        for zk in clients:
            zk.stop()
            zk.close()
        for s in servers:
            s.cleanup()


def get(port, path, method="GET"):
    req = urllib.request.Request("http://%s:%d%s" % (HOST, port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def cmd(port, name):
    status, ctype, body = get(port, "/commands/" + name)
    assert status == 200, (name, status, body)
    assert ctype.startswith("application/json"), ctype
    return json.loads(body)


def wait_admin(port, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            return cmd(port, "ruok")
        except (OSError, AssertionError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def kind_of(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def same_keys(f, z, where):
    """Key by key, recursively (dicts, and the first element of lists of dicts)."""
    assert isinstance(f, dict) and isinstance(z, dict), where
    assert sorted(f) == sorted(z), "%s: fjord-only %s, zookeeper-only %s" % (
        where, sorted(set(f) - set(z)), sorted(set(z) - set(f)))
    for k in f:
        if f[k] is None or z[k] is None:
            continue
        assert kind_of(f[k]) == kind_of(z[k]), "%s.%s: %r vs %r" % (where, k, f[k], z[k])
        if isinstance(f[k], dict):
            same_keys(f[k], z[k], "%s.%s" % (where, k))
        elif isinstance(f[k], list) and f[k] and z[k] and isinstance(f[k][0], dict):
            same_keys(f[k][0], z[k][0], "%s.%s[0]" % (where, k))


@pytest.mark.parametrize("name", ["srvr", "server_stats", "stat", "conf", "cons", "wchs",
                                  "isro", "ruok", "dump", "leader", "voting_view"])
def test_same_keys_as_zookeeper(pair, name):
    fj, zk = pair
    f, z = cmd(fj.admin_port, name), cmd(zk.admin_port, name)
    if name == "dump":
        # Its inner keys are expiry times and session ids: compare the shape.
        assert sorted(f) == sorted(z), (f, z)
        for k in ("expiry_time_to_session_ids", "session_id_to_ephemeral_paths"):
            for d in (f[k], z[k]):
                assert all(s.isdigit() and isinstance(v, list) for s, v in d.items()), d
        return
    same_keys(f, z, name)
    assert f["command"] == z["command"], (f["command"], z["command"])
    assert f.get("error") == z.get("error"), (f.get("error"), z.get("error"))


def test_values_describe_the_workload(pair):
    for s in pair:
        srvr = cmd(s.admin_port, "srvr")
        assert srvr["server_stats"]["server_state"] == "standalone"
        assert srvr["server_stats"]["num_alive_client_connections"] == 1
        assert srvr["node_count"] >= 6
        assert srvr["read_only"] is False
        cons = cmd(s.admin_port, "cons")["connections"]
        assert len(cons) == 1 and cons[0]["packets_received"] >= 5, cons
        assert cons[0]["remote_socket_address"].startswith("127.0.0.1:")
        wchs = cmd(s.admin_port, "wchs")
        assert (wchs["num_connections"], wchs["num_paths"], wchs["num_total_watches"]) == (1, 2, 2)
        dump = cmd(s.admin_port, "dump")
        assert list(dump["session_id_to_ephemeral_paths"].values()) == [["/adm/e"]], dump
        assert sum(len(v) for v in dump["expiry_time_to_session_ids"].values()) == 1, dump
        conf = cmd(s.admin_port, "conf")
        assert conf["client_port"] == s.port and conf["tick_time"] == 2000
        assert conf["max_client_cnxns"] == 60 and conf["min_session_timeout"] == 4000
        assert cmd(s.admin_port, "isro")["read_only"] is False


def test_monitor_keys(pair):
    fj, zk = pair
    f, z = cmd(fj.admin_port, "mntr"), cmd(zk.admin_port, "monitor")
    missing = [k for k in MNTR_CORE if k not in f or k not in z]
    assert not missing, missing
    # Fjord's own figures (the free-space guard's) carry a fjord_ prefix; every
    # other key is ZooKeeper's.
    extra = sorted(k for k in set(f) - set(z) if not k.startswith("fjord_"))
    assert not extra, "fjord reports keys ZooKeeper's monitor does not: %s" % extra
    for k in z.keys() & f.keys():
        if f[k] is not None and z[k] is not None:
            assert kind_of(f[k]) == kind_of(z[k]), (k, f[k], z[k])
    assert f["command"] == "monitor" and f["error"] is None
    assert f["znode_count"] == cmd(fj.admin_port, "srvr")["node_count"]
    assert f["ephemerals_count"] == 1 and f["watch_count"] == 2
    assert f == {**f, "command": "monitor"}


def test_environment(pair):
    fj, zk = pair
    f, z = cmd(fj.admin_port, "envi"), cmd(zk.admin_port, "environment")
    # No JVM here: ZooKeeper's java.* keys are the only ones fjord leaves out.
    assert sorted(k for k in z if not k.startswith("java.") and not k.startswith("os.memory")) \
        == sorted(f), (sorted(f), sorted(z))
    assert f["os.name"] == z["os.name"] and f["os.arch"] == z["os.arch"]
    assert f["zookeeper.version"].startswith("3.8.0")


def test_unknown_command_and_index(pair):
    fj, zk = pair
    assert cmd(fj.admin_port, "nosuch") == cmd(zk.admin_port, "nosuch") == {
        "command": "nosuch", "error": "Unknown command: nosuch"}
    _, _, fpage = get(fj.admin_port, "/commands")
    _, _, zpage = get(zk.admin_port, "/commands")
    for name in ["configuration", "connections", "dump", "environment", "is_read_only",
                 "leader", "monitor", "ruok", "server_stats", "stats", "voting_view",
                 "watch_summary"]:
        link = '<a href="/commands/%s">%s</a>' % (name, name)
        assert link in fpage and link in zpage, name
    # Only GET (and HEAD) are served, on both.
    assert get(fj.admin_port, "/commands/ruok", "POST")[0] == 405
    assert get(zk.admin_port, "/commands/ruok", "POST")[0] == 405
    assert get(fj.admin_port, "/nowhere")[0] == 404
    assert get(zk.admin_port, "/nowhere")[0] == 404


def test_off_when_disabled():
    require(coord_binary())
    port = free_port()
    s = Server("fjord", {"admin.enableServer": "false", "admin.serverAddress": HOST,
                         "admin.serverPort": port})
    try:
        s.start()
        with pytest.raises(OSError):
            urllib.request.urlopen("http://%s:%d/commands" % (HOST, port), timeout=2)
    finally:
        s.cleanup()


def test_ensemble_leader_and_voting_view():
    require_ensemble()
    e = Ensemble(3)
    ports = free_ports(3)
    for m, port in zip(e.members, ports):
        m.admin_port = port
        m.write_config({"admin.enableServer": "true", "admin.serverAddress": HOST,
                        "admin.serverPort": str(port)})
    try:
        e.start()
        leader = e.wait_leader()
        for m in e.members:
            wait_admin(m.admin_port)
            # A fresh voter follows as soon as it voted; the membership (the
            # leader's address, the voting view) reaches it with the leader's
            # first entries.
            deadline = time.time() + 20
            while len(cmd(m.admin_port, "voting_view")["current_config"]) < 3 \
                    and time.time() < deadline:
                time.sleep(0.05)
            lead = cmd(m.admin_port, "leader")
            assert lead["is_leader"] == (m is leader), (m.sid, lead)
            assert lead["leader_id"] == leader.sid and lead["leader_ip"] == HOST, lead
            assert lead["error"] is None
            view = cmd(m.admin_port, "voting_view")["current_config"]
            assert sorted(view) == ["1", "2", "3"], view
            for x in e.members:
                v = view[str(x.sid)]
                assert v["server_addresses"] == ["%s:%d" % (HOST, x.peer_port)], v
                assert v["election_addresses"] == ["%s:%d" % (HOST, x.election_port)], v
                assert v["learner_type"] == "participant"
            srvr = cmd(m.admin_port, "srvr")["server_stats"]["server_state"]
            assert srvr == ("leader" if m is leader else "follower"), srvr
            conf = cmd(m.admin_port, "conf")
            assert conf["server_id"] == m.sid
    finally:
        e.cleanup()


def test_ensemble_same_keys_as_zookeeper(monkeypatch):
    """A 3-member fjord ensemble and a 3-member ZooKeeper 3.8 ensemble, each
    member with its AdminServer: leader's and a follower's conf, srvr, leader and
    voting_view key by key; monitor's keys all among ZooKeeper's."""
    require_ensemble()
    ok, why = zookeeper_available()
    if not ok:
        skip_or_fail(why)
    import fjordtest.ensemble as fe
    plain = fe.zookeeper_command

    def with_admin(workdir, cfg):
        cmd = plain(workdir, cfg)
        cp = cmd.index("-cp") + 1
        cmd[cp] = ":".join([cmd[cp]] + [os.path.join("/usr/share/java", j) for j in ADMIN_JARS])
        return [c for c in cmd if c != "-Dzookeeper.admin.enableServer=false"]

    monkeypatch.setattr(fe, "zookeeper_command", with_admin)
    seen = {}
    for kind in ("zookeeper", "fjord"):
        e = Ensemble(3, kind=kind)
        for m, port in zip(e.members, free_ports(3)):
            m.admin_port = port
            m.write_config({"admin.enableServer": "true", "admin.serverAddress": HOST,
                            "admin.serverPort": str(port)})
        try:
            e.start(timeout=60)
            leader = e.wait_leader(60)
            follower = [m for m in e.members if m is not leader][0]
            for role, m in (("leader", leader), ("follower", follower)):
                wait_admin(m.admin_port)
                # Until the leader has seen every follower sync, its counts lag.
                deadline = time.time() + 20
                while role == "leader" and time.time() < deadline:
                    if cmd(m.admin_port, "mntr").get("synced_followers") == 2:
                        break
                    time.sleep(0.2)
                for c in ("conf", "srvr", "leader", "voting_view", "mntr"):
                    seen[(kind, role, c)] = cmd(m.admin_port, c)
        finally:
            e.cleanup()
    for role in ("leader", "follower"):
        for c in ("conf", "srvr", "leader", "voting_view"):
            same_keys(seen[("fjord", role, c)], seen[("zookeeper", role, c)], "%s %s" % (role, c))
        f, z = seen[("fjord", role, "mntr")], seen[("zookeeper", role, "mntr")]
        assert not sorted(set(f) - set(z)), (role, sorted(set(f) - set(z)))
        assert f["server_state"] == z["server_state"] == role
        assert f["peer_state"] == z["peer_state"], (f["peer_state"], z["peer_state"])
        assert f["quorum_size"] == z["quorum_size"] == 3
    assert seen[("fjord", "leader", "mntr")]["synced_followers"] == 2
