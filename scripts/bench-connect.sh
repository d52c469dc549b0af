#!/usr/bin/env bash
# fjord-connect benchmark: FileStream source -> topic -> S3 sink (JsonFormat) end to end,
# on one fjord-broker (+ fjord-coord) and moto's S3 server (python3 -m moto.server), one
# fjord-connect standalone worker running both connectors.
#   N lines of 1 KiB JSON are written to a file first; then, from the POST of the two
#   connectors (flush.size=10000, rotate.schedule.interval.ms=2000 for the tails):
#   - source: time until all N records are in the topic (the FileStream source alone);
#   - end to end: time until the S3 sink has committed all N records, start-up and the
#     wait for the partial objects included (rotate.schedule.interval.ms=2000 closes
#     open objects at each 2 s boundary of the clock, as Confluent's: 0-2 s after the
#     last record, and a few partial objects mid-run);
#   - without the rotation wait: the records of the full (flush.size) objects over the
#     time from the POST until the last of them is committed (start-up included, the
#     partial objects' records not counted: a conservative figure);
#   - moto's own ceiling: plain PUTs of objects of the same size into the same moto, one
#     at a time and 4 at once (as many as the sink has under way), with the same bytes:
#     whichever of that and "moto 4 at once" is lower bounds the pipeline.
#   Settings a user would pick for this bulk load on this 2-core box (both stated in
#   "S3 sink throughput", docs/operations.md): the S3 sink runs tasks.max=2 (two
#   consumers of the 4 partitions: its conversion on both cores), and the worker file
#   sets producer.linger.ms=50 (fuller produce requests; the worker's default is 5).
#   SINK_TASKS= and LINGER_MS= override them (SINK_TASKS=1 LINGER_MS=5: the defaults).
#   Also: the worker's RSS idle (no connectors) and its peak under the run.
#   scripts/bench-connect.sh           N=1,000,000 (1 GiB)
#   scripts/bench-connect.sh --quick   N=100,000
# moto keeps objects in memory and is Python (one process, the GIL), yet its ceiling
# lines show 3-10x what the pipeline delivers here: the worker's CPU bounds the run (see
# "S3 sink throughput" in docs/operations.md).  env: FJORD_BIN, CONNECT_BIN (another
# fjord-connect build, e.g. for before/after), N, PARTITIONS (default 4), SINK_TASKS
# (default 2), LINGER_MS (default 50), KEEP_WORK=1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
MODE=${1:-full}
N=${N:-1000000}; PARTITIONS=${PARTITIONS:-4}
SINK_TASKS=${SINK_TASKS:-2}; LINGER_MS=${LINGER_MS:-50}
if [ "$MODE" = "--quick" ]; then N=100000; fi
CONNECT=${CONNECT_BIN:-$FJORD_BIN/fjord-connect}
[ -x "$CONNECT" ] || { echo "fjord-connect not built at $CONNECT: cargo build --release --workspace --bins" >&2; exit 1; }
python3 -c 'import moto.server, boto3' 2>/dev/null || { echo "moto[server] missing: pip install 'moto[server]'" >&2; exit 1; }
PORT=$(free_port); ZK_PORT=$(free_port); S3_PORT=$(free_port); REST_PORT=$(free_port)
WORK=$(mktemp -d /tmp/fjord-bench-connect-XXXX)
cleanup() {
  stop_all
  [ "${KEEP_WORK:-0}" = 1 ] && echo "work dir kept: $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

spawn_coord "$WORK/coord" "$ZK_PORT"
wait_port "$ZK_PORT" fjord-coord "$WORK/coord/server.log" "$SPAWNED"
cat >"$WORK/broker.properties" <<P
broker.id=1
listeners=PLAINTEXT://127.0.0.1:$PORT
log.dirs=$WORK/data
zookeeper.connect=127.0.0.1:$ZK_PORT
num.partitions=$PARTITIONS
group.initial.rebalance.delay.ms=0
P
spawn "$WORK/broker.log" "$FJORD_BIN/fjord-broker" "$WORK/broker.properties"
BROKER_PID=$SPAWNED
wait_port "$PORT" fjord-broker "$WORK/broker.log" "$SPAWNED"
spawn "$WORK/moto.log" python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT"
MOTO_PID=$SPAWNED
wait_port "$S3_PORT" moto "$WORK/moto.log" "$SPAWNED"
cat >"$WORK/worker.properties" <<P
bootstrap.servers=127.0.0.1:$PORT
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.storage.file.filename=$WORK/connect.offsets
offset.flush.interval.ms=1000
producer.linger.ms=$LINGER_MS
listeners=http://127.0.0.1:$REST_PORT
P
python3 - "$WORK/in.jsonl" "$N" <<'PY'
import json, sys
pad = "x" * 1024
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        line = json.dumps({"id": i, "pad": ""})
        f.write(json.dumps({"id": i, "pad": pad[: 1023 - len(line)]}) + "\n")
PY
spawn "$WORK/connect.log" "$CONNECT" standalone "$WORK/worker.properties"
CPID=$SPAWNED
wait_port "$REST_PORT" fjord-connect "$WORK/connect.log" "$CPID"
sleep 2
IDLE=$(rss_kib "$CPID")
python3 - "$REST_PORT" "$S3_PORT" "$WORK/in.jsonl" "$N" "$CPID" "$IDLE" "$PORT" "$BROKER_PID" "$MOTO_PID" "$SINK_TASKS" <<'PY'
import http.client, json, os, sys, threading, time, urllib.request
import boto3
from confluent_kafka import Consumer, TopicPartition
rest, s3port, path, n, pid, idle, kport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7]
FLUSH = 10000
base = "http://127.0.0.1:%s" % rest
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % s3port, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket="bench")
procs = {"worker": pid, "broker": sys.argv[8], "moto": sys.argv[9]}
def cpu(p):
    try:
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
kc = Consumer({"bootstrap.servers": "127.0.0.1:%s" % kport, "group.id": "bench-watch"})
def call(method, p, body=None):
    req = urllib.request.Request(base + p, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        return json.loads(raw) if raw else None
def rss():
    try:
        for line in open("/proc/%s/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
def in_topic():
    try:
        md = kc.list_topics("bench", timeout=2).topics["bench"].partitions
        return sum(kc.get_watermark_offsets(TopicPartition("bench", p), timeout=2)[1] for p in md)
    except Exception:
        return 0
cpu0 = {k: cpu(p) for k, p in procs.items()}
t0 = time.time()
call("POST", "/connectors", {"name": "src", "config": {"connector.class": "FileStreamSource", "file": path, "topic": "bench", "batch.size": "5000"}})
call("POST", "/connectors", {"name": "s3", "config": {
    "connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": "bench", "s3.bucket.name": "bench",
    "store.url": "http://127.0.0.1:%d" % s3port, "aws.access.key.id": "testing", "aws.secret.access.key": "testing",
    "flush.size": str(FLUSH), "rotate.schedule.interval.ms": "2000", "tasks.max": sys.argv[10],
    "storage.class": "io.confluent.connect.s3.storage.S3Storage",
    "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}})
peak, done, src_done = 0, 0, None
samples = []  # (seconds since t0, {partition: committed offset})
deadline = t0 + 1800
while time.time() < deadline:
    peak = max(peak, rss())
    offs = call("GET", "/connectors/s3/offsets")["offsets"]
    now = time.time() - t0
    by_p = {o["partition"]["kafka_partition"]: o["offset"]["kafka_offset"] for o in offs}
    samples.append((now, by_p))
    done = sum(by_p.values())
    if src_done is None and in_topic() >= n:
        src_done = time.time() - t0
    st = call("GET", "/connectors/s3/status")
    if any(t["state"] == "FAILED" for t in st["tasks"]):
        print("connect S3 sink FAILED: %s" % st["tasks"][0].get("trace", "")[:400]); sys.exit(1)
    if done >= n:
        break
    time.sleep(0.05)
el = time.time() - t0
cpu1 = {k: cpu(p) - cpu0[k] for k, p in procs.items()}
if done < n:
    print("connect bench: only %d of %d records in S3 after %.0f s" % (done, n, el)); sys.exit(1)
mb = n * 1024 / 1e6
if src_done is not None:
    print("connect source file->topic 1KiB: records=%d seconds=%.2f MB/s=%.1f" % (n, src_done, mb / src_done))
print("connect file->topic->s3 1KiB JSON end to end: records=%d MB=%.1f seconds=%.2f MB/s=%.1f records/s=%.0f (start-up and the wait for the scheduled rotation of the last partial objects included)" % (n, mb, el, mb / el, n / el))
# Steady state: each object's commit time from the offset samples, objects from the names.
objs = []  # (commit time, records, full?)
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench"):
    for o in page.get("Contents", []):
        part = int(o["Key"].split("/partition=")[1].split("/")[0])
        objs.append((part, int(o["Key"].rsplit("+", 1)[1].split(".")[0]), o["Size"]))
per_object = []
for part in sorted({p for p, _, _ in objs}):
    starts = sorted(s for p, s, _ in objs if p == part)
    final = samples[-1][1].get(part, 0)
    for i, s0 in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else final
        t = next((t for t, by_p in samples if by_p.get(part, 0) >= end), samples[-1][0])
        per_object.append((t, end - s0, end - s0 == FLUSH))
obj_bytes = max(sz for _, _, sz in objs)
full = [(t, r) for t, r, is_full in per_object if is_full]
if full:
    t_last = max(t for t, _ in full)
    recs = sum(r for _, r in full)
    print("connect without the rotation wait (POST to the last full object): objects=%d records=%d seconds=%.2f MB/s=%.1f records/s=%.0f"
          % (len(full), recs, t_last, recs * 1024 / 1e6 / t_last, recs / t_last))
else:
    print("connect without the rotation wait: no full object (N=%d, flush.size=%d)" % (n, FLUSH))
gib = n * 1024 / (1 << 30)
print("connect CPU seconds during the run (%.2f s wall, 2 cores shared): %s; per GiB: %s" % (
    el, " ".join("%s=%.2f" % kv for kv in cpu1.items()), " ".join("%s=%.1f" % (k, v / gib) for k, v in cpu1.items())))
print("connect worker RSS: idle_kib=%d peak_under_load_kib=%d" % (idle, peak))
# moto's own ceiling: the same object size, plain PUTs (no connect), same bytes (at most 256 MB).
s3.create_bucket(Bucket="ceiling")
body = open(path, "rb").read(obj_bytes)
total = min(n * 1024, 256 << 20)
count = max(4, total // len(body))
for conc in (1, 4):
    nxt = [0]
    lock = threading.Lock()
    def put():
        c = http.client.HTTPConnection("127.0.0.1", s3port, timeout=120)
        while True:
            with lock:
                i = nxt[0]; nxt[0] += 1
            if i >= count:
                return
            url = s3.generate_presigned_url("put_object", Params={"Bucket": "ceiling", "Key": "c%d/%d" % (conc, i)})
            c.request("PUT", url[url.index("/", 8):], body=body)
            r = c.getresponse(); r.read()
            if r.status != 200:
                print("moto PUT failed: HTTP %d" % r.status); sys.exit(1)
    ts = [threading.Thread(target=put) for _ in range(conc)]
    t1 = time.time()
    [t.start() for t in ts]; [t.join() for t in ts]
    sec = time.time() - t1
    print("moto ceiling, PUT %d B objects %d at once: objects=%d MB=%.1f seconds=%.2f MB/s=%.1f"
          % (len(body), conc, count, count * len(body) / 1e6, sec, count * len(body) / 1e6 / sec))
PY
