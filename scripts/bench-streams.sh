#!/usr/bin/env bash
# fjord-streams benchmark: examples/payment-alerts on one instance against one fjord-broker
# (+ fjord-coord) on this machine.
#   1. throughput: N payments (1,000 customers, 3 simulated days) produced first, then the
#      example processes the backlog (select_key -> repartition topic -> 1-day windowed
#      count in RocksDB -> alerts) and stops when idle; events/s = input records / time
#      from its first to its last record. at_least_once, and exactly_once_v2 when the
#      broker accepts transactional producers (otherwise a "skipped" line says why).
#   2. restore: KEYS payments of distinct customers build KEYS entries in the count store
#      (and its changelog); the state dir is deleted and the example restarted: records/s
#      and the time to restore them from the changelog.
#   scripts/bench-streams.sh           full: N=1,000,000 payments, KEYS=1,000,000
#   scripts/bench-streams.sh --quick   N=200,000, KEYS=100,000
# The grace is 30 days: a backlog's partitions are fetched unevenly and the library does not
# merge them by timestamp, so a short grace would drop records as late (docs/architecture.md).
# env: FJORD_BIN, N, KEYS, PARTITIONS (input partitions, default 4), KEEP_WORK=1,
#      APP_ARGS (more payment-alerts flags, e.g. "-p max.partition.fetch.bytes=10485760")
set -uo pipefail
source "$(dirname "$0")/lib.sh"
MODE=${1:-full}
N=${N:-1000000}; KEYS=${KEYS:-1000000}; PARTITIONS=${PARTITIONS:-4}
if [ "$MODE" = "--quick" ]; then N=200000; KEYS=100000; fi
APP=$FJORD_BIN/payment-alerts
[ -x "$APP" ] || { echo "payment-alerts not built at $APP: cargo build --release --workspace --bins" >&2; exit 1; }
PORT=$(free_port); ZK_PORT=$(free_port)
WORK=$(mktemp -d /tmp/fjord-bench-streams-XXXX)
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
num.partitions=1
group.initial.rebalance.delay.ms=0
P
spawn "$WORK/broker.log" "$FJORD_BIN/fjord-broker" "$WORK/broker.properties"
wait_port "$PORT" fjord-broker "$WORK/broker.log" "$SPAWNED"
BS=127.0.0.1:$PORT
sleep 1

topics() { # topics PREFIX: PREFIX-in (PARTITIONS), PREFIX-out, PREFIX-dlq
  python3 - "$BS" "$1" "$PARTITIONS" <<'PY' || exit 1
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
p = sys.argv[2]
for f in a.create_topics([NewTopic(p + "-in", num_partitions=int(sys.argv[3]), replication_factor=1),
                          NewTopic(p + "-out", num_partitions=1, replication_factor=1),
                          NewTopic(p + "-dlq", num_partitions=1, replication_factor=1)]).values():
    f.result(30)
PY
}

run_app() { # run_app PREFIX APP_ID GUARANTEE STATE_DIR: runs to idle, prints the stats JSON
  "$APP" --bootstrap "$BS" --application-id "$2" --processing-guarantee "$3" --state-dir "$4" \
    --input "$1-in" --output "$1-out" --dlq "$1-dlq" --grace-ms 2592000000 --exit-when-idle-ms 3000 ${APP_ARGS:-} \
    2>>"$WORK/app.log" | grep '^{"event":"stopped"' | tail -1
}

stat() { python3 -c 'import json,sys; s=json.loads(sys.argv[1])["stats"]; print(eval(sys.argv[2], {}, s))' "$1" "$2"; }

fail=0
# 1. throughput
topics tp
python3 -m streams.payments produce --bootstrap "$BS" --topic tp-in -n "$N" --customers 1000 || exit 1
TXN=$(python3 -c 'import sys; from streams.payments import transactions_supported as t; print(int(t(sys.argv[1])))' "$BS")
for g in at_least_once exactly_once_v2; do
  if [ "$g" = exactly_once_v2 ] && [ "$TXN" != 1 ]; then
    echo "payment-alerts guarantee=exactly_once_v2 skipped: the broker refuses InitProducerId with a transactional.id (no transactions yet)"
    continue
  fi
  out=$(run_app tp "tp-$g" "$g" "$WORK/state-$g")
  if [ -z "$out" ]; then echo "payment-alerts $g failed; log:" >&2; tail -20 "$WORK/app.log" >&2; fail=1; continue; fi
  ev=$(stat "$out" 'input_records'); ms=$(stat "$out" 'processing_ms')
  echo "payment-alerts guarantee=$g events=$ev ms=$ms events_per_s=$(stat "$out" 'int(input_records*1000/max(processing_ms,1))') late_dropped=$(stat "$out" 'tasks["late_dropped"]') commits=$(stat "$out" 'commits')"
done

# 2. restore from the changelog
topics rs
python3 -m streams.payments restore-keys --bootstrap "$BS" --topic rs-in -n "$KEYS" || exit 1
out=$(run_app rs rs-app at_least_once "$WORK/state-rs")
[ -n "$out" ] || { echo "restore: building the state failed" >&2; tail -20 "$WORK/app.log" >&2; exit 1; }
rm -rf "$WORK/state-rs"
out=$(run_app rs rs-app at_least_once "$WORK/state-rs")
[ -n "$out" ] || { echo "restore: the restart failed" >&2; tail -20 "$WORK/app.log" >&2; exit 1; }
echo "state-restore keys=$KEYS records=$(stat "$out" 'restored_records') ms=$(stat "$out" 'restore_ms') records_per_s=$(stat "$out" 'int(restored_records*1000/max(restore_ms,1))')"
exit $fail
