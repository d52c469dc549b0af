#!/usr/bin/env bash
# fjord-console (issue 15): page render time and memory with many topics and groups, and
# message search speed. One fjord-coord + one fjord-broker; TOPICS topics of 10 partitions
# and NGROUPS consumer groups (each with committed offsets on 5 partitions of one topic);
# then LOADS loads each of the topic list, the group list and one group page, timed from
# a local HTTP client (server side: no browser rendering) and in headless Chromium (request
# to the load event, from Navigation Timing), p50/p99 (goal < 200 ms at
# 1,000 topics / 10,000 partitions / 2,000 groups), and the console's RSS (goal < 100 MiB);
# then SEARCH 100 B records on one partition searched with a substring filter that matches
# one record, messages scanned per second (goal >= 500,000/s).
#   scripts/bench-console.sh            1,000 topics, 2,000 groups, 100 loads, 1,000,000 records
#   scripts/bench-console.sh --quick    100 topics, 200 groups, 20 loads, 200,000 records
# env: FJORD_BIN, TOPICS, NGROUPS, LOADS, SEARCH
set -euo pipefail
source "$(dirname "$0")/lib.sh"
TOPICS=${TOPICS:-1000}; NGROUPS=${NGROUPS:-2000}; LOADS=${LOADS:-100}; SEARCH=${SEARCH:-1000000}
if [ "${1:-}" = "--quick" ]; then TOPICS=100; NGROUPS=200; LOADS=20; SEARCH=200000; fi
export TOPICS NGROUPS LOADS SEARCH
exec python3 - <<'PY'
import os, statistics, sys, time, urllib.request
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from fjordtest.broker import Cluster
from console.browser import Console, console_binary

topics_n, groups_n = int(os.environ["TOPICS"]), int(os.environ["NGROUPS"])
loads, search = int(os.environ["LOADS"]), int(os.environ["SEARCH"])
if not os.access(console_binary(), os.X_OK):
    sys.exit("fjord-console not built at %s" % console_binary())


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def get(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
        if r.status != 200:
            sys.exit("%s answered %d" % (url, r.status))
    return (time.perf_counter() - t) * 1000.0, body


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


c = Cluster(1, {"log.retention.check.interval.ms": 60000, "num.partitions": 1})
con = None
try:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    names = ["bench-t%04d" % i for i in range(topics_n)]
    t0 = time.time()
    for i in range(0, len(names), 20):
        fs = admin.create_topics([NewTopic(t, num_partitions=10, replication_factor=1)
                                  for t in names[i:i + 20]], request_timeout=120)
        for f in fs.values():
            f.result(300)
    pending = []
    for g in range(groups_n):
        tps = [TopicPartition(names[g % len(names)], p, 0) for p in range(5)]
        pending.extend(admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions("bench-g%05d" % g, tps)]).values())
        if len(pending) >= 200:
            for f in pending:
                f.result(60)
            pending = []
    for f in pending:
        f.result(60)
    print("--- %d topics x 10 partitions, %d groups x 5 committed offsets (set up in %.0f s)"
          % (topics_n, groups_n, time.time() - t0), flush=True)
    con = Console(c.dir, "console", {"bootstrap.servers": c.bootstrap,
                                     "zookeeper.connect": c.coord.hosts,
                                     "console.request.timeout.ms": 60000}).start()
    rss0 = rss_mib(con.pid)
    # The lists show 100 rows a page (console/src/listing.rs): the first page ends at the
    # 100th name and says how many there are.
    last_topic = names[min(100, topics_n) - 1].encode()
    last_group = b"bench-g%05d" % (min(100, groups_n) - 1)
    for label, path, must in (("topic list", "/topics", last_topic),
                              ("group list", "/groups", last_group),
                              ("group page", "/groups/bench-g00001", b'<span class="lag">0</span>'),
                              ("overview", "/", b'id="brokers-up" class="">1<')):
        body = get(con.url + path)[1]  # warm up, and check the page holds what it should
        if must not in body:
            sys.exit("%s lacks %r: %s" % (path, must, body[:3000]))
        times = [get(con.url + path)[0] for _ in range(loads)]
        print("%-10s p50 %7.1f ms  p99 %7.1f ms  (%d loads; goal p99 < 200 ms)"
              % (label, pct(times, 50), pct(times, 99), loads), flush=True)
    # The same pages in headless Chromium: Navigation Timing's request start to the
    # load event (network, parsing, layout: what a user waits for).
    from console.browser import chromium
    driver = chromium()
    try:
        for label, path in (("topic list", "/topics"), ("group list", "/groups"),
                            ("group page", "/groups/bench-g00001"), ("overview", "/")):
            times = []
            for _ in range(loads):
                driver.get(con.url + path)
                times.append(driver.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0];"
                    "return n.loadEventEnd - n.requestStart;"))
            print("%-10s p50 %7.1f ms  p99 %7.1f ms  in Chromium (%d loads; request to load event)"
                  % (label, pct(times, 50), pct(times, 99), loads), flush=True)
    finally:
        driver.quit()
    print("console RSS: %.1f MiB idle, %.1f MiB after the loads (goal < 100 MiB)"
          % (rss0, rss_mib(con.pid)), flush=True)
    # Message search: SEARCH records of 100 B on one partition, one of them matching.
    admin.create_topics([NewTopic("bench-search", num_partitions=1,
                                  replication_factor=1)])["bench-search"].result(60)
    p = Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 20,
                  "batch.num.messages": 10000, "queue.buffering.max.messages": 1000000})
    for i in range(search):
        v = ("needle-%08d" % i) if i == search - 1 else ("value-%08d" % i)
        p.produce("bench-search", (v * 7)[:100].encode(), partition=0)
        if i % 100000 == 0:
            p.flush()
    p.flush()
    url = con.url + "/topics/bench-search/messages?partition=0&offset=0&filter=needle&scan=%d" % (search + 1)
    rates = []
    for _ in range(3):
        ms, body = get(url)
        if b"1 shown, %d scanned" % search not in body:
            sys.exit("search did not scan everything: %s" % body[-2000:])
        rates.append(search / (ms / 1000.0))
    print("message search: %d records scanned with a substring filter, median %.0f msgs/s "
          "over 3 runs (goal >= 500,000/s); console RSS %.1f MiB"
          % (search, statistics.median(rates), rss_mib(con.pid)), flush=True)
finally:
    if con is not None:
        con.stop()
    c.close()
PY
