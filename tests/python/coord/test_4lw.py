"""Four-letter words on the client port, behind 4lw.commands.whitelist."""
import re

import pytest

from fjordtest import zkwire


def mntr(server):
    out = server.four("mntr")
    kv = {}
    for line in out.strip().splitlines():
        k, sep, v = line.partition("\t")
        assert sep, "mntr line without a tab: %r" % line
        kv[k] = v
    return kv


def test_ruok(server):
    assert server.four("ruok") == "imok"


@pytest.mark.parametrize("cmd", ["srvr", "stat"])
def test_srvr_stat(server, cmd):
    out = server.four(cmd)
    assert out.startswith("Zookeeper version: "), out
    lines = out.splitlines()
    assert "Mode: standalone" in lines, out
    assert re.search(r"^Node count: \d+$", out, re.M), out
    assert re.search(r"^Zxid: 0x[0-9a-f]+$", out, re.M), out
    assert re.search(r"^Connections: \d+$", out, re.M), out
    assert re.search(r"^Latency min/avg/max: ", out, re.M), out
    if cmd == "stat":
        assert "Clients:" in lines, out


def test_mntr(server, new_wire, root):
    kv = mntr(server)
    for key in ("zk_version", "zk_server_state", "zk_znode_count", "zk_ephemerals_count",
                "zk_num_alive_connections", "zk_watch_count", "zk_outstanding_requests",
                "zk_approximate_data_size", "zk_avg_latency", "zk_packets_received",
                "zk_packets_sent"):
        assert key in kv, "mntr lacks %s:\n%s" % (key, kv)
    assert kv["zk_server_state"] == "standalone"
    n0, e0 = int(kv["zk_znode_count"]), int(kv["zk_ephemerals_count"])
    assert n0 >= 4  # /, /zookeeper, /zookeeper/quota, /zookeeper/config, the test root
    c = new_wire()
    c.create(root + "/m1")
    c.create(root + "/m2", flags=zkwire.EPHEMERAL)
    c.exists(root + "/m1", watch=True)
    kv = mntr(server)
    assert int(kv["zk_znode_count"]) == n0 + 2
    assert int(kv["zk_ephemerals_count"]) == e0 + 1
    assert int(kv["zk_watch_count"]) >= 1
    assert int(kv["zk_num_alive_connections"]) >= 1
    c.delete(root + "/m1")
    c.delete(root + "/m2")
    kv = mntr(server)
    assert int(kv["zk_znode_count"]) == n0
    assert int(kv["zk_ephemerals_count"]) == e0


def test_conf_cons_envi_wchs_isro(server, new_wire, root):
    c = new_wire()
    c.exists(root, watch=True)
    conf = server.four("conf")
    assert "clientPort=%d" % server.port in conf.splitlines(), conf
    assert "tickTime=500" in conf.splitlines(), conf
    assert re.search(r"^dataDir=", conf, re.M), conf
    assert "maxClientCnxns=60" in conf.splitlines(), conf
    assert "minSessionTimeout=1000" in conf.splitlines(), conf
    assert "maxSessionTimeout=10000" in conf.splitlines(), conf
    cons = server.four("cons")
    assert "sid=0x%x" % c.session_id in cons, cons
    assert re.search(r"^ /127\.0\.0\.1:\d+\[\d\]\(queued=", cons, re.M), cons
    envi = server.four("envi")
    assert envi.startswith("Environment:\n"), envi
    assert "zookeeper.version=" in envi, envi
    wchs = server.four("wchs")
    m = re.search(r"^(\d+) connections watching (\d+) paths\nTotal watches:(\d+)$", wchs, re.M)
    assert m and int(m.group(1)) >= 1 and int(m.group(3)) >= 1, wchs
    assert server.four("isro") == "rw"


@pytest.fixture
def restricted(make_server):
    return make_server({"4lw.commands.whitelist": "ruok, srvr"})


def test_whitelist(restricted):
    assert restricted.four("ruok") == "imok"
    assert restricted.four("srvr").startswith("Zookeeper version: ")
    for cmd in ("mntr", "stat", "envi", "conf", "cons"):
        assert restricted.four(cmd) == "%s is not executed because it is not in the whitelist.\n" % cmd
    # the server keeps serving sessions
    c = restricted.wire()
    assert c.exists("/") is not None
    c.close()


def test_srvr_line_order(server):
    keys = [l.split(":", 1)[0] for l in server.four("srvr").splitlines() if l]
    assert keys == ["Zookeeper version", "Latency min/avg/max", "Received", "Sent", "Connections",
                    "Outstanding", "Zxid", "Mode", "Node count"], keys


def test_mntr_classic_keys(server):
    """The keys monitoring tools have read since ZooKeeper 3.4 (e.g. the Prometheus
    zookeeper exporters): all present, numeric where ZooKeeper's are."""
    kv = mntr(server)
    numeric = ["zk_avg_latency", "zk_max_latency", "zk_min_latency", "zk_packets_received",
               "zk_packets_sent", "zk_num_alive_connections", "zk_outstanding_requests",
               "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
               "zk_approximate_data_size", "zk_open_file_descriptor_count",
               "zk_max_file_descriptor_count"]
    missing = [k for k in ["zk_version", "zk_server_state"] + numeric if k not in kv]
    assert not missing, "mntr lacks %s" % missing
    for k in numeric:
        float(kv[k])


def test_cons_session_fields(server, new_wire):
    """cons: one line per connection; a session's line carries ZooKeeper's fields."""
    c = new_wire(timeout_ms=4000)
    c.exists("/")
    line = [l for l in server.four("cons").splitlines() if "sid=0x%x" % c.session_id in l]
    assert len(line) == 1, server.four("cons")
    m = re.match(r"^ /127\.0\.0\.1:\d+\[\d\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x[0-9a-f]+,(.*)\)$", line[0])
    assert m, line[0]
    fields = dict(f.split("=", 1) for f in m.group(1).split(","))
    for k in ("lop", "est", "to", "lcxid", "lzxid", "lresp", "llat", "minlat", "avglat", "maxlat"):
        assert k in fields, "cons lacks %s: %s" % (k, line[0])
    assert fields["to"] == "4000" and fields["lop"] == "EXIS", line[0]


def test_kazoo_server_version(zk):
    """kazoo reads the version from envi: it must parse as 3.8.x."""
    v = zk.server_version()
    assert tuple(v[:2]) == (3, 8), v
