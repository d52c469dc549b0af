#!/usr/bin/env bash
# Broker metrics cost (issue 17): kbench produce of 100 B messages (acks=1, one partition)
# to a broker with metrics.listeners set (and /metrics scraped every second meanwhile, as
# Prometheus would) against the same broker build with metrics off, rounds alternating in
# the same run; prints both, and the cost in percent (goal <= 2%). Then the scrape time
# of /metrics/cluster on one broker holding PARTS partitions and NGROUPS consumer groups
# with committed offsets (goal: 10,000 partitions and 2,000 groups <= 500 ms), and the
# broker's RSS growth over the scrapes (goal <= 20 MiB).
#   scripts/bench-metrics.sh            1,000,000 messages per run, 4 rounds (medians);
#                                       10,000 partitions, 2,000 groups, 10 scrapes
#   scripts/bench-metrics.sh --quick    300,000 messages, 4 rounds; 1,000 partitions,
#                                       200 groups, 5 scrapes
# env: KBENCH (default ~/.cache/bench-target/release/kbench, built from bench/kbench),
#      FJORD_BIN, MSGS, REPS, PARTS, NGROUPS, SCRAPES
set -euo pipefail
source "$(dirname "$0")/lib.sh"
require_tool "$KBENCH" kbench
MSGS=${MSGS:-1000000}; REPS=${REPS:-4}; PARTS=${PARTS:-10000}; NGROUPS=${NGROUPS:-2000}
SCRAPES=${SCRAPES:-10}
if [ "${1:-}" = "--quick" ]; then MSGS=300000; REPS=4; PARTS=1000; NGROUPS=200; SCRAPES=5; fi
export KBENCH MSGS REPS PARTS NGROUPS SCRAPES
exec python3 - <<'PY'
import os, re, statistics, subprocess, sys, threading, time
from ops.opsharness import OpsCluster, parse

kb = os.environ["KBENCH"]
msgs, reps = int(os.environ["MSGS"]), int(os.environ["REPS"])
parts, groups, scrapes = int(os.environ["PARTS"]), int(os.environ["NGROUPS"]), int(os.environ["SCRAPES"])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ms(pid):
    """User + system CPU of a process so far, in ms."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def kbench(c, topic):
    out = subprocess.run([kb, "--brokers", c.bootstrap, "--mode", "produce", "--topic", topic,
                          "--messages", str(msgs), "--size", "100", "--acks", "1",
                          "--replication", "1", "--partitions", "1"],
                         capture_output=True, text=True, timeout=900)
    line = (out.stdout.strip().splitlines() or [""])[-1]
    m = re.search(r"msgs_per_s=([0-9.]+)", line)
    if out.returncode != 0 or not m or "verify=ok" not in line:
        print("run failed: %s %s" % (out.stdout[-500:], out.stderr[-500:]), file=sys.stderr)
        sys.exit(1)
    return line, float(m.group(1))


# ---- 1. produce throughput, metrics on vs off (one coordinator-less broker each)
on = OpsCluster(1, {"log.retention.check.interval.ms": 60000}, metrics=True, coord=False)
off = OpsCluster(1, {"log.retention.check.interval.ms": 60000}, metrics=False, coord=False)
res = {"off": [], "on": []}
cpu = {"off": [], "on": []}
try:
    stop = threading.Event()

    def scraper():  # what a Prometheus server does to the "on" broker
        while not stop.wait(1.0):
            try:
                on.brokers[0].metrics()
            except Exception:  # noqa: BLE001 - keep scraping
                pass

    t = threading.Thread(target=scraper, daemon=True)
    t.start()
    for r in range(reps):
        # Order alternates too: whichever runs second in a round sees a warmer machine.
        order = (("off", off), ("on", on)) if r % 2 == 0 else (("on", on), ("off", off))
        for label, c in order:
            c0 = cpu_ms(c.brokers[0].pid)
            line, v = kbench(c, "bench-%s-%d" % (label, r))
            used = (cpu_ms(c.brokers[0].pid) - c0) * 1e6 / msgs
            print("metrics=%s %s broker_cpu_ms_per_M=%.0f" % (label, line, used), flush=True)
            res[label].append(v)
            cpu[label].append(used)
    stop.set()
    t.join(5)
    s = parse(on.brokers[0].metrics())
    counted = sum(v for n, l, v in s
                  if n == "kafka_server_brokertopicmetrics_messagesin_total" and not l)
    if counted != msgs * reps:
        print("metrics=on counted %d messages in, expected %d" % (counted, msgs * reps),
              file=sys.stderr)
        sys.exit(1)
finally:
    on.close()
    off.close()
a, b = statistics.median(res["off"]), statistics.median(res["on"])
print("--- produce, medians of %d round(s), 100 B messages, acks=1, %d per run" % (reps, msgs))
ca, cb = statistics.median(cpu["off"]), statistics.median(cpu["on"])
print("metrics off : %10.0f msgs/s  broker CPU %6.0f ms per million messages" % (a, ca))
print("metrics on  : %10.0f msgs/s  broker CPU %6.0f ms per million messages "
      "(/metrics scraped every 1 s)" % (b, cb))
print("cost of metrics: throughput %.1f%%, broker CPU %.1f%% (goal <= 2%%; the machine's "
      "noise between rounds is larger, see the lines above)"
      % ((a - b) / a * 100.0, (cb - ca) / ca * 100.0))

# ---- 2. /metrics/cluster scrape time with many partitions and groups
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

c = OpsCluster(1, {"log.retention.check.interval.ms": 60000, "num.partitions": 1})
try:
    b = c.brokers[0]
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    per_topic = 100
    topics = ["m%04d" % i for i in range((parts + per_topic - 1) // per_topic)]
    t0 = time.time()
    for i in range(0, len(topics), 10):
        fs = admin.create_topics([NewTopic(t, num_partitions=per_topic, replication_factor=1)
                                  for t in topics[i:i + 10]], request_timeout=120)
        for f in fs.values():
            f.result(300)

    def partitions_led():
        s = parse(b.metrics())
        return sum(v for n, l, v in s if n == "kafka_server_replicamanager_leadercount")

    while partitions_led() < len(topics) * per_topic:
        if time.time() - t0 > 600:
            sys.exit("partitions not all led after 600 s")
        time.sleep(1)
    created = time.time() - t0
    # Each group commits offsets for 5 partitions of one topic.
    t0 = time.time()
    pending = []
    for g in range(groups):
        topic = topics[g % len(topics)]
        tps = [TopicPartition(topic, p, 0) for p in range(5)]
        pending.extend(admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions("bench-g%05d" % g, tps)]).values())
        if len(pending) >= 200:
            for f in pending:
                f.result(60)
            pending = []
    for f in pending:
        f.result(60)
    committed = time.time() - t0
    print("--- /metrics/cluster: %d partitions (created in %.1f s), %d groups x 5 committed "
          "offsets (in %.1f s)" % (len(topics) * per_topic, created, groups, committed), flush=True)
    rss0 = rss_kib(b.pid)
    times, size, series = [], 0, 0
    for _ in range(scrapes):
        t1 = time.perf_counter()
        body = b.metrics("/metrics/cluster")
        times.append((time.perf_counter() - t1) * 1000.0)
        size = len(body)
        series = sum(1 for ln in body.splitlines() if ln and not ln.startswith("#"))
    rss1 = rss_kib(b.pid)
    lags = [ln for ln in body.splitlines() if ln.startswith("kafka_consumergroup_lag_sum{")]
    if len(lags) != groups:
        sys.exit("expected %d lag_sum series, got %d" % (groups, len(lags)))
    print("scrape /metrics/cluster: median %.0f ms, max %.0f ms over %d scrapes; %d series, "
          "%.1f MB (goal <= 500 ms at 10,000 partitions and 2,000 groups)"
          % (statistics.median(times), max(times), scrapes, series, size / 1e6))
    print("broker RSS: %.1f MiB before the scrapes, %.1f MiB after (growth %.1f MiB, goal <= 20)"
          % (rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1024))
finally:
    c.close()
PY
