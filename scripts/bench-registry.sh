#!/usr/bin/env bash
# Schema Registry benchmark (issue 12): against one fjord-broker serving the registry
# (with a fjord-coord), in one run:
#   * GET /schemas/ids/{id} and POST /subjects/{s} (lookup) requests/s with 16 concurrent
#     keep-alive clients (ApacheBench, `ab`), with p99 latency;
#   * registrations/s: 16 client threads registering distinct schemas;
#   * produce throughput of 1 KiB Avro-framed records (confluent-kafka Producer) to a
#     topic with confluent.value.schema.validation=true and to one without.
#   scripts/bench-registry.sh            200,000 requests per lookup run, 200,000 records, 3 rounds (medians)
#   scripts/bench-registry.sh --quick    40,000 requests, 50,000 records, 1 round
# env: FJORD_BIN, REQS, RECORDS, REPS
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if ! command -v ab >/dev/null; then
  APT_PACKAGES=apache2-utils fjord_install_apt
fi
REQS=${REQS:-200000}; RECORDS=${RECORDS:-200000}; REPS=${REPS:-3}
if [ "${1:-}" = "--quick" ]; then REQS=40000; RECORDS=50000; REPS=1; fi
export REQS RECORDS REPS
exec python3 - <<'PY'
import json, os, re, statistics, struct, subprocess, sys, tempfile, threading, time
import requests
from confluent_kafka import Producer
from fjordtest.kafka import create_topic
from registry.conftest import RegistryCluster

reqs, records, reps = int(os.environ["REQS"]), int(os.environ["RECORDS"]), int(os.environ["REPS"])
CT = "application/vnd.schemaregistry.v1+json"

def schema(i):
    return json.dumps({"type": "record", "name": "B%d" % i, "fields": [{"name": "f", "type": "string"}, {"name": "n%d" % i, "type": "long"}]})

def ab(args):
    out = subprocess.run(["ab", "-q", "-k", "-c", "16", "-n", str(reqs)] + args, capture_output=True, text=True, timeout=600)
    rps = re.search(r"Requests per second:\s+([0-9.]+)", out.stdout)
    p99 = re.search(r"^\s*99%\s+(\d+)", out.stdout, re.M)
    failed = re.search(r"Failed requests:\s+(\d+)", out.stdout)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out.stdout)
    if not rps or (failed and int(failed.group(1))) or non2xx:
        print(out.stdout[-1500:], out.stderr[-500:], file=sys.stderr)
        sys.exit(1)
    return float(rps.group(1)), int(p99.group(1)) if p99 else -1

def register_rate(url, base, n=2000, threads=16):
    per = n // threads
    errs = []
    def work(t):
        s = requests.Session()
        for i in range(per):
            k = base + t * per + i
            r = s.post("%s/subjects/breg-%d/versions" % (url, k), data=json.dumps({"schema": schema(k)}), headers={"Content-Type": CT})
            if r.status_code != 200:
                errs.append(r.text)
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    t0 = time.time()
    for t in ts: t.start()
    for t in ts: t.join()
    dt = time.time() - t0
    if errs:
        print("register errors: %s" % errs[:3], file=sys.stderr); sys.exit(1)
    return per * threads / dt

def produce_rate(bootstrap, topic, value):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20, "acks": "1",
                  "queue.buffering.max.messages": 1000000, "enable.idempotence": False})
    failed = [0]
    def cb(err, _msg):
        if err is not None:
            failed[0] += 1
    t0 = time.time()
    for _ in range(records):
        while True:
            try:
                p.produce(topic, value=value, on_delivery=cb); break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(120)
    dt = time.time() - t0
    if failed[0]:
        print("%d records failed on %s" % (failed[0], topic), file=sys.stderr); sys.exit(1)
    return records / dt

c = RegistryCluster(1)
res = {k: [] for k in ("get_rps", "get_p99", "lookup_rps", "lookup_p99", "register_rps", "val_off", "val_on")}
try:
    url = c.url
    r = requests.post(url + "/subjects/bench-value/versions", data=json.dumps({"schema": schema(0)}), headers={"Content-Type": CT})
    sid = r.json()["id"]
    body = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    body.write(json.dumps({"schema": schema(0)})); body.close()
    value = b"\x00" + struct.pack(">i", sid) + b"x" * 1019
    for rep in range(reps):
        rps, p99 = ab([url + "/schemas/ids/%d" % sid]); res["get_rps"].append(rps); res["get_p99"].append(p99)
        print("round=%d get_by_id rps=%.0f p99_ms=%d" % (rep, rps, p99), flush=True)
        rps, p99 = ab(["-p", body.name, "-T", CT, url + "/subjects/bench-value"]); res["lookup_rps"].append(rps); res["lookup_p99"].append(p99)
        print("round=%d lookup rps=%.0f p99_ms=%d" % (rep, rps, p99), flush=True)
        rr = register_rate(url, 1000 + rep * 10000); res["register_rps"].append(rr)
        print("round=%d register rps=%.0f" % (rep, rr), flush=True)
        for label, cfg in (("val_off", {}), ("val_on", {"confluent.value.schema.validation": "true"})):
            topic = "bench-%s-%d" % (label, rep)
            create_topic(c.bootstrap, topic, configs=cfg)
            if label == "val_on":
                requests.post(url + "/subjects/%s-value/versions" % topic, data=json.dumps({"schema": schema(0)}), headers={"Content-Type": CT}).raise_for_status()
            mps = produce_rate(c.bootstrap, topic, value); res[label].append(mps)
            print("round=%d produce_%s msgs_per_s=%.0f" % (rep, label, mps), flush=True)
    os.unlink(body.name)
finally:
    c.close()
m = {k: statistics.median(v) for k, v in res.items()}
print("--- medians of %d round(s); 16 concurrent clients, %d requests per lookup run, %d records of 1 KiB" % (reps, reqs, records))
print("GET /schemas/ids/{id}   : %8.0f req/s  p99 %d ms" % (m["get_rps"], m["get_p99"]))
print("POST /subjects/{s}      : %8.0f req/s  p99 %d ms" % (m["lookup_rps"], m["lookup_p99"]))
print("register (new schemas)  : %8.0f req/s" % m["register_rps"])
print("produce validation off  : %8.0f msgs/s" % m["val_off"])
print("produce validation on   : %8.0f msgs/s  (%.1f%% of off)" % (m["val_on"], 100.0 * m["val_on"] / m["val_off"]))
PY
