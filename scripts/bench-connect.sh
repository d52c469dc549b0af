#!/usr/bin/env bash
# fjord-connect benchmark: FileStream source -> topic -> S3 sink (JsonFormat) end to end,
# on one fjord-broker (+ fjord-coord) and moto's S3 server (python3 -m moto.server), one
# fjord-connect standalone worker running both connectors.
#   N lines of 1 KiB JSON are written to a file first; the clock runs from the POST of the
#   two connectors until the S3 sink has committed all N records (every record in S3:
#   flush.size=10000, rotate.schedule.interval.ms=2000 for the tails); MB/s = N KiB / time.
#   Also: the worker's RSS idle (no connectors) and its peak under the run.
#   scripts/bench-connect.sh           N=1,000,000 (1 GiB)
#   scripts/bench-connect.sh --quick   N=100,000
# moto keeps objects in memory and is single-threaded Python: it bounds the figure; a real
# S3 endpoint would not.  env: FJORD_BIN, N, PARTITIONS (default 4), KEEP_WORK=1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
MODE=${1:-full}
N=${N:-1000000}; PARTITIONS=${PARTITIONS:-4}
if [ "$MODE" = "--quick" ]; then N=100000; fi
CONNECT=$FJORD_BIN/fjord-connect
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
wait_port "$PORT" fjord-broker "$WORK/broker.log" "$SPAWNED"
spawn "$WORK/moto.log" python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT"
wait_port "$S3_PORT" moto "$WORK/moto.log" "$SPAWNED"
cat >"$WORK/worker.properties" <<P
bootstrap.servers=127.0.0.1:$PORT
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.storage.file.filename=$WORK/connect.offsets
offset.flush.interval.ms=1000
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
python3 - "$REST_PORT" "$S3_PORT" "$WORK/in.jsonl" "$N" "$CPID" "$IDLE" <<'PY'
import json, sys, time, urllib.request
import boto3
rest, s3port, path, n, pid, idle = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
base = "http://127.0.0.1:%s" % rest
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % s3port, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket="bench")
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
t0 = time.time()
call("POST", "/connectors", {"name": "src", "config": {"connector.class": "FileStreamSource", "file": path, "topic": "bench", "batch.size": "5000"}})
call("POST", "/connectors", {"name": "s3", "config": {
    "connector.class": "io.confluent.connect.s3.S3SinkConnector", "topics": "bench", "s3.bucket.name": "bench",
    "store.url": "http://127.0.0.1:%s" % s3port, "aws.access.key.id": "testing", "aws.secret.access.key": "testing",
    "flush.size": "10000", "rotate.schedule.interval.ms": "2000",
    "storage.class": "io.confluent.connect.s3.storage.S3Storage",
    "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}})
peak, done = 0, 0
deadline = t0 + 1800
while time.time() < deadline:
    peak = max(peak, rss())
    offs = call("GET", "/connectors/s3/offsets")["offsets"]
    done = sum(o["offset"]["kafka_offset"] for o in offs)
    st = call("GET", "/connectors/s3/status")
    if any(t["state"] == "FAILED" for t in st["tasks"]):
        print("connect S3 sink FAILED: %s" % st["tasks"][0].get("trace", "")[:400]); sys.exit(1)
    if done >= n:
        break
    time.sleep(0.25)
el = time.time() - t0
if done < n:
    print("connect bench: only %d of %d records in S3 after %.0f s" % (done, n, el)); sys.exit(1)
mb = n * 1024 / 1e6
print("connect file->topic->s3 1KiB JSON: records=%d MB=%.1f seconds=%.2f MB/s=%.1f records/s=%.0f (incl. up to 2 s rotation wait)" % (n, mb, el, mb / el, n / el))
print("connect worker RSS: idle_kib=%d peak_under_load_kib=%d" % (idle, peak))
PY
