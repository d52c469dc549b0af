#!/usr/bin/env bash
# The one command to try Fjord: install what is missing (Debian packages), build, start
# fjord-coord (config/coord.properties), the web console (config/console.properties,
# http://127.0.0.1:9021) and one fjord-broker (config/broker.properties) in the
# foreground. Ctrl-C stops them, broker first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
fjord_install_apt
fjord_build
mkdir -p "$FJORD_ROOT/logs"
# The coordinator runs in its own session so that Ctrl-C stops the broker first
# (it deregisters), then the EXIT trap stops the coordinator: start coord, then
# brokers; stop in reverse order.
setsid "$FJORD_BIN/fjord-coord" "$FJORD_ROOT/config/coord.properties" > "$FJORD_ROOT/logs/fjord-coord.out" 2>&1 &
COORD_PID=$!
trap 'kill $COORD_PID 2>/dev/null; wait $COORD_PID 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  [ "$( (exec 3<>/dev/tcp/127.0.0.1/2181 && printf ruok >&3 && timeout 1 cat <&3) 2>/dev/null)" = imok ] && break
  kill -0 $COORD_PID 2>/dev/null || { cat "$FJORD_ROOT/logs/fjord-coord.out" >&2; exit 1; }
  sleep 0.1
done
# The web console (it waits for nothing: its pages say when the broker is not up yet).
setsid "$FJORD_BIN/fjord-console" "$FJORD_ROOT/config/console.properties" > "$FJORD_ROOT/logs/fjord-console.out" 2>&1 &
CONSOLE_PID=$!
trap 'kill $CONSOLE_PID 2>/dev/null; kill $COORD_PID 2>/dev/null; wait $COORD_PID 2>/dev/null' EXIT
cat <<MSG

fjord-coord is running on 127.0.0.1:2181 (config/coord.properties, log logs/fjord-coord.out);
fjord-broker is starting on 127.0.0.1:9092 (config/broker.properties, data in /tmp/fjord/broker-0).
Web console: http://127.0.0.1:9021 (config/console.properties, log logs/fjord-console.out).
What now, from another terminal:
  F=$FJORD_BIN/fjord
  \$F topic create --topic demo --partitions 3 --bootstrap-server 127.0.0.1:9092
  seq 1 5 | \$F produce demo --bootstrap-server 127.0.0.1:9092
  \$F consume demo --from-beginning --max-messages 5 --bootstrap-server 127.0.0.1:9092
  kcat -b 127.0.0.1:9092 -L                      # Debian's kcat (librdkafka 2.0.2)
  echo hello | kcat -b 127.0.0.1:9092 -P -t demo && kcat -b 127.0.0.1:9092 -C -t demo -e
  \$F znode ls -R /brokers                       # cluster state in the coordinator
  /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:2181 get /brokers/ids/0
Stop with Ctrl-C: the broker stops first, then the console and the coordinator.

MSG
"$FJORD_BIN/fjord-broker" "$FJORD_ROOT/config/broker.properties"
