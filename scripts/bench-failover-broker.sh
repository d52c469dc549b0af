#!/usr/bin/env bash
# Broker failover time (issue 18): 3 fjord-brokers with Kafka's default timeouts
# (zookeeper.session.timeout.ms=18000, replica.lag.time.max.ms=30000), an RF=3 topic
# with min.insync.replicas=2, an idempotent acks=all confluent-kafka producer with the
# client's defaults writing every few ms; the partition's leader is killed with kill -9
# KILLS times (restarted, back in the ISR and 5 s of steady state before the next kill). Prints, per kill,
# the time from the kill to the first acknowledgement of a message produced after it,
# then the median and max.
#   scripts/bench-failover-broker.sh                     10 kills of $FJORD_BIN's brokers
#   BEFORE=/tmp/fjord-before-broker scripts/bench-failover-broker.sh
#                                                        the same with the binaries in
#                                                        $BEFORE first, then a table
# env: FJORD_BIN, BEFORE, KILLS (default 10)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export KILLS=${KILLS:-10}
run() {
  FJORD_BIN=$1 python3 - <<'PY'
import os, statistics, time
from fjordtest.kafka import create_topic
from replication.replharness import Stream, part0, start_cluster, wait_until

c = start_cluster(3, {"zookeeper.session.timeout.ms": 18000, "replica.lag.time.max.ms": 30000})
times = []
try:
    create_topic(c.bootstrap, "failover", 1, 3, {"min.insync.replicas": "2"})
    wait_until(lambda: len(part0(c, "failover")["isr"]) == 3, 60, "ISR of 3")
    s = Stream(c.bootstrap, "failover")
    for i in range(int(os.environ["KILLS"])):
        wait_until(lambda: len(s.acked) >= 100 * (i + 1), 120, "acks before the kill")
        old = part0(c, "failover")["leader"]
        c.broker(old).kill9()
        t0 = time.time()
        wait_until(lambda: s.first_ack_after(t0) is not None, 120, "an ack after the kill")
        times.append(s.first_ack_after(t0))
        print("kill %d of broker %d: first ack after %.2f s" % (i + 1, old, times[-1]), flush=True)
        c.broker(old).start(wait=False)
        wait_until(lambda: c.broker(old).alive() and len(part0(c, "failover")["isr"]) == 3,
                   120, "broker %d back in the ISR" % old)
        # Steady state again before the next kill: the client's reconnect
        # backoff towards the broker it just saw die must not be measured.
        time.sleep(5)
    s.close()
finally:
    c.close()
print("RESULT median=%.2f max=%.2f" % (statistics.median(times), max(times)))
PY
}
after_bin=${FJORD_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/fjord-target}/release}
if [ -n "${BEFORE:-}" ]; then
  echo "--- before: $BEFORE"
  before=$(run "$BEFORE" | tee /dev/stderr | grep '^RESULT')
fi
echo "--- after: $after_bin"
after=$(run "$after_bin" | tee /dev/stderr | grep '^RESULT')
echo "--- time from kill -9 of the leader to the first acknowledged write, $KILLS kills"
printf '%-8s %s\n' binaries "result (s)"
[ -n "${BEFORE:-}" ] && printf '%-8s %s\n' before "${before#RESULT }"
printf '%-8s %s\n' after "${after#RESULT }"
