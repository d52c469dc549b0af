#!/usr/bin/env bash
# Consumer-group benchmark: one fjord-coord (fsync on) + one fjord-broker, offsets in the
# coordinator, 100 B messages on a 6-partition topic.
#   1. group-consume: 3 bench/kbench processes in one group (--group: subscribe;
#      librdkafka's range assignor gives each 2 partitions), all consuming at once;
#      prints each kbench line and the group's total msgs/s.
#   2. commit-heavy: 3 confluent-kafka consumers in one group committing after every poll
#      (scripts/bench_groups.py): synchronously with 1 message per poll (a commit per
#      message: bound by each client's commit round trip, i.e. the coordinator's fsync),
#      synchronously with up to 500 per poll, and asynchronously with 1 per poll (commits
#      pipelined: what the broker + coordinator sustain); prints msgs/s and commits/s.
#   3. --join only: group join time, with group.initial.rebalance.delay.ms=0: 1, 3 and 10
#      confluent-kafka consumers (one process each) subscribe to a 12-partition topic in a
#      new group at the same moment; the time until every one holds partitions and each
#      partition is held once (scripts/bench_groups.py join); median of JOIN_ROUNDS (5).
#   scripts/bench-groups.sh            full: 1,500,000 messages, 20 s commit runs
#   scripts/bench-groups.sh --quick    150,000 messages, 4 s commit runs
#   scripts/bench-groups.sh --join     the join times only
# env: KBENCH, FJORD_BIN, MSGS, COMMIT_SECS, JOIN_ROUNDS, FJORD_BENCH_PORT (default: a free
#      port), KEEP_WORK=1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
MODE=${1:-full}
[ "$MODE" = --join ] || require_tool "$KBENCH" kbench
MSGS=${MSGS:-1500000}; COMMIT_SECS=${COMMIT_SECS:-20}; JOIN_ROUNDS=${JOIN_ROUNDS:-5}
if [ "$MODE" = "--quick" ]; then MSGS=150000; COMMIT_SECS=4; fi
MSGS=$(( MSGS / 6 * 6 ))   # every partition gets exactly MSGS/6
PORT=${FJORD_BENCH_PORT:-$(free_port)}; ZK_PORT=$(free_port)
WORK=$(mktemp -d /tmp/fjord-bench-groups-XXXX)
KPIDS=()
cleanup() {
  for p in "${KPIDS[@]}"; do kill "$p" 2>/dev/null; done
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
num.partitions=6
P
[ "$MODE" = --join ] && echo "group.initial.rebalance.delay.ms=0" >>"$WORK/broker.properties"
spawn "$WORK/broker.log" "$FJORD_BIN/fjord-broker" "$WORK/broker.properties"
wait_port "$PORT" fjord-broker "$WORK/broker.log" "$SPAWNED"
BS=127.0.0.1:$PORT
T=bench-groups-$$
sleep 1
PARTS=6; [ "$MODE" = --join ] && PARTS=12
python3 - "$BS" "$T" "$PARTS" <<'PY' || exit 1
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in a.create_topics([NewTopic(sys.argv[2], num_partitions=int(sys.argv[3]),
                                   replication_factor=1)]).values():
    f.result(30)
PY
if [ "$MODE" = --join ]; then
  fail=0
  for n in 1 3 10; do
    python3 "$here/bench_groups.py" join "$BS" "$T" 12 "$n" "$JOIN_ROUNDS" || fail=1
  done
  exit $fail
fi
t0=$(date +%s.%N)
python3 "$here/bench_groups.py" produce "$BS" "$T" "$MSGS" || { echo "produce failed" >&2; exit 1; }
echo "produced $MSGS x 100 B into 6 partitions in $(python3 -c "print('%.2f' % ($(date +%s.%N) - $t0))") s"

# 1. Three kbench consumers in one group, started together (the broker's default
# group.initial.rebalance.delay.ms of 3 s lets all three into the first generation).
G=bench-g-$$
for i in 1 2 3; do
  timeout 300 "$KBENCH" --brokers "$BS" --mode consume --topic "$T" --group "$G" \
    --messages $((MSGS / 3)) --timeout-s 20 >"$WORK/kb$i.out" 2>"$WORK/kb$i.err" &
  KPIDS+=($!)
done
fail=0
for p in "${KPIDS[@]}"; do wait "$p" || fail=1; done
KPIDS=()
for i in 1 2 3; do
  line=$(tail -1 "$WORK/kb$i.out")
  echo "label=fjord:group-consume-member$i ${line:-kbench mode=failed}"
done
python3 - "$WORK" "$MSGS" <<'PY'
import re, sys
msgs, secs, wall, ok = 0, 0.0, 0.0, True
for i in (1, 2, 3):
    line = open("%s/kb%d.out" % (sys.argv[1], i)).read().strip().splitlines()[-1:] or [""]
    kv = dict(re.findall(r"(\w+)=(\S+)", line[0]))
    msgs += int(kv.get("msgs", 0)); secs = max(secs, float(kv.get("secs", 0)))
    wall = max(wall, float(kv.get("startup_ms", 0)) / 1e3 + float(kv.get("secs", 0)))
    ok = ok and kv.get("verify") == "ok"
# msgs_per_s: kbench's clock (first to last message, all three at once); with_join: from
# process start, including joining the group (3 s of group.initial.rebalance.delay.ms).
print("group-consume consumers=3 partitions=6 msgs=%d secs=%.3f msgs_per_s=%.1f with_join_secs=%.3f "
      "with_join_msgs_per_s=%.1f verify=%s"
      % (msgs, secs, msgs / secs if secs else 0.0, wall, msgs / wall if wall else 0.0,
         "ok" if ok and msgs == int(sys.argv[2]) else "FAIL"))
PY
[ $fail = 0 ] || { echo "a kbench consumer failed; stderr:" >&2; tail -5 "$WORK"/kb*.err >&2; }

# 2. Commit-heavy: a synchronous commit after every poll.
python3 "$here/bench_groups.py" commit-heavy "$BS" "$T" "$MSGS" "$COMMIT_SECS" 1 || fail=1
python3 "$here/bench_groups.py" commit-heavy "$BS" "$T" "$MSGS" "$COMMIT_SECS" 500 || fail=1
python3 "$here/bench_groups.py" commit-heavy "$BS" "$T" "$MSGS" "$COMMIT_SECS" 1 async || fail=1
exit $fail
