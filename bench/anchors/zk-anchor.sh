#!/usr/bin/env bash
# Apache ZooKeeper 3.8 (Debian package `zookeeper`) as the reference server that
# fjord-coord is measured against: standalone by default, or one member of an ensemble
# when given a ready config.
# usage: zk-anchor.sh start|stop|status|wipe
# env: ZKA_DIR=/tmp/zkanchor (pid file, conf/, log/; data/ unless ZKA_CONF says otherwise)
#      ZKA_PORT=22181 (the client port; start waits until it answers ruok)
#      ZKA_CONF: a zoo.cfg to use as is (an ensemble member); default: write a standalone
#                one in ZKA_DIR/conf
# The standalone config binds 127.0.0.1 only, turns the admin server off and keeps
# ZooKeeper's default forceSync=yes (an fsync per transaction). The JVM gets -Xmx1000m (the
# heap upstream's zkEnv.sh uses by default) and logs INFO to a rolling file in ZKA_DIR/log.
set -euo pipefail
source "$(dirname "$0")/pidfile.sh"
DIR=${ZKA_DIR:-/tmp/zkanchor}
PORT=${ZKA_PORT:-22181}
CONF=${ZKA_CONF:-$DIR/conf/zoo.cfg}
PIDF=$DIR/zk.pid

write_conf() {
  mkdir -p "$DIR/data"
  cat > "$CONF" <<CFG
tickTime=2000
dataDir=$DIR/data
clientPort=$PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
4lw.commands.whitelist=srvr,stat,ruok,mntr,cons
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CFG
}

# fourlw CMD: a four-letter word through bash's /dev/tcp (no nc needed)
fourlw() { ( exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf '%s' "$1" >&3 && timeout 2 cat <&3 ) 2>/dev/null || true; }

case "${1:-}" in
start)
  if pidfile_running "$PIDF"; then echo "already running pid $(cat "$PIDF")"; exit 0; fi
  mkdir -p "$DIR/conf" "$DIR/log"
  [ -n "${ZKA_CONF:-}" ] || write_conf
  cp /etc/zookeeper/conf_example/log4j.properties "$DIR/conf/"
  CP="$DIR/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
  nohup java -Xmx1000m -Dzookeeper.log.dir="$DIR/log" -Dzookeeper.root.logger=INFO,ROLLINGFILE \
    -cp "$CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONF" \
    > "$DIR/log/stdout.log" 2>&1 < /dev/null &
  echo $! > "$PIDF"
  imok() { [ "$(fourlw ruok)" = imok ]; }
  if pidfile_wait "$PIDF" imok; then echo "zookeeper up on 127.0.0.1:$PORT pid $(cat "$PIDF")"; exit 0; fi
  echo "zookeeper did not answer ruok; see $DIR/log" >&2; exit 1 ;;
stop)
  pidfile_stop "$PIDF" ;;
status)
  fourlw srvr ;;
wipe)
  "$0" stop; rm -rf "$DIR" ;;
*) echo "usage: $0 start|stop|status|wipe" >&2; exit 2 ;;
esac
