"""The ops suite's pieces: brokers with `metrics.listeners` on their own free
ports (OpsCluster), a reader of Prometheus' text format (parse), and a real
Prometheus server (PromServer: Debian's `prometheus`, its own config and data
dir on a free port, stopped by PID). Also used by scripts/bench-metrics.sh."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from fjordtest.broker import Broker, Cluster
from fjordtest.net import HOST, free_port
from fjordtest.proc import Proc


class OpsBroker(Broker):
    """A fjord-broker serving /metrics, /metrics/cluster, /health and /ready
    on its own port (kept across restarts)."""

    def __init__(self, workdir, broker_id, zk_connect, overrides=None, metrics=True):
        super().__init__(workdir, broker_id, zk_connect, overrides)
        self.metrics_port = free_port() if metrics else None

    def config(self):
        cfg = super().config()
        if self.metrics_port:
            cfg["metrics.listeners"] = "http://%s:%d" % (HOST, self.metrics_port)
        return cfg

    def wait_ready(self):
        super().wait_ready()
        if self.metrics_port:
            # The endpoints open once the broker has started (after registering).
            self.wait_listening(self.metrics_port)

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.metrics_port, path)

    def get(self, path, timeout=10.0):
        """(status, body text) of GET path; an HTTP error status is returned, not raised."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self, path="/metrics"):
        st, body = self.get(path)
        assert st == 200, (path, st, body[:500])
        return body


class OpsCluster(Cluster):
    """fjord-coord (none when coord=False) plus n OpsBrokers, started; close()
    stops them by PID."""

    def __init__(self, n=3, overrides=None, metrics=True, coord=True):
        super().__init__(n, overrides, "fjord" if coord else "standalone",
                         broker=lambda d, i, zk, o: OpsBroker(d, i, zk, o, metrics),
                         prefix="fjord-ops-test-")


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Prometheus text -> list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "unparsable line %r" % line
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                  for k, v in _LABEL.findall(m.group(3) or "")}
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def value(samples, name, **labels):
    """The one sample of `name` whose labels are exactly `labels` (None if absent)."""
    for n, l, v in samples:
        if n == name and l == labels:
            return v
    return None


def values(samples, name, **match):
    """Every sample of `name` whose labels include `match`: [(labels, value)]."""
    return [(l, v) for n, l, v in samples
            if n == name and all(l.get(k) == x for k, x in match.items())]


def promtool_check(text):
    """`promtool check metrics` on text: (exit code, output)."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def promtool_available():
    return shutil.which("promtool") is not None and shutil.which("prometheus") is not None


class PromServer(Proc):
    """A Prometheus server scraping `jobs` ({job: (metrics_path, [host:port])})
    every second, on a free port with its own data dir."""

    def __init__(self, workdir, jobs):
        super().__init__("prometheus", workdir)
        self.port = free_port()
        self.jobs = jobs

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        cfg = os.path.join(self.dir, "prometheus.yml")
        lines = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s",
                 "scrape_configs:"]
        for job, (path, targets) in self.jobs.items():
            lines += ["  - job_name: %s" % job, "    metrics_path: %s" % path,
                      "    scrape_timeout: 1s",
                      "    static_configs:",
                      "      - targets: [%s]" % ", ".join("'%s'" % t for t in targets)]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.launch(["prometheus", "--config.file=" + cfg,
                     "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                     "--web.listen-address=%s:%d" % (HOST, self.port),
                     "--log.level=warn"])
        self.wait_listening(self.port)
        return self

    def query(self, promql):
        """The instant-query result vector of promql."""
        url = "http://%s:%d/api/v1/query?%s" % (HOST, self.port,
                                                 urllib.parse.urlencode({"query": promql}))
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read().decode())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def targets_up(self):
        url = "http://%s:%d/api/v1/targets" % (HOST, self.port)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read().decode())
        return [t for t in body["data"]["activeTargets"] if t["health"] == "up"]


def wait_for(pred, timeout, what, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - not yet
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))
