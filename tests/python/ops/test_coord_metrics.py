"""fjord-coord's Prometheus endpoint, as ZooKeeper's PrometheusMetricsProvider
(`metricsProvider.className` turns it on; `metricsProvider.httpHost`/`httpPort`;
GET /metrics): ZooKeeper's names and types, values that move with the load,
`promtool check metrics`, and the ensemble gauges (quorum_size, synced_followers,
election_time) on a 3-member ensemble. Real processes, real kazoo clients.

(Debian's ZooKeeper 3.8 does not ship the Prometheus provider jar, so the names
come from ZooKeeper's sources: gauges registered by ZooKeeperServer/QuorumPeer,
summaries from ServerMetrics; and from the `mntr` of a real ZooKeeper 3.8.)
"""
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from fjordtest.binaries import coord_binary, require, require_binaries
from fjordtest.coord import Server, four_letter
from fjordtest.ensemble import Ensemble, require_ensemble
from fjordtest.net import HOST, free_port, free_ports

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

# ZooKeeper's gauge names that dashboards query (Grafana's ZooKeeper dashboards,
# the ZooKeeper docs' Prometheus section) plus the rest of what mntr reports.
GAUGES = ["znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
          "outstanding_requests", "num_alive_connections", "avg_latency", "min_latency",
          "max_latency", "packets_received", "packets_sent", "open_file_descriptor_count",
          "max_file_descriptor_count", "global_sessions", "local_sessions", "uptime",
          "last_client_response_size",
          "min_client_response_size", "max_client_response_size"]
# ZooKeeper's summaries: ADVANCED ones with 0.5/0.9/0.99, BASIC with 0.5.
SUMMARIES = {"readlatency": ["0.5", "0.9", "0.99"], "updatelatency": ["0.5", "0.9", "0.99"],
             "fsynctime": ["0.5"], "election_time": ["0.5"]}
PROCESS = ["process_cpu_seconds_total", "process_open_fds", "process_max_fds",
           "process_resident_memory_bytes", "process_virtual_memory_bytes",
           "process_start_time_seconds"]


def scrape(port):
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port), timeout=5) as r:
        assert r.status == 200
        ctype = r.headers.get("Content-Type")
        return r.read().decode(), ctype


def parse(text):
    """{name: type} and {(name, labels): value} from the text format."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        elif line and not line.startswith("#"):
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
            assert m, "unparsable sample line %r" % line
            samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return types, samples


def types_of(text):
    return parse(text)[0]


def value(samples, name, labels=""):
    return samples[(name, labels)]


@pytest.fixture
def coord():
    require(coord_binary())
    port = free_port()
    s = Server("fjord", {"metricsProvider.className": PROVIDER,
                         "metricsProvider.httpHost": HOST,
                         "metricsProvider.httpPort": port})
    s.metrics_port = port
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


def test_zookeeper_names_and_types(coord):
    text, ctype = scrape(coord.metrics_port)
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    types, samples = parse(text)
    for g in GAUGES:
        assert types.get(g) == "gauge", "%s: %s" % (g, types.get(g))
        assert (g, "") in samples, g
    for s, quantiles in SUMMARIES.items():
        assert types.get(s) == "summary", s
        got = sorted(l for (n, l) in samples if n == s)
        assert got == sorted('{quantile="%s"}' % q for q in quantiles), (s, got)
        assert (s + "_count", "") in samples and (s + "_sum", "") in samples, s
    for p in PROCESS:
        assert (p, "") in samples, p
    assert types["process_cpu_seconds_total"] == "counter"
    assert value(samples, "process_resident_memory_bytes") > 1 << 20
    # Ensemble gauges only in ensemble mode, as ZooKeeper's.
    assert ("quorum_size", "") not in samples
    # Every numeric mntr value is on the endpoint under the same name.
    mntr = dict(l.split("\t", 1) for l in coord.four("mntr").splitlines() if "\t" in l)
    for k, v in mntr.items():
        name = k[len("zk_"):]
        if re.match(r"^(avg|min|max|cnt|sum|p50|p95|p99|p999)_(readlatency|updatelatency|fsynctime|election_time)$", name) \
                or name in ("version", "server_state", "last_zxid"):
            continue
        assert (name, "") in samples, "mntr's %s missing from /metrics" % k


def test_values_move_with_the_load(coord):
    _, before = parse(scrape(coord.metrics_port)[0])
    zk = coord.kazoo()
    try:
        zk.create("/m", b"")
        for i in range(20):
            zk.create("/m/n%d" % i, b"x" * 100)
        zk.create("/m/eph", b"", ephemeral=True)
        for i in range(30):
            zk.get("/m/n%d" % (i % 20), watch=lambda e: None)
        _, after = parse(scrape(coord.metrics_port)[0])
        assert value(after, "znode_count") == value(before, "znode_count") + 22
        assert value(after, "ephemerals_count") == value(before, "ephemerals_count") + 1
        assert value(after, "watch_count") >= value(before, "watch_count") + 20
        assert value(after, "approximate_data_size") >= value(before, "approximate_data_size") + 2000
        assert value(after, "global_sessions") == value(before, "global_sessions") + 1
        assert value(after, "num_alive_connections") >= 1
        assert value(after, "packets_received") >= value(before, "packets_received") + 52
        assert value(after, "packets_sent") >= value(before, "packets_sent") + 52
        assert value(after, "updatelatency_count") >= value(before, "updatelatency_count") + 22
        assert value(after, "readlatency_count") >= value(before, "readlatency_count") + 30
        assert value(after, "fsynctime_count") > value(before, "fsynctime_count")
        assert value(after, "fsynctime_sum") > 0
        q = value(after, "updatelatency", '{quantile="0.99"}')
        assert q == q and q > 0, q  # not NaN once writes were answered
        assert value(after, "max_client_response_size") >= 100  # a getData of 100 bytes
        assert value(after, "uptime") > value(before, "uptime")
    finally:
        zk.stop()
        zk.close()
    # The session's ephemeral is gone once it closes.
    deadline = time.time() + 10
    while time.time() < deadline:
        _, last = parse(scrape(coord.metrics_port)[0])
        if value(last, "ephemerals_count") == value(before, "ephemerals_count"):
            break
        time.sleep(0.1)
    assert value(last, "ephemerals_count") == value(before, "ephemerals_count")
    assert value(last, "global_sessions") == value(before, "global_sessions")


# ZooKeeper's own gauge names end in _count; promtool's linter remarks on that
# (a lint note, not a format error), and they stay because dashboards use them.
COUNT_SUFFIX = re.compile(r'^(\w+) non-histogram and non-summary metrics should not have "_count" suffix$')


def promtool_check(text):
    """promtool check metrics: exit 0, or 3 (lint) with only the _count notes on
    ZooKeeper's names. Returns promtool's remarks."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if require_binaries():
            pytest.fail("promtool (Debian package prometheus) is not installed")
        pytest.skip("promtool (Debian package prometheus) is not installed")
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    remarks = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    assert p.returncode in (0, 3), "promtool failed (%d):\n%s" % (p.returncode, "\n".join(remarks))
    for r in remarks:
        m = COUNT_SUFFIX.match(r)
        assert m and m.group(1).endswith("_count"), "promtool: %s" % r
    return remarks


def test_promtool_check_metrics(coord):
    zk = coord.kazoo()
    try:
        zk.create("/p", b"x")
        zk.get("/p")
    finally:
        zk.stop()
        zk.close()
    text, _ = scrape(coord.metrics_port)
    remarks = promtool_check(text)
    # The check can fail: a malformed exposition is refused outright.
    p = subprocess.run(["promtool", "check", "metrics"], input=text + "znode_count{ 1\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    print("promtool remarks:", remarks)


def test_taken_port_stops_startup(tmp_path):
    """The endpoint was asked for: a port that cannot be bound fails the start
    (exit non-zero, the address in the message), as ZooKeeper's provider does."""
    require(coord_binary())
    import socket
    blocker = socket.socket()
    blocker.bind((HOST, 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=%s\nclientPort=%d\nclientPortAddress=%s\nadmin.enableServer=false\n"
                   "metricsProvider.className=%s\nmetricsProvider.httpHost=%s\n"
                   "metricsProvider.httpPort=%d\n"
                   % (tmp_path / "data", free_port(), HOST, PROVIDER, HOST, port))
    try:
        p = subprocess.run([coord_binary(), str(cfg)], capture_output=True, text=True, timeout=20)
    finally:
        blocker.close()
    assert p.returncode != 0
    assert "%s:%d" % (HOST, port) in p.stderr, p.stderr


def test_no_endpoint_without_the_provider(tmp_path):
    require(coord_binary())
    s = Server("fjord", {})
    try:
        s.start()
        assert "Prometheus" not in s.log_tail(), s.log_tail()
    finally:
        s.cleanup()


def test_ensemble_gauges():
    """3 members, each with its own endpoint: quorum_size 3 everywhere, the leader
    counts 2 synced followers, every member timed its first election."""
    require_ensemble()
    e = Ensemble(3)
    ports = free_ports(3)
    for m, port in zip(e.members, ports):
        m.metrics_port = port
        m.write_config({"metricsProvider.className": PROVIDER,
                        "metricsProvider.httpHost": HOST,
                        "metricsProvider.httpPort": str(port)})
    try:
        e.start()
        zk = e.kazoo()
        zk.create("/ens", b"x")
        for i in range(10):
            zk.create("/ens/c%d" % i, b"x")
        zk.stop()
        zk.close()
        # The writes' replies count in updatelatency on the member that had the client.
        counts = [value(parse(scrape(m.metrics_port)[0])[1], "updatelatency_count")
                  for m in e.members]
        assert sum(counts) >= 11, counts
        leader = e.wait_leader()
        deadline = time.time() + 10
        while True:
            _, s = parse(scrape(leader.metrics_port)[0])
            if value(s, "synced_followers") == 2 or time.time() > deadline:
                break
            time.sleep(0.1)
        assert value(s, "synced_followers") == 2
        for m in e.members:
            text, _ = scrape(m.metrics_port)
            _, s = parse(text)
            assert value(s, "quorum_size") == 3, m.sid
            # The follower counts on the leader only, as ZooKeeper.
            assert (types_of(text).get("synced_followers") == "gauge") == (m is leader), m.sid
            assert value(s, "election_time_count") >= 1, m.sid
            assert value(s, "znode_count") >= 5, m.sid
            promtool_check(text)
        mntr = dict(l.split("\t", 1) for l in four_letter(leader.port, "mntr").splitlines() if "\t" in l)
        assert mntr["zk_server_state"] == "leader" and mntr["zk_quorum_size"] == "3"
    finally:
        e.cleanup()


def test_prometheus_scrapes_and_answers_dashboard_queries(coord, tmp_path):
    """A real Prometheus server scrapes the coordinator every second and answers
    the PromQL of ZooKeeper dashboards (znode_count, avg_latency, rates, quantiles)."""
    prom = shutil.which("prometheus")
    if prom is None:
        if require_binaries():
            pytest.fail("prometheus (Debian package prometheus) is not installed")
        pytest.skip("prometheus (Debian package prometheus) is not installed")
    import json
    import urllib.parse
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                   "scrape_configs:\n  - job_name: zookeeper\n    static_configs:\n"
                   "      - targets: ['%s:%d']\n" % (HOST, coord.metrics_port))
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([prom, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % (tmp_path / "data"),
                          "--web.listen-address=%s:%d" % (HOST, port)],
                         stdout=log, stderr=subprocess.STDOUT)

    def query(q):
        url = "http://%s:%d/api/v1/query?%s" % (HOST, port, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read().decode())
        assert body["status"] == "success", body
        return [float(x["value"][1]) for x in body["data"]["result"]]

    zk = coord.kazoo()
    try:
        for i in range(15):
            zk.create("/prom%d" % i, b"x")
            zk.get("/prom%d" % i)
        want = None
        deadline = time.time() + 60
        results = {}
        queries = ["up", "znode_count", "avg_latency", "num_alive_connections",
                   "rate(packets_received[10s])", 'readlatency{quantile="0.99"}',
                   "updatelatency_count", "sum(rate(updatelatency_count[10s]))",
                   "process_resident_memory_bytes"]
        while time.time() < deadline:
            assert p.poll() is None, open(tmp_path / "prometheus.log").read()
            try:
                results = {q: query(q) for q in queries}
                want = value(parse(scrape(coord.metrics_port)[0])[1], "znode_count")
                if all(results.values()) and results["znode_count"] == [want] \
                        and results["rate(packets_received[10s])"][0] > 0:
                    break
            except OSError:
                pass
            # Keep the load going so the rates are above zero.
            zk.get("/prom0")
            zk.set("/prom0", b"y")
            time.sleep(0.5)
        assert results.get("up") == [1.0], results
        assert results["znode_count"] == [want], results
        assert results["num_alive_connections"][0] >= 1, results
        assert results["updatelatency_count"][0] >= 15, results
        assert results["rate(packets_received[10s])"][0] > 0, results
        assert results["sum(rate(updatelatency_count[10s]))"][0] > 0, results
        assert results['readlatency{quantile="0.99"}'][0] >= 0, results
    finally:
        zk.stop()
        zk.close()
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
        log.close()
