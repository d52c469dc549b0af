#!/usr/bin/env bash
# Produce latency while the log cleaner compacts a big partition (issue 14): one
# fjord-broker; a compacted topic filled with 1 GiB of 1 KiB records over 10,000 keys
# (segment.ms of an hour and segment.bytes of 2 GiB, so nothing is cleanable yet); then a confluent-kafka producer
# sends keyed 1 KiB records to that same partition at a fixed rate (acks=1, linger 0),
# latency = produce() -> delivery report as librdkafka measures it: first with the cleaner idle (baseline), then right
# after segment.ms is lowered so the cleaner compacts the whole partition: the sends made
# until its pass is logged done (a pass includes RocksDB's compact_range). Prints p50/p99/max of both phases, the cleaning time and the SST
# bytes under log.dirs before and after.
#   scripts/bench-compaction.sh           1 GiB partition, 2,000 msg/s probe, 15 s baseline
#   scripts/bench-compaction.sh --quick   ~100 MiB partition, 5 s baseline
# env: FJORD_BIN, FILL_MB, RATE, PHASE_S
set -euo pipefail
source "$(dirname "$0")/lib.sh"
FILL_MB=${FILL_MB:-1024}; RATE=${RATE:-2000}; PHASE_S=${PHASE_S:-15}
if [ "${1:-}" = "--quick" ]; then FILL_MB=${FILL_MB_QUICK:-100}; PHASE_S=5; fi
export FILL_MB RATE PHASE_S
exec python3 - <<'PY'
import glob, os, re, sys, time
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from fjordtest.broker import Cluster
from fjordtest.kafka import create_topic

fill_mb, rate, phase_s = int(os.environ["FILL_MB"]), int(os.environ["RATE"]), float(os.environ["PHASE_S"])
KEYS, VALUE = 10_000, b"v" * 1024
c = Cluster(1, {"log.cleaner.backoff.ms": 200, "log.retention.check.interval.ms": 60000})
b = c.brokers[0]
topic = "compaction-bench"


def sst_mb():
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(b.log_dir, "rocksdb", "*.sst"))) / 2**20


def cleaned_lines():
    with open(b.log_path, "rb") as f:
        return [l for l in f.read().decode("utf-8", "replace").splitlines()
                if "cleaned partition" in l and topic in l]


def stats(lat):
    lat = sorted(lat)
    q = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))] if lat else float("nan")
    return len(lat), q(0.5), q(0.99), (lat[-1] if lat else float("nan"))


def probe(p, until):
    """Keyed 1 KiB sends at `rate`/s until until() holds: [(send time, latency ms)]."""
    out = []
    t0 = time.time()
    n = 0
    def cb(err, msg, sent):
        # librdkafka's own produce() -> delivery time, independent of poll timing.
        if err is None and msg.latency() is not None:
            out.append((sent, msg.latency() * 1000))
    while not until(time.time() - t0):
        due = t0 + n / rate
        now = time.time()
        if due > now:
            p.poll(min(due - now, 0.005))
            continue
        p.produce(topic, key=b"probe-%d" % (n % 1000), value=VALUE, partition=0,
                  on_delivery=lambda e, m, s=now: cb(e, m, s))
        p.poll(0)
        n += 1
    p.flush(60)
    return n, out


try:
    create_topic(c.bootstrap, topic, configs={"cleanup.policy": "compact", "segment.ms": "3600000",
                                              "segment.bytes": "2147483647",
                                              "min.cleanable.dirty.ratio": "0.01"})
    fill = Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                     "queue.buffering.max.kbytes": 1 << 20})
    n = fill_mb * 1024
    t = time.time()
    for i in range(n):
        while True:
            try:
                fill.produce(topic, key=b"key-%05d" % (i % KEYS), value=VALUE, partition=0)
                break
            except BufferError:
                fill.poll(0.05)
    assert fill.flush(300) == 0
    print("compaction-bench fill msgs=%d mb=%d secs=%.1f" % (n, fill_mb, time.time() - t), flush=True)
    time.sleep(2)
    sst_before = sst_mb()
    p = Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 0, "acks": 1})
    sent, out = probe(p, lambda el: el >= phase_s)
    n0, p50, p99, mx = stats([l for _, l in out])
    print("compaction-bench phase=baseline sent=%d delivered=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f"
          % (sent, n0, p50, p99, mx), flush=True)
    a = AdminClient({"bootstrap.servers": c.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([res]).values():
        f.result(30)
    t_clean = time.time()
    seen = len(cleaned_lines())
    done_at, checked = [], [0.0]
    def until(el):
        now = time.time()
        if not done_at and now - checked[0] > 0.1:
            checked[0] = now
            if len(cleaned_lines()) > seen:
                done_at.append(now)
        return (done_at and now >= done_at[0] + 1) or el >= 600
    sent, out = probe(p, until)
    end = done_at[0] if done_at else time.time()
    clean_s = end - t_clean
    n1, p50c, p99c, mxc = stats([l for t, l in out if t <= end])
    print("compaction-bench phase=cleaning sent=%d delivered=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f"
          " (sends from segment.ms lowered to the pass logged done)" % (sent, n1, p50c, p99c, mxc), flush=True)
    line = (cleaned_lines()[seen:] or [""])[0]
    m = re.search(r"bytes_before=(\d+).*bytes_after=(\d+)", line)
    time.sleep(2)
    print("compaction-bench partition_mb=%d cleaned_mb_before=%s cleaned_mb_after=%s clean_s=%.1f "
          "sst_mb_before=%.1f sst_mb_after=%.1f p99_ratio_cleaning_over_baseline=%.2f"
          % (fill_mb, "%.1f" % (int(m.group(1)) / 2**20) if m else "?",
             "%.2f" % (int(m.group(2)) / 2**20) if m else "?", clean_s, sst_before, sst_mb(),
             p99c / p99 if p99 else float("nan")), flush=True)
    if not done_at:
        print("the cleaner did not finish its pass", file=sys.stderr)
        sys.exit(1)
finally:
    c.close()
PY
