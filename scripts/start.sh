#!/usr/bin/env bash
# The one command to try Fjord: install what is missing (Debian packages), build, and run
# fjord-coord (config/coord.properties) in the foreground. Ctrl-C stops it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
fjord_install_apt
fjord_build
cat <<MSG

fjord-coord is starting on 127.0.0.1:2181 (config/coord.properties, data in /tmp/fjord/coord).
What now, from another terminal:
  $FJORD_BIN/fjord znode create /hello world
  $FJORD_BIN/fjord znode ls /
  $FJORD_BIN/fjord znode get -s /hello
  /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:2181 ls /
  echo ruok | nc 127.0.0.1 2181        # four-letter words: ruok srvr stat mntr conf cons envi wchs isro
Stop with Ctrl-C (or scripts/coord-stop.sh).

MSG
exec "$FJORD_ROOT/scripts/coord-start.sh" "$FJORD_ROOT/config/coord.properties"
